//! Rows to Arrow record batches, one function per table, with the schemas of
//! `fleetflow_model::tables`. Each batch comes out sorted by vehicle then time, the order the
//! files promise.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, StringBuilder, TimestampMillisecondArray,
};
use arrow::error::ArrowError;
use fleetflow_model::{E7, Rollup, Table};

use crate::rollups::rollup_changes::{RollupKey, RollupValue};
use crate::rows::{ErrorRow, EventRow, TripRecord, VisitRecord};
use fleetflow_live_store::trip::Trip;

fn ts(values: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter(values).with_timezone("UTC"))
}

fn deg(e7: i32) -> f64 {
    f64::from(e7) / E7
}

fn batch(table: Table, columns: Vec<ArrayRef>) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(table.schema(), columns)
}

/// `positions` rows, sorted by vehicle and fix time, in chunks (built in
/// [`crate::sink::position_batch`]).
pub use crate::sink::position_batch::positions_batches;

/// `vehicle:start_ms` trip ids, written straight into the array's buffer.
fn trip_ids<'a>(rows: impl ExactSizeIterator<Item = (&'a str, Option<i64>)>) -> ArrayRef {
    use std::fmt::Write;
    let mut builder = StringBuilder::with_capacity(rows.len(), rows.len() * 24);
    for (vehicle, start) in rows {
        match start {
            Some(start) => {
                let _ = write!(builder, "{vehicle}:{start}");
                builder.append_value("");
            }
            None => builder.append_null(),
        }
    }
    Arc::new(builder.finish())
}

/// One version row of a trip or a visit: `deleted` when a correction removed it.
#[derive(Debug, Clone)]
pub struct Version<R> {
    pub record: R,
    pub version: i64,
    pub deleted: bool,
}

pub type TripVersion = Version<TripRecord>;
pub type VisitVersion = Version<VisitRecord>;

/// `geofence_visits` version rows, sorted by vehicle and enter time.
pub fn visits(rows: &mut [VisitVersion]) -> Result<RecordBatch, ArrowError> {
    rows.sort_unstable_by(|a, b| {
        (&a.record.vehicle, a.record.visit.enter_ms)
            .cmp(&(&b.record.vehicle, b.record.visit.enter_ms))
    });
    let r = &*rows;
    let exit = |v: &VisitVersion| v.record.visit.exit;
    batch(
        Table::GeofenceVisits,
        vec![
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|v| &*v.record.company),
            )),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|v| &*v.record.vehicle),
            )),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|v| &*v.record.visit.geofence),
            )),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|v| v.record.id()),
            )),
            Arc::new(Int64Array::from_iter_values(r.iter().map(|v| v.version))),
            Arc::new(BooleanArray::from_iter(r.iter().map(|v| Some(v.deleted)))),
            Arc::new(BooleanArray::from_iter(
                r.iter().map(|v| Some(v.record.visit.is_open())),
            )),
            ts(r.iter().map(|v| Some(v.record.visit.enter_ms))),
            ts(r.iter().map(|v| exit(v).map(|(t, _)| t))),
            Arc::new(Float64Array::from_iter(r.iter().map(|v| {
                exit(v).map(|(t, _)| (t - v.record.visit.enter_ms) as f64 / 1000.0)
            }))),
            Arc::new(Float64Array::from_iter_values(
                r.iter().map(|v| deg(v.record.visit.enter_pos.0)),
            )),
            Arc::new(Float64Array::from_iter_values(
                r.iter().map(|v| deg(v.record.visit.enter_pos.1)),
            )),
            Arc::new(Float64Array::from_iter(
                r.iter().map(|v| exit(v).map(|(_, p)| deg(p.0))),
            )),
            Arc::new(Float64Array::from_iter(
                r.iter().map(|v| exit(v).map(|(_, p)| deg(p.1))),
            )),
        ],
    )
}

/// `trips` version rows, sorted by vehicle and start.
pub fn trips(rows: &mut [TripVersion]) -> Result<RecordBatch, ArrowError> {
    rows.sort_unstable_by(|a, b| {
        (&a.record.vehicle, a.record.trip.start_ms)
            .cmp(&(&b.record.vehicle, b.record.trip.start_ms))
    });
    let r = &*rows;
    fn t(v: &TripVersion) -> &Trip {
        &v.record.trip
    }
    let pos = |p: Option<(i32, i32)>, lat: bool| p.map(|(la, lo)| deg(if lat { la } else { lo }));
    batch(
        Table::Trips,
        vec![
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|v| &*v.record.company),
            )),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|v| &*v.record.vehicle),
            )),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|v| v.record.id()),
            )),
            Arc::new(Int64Array::from_iter_values(r.iter().map(|v| v.version))),
            Arc::new(BooleanArray::from_iter(r.iter().map(|v| Some(v.deleted)))),
            Arc::new(BooleanArray::from_iter(
                r.iter().map(|v| Some(t(v).is_open())),
            )),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|v| t(v).rule.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                r.iter().map(|v| t(v).closed_by.map(|c| c.as_str())),
            )),
            ts(r.iter().map(|v| Some(t(v).start_ms))),
            ts(r.iter().map(|v| Some(t(v).end_ms))),
            Arc::new(Float64Array::from_iter(
                r.iter().map(|v| pos(t(v).start_pos, true)),
            )),
            Arc::new(Float64Array::from_iter(
                r.iter().map(|v| pos(t(v).start_pos, false)),
            )),
            Arc::new(Float64Array::from_iter(
                r.iter().map(|v| pos(t(v).end_pos, true)),
            )),
            Arc::new(Float64Array::from_iter(
                r.iter().map(|v| pos(t(v).end_pos, false)),
            )),
            Arc::new(Float64Array::from_iter_values(
                r.iter().map(|v| t(v).distance_m()),
            )),
            Arc::new(Float64Array::from_iter(
                r.iter().map(|v| t(v).device_distance_m.map(|m| m as f64)),
            )),
            Arc::new(Float64Array::from_iter_values(
                r.iter().map(|v| t(v).duration_ms() as f64 / 1000.0),
            )),
            Arc::new(Float64Array::from_iter_values(
                r.iter().map(|v| t(v).moving_ms as f64 / 1000.0),
            )),
            Arc::new(Float64Array::from_iter_values(
                r.iter().map(|v| t(v).idle_ms as f64 / 1000.0),
            )),
            Arc::new(Float32Array::from_iter_values(
                r.iter().map(|v| f32::from(t(v).max_speed_dkmh) / 10.0),
            )),
            Arc::new(Float64Array::from_iter_values(
                r.iter().map(|v| t(v).avg_speed_kmh()),
            )),
            Arc::new(Int32Array::from_iter_values(
                r.iter().map(|v| t(v).points as i32),
            )),
        ],
    )
}

/// An event with the timestamp at which the pipeline detected it.
#[derive(Debug, Clone)]
pub struct Detected<R> {
    pub row: R,
    pub detected_ms: i64,
}

/// `events` rows, sorted by vehicle and event time.
pub fn events(rows: &mut [Detected<EventRow>]) -> Result<RecordBatch, ArrowError> {
    rows.sort_unstable_by(|a, b| {
        (&a.row.vehicle, a.row.time_ms).cmp(&(&b.row.vehicle, b.row.time_ms))
    });
    let r = &*rows;
    batch(
        Table::Events,
        vec![
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|e| &*e.row.company),
            )),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|e| &*e.row.vehicle),
            )),
            ts(r.iter().map(|e| Some(e.row.time_ms))),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|e| e.row.kind.as_str()),
            )),
            Arc::new(Float64Array::from_iter(
                r.iter().map(|e| e.row.pos.map(|p| deg(p.0))),
            )),
            Arc::new(Float64Array::from_iter(
                r.iter().map(|e| e.row.pos.map(|p| deg(p.1))),
            )),
            trip_ids(r.iter().map(|e| (&*e.row.vehicle, e.row.trip_start_ms))),
            Arc::new(Float64Array::from_iter(r.iter().map(|e| e.row.value))),
            ts(r.iter().map(|e| Some(e.detected_ms))),
            Arc::new(StringArray::from_iter(
                r.iter().map(|e| e.row.geofence.as_deref()),
            )),
            Arc::new(BooleanArray::from_iter(
                r.iter().map(|e| e.row.retraction.then_some(true)),
            )),
        ],
    )
}

/// `errors` rows, sorted by vehicle and detection time.
pub fn errors(rows: &mut [Detected<ErrorRow>]) -> Result<RecordBatch, ArrowError> {
    rows.sort_by(|a, b| (&a.row.vehicle, a.detected_ms).cmp(&(&b.row.vehicle, b.detected_ms)));
    let r = &*rows;
    batch(
        Table::Errors,
        vec![
            Arc::new(StringArray::from_iter(
                r.iter().map(|e| e.row.company.as_deref()),
            )),
            Arc::new(StringArray::from_iter(
                r.iter().map(|e| e.row.vehicle.as_deref()),
            )),
            ts(r.iter().map(|e| e.row.time_ms)),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|e| e.row.reason.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                r.iter().map(|e| e.row.detail.as_str()),
            )),
            ts(r.iter().map(|e| e.row.received_ms)),
            Arc::new(Int32Array::from_iter_values(
                r.iter().map(|e| e.row.partition),
            )),
            Arc::new(Int64Array::from_iter_values(r.iter().map(|e| e.row.offset))),
            ts(r.iter().map(|e| Some(e.detected_ms))),
        ],
    )
}

/// A rollup's change rows (sorted as [`crate::rollups::rollup_changes::RollupChanges::rows`]
/// returns them).
pub fn rollup(
    rollup: Rollup,
    rows: &[(RollupKey, RollupValue)],
) -> Result<RecordBatch, ArrowError> {
    let int = |f: fn(&RollupValue) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, v)| f(v))))
    };
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        rows.iter().map(|(k, _)| &*k.company),
    ))];
    if rollup.per_vehicle() {
        columns.push(Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(k, _)| k.vehicle.as_deref().unwrap_or("")),
        )));
    }
    columns.extend([
        ts(rows.iter().map(|(k, _)| Some(k.start_ms))),
        int(|v| v.trips),
        int(|v| v.distance_mm),
        int(|v| v.moving_ms),
        int(|v| v.idle_ms),
        int(|v| v.fixes),
        int(|v| v.speed_sum_dkmh),
        Arc::new(Int32Array::from_iter(
            rows.iter().map(|(_, v)| v.max_speed_dkmh),
        )),
        ts(rows.iter().map(|(_, v)| v.first_fix_ms)),
        ts(rows.iter().map(|(_, v)| v.last_fix_ms)),
    ]);
    batch(rollup.table(), columns)
}
