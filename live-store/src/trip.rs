//! A trip as the pipeline reports it: one row of the `trips` table, without the versioning the
//! sink adds. Every field of `shared/domain.md`'s trip list is here.

use serde::{Deserialize, Serialize};

/// Which rule produced a trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TripRule {
    /// Ignition-on to ignition-off.
    Ignition,
    /// Left the dwell radius of a stop; ends at the next stop.
    Dwell,
    /// A data gap that covered distance at a plausible speed.
    Gap,
}

impl TripRule {
    pub fn as_str(self) -> &'static str {
        match self {
            TripRule::Ignition => "ignition",
            TripRule::Dwell => "dwell",
            TripRule::Gap => "gap",
        }
    }
}

/// What closed a trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CloseRule {
    IgnitionOff,
    /// A new ignition-on while the trip ran (a missed key-off).
    IgnitionOn,
    /// Stayed within the dwell radius for the dwell time.
    Dwell,
    /// No accepted fix for the gap time.
    Gap,
}

impl CloseRule {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseRule::IgnitionOff => "ignition_off",
            CloseRule::IgnitionOn => "ignition_on",
            CloseRule::Dwell => "dwell",
            CloseRule::Gap => "gap",
        }
    }
}

/// One trip of one vehicle. Ordered and hashable so differential dataflow can consolidate
/// corrections; distances are whole millimetres for that reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Trip {
    /// First: so trips sort by start within a vehicle.
    pub start_ms: i64,
    pub rule: TripRule,
    /// Start position (degrees x 10^7); `None` when no usable fix has been seen yet (an
    /// ignition-on without GPS).
    pub start_pos: Option<(i32, i32)>,
    /// Last accepted time: the end of a closed trip, the latest fix of an open one.
    pub end_ms: i64,
    pub end_pos: Option<(i32, i32)>,
    /// Sum of haversine legs between accepted fixes, millimetres.
    pub distance_mm: u64,
    /// The device's own count (Monicar key-off `sum`), metres.
    pub device_distance_m: Option<u64>,
    /// Time in legs that ended moving (reported speed > 0 or displacement >= 1 km/h).
    pub moving_ms: i64,
    /// Time in legs that ended standing with ignition on.
    pub idle_ms: i64,
    /// Highest reported speed, 0.1 km/h.
    pub max_speed_dkmh: u16,
    /// Accepted fixes in the trip.
    pub points: u32,
    /// `None` while the trip is open.
    pub closed_by: Option<CloseRule>,
}

impl Trip {
    /// The stable id of a trip: its vehicle and start time. A correction that moves the start
    /// retracts the old id and creates a new one.
    pub fn id(&self, vehicle: &str) -> String {
        format!("{vehicle}:{}", self.start_ms)
    }

    pub fn is_open(&self) -> bool {
        self.closed_by.is_none()
    }

    pub fn duration_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }

    pub fn distance_m(&self) -> f64 {
        self.distance_mm as f64 / 1000.0
    }

    /// Distance over duration, km/h (0 for an instant).
    pub fn avg_speed_kmh(&self) -> f64 {
        let ms = self.duration_ms();
        if ms <= 0 {
            0.0
        } else {
            self.distance_m() / (ms as f64 / 1000.0) * 3.6
        }
    }
}
