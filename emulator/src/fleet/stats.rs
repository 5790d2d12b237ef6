//! Live counters every vehicle task updates (atomics, plus one latency histogram behind a mutex),
//! and the reporter that turns them into interval and cumulative [`Report`]s.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::fleet::report::{ErrorClass, Report, Totals};

/// Status codes are counted in an array indexed by code.
const STATUS_SLOTS: usize = 600;
/// Latencies are recorded in microseconds up to an hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Shared counters, updated lock-free except for latency.
#[derive(Debug)]
pub struct LiveStats {
    requests_ok: AtomicU64,
    points_ok: AtomicU64,
    retries: AtomicU64,
    dropped: AtomicU64,
    by_status: Box<[AtomicU64]>,
    connection: AtomicU64,
    timeout: AtomicU64,
    rejected: AtomicU64,
    /// Latency since the reporter last drained it, microseconds.
    latency: Mutex<Histogram<u64>>,
    warnings: AtomicU32,
}

/// A latency histogram with the emulator's bounds.
pub fn latency_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
}

impl LiveStats {
    pub fn new() -> Result<LiveStats, hdrhistogram::CreationError> {
        Ok(LiveStats {
            requests_ok: AtomicU64::new(0),
            points_ok: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            connection: AtomicU64::new(0),
            timeout: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            latency: Mutex::new(latency_histogram()?),
            warnings: AtomicU32::new(0),
        })
    }

    pub fn success(&self, points: u32) {
        self.requests_ok.fetch_add(1, Ordering::Relaxed);
        self.points_ok
            .fetch_add(u64::from(points), Ordering::Relaxed);
    }

    pub fn error(&self, class: ErrorClass) {
        let counter = match class {
            ErrorClass::Status(code) => self
                .by_status
                .get(usize::from(code))
                .unwrap_or(&self.by_status[0]),
            ErrorClass::Connection => &self.connection,
            ErrorClass::Timeout => &self.timeout,
            ErrorClass::Rejected => &self.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn drop_request(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saturating_record(micros);
    }

    /// True for the first few calls: whether a failure body should still be logged.
    pub fn should_warn(&self, first: u32) -> bool {
        self.warnings.fetch_add(1, Ordering::Relaxed) < first
    }

    /// Cumulative counts (latency fields left at zero).
    fn counts(&self) -> Totals {
        let mut totals = Totals {
            requests_ok: self.requests_ok.load(Ordering::Relaxed),
            points_ok: self.points_ok.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            ..Totals::default()
        };
        for (code, counter) in self.by_status.iter().enumerate() {
            let n = counter.load(Ordering::Relaxed);
            if n > 0 {
                let code = u16::try_from(code).unwrap_or(0);
                totals.errors.insert(ErrorClass::Status(code), n);
            }
        }
        for (class, counter) in [
            (ErrorClass::Connection, &self.connection),
            (ErrorClass::Timeout, &self.timeout),
            (ErrorClass::Rejected, &self.rejected),
        ] {
            let n = counter.load(Ordering::Relaxed);
            if n > 0 {
                totals.errors.insert(class, n);
            }
        }
        totals
    }
}

/// Differences successive snapshots of [`LiveStats`] into reports.
#[derive(Debug)]
pub struct Reporter {
    vehicles: usize,
    previous: Totals,
    previous_elapsed: Duration,
    total_latency: Histogram<u64>,
    interval_latency: Histogram<u64>,
}

impl Reporter {
    pub fn new(vehicles: usize) -> Result<Reporter, hdrhistogram::CreationError> {
        Ok(Reporter {
            vehicles,
            previous: Totals::default(),
            previous_elapsed: Duration::ZERO,
            total_latency: latency_histogram()?,
            interval_latency: latency_histogram()?,
        })
    }

    /// The report for the interval since the previous call, at `elapsed` wall time.
    pub fn interval(&mut self, stats: &LiveStats, elapsed: Duration, sim_time_ms: i64) -> Report {
        self.interval_latency.reset();
        {
            let mut live = stats.latency.lock().unwrap_or_else(|e| e.into_inner());
            // Same bounds on both sides, so adding cannot fail.
            let _ = self.interval_latency.add(&*live);
            live.reset();
        }
        let _ = self.total_latency.add(&self.interval_latency);
        let mut cumulative = stats.counts();
        fill_latency(&mut cumulative, &self.total_latency);
        let mut interval = difference(&cumulative, &self.previous);
        fill_latency(&mut interval, &self.interval_latency);
        let window = elapsed.saturating_sub(self.previous_elapsed);
        self.previous = cumulative.clone();
        self.previous_elapsed = elapsed;
        Report {
            elapsed,
            window,
            vehicles: self.vehicles,
            sim_time_ms,
            interval,
            cumulative,
        }
    }

    /// The final report: the whole run as one window.
    pub fn finish(mut self, stats: &LiveStats, elapsed: Duration, sim_time_ms: i64) -> Report {
        let mut report = self.interval(stats, elapsed, sim_time_ms);
        report.window = elapsed;
        report.interval = report.cumulative.clone();
        report
    }
}

fn fill_latency(totals: &mut Totals, histogram: &Histogram<u64>) {
    if histogram.is_empty() {
        return;
    }
    let ms = |us: u64| us as f64 / 1_000.0;
    totals.p50_ms = ms(histogram.value_at_quantile(0.5));
    totals.p99_ms = ms(histogram.value_at_quantile(0.99));
    totals.max_ms = ms(histogram.max());
}

fn difference(now: &Totals, before: &Totals) -> Totals {
    let mut errors = now.errors.clone();
    for (class, count) in errors.iter_mut() {
        *count = count.saturating_sub(before.errors_of(*class));
    }
    errors.retain(|_, count| *count > 0);
    Totals {
        requests_ok: now.requests_ok.saturating_sub(before.requests_ok),
        points_ok: now.points_ok.saturating_sub(before.points_ok),
        errors,
        retries: now.retries.saturating_sub(before.retries),
        dropped: now.dropped.saturating_sub(before.dropped),
        ..Totals::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_cumulative() {
        let stats = LiveStats::new().unwrap();
        let mut reporter = Reporter::new(5).unwrap();
        stats.success(60);
        stats.success(0);
        stats.error(ErrorClass::Status(503));
        stats.latency(Duration::from_millis(2));
        let first = reporter.interval(&stats, Duration::from_secs(1), 0);
        assert_eq!(first.interval.requests_ok, 2);
        assert_eq!(first.interval.points_ok, 60);
        assert_eq!(first.interval.errors_of(ErrorClass::Status(503)), 1);
        assert!((first.interval.p50_ms - 2.0).abs() < 0.01);
        stats.success(60);
        stats.error(ErrorClass::Connection);
        let second = reporter.interval(&stats, Duration::from_secs(3), 0);
        assert_eq!(second.window, Duration::from_secs(2));
        assert_eq!(second.interval.requests_ok, 1);
        assert_eq!(second.interval.error_count(), 1);
        assert_eq!(second.interval.p50_ms, 0.0);
        assert_eq!(second.cumulative.requests_ok, 3);
        assert_eq!(second.cumulative.error_count(), 2);
        let last = reporter.finish(&stats, Duration::from_secs(4), 0);
        assert_eq!(last.window, Duration::from_secs(4));
        assert_eq!(last.interval.points_ok, 120);
        assert!((last.cumulative.p50_ms - 2.0).abs() < 0.01);
    }
}
