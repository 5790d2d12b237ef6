//! Assembling and running the HTTP services of `fleetflow run` and `fleetflow ingest`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use fleetflow_ingest::{IngestMetrics, IngestState, KafkaSink, RecordSink, VehicleRegistry};
use fleetflow_model::Tenants;
use fleetflow_query::LiveApi;
use rand::{Rng, SeedableRng};
use rdkafka::producer::FutureProducer;
use tokio::net::TcpListener;

use fleetflow_pipeline::RunningPipeline;
use fleetflow_webhooks::Webhooks;

use crate::args::ServeArgs;
use crate::commands::pipeline::pipeline_job;
use crate::commands::webhooks::WebhookSide;
use crate::config::{Config, EmbeddedKind};
use crate::error::AppError;
use crate::http::ops::{KafkaStatus, OpsState};
use crate::http::server::shutdown_signal;
use crate::kafka::clients::{MemoryBroker, ensure_topic, producer_config};
use crate::kafka::durable_broker::{BrokerStorage, DurableBroker};

/// Which subcommand is serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything in one process; an embedded broker when no brokers are configured.
    Run,
    /// Ingest alone, against a real cluster.
    Ingest,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Run => "run",
            Role::Ingest => "ingest",
        }
    }
}

/// Built services, ready to serve.
pub struct Services {
    pub router: Router,
    pub ingest: IngestState,
    pub admin_token: String,
    /// Whether the admin token was generated (and must be shown to the user).
    pub admin_token_generated: bool,
    pub brokers: String,
    pub embedded_broker: Option<EmbeddedBroker>,
    /// The dataflow job (`run` only).
    pub pipeline: Option<RunningPipeline>,
    /// Where the Postgres wire protocol listens (`run` only, unless `query.postgres = "off"`).
    pub postgres: Option<std::net::SocketAddr>,
    /// Webhook delivery (`run` with the pipeline, unless `webhooks.enabled` is off).
    pub webhooks: Option<Webhooks>,
    sink: Arc<KafkaSink>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

/// The broker `fleetflow run` embeds.
#[derive(Debug)]
pub enum EmbeddedBroker {
    /// Tansu in process, its log under `<data-dir>/broker/` (the default).
    Durable(DurableBroker),
    /// librdkafka's mock cluster: in memory only (`--broker memory`).
    Memory(MemoryBroker),
}

impl EmbeddedBroker {
    /// Starts the kind `config.kafka.embedded` names and creates the topic on it.
    pub async fn start(config: &Config) -> Result<EmbeddedBroker, AppError> {
        match config.kafka.embedded {
            EmbeddedKind::Durable => {
                let broker = DurableBroker::start(
                    BrokerStorage::Dir(config.data_dir.join("broker")),
                    config.kafka.embedded_listen,
                )
                .await?;
                let partitions = config.kafka.topic_partitions(true, config.pipeline.workers);
                ensure_topic(&broker.bootstrap_servers(), &config.kafka, partitions).await?;
                Ok(EmbeddedBroker::Durable(broker))
            }
            EmbeddedKind::Memory => Ok(EmbeddedBroker::Memory(MemoryBroker::start(
                &config.kafka.topic,
                config.kafka.topic_partitions(true, config.pipeline.workers),
            )?)),
        }
    }

    pub fn bootstrap_servers(&self) -> String {
        match self {
            EmbeddedBroker::Durable(b) => b.bootstrap_servers(),
            EmbeddedBroker::Memory(b) => b.bootstrap_servers(),
        }
    }

    pub fn kind(&self) -> EmbeddedKind {
        match self {
            EmbeddedBroker::Durable(_) => EmbeddedKind::Durable,
            EmbeddedBroker::Memory(_) => EmbeddedKind::Memory,
        }
    }
}

/// Starts the broker (embedded, for `run` without brokers) and builds every service.
pub async fn build(config: &Config, role: Role) -> Result<Services, AppError> {
    let (brokers, embedded_broker) = match (&config.kafka.brokers, role) {
        (Some(brokers), _) => {
            let partitions = config
                .kafka
                .topic_partitions(false, config.pipeline.workers);
            ensure_topic(brokers, &config.kafka, partitions).await?;
            (brokers.clone(), None)
        }
        (None, Role::Run) => {
            let broker = EmbeddedBroker::start(config).await?;
            (broker.bootstrap_servers(), Some(broker))
        }
        (None, Role::Ingest) => {
            return Err(AppError::Config(
                "fleetflow ingest needs --brokers (or FLEETFLOW_KAFKA__BROKERS): only `fleetflow run` embeds a broker"
                    .to_owned(),
            ));
        }
    };

    let (admin_token, admin_token_generated) = match &config.admin_token {
        Some(token) if !token.is_empty() => (token.clone(), false),
        _ => (random_token(), true),
    };
    let mut tenants = Tenants::new(&config.companies, Some(&admin_token))
        .map_err(|e| AppError::Config(e.to_string()))?;
    tenants
        .ensure_company(&config.ingest.default_company)
        .map_err(|e| AppError::Config(e.to_string()))?;
    let mut initial = Vec::with_capacity(config.vehicles.len());
    for (vehicle, company) in &config.vehicles {
        let company = tenants.company(company).ok_or_else(|| {
            AppError::Config(format!(
                "vehicle {vehicle} names company {company:?}, which is not in [[companies]]"
            ))
        })?;
        initial.push((vehicle.clone(), company));
    }
    std::fs::create_dir_all(&config.data_dir).map_err(AppError::io(format!(
        "create data dir {}",
        config.data_dir.display()
    )))?;
    let journal = config.data_dir.join("vehicles.jsonl");
    let registry = VehicleRegistry::open(&journal, initial, |id| tenants.company(id)).map_err(
        AppError::io(format!("vehicle registry {}", journal.display())),
    )?;

    let embedded = embedded_broker.as_ref().map(EmbeddedBroker::kind);
    let producer: FutureProducer = producer_config(&config.kafka, &brokers, embedded)
        .create()
        .map_err(|e| AppError::Kafka(format!("producer: {e}")))?;
    let sink = Arc::new(KafkaSink::new(
        producer,
        config.kafka.topic.clone(),
        Duration::from_millis(config.kafka.flush_timeout_ms),
    ));

    let metrics_registry = prometheus::Registry::new();
    let metrics = IngestMetrics::new(&metrics_registry)
        .map_err(|e| AppError::Internal(format!("metrics: {e}")))?;
    let tenants = Arc::new(tenants);
    let ingest = IngestState::new(
        config.ingest.clone(),
        tenants.clone(),
        Arc::new(registry),
        sink.clone(),
        metrics,
    )
    .map_err(|e| AppError::Config(e.to_string()))?;

    let run_pipeline = role == Role::Run && config.pipeline.enabled;
    let geofence_side = match role {
        Role::Run => Some(crate::commands::geofences::geofence_side(
            config,
            tenants.clone(),
        )?),
        Role::Ingest => None,
    };
    let webhook_side = match role {
        Role::Run => Some(WebhookSide::prepare(config, tenants.clone(), run_pipeline)?),
        Role::Ingest => None,
    };
    let pipeline = if run_pipeline {
        let mut job = pipeline_job(
            config,
            &brokers,
            timely::Config::process(config.pipeline.workers.max(1)),
        );
        job.read_hold = webhook_side.as_ref().and_then(WebhookSide::hold);
        job.geofences = geofence_side.as_ref().map(|(_, g)| g.clone());
        Some(fleetflow_pipeline::start(job).map_err(|e| AppError::Pipeline(e.to_string()))?)
    } else {
        None
    };
    let (webhook_routes, webhooks) = match webhook_side {
        Some(side) => {
            let (routes, webhooks) = side.start(pipeline.as_ref().map(|p| p.live.clone()))?;
            (Some(routes), webhooks)
        }
        None => (None, None),
    };
    let live = pipeline.as_ref().map(|p| p.live.clone());
    let sql = match role {
        Role::Run => Some(
            crate::commands::query::sql_side(
                config,
                live.clone(),
                crate::commands::webhooks::sql_tables(webhooks.as_ref()),
                tenants.clone(),
            )
            .await?,
        ),
        Role::Ingest => None,
    };
    let ops = OpsState {
        registry: metrics_registry,
        started: Instant::now(),
        role: role.as_str(),
        kafka: KafkaStatus {
            brokers: brokers.clone(),
            embedded: embedded_broker.is_some(),
            topic: config.kafka.topic.clone(),
        },
        ingest: Some(ingest.clone()),
        pipeline: pipeline.as_ref().map(|p| p.stats.clone()),
        query: sql.as_ref().map(|sql| sql.engine.clone()),
        webhooks: crate::commands::webhooks::view(webhooks.as_ref()),
        tenants: tenants.clone(),
    };
    let mut router = fleetflow_ingest::app(ingest.clone())
        .merge(fleetflow_query::live_routes(LiveApi::new(
            live.clone(),
            tenants.clone(),
        )))
        .merge(crate::http::ops::routes(ops));
    if let Some(routes) = webhook_routes {
        router = router.merge(routes);
    }
    let mut postgres = None;
    if let Some(sql) = sql {
        postgres = sql.postgres;
        router = router
            .merge(sql.router)
            .merge(crate::http::dashboard::dashboard_routes(
                config.dashboard.clone(),
            ));
        if let Some((routes, _)) = geofence_side {
            router = router.merge(routes);
        }
    }
    Ok(Services {
        router,
        postgres,
        ingest,
        admin_token,
        admin_token_generated,
        brokers,
        embedded_broker,
        pipeline,
        webhooks,
        sink,
    })
}

impl Services {
    /// Serves until `shutdown` resolves, lets in-flight requests finish (they wait for their
    /// delivery reports), then flushes the producer.
    ///
    /// `osmand` is the dedicated OsmAnd listener (`ingest.osmand_listen`), served beside the
    /// main one and drained with it.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        osmand: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let osmand = osmand.map(|listener| {
            let router = fleetflow_ingest::osmand_app(self.ingest.clone());
            tokio::spawn(crate::http::server::serve_http(
                listener,
                router,
                stopped(stop_rx.clone()),
            ))
        });
        // Live streams never end by themselves: close them when shutdown begins, so the server
        // can drain.
        let live = self.pipeline.as_ref().map(|p| p.live.clone());
        let shutdown = async move {
            shutdown.await;
            if let Some(live) = live {
                live.close();
            }
            let _ = stop_tx.send(true);
        };
        crate::http::server::serve_http(listener, self.router, shutdown).await;
        if let Some(osmand) = osmand {
            let _ = osmand.await;
        }
        let sink = self.sink.clone();
        let flushed = tokio::task::spawn_blocking(move || sink.flush())
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        if let Err(error) = flushed {
            tracing::error!(%error, in_flight = self.sink.in_flight(), "records not confirmed at shutdown");
        }
        if let Some(webhooks) = self.webhooks.take() {
            // What is not yet delivered stays owed in the outboxes.
            tokio::task::spawn_blocking(move || webhooks.stop())
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?;
        }
        if let Some(pipeline) = self.pipeline.take() {
            // The pipeline reads what ingest delivered, commits it, then stops.
            tokio::task::spawn_blocking(move || pipeline.stop())
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?
                .map_err(|e| AppError::Pipeline(e.to_string()))?;
        }
        drop(self.embedded_broker);
        Ok(())
    }
}

/// 128 random bits as hex.
fn random_token() -> String {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    format!("{:032x}", rng.random::<u128>())
}

/// `fleetflow run` and `fleetflow ingest`: builds the services, prints the banner, serves until
/// a signal.
pub async fn serve(args: ServeArgs, role: Role) -> Result<(), AppError> {
    let config = args.config()?;
    let services = build(&config, role).await?;
    let (listener, addr) = crate::http::server::bind(config.http).await?;
    let osmand = match config.ingest.osmand_listen {
        Some(at) => Some(crate::http::server::bind(at).await?),
        None => None,
    };
    let what = match role {
        Role::Run => "all-in-one: ingest, pipeline, live views, SQL, dashboard",
        Role::Ingest => "ingest",
    };
    println!("fleetflow {} — {what}", env!("CARGO_PKG_VERSION"));
    match &services.embedded_broker {
        Some(EmbeddedBroker::Durable(_)) => println!(
            "embedded Kafka broker at {brokers} — durable: its log is in {dir} (kept across restarts and kill -9; \
             records older than {retention} deleted); read it with `fleetflow tail --brokers {brokers}` \
             or `kcat -C -b {brokers} -t {topic}`",
            brokers = services.brokers,
            dir = config.data_dir.join("broker").display(),
            retention = match config.kafka.retention_hours {
                0 => "never".to_owned(),
                h => format!("{h} h"),
            },
            topic = config.kafka.topic
        ),
        Some(EmbeddedBroker::Memory(_)) => println!(
            "embedded Kafka broker at {brokers} — IN MEMORY (--broker memory): its records are lost when fleetflow stops; \
             read it with `fleetflow tail --brokers {brokers}` or `kcat -C -b {brokers} -t {topic}`",
            brokers = services.brokers,
            topic = config.kafka.topic
        ),
        None => println!(
            "Kafka at {} (topic {})",
            services.brokers, config.kafka.topic
        ),
    }
    if services.pipeline.is_some() {
        println!(
            "pipeline: {} workers, trips and history as Parquet in {}",
            config.pipeline.workers.max(1),
            config.data_dir.display()
        );
    }
    if services.admin_token_generated {
        println!("admin token: {}", services.admin_token);
    }
    crate::commands::query::print_postgres(services.postgres);
    if config.ingest.auth == fleetflow_ingest::AuthMode::Off {
        println!(
            "ingest authentication is off (Monicar-compatible): unknown vehicles {}",
            match config.ingest.unknown_vehicle {
                fleetflow_ingest::UnknownVehiclePolicy::Register =>
                    format!("join company {:?}", config.ingest.default_company),
                fleetflow_ingest::UnknownVehiclePolicy::Reject => "are rejected (1012)".to_owned(),
            }
        );
    }
    if role == Role::Run {
        println!(
            "dashboard at http://{addr}/  (sign in with the admin token or a company's token)"
        );
    }
    // Before "listening on": scripts and tests read the banner up to that line.
    let osmand = osmand.map(|(listener, at)| {
        println!(
            "OsmAnd on http://{at}  (any path, GET or POST, query/form or JSON: point Traccar Client or OsmAnd here)"
        );
        listener
    });
    println!(
        "listening on http://{addr}  (Monicar /api/v1/event-hub/{{key-on,key-off,cycle-info}}, native {}, OsmAnd {}, /metrics, /status{})",
        fleetflow_ingest::NATIVE_PATH,
        fleetflow_ingest::OSMAND_PATH,
        if services.pipeline.is_some() {
            ", live views /v1/live/*, SQL /v1/sql, /v1/history/*"
        } else {
            ""
        },
    );
    tracing::info!(%addr, brokers = %services.brokers, role = ?role, "serving");
    services.serve(listener, osmand, shutdown_signal()).await
}
