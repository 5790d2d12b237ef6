//! How to run the emulator: fleet size, target, seed, time compression, limits and reporting.

use std::time::Duration;

use crate::error::EmulatorError;

/// Options for [`crate::run`]. Build with struct-update syntax over `Default::default()`.
///
/// The simulated clock starts at `start_ms` (default: wall now) and runs `speedup` times faster
/// than the wall clock, so after a wall time `w` it is `(speedup - 1) * w` ahead of the server.
/// fleetflow refuses fixes more than 24 h in its future: for long high-speedup runs set
/// `start_ms` in the past, e.g. `now - (speedup - 1) * duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorConfig {
    /// Number of vehicles (terminals).
    pub vehicles: usize,
    /// Base URL, e.g. `http://127.0.0.1:8080`; `/api/v1/event-hub/{key-on,key-off,cycle-info}`
    /// are appended. Plain HTTP only.
    pub target: String,
    /// Same seed + vehicle index => same bodies (given the same `start_ms`).
    pub seed: u64,
    /// Simulated seconds per wall second; each vehicle posts every `60 / speedup` wall seconds.
    pub speedup: f64,
    /// Most requests per second across the fleet (retries included); `None` = unlimited.
    pub rate_limit: Option<f64>,
    /// Wall time to run; `None` = until the stop signal.
    pub duration: Option<Duration>,
    /// Sent as `Authorization: Bearer <token>` when set.
    pub token: Option<String>,
    /// Simulated start, ms since the epoch; `None` = now.
    pub start_ms: Option<i64>,
    /// Vehicle `i` has mdn `mdn_base + i`.
    pub mdn_base: i64,
    /// City centre (lat, lon) in degrees.
    pub center: (f64, f64),
    /// How often `on_report` is called.
    pub report_every: Duration,
    /// Width and height of the simulated street grid, metres.
    pub city_span_m: f64,
    /// Most requests in flight at once (bounds the open connections).
    pub max_in_flight: usize,
    /// Give up on an attempt (and retry it) after this long.
    pub request_timeout: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> EmulatorConfig {
        EmulatorConfig {
            vehicles: 100,
            target: "http://127.0.0.1:8080".to_owned(),
            seed: 1,
            speedup: 1.0,
            rate_limit: None,
            duration: None,
            token: None,
            start_ms: None,
            mdn_base: 2_254_690_000,
            center: (37.5665, 126.9780),
            report_every: Duration::from_secs(10),
            city_span_m: 12_000.0,
            max_in_flight: 512,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl EmulatorConfig {
    /// Checks the options that have no sensible meaning when out of range.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        let bad = |what: &str| Err(EmulatorError::BadConfig(what.to_owned()));
        if self.vehicles == 0 {
            return bad("vehicles must be at least 1");
        }
        if !(self.speedup.is_finite() && self.speedup > 0.0) {
            return bad("speedup must be a positive number");
        }
        if let Some(rate) = self.rate_limit
            && !(rate.is_finite() && rate > 0.0)
        {
            return bad("rate limit must be a positive number of requests per second");
        }
        let (lat, lon) = self.center;
        if !((-85.0..=85.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
            return bad("center must be a latitude within +-85 and a longitude within +-180");
        }
        if !(self.city_span_m.is_finite() && (1_000.0..=100_000.0).contains(&self.city_span_m)) {
            return bad("city span must be 1-100 km");
        }
        if self.report_every.is_zero() || self.request_timeout.is_zero() {
            return bad("report interval and request timeout must be positive");
        }
        if self.max_in_flight == 0 {
            return bad("max in flight must be at least 1");
        }
        let last = i64::try_from(self.vehicles).unwrap_or(i64::MAX);
        if self.mdn_base < 0 || self.mdn_base.checked_add(last).is_none() {
            return bad("mdn base must be non-negative and leave room for every vehicle");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_not() {
        assert!(EmulatorConfig::default().validate().is_ok());
        let bad = [
            EmulatorConfig {
                vehicles: 0,
                ..Default::default()
            },
            EmulatorConfig {
                speedup: 0.0,
                ..Default::default()
            },
            EmulatorConfig {
                speedup: f64::INFINITY,
                ..Default::default()
            },
            EmulatorConfig {
                rate_limit: Some(0.0),
                ..Default::default()
            },
            EmulatorConfig {
                center: (95.0, 0.0),
                ..Default::default()
            },
            EmulatorConfig {
                report_every: Duration::ZERO,
                ..Default::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }
}
