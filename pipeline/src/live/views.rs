//! The live fleet views, maintained incrementally by differential dataflow from the
//! sessionizer's collections: `vehicles` (each vehicle's live state after its newest item, in
//! event time), `heard` (when each vehicle last sent anything, in dataflow time) and `trips`,
//! and from the recent fixes of its `positions` (what live routes are drawn from,
//! [`crate::live::routes::recent_fixes`]).
//!
//! Each view is a differential collection: at every dataflow timestamp it equals a from-scratch
//! computation over the input seen so far at that time (tested against
//! [`crate::trips::reference`] in `tests/sessionize_reference.rs`), and it changes only where the input
//! or the clock did. Views that depend on the clock change when the dataflow time passes a
//! boundary, with no input: offline through a temporal filter ([`crate::live::temporal_filter`]),
//! today's and this week's totals through their own operator ([`crate::live::period_totals`]).

use std::cmp::Reverse;

use differential_dataflow::collection::vec::Collection;
use differential_dataflow::operators::CountTotal;
use fleetflow_live_store::{
    Epoch, LastHeard, Leader, LiveRow, Period, PeriodTotal, RecentFix, Status, SummaryKey,
    VehicleKey, VehicleLive,
};

use crate::live::local_top::LocalTop;
use crate::live::period_totals::PeriodTotals;
use crate::live::temporal_filter::{FOREVER, ValidDuring};
use crate::rows::{TripRecord, VisitRecord};
use crate::source::stable_hash::vehicle_route;

/// `[live]`-derived settings of the views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveViewConfig {
    /// Silence after which a vehicle is offline, ms of dataflow time.
    pub offline_after_ms: u64,
    /// Entries per company leaderboard.
    pub leaderboard_top: usize,
    /// How far back live routes reach, ms of dataflow time (0: no live routes).
    pub route_window_ms: u64,
}

impl Default for LiveViewConfig {
    fn default() -> Self {
        LiveViewConfig {
            offline_after_ms: 300_000,
            leaderboard_top: 10,
            route_window_ms: 300_000,
        }
    }
}

/// Every live view, as differential collections.
pub struct LiveViews<'scope> {
    pub offline_after_ms: u64,
    pub vehicles: Collection<'scope, Epoch, VehicleLive>,
    /// The last-heard times of the vehicles that are offline now (offline since `at_ms +
    /// offline_after_ms`).
    pub offline: Collection<'scope, Epoch, LastHeard>,
    pub summary: Collection<'scope, Epoch, (SummaryKey, isize)>,
    /// Per vehicle with trips in the period.
    pub totals: Collection<'scope, Epoch, (Period, VehicleKey, PeriodTotal)>,
    pub leaders: Collection<'scope, Epoch, Leader>,
    /// Fixes inside the live-route window.
    pub recent: Collection<'scope, Epoch, RecentFix>,
}

/// Builds every view from the sessionizer's output (`recent`: see
/// [`crate::live::routes::recent_fixes`]).
pub fn live_views<'scope>(
    vehicles: Collection<'scope, Epoch, VehicleLive>,
    heard: Collection<'scope, Epoch, LastHeard>,
    trips: Collection<'scope, Epoch, TripRecord>,
    recent: Collection<'scope, Epoch, RecentFix>,
    config: &LiveViewConfig,
) -> LiveViews<'scope> {
    let offline = offline(heard, config.offline_after_ms);
    let summary = fleet_summary(vehicles.clone(), offline.clone());
    let totals = trips.period_totals();
    let leaders = leaderboards(totals.clone(), config.leaderboard_top);
    LiveViews {
        offline_after_ms: config.offline_after_ms,
        vehicles,
        offline,
        summary,
        totals,
        leaders,
        recent,
    }
}

impl std::fmt::Debug for LiveViews<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveViews").finish_non_exhaustive()
    }
}

impl<'scope> LiveViews<'scope> {
    /// Every view's rows in one collection.
    pub fn rows(self) -> Collection<'scope, Epoch, LiveRow> {
        let after = self.offline_after_ms;
        self.vehicles.map(LiveRow::Vehicle).concatenate([
            self.offline.map(move |h| LiveRow::Offline {
                company: h.company,
                vehicle: h.vehicle,
                since_ms: h.at_ms.saturating_add(after),
            }),
            self.summary.map(|(key, n)| LiveRow::Summary(key, n)),
            self.totals
                .map(|(period, key, total)| LiveRow::Total(period, key, total)),
            self.leaders.map(LiveRow::Leader),
            self.recent.map(LiveRow::Fix),
        ])
    }
}

/// The geofences each vehicle is inside now (its open visits), as live rows.
pub fn inside<'scope>(
    visits: Collection<'scope, Epoch, VisitRecord>,
) -> Collection<'scope, Epoch, LiveRow> {
    visits
        .filter(|v| v.visit.is_open())
        .map(|v| LiveRow::Inside {
            company: v.company,
            vehicle: v.vehicle,
            geofence: v.visit.geofence,
            since_ms: v.visit.enter_ms,
        })
}

/// The vehicles silent for `after_ms` of dataflow time.
pub fn offline<'scope>(
    heard: Collection<'scope, Epoch, LastHeard>,
    after_ms: u64,
) -> Collection<'scope, Epoch, LastHeard> {
    heard.valid_during("Offline", move |h: LastHeard| {
        ((h.at_ms.saturating_add(after_ms), FOREVER), h)
    })
}

/// Vehicles per (company, ignition, status), as `(key, count)` records: every vehicle counted
/// by its motion, and each offline one moved from its motion's bucket to offline. An offline
/// record carries the vehicle's ignition and motion ([`LastHeard::live`]), so no arrangement
/// of the vehicles is needed to find its bucket.
pub fn fleet_summary<'scope>(
    vehicles: Collection<'scope, Epoch, VehicleLive>,
    offline: Collection<'scope, Epoch, LastHeard>,
) -> Collection<'scope, Epoch, (SummaryKey, isize)> {
    let moved = offline.explode(|h| {
        h.live.into_iter().flat_map(move |(ignition, motion)| {
            [
                ((h.company.clone(), ignition, Status::from(motion)), -1),
                ((h.company.clone(), ignition, Status::Offline), 1),
            ]
        })
    });
    vehicles
        .map(|v| (v.company, v.state.ignition, Status::from(v.state.motion)))
        .concat(moved)
        .count_total()
}

/// Per company and period, the `top` vehicles by distance (ties by vehicle id).
pub fn leaderboards<'scope>(
    totals: Collection<'scope, Epoch, (Period, VehicleKey, PeriodTotal)>,
    top: usize,
) -> Collection<'scope, Epoch, Leader> {
    totals
        .map(|(period, (company, vehicle), total)| {
            ((company, period), (Reverse(total.distance_mm), vehicle))
        })
        // Each worker's top `top` per board; the reduce ranks their union.
        .local_top(top, |(company, _), (_, vehicle)| {
            vehicle_route(company, vehicle)
        })
        .reduce_named("Leaderboard", move |_key, ranked, out| {
            for (rank, ((distance, vehicle), _)) in ranked.iter().take(top).enumerate() {
                out.push(((rank as u32 + 1, vehicle.clone(), distance.0), 1));
            }
        })
        .map(|((company, period), (rank, vehicle, distance_mm))| Leader {
            company,
            period,
            rank,
            vehicle,
            distance_mm,
        })
}
