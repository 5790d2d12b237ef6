//! One vehicle's items in event-time order, deduplicated on (kind, time): the state the
//! sessionizer recomputes trips from.
//!
//! Appends (the common case: a device reporting in order) cost O(1) each; a late item is merged
//! into place. Identical re-sends (a retried request) are recognised and dropped; a different
//! item under the same key is a conflict and the one already held wins, because Kafka's order is
//! fixed per vehicle and replays see the same winner.

use std::num::NonZeroU64;

use fleetflow_model::{Fix, Item};

use fleetflow_model::geo::LatLonE7;

/// Where an item sorts among items of the same millisecond: ignition-on opens before a fix at
/// that instant, ignition-off closes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    IgnitionOn = 0,
    Fix = 1,
    IgnitionOff = 2,
}

/// The sort and idempotency key of an item within a vehicle.
pub type EntryKey = (i64, EntryKind);

/// An ignition-on odometer or ignition-off trip distance in metres, if the device sent one, in
/// 8 bytes where an `Option<u64>` takes 16: the timelines hold one per item (issue 39). Kept
/// plus one, so that none is zero; ingest refuses readings past `i64::MAX`, so none is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceMetres(Option<NonZeroU64>);

impl DeviceMetres {
    pub fn new(metres: Option<u64>) -> Self {
        DeviceMetres(metres.and_then(|m| NonZeroU64::new(m.saturating_add(1))))
    }

    pub fn get(self) -> Option<u64> {
        self.0.map(|m| m.get() - 1)
    }
}

/// One item, reduced to what sessionization reads (40 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub time_ms: i64,
    pub lat_e7: i32,
    pub lon_e7: i32,
    /// Kafka offset of the record that carried it: what a restart replays from.
    pub offset: i64,
    /// Ignition-on odometer or ignition-off trip distance, metres.
    pub device_m: DeviceMetres,
    pub speed_dkmh: u16,
    pub kind: EntryKind,
    /// A position usable for distance and trips (GPS status valid or unknown, not (0,0)).
    pub usable: bool,
}

impl Entry {
    pub fn from_item(item: &Item, offset: i64) -> Entry {
        let (kind, device_m) = match *item {
            Item::Fix(_) => (EntryKind::Fix, None),
            Item::IgnitionOn { odometer_m, .. } => (EntryKind::IgnitionOn, odometer_m),
            Item::IgnitionOff {
                trip_distance_m, ..
            } => (EntryKind::IgnitionOff, trip_distance_m),
        };
        let fix = item.fix();
        Entry {
            time_ms: fix.time_ms,
            lat_e7: fix.lat_e7,
            lon_e7: fix.lon_e7,
            offset,
            device_m: DeviceMetres::new(device_m),
            speed_dkmh: fix.speed_dkmh,
            kind,
            usable: position_usable(fix),
        }
    }

    pub fn key(&self) -> EntryKey {
        (self.time_ms, self.kind)
    }

    pub fn pos(&self) -> LatLonE7 {
        LatLonE7::new(self.lat_e7, self.lon_e7)
    }

    /// Same item, whichever record carried it.
    pub fn same_item(&self, other: &Entry) -> bool {
        Entry { offset: 0, ..*self }
            == Entry {
                offset: 0,
                ..*other
            }
    }
}

/// Whether a fix may be used for distance and trips: domain.md's invalid coordinates are
/// exactly (0,0) and a GPS status of "V" or "0" ("P", bad at ignition, too). Out-of-range values
/// never get this far: ingest rejects them.
pub fn position_usable(fix: &Fix) -> bool {
    fix.gps.is_usable() && !(fix.lat_e7 == 0 && fix.lon_e7 == 0)
}

/// What happened to an item offered to the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// New; `late` when the timeline already held a later item.
    Added { late: bool },
    /// The same item was already held (a retry).
    Duplicate,
    /// A different item with the same key was already held.
    Conflict,
}

/// Room a timeline keeps however few items it holds after an eviction.
const ROOM_KEPT: usize = 256;

/// A vehicle's items, sorted by key, unique per key.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    entries: Vec<Entry>,
}

impl Timeline {
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn last_key(&self) -> Option<EntryKey> {
        self.entries.last().map(Entry::key)
    }

    /// The key of the first entry at or after `time_ms`.
    pub fn first_key_at_or_after(&self, time_ms: i64) -> Option<EntryKey> {
        let at = self.entries.partition_point(|e| e.time_ms < time_ms);
        self.entries.get(at).map(Entry::key)
    }

    /// Index of the first entry with key >= `key`.
    pub fn lower_bound(&self, key: EntryKey) -> usize {
        self.entries.partition_point(|e| e.key() < key)
    }

    /// Offers one entry. Returns what happened and, if added, the index it landed at.
    pub fn admit(&mut self, entry: Entry) -> (Admission, usize) {
        let key = entry.key();
        match self.last_key() {
            None => {
                self.entries.push(entry);
                return (Admission::Added { late: false }, 0);
            }
            Some(last) if key > last => {
                self.entries.push(entry);
                return (Admission::Added { late: false }, self.entries.len() - 1);
            }
            Some(_) => {}
        }
        let at = self.lower_bound(key);
        if let Some(held) = self.entries.get(at)
            && held.key() == key
        {
            let verdict = if held.same_item(&entry) {
                Admission::Duplicate
            } else {
                Admission::Conflict
            };
            return (verdict, at);
        }
        self.entries.insert(at, entry);
        (Admission::Added { late: true }, at)
    }

    /// Drops every entry before index `upto` (eviction past the correction horizon).
    pub fn evict_before(&mut self, upto: usize) {
        self.entries.drain(..upto);
        // Room left by a burst (a backlog read quickly: an epoch's items admitted before the
        // eviction) is returned, so that what a vehicle holds follows the horizon rather than
        // its largest burst: over twice what is left, cut to half again as much. A timeline
        // that doubled once past the horizon's size (600 items at one a second, 1,024 room)
        // keeps its room; a catch-up left ~700 of 15,000 vehicles with 2,048 (issue 39).
        let len = self.entries.len();
        if self.entries.capacity() > 2 * len.max(ROOM_KEPT) {
            self.entries.shrink_to((len + len / 2).max(ROOM_KEPT));
        }
    }

    /// The smallest Kafka offset among held entries.
    pub fn min_offset(&self) -> Option<i64> {
        self.entries.iter().map(|e| e.offset).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetflow_model::GpsStatus;

    fn fix(t: i64, lat: i32) -> Item {
        let mut f = Fix::new(t, lat, 1_270_000_000);
        f.gps = GpsStatus::Valid;
        Item::Fix(f)
    }

    #[test]
    fn appends_merges_and_dedups() {
        let mut tl = Timeline::default();
        assert_eq!(
            tl.admit(Entry::from_item(&fix(10, 1), 0)).0,
            Admission::Added { late: false }
        );
        assert_eq!(
            tl.admit(Entry::from_item(&fix(30, 3), 0)).0,
            Admission::Added { late: false }
        );
        assert_eq!(
            tl.admit(Entry::from_item(&fix(20, 2), 1)),
            (Admission::Added { late: true }, 1)
        );
        // The same fix from another record: a duplicate.
        assert_eq!(
            tl.admit(Entry::from_item(&fix(20, 2), 7)).0,
            Admission::Duplicate
        );
        // Same time, other position: a conflict; the held one stays.
        assert_eq!(
            tl.admit(Entry::from_item(&fix(20, 9), 8)).0,
            Admission::Conflict
        );
        let times: Vec<_> = tl.entries().iter().map(|e| (e.time_ms, e.lat_e7)).collect();
        assert_eq!(times, [(10, 1), (20, 2), (30, 3)]);
        // Ignition at the same millisecond sorts around the fix.
        let on = Item::IgnitionOn {
            at: fleetflow_model::Fix::new(20, 5, 5),
            odometer_m: None,
        };
        let off = Item::IgnitionOff {
            at: fleetflow_model::Fix::new(20, 5, 5),
            trip_distance_m: None,
        };
        tl.admit(Entry::from_item(&off, 9));
        tl.admit(Entry::from_item(&on, 9));
        let kinds: Vec<_> = tl.entries().iter().map(|e| e.kind).collect();
        use EntryKind::*;
        assert_eq!(kinds, [Fix, IgnitionOn, Fix, IgnitionOff, Fix]);
        assert_eq!(tl.min_offset(), Some(0));
    }

    #[test]
    fn eviction_returns_the_room_of_a_burst() {
        let mut tl = Timeline::default();
        for t in 0..10_000 {
            tl.admit(Entry::from_item(&fix(t, 1), 0));
        }
        tl.evict_before(9_900);
        assert_eq!(tl.entries().len(), 100);
        assert!(
            tl.entries.capacity() <= 2 * ROOM_KEPT,
            "{}",
            tl.entries.capacity()
        );
        assert_eq!(tl.entries()[0].time_ms, 9_900);
    }

    #[test]
    fn device_metres_keep_every_reading() {
        for m in [
            None,
            Some(0),
            Some(1),
            Some(1_000_000_000_000_000),
            Some(i64::MAX as u64),
        ] {
            assert_eq!(DeviceMetres::new(m).get(), m);
        }
        assert_eq!(DeviceMetres::default().get(), None);
    }

    /// A vehicle at the horizon's size keeps its room through evictions; one whose burst
    /// doubled its room past twice what it keeps gives that back.
    #[test]
    fn eviction_keeps_the_room_of_the_horizon() {
        assert_eq!(size_of::<Entry>(), 40);
        let mut tl = Timeline::default();
        for t in 0..800 {
            tl.admit(Entry::from_item(&fix(t, 1), 0));
        }
        assert_eq!(tl.entries.capacity(), 1024);
        tl.evict_before(200);
        assert_eq!(tl.entries.capacity(), 1024, "600 left: no re-allocation");
        for t in 800..1_300 {
            tl.admit(Entry::from_item(&fix(t, 1), 0));
        }
        assert_eq!(tl.entries.capacity(), 2048);
        tl.evict_before(400);
        assert_eq!(tl.entries().len(), 700);
        assert!(
            (700..=1_050).contains(&tl.entries.capacity()),
            "{}",
            tl.entries.capacity()
        );
    }

    #[test]
    fn unusable_positions() {
        let mut f = Fix::new(1, 0, 0);
        assert!(!position_usable(&f));
        f.lat_e7 = 1;
        assert!(position_usable(&f));
        f.gps = GpsStatus::Invalid;
        assert!(!position_usable(&f));
        f.gps = GpsStatus::NotFitted;
        assert!(!position_usable(&f));
    }
}
