//! SQL and the history REST routes: mounted by `fleetflow run` and `fleetflow pipeline` next to
//! the live views, or served alone by `fleetflow query` over a data directory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use fleetflow_live_store::store::LiveStore;
use fleetflow_model::Tenants;
use fleetflow_query::{
    PgServer, SqlApi, SqlEngine, SuppliedTable, history_routes, serve_postgres, sql_routes,
};

use crate::args::ServeArgs;
use crate::commands::webhooks::WebhookSide;
use crate::config::Config;
use crate::error::AppError;
use crate::http::ops::{KafkaStatus, OpsState};
use crate::http::server::shutdown_signal;

/// The SQL side of a process: `/v1/sql` and `/v1/history/*` over `config.data_dir` (with the
/// live tables when `live` is given, and the `supplied` ones), and the Postgres wire listener unless `query.postgres`
/// is `off`, serving until a shutdown signal.
pub async fn sql_side(
    config: &Config,
    live: Option<Arc<LiveStore>>,
    supplied: Vec<Arc<dyn SuppliedTable>>,
    tenants: Arc<Tenants>,
) -> Result<SqlSide, AppError> {
    let engine = SqlEngine::new(&config.data_dir, config.query.clone(), live)
        .map_err(|e| AppError::Internal(format!("SQL engine: {e}")))?
        .with_supplied(supplied);
    let api = SqlApi {
        engine: engine.clone(),
        tenants: tenants.clone(),
    };
    let router = sql_routes(api.clone()).merge(history_routes(api));
    let status_engine = engine.clone();
    let postgres = match config.query.postgres_addr().map_err(AppError::Config)? {
        None => None,
        Some(addr) => {
            let (listener, bound) = crate::http::server::bind(addr).await?;
            let server = Arc::new(PgServer::new(engine, tenants));
            tokio::spawn(serve_postgres(listener, server, shutdown_signal()));
            Some(bound)
        }
    };
    Ok(SqlSide {
        router,
        postgres,
        engine: status_engine,
    })
}

/// What [`sql_side`] serves.
#[derive(Debug)]
pub struct SqlSide {
    pub router: Router,
    /// Where the Postgres wire protocol listens.
    pub postgres: Option<SocketAddr>,
    /// The engine, for `/status`.
    pub engine: SqlEngine,
}

/// The startup line for a Postgres listener.
pub fn print_postgres(addr: Option<SocketAddr>) {
    if let Some(addr) = addr {
        println!(
            "postgres wire on {addr}  (user: company id or admin, password: its token; e.g. psql \"host={} port={} user=admin\")",
            addr.ip(),
            addr.port()
        );
    }
}

/// `fleetflow query`.
pub async fn serve_query(args: ServeArgs) -> Result<(), AppError> {
    let config = args.config()?;
    let admin_token = config.admin_token.clone().filter(|t| !t.is_empty());
    let tenants = Tenants::new(&config.companies, admin_token.as_deref())
        .map_err(|e| AppError::Config(e.to_string()))?;
    let started = Instant::now();
    let tenants = Arc::new(tenants);
    let sql = sql_side(&config, None, Vec::new(), tenants.clone()).await?;
    let ops = OpsState {
        registry: prometheus::Registry::new(),
        started,
        role: "query",
        kafka: KafkaStatus {
            brokers: String::new(),
            embedded: false,
            topic: config.kafka.topic.clone(),
        },
        ingest: None,
        pipeline: None,
        query: Some(sql.engine.clone()),
        webhooks: None,
        tenants: tenants.clone(),
    };
    // The API only: delivery runs beside the pipeline, which reads the subscriptions file.
    let (geofence_routes, _) = crate::commands::geofences::geofence_side(&config, tenants.clone())?;
    let (webhook_routes, _) = WebhookSide::prepare(&config, tenants, false)?.start(None)?;
    let router = crate::http::ops::routes(ops)
        .merge(sql.router.clone())
        .merge(webhook_routes)
        .merge(geofence_routes);
    let (listener, addr) = crate::http::server::bind(config.http).await?;
    println!("fleetflow {} — query", env!("CARGO_PKG_VERSION"));
    println!("reading the history in {}", config.data_dir.display());
    print_postgres(sql.postgres);
    println!(
        "listening on http://{addr}  (/v1/sql, /v1/history/*, /v1/webhooks, /metrics, /status)"
    );
    if admin_token.is_none() {
        println!("no admin token configured: only company tokens can query");
    }
    crate::http::server::serve_http(listener, router, shutdown_signal()).await;
    Ok(())
}
