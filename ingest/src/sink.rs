//! Where accepted records go. [`crate::KafkaSink`] in production; [`MemorySink`] for tests and
//! for benchmarking ingest without a broker.

use std::sync::Mutex;

use futures::future::BoxFuture;

/// One Kafka record: key = vehicle id, value = an encoded [`fleetflow_model::TelemetryRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub key: String,
    pub value: Vec<u8>,
}

/// Why a sink did not take a request's records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The producer's local queue is full: back off and retry.
    #[error("producer queue is full")]
    QueueFull,
    /// The broker refuses a record this large: retrying cannot help.
    #[error("record for {key} is too large")]
    TooLarge { key: String },
    /// Delivery was not confirmed (timeout, broker down, ...): retrying may help.
    #[error("delivery not confirmed: {0}")]
    NotDelivered(String),
    /// Configuration or authorization problems: retrying cannot help until an operator acts.
    #[error("sink failed: {0}")]
    Fatal(String),
}

/// Takes all of one request's records and resolves once every one of them is durably stored
/// (or one failed). Enqueueing happens when `send` is called, in order, so per-vehicle order
/// follows request order.
pub trait RecordSink: Send + Sync + 'static {
    fn send(&self, records: Vec<OutRecord>) -> BoxFuture<'static, Result<(), SinkError>>;

    /// Records handed over but not yet confirmed (for `/status`).
    fn in_flight(&self) -> usize {
        0
    }

    /// Waits (bounded) until in-flight records are confirmed; used at shutdown.
    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Keeps records in memory; every send succeeds.
#[derive(Debug, Default)]
pub struct MemorySink {
    records: Mutex<Vec<OutRecord>>,
}

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// Everything sent so far.
    pub fn records(&self) -> Vec<OutRecord> {
        self.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops what was sent (benchmarks call this so memory stays flat).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<OutRecord>> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl RecordSink for MemorySink {
    fn send(&self, records: Vec<OutRecord>) -> BoxFuture<'static, Result<(), SinkError>> {
        self.lock().extend(records);
        Box::pin(async { Ok(()) })
    }
}

/// Discards records; every send succeeds. For measuring ingest alone.
#[derive(Debug, Default)]
pub struct NullSink;

impl RecordSink for NullSink {
    fn send(&self, _records: Vec<OutRecord>) -> BoxFuture<'static, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
}
