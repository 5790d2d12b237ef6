//! `positions` rows to Arrow batches in (vehicle, fix time) order, the order the files promise,
//! without moving the rows.
//!
//! A flush window holds millions of rows, which the sessionizer emits in per-vehicle runs, each
//! in time order unless a late fix came in. So the order is found in two cheap steps instead of
//! a comparison sort of the rows themselves: a counting sort of row indices by the vehicle's
//! rank among the window's (few thousand) vehicles, then a time sort only of the vehicles whose
//! rows are out of order. The columns are then filled in one pass over that order, each row
//! read once, rather than one pass over every row per column.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, BooleanBufferBuilder, Float32Array, Float64Array, Int32Array,
    Int64Array, RecordBatch, StringBuilder, TimestampMillisecondArray,
};
use arrow::buffer::NullBuffer;
use arrow::error::ArrowError;
use fleetflow_model::{E7, Table};

use crate::rows::{PositionRow, flags};

/// Row indices of `rows` sorted by vehicle, then fix time; rows equal on both keep their order.
pub fn vehicle_time_order(rows: &[PositionRow]) -> Vec<u32> {
    assert!(
        u32::try_from(rows.len()).is_ok(),
        "a window of over 4G rows"
    );
    // Each row's vehicle slot, found once per run of rows sharing the vehicle's `Arc`.
    let mut slot_of: HashMap<usize, u32> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let mut slots: Vec<u32> = Vec::with_capacity(rows.len());
    let mut last: Option<(usize, u32)> = None;
    for row in rows {
        let ptr = Arc::as_ptr(row.vehicle()).cast::<u8>() as usize;
        let slot = match last {
            Some((p, slot)) if p == ptr => slot,
            _ => *slot_of.entry(ptr).or_insert_with(|| {
                names.push(row.vehicle());
                (names.len() - 1) as u32
            }),
        };
        last = Some((ptr, slot));
        slots.push(slot);
    }
    // Rank of each slot by name; slots whose `Arc`s hold the same name share a rank.
    let mut by_name: Vec<u32> = (0..names.len() as u32).collect();
    by_name.sort_unstable_by(|a, b| names[*a as usize].cmp(names[*b as usize]));
    let mut rank = vec![0u32; names.len()];
    let mut ranks = 0u32;
    for (i, slot) in by_name.iter().enumerate() {
        if i > 0 && names[by_name[i - 1] as usize] != names[*slot as usize] {
            ranks += 1;
        }
        rank[*slot as usize] = ranks;
    }
    let buckets = if names.is_empty() {
        0
    } else {
        ranks as usize + 1
    };
    // Counting sort by rank (stable: arrival order within a vehicle).
    let mut start = vec![0usize; buckets + 1];
    for slot in &slots {
        start[rank[*slot as usize] as usize + 1] += 1;
    }
    for b in 0..buckets {
        start[b + 1] += start[b];
    }
    let mut order = vec![0u32; rows.len()];
    let mut next = start.clone();
    for (i, slot) in slots.iter().enumerate() {
        let b = rank[*slot as usize] as usize;
        order[next[b]] = i as u32;
        next[b] += 1;
    }
    // Within a vehicle: usually already in time order.
    for b in 0..buckets {
        let run = &mut order[start[b]..start[b + 1]];
        if !run.is_sorted_by_key(|&i| rows[i as usize].time_ms) {
            run.sort_by_key(|&i| rows[i as usize].time_ms);
        }
    }
    order
}

/// Nullable `f32` values, filled row by row.
struct NullableF32 {
    values: Vec<f32>,
    valid: BooleanBufferBuilder,
}

impl NullableF32 {
    fn with_capacity(n: usize) -> Self {
        NullableF32 {
            values: Vec::with_capacity(n),
            valid: BooleanBufferBuilder::new(n),
        }
    }

    fn push(&mut self, value: Option<f32>) {
        self.values.push(value.unwrap_or_default());
        self.valid.append(value.is_some());
    }

    fn finish(mut self) -> ArrayRef {
        let nulls = NullBuffer::new(self.valid.finish());
        let nulls = (nulls.null_count() > 0).then_some(nulls);
        Arc::new(Float32Array::new(self.values.into(), nulls))
    }
}

fn booleans(values: &mut BooleanBufferBuilder) -> ArrayRef {
    Arc::new(BooleanArray::new(values.finish(), None))
}

fn timestamps(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::new(values.into(), None).with_timezone("UTC"))
}

/// The `positions` batches of `rows`, sorted by vehicle and fix time, `chunk_rows` rows each (the
/// last one shorter; none for no rows), each built only when the iterator reaches it.
///
/// A window's file is written a chunk at a time: the columns of a chunk are encoded while they
/// are still in cache, and the next chunk's columns reuse the memory the allocator got back from
/// the last one. One batch of the whole window is hundreds of megabytes at the peak, faulted in
/// afresh by the writer thread for every window (`benches/RESULTS.md`, session 21: the writer's
/// page faults fell by four fifths, the peak memory by 0.6 GB; the workers' faults rose, so the
/// pipeline's CPU did not fall).
pub fn positions_batches(
    rows: &[PositionRow],
    chunk_rows: usize,
) -> impl Iterator<Item = Result<RecordBatch, ArrowError>> + '_ {
    let order = vehicle_time_order(rows);
    let chunk_rows = chunk_rows.max(1);
    (0..order.len().div_ceil(chunk_rows)).map(move |c| {
        let chunk = &order[c * chunk_rows..((c + 1) * chunk_rows).min(order.len())];
        batch_in_order(rows, chunk)
    })
}

/// The `positions` batch of the rows of `rows` at the indices `order`, in that order.
fn batch_in_order(rows: &[PositionRow], order: &[u32]) -> Result<RecordBatch, ArrowError> {
    let n = order.len();
    let mut company = StringBuilder::with_capacity(n, n * 8);
    let mut vehicle = StringBuilder::with_capacity(n, n * 12);
    let mut time = Vec::with_capacity(n);
    let mut lat = Vec::with_capacity(n);
    let mut lon = Vec::with_capacity(n);
    let mut speed = Vec::with_capacity(n);
    let mut heading = Vec::with_capacity(n);
    let mut gps = StringBuilder::with_capacity(n, n);
    let mut altitude = NullableF32::with_capacity(n);
    let mut accuracy = NullableF32::with_capacity(n);
    let mut battery = NullableF32::with_capacity(n);
    let mut flag_bits = Vec::with_capacity(n);
    let mut invalid = BooleanBufferBuilder::new(n);
    let mut jump = BooleanBufferBuilder::new(n);
    let mut late = BooleanBufferBuilder::new(n);
    let mut trip_id = StringBuilder::with_capacity(n, n * 24);
    let mut received = Vec::with_capacity(n);
    let mut source = StringBuilder::with_capacity(n, n * 6);
    let mut partition = Vec::with_capacity(n);
    let mut offset = Vec::with_capacity(n);
    // Nearly always all null: no value bytes reserved.
    let mut attributes = StringBuilder::with_capacity(n, 0);
    // The trip id of the previous row: consecutive rows mostly share it.
    let mut last_trip: Option<(usize, i64)> = None;
    let mut trip_text = String::new();
    for &i in order {
        let p = &rows[i as usize];
        company.append_value(&**p.company());
        vehicle.append_value(&**p.vehicle());
        time.push(p.time_ms);
        lat.push(f64::from(p.lat_e7) / E7);
        lon.push(f64::from(p.lon_e7) / E7);
        speed.push(f32::from(p.speed_dkmh) / 10.0);
        heading.push(f32::from(p.heading_ddeg) / 10.0);
        gps.append_value(gps_letter(p.gps));
        altitude.push(p.altitude_dm().map(|v| v as f32 / 10.0));
        accuracy.push(p.accuracy_dm().map(|v| v as f32 / 10.0));
        battery.push(p.battery_dpct().map(|v| f32::from(v) / 10.0));
        flag_bits.push(i32::from(p.flags));
        invalid.append(p.flags & flags::INVALID != 0);
        jump.append(p.flags & flags::JUMP != 0);
        late.append(p.flags & flags::LATE != 0);
        match p.trip_start_ms() {
            Some(start) => {
                let key = (Arc::as_ptr(p.vehicle()).cast::<u8>() as usize, start);
                if last_trip != Some(key) {
                    use std::fmt::Write;
                    trip_text.clear();
                    let _ = write!(trip_text, "{}:{start}", p.vehicle());
                    last_trip = Some(key);
                }
                trip_id.append_value(&trip_text);
            }
            None => trip_id.append_null(),
        }
        received.push(p.received_ms);
        source.append_value(p.source.as_str());
        partition.push(p.partition);
        offset.push(p.offset);
        attributes.append_option(p.attributes.as_deref());
    }
    RecordBatch::try_new(
        Table::Positions.schema(),
        vec![
            Arc::new(company.finish()),
            Arc::new(vehicle.finish()),
            timestamps(time),
            Arc::new(Float64Array::from(lat)),
            Arc::new(Float64Array::from(lon)),
            Arc::new(Float32Array::from(speed)),
            Arc::new(Float32Array::from(heading)),
            Arc::new(gps.finish()),
            altitude.finish(),
            accuracy.finish(),
            battery.finish(),
            Arc::new(Int32Array::from(flag_bits)),
            booleans(&mut invalid),
            booleans(&mut jump),
            booleans(&mut late),
            Arc::new(trip_id.finish()),
            timestamps(received),
            Arc::new(source.finish()),
            Arc::new(Int32Array::from(partition)),
            Arc::new(Int64Array::from(offset)),
            Arc::new(attributes.finish()),
        ],
    )
}

/// Monicar's `gcd` letter as the `gps` column's text.
pub fn gps_letter(code: u8) -> &'static str {
    match code {
        b'A' => "A",
        b'V' => "V",
        b'0' => "0",
        b'P' => "P",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, StringArray};
    use fleetflow_model::{Fix, GpsStatus, Source};

    use crate::rows::VehicleName;

    use super::*;

    /// All of `rows` in one batch.
    fn positions_batch(rows: &[PositionRow]) -> Result<RecordBatch, ArrowError> {
        batch_in_order(rows, &vehicle_time_order(rows))
    }

    /// The previous implementation: a stable sort of the rows, then one pass per column.
    fn reference(rows: &mut [PositionRow]) -> RecordBatch {
        // Stable merge sort: rows arrive in per-vehicle runs already in time order, which it
        // detects and merges instead of re-sorting.
        // Rows of one vehicle share its `Arc<str>`: compare pointers before bytes.
        rows.sort_by(|a, b| {
            let vehicle = if Arc::ptr_eq(a.vehicle(), b.vehicle()) {
                std::cmp::Ordering::Equal
            } else {
                a.vehicle().cmp(b.vehicle())
            };
            vehicle.then(a.time_ms.cmp(&b.time_ms))
        });
        let r = &*rows;
        RecordBatch::try_new(
            Table::Positions.schema(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    r.iter().map(|p| &**p.company()),
                )),
                Arc::new(StringArray::from_iter_values(
                    r.iter().map(|p| &**p.vehicle()),
                )),
                ts(r.iter().map(|p| Some(p.time_ms))),
                Arc::new(Float64Array::from_iter_values(
                    r.iter().map(|p| deg(p.lat_e7)),
                )),
                Arc::new(Float64Array::from_iter_values(
                    r.iter().map(|p| deg(p.lon_e7)),
                )),
                Arc::new(Float32Array::from_iter_values(
                    r.iter().map(|p| f32::from(p.speed_dkmh) / 10.0),
                )),
                Arc::new(Float32Array::from_iter_values(
                    r.iter().map(|p| f32::from(p.heading_ddeg) / 10.0),
                )),
                Arc::new(StringArray::from_iter_values(
                    r.iter().map(|p| gps_letter(p.gps)),
                )),
                Arc::new(Float32Array::from_iter(
                    r.iter().map(|p| p.altitude_dm().map(|v| v as f32 / 10.0)),
                )),
                Arc::new(Float32Array::from_iter(
                    r.iter().map(|p| p.accuracy_dm().map(|v| v as f32 / 10.0)),
                )),
                Arc::new(Float32Array::from_iter(
                    r.iter()
                        .map(|p| p.battery_dpct().map(|v| f32::from(v) / 10.0)),
                )),
                Arc::new(Int32Array::from_iter_values(
                    r.iter().map(|p| i32::from(p.flags)),
                )),
                Arc::new(BooleanArray::from_iter(
                    r.iter().map(|p| Some(p.flags & flags::INVALID != 0)),
                )),
                Arc::new(BooleanArray::from_iter(
                    r.iter().map(|p| Some(p.flags & flags::JUMP != 0)),
                )),
                Arc::new(BooleanArray::from_iter(
                    r.iter().map(|p| Some(p.flags & flags::LATE != 0)),
                )),
                trip_ids(r.iter().map(|p| (&**p.vehicle(), p.trip_start_ms()))),
                ts(r.iter().map(|p| Some(p.received_ms))),
                Arc::new(StringArray::from_iter_values(
                    r.iter().map(|p| p.source.as_str()),
                )),
                Arc::new(Int32Array::from_iter_values(r.iter().map(|p| p.partition))),
                Arc::new(Int64Array::from_iter_values(r.iter().map(|p| p.offset))),
                Arc::new(StringArray::from_iter(
                    r.iter()
                        .map(|p| p.attributes.as_deref().map(String::as_str)),
                )),
            ],
        )
        .unwrap()
    }

    fn ts(values: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from_iter(values).with_timezone("UTC"))
    }

    fn deg(e7: i32) -> f64 {
        f64::from(e7) / E7
    }

    fn trip_ids<'a>(rows: impl Iterator<Item = (&'a str, Option<i64>)>) -> ArrayRef {
        Arc::new(StringArray::from_iter(
            rows.map(|(v, s)| s.map(|s| format!("{v}:{s}"))),
        ))
    }

    /// Seeded rows: vehicles in interleaved runs, some out of time order, two `Arc`s for one
    /// name, optional fields, trips, equal times.
    fn rows(seed: u64, n: usize) -> Vec<PositionRow> {
        let mut state = seed;
        let mut next = move |m: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % m
        };
        let names: Vec<Arc<str>> = (0..7).map(|v| Arc::from(format!("veh-{v}"))).collect();
        let twin: Arc<str> = Arc::from("veh-3");
        let company: Arc<str> = Arc::from("acme");
        let mut clock = vec![0i64; names.len()];
        let mut out = Vec::new();
        while out.len() < n {
            let v = next(names.len() as u64) as usize;
            for _ in 0..1 + next(5) {
                clock[v] += next(3) as i64;
                let time_ms = if next(6) == 0 {
                    clock[v] - next(20) as i64
                } else {
                    clock[v]
                };
                let vehicle = if v == 3 && next(2) == 0 {
                    twin.clone()
                } else {
                    names[v].clone()
                };
                let fix = Fix {
                    time_ms,
                    lat_e7: next(1_000_000) as i32,
                    lon_e7: -(next(1_000_000) as i32),
                    speed_dkmh: next(1200) as u16,
                    heading_ddeg: next(3600) as u16,
                    gps: GpsStatus::Unknown,
                    altitude_dm: (next(3) > 0).then(|| next(5000) as i32),
                    accuracy_dm: (next(3) > 0).then(|| next(500) as u32),
                    battery_dpct: (next(3) > 0).then(|| next(1000) as u16),
                    server_time: next(10) == 0,
                };
                let source = if next(2) == 0 {
                    Source::Native
                } else {
                    Source::Monicar
                };
                let mut row = PositionRow::new(
                    VehicleName::new(company.clone(), vehicle),
                    &fix,
                    1_000 + out.len() as i64,
                    source,
                    next(8) as i32,
                    out.len() as i64,
                );
                row.gps = [b'A', b'V', b'0', b'P', b'x'][next(5) as usize];
                row.flags = next(16) as u16;
                row.set_trip_start_ms((next(4) > 0).then(|| time_ms / 50 * 50));
                row.attributes =
                    (next(8) == 0).then(|| Arc::new(format!("{{\"odometer\":{}}}", next(1000))));
                out.push(row);
            }
        }
        out
    }

    #[test]
    fn matches_sorting_the_rows() {
        for seed in 0..20 {
            let rows = rows(seed, 1 + seed as usize * 37);
            let built = positions_batch(&rows).unwrap();
            let expected = reference(&mut rows.clone());
            assert_eq!(built.schema(), expected.schema());
            for (c, (a, b)) in built.columns().iter().zip(expected.columns()).enumerate() {
                assert_eq!(a.to_data(), b.to_data(), "seed {seed}, column {c}");
            }
        }
    }

    #[test]
    fn chunks_are_the_batch_cut_in_order() {
        for seed in 0..20 {
            let rows = rows(seed, 1 + seed as usize * 37);
            let whole = positions_batch(&rows).unwrap();
            for chunk_rows in [1, 7, 64, 100_000] {
                let chunks: Vec<RecordBatch> = positions_batches(&rows, chunk_rows)
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(chunks.len(), rows.len().div_ceil(chunk_rows));
                assert!(chunks.iter().all(|c| c.num_rows() <= chunk_rows));
                let joined = arrow::compute::concat_batches(&whole.schema(), &chunks).unwrap();
                for (c, (a, b)) in joined.columns().iter().zip(whole.columns()).enumerate() {
                    assert_eq!(
                        a.to_data(),
                        b.to_data(),
                        "seed {seed}, {chunk_rows} rows, column {c}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_rows() {
        assert_eq!(positions_batch(&[]).unwrap().num_rows(), 0);
        assert_eq!(positions_batches(&[], 10).count(), 0);
    }
}
