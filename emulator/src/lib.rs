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
pub mod device;
pub mod error;
pub mod fleet;
pub mod world;

pub use config::EmulatorConfig;
pub use device::device_event::{DeviceEvent, Endpoint};
pub use device::monicar_body::{
    DeviceIdentity, GpsPoint, cycle_info_body, key_off_body, key_on_body,
};
pub use device::vehicle::{CYCLE_MS, POINTS_PER_CYCLE, Vehicle, VehicleParams, vehicle_script};
pub use error::EmulatorError;
pub use fleet::http_client::{MonicarClient, PostOutcome};
pub use fleet::report::{ErrorClass, Report, Totals};
pub use fleet::runner::run;
pub use world::geo::{EARTH_RADIUS_M, haversine_m};
pub use world::road_grid::RoadGrid;
