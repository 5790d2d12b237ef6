//! The `fleetflow` command line: flags, and what each subcommand runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, EmbeddedKind};
use crate::durable_broker::{BrokerStorage, DurableBroker};
use crate::emulate::{EmulateArgs, emulate};
use crate::error::AppError;
use crate::pipeline_run::{PipelineArgs, serve_pipeline};
use crate::serve::{EmbeddedBroker, Role, build, shutdown_signal};
use crate::tail::{TailOptions, tail};

#[derive(Debug, Parser)]
#[command(
    name = "fleetflow",
    version,
    about = "Fleet telemetry: HTTP -> Kafka -> trips, live views, Parquet, SQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process: ingest, pipeline, live views, SQL and the dashboard on one
    /// HTTP listener. Without --brokers it embeds a durable Kafka-protocol broker (Tansu, its
    /// log under <data-dir>/broker/).
    Run(ServeArgs),
    /// The ingest service alone, producing to the Kafka cluster at --brokers.
    Ingest(ServeArgs),
    /// The dataflow job alone: Kafka at --brokers to trips and Parquet in --data-dir. One
    /// process of a timely cluster with --cluster.
    Pipeline(PipelineArgs),
    /// SQL (`/v1/sql`) and the history routes (`/v1/history/*`) alone, over --data-dir; the
    /// live tables need a pipeline in the same process (`run` or `pipeline`).
    Query(ServeArgs),
    /// Monicar-style emulated vehicles posting to a fleetflow (or Monicar) endpoint.
    Emulate(EmulateArgs),
    /// Print the telemetry topic's records, decoded, one JSON line each.
    Tail(TailArgs),
    /// A standalone Kafka-protocol broker (the Tansu `fleetflow run` embeds), for a separate
    /// `ingest` + `pipeline` deployment on one machine, tests and benchmarks.
    Broker(BrokerArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// Listen (and advertised) address.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// Keep the log in this directory (`tansu.db`, `cluster_id`), as `fleetflow run` does.
    #[arg(long, conflicts_with = "storage")]
    pub dir: Option<PathBuf>,
    /// A Tansu storage URL instead: `memory://tansu/` (nothing kept) or
    /// `sqlite:///ABSOLUTE/PATH/tansu.db`.
    #[arg(long)]
    pub storage: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Config file (TOML); FLEETFLOW_* environment variables override it, flags override both.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// HTTP listen address.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Kafka bootstrap servers (host:port,...). `run` without it embeds a broker.
    #[arg(long)]
    pub brokers: Option<String>,
    /// The admin token (every company's data, the registry, `/metrics` and the full `/status`).
    /// Default: FLEETFLOW_ADMIN_TOKEN, else random (printed).
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Postgres wire listen address, or `off` (`run`, `pipeline`, `query`; default
    /// `query.postgres`, 127.0.0.1:5433).
    #[arg(long)]
    pub postgres: Option<String>,
    /// The broker `run` embeds without --brokers: `durable` (default; its log under
    /// <data-dir>/broker/) or `memory` (lost when fleetflow stops; tests and demos).
    #[arg(long, value_enum)]
    pub broker: Option<EmbeddedKind>,
    /// Start even when the broker does not hold the log the data dir's commit log was read
    /// from (replaced or lost broker, records deleted unread): re-base the offsets on what the
    /// broker holds, loudly. Without it the pipeline refuses to start and says why.
    #[arg(long)]
    pub rebaseline: bool,
}

impl ServeArgs {
    /// The config file and environment, with these flags on top.
    pub fn config(&self) -> Result<Config, AppError> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(http) = self.http {
            config.http = http;
        }
        if let Some(data_dir) = &self.data_dir {
            config.data_dir.clone_from(data_dir);
        }
        if let Some(brokers) = &self.brokers {
            config.kafka.brokers = Some(brokers.clone());
        }
        if let Some(token) = &self.admin_token {
            config.admin_token = Some(token.clone());
        }
        if let Some(postgres) = &self.postgres {
            config.query.postgres.clone_from(postgres);
        }
        if let Some(broker) = self.broker {
            config.kafka.embedded = broker;
        }
        config.rebaseline = self.rebaseline;
        Ok(config)
    }
}

#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Kafka bootstrap servers (the address `fleetflow run` printed for its embedded broker).
    #[arg(long)]
    pub brokers: String,
    #[arg(long, default_value = "fleetflow.telemetry")]
    pub topic: String,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds without a record.
    #[arg(long)]
    pub idle_exit: Option<u64>,
    /// Print every item of every record.
    #[arg(long)]
    pub items: bool,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), AppError> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(AppError::io("tokio runtime"))?;
    match cli.command {
        Command::Run(args) => runtime.block_on(serve(args, Role::Run)),
        Command::Ingest(args) => runtime.block_on(serve(args, Role::Ingest)),
        Command::Pipeline(args) => runtime.block_on(serve_pipeline(args)),
        Command::Query(args) => runtime.block_on(crate::query_run::serve_query(args)),
        Command::Emulate(args) => runtime.block_on(emulate(args)),
        Command::Broker(args) => runtime.block_on(broker(args)),
        Command::Tail(args) => {
            let options = TailOptions {
                brokers: args.brokers,
                topic: args.topic,
                count: args.count,
                idle_exit: args.idle_exit.map(Duration::from_secs),
                items: args.items,
            };
            tail(&options, &mut std::io::stdout().lock()).map(|_| ())
        }
    }
}

async fn serve(args: ServeArgs, role: Role) -> Result<(), AppError> {
    let config = args.config()?;
    let services = build(&config, role).await?;
    let (listener, addr) = crate::serve::bind(config.http).await?;
    let osmand = match config.ingest.osmand_listen {
        Some(at) => Some(crate::serve::bind(at).await?),
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
    crate::query_run::print_postgres(services.postgres);
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

async fn broker(args: BrokerArgs) -> Result<(), AppError> {
    let storage = match (args.dir, args.storage) {
        (Some(dir), _) => BrokerStorage::Dir(dir),
        (None, Some(url)) => BrokerStorage::Url(url),
        (None, None) => BrokerStorage::Dir(PathBuf::from("fleetflow-broker")),
    };
    let broker = DurableBroker::start(storage, args.listen).await?;
    println!(
        "broker listening on {} (cluster {}, storage {})",
        broker.bootstrap_servers(),
        broker.cluster_id(),
        broker.storage()
    );
    tokio::select! {
        result = broker.wait() => result,
        () = shutdown_signal() => Ok(()),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| {
            // Tansu's own info logs are per connection and per request: warnings only.
            tracing_subscriber::EnvFilter::new(
                "info,rdkafka=warn,tansu_broker=warn,tansu_storage=warn,tansu_sans_io=warn,tansu_service=warn,tansu_schema=warn,tansu_auth=warn",
            )
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
