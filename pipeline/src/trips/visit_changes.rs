//! What a re-run of a vehicle's timeline changed in its geofence visits, as differences: the
//! visits it replaced leave as retractions (-1), the new ones as insertions (+1), in the
//! differential `visits` collection; and the `geofence_enter` / `geofence_exit` events of
//! those visits that appeared go to `events`, those that disappeared as retraction rows
//! (`retraction = true`), so that the event log, and the webhooks that follow it, carry every
//! correction. An event is its (geofence, kind, time): a visit that closes keeps its enter, so
//! only its exit is new.

use std::sync::Arc;

use fleetflow_geofences::visit::Visit;

use crate::rows::{EventKind, EventRow, VehicleName, VisitRecord};
use crate::trips::outputs::Outputs;

/// An event a visit makes: (geofence, time, kind, position).
type VisitEvent = (Arc<str>, i64, EventKind, (i32, i32));

fn events_of(visits: &[Visit]) -> Vec<VisitEvent> {
    let mut out = Vec::with_capacity(visits.len() * 2);
    for v in visits {
        out.push((
            v.geofence.clone(),
            v.enter_ms,
            EventKind::GeofenceEnter,
            v.enter_pos,
        ));
        if let Some((time_ms, pos)) = v.exit {
            out.push((v.geofence.clone(), time_ms, EventKind::GeofenceExit, pos));
        }
    }
    out.sort_unstable();
    out
}

/// Emits the differences between the visits a re-run replaced (`old`) and made (`new`).
pub fn emit(name: &VehicleName, mut old: Vec<Visit>, mut new: Vec<Visit>, out: &mut Outputs) {
    if old == new {
        return;
    }
    old.sort_unstable();
    new.sort_unstable();
    let record = |visit: &Visit| VisitRecord {
        company: name.company.clone(),
        vehicle: name.vehicle.clone(),
        visit: visit.clone(),
    };
    for visit in &old {
        if new.binary_search(visit).is_err() {
            out.visits.push((record(visit), -1));
        }
    }
    for visit in &new {
        if old.binary_search(visit).is_err() {
            out.visits.push((record(visit), 1));
        }
    }
    let (old_events, new_events) = (events_of(&old), events_of(&new));
    let row = |(geofence, time_ms, kind, pos): &VisitEvent, retraction: bool| EventRow {
        company: name.company.clone(),
        vehicle: name.vehicle.clone(),
        kind: *kind,
        time_ms: *time_ms,
        pos: Some(*pos),
        trip_start_ms: None,
        value: None,
        geofence: Some(geofence.clone()),
        retraction,
    };
    for event in &old_events {
        if new_events.binary_search(event).is_err() {
            out.events.push(row(event, true));
        }
    }
    for event in &new_events {
        if old_events.binary_search(event).is_err() {
            out.events.push(row(event, false));
        }
    }
}
