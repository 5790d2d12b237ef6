//! One vehicle's sessions: its timeline, the trip machine's checkpoints, its closed trips and
//! geofence visits, and the re-run from the last checkpoint before the earliest new item
//! ([`VehicleSessions::settle`]) that turns admitted items into trips, visits and verdicts, as
//! differences from what it emitted before; and eviction behind the correction horizon. The
//! worker's [`Sessionizer`](crate::trips::sessionize::Sessionizer) owns one per vehicle.

use std::collections::HashSet;
use std::sync::Arc;

use fleetflow_geofences::GeofenceIndex;
use fleetflow_geofences::visit::{Visit, VisitTrack};
use fleetflow_model::geo::LatLonE7;

use crate::rows::{EventKind, EventRow, PositionRow, TripRecord, VehicleName, flags};
use crate::trips::outputs::{Outputs, SessionStats};
use crate::trips::timeline::{EntryKey, EntryKind, Timeline};
use crate::trips::trip_machine::{Detected, Limits, Machine, Verdict};
use fleetflow_live_store::trip::Trip;
use fleetflow_live_store::vehicle::{IgnitionState, MachineLive, Motion, VehicleLive};

/// Entries between checkpoints: the most a late item re-runs before its own position.
pub const CHECKPOINT_EVERY: usize = 128;

/// What a settle tests fixes against, with a buffer for the answer.
pub(crate) struct FenceScratch<'a> {
    pub(crate) index: &'a GeofenceIndex,
    pub(crate) inside: &'a mut Vec<Arc<str>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    /// The machine state before the entry with this key.
    pub(crate) key: EntryKey,
    pub(crate) machine: Machine,
    pub(crate) closed_len: usize,
    /// The geofence visits open before the entry, and how many had closed.
    pub(crate) visits: VisitTrack,
    pub(crate) closed_visits_len: usize,
}

/// A fix admitted since the last settle, waiting for its verdict.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) key: EntryKey,
    pub(crate) row: PositionRow,
}

#[derive(Debug)]
pub(crate) struct VehicleSessions {
    pub(crate) name: Arc<VehicleName>,
    pub(crate) partition: i32,
    pub(crate) limits: Limits,
    pub(crate) timeline: Timeline,
    /// State after `last_processed`.
    pub(crate) machine: Machine,
    pub(crate) last_processed: Option<EntryKey>,
    pub(crate) closed: Vec<Trip>,
    /// The geofence visits open after `last_processed`, and those closed since the base.
    pub(crate) visits: VisitTrack,
    pub(crate) closed_visits: Vec<Visit>,
    /// Ascending keys. When `sealed`, the first is the eviction base: nothing before it changes.
    pub(crate) checkpoints: Vec<Checkpoint>,
    pub(crate) sealed: bool,
    pub(crate) dirty_from: Option<EntryKey>,
    pub(crate) pending: Vec<Pending>,
    pub(crate) reported: HashSet<(EventKind, i64)>,
    pub(crate) min_offset: i64,
    /// The live state last emitted (with the company it was emitted under).
    pub(crate) live: Option<(Arc<str>, MachineLive)>,
    /// The last-heard time last emitted (with its company and live state), and whether the
    /// vehicle was heard from since [`Sessionizer::record_heard`] last ran.
    pub(crate) heard: Option<Heard>,
    pub(crate) heard_pending: bool,
    /// When ingest received the vehicle's newest record (0: no record said).
    pub(crate) received_ms: i64,
}

/// A last-heard record as emitted: company, time of receipt, live ignition and motion.
pub(crate) type Heard = (Arc<str>, u64, Option<(IgnitionState, Motion)>);

impl VehicleSessions {
    pub(crate) fn new(name: Arc<VehicleName>, partition: i32, limits: Limits) -> Self {
        VehicleSessions {
            name,
            partition,
            limits,
            timeline: Timeline::default(),
            machine: Machine::default(),
            last_processed: None,
            closed: Vec::new(),
            visits: VisitTrack::default(),
            closed_visits: Vec::new(),
            checkpoints: Vec::new(),
            sealed: false,
            dirty_from: None,
            pending: Vec::new(),
            reported: HashSet::new(),
            min_offset: i64::MAX,
            live: None,
            heard: None,
            heard_pending: false,
            received_ms: 0,
        }
    }

    pub(crate) fn base_key(&self) -> Option<EntryKey> {
        if self.sealed {
            self.checkpoints.first().map(|c| c.key)
        } else {
            None
        }
    }

    pub(crate) fn all_trips(&self) -> impl Iterator<Item = &Trip> {
        self.closed.iter()
    }

    /// Re-runs the machine from the last checkpoint before the earliest new entry.
    pub(crate) fn settle(
        &mut self,
        out: &mut Outputs,
        stats: &mut SessionStats,
        scratch: &mut Vec<Detected>,
        fences: &mut FenceScratch<'_>,
    ) {
        let Some(from) = self.dirty_from.take() else {
            return;
        };
        let entries = self.timeline.entries();
        let (start, mut machine, closed_len, mut visits, closed_visits_len, keep) =
            match self.last_processed {
                Some(last) if from > last => (
                    self.timeline.lower_bound(from),
                    self.machine,
                    self.closed.len(),
                    self.visits.clone(),
                    self.closed_visits.len(),
                    self.checkpoints.len(),
                ),
                _ => {
                    let ci = self.checkpoints.partition_point(|c| c.key < from);
                    match ci.checked_sub(1).map(|i| &self.checkpoints[i]) {
                        Some(c) => (
                            self.timeline.lower_bound(c.key),
                            c.machine,
                            c.closed_len,
                            c.visits.clone(),
                            c.closed_visits_len,
                            ci,
                        ),
                        None => (0, Machine::default(), 0, VisitTrack::default(), 0, 0),
                    }
                }
            };
        let old_open = self.machine.open_trip();
        let mut old_tail = self.closed.split_off(closed_len);
        old_tail.extend(old_open);
        let mut old_visits = self.closed_visits.split_off(closed_visits_len);
        old_visits.extend_from_slice(self.visits.open());
        self.checkpoints.truncate(keep);
        let company_fences = fences.index.company(&self.name.company);

        self.pending.sort_unstable_by_key(|p| p.key);
        let mut pending = self.pending.drain(..).peekable();
        for (i, e) in entries.iter().enumerate().skip(start) {
            let key = e.key();
            if i % CHECKPOINT_EVERY == 0 && self.checkpoints.last().is_none_or(|c| c.key < key) {
                self.checkpoints.push(Checkpoint {
                    key,
                    machine,
                    closed_len: self.closed.len(),
                    visits: visits.clone(),
                    closed_visits_len: self.closed_visits.len(),
                });
            }
            scratch.clear();
            let verdict = machine.step(e, &self.limits, scratch);
            // Only accepted fixes (usable, not a jump) enter or leave geofences.
            if matches!(verdict, Verdict::Accepted { .. })
                && (company_fences.is_some() || !visits.open().is_empty())
            {
                let pos = LatLonE7::new(e.lat_e7, e.lon_e7);
                match company_fences {
                    Some(index) => index.containing(pos, e.time_ms, fences.inside),
                    None => fences.inside.clear(),
                }
                visits.step(
                    e.time_ms,
                    (e.lat_e7, e.lon_e7),
                    fences.inside,
                    &mut self.closed_visits,
                );
            }
            for detected in scratch.drain(..) {
                let (kind, time_ms, pos, value) = match detected {
                    Detected::TripClosed(trip) => {
                        self.closed.push(trip);
                        continue;
                    }
                    Detected::Overspeed {
                        since_ms,
                        speed_dkmh,
                        pos,
                    } => (
                        EventKind::Overspeed,
                        since_ms,
                        Some(pos),
                        f64::from(speed_dkmh) / 10.0,
                    ),
                    Detected::MaintenanceDue {
                        at_ms,
                        odometer_m,
                        pos,
                    } => (
                        EventKind::MaintenanceDue,
                        at_ms,
                        pos,
                        odometer_m as f64 / 1000.0,
                    ),
                };
                // Once per (kind, time): a re-run after a late item detects it again.
                if self.reported.insert((kind, time_ms)) {
                    out.events.push(event_row(
                        &self.name.company,
                        &self.name.vehicle,
                        kind,
                        time_ms,
                        pos.map(|p| (p.lat_e7, p.lon_e7)),
                        None,
                        Some(value),
                    ));
                }
            }
            while let Some(p) = pending.next_if(|p| p.key <= key) {
                if p.key != key || e.kind != EntryKind::Fix {
                    continue;
                }
                let mut row = p.row;
                match verdict {
                    Verdict::Accepted { trip_start_ms } => row.set_trip_start_ms(trip_start_ms),
                    Verdict::Unusable => row.flags |= flags::INVALID,
                    Verdict::Jump => row.flags |= flags::JUMP,
                }
                out.positions.push(row);
            }
        }
        drop(pending);
        self.machine = machine;
        self.visits = visits;
        self.last_processed = self.timeline.last_key();

        let mut new_tail: Vec<Trip> = self.closed[closed_len..].to_vec();
        new_tail.extend(self.machine.open_trip());
        self.emit_trip_changes(old_tail, new_tail, out, stats);
        let mut new_visits = self.closed_visits[closed_visits_len..].to_vec();
        new_visits.extend_from_slice(self.visits.open());
        crate::trips::visit_changes::emit(&self.name, old_visits, new_visits, out);
        self.emit_live_change(out);
    }

    pub(crate) fn emit_live_change(&mut self, out: &mut Outputs) {
        let now = (self.name.company.clone(), self.machine.live());
        if self.live.as_ref() == Some(&now) {
            return;
        }
        let vehicle = &self.name.vehicle;
        replace_emitted(
            &mut self.live,
            now,
            &mut out.vehicles,
            |(company, state)| VehicleLive {
                vehicle: vehicle.clone(),
                company: company.clone(),
                state: *state,
            },
        );
    }

    pub(crate) fn emit_trip_changes(
        &mut self,
        mut old: Vec<Trip>,
        mut new: Vec<Trip>,
        out: &mut Outputs,
        stats: &mut SessionStats,
    ) {
        if old == new {
            return;
        }
        old.sort_unstable();
        new.sort_unstable();
        let record = |trip: &Trip| TripRecord {
            vehicle: self.name.vehicle.clone(),
            company: self.name.company.clone(),
            trip: *trip,
        };
        let mut events = Vec::new();
        for trip in &old {
            if new.binary_search(trip).is_err() {
                out.trips.push((record(trip), -1));
                stats.retractions += 1;
            }
        }
        for trip in &new {
            if old.binary_search(trip).is_ok() {
                continue;
            }
            out.trips.push((record(trip), 1));
            if self.reported.insert((EventKind::TripStart, trip.start_ms)) {
                events.push((
                    EventKind::TripStart,
                    trip.start_ms,
                    trip.start_pos,
                    trip.start_ms,
                    None,
                ));
            }
            if !trip.is_open() && self.reported.insert((EventKind::TripEnd, trip.start_ms)) {
                let distance = Some(trip.distance_m());
                events.push((
                    EventKind::TripEnd,
                    trip.end_ms,
                    trip.end_pos,
                    trip.start_ms,
                    distance,
                ));
            }
        }
        for (kind, time_ms, pos, start_ms, value) in events {
            out.events.push(event_row(
                &self.name.company,
                &self.name.vehicle,
                kind,
                time_ms,
                pos,
                Some(start_ms),
                value,
            ));
        }
    }

    /// Evicts entries older than `horizon_ms` behind the newest, at a checkpoint, sealing the
    /// trips that closed before it.
    pub(crate) fn evict(&mut self, horizon_ms: i64) {
        let (Some(first), Some(last)) = (self.timeline.entries().first(), self.timeline.last_key())
        else {
            return;
        };
        let cut = last.0.saturating_sub(horizon_ms);
        if first.time_ms >= cut {
            return;
        }
        let ci = self.checkpoints.partition_point(|c| c.key.0 < cut);
        let Some(base) = ci.checked_sub(1) else {
            return;
        };
        if base == 0 && self.sealed {
            return;
        }
        let at = self.timeline.lower_bound(self.checkpoints[base].key);
        if at == 0 {
            return;
        }
        self.timeline.evict_before(at);
        let sealed = self.checkpoints[base].closed_len;
        let sealed_visits = self.checkpoints[base].closed_visits_len;
        self.closed.drain(..sealed);
        self.closed_visits.drain(..sealed_visits);
        self.checkpoints.drain(..base);
        for c in &mut self.checkpoints {
            c.closed_len -= sealed;
            c.closed_visits_len -= sealed_visits;
        }
        self.sealed = true;
        let base_ms = self.checkpoints[0].key.0;
        self.reported
            .retain(|&(_, t)| t >= base_ms.saturating_sub(horizon_ms));
        self.min_offset = self.timeline.min_offset().unwrap_or(i64::MAX);
    }
}

pub(crate) fn event_row(
    company: &Arc<str>,
    vehicle: &Arc<str>,
    kind: EventKind,
    time_ms: i64,
    pos: Option<(i32, i32)>,
    trip_start_ms: Option<i64>,
    value: Option<f64>,
) -> EventRow {
    EventRow {
        company: company.clone(),
        vehicle: vehicle.clone(),
        kind,
        time_ms,
        pos,
        trip_start_ms,
        value,
        geofence: None,
        retraction: false,
    }
}

/// Replaces the value last emitted into a differential output: retracts its row (if any),
/// inserts the new one's, remembers the new one.
pub(crate) fn replace_emitted<S, T>(
    last: &mut Option<S>,
    now: S,
    out: &mut Vec<(T, isize)>,
    row: impl Fn(&S) -> T,
) {
    if let Some(old) = last.as_ref() {
        out.push((row(old), -1));
    }
    out.push((row(&now), 1));
    *last = Some(now);
}
