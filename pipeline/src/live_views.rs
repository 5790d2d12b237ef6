//! The live fleet views, maintained incrementally by differential dataflow from the
//! sessionizer's collections: `vehicles` (each vehicle's live state after its newest item, in
//! event time), `heard` (when each vehicle last sent anything, in dataflow time) and `trips`,
//! and from its `positions` (the fixes live routes are drawn from, [`crate::live_routes`]).
//!
//! Each view is a differential collection: at every dataflow timestamp it equals a from-scratch
//! computation over the input seen so far at that time (tested against
//! [`crate::reference`] in `tests/sessionize_reference.rs`), and it changes only where the input
//! or the clock did. Views that depend on the clock (offline, today, this week) are temporal
//! filters ([`crate::temporal_filter`]) and change when the dataflow time passes a boundary,
//! with no input.
//!
//! Days and weeks are UTC (weeks start on Monday); a trip counts toward the day and week it
//! started in.

use std::cmp::Reverse;
use std::sync::Arc;

use differential_dataflow::collection::vec::Collection;
use differential_dataflow::difference::{Abelian, IsZero, Monoid, Multiply, Semigroup};
use differential_dataflow::operators::CountTotal;
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;

use crate::live_routes::{RecentFix, recent_fixes};
use crate::rows::{PositionRow, TripRecord};
use crate::sessionize_operator::Epoch;
use crate::temporal_filter::{FOREVER, ValidDuring};
use crate::vehicle_live::{IgnitionState, LastHeard, Status, VehicleLive};

pub const DAY_MS: u64 = 86_400_000;
pub const WEEK_MS: u64 = 7 * DAY_MS;

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

/// A fleet summary bucket: how many of a company's vehicles have this ignition state and status
/// (the dashboard's all / engine on / engine off counts are sums of buckets).
pub type SummaryKey = (Arc<str>, IgnitionState, Status);

/// (company, vehicle).
pub type VehicleKey = (Arc<str>, Arc<str>);

/// Which period a total or leaderboard covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Period {
    /// The current UTC day.
    Today,
    /// The current UTC week (from Monday).
    Week,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Today => "today",
            Period::Week => "week",
        }
    }

    pub fn parse(s: &str) -> Option<Period> {
        [Period::Today, Period::Week]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    /// The window of dataflow time during which a trip that started at `start_ms` counts.
    pub fn window(self, start_ms: i64) -> (Epoch, Epoch) {
        let day = start_ms.max(0) as u64 / DAY_MS;
        let from = match self {
            Period::Today => day * DAY_MS,
            // Day 0 (1970-01-01) was a Thursday, weekday 3 counting from Monday.
            Period::Week => day.saturating_sub((day + 3) % 7) * DAY_MS,
        };
        let len = match self {
            Period::Today => DAY_MS,
            Period::Week => WEEK_MS,
        };
        (from, from + len)
    }
}

/// A vehicle's trips in the current period, summed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct PeriodTotal {
    pub distance_mm: u64,
    /// Time in moving legs.
    pub driving_ms: i64,
    pub trips: u32,
}

impl PeriodTotal {
    pub fn add(&mut self, trip: &crate::Trip, times: isize) {
        let n = times.max(0) as u64;
        self.distance_mm += trip.distance_mm * n;
        self.driving_ms += trip.moving_ms * n as i64;
        self.trips += n as u32;
    }
}

/// A sum of trips as a differential difference (an abelian group): the period totals carry
/// each trip's sums in the difference of a `(window, vehicle)` record, so differential adds
/// them up and every operator holds one update per vehicle and period, not one per trip.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct TripSums {
    pub distance_mm: i64,
    pub driving_ms: i64,
    pub trips: i64,
}

impl TripSums {
    pub fn of(trip: &crate::Trip) -> Self {
        TripSums {
            distance_mm: trip.distance_mm as i64,
            driving_ms: trip.moving_ms,
            trips: 1,
        }
    }

    /// The served total (a sum of present trips is never negative).
    pub fn total(&self) -> PeriodTotal {
        PeriodTotal {
            distance_mm: self.distance_mm.max(0) as u64,
            driving_ms: self.driving_ms,
            trips: self.trips.max(0) as u32,
        }
    }
}

impl IsZero for TripSums {
    fn is_zero(&self) -> bool {
        *self == TripSums::default()
    }
}

impl Semigroup for TripSums {
    fn plus_equals(&mut self, rhs: &Self) {
        self.distance_mm += rhs.distance_mm;
        self.driving_ms += rhs.driving_ms;
        self.trips += rhs.trips;
    }
}

impl Monoid for TripSums {
    fn zero() -> Self {
        TripSums::default()
    }
}

impl Abelian for TripSums {
    fn negate(&mut self) {
        *self = TripSums {
            distance_mm: -self.distance_mm,
            driving_ms: -self.driving_ms,
            trips: -self.trips,
        };
    }
}

impl Multiply<isize> for TripSums {
    type Output = TripSums;
    fn multiply(self, times: &isize) -> TripSums {
        let n = *times as i64;
        TripSums {
            distance_mm: self.distance_mm * n,
            driving_ms: self.driving_ms * n,
            trips: self.trips * n,
        }
    }
}

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

/// Builds every view from the sessionizer's output.
pub fn live_views<'scope>(
    vehicles: Collection<'scope, Epoch, VehicleLive>,
    heard: Collection<'scope, Epoch, LastHeard>,
    trips: Collection<'scope, Epoch, TripRecord>,
    positions: StreamVec<'scope, Epoch, PositionRow>,
    config: &LiveViewConfig,
) -> LiveViews<'scope> {
    let offline = offline(heard, config.offline_after_ms);
    let summary = fleet_summary(vehicles.clone(), offline.clone());
    let totals =
        period_totals(trips.clone(), Period::Today).concat(period_totals(trips, Period::Week));
    let leaders = leaderboards(totals.clone(), config.leaderboard_top);
    let recent = recent_fixes(positions, config.route_window_ms);
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

/// Per vehicle, the sum of its trips that started in the current `period`.
///
/// Each trip becomes its period window and vehicle, with the trip's sums as the difference
/// ([`TripSums`]): the temporal filter then holds one summed retraction per vehicle (the
/// window is when it is held until, not held data), and `count_total` one accumulation per
/// vehicle, however many trips there were.
pub fn period_totals<'scope>(
    trips: Collection<'scope, Epoch, TripRecord>,
    period: Period,
) -> Collection<'scope, Epoch, (Period, VehicleKey, PeriodTotal)> {
    trips
        .explode(move |t| {
            let sums = TripSums::of(&t.trip);
            Some((
                (period.window(t.trip.start_ms), (t.company, t.vehicle)),
                sums,
            ))
        })
        .valid_during(
            period.as_str(),
            |(window, key): ((Epoch, Epoch), VehicleKey)| (window, key),
        )
        .count_total()
        .map(move |(key, sums)| (period, key, sums.total()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_utc_days_and_monday_weeks() {
        // 2020-12-02 (a Wednesday) 15:00 UTC.
        let t = 1_606_921_200_000;
        assert_eq!(
            Period::Today.window(t),
            (1_606_867_200_000, 1_606_867_200_000 + DAY_MS)
        );
        // Monday 2020-11-30 00:00 UTC.
        assert_eq!(
            Period::Week.window(t),
            (1_606_694_400_000, 1_606_694_400_000 + WEEK_MS)
        );
        assert_eq!(Period::Week.window(1_606_694_400_000).0, 1_606_694_400_000);
    }
}
