//! Correctness by reference: the incremental sessionizer, alone and inside the timely dataflow
//! at 1 and 4 workers, agrees with the plain sequential reference on every trip and every
//! per-vehicle total at every timestamp, on seeded random fleets delivered out of order, with
//! duplicates and late records.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fleetflow_model::{TelemetryRecord, TripRules, encode_to_vec};
use fleetflow_pipeline::reference::reference_trips;
use fleetflow_pipeline::synthetic::{Delivery, FleetShape, deliver, generate};
use fleetflow_pipeline::{
    Epoch, Outputs, Provenance, RawRecord, RuleBook, Sessionize, Sessionizer, Trip, TripRecord,
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
fn accumulate(
    set: &mut BTreeMap<TripRecord, isize>,
    updates: impl IntoIterator<Item = (TripRecord, isize)>,
) {
    for (t, d) in updates {
        *set.entry(t).or_insert(0) += d;
    }
    set.retain(|_, d| *d != 0);
    assert!(
        set.values().all(|d| *d == 1),
        "a trip held twice or retracted below zero"
    );
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
            let got = as_trip_set(&set);
            let want = reference_sorted(&records[..range.end]);
            assert_eq!(got, want, "seed {seed}, after record {}", range.end);
        }
        let stats = s.stats();
        assert!(
            stats.late > 100 && stats.duplicates > 100 && stats.retractions > 0,
            "{stats:?}"
        );
    }
}

/// Runs the dataflow at `workers` workers over `records` in the given epochs; returns the trip
/// updates it produced.
fn run_dataflow(
    workers: usize,
    records: &[TelemetryRecord],
    ranges: &[std::ops::Range<usize>],
) -> Vec<(TripRecord, Epoch, isize)> {
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
    let sink = captured.clone();
    timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandleVec::<Epoch, RawRecord>::new();
        let sink = sink.clone();
        let probe = worker.dataflow::<Epoch, _, _>(|scope| {
            let streams = input
                .to_stream(scope)
                .sessionize(|| Sessionizer::new(rules(), i64::MAX));
            let (probe, _) = streams
                .trips
                .inspect(move |update| sink.lock().unwrap().push(update.clone()))
                .probe();
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
        }
    })
    .expect("timely runs");
    Arc::try_unwrap(captured).unwrap().into_inner().unwrap()
}

#[test]
fn dataflow_matches_reference_at_every_timestamp_at_1_and_4_workers() {
    let seed = 5;
    let records = fleet(seed);
    let ranges = epochs(&records, seed);
    for workers in [1, 4] {
        let mut updates = run_dataflow(workers, &records, &ranges);
        updates.sort_by_key(|(_, t, _)| *t);
        let mut set = BTreeMap::new();
        let mut next = 0;
        for (epoch, range) in ranges.iter().enumerate() {
            let epoch = epoch as Epoch;
            let upto = updates[next..].partition_point(|(_, t, _)| *t <= epoch) + next;
            accumulate(
                &mut set,
                updates[next..upto].iter().map(|(d, _, r)| (d.clone(), *r)),
            );
            next = upto;
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
    }
}
