//! The live store's vehicle table: one entry per vehicle holding everything the store serves
//! about it (its live state, its offline flag, today's and this week's totals), in a dense slab
//! addressed by a [`Slot`], with an index sorted by (company, vehicle).
//!
//! One entry per vehicle rather than a map per view: the names and the map overhead are paid
//! once, and the grid index and the change log refer to a vehicle by its 4-byte slot rather
//! than by its names. The slab grows in fixed chunks, so its capacity is never more than one
//! chunk ahead of its length.
//!
//! A slot is never reused: a vehicle that leaves every view keeps an empty entry, so a slot in
//! the change log or the grid always names the same vehicle. Vehicles do not leave in practice
//! (the sessionizer keeps every vehicle's state), so the table only grows with the fleet.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::period::{Period, PeriodTotal, VehicleKey};
use crate::vehicle::{MachineLive, Status, VehicleLive};

/// A vehicle's place in the table.
pub type Slot = u32;

/// Entries per slab chunk.
const CHUNK: usize = 4096;

/// Everything the store serves about one vehicle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleEntry {
    /// (company, vehicle).
    pub key: VehicleKey,
    /// The live state; `None` while the vehicle is in no view (it is then not served).
    pub live: Option<MachineLive>,
    /// When its silence ran out, if it is offline.
    pub offline_since: Option<u64>,
    /// The geofences it is inside now, with when it entered each; sorted by geofence id.
    pub geofences: Vec<(Arc<str>, i64)>,
    /// Today's and this week's totals (no trips: zero).
    totals: [PeriodTotal; 2],
}

impl VehicleEntry {
    fn new(key: VehicleKey) -> Self {
        VehicleEntry {
            key,
            live: None,
            offline_since: None,
            geofences: Vec::new(),
            totals: [PeriodTotal::default(); 2],
        }
    }

    pub fn company(&self) -> &Arc<str> {
        &self.key.0
    }

    pub fn vehicle(&self) -> &Arc<str> {
        &self.key.1
    }

    /// The vehicle's total for `period`, if it has trips in it.
    pub fn total(&self, period: Period) -> Option<PeriodTotal> {
        let total = self.totals[period.index()];
        (total != PeriodTotal::default()).then_some(total)
    }

    /// Sets (or, with `None`, clears) the total for `period`.
    pub fn set_total(&mut self, period: Period, total: Option<PeriodTotal>) {
        self.totals[period.index()] = total.unwrap_or_default();
    }

    /// The live state with its names, as the dataflow sent it.
    pub fn vehicle_live(&self) -> Option<VehicleLive> {
        Some(VehicleLive {
            vehicle: self.key.1.clone(),
            company: self.key.0.clone(),
            state: self.live?,
        })
    }

    /// The vehicle's status and when it began: when the silence ran out for an offline
    /// vehicle, else the first item of its current motion. `None` if it is not served.
    pub fn status_since(&self) -> Option<(Status, i64)> {
        let live = self.live.as_ref()?;
        Some(match self.offline_since {
            Some(since) => (Status::Offline, since as i64),
            None => (live.motion.into(), live.motion_since_ms),
        })
    }

    pub fn status(&self) -> Option<Status> {
        self.status_since().map(|(status, _)| status)
    }
}

/// The vehicle entries and their index.
#[derive(Debug, Default)]
pub struct VehicleTable {
    /// Company -> vehicle -> slot.
    index: BTreeMap<Arc<str>, BTreeMap<Arc<str>, Slot>>,
    /// Fixed-capacity chunks of [`CHUNK`] entries; slot `s` is `chunks[s / CHUNK][s % CHUNK]`.
    chunks: Vec<Vec<VehicleEntry>>,
    /// Entries that are served (have a live state).
    served: usize,
}

impl VehicleTable {
    /// The slot of `key`, if the table has ever held it.
    pub fn slot(&self, key: &VehicleKey) -> Option<Slot> {
        self.index.get(&*key.0)?.get(&*key.1).copied()
    }

    /// The slot of `key`, adding an empty entry for a new vehicle.
    pub fn slot_or_insert(&mut self, key: &VehicleKey) -> Slot {
        if let Some(slot) = self.slot(key) {
            return slot;
        }
        let slot = self.slots();
        assert!(slot < Slot::MAX, "fewer than 2^32 vehicles");
        if self.chunks.last().is_none_or(|chunk| chunk.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks
            .last_mut()
            .expect("a chunk with room")
            .push(VehicleEntry::new(key.clone()));
        self.index
            .entry(key.0.clone())
            .or_default()
            .insert(key.1.clone(), slot);
        slot
    }

    /// The entry at `slot` (served or not).
    pub fn at(&self, slot: Slot) -> &VehicleEntry {
        let s = slot as usize;
        &self.chunks[s / CHUNK][s % CHUNK]
    }

    /// Changes the entry at `slot`, keeping the count of served entries.
    pub fn update<R>(&mut self, slot: Slot, f: impl FnOnce(&mut VehicleEntry) -> R) -> R {
        let s = slot as usize;
        let entry = &mut self.chunks[s / CHUNK][s % CHUNK];
        let was = entry.live.is_some();
        let out = f(entry);
        match (was, entry.live.is_some()) {
            (false, true) => self.served += 1,
            (true, false) => self.served -= 1,
            _ => {}
        }
        out
    }

    /// The entry of `key` (served or not).
    pub fn entry(&self, key: &VehicleKey) -> Option<&VehicleEntry> {
        self.slot(key).map(|slot| self.at(slot))
    }

    /// The served entry of `key`.
    pub fn get(&self, key: &VehicleKey) -> Option<&VehicleEntry> {
        self.entry(key).filter(|e| e.live.is_some())
    }

    /// Entries, served or not: slots are `0..slots()`.
    pub fn slots(&self) -> Slot {
        let full = self.chunks.len().saturating_sub(1) * CHUNK;
        (full + self.chunks.last().map_or(0, Vec::len)) as Slot
    }

    /// Served vehicles.
    pub fn len(&self) -> usize {
        self.served
    }

    pub fn is_empty(&self) -> bool {
        self.served == 0
    }

    /// The served vehicles of the companies `sees` admits, by (company, vehicle).
    pub fn iter_where<'a>(
        &'a self,
        sees: impl Fn(&str) -> bool + 'a,
    ) -> impl Iterator<Item = &'a VehicleEntry> + 'a {
        self.index
            .iter()
            .filter(move |(company, _)| sees(company))
            .flat_map(|(_, vehicles)| vehicles.values())
            .map(|slot| self.at(*slot))
            .filter(|e| e.live.is_some())
    }

    /// Every served vehicle, by (company, vehicle).
    pub fn iter(&self) -> impl Iterator<Item = &VehicleEntry> {
        self.iter_where(|_| true)
    }

    /// The served vehicle named `vehicle` in the first company `sees` admits that has one.
    pub fn find(&self, vehicle: &str, sees: impl Fn(&str) -> bool) -> Option<&VehicleEntry> {
        self.index
            .iter()
            .filter(|(company, _)| sees(company))
            .find_map(|(_, vehicles)| vehicles.get(vehicle))
            .map(|slot| self.at(*slot))
            .filter(|e| e.live.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vehicle::{IgnitionState, Motion};

    fn key(company: &str, vehicle: &str) -> VehicleKey {
        (company.into(), vehicle.into())
    }

    fn live() -> MachineLive {
        MachineLive {
            fix: None,
            ignition: IgnitionState::Unknown,
            open_trip: None,
            odometer_m: None,
            motion: Motion::Parked,
            motion_since_ms: 0,
        }
    }

    #[test]
    fn slots_are_stable_and_iteration_is_sorted_and_served_only() {
        let mut table = VehicleTable::default();
        let names = [("b", "2"), ("a", "9"), ("b", "1"), ("a", "10")];
        let slots: Vec<Slot> = names
            .iter()
            .map(|(c, v)| table.slot_or_insert(&key(c, v)))
            .collect();
        assert_eq!(slots, [0, 1, 2, 3]);
        assert_eq!(table.slot_or_insert(&key("a", "9")), 1);
        assert!(table.is_empty(), "no entry has a live state yet");
        for slot in [0, 1, 2] {
            table.update(slot, |e| e.live = Some(live()));
        }
        let order: Vec<(&str, &str)> = table.iter().map(|e| (&*e.key.0, &*e.key.1)).collect();
        assert_eq!(order, [("a", "9"), ("b", "1"), ("b", "2")]);
        assert_eq!(table.len(), 3);
        assert_eq!(table.iter_where(|c| c == "b").count(), 2);
        assert!(table.get(&key("a", "10")).is_none(), "not served");
        assert!(table.entry(&key("a", "10")).is_some());
        assert_eq!(
            table.find("1", |c| c != "a").map(|e| e.key.clone()),
            Some(key("b", "1"))
        );
        table.update(1, |e| e.live = None);
        assert_eq!(table.len(), 2);
        assert_eq!(table.slot(&key("a", "9")), Some(1), "the slot stays");
    }

    #[test]
    fn the_slab_spans_chunks() {
        let mut table = VehicleTable::default();
        for i in 0..CHUNK + 10 {
            let slot = table.slot_or_insert(&key("c", &i.to_string()));
            assert_eq!(slot as usize, i);
        }
        assert_eq!(
            &*table.at((CHUNK + 3) as Slot).key.1,
            (CHUNK + 3).to_string()
        );
    }

    #[test]
    fn a_zero_total_is_no_total() {
        let mut e = VehicleEntry::new(key("a", "1"));
        assert_eq!(e.total(Period::Week), None);
        let t = PeriodTotal {
            distance_mm: 5,
            driving_ms: 1,
            trips: 1,
        };
        e.set_total(Period::Week, Some(t));
        assert_eq!(
            (e.total(Period::Today), e.total(Period::Week)),
            (None, Some(t))
        );
        e.set_total(Period::Week, None);
        assert_eq!(e.total(Period::Week), None);
    }
}
