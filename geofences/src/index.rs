//! Which geofences hold a fix: an R-tree (rstar) of every version's bounding box per company,
//! then the exact test on the few whose box holds the fix. Built from the file's list whenever
//! it changes, and shared read-only by the dataflow's workers.

use std::collections::HashMap;
use std::sync::Arc;

use fleetflow_model::E7;
use fleetflow_model::geo::LatLonE7;
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};

use crate::geofence::Geofence;
use crate::shape::Shape;

/// One version of one geofence, compiled.
#[derive(Debug)]
struct Entry {
    id: Arc<str>,
    from_ms: i64,
    /// Until the next version or the deletion (exclusive).
    until_ms: i64,
    shape: Shape,
}

type Boxed = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// A company's geofences, indexed.
#[derive(Debug, Default)]
pub struct CompanyIndex {
    entries: Vec<Entry>,
    tree: RTree<Boxed>,
}

impl CompanyIndex {
    /// The ids of the geofences that hold `pos` at `time_ms`, sorted, into `out` (cleared
    /// first).
    pub fn containing(&self, pos: LatLonE7, time_ms: i64, out: &mut Vec<Arc<str>>) {
        out.clear();
        let point = [f64::from(pos.lon_e7) / E7, f64::from(pos.lat_e7) / E7];
        for boxed in self.tree.locate_all_at_point(&point) {
            let entry = &self.entries[boxed.data];
            if entry.from_ms <= time_ms && time_ms < entry.until_ms && entry.shape.contains(pos) {
                out.push(entry.id.clone());
            }
        }
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
    }
}

/// Every company's geofences, indexed for point queries.
#[derive(Debug, Default)]
pub struct GeofenceIndex {
    companies: HashMap<Arc<str>, CompanyIndex>,
    /// Versions compiled.
    versions: usize,
}

impl GeofenceIndex {
    /// Compiles `geofences` (a version that no longer checks, which the API never stores, is
    /// left out with a warning).
    pub fn build(geofences: &[Geofence]) -> GeofenceIndex {
        let mut by_company: HashMap<Arc<str>, Vec<Entry>> = HashMap::new();
        for g in geofences {
            let id: Arc<str> = Arc::from(g.id.as_str());
            for (i, version) in g.versions.iter().enumerate() {
                let next = g.versions.get(i + 1).map_or(i64::MAX, |v| v.from_ms);
                let until_ms = g.deleted_ms.map_or(next, |d| d.min(next));
                if until_ms <= version.from_ms {
                    continue;
                }
                match version.spec.shape() {
                    Ok(shape) => by_company
                        .entry(Arc::from(g.company.as_str()))
                        .or_default()
                        .push(Entry {
                            id: id.clone(),
                            from_ms: version.from_ms,
                            until_ms,
                            shape,
                        }),
                    Err(error) => {
                        tracing::warn!(geofence = %g.id, %error, "geofence version left out")
                    }
                }
            }
        }
        let mut versions = 0;
        let companies = by_company
            .into_iter()
            .map(|(company, entries)| {
                versions += entries.len();
                let boxes = entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let (min, max) = e.shape.bbox();
                        GeomWithData::new(Rectangle::from_corners(min, max), i)
                    })
                    .collect();
                let tree = RTree::bulk_load(boxes);
                (company, CompanyIndex { entries, tree })
            })
            .collect();
        GeofenceIndex {
            companies,
            versions,
        }
    }

    /// How many geofence versions it holds.
    pub fn len(&self) -> usize {
        self.versions
    }

    pub fn is_empty(&self) -> bool {
        self.versions == 0
    }

    /// `company`'s geofences, if it has any: look it up once, then ask it per fix.
    pub fn company(&self, company: &str) -> Option<&CompanyIndex> {
        self.companies.get(company)
    }

    /// The ids of `company`'s geofences that hold `pos` at `time_ms`, sorted, into `out`
    /// (cleared first).
    pub fn containing(&self, company: &str, pos: LatLonE7, time_ms: i64, out: &mut Vec<Arc<str>>) {
        match self.company(company) {
            Some(index) => index.containing(pos, time_ms, out),
            None => out.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geofence::NewGeofence;
    use serde_json::json;

    fn fence(id: &str, company: &str, lat: f64, lon: f64, radius_m: f64, from_ms: i64) -> Geofence {
        let request: NewGeofence = serde_json::from_value(
            json!({"name": id, "center": {"lat": lat, "lon": lon}, "radius_m": radius_m}),
        )
        .unwrap();
        Geofence {
            id: id.to_owned(),
            company: company.to_owned(),
            versions: vec![request.validate(from_ms).unwrap()],
            deleted_ms: None,
        }
    }

    fn at(lat: f64, lon: f64) -> LatLonE7 {
        LatLonE7::new((lat * E7).round() as i32, (lon * E7).round() as i32)
    }

    #[test]
    fn a_fix_is_in_its_own_company_s_geofences_in_force_at_its_time() {
        let mut deleted = fence("d", "acme", 37.5, 127.0, 1_000.0, 0);
        deleted.deleted_ms = Some(500);
        let index = GeofenceIndex::build(&[
            fence("a", "acme", 37.5, 127.0, 1_000.0, 100),
            fence("b", "acme", 37.5, 127.005, 1_000.0, 0),
            fence("far", "acme", 38.5, 127.0, 1_000.0, 0),
            fence("g", "globex", 37.5, 127.0, 1_000.0, 0),
            deleted,
        ]);
        assert_eq!(index.len(), 5);
        let mut out = Vec::new();
        let ids = |out: &Vec<Arc<str>>| out.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        index.containing("acme", at(37.5, 127.0), 50, &mut out);
        assert_eq!(ids(&out), ["b", "d"], "a is not in force yet");
        index.containing("acme", at(37.5, 127.0), 600, &mut out);
        assert_eq!(ids(&out), ["a", "b"], "d is deleted");
        index.containing("acme", at(37.5, 127.02), 600, &mut out);
        assert!(out.is_empty());
        index.containing("initech", at(37.5, 127.0), 600, &mut out);
        assert!(out.is_empty());
    }
}
