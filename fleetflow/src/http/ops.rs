//! Operational endpoints every fleetflow process serves: `/metrics` (Prometheus text format)
//! and `/status` (JSON: what runs, where its broker is, what it has done).
//!
//! Both show fleet-wide counts and where the broker is, so they are the admin's (issue 35):
//! `/metrics` wants `Authorization: Bearer <admin token>` (Prometheus: `authorization:
//! {credentials: ...}`), and `/status` without it says only that the process is up (service,
//! version, role, uptime), enough for a liveness probe.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fleetflow_ingest::IngestState;
use fleetflow_model::{Principal, Tenants};
use fleetflow_pipeline::PipelineStats;
use fleetflow_query::{QueryStatus, SqlEngine};
use fleetflow_webhooks::WebhookStats;
use fleetflow_webhooks::deliver::{DeadLetter, DeadLetters};
use fleetflow_webhooks::stats::WebhookCounts;
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Serialize;

/// What `/status` and `/metrics` read.
#[derive(Clone)]
pub struct OpsState {
    pub registry: Registry,
    pub started: Instant,
    pub role: &'static str,
    pub kafka: KafkaStatus,
    pub ingest: Option<IngestState>,
    pub pipeline: Option<Arc<PipelineStats>>,
    /// The SQL engine (`run`, `pipeline`, `query`).
    pub query: Option<SqlEngine>,
    /// Webhook delivery, where it runs (beside the pipeline's committer).
    pub webhooks: Option<WebhookView>,
    /// Who may read the full status and the metrics: the admin token's holder.
    pub tenants: Arc<Tenants>,
}

impl OpsState {
    fn is_admin(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(fleetflow_model::tenancy::bearer)
            .and_then(|token| self.tenants.authenticate(token))
            == Some(&Principal::Admin)
    }
}

impl std::fmt::Debug for OpsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsState")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// What `/status` and `/metrics` read of webhooks.
#[derive(Debug, Clone)]
pub struct WebhookView {
    pub stats: Arc<WebhookStats>,
    pub dead_letters: Arc<DeadLetters>,
}

#[derive(Debug, Serialize)]
struct WebhookStatus {
    #[serde(flatten)]
    counts: WebhookCounts,
    /// Dead letters in this data dir, ever.
    dead_letters: u64,
    /// The newest dead letters (SQL: `webhook_dead_letters`).
    recent_dead_letters: Vec<DeadLetter>,
}

fn webhook_status(view: &WebhookView) -> WebhookStatus {
    WebhookStatus {
        counts: view.stats.counts(),
        dead_letters: view.dead_letters.total(),
        recent_dead_letters: view.dead_letters.recent(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct KafkaStatus {
    pub brokers: String,
    pub embedded: bool,
    pub topic: String,
}

#[derive(Debug, Serialize)]
struct Status {
    service: &'static str,
    version: &'static str,
    role: &'static str,
    uptime_secs: u64,
    #[serde(flatten)]
    detail: Option<StatusDetail>,
}

/// What only the admin token sees.
#[derive(Debug, Serialize)]
struct StatusDetail {
    kafka: KafkaStatus,
    ingest: Option<IngestStatus>,
    pipeline: Option<PipelineStatus>,
    query: Option<QueryStatus>,
    webhooks: Option<WebhookStatus>,
}

#[derive(Debug, Serialize)]
struct IngestStatus {
    auth: fleetflow_ingest::AuthMode,
    vehicles: usize,
    requests_accepted: u64,
    points_accepted: u64,
    records_delivered: u64,
    records_in_flight: usize,
}

#[derive(Debug, Serialize)]
struct PipelineStatus {
    records_read: u64,
    /// Milliseconds (summed over workers) the source paused for flow control.
    source_throttled_ms: u64,
    commits: u64,
    /// Dataflow time (epoch ms) up to which the tables are committed.
    committed_upto_ms: u64,
    rows_written: std::collections::BTreeMap<&'static str, u64>,
    /// Per Kafka partition, the next offset the tables do not yet hold.
    committed_offsets: std::collections::BTreeMap<i32, i64>,
    compaction: CompactionStatus,
    retention: RetentionStatus,
    repairs: RepairStatus,
}

/// What the repairs of items older than the correction horizon did (issue 38).
#[derive(Debug, Serialize)]
struct RepairStatus {
    repairs: u64,
    /// Late items merged into archived history.
    items_merged: u64,
    /// Items older than anything archived: stored and flagged, not in trips.
    items_unrepairable: u64,
    /// Archived entries re-read.
    entries_reread: u64,
    seconds: f64,
    /// Archived chunks written.
    chunks_written: u64,
}

/// What retention keeps and has removed (`[pipeline.retention]`).
#[derive(Debug, Serialize)]
struct RetentionStatus {
    /// Per table with a limit: the first date kept (UTC).
    first_date_kept: std::collections::BTreeMap<String, String>,
    partitions_removed: u64,
    files_removed: u64,
    bytes_removed: u64,
}

#[derive(Debug, Serialize)]
struct CompactionStatus {
    merges: u64,
    files_replaced: u64,
    bytes_in: u64,
    bytes_out: u64,
}

fn pipeline_status(stats: &PipelineStats) -> PipelineStatus {
    let rows_written = [
        ("positions", &stats.positions_written),
        ("trips", &stats.trips_written),
        ("events", &stats.events_written),
        ("errors", &stats.errors_written),
        ("geofence_visits", &stats.visits_written),
        ("rollups", &stats.rollups_written),
    ]
    .into_iter()
    .map(|(t, c)| (t, c.load(Ordering::Relaxed)))
    .collect();
    PipelineStatus {
        records_read: stats.records_read.load(Ordering::Relaxed),
        source_throttled_ms: stats.source_throttled_ms.load(Ordering::Relaxed),
        commits: stats.commits.load(Ordering::Relaxed),
        committed_upto_ms: stats.last_commit_epoch.load(Ordering::Relaxed),
        rows_written,
        committed_offsets: stats
            .last_commit
            .lock()
            .map(|c| c.as_ref().map(|c| c.offsets.clone()).unwrap_or_default())
            .unwrap_or_default(),
        compaction: CompactionStatus {
            merges: stats.compactions.load(Ordering::Relaxed),
            files_replaced: stats.compacted_files.load(Ordering::Relaxed),
            bytes_in: stats.compacted_bytes_in.load(Ordering::Relaxed),
            bytes_out: stats.compacted_bytes_out.load(Ordering::Relaxed),
        },
        retention: RetentionStatus {
            first_date_kept: stats
                .retention
                .cutoffs
                .lock()
                .map(|c| {
                    c.iter()
                        .map(|(table, day)| {
                            let date = fleetflow_model::partition_dir(day * 86_400_000);
                            (table.clone(), date.trim_start_matches("date=").to_owned())
                        })
                        .collect()
                })
                .unwrap_or_default(),
            partitions_removed: stats.retention.partitions.load(Ordering::Relaxed),
            files_removed: stats.retention.files.load(Ordering::Relaxed),
            bytes_removed: stats.retention.bytes.load(Ordering::Relaxed),
        },
        repairs: RepairStatus {
            repairs: stats.repairs.repairs.load(Ordering::Relaxed),
            items_merged: stats.repairs.items.load(Ordering::Relaxed),
            items_unrepairable: stats.repairs.unrepairable.load(Ordering::Relaxed),
            entries_reread: stats.repairs.entries_read.load(Ordering::Relaxed),
            seconds: stats.repairs.nanos.load(Ordering::Relaxed) as f64 / 1e9,
            chunks_written: stats.repairs.chunks_written.load(Ordering::Relaxed),
        },
    }
}

/// The pipeline's counters in Prometheus text format (they live in atomics the dataflow
/// updates; rendered on request).
fn pipeline_metrics(stats: &PipelineStats, out: &mut String) {
    use std::fmt::Write;
    let status = pipeline_status(stats);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |value: u64| [(String::new(), value)];
    metric(
        "fleetflow_pipeline_records_read_total",
        "counter",
        "Kafka records the pipeline has read.",
        &one(status.records_read),
    );
    metric(
        "fleetflow_pipeline_source_throttled_seconds_total",
        "counter",
        "Seconds (summed over workers) the Kafka source paused, at its in-flight bound.",
        &one(status.source_throttled_ms / 1000),
    );
    metric(
        "fleetflow_pipeline_commits_total",
        "counter",
        "Parquet commits made.",
        &one(status.commits),
    );
    let rows: Vec<(String, u64)> = status
        .rows_written
        .iter()
        .map(|(table, rows)| (format!("{{table=\"{table}\"}}"), *rows))
        .collect();
    metric(
        "fleetflow_pipeline_rows_written_total",
        "counter",
        "Rows committed to each table.",
        &rows,
    );
    metric(
        "fleetflow_pipeline_committed_upto_ms",
        "gauge",
        "Dataflow time the tables are committed up to.",
        &one(status.committed_upto_ms),
    );
    metric(
        "fleetflow_pipeline_compactions_total",
        "counter",
        "Compaction merges committed.",
        &one(status.compaction.merges),
    );
    metric(
        "fleetflow_pipeline_compacted_files_total",
        "counter",
        "Small files replaced by compaction merges.",
        &one(status.compaction.files_replaced),
    );
    metric(
        "fleetflow_pipeline_retention_partitions_removed_total",
        "counter",
        "Date partitions retention removed.",
        &one(status.retention.partitions_removed),
    );
    metric(
        "fleetflow_pipeline_retention_bytes_removed_total",
        "counter",
        "Bytes of the files retention removed.",
        &one(status.retention.bytes_removed),
    );
    metric(
        "fleetflow_pipeline_repairs_total",
        "counter",
        "Repairs of archived history: one per vehicle and epoch with items older than the correction horizon.",
        &one(status.repairs.repairs),
    );
    metric(
        "fleetflow_pipeline_repair_items_total",
        "counter",
        "Items older than the correction horizon merged into archived history.",
        &one(status.repairs.items_merged),
    );
    metric(
        "fleetflow_pipeline_repair_unrepairable_items_total",
        "counter",
        "Items older than anything archived: stored and flagged, not in trips.",
        &one(status.repairs.items_unrepairable),
    );
    metric(
        "fleetflow_pipeline_repair_entries_reread_total",
        "counter",
        "Archived entries re-read by repairs and by vehicles resuming after a restart.",
        &one(status.repairs.entries_reread),
    );
    metric(
        "fleetflow_pipeline_repair_milliseconds_total",
        "counter",
        "Time spent in repairs (divide by fleetflow_pipeline_repairs_total for the mean latency).",
        &one((status.repairs.seconds * 1000.0) as u64),
    );
    let first_kept: Vec<(String, u64)> = stats
        .retention
        .cutoffs
        .lock()
        .map(|c| {
            c.iter()
                .map(|(table, day)| {
                    let ms = u64::try_from(day * 86_400_000).unwrap_or(0);
                    (format!("{{table=\"{table}\"}}"), ms)
                })
                .collect()
        })
        .unwrap_or_default();
    metric(
        "fleetflow_pipeline_retention_first_kept_ms",
        "gauge",
        "Per table with a retention limit: the start (epoch ms) of the first date kept.",
        &first_kept,
    );
}

/// Webhook counters in Prometheus text format.
fn webhook_metrics(view: &WebhookView, out: &mut String) {
    use std::fmt::Write;
    let c = view.stats.counts();
    for (name, kind, help, value) in [
        (
            "fleetflow_webhook_events_dispatched_total",
            "counter",
            "Events appended to subscriptions' outboxes.",
            c.dispatched,
        ),
        (
            "fleetflow_webhook_deliveries_total",
            "counter",
            "Events a receiver accepted.",
            c.delivered,
        ),
        (
            "fleetflow_webhook_failed_attempts_total",
            "counter",
            "Delivery attempts that failed (each retry counts).",
            c.failed_attempts,
        ),
        (
            "fleetflow_webhook_dead_letters_total",
            "counter",
            "Events given up on since the process started.",
            c.dead_lettered,
        ),
        (
            "fleetflow_webhook_skipped_commits_total",
            "counter",
            "Commits trimmed before the dispatcher read them.",
            c.skipped_commits,
        ),
        (
            "fleetflow_webhook_events_owed",
            "gauge",
            "Events waiting in outboxes.",
            c.owed,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    }
}

pub fn routes(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(state)
}

async fn metrics(State(state): State<OpsState>, headers: HeaderMap) -> Response {
    if !state.is_admin(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "/metrics is for the admin token: Authorization: Bearer <admin token>\n",
        )
            .into_response();
    }
    let mut body = Vec::new();
    match TextEncoder::new().encode(&state.registry.gather(), &mut body) {
        Ok(()) => {
            if let Some(stats) = &state.pipeline {
                let mut text = String::new();
                pipeline_metrics(stats, &mut text);
                body.extend_from_slice(text.as_bytes());
            }
            if let Some(view) = &state.webhooks {
                let mut text = String::new();
                webhook_metrics(view, &mut text);
                body.extend_from_slice(text.as_bytes());
            }
            ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "encoding metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn status(State(state): State<OpsState>, headers: HeaderMap) -> Json<impl Serialize> {
    let detail = if state.is_admin(&headers) {
        Some(status_detail(&state).await)
    } else {
        None
    };
    Json(Status {
        service: "fleetflow",
        version: env!("CARGO_PKG_VERSION"),
        role: state.role,
        uptime_secs: state.started.elapsed().as_secs(),
        detail,
    })
}

async fn status_detail(state: &OpsState) -> StatusDetail {
    let ingest = state.ingest.as_ref().map(|ingest| {
        let totals = ingest.metrics().totals();
        IngestStatus {
            auth: ingest.config().auth,
            vehicles: ingest.registry().len(),
            requests_accepted: totals.requests,
            points_accepted: totals.points,
            records_delivered: totals.records,
            records_in_flight: ingest.sink().in_flight(),
        }
    });
    let query = match state.query.clone() {
        // It lists the history directories: off the async threads.
        Some(engine) => tokio::task::spawn_blocking(move || engine.status())
            .await
            .ok(),
        None => None,
    };
    StatusDetail {
        kafka: state.kafka.clone(),
        ingest,
        pipeline: state.pipeline.as_deref().map(pipeline_status),
        query,
        webhooks: state.webhooks.as_ref().map(webhook_status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    fn state() -> OpsState {
        let company = fleetflow_model::CompanyConfig {
            id: "acme".into(),
            name: String::new(),
            tokens: vec!["acme-token".into()],
            trips: None,
        };
        OpsState {
            registry: Registry::new(),
            started: Instant::now(),
            role: "run",
            kafka: KafkaStatus {
                brokers: "secret-host:9092".into(),
                embedded: false,
                topic: "t".into(),
            },
            ingest: None,
            pipeline: None,
            query: None,
            webhooks: None,
            tenants: Arc::new(Tenants::new(&[company], Some("admin")).expect("tenants")),
        }
    }

    async fn get(path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = routes(state())
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Issue 35: fleet-wide counts and the broker's address are the admin's.
    #[tokio::test]
    async fn status_and_metrics_detail_need_the_admin_token() {
        for token in [None, Some("acme-token"), Some("wrong")] {
            let (status, body) = get("/status", token).await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.contains("\"service\":\"fleetflow\""), "{body}");
            assert!(!body.contains("secret-host"), "{token:?}: {body}");
            let (status, body) = get("/metrics", token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
        }
        let (status, body) = get("/status", Some("admin")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("secret-host"), "{body}");
        let (status, _) = get("/metrics", Some("admin")).await;
        assert_eq!(status, StatusCode::OK);
    }
}
