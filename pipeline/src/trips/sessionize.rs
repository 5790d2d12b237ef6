//! Incremental sessionization: each vehicle's timeline, the trip machine's checkpoints, and the
//! trips they produce, kept so that an item arriving in any order lands in the right trip.
//!
//! Items are admitted as they arrive ([`Sessionizer::admit`]); once a timestamp is complete the
//! dataflow calls [`Sessionizer::settle`], which for every touched vehicle resumes the machine
//! from the last checkpoint before the earliest new item and re-runs it to the end of the
//! timeline. Appends resume from the live state (O(new items)); a late item re-runs at most
//! [`CHECKPOINT_EVERY`] items before it plus everything after it. The trips the re-run produces
//! are compared with the ones it replaces and only the differences leave, as retractions (-1) and
//! insertions (+1): a differential collection of trips.
//!
//! Why not differential's `reduce` keyed by vehicle: it hands the whole per-vehicle history to
//! the reduction on every change, O(history) per update, where this resumes from a checkpoint.
//!
//! State is bounded by the correction horizon: entries older than the horizon (behind the
//! vehicle's newest item) are evicted at a checkpoint, and trips that closed before it are sealed.
//! An item older than that is still stored (`positions`, flagged) and counted, but no longer
//! changes trips.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fleetflow_geofences::GeofenceIndex;

use crate::trips::geofence_feed::GeofenceFeed;
use fleetflow_geofences::visit::{Visit, VisitTrack};
use fleetflow_model::geo::LatLonE7;
use fleetflow_model::{Item, TelemetryRecord, TripRules};

use crate::rows::{
    ErrorReason, ErrorRow, EventKind, EventRow, PositionRow, TripRecord, VehicleName, VisitRecord,
    flags,
};
use crate::trips::timeline::{Admission, Entry, EntryKey, EntryKind, Timeline};
use crate::trips::trip_machine::{Detected, Limits, Machine, Verdict};
use fleetflow_live_store::trip::Trip;
use fleetflow_live_store::vehicle::{IgnitionState, LastHeard, MachineLive, Motion, VehicleLive};

/// Entries between checkpoints: the most a late item re-runs before its own position.
pub const CHECKPOINT_EVERY: usize = 128;

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

/// What a batch of work produced, per table.
#[derive(Debug, Default)]
pub struct Outputs {
    pub positions: Vec<PositionRow>,
    pub events: Vec<EventRow>,
    pub errors: Vec<ErrorRow>,
    pub trips: Vec<(TripRecord, isize)>,
    /// Changes of the geofence visits (the `visits` collection).
    pub visits: Vec<(VisitRecord, isize)>,
    /// Changes of the vehicles' live state (the `vehicles` collection).
    pub vehicles: Vec<(VehicleLive, isize)>,
    /// Changes of when each vehicle was last heard from (the `heard` collection).
    pub heard: Vec<(LastHeard, isize)>,
}

/// Counts of what admission decided (for `/metrics` and the closing report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub records: u64,
    pub fixes: u64,
    pub duplicates: u64,
    pub conflicts: u64,
    pub late: u64,
    pub beyond_horizon: u64,
    pub invalid: u64,
    /// Trip versions retracted by corrections (a late item that changed a trip).
    pub retractions: u64,
}

#[derive(Debug, Clone)]
struct Checkpoint {
    /// The machine state before the entry with this key.
    key: EntryKey,
    machine: Machine,
    closed_len: usize,
    /// The geofence visits open before the entry, and how many had closed.
    visits: VisitTrack,
    closed_visits_len: usize,
}

/// A fix admitted since the last settle, waiting for its verdict.
#[derive(Debug)]
struct Pending {
    key: EntryKey,
    row: PositionRow,
}

#[derive(Debug)]
struct VehicleSessions {
    name: Arc<VehicleName>,
    partition: i32,
    limits: Limits,
    timeline: Timeline,
    /// State after `last_processed`.
    machine: Machine,
    last_processed: Option<EntryKey>,
    closed: Vec<Trip>,
    /// The geofence visits open after `last_processed`, and those closed since the base.
    visits: VisitTrack,
    closed_visits: Vec<Visit>,
    /// Ascending keys. When `sealed`, the first is the eviction base: nothing before it changes.
    checkpoints: Vec<Checkpoint>,
    sealed: bool,
    dirty_from: Option<EntryKey>,
    pending: Vec<Pending>,
    reported: HashSet<(EventKind, i64)>,
    min_offset: i64,
    /// The live state last emitted (with the company it was emitted under).
    live: Option<(Arc<str>, MachineLive)>,
    /// The last-heard time last emitted (with its company and live state), and whether the
    /// vehicle was heard from since [`Sessionizer::record_heard`] last ran.
    heard: Option<Heard>,
    heard_pending: bool,
    /// When ingest received the vehicle's newest record (0: no record said).
    received_ms: i64,
}

/// A last-heard record as emitted: company, time of receipt, live ignition and motion.
type Heard = (Arc<str>, u64, Option<(IgnitionState, Motion)>);

impl VehicleSessions {
    fn new(name: Arc<VehicleName>, partition: i32, limits: Limits) -> Self {
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

    fn base_key(&self) -> Option<EntryKey> {
        if self.sealed {
            self.checkpoints.first().map(|c| c.key)
        } else {
            None
        }
    }

    fn all_trips(&self) -> impl Iterator<Item = &Trip> {
        self.closed.iter()
    }

    /// Re-runs the machine from the last checkpoint before the earliest new entry.
    fn settle(
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

    fn emit_live_change(&mut self, out: &mut Outputs) {
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

    fn emit_trip_changes(
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
    fn evict(&mut self, horizon_ms: i64) {
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

fn event_row(
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
fn replace_emitted<S, T>(
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
}

/// What a settle tests fixes against, with a buffer for the answer.
struct FenceScratch<'a> {
    index: &'a GeofenceIndex,
    inside: &'a mut Vec<Arc<str>>,
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
        }
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
                let vs = VehicleSessions::new(
                    VehicleName::new(Arc::from(record.company.as_str()), vehicle.clone()),
                    from.partition,
                    self.rules.limits(&record.company),
                );
                by_id.entry(vehicle).or_insert(vs)
            }
        };
        vs.partition = from.partition;
        vs.received_ms = vs.received_ms.max(record.received_ms);
        if !vs.heard_pending {
            vs.heard_pending = true;
            self.heard.push(vs.name.clone());
        }
        let was_dirty = vs.dirty_from.is_some();
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
                            let (kind, value) = if entry.kind == EntryKind::IgnitionOn {
                                (EventKind::IgnitionOn, entry.device_m)
                            } else {
                                (EventKind::IgnitionOff, entry.device_m)
                            };
                            let pos = entry.usable.then_some((entry.lat_e7, entry.lon_e7));
                            out.events.push(event_row(
                                &vs.name.company,
                                &vs.name.vehicle,
                                kind,
                                entry.time_ms,
                                pos,
                                None,
                                value.map(|m| m as f64),
                            ));
                        }
                    }
                }
            }
        }
        if !was_dirty && vs.dirty_from.is_some() {
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
                vs.settle(out, &mut self.stats, &mut self.scratch, &mut fences);
                vs.evict(self.horizon_ms);
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
