//! Kafka clients as fleetflow configures them, the embedded broker, and topic creation.
//! Every librdkafka setting fleetflow sets is here, with the reason.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::{EmbeddedKind, KafkaConfig};
use crate::error::AppError;

/// The ingest producer: a record is acknowledged to the device only after Kafka has it on every
/// in-sync replica, exactly once per producer session, in order per partition. `embedded`: the
/// broker `fleetflow run` embeds, if that is where `brokers` points.
pub fn producer_config(
    kafka: &KafkaConfig,
    brokers: &str,
    embedded: Option<EmbeddedKind>,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "fleetflow-ingest")
        // No duplicates from internal retries, and order kept per partition (implies
        // max.in.flight <= 5 and retries > 0; librdkafka enforces the combination).
        .set("enable.idempotence", "true")
        // Acknowledged = written to all in-sync replicas; ingest answers 200 only after this.
        .set("acks", "all")
        // Java's key hash, so other producers keying by vehicle pick the same partition.
        .set("partitioner", "murmur2_random")
        // Wait this long for a fuller batch: trades up to `linger_ms` of ack latency for
        // throughput (fewer, larger requests for the broker).
        .set("linger.ms", kafka.linger_ms.to_string())
        // lz4 for a cluster; none for the durable embedded broker (`KafkaConfig::compression`).
        .set("compression.type", kafka.producer_compression(embedded))
        // Undelivered after this long => the delivery report fails => 503, client retries.
        .set("message.timeout.ms", kafka.message_timeout_ms.to_string())
        // Local queue bounds: past them send_result fails with QueueFull => 503 + Retry-After.
        .set(
            "queue.buffering.max.messages",
            kafka.queue_max_messages.to_string(),
        )
        .set(
            "queue.buffering.max.kbytes",
            kafka.queue_max_kbytes.to_string(),
        );
    config
}

/// A plain reader of the telemetry topic (the `tail` subcommand, tests). Offsets are not
/// committed: such readers never disturb a consumer group the pipeline owns.
pub fn reader_config(brokers: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "fleetflow-reader")
        .set("group.id", group)
        // Read what is there, from the beginning, when the group has no committed offset.
        .set("auto.offset.reset", "earliest")
        // Read-only: never commit.
        .set("enable.auto.commit", "false")
        // Only records of committed transactions (none today; correct when producers add them).
        .set("isolation.level", "read_committed");
    config
}

/// librdkafka's in-process mock cluster (`--broker memory`): a real Kafka-protocol broker on a
/// loopback port, so any Kafka client (kcat, another fleetflow) can attach. It keeps data in
/// memory only: records are lost when the process exits. The default embedded broker is the
/// durable one (`crate::kafka::durable_broker`).
pub struct MemoryBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBroker")
            .field("bootstrap", &self.bootstrap_servers())
            .finish()
    }
}

impl MemoryBroker {
    /// One broker with `topic` created with `partitions` partitions.
    pub fn start(topic: &str, partitions: i32) -> Result<MemoryBroker, AppError> {
        let cluster =
            MockCluster::new(1).map_err(|e| AppError::Kafka(format!("embedded broker: {e}")))?;
        cluster
            .create_topic(topic, partitions, 1)
            .map_err(|e| AppError::Kafka(format!("embedded broker topic: {e}")))?;
        Ok(MemoryBroker { cluster })
    }

    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}

/// The pipeline's consumer. Partitions are assigned by the pipeline itself and offsets live in
/// the Parquet commit log, so no consumer-group machinery is used.
pub fn pipeline_consumer_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "fleetflow-pipeline")
        // librdkafka wants a group id on every consumer; with manual assignment and no commits
        // the group is never joined.
        .set("group.id", "fleetflow-pipeline")
        // Offsets are committed with the Parquet files, never to Kafka.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // Only used when an assigned offset no longer exists (retention deleted it): start at
        // the oldest record still there rather than stall.
        .set("auto.offset.reset", "earliest")
        // Ingest's producer is idempotent, not transactional; read_committed costs nothing and
        // keeps aborted records out if a transactional producer ever writes here.
        .set("isolation.level", "read_committed")
        // Wait at most 50 ms for a fetch to fill: one dataflow epoch (`pipeline.tick_ms` default).
        .set("fetch.wait.max.ms", "50")
        // A partition may fill a whole fetch (the fetch's own bound, below, is the smaller).
        .set("max.partition.fetch.bytes", "8388608")
        // Prefetch at most 1 MiB ahead of the source (librdkafka's default is 64 MiB, for the
        // consumer's whole queue). librdkafka sizes a fetch by it too (`fetch.max.bytes`
        // follows it unless set), and that is what bounds its memory: the queue's bound is
        // checked before a fetch, then the whole answer, up to `fetch.max.bytes` compressed, is
        // decompressed into the queue (each lz4 batch into a buffer of 4x its size). At
        // 16 MiB (5 MiB answers from Tansu) two consumers held ~0.3 GB of decompressed record
        // sets in a paused catch-up; at 1 MiB a 94M-point catch-up peaked at 1.6 GB instead of
        // 2.1 and ran faster (`benches/RESULTS.md`, session 35). Even from a broker that waits
        // out `fetch.wait.max.ms` before every answer (Tansu), 1 MiB a fetch reads ~1.7M
        // points/s.
        .set("queued.max.messages.kbytes", "1024")
        // No EOF events: "caught up" is judged from the high watermark.
        .set("enable.partition.eof", "false");
    config
}

/// Creates `topic` unless it exists, after checking the cluster answers at all.
/// `partitions` is used only if the topic is new ([`KafkaConfig::topic_partitions`]).
pub async fn ensure_topic(
    brokers: &str,
    kafka: &KafkaConfig,
    partitions: i32,
) -> Result<(), AppError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        AppError::Kafka(format!("cannot reach Kafka at {brokers}: {e}"))
    };
    let probe: BaseConsumer = reader_config(brokers, "fleetflow-probe")
        .create()
        .map_err(|e| unreachable(&e))?;
    let brokers_owned = brokers.to_owned();
    tokio::task::spawn_blocking(move || {
        probe
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|_| ())
            .map_err(|e| AppError::Kafka(format!("cannot reach Kafka at {brokers_owned}: {e}")))
    })
    .await
    .map_err(|e| AppError::Kafka(e.to_string()))??;

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| unreachable(&e))?;
    let retention_ms = kafka.retention_hours.saturating_mul(3_600_000).to_string();
    let topic = NewTopic::new(
        &kafka.topic,
        partitions,
        TopicReplication::Fixed(kafka.replication),
    );
    let topic = if kafka.retention_hours > 0 {
        // Delete records older than the retention: what bounds the broker's disk.
        topic
            .set("cleanup.policy", "delete")
            .set("retention.ms", &retention_ms)
    } else {
        // Keep everything (Kafka: no time limit; Tansu deletes only under a delete policy).
        topic.set("retention.ms", "-1")
    };
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&[topic], &options)
        .await
        .map_err(|e| AppError::Kafka(format!("create topic {}: {e}", kafka.topic)))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(AppError::Kafka(format!("create topic {topic}: {code}")));
            }
        }
    }
    Ok(())
}
