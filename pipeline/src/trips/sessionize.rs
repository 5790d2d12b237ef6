//! Incremental sessionization: each vehicle's timeline, the trip machine's checkpoints, and the
//! trips they produce, kept so that an item arriving in any order lands in the right trip.
//!
//! Items are admitted as they arrive ([`Sessionizer::admit`]); once a timestamp is complete the
//! dataflow calls [`Sessionizer::settle`], which for every touched vehicle resumes the machine
//! from the last checkpoint before the earliest new item and re-runs it to the end of the
//! timeline. Appends resume from the live state (O(new items)); a late item re-runs at most
//! [`CHECKPOINT_EVERY`] items before it plus everything after it. The trips the re-run produces
//! are compared with the ones it replaces and only the differences leave, as retractions (-1) and
//! insertions (+1): a differential collection of trips. Its events (trip starts and ends,
//! overspeed, maintenance due, geofence enters and exits) likewise: those the re-run no longer
//! makes leave as retraction rows (`trips/event_changes.rs`, `trips/visit_changes.rs`).
//!
//! Why not differential's `reduce` keyed by vehicle: it hands the whole per-vehicle history to
//! the reduction on every change, O(history) per update, where this resumes from a checkpoint.
//!
//! State is bounded by the correction horizon: entries older than the horizon (behind the
//! vehicle's newest item) are evicted at a checkpoint into the archive (`trips/archive.rs`),
//! and trips that closed before it are sealed. An item older than that is repaired from the
//! archive (`trips/repair.rs`): as exact, at the cost of reading the span back. Without an
//! archive (tests, benchmarks) it is stored (`positions`, flagged) and counted, but no longer
//! changes trips.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use fleetflow_geofences::GeofenceIndex;

use crate::trips::archive::{Archive, ArchiveStats};
use crate::trips::geofence_feed::GeofenceFeed;
pub use crate::trips::outputs::{Outputs, SessionStats};
use crate::trips::repair::{Late, RepairCounters};
use crate::trips::vehicle_sessions::{
    FenceScratch, Pending, VehicleSessions, event_row, ignition_event, replace_emitted,
};
use fleetflow_model::{Item, TelemetryRecord, TripRules};

use crate::rows::{ErrorReason, ErrorRow, EventKind, PositionRow, VehicleName, flags};
use crate::trips::timeline::{Admission, Entry, EntryKind};
use crate::trips::trip_machine::{Detected, Limits};
use fleetflow_live_store::trip::Trip;
use fleetflow_live_store::vehicle::LastHeard;

pub use crate::trips::vehicle_sessions::CHECKPOINT_EVERY;

/// Trip rules per company, in machine units.
#[derive(Debug, Clone, Default)]
pub struct RuleBook {
    default: Limits,
    by_company: HashMap<String, Limits>,
}

impl RuleBook {
    pub fn new(default: &TripRules) -> Self {
        RuleBook {
            default: Limits::from(default),
            by_company: HashMap::new(),
        }
    }

    pub fn with_company(mut self, company: &str, rules: &TripRules) -> Self {
        self.by_company
            .insert(company.to_owned(), Limits::from(rules));
        self
    }

    pub fn limits(&self, company: &str) -> Limits {
        self.by_company
            .get(company)
            .copied()
            .unwrap_or(self.default)
    }
}

/// Where a record came from, carried into every row it produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance {
    pub partition: i32,
    pub offset: i64,
}

/// All vehicles one worker owns.
///
/// A vehicle is a company and a vehicle id: the same id in two companies is two vehicles, so
/// no company can write into another's trips (or claim its ids) by sending its vehicle ids.
#[derive(Debug)]
pub struct Sessionizer {
    rules: RuleBook,
    horizon_ms: i64,
    /// Company, then vehicle id: looked up by the record's two strings without allocating.
    vehicles: HashMap<Arc<str>, HashMap<Arc<str>, VehicleSessions>>,
    dirty: Vec<Arc<VehicleName>>,
    /// Vehicles heard from since the last [`Sessionizer::record_heard`].
    heard: Vec<Arc<VehicleName>>,
    stats: SessionStats,
    scratch: Vec<Detected>,
    /// The geofences fixes are tested against, and a buffer for the answer.
    geofences: Arc<GeofenceIndex>,
    inside: Vec<Arc<str>>,
    /// Where newer geofences come from, and the version last taken.
    feed: Option<(GeofenceFeed, u64)>,
    /// A silence longer than this between two records' receipt times is an `offline` and an
    /// `online` event (0: none).
    offline_after_ms: i64,
    /// Where history sealed behind the horizon goes, to be repaired from (none: items beyond
    /// the horizon are stored and flagged but change no trips).
    archive: Option<Archive>,
    /// Where repairs are counted, and the counts last added there.
    counters: Option<(Arc<RepairCounters>, SessionStats, ArchiveStats)>,
}

impl Sessionizer {
    pub fn new(rules: RuleBook, horizon_ms: i64) -> Self {
        Sessionizer {
            rules,
            horizon_ms,
            vehicles: HashMap::new(),
            dirty: Vec::new(),
            heard: Vec::new(),
            stats: SessionStats::default(),
            scratch: Vec::new(),
            geofences: Arc::default(),
            inside: Vec::new(),
            feed: None,
            offline_after_ms: 0,
            archive: None,
            counters: None,
        }
    }

    /// Adds this worker's repair counts to `counters` after every settle.
    pub fn with_repair_counters(mut self, counters: Arc<RepairCounters>) -> Self {
        self.counters = Some((counters, SessionStats::default(), ArchiveStats::default()));
        self
    }

    /// Seals history into `archive` and repairs from it: an item of any age corrects the
    /// trips, events and visits it changes.
    pub fn with_archive(mut self, archive: Archive) -> Self {
        self.archive = Some(archive);
        self
    }

    /// What is admitted and settled from now on belongs to dataflow time `epoch` (the archive's
    /// changes are undone on restart unless a commit covered their epoch).
    pub fn begin_epoch(&mut self, epoch: u64) {
        if let Some(archive) = &mut self.archive {
            archive.begin_epoch(epoch);
        }
    }

    /// The archive's counts, if there is one.
    pub fn archive_stats(&self) -> Option<ArchiveStats> {
        self.archive.as_ref().map(|a| a.stats)
    }

    /// Writes `offline` and `online` events for silences longer than `ms` (the live views'
    /// offline time).
    pub fn with_offline_after(mut self, ms: u64) -> Self {
        self.offline_after_ms = i64::try_from(ms).unwrap_or(i64::MAX);
        self
    }

    /// Takes the geofences from `feed`, checking for newer ones before each settle.
    pub fn with_geofence_feed(mut self, feed: GeofenceFeed) -> Self {
        self.feed = Some((feed, 0));
        self
    }

    /// Tests fixes against `index` from now on. Geofence versions that apply from `from_ms`
    /// on (new or changed since the previous index) may hold fixes already settled: every
    /// vehicle with items at or after `from_ms` is re-run from there at the next settle, so
    /// its visits are what the new geofences make of them.
    pub fn set_geofences(&mut self, index: Arc<GeofenceIndex>, from_ms: Option<i64>) {
        self.geofences = index;
        let Some(from_ms) = from_ms else {
            return;
        };
        for by_id in self.vehicles.values_mut() {
            for vs in by_id.values_mut() {
                let Some(at) = vs.timeline.first_key_at_or_after(from_ms) else {
                    continue;
                };
                if vs.base_key().is_some_and(|base| at < base) {
                    continue;
                }
                if vs.dirty_from.is_none() {
                    self.dirty.push(vs.name.clone());
                }
                vs.dirty_from = Some(vs.dirty_from.map_or(at, |d| d.min(at)));
            }
        }
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    pub fn vehicle_count(&self) -> usize {
        self.vehicles.values().map(HashMap::len).sum()
    }

    fn get_mut<'a>(
        vehicles: &'a mut HashMap<Arc<str>, HashMap<Arc<str>, VehicleSessions>>,
        name: &VehicleName,
    ) -> Option<&'a mut VehicleSessions> {
        vehicles
            .get_mut(&*name.company)
            .and_then(|by_id| by_id.get_mut(&*name.vehicle))
    }

    /// Admits one record's items. Rows that need no trip context (errors, ignition events,
    /// positions too old to correct) are produced now; the rest at [`Sessionizer::settle`].
    pub fn admit(&mut self, record: &TelemetryRecord, from: Provenance, out: &mut Outputs) {
        self.stats.records += 1;
        let by_id = match self.vehicles.get_mut(record.company.as_str()) {
            Some(by_id) => by_id,
            None => self
                .vehicles
                .entry(Arc::from(record.company.as_str()))
                .or_default(),
        };
        let vs = match by_id.get_mut(record.vehicle.as_str()) {
            Some(vs) => vs,
            None => {
                let vehicle: Arc<str> = Arc::from(record.vehicle.as_str());
                let mut vs = VehicleSessions::new(
                    VehicleName::new(Arc::from(record.company.as_str()), vehicle.clone()),
                    from.partition,
                    self.rules.limits(&record.company),
                );
                // Seen for the first time by this process: its sealed history, if any, is in
                // the archive.
                if let Some(archive) = &mut self.archive {
                    let mut fences = FenceScratch {
                        index: &self.geofences,
                        inside: &mut self.inside,
                    };
                    vs = vs.resume(archive, &mut fences, &mut self.scratch);
                }
                by_id.entry(vehicle).or_insert(vs)
            }
        };
        vs.partition = from.partition;
        let previous = vs.received_ms;
        vs.received_ms = vs.received_ms.max(record.received_ms);
        // Heard again after a silence longer than the offline time: the silence is data (the
        // receipt times the records carry), so the event log has it exactly once, also across
        // restarts, whatever the live store's clock saw.
        if self.offline_after_ms > 0
            && previous > 0
            && record.received_ms - previous > self.offline_after_ms
        {
            let (company, vehicle) = (&vs.name.company, &vs.name.vehicle);
            let silence = [
                (EventKind::Offline, previous + self.offline_after_ms),
                (EventKind::Online, record.received_ms),
            ];
            for (kind, time_ms) in silence {
                out.events
                    .push(event_row(company, vehicle, kind, time_ms, None, None, None));
            }
        }
        if !vs.heard_pending {
            vs.heard_pending = true;
            self.heard.push(vs.name.clone());
        }
        let was_dirty = vs.dirty_from.is_some() || !vs.beyond.is_empty();
        for (index, item) in record.items.iter().enumerate() {
            let entry = Entry::from_item(item, from.offset);
            let row = match item {
                Item::Fix(fix) => {
                    self.stats.fixes += 1;
                    let mut row = PositionRow::new(
                        vs.name.clone(),
                        fix,
                        record.received_ms,
                        record.source,
                        from.partition,
                        from.offset,
                    );
                    if !record.attributes.is_empty() {
                        row.attributes = record
                            .attributes_of(index)
                            .map(|json| Arc::new(json.to_owned()));
                    }
                    if !entry.usable {
                        row.flags |= flags::INVALID;
                    }
                    Some(row)
                }
                _ => None,
            };
            if vs.base_key().is_some_and(|base| entry.key() < base) {
                self.stats.beyond_horizon += 1;
                if self.archive.is_some() {
                    if let Some(row) = &row {
                        Self::flag_invalid(&entry, row, out, &mut self.stats);
                    }
                    vs.beyond.push(Late {
                        entry,
                        row,
                        received_ms: record.received_ms,
                        partition: from.partition,
                    });
                    continue;
                }
                if let Some(mut row) = row {
                    row.flags |= flags::BEYOND_HORIZON | flags::LATE;
                    Self::flag_invalid(&entry, &row, out, &mut self.stats);
                    out.positions.push(row);
                }
                continue;
            }
            match vs.timeline.admit(entry).0 {
                Admission::Duplicate => self.stats.duplicates += 1,
                Admission::Conflict => {
                    self.stats.conflicts += 1;
                    out.errors.push(ErrorRow {
                        company: Some(vs.name.company.clone()),
                        vehicle: Some(vs.name.vehicle.clone()),
                        time_ms: Some(entry.time_ms),
                        reason: ErrorReason::ConflictingDuplicate,
                        detail: format!("another {:?} at this time was seen first", entry.kind),
                        received_ms: Some(record.received_ms),
                        partition: from.partition,
                        offset: from.offset,
                    });
                }
                Admission::Added { late } => {
                    vs.min_offset = vs.min_offset.min(from.offset);
                    let key = entry.key();
                    vs.dirty_from = Some(vs.dirty_from.map_or(key, |d| d.min(key)));
                    if late {
                        self.stats.late += 1;
                    }
                    match entry.kind {
                        EntryKind::Fix => {
                            let mut row = row.expect("fix entries come from fixes");
                            if late {
                                row.flags |= flags::LATE;
                            }
                            Self::flag_invalid(&entry, &row, out, &mut self.stats);
                            vs.pending.push(Pending { key, row });
                        }
                        EntryKind::IgnitionOn | EntryKind::IgnitionOff => {
                            out.events.push(ignition_event(&vs.name, &entry));
                        }
                    }
                }
            }
        }
        if !was_dirty && (vs.dirty_from.is_some() || !vs.beyond.is_empty()) {
            self.dirty.push(vs.name.clone());
        }
    }

    fn flag_invalid(entry: &Entry, row: &PositionRow, out: &mut Outputs, stats: &mut SessionStats) {
        if entry.usable {
            return;
        }
        stats.invalid += 1;
        out.errors.push(ErrorRow {
            company: Some(row.company().clone()),
            vehicle: Some(row.vehicle().clone()),
            time_ms: Some(row.time_ms),
            reason: ErrorReason::InvalidPosition,
            detail: format!(
                "gps status {:?} at ({}, {}): stored, flagged, excluded from distance and trips",
                char::from(row.gps),
                row.lat_e7,
                row.lon_e7
            ),
            received_ms: Some(row.received_ms),
            partition: row.partition,
            offset: row.offset,
        });
    }

    /// Recomputes the trips of every vehicle admitted to since the last call and emits what
    /// changed. Call once the timestamp's input is complete.
    pub fn settle(&mut self, out: &mut Outputs) {
        if let Some((version, index, from_ms)) = self
            .feed
            .as_ref()
            .and_then(|(feed, seen)| feed.newer_than(*seen))
        {
            self.set_geofences(index, from_ms);
            if let Some((_, seen)) = &mut self.feed {
                *seen = version;
            }
        }
        let mut fences = FenceScratch {
            index: &self.geofences,
            inside: &mut self.inside,
        };
        for name in std::mem::take(&mut self.dirty) {
            if let Some(vs) = Self::get_mut(&mut self.vehicles, &name) {
                if let Some(archive) = &mut self.archive
                    && !vs.beyond.is_empty()
                {
                    let started = Instant::now();
                    vs.repair(
                        archive,
                        out,
                        &mut self.stats,
                        &mut self.scratch,
                        &mut fences,
                    );
                    let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    self.stats.repair_ns += spent;
                }
                vs.settle(out, &mut self.stats, &mut self.scratch, &mut fences);
                vs.evict(self.horizon_ms, self.archive.as_mut());
            }
        }
        if let Some(archive) = &mut self.archive {
            archive.finish_epoch();
            if let Some((counters, stats, archived)) = &mut self.counters {
                counters.add((&self.stats, &archive.stats), (stats, archived));
                *stats = self.stats;
                *archived = archive.stats;
            }
        }
    }

    /// Records that every vehicle admitted to since the last call was heard from, and emits
    /// the changes of the `heard` collection. A vehicle was heard when ingest received its
    /// newest record: a time the record carries, so a restart's replay rebuilds the same
    /// last-heard times (and the same offline times) as the run before it. `at_ms`, the
    /// dataflow time, stands in for records that carry no receipt time.
    pub fn record_heard(&mut self, at_ms: u64, out: &mut Outputs) {
        for name in self.heard.drain(..) {
            let Some(vs) = Self::get_mut(&mut self.vehicles, &name) else {
                continue;
            };
            vs.heard_pending = false;
            // After `settle`: the live state emitted is the one as of this time.
            let live = vs.live.as_ref().map(|(_, l)| (l.ignition, l.motion));
            let heard_ms = u64::try_from(vs.received_ms)
                .ok()
                .filter(|&ms| ms > 0)
                .unwrap_or(at_ms);
            let now = (vs.name.company.clone(), heard_ms, live);
            if vs.heard.as_ref() == Some(&now) {
                continue;
            }
            replace_emitted(
                &mut vs.heard,
                now,
                &mut out.heard,
                |(company, at_ms, live)| LastHeard {
                    company: company.clone(),
                    vehicle: name.vehicle.clone(),
                    at_ms: *at_ms,
                    live: *live,
                },
            );
        }
    }

    /// The current trips of one vehicle (closed, then the open one), for tests and live views.
    pub fn trips_of(&self, company: &str, vehicle: &str) -> Vec<Trip> {
        let Some(vs) = self
            .vehicles
            .get(company)
            .and_then(|by_id| by_id.get(vehicle))
        else {
            return Vec::new();
        };
        let mut trips: Vec<Trip> = vs.all_trips().cloned().collect();
        trips.extend(vs.machine.open_trip());
        trips
    }

    /// Per Kafka partition, the smallest offset whose items this worker still holds: where a
    /// restart must replay from to rebuild this state.
    pub fn retained_offsets(&self) -> HashMap<i32, i64> {
        let mut min = HashMap::new();
        for vs in self.vehicles.values().flat_map(HashMap::values) {
            if vs.min_offset != i64::MAX {
                let slot = min.entry(vs.partition).or_insert(i64::MAX);
                *slot = (*slot).min(vs.min_offset);
            }
        }
        min
    }
}
