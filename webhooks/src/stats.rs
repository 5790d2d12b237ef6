//! Counters for `/metrics` and `/status`.

use std::sync::atomic::{AtomicU64, Ordering};

/// What webhooks did since the process started.
#[derive(Debug, Default)]
pub struct WebhookStats {
    dispatched: AtomicU64,
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    dead_lettered: AtomicU64,
    skipped_commits: AtomicU64,
    owed: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebhookCounts {
    /// Events appended to outboxes (one per subscription that wants it).
    pub dispatched: u64,
    /// Events a receiver accepted (2xx).
    pub delivered: u64,
    /// Attempts that failed (each retry counts).
    pub failed_attempts: u64,
    /// Events given up on, into the dead-letter list.
    pub dead_lettered: u64,
    /// Commits trimmed before the dispatcher read them (their events were not sent).
    pub skipped_commits: u64,
    /// Events owed now, over all subscriptions.
    pub owed: u64,
}

impl WebhookStats {
    pub fn record_dispatched(&self, n: u64) {
        self.dispatched.fetch_add(n, Ordering::Relaxed);
    }

    pub fn record_delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_failed_attempt(&self) {
        self.failed_attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_dead_letter(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_skipped_commits(&self, n: u64) {
        self.skipped_commits.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set_owed(&self, n: u64) {
        self.owed.store(n, Ordering::Relaxed);
    }

    pub fn counts(&self) -> WebhookCounts {
        WebhookCounts {
            dispatched: self.dispatched.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            skipped_commits: self.skipped_commits.load(Ordering::Relaxed),
            owed: self.owed.load(Ordering::Relaxed),
        }
    }
}
