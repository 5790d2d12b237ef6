//! The trip rules of `shared/domain.md`, scenario by scenario, through the reference
//! sessionizer and the incremental one.

use fleetflow_model::{E7, Fix, GpsStatus, Item, Source, TelemetryRecord, TripRules};
use fleetflow_pipeline::trips::reference::reference_trips;
use fleetflow_pipeline::{
    CloseRule, EventKind, Outputs, Provenance, RuleBook, Sessionizer, Trip, TripRule,
};

const T0: i64 = 1_606_780_800_000;
const MIN: i64 = 60_000;
/// Metres per degree of latitude on the haversine sphere.
const M_PER_DEG: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// A vehicle script: positions as metres north of a base point.
struct Script {
    items: Vec<Item>,
}

fn fix_at(t: i64, north_m: f64, speed_kmh: f64) -> Fix {
    let mut f = Fix::new(
        t,
        ((37.5 + north_m / M_PER_DEG) * E7).round() as i32,
        (127.0 * E7) as i32,
    );
    f.gps = GpsStatus::Valid;
    f.speed_dkmh = (speed_kmh * 10.0) as u16;
    f
}

impl Script {
    fn new() -> Self {
        Script { items: Vec::new() }
    }
    /// One fix a second from `from` for `secs`, moving north at `kmh`, starting `north_m`.
    fn drive(mut self, from: i64, secs: i64, north_m: f64, kmh: f64) -> Self {
        for s in 0..secs {
            let n = north_m + kmh / 3.6 * s as f64;
            self.items.push(Item::Fix(fix_at(from + s * 1000, n, kmh)));
        }
        self
    }
    fn park(self, from: i64, secs: i64, north_m: f64) -> Self {
        self.drive(from, secs, north_m, 0.0)
    }
    fn on(mut self, t: i64, north_m: f64, odometer_m: u64) -> Self {
        self.items.push(Item::IgnitionOn {
            at: fix_at(t, north_m, 0.0),
            odometer_m: Some(odometer_m),
        });
        self
    }
    fn off(mut self, t: i64, north_m: f64) -> Self {
        self.items.push(Item::IgnitionOff {
            at: fix_at(t, north_m, 0.0),
            trip_distance_m: Some(1234),
        });
        self
    }
    fn push(mut self, item: Item) -> Self {
        self.items.push(item);
        self
    }
    fn record(&self) -> TelemetryRecord {
        TelemetryRecord {
            source: Source::Native,
            received_ms: T0,
            company: "acme".into(),
            vehicle: "v1".into(),
            items: self.items.clone(),
            attributes: Vec::new(),
        }
    }
    fn reference(&self) -> Vec<Trip> {
        reference_trips([&self.record()], &RuleBook::new(&TripRules::default()))
            .remove(&("acme".to_owned(), "v1".to_owned()))
            .unwrap_or_default()
    }
    /// Through the incremental sessionizer, one item per record, in `order`, settling each time.
    fn incremental(&self, order: &[usize]) -> (Vec<Trip>, Outputs) {
        let mut s = Sessionizer::new(RuleBook::new(&TripRules::default()), i64::MAX);
        let mut out = Outputs::default();
        for (n, &i) in order.iter().enumerate() {
            let mut record = self.record();
            record.items = vec![self.items[i]];
            s.admit(
                &record,
                Provenance {
                    partition: 0,
                    offset: n as i64,
                },
                &mut out,
            );
            s.settle(&mut out);
        }
        (s.trips_of("acme", "v1"), out)
    }
}

fn km(trip: &Trip) -> f64 {
    trip.distance_m() / 1000.0
}

#[test]
fn ignition_brackets_a_trip() {
    let s = Script::new()
        .on(T0, 0.0, 5_000_000)
        .drive(T0 + 1000, 300, 0.0, 36.0)
        .off(T0 + 301_000, 3000.0);
    let trips = s.reference();
    assert_eq!(trips.len(), 1, "{trips:#?}");
    let t = &trips[0];
    assert_eq!(t.rule, TripRule::Ignition);
    assert_eq!(t.closed_by, Some(CloseRule::IgnitionOff));
    assert_eq!((t.start_ms, t.end_ms), (T0, T0 + 301_000));
    assert!((km(t) - 3.0).abs() < 0.01, "{}", km(t));
    assert_eq!(t.device_distance_m, Some(1234));
    assert_eq!(t.points, 300);
    assert!((t.max_speed_dkmh as f64 - 360.0).abs() < 1.0);
}

#[test]
fn dwell_starts_back_dated_and_ends_at_the_arrival() {
    let s = Script::new()
        .park(T0, 600, 0.0)
        .drive(T0 + 600_000, 300, 0.0, 36.0)
        .park(T0 + 900_000, 600, 3000.0);
    let trips = s.reference();
    assert_eq!(trips.len(), 1, "{trips:#?}");
    let t = &trips[0];
    assert_eq!(t.rule, TripRule::Dwell);
    assert_eq!(t.closed_by, Some(CloseRule::Dwell));
    // Back-dated to the last parked fix; ends at the first fix of the stop.
    assert_eq!(t.start_ms, T0 + 599_000);
    assert_eq!(t.end_ms, T0 + 900_000);
    assert!((km(t) - 3.0).abs() < 0.02, "{}", km(t));
    assert_eq!(t.idle_ms, 0, "idle needs ignition on");
}

#[test]
fn an_unfinished_trip_is_shown_open() {
    let s = Script::new()
        .park(T0, 300, 0.0)
        .drive(T0 + 300_000, 120, 0.0, 50.0);
    let trips = s.reference();
    assert_eq!(trips.len(), 1);
    assert!(trips[0].is_open());
    assert_eq!(trips[0].end_ms, T0 + 419_000);
}

#[test]
fn a_gap_ends_the_trip_and_a_far_gap_is_a_trip() {
    let s = Script::new()
        .park(T0, 300, 0.0)
        .drive(T0 + 300_000, 120, 0.0, 36.0)
        // Silent for two hours, reappears 20 km on.
        .park(T0 + 420_000 + 2 * 60 * MIN, 600, 21_200.0);
    let trips = s.reference();
    assert_eq!(trips.len(), 2, "{trips:#?}");
    assert_eq!(trips[0].closed_by, Some(CloseRule::Gap));
    assert_eq!(trips[0].end_ms, T0 + 419_000);
    assert_eq!(trips[1].rule, TripRule::Gap);
    assert_eq!((trips[1].start_ms, trips[1].points), (T0 + 419_000, 2));
}

#[test]
fn jumps_and_invalid_fixes_do_not_count() {
    let clean = Script::new()
        .on(T0, 0.0, 1)
        .drive(T0 + 1000, 200, 0.0, 36.0)
        .off(T0 + 201_000, 2000.0);
    let mut dirty = Script::new()
        .on(T0, 0.0, 1)
        .drive(T0 + 1000, 200, 0.0, 36.0);
    // A jump of 30 km and a (0,0) fix between real ones.
    let mut jump = fix_at(T0 + 50_500, 30_000.0, 36.0);
    jump.speed_dkmh = 360;
    let mut zero = fix_at(T0 + 60_500, 600.0, 36.0);
    (zero.lat_e7, zero.lon_e7) = (0, 0);
    let mut void = fix_at(T0 + 70_500, 700.0, 36.0);
    void.gps = GpsStatus::Invalid;
    dirty = dirty
        .push(Item::Fix(jump))
        .push(Item::Fix(zero))
        .push(Item::Fix(void))
        .off(T0 + 201_000, 2000.0);
    let (a, b) = (clean.reference(), dirty.reference());
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].distance_mm, b[0].distance_mm);
    assert_eq!(a[0].points, b[0].points);
}

#[test]
fn any_arrival_order_gives_the_same_trips() {
    let s = Script::new()
        .park(T0, 400, 0.0)
        .on(T0 + 400_000, 0.0, 10)
        .drive(T0 + 401_000, 200, 0.0, 30.0)
        .off(T0 + 601_000, 1666.0)
        .park(T0 + 602_000, 300, 1666.0)
        .drive(T0 + 902_000, 300, 1666.0, 60.0)
        .park(T0 + 1_202_000, 400, 6666.0);
    let expected = s.reference();
    assert_eq!(expected.len(), 2, "{expected:#?}");
    let n = s.items.len();
    let forward: Vec<usize> = (0..n).collect();
    let backward: Vec<usize> = (0..n).rev().collect();
    // Every seventh item held back to the end.
    let mut held: Vec<usize> = (0..n).filter(|i| i % 7 != 3).collect();
    held.extend((0..n).filter(|i| i % 7 == 3));
    for order in [forward, backward, held] {
        let (trips, _) = s.incremental(&order);
        assert_eq!(trips, expected);
    }
}

#[test]
fn overspeed_is_one_event_per_episode_and_maintenance_is_due_at_the_interval() {
    let s = Script::new()
        .on(T0, 0.0, 9_999_000)
        .drive(T0 + 1000, 60, 0.0, 50.0)
        .drive(T0 + 61_000, 60, 833.0, 140.0)
        .drive(T0 + 121_000, 60, 3166.0, 50.0)
        .drive(T0 + 181_000, 10, 3999.0, 140.0)
        .off(T0 + 191_000, 4400.0)
        .on(T0 + 600_000, 4400.0, 10_001_000);
    let order: Vec<usize> = (0..s.items.len()).collect();
    let (_, out) = s.incremental(&order);
    let count = |k: EventKind| out.events.iter().filter(|e| e.kind == k).count();
    // The second fast stretch is shorter than 30 s: no event.
    assert_eq!(count(EventKind::Overspeed), 1);
    assert_eq!(count(EventKind::MaintenanceDue), 1);
    assert_eq!(count(EventKind::IgnitionOn), 2);
    assert_eq!(count(EventKind::TripStart), 2);
    assert_eq!(count(EventKind::TripEnd), 1);
}
