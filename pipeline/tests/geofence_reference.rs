//! Correctness by reference, geofences: the visits (and the `geofence_enter` / `geofence_exit`
//! events, net of their retractions) that the incremental sessionizer and the timely dataflow
//! at 1 and 2 workers find equal the plain sequential reference's, on seeded random fleets
//! delivered out of order, with duplicates and late records, against circles, polygons with
//! holes and multipolygons, some created, edited or deleted while the fleet drives, and one
//! created while the dataflow runs (its fixes already settled are re-run).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fleetflow_geofences::geofence::{NewGeofence, Version};
use fleetflow_geofences::visit::Visit;
use fleetflow_geofences::{Geofence, GeofenceIndex};
use fleetflow_model::{EventKind, Fix, GpsStatus, Item, Source, TelemetryRecord, TripRules};
use fleetflow_pipeline::trips::geofence_feed::GeofenceFeed;
use fleetflow_pipeline::trips::reference::{VehicleKey, reference_visits};
use fleetflow_pipeline::{
    Epoch, EventRow, Outputs, Provenance, RawRecord, RuleBook, Sessionize, Sessionizer, VisitRecord,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use timely::dataflow::InputHandleVec;
use timely::dataflow::operators::Inspect;
use timely::dataflow::operators::probe::Probe;

mod common;
use common::{FLEET_START_MS, admit_and_settle, epochs, fleet, raw_batches};

fn rules() -> RuleBook {
    RuleBook::new(&TripRules::default())
}

fn version(request: serde_json::Value, from_ms: i64) -> Version {
    serde_json::from_value::<NewGeofence>(request)
        .unwrap()
        .validate(from_ms)
        .unwrap()
}

fn square(lon: f64, lat: f64, side: f64) -> serde_json::Value {
    json!([
        [lon, lat],
        [lon + side, lat],
        [lon + side, lat + side],
        [lon, lat + side],
        [lon, lat]
    ])
}

/// Random geofences where the fleet drives, for its three companies: each centred on a random
/// fix of one of its company's vehicles, as circles, squares with a square hole, and two-square
/// multipolygons; every fifth applies only from the middle of the drive (created then), a few
/// are edited then, and some are deleted then.
fn geofences(records: &[TelemetryRecord], seed: u64) -> Vec<Geofence> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let middle = FLEET_START_MS + 1_500_000;
    (0..60)
        .map(|i| {
            let company = format!("co{}", i % 3);
            let fix = loop {
                let r = &records[rng.random_range(0..records.len())];
                if r.company != company {
                    continue;
                }
                let item = &r.items[rng.random_range(0..r.items.len())];
                let fix = item.fix();
                if fix.lat_e7 != 0 {
                    break fix;
                }
            };
            let (lat, lon) = (f64::from(fix.lat_e7) / 1e7, f64::from(fix.lon_e7) / 1e7);
            let side = 0.004 + rng.random::<f64>() * 0.012;
            let (lon, lat) = (lon - side / 2.0, lat - side / 2.0);
            let request = match i % 3 {
                0 => json!({"name": "c", "center": {"lat": lat, "lon": lon}, "radius_m": side * 60_000.0}),
                1 => json!({"name": "p", "geometry": {"type": "Polygon", "coordinates": [
                    square(lon, lat, side), square(lon + side / 4.0, lat + side / 4.0, side / 2.0)
                ]}}),
                _ => json!({"name": "m", "geometry": {"type": "MultiPolygon", "coordinates": [
                    [square(lon, lat, side)], [square(lon + 2.0 * side, lat, side)]
                ]}}),
            };
            let from_ms = if i % 5 == 4 { middle } else { FLEET_START_MS - 1 };
            let mut versions = vec![version(request, from_ms)];
            if i % 7 == 3 {
                versions.push(version(
                    json!({"name": "moved", "center": {"lat": lat + side / 3.0, "lon": lon}, "radius_m": side * 40_000.0}),
                    middle + 300_000,
                ));
            }
            Geofence {
                id: format!("g{i:02}"),
                company,
                versions,
                deleted_ms: (i % 11 == 6).then_some(middle + 600_000),
            }
        })
        .collect()
}

type Visits = BTreeMap<VehicleKey, Vec<Visit>>;
/// (company, vehicle, kind, time, geofence) -> net count.
type Events = BTreeMap<(String, String, EventKind, i64, String), isize>;

fn accumulate_visits(set: &mut BTreeMap<VisitRecord, isize>, updates: Vec<(VisitRecord, isize)>) {
    for (v, d) in updates {
        *set.entry(v).or_default() += d;
    }
    set.retain(|_, d| *d != 0);
    assert!(set.values().all(|d| *d == 1), "a visit counted twice");
}

fn as_visits(set: &BTreeMap<VisitRecord, isize>) -> Visits {
    let mut out: Visits = BTreeMap::new();
    for v in set.keys() {
        out.entry((v.company.to_string(), v.vehicle.to_string()))
            .or_default()
            .push(v.visit.clone());
    }
    out.values_mut().for_each(|v| v.sort());
    out
}

fn accumulate_events(set: &mut Events, rows: &[EventRow]) {
    for e in rows {
        let Some(geofence) = &e.geofence else {
            continue;
        };
        let key = (
            e.company.to_string(),
            e.vehicle.to_string(),
            e.kind,
            e.time_ms,
            geofence.to_string(),
        );
        *set.entry(key).or_default() += if e.retraction { -1 } else { 1 };
    }
    set.retain(|_, d| *d != 0);
    assert!(
        set.values().all(|d| *d == 1),
        "an event reported twice, or retracted unreported"
    );
}

/// The events the reference's visits make.
fn events_of(visits: &Visits) -> Events {
    let mut out = Events::new();
    for ((company, vehicle), visits) in visits {
        for v in visits {
            let key = |kind, time| {
                (
                    company.clone(),
                    vehicle.clone(),
                    kind,
                    time,
                    v.geofence.to_string(),
                )
            };
            out.insert(key(EventKind::GeofenceEnter, v.enter_ms), 1);
            if let Some((time, _)) = v.exit {
                out.insert(key(EventKind::GeofenceExit, time), 1);
            }
        }
    }
    out
}

#[test]
fn incremental_visits_match_reference_at_every_settle() {
    for seed in [1, 2] {
        let records = fleet(seed);
        let fences = geofences(&records, seed + 10);
        let mut s = Sessionizer::new(rules(), i64::MAX);
        s.set_geofences(Arc::new(GeofenceIndex::build(&fences)), None);
        let mut visits = BTreeMap::new();
        let mut events = Events::new();
        let mut retractions = 0;
        let ranges = epochs(&records, seed);
        for (n, range) in ranges.iter().enumerate() {
            let mut out = admit_and_settle(&mut s, &records, range.clone());
            retractions += out.events.iter().filter(|e| e.retraction).count();
            accumulate_visits(&mut visits, std::mem::take(&mut out.visits));
            accumulate_events(&mut events, &out.events);
            if n % 25 == 0 || n + 1 == ranges.len() {
                let want = reference_visits(&records[..range.end], &rules(), &fences);
                assert_eq!(
                    as_visits(&visits),
                    want,
                    "seed {seed}, after record {}",
                    range.end
                );
                assert_eq!(
                    events,
                    events_of(&want),
                    "seed {seed}, events after {}",
                    range.end
                );
            }
        }
        let want = reference_visits(&records, &rules(), &fences);
        let (n, open) = (
            want.values().map(Vec::len).sum::<usize>(),
            want.values().flatten().filter(|v| v.is_open()).count(),
        );
        println!(
            "seed {seed}: {n} visits, {open} open, {} events, {retractions} retracted on the way",
            events.len()
        );
        assert!(
            n > 50 && open > 0,
            "the fleet visits the geofences: {n}, {open} open"
        );
        assert!(retractions > 0, "late fixes corrected some geofence events");
    }
}

/// A geofence created (or changed) after fixes inside it were settled applies to them from its
/// creation time on, as if it had been known all along.
#[test]
fn a_geofence_published_late_re_runs_the_fixes_it_holds() {
    let records = fleet(3);
    let fences = geofences(&records, 13);
    let feed = GeofenceFeed::default();
    let mut s = Sessionizer::new(rules(), i64::MAX).with_geofence_feed(feed.clone());
    let mut visits = BTreeMap::new();
    let mut events = Events::new();
    let ranges = epochs(&records, 3);
    let half = ranges.len() / 2;
    // The first half against the geofences in force from the start only; then all of them.
    let early: Vec<Geofence> = fences
        .iter()
        .filter(|g| g.versions[0].from_ms < FLEET_START_MS)
        .cloned()
        .collect();
    feed.publish(GeofenceIndex::build(&early), None);
    for (n, range) in ranges.iter().enumerate() {
        if n == half {
            let from = fleetflow_pipeline::trips::geofence_feed::earliest_change(&early, &fences);
            feed.publish(GeofenceIndex::build(&fences), from);
        }
        let mut out = admit_and_settle(&mut s, &records, range.clone());
        accumulate_visits(&mut visits, std::mem::take(&mut out.visits));
        accumulate_events(&mut events, &out.events);
    }
    let want = reference_visits(&records, &rules(), &fences);
    assert_eq!(as_visits(&visits), want);
    assert_eq!(events, events_of(&want));
}

/// Runs the dataflow at `workers` workers over `records` in the given epochs; returns the
/// visit updates and the geofence events it produced.
fn run_dataflow(
    workers: usize,
    records: &[TelemetryRecord],
    ranges: &[std::ops::Range<usize>],
    fences: &[Geofence],
) -> (Vec<(VisitRecord, Epoch, isize)>, Vec<EventRow>) {
    let batches = Arc::new(raw_batches(records, ranges));
    let feed = GeofenceFeed::default();
    feed.publish(GeofenceIndex::build(fences), None);
    let visits = Arc::new(Mutex::new(Vec::new()));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (visit_sink, event_sink) = (visits.clone(), events.clone());
    timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandleVec::<Epoch, RawRecord>::new();
        let (visit_sink, event_sink, feed) = (visit_sink.clone(), event_sink.clone(), feed.clone());
        let probe = worker.dataflow::<Epoch, _, _>(|scope| {
            let streams = input
                .to_stream(scope)
                .sessionize(move || Sessionizer::new(rules(), i64::MAX).with_geofence_feed(feed));
            let (probe, _) = streams
                .visits
                .inner
                .inspect(move |update| visit_sink.lock().unwrap().push(update.clone()))
                .probe();
            streams
                .events
                .inspect(move |e: &EventRow| event_sink.lock().unwrap().push(e.clone()))
                .probe_with(&probe);
            probe
        });
        if worker.index() == 0 {
            for (i, batch) in batches.iter().enumerate() {
                input.advance_to(i as Epoch + 1);
                for raw in batch {
                    input.send(raw.clone());
                }
            }
        }
        input.close();
        while !probe.done() {
            worker.step();
        }
    })
    .unwrap();
    let visits = std::mem::take(&mut *visits.lock().unwrap());
    let events = std::mem::take(&mut *events.lock().unwrap());
    (visits, events)
}

#[test]
fn dataflow_visits_match_reference_at_1_and_2_workers() {
    let seed = 4;
    let records = fleet(seed);
    let fences = geofences(&records, seed + 10);
    let ranges = epochs(&records, seed);
    let want = reference_visits(&records, &rules(), &fences);
    for workers in [1, 2] {
        let (updates, rows) = run_dataflow(workers, &records, &ranges, &fences);
        let mut visits = BTreeMap::new();
        accumulate_visits(
            &mut visits,
            updates.into_iter().map(|(v, _, d)| (v, d)).collect(),
        );
        let mut events = Events::new();
        accumulate_events(&mut events, &rows);
        assert_eq!(as_visits(&visits), want, "{workers} workers");
        assert_eq!(events, events_of(&want), "{workers} workers: events");
    }
}

/// A vehicle driving east through a square, 10 m/s, one fix a second, in 10-fix batches that
/// arrive shuffled (and one twice): exactly one enter, at the first fix inside, and one exit, at
/// the first fix outside, whatever the order.
#[test]
fn a_drive_through_a_polygon_enters_and_exits_once_in_any_order() {
    let lon_of = |i: i64| 126.99 + 0.000_113 * i as f64; // about 10 m a second at this latitude
    let fix = |i: i64| {
        Item::Fix(Fix {
            time_ms: FLEET_START_MS + 1_000 * i,
            lat_e7: 374_925_000,
            lon_e7: (lon_of(i) * 1e7).round() as i32,
            speed_dkmh: 360,
            heading_ddeg: 900,
            gps: GpsStatus::Valid,
            altitude_dm: None,
            accuracy_dm: None,
            battery_dpct: None,
            server_time: false,
        })
    };
    let batch = |b: i64| TelemetryRecord {
        source: Source::Native,
        received_ms: FLEET_START_MS + 10_000 * b,
        company: "co0".to_owned(),
        vehicle: "car".to_owned(),
        items: (10 * b..10 * b + 10).map(fix).collect(),
        attributes: Vec::new(),
    };
    let depot = Geofence {
        id: "depot".to_owned(),
        company: "co0".to_owned(),
        versions: vec![version(
            json!({"name": "depot", "geometry": {"type": "Polygon",
                "coordinates": [square(127.0, 37.49, 0.005)]}}),
            0,
        )],
        deleted_ms: None,
    };
    let first_inside = (0..).find(|&i| lon_of(i) >= 127.0).unwrap();
    let first_outside = (first_inside..).find(|&i| lon_of(i) > 127.005).unwrap();
    let index = Arc::new(GeofenceIndex::build(std::slice::from_ref(&depot)));
    for seed in 0..20 {
        let mut batches: Vec<TelemetryRecord> = (0..20).map(batch).collect();
        let mut rng = SmallRng::seed_from_u64(seed);
        for i in (1..batches.len()).rev() {
            batches.swap(i, rng.random_range(0..=i));
        }
        batches.push(batches[3].clone());
        let mut s = Sessionizer::new(rules(), i64::MAX);
        s.set_geofences(index.clone(), None);
        let mut events = Events::new();
        for (offset, record) in batches.iter().enumerate() {
            let mut out = Outputs::default();
            let from = Provenance {
                partition: 0,
                offset: offset as i64,
            };
            s.admit(record, from, &mut out);
            s.settle(&mut out);
            accumulate_events(&mut events, &out.events);
        }
        let key = |kind, i: i64| {
            let time = FLEET_START_MS + 1_000 * i;
            let vehicle = ("co0".to_owned(), "car".to_owned());
            ((vehicle.0, vehicle.1, kind, time, "depot".to_owned()), 1)
        };
        assert_eq!(
            events,
            Events::from([
                key(EventKind::GeofenceEnter, first_inside),
                key(EventKind::GeofenceExit, first_outside),
            ]),
            "order seed {seed}"
        );
    }
}
