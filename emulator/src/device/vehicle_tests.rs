//! Tests of the vehicle state machine: determinism, Monicar body validity, event order, distance
//! bookkeeping and plausible motion, checked on the bodies exactly as they would be sent.

use std::sync::Arc;

use fleetflow_model::parse_compact_time;
use serde_json::Value;

use crate::device::device_event::{DeviceEvent, Endpoint};
use crate::device::vehicle::{CYCLE_MS, Vehicle, VehicleParams, vehicle_script};
use crate::world::geo::haversine_e6_m;
use crate::world::road_grid::RoadGrid;

const START_MS: i64 = 1_739_873_730_000;

fn grid(seed: u64) -> Arc<RoadGrid> {
    Arc::new(RoadGrid::new(seed, (37.5665, 126.9780), 12_000.0))
}

fn params(seed: u64, index: usize) -> VehicleParams {
    VehicleParams {
        seed,
        index,
        start_ms: START_MS,
        mdn_base: 2_254_690_000,
    }
}

fn json(event: &DeviceEvent) -> Value {
    serde_json::from_slice(&event.body).expect("valid JSON")
}

fn int(v: &Value, field: &str) -> i64 {
    v[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

fn time(v: &Value, field: &str) -> i64 {
    let text = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {v}"));
    parse_compact_time(text).expect("yyyyMMddHHmmss")
}

#[test]
fn same_seed_same_bodies() {
    let a = vehicle_script(grid(7), params(7, 3), 120);
    let b = vehicle_script(grid(7), params(7, 3), 120);
    assert_eq!(a, b);
    let other_index = vehicle_script(grid(7), params(7, 4), 120);
    assert_ne!(a[1].body, other_index[1].body);
    let other_seed = vehicle_script(grid(8), params(8, 3), 120);
    assert_ne!(a[1].body, other_seed[1].body);
}

#[test]
fn requests_come_due_with_the_simulated_clock() {
    let mut vehicle = Vehicle::new(grid(1), params(1, 0));
    let first = vehicle.next_due_ms();
    assert_eq!(first, START_MS + vehicle.phase_ms());
    assert!(vehicle.next_request(first - 1).is_none());
    let key_on = vehicle.next_request(first).expect("due");
    assert_eq!(key_on.endpoint, Endpoint::KeyOn);
    assert_eq!(vehicle.next_due_ms(), first + CYCLE_MS);
}

/// Replays several vehicles' scripts and checks every body and the device's story.
#[test]
fn scripts_are_valid_monicar_traffic() {
    let grid = grid(42);
    let (mut moving_kmh, mut moving_points, mut trips, mut parks) = (0.0, 0u64, 0, 0);
    for index in 0..6 {
        let p = params(42, index);
        let events = vehicle_script(grid.clone(), p, 600);
        assert_eq!(events[0].endpoint, Endpoint::KeyOn, "key-on comes first");
        let mut on = false;
        let mut on_time = 0;
        let mut odometer = None::<i64>;
        let mut trip_legs = 0.0f64;
        let mut prev: Option<(i64, i64, i64)> = None; // time, lat, lng
        let mut last_off = None::<i64>;
        for (k, event) in events.iter().enumerate() {
            let v = json(event);
            assert_eq!(int(&v, "mdn"), 2_254_690_000 + index as i64);
            assert_eq!(v["tid"], format!("TID{index}"));
            assert_eq!((int(&v, "mid"), int(&v, "pv"), int(&v, "did")), (1, 1, 1));
            assert_eq!(event.seq, k as u64);
            assert_eq!(
                (event.at_ms - START_MS).rem_euclid(CYCLE_MS),
                events[0].at_ms - START_MS
            );
            if k > 0 {
                assert!(event.at_ms >= events[k - 1].at_ms, "events in time order");
            }
            match event.endpoint {
                Endpoint::KeyOn => {
                    assert!(!on, "key-on while on");
                    on = true;
                    on_time = time(&v, "onTime");
                    assert_eq!(on_time, event.at_ms / 1_000 * 1_000);
                    assert!(v["offTime"].is_null());
                    assert_eq!(v["gcd"], "A");
                    let sum = int(&v, "sum");
                    if let Some(expected) = odometer {
                        assert_eq!(sum, expected, "odometer carries over");
                    }
                    odometer = Some(sum);
                    if let Some(off) = last_off {
                        let park_min = (on_time - off) / 60_000;
                        assert!((2..=31).contains(&park_min), "parked {park_min} min");
                        parks += 1;
                    }
                    trip_legs = 0.0;
                    prev = Some((on_time, int(&v, "lat"), int(&v, "lng")));
                }
                Endpoint::KeyOff => {
                    assert!(on, "key-off while off");
                    assert!(
                        matches!(events[k - 1].endpoint, Endpoint::CycleInfo),
                        "key-off follows the trip's last cycle-info"
                    );
                    on = false;
                    assert_eq!(time(&v, "onTime"), on_time);
                    let off = time(&v, "offTime");
                    let sum = int(&v, "sum");
                    assert_eq!(sum, trip_legs.round() as i64, "key-off sum = trip legs");
                    let minutes = (off - on_time) / 60_000;
                    assert!((1..=90).contains(&minutes), "trip of {minutes} min");
                    odometer = odometer.map(|o| o + sum);
                    last_off = Some(off);
                    trips += 1;
                }
                Endpoint::CycleInfo => {
                    assert_eq!(int(&v, "cCnt"), 60);
                    let list = v["cList"].as_array().expect("cList");
                    assert_eq!(list.len(), 60);
                    assert_eq!(event.points, 60);
                    for point in list {
                        let t = time(point, "intervalAt");
                        let (lat, lng) = (int(point, "lat"), int(point, "lng"));
                        let (ang, spd) = (int(point, "ang"), int(point, "spd"));
                        assert_eq!(point["gcd"], "A");
                        assert!((37_400_000..37_700_000).contains(&lat), "{lat}");
                        assert!((126_850_000..127_120_000).contains(&lng), "{lng}");
                        assert!((0..=365).contains(&ang) && (0..=255).contains(&spd));
                        assert!(spd <= 100, "{spd} km/h");
                        let (pt, plat, plng) = prev.expect("key-on before cycle-info");
                        assert_eq!(t - pt, 1_000, "points one second apart");
                        let leg = haversine_e6_m(plat as i32, plng as i32, lat as i32, lng as i32);
                        assert!(leg * 3.6 < 150.0, "implied {} km/h", leg * 3.6);
                        assert_eq!(int(point, "sum"), leg.round() as i64);
                        if !on {
                            assert_eq!((spd, leg), (0, 0.0), "parked points repeat");
                        }
                        trip_legs += leg;
                        if spd > 0 {
                            moving_kmh += spd as f64;
                            moving_points += 1;
                        }
                        prev = Some((t, lat, lng));
                    }
                    assert_eq!(prev.map(|p| p.0), Some(event.at_ms / 1_000 * 1_000));
                }
            }
        }
    }
    assert!(trips >= 12 && parks >= 6, "{trips} trips, {parks} parks");
    let mean = moving_kmh / moving_points as f64;
    assert!(
        (15.0..60.0).contains(&mean),
        "mean moving speed {mean} km/h"
    );
}
