//! A live vehicle fed to a store by hand, for the HTTP and SQL tests of the live views.

#![allow(dead_code)] // each test file uses part of this

use std::sync::Arc;

use fleetflow_live_store::LiveRow;
use fleetflow_live_store::store::{LiveStore, LiveStoreConfig};
use fleetflow_live_store::{IgnitionState, LiveFix, MachineLive, Motion, Status, VehicleLive};

/// A vehicle at (lat, lon) degrees.
pub fn vehicle(company: &str, id: &str, lat: f64, lon: f64, motion: Motion) -> VehicleLive {
    VehicleLive {
        vehicle: id.into(),
        company: company.into(),
        state: MachineLive {
            fix: Some(LiveFix {
                time_ms: 1_000,
                lat_e7: (lat * 1e7) as i32,
                lon_e7: (lon * 1e7) as i32,
                speed_dkmh: if motion == Motion::Moving { 420 } else { 0 },
            }),
            ignition: if motion == Motion::Parked {
                IgnitionState::Off
            } else {
                IgnitionState::On
            },
            open_trip: None,
            odometer_m: Some(12_345_000),
            motion,
            motion_since_ms: 900,
        },
    }
}

/// Two vehicles of acme and one of globex, live.
pub fn live_store() -> Arc<LiveStore> {
    let store = Arc::new(LiveStore::new(LiveStoreConfig::default()));
    let vehicles = [
        vehicle("acme", "v0000", 37.5, 127.0, Motion::Moving),
        vehicle("acme", "v0002", 37.502, 127.0, Motion::Parked),
        vehicle("globex", "v0001", 37.501, 127.0, Motion::Idle),
    ];
    let mut rows: Vec<(LiveRow, isize)> = Vec::new();
    for v in &vehicles {
        let key = (
            v.company.clone(),
            v.state.ignition,
            Status::from(v.state.motion),
        );
        rows.push((LiveRow::Summary(key, 1), 1));
        rows.push((LiveRow::Vehicle(v.clone()), 1));
    }
    store.apply(
        vec![(1_606_867_200_000, rows, Vec::new())],
        1_606_867_200_001,
    );
    store
}
