//! The live fleet views, maintained incrementally by differential dataflow from the sessionizer's
//! `vehicles` collection (each vehicle's live state after its newest item, in event time).
//!
//! Each view is a differential collection: at every dataflow timestamp it equals a from-scratch
//! computation over the input seen so far (tested in `tests/sessionize_reference.rs`), and it
//! changes only where the input did.

use differential_dataflow::collection::vec::Collection;

use crate::sessionize_operator::Epoch;
use crate::vehicle_live::{IgnitionState, Motion, VehicleLive};

/// A fleet summary bucket: how many of a company's vehicles have this ignition state and motion
/// (the dashboard's all / engine on / engine off counts are sums of buckets).
pub type SummaryKey = (String, IgnitionState, Motion);

/// Vehicles per (company, ignition, motion), as `(key, count)` records.
pub fn fleet_summary<'scope>(
    vehicles: Collection<'scope, Epoch, VehicleLive>,
) -> Collection<'scope, Epoch, (SummaryKey, isize)> {
    vehicles
        .map(|v| (v.company, v.state.ignition, v.state.motion()))
        .count()
}
