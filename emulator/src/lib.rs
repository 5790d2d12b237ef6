//! fleetflow's Monicar-style device emulator.
//!
//! Each emulated vehicle drives trips on a jittered Manhattan street grid around a city centre
//! (default Seoul), accelerating, braking for turns and red lights, then parks; like a Monicar
//! terminal it posts key-on, a 60-point cycle-info every 60 simulated seconds (also while parked,
//! the position then repeating), and key-off to `/api/v1/event-hub/...`. Bodies are a pure
//! function of (seed, vehicle index, simulated start), so runs are reproducible whatever the wall
//! timing; the simulated clock runs `speedup` times faster than the wall clock.
//!
//! - [`run`] drives a fleet against a server and reports throughput, errors and latency;
//! - [`Vehicle`] / [`vehicle_script`] produce a vehicle's requests without any network;
//! - [`key_on_body`], [`key_off_body`], [`cycle_info_body`] build Monicar bodies for benches.
//!
//! Notes for operators:
//! - the simulated clock runs ahead of the server's by `(speedup - 1) x` the wall time elapsed and
//!   fleetflow refuses fixes more than 24 h in its future, so long high-speedup runs need an
//!   earlier `start_ms` (e.g. `now - (speedup - 1) * duration`);
//! - every run starts each vehicle with a key-on and its seeded odometer, so re-running the same
//!   seed against a server that kept the previous run's state can draw "already on" (101) or
//!   odometer-mismatch (1015) refusals; use another `seed` or `mdn_base`;
//! - reproducibility holds for one build: the per-vehicle generator is `rand`'s `SmallRng`.

pub mod config;
mod delivery;
pub mod device_event;
pub mod error;
pub mod geo;
pub mod http_client;
pub mod monicar_body;
pub mod motion;
pub mod rate_limit;
pub mod report;
pub mod road_grid;
pub mod route;
mod runner;
pub mod seed_mix;
pub mod sim_clock;
mod stats;
pub mod vehicle;

#[cfg(test)]
mod runner_tests;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod vehicle_tests;

pub use config::EmulatorConfig;
pub use device_event::{DeviceEvent, Endpoint};
pub use error::EmulatorError;
pub use geo::{EARTH_RADIUS_M, haversine_m};
pub use http_client::{MonicarClient, PostOutcome};
pub use monicar_body::{DeviceIdentity, GpsPoint, cycle_info_body, key_off_body, key_on_body};
pub use report::{ErrorClass, Report, Totals};
pub use road_grid::RoadGrid;
pub use runner::run;
pub use vehicle::{CYCLE_MS, POINTS_PER_CYCLE, Vehicle, VehicleParams, vehicle_script};
