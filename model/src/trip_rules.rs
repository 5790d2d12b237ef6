//! How trips are cut and which events are worth emitting: the rules of `shared/domain.md`,
//! configurable per company (`[companies.trips]`) with the industry defaults as fallback.
//!
//! The pipeline applies them; the config file, the README and the tests name them the same way.

use serde::{Deserialize, Serialize};

/// The trip and event rules for one company. Every field has the documented default, so a
/// company block names only what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TripRules {
    /// Dwell rule: a moving vehicle that stays within this many metres of the point where it
    /// arrived for `dwell_secs` has stopped; a stopped vehicle that leaves this radius starts a
    /// trip. Traccar's default 200 m.
    pub dwell_distance_m: f64,
    /// Dwell rule: how long the vehicle must stay within `dwell_distance_m` (Traccar: 180 s).
    pub dwell_secs: u32,
    /// Gap rule: no accepted fix for this long ends a trip at its last fix (3600 s).
    pub gap_secs: u32,
    /// Data quality: a fix whose implied speed from the previous accepted fix exceeds this is
    /// a GPS jump, flagged and excluded from distance and trips (300 km/h for road vehicles).
    pub jump_kmh: f64,
    /// Overspeed: a reported speed above this limit, held for `overspeed_secs`, is one
    /// overspeed episode (one event). 0 turns overspeed events off.
    pub overspeed_kmh: f64,
    pub overspeed_secs: u32,
    /// Maintenance due: an ignition-on odometer that passes a multiple of this interval emits
    /// one `maintenance_due` event (Monicar's alarm). 0 turns it off.
    pub maintenance_interval_km: u32,
}

impl Default for TripRules {
    fn default() -> Self {
        TripRules {
            dwell_distance_m: 200.0,
            dwell_secs: 180,
            gap_secs: 3600,
            jump_kmh: 300.0,
            overspeed_kmh: 120.0,
            overspeed_secs: 30,
            maintenance_interval_km: 10_000,
        }
    }
}

impl TripRules {
    /// A description of the first nonsensical value, if any.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.dwell_distance_m.is_finite() && self.dwell_distance_m > 0.0) {
            return Err("dwell_distance_m must be a positive number of metres".into());
        }
        if self.gap_secs == 0 {
            return Err("gap_secs must be positive".into());
        }
        if !(self.jump_kmh.is_finite() && self.jump_kmh > 0.0) {
            return Err("jump_kmh must be a positive speed".into());
        }
        if !(self.overspeed_kmh.is_finite() && self.overspeed_kmh >= 0.0) {
            return Err("overspeed_kmh must be 0 (off) or a positive speed".into());
        }
        Ok(())
    }
}
