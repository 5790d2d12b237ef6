//! One vehicle's sessions: its timeline, the trip machine's checkpoints, its closed trips and
//! geofence visits, and the re-run from the last checkpoint before the earliest new item
//! ([`VehicleSessions::settle`]) that turns admitted items into trips, visits and verdicts, as
//! differences from what it emitted before; and eviction behind the correction horizon. The
//! worker's [`Sessionizer`](crate::trips::sessionize::Sessionizer) owns one per vehicle.

use std::sync::Arc;

use fleetflow_geofences::GeofenceIndex;
use fleetflow_geofences::index::CompanyIndex;
use fleetflow_geofences::visit::{Visit, VisitTrack};
use fleetflow_model::geo::LatLonE7;

use crate::rows::{EventKind, EventRow, PositionRow, TripRecord, VehicleName};
use crate::trips::archive::{Archive, Chunk};
use crate::trips::event_changes::{self, MachineEvent};
use crate::trips::outputs::{Outputs, SessionStats};
use crate::trips::repair::Late;
use crate::trips::timeline::{Entry, EntryKey, EntryKind, Timeline};
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
    /// The geofence visits open before the entry.
    pub(crate) visits: VisitTrack,
    /// How many trips and visits had closed, and events been detected, before the entry.
    pub(crate) lens: TailLens,
}

/// Lengths of a vehicle's closed trips, closed visits and detections: where a re-run from a
/// checkpoint starts replacing them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TailLens {
    pub(crate) trips: usize,
    pub(crate) visits: usize,
    pub(crate) detected: usize,
}

/// A fix admitted since the last settle, waiting for its verdict.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) key: EntryKey,
    pub(crate) row: PositionRow,
}

/// The most pending rows whose room a vehicle keeps between epochs: a minute's batch of fixes.
const PENDING_KEPT: usize = 64;

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
    /// Items older than the base, waiting for their repair from the archive.
    pub(crate) beyond: Vec<Late>,
    /// The machine's detections (overspeed, maintenance due) since the base, in run order.
    pub(crate) detected: Vec<MachineEvent>,
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
            beyond: Vec::new(),
            detected: Vec::new(),
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

    /// The lengths of the closed trips, closed visits and detections now.
    fn lens(&self) -> TailLens {
        TailLens {
            trips: self.closed.len(),
            visits: self.closed_visits.len(),
            detected: self.detected.len(),
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
        let (start, mut machine, mut visits, lens, keep) = match self.last_processed {
            Some(last) if from > last => (
                self.timeline.lower_bound(from),
                self.machine,
                self.visits.clone(),
                self.lens(),
                self.checkpoints.len(),
            ),
            _ => {
                // A sealed vehicle's first checkpoint is its base: the state before any key
                // from there on, so every re-run may start from it.
                let ci = self
                    .checkpoints
                    .partition_point(|c| c.key < from)
                    .max(usize::from(self.sealed));
                match ci.checked_sub(1).map(|i| &self.checkpoints[i]) {
                    Some(c) => (
                        self.timeline.lower_bound(c.key),
                        c.machine,
                        c.visits.clone(),
                        c.lens,
                        ci,
                    ),
                    None => (
                        0,
                        Machine::default(),
                        VisitTrack::default(),
                        TailLens::default(),
                        0,
                    ),
                }
            }
        };
        let old_open = self.machine.open_trip();
        let mut old_tail = self.closed.split_off(lens.trips);
        old_tail.extend(old_open);
        let mut old_visits = self.closed_visits.split_off(lens.visits);
        old_visits.extend_from_slice(self.visits.open());
        let old_detected = self.detected.split_off(lens.detected);
        self.checkpoints.truncate(keep);
        let company = fences.index.company(&self.name.company);

        self.pending.sort_unstable_by_key(|p| p.key);
        let mut pending = self.pending.drain(..).peekable();
        for (i, e) in entries.iter().enumerate().skip(start) {
            let key = e.key();
            if i % CHECKPOINT_EVERY == 0 && self.checkpoints.last().is_none_or(|c| c.key < key) {
                self.checkpoints.push(Checkpoint {
                    key,
                    machine,
                    visits: visits.clone(),
                    lens: TailLens {
                        trips: self.closed.len(),
                        visits: self.closed_visits.len(),
                        detected: self.detected.len(),
                    },
                });
            }
            let mut step = Step {
                limits: &self.limits,
                company,
                inside: &mut *fences.inside,
                scratch: &mut *scratch,
            };
            let mut into = Closed {
                trips: &mut self.closed,
                visits: &mut self.closed_visits,
                detected: &mut self.detected,
            };
            let verdict = step.entry(e, &mut machine, &mut visits, &mut into);
            while let Some(p) = pending.next_if(|p| p.key <= key) {
                if p.key != key || e.kind != EntryKind::Fix {
                    continue;
                }
                out.positions.push(p.row.with_verdict(verdict));
            }
        }
        drop(pending);
        // A burst (a backlog read quickly) must not leave each vehicle holding its size.
        if self.pending.capacity() > PENDING_KEPT {
            self.pending = Vec::new();
        }
        self.machine = machine;
        self.visits = visits;
        self.last_processed = self.timeline.last_key();

        let mut new_tail: Vec<Trip> = self.closed[lens.trips..].to_vec();
        new_tail.extend(self.machine.open_trip());
        let new_detected = &self.detected[lens.detected..];
        if old_tail != new_tail || old_detected != new_detected {
            let old_events = event_changes::events_of(&old_tail, &old_detected);
            let new_events = event_changes::events_of(&new_tail, new_detected);
            event_changes::emit(&self.name, &old_events, &new_events, out);
        }
        self.emit_trip_changes(old_tail, new_tail, out, stats);
        let mut new_visits = self.closed_visits[lens.visits..].to_vec();
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
        for trip in &old {
            if new.binary_search(trip).is_err() {
                out.trips.push((record(trip), -1));
                stats.retractions += 1;
            }
        }
        for trip in &new {
            if old.binary_search(trip).is_err() {
                out.trips.push((record(trip), 1));
            }
        }
    }

    /// Evicts entries older than `horizon_ms` behind the newest, at a checkpoint, sealing the
    /// trips that closed before it. The evicted spans go to the archive, if there is one.
    pub(crate) fn evict(&mut self, horizon_ms: i64, archive: Option<&mut Archive>) {
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
        if let Some(archive) = archive {
            let entries = self.timeline.entries();
            for pair in self.checkpoints[..=base].windows(2) {
                let (c, next) = (&pair[0], &pair[1]);
                let span = self.timeline.lower_bound(c.key)..self.timeline.lower_bound(next.key);
                // No entries between two checkpoints: their states are equal, nothing to keep.
                if span.is_empty() {
                    continue;
                }
                let chunk = Chunk {
                    machine: c.machine,
                    visits: c.visits.clone(),
                    entries: entries[span].to_vec(),
                };
                archive.put(&self.name, c.key, &chunk);
            }
        }
        self.timeline.evict_before(at);
        let sealed = self.checkpoints[base].lens;
        self.closed.drain(..sealed.trips);
        self.closed_visits.drain(..sealed.visits);
        self.detected.drain(..sealed.detected);
        self.checkpoints.drain(..base);
        for c in &mut self.checkpoints {
            c.lens.trips -= sealed.trips;
            c.lens.visits -= sealed.visits;
            c.lens.detected -= sealed.detected;
        }
        self.sealed = true;
        self.min_offset = self.timeline.min_offset().unwrap_or(i64::MAX);
    }
}

/// What one walk of the machine needs besides its state: the vehicle's rules, its company's
/// geofences, and buffers.
pub(crate) struct Step<'a> {
    pub(crate) limits: &'a Limits,
    pub(crate) company: Option<&'a CompanyIndex>,
    pub(crate) inside: &'a mut Vec<Arc<str>>,
    pub(crate) scratch: &'a mut Vec<Detected>,
}

/// Where a walk puts what closes: trips, geofence visits, the machine's detections.
pub(crate) struct Closed<'a> {
    pub(crate) trips: &'a mut Vec<Trip>,
    pub(crate) visits: &'a mut Vec<Visit>,
    pub(crate) detected: &'a mut Vec<MachineEvent>,
}

impl Step<'_> {
    /// Feeds one entry to `machine` and the geofence `visits`; returns the fix's verdict.
    pub(crate) fn entry(
        &mut self,
        e: &Entry,
        machine: &mut Machine,
        visits: &mut VisitTrack,
        into: &mut Closed<'_>,
    ) -> Verdict {
        self.scratch.clear();
        let verdict = machine.step(e, self.limits, self.scratch);
        // Only accepted fixes (usable, not a jump) enter or leave geofences.
        if matches!(verdict, Verdict::Accepted { .. })
            && (self.company.is_some() || !visits.open().is_empty())
        {
            let pos = LatLonE7::new(e.lat_e7, e.lon_e7);
            match self.company {
                Some(index) => index.containing(pos, e.time_ms, self.inside),
                None => self.inside.clear(),
            }
            visits.step(e.time_ms, (e.lat_e7, e.lon_e7), self.inside, into.visits);
        }
        for detected in self.scratch.drain(..) {
            match detected {
                Detected::TripClosed(trip) => into.trips.push(trip),
                other => into.detected.extend(MachineEvent::of_detected(&other)),
            }
        }
        verdict
    }
}

/// The `events` row of an ignition item: its position if usable, the odometer (on) or trip
/// distance (off) the device sent.
pub(crate) fn ignition_event(name: &VehicleName, e: &Entry) -> EventRow {
    let kind = if e.kind == EntryKind::IgnitionOn {
        EventKind::IgnitionOn
    } else {
        EventKind::IgnitionOff
    };
    event_row(
        &name.company,
        &name.vehicle,
        kind,
        e.time_ms,
        e.usable.then_some((e.lat_e7, e.lon_e7)),
        None,
        e.device_m.get().map(|m| m as f64),
    )
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
