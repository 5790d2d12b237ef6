//! What the dataflow produces, one struct per table: positions, events and errors rows, and the
//! trip records whose corrections the `trips` table versions.

use std::sync::Arc;

pub use fleetflow_model::EventKind;
use fleetflow_model::{Fix, Source};
use serde::{Deserialize, Serialize};

use fleetflow_live_store::trip::Trip;

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
    /// The time is the server's time of receipt: the device sent none (OsmAnd without
    /// `timestamp`). Analysts tell device time from server time by this bit.
    pub const SERVER_TIME: u16 = 1 << 4;
}

/// A vehicle as rows name it: its company and id in one shared allocation, so a row carries one
/// pointer (and one reference count) for both.
#[derive(Debug, PartialEq, Eq)]
pub struct VehicleName {
    pub company: Arc<str>,
    pub vehicle: Arc<str>,
}

impl VehicleName {
    pub fn new(company: Arc<str>, vehicle: Arc<str>) -> Arc<VehicleName> {
        Arc::new(VehicleName { company, vehicle })
    }
}

/// One accepted fix: a row of `positions`.
///
/// `trip_start_ms` names the trip the fix was in when it was processed. A later correction
/// (a late fix that splits or merges trips) updates `trips`, not this row: exact membership is
/// the time range of the trip's latest version.
///
/// Every fix becomes one of these, and it is moved several times on its way to Parquet
/// (sessionizer, operator outputs, flush window), so it is kept small: 80 bytes, where an
/// `Option` per optional field and an `Arc<str>` each for company and vehicle made 112. The
/// optional fields are private, each valid only when its bit is set in `present` (and zero
/// otherwise, so equality is the fields' equality). `attributes` is a thin pointer, `None` for
/// nearly every fix.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionRow {
    pub name: Arc<VehicleName>,
    pub time_ms: i64,
    pub lat_e7: i32,
    pub lon_e7: i32,
    pub speed_dkmh: u16,
    pub heading_ddeg: u16,
    /// Monicar's `gcd` letter.
    pub gps: u8,
    pub flags: u16,
    pub received_ms: i64,
    pub source: Source,
    pub partition: i32,
    pub offset: i64,
    /// What the device sent with the fix that no column holds, a JSON object
    /// ([`fleetflow_model::ItemAttributes`]).
    pub attributes: Option<Arc<String>>,
    altitude_dm: i32,
    accuracy_dm: u32,
    battery_dpct: u16,
    trip_start_ms: i64,
    present: u8,
}

const _: () = assert!(size_of::<PositionRow>() == 80);

const HAS_ALTITUDE: u8 = 1;
const HAS_ACCURACY: u8 = 1 << 1;
const HAS_BATTERY: u8 = 1 << 2;
const HAS_TRIP: u8 = 1 << 3;

/// `value` with its presence bit: zero and no bit when absent.
fn packed<T: Default>(value: Option<T>, bit: u8) -> (T, u8) {
    match value {
        Some(v) => (v, bit),
        None => (T::default(), 0),
    }
}

impl PositionRow {
    /// The row with what the trip machine made of its fix.
    pub(crate) fn with_verdict(mut self, verdict: crate::trips::trip_machine::Verdict) -> Self {
        use crate::trips::trip_machine::Verdict;
        match verdict {
            Verdict::Accepted { trip_start_ms } => self.set_trip_start_ms(trip_start_ms),
            Verdict::Unusable => self.flags |= flags::INVALID,
            Verdict::Jump => self.flags |= flags::JUMP,
        }
        self
    }
}

impl PositionRow {
    /// `fix` of the vehicle `name`, read at `partition` and `offset`: in no trip yet, no
    /// quality flags.
    pub fn new(
        name: Arc<VehicleName>,
        fix: &Fix,
        received_ms: i64,
        source: Source,
        partition: i32,
        offset: i64,
    ) -> PositionRow {
        let (altitude_dm, a) = packed(fix.altitude_dm, HAS_ALTITUDE);
        let (accuracy_dm, b) = packed(fix.accuracy_dm, HAS_ACCURACY);
        let (battery_dpct, c) = packed(fix.battery_dpct, HAS_BATTERY);
        PositionRow {
            name,
            time_ms: fix.time_ms,
            lat_e7: fix.lat_e7,
            lon_e7: fix.lon_e7,
            speed_dkmh: fix.speed_dkmh,
            heading_ddeg: fix.heading_ddeg,
            gps: fix.gps.code(),
            flags: if fix.server_time {
                flags::SERVER_TIME
            } else {
                0
            },
            received_ms,
            source,
            partition,
            offset,
            attributes: None,
            altitude_dm,
            accuracy_dm,
            battery_dpct,
            trip_start_ms: 0,
            present: a | b | c,
        }
    }

    pub fn company(&self) -> &Arc<str> {
        &self.name.company
    }

    pub fn vehicle(&self) -> &Arc<str> {
        &self.name.vehicle
    }

    fn get<T: Copy>(&self, value: T, bit: u8) -> Option<T> {
        (self.present & bit != 0).then_some(value)
    }

    pub fn altitude_dm(&self) -> Option<i32> {
        self.get(self.altitude_dm, HAS_ALTITUDE)
    }

    pub fn accuracy_dm(&self) -> Option<u32> {
        self.get(self.accuracy_dm, HAS_ACCURACY)
    }

    pub fn battery_dpct(&self) -> Option<u16> {
        self.get(self.battery_dpct, HAS_BATTERY)
    }

    /// The start of the trip the fix was in when processed, if any.
    pub fn trip_start_ms(&self) -> Option<i64> {
        self.get(self.trip_start_ms, HAS_TRIP)
    }

    pub fn set_trip_start_ms(&mut self, start_ms: Option<i64>) {
        let (start_ms, bit) = packed(start_ms, HAS_TRIP);
        self.trip_start_ms = start_ms;
        self.present = (self.present & !HAS_TRIP) | bit;
    }
}

/// One event, emitted once when first detected (an append-only log, like an alert feed); an
/// event a correction takes back (a late fix joins two trips, moves a trip's end, or shows an
/// overspeed episode or geofence visit was not one) is emitted again as a retraction.
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
    /// The geofence entered or left.
    pub geofence: Option<Arc<str>>,
    /// Takes back the event of the same vehicle, kind, time, trip, geofence and value.
    pub retraction: bool,
}

/// A geofence visit of one vehicle: the data of the differential `visits` collection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VisitRecord {
    pub company: Arc<str>,
    pub vehicle: Arc<str>,
    pub visit: fleetflow_geofences::visit::Visit,
}

impl VisitRecord {
    /// `geofence_id:vehicle:enter_ms`: what stays the same across the visit's versions.
    pub fn id(&self) -> String {
        format!(
            "{}:{}:{}",
            self.visit.geofence, self.vehicle, self.visit.enter_ms
        )
    }
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
