//! The reference sessionizer: the plain sequential definition the dataflow is checked against.
//!
//! Collect every item of a vehicle, sort by (time, kind), keep the first of each key in arrival
//! order, run the trip machine once from the start. No checkpoints, no incremental state, no
//! dataflow: what the trips of a set of items *are*, whatever order they came in.

use std::collections::BTreeMap;

use fleetflow_model::TelemetryRecord;

use crate::trips::sessionize::RuleBook;
use crate::trips::timeline::Entry;
use crate::trips::trip_machine::{Detected, Machine};
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
        .map(|(vehicle, (trips, _))| (vehicle, trips))
        .collect()
}

/// Every vehicle's live state after all of `records`: the machine's state after its newest item.
pub fn reference_vehicles<'a>(
    records: impl IntoIterator<Item = &'a TelemetryRecord>,
    rules: &RuleBook,
) -> BTreeMap<VehicleKey, VehicleLive> {
    reference_run(records, rules)
        .into_iter()
        .map(|(vehicle, (_, live))| (vehicle, live))
        .collect()
}

/// Per vehicle: its trips and its live state.
fn reference_run<'a>(
    records: impl IntoIterator<Item = &'a TelemetryRecord>,
    rules: &RuleBook,
) -> BTreeMap<VehicleKey, (Vec<Trip>, VehicleLive)> {
    let mut per_vehicle: BTreeMap<VehicleKey, Vec<Entry>> = BTreeMap::new();
    for record in records {
        per_vehicle
            .entry((record.company.clone(), record.vehicle.clone()))
            .or_default()
            .extend(record.items.iter().map(|item| Entry::from_item(item, 0)));
    }
    per_vehicle
        .into_iter()
        .map(|((company, vehicle), mut entries)| {
            // Stable: among equal keys the first to arrive stays first, and dedup keeps it.
            entries.sort_by_key(Entry::key);
            entries.dedup_by_key(|e| e.key());
            let limits = rules.limits(&company);
            let mut machine = Machine::default();
            let mut detected = Vec::new();
            let mut trips = Vec::new();
            for entry in &entries {
                machine.step(entry, &limits, &mut detected);
                for d in detected.drain(..) {
                    if let Detected::TripClosed(trip) = d {
                        trips.push(trip);
                    }
                }
            }
            trips.extend(machine.open_trip());
            let live = VehicleLive {
                vehicle: vehicle.as_str().into(),
                company: company.as_str().into(),
                state: machine.live(),
            };
            ((company, vehicle), (trips, live))
        })
        .collect()
}
