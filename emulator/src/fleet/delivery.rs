//! Getting one event delivered: rate limit, in-flight cap, POST, and the retry policy.
//!
//! - 2xx: done (2xx with `"isSuccess":false` counts as a `rejected` error, not retried);
//! - 503 or 429: wait `Retry-After` seconds (else a short backoff) and resend the same body;
//! - connection error or timeout: back off and resend the same body (downstream is idempotent);
//! - other 5xx: resend up to [`MAX_SERVER_ERROR_RETRIES`] times, then give up;
//! - any other status (4xx): counted by status and not retried; the first few bodies are logged.
//!
//! Every failed attempt is counted under its class; waiting stops as soon as the run halts, but a
//! request already sent is always awaited and counted.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use crate::device::device_event::DeviceEvent;
use crate::fleet::http_client::{MonicarClient, PostOutcome};
use crate::fleet::rate_limit::RateLimiter;
use crate::fleet::report::ErrorClass;
use crate::fleet::stats::LiveStats;
use crate::world::seed_mix::mix_all;

/// Resends of a request answered with a 5xx other than 503.
pub const MAX_SERVER_ERROR_RETRIES: u32 = 3;
/// Failure bodies logged per run.
const WARN_FIRST: u32 = 10;
/// Backoff without Retry-After: 250 ms doubling to 10 s, plus up to 250 ms of jitter.
const BACKOFF_BASE_MS: u64 = 250;
const BACKOFF_MAX_MS: u64 = 10_000;

/// What every vehicle task shares.
#[derive(Debug)]
pub struct Delivery {
    pub client: MonicarClient,
    pub stats: Arc<LiveStats>,
    pub rate: Option<RateLimiter>,
    pub in_flight: Semaphore,
}

/// Resolves once `halt` turns true; never if its sender is gone without saying so.
pub async fn halted(halt: &mut watch::Receiver<bool>) {
    if halt.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Delivery {
    /// Sends `event` until it is delivered or given up on; `false` if the run halted first.
    pub async fn deliver(&self, event: &DeviceEvent, halt: &mut watch::Receiver<bool>) -> bool {
        let mut failures = 0u32;
        loop {
            if let Some(rate) = &self.rate {
                tokio::select! {
                    biased;
                    () = halted(halt) => return false,
                    () = rate.acquire() => {}
                }
            }
            let permit = tokio::select! {
                biased;
                () = halted(halt) => return false,
                permit = self.in_flight.acquire() => permit,
            };
            // A request on the wire is never abandoned at a halt: the server may ack it, and an
            // acked request the report does not count would look like a doubled point.
            let outcome = match permit {
                Ok(_permit) => self.client.post(event).await,
                Err(_) => return false,
            };
            let Some(wait) = self.settle(event, outcome, failures) else {
                return true;
            };
            failures += 1;
            self.stats.retry();
            tokio::select! {
                biased;
                () = halted(halt) => return false,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Counts an attempt's outcome; `Some(wait)` if the event should be resent after `wait`.
    fn settle(&self, event: &DeviceEvent, outcome: PostOutcome, failures: u32) -> Option<Duration> {
        let stats = &self.stats;
        match outcome {
            PostOutcome::Success { latency } => {
                stats.latency(latency);
                stats.success(event.points);
                None
            }
            PostOutcome::Rejected { latency, body } => {
                stats.latency(latency);
                stats.error(ErrorClass::Rejected);
                stats.drop_request();
                self.warn(event, "rejected", &body);
                None
            }
            PostOutcome::Status {
                status,
                retry_after,
                body,
                latency,
            } => {
                stats.latency(latency);
                stats.error(ErrorClass::Status(status));
                match status {
                    503 | 429 => Some(retry_after.unwrap_or_else(|| backoff(event, failures))),
                    500..=599 if failures < MAX_SERVER_ERROR_RETRIES => {
                        Some(retry_after.unwrap_or_else(|| backoff(event, failures)))
                    }
                    _ => {
                        stats.drop_request();
                        self.warn(event, &status.to_string(), &body);
                        None
                    }
                }
            }
            PostOutcome::Connection(error) => {
                stats.error(ErrorClass::Connection);
                if stats.should_warn(WARN_FIRST) {
                    tracing::warn!(endpoint = event.endpoint.path(), %error, "connection error; retrying");
                }
                Some(backoff(event, failures))
            }
            PostOutcome::Timeout => {
                stats.error(ErrorClass::Timeout);
                Some(backoff(event, failures))
            }
        }
    }

    fn warn(&self, event: &DeviceEvent, class: &str, body: &[u8]) {
        if self.stats.should_warn(WARN_FIRST) {
            let shown = &body[..body.len().min(500)];
            tracing::warn!(
                endpoint = event.endpoint.path(),
                class,
                body = %String::from_utf8_lossy(shown),
                "request refused; not retried"
            );
        }
    }
}

/// Exponential backoff with per-request jitter.
fn backoff(event: &DeviceEvent, failures: u32) -> Duration {
    let exp = BACKOFF_BASE_MS.saturating_mul(1u64 << failures.min(16));
    let jitter = mix_all(event.seq, &[u64::from(failures), event.at_ms as u64]) % BACKOFF_BASE_MS;
    Duration::from_millis(exp.min(BACKOFF_MAX_MS) + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::device_event::Endpoint;
    use bytes::Bytes;

    #[test]
    fn backoff_grows_and_is_capped() {
        let event = DeviceEvent {
            at_ms: 5,
            endpoint: Endpoint::CycleInfo,
            body: Bytes::new(),
            points: 60,
            seq: 1,
            tuid: String::new(),
        };
        let first = backoff(&event, 0);
        assert!(first >= Duration::from_millis(250) && first < Duration::from_millis(500));
        assert!(backoff(&event, 3) >= Duration::from_secs(2));
        assert!(backoff(&event, 40) <= Duration::from_millis(10_250));
    }
}
