//! The rollups' changes of one flush window: what the window's accepted fixes and trip changes
//! add to each (company, vehicle, UTC hour), and from those the vehicle's day and the
//! company's hour and day ([`fleetflow_model::Rollup`]).
//!
//! A trip counts in the period it started in; a change of a trip (a new version, a correction
//! that removes it) is its retraction (-1: minus its count, distance and times) and its new
//! version's insertion, as the trips collection carries it. Fixes are never retracted: each
//! `positions` row is written once, so fix counts, speed sums, maxima and first/last times
//! only grow. The changes of every window, summed per key, are the rollup of everything
//! written so far, whatever order it arrived in.

use std::collections::HashMap;
use std::sync::Arc;

use fleetflow_model::Rollup;

use crate::rows::{PositionRow, TripRecord, flags};

const HOUR_MS: i64 = 3_600_000;

/// What a rollup row holds: sums (exact integers) and the fixes' extremes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupValue {
    pub trips: i64,
    pub distance_mm: i64,
    pub moving_ms: i64,
    pub idle_ms: i64,
    pub fixes: i64,
    pub speed_sum_dkmh: i64,
    /// `None` while the row holds no fix.
    pub max_speed_dkmh: Option<i32>,
    pub first_fix_ms: Option<i64>,
    pub last_fix_ms: Option<i64>,
}

impl RollupValue {
    /// Adds `other`'s changes to this row's.
    pub fn merge(&mut self, other: &RollupValue) {
        self.trips += other.trips;
        self.distance_mm += other.distance_mm;
        self.moving_ms += other.moving_ms;
        self.idle_ms += other.idle_ms;
        self.fixes += other.fixes;
        self.speed_sum_dkmh += other.speed_sum_dkmh;
        self.max_speed_dkmh = self.max_speed_dkmh.max(other.max_speed_dkmh);
        self.first_fix_ms = match (self.first_fix_ms, other.first_fix_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_fix_ms = self.last_fix_ms.max(other.last_fix_ms);
    }

    /// Whether the change is none (a trip's old and new version cancelled out, no fix).
    pub fn is_zero(&self) -> bool {
        *self == RollupValue::default()
    }

    fn add_fix(&mut self, time_ms: i64, speed_dkmh: u16) {
        self.merge(&RollupValue {
            fixes: 1,
            speed_sum_dkmh: i64::from(speed_dkmh),
            max_speed_dkmh: Some(i32::from(speed_dkmh)),
            first_fix_ms: Some(time_ms),
            last_fix_ms: Some(time_ms),
            ..RollupValue::default()
        });
    }
}

/// A rollup row's key: company, vehicle (`None` in the company rollups), period start (ms).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    pub company: Arc<str>,
    pub vehicle: Option<Arc<str>>,
    pub start_ms: i64,
}

/// One window's changes per (company, vehicle, hour).
#[derive(Debug, Default)]
pub struct RollupChanges {
    hourly: HashMap<(Arc<str>, Arc<str>, i64), RollupValue>,
}

impl RollupChanges {
    pub fn is_empty(&self) -> bool {
        self.hourly.is_empty()
    }

    fn at(&mut self, company: &Arc<str>, vehicle: &Arc<str>, time_ms: i64) -> &mut RollupValue {
        let hour = time_ms.div_euclid(HOUR_MS) * HOUR_MS;
        self.hourly
            .entry((company.clone(), vehicle.clone(), hour))
            .or_default()
    }

    /// Adds the accepted fixes (neither invalid nor a jump) of `rows`.
    pub fn add_positions(&mut self, rows: &[PositionRow]) {
        // Rows come a record at a time: add each run of one vehicle and hour at once.
        let mut run: Option<(&PositionRow, i64, RollupValue)> = None;
        for p in rows {
            if p.flags & (flags::INVALID | flags::JUMP) != 0 {
                continue;
            }
            let hour = p.time_ms.div_euclid(HOUR_MS);
            match &mut run {
                Some((first, h, value)) if Arc::ptr_eq(&first.name, &p.name) && *h == hour => {
                    value.add_fix(p.time_ms, p.speed_dkmh);
                }
                _ => {
                    if let Some((first, _, value)) = run.take() {
                        self.at(&first.name.company, &first.name.vehicle, first.time_ms)
                            .merge(&value);
                    }
                    let mut value = RollupValue::default();
                    value.add_fix(p.time_ms, p.speed_dkmh);
                    run = Some((p, hour, value));
                }
            }
        }
        if let Some((first, _, value)) = run {
            self.at(&first.name.company, &first.name.vehicle, first.time_ms)
                .merge(&value);
        }
    }

    /// Adds trip changes: each trip counts (`diff` times) in the hour it started in.
    pub fn add_trips<'a>(&mut self, changes: impl IntoIterator<Item = (&'a TripRecord, isize)>) {
        for (record, diff) in changes {
            let trip = &record.trip;
            let diff = diff as i64;
            let distance = i64::try_from(trip.distance_mm).unwrap_or(i64::MAX);
            self.at(&record.company, &record.vehicle, trip.start_ms)
                .merge(&RollupValue {
                    trips: diff,
                    distance_mm: diff * distance,
                    moving_ms: diff * trip.moving_ms,
                    idle_ms: diff * trip.idle_ms,
                    ..RollupValue::default()
                });
        }
    }

    /// The changes of `rollup`, those that cancelled out left out, sorted as its files are:
    /// by vehicle (or company) and period start.
    pub fn rows(&self, rollup: Rollup) -> Vec<(RollupKey, RollupValue)> {
        let period = rollup.period_ms();
        let mut out: HashMap<RollupKey, RollupValue> = HashMap::new();
        for ((company, vehicle, hour), value) in &self.hourly {
            let key = RollupKey {
                company: company.clone(),
                vehicle: rollup.per_vehicle().then(|| vehicle.clone()),
                start_ms: hour.div_euclid(period) * period,
            };
            out.entry(key).or_default().merge(value);
        }
        let mut out: Vec<_> = out.into_iter().filter(|(_, v)| !v.is_zero()).collect();
        out.sort_unstable_by(|(a, _), (b, _)| {
            (&a.vehicle, a.start_ms, &a.company).cmp(&(&b.vehicle, b.start_ms, &b.company))
        });
        out
    }
}
