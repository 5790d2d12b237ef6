//! Telemetry items as every fleetflow crate sees them, after ingest has parsed and validated the
//! wire formats (Monicar, native, OsmAnd) and before the pipeline interprets them.
//!
//! Units are fixed here, once: times are UTC milliseconds since the Unix epoch, coordinates are
//! degrees x 10^7 (WGS 84; ~1.1 cm at the equator), speeds are 0.1 km/h, headings 0.1 degree.

use serde::{Deserialize, Serialize};

/// Degrees x 10^7 per degree.
pub const E7: f64 = 10_000_000.0;

/// Which door a record came in through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Native,
    Monicar,
    Osmand,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Native, Source::Monicar, Source::Osmand];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Native => "native",
            Source::Monicar => "monicar",
            Source::Osmand => "osmand",
        }
    }
}

/// GPS fix status as devices report it (Monicar's `gcd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GpsStatus {
    /// `A`: a valid fix.
    Valid,
    /// `V`: the receiver reports the fix as invalid.
    Invalid,
    /// `0`: no GPS fitted.
    NotFitted,
    /// `P`: GPS bad at ignition.
    BadAtIgnition,
    /// The device did not say (native and OsmAnd clients that omit it).
    Unknown,
}

impl GpsStatus {
    /// The one-letter wire code (Monicar's `gcd`); `?` for [`GpsStatus::Unknown`].
    pub fn code(self) -> u8 {
        match self {
            GpsStatus::Valid => b'A',
            GpsStatus::Invalid => b'V',
            GpsStatus::NotFitted => b'0',
            GpsStatus::BadAtIgnition => b'P',
            GpsStatus::Unknown => b'?',
        }
    }

    pub fn from_code(code: u8) -> Option<GpsStatus> {
        Some(match code {
            b'A' => GpsStatus::Valid,
            b'V' => GpsStatus::Invalid,
            b'0' => GpsStatus::NotFitted,
            b'P' => GpsStatus::BadAtIgnition,
            b'?' => GpsStatus::Unknown,
            _ => return None,
        })
    }

    /// Whether a fix with this status may be used for distance and trips.
    pub fn is_usable(self) -> bool {
        matches!(self, GpsStatus::Valid | GpsStatus::Unknown)
    }
}

/// One GPS fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fix {
    /// Fix time, UTC ms since the epoch (device clock).
    pub time_ms: i64,
    /// Latitude, degrees x 10^7.
    pub lat_e7: i32,
    /// Longitude, degrees x 10^7.
    pub lon_e7: i32,
    /// Speed over ground, 0.1 km/h.
    pub speed_dkmh: u16,
    /// Heading, 0.1 degree (0..=3650: Monicar allows up to 365).
    pub heading_ddeg: u16,
    pub gps: GpsStatus,
    /// Altitude, decimetres above the ellipsoid, when the device sends it.
    pub altitude_dm: Option<i32>,
    /// Horizontal accuracy, decimetres, when the device sends it.
    pub accuracy_dm: Option<u32>,
    /// Battery level, 0.1 percent, when the device sends it.
    pub battery_dpct: Option<u16>,
    /// `time_ms` is the server's time of receipt: the device sent no time (OsmAnd without
    /// `timestamp`, as Traccar accepts it).
    pub server_time: bool,
}

impl Fix {
    /// A fix with only the required fields; the optional ones empty.
    pub fn new(time_ms: i64, lat_e7: i32, lon_e7: i32) -> Fix {
        Fix {
            time_ms,
            lat_e7,
            lon_e7,
            speed_dkmh: 0,
            heading_ddeg: 0,
            gps: GpsStatus::Unknown,
            altitude_dm: None,
            accuracy_dm: None,
            battery_dpct: None,
            server_time: false,
        }
    }

    pub fn lat(&self) -> f64 {
        f64::from(self.lat_e7) / E7
    }

    pub fn lon(&self) -> f64 {
        f64::from(self.lon_e7) / E7
    }
}

/// One thing a device said: a fix, or an ignition change at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Item {
    Fix(Fix),
    /// Ignition (key) on. `odometer_m` is the vehicle's total odometer when the device sends it
    /// (Monicar's key-on `sum`).
    IgnitionOn {
        at: Fix,
        odometer_m: Option<u64>,
    },
    /// Ignition (key) off. `trip_distance_m` is the device's own count of metres since key-on
    /// (Monicar's key-off `sum`).
    IgnitionOff {
        at: Fix,
        trip_distance_m: Option<u64>,
    },
}

impl Item {
    /// The position and time the item carries.
    pub fn fix(&self) -> &Fix {
        match self {
            Item::Fix(fix) => fix,
            Item::IgnitionOn { at, .. } | Item::IgnitionOff { at, .. } => at,
        }
    }

    pub fn time_ms(&self) -> i64 {
        self.fix().time_ms
    }

    pub fn kind(&self) -> ItemKind {
        match self {
            Item::Fix(_) => ItemKind::Fix,
            Item::IgnitionOn { .. } => ItemKind::IgnitionOn,
            Item::IgnitionOff { .. } => ItemKind::IgnitionOff,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKind {
    Fix,
    IgnitionOn,
    IgnitionOff,
}

/// What a device sent with one item that no column holds (the OsmAnd JSON form's `is_moving`,
/// `odometer`, `event`, `mock`, `activity`, `battery.is_charging`, `extras`), as one JSON
/// object: it lands in `positions.attributes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemAttributes {
    /// The item's index in [`TelemetryRecord::items`].
    pub item: u32,
    /// A JSON object, at most [`crate::record::MAX_ATTRIBUTES_LEN`] bytes.
    pub json: String,
}

/// What one Kafka record carries: one request's items for one vehicle.
///
/// The idempotency key of an item is (vehicle, kind, time): a retried request produces records
/// whose items the pipeline recognises as already seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryRecord {
    pub source: Source,
    /// Server receive time, UTC ms since the epoch.
    pub received_ms: i64,
    pub company: String,
    pub vehicle: String,
    pub items: Vec<Item>,
    /// Attributes of some items, in item order, at most one per item; empty for nearly every
    /// record (only OsmAnd JSON sends any).
    pub attributes: Vec<ItemAttributes>,
}

impl TelemetryRecord {
    /// Number of GPS fixes in the record (ignition items not counted).
    pub fn fix_count(&self) -> usize {
        self.items
            .iter()
            .filter(|item| matches!(item, Item::Fix(_)))
            .count()
    }

    /// The attributes of item `index`, if it has any.
    pub fn attributes_of(&self, index: usize) -> Option<&str> {
        self.attributes
            .binary_search_by_key(&index, |a| a.item as usize)
            .ok()
            .map(|at| self.attributes[at].json.as_str())
    }
}
