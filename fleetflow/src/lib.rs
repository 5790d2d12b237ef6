//! The `fleetflow` program as a library. `main.rs` only parses flags and calls [`cli::run`].
//!
//! - [`cli`]: the command line and which subcommand runs; [`args`]: the flags the services
//!   share; [`config`]: the one typed config (defaults, file, `FLEETFLOW_*`); [`error`];
//! - [`commands`]: one module per subcommand (`run`/`ingest`, `pipeline`, `query`, `broker`,
//!   `emulate`, `tail`);
//! - [`kafka`]: the Kafka clients as fleetflow configures them, and the embedded brokers;
//! - [`http`]: the HTTP server every subcommand serves on, `/metrics` and `/status`, the
//!   dashboard's files.
//!
//! Imports run one way, never back: `cli` uses `commands` and `args`; `commands` use `args`,
//! `kafka`, `http` and `config`; `args` and `kafka` use `config`; `config` takes its dashboard
//! section from `http::dashboard`; everything uses `error`. Within `commands`, `run` uses
//! `pipeline` and `query`, and `pipeline` uses `query`.

pub mod args;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod http;
pub mod kafka;

pub use config::{Config, KafkaConfig};
pub use error::AppError;
