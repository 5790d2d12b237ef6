//! The `fleetflow` program as a library: configuration, Kafka wiring, the embedded broker, the
//! HTTP services and the subcommands. `main.rs` only parses flags and calls [`cli::run`].

pub mod cli;
pub mod config;
pub mod dashboard;
pub mod durable_broker;
mod emulate;
pub mod error;
pub mod http_server;
pub mod kafka;
pub mod ops;
pub mod pipeline_run;
pub mod query_run;
pub mod serve;
pub mod tail;

pub use config::{Config, KafkaConfig};
pub use error::AppError;
