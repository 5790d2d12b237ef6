//! A Kafka record as the dataflow carries it before decoding: the bytes and where they came from.

use serde::{Deserialize, Serialize};

use crate::source::stable_hash::fnv1a;

/// One Kafka message: key (the vehicle), payload (the v1 record encoding), partition, offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

impl RawRecord {
    /// Which worker sessionizes it: by vehicle, so one vehicle's items meet in one place.
    pub fn route(&self) -> u64 {
        match self.key.as_deref() {
            Some(key) if !key.is_empty() => fnv1a(key),
            _ => self.partition as u64,
        }
    }
}
