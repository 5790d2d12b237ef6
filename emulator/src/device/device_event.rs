//! One request a vehicle wants sent: which event-hub endpoint, when (simulated time), the body, and
//! the per-request header values.

use bytes::Bytes;

use crate::world::seed_mix::mix_all;

/// The three Monicar event-hub endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    KeyOn,
    KeyOff,
    CycleInfo,
}

impl Endpoint {
    /// All endpoints, in a fixed order.
    pub const ALL: [Endpoint; 3] = [Endpoint::KeyOn, Endpoint::KeyOff, Endpoint::CycleInfo];

    /// The request path, appended to the target base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::KeyOn => "/api/v1/event-hub/key-on",
            Endpoint::KeyOff => "/api/v1/event-hub/key-off",
            Endpoint::CycleInfo => "/api/v1/event-hub/cycle-info",
        }
    }
}

/// A request a vehicle sends once the simulated clock reaches `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    /// Simulated send time, ms since the epoch (also the `Timestamp` header).
    pub at_ms: i64,
    pub endpoint: Endpoint,
    /// The JSON body (cheap to clone for retries).
    pub body: Bytes,
    /// GPS points carried (60 for cycle-info, 0 for key-on/key-off).
    pub points: u32,
    /// The vehicle's request counter, starting at 0.
    pub seq: u64,
    /// The `TUID` header: a deterministic UUID-shaped hex string.
    pub tuid: String,
}

/// A UUID-v4-shaped string derived from the run seed, vehicle index and request sequence number.
pub fn tuid(seed: u64, index: usize, seq: u64) -> String {
    let hi = mix_all(seed, &[index as u64, seq, 0x7475_6964]);
    let lo = mix_all(seed, &[index as u64, seq, 0x6c6f_7721]);
    let hi = (hi & !0xF000) | 0x4000; // version 4
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuid_looks_like_a_uuid() {
        let t = tuid(1, 2, 3);
        assert_eq!(t, tuid(1, 2, 3));
        assert_ne!(t, tuid(1, 2, 4));
        let parts: Vec<usize> = t.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
        assert!(t.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(t.as_bytes()[14], b'4');
    }
}
