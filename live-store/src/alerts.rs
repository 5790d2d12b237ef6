//! Alerts: the feed a dispatcher watches. Device alerts (overspeed episodes, maintenance due,
//! geofence enters and exits) come from the sessionizer's events (`fleetflow_pipeline::live::alerts`); the store adds
//! offline and back-online and distance milestones ([`crate::LiveStore`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Epoch;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertKind {
    /// A speeding episode began (value: km/h).
    Overspeed,
    /// The odometer passed a service interval (value: odometer km).
    MaintenanceDue,
    /// Silent for the configured time (time: when the silence ran out).
    Offline,
    /// Heard from again after being offline.
    Online,
    /// Today's distance passed a multiple of the milestone (value: km).
    Milestone,
    /// Entered a geofence (`geofence`: which).
    GeofenceEnter,
    /// Left a geofence.
    GeofenceExit,
}

impl AlertKind {
    pub const ALL: [AlertKind; 7] = [
        AlertKind::Overspeed,
        AlertKind::MaintenanceDue,
        AlertKind::Offline,
        AlertKind::Online,
        AlertKind::Milestone,
        AlertKind::GeofenceEnter,
        AlertKind::GeofenceExit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Overspeed => "overspeed",
            AlertKind::MaintenanceDue => "maintenance_due",
            AlertKind::Offline => "offline",
            AlertKind::Online => "online",
            AlertKind::Milestone => "milestone",
            AlertKind::GeofenceEnter => "geofence_enter",
            AlertKind::GeofenceExit => "geofence_exit",
        }
    }

    pub fn parse(s: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One alert as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Position in the alert feed (assigned by the store; 0 before).
    pub seq: u64,
    /// The dataflow time it was published at.
    pub epoch: Epoch,
    pub company: Arc<str>,
    pub vehicle: Arc<str>,
    pub kind: AlertKind,
    /// Event time for device alerts, dataflow time for offline / online.
    pub time_ms: i64,
    pub pos: Option<(i32, i32)>,
    pub value: Option<f64>,
    /// The geofence of a geofence enter or exit.
    #[serde(default)]
    pub geofence: Option<Arc<str>>,
    /// Takes back an earlier alert of the same vehicle, kind, time and geofence (a late fix
    /// showed it did not happen).
    #[serde(default)]
    pub retraction: bool,
}
