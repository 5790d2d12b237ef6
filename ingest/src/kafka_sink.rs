//! The production sink: an idempotent rdkafka `FutureProducer`.
//!
//! Kafka errors are policy, decided here once:
//! - `QueueFull` at enqueue time is backpressure: the request is answered 503 + `Retry-After`.
//! - `MessageSizeTooLarge` / `InvalidRecord` are final for that request: 413.
//! - Authorization and configuration errors are fatal: 500, logged, detail hidden.
//! - Anything else (timeouts, brokers down, purged at shutdown) is retryable: 503.
//!
//! A request is answered only after every record's delivery report. If one record of a
//! multi-vehicle request fails after others were delivered, the client is told to retry the
//! whole request; items are idempotent on (vehicle, kind, time), so the retry doubles nothing.

use std::time::Duration;

use futures::future::BoxFuture;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::sink::{OutRecord, RecordSink, SinkError};

pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    flush_timeout: Duration,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// `producer` must be configured as `fleetflow::kafka::clients::producer_config` does (idempotent,
    /// `acks=all`); `flush_timeout` bounds the wait at shutdown.
    pub fn new(producer: FutureProducer, topic: String, flush_timeout: Duration) -> KafkaSink {
        KafkaSink {
            producer,
            topic,
            flush_timeout,
        }
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }
}

impl RecordSink for KafkaSink {
    fn send(&self, records: Vec<OutRecord>) -> BoxFuture<'static, Result<(), SinkError>> {
        let mut deliveries = Vec::with_capacity(records.len());
        for record in &records {
            let future_record = FutureRecord::to(&self.topic)
                .key(record.key.as_str())
                .payload(record.value.as_slice());
            match self.producer.send_result(future_record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((error, _)) => {
                    // Records already enqueued stay in flight; the client's retry is idempotent.
                    let error = classify(&error, &record.key);
                    return Box::pin(async move { Err(error) });
                }
            }
        }
        let keys: Vec<String> = records.into_iter().map(|r| r.key).collect();
        Box::pin(async move {
            for (delivery, key) in deliveries.into_iter().zip(keys) {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((error, _))) => return Err(classify(&error, &key)),
                    Err(_canceled) => {
                        return Err(SinkError::NotDelivered("producer shut down".to_owned()));
                    }
                }
            }
            Ok(())
        })
    }

    fn in_flight(&self) -> usize {
        usize::try_from(self.producer.in_flight_count()).unwrap_or(0)
    }

    fn flush(&self) -> Result<(), SinkError> {
        self.producer
            .flush(self.flush_timeout)
            .map_err(|error| classify(&error, ""))
    }
}

/// The policy: which Kafka errors are backpressure, final, fatal or retryable.
pub fn classify(error: &KafkaError, key: &str) -> SinkError {
    use RDKafkaErrorCode as C;
    match error.rdkafka_error_code() {
        Some(C::QueueFull) => SinkError::QueueFull,
        Some(C::MessageSizeTooLarge | C::InvalidMessageSize | C::InvalidRecord) => {
            SinkError::TooLarge {
                key: key.to_owned(),
            }
        }
        Some(
            C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::UnknownTopic
            | C::InvalidConfig
            | C::Fatal,
        ) => SinkError::Fatal(error.to_string()),
        _ => SinkError::NotDelivered(error.to_string()),
    }
}
