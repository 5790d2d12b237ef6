//! What a re-run of a vehicle's timeline changed in its trip events (`trip_start`, `trip_end`)
//! and the machine's detections (`overspeed`, `maintenance_due`), as event rows: the events of
//! the run it replaced that the new run does not make again leave as retractions
//! (`retraction = true`), the new run's events that the old one did not make as insertions. So
//! the event log, and the webhooks and live alerts that follow it, carry every correction: a
//! late fix that joins two trips takes back the first one's end and the second one's start, one
//! that moves a trip's end or changes its distance takes the old end back and emits the new.
//!
//! An event is compared whole (kind, time, position, trip, measure), as a multiset: the same
//! event made by both runs emits nothing.

use std::cmp::Ordering;

use fleetflow_live_store::trip::Trip;

use crate::rows::{EventKind, EventRow, VehicleName};
use crate::trips::outputs::Outputs;
use crate::trips::trip_machine::Detected;

/// An event a run of the trip machine makes, exact and ordered (its measure is a fraction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineEvent {
    pub kind: EventKind,
    pub time_ms: i64,
    pub pos: Option<(i32, i32)>,
    /// The trip it belongs to (trip start/end): the trip's start.
    pub trip_start_ms: Option<i64>,
    /// The measure as (numerator, denominator): trip metres, overspeed km/h, odometer km.
    pub value: Option<(i64, i64)>,
}

impl MachineEvent {
    /// The event a detection makes (a closed trip's events come from the trip).
    pub fn of_detected(d: &Detected) -> Option<MachineEvent> {
        match *d {
            Detected::TripClosed(_) => None,
            Detected::Overspeed {
                since_ms,
                speed_dkmh,
                pos,
            } => Some(MachineEvent {
                kind: EventKind::Overspeed,
                time_ms: since_ms,
                pos: Some((pos.lat_e7, pos.lon_e7)),
                trip_start_ms: None,
                value: Some((i64::from(speed_dkmh), 10)),
            }),
            Detected::MaintenanceDue {
                at_ms,
                odometer_m,
                pos,
            } => Some(MachineEvent {
                kind: EventKind::MaintenanceDue,
                time_ms: at_ms,
                pos: pos.map(|p| (p.lat_e7, p.lon_e7)),
                trip_start_ms: None,
                value: Some((i64::try_from(odometer_m).unwrap_or(i64::MAX), 1000)),
            }),
        }
    }

    /// A trip's events: its start, and its end once closed (with its distance in metres).
    pub fn of_trip(trip: &Trip, out: &mut Vec<MachineEvent>) {
        out.push(MachineEvent {
            kind: EventKind::TripStart,
            time_ms: trip.start_ms,
            pos: trip.start_pos,
            trip_start_ms: Some(trip.start_ms),
            value: None,
        });
        if !trip.is_open() {
            out.push(MachineEvent {
                kind: EventKind::TripEnd,
                time_ms: trip.end_ms,
                pos: trip.end_pos,
                trip_start_ms: Some(trip.start_ms),
                value: Some((i64::try_from(trip.distance_mm).unwrap_or(i64::MAX), 1000)),
            });
        }
    }

    /// The event's row for vehicle `name`.
    pub fn row(&self, name: &VehicleName, retraction: bool) -> EventRow {
        EventRow {
            company: name.company.clone(),
            vehicle: name.vehicle.clone(),
            kind: self.kind,
            time_ms: self.time_ms,
            pos: self.pos,
            trip_start_ms: self.trip_start_ms,
            value: self.value.map(|(n, d)| n as f64 / d as f64),
            geofence: None,
            retraction,
        }
    }
}

/// Every event of `trips` and `detected`, sorted.
pub fn events_of(trips: &[Trip], detected: &[MachineEvent]) -> Vec<MachineEvent> {
    let mut out = Vec::with_capacity(trips.len() * 2 + detected.len());
    for trip in trips {
        MachineEvent::of_trip(trip, &mut out);
    }
    out.extend_from_slice(detected);
    out.sort_unstable();
    out
}

/// Emits the differences between the events of the run a re-run replaced (`old`) and of the
/// re-run (`new`), both sorted.
pub fn emit(name: &VehicleName, old: &[MachineEvent], new: &[MachineEvent], out: &mut Outputs) {
    let (mut i, mut j) = (0, 0);
    loop {
        let order = match (old.get(i), new.get(j)) {
            (None, None) => return,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => a.cmp(b),
        };
        match order {
            Ordering::Less => {
                out.events.push(old[i].row(name, true));
                i += 1;
            }
            Ordering::Greater => {
                out.events.push(new[j].row(name, false));
                j += 1;
            }
            Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, time_ms: i64) -> MachineEvent {
        MachineEvent {
            kind,
            time_ms,
            pos: None,
            trip_start_ms: None,
            value: None,
        }
    }

    #[test]
    fn only_the_differences_leave_as_a_multiset() {
        let name = VehicleName {
            company: "acme".into(),
            vehicle: "v1".into(),
        };
        let (start, end) = (EventKind::TripStart, EventKind::TripEnd);
        let diff = |mut old: Vec<MachineEvent>, mut new: Vec<MachineEvent>| {
            old.sort_unstable();
            new.sort_unstable();
            let mut out = Outputs::default();
            emit(&name, &old, &new, &mut out);
            let mut got: Vec<_> = out
                .events
                .iter()
                .map(|e| (e.kind, e.time_ms, e.retraction))
                .collect();
            got.sort_unstable();
            got
        };
        // The trip from 1 to 5 and the one open since 9 joined: one trip from 1 to 12.
        assert_eq!(
            diff(
                vec![event(start, 1), event(end, 5), event(start, 9)],
                vec![event(start, 1), event(end, 12)]
            ),
            [(start, 9, true), (end, 5, true), (end, 12, false)]
        );
        // Counted: an event made twice and then once is retracted once.
        assert_eq!(
            diff(
                vec![event(start, 9), event(start, 9)],
                vec![event(start, 9)]
            ),
            [(start, 9, true)]
        );
    }

    #[test]
    fn a_trip_end_carries_its_distance_in_metres() {
        let name = VehicleName {
            company: "acme".into(),
            vehicle: "v1".into(),
        };
        let e = MachineEvent {
            value: Some((12_345, 1000)),
            ..event(EventKind::TripEnd, 7)
        };
        assert_eq!(e.row(&name, false).value, Some(12.345));
    }
}
