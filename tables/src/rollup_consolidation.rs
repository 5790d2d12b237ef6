//! Consolidation of a rollup's change rows ([`fleetflow_model::Rollup`]): the rows of each key
//! become one, summed (maximum speed and last fix their maximum, first fix their minimum), and
//! keys whose changes cancel out entirely are dropped. What a reader computes from the result
//! is what it computed from the input; compaction applies it to every merge of a rollup table,
//! so a partition holds about one row per key however many windows changed it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, RecordBatch, TimestampMillisecondArray,
    UInt32Array,
};
use arrow::compute::take;
use arrow::datatypes::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow::error::ArrowError;
use fleetflow_model::{ROLLUP_SUMS, Rollup};

/// One key's consolidated measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Measures {
    sums: [i64; ROLLUP_SUMS.len()],
    max_speed: Option<i32>,
    first_fix: Option<i64>,
    last_fix: Option<i64>,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ArrowError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("no column {name:?}")))
}

/// `batch` (rows of `rollup`'s table, sorted as its files are) with one row per key, in the
/// order of each key's first row, so still sorted.
pub fn consolidate(rollup: Rollup, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let company = column(batch, "company")?.as_string::<i32>();
    let vehicle = match rollup.per_vehicle() {
        true => Some(column(batch, "vehicle")?.as_string::<i32>()),
        false => None,
    };
    let period = column(batch, rollup.period_column())?.as_primitive::<TimestampMillisecondType>();
    let sums = ROLLUP_SUMS
        .iter()
        .map(|name| Ok(column(batch, name)?.as_primitive::<Int64Type>()))
        .collect::<Result<Vec<_>, ArrowError>>()?;
    let max_speed = column(batch, "max_speed_dkmh")?.as_primitive::<Int32Type>();
    let first = column(batch, "first_fix")?.as_primitive::<TimestampMillisecondType>();
    let last = column(batch, "last_fix")?.as_primitive::<TimestampMillisecondType>();
    let opt = |a: &TimestampMillisecondArray, i: usize| a.is_valid(i).then(|| a.value(i));

    let mut index: HashMap<(&str, &str, i64), usize> = HashMap::new();
    // Per output row: the input row its key came first at, and its measures.
    let mut firsts: Vec<u32> = Vec::new();
    let mut measures: Vec<Measures> = Vec::new();
    for i in 0..batch.num_rows() {
        let key = (
            company.value(i),
            vehicle.map_or("", |v| v.value(i)),
            period.value(i),
        );
        let at = *index.entry(key).or_insert_with(|| {
            firsts.push(i as u32);
            measures.push(Measures::default());
            measures.len() - 1
        });
        let m = &mut measures[at];
        for (sum, column) in m.sums.iter_mut().zip(&sums) {
            *sum += column.value(i);
        }
        let speed = max_speed.is_valid(i).then(|| max_speed.value(i));
        m.max_speed = m.max_speed.max(speed);
        m.first_fix = match (m.first_fix, opt(first, i)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        m.last_fix = m.last_fix.max(opt(last, i));
    }
    let kept: Vec<usize> = (0..measures.len())
        .filter(|&k| measures[k] != Measures::default())
        .collect();
    let rows = UInt32Array::from_iter_values(kept.iter().map(|&k| firsts[k]));
    let ts = |values: Vec<Option<i64>>| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
    };
    let mut columns: Vec<ArrayRef> = vec![take(column(batch, "company")?, &rows, None)?];
    if rollup.per_vehicle() {
        columns.push(take(column(batch, "vehicle")?, &rows, None)?);
    }
    columns.push(take(column(batch, rollup.period_column())?, &rows, None)?);
    for s in 0..ROLLUP_SUMS.len() {
        columns.push(Arc::new(Int64Array::from_iter_values(
            kept.iter().map(|&k| measures[k].sums[s]),
        )));
    }
    columns.push(Arc::new(Int32Array::from_iter(
        kept.iter().map(|&k| measures[k].max_speed),
    )));
    columns.push(ts(kept.iter().map(|&k| measures[k].first_fix).collect()));
    columns.push(ts(kept.iter().map(|&k| measures[k].last_fix).collect()));
    RecordBatch::try_new(rollup.table().schema(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    /// (company, vehicle, hour, trips, fixes, max speed)
    type Change = (&'static str, &'static str, i64, i64, i64, Option<i32>);

    fn changes(rows: &[Change]) -> RecordBatch {
        let int = |f: fn(&Change) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
        };
        let ts = |f: fn(&Change) -> Option<i64>| -> ArrayRef {
            Arc::new(
                TimestampMillisecondArray::from(rows.iter().map(f).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            )
        };
        RecordBatch::try_new(
            Rollup::VehicleHourly.table().schema(),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                ts(|r| Some(r.2)),
                int(|r| r.3),
                int(|r| r.3 * 1000),
                int(|_| 0),
                int(|_| 0),
                int(|r| r.4),
                int(|r| r.4 * 300),
                Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.5))),
                ts(|r| (r.4 > 0).then_some(r.2 + r.4)),
                ts(|r| (r.4 > 0).then_some(r.2 + 100 * r.4)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn each_key_becomes_one_row_and_cancelled_keys_go() {
        let input = changes(&[
            ("acme", "v1", 0, 1, 3, Some(500)),
            ("globex", "v1", 0, 1, 0, None),
            ("acme", "v1", 0, 0, 2, Some(700)),
            ("acme", "v1", 3_600_000, 1, 0, None),
            ("globex", "v1", 0, -1, 0, None),
            ("acme", "v2", 0, 0, 1, None),
        ]);
        let out = consolidate(Rollup::VehicleHourly, &input).unwrap();
        assert_eq!(out.num_rows(), 3, "globex's trip was retracted: no row");
        let trips = out
            .column_by_name("trips")
            .unwrap()
            .as_primitive::<Int64Type>();
        let fixes = out
            .column_by_name("fixes")
            .unwrap()
            .as_primitive::<Int64Type>();
        let speed = out
            .column_by_name("max_speed_dkmh")
            .unwrap()
            .as_primitive::<Int32Type>();
        let first = out
            .column_by_name("first_fix")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        let last = out
            .column_by_name("last_fix")
            .unwrap()
            .as_primitive::<TimestampMillisecondType>();
        assert_eq!(
            (trips.value(0), fixes.value(0), speed.value(0)),
            (1, 5, 700)
        );
        assert_eq!((first.value(0), last.value(0)), (2, 300));
        assert_eq!((trips.value(1), fixes.value(1)), (1, 0));
        assert!(first.is_null(1));
        assert_eq!((trips.value(2), fixes.value(2)), (0, 1));
    }
}
