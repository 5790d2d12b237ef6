//! Correctness by reference: the incremental sessionizer, alone and inside the timely dataflow
//! at 1 and 4 workers, agrees with the plain sequential reference on every trip, every
//! per-vehicle total and every vehicle's live state at every timestamp, on seeded random fleets
//! delivered out of order, with duplicates and late records.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fleetflow_model::{TelemetryRecord, TripRules, encode_to_vec};
use fleetflow_pipeline::live_store::{LiveStore, PublishLive};
use fleetflow_pipeline::live_views::{SummaryKey, fleet_summary};
use fleetflow_pipeline::reference::{reference_trips, reference_vehicles};
use fleetflow_pipeline::synthetic::{Delivery, FleetShape, deliver, generate};
use fleetflow_pipeline::{
    Epoch, Outputs, Provenance, RawRecord, RuleBook, Sessionize, Sessionizer, Trip, TripRecord,
    VehicleLive,
};
use timely::dataflow::InputHandleVec;

type TripSet = BTreeMap<String, Vec<Trip>>;

fn rules() -> RuleBook {
    // One company with tighter rules, to check per-company rules are applied.
    let tight = TripRules {
        dwell_distance_m: 120.0,
        dwell_secs: 90,
        gap_secs: 900,
        ..TripRules::default()
    };
    RuleBook::new(&TripRules::default()).with_company("co1", &tight)
}

/// Sums diffs into a multiset and checks every count is 0 or 1.
fn accumulate<T: Ord>(set: &mut BTreeMap<T, isize>, updates: impl IntoIterator<Item = (T, isize)>) {
    for (t, d) in updates {
        *set.entry(t).or_insert(0) += d;
    }
    set.retain(|_, d| *d != 0);
    assert!(
        set.values().all(|d| *d == 1),
        "a record held twice or retracted below zero"
    );
}

/// The accumulated `vehicles` collection, by vehicle (one state each).
fn as_vehicle_map(set: &BTreeMap<VehicleLive, isize>) -> BTreeMap<String, VehicleLive> {
    let map: BTreeMap<String, VehicleLive> =
        set.keys().map(|v| (v.vehicle.clone(), v.clone())).collect();
    assert_eq!(map.len(), set.len(), "a vehicle with two live states");
    map
}

fn as_trip_set(set: &BTreeMap<TripRecord, isize>) -> TripSet {
    let mut out: TripSet = BTreeMap::new();
    for t in set.keys() {
        out.entry(t.vehicle.clone()).or_default().push(t.trip);
    }
    for trips in out.values_mut() {
        trips.sort();
    }
    out
}

fn reference_sorted<'a>(records: impl IntoIterator<Item = &'a TelemetryRecord>) -> TripSet {
    let mut r = reference_trips(records, &rules());
    r.retain(|_, trips| !trips.is_empty());
    for trips in r.values_mut() {
        trips.sort();
    }
    r
}

/// Per vehicle: trips, total metres (mm), points, moving and idle ms.
fn totals(set: &TripSet) -> BTreeMap<String, (usize, u64, u64, i64, i64)> {
    set.iter()
        .map(|(v, trips)| {
            let t = trips.iter().fold((0, 0, 0, 0, 0), |acc, t| {
                (
                    acc.0 + 1,
                    acc.1 + t.distance_mm,
                    acc.2 + u64::from(t.points),
                    acc.3 + t.moving_ms,
                    acc.4 + t.idle_ms,
                )
            });
            (v.clone(), t)
        })
        .collect()
}

fn fleet(seed: u64) -> Vec<TelemetryRecord> {
    let shape = FleetShape {
        vehicles: 12,
        fixes_per_vehicle: 3_000,
        seed,
        ..FleetShape::default()
    };
    let delivery = Delivery {
        late_share: 0.15,
        max_delay: 300,
        duplicate_share: 0.08,
        seed: seed + 1,
    };
    deliver(generate(&shape), &delivery)
}

/// Splits arrival order into epochs of varying size.
fn epochs(records: &[TelemetryRecord], seed: u64) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut step = 1 + (seed as usize % 7);
    while at < records.len() {
        let end = (at + step).min(records.len());
        out.push(at..end);
        at = end;
        step = 1 + (step * 31 + 17) % 40;
    }
    out
}

#[test]
fn incremental_matches_reference_at_every_settle() {
    for seed in [1, 2, 3] {
        let records = fleet(seed);
        let mut s = Sessionizer::new(rules(), i64::MAX);
        let mut set = BTreeMap::new();
        let mut vehicles = BTreeMap::new();
        for range in epochs(&records, seed) {
            let mut out = Outputs::default();
            for (i, r) in records[range.clone()].iter().enumerate() {
                s.admit(
                    r,
                    Provenance {
                        partition: 0,
                        offset: (range.start + i) as i64,
                    },
                    &mut out,
                );
            }
            s.settle(&mut out);
            accumulate(&mut set, out.trips);
            accumulate(&mut vehicles, out.vehicles);
            let got = as_trip_set(&set);
            let want = reference_sorted(&records[..range.end]);
            assert_eq!(got, want, "seed {seed}, after record {}", range.end);
            assert_eq!(
                as_vehicle_map(&vehicles),
                reference_vehicles(&records[..range.end], &rules()),
                "seed {seed}, live state after record {}",
                range.end
            );
        }
        let stats = s.stats();
        assert!(
            stats.late > 100 && stats.duplicates > 100 && stats.retractions > 0,
            "{stats:?}"
        );
    }
}

type Updates<D> = Vec<(D, Epoch, isize)>;

/// What the dataflow produced: trip, vehicle and summary updates, and the live store as worker
/// 0 saw it after each epoch (checked there to be reachable by cursor from the epoch before).
struct Produced {
    trips: Updates<TripRecord>,
    vehicles: Updates<VehicleLive>,
    summary: Updates<(SummaryKey, isize)>,
    store: Vec<BTreeMap<String, VehicleLive>>,
}

/// Runs the dataflow at `workers` workers over `records` in the given epochs; returns the trip
/// and vehicle updates it produced.
fn run_dataflow(
    workers: usize,
    records: &[TelemetryRecord],
    ranges: &[std::ops::Range<usize>],
) -> Produced {
    let batches: Vec<Vec<RawRecord>> = ranges
        .iter()
        .map(|range| {
            range
                .clone()
                .map(|i| RawRecord {
                    partition: (i % 3) as i32,
                    offset: i as i64,
                    key: Some(records[i].vehicle.clone().into_bytes()),
                    payload: encode_to_vec(&records[i]),
                })
                .collect()
        })
        .collect();
    let batches = Arc::new(batches);
    let captured = Arc::new(Mutex::new(Vec::new()));
    let captured_vehicles = Arc::new(Mutex::new(Vec::new()));
    let captured_summary = Arc::new(Mutex::new(Vec::new()));
    let store_views = Arc::new(Mutex::new(Vec::new()));
    let views = store_views.clone();
    let (sink, vehicle_sink, summary_sink) = (
        captured.clone(),
        captured_vehicles.clone(),
        captured_summary.clone(),
    );
    timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandleVec::<Epoch, RawRecord>::new();
        let (sink, vehicle_sink, summary_sink) =
            (sink.clone(), vehicle_sink.clone(), summary_sink.clone());
        // A small change log, so cursors also expire in the test.
        let store = Arc::new(LiveStore::new(64));
        let views = views.clone();
        let probe = worker.dataflow::<Epoch, _, _>(|scope| {
            let streams = input
                .to_stream(scope)
                .sessionize(|| Sessionizer::new(rules(), i64::MAX));
            let (probe, _) = streams
                .trips
                .inspect(move |update| sink.lock().unwrap().push(update.clone()))
                .probe();
            streams
                .vehicles
                .clone()
                .inspect(move |update| vehicle_sink.lock().unwrap().push(update.clone()))
                .probe_with(&probe);
            fleet_summary(streams.vehicles.clone())
                .inspect(move |update| summary_sink.lock().unwrap().push(update.clone()))
                .probe_with(&probe);
            streams.vehicles.publish_live(store.clone());
            probe
        });
        for (epoch, batch) in batches.iter().enumerate() {
            if worker.index() == 0 {
                for raw in batch {
                    input.send(raw.clone());
                }
            }
            input.advance_to(epoch as Epoch + 1);
            while probe.less_than(input.time()) {
                worker.step();
            }
            if worker.index() == 0 {
                while store.read(|s| s.upto) <= epoch as Epoch {
                    worker.step();
                }
                let mut views = views.lock().unwrap();
                let now = store_view(&store);
                // A reader polling with the cursor it had after the epoch before gets exactly
                // what changed (or is told its cursor expired).
                if let Some((before, cursor)) = views.last().cloned()
                    && let Ok(changes) = store.read(|s| s.changes_since(cursor))
                {
                    let mut polled: BTreeMap<String, VehicleLive> = before;
                    for change in changes {
                        match change.state {
                            Some(state) => polled.insert(change.vehicle, state),
                            None => polled.remove(&change.vehicle),
                        };
                    }
                    assert_eq!(polled, now.0, "cursor polling after epoch {epoch}");
                }
                views.push(now);
            }
        }
    })
    .expect("timely runs");
    Produced {
        trips: take(captured),
        vehicles: take(captured_vehicles),
        summary: take(captured_summary),
        store: take(store_views)
            .into_iter()
            .map(|(view, _)| view)
            .collect(),
    }
}

fn take<T>(shared: Arc<Mutex<Vec<T>>>) -> Vec<T> {
    Arc::try_unwrap(shared)
        .ok()
        .expect("the workers are done")
        .into_inner()
        .expect("no worker panicked")
}

/// The store's vehicles by id, and its cursor.
fn store_view(store: &LiveStore) -> (BTreeMap<String, VehicleLive>, u64) {
    store.read(|s| {
        let view = s
            .vehicles
            .values()
            .map(|v| (v.vehicle.clone(), v.clone()))
            .collect();
        (view, s.seq)
    })
}

/// The updates at times `<= epoch` from `next` on; advances `next` past them.
fn upto<D: Clone>(
    updates: &[(D, Epoch, isize)],
    next: &mut usize,
    epoch: Epoch,
) -> Vec<(D, isize)> {
    let end = updates[*next..].partition_point(|(_, t, _)| *t <= epoch) + *next;
    let out = updates[*next..end]
        .iter()
        .map(|(d, _, r)| (d.clone(), *r))
        .collect();
    *next = end;
    out
}

#[test]
fn dataflow_matches_reference_at_every_timestamp_at_1_and_4_workers() {
    let seed = 5;
    let records = fleet(seed);
    let ranges = epochs(&records, seed);
    for workers in [1, 4] {
        let Produced {
            trips: mut updates,
            vehicles: mut vehicle_updates,
            summary: mut summary_updates,
            store,
        } = run_dataflow(workers, &records, &ranges);
        assert_eq!(store.len(), ranges.len());
        updates.sort_by_key(|(_, t, _)| *t);
        vehicle_updates.sort_by_key(|(_, t, _)| *t);
        summary_updates.sort_by_key(|(_, t, _)| *t);
        let (mut set, mut vehicles, mut summary) =
            (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let (mut next, mut next_vehicle, mut next_summary) = (0, 0, 0);
        for (epoch, range) in ranges.iter().enumerate() {
            let epoch = epoch as Epoch;
            accumulate(&mut set, upto(&updates, &mut next, epoch));
            accumulate(
                &mut vehicles,
                upto(&vehicle_updates, &mut next_vehicle, epoch),
            );
            let want_vehicles = reference_vehicles(&records[..range.end], &rules());
            assert_eq!(
                as_vehicle_map(&vehicles),
                want_vehicles,
                "{workers} workers, epoch {epoch}: live state"
            );
            assert_eq!(
                store[epoch as usize], want_vehicles,
                "{workers} workers, epoch {epoch}: the served live store"
            );
            accumulate(
                &mut summary,
                upto(&summary_updates, &mut next_summary, epoch),
            );
            let mut want_summary: BTreeMap<SummaryKey, isize> = BTreeMap::new();
            for v in want_vehicles.values() {
                let key = (v.company.clone(), v.state.ignition, v.state.motion());
                *want_summary.entry(key).or_default() += 1;
            }
            let got_summary: BTreeMap<SummaryKey, isize> = summary.keys().cloned().collect();
            assert_eq!(
                got_summary, want_summary,
                "{workers} workers, epoch {epoch}: fleet summary"
            );
            let got = as_trip_set(&set);
            let want = reference_sorted(&records[..range.end]);
            assert_eq!(
                totals(&got),
                totals(&want),
                "{workers} workers, epoch {epoch}: per-vehicle totals"
            );
            assert_eq!(got, want, "{workers} workers, epoch {epoch}");
        }
        assert_eq!(next, updates.len());
        assert_eq!(next_vehicle, vehicle_updates.len());
    }
}
