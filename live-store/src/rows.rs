//! The rows the dataflow sends the store: one type for every view, so that the store applies
//! every view's changes of a timestamp together.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::period::{Period, PeriodTotal, VehicleKey};
use crate::routes::RecentFix;
use crate::vehicle::{IgnitionState, Status, VehicleLive};

/// A fleet summary bucket: how many of a company's vehicles have this ignition state and status
/// (the dashboard's all / engine on / engine off counts are sums of buckets).
pub type SummaryKey = (Arc<str>, IgnitionState, Status);

/// One leaderboard place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Leader {
    pub company: Arc<str>,
    pub period: Period,
    /// 1-based.
    pub rank: u32,
    pub vehicle: Arc<str>,
    pub distance_mm: u64,
}

/// One row of any view: what the live store is sent, one collection for all views so that
/// the store applies every view's changes of a timestamp together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LiveRow {
    Vehicle(VehicleLive),
    Offline {
        company: Arc<str>,
        vehicle: Arc<str>,
        /// When the silence ran out (dataflow time).
        since_ms: u64,
    },
    Summary(SummaryKey, isize),
    Total(Period, VehicleKey, PeriodTotal),
    Leader(Leader),
    /// A fix inside the live-route window.
    Fix(RecentFix),
    /// The vehicle is inside this geofence now (an open visit), since `since_ms` (the time of
    /// the fix that entered).
    Inside {
        company: Arc<str>,
        vehicle: Arc<str>,
        geofence: Arc<str>,
        since_ms: i64,
    },
}
