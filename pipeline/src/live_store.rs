//! Where the live views meet their readers: a snapshot of the `vehicles` collection that the
//! dataflow updates one complete timestamp at a time, so every answer is consistent with one
//! dataflow time ([`LiveSnapshot::upto`]), plus a bounded log of changes for cursor polling.
//!
//! The `PublishLive` operator sends every update to worker 0, buffers them per timestamp and
//! applies a timestamp's updates only when the frontier has passed it: a reader never sees half a
//! timestamp.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use differential_dataflow::collection::vec::Collection;
use differential_dataflow::consolidation::consolidate;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;

use crate::sessionize_operator::Epoch;
use crate::vehicle_live::VehicleLive;

/// One entry of the change log: a vehicle whose state changed at `epoch`, and its state after
/// (`None`: it left the view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    pub epoch: Epoch,
    pub company: String,
    pub vehicle: String,
    pub state: Option<VehicleLive>,
}

/// A cursor older than the change log reaches back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cursor {cursor} is older than the change log (oldest {oldest}); read the full state")]
pub struct CursorExpired {
    pub cursor: u64,
    pub oldest: u64,
}

/// The served state.
#[derive(Debug, Default)]
pub struct LiveSnapshot {
    /// Every update before this dataflow time is applied, none after.
    pub upto: Epoch,
    /// Per (company, vehicle).
    pub vehicles: BTreeMap<(String, String), VehicleLive>,
    changes: VecDeque<Change>,
    /// The sequence number of the newest change: the cursor a reader holds.
    pub seq: u64,
}

impl LiveSnapshot {
    /// The changes after `cursor`, one per vehicle (its newest), or an error if the log no
    /// longer reaches back that far.
    pub fn changes_since(&self, cursor: u64) -> Result<Vec<Change>, CursorExpired> {
        let oldest = self.changes.front().map_or(self.seq + 1, |c| c.seq);
        // Valid: the log holds every change after it (and it is not from the future, e.g. from
        // before a restart).
        if cursor + 1 < oldest || cursor > self.seq {
            return Err(CursorExpired { cursor, oldest });
        }
        let mut newest: BTreeMap<(&str, &str), &Change> = BTreeMap::new();
        for change in self.changes.iter().filter(|c| c.seq > cursor) {
            newest.insert((&change.company, &change.vehicle), change);
        }
        let mut out: Vec<Change> = newest.into_values().cloned().collect();
        out.sort_by_key(|c| c.seq);
        Ok(out)
    }
}

/// The live views' shared state: written by the dataflow, read by the HTTP handlers.
#[derive(Debug)]
pub struct LiveStore {
    snapshot: RwLock<LiveSnapshot>,
    /// How many changes the log keeps.
    log_capacity: usize,
}

impl LiveStore {
    pub fn new(log_capacity: usize) -> Self {
        LiveStore {
            snapshot: RwLock::new(LiveSnapshot::default()),
            log_capacity: log_capacity.max(1),
        }
    }

    /// Reads the snapshot.
    pub fn read<R>(&self, f: impl FnOnce(&LiveSnapshot) -> R) -> R {
        f(&self.snapshot.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Applies complete timestamps' updates, in time order, and advances `upto`, in one step
    /// for readers.
    fn apply(&self, ready: Vec<(Epoch, Vec<(VehicleLive, isize)>)>, upto: Epoch) {
        let mut snap = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        for (epoch, updates) in ready {
            Self::apply_epoch(&mut snap, epoch, updates);
        }
        while snap.changes.len() > self.log_capacity {
            snap.changes.pop_front();
        }
        snap.upto = snap.upto.max(upto);
    }

    fn apply_epoch(snap: &mut LiveSnapshot, epoch: Epoch, mut updates: Vec<(VehicleLive, isize)>) {
        // Retractions first, so a vehicle that changed ends with its insertion.
        let (mut removed, mut inserted) = (Vec::new(), Vec::new());
        consolidate(&mut updates);
        for (v, diff) in updates {
            if diff < 0 {
                removed.push(v)
            } else {
                inserted.push(v)
            }
        }
        let mut touched: BTreeMap<(String, String), Option<VehicleLive>> = BTreeMap::new();
        for v in removed {
            let key = (v.company.clone(), v.vehicle.clone());
            if snap.vehicles.get(&key) == Some(&v) {
                snap.vehicles.remove(&key);
            }
            touched.entry(key).or_insert(None);
        }
        for v in inserted {
            let key = (v.company.clone(), v.vehicle.clone());
            snap.vehicles.insert(key.clone(), v.clone());
            touched.insert(key, Some(v));
        }
        for ((company, vehicle), state) in touched {
            snap.seq += 1;
            let seq = snap.seq;
            snap.changes.push_back(Change {
                seq,
                epoch,
                company,
                vehicle,
                state,
            });
        }
    }
}

/// Extension trait: keep a [`LiveStore`] equal to the `vehicles` collection.
pub trait PublishLive {
    fn publish_live(self, store: Arc<LiveStore>);
}

impl PublishLive for Collection<'_, Epoch, VehicleLive> {
    fn publish_live(self, store: Arc<LiveStore>) {
        let mut pending: BTreeMap<Epoch, Vec<(VehicleLive, isize)>> = BTreeMap::new();
        self.inner.sink(
            Exchange::new(|_: &(VehicleLive, Epoch, isize)| 0),
            "PublishLive",
            move |(input, frontier)| {
                input.for_each(|_cap, data| {
                    for (v, t, d) in data.drain(..) {
                        pending.entry(t).or_default().push((v, d));
                    }
                });
                // Everything before the frontier is complete.
                let upto = frontier
                    .frontier()
                    .iter()
                    .min()
                    .copied()
                    .unwrap_or(Epoch::MAX);
                let mut ready = Vec::new();
                while let Some(entry) = pending.first_entry() {
                    if *entry.key() >= upto {
                        break;
                    }
                    ready.push((*entry.key(), entry.remove()));
                }
                if !ready.is_empty() || store.read(|s| s.upto) < upto {
                    store.apply(ready, upto);
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vehicle_live::{IgnitionState, MachineLive};

    fn live(vehicle: &str, odometer_m: u64) -> VehicleLive {
        VehicleLive {
            vehicle: vehicle.into(),
            company: "acme".into(),
            state: MachineLive {
                fix: None,
                ignition: IgnitionState::Unknown,
                open_trip: None,
                odometer_m: Some(odometer_m),
            },
        }
    }

    #[test]
    fn cursors_see_each_change_once_and_expire() {
        let store = LiveStore::new(3);
        store.apply(vec![(1, vec![(live("a", 1), 1), (live("b", 1), 1)])], 2);
        let cursor = store.read(|s| s.seq);
        assert_eq!(cursor, 2);
        // b changes, a's insert and retract cancel within the timestamp: only b is a change.
        store.apply(
            vec![(
                2,
                vec![
                    (live("b", 1), -1),
                    (live("b", 2), 1),
                    (live("a", 1), -1),
                    (live("a", 1), 1),
                ],
            )],
            3,
        );
        let changes = store.read(|s| s.changes_since(cursor)).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].state, Some(live("b", 2)));
        assert_eq!(store.read(|s| s.upto), 3);
        // a leaves; then more changes than the log holds: the old cursor expires.
        store.apply(vec![(3, vec![(live("a", 1), -1)])], 4);
        let changes = store.read(|s| s.changes_since(cursor)).unwrap();
        assert_eq!(
            changes.iter().map(|c| c.state.clone()).collect::<Vec<_>>(),
            [Some(live("b", 2)), None]
        );
        store.apply(vec![(4, vec![(live("c", 1), 1), (live("d", 1), 1)])], 5);
        assert!(store.read(|s| s.changes_since(cursor)).is_err());
        assert!(
            store.read(|s| s.changes_since(s.seq + 1)).is_err(),
            "a cursor from the future"
        );
        assert_eq!(store.read(|s| s.changes_since(s.seq)).unwrap(), []);
    }
}
