//! fleetflow's one typed configuration: built-in defaults, then a TOML file (`--config`), then
//! `FLEETFLOW_*` environment variables (`__` separates sections: `FLEETFLOW_KAFKA__BROKERS`),
//! then command-line flags. Unknown keys are errors everywhere, so a typo is never ignored.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use fleetflow_ingest::IngestConfig;
use fleetflow_model::CompanyConfig;
use fleetflow_pipeline::PipelineConfig;
use fleetflow_query::SqlConfig;
use fleetflow_webhooks::WebhookConfig;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::http::dashboard::DashboardConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The one HTTP listener (ingest, and later live views, SQL and the dashboard).
    pub http: SocketAddr,
    /// Where fleetflow keeps its files: the vehicle registry journal and the Parquet history
    /// (`<data-dir>/<table>/date=YYYY-MM-DD/`, commit log in `<data-dir>/_fleetflow/`).
    pub data_dir: PathBuf,
    /// The token that sees every company; a random one is made and printed when unset.
    pub admin_token: Option<String>,
    pub kafka: KafkaConfig,
    pub ingest: IngestConfig,
    /// The dataflow job: workers, flush interval, correction horizon, default trip rules.
    pub pipeline: PipelineConfig,
    /// SQL and the history REST routes: row limit, timeout, memory.
    pub query: SqlConfig,
    /// The web dashboard at `/`: an optional tile server.
    pub dashboard: DashboardConfig,
    /// Webhook delivery: retries, timeouts, concurrency.
    pub webhooks: WebhookConfig,
    /// Companies (tenants) and their tokens.
    pub companies: Vec<CompanyConfig>,
    /// Vehicle id -> company id.
    pub vehicles: BTreeMap<String, String>,
    /// Start the pipeline even when the broker does not hold the log the commit log was read
    /// from, re-basing the offsets (`--rebaseline`). A flag only, never a file or environment
    /// key, so it cannot stay on by accident.
    #[serde(skip)]
    pub rebaseline: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("fleetflow-data"),
            admin_token: None,
            kafka: KafkaConfig::default(),
            ingest: IngestConfig::default(),
            pipeline: PipelineConfig::default(),
            query: SqlConfig::default(),
            dashboard: DashboardConfig::default(),
            webhooks: WebhookConfig::default(),
            companies: Vec::new(),
            vehicles: BTreeMap::new(),
            rebaseline: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers (`host:port,...`). Unset: `fleetflow run` starts its embedded broker
    /// (`embedded`); the other subcommands refuse to start.
    pub brokers: Option<String>,
    /// The broker `fleetflow run` embeds when `brokers` is unset: `durable` (Tansu, its log in
    /// SQLite under `<data-dir>/broker/`, kept across kill -9 and restart) or `memory`
    /// (librdkafka's mock cluster: records lost when the process stops; tests and demos).
    pub embedded: EmbeddedKind,
    /// Where the embedded broker listens; port 0 picks a free one (printed at start-up).
    pub embedded_listen: SocketAddr,
    /// Retention when fleetflow creates the topic, hours (0: keep every record): records
    /// older than this are deleted by the broker, which bounds its disk. The pipeline replays
    /// each vehicle's last hour on restart, so a vehicle silent for longer than this drops out
    /// of the live views after a restart (its history stays in Parquet).
    pub retention_hours: u64,
    /// The telemetry topic (records per `model/schema/telemetry-record-v1.md`).
    pub topic: String,
    /// Partitions when fleetflow creates the topic (the unit of pipeline parallelism). Unset:
    /// 12 on a Kafka cluster; on the embedded broker, one per pipeline worker (its one pipeline
    /// reads them all, and the durable broker commits each partition of a produce as its own
    /// SQLite transaction, one after another: 12 partitions cost ack latency for nothing).
    pub partitions: Option<i32>,
    /// Replication factor when fleetflow creates the topic (3 on a production cluster).
    pub replication: i32,
    /// Producer: how long to wait for more records before sending a batch (ms). 25 ms, not
    /// librdkafka's 5: a request is acknowledged up to 20 ms later (devices post once a minute),
    /// and batches up to five times larger cost the broker about a quarter less CPU per point
    /// (`benches/RESULTS.md`, session 20).
    pub linger_ms: u32,
    /// Producer: compression codec for record batches (`none`, `gzip`, `lz4`, `zstd`, `snappy`).
    /// Unset: `none` on the durable embedded broker, `lz4` elsewhere. The durable broker shares
    /// the machine and unpacks every batch into SQLite rows on produce, then packs the rows
    /// again on fetch, so a codec costs CPU at four places (producer, broker twice, consumer)
    /// for bytes that only cross loopback; its disk use is the same either way. On the
    /// in-memory broker `lz4` keeps the held log smaller; on a cluster it saves network.
    pub compression: Option<String>,
    /// Producer: give up on a record (answer 503) after this long without a delivery report (ms).
    pub message_timeout_ms: u32,
    /// Producer: most records waiting locally before `QueueFull` (answered 503).
    pub queue_max_messages: u32,
    /// Producer: most kilobytes waiting locally before `QueueFull`.
    pub queue_max_kbytes: u32,
    /// How long shutdown waits for in-flight records (ms).
    pub flush_timeout_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: None,
            embedded: EmbeddedKind::Durable,
            embedded_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            retention_hours: 7 * 24,
            topic: "fleetflow.telemetry".to_owned(),
            partitions: None,
            replication: 1,
            linger_ms: 25,
            compression: None,
            message_timeout_ms: 30_000,
            queue_max_messages: 200_000,
            queue_max_kbytes: 512 * 1024,
            flush_timeout_ms: 15_000,
        }
    }
}

impl KafkaConfig {
    /// Partitions to create the topic with: `partitions`, else 12 on a cluster and `workers` on
    /// the embedded broker.
    pub fn topic_partitions(&self, embedded: bool, workers: usize) -> i32 {
        self.partitions.unwrap_or(if embedded {
            i32::try_from(workers.max(1)).unwrap_or(i32::MAX)
        } else {
            12
        })
    }

    /// The producer's codec: `compression`, else `none` on the durable embedded broker and
    /// `lz4` on the in-memory one and on a cluster (`embedded` is `None` there).
    pub fn producer_compression(&self, embedded: Option<EmbeddedKind>) -> &str {
        match (&self.compression, embedded) {
            (Some(codec), _) => codec,
            (None, Some(EmbeddedKind::Durable)) => "none",
            (None, Some(EmbeddedKind::Memory) | None) => "lz4",
        }
    }
}

/// Which broker `fleetflow run` embeds (`kafka.embedded`, `--broker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddedKind {
    /// Tansu in process, its log in SQLite under the data dir: a 200 survives kill -9.
    Durable,
    /// librdkafka's in-memory mock cluster: records lost when fleetflow stops.
    Memory,
}

impl Config {
    /// The layered sources: defaults, then `file`, then `FLEETFLOW_*` environment variables.
    pub fn figment(file: Option<&Path>) -> Result<Figment, AppError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(AppError::Config(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        Ok(figment.merge(Env::prefixed("FLEETFLOW_").split("__")))
    }

    /// Defaults, then `file`, then `FLEETFLOW_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, AppError> {
        Config::extract(Config::figment(file)?)
    }

    pub fn extract(figment: Figment) -> Result<Config, AppError> {
        figment
            .extract()
            .map_err(|error| AppError::Config(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> Result<Config, AppError> {
        Config::extract(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)),
        )
    }

    #[test]
    fn file_overrides_defaults_and_keeps_the_rest() {
        let config = from_toml(
            r#"
            http = "0.0.0.0:9000"
            [kafka]
            brokers = "127.0.0.1:9092"
            [ingest]
            auth = "token"
            unknown_vehicle = "reject"
            [[companies]]
            id = "acme"
            tokens = ["t1"]
            [vehicles]
            "2254690422" = "acme"
            "#,
        )
        .expect("valid config");
        assert_eq!(config.http.port(), 9000);
        assert_eq!(config.kafka.brokers.as_deref(), Some("127.0.0.1:9092"));
        assert_eq!(config.kafka.topic, KafkaConfig::default().topic);
        assert_eq!(config.ingest.auth, fleetflow_ingest::AuthMode::Token);
        assert_eq!(config.companies[0].tokens, vec!["t1".to_owned()]);
        assert_eq!(config.vehicles["2254690422"], "acme");
    }

    #[test]
    fn compression_follows_the_broker_unless_set() {
        let mut kafka = KafkaConfig::default();
        assert_eq!(
            kafka.producer_compression(Some(EmbeddedKind::Durable)),
            "none"
        );
        assert_eq!(
            kafka.producer_compression(Some(EmbeddedKind::Memory)),
            "lz4"
        );
        assert_eq!(kafka.producer_compression(None), "lz4");
        kafka.compression = Some("zstd".to_owned());
        for embedded in [
            Some(EmbeddedKind::Durable),
            Some(EmbeddedKind::Memory),
            None,
        ] {
            assert_eq!(kafka.producer_compression(embedded), "zstd");
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        for text in [
            "htp = \"x\"",
            "[kafka]\nbrokerz = \"x\"",
            "[ingest]\nauth = \"maybe\"",
        ] {
            assert!(from_toml(text).is_err(), "{text} was accepted");
        }
    }
}
