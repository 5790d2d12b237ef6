//! The simulated city: a jittered Manhattan grid of streets around a centre. Street spacing varies
//! per street (blocks of 150-400 m), intersections are nudged off the perfect grid, every street has
//! a speed limit (arterials faster), and intersections on arterials carry traffic lights. Everything
//! derives from the run seed, so every vehicle of a run sees the same city.

use crate::world::geo::LocalPlane;
use crate::world::seed_mix::{mix_all, unit_f64};

/// Shortest and longest block edge, metres.
const BLOCK_MIN_M: f64 = 150.0;
const BLOCK_MAX_M: f64 = 400.0;
/// How far an intersection may sit off its grid line, metres (each axis).
const NODE_JITTER_M: f64 = 12.0;
/// One street in this many is an arterial.
const ARTERIAL_EVERY: u64 = 5;

/// Salts keeping the grid's hash streams apart.
const SALT_COLUMN_GAP: u64 = 1;
const SALT_ROW_GAP: u64 = 2;
const SALT_JITTER_X: u64 = 3;
const SALT_JITTER_Y: u64 = 4;
const SALT_COLUMN_KIND: u64 = 5;
const SALT_ROW_KIND: u64 = 6;

/// An intersection, by column (west to east) and row (south to north).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId {
    pub col: u16,
    pub row: u16,
}

/// The street network vehicles drive on.
#[derive(Debug, Clone)]
pub struct RoadGrid {
    seed: u64,
    plane: LocalPlane,
    /// Metres east of the centre of each north-south street (column).
    xs: Vec<f64>,
    /// Metres north of the centre of each east-west street (row).
    ys: Vec<f64>,
}

impl RoadGrid {
    /// A grid of roughly `span_m` x `span_m` metres centred on `center` (lat, lon in degrees).
    pub fn new(seed: u64, center: (f64, f64), span_m: f64) -> RoadGrid {
        let span_m = span_m.max(2.0 * BLOCK_MAX_M);
        RoadGrid {
            seed,
            plane: LocalPlane::new(center.0, center.1),
            xs: street_offsets(seed, SALT_COLUMN_GAP, span_m),
            ys: street_offsets(seed, SALT_ROW_GAP, span_m),
        }
    }

    /// Number of north-south streets.
    pub fn columns(&self) -> u16 {
        u16::try_from(self.xs.len()).unwrap_or(u16::MAX)
    }

    /// Number of east-west streets.
    pub fn rows(&self) -> u16 {
        u16::try_from(self.ys.len()).unwrap_or(u16::MAX)
    }

    /// Mean distance between neighbouring streets, metres.
    pub fn mean_block_m(&self) -> f64 {
        let span = |v: &[f64]| match (v.first(), v.last()) {
            (Some(a), Some(b)) if v.len() > 1 => (b - a) / (v.len() - 1) as f64,
            _ => BLOCK_MAX_M,
        };
        (span(&self.xs) + span(&self.ys)) / 2.0
    }

    /// Position of an intersection, metres east and north of the centre.
    pub fn node_xy(&self, node: NodeId) -> (f64, f64) {
        let x = self.xs.get(usize::from(node.col)).copied().unwrap_or(0.0);
        let y = self.ys.get(usize::from(node.row)).copied().unwrap_or(0.0);
        let key = [u64::from(node.col), u64::from(node.row)];
        let jx = unit_f64(mix_all(self.seed ^ SALT_JITTER_X, &key)) * 2.0 - 1.0;
        let jy = unit_f64(mix_all(self.seed ^ SALT_JITTER_Y, &key)) * 2.0 - 1.0;
        (x + jx * NODE_JITTER_M, y + jy * NODE_JITTER_M)
    }

    /// (lat, lon) in degrees of a point in the grid's metre plane.
    pub fn to_lat_lon(&self, x: f64, y: f64) -> (f64, f64) {
        self.plane.to_lat_lon(x, y)
    }

    /// Whether the north-south street at column `col` is an arterial.
    pub fn is_arterial_column(&self, col: u16) -> bool {
        street_hash(self.seed, SALT_COLUMN_KIND, col).is_multiple_of(ARTERIAL_EVERY)
    }

    /// Whether the east-west street at row `row` is an arterial.
    pub fn is_arterial_row(&self, row: u16) -> bool {
        street_hash(self.seed, SALT_ROW_KIND, row).is_multiple_of(ARTERIAL_EVERY)
    }

    /// Speed limit (km/h) of the north-south street at column `col`.
    pub fn column_limit_kmh(&self, col: u16) -> f64 {
        street_limit(
            street_hash(self.seed, SALT_COLUMN_KIND, col),
            self.is_arterial_column(col),
        )
    }

    /// Speed limit (km/h) of the east-west street at row `row`.
    pub fn row_limit_kmh(&self, row: u16) -> f64 {
        street_limit(
            street_hash(self.seed, SALT_ROW_KIND, row),
            self.is_arterial_row(row),
        )
    }

    /// Speed limit (km/h) of the street between two neighbouring intersections.
    pub fn segment_limit_kmh(&self, from: NodeId, to: NodeId) -> f64 {
        if from.col == to.col {
            self.column_limit_kmh(from.col)
        } else {
            self.row_limit_kmh(from.row)
        }
    }

    /// Whether an intersection has traffic lights (any arterial crosses it).
    pub fn has_lights(&self, node: NodeId) -> bool {
        self.is_arterial_column(node.col) || self.is_arterial_row(node.row)
    }
}

/// Positions of the streets along one axis: random gaps of one block, centred on 0.
fn street_offsets(seed: u64, salt: u64, span_m: f64) -> Vec<f64> {
    let mut offsets = vec![0.0];
    let mut at = 0.0;
    let mut k = 0u64;
    while at < span_m {
        let gap = BLOCK_MIN_M + unit_f64(mix_all(seed ^ salt, &[k])) * (BLOCK_MAX_M - BLOCK_MIN_M);
        at += gap;
        offsets.push(at);
        k += 1;
    }
    let mid = at / 2.0;
    offsets.iter().map(|o| o - mid).collect()
}

fn street_hash(seed: u64, salt: u64, index: u16) -> u64 {
    mix_all(seed ^ salt, &[u64::from(index)])
}

/// A street's limit from its hash: arterials 60-90 km/h, others 30-60 km/h.
fn street_limit(hash: u64, arterial: bool) -> f64 {
    let pick = (hash >> 32) % 4;
    let base = if arterial { 60.0 } else { 30.0 };
    base + 10.0 * pick as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seoul(seed: u64) -> RoadGrid {
        RoadGrid::new(seed, (37.5665, 126.9780), 12_000.0)
    }

    #[test]
    fn grid_is_city_sized_and_deterministic() {
        let grid = seoul(42);
        assert!(grid.columns() >= 30 && grid.columns() <= 90);
        assert!(grid.rows() >= 30 && grid.rows() <= 90);
        let block = grid.mean_block_m();
        assert!((150.0..=400.0).contains(&block), "{block}");
        let node = NodeId { col: 3, row: 7 };
        assert_eq!(grid.node_xy(node), seoul(42).node_xy(node));
        assert_ne!(grid.node_xy(node), seoul(43).node_xy(node));
        let (x0, _) = grid.node_xy(NodeId { col: 0, row: 0 });
        let (x1, _) = grid.node_xy(NodeId {
            col: grid.columns() - 1,
            row: 0,
        });
        assert!((11_000.0..13_000.0).contains(&(x1 - x0)));
    }

    #[test]
    fn limits_and_lights() {
        let grid = seoul(1);
        let arterials = (0..grid.columns())
            .filter(|&c| grid.is_arterial_column(c))
            .count();
        assert!(arterials > 0 && arterials < usize::from(grid.columns()));
        for c in 0..grid.columns() {
            let limit = grid.column_limit_kmh(c);
            assert!((30.0..=90.0).contains(&limit));
            if grid.is_arterial_column(c) {
                assert!(limit >= 60.0);
                assert!(grid.has_lights(NodeId { col: c, row: 0 }));
            }
        }
    }
}
