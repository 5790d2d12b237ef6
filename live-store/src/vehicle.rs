//! A vehicle's live state as the trip machine sees it after its newest item (in event time):
//! the data of the differential `vehicles` collection the live views are built from.
//!
//! It is a pure function of the vehicle's items, whatever order they arrived in: the
//! sessionizer recomputes it from its checkpoints when a late item lands, and emits it as a
//! retraction of the old state and an insertion of the new one.
//!
//! Names are `Arc<str>`: the sessionizer holds one per vehicle, and every copy of a record in
//! the views' arrangements and the live store shares it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::trip::Trip;

/// Whether the ignition is known on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IgnitionState {
    Unknown,
    On,
    Off,
}

/// What the vehicle is doing, from its newest accepted fix and trip state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Motion {
    /// A trip is open and the newest fix reports speed.
    Moving,
    /// Ignition on, not moving.
    Idle,
    /// Neither.
    Parked,
}

impl Motion {
    pub fn as_str(self) -> &'static str {
        match self {
            Motion::Moving => "moving",
            Motion::Idle => "idle",
            Motion::Parked => "parked",
        }
    }
}

/// The newest accepted fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LiveFix {
    pub time_ms: i64,
    pub lat_e7: i32,
    pub lon_e7: i32,
    pub speed_dkmh: u16,
}

/// The machine's view of one vehicle (see `fleetflow_pipeline::trips::trip_machine::Machine::live`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MachineLive {
    pub fix: Option<LiveFix>,
    pub ignition: IgnitionState,
    pub open_trip: Option<Trip>,
    /// The newest ignition-on odometer, metres.
    pub odometer_m: Option<u64>,
    /// Moving (a trip is open and the newest fix reports speed), idle (ignition on otherwise)
    /// or parked.
    pub motion: Motion,
    /// The item time this motion began at (the first item after which it held).
    pub motion_since_ms: i64,
}

/// One vehicle's live state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VehicleLive {
    pub vehicle: Arc<str>,
    pub company: Arc<str>,
    pub state: MachineLive,
}

/// When fleetflow last heard anything from a vehicle: when ingest received its newest record,
/// whatever the record held. Offline detection counts silence from here, on the dataflow's
/// clock, so it fires even when the vehicle sends nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LastHeard {
    pub company: Arc<str>,
    pub vehicle: Arc<str>,
    /// When ingest received the vehicle's newest record (wall-clock ms; the dataflow time
    /// for records without a receipt time). Carried by the record, so a restart's replay
    /// rebuilds the same value.
    pub at_ms: u64,
    /// The ignition and motion of the vehicle's live state at `at_ms` (`None` while it has
    /// none). A vehicle's live state changes only when it is heard from, so this always equals
    /// its current live state: the fleet summary moves offline vehicles between buckets with
    /// it, without joining the offline set to the live states.
    pub live: Option<(IgnitionState, Motion)>,
}

/// The status the views report: the motion, or offline after a silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    Moving,
    Idle,
    Parked,
    Offline,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Moving,
        Status::Idle,
        Status::Parked,
        Status::Offline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Moving => "moving",
            Status::Idle => "idle",
            Status::Parked => "parked",
            Status::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl From<Motion> for Status {
    fn from(m: Motion) -> Status {
        match m {
            Motion::Moving => Status::Moving,
            Motion::Idle => Status::Idle,
            Motion::Parked => Status::Parked,
        }
    }
}
