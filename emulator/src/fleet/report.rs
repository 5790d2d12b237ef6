//! What the emulator reports: per-interval and cumulative counts, error classes and latency, with
//! a one-line `Display` for the live console.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    /// An HTTP status outside 2xx.
    Status(u16),
    /// Could not connect, or the connection broke.
    Connection,
    /// No answer within the request timeout.
    Timeout,
    /// 2xx with `"isSuccess":false` (Monicar's own way of failing).
    Rejected,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorClass::Status(code) => write!(f, "{code}"),
            ErrorClass::Connection => f.write_str("conn"),
            ErrorClass::Timeout => f.write_str("timeout"),
            ErrorClass::Rejected => f.write_str("rejected"),
        }
    }
}

/// Counts over some span of time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Requests answered with success.
    pub requests_ok: u64,
    /// GPS points in those requests.
    pub points_ok: u64,
    /// Failed attempts by class (a retried request counts once per failed attempt).
    pub errors: BTreeMap<ErrorClass, u64>,
    /// Attempts repeated after a 503/429, 5xx, connection error or timeout.
    pub retries: u64,
    /// Requests given up on (4xx, rejected, or 5xx after the retry budget).
    pub dropped: u64,
    /// Latency of answered attempts, milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Totals {
    /// All failed attempts.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Failed attempts of one class.
    pub fn errors_of(&self, class: ErrorClass) -> u64 {
        self.errors.get(&class).copied().unwrap_or(0)
    }
}

/// A live or final report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Wall time since the run started.
    pub elapsed: Duration,
    /// Wall time `interval` covers (for the final report: the whole run).
    pub window: Duration,
    pub vehicles: usize,
    /// The simulated clock, ms since the epoch.
    pub sim_time_ms: i64,
    /// This interval's counts and latency.
    pub interval: Totals,
    /// Everything since the start.
    pub cumulative: Totals,
}

impl Report {
    /// Successful requests per wall second over the window.
    pub fn requests_per_sec(&self) -> f64 {
        per_sec(self.interval.requests_ok, self.window)
    }

    /// GPS points delivered per wall second over the window.
    pub fn points_per_sec(&self) -> f64 {
        per_sec(self.interval.points_ok, self.window)
    }
}

fn per_sec(count: u64, window: Duration) -> f64 {
    let secs = window.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = &self.cumulative;
        write!(
            f,
            "t={:.0}s vehicles={} req/s={:.0} points/s={:.0} ok={} points={} err={} (503:{} conn:{}",
            self.elapsed.as_secs_f64(),
            self.vehicles,
            self.requests_per_sec(),
            self.points_per_sec(),
            total.requests_ok,
            total.points_ok,
            total.error_count(),
            total.errors_of(ErrorClass::Status(503)),
            total.errors_of(ErrorClass::Connection),
        )?;
        for (class, count) in &total.errors {
            if !matches!(class, ErrorClass::Status(503) | ErrorClass::Connection) {
                write!(f, " {class}:{count}")?;
            }
        }
        write!(
            f,
            ") retries={} dropped={} p50={:.1}ms p99={:.1}ms sim=",
            total.retries, total.dropped, self.interval.p50_ms, self.interval.p99_ms
        )?;
        let mut stamp = Vec::with_capacity(14);
        crate::device::monicar_body::write_compact_time(&mut stamp, self.sim_time_ms);
        f.write_str(std::str::from_utf8(&stamp).unwrap_or("?"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_compact_line() {
        let mut cumulative = Totals {
            requests_ok: 2_500,
            points_ok: 150_000,
            ..Totals::default()
        };
        cumulative.errors.insert(ErrorClass::Status(400), 2);
        cumulative.errors.insert(ErrorClass::Status(503), 1);
        let interval = Totals {
            requests_ok: 2_500,
            points_ok: 150_000,
            p50_ms: 2.14,
            p99_ms: 9.81,
            ..Totals::default()
        };
        let report = Report {
            elapsed: Duration::from_secs(10),
            window: Duration::from_secs(10),
            vehicles: 15_000,
            sim_time_ms: 1_739_873_730_000,
            interval,
            cumulative,
        };
        assert_eq!(
            report.to_string(),
            "t=10s vehicles=15000 req/s=250 points/s=15000 ok=2500 points=150000 err=3 (503:1 conn:0 400:2) \
             retries=0 dropped=0 p50=2.1ms p99=9.8ms sim=20250218101530"
        );
    }
}
