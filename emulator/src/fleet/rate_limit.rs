//! A global request-rate limit shared by every vehicle: each request reserves the next free slot
//! on an evenly spaced schedule (GCRA) and waits for it; a short burst allowance absorbs timer
//! granularity without letting an idle period build up credit.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Paces callers to at most `rate` acquisitions per second.
#[derive(Debug)]
pub struct RateLimiter {
    period: Duration,
    burst: Duration,
    next_slot: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter for `per_second` > 0 requests per second; `None` for a non-positive or
    /// non-finite rate.
    pub fn new(per_second: f64) -> Option<RateLimiter> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return None;
        }
        let period = Duration::from_secs_f64(1.0 / per_second);
        Some(RateLimiter {
            period,
            // Up to 10 ms (or one request) may go at once.
            burst: period.max(Duration::from_millis(10)),
            next_slot: Mutex::new(None),
        })
    }

    /// Reserves the next slot and returns the instant it starts.
    pub fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut next = self.next_slot.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = now.checked_sub(self.burst).unwrap_or(now);
        let slot = next.map_or(now, |n| n.max(earliest));
        *next = Some(slot + self.period);
        slot.max(now)
    }

    /// Waits for the next free slot.
    pub async fn acquire(&self) {
        let slot = self.reserve();
        if slot > Instant::now() {
            tokio::time::sleep_until(slot).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_nonsense_rates() {
        assert!(RateLimiter::new(0.0).is_none());
        assert!(RateLimiter::new(-1.0).is_none());
        assert!(RateLimiter::new(f64::NAN).is_none());
    }

    #[test]
    fn reserves_evenly_spaced_slots() {
        let limiter = RateLimiter::new(100.0).unwrap();
        let slots: Vec<Instant> = (0..201).map(|_| limiter.reserve()).collect();
        let span = slots[200] - slots[0];
        assert!(span >= Duration::from_millis(1_990), "{span:?}");
        assert!(span <= Duration::from_millis(2_010), "{span:?}");
        assert!(slots.windows(2).all(|w| w[1] >= w[0]));
    }
}
