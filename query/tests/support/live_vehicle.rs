//! A live vehicle fed to a store by hand, for the HTTP and SQL tests of the live views.

use fleetflow_pipeline::{IgnitionState, LiveFix, MachineLive, Motion, VehicleLive};

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
