//! The history tables: their Arrow schemas and their layout on disk, defined once for the writer
//! (the pipeline's Parquet sink) and every reader (the SQL endpoint, DuckDB, notebooks).
//!
//! Layout: `<data-dir>/<table>/date=YYYY-MM-DD/part-*.parquet`, hive-partitioned by the UTC
//! date of each row's event time (positions: fix time; trips: start; events: event time;
//! errors: detection time). The `date` column lives in the path, not in the files. Files
//! appear only by atomic rename, and only once the commit that lists them is durable
//! (`<data-dir>/_fleetflow/commits/`).

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

/// The history tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Positions,
    Trips,
    Events,
    Errors,
    GeofenceVisits,
    /// The rollups' changes (see [`Rollup`]): per vehicle or company, per UTC hour or day.
    VehicleHourly,
    VehicleDaily,
    CompanyHourly,
    CompanyDaily,
}

impl Table {
    pub const ALL: [Table; 9] = [
        Table::Positions,
        Table::Trips,
        Table::Events,
        Table::Errors,
        Table::GeofenceVisits,
        Table::VehicleHourly,
        Table::VehicleDaily,
        Table::CompanyHourly,
        Table::CompanyDaily,
    ];

    /// The rollup a table holds the changes of, if it is a rollup table.
    pub fn rollup(self) -> Option<Rollup> {
        match self {
            Table::VehicleHourly => Some(Rollup::VehicleHourly),
            Table::VehicleDaily => Some(Rollup::VehicleDaily),
            Table::CompanyHourly => Some(Rollup::CompanyHourly),
            Table::CompanyDaily => Some(Rollup::CompanyDaily),
            Table::Positions
            | Table::Trips
            | Table::Events
            | Table::Errors
            | Table::GeofenceVisits => None,
        }
    }

    /// Directory and SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Positions => "positions",
            Table::Trips => "trips",
            Table::Events => "events",
            Table::Errors => "errors",
            Table::GeofenceVisits => "geofence_visits",
            Table::VehicleHourly => "vehicle_hourly_changes",
            Table::VehicleDaily => "vehicle_daily_changes",
            Table::CompanyHourly => "company_hourly_changes",
            Table::CompanyDaily => "company_daily_changes",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The columns stored in the files (the `date` partition column excluded).
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Positions => positions_schema(),
            Table::Trips => trips_schema(),
            Table::Events => events_schema(),
            Table::Errors => errors_schema(),
            Table::GeofenceVisits => geofence_visits_schema(),
            Table::VehicleHourly
            | Table::VehicleDaily
            | Table::CompanyHourly
            | Table::CompanyDaily => rollup_schema(self.rollup().expect("a rollup table")),
        }
    }

    /// The columns each file is sorted by: vehicle, then time.
    pub fn sort_columns(self) -> [&'static str; 2] {
        match self {
            Table::Positions => ["vehicle", "time"],
            Table::Trips => ["vehicle", "start_time"],
            Table::Events => ["vehicle", "time"],
            Table::Errors => ["vehicle", "detected_at"],
            Table::GeofenceVisits => ["vehicle", "enter_time"],
            Table::VehicleHourly => ["vehicle", "hour"],
            Table::VehicleDaily => ["vehicle", "day"],
            Table::CompanyHourly => ["company", "hour"],
            Table::CompanyDaily => ["company", "day"],
        }
    }
}

/// A rollup the dataflow keeps: per (company, vehicle) or per company, per UTC hour or day,
/// the trips that started in the period (count, distance, driving and idle time) and the
/// accepted fixes in it (count, speed sum and maximum, first and last time).
///
/// Its table holds *changes*, as differential dataflow's updates do: every flush window adds
/// one row per key that changed, holding what changed (a trip a correction removed counts -1,
/// its distance negatively). A key's value is the sum of its rows (the maximum speed and the
/// last fix their maximum, the first fix their minimum); the SQL view named [`Rollup::view`]
/// sums them, and compaction merges each key's rows into one. Sums are exact integers
/// (millimetres, milliseconds, tenths of km/h), so the order rows are summed in does not
/// matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rollup {
    VehicleHourly,
    VehicleDaily,
    CompanyHourly,
    CompanyDaily,
}

/// The columns of a rollup's change rows summed per key.
pub const ROLLUP_SUMS: [&str; 6] = [
    "trips",
    "distance_mm",
    "moving_ms",
    "idle_ms",
    "fixes",
    "speed_sum_dkmh",
];

impl Rollup {
    pub const ALL: [Rollup; 4] = [
        Rollup::VehicleHourly,
        Rollup::VehicleDaily,
        Rollup::CompanyHourly,
        Rollup::CompanyDaily,
    ];

    pub fn table(self) -> Table {
        match self {
            Rollup::VehicleHourly => Table::VehicleHourly,
            Rollup::VehicleDaily => Table::VehicleDaily,
            Rollup::CompanyHourly => Table::CompanyHourly,
            Rollup::CompanyDaily => Table::CompanyDaily,
        }
    }

    /// The SQL view of the rollup's current values.
    pub fn view(self) -> &'static str {
        match self {
            Rollup::VehicleHourly => "vehicle_hourly",
            Rollup::VehicleDaily => "vehicle_daily",
            Rollup::CompanyHourly => "company_hourly",
            Rollup::CompanyDaily => "company_daily",
        }
    }

    pub fn per_vehicle(self) -> bool {
        matches!(self, Rollup::VehicleHourly | Rollup::VehicleDaily)
    }

    /// The period's column: `hour` or `day` (its start, UTC).
    pub fn period_column(self) -> &'static str {
        match self {
            Rollup::VehicleHourly | Rollup::CompanyHourly => "hour",
            Rollup::VehicleDaily | Rollup::CompanyDaily => "day",
        }
    }

    /// The period's length, ms.
    pub fn period_ms(self) -> i64 {
        match self {
            Rollup::VehicleHourly | Rollup::CompanyHourly => 3_600_000,
            Rollup::VehicleDaily | Rollup::CompanyDaily => 86_400_000,
        }
    }

    /// The columns that identify a row's key.
    pub fn key_columns(self) -> Vec<&'static str> {
        let mut key = vec!["company"];
        if self.per_vehicle() {
            key.push("vehicle");
        }
        key.push(self.period_column());
        key
    }
}

/// The hive partition column.
pub const PARTITION_COLUMN: &str = "date";

/// `date=YYYY-MM-DD` for a UTC epoch-millisecond time.
pub fn partition_dir(time_ms: i64) -> String {
    let days = time_ms.div_euclid(86_400_000);
    let (y, m, d) = crate::compact_time::civil_from_days(days);
    format!("{PARTITION_COLUMN}={y:04}-{m:02}-{d:02}")
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn f(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

fn positions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("company", DataType::Utf8, false),
        f("vehicle", DataType::Utf8, false),
        f("time", ts(), false),
        f("lat", DataType::Float64, false),
        f("lon", DataType::Float64, false),
        f("speed_kmh", DataType::Float32, false),
        f("heading_deg", DataType::Float32, false),
        f("gps", DataType::Utf8, false),
        f("altitude_m", DataType::Float32, true),
        f("accuracy_m", DataType::Float32, true),
        f("battery_pct", DataType::Float32, true),
        f("flags", DataType::Int32, false),
        f("invalid", DataType::Boolean, false),
        f("jump", DataType::Boolean, false),
        f("late", DataType::Boolean, false),
        f("trip_id", DataType::Utf8, true),
        f("received_at", ts(), false),
        f("source", DataType::Utf8, false),
        f("kafka_partition", DataType::Int32, false),
        f("kafka_offset", DataType::Int64, false),
        // What the device sent with the fix that no column holds (OsmAnd JSON), a JSON object.
        // Added in session 26: files written before lack it and read as null.
        f("attributes", DataType::Utf8, true),
    ]))
}

fn trips_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("company", DataType::Utf8, false),
        f("vehicle", DataType::Utf8, false),
        f("trip_id", DataType::Utf8, false),
        // Rows are versions: the highest version per trip_id is current; `deleted` marks a
        // trip a correction removed (merged into or split by another).
        f("version", DataType::Int64, false),
        f("deleted", DataType::Boolean, false),
        f("open", DataType::Boolean, false),
        f("rule", DataType::Utf8, false),
        f("closed_by", DataType::Utf8, true),
        f("start_time", ts(), false),
        f("end_time", ts(), false),
        f("start_lat", DataType::Float64, true),
        f("start_lon", DataType::Float64, true),
        f("end_lat", DataType::Float64, true),
        f("end_lon", DataType::Float64, true),
        f("distance_m", DataType::Float64, false),
        f("device_distance_m", DataType::Float64, true),
        f("duration_s", DataType::Float64, false),
        f("moving_s", DataType::Float64, false),
        f("idle_s", DataType::Float64, false),
        f("max_speed_kmh", DataType::Float32, false),
        f("avg_speed_kmh", DataType::Float64, false),
        f("points", DataType::Int32, false),
    ]))
}

/// The kinds of `events` rows: the values of its `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKind {
    IgnitionOn,
    IgnitionOff,
    TripStart,
    TripEnd,
    Overspeed,
    MaintenanceDue,
    /// A vehicle's first accepted fix inside a geofence (`geofence_id` says which).
    GeofenceEnter,
    /// Its first accepted fix outside again.
    GeofenceExit,
    /// The vehicle was not heard from for the offline time (`[pipeline.live]
    /// offline_after_secs`): time is when the silence ran out, counted from when ingest
    /// received its previous record. Written when it is heard again (with `online`), from the
    /// receipt times the records carry, so a restart writes it exactly once.
    Offline,
    /// Heard again after such a silence: time is when ingest received the record.
    Online,
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
        EventKind::IgnitionOn,
        EventKind::IgnitionOff,
        EventKind::TripStart,
        EventKind::TripEnd,
        EventKind::Overspeed,
        EventKind::MaintenanceDue,
        EventKind::GeofenceEnter,
        EventKind::GeofenceExit,
        EventKind::Offline,
        EventKind::Online,
    ];

    /// The value `kind` holds for it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::IgnitionOn => "ignition_on",
            EventKind::IgnitionOff => "ignition_off",
            EventKind::TripStart => "trip_start",
            EventKind::TripEnd => "trip_end",
            EventKind::Overspeed => "overspeed",
            EventKind::MaintenanceDue => "maintenance_due",
            EventKind::GeofenceEnter => "geofence_enter",
            EventKind::GeofenceExit => "geofence_exit",
            EventKind::Offline => "offline",
            EventKind::Online => "online",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("company", DataType::Utf8, false),
        f("vehicle", DataType::Utf8, false),
        f("time", ts(), false),
        f("kind", DataType::Utf8, false),
        f("lat", DataType::Float64, true),
        f("lon", DataType::Float64, true),
        f("trip_id", DataType::Utf8, true),
        f("value", DataType::Float64, true),
        f("detected_at", ts(), false),
        // Added in session 28 (issue 42); files written before lack them and read as null.
        // The geofence of `geofence_enter` and `geofence_exit`.
        f("geofence_id", DataType::Utf8, true),
        // True on a row that takes back an earlier event of the same vehicle, kind, time and
        // geofence: a late fix showed it did not happen. Null or false: an event.
        f("retraction", DataType::Boolean, true),
    ]))
}

fn geofence_visits_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("company", DataType::Utf8, false),
        f("vehicle", DataType::Utf8, false),
        f("geofence_id", DataType::Utf8, false),
        // `geofence_id:vehicle:enter_ms`. Rows are versions, as in `trips`: the highest version
        // per visit_id is current; `deleted` marks a visit a correction removed.
        f("visit_id", DataType::Utf8, false),
        f("version", DataType::Int64, false),
        f("deleted", DataType::Boolean, false),
        // Still inside (no exit yet): exit and seconds_inside are null.
        f("open", DataType::Boolean, false),
        f("enter_time", ts(), false),
        f("exit_time", ts(), true),
        f("seconds_inside", DataType::Float64, true),
        f("enter_lat", DataType::Float64, false),
        f("enter_lon", DataType::Float64, false),
        f("exit_lat", DataType::Float64, true),
        f("exit_lon", DataType::Float64, true),
    ]))
}

fn rollup_schema(rollup: Rollup) -> SchemaRef {
    let mut fields = vec![f("company", DataType::Utf8, false)];
    if rollup.per_vehicle() {
        fields.push(f("vehicle", DataType::Utf8, false));
    }
    fields.extend([
        // The period's start (UTC); the partition is its date.
        f(rollup.period_column(), ts(), false),
        // Trips that started in the period (net: a correction that removes one counts -1).
        f("trips", DataType::Int64, false),
        f("distance_mm", DataType::Int64, false),
        f("moving_ms", DataType::Int64, false),
        f("idle_ms", DataType::Int64, false),
        // Accepted fixes (neither invalid nor a jump) in the period.
        f("fixes", DataType::Int64, false),
        f("speed_sum_dkmh", DataType::Int64, false),
        // Null while the row holds no fix.
        f("max_speed_dkmh", DataType::Int32, true),
        f("first_fix", ts(), true),
        f("last_fix", ts(), true),
    ]);
    Arc::new(Schema::new(fields))
}

fn errors_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        f("company", DataType::Utf8, true),
        f("vehicle", DataType::Utf8, true),
        f("time", ts(), true),
        f("reason", DataType::Utf8, false),
        f("detail", DataType::Utf8, false),
        f("received_at", ts(), true),
        f("kafka_partition", DataType::Int32, false),
        f("kafka_offset", DataType::Int64, false),
        f("detected_at", ts(), false),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_dirs_are_utc_dates() {
        assert_eq!(partition_dir(1_606_780_800_000), "date=2020-12-01");
        assert_eq!(partition_dir(1_606_780_799_999), "date=2020-11-30");
        assert_eq!(partition_dir(0), "date=1970-01-01");
    }

    #[test]
    fn sort_columns_exist() {
        for t in Table::ALL {
            for c in t.sort_columns() {
                assert!(
                    t.schema().field_with_name(c).is_ok(),
                    "{} lacks {c}",
                    t.name()
                );
            }
            assert_eq!(Table::from_name(t.name()), Some(t));
        }
    }
}
