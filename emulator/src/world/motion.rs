//! Second-by-second driving along a planned route: accelerate towards the street's limit (scaled by
//! the driver's temperament), brake in time for turns, red lights and the destination, wait at
//! stops, and report position, speed and heading each simulated second.

use rand::Rng;

use crate::world::route::Route;

/// Comfortable braking used to plan ahead, m/s^2, and the hardest braking allowed.
const PLAN_DECEL: f64 = 2.2;
const MAX_DECEL: f64 = 4.5;
/// How far ahead (m) the driver looks for places to slow down.
const LOOKAHEAD_M: f64 = 300.0;
/// Nobody drives faster than this in town, m/s (90 km/h).
const TOP_SPEED_MPS: f64 = 25.0;

/// The state of one vehicle for one second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionSample {
    /// Metres east/north of the city centre.
    pub x: f64,
    pub y: f64,
    /// Speed, m/s.
    pub speed_mps: f64,
    /// Heading, degrees in `[0, 360)`.
    pub heading_deg: f64,
}

/// A vehicle driving one route.
#[derive(Debug, Clone)]
pub struct Drive {
    route: Route,
    /// Current segment and metres travelled along it.
    seg: usize,
    along_m: f64,
    speed_mps: f64,
    /// Seconds left standing still (warm-up, lights).
    wait_s: u32,
    /// Fraction of the limit this driver aims for, and their acceleration (m/s^2).
    temperament: f64,
    accel: f64,
    arrived: bool,
}

impl Drive {
    /// Starts a drive after `idle_s` seconds of standing with the engine running.
    pub fn new<R: Rng>(route: Route, idle_s: u32, rng: &mut R) -> Drive {
        let arrived = route.segments() == 0;
        Drive {
            route,
            seg: 0,
            along_m: 0.0,
            speed_mps: 0.0,
            wait_s: idle_s,
            temperament: rng.random_range(0.85..1.05),
            accel: rng.random_range(1.4..2.6),
            arrived,
        }
    }

    /// Whether the destination has been reached (the vehicle then stands still).
    pub fn arrived(&self) -> bool {
        self.arrived
    }

    /// The route being driven.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// Advances one second and returns where the vehicle is at its end.
    pub fn step<R: Rng>(&mut self, rng: &mut R) -> MotionSample {
        if self.arrived || self.wait_s > 0 {
            self.wait_s = self.wait_s.saturating_sub(1);
            self.speed_mps = 0.0;
            return self.sample();
        }
        let limit = self.route.seg_limit_mps[self.seg] * self.temperament;
        let target = (limit * rng.random_range(0.96..1.03))
            .min(TOP_SPEED_MPS)
            .min(self.allowed_ahead_mps());
        let v0 = self.speed_mps;
        let v1 = if v0 < target {
            // Acceleration fades as speed builds.
            (v0 + self.accel * (1.0 - 0.5 * v0 / 25.0).max(0.3)).min(target)
        } else {
            (v0 - MAX_DECEL).max(target)
        };
        self.speed_mps = v1.max(0.0);
        self.advance((v0 + self.speed_mps) / 2.0);
        self.sample()
    }

    /// The fastest speed from which every upcoming turn, stop and the destination can still be
    /// met at its pass speed with comfortable braking.
    fn allowed_ahead_mps(&self) -> f64 {
        let mut allowed = f64::INFINITY;
        let mut distance = self.route.seg_len_m[self.seg] - self.along_m;
        let last = self.route.nodes.len() - 1;
        for k in self.seg + 1..=last {
            let node = &self.route.nodes[k];
            let pass = if k == last || node.wait_s > 0 {
                0.0
            } else {
                node.pass_mps
            };
            if pass.is_finite() {
                // Speed v such that covering `distance` while braking at PLAN_DECEL over whole
                // seconds ends at `pass`: solve v*t - a t^2/2 = d with t = (v - pass)/a.
                let v = (pass * pass + 2.0 * PLAN_DECEL * distance.max(0.0)).sqrt();
                allowed = allowed.min(v.max(pass));
            }
            if k < last {
                distance += self.route.seg_len_m[k];
            }
            if distance > LOOKAHEAD_M {
                break;
            }
        }
        allowed
    }

    /// Moves `metres` along the route, stopping exactly at a stop node or the destination.
    fn advance(&mut self, metres: f64) {
        let mut left = metres;
        let last = self.route.nodes.len() - 1;
        loop {
            let remaining = self.route.seg_len_m[self.seg] - self.along_m;
            let next = self.seg + 1;
            let must_stop = next == last || self.route.nodes[next].wait_s > 0;
            // Creeping the last metre to a stop counts as arriving.
            if left < remaining && !(must_stop && remaining - left < 0.5) {
                self.along_m += left;
                return;
            }
            left = (left - remaining).max(0.0);
            if next == last {
                self.seg = last - 1;
                self.along_m = self.route.seg_len_m[self.seg];
                self.arrived = true;
                self.speed_mps = 0.0;
                return;
            }
            self.seg = next;
            self.along_m = 0.0;
            if self.route.nodes[next].wait_s > 0 {
                self.wait_s = std::mem::take(&mut self.route.nodes[next].wait_s);
                self.speed_mps = 0.0;
                return;
            }
        }
    }

    fn sample(&self) -> MotionSample {
        let (x, y) = if self.route.segments() == 0 {
            self.route.nodes.first().map_or((0.0, 0.0), |n| (n.x, n.y))
        } else {
            let (a, b) = (&self.route.nodes[self.seg], &self.route.nodes[self.seg + 1]);
            let f = (self.along_m / self.route.seg_len_m[self.seg]).clamp(0.0, 1.0);
            (a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f)
        };
        MotionSample {
            x,
            y,
            speed_mps: self.speed_mps,
            heading_deg: self
                .route
                .seg_heading_deg
                .get(self.seg)
                .copied()
                .unwrap_or(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::road_grid::{NodeId, RoadGrid};
    use crate::world::route::plan_route;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn drives_to_the_destination_plausibly() {
        let grid = RoadGrid::new(3, (37.5665, 126.9780), 12_000.0);
        let mut rng = SmallRng::seed_from_u64(11);
        let from = NodeId { col: 5, row: 5 };
        let to = NodeId { col: 20, row: 12 };
        let route = plan_route(&grid, from, to, &mut rng);
        let length = route.length_m();
        let mut drive = Drive::new(route, 5, &mut rng);
        let (mut travelled, mut prev, mut max_speed) = (0.0, None::<MotionSample>, 0.0f64);
        for second in 0..7_200 {
            let sample = drive.step(&mut rng);
            max_speed = max_speed.max(sample.speed_mps);
            if let Some(p) = prev {
                let leg = (sample.x - p.x).hypot(sample.y - p.y);
                assert!(leg < 30.0, "jump of {leg} m at {second}");
                travelled += leg;
            }
            prev = Some(sample);
            if drive.arrived() {
                break;
            }
        }
        assert!(drive.arrived());
        assert!(max_speed * 3.6 < 100.0 && max_speed * 3.6 > 20.0);
        assert!((travelled - length).abs() < 0.05 * length + 50.0);
        let end = drive.step(&mut rng);
        assert_eq!(end.speed_mps, 0.0);
    }
}
