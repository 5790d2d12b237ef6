//! The simulated clock: it starts at a chosen epoch time and runs `speedup` times faster than the
//! wall clock; it maps simulated send times to the wall instants they fall due.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Longest wall wait the clock will compute (about 10 years), so far times never overflow.
const MAX_WAIT_SECS: f64 = 3.0e8;

/// Simulated time = `start_ms + speedup * (wall now - wall_start)`.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    wall_start: Instant,
    start_ms: i64,
    speedup: f64,
}

impl SimClock {
    /// A clock reading `start_ms` now and advancing `speedup` simulated seconds per wall second.
    pub fn new(start_ms: i64, speedup: f64) -> SimClock {
        SimClock {
            wall_start: Instant::now(),
            start_ms,
            speedup,
        }
    }

    /// The wall instant the clock started.
    pub fn wall_start(&self) -> Instant {
        self.wall_start
    }

    /// The simulated start, ms since the epoch.
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// Simulated now, ms since the epoch.
    pub fn sim_now_ms(&self) -> i64 {
        let wall_ms = self.wall_start.elapsed().as_secs_f64() * 1_000.0;
        self.start_ms + (wall_ms * self.speedup) as i64
    }

    /// The wall instant at which the simulated clock reads `sim_ms` (now or earlier if past).
    pub fn wall_due(&self, sim_ms: i64) -> Instant {
        let ahead_ms = sim_ms.saturating_sub(self.start_ms).max(0) as f64;
        let secs = (ahead_ms / 1_000.0 / self.speedup).min(MAX_WAIT_SECS);
        let wait = Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO);
        self.wall_start.checked_add(wait).unwrap_or(self.wall_start)
    }
}

/// Wall-clock now, ms since the epoch.
pub fn now_epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_simulated_to_wall_time() {
        let clock = SimClock::new(1_000_000, 60.0);
        assert_eq!(clock.wall_due(1_000_000), clock.wall_start());
        assert_eq!(clock.wall_due(0), clock.wall_start());
        let due = clock.wall_due(1_000_000 + 60_000) - clock.wall_start();
        assert_eq!(due, Duration::from_secs(1));
        assert!(clock.sim_now_ms() >= 1_000_000);
        assert!(now_epoch_ms() > 1_600_000_000_000);
    }
}
