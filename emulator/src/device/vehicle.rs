//! One emulated Monicar terminal as a pure state machine: it drives trips on the road grid, parks,
//! and yields its requests in order with their simulated send times. No clock or network: the
//! runner (or a test, or a bench) pulls events and decides when to send them.
//!
//! Timeline: the vehicle's cycle boundaries are `start + phase + k * 60 s`, with a per-vehicle
//! phase in [0, 60 s) that spreads the fleet's load. At boundary 0 it keys on; at each later
//! boundary it sends a cycle-info with the 60 one-second points since the previous boundary. A trip
//! ends at the first boundary after arrival (the engine idles until then): cycle-info, then key-off.
//! Parking lasts whole cycles (cycle-info with the position repeating, spd 0); the next trip's
//! key-on follows the last parked cycle-info at the same boundary.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::device::device_event::{DeviceEvent, Endpoint, tuid};
use crate::device::monicar_body::{
    DeviceIdentity, GpsPoint, cycle_info_body, key_off_body, key_on_body,
};
use crate::world::geo::haversine_e6_m;
use crate::world::motion::{Drive, MotionSample};
use crate::world::road_grid::{NodeId, RoadGrid};
use crate::world::route::{pick_destination, plan_route};
use crate::world::seed_mix::mix_all;

/// Simulated time between two cycle-info requests, ms.
pub const CYCLE_MS: i64 = 60_000;
/// GPS points per cycle-info (one per simulated second).
pub const POINTS_PER_CYCLE: usize = 60;
/// Salt for the per-vehicle random stream.
const VEHICLE_SALT: u64 = 0x0076_6568_6963_6c65;

/// What identifies a vehicle's script: the same params (and grid) give the same bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VehicleParams {
    pub seed: u64,
    pub index: usize,
    /// Simulated start of the run, ms since the epoch.
    pub start_ms: i64,
    pub mdn_base: i64,
}

#[derive(Debug)]
enum State {
    Driving(Box<Drive>),
    Parked { cycles_left: u32 },
}

/// An emulated terminal (see the module docs for its timeline).
#[derive(Debug)]
pub struct Vehicle {
    grid: Arc<RoadGrid>,
    params: VehicleParams,
    id: DeviceIdentity,
    rng: SmallRng,
    phase_ms: i64,
    /// Boundaries generated so far (0 = none yet).
    boundaries: u64,
    state: State,
    pending: VecDeque<DeviceEvent>,
    seq: u64,
    odometer_m: i64,
    trip_m: f64,
    trip_on_ms: i64,
    /// Where the vehicle is parked, or last was.
    node: NodeId,
    /// The last fix produced (time, position, heading).
    last: GpsPoint,
}

impl Vehicle {
    /// A vehicle parked somewhere in the city, about to key on at its first boundary.
    pub fn new(grid: Arc<RoadGrid>, params: VehicleParams) -> Vehicle {
        let mut rng =
            SmallRng::seed_from_u64(mix_all(params.seed, &[params.index as u64, VEHICLE_SALT]));
        let phase_ms = rng.random_range(0..CYCLE_MS);
        // Bias parking spots towards the centre: the mean of two uniforms.
        let mut central = |len: u16| {
            let u = (rng.random::<f64>() + rng.random::<f64>()) / 2.0;
            ((u * f64::from(len)) as u16).min(len.saturating_sub(1))
        };
        let node = NodeId {
            col: central(grid.columns()),
            row: central(grid.rows()),
        };
        let odometer_m = rng.random_range(1_000_000..200_000_000);
        let ang = rng.random_range(0..360);
        let mut vehicle = Vehicle {
            id: DeviceIdentity::for_vehicle(params.mdn_base, params.index),
            params,
            phase_ms,
            boundaries: 0,
            state: State::Parked { cycles_left: 0 },
            pending: VecDeque::with_capacity(2),
            seq: 0,
            odometer_m,
            trip_m: 0.0,
            trip_on_ms: 0,
            node,
            last: GpsPoint {
                time_ms: 0,
                lat_e6: 0,
                lng_e6: 0,
                ang,
                spd: 0,
                sum: 0,
            },
            rng,
            grid,
        };
        let (x, y) = vehicle.grid.node_xy(node);
        let (lat_e6, lng_e6) = vehicle.quantise(x, y);
        vehicle.last.lat_e6 = lat_e6;
        vehicle.last.lng_e6 = lng_e6;
        vehicle
    }

    /// The identity fields this vehicle sends.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.id
    }

    /// This vehicle's offset into each 60 s cycle, ms.
    pub fn phase_ms(&self) -> i64 {
        self.phase_ms
    }

    /// Total odometer, metres (what the next key-on will report once the current trip ends).
    pub fn odometer_m(&self) -> i64 {
        self.odometer_m
    }

    /// The simulated send time of the next event, known without generating it (so a waiting
    /// vehicle holds no body).
    pub fn next_due_ms(&self) -> i64 {
        self.pending
            .front()
            .map_or_else(|| self.boundary_ms(self.boundaries), |e| e.at_ms)
    }

    /// The next event, if it is due at simulated time `sim_now_ms`.
    pub fn next_request(&mut self, sim_now_ms: i64) -> Option<DeviceEvent> {
        if self.next_due_ms() <= sim_now_ms {
            Some(self.next_event())
        } else {
            None
        }
    }

    /// The next event, whenever it is due.
    pub fn next_event(&mut self) -> DeviceEvent {
        loop {
            self.fill();
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
        }
    }

    fn boundary_ms(&self, k: u64) -> i64 {
        let k = i64::try_from(k).unwrap_or(i64::MAX / CYCLE_MS);
        self.params.start_ms + self.phase_ms + k.saturating_mul(CYCLE_MS)
    }

    /// Generates the events of the next boundary if none are pending.
    fn fill(&mut self) {
        if !self.pending.is_empty() {
            return;
        }
        if self.boundaries == 0 {
            self.boundaries = 1;
            self.start_trip(self.boundary_ms(0));
            return;
        }
        let window_start = self.boundary_ms(self.boundaries - 1);
        let boundary = self.boundary_ms(self.boundaries);
        self.boundaries += 1;
        let mut points = Vec::with_capacity(POINTS_PER_CYCLE);
        match std::mem::replace(&mut self.state, State::Parked { cycles_left: 0 }) {
            State::Driving(mut drive) => {
                for i in 1..=POINTS_PER_CYCLE as i64 {
                    let sample = drive.step(&mut self.rng);
                    points.push(self.moved_to(&sample, window_start + i * 1_000));
                }
                self.push(boundary, Endpoint::CycleInfo, &points);
                if drive.arrived() {
                    self.end_trip(boundary, drive.route().destination());
                } else {
                    self.state = State::Driving(drive);
                }
            }
            State::Parked { cycles_left } => {
                for i in 1..=POINTS_PER_CYCLE as i64 {
                    points.push(GpsPoint {
                        time_ms: window_start + i * 1_000,
                        spd: 0,
                        sum: 0,
                        ..self.last
                    });
                }
                self.push(boundary, Endpoint::CycleInfo, &points);
                if cycles_left <= 1 {
                    self.start_trip(boundary);
                } else {
                    self.state = State::Parked {
                        cycles_left: cycles_left - 1,
                    };
                }
            }
        }
    }

    /// Keys on at `at_ms` and plans a trip of ~5-40 minutes from the parking spot.
    fn start_trip(&mut self, at_ms: i64) {
        let u: f64 = self.rng.random();
        let target_s = (5.0 + 35.0 * u * u) * 60.0;
        // Door-to-door speed including lights and turns (what the motion model achieves).
        let effective_mps: f64 = self.rng.random_range(8.5..11.5);
        let to = pick_destination(
            &self.grid,
            self.node,
            target_s * effective_mps,
            &mut self.rng,
        );
        let route = plan_route(&self.grid, self.node, to, &mut self.rng);
        let idle_s = self.rng.random_range(3..=30);
        let drive = Drive::new(route, idle_s, &mut self.rng);
        self.trip_m = 0.0;
        self.trip_on_ms = at_ms;
        self.last.time_ms = at_ms;
        self.last.spd = 0;
        let fix = self.last;
        let body = key_on_body(&self.id, &fix, self.odometer_m);
        self.push_body(at_ms, Endpoint::KeyOn, body, 0);
        self.state = State::Driving(Box::new(drive));
    }

    /// Keys off at `at_ms` and parks for ~2-30 minutes (whole cycles).
    fn end_trip(&mut self, at_ms: i64, destination: Option<NodeId>) {
        let trip_m = self.trip_m.round() as i64;
        let fix = GpsPoint {
            time_ms: at_ms,
            spd: 0,
            ..self.last
        };
        let body = key_off_body(&self.id, Some(self.trip_on_ms), &fix, trip_m);
        self.push_body(at_ms, Endpoint::KeyOff, body, 0);
        self.odometer_m += trip_m;
        self.trip_m = 0.0;
        if let Some(node) = destination {
            self.node = node;
        }
        let u: f64 = self.rng.random();
        let minutes = 2.0 + 28.0 * u.powf(1.5);
        self.state = State::Parked {
            cycles_left: (minutes.round() as u32).max(2),
        };
    }

    /// The fix for a motion sample at `time_ms`, accumulating the trip's haversine distance.
    fn moved_to(&mut self, sample: &MotionSample, time_ms: i64) -> GpsPoint {
        let (lat_e6, lng_e6) = self.quantise(sample.x, sample.y);
        let leg = haversine_e6_m(self.last.lat_e6, self.last.lng_e6, lat_e6, lng_e6);
        self.trip_m += leg;
        let moving = sample.speed_mps > 0.0;
        let point = GpsPoint {
            time_ms,
            lat_e6,
            lng_e6,
            ang: if moving {
                (sample.heading_deg.round() as u16) % 360
            } else {
                self.last.ang
            },
            spd: (sample.speed_mps * 3.6).round().clamp(0.0, 255.0) as u16,
            sum: leg.round() as u32,
        };
        self.last = point;
        point
    }

    fn quantise(&self, x: f64, y: f64) -> (i32, i32) {
        let (lat, lon) = self.grid.to_lat_lon(x, y);
        (
            (lat * 1e6).round().clamp(-90e6, 90e6) as i32,
            (lon * 1e6).round().clamp(-180e6, 180e6) as i32,
        )
    }

    fn push(&mut self, at_ms: i64, endpoint: Endpoint, points: &[GpsPoint]) {
        let body = cycle_info_body(&self.id, points);
        self.push_body(at_ms, endpoint, body, points.len() as u32);
    }

    fn push_body(&mut self, at_ms: i64, endpoint: Endpoint, body: Vec<u8>, points: u32) {
        let seq = self.seq;
        self.seq += 1;
        self.pending.push_back(DeviceEvent {
            at_ms,
            endpoint,
            body: Bytes::from(body),
            points,
            seq,
            tuid: tuid(self.params.seed, self.params.index, seq),
        });
    }
}

/// The first `count` events of a vehicle, as the runner would send them.
pub fn vehicle_script(
    grid: Arc<RoadGrid>,
    params: VehicleParams,
    count: usize,
) -> Vec<DeviceEvent> {
    let mut vehicle = Vehicle::new(grid, params);
    (0..count).map(|_| vehicle.next_event()).collect()
}
