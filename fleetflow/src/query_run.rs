//! SQL and the history REST routes: mounted by `fleetflow run` and `fleetflow pipeline` next to
//! the live views, or served alone by `fleetflow query` over a data directory.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use fleetflow_model::Tenants;
use fleetflow_pipeline::live_store::LiveStore;
use fleetflow_query::{SqlApi, SqlEngine, history_routes, sql_routes};

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::error::AppError;
use crate::ops::{KafkaStatus, OpsState};
use crate::serve::shutdown_signal;

/// `/v1/sql` and `/v1/history/*` over `config.data_dir`, with the live tables when `live` is
/// given.
pub fn sql_router(
    config: &Config,
    live: Option<Arc<LiveStore>>,
    tenants: Arc<Tenants>,
) -> Result<Router, AppError> {
    let engine = SqlEngine::new(&config.data_dir, config.query.clone(), live)
        .map_err(|e| AppError::Internal(format!("SQL engine: {e}")))?;
    let api = SqlApi { engine, tenants };
    Ok(sql_routes(api.clone()).merge(history_routes(api)))
}

/// `fleetflow query`.
pub async fn serve_query(args: ServeArgs) -> Result<(), AppError> {
    let config = args.config()?;
    let admin_token = config.admin_token.clone().filter(|t| !t.is_empty());
    let tenants = Tenants::new(&config.companies, admin_token.as_deref())
        .map_err(|e| AppError::Config(e.to_string()))?;
    let ops = OpsState {
        registry: prometheus::Registry::new(),
        started: Instant::now(),
        role: "query",
        kafka: KafkaStatus {
            brokers: String::new(),
            embedded: false,
            topic: config.kafka.topic.clone(),
        },
        ingest: None,
        pipeline: None,
    };
    let router = crate::ops::routes(ops).merge(sql_router(&config, None, Arc::new(tenants))?);
    let (listener, addr) = crate::serve::bind(config.http).await?;
    println!("fleetflow {} — query", env!("CARGO_PKG_VERSION"));
    println!("reading the history in {}", config.data_dir.display());
    println!("listening on http://{addr}  (/v1/sql, /v1/history/*, /metrics, /status)");
    if admin_token.is_none() {
        println!("no admin token configured: only company tokens can query");
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(AppError::io("HTTP server"))
}
