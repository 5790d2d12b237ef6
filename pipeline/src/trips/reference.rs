//! The reference sessionizer: the plain sequential definition the dataflow is checked against.
//!
//! Collect every item of a vehicle, sort by (time, kind), keep the first of each key in arrival
//! order, run the trip machine once from the start. No checkpoints, no incremental state, no
//! dataflow: what the trips of a set of items *are*, whatever order they came in. Geofence
//! visits likewise: the machine's accepted fixes in that order, each tested against every
//! geofence of its company, no index.

use std::collections::{BTreeMap, BTreeSet};

use fleetflow_geofences::Geofence;
use fleetflow_geofences::shape::Shape;
use fleetflow_geofences::visit::Visit;
use fleetflow_model::TelemetryRecord;
use fleetflow_model::geo::LatLonE7;

use crate::trips::event_changes::{MachineEvent, events_of};
use crate::trips::sessionize::RuleBook;
use crate::trips::timeline::Entry;
use crate::trips::trip_machine::{Detected, Machine, Verdict};
use fleetflow_live_store::trip::Trip;
use fleetflow_live_store::vehicle::VehicleLive;

/// A vehicle: its company and its id (the same id in two companies is two vehicles).
pub type VehicleKey = (String, String);

/// Every vehicle's trips (closed in order, then the open one) for `records` in arrival order.
pub fn reference_trips<'a>(
    records: impl IntoIterator<Item = &'a TelemetryRecord>,
    rules: &RuleBook,
) -> BTreeMap<VehicleKey, Vec<Trip>> {
    reference_run(records, rules)
        .into_iter()
        .map(|(vehicle, run)| (vehicle, run.trips))
        .collect()
}

/// Every vehicle's trip and machine events (trip starts and ends, overspeed, maintenance due),
/// sorted, for `records` in arrival order.
pub fn reference_events<'a>(
    records: impl IntoIterator<Item = &'a TelemetryRecord>,
    rules: &RuleBook,
) -> BTreeMap<VehicleKey, Vec<MachineEvent>> {
    reference_run(records, rules)
        .into_iter()
        .map(|(vehicle, run)| (vehicle, events_of(&run.trips, &run.detected)))
        .collect()
}

/// Every vehicle's live state after all of `records`: the machine's state after its newest item.
pub fn reference_vehicles<'a>(
    records: impl IntoIterator<Item = &'a TelemetryRecord>,
    rules: &RuleBook,
) -> BTreeMap<VehicleKey, VehicleLive> {
    reference_run(records, rules)
        .into_iter()
        .map(|(vehicle, run)| (vehicle, run.live))
        .collect()
}

/// Every vehicle's items, sorted by key, the first of each key in arrival order kept.
fn sorted_entries<'a>(
    records: impl IntoIterator<Item = &'a TelemetryRecord>,
) -> BTreeMap<VehicleKey, Vec<Entry>> {
    let mut per_vehicle: BTreeMap<VehicleKey, Vec<Entry>> = BTreeMap::new();
    for record in records {
        per_vehicle
            .entry((record.company.clone(), record.vehicle.clone()))
            .or_default()
            .extend(record.items.iter().map(|item| Entry::from_item(item, 0)));
    }
    for entries in per_vehicle.values_mut() {
        // Stable: among equal keys the first to arrive stays first, and dedup keeps it.
        entries.sort_by_key(Entry::key);
        entries.dedup_by_key(|e| e.key());
    }
    per_vehicle
}

/// Every vehicle's geofence visits (sorted) for `records` against `geofences`.
pub fn reference_visits<'a>(
    records: impl IntoIterator<Item = &'a TelemetryRecord>,
    rules: &RuleBook,
    geofences: &[Geofence],
) -> BTreeMap<VehicleKey, Vec<Visit>> {
    // Each version's shape, with the geofence it is of.
    let shapes: Vec<(&Geofence, i64, Shape)> = geofences
        .iter()
        .flat_map(|g| {
            g.versions.iter().map(move |v| {
                let shape = v.spec.shape().expect("test geofences check");
                (g, v.from_ms, shape)
            })
        })
        .collect();
    let mut out = BTreeMap::new();
    for ((company, vehicle), entries) in sorted_entries(records) {
        let limits = rules.limits(&company);
        let mut machine = Machine::default();
        let mut detected = Vec::new();
        let mut open: BTreeMap<String, (i64, (i32, i32))> = BTreeMap::new();
        let mut visits = Vec::new();
        for e in &entries {
            detected.clear();
            if !matches!(
                machine.step(e, &limits, &mut detected),
                Verdict::Accepted { .. }
            ) {
                continue;
            }
            let pos = (e.lat_e7, e.lon_e7);
            let inside: BTreeSet<String> = shapes
                .iter()
                .filter(|(g, from_ms, shape)| {
                    g.company == company
                        && g.version_at(e.time_ms)
                            .is_some_and(|v| v.from_ms == *from_ms)
                        && shape.contains(LatLonE7::new(pos.0, pos.1))
                })
                .map(|(g, _, _)| g.id.clone())
                .collect();
            for (id, (enter_ms, enter_pos)) in open.clone() {
                if !inside.contains(&id) {
                    open.remove(&id);
                    visits.push(Visit {
                        geofence: id.as_str().into(),
                        enter_ms,
                        enter_pos,
                        exit: Some((e.time_ms, pos)),
                    });
                }
            }
            for id in inside {
                open.entry(id).or_insert((e.time_ms, pos));
            }
        }
        for (id, (enter_ms, enter_pos)) in open {
            visits.push(Visit {
                geofence: id.as_str().into(),
                enter_ms,
                enter_pos,
                exit: None,
            });
        }
        visits.sort();
        if !visits.is_empty() {
            out.insert((company, vehicle), visits);
        }
    }
    out
}

/// What one run of a vehicle's machine made.
struct Run {
    trips: Vec<Trip>,
    detected: Vec<MachineEvent>,
    live: VehicleLive,
}

/// Per vehicle: its trips, detections and live state.
fn reference_run<'a>(
    records: impl IntoIterator<Item = &'a TelemetryRecord>,
    rules: &RuleBook,
) -> BTreeMap<VehicleKey, Run> {
    sorted_entries(records)
        .into_iter()
        .map(|((company, vehicle), entries)| {
            let limits = rules.limits(&company);
            let mut machine = Machine::default();
            let mut detected = Vec::new();
            let (mut trips, mut events) = (Vec::new(), Vec::new());
            for entry in &entries {
                machine.step(entry, &limits, &mut detected);
                for d in detected.drain(..) {
                    match d {
                        Detected::TripClosed(trip) => trips.push(trip),
                        other => events.extend(MachineEvent::of_detected(&other)),
                    }
                }
            }
            trips.extend(machine.open_trip());
            let live = VehicleLive {
                vehicle: vehicle.as_str().into(),
                company: company.as_str().into(),
                state: machine.live(),
            };
            let run = Run {
                trips,
                detected: events,
                live,
            };
            ((company, vehicle), run)
        })
        .collect()
}
