//! The geofences the dataflow tests fixes against: an index built from
//! `<data-dir>/geofences/geofences.json`, re-built by a watcher thread when the file changes
//! (the API may run in another process), and picked up by each worker's sessionizer before it
//! settles a timestamp.
//!
//! A change applies from its geofence versions' times on (a create or edit from when it was
//! made, a delete from when it was deleted). Fixes at or after that time may already have been
//! tested against the old index, so each change carries the earliest such time and the
//! sessionizer re-runs every vehicle from there (`Sessionizer::set_geofences`): the visits end
//! up what the file says, whichever way the change and the fixes raced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use fleetflow_geofences::{Geofence, GeofenceIndex, Geofences};

/// Changes remembered for workers that have not yet picked them up.
const KEEP_CHANGES: usize = 1024;

#[derive(Debug, Default)]
struct Published {
    version: u64,
    index: Arc<GeofenceIndex>,
    /// (version, earliest time it changes), oldest first.
    changes: Vec<(u64, i64)>,
}

/// The newest index, shared by the watcher and the workers.
#[derive(Debug, Clone, Default)]
pub struct GeofenceFeed {
    published: Arc<Mutex<Published>>,
}

/// What a worker picks up: the index, its version, and the earliest time changed since the
/// version the worker had (`None`: nothing settled can change).
pub type Update = (u64, Arc<GeofenceIndex>, Option<i64>);

impl GeofenceFeed {
    /// Publishes `index`, which changes what fixes at or after `from_ms` are in.
    pub fn publish(&self, index: GeofenceIndex, from_ms: Option<i64>) {
        let mut p = self.published.lock().unwrap_or_else(|e| e.into_inner());
        p.version += 1;
        p.index = Arc::new(index);
        let version = p.version;
        if let Some(from_ms) = from_ms {
            p.changes.push((version, from_ms));
            let excess = p.changes.len().saturating_sub(KEEP_CHANGES);
            p.changes.drain(..excess);
        }
    }

    /// The index if newer than `seen`.
    pub fn newer_than(&self, seen: u64) -> Option<Update> {
        let p = self.published.lock().unwrap_or_else(|e| e.into_inner());
        if p.version == seen {
            return None;
        }
        // A worker that missed more than the changes kept re-runs from the oldest kept one's
        // time at least; with a change a second, that is a quarter of an hour of edits.
        let from_ms = p
            .changes
            .iter()
            .filter(|(v, _)| *v > seen)
            .map(|&(_, t)| t)
            .min();
        Some((p.version, p.index.clone(), from_ms))
    }

    /// Publishes the file's geofences now, then watches the file every `poll` until `stop`.
    pub fn watch(
        &self,
        geofences: Arc<Geofences>,
        poll: Duration,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        let mut last = geofences.all();
        self.publish(GeofenceIndex::build(&last), None);
        let feed = self.clone();
        std::thread::Builder::new()
            .name("geofence-watch".to_owned())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    std::thread::sleep(poll);
                    match geofences.reload_if_changed() {
                        Ok(now) if !Arc::ptr_eq(&now, &last) => {
                            let from_ms = earliest_change(&last, &now);
                            let index = GeofenceIndex::build(&now);
                            tracing::info!(versions = index.len(), ?from_ms, "geofences changed");
                            feed.publish(index, from_ms);
                            last = now;
                        }
                        Ok(_) => {}
                        Err(error) => tracing::error!(%error, "reading geofences"),
                    }
                }
            })
    }
}

/// The earliest fix time whose geofences differ between `old` and `new` (`None`: none differ).
/// A geofence dropped from the file (deleted a week before) changes nothing a fix can still be
/// corrected for.
pub fn earliest_change(old: &[Geofence], new: &[Geofence]) -> Option<i64> {
    let before: HashMap<&str, &Geofence> = old.iter().map(|g| (g.id.as_str(), g)).collect();
    let mut earliest: Option<i64> = None;
    let mut note = |t: i64| earliest = Some(earliest.map_or(t, |e| e.min(t)));
    for g in new {
        let Some(was) = before.get(g.id.as_str()) else {
            note(g.versions[0].from_ms);
            continue;
        };
        if let Some(i) =
            (0..g.versions.len()).find(|&i| was.versions.get(i) != Some(&g.versions[i]))
        {
            note(g.versions[i].from_ms);
        }
        if g.deleted_ms != was.deleted_ms {
            let times = [g.deleted_ms, was.deleted_ms];
            if let Some(t) = times.into_iter().flatten().min() {
                note(t);
            }
        }
    }
    earliest
}
