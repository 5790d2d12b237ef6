//! Operational endpoints every fleetflow process serves: `/metrics` (Prometheus text format)
//! and `/status` (JSON: what runs, where its broker is, what it has done).

use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fleetflow_ingest::IngestState;
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
}

impl std::fmt::Debug for OpsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsState")
            .field("role", &self.role)
            .finish_non_exhaustive()
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
    kafka: KafkaStatus,
    ingest: Option<IngestStatus>,
    pipeline: &'static str,
    query: &'static str,
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

pub fn routes(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(state)
}

async fn metrics(State(state): State<OpsState>) -> Response {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&state.registry.gather(), &mut body) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response(),
        Err(error) => {
            tracing::error!(%error, "encoding metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn status(State(state): State<OpsState>) -> Json<impl Serialize> {
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
    Json(Status {
        service: "fleetflow",
        version: env!("CARGO_PKG_VERSION"),
        role: state.role,
        uptime_secs: state.started.elapsed().as_secs(),
        kafka: state.kafka.clone(),
        ingest,
        pipeline: "not built yet (issue 3)",
        query: "not built yet (issue 5)",
    })
}
