//! `[webhooks]`: retries, timeouts and concurrency of delivery.

use serde::{Deserialize, Serialize};

/// `[webhooks]` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Deliver webhooks (the `/v1/webhooks` API is served either way).
    pub enabled: bool,
    /// Attempts per event before it is dead-lettered.
    pub max_attempts: u32,
    /// Wait after the first failed attempt, ms; it doubles with each further one.
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts, ms.
    pub max_backoff_ms: u64,
    /// Per attempt (connect and response), ms.
    pub timeout_ms: u64,
    /// How often the dispatcher looks for new commits and subscription changes, ms.
    pub poll_ms: u64,
    /// Events of one subscription in their retry schedules at once.
    pub max_pending: usize,
    /// Requests of one subscription in flight at once.
    pub max_requests: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: true,
            max_attempts: 8,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 300_000,
            timeout_ms: 10_000,
            poll_ms: 500,
            max_pending: 256,
            max_requests: 4,
        }
    }
}
