//! Correctness by reference for the rollups: the dataflow with its Parquet sink, at 1 and 2
//! workers, over seeded random fleets delivered out of order with duplicates and late records,
//! writes rollup changes whose sums per key equal the same aggregates computed plainly from
//! the `positions` and `trips` tables it wrote (accepted fixes per period; the current version
//! of each trip, in the period it started in), per vehicle and per company, per hour and per
//! day; and compaction, which consolidates the changes to one row per key, changes no value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, Float64Type, Int32Type, Int64Type, TimestampMillisecondType};
use fleetflow_model::{ROLLUP_SUMS, Rollup, Table, TripRules};
use fleetflow_pipeline::sink::parquet_sink::{SinkConfig, WriteParquet};
use fleetflow_pipeline::{Epoch, RawRecord, RuleBook, Sessionize, Sessionizer};
use fleetflow_tables::commit_log::CommitLog;
use fleetflow_tables::compaction::{CompactionConfig, FileRows, compact_once};
use fleetflow_tables::table_reader::{read_table, table_files};
use timely::dataflow::InputHandleVec;
use timely::dataflow::operators::core::Probe;

mod common;
use common::{epochs, fleet, raw_batches};

/// A rollup key: company, vehicle ("" in the company rollups), period start.
type Key = (String, String, i64);

/// A key's value: the sums of [`ROLLUP_SUMS`], maximum speed, first and last fix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Value {
    sums: [i64; 6],
    max_speed: Option<i32>,
    first: Option<i64>,
    last: Option<i64>,
}

impl Value {
    fn merge(&mut self, o: &Value) {
        for (a, b) in self.sums.iter_mut().zip(o.sums) {
            *a += b;
        }
        self.max_speed = self.max_speed.max(o.max_speed);
        self.first = match (self.first, o.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = self.last.max(o.last);
    }
}

type Values = BTreeMap<Key, Value>;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fleetflow-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn rules() -> RuleBook {
    RuleBook::new(&TripRules::default())
}

/// Runs the dataflow and its sink (a window every 3 epochs) over `records` in `ranges`.
fn run(
    workers: usize,
    dir: &Path,
    records: &[fleetflow_model::TelemetryRecord],
    ranges: &[std::ops::Range<usize>],
) {
    let batches = Arc::new(raw_batches(records, ranges));
    let dir = dir.to_owned();
    timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandleVec::<Epoch, RawRecord>::new();
        let dir = dir.clone();
        let probe = worker.dataflow::<Epoch, _, _>(|scope| {
            let streams = input
                .to_stream(scope)
                .sessionize(|| Sessionizer::new(rules(), i64::MAX));
            let (probe, positions) = streams.positions.probe();
            let streams = fleetflow_pipeline::SessionStreams {
                positions,
                ..streams
            };
            let offsets = timely::dataflow::operators::generic::operator::empty(scope);
            let config = SinkConfig::new(CommitLog::new(dir), 3, None);
            streams.write_parquet(offsets, config);
            probe
        });
        // Timestamp 0 means replay (the sink drops it): start at 1.
        input.advance_to(1);
        for (i, batch) in batches.iter().enumerate() {
            if worker.index() == 0 {
                for raw in batch {
                    input.send(raw.clone());
                }
            }
            input.advance_to(i as Epoch + 2);
            worker.step_while(|| probe.less_than(input.time()));
        }
        input.close();
        while worker.step() {}
    })
    .expect("timely runs");
}

fn text(b: &RecordBatch, name: &str, i: usize) -> String {
    b.column_by_name(name)
        .unwrap()
        .as_string::<i32>()
        .value(i)
        .to_owned()
}

fn int(b: &RecordBatch, name: &str, i: usize) -> i64 {
    b.column_by_name(name)
        .unwrap()
        .as_primitive::<Int64Type>()
        .value(i)
}

fn time(b: &RecordBatch, name: &str, i: usize) -> Option<i64> {
    let a = b
        .column_by_name(name)
        .unwrap()
        .as_primitive::<TimestampMillisecondType>();
    a.is_valid(i).then(|| a.value(i))
}

fn float(b: &RecordBatch, name: &str, i: usize) -> f64 {
    b.column_by_name(name)
        .unwrap()
        .as_primitive::<Float64Type>()
        .value(i)
}

fn flag(b: &RecordBatch, name: &str, i: usize) -> bool {
    b.column_by_name(name).unwrap().as_boolean().value(i)
}

/// The key of `rollup` a row of `company`, `vehicle` at `time_ms` counts in.
fn key_of(rollup: Rollup, company: &str, vehicle: &str, time_ms: i64) -> Key {
    let period = rollup.period_ms();
    let vehicle = if rollup.per_vehicle() { vehicle } else { "" };
    (
        company.to_owned(),
        vehicle.to_owned(),
        time_ms.div_euclid(period) * period,
    )
}

/// `rollup` summed from its change rows; also how many rows it has.
fn rollup_values(dir: &Path, rollup: Rollup) -> (Values, usize) {
    let mut out = Values::new();
    let mut rows = 0;
    for b in read_table(dir, rollup.table()).unwrap() {
        rows += b.num_rows();
        let speed = b
            .column_by_name("max_speed_dkmh")
            .unwrap()
            .as_primitive::<Int32Type>();
        for i in 0..b.num_rows() {
            let vehicle = if rollup.per_vehicle() {
                text(&b, "vehicle", i)
            } else {
                String::new()
            };
            let period = time(&b, rollup.period_column(), i).unwrap();
            let key = (text(&b, "company", i), vehicle, period);
            let mut value = Value {
                max_speed: speed.is_valid(i).then(|| speed.value(i)),
                first: time(&b, "first_fix", i),
                last: time(&b, "last_fix", i),
                ..Value::default()
            };
            for (s, name) in value.sums.iter_mut().zip(ROLLUP_SUMS) {
                *s = int(&b, name, i);
            }
            out.entry(key).or_default().merge(&value);
        }
    }
    out.retain(|_, v| v.sums[0] != 0 || v.sums[4] != 0);
    (out, rows)
}

/// The same aggregates, plainly: accepted fixes from `positions`, current trips from `trips`.
fn plain_values(dir: &Path, rollup: Rollup) -> Values {
    let mut out = Values::new();
    for b in read_table(dir, Table::Positions).unwrap() {
        let speed = b
            .column_by_name("speed_kmh")
            .unwrap()
            .as_primitive::<Float32Type>();
        for i in 0..b.num_rows() {
            if flag(&b, "invalid", i) || flag(&b, "jump", i) {
                continue;
            }
            let t = time(&b, "time", i).unwrap();
            let dkmh = (f64::from(speed.value(i)) * 10.0).round() as i64;
            let key = key_of(rollup, &text(&b, "company", i), &text(&b, "vehicle", i), t);
            out.entry(key).or_default().merge(&Value {
                sums: [0, 0, 0, 0, 1, dkmh],
                max_speed: Some(dkmh as i32),
                first: Some(t),
                last: Some(t),
            });
        }
    }
    // The current version of each trip: its highest, unless deleted.
    // Per (company, trip id): version, deleted, key, (distance mm, moving ms, idle ms).
    type TripVersion = (i64, bool, Key, [i64; 3]);
    let mut trips: BTreeMap<(String, String), TripVersion> = BTreeMap::new();
    for b in read_table(dir, Table::Trips).unwrap() {
        for i in 0..b.num_rows() {
            let (company, vehicle) = (text(&b, "company", i), text(&b, "vehicle", i));
            let start = time(&b, "start_time", i).unwrap();
            let version = int(&b, "version", i);
            let measures = [
                (float(&b, "distance_m", i) * 1000.0).round() as i64,
                (float(&b, "moving_s", i) * 1000.0).round() as i64,
                (float(&b, "idle_s", i) * 1000.0).round() as i64,
            ];
            let row = (
                version,
                flag(&b, "deleted", i),
                key_of(rollup, &company, &vehicle, start),
                measures,
            );
            let id = (company, text(&b, "trip_id", i));
            if trips.get(&id).is_none_or(|(v, ..)| *v < version) {
                trips.insert(id, row);
            }
        }
    }
    for (_, deleted, key, [distance, moving, idle]) in trips.into_values() {
        if !deleted {
            out.entry(key).or_default().merge(&Value {
                sums: [1, distance, moving, idle, 0, 0],
                ..Value::default()
            });
        }
    }
    out
}

#[test]
fn rollups_equal_the_plain_aggregates_of_positions_and_trips_at_1_and_2_workers() {
    for (seed, workers) in [(11, 1), (12, 2)] {
        let records = fleet(seed);
        let ranges = epochs(&records, seed);
        let dir = temp_dir(&format!("rollups-{workers}"));
        run(workers, &dir, &records, &ranges);
        let mut compacted = 0;
        for pass in ["as written", "compacted"] {
            for rollup in Rollup::ALL {
                let (got, rows) = rollup_values(&dir, rollup);
                let want = plain_values(&dir, rollup);
                assert!(!want.is_empty());
                assert_eq!(
                    got,
                    want,
                    "seed {seed}, {workers} worker(s), {} {pass}",
                    rollup.view()
                );
                if pass == "compacted" {
                    assert_eq!(rows, got.len(), "{}: one row per key", rollup.view());
                } else {
                    assert!(
                        rows > got.len(),
                        "{}: windows changed keys again",
                        rollup.view()
                    );
                }
            }
            let config = CompactionConfig {
                min_files: 2,
                target_rows: 100_000_000,
                ..CompactionConfig::default()
            };
            let log = CommitLog::new(&dir);
            let resume = log.recover().expect("recover");
            let writer = fleetflow_tables::commit_log::CommitWriter::new(log, resume);
            compacted += compact_once(&writer, &config, &mut FileRows::default())
                .unwrap()
                .merges;
        }
        assert!(compacted > 0);
        let files = table_files(&dir, Table::VehicleHourly).unwrap().len();
        println!(
            "seed {seed}, {workers} worker(s): {compacted} merges, vehicle_hourly in {files} files"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
