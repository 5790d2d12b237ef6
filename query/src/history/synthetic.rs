//! A synthetic history written straight into the Parquet layout (`<table>/date=.../part-*.parquet`,
//! the sink's writer settings), for the SQL tests and the query benchmark: a fleet that drives a
//! few trips a day, deterministic for a seed, at any size (10^3 to 10^9 points) without running
//! the pipeline.
//!
//! Each vehicle drives `trips_per_day` trips a day, one fix every `interval_s` seconds, and
//! every trip row agrees with its positions (distance is the sum of the fix-to-fix distances).
//! To exercise `trips_latest`, the first trip of the first vehicle has an older, shorter
//! version 1 before its current version 2, and each day one extra trip of that vehicle exists
//! only as a deleted version. The rollups (`vehicle_hourly_changes`, ...) hold one row per key,
//! as compaction leaves them, computed from those fixes and current trips.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMillisecondArray,
};
use arrow::error::ArrowError;
use fleetflow_model::geo::{LatLonE7, haversine_m};
use fleetflow_model::{Rollup, Table, partition_dir};
use fleetflow_tables::parquet_file::{FileKind, writer_properties};
use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;

const DAY_MS: i64 = 86_400_000;

/// What to write.
#[derive(Debug, Clone, Copy)]
pub struct HistoryShape {
    pub companies: usize,
    pub vehicles: usize,
    pub days: usize,
    pub trips_per_day: usize,
    pub points_per_trip: usize,
    pub interval_s: i64,
    /// Midnight UTC of the first day, ms.
    pub first_day_ms: i64,
    /// Rows per Parquet row group (the sink writes 131,072; tests use fewer to show pruning).
    pub row_group_rows: usize,
}

impl HistoryShape {
    pub fn points(&self) -> u64 {
        (self.vehicles * self.days * self.trips_per_day * self.points_per_trip) as u64
    }
}

impl Default for HistoryShape {
    fn default() -> Self {
        HistoryShape {
            companies: 2,
            vehicles: 4,
            days: 2,
            trips_per_day: 2,
            points_per_trip: 6,
            interval_s: 60,
            // 2020-12-01
            first_day_ms: 1_606_780_800_000,
            row_group_rows: 8,
        }
    }
}

/// `acme`, `globex`, `initech`, then `co3`, `co4`, ...
pub fn company_name(i: usize) -> String {
    match i {
        0 => "acme".into(),
        1 => "globex".into(),
        2 => "initech".into(),
        n => format!("co{n}"),
    }
}

/// `v0000`, `v0001`, ...: sorted as numbers, as the files are.
pub fn vehicle_name(i: usize) -> String {
    format!("v{i:04}")
}

/// What was written.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub points: u64,
    pub trips: u64,
    pub bytes: u64,
}

/// Writes the history under `data_dir`, one file per table and day.
pub fn write_history(data_dir: &Path, shape: &HistoryShape) -> Result<Written, ParquetError> {
    let mut written = Written::default();
    for day in 0..shape.days {
        let day_ms = shape.first_day_ms + day as i64 * DAY_MS;
        let dir = partition_dir(day_ms);
        let mut positions = Positions::new(shape, day_ms);
        let mut trips = TripRows::default();
        let mut rollups = Rollups::default();
        let mut events = Vec::new();
        let mut writer = TableWriter::open(data_dir, Table::Positions, &dir, shape)?;
        for v in 0..shape.vehicles {
            for t in 0..shape.trips_per_day {
                let trip = positions.drive(v, t);
                rollups.add(shape, v, &trip, &positions);
                events.push((v, trip.start_ms, "ignition_on", Some(trip.trip_id.clone())));
                events.push((v, trip.end_ms, "ignition_off", Some(trip.trip_id.clone())));
                if v == 0 && t == 0 {
                    let mut old = trip.clone();
                    old.version = 1;
                    old.distance_m /= 2.0;
                    old.points /= 2;
                    trips.push(shape, v, &old);
                    let mut current = trip.clone();
                    current.version = 2;
                    trips.push(shape, v, &current);
                    let mut gone = trip.clone();
                    gone.trip_id = format!("{}:{}", vehicle_name(v), trip.start_ms + 1);
                    gone.deleted = true;
                    trips.push(shape, v, &gone);
                } else {
                    trips.push(shape, v, &trip);
                }
                written.trips += 1;
            }
            if positions.len() >= 65_536 {
                written.points += positions.len() as u64;
                writer.write(&positions.take()?)?;
            }
        }
        written.points += positions.len() as u64;
        writer.write(&positions.take()?)?;
        written.bytes += writer.close()?;
        written.bytes += write_one(data_dir, Table::Trips, &dir, shape, &trips.batch()?)?;
        written.bytes += write_one(
            data_dir,
            Table::Events,
            &dir,
            shape,
            &events_batch(shape, &events)?,
        )?;
        written.bytes += write_one(
            data_dir,
            Table::Errors,
            &dir,
            shape,
            &errors_batch(shape, day_ms)?,
        )?;
        for rollup in Rollup::ALL {
            let batch = rollups.batch(rollup)?;
            written.bytes += write_one(data_dir, rollup.table(), &dir, shape, &batch)?;
        }
    }
    Ok(written)
}

/// A rollup row: the sums of `fleetflow_model::ROLLUP_SUMS`, maximum speed (0.1 km/h), first
/// and last fix.
#[derive(Debug, Clone, Copy, Default)]
struct RollupRow {
    sums: [i64; 6],
    max_speed: i32,
    first: i64,
    last: i64,
}

/// One day's rollups per (vehicle, hour, company).
#[derive(Default)]
struct Rollups(BTreeMap<(String, i64, String), RollupRow>);

impl Rollups {
    fn at(&mut self, company: &str, vehicle: &str, time_ms: i64) -> &mut RollupRow {
        let hour = time_ms.div_euclid(3_600_000) * 3_600_000;
        self.0
            .entry((vehicle.to_owned(), hour, company.to_owned()))
            .or_insert(RollupRow {
                first: i64::MAX,
                ..RollupRow::default()
            })
    }

    /// Vehicle `v`'s trip, current, with its fixes: the last `points_per_trip` of `positions`.
    fn add(&mut self, shape: &HistoryShape, v: usize, trip: &TripRow, positions: &Positions) {
        let (company, vehicle) = (company_name(v % shape.companies), vehicle_name(v));
        // A trip's measures: metres to mm, its whole duration moving, none idle.
        let row = self.at(&company, &vehicle, trip.start_ms);
        row.sums[0] += 1;
        row.sums[1] += (trip.distance_m * 1000.0).round() as i64;
        row.sums[2] += trip.end_ms - trip.start_ms;
        let n = positions.len();
        for i in n - shape.points_per_trip..n {
            let (time, speed) = (positions.time[i], positions.speed[i]);
            let dkmh = (f64::from(speed) * 10.0).round() as i64;
            let row = self.at(&company, &vehicle, time);
            row.sums[4] += 1;
            row.sums[5] += dkmh;
            row.max_speed = row.max_speed.max(dkmh as i32);
            row.first = row.first.min(time);
            row.last = row.last.max(time);
        }
    }

    /// `rollup`'s rows, sorted as its files are.
    fn batch(&self, rollup: Rollup) -> Result<RecordBatch, ArrowError> {
        let period = rollup.period_ms();
        let mut rows: BTreeMap<(String, i64, String), RollupRow> = BTreeMap::new();
        for ((vehicle, hour, company), r) in &self.0 {
            let start = hour.div_euclid(period) * period;
            let key = match rollup.per_vehicle() {
                true => (vehicle.clone(), start, company.clone()),
                false => (company.clone(), start, String::new()),
            };
            let row = rows.entry(key).or_insert(RollupRow {
                first: i64::MAX,
                ..RollupRow::default()
            });
            for (a, b) in row.sums.iter_mut().zip(r.sums) {
                *a += b;
            }
            row.max_speed = row.max_speed.max(r.max_speed);
            row.first = row.first.min(r.first);
            row.last = row.last.max(r.last);
        }
        let has_fixes = |r: &RollupRow| r.sums[4] > 0;
        let time = |values: Vec<Option<i64>>| -> ArrayRef {
            Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
        };
        let mut columns: Vec<ArrayRef> = Vec::new();
        if rollup.per_vehicle() {
            columns.push(Arc::new(StringArray::from_iter_values(
                rows.keys().map(|k| k.2.as_str()),
            )));
        }
        columns.push(Arc::new(StringArray::from_iter_values(
            rows.keys().map(|k| k.0.as_str()),
        )));
        columns.push(time(rows.keys().map(|k| Some(k.1)).collect()));
        for s in 0..6 {
            columns.push(Arc::new(Int64Array::from_iter_values(
                rows.values().map(|r| r.sums[s]),
            )));
        }
        columns.push(Arc::new(Int32Array::from_iter(
            rows.values().map(|r| has_fixes(r).then_some(r.max_speed)),
        )));
        columns.push(time(
            rows.values()
                .map(|r| has_fixes(r).then_some(r.first))
                .collect(),
        ));
        columns.push(time(
            rows.values()
                .map(|r| has_fixes(r).then_some(r.last))
                .collect(),
        ));
        RecordBatch::try_new(rollup.table().schema(), columns)
    }
}

#[derive(Debug, Clone)]
struct TripRow {
    trip_id: String,
    version: i64,
    deleted: bool,
    start_ms: i64,
    end_ms: i64,
    start: (f64, f64),
    end: (f64, f64),
    distance_m: f64,
    max_speed: f32,
    points: i32,
}

/// One day's positions, built column by column.
struct Positions {
    shape: HistoryShape,
    day_ms: i64,
    company: Vec<String>,
    vehicle: Vec<String>,
    time: Vec<i64>,
    lat: Vec<f64>,
    lon: Vec<f64>,
    speed: Vec<f32>,
    heading: Vec<f32>,
    trip_id: Vec<String>,
    offset: i64,
}

impl Positions {
    fn new(shape: &HistoryShape, day_ms: i64) -> Self {
        Positions {
            shape: *shape,
            day_ms,
            company: Vec::new(),
            vehicle: Vec::new(),
            time: Vec::new(),
            lat: Vec::new(),
            lon: Vec::new(),
            speed: Vec::new(),
            heading: Vec::new(),
            trip_id: Vec::new(),
            offset: 0,
        }
    }

    fn len(&self) -> usize {
        self.time.len()
    }

    /// Vehicle `v`'s trip `t` of the day: its fixes appended, its trip row returned.
    fn drive(&mut self, v: usize, t: usize) -> TripRow {
        let s = &self.shape;
        // Trips start at 06:00 + 3 h per trip, staggered by vehicle; they head out and back.
        let start_ms = self.day_ms + (6 + 3 * t as i64) * 3_600_000 + (v as i64 % 60) * 1000;
        let trip_id = format!("{}:{start_ms}", vehicle_name(v));
        let heading = ((v * 37 + t * 90) % 360) as f64;
        let (sin, cos) = heading.to_radians().sin_cos();
        let mut lat = 37.5 + (v % 100) as f64 * 0.001;
        let mut lon = 127.0 + (v / 100 % 100) as f64 * 0.001;
        let mut distance_m = 0.0;
        let mut max_speed = 0.0f32;
        let mut previous: Option<LatLonE7> = None;
        let start = (lat, lon);
        let mut end = start;
        let mut time = start_ms;
        for i in 0..s.points_per_trip {
            let speed = 30.0 + ((v + i) % 5) as f32 * 5.0;
            let pos = LatLonE7::new((lat * 1e7).round() as i32, (lon * 1e7).round() as i32);
            if let Some(p) = previous {
                distance_m += haversine_m(p, pos);
            }
            previous = Some(pos);
            max_speed = max_speed.max(speed);
            end = (f64::from(pos.lat_e7) / 1e7, f64::from(pos.lon_e7) / 1e7);
            self.company.push(company_name(v % s.companies));
            self.vehicle.push(vehicle_name(v));
            self.time.push(time);
            self.lat.push(end.0);
            self.lon.push(end.1);
            self.speed.push(speed);
            self.heading.push(heading as f32);
            self.trip_id.push(trip_id.clone());
            // Move at the fix's speed for the interval.
            let step_m = f64::from(speed) / 3.6 * s.interval_s as f64;
            lat += step_m * cos / 111_320.0;
            lon += step_m * sin / (111_320.0 * lat.to_radians().cos());
            time += s.interval_s * 1000;
        }
        TripRow {
            trip_id,
            version: 1,
            deleted: false,
            start_ms,
            end_ms: time - s.interval_s * 1000,
            start: (
                f64::from((start.0 * 1e7).round() as i32) / 1e7,
                f64::from((start.1 * 1e7).round() as i32) / 1e7,
            ),
            end,
            distance_m,
            max_speed,
            points: s.points_per_trip as i32,
        }
    }

    fn take(&mut self) -> Result<RecordBatch, ArrowError> {
        let n = self.len();
        let time = |v: Vec<i64>| -> ArrayRef {
            Arc::new(TimestampMillisecondArray::from(v).with_timezone("UTC"))
        };
        let received: Vec<i64> = self.time.iter().map(|t| t + 1000).collect();
        let offsets: Vec<i64> = (self.offset..self.offset + n as i64).collect();
        self.offset += n as i64;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(std::mem::take(&mut self.company))),
            Arc::new(StringArray::from(std::mem::take(&mut self.vehicle))),
            time(std::mem::take(&mut self.time)),
            Arc::new(Float64Array::from(std::mem::take(&mut self.lat))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.lon))),
            Arc::new(Float32Array::from(std::mem::take(&mut self.speed))),
            Arc::new(Float32Array::from(std::mem::take(&mut self.heading))),
            Arc::new(StringArray::from(vec!["A"; n])),
            Arc::new(Float32Array::from(vec![None::<f32>; n])),
            Arc::new(Float32Array::from(vec![None::<f32>; n])),
            Arc::new(Float32Array::from(vec![None::<f32>; n])),
            Arc::new(Int32Array::from(vec![0; n])),
            Arc::new(BooleanArray::from(vec![false; n])),
            Arc::new(BooleanArray::from(vec![false; n])),
            Arc::new(BooleanArray::from(vec![false; n])),
            Arc::new(StringArray::from(std::mem::take(&mut self.trip_id))),
            time(received),
            Arc::new(StringArray::from(vec!["synthetic"; n])),
            Arc::new(Int32Array::from(vec![0; n])),
            Arc::new(Int64Array::from(offsets)),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
        ];
        RecordBatch::try_new(Table::Positions.schema(), columns)
    }
}

#[derive(Default)]
struct TripRows {
    company: Vec<String>,
    vehicle: Vec<String>,
    rows: Vec<TripRow>,
}

impl TripRows {
    fn push(&mut self, shape: &HistoryShape, v: usize, row: &TripRow) {
        self.company.push(company_name(v % shape.companies));
        self.vehicle.push(vehicle_name(v));
        self.rows.push(row.clone());
    }

    fn batch(self) -> Result<RecordBatch, ArrowError> {
        let r = &self.rows;
        let n = r.len();
        let f64s = |f: fn(&TripRow) -> f64| -> ArrayRef {
            Arc::new(r.iter().map(f).collect::<Float64Array>())
        };
        let opt = |f: fn(&TripRow) -> f64| -> ArrayRef {
            Arc::new(r.iter().map(|t| Some(f(t))).collect::<Float64Array>())
        };
        let time = |f: fn(&TripRow) -> i64| -> ArrayRef {
            Arc::new(
                TimestampMillisecondArray::from_iter_values(r.iter().map(f)).with_timezone("UTC"),
            )
        };
        let duration = |t: &TripRow| (t.end_ms - t.start_ms) as f64 / 1000.0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.company.clone())),
            Arc::new(StringArray::from(self.vehicle.clone())),
            Arc::new(
                r.iter()
                    .map(|t| Some(t.trip_id.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(r.iter().map(|t| t.version).collect::<Int64Array>()),
            Arc::new(r.iter().map(|t| Some(t.deleted)).collect::<BooleanArray>()),
            Arc::new(BooleanArray::from(vec![false; n])),
            Arc::new(StringArray::from(vec!["ignition"; n])),
            Arc::new(StringArray::from(vec![Some("ignition_off"); n])),
            time(|t| t.start_ms),
            time(|t| t.end_ms),
            opt(|t| t.start.0),
            opt(|t| t.start.1),
            opt(|t| t.end.0),
            opt(|t| t.end.1),
            f64s(|t| t.distance_m),
            Arc::new(Float64Array::from(vec![None::<f64>; n])),
            Arc::new(r.iter().map(duration).collect::<Float64Array>()),
            Arc::new(r.iter().map(duration).collect::<Float64Array>()),
            Arc::new(Float64Array::from(vec![0.0; n])),
            Arc::new(r.iter().map(|t| t.max_speed).collect::<Float32Array>()),
            Arc::new(
                r.iter()
                    .map(|t| t.distance_m / 1000.0 / (duration(t) / 3600.0).max(1e-9))
                    .collect::<Float64Array>(),
            ),
            Arc::new(r.iter().map(|t| t.points).collect::<Int32Array>()),
        ];
        RecordBatch::try_new(Table::Trips.schema(), columns)
    }
}

type EventSpec = (usize, i64, &'static str, Option<String>);

fn events_batch(shape: &HistoryShape, events: &[EventSpec]) -> Result<RecordBatch, ArrowError> {
    let mut events = events.to_vec();
    events.sort_by_key(|e| (e.0, e.1));
    let n = events.len();
    let time = |v: Vec<i64>| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(v).with_timezone("UTC"))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            events
                .iter()
                .map(|e| Some(company_name(e.0 % shape.companies)))
                .collect::<StringArray>(),
        ),
        Arc::new(
            events
                .iter()
                .map(|e| Some(vehicle_name(e.0)))
                .collect::<StringArray>(),
        ),
        time(events.iter().map(|e| e.1).collect()),
        Arc::new(events.iter().map(|e| Some(e.2)).collect::<StringArray>()),
        Arc::new(Float64Array::from(vec![None::<f64>; n])),
        Arc::new(Float64Array::from(vec![None::<f64>; n])),
        Arc::new(events.iter().map(|e| e.3.clone()).collect::<StringArray>()),
        Arc::new(Float64Array::from(vec![None::<f64>; n])),
        time(events.iter().map(|e| e.1 + 1000).collect()),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(BooleanArray::from(vec![None::<bool>; n])),
    ];
    RecordBatch::try_new(Table::Events.schema(), columns)
}

/// One invalid-position error per company a day, and one undecodable record no company owns.
fn errors_batch(shape: &HistoryShape, day_ms: i64) -> Result<RecordBatch, ArrowError> {
    let mut company = vec![None];
    let mut vehicle = vec![None];
    let mut reason = vec!["undecodable"];
    for c in 0..shape.companies.min(shape.vehicles) {
        company.push(Some(company_name(c)));
        vehicle.push(Some(vehicle_name(c)));
        reason.push("invalid_position");
    }
    let n = company.len();
    let at = day_ms + 12 * 3_600_000;
    let time = |v: Vec<Option<i64>>| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(v).with_timezone("UTC"))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(company)),
        Arc::new(StringArray::from(vehicle)),
        time(vec![Some(at); n]),
        Arc::new(StringArray::from(reason)),
        Arc::new(StringArray::from(vec!["synthetic"; n])),
        time(vec![Some(at + 1000); n]),
        Arc::new(Int32Array::from(vec![0; n])),
        Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
        time((0..n).map(|_| Some(at + 2000)).collect()),
    ];
    RecordBatch::try_new(Table::Errors.schema(), columns)
}

/// A table file of one day, written in batches and renamed into place when closed.
struct TableWriter {
    writer: ArrowWriter<std::fs::File>,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl TableWriter {
    fn open(
        data_dir: &Path,
        table: Table,
        dir: &str,
        shape: &HistoryShape,
    ) -> Result<Self, ParquetError> {
        let partition = data_dir.join(table.name()).join(dir);
        std::fs::create_dir_all(&partition)?;
        let path = partition.join("part-synthetic.parquet");
        let tmp = partition.join(".part-synthetic.parquet.tmp");
        let props = writer_properties(table, FileKind::Compacted)?
            .into_builder()
            .set_max_row_group_row_count(Some(shape.row_group_rows))
            .build();
        let writer =
            ArrowWriter::try_new(std::fs::File::create(&tmp)?, table.schema(), Some(props))?;
        Ok(TableWriter { writer, tmp, path })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ParquetError> {
        self.writer.write(batch)
    }

    fn close(self) -> Result<u64, ParquetError> {
        self.writer.close()?;
        std::fs::rename(&self.tmp, &self.path)?;
        Ok(std::fs::metadata(&self.path)?.len())
    }
}

fn write_one(
    data_dir: &Path,
    table: Table,
    dir: &str,
    shape: &HistoryShape,
    batch: &RecordBatch,
) -> Result<u64, ParquetError> {
    let mut w = TableWriter::open(data_dir, table, dir, shape)?;
    w.write(batch)?;
    w.close()
}
