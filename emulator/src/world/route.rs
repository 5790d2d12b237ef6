//! Trip planning on the road grid: a destination about as far as the trip's intended length, and a
//! street-following route to it (a staircase of runs along streets with a few turns), annotated
//! with where the driver must slow (turns) or stop (red lights, stop signs) and for how long.

use rand::Rng;

use crate::world::geo::heading_deg;
use crate::world::road_grid::{NodeId, RoadGrid};

/// Chance of meeting a red light at a signalised intersection, and its wait range (s).
const RED_LIGHT_P: f64 = 0.4;
const RED_WAIT_S: std::ops::RangeInclusive<u32> = 5..=60;
/// Chance of a brief stop (stop sign, pedestrians) at an intersection without lights.
const MINOR_STOP_P: f64 = 0.06;
const MINOR_WAIT_S: std::ops::RangeInclusive<u32> = 1..=4;
/// Speed through a 90-degree turn, m/s (about 14-25 km/h).
const TURN_MPS: std::ops::Range<f64> = 4.0..7.0;

/// One intersection on a route and what the driver does there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouteNode {
    pub node: NodeId,
    /// Metres east/north of the city centre.
    pub x: f64,
    pub y: f64,
    /// Fastest speed to cross this node, m/s (`f64::INFINITY` when going straight).
    pub pass_mps: f64,
    /// Seconds stopped here (red light, stop sign); 0 = drive through.
    pub wait_s: u32,
}

/// A planned trip: the nodes driven through and the street segments between them.
#[derive(Debug, Clone)]
pub struct Route {
    pub nodes: Vec<RouteNode>,
    /// Length (m), speed limit (m/s) and heading (degrees) of segment `i`, from node `i` to `i + 1`.
    pub seg_len_m: Vec<f64>,
    pub seg_limit_mps: Vec<f64>,
    pub seg_heading_deg: Vec<f64>,
}

impl Route {
    /// Number of street segments.
    pub fn segments(&self) -> usize {
        self.seg_len_m.len()
    }

    /// Total length, metres.
    pub fn length_m(&self) -> f64 {
        self.seg_len_m.iter().sum()
    }

    /// The final node.
    pub fn destination(&self) -> Option<NodeId> {
        self.nodes.last().map(|n| n.node)
    }
}

/// A destination roughly `target_m` metres of street (Manhattan distance) from `from`, inside the
/// grid and never `from` itself.
pub fn pick_destination<R: Rng>(
    grid: &RoadGrid,
    from: NodeId,
    target_m: f64,
    rng: &mut R,
) -> NodeId {
    let blocks = (target_m / grid.mean_block_m()).round().max(2.0);
    let share_x: f64 = rng.random_range(0.15..0.85);
    let dx = (blocks * share_x).round() as i32;
    let dy = (blocks - f64::from(dx)).round().max(0.0) as i32;
    let col = step_axis(from.col, dx, grid.columns(), rng.random_bool(0.5));
    let row = step_axis(from.row, dy, grid.rows(), rng.random_bool(0.5));
    let mut to = NodeId { col, row };
    if to == from {
        to.col = step_axis(from.col, 3, grid.columns(), true);
    }
    to
}

/// `at` moved by `by` steps in the preferred direction, or the other one if that leaves the grid,
/// clamped into `0..len`.
fn step_axis(at: u16, by: i32, len: u16, forward: bool) -> u16 {
    let (at, len) = (i32::from(at), i32::from(len.max(1)));
    let (ahead, back) = (at + by, at - by);
    let chosen = match (forward, ahead < len, back >= 0) {
        (true, true, _) | (false, true, false) => ahead,
        (false, _, true) | (true, false, true) => back,
        _ if len - 1 - at > at => len - 1,
        _ => 0,
    };
    u16::try_from(chosen.clamp(0, len - 1)).unwrap_or(0)
}

/// A street-following route from `from` to `to`: alternating runs east-west and north-south.
pub fn plan_route<R: Rng>(grid: &RoadGrid, from: NodeId, to: NodeId, rng: &mut R) -> Route {
    let path = staircase(from, to, rng);
    let mut nodes: Vec<RouteNode> = path
        .iter()
        .map(|&node| {
            let (x, y) = grid.node_xy(node);
            RouteNode {
                node,
                x,
                y,
                pass_mps: f64::INFINITY,
                wait_s: 0,
            }
        })
        .collect();
    let segments = nodes.len().saturating_sub(1);
    let mut seg_len_m = Vec::with_capacity(segments);
    let mut seg_limit_mps = Vec::with_capacity(segments);
    let mut seg_heading_deg = Vec::with_capacity(segments);
    for pair in nodes.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        seg_len_m.push((b.x - a.x).hypot(b.y - a.y).max(1.0));
        seg_limit_mps.push(grid.segment_limit_kmh(a.node, b.node) / 3.6);
        seg_heading_deg.push(heading_deg(b.x - a.x, b.y - a.y));
    }
    let last = nodes.len().saturating_sub(1);
    for k in 1..last {
        let (prev, here, next) = (path[k - 1], path[k], path[k + 1]);
        let turning = (prev.col == here.col) != (here.col == next.col);
        if turning {
            nodes[k].pass_mps = rng.random_range(TURN_MPS);
        }
        if grid.has_lights(here) {
            if rng.random_bool(RED_LIGHT_P) {
                nodes[k].wait_s = rng.random_range(RED_WAIT_S);
            }
        } else if rng.random_bool(MINOR_STOP_P) {
            nodes[k].wait_s = rng.random_range(MINOR_WAIT_S);
        }
    }
    if let Some(end) = nodes.last_mut() {
        end.pass_mps = 0.0;
    }
    Route {
        nodes,
        seg_len_m,
        seg_limit_mps,
        seg_heading_deg,
    }
}

/// The grid nodes of a monotone path from `from` to `to` made of runs of random length.
fn staircase<R: Rng>(from: NodeId, to: NodeId, rng: &mut R) -> Vec<NodeId> {
    let mut left_x = i32::from(to.col) - i32::from(from.col);
    let mut left_y = i32::from(to.row) - i32::from(from.row);
    let (step_x, step_y) = (left_x.signum(), left_y.signum());
    let mut path = vec![from];
    let mut at = from;
    let mut along_x = rng.random_bool(0.5);
    while left_x != 0 || left_y != 0 {
        if left_x == 0 {
            along_x = false;
        } else if left_y == 0 {
            along_x = true;
        }
        let (left, other) = if along_x {
            (left_x.abs(), left_y)
        } else {
            (left_y.abs(), left_x)
        };
        let run = if other == 0 {
            left
        } else {
            rng.random_range(1..=left)
        };
        for _ in 0..run {
            if along_x {
                at.col = at.col.saturating_add_signed(step_x as i16);
                left_x -= step_x;
            } else {
                at.row = at.row.saturating_add_signed(step_y as i16);
                left_y -= step_y;
            }
            path.push(at);
        }
        along_x = !along_x;
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn routes_follow_streets_to_the_destination() {
        let grid = RoadGrid::new(5, (37.5665, 126.9780), 12_000.0);
        let mut rng = SmallRng::seed_from_u64(9);
        for _ in 0..200 {
            let from = NodeId {
                col: rng.random_range(0..grid.columns()),
                row: rng.random_range(0..grid.rows()),
            };
            let target = rng.random_range(1_000.0..15_000.0);
            let to = pick_destination(&grid, from, target, &mut rng);
            assert_ne!(to, from);
            assert!(to.col < grid.columns() && to.row < grid.rows());
            let route = plan_route(&grid, from, to, &mut rng);
            assert_eq!(route.nodes.first().map(|n| n.node), Some(from));
            assert_eq!(route.destination(), Some(to));
            for pair in route.nodes.windows(2) {
                let (a, b) = (pair[0].node, pair[1].node);
                let moves = a.col.abs_diff(b.col) + a.row.abs_diff(b.row);
                assert_eq!(moves, 1, "one block at a time");
            }
            for (len, limit) in route.seg_len_m.iter().zip(&route.seg_limit_mps) {
                assert!((100.0..450.0).contains(len), "{len}");
                assert!(*limit * 3.6 <= 90.0 + 1e-9);
            }
        }
    }

    #[test]
    fn step_axis_stays_inside() {
        assert_eq!(step_axis(2, 5, 10, true), 7);
        assert_eq!(step_axis(8, 5, 10, true), 3);
        assert_eq!(step_axis(2, 5, 10, false), 7);
        assert_eq!(step_axis(5, 20, 10, true), 0);
        assert_eq!(step_axis(4, 20, 10, true), 9);
    }
}
