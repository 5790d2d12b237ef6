//! `fleetflow pipeline`: the dataflow job alone against a real Kafka cluster, as one process of
//! a timely cluster, with `/metrics` and `/status` on its HTTP listener.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use fleetflow_pipeline::PipelineJob;

use crate::args::ServeArgs;
use crate::commands::webhooks::WebhookSide;
use crate::config::{Config, EmbeddedKind};
use crate::error::AppError;
use crate::http::ops::{KafkaStatus, OpsState};
use crate::http::server::shutdown_signal;
use crate::kafka::clients::pipeline_consumer_config;

/// Flags of `fleetflow pipeline`.
#[derive(Debug, Clone, Args)]
pub struct PipelineArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Worker threads in this process (default: `pipeline.workers`).
    #[arg(long)]
    pub workers: Option<usize>,
    /// This process's index in a timely cluster (0-based; process 0 commits).
    #[arg(long, default_value_t = 0)]
    pub process: usize,
    /// Every cluster process's timely address (`host:port,...`, same order on each). Absent:
    /// a single process.
    #[arg(long, value_delimiter = ',')]
    pub cluster: Vec<String>,
    /// Stop once the topic has been read up to where it stood at start (a batch run).
    #[arg(long)]
    pub until_caught_up: bool,
}

/// The job a config describes, reading from `brokers`.
pub fn pipeline_job(config: &Config, brokers: &str, timely: timely::Config) -> PipelineJob {
    PipelineJob {
        config: config.pipeline.clone(),
        data_dir: config.data_dir.clone(),
        kafka: pipeline_consumer_config(brokers),
        topic: config.kafka.topic.clone(),
        company_rules: config
            .companies
            .iter()
            .filter_map(|c| c.trips.map(|rules| (c.id.clone(), rules)))
            .collect(),
        timely,
        stop_when_caught_up: false,
        // The in-memory broker starts empty every time: its offsets cannot match a commit log
        // from an earlier run, and the user chose it knowing that.
        rebaseline: config.rebaseline
            || (config.kafka.brokers.is_none() && config.kafka.embedded == EmbeddedKind::Memory),
        read_hold: None,
        geofences: None,
    }
}

fn timely_config(workers: usize, process: usize, cluster: &[String]) -> timely::Config {
    if cluster.len() <= 1 {
        return timely::Config::process(workers);
    }
    timely::Config {
        communication: timely::CommunicationConfig::Cluster {
            threads: workers,
            process,
            addresses: cluster.to_vec(),
            report: false,
            zerocopy: false,
        },
        worker: timely::WorkerConfig::default(),
    }
}

pub async fn serve_pipeline(args: PipelineArgs) -> Result<(), AppError> {
    let config = args.serve.config()?;
    let brokers = config.kafka.brokers.clone().ok_or_else(|| {
        AppError::Config(
            "fleetflow pipeline needs --brokers (or FLEETFLOW_KAFKA__BROKERS): only `fleetflow run` embeds a broker"
                .to_owned(),
        )
    })?;
    let workers = args.workers.unwrap_or(config.pipeline.workers).max(1);
    let clustered = args.cluster.len() > 1;
    let mut job = pipeline_job(
        &config,
        &brokers,
        timely_config(workers, args.process, &args.cluster),
    );
    job.stop_when_caught_up = args.until_caught_up;
    // The pipeline checks its commit log against the topic before it starts (`broker_check`):
    // create the topic if ingest has not yet, as ingest does, so either may start first.
    let partitions = config.kafka.topic_partitions(false, workers);
    crate::kafka::clients::ensure_topic(&brokers, &config.kafka, partitions).await?;
    let started = Instant::now();
    let tenants = fleetflow_model::Tenants::new(&config.companies, config.admin_token.as_deref())
        .map_err(|e| AppError::Config(e.to_string()))?;
    let tenants = Arc::new(tenants);
    // Webhooks are delivered beside the committer, worker 0 of the cluster (process 0).
    let webhook_side = WebhookSide::prepare(&config, tenants.clone(), args.process == 0)?;
    job.read_hold = webhook_side.hold();
    let (geofence_routes, geofences) =
        crate::commands::geofences::geofence_side(&config, tenants.clone())?;
    job.geofences = Some(geofences);
    let pipeline = fleetflow_pipeline::start(job).map_err(|e| AppError::Pipeline(e.to_string()))?;
    // Every worker sends its live rows to worker 0: process 0 holds the live store whole.
    let (webhook_routes, webhooks) =
        webhook_side.start((args.process == 0).then(|| pipeline.live.clone()))?;
    // The live views and SQL, served where they are computed: every worker sends its live rows
    // to worker 0 of the cluster, so process 0 holds them whole. The other processes answer
    // the live endpoints 503 rather than an empty fleet, and their SQL has no live tables.
    let live = pipeline.live.clone();
    let served = (args.process == 0).then(|| live.clone());
    let sql = crate::commands::query::sql_side(
        &config,
        served.clone(),
        crate::commands::webhooks::sql_tables(webhooks.as_ref()),
        tenants.clone(),
    )
    .await?;
    let ops = OpsState {
        registry: prometheus::Registry::new(),
        started,
        role: "pipeline",
        kafka: KafkaStatus {
            brokers: brokers.clone(),
            embedded: false,
            topic: config.kafka.topic.clone(),
        },
        ingest: None,
        pipeline: Some(pipeline.stats.clone()),
        query: Some(sql.engine.clone()),
        webhooks: crate::commands::webhooks::view(webhooks.as_ref()),
        tenants: tenants.clone(),
    };
    let (listener, addr) = crate::http::server::bind(config.http).await?;
    println!("fleetflow {} — pipeline", env!("CARGO_PKG_VERSION"));
    println!(
        "Kafka at {brokers} (topic {}); {workers} workers; writing Parquet to {}",
        config.kafka.topic,
        config.data_dir.display()
    );
    println!(
        "listening on http://{addr}  (/metrics, /status, /v1/live/*, /v1/sql, /v1/history/*, /v1/webhooks)"
    );
    let shutdown = pipeline.shutdown_flag();
    crate::commands::query::print_postgres(sql.postgres);
    let router = crate::http::ops::routes(ops)
        .merge(fleetflow_query::live_routes(fleetflow_query::LiveApi::new(
            served,
            tenants.clone(),
        )))
        .merge(sql.router)
        .merge(webhook_routes)
        .merge(geofence_routes);
    let server = tokio::spawn(async move {
        crate::http::server::serve_http(listener, router, async move {
            shutdown_signal().await;
            live.close();
        })
        .await
    });
    // Ends on a signal (the server stops, then we ask the pipeline to drain) or by itself
    // (--until-caught-up).
    let joined = {
        let shutdown = Arc::clone(&shutdown);
        let waiter = tokio::task::spawn_blocking(move || pipeline.join());
        tokio::pin!(waiter);
        tokio::select! {
            result = &mut waiter => result,
            _ = server => {
                shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
                waiter.await
            }
        }
    };
    if let Some(webhooks) = webhooks {
        tokio::task::spawn_blocking(move || webhooks.stop())
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
    }
    joined
        .map_err(|e| {
            if clustered && e.is_panic() {
                // timely's network threads panic when a peer's connection drops.
                AppError::Pipeline(
                    "a process of this timely cluster stopped or became unreachable: a timely cluster restarts whole, so restart every process (each resumes from the commit log)"
                        .to_owned(),
                )
            } else {
                AppError::Internal(e.to_string())
            }
        })?
        .map_err(|e| AppError::Pipeline(e.to_string()))
}
