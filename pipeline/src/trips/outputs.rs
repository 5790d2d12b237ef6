//! What the sessionizer produces: the rows and collection changes of a batch of work
//! ([`Outputs`]), and the counts of what admission decided ([`SessionStats`]).

use crate::rows::{ErrorRow, EventRow, PositionRow, TripRecord, VisitRecord};
use fleetflow_live_store::vehicle::{LastHeard, VehicleLive};

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
    /// Repairs from the archive (one per vehicle and epoch with items beyond the horizon), the
    /// items they merged in, and items older than anything archived (flagged, not in trips).
    pub repairs: u64,
    pub repaired_items: u64,
    pub unrepairable: u64,
    /// Time spent in repairs, nanoseconds.
    pub repair_ns: u64,
    pub invalid: u64,
    /// Trip versions retracted by corrections (a late item that changed a trip).
    pub retractions: u64,
}
