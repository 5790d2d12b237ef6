//! Kafka errors are policy: checked against a real librdkafka producer, not a stand-in.

use std::sync::Arc;
use std::time::Duration;

use fleetflow::KafkaConfig;
use fleetflow::kafka::clients::producer_config;
use fleetflow_ingest::{KafkaSink, OutRecord, RecordSink, SinkError};
use rdkafka::producer::FutureProducer;

fn record() -> OutRecord {
    OutRecord {
        key: "v1".to_owned(),
        value: vec![1, 2, 3],
    }
}

/// A producer whose local queue holds one record, pointed at a port where no broker listens.
fn stuck_sink() -> Arc<KafkaSink> {
    let kafka = KafkaConfig {
        queue_max_messages: 1,
        message_timeout_ms: 1_500,
        ..KafkaConfig::default()
    };
    let producer: FutureProducer = producer_config(&kafka, "127.0.0.1:9", None)
        .create()
        .expect("producer");
    Arc::new(KafkaSink::new(
        producer,
        "t".to_owned(),
        Duration::from_millis(100),
    ))
}

#[tokio::test]
async fn a_full_queue_is_backpressure_and_a_timeout_is_retryable() {
    let sink = stuck_sink();
    let first = sink.send(vec![record()]);
    assert!(
        sink.in_flight() >= 1,
        "librdkafka counts the record (and its own requests)"
    );
    let second = sink.send(vec![record()]).await;
    assert_eq!(second, Err(SinkError::QueueFull));
    let first = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .expect("the delivery report arrives once message.timeout.ms passes");
    assert!(
        matches!(first, Err(SinkError::NotDelivered(_))),
        "a timed-out record is retryable, got {first:?}"
    );
}

#[tokio::test]
async fn a_multi_record_request_stops_at_the_first_record_that_does_not_fit() {
    let sink = stuck_sink();
    let outcome = sink.send(vec![record(), record(), record()]).await;
    assert_eq!(outcome, Err(SinkError::QueueFull));
}
