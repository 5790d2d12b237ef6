//! Correctness by reference for items beyond the correction horizon (issue 38): fleets with
//! trips of several hours, each vehicle's batches permuted arbitrarily (event-time delays up to
//! the whole run), duplicates, a horizon of minutes; the sessionizer with its archive, alone and
//! with a crash and restart in the middle, agrees with the plain sequential reference on every
//! trip and every trip and machine event, net of retractions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fleetflow_model::{Item, TelemetryRecord, TripRules};
use fleetflow_pipeline::rows::{EventKind, EventRow, VehicleName};
use fleetflow_pipeline::synthetic::{FleetShape, generate};
use fleetflow_pipeline::trips::archive::Archive;
use fleetflow_pipeline::trips::reference::{reference_events, reference_trips};
use fleetflow_pipeline::{
    Epoch, Outputs, RawRecord, RuleBook, Sessionize, Sessionizer, Trip, TripRecord,
};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use timely::dataflow::InputHandleVec;
use timely::dataflow::operators::core::{Inspect, Probe};

mod common;
use common::{admit_and_settle, epochs, machine_made, raw_batches};

/// Ten minutes: most items of a permuted fleet arrive beyond it.
const HORIZON_MS: i64 = 600_000;

fn rules() -> RuleBook {
    let strict = TripRules {
        overspeed_kmh: 80.0,
        overspeed_secs: 2,
        ..TripRules::default()
    };
    RuleBook::new(&strict)
}

/// `hours` of 1 Hz fixes for each of `vehicles`, then each vehicle's batches in arrival order:
/// some vehicles wholly shuffled, the others with a share of batches moved arbitrarily later;
/// duplicates throughout. A batch can arrive up to the whole run late.
fn permuted_fleet(seed: u64) -> Vec<TelemetryRecord> {
    permuted(seed, 6, 6)
}

fn permuted(seed: u64, vehicles: usize, hours: usize) -> Vec<TelemetryRecord> {
    let shape = FleetShape {
        vehicles,
        fixes_per_vehicle: hours * 3_600,
        seed,
        ..FleetShape::default()
    };
    let mut rng = SmallRng::seed_from_u64(seed + 100);
    let mut by_vehicle: BTreeMap<String, Vec<TelemetryRecord>> = BTreeMap::new();
    for r in generate(&shape) {
        by_vehicle.entry(r.vehicle.clone()).or_default().push(r);
    }
    // (arrival rank, record): each vehicle's own order decided, then vehicles interleaved.
    let mut arrivals: Vec<(f64, TelemetryRecord)> = Vec::new();
    for (v, mut records) in by_vehicle.into_values().enumerate() {
        if v % 2 == 0 {
            records.shuffle(&mut rng);
        } else {
            let n = records.len();
            let mut ranked: Vec<(usize, TelemetryRecord)> = records
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let at = if rng.random_bool(0.2) {
                        rng.random_range(i..n + n / 2)
                    } else {
                        i
                    };
                    (at, r)
                })
                .collect();
            ranked.sort_by_key(|(at, _)| *at);
            records = ranked.into_iter().map(|(_, r)| r).collect();
        }
        let n = records.len() as f64;
        for (i, r) in records.into_iter().enumerate() {
            let rank = i as f64 / n;
            if rng.random_bool(0.05) {
                arrivals.push((rank + rng.random_range(0.0..0.3), r.clone()));
            }
            arrivals.push((rank, r));
        }
    }
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
    arrivals.into_iter().map(|(_, r)| r).collect()
}

type EventKey = (Arc<str>, EventKind, i64, Option<i64>, Option<u64>);

fn event_key(e: &EventRow) -> EventKey {
    (
        e.vehicle.clone(),
        e.kind,
        e.time_ms,
        e.trip_start_ms,
        e.value.map(f64::to_bits),
    )
}

/// The results so far: trips and the trip machine's events, as multisets of changes.
#[derive(Default)]
struct Results {
    trips: BTreeMap<(Arc<str>, Trip), isize>,
    events: BTreeMap<EventKey, isize>,
    positions: usize,
}

impl Results {
    fn add(&mut self, out: Outputs) {
        for (t, d) in out.trips {
            *self.trips.entry((t.vehicle.clone(), t.trip)).or_insert(0) += d;
        }
        for e in out.events.iter().filter(|e| machine_made(e)) {
            let d = if e.retraction { -1 } else { 1 };
            *self.events.entry(event_key(e)).or_insert(0) += d;
        }
        self.positions += out.positions.len();
        self.trips.retain(|_, d| *d != 0);
        self.events.retain(|_, d| *d != 0);
        let twice: Vec<_> = self.trips.iter().filter(|(_, d)| **d != 1).collect();
        assert!(twice.is_empty(), "trips held other than once: {twice:?}");
        assert!(self.events.values().all(|d| *d == 1), "an event held twice");
    }

    fn trips(&self) -> BTreeMap<Arc<str>, Vec<Trip>> {
        let mut out: BTreeMap<Arc<str>, Vec<Trip>> = BTreeMap::new();
        for (v, t) in self.trips.keys() {
            out.entry(v.clone()).or_default().push(*t);
        }
        out
    }
}

fn reference(
    records: &[TelemetryRecord],
) -> (BTreeMap<Arc<str>, Vec<Trip>>, BTreeMap<EventKey, isize>) {
    let mut trips = BTreeMap::new();
    for ((_, vehicle), mut list) in reference_trips(records, &rules()) {
        if !list.is_empty() {
            list.sort();
            trips.insert(Arc::from(vehicle.as_str()), list);
        }
    }
    let mut events = BTreeMap::new();
    for ((company, vehicle), list) in reference_events(records, &rules()) {
        let name = VehicleName::new(company.as_str().into(), vehicle.as_str().into());
        for e in list {
            *events.entry(event_key(&e.row(&name, false))).or_insert(0) += 1;
        }
    }
    (trips, events)
}

/// Distinct fixes (vehicle, time): each is one `positions` row, exactly once.
fn distinct_fixes(records: &[TelemetryRecord]) -> usize {
    let mut keys = std::collections::BTreeSet::new();
    for r in records {
        for item in &r.items {
            if let Item::Fix(f) = item {
                keys.insert((r.vehicle.as_str(), f.time_ms));
            }
        }
    }
    keys.len()
}

/// `got` holds exactly the sequential reference's trips and events over `records` and, when it
/// captured them, one `positions` row per distinct fix.
fn assert_reference(got: &Results, records: &[TelemetryRecord], what: &str, positions: bool) {
    let (trips, events) = reference(records);
    assert_eq!(got.trips(), trips, "{what}: trips");
    assert_eq!(got.events, events, "{what}: trip and machine events");
    if positions {
        assert_eq!(got.positions, distinct_fixes(records), "{what}: positions");
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fleetflow-repair-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn archived(dir: &Path, upto_epoch: u64, fresh: bool) -> Sessionizer {
    let archive = Archive::open(dir, 0, 1, upto_epoch, fresh).expect("archive opens");
    Sessionizer::new(rules(), HORIZON_MS).with_archive(archive)
}

#[test]
fn items_beyond_the_horizon_correct_trips_and_events() {
    // Two 6-hour fleets of six vehicles, and a 26-hour one of three: delays up to a day.
    for (seed, records) in [
        (1, permuted_fleet(1)),
        (2, permuted_fleet(2)),
        (6, permuted(6, 3, 26)),
    ] {
        let dir = temp_dir(&format!("alone-{seed}"));
        let mut s = archived(&dir, 0, true);
        let mut got = Results::default();
        for (i, range) in epochs(&records, seed).into_iter().enumerate() {
            s.begin_epoch(i as u64 + 1);
            got.add(admit_and_settle(&mut s, &records, range));
        }
        let (trips, _) = reference(&records);
        // Without the archive, the same horizon gets them wrong: the test is about them.
        let mut plain = Sessionizer::new(rules(), HORIZON_MS);
        let mut without = Results::default();
        for range in epochs(&records, seed) {
            without.add(admit_and_settle(&mut plain, &records, range));
        }
        assert_ne!(without.trips(), trips, "seed {seed}: a horizon-bound run");
        let longest = trips
            .values()
            .flatten()
            .map(|t| t.end_ms - t.start_ms)
            .max();
        let count = trips.values().map(Vec::len).sum::<usize>();
        eprintln!("seed {seed}: {count} trips, the longest {longest:?} ms");
        assert!(
            longest.is_some_and(|ms| ms > 2 * 3_600_000),
            "trips of several hours"
        );
        let stats = s.stats();
        eprintln!("seed {seed}: {stats:?} {:?}", s.archive_stats());
        assert!(
            stats.beyond_horizon > 10_000 && stats.repairs > 100,
            "{stats:?}"
        );
        assert_eq!(stats.unrepairable, 0);
        assert_reference(&got, &records, &format!("seed {seed}"), true);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A crash after epoch `crash`, with the last commit at epoch `commit`: the rows of later
/// epochs are lost, the archive is undone to the commit, and the restart replays from the
/// smallest offset the commit said was still held (rows dropped) before going on.
#[test]
fn a_restart_in_the_middle_of_repairs_is_exactly_once() {
    for seed in [3, 4] {
        let records = permuted_fleet(seed);
        let ranges = epochs(&records, seed);
        let dir = temp_dir(&format!("restart-{seed}"));
        let (commit, crash) = (ranges.len() / 2, ranges.len() / 2 + 7);
        let mut s = archived(&dir, 0, true);
        let mut committed = Results::default();
        let mut replay_from = 0;
        for (i, range) in ranges[..crash].iter().enumerate() {
            let epoch = i as u64 + 1;
            s.begin_epoch(epoch);
            let out = admit_and_settle(&mut s, &records, range.clone());
            if i < commit {
                committed.add(out);
                replay_from = s
                    .retained_offsets()
                    .get(&0)
                    .map_or(range.end, |&o| o as usize);
            }
        }
        drop(s);
        // The commit covered epochs 1..=commit: the archive is undone from epoch commit + 1.
        let mut s = archived(&dir, commit as u64 + 1, false);
        s.begin_epoch(0);
        let end = ranges[commit - 1].end;
        let _replayed = admit_and_settle(&mut s, &records, replay_from..end);
        let mut got = committed;
        for (i, range) in ranges.iter().enumerate().skip(commit) {
            s.begin_epoch(i as u64 + 1000);
            got.add(admit_and_settle(&mut s, &records, range.clone()));
        }
        assert_reference(&got, &records, &format!("seed {seed}"), true);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// One run of the dataflow at `workers` workers, each with its archive in `dir` (undone to
/// `upto_epoch`, as a restart after a commit covering the epochs before it does).
struct Run<'a> {
    workers: usize,
    dir: &'a Path,
    upto_epoch: u64,
    /// Records replayed at time 0 (their rows dropped, as the sink drops them).
    replay: Vec<RawRecord>,
    /// (time, batch): the records read at each time.
    batches: Vec<(Epoch, Vec<RawRecord>)>,
}

/// What a run produced: trip and event changes with their times, and what each worker reported
/// holding after each time (time, worker, partition, smallest offset).
#[derive(Default)]
struct Produced {
    trips: Vec<(TripRecord, Epoch, isize)>,
    events: Vec<(EventRow, Epoch)>,
    held: Vec<(Epoch, usize, i32, i64)>,
}

impl Produced {
    /// The changes at times in `times`.
    fn outputs(&self, times: std::ops::RangeInclusive<Epoch>) -> Outputs {
        Outputs {
            trips: self
                .trips
                .iter()
                .filter(|(_, t, _)| times.contains(t))
                .map(|(r, _, d)| (r.clone(), *d))
                .collect(),
            events: self
                .events
                .iter()
                .filter(|(_, t)| times.contains(t))
                .map(|(e, _)| e.clone())
                .collect(),
            ..Outputs::default()
        }
    }

    /// Per partition, the smallest offset some worker held after time `at` (each worker's last
    /// report at or before it): where a restart from a commit covering `..=at` replays from.
    fn replay_from(&self, at: Epoch) -> BTreeMap<i32, i64> {
        let mut last: BTreeMap<usize, Epoch> = BTreeMap::new();
        for &(t, w, _, _) in self.held.iter().filter(|h| h.0 <= at) {
            let slot = last.entry(w).or_insert(t);
            *slot = (*slot).max(t);
        }
        let mut from = BTreeMap::new();
        for &(t, w, p, o) in &self.held {
            if last.get(&w) == Some(&t) {
                let slot = from.entry(p).or_insert(o);
                *slot = (*slot).min(o);
            }
        }
        from
    }
}

fn run_dataflow(run: Run<'_>) -> Produced {
    let produced = Arc::new(Mutex::new(Produced::default()));
    let sink = produced.clone();
    let dir = run.dir.to_owned();
    let (upto_epoch, replay, batches) =
        (run.upto_epoch, Arc::new(run.replay), Arc::new(run.batches));
    timely::execute(timely::Config::process(run.workers), move |worker| {
        let archive = Archive::open(
            &dir,
            worker.index(),
            worker.peers(),
            upto_epoch,
            upto_epoch == 0,
        )
        .expect("archive opens");
        let mut input = InputHandleVec::<Epoch, RawRecord>::new();
        let (trip_sink, event_sink, held_sink) = (sink.clone(), sink.clone(), sink.clone());
        let probe = worker.dataflow::<Epoch, _, _>(|scope| {
            let streams = input
                .to_stream(scope)
                .sessionize(move || Sessionizer::new(rules(), HORIZON_MS).with_archive(archive));
            let (probe, _) = streams
                .trips
                .inspect(move |(r, t, d)| trip_sink.lock().unwrap().trips.push((r.clone(), *t, *d)))
                .probe();
            streams
                .events
                .inspect_time(move |t, e| event_sink.lock().unwrap().events.push((e.clone(), *t)))
                .probe_with(&probe);
            streams
                .retained
                .inspect_time(move |t, &(w, p, o)| {
                    held_sink.lock().unwrap().held.push((*t, w, p, o))
                })
                .probe_with(&probe);
            probe
        });
        if worker.index() == 0 {
            for raw in replay.iter() {
                input.send(raw.clone());
            }
        }
        for (time, batch) in batches.iter() {
            input.advance_to(*time);
            if worker.index() == 0 {
                for raw in batch {
                    input.send(raw.clone());
                }
            }
        }
        input.close();
        while worker.step() {}
        drop(probe);
    })
    .expect("timely runs");
    std::mem::take(&mut *produced.lock().unwrap())
}

/// The epochs of `ranges` as the dataflow reads them: batch `i` at time `i + 1`; each vehicle's
/// records in one partition of three, as Kafka keys them (a restart replays per partition from
/// the smallest offset held, which tracks each vehicle under its partition).
fn timed(
    records: &[TelemetryRecord],
    ranges: &[std::ops::Range<usize>],
) -> Vec<(Epoch, Vec<RawRecord>)> {
    raw_batches(records, ranges)
        .into_iter()
        .enumerate()
        .map(|(i, mut batch)| {
            for raw in &mut batch {
                let key = raw.key.as_deref().unwrap_or_default();
                raw.partition = (key.iter().map(|&b| u32::from(b)).sum::<u32>() % 3) as i32;
            }
            (i as Epoch + 1, batch)
        })
        .collect()
}

#[test]
fn the_dataflow_repairs_at_1_and_2_workers() {
    let seed = 5;
    let records = permuted_fleet(seed);
    let ranges = epochs(&records, seed);
    for workers in [1, 2] {
        let dir = temp_dir(&format!("dataflow-{workers}"));
        let produced = run_dataflow(Run {
            workers,
            dir: &dir,
            upto_epoch: 0,
            replay: Vec::new(),
            batches: timed(&records, &ranges),
        });
        let mut got = Results::default();
        got.add(produced.outputs(0..=Epoch::MAX));
        assert_reference(&got, &records, &format!("{workers} workers"), false);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The dataflow at 1 and 2 workers killed in the middle of repairs: the last commit covered
/// times up to `commit`, the run went on to `crash`; the restart undoes the archive to the
/// commit, replays from where the workers said they held items (rows dropped) and goes on.
/// What the commit covered plus what the restart made equals the reference.
#[test]
fn the_dataflow_restarted_in_the_middle_of_repairs_at_1_and_2_workers() {
    let seed = 7;
    let records = permuted_fleet(seed);
    let ranges = epochs(&records, seed);
    let all = timed(&records, &ranges);
    let raw: Vec<RawRecord> = all.iter().flat_map(|(_, batch)| batch.clone()).collect();
    let (commit, crash) = (ranges.len() / 2, ranges.len() / 2 + 9);
    for workers in [1, 2] {
        let dir = temp_dir(&format!("dataflow-restart-{workers}"));
        let first = run_dataflow(Run {
            workers,
            dir: &dir,
            upto_epoch: 0,
            replay: Vec::new(),
            batches: all[..crash].to_vec(),
        });
        let committed_upto = commit as Epoch;
        let mut got = Results::default();
        got.add(first.outputs(1..=committed_upto));
        // Records before the commit's offsets, from where some worker still held items.
        let end = ranges[commit - 1].end;
        let from = first.replay_from(committed_upto);
        let replay: Vec<RawRecord> = raw[..end]
            .iter()
            .filter(|r| from.get(&r.partition).is_some_and(|&o| r.offset >= o))
            .cloned()
            .collect();
        assert!(!replay.is_empty() && replay.len() < end, "a partial replay");
        let second = run_dataflow(Run {
            workers,
            dir: &dir,
            upto_epoch: committed_upto + 1,
            replay,
            batches: all[commit..].to_vec(),
        });
        got.add(second.outputs(committed_upto + 1..=Epoch::MAX));
        assert_reference(
            &got,
            &records,
            &format!("{workers} workers, restarted"),
            false,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
