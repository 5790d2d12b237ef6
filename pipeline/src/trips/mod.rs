//! Trips: each vehicle's items in event-time order ([`timeline`]), the rules that cut them into
//! trips ([`trip_machine`], distances by `fleetflow_model::geo`), the incremental
//! [`sessionize`]r with its timely operator ([`sessionize_operator`]), and the plain sequential
//! [`reference`] every dataflow result is compared with. Geofence visits are found as the
//! machine walks the timeline, against the geofences the [`geofence_feed`] keeps current, and
//! leave as differences ([`visit_changes`]). Produces
//! [`crate::rows`], trips, visits and vehicles' live state (their types are `fleetflow_live_store`'s `trip` and `vehicle`); knows
//! nothing of Parquet or the live store.

pub mod archive;
pub mod event_changes;
pub mod geofence_feed;
pub mod outputs;
pub mod reference;
pub mod repair;
pub mod sessionize;
pub mod sessionize_operator;
pub mod timeline;
pub mod trip_machine;
pub mod vehicle_sessions;
pub mod visit_changes;
