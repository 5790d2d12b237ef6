//! Live routes as the store holds them: the fixes of each vehicle inside the route window, by
//! time. The dataflow keeps them (`fleetflow_pipeline::live::routes`); a route is read as the
//! vehicle's recent fixes from its open trip's start on ([`crate::LiveSnapshot::route`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::vehicle::LiveFix;

/// One fix inside the route window. The ids are the positions row's shared strings: a fix
/// costs two reference counts, not two allocations.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RecentFix {
    /// First, so that ordering (the temporal filter's held updates, consolidation) compares
    /// fix times before it compares names.
    pub fix: LiveFix,
    #[serde(with = "shared_str")]
    pub company: Arc<str>,
    #[serde(with = "shared_str")]
    pub vehicle: Arc<str>,
}

/// Serde for `Arc<str>` as a plain string (for exchange between processes).
mod shared_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &Arc<str>, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Arc<str>, D::Error> {
        String::deserialize(input).map(Arc::from)
    }
}

/// One vehicle's recent fixes, by time.
type Track = BTreeMap<i64, LiveFix>;

/// The store's copy of `recent`: per company and vehicle, fixes by time.
#[derive(Debug, Default)]
pub struct RecentFixes {
    by_company: HashMap<Arc<str>, HashMap<Arc<str>, Track>>,
    len: usize,
}

impl RecentFixes {
    pub fn insert(&mut self, f: RecentFix) {
        let fixes = self
            .by_company
            .entry(f.company)
            .or_default()
            .entry(f.vehicle)
            .or_default();
        if fixes.insert(f.fix.time_ms, f.fix).is_none() {
            self.len += 1;
        }
    }

    /// Removes `f` if it is the fix held for its vehicle and time.
    pub fn remove(&mut self, f: &RecentFix) {
        let Some(vehicles) = self.by_company.get_mut(&f.company) else {
            return;
        };
        let Some(fixes) = vehicles.get_mut(&f.vehicle) else {
            return;
        };
        if fixes.get(&f.fix.time_ms) == Some(&f.fix) {
            fixes.remove(&f.fix.time_ms);
            self.len -= 1;
            if fixes.is_empty() {
                vehicles.remove(&f.vehicle);
                if vehicles.is_empty() {
                    self.by_company.remove(&f.company);
                }
            }
        }
    }

    /// A vehicle's fixes from `from_ms` on, oldest first.
    pub fn since<'a>(
        &'a self,
        company: &str,
        vehicle: &str,
        from_ms: i64,
    ) -> impl Iterator<Item = &'a LiveFix> + 'a {
        self.by_company
            .get(company)
            .and_then(|vehicles| vehicles.get(vehicle))
            .into_iter()
            .flat_map(move |fixes| fixes.range(from_ms..).map(|(_, f)| f))
    }

    /// Fixes held, over all vehicles.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recent(vehicle: &str, time_ms: i64, lat_e7: i32) -> RecentFix {
        RecentFix {
            company: "acme".into(),
            vehicle: vehicle.into(),
            fix: LiveFix {
                time_ms,
                lat_e7,
                lon_e7: 0,
                speed_dkmh: 0,
            },
        }
    }

    #[test]
    fn fixes_are_held_by_time_and_removed_only_when_equal() {
        let mut fixes = RecentFixes::default();
        fixes.insert(recent("a", 3, 1));
        fixes.insert(recent("a", 1, 1));
        fixes.insert(recent("b", 2, 1));
        let times = |f: &RecentFixes, from| {
            f.since("acme", "a", from)
                .map(|f| f.time_ms)
                .collect::<Vec<_>>()
        };
        assert_eq!(times(&fixes, 0), [1, 3]);
        assert_eq!(times(&fixes, 2), [3]);
        fixes.remove(&recent("a", 3, 2));
        assert_eq!(fixes.len(), 3, "a different fix at that time stays");
        fixes.remove(&recent("a", 3, 1));
        fixes.remove(&recent("a", 1, 1));
        fixes.remove(&recent("b", 2, 1));
        assert!(fixes.is_empty());
        assert!(fixes.by_company.is_empty());
        assert_eq!(fixes.since("acme", "a", 0).count(), 0);
    }
}
