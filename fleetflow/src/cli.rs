//! The `fleetflow` command line: flags, and what each subcommand runs.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::args::ServeArgs;
use crate::commands::broker::{BrokerArgs, broker};
use crate::commands::emulate::{EmulateArgs, emulate};
use crate::commands::pipeline::{PipelineArgs, serve_pipeline};
use crate::commands::run::{Role, serve};
use crate::commands::tail::{TailOptions, tail};
use crate::commands::webhook_test::{WebhookTestArgs, webhook_test};
use crate::error::AppError;

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
    /// A tiny webhook receiver that prints each delivery as a JSON line, to try webhooks out.
    WebhookTest(WebhookTestArgs),
    /// A standalone Kafka-protocol broker (the Tansu `fleetflow run` embeds), for a separate
    /// `ingest` + `pipeline` deployment on one machine, tests and benchmarks.
    Broker(BrokerArgs),
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
        Command::Query(args) => runtime.block_on(crate::commands::query::serve_query(args)),
        Command::Emulate(args) => runtime.block_on(emulate(args)),
        Command::Broker(args) => runtime.block_on(broker(args)),
        Command::WebhookTest(args) => runtime.block_on(webhook_test(args)),
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
