//! Where the live views meet their readers: a snapshot of every view that the dataflow updates
//! one complete timestamp at a time, so every answer is consistent with one dataflow time
//! ([`LiveSnapshot::upto`]), plus a bounded log of changed vehicles for cursor polling and a
//! bounded alert feed.
//!
//! The dataflow's `PublishLive` operator (`fleetflow_pipeline::live::publish`) calls
//! [`LiveStore::apply`] with each timestamp once the frontier has passed it: a reader never sees
//! half a timestamp, nor one view ahead of another.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use crate::Epoch;
use crate::alerts::{Alert, AlertKind};
use crate::grid::{BoxE7, Grid};
use crate::period::Period;
use crate::routes::RecentFixes;
use crate::rows::{Leader, LiveRow, SummaryKey};
use crate::vehicle::LiveFix;
use crate::vehicles::{Slot, VehicleEntry, VehicleTable};

/// One entry of the change log: a vehicle whose served state (live state, offline flag or
/// totals) changed at `epoch`. Readers render its current state (or its absence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    pub seq: u64,
    pub epoch: Epoch,
    pub entry: &'a VehicleEntry,
}

/// A cursor the log no longer covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "cursor {cursor} is not in the change log (it holds {oldest}..={newest}); read the full state"
)]
pub struct CursorExpired {
    pub cursor: u64,
    pub oldest: u64,
    pub newest: u64,
}

/// Sizes and thresholds of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveStoreConfig {
    /// Changes the cursor log keeps.
    pub change_log: usize,
    /// Alerts the feed keeps.
    pub alert_log: usize,
    /// Distance milestone, metres (0: none).
    pub milestone_m: u64,
}

impl Default for LiveStoreConfig {
    fn default() -> Self {
        LiveStoreConfig {
            change_log: 100_000,
            alert_log: 10_000,
            milestone_m: 100_000,
        }
    }
}

/// The served state.
#[derive(Debug, Default)]
pub struct LiveSnapshot {
    /// Every update before this dataflow time is applied, none after.
    pub upto: Epoch,
    /// Every vehicle's live state, offline flag and totals.
    pub vehicles: VehicleTable,
    pub summary: BTreeMap<SummaryKey, isize>,
    /// By (company, period, rank).
    pub leaders: BTreeMap<(Arc<str>, Period, u32), Leader>,
    /// Vehicles with a position, by grid cell.
    pub grid: Grid,
    /// The fixes inside the live-route window.
    pub recent: RecentFixes,
    /// The changed vehicles' slots, with the epoch they changed at; the last has sequence
    /// number `seq`, the ones before it count down from there.
    changes: VecDeque<(Epoch, Slot)>,
    /// The sequence number of the newest change: the cursor a reader holds.
    pub seq: u64,
    alerts: VecDeque<Alert>,
    /// The sequence number of the newest alert.
    pub alert_seq: u64,
}

impl LiveSnapshot {
    /// A vehicle's live route: its open trip's start and the trip's fixes inside the route
    /// window, oldest first; `None` when it has no open trip.
    pub fn route(&self, vehicle: &VehicleEntry) -> Option<(i64, Vec<&LiveFix>)> {
        let trip = vehicle.live?.open_trip?;
        let (company, name) = &vehicle.key;
        let fixes = self.recent.since(company, name, trip.start_ms).collect();
        Some((trip.start_ms, fixes))
    }

    /// The served vehicles whose cells overlap `b` (a superset of those inside it).
    pub fn near(&self, b: &BoxE7) -> Vec<&VehicleEntry> {
        self.grid
            .candidates(b)
            .into_iter()
            .map(|slot| self.vehicles.at(slot))
            .filter(|e| e.live.is_some())
            .collect()
    }

    /// The vehicles whose state changed after `cursor`, once each, oldest change first; or an
    /// error if the log no longer reaches back that far (or the cursor is from the future, as
    /// after a restart).
    pub fn changes_since(&self, cursor: u64) -> Result<Vec<Change<'_>>, CursorExpired> {
        let oldest = self.seq + 1 - self.changes.len() as u64;
        if cursor + 1 < oldest || cursor > self.seq {
            return Err(CursorExpired {
                cursor,
                oldest: oldest.saturating_sub(1),
                newest: self.seq,
            });
        }
        let start = (cursor + 1 - oldest) as usize;
        let mut newest: HashMap<Slot, (u64, Epoch)> = HashMap::new();
        for (i, (epoch, slot)) in self.changes.range(start..).enumerate() {
            newest.insert(*slot, (cursor + 1 + i as u64, *epoch));
        }
        let mut out: Vec<Change<'_>> = newest
            .into_iter()
            .map(|(slot, (seq, epoch))| Change {
                seq,
                epoch,
                entry: self.vehicles.at(slot),
            })
            .collect();
        out.sort_unstable_by_key(|c| c.seq);
        Ok(out)
    }

    /// The alerts after `cursor`, oldest first (all the feed holds if it no longer reaches
    /// back that far).
    pub fn alerts_since(&self, cursor: u64) -> impl Iterator<Item = &Alert> {
        let start = self.alerts.partition_point(|a| a.seq <= cursor);
        self.alerts.range(start..)
    }

    fn touch(&mut self, epoch: Epoch, slot: Slot) {
        self.seq += 1;
        self.changes.push_back((epoch, slot));
    }

    fn alert(&mut self, mut alert: Alert, epoch: Epoch) {
        self.alert_seq += 1;
        alert.seq = self.alert_seq;
        alert.epoch = epoch;
        self.alerts.push_back(alert);
    }
}

/// One complete timestamp: its view updates and device alerts.
pub type ReadyEpoch = (Epoch, Vec<(LiveRow, isize)>, Vec<Alert>);

/// The live views' shared state: written by the dataflow, read by the HTTP handlers.
#[derive(Debug)]
pub struct LiveStore {
    snapshot: RwLock<LiveSnapshot>,
    config: LiveStoreConfig,
    /// Signalled after every apply: SSE streams wait on it.
    applied: tokio::sync::watch::Sender<Epoch>,
    /// Set at shutdown: streams end so the HTTP server can drain.
    closed: std::sync::atomic::AtomicBool,
}

impl LiveStore {
    pub fn new(config: LiveStoreConfig) -> Self {
        LiveStore {
            snapshot: RwLock::new(LiveSnapshot::default()),
            config,
            applied: tokio::sync::watch::Sender::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Ends every subscriber's stream (at shutdown).
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.applied.send_modify(|_| ());
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads the snapshot.
    pub fn read<R>(&self, f: impl FnOnce(&LiveSnapshot) -> R) -> R {
        f(&self.snapshot.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Resolves whenever the store has applied new timestamps.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Epoch> {
        self.applied.subscribe()
    }

    /// Applies complete timestamps' updates, in time order, and advances `upto`, in one step
    /// for readers.
    pub fn apply(&self, ready: Vec<ReadyEpoch>, upto: Epoch) {
        let mut snap = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        for (epoch, rows, alerts) in ready {
            self.apply_epoch(&mut snap, epoch, rows);
            for alert in alerts {
                snap.alert(alert, epoch);
            }
        }
        while snap.changes.len() > self.config.change_log.max(1) {
            snap.changes.pop_front();
        }
        while snap.alerts.len() > self.config.alert_log.max(1) {
            snap.alerts.pop_front();
        }
        snap.upto = snap.upto.max(upto);
        let upto = snap.upto;
        drop(snap);
        self.applied.send_replace(upto);
    }

    fn apply_epoch(&self, snap: &mut LiveSnapshot, epoch: Epoch, mut rows: Vec<(LiveRow, isize)>) {
        consolidate(&mut rows);
        // Retractions first, so a row that changed ends with its insertion.
        rows.sort_by_key(|(_, diff)| *diff > 0);
        let mut touched: Vec<Slot> = Vec::new();
        let mut offline_before: HashMap<Slot, bool> = HashMap::new();
        let mut today_before: HashMap<Slot, u64> = HashMap::new();
        for (row, diff) in rows {
            let insert = diff > 0;
            match row {
                LiveRow::Vehicle(v) => {
                    let slot = snap.vehicles.slot_or_insert(&(v.company, v.vehicle));
                    let old = snap.vehicles.at(slot).live;
                    let new = if insert {
                        Some(v.state)
                    } else if old == Some(v.state) {
                        None
                    } else {
                        old
                    };
                    if let Some(fix) = old.and_then(|l| l.fix) {
                        snap.grid.remove(slot, fix.lat_e7, fix.lon_e7);
                    }
                    if let Some(fix) = new.and_then(|l| l.fix) {
                        snap.grid.insert(slot, fix.lat_e7, fix.lon_e7);
                    }
                    snap.vehicles.update(slot, |e| e.live = new);
                    touched.push(slot);
                }
                LiveRow::Offline {
                    company,
                    vehicle,
                    since_ms,
                } => {
                    let slot = snap.vehicles.slot_or_insert(&(company, vehicle));
                    let entry = snap.vehicles.at(slot);
                    offline_before
                        .entry(slot)
                        .or_insert(entry.offline_since.is_some());
                    if insert {
                        snap.vehicles
                            .update(slot, |e| e.offline_since = Some(since_ms));
                    } else if entry.offline_since == Some(since_ms) {
                        snap.vehicles.update(slot, |e| e.offline_since = None);
                    }
                    touched.push(slot);
                }
                LiveRow::Inside {
                    company,
                    vehicle,
                    geofence,
                    since_ms,
                } => {
                    let slot = snap.vehicles.slot_or_insert(&(company, vehicle));
                    snap.vehicles.update(slot, |e| {
                        let at = e.geofences.partition_point(|(g, _)| *g < geofence);
                        let held = e.geofences.get(at).is_some_and(|(g, _)| *g == geofence);
                        match (insert, held) {
                            (true, true) => e.geofences[at].1 = since_ms,
                            (true, false) => e.geofences.insert(at, (geofence, since_ms)),
                            (false, true) if e.geofences[at].1 == since_ms => {
                                e.geofences.remove(at);
                            }
                            (false, _) => {}
                        }
                    });
                    touched.push(slot);
                }
                LiveRow::Summary(key, count) => {
                    if insert {
                        snap.summary.insert(key, count);
                    } else if snap.summary.get(&key) == Some(&count) {
                        snap.summary.remove(&key);
                    }
                }
                LiveRow::Total(period, key, total) => {
                    let slot = snap.vehicles.slot_or_insert(&key);
                    let old = snap.vehicles.at(slot).total(period);
                    if period == Period::Today {
                        today_before
                            .entry(slot)
                            .or_insert(old.map_or(0, |t| t.distance_mm));
                    }
                    if insert {
                        snap.vehicles
                            .update(slot, |e| e.set_total(period, Some(total)));
                    } else if old == Some(total) {
                        snap.vehicles.update(slot, |e| e.set_total(period, None));
                    }
                    touched.push(slot);
                }
                LiveRow::Leader(leader) => {
                    let key = (leader.company.clone(), leader.period, leader.rank);
                    if insert {
                        snap.leaders.insert(key, leader);
                    } else if snap.leaders.get(&key) == Some(&leader) {
                        snap.leaders.remove(&key);
                    }
                }
                // Not a change of the vehicle's served state: routes are read, not polled
                // by cursor (a new fix changes the vehicle's state anyway).
                LiveRow::Fix(fix) => {
                    if insert {
                        snap.recent.insert(fix);
                    } else {
                        snap.recent.remove(&fix);
                    }
                }
            }
        }
        for (slot, was) in offline_before {
            let entry = snap.vehicles.at(slot);
            let (kind, time_ms) = match (was, entry.offline_since) {
                (false, Some(since)) => (AlertKind::Offline, since),
                (true, None) => (AlertKind::Online, epoch),
                _ => continue,
            };
            let alert = Alert {
                seq: 0,
                epoch,
                company: entry.key.0.clone(),
                vehicle: entry.key.1.clone(),
                kind,
                time_ms: time_ms as i64,
                pos: entry.live.and_then(|l| l.fix).map(|f| (f.lat_e7, f.lon_e7)),
                value: None,
                geofence: None,
                retraction: false,
            };
            snap.alert(alert, epoch);
        }
        if self.config.milestone_m > 0 {
            for (slot, before) in today_before {
                let entry = snap.vehicles.at(slot);
                let now = entry.total(Period::Today).map_or(0, |t| t.distance_mm);
                let step = self.config.milestone_m * 1000;
                if now / step > before / step {
                    let alert = Alert {
                        seq: 0,
                        epoch,
                        company: entry.key.0.clone(),
                        vehicle: entry.key.1.clone(),
                        kind: AlertKind::Milestone,
                        time_ms: epoch as i64,
                        pos: None,
                        value: Some((now / step * step) as f64 / 1e6),
                        geofence: None,
                        retraction: false,
                    };
                    snap.alert(alert, epoch);
                }
            }
        }
        // In (company, vehicle) order, as before slots: readers see a timestamp's changes
        // sorted by vehicle.
        touched.sort_unstable_by(|a, b| snap.vehicles.at(*a).key.cmp(&snap.vehicles.at(*b).key));
        touched.dedup();
        for slot in touched {
            snap.touch(epoch, slot);
        }
    }
}

/// Sums the changes of each row and drops those that cancel out.
fn consolidate(rows: &mut Vec<(LiveRow, isize)>) {
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut summed: Vec<(LiveRow, isize)> = Vec::with_capacity(rows.len());
    for (row, diff) in rows.drain(..) {
        match summed.last_mut() {
            Some((last, sum)) if *last == row => *sum += diff,
            _ => summed.push((row, diff)),
        }
    }
    summed.retain(|(_, sum)| *sum != 0);
    *rows = summed;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::{PeriodTotal, VehicleKey};
    use crate::vehicle::{IgnitionState, MachineLive, Motion, VehicleLive};

    fn live(vehicle: &str, odometer_m: u64) -> LiveRow {
        LiveRow::Vehicle(VehicleLive {
            vehicle: vehicle.into(),
            company: "acme".into(),
            state: MachineLive {
                fix: None,
                ignition: IgnitionState::Unknown,
                open_trip: None,
                odometer_m: Some(odometer_m),
                motion: Motion::Parked,
                motion_since_ms: 0,
            },
        })
    }

    fn keys(changes: Vec<Change<'_>>) -> Vec<&str> {
        changes.into_iter().map(|c| &**c.entry.vehicle()).collect()
    }

    #[test]
    fn cursors_see_each_change_once_and_expire() {
        let store = LiveStore::new(LiveStoreConfig {
            change_log: 3,
            ..LiveStoreConfig::default()
        });
        store.apply(
            vec![(1, vec![(live("a", 1), 1), (live("b", 1), 1)], vec![])],
            2,
        );
        let cursor = store.read(|s| s.seq);
        assert_eq!(cursor, 2);
        // b changes, a's insert and retract cancel within the timestamp: only b is a change.
        let rows = vec![
            (live("b", 1), -1),
            (live("b", 2), 1),
            (live("a", 1), -1),
            (live("a", 1), 1),
        ];
        store.apply(vec![(2, rows, vec![])], 3);
        store.read(|s| {
            assert_eq!(keys(s.changes_since(cursor).unwrap()), ["b"]);
            let b = s.vehicles.get(&("acme".into(), "b".into())).unwrap();
            assert_eq!(b.live.unwrap().odometer_m, Some(2));
            assert_eq!(s.upto, 3);
        });
        // a leaves; then more changes than the log holds: the old cursor expires.
        store.apply(vec![(3, vec![(live("a", 1), -1)], vec![])], 4);
        store.read(|s| {
            assert_eq!(keys(s.changes_since(cursor).unwrap()), ["b", "a"]);
            assert!(s.vehicles.get(&("acme".into(), "a".into())).is_none());
        });
        store.apply(
            vec![(4, vec![(live("c", 1), 1), (live("d", 1), 1)], vec![])],
            5,
        );
        store.read(|s| {
            assert!(s.changes_since(cursor).is_err());
            assert!(
                s.changes_since(s.seq + 1).is_err(),
                "a cursor from the future"
            );
            assert!(s.changes_since(s.seq).unwrap().is_empty());
        });
    }

    #[test]
    fn offline_transitions_and_milestones_are_alerts() {
        let store = LiveStore::new(LiveStoreConfig {
            milestone_m: 10_000,
            ..LiveStoreConfig::default()
        });
        let offline = LiveRow::Offline {
            company: "acme".into(),
            vehicle: "a".into(),
            since_ms: 50,
        };
        let key: VehicleKey = ("acme".into(), "a".into());
        let total = |km: u64| {
            LiveRow::Total(
                Period::Today,
                key.clone(),
                PeriodTotal {
                    distance_mm: km * 1_000_000,
                    driving_ms: 0,
                    trips: 1,
                },
            )
        };
        store.apply(
            vec![(
                50,
                vec![(live("a", 1), 1), (offline.clone(), 1), (total(9), 1)],
                vec![],
            )],
            51,
        );
        store.apply(
            vec![(
                60,
                vec![(offline, -1), (total(9), -1), (total(21), 1)],
                vec![],
            )],
            61,
        );
        let alerts: Vec<(AlertKind, i64, Option<f64>)> = store.read(|s| {
            s.alerts_since(0)
                .map(|a| (a.kind, a.time_ms, a.value))
                .collect()
        });
        assert_eq!(
            alerts,
            [
                (AlertKind::Offline, 50, None),
                (AlertKind::Online, 60, None),
                (AlertKind::Milestone, 60, Some(20.0)),
            ]
        );
        assert_eq!(store.read(|s| s.alerts_since(2).count()), 1);
    }
}
