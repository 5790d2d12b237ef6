//! Repairs: an item older than its vehicle's correction horizon still corrects every result it
//! changes. The vehicle's sealed history is re-read from the [`Archive`] from the chunk that
//! holds the item, walked twice from that chunk's stored state (as it was, and with the item
//! merged in), and the differences of the two walks leave as retractions and insertions, as a
//! late item inside the horizon already does. The walk stops as soon as the new run's state
//! equals the state stored at the next chunk (nothing after can differ), or reaches the
//! in-memory base, whose state it then replaces so the usual re-run carries the change on.
//! Design note: `trips/archive.md`.

use fleetflow_geofences::visit::Visit;
use fleetflow_live_store::trip::Trip;

use crate::rows::{ErrorReason, ErrorRow, PositionRow, flags};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::trips::archive::{Archive, ArchiveStats, Chunk, successor};
use crate::trips::event_changes::{self, MachineEvent};
use crate::trips::outputs::{Outputs, SessionStats};
use crate::trips::timeline::{Entry, EntryKey, EntryKind};
use crate::trips::trip_machine::{Detected, Machine};
use crate::trips::vehicle_sessions::{
    CHECKPOINT_EVERY, Checkpoint, Closed, FenceScratch, Step, TailLens, VehicleSessions,
    ignition_event,
};
use fleetflow_geofences::visit::VisitTrack;

/// The repairs' counts, summed over the workers: for `/metrics` and `/status`.
#[derive(Debug, Default)]
pub struct RepairCounters {
    /// Repairs (one per vehicle and epoch with items older than its in-memory base).
    pub repairs: AtomicU64,
    /// Late items merged into archived history.
    pub items: AtomicU64,
    /// Items older than anything archived (stored and flagged, not in trips).
    pub unrepairable: AtomicU64,
    /// Archived entries re-read.
    pub entries_read: AtomicU64,
    /// Time spent repairing, nanoseconds.
    pub nanos: AtomicU64,
    /// Archived chunks written (sealed spans and repaired ones).
    pub chunks_written: AtomicU64,
}

impl RepairCounters {
    /// Adds what a worker did since `before`.
    pub(crate) fn add(
        &self,
        now: (&SessionStats, &ArchiveStats),
        before: (&SessionStats, &ArchiveStats),
    ) {
        let add = |counter: &AtomicU64, now: u64, before: u64| {
            if now > before {
                counter.fetch_add(now - before, Ordering::Relaxed);
            }
        };
        add(&self.repairs, now.0.repairs, before.0.repairs);
        add(&self.items, now.0.repaired_items, before.0.repaired_items);
        add(
            &self.unrepairable,
            now.0.unrepairable,
            before.0.unrepairable,
        );
        add(&self.nanos, now.0.repair_ns, before.0.repair_ns);
        add(
            &self.entries_read,
            now.1.entries_read,
            before.1.entries_read,
        );
        add(
            &self.chunks_written,
            now.1.chunks_written,
            before.1.chunks_written,
        );
    }
}

/// An item that arrived older than its vehicle's in-memory base, waiting for its repair.
#[derive(Debug)]
pub(crate) struct Late {
    pub(crate) entry: Entry,
    /// The `positions` row of a fix.
    pub(crate) row: Option<PositionRow>,
    pub(crate) received_ms: i64,
    pub(crate) partition: i32,
}

/// What one walk closed.
#[derive(Debug, Default)]
struct Walked {
    trips: Vec<Trip>,
    visits: Vec<Visit>,
    detected: Vec<MachineEvent>,
}

impl Walked {
    fn closed(&mut self) -> Closed<'_> {
        Closed {
            trips: &mut self.trips,
            visits: &mut self.visits,
            detected: &mut self.detected,
        }
    }
}

impl VehicleSessions {
    /// A vehicle seen for the first time by this process whose history the archive holds: it
    /// resumes sealed, from the state after its last archived entry.
    pub(crate) fn resume(
        mut self,
        archive: &mut Archive,
        fences: &mut FenceScratch<'_>,
        scratch: &mut Vec<Detected>,
    ) -> Self {
        let Some((start, chunk)) = archive.last_chunk(&self.name) else {
            return self;
        };
        let mut machine = chunk.machine;
        let mut visits = chunk.visits.clone();
        let mut step = Step {
            limits: &self.limits,
            company: fences.index.company(&self.name.company),
            inside: &mut *fences.inside,
            scratch,
        };
        let mut walked = Walked::default();
        for e in &chunk.entries {
            step.entry(e, &mut machine, &mut visits, &mut walked.closed());
        }
        let base = chunk
            .entries
            .last()
            .map_or(start, |last| successor(last.key()));
        self.machine = machine;
        self.visits = visits.clone();
        self.checkpoints = vec![Checkpoint {
            key: base,
            machine,
            visits,
            lens: TailLens::default(),
        }];
        self.sealed = true;
        self
    }

    /// Merges the items older than the base into the archived history and emits what that
    /// changes. Items older than everything the archive holds for an incomplete archive (one
    /// created on a data dir that already had history) are stored and flagged, as before.
    pub(crate) fn repair(
        &mut self,
        archive: &mut Archive,
        out: &mut Outputs,
        stats: &mut SessionStats,
        scratch: &mut Vec<Detected>,
        fences: &mut FenceScratch<'_>,
    ) {
        let mut late = std::mem::take(&mut self.beyond);
        if late.is_empty() {
            return;
        }
        let Some(base) = self.base_key() else {
            return;
        };
        // Stable: among items of one key the first to arrive wins, as in the timeline.
        late.sort_by_key(|l| l.entry.key());
        let first = late[0].entry.key();
        let cursor = match archive.chunk_at(&self.name, first) {
            Some(found) => Some(found),
            None if archive.complete() => Some((
                first,
                Chunk {
                    machine: Machine::default(),
                    visits: VisitTrack::default(),
                    entries: Vec::new(),
                },
            )),
            None => None,
        };
        let Some(mut cursor) = cursor else {
            // Nothing archived that far back: stored, flagged, not in trips.
            let floor = archive
                .first_chunk(&self.name)
                .map_or(base, |(start, _)| start);
            let (lost, kept): (Vec<_>, Vec<_>) =
                late.into_iter().partition(|l| l.entry.key() < floor);
            for l in lost {
                stats.unrepairable += 1;
                if let Some(mut row) = l.row {
                    row.flags |= flags::BEYOND_HORIZON | flags::LATE;
                    out.positions.push(row);
                }
            }
            if !kept.is_empty() {
                self.beyond = kept;
                self.repair(archive, out, stats, scratch, fences);
            }
            return;
        };

        stats.repairs += 1;
        let mut step = Step {
            limits: &self.limits,
            company: fences.index.company(&self.name.company),
            inside: &mut *fences.inside,
            scratch,
        };
        let (mut old, mut new) = (Walked::default(), Walked::default());
        let mut machine = cursor.1.machine;
        let mut visits = cursor.1.visits.clone();
        let mut late = late.into_iter().peekable();
        loop {
            let (start, chunk) = cursor;
            let next = archive.chunk_after(&self.name, start);
            let upper = next.as_ref().map_or(base, |(k, _)| *k);

            // The chunk with this span's late items merged in.
            let mut merged = chunk.entries.clone();
            let mut rows: Vec<(EntryKey, PositionRow)> = Vec::new();
            while let Some(l) = late.next_if(|l| l.entry.key() < upper) {
                let key = l.entry.key();
                match merged.binary_search_by_key(&key, Entry::key) {
                    Ok(i) if merged[i].same_item(&l.entry) => stats.duplicates += 1,
                    Ok(_) => {
                        stats.conflicts += 1;
                        out.errors.push(ErrorRow {
                            company: Some(self.name.company.clone()),
                            vehicle: Some(self.name.vehicle.clone()),
                            time_ms: Some(l.entry.time_ms),
                            reason: ErrorReason::ConflictingDuplicate,
                            detail: format!(
                                "another {:?} at this time was seen first",
                                l.entry.kind
                            ),
                            received_ms: Some(l.received_ms),
                            partition: l.partition,
                            offset: l.entry.offset,
                        });
                    }
                    Err(i) => {
                        merged.insert(i, l.entry);
                        stats.repaired_items += 1;
                        match (l.entry.kind, l.row) {
                            (EntryKind::Fix, Some(row)) => rows.push((key, row)),
                            (EntryKind::Fix, None) => {}
                            _ => out.events.push(ignition_event(&self.name, &l.entry)),
                        }
                    }
                }
            }

            // The walk as it was.
            let (mut m, mut v) = (chunk.machine, chunk.visits.clone());
            for e in &chunk.entries {
                step.entry(e, &mut m, &mut v, &mut old.closed());
            }
            // The walk as it is now, with the late fixes' verdicts and the states to split a
            // grown chunk at.
            let state = (machine, visits.clone());
            let split = merged.len() > 2 * CHECKPOINT_EVERY;
            let mut pieces = vec![(start, machine, visits.clone(), 0)];
            let mut rows = rows.into_iter().peekable();
            for (i, e) in merged.iter().enumerate() {
                if split && i > 0 && i % CHECKPOINT_EVERY == 0 {
                    pieces.push((e.key(), machine, visits.clone(), i));
                }
                let verdict = step.entry(e, &mut machine, &mut visits, &mut new.closed());
                if let Some((_, row)) = rows.next_if(|(k, _)| *k == e.key()) {
                    let mut row = row.with_verdict(verdict);
                    row.flags |= flags::BEYOND_HORIZON | flags::LATE;
                    out.positions.push(row);
                }
            }
            if merged != chunk.entries || state != (chunk.machine, chunk.visits.clone()) {
                let ends: Vec<usize> = pieces.iter().skip(1).map(|p| p.3).collect();
                let ends = ends.into_iter().chain([merged.len()]);
                for ((key, m, v, from), to) in pieces.into_iter().zip(ends) {
                    let piece = Chunk {
                        machine: m,
                        visits: v,
                        entries: merged[from..to].to_vec(),
                    };
                    archive.put(&self.name, key, &piece);
                }
            }

            match next {
                Some(found) => {
                    let (_, next_chunk) = &found;
                    if late.peek().is_none()
                        && machine == next_chunk.machine
                        && visits == next_chunk.visits
                    {
                        break;
                    }
                    cursor = found;
                }
                None => {
                    // The change reaches the in-memory base: the re-run carries it on.
                    let c = &mut self.checkpoints[0];
                    if c.machine != machine || c.visits != visits {
                        c.machine = machine;
                        c.visits = visits;
                        let key = c.key;
                        self.dirty_from = Some(self.dirty_from.map_or(key, |d| d.min(key)));
                    }
                    break;
                }
            }
        }

        new.trips.sort_unstable();
        old.trips.sort_unstable();
        if old.trips != new.trips || old.detected != new.detected {
            let old_events = event_changes::events_of(&old.trips, &old.detected);
            let new_events = event_changes::events_of(&new.trips, &new.detected);
            event_changes::emit(&self.name, &old_events, &new_events, out);
        }
        self.emit_trip_changes(old.trips, new.trips, out, stats);
        crate::trips::visit_changes::emit(&self.name, old.visits, new.visits, out);
    }
}
