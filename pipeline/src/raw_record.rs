//! A Kafka record as the dataflow carries it before decoding: the bytes and where they came from.

use serde::{Deserialize, Serialize};

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
        // FNV-1a: stable across processes and runs (cluster workers must agree).
        let bytes = self.key.as_deref().unwrap_or(&[]);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        if bytes.is_empty() {
            self.partition as u64
        } else {
            h
        }
    }
}
