//! The live store's spatial index: vehicles by grid cell of 0.01° (about 1.1 km north-south),
//! kept up to date as vehicles move, and the two questions it answers: which vehicles are near
//! a point (the taxi dispatcher's `GEOSEARCH`), and how many are in each cell of a bounding box
//! at a zoom level (the map's clusters).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::vehicles::Slot;
use fleetflow_model::geo::{GeoPoint, LatLonE7};

/// Index cell size, degrees x 10^7.
pub const CELL_E7: i32 = 100_000;
/// Metres per degree of latitude.
const M_PER_DEG: f64 = 111_320.0;

/// Vehicles (their slots in the vehicle table) by index cell.
#[derive(Debug, Default)]
pub struct Grid {
    cells: HashMap<(i32, i32), BTreeSet<Slot>>,
}

/// A bounding box, degrees x 10^7, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxE7 {
    pub min_lat: i32,
    pub min_lon: i32,
    pub max_lat: i32,
    pub max_lon: i32,
}

impl BoxE7 {
    pub fn contains(&self, lat_e7: i32, lon_e7: i32) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat_e7)
            && (self.min_lon..=self.max_lon).contains(&lon_e7)
    }

    /// The box around a circle of `radius_m` (clamped to the globe).
    pub fn around(lat_e7: i32, lon_e7: i32, radius_m: f64) -> BoxE7 {
        let dlat = radius_m / M_PER_DEG;
        let cos = (f64::from(lat_e7) / 1e7).to_radians().cos().max(1e-6);
        let dlon = (radius_m / (M_PER_DEG * cos)).min(360.0);
        let e7 = |deg: f64| (deg * 1e7).round().clamp(-3.6e9, 3.6e9) as i64;
        let clamp = |v: i64, limit: i64| v.clamp(-limit, limit) as i32;
        BoxE7 {
            min_lat: clamp(i64::from(lat_e7) - e7(dlat), 900_000_000),
            max_lat: clamp(i64::from(lat_e7) + e7(dlat), 900_000_000),
            min_lon: clamp(i64::from(lon_e7) - e7(dlon), 1_800_000_000),
            max_lon: clamp(i64::from(lon_e7) + e7(dlon), 1_800_000_000),
        }
    }
}

fn cell(lat_e7: i32, lon_e7: i32) -> (i32, i32) {
    (lat_e7.div_euclid(CELL_E7), lon_e7.div_euclid(CELL_E7))
}

impl Grid {
    pub fn insert(&mut self, slot: Slot, lat_e7: i32, lon_e7: i32) {
        self.cells
            .entry(cell(lat_e7, lon_e7))
            .or_default()
            .insert(slot);
    }

    pub fn remove(&mut self, slot: Slot, lat_e7: i32, lon_e7: i32) {
        let c = cell(lat_e7, lon_e7);
        if let Some(set) = self.cells.get_mut(&c) {
            set.remove(&slot);
            if set.is_empty() {
                self.cells.remove(&c);
            }
        }
    }

    /// Occupied cells.
    pub fn cell_count(&self) -> usize {
        self.cells.len()
    }

    /// The vehicles in cells that overlap `b` (a superset of those inside it): probes each
    /// cell of the box, or scans the occupied cells when there are fewer of them.
    pub fn candidates(&self, b: &BoxE7) -> Vec<Slot> {
        let (lo, hi) = (cell(b.min_lat, b.min_lon), cell(b.max_lat, b.max_lon));
        let span = (i64::from(hi.0 - lo.0) + 1) * (i64::from(hi.1 - lo.1) + 1);
        let mut out = Vec::new();
        if span > self.cells.len() as i64 {
            for (c, keys) in &self.cells {
                if (lo.0..=hi.0).contains(&c.0) && (lo.1..=hi.1).contains(&c.1) {
                    out.extend(keys);
                }
            }
        } else {
            for la in lo.0..=hi.0 {
                for lo_ in lo.1..=hi.1 {
                    if let Some(keys) = self.cells.get(&(la, lo_)) {
                        out.extend(keys);
                    }
                }
            }
        }
        out
    }
}

/// Distance in metres between two positions (the pipeline's haversine).
pub fn distance_m(a: (i32, i32), b: (i32, i32)) -> f64 {
    GeoPoint::new(LatLonE7::new(a.0, a.1)).distance_m(&GeoPoint::new(LatLonE7::new(b.0, b.1)))
}

/// Cluster cell size at a zoom level, degrees x 10^7: 45° at zoom 0, halving per level (about
/// a screen tile's eighth at web-map zooms).
pub fn cluster_cell_e7(zoom: u8) -> i64 {
    (450_000_000_i64 >> zoom.min(28)).max(1)
}

/// One cluster cell: how many members, their mean position (degrees), and the members.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster<T> {
    pub count: usize,
    pub lat: f64,
    pub lon: f64,
    pub members: Vec<T>,
}

/// Groups positions into cluster cells (keyed by cell row and column).
pub fn cluster<T>(
    members: impl IntoIterator<Item = ((i32, i32), T)>,
    zoom: u8,
) -> BTreeMap<(i64, i64), Cluster<T>> {
    let size = cluster_cell_e7(zoom);
    let mut cells: BTreeMap<(i64, i64), Cluster<T>> = BTreeMap::new();
    for ((lat, lon), item) in members {
        let c = (
            i64::from(lat).div_euclid(size),
            i64::from(lon).div_euclid(size),
        );
        let slot = cells.entry(c).or_insert(Cluster {
            count: 0,
            lat: 0.0,
            lon: 0.0,
            members: Vec::new(),
        });
        slot.count += 1;
        slot.lat += f64::from(lat) / 1e7;
        slot.lon += f64::from(lon) / 1e7;
        slot.members.push(item);
    }
    for slot in cells.values_mut() {
        slot.lat /= slot.count as f64;
        slot.lon /= slot.count as f64;
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_cover_the_box_either_way() {
        let mut grid = Grid::default();
        // A 20 x 20 block of vehicles 0.004° apart around Seoul.
        for i in 0..400 {
            let (lat, lon) = (
                375_000_000 + (i / 20) * 40_000,
                1_270_000_000 + (i % 20) * 40_000,
            );
            grid.insert(i as Slot, lat, lon);
        }
        let inside = |b: &BoxE7| {
            (0..400)
                .filter(|i| {
                    b.contains(
                        375_000_000 + (i / 20) * 40_000,
                        1_270_000_000 + (i % 20) * 40_000,
                    )
                })
                .count()
        };
        for b in [
            BoxE7::around(375_200_000, 1_270_200_000, 1_000.0),
            BoxE7::around(375_200_000, 1_270_200_000, 200_000.0),
        ] {
            let got = grid.candidates(&b);
            assert!(got.len() >= inside(&b));
        }
        grid.remove(0, 375_000_000, 1_270_000_000);
        let b = BoxE7::around(375_000_000, 1_270_000_000, 10.0);
        assert!(!grid.candidates(&b).contains(&0));
        assert!(grid.candidates(&b).contains(&1), "same cell");
    }

    #[test]
    fn clusters_count_and_average() {
        let cells = cluster(
            [
                ((10_000_000, 10_000_000), 'a'),
                ((10_000_100, 10_000_100), 'b'),
            ],
            10,
        );
        assert_eq!(cells.len(), 1);
        let c = cells.values().next().unwrap();
        assert_eq!((c.count, c.members.len()), (2, 2));
        assert!((c.lat - 1.000_005).abs() < 1e-9);
    }
}
