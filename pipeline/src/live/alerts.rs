//! Alerts: the feed a dispatcher watches. Device alerts (overspeed episodes, maintenance due)
//! come from the sessionizer's `events`, detected once per episode in event time and retracted
//! when a late fix shows the episode was not one (the store marks such alerts); the store
//! adds offline and back-online (when a vehicle enters or leaves the `offline` view) and
//! distance milestones (when today's distance passes a multiple of the milestone).

use fleetflow_live_store::{Alert, AlertKind, Epoch};
use timely::dataflow::StreamVec;
use timely::dataflow::operators::vec::Map;

use crate::rows::{EventKind, EventRow};

/// The events that are alerts, ready to be sent to the store.
pub fn device_alerts<'scope>(
    events: StreamVec<'scope, Epoch, EventRow>,
) -> StreamVec<'scope, Epoch, Alert> {
    events.flat_map(|e| {
        let kind = match e.kind {
            EventKind::Overspeed => AlertKind::Overspeed,
            EventKind::MaintenanceDue => AlertKind::MaintenanceDue,
            EventKind::IgnitionOn
            | EventKind::IgnitionOff
            | EventKind::TripStart
            | EventKind::TripEnd
            // The store raises its own, on the dataflow's clock (these come when the vehicle
            // is heard again, for the event log and webhooks).
            | EventKind::Offline
            | EventKind::Online => return None,
            EventKind::GeofenceEnter => AlertKind::GeofenceEnter,
            EventKind::GeofenceExit => AlertKind::GeofenceExit,
        };
        Some(Alert {
            seq: 0,
            epoch: 0,
            company: e.company.clone(),
            vehicle: e.vehicle.clone(),
            kind,
            time_ms: e.time_ms,
            pos: e.pos,
            value: e.value,
            geofence: e.geofence.clone(),
            retraction: e.retraction,
        })
    })
}
