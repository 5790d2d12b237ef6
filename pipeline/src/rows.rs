//! What the dataflow produces, one struct per table: positions, events and errors rows, and the
//! trip records whose corrections the `trips` table versions.

use std::sync::Arc;

use fleetflow_model::Source;
use serde::{Deserialize, Serialize};

use crate::trip::Trip;

/// Quality flags of a `positions` row (a bit set; the Parquet column is `flags`, and one
/// boolean column per bit for readers that prefer them).
pub mod flags {
    /// No usable position: GPS status V/0/P or exactly (0,0). Excluded from distance and trips.
    pub const INVALID: u16 = 1;
    /// Implied speed from the previous accepted fix above the jump limit. Excluded.
    pub const JUMP: u16 = 1 << 1;
    /// Arrived after a later fix of the same vehicle had been seen. Included; trips corrected.
    pub const LATE: u16 = 1 << 2;
    /// Older than the correction horizon when it arrived: stored and counted, but no longer
    /// able to change trips.
    pub const BEYOND_HORIZON: u16 = 1 << 3;
}

/// One accepted fix: a row of `positions`.
///
/// `trip_start_ms` names the trip the fix was in when it was processed. A later correction
/// (a late fix that splits or merges trips) updates `trips`, not this row: exact membership is
/// the time range of the trip's latest version.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionRow {
    pub company: Arc<str>,
    pub vehicle: Arc<str>,
    pub time_ms: i64,
    pub lat_e7: i32,
    pub lon_e7: i32,
    pub speed_dkmh: u16,
    pub heading_ddeg: u16,
    /// Monicar's `gcd` letter.
    pub gps: u8,
    pub altitude_dm: Option<i32>,
    pub accuracy_dm: Option<u32>,
    pub battery_dpct: Option<u16>,
    pub flags: u16,
    pub trip_start_ms: Option<i64>,
    pub received_ms: i64,
    pub source: Source,
    pub partition: i32,
    pub offset: i64,
}

/// The kinds of `events` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKind {
    IgnitionOn,
    IgnitionOff,
    TripStart,
    TripEnd,
    Overspeed,
    MaintenanceDue,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::IgnitionOn => "ignition_on",
            EventKind::IgnitionOff => "ignition_off",
            EventKind::TripStart => "trip_start",
            EventKind::TripEnd => "trip_end",
            EventKind::Overspeed => "overspeed",
            EventKind::MaintenanceDue => "maintenance_due",
        }
    }
}

/// One event, emitted once when first detected (an append-only log, like an alert feed).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub company: Arc<str>,
    pub vehicle: Arc<str>,
    pub kind: EventKind,
    /// Event time (the fix or item time it refers to).
    pub time_ms: i64,
    pub pos: Option<(i32, i32)>,
    /// The trip it belongs to (trip start/end), as `vehicle:start_ms`.
    pub trip_start_ms: Option<i64>,
    /// Kind-specific measure: speed km/h (overspeed), odometer km (maintenance), trip
    /// distance m (trip end), odometer m (ignition on), device trip metres (ignition off).
    pub value: Option<f64>,
}

/// Why a record or item went to `errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorReason {
    /// The Kafka record could not be decoded.
    Undecodable,
    /// The record's key is not the vehicle its payload names.
    KeyMismatch,
    /// A fix without a usable position (also stored in `positions`, flagged).
    InvalidPosition,
    /// Another item with the same vehicle, kind and time but different content was seen first.
    ConflictingDuplicate,
}

impl ErrorReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::Undecodable => "undecodable",
            ErrorReason::KeyMismatch => "key_mismatch",
            ErrorReason::InvalidPosition => "invalid_position",
            ErrorReason::ConflictingDuplicate => "conflicting_duplicate",
        }
    }
}

/// A bad record or item: a row of `errors`.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRow {
    pub company: Option<Arc<str>>,
    pub vehicle: Option<Arc<str>>,
    pub time_ms: Option<i64>,
    pub reason: ErrorReason,
    pub detail: String,
    pub received_ms: Option<i64>,
    pub partition: i32,
    pub offset: i64,
}

/// A trip of one vehicle: the data of the differential `trips` collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TripRecord {
    pub vehicle: Arc<str>,
    pub company: Arc<str>,
    pub trip: Trip,
}

impl TripRecord {
    pub fn id(&self) -> String {
        self.trip.id(&self.vehicle)
    }
}
