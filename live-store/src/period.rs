//! The periods live totals and leaderboards cover: the current UTC day and week (weeks start on
//! Monday); a trip counts toward the day and week it started in. The dataflow keeps the totals
//! (`fleetflow_pipeline::live::period_totals`).

use serde::{Deserialize, Serialize};

use crate::Epoch;

pub const DAY_MS: u64 = 86_400_000;
pub const WEEK_MS: u64 = 7 * DAY_MS;

/// (company, vehicle).
pub type VehicleKey = (std::sync::Arc<str>, std::sync::Arc<str>);

/// Which period a total or leaderboard covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Period {
    /// The current UTC day.
    Today,
    /// The current UTC week (from Monday).
    Week,
}

impl Period {
    pub const ALL: [Period; 2] = [Period::Today, Period::Week];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Today => "today",
            Period::Week => "week",
        }
    }

    pub fn parse(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == s)
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

    /// Where the period's entry is in per-period arrays.
    pub fn index(self) -> usize {
        match self {
            Period::Today => 0,
            Period::Week => 1,
        }
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
