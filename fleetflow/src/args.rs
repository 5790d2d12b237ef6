//! The flags `run`, `ingest`, `pipeline` and `query` share, and the config they make.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::config::{Config, EmbeddedKind};
use crate::error::AppError;

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
