//! The live views as SQL tables (`live_vehicles`, `live_summary`, `live_leaderboard`,
//! `live_alerts`), so a query can join history with now.
//!
//! A query reads every live table from **one** snapshot of the [`LiveStore`]: the first live
//! table a query scans takes it (under the store's read lock, once), and the others of the same
//! query reuse it. Each row carries `upto`, the dataflow time the snapshot is consistent with,
//! and the HTTP answer reports it as `upto_ms`. Queries that name no live table never touch the
//! store.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::error::Result;
use fleetflow_live_store::store::{LiveSnapshot, LiveStore};
use fleetflow_model::Principal;

use crate::live::json::{SummaryView, VehicleView, degrees, vehicle_view};
use crate::sql::supplied::ScanTimeTable;

/// The live tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LiveTable {
    Vehicles,
    Summary,
    Leaderboard,
    Alerts,
    Geofences,
}

impl LiveTable {
    pub const ALL: [LiveTable; 5] = [
        LiveTable::Vehicles,
        LiveTable::Summary,
        LiveTable::Leaderboard,
        LiveTable::Alerts,
        LiveTable::Geofences,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LiveTable::Vehicles => "live_vehicles",
            LiveTable::Summary => "live_summary",
            LiveTable::Leaderboard => "live_leaderboard",
            LiveTable::Alerts => "live_alerts",
            LiveTable::Geofences => "live_geofences",
        }
    }

    pub fn schema(self) -> SchemaRef {
        let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
        let s = |name: &str| f(name, DataType::Utf8, false);
        let n = |name: &str| f(name, DataType::Float64, true);
        let upto = f("upto", ts(), false);
        Arc::new(Schema::new(match self {
            LiveTable::Vehicles => vec![
                s("company"),
                s("vehicle"),
                s("status"),
                f("status_since", ts(), false),
                s("ignition"),
                n("lat"),
                n("lon"),
                n("speed_kmh"),
                f("fix_time", ts(), true),
                f("trip_id", DataType::Utf8, true),
                f("trip_start", ts(), true),
                n("trip_distance_m"),
                f("today_distance_m", DataType::Float64, false),
                f("today_driving_s", DataType::Float64, false),
                f("week_distance_m", DataType::Float64, false),
                f("week_driving_s", DataType::Float64, false),
                n("odometer_km"),
                upto,
            ],
            LiveTable::Summary => {
                let mut fields = vec![s("company")];
                for c in SUMMARY_COUNTS {
                    fields.push(f(c, DataType::Int64, false));
                }
                fields.push(upto);
                fields
            }
            LiveTable::Leaderboard => vec![
                s("company"),
                s("period"),
                f("rank", DataType::UInt32, false),
                s("vehicle"),
                f("distance_m", DataType::Float64, false),
                upto,
            ],
            LiveTable::Alerts => vec![
                f("seq", DataType::Int64, false),
                s("company"),
                s("vehicle"),
                s("kind"),
                f("time", ts(), false),
                n("lat"),
                n("lon"),
                n("value"),
                upto,
            ],
            // One row per vehicle inside a geofence now.
            LiveTable::Geofences => vec![
                s("company"),
                s("geofence_id"),
                s("vehicle"),
                f("since", ts(), false),
                upto,
            ],
        }))
    }
}

const SUMMARY_COUNTS: [&str; 8] = [
    "vehicles",
    "engine_on",
    "engine_off",
    "ignition_unknown",
    "moving",
    "idle",
    "parked",
    "offline",
];

/// One query's view of the store: taken at the first scan, shared by every live table.
#[derive(Debug)]
pub struct LiveSnapshotOnce {
    store: Arc<LiveStore>,
    principal: Principal,
    taken: OnceLock<Result<Taken, String>>,
}

#[derive(Debug)]
struct Taken {
    upto_ms: u64,
    batches: BTreeMap<LiveTable, RecordBatch>,
}

impl LiveSnapshotOnce {
    pub fn new(store: Arc<LiveStore>, principal: Principal) -> Arc<Self> {
        Arc::new(LiveSnapshotOnce {
            store,
            principal,
            taken: OnceLock::new(),
        })
    }

    /// The dataflow time the query's live tables were read at, if it read any.
    pub fn upto_ms(&self) -> Option<u64> {
        match self.taken.get() {
            Some(Ok(t)) => Some(t.upto_ms),
            _ => None,
        }
    }

    fn batch(&self, table: LiveTable) -> Result<RecordBatch> {
        let taken = self.taken.get_or_init(|| {
            self.store
                .read(|snap| take(snap, &self.principal))
                .map_err(|e| e.to_string())
        });
        match taken {
            Ok(t) => Ok(t.batches[&table].clone()),
            Err(e) => Err(datafusion::error::DataFusionError::Internal(e.clone())),
        }
    }
}

/// A live table of one query: read from its snapshot when the query scans it.
pub fn live_table(table: LiveTable, snapshot: Arc<LiveSnapshotOnce>) -> Arc<ScanTimeTable> {
    ScanTimeTable::new(table.schema(), move || snapshot.batch(table))
}

/// A text column of `rows`.
fn text<T>(rows: &[T], f: impl Fn(&T) -> Option<&str>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<StringArray>())
}

fn number<T>(rows: &[T], f: impl Fn(&T) -> Option<f64>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<Float64Array>())
}

fn time<T>(rows: &[T], f: impl Fn(&T) -> Option<i64>) -> ArrayRef {
    Arc::new(
        rows.iter()
            .map(f)
            .collect::<TimestampMillisecondArray>()
            .with_timezone("UTC"),
    )
}

/// Every live table's rows that `principal` may see, from one snapshot.
fn take(snap: &LiveSnapshot, principal: &Principal) -> arrow::error::Result<Taken> {
    let upto = snap.upto as i64;
    let mut batches = BTreeMap::new();
    let sees = |company: &str| principal.may_access(company);

    // Vehicles.
    let views: Vec<VehicleView> = snap
        .vehicles
        .iter_where(sees)
        .filter_map(vehicle_view)
        .collect();
    let v = &views;
    let columns: Vec<ArrayRef> = vec![
        text(v, |v| Some(&v.company)),
        text(v, |v| Some(&v.vehicle)),
        text(v, |v| Some(v.status)),
        time(v, |v| Some(v.status_since_ms)),
        text(v, |v| Some(v.ignition)),
        number(v, |v| v.position.map(|p| p.lat)),
        number(v, |v| v.position.map(|p| p.lon)),
        number(v, |v| v.position.map(|p| p.speed_kmh)),
        time(v, |v| v.position.map(|p| p.time_ms)),
        text(v, |v| v.open_trip.as_ref().map(|t| t.id.as_str())),
        time(v, |v| v.open_trip.as_ref().map(|t| t.start_ms)),
        number(v, |v| v.open_trip.as_ref().map(|t| t.distance_m)),
        number(v, |v| Some(v.today.distance_m)),
        number(v, |v| Some(v.today.driving_s)),
        number(v, |v| Some(v.week.distance_m)),
        number(v, |v| Some(v.week.driving_s)),
        number(v, |v| v.odometer_km),
        upto_column(views.len(), upto),
    ];
    batches.insert(
        LiveTable::Vehicles,
        RecordBatch::try_new(LiveTable::Vehicles.schema(), columns)?,
    );

    // Summary, per company.
    let mut companies: BTreeMap<&str, SummaryView> = BTreeMap::new();
    for ((company, ignition, status), n) in &snap.summary {
        if sees(company) {
            companies
                .entry(company)
                .or_insert_with(|| SummaryView {
                    company: company.to_string(),
                    ..SummaryView::default()
                })
                .add(*ignition, *status, *n as i64);
        }
    }
    let rows: Vec<&SummaryView> = companies.values().collect();
    let count = |f: fn(&SummaryView) -> i64| -> ArrayRef {
        Arc::new(rows.iter().map(|s| f(s)).collect::<Int64Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        text(&rows, |s| Some(&s.company)),
        count(|s| s.all),
        count(|s| s.engine_on),
        count(|s| s.engine_off),
        count(|s| s.ignition_unknown),
        count(|s| s.moving),
        count(|s| s.idle),
        count(|s| s.parked),
        count(|s| s.offline),
        upto_column(rows.len(), upto),
    ];
    batches.insert(
        LiveTable::Summary,
        RecordBatch::try_new(LiveTable::Summary.schema(), columns)?,
    );

    // Leaderboards.
    let leaders: Vec<_> = snap.leaders.values().filter(|l| sees(&l.company)).collect();
    let columns: Vec<ArrayRef> = vec![
        text(&leaders, |l| Some(&l.company)),
        text(&leaders, |l| Some(l.period.as_str())),
        Arc::new(leaders.iter().map(|l| l.rank).collect::<UInt32Array>()),
        text(&leaders, |l| Some(&l.vehicle)),
        number(&leaders, |l| Some(l.distance_mm as f64 / 1000.0)),
        upto_column(leaders.len(), upto),
    ];
    batches.insert(
        LiveTable::Leaderboard,
        RecordBatch::try_new(LiveTable::Leaderboard.schema(), columns)?,
    );

    // Alerts the feed still holds.
    let alerts: Vec<_> = snap.alerts_since(0).filter(|a| sees(&a.company)).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(alerts.iter().map(|a| a.seq as i64).collect::<Int64Array>()),
        text(&alerts, |a| Some(&a.company)),
        text(&alerts, |a| Some(&a.vehicle)),
        text(&alerts, |a| Some(a.kind.as_str())),
        time(&alerts, |a| Some(a.time_ms)),
        number(&alerts, |a| a.pos.map(|p| degrees(p.0))),
        number(&alerts, |a| a.pos.map(|p| degrees(p.1))),
        number(&alerts, |a| a.value),
        upto_column(alerts.len(), upto),
    ];
    batches.insert(
        LiveTable::Alerts,
        RecordBatch::try_new(LiveTable::Alerts.schema(), columns)?,
    );

    // Who is inside which geofence.
    let inside: Vec<(&str, &str, &str, i64)> = snap
        .vehicles
        .iter_where(sees)
        .filter(|e| e.live.is_some())
        .flat_map(|e| {
            e.geofences
                .iter()
                .map(move |(g, since)| (&**e.company(), &**g, &**e.vehicle(), *since))
        })
        .collect();
    let columns: Vec<ArrayRef> = vec![
        text(&inside, |r| Some(r.0)),
        text(&inside, |r| Some(r.1)),
        text(&inside, |r| Some(r.2)),
        time(&inside, |r| Some(r.3)),
        upto_column(inside.len(), upto),
    ];
    batches.insert(
        LiveTable::Geofences,
        RecordBatch::try_new(LiveTable::Geofences.schema(), columns)?,
    );

    Ok(Taken {
        upto_ms: snap.upto,
        batches,
    })
}

fn upto_column(rows: usize, upto: i64) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(vec![upto; rows]).with_timezone("UTC"))
}
