//! Correctness by reference: the incremental sessionizer, alone and inside the timely dataflow
//! at 1 and 4 workers, agrees with the plain sequential reference on every trip, every
//! per-vehicle total and every vehicle's live state, and the store agrees on every live view
//! (vehicles, offline, summary, totals, leaderboards, routes, nearby, clusters) at every
//! timestamp, on seeded random fleets
//! delivered out of order, with duplicates and late records.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use fleetflow_live_store::grid::{BoxE7, cluster, distance_m};
use fleetflow_live_store::store::{LiveSnapshot, LiveStore, LiveStoreConfig};
use fleetflow_live_store::vehicles::VehicleEntry;
use fleetflow_live_store::{Leader, Period, PeriodTotal, SummaryKey};
use fleetflow_model::{Item, TelemetryRecord, TripRules};
use fleetflow_pipeline::live::alerts::device_alerts;
use fleetflow_pipeline::live::publish::PublishLive;
use fleetflow_pipeline::live::routes::{recent_fixes, route_window};
use fleetflow_pipeline::live::views::{LiveViewConfig, live_views};
use fleetflow_pipeline::rows::{EventKind, EventRow, VehicleName};
use fleetflow_pipeline::trips::reference::{
    VehicleKey, reference_events, reference_trips, reference_vehicles,
};
use fleetflow_pipeline::trips::timeline::position_usable;
use fleetflow_pipeline::{
    Epoch, LiveFix, RawRecord, RuleBook, Sessionize, Sessionizer, Status, Trip, TripRecord,
    VehicleLive,
};
use timely::dataflow::InputHandleVec;
use timely::dataflow::operators::core::{Inspect, Probe};

mod common;
use common::{FLEET_START_MS, admit_and_settle, epochs, fleet, machine_made, raw_batches};

type TripSet = BTreeMap<Arc<str>, Vec<Trip>>;

/// A vehicle or company name, as the views carry it.
type Name = Arc<str>;

/// Per (company, period): the distance and name of each vehicle with trips.
type Ranked = BTreeMap<(Name, Period), Vec<(u64, Name)>>;

fn rules() -> RuleBook {
    // One company with tighter rules, to check per-company rules are applied.
    let tight = TripRules {
        dwell_distance_m: 120.0,
        dwell_secs: 90,
        gap_secs: 900,
        ..TripRules::default()
    };
    // A low speed limit, so that overspeed episodes happen (and late fixes correct them).
    let strict = TripRules {
        overspeed_kmh: 80.0,
        overspeed_secs: 2,
        ..TripRules::default()
    };
    RuleBook::new(&strict).with_company("co1", &tight)
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
/// An event row as a key: (company, vehicle, kind, time, position, trip, value bits).
type EventKey = (
    Name,
    Name,
    EventKind,
    i64,
    Option<(i32, i32)>,
    Option<i64>,
    Option<u64>,
);

fn event_key(e: &EventRow) -> EventKey {
    (
        e.company.clone(),
        e.vehicle.clone(),
        e.kind,
        e.time_ms,
        e.pos,
        e.trip_start_ms,
        e.value.map(f64::to_bits),
    )
}

/// An event row as a change of the events net of retractions.
fn event_change(e: &EventRow) -> (EventKey, isize) {
    (event_key(e), if e.retraction { -1 } else { 1 })
}

/// The trip and machine events of `rows`, net of retractions.
fn accumulate_events(set: &mut BTreeMap<EventKey, isize>, rows: &[EventRow]) {
    accumulate(
        set,
        rows.iter().filter(|e| machine_made(e)).map(event_change),
    );
}

fn reference_event_set(records: &[TelemetryRecord]) -> BTreeMap<EventKey, isize> {
    let mut want = BTreeMap::new();
    for ((company, vehicle), events) in reference_events(records, &rules()) {
        let name = VehicleName {
            company: company.as_str().into(),
            vehicle: vehicle.as_str().into(),
        };
        for e in events {
            *want.entry(event_key(&e.row(&name, false))).or_insert(0) += 1;
        }
    }
    want
}

fn as_vehicle_map(set: &BTreeMap<VehicleLive, isize>) -> BTreeMap<Arc<str>, VehicleLive> {
    let map: BTreeMap<Arc<str>, VehicleLive> =
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
    arc_keys(r)
}

/// The reference keys vehicles by (company, id); these fleets' ids are unique across companies,
/// so the views here key them by id alone, as the sessionizer's `Arc<str>`.
fn arc_keys<V>(map: BTreeMap<VehicleKey, V>) -> BTreeMap<Arc<str>, V> {
    let len = map.len();
    let out: BTreeMap<Arc<str>, V> = map.into_iter().map(|((_, k), v)| (k.into(), v)).collect();
    assert_eq!(out.len(), len, "a vehicle id in two companies");
    out
}

/// Per vehicle: trips, total metres (mm), points, moving and idle ms.
fn totals(set: &TripSet) -> BTreeMap<Arc<str>, (usize, u64, u64, i64, i64)> {
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

#[test]
fn incremental_matches_reference_at_every_settle() {
    for seed in [1, 2, 3] {
        let records = fleet(seed);
        let mut s = Sessionizer::new(rules(), i64::MAX);
        let mut set = BTreeMap::new();
        let mut vehicles = BTreeMap::new();
        let mut events = BTreeMap::new();
        let mut retracted = 0;
        for range in epochs(&records, seed) {
            let out = admit_and_settle(&mut s, &records, range.clone());
            accumulate(&mut set, out.trips);
            accumulate(&mut vehicles, out.vehicles);
            retracted += out.events.iter().filter(|e| e.retraction).count();
            accumulate_events(&mut events, &out.events);
            assert_eq!(
                events,
                reference_event_set(&records[..range.end]),
                "seed {seed}, events after record {}",
                range.end
            );
            let got = as_trip_set(&set);
            let want = reference_sorted(&records[..range.end]);
            assert_eq!(got, want, "seed {seed}, after record {}", range.end);
            assert_eq!(
                as_vehicle_map(&vehicles),
                arc_keys(reference_vehicles(&records[..range.end], &rules())),
                "seed {seed}, live state after record {}",
                range.end
            );
        }
        let stats = s.stats();
        assert!(
            stats.late > 100 && stats.duplicates > 100 && stats.retractions > 0,
            "{stats:?}"
        );
        let count = |kind| events.keys().filter(|k| k.2 == kind).count();
        let (ends, speeding) = (count(EventKind::TripEnd), count(EventKind::Overspeed));
        let due = count(EventKind::MaintenanceDue);
        eprintln!(
            "seed {seed}: {ends} trip ends, {speeding} overspeed, {due} maintenance due, \
             {retracted} retracted"
        );
        assert!(
            ends > 0 && speeding > 0,
            "the fleet makes trip and overspeed events"
        );
        assert!(retracted > 0, "late fixes corrected some trip events");
    }
}

/// A vehicle was last heard when ingest received its newest record, not when the dataflow read
/// it: a restart's replay (read at dataflow time 0, or hours later) rebuilds the same
/// last-heard time, so a vehicle silent across a restart is not offline "since 1970", and its
/// offline time (and alert id) is the one the run before the restart had.
#[test]
fn last_heard_is_the_receipt_time_also_on_replay() {
    let mut records = fleet(6);
    records.truncate(40);
    for (i, r) in records.iter_mut().enumerate() {
        r.received_ms = FLEET_START_MS + 1_000 * i as i64;
    }
    let newest = |heard: &[(fleetflow_pipeline::LastHeard, isize)]| {
        let mut at: BTreeMap<Arc<str>, u64> = BTreeMap::new();
        for (h, diff) in heard {
            if *diff > 0 {
                at.insert(h.vehicle.clone(), h.at_ms);
            }
        }
        at
    };
    let mut want: BTreeMap<Arc<str>, u64> = BTreeMap::new();
    for r in &records {
        let at = want.entry(r.vehicle.as_str().into()).or_default();
        *at = (*at).max(r.received_ms as u64);
    }
    // Read live, an epoch per record, and replayed, all at time 0 (and then at a later time).
    for epochs in [
        (1..=records.len()).collect::<Vec<_>>(),
        vec![0; records.len()],
    ] {
        let mut s = Sessionizer::new(rules(), i64::MAX);
        let mut heard = Vec::new();
        for (i, epoch) in epochs.into_iter().enumerate() {
            let mut out = admit_and_settle(&mut s, &records, i..i + 1);
            s.record_heard(FLEET_START_MS as u64 + 7_200_000 * epoch as u64, &mut out);
            heard.extend(out.heard);
        }
        assert_eq!(newest(&heard), want);
    }
}

/// A silence longer than the offline time between two records' receipt times is one `offline`
/// event (when the silence ran out) and one `online` event (when the vehicle was heard again),
/// per vehicle, whatever order or duplicates the records come in, and none for shorter gaps.
#[test]
fn a_silence_is_one_offline_and_one_online_event() {
    const AFTER_MS: i64 = 300_000;
    let mut records = fleet(7);
    records.truncate(200);
    // Receipt times a second apart, with one silence of 10 minutes per vehicle in the middle.
    let mut gap_at: BTreeMap<String, usize> = BTreeMap::new();
    for (i, r) in records.iter_mut().enumerate() {
        r.received_ms = FLEET_START_MS + 1_000 * i as i64;
        if i >= 100 {
            r.received_ms += 600_000;
            gap_at.entry(r.vehicle.clone()).or_insert(i);
        }
    }
    // Per vehicle, its newest receipt time before the silence and its first after.
    let mut want = BTreeMap::new();
    for (vehicle, first_after) in &gap_at {
        let before = records[..100]
            .iter()
            .filter(|r| &r.vehicle == vehicle)
            .map(|r| r.received_ms)
            .max();
        if let Some(before) = before {
            let after = records[*first_after].received_ms;
            let v: Name = vehicle.as_str().into();
            want.insert((v.clone(), EventKind::Offline), before + AFTER_MS);
            want.insert((v, EventKind::Online), after);
        }
    }
    assert!(want.len() >= 4);
    let mut s = Sessionizer::new(rules(), i64::MAX).with_offline_after(AFTER_MS as u64);
    let mut got = BTreeMap::new();
    for range in epochs(&records, 7) {
        let out = admit_and_settle(&mut s, &records, range);
        for e in out.events {
            if matches!(e.kind, EventKind::Offline | EventKind::Online) {
                let old = got.insert((e.vehicle.clone(), e.kind), e.time_ms);
                assert!(old.is_none(), "one {:?} per vehicle", e.kind);
            }
        }
    }
    assert_eq!(got, want);
}

/// Issue 35: the same vehicle id in three companies is three vehicles. Company A sending
/// company B's ids (by mistake, or to squat them) neither changes B's trips nor takes the id.
#[test]
fn a_vehicle_id_in_several_companies_is_one_vehicle_per_company() {
    for seed in [4, 5] {
        // `company_of(i)` is `co{i % 3}`: vehicles 3k, 3k+1 and 3k+2 share the id `shared-k`.
        let mut records = fleet(seed);
        for r in &mut records {
            let i: usize = r
                .vehicle
                .trim_start_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .expect("synthetic id");
            r.vehicle = format!("shared-{}", i / 3);
        }
        let mut s = Sessionizer::new(rules(), i64::MAX);
        let mut trips = BTreeMap::new();
        let mut vehicles = BTreeMap::new();
        for range in epochs(&records, seed) {
            let out = admit_and_settle(&mut s, &records, range);
            accumulate(&mut trips, out.trips);
            accumulate(&mut vehicles, out.vehicles);
        }
        let mut got: BTreeMap<VehicleKey, Vec<Trip>> = BTreeMap::new();
        for t in trips.keys() {
            got.entry((t.company.to_string(), t.vehicle.to_string()))
                .or_default()
                .push(t.trip);
        }
        got.values_mut().for_each(|trips| trips.sort());
        let mut want = reference_trips(&records, &rules());
        want.retain(|_, trips| !trips.is_empty());
        want.values_mut().for_each(|trips| trips.sort());
        assert_eq!(got, want, "seed {seed}");
        assert!(
            want.keys().filter(|(_, id)| id == "shared-0").count() == 3,
            "the test shares ids across companies"
        );
        let live: BTreeMap<VehicleKey, VehicleLive> = vehicles
            .keys()
            .map(|v| ((v.company.to_string(), v.vehicle.to_string()), v.clone()))
            .collect();
        assert_eq!(live.len(), vehicles.len(), "a vehicle with two live states");
        assert_eq!(live, reference_vehicles(&records, &rules()), "seed {seed}");
        assert_eq!(s.vehicle_count(), 12);
    }
}

type Updates<D> = Vec<(D, Epoch, isize)>;

/// The dataflow clock of the test: epoch `i` is 20 s after epoch `i - 1`, from the fleet's
/// start, so midnight, the offline silence and the leaderboards' periods fall on epochs.
const EPOCH_0: Epoch = FLEET_START_MS as Epoch;
const EPOCH_STEP: Epoch = 20_000;
const OFFLINE_AFTER_MS: u64 = 3 * EPOCH_STEP;
// Below the 4 vehicles of each company, so boards (and each worker's local top) truncate.
const LEADERBOARD_TOP: usize = 2;
const ROUTE_WINDOW_MS: u64 = 10 * 60_000;

fn epoch_time(i: usize) -> Epoch {
    EPOCH_0 + i as Epoch * EPOCH_STEP
}

/// The arrival schedule: the epochs' record ranges, with a silence of six empty epochs after
/// every 10th (everyone goes offline, then comes back) and at the end.
fn schedule(records: &[TelemetryRecord], seed: u64) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    for (i, range) in epochs(records, seed).into_iter().enumerate() {
        let end = range.end;
        out.push(range);
        if i % 10 == 9 {
            out.extend(std::iter::repeat_n(end..end, 6));
        }
    }
    let end = records.len();
    out.extend(std::iter::repeat_n(end..end, 6));
    out
}

/// What the store serves, keyed by vehicle id (ids are unique across the test's companies).
#[derive(Debug, Clone, PartialEq, Default)]
struct Served {
    vehicles: BTreeMap<Arc<str>, VehicleLive>,
    offline: BTreeMap<Arc<str>, u64>,
    summary: BTreeMap<SummaryKey, isize>,
    totals: BTreeMap<(Period, Arc<str>), PeriodTotal>,
    leaders: Vec<Leader>,
    /// Per vehicle with an open trip: its start and the route's fixes, oldest first.
    routes: BTreeMap<Arc<str>, (i64, Vec<LiveFix>)>,
    /// Per served vehicle with a fix: the vehicles within [`NEARBY_M`] of it, nearest first
    /// (what `/v1/live/nearby` finds through the store's grid index).
    nearby: BTreeMap<Arc<str>, Vec<Arc<str>>>,
    /// Per cluster cell at [`CLUSTER_ZOOM`] over the whole map, its vehicles (what
    /// `/v1/live/clusters` counts).
    clusters: BTreeMap<(i64, i64), Vec<Arc<str>>>,
}

/// The nearby view's radius in the test, and the clusters' zoom: both small enough that the
/// fleet spreads over several answers and cells.
const NEARBY_M: f64 = 4_000.0;
const CLUSTER_ZOOM: u8 = 14;

/// Where each vehicle is, and which others are within [`NEARBY_M`] of each (nearest first, ties
/// by id), from scratch.
fn nearby_from_scratch(
    fixes: &BTreeMap<Arc<str>, (i32, i32)>,
) -> BTreeMap<Arc<str>, Vec<Arc<str>>> {
    fixes
        .iter()
        .map(|(id, &at)| {
            let mut near: Vec<(f64, Arc<str>)> = fixes
                .iter()
                .map(|(other, &there)| (distance_m(at, there), other.clone()))
                .filter(|(d, _)| *d <= NEARBY_M)
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            (id.clone(), near.into_iter().map(|(_, v)| v).collect())
        })
        .collect()
}

/// The cluster cells' vehicles (sorted) over `members`.
fn cluster_members(
    members: impl IntoIterator<Item = ((i32, i32), Arc<str>)>,
) -> BTreeMap<(i64, i64), Vec<Arc<str>>> {
    cluster(members, CLUSTER_ZOOM)
        .into_iter()
        .map(|(cell, c)| {
            let mut ids = c.members;
            ids.sort();
            assert_eq!(ids.len(), c.count);
            (cell, ids)
        })
        .collect()
}

/// What the dataflow produced: trip, vehicle and summary updates, and the live store as worker
/// 0 saw it after each epoch (checked there to be reachable by cursor from the epoch before).
struct Produced {
    trips: Updates<TripRecord>,
    vehicles: Updates<VehicleLive>,
    /// The trip and machine events, as changes of the events net of retractions.
    events: Updates<EventKey>,
    store: Vec<Served>,
}

/// Runs the dataflow at `workers` workers over `records` in the given epochs; returns the trip
/// and vehicle updates it produced and the store after each epoch.
fn run_dataflow(
    workers: usize,
    records: &[TelemetryRecord],
    ranges: &[std::ops::Range<usize>],
) -> Produced {
    let batches = Arc::new(raw_batches(records, ranges));
    let captured = Arc::new(Mutex::new(Vec::new()));
    let captured_vehicles = Arc::new(Mutex::new(Vec::new()));
    let captured_events = Arc::new(Mutex::new(Vec::new()));
    let store_views = Arc::new(Mutex::new(Vec::new()));
    let views = store_views.clone();
    let (sink, vehicle_sink) = (captured.clone(), captured_vehicles.clone());
    let event_sink = captured_events.clone();
    timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandleVec::<Epoch, RawRecord>::new();
        let (sink, vehicle_sink) = (sink.clone(), vehicle_sink.clone());
        let event_sink = event_sink.clone();
        // A small change log, so cursors also expire in the test.
        let store = Arc::new(LiveStore::new(LiveStoreConfig {
            change_log: 64,
            ..LiveStoreConfig::default()
        }));
        let views = views.clone();
        let probe = worker.dataflow::<Epoch, _, _>(|scope| {
            let streams = input
                .to_stream(scope)
                .sessionize(|| Sessionizer::new(rules(), i64::MAX));
            let (probe, _) = streams
                .trips
                .clone()
                .inspect(move |update| sink.lock().unwrap().push(update.clone()))
                .probe();
            streams
                .vehicles
                .clone()
                .inspect(move |update| vehicle_sink.lock().unwrap().push(update.clone()))
                .probe_with(&probe);
            streams
                .events
                .clone()
                .inspect_time(move |time, e| {
                    if machine_made(e) {
                        let (key, diff) = event_change(e);
                        event_sink.lock().unwrap().push((key, *time, diff));
                    }
                })
                .probe_with(&probe);
            let config = LiveViewConfig {
                offline_after_ms: OFFLINE_AFTER_MS,
                leaderboard_top: LEADERBOARD_TOP,
                route_window_ms: ROUTE_WINDOW_MS,
            };
            let (recent, _) = recent_fixes(streams.positions, config.route_window_ms);
            live_views(
                streams.vehicles,
                streams.heard,
                streams.trips,
                recent,
                &config,
            )
            .rows()
            .publish_live(device_alerts(streams.events), store.clone());
            probe
        });
        input.advance_to(epoch_time(0));
        for (i, batch) in batches.iter().enumerate() {
            if worker.index() == 0 {
                for raw in batch {
                    input.send(raw.clone());
                }
            }
            input.advance_to(epoch_time(i + 1));
            while probe.less_than(input.time()) {
                worker.step();
            }
            if worker.index() == 0 {
                while store.read(|s| s.upto) <= epoch_time(i) {
                    worker.step();
                }
                let mut views = views.lock().unwrap();
                let now = served(&store);
                // A reader polling with the cursor it had after the epoch before gets exactly
                // what changed (or is told its cursor expired).
                if let Some((before, cursor)) = views.last().cloned() {
                    let polled = store.read(|s| {
                        let changes = s.changes_since(cursor).ok()?;
                        let mut polled: Served = before;
                        for change in changes {
                            let entry = change.entry;
                            let id = entry.vehicle().clone();
                            match entry.vehicle_live() {
                                Some(state) => polled.vehicles.insert(id.clone(), state),
                                None => polled.vehicles.remove(&id),
                            };
                            match entry.offline_since {
                                Some(since) => polled.offline.insert(id.clone(), since),
                                None => polled.offline.remove(&id),
                            };
                            for period in [Period::Today, Period::Week] {
                                match entry.total(period) {
                                    Some(t) => polled.totals.insert((period, id.clone()), t),
                                    None => polled.totals.remove(&(period, id.clone())),
                                };
                            }
                        }
                        Some(polled)
                    });
                    if let Some(polled) = polled {
                        assert_eq!(polled.vehicles, now.0.vehicles, "cursor polling, epoch {i}");
                        assert_eq!(polled.offline, now.0.offline, "cursor polling, epoch {i}");
                        assert_eq!(polled.totals, now.0.totals, "cursor polling, epoch {i}");
                    }
                }
                views.push(now);
            }
        }
    })
    .expect("timely runs");
    Produced {
        trips: take(captured),
        vehicles: take(captured_vehicles),
        events: take(captured_events),
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

/// The store's views by vehicle id, and its cursor.
/// Every entry of the store's vehicle table, served or not.
fn entries(s: &LiveSnapshot) -> impl Iterator<Item = &VehicleEntry> {
    (0..s.vehicles.slots()).map(|slot| s.vehicles.at(slot))
}

fn served(store: &LiveStore) -> (Served, u64) {
    store.read(|s| {
        let fix = |e: &VehicleEntry| e.live.and_then(|l| l.fix).map(|f| (f.lat_e7, f.lon_e7));
        let nearby = s
            .vehicles
            .iter()
            .filter_map(|e| {
                let at = fix(e)?;
                let mut near: Vec<(f64, Arc<str>)> = s
                    .near(&BoxE7::around(at.0, at.1, NEARBY_M))
                    .into_iter()
                    .filter_map(|other| {
                        Some((distance_m(at, fix(other)?), other.vehicle().clone()))
                    })
                    .filter(|(d, _)| *d <= NEARBY_M)
                    .collect();
                near.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
                Some((
                    e.vehicle().clone(),
                    near.into_iter().map(|(_, v)| v).collect(),
                ))
            })
            .collect();
        let world = BoxE7 {
            min_lat: -900_000_000,
            max_lat: 900_000_000,
            min_lon: -1_800_000_000,
            max_lon: 1_800_000_000,
        };
        let clusters = cluster_members(
            s.near(&world)
                .into_iter()
                .filter_map(|e| Some((fix(e)?, e.vehicle().clone()))),
        );
        let served = Served {
            nearby,
            clusters,
            vehicles: s
                .vehicles
                .iter()
                .filter_map(|e| Some((e.vehicle().clone(), e.vehicle_live()?)))
                .collect(),
            // Offline flags and totals of every entry, served or not: the store must hold
            // exactly the views' rows.
            offline: entries(s)
                .filter_map(|e| Some((e.vehicle().clone(), e.offline_since?)))
                .collect(),
            summary: s.summary.clone(),
            totals: entries(s)
                .flat_map(|e| {
                    [Period::Today, Period::Week]
                        .into_iter()
                        .filter_map(|p| Some(((p, e.vehicle().clone()), e.total(p)?)))
                })
                .collect(),
            leaders: s.leaders.values().cloned().collect(),
            routes: s
                .vehicles
                .iter()
                .filter_map(|e| {
                    let (start, fixes) = s.route(e)?;
                    Some((
                        e.vehicle().clone(),
                        (start, fixes.into_iter().copied().collect()),
                    ))
                })
                .collect(),
        };
        (served, s.seq)
    })
}

/// The views from scratch: what the store must serve at dataflow time `now`, having read
/// `arrived` (each record with the dataflow time it was read at).
fn reference_served(arrived: &[(Epoch, &TelemetryRecord)], now: Epoch) -> Served {
    let records = || arrived.iter().map(|(_, r)| *r);
    let vehicles = arc_keys(reference_vehicles(records(), &rules()));
    let mut heard: BTreeMap<Arc<str>, Epoch> = BTreeMap::new();
    for (at, r) in arrived {
        heard.insert(r.vehicle.as_str().into(), *at);
    }
    let offline: BTreeMap<Arc<str>, u64> = heard
        .iter()
        .filter(|(_, at)| **at + OFFLINE_AFTER_MS <= now)
        .map(|(v, at)| (v.clone(), at + OFFLINE_AFTER_MS))
        .collect();
    let mut summary: BTreeMap<SummaryKey, isize> = BTreeMap::new();
    for v in vehicles.values() {
        let status = if offline.contains_key(&v.vehicle) {
            Status::Offline
        } else {
            v.state.motion.into()
        };
        *summary
            .entry((v.company.clone(), v.state.ignition, status))
            .or_default() += 1;
    }
    let mut totals: BTreeMap<(Period, Arc<str>), PeriodTotal> = BTreeMap::new();
    for ((_, vehicle), trips) in reference_trips(records(), &rules()) {
        for trip in trips {
            for period in [Period::Today, Period::Week] {
                let (from, until) = period.window(trip.start_ms);
                if (from..until).contains(&now) {
                    totals
                        .entry((period, vehicle.as_str().into()))
                        .or_default()
                        .add(&trip, 1);
                }
            }
        }
    }
    let mut ranked: Ranked = BTreeMap::new();
    for ((period, vehicle), total) in &totals {
        let company = vehicles[vehicle].company.clone();
        ranked
            .entry((company, *period))
            .or_default()
            .push((total.distance_mm, vehicle.clone()));
    }
    let mut leaders = Vec::new();
    for ((company, period), mut board) in ranked {
        board.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (rank, (distance_mm, vehicle)) in board.into_iter().take(LEADERBOARD_TOP).enumerate() {
            leaders.push(Leader {
                company: company.clone(),
                period,
                rank: rank as u32 + 1,
                vehicle,
                distance_mm,
            });
        }
    }
    leaders.sort_by(|a, b| (&a.company, a.period, a.rank).cmp(&(&b.company, b.period, b.rank)));
    // Each vehicle's usable fixes, the first to arrive at each time, and the open trip's
    // among them still inside the route window.
    let mut fixes: BTreeMap<&str, BTreeMap<i64, Option<LiveFix>>> = BTreeMap::new();
    for (_, r) in arrived {
        for item in &r.items {
            let Item::Fix(fix) = item else { continue };
            fixes
                .entry(r.vehicle.as_str())
                .or_default()
                .entry(fix.time_ms)
                .or_insert(position_usable(fix).then_some(LiveFix {
                    time_ms: fix.time_ms,
                    lat_e7: fix.lat_e7,
                    lon_e7: fix.lon_e7,
                    speed_dkmh: fix.speed_dkmh,
                }));
        }
    }
    let routes = vehicles
        .values()
        .filter_map(|v| {
            let start = v.state.open_trip?.start_ms;
            let route = fixes
                .get(&*v.vehicle)
                .into_iter()
                .flat_map(|f| f.range(start..))
                .filter(|(time, _)| now < route_window(**time, ROUTE_WINDOW_MS).1)
                .filter_map(|(_, f)| *f)
                .collect();
            Some((v.vehicle.clone(), (start, route)))
        })
        .collect();
    let fixes: BTreeMap<Arc<str>, (i32, i32)> = vehicles
        .iter()
        .filter_map(|(id, v)| Some((id.clone(), v.state.fix.map(|f| (f.lat_e7, f.lon_e7))?)))
        .collect();
    Served {
        nearby: nearby_from_scratch(&fixes),
        clusters: cluster_members(fixes.iter().map(|(id, &at)| (at, id.clone()))),
        vehicles,
        offline,
        summary,
        totals,
        leaders,
        routes,
    }
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
    let mut records = fleet(seed);
    let ranges = schedule(&records, seed);
    // Ingest stamps each record when it receives it: here, at the epoch it arrives in.
    for (i, range) in ranges.iter().enumerate() {
        for r in &mut records[range.clone()] {
            r.received_ms = epoch_time(i) as i64;
        }
    }
    println!("{} records in {} epochs", records.len(), ranges.len());
    let arrived: Vec<(Epoch, &TelemetryRecord)> = ranges
        .iter()
        .enumerate()
        .flat_map(|(i, range)| {
            records[range.clone()]
                .iter()
                .map(move |r| (epoch_time(i), r))
        })
        .collect();
    let mut offline_seen = 0;
    let mut online_again = 0;
    let mut midnight_crossed = false;
    let (mut route_points_max, mut route_points_shrank) = (0, 0);
    let (mut nearby_max, mut cells_max) = (0, 0);
    for workers in [1, 4] {
        let Produced {
            trips: mut updates,
            vehicles: mut vehicle_updates,
            events: mut event_updates,
            store,
        } = run_dataflow(workers, &records, &ranges);
        event_updates.sort_by_key(|(_, t, _)| *t);
        let (mut events, mut next_event) = (BTreeMap::new(), 0);
        assert_eq!(store.len(), ranges.len());
        updates.sort_by_key(|(_, t, _)| *t);
        vehicle_updates.sort_by_key(|(_, t, _)| *t);
        let (mut set, mut vehicles) = (BTreeMap::new(), BTreeMap::new());
        let (mut next, mut next_vehicle) = (0, 0);
        for (i, range) in ranges.iter().enumerate() {
            let epoch = epoch_time(i);
            accumulate(&mut set, upto(&updates, &mut next, epoch));
            accumulate(
                &mut vehicles,
                upto(&vehicle_updates, &mut next_vehicle, epoch),
            );
            let want = reference_served(&arrived[..range.end], epoch);
            assert_eq!(
                as_vehicle_map(&vehicles),
                want.vehicles,
                "{workers} workers, epoch {i}: live state"
            );
            let got = &store[i];
            // Each view as the store serves it, against the reference.
            macro_rules! same_views {
                ($($view:ident),*) => {$(
                    assert_eq!(
                        got.$view, want.$view,
                        "{workers} workers, epoch {i}: {}", stringify!($view)
                    );
                )*};
            }
            same_views!(
                vehicles, offline, summary, totals, leaders, routes, nearby, clusters
            );
            let neighbours = got.nearby.values().map(|n| n.len() - 1).max();
            nearby_max = nearby_max.max(neighbours.unwrap_or(0));
            cells_max = cells_max.max(got.clusters.len());
            let points = |s: &Served| s.routes.values().map(|r| r.1.len()).sum::<usize>();
            route_points_max = route_points_max.max(points(got));
            if i > 0 && points(got) < points(&store[i - 1]) {
                route_points_shrank += 1;
            }
            if i > 0 && store[i - 1].offline.len() < got.offline.len() {
                offline_seen += 1;
            }
            if i > 0 && store[i - 1].offline.len() > got.offline.len() {
                online_again += 1;
            }
            if i > 0 && Period::Today.window(epoch as i64).0 > epoch_time(i - 1) {
                midnight_crossed = true;
            }
            accumulate(&mut events, upto(&event_updates, &mut next_event, epoch));
            assert_eq!(
                events,
                reference_event_set(&records[..range.end]),
                "{workers} workers, epoch {i}: trip and machine events"
            );
            let got = as_trip_set(&set);
            let want = reference_sorted(&records[..range.end]);
            assert_eq!(
                totals(&got),
                totals(&want),
                "{workers} workers, epoch {i}: per-vehicle totals"
            );
            assert_eq!(got, want, "{workers} workers, epoch {i}");
        }
        assert_eq!(next, updates.len());
        assert_eq!(next_vehicle, vehicle_updates.len());
        assert_eq!(next_event, event_updates.len());
        let last = store.last().expect("epochs");
        assert_eq!(
            last.offline.len(),
            last.vehicles.len(),
            "all offline at the end"
        );
        assert!(!last.leaders.is_empty());
    }
    assert!(
        offline_seen > 2 && online_again > 2 && midnight_crossed,
        "the schedule exercises offline ({offline_seen}), back online ({online_again}) and midnight"
    );
    println!(
        "live routes: at most {route_points_max} points, shrank at {route_points_shrank} epochs"
    );
    assert!(
        route_points_max > 100 && route_points_shrank > 2,
        "the routes fill ({route_points_max} points) and expire ({route_points_shrank} times)"
    );
    println!("nearby: at most {nearby_max} neighbours; clusters: at most {cells_max} cells");
    assert!(
        nearby_max > 0 && cells_max > 1,
        "vehicles meet within the nearby radius ({nearby_max}) and spread over cells ({cells_max})"
    );
}
