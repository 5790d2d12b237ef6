//! Delivery: one task per subscription POSTs the events its outbox owes, each with its own
//! retry schedule, so a slow or dead receiver holds up only its own subscription.
//!
//! Each event is one POST: `Content-Type: application/json`, `X-Fleetflow-Event-Id` (the same on
//! every retry), `X-Fleetflow-Event` (its kind), `X-Fleetflow-Attempt` and
//! `X-Fleetflow-Signature` (`sha256=` HMAC of the body with the subscription's secret). A 2xx
//! delivers it. A timeout, a connection error, 408, 429 and 5xx are retried after a backoff that
//! doubles from `initial_backoff_ms` up to `max_backoff_ms` (with up to 25% jitter; a 429's or
//! 503's `Retry-After` seconds, when longer, win); any other status (a 4xx, a redirect) is not
//! retried. After `max_attempts` the event goes to the dead-letter list, and the subscription
//! goes on with the next ones.
//!
//! A receiver that has failed every attempt for a whole retry window (the time `max_attempts`
//! attempts take) is **down**: its events are then dead-lettered without being sent, but for
//! one probe at a time, on the same doubling backoff; the first 2xx brings it back up. Without
//! that, a dead receiver would hold each event for the whole window, `max_pending` at a time,
//! and fall further behind with every event; with it, the dead-letter list fills as fast as the
//! events come. Events of one subscription may arrive out of order
//! (`max_pending` of them are in their retry schedules at once): receivers order by `time_ms`
//! and de-duplicate by event id.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use fleetflow_tables::commit_log::now_ms;

use crate::WebhookError;
use crate::config::WebhookConfig;
use crate::dispatch::{Mailbox, Mailboxes};
use crate::event::{WebhookEvent, signature};
use crate::stats::WebhookStats;
use crate::subscription::Subscription;

/// Dead letters kept in memory for `/status`.
const RECENT_DEAD_LETTERS: usize = 100;

/// An event given up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub subscription: String,
    pub company: String,
    pub url: String,
    pub attempts: u32,
    /// The last attempt's failure.
    pub error: String,
    pub at_ms: i64,
    pub event: WebhookEvent,
}

/// `<data-dir>/webhooks/dead_letters.jsonl`, appended, and the newest entries in memory.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    file: Mutex<File>,
    recent: Mutex<VecDeque<DeadLetter>>,
    total: AtomicU64,
}

impl DeadLetters {
    pub fn open(data_dir: &Path) -> Result<DeadLetters, WebhookError> {
        let dir = data_dir.join("webhooks");
        std::fs::create_dir_all(&dir).map_err(WebhookError::io(&dir))?;
        let path = dir.join("dead_letters.jsonl");
        let mut recent = VecDeque::new();
        let mut total = 0;
        if let Ok(text) = std::fs::read_to_string(&path) {
            // A line torn by a crash does not parse and is skipped.
            for letter in text
                .lines()
                .filter_map(|l| serde_json::from_str::<DeadLetter>(l).ok())
            {
                total += 1;
                recent.push_back(letter);
                if recent.len() > RECENT_DEAD_LETTERS {
                    recent.pop_front();
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(WebhookError::io(&path))?;
        Ok(DeadLetters {
            path,
            file: Mutex::new(file),
            recent: Mutex::new(recent),
            total: AtomicU64::new(total),
        })
    }

    fn push(&self, letter: DeadLetter) -> Result<(), WebhookError> {
        let mut line = serde_json::to_vec(&letter).expect("dead letters serialize");
        line.push(b'\n');
        self.file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(&line)
            .map_err(WebhookError::io(&self.path))?;
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.push_back(letter);
        if recent.len() > RECENT_DEAD_LETTERS {
            recent.pop_front();
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Every dead letter ever recorded in this data dir.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The newest dead letters, oldest first.
    pub fn recent(&self) -> Vec<DeadLetter> {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Every dead letter on disk (for SQL).
    pub fn read_all(&self) -> Vec<DeadLetter> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// What became of one event.
#[derive(Debug)]
enum Outcome {
    Delivered,
    Dead { attempts: u32, error: String },
}

/// What one delivery task needs.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub client: reqwest::Client,
    pub config: WebhookConfig,
    pub stats: Arc<WebhookStats>,
    pub dead_letters: Arc<DeadLetters>,
    pub mailboxes: Mailboxes,
}

impl Delivery {
    /// The HTTP client: no redirects followed (a POST must not turn into another request), a
    /// connect timeout, and the request timeout set per request.
    pub fn client(config: &WebhookConfig) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_millis(config.timeout_ms))
            .user_agent(concat!("fleetflow-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds")
    }

    /// Delivers `mailbox`'s events until `stop` or until its subscription is deleted.
    pub async fn run(self, mailbox: Arc<Mailbox>, mut stop: watch::Receiver<bool>) {
        let target = Arc::new(Target {
            sub: mailbox.subscription.clone(),
            requests: Semaphore::new(self.config.max_requests.max(1)),
            health: Mutex::new(Health::default()),
        });
        let mut running: JoinSet<(String, Finished)> = JoinSet::new();
        let sub = &target.sub;
        loop {
            let deleted = !self
                .mailboxes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&sub.id);
            if *stop.borrow() || deleted {
                // Unfinished events stay owed (a deleted subscription's outbox is gone).
                running.abort_all();
                return;
            }
            let room = self.config.max_pending.max(1).saturating_sub(running.len());
            let batch = mailbox
                .outbox
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(room);
            for event in batch {
                let (client, config, target, stats) = (
                    self.client.clone(),
                    self.config.clone(),
                    target.clone(),
                    self.stats.clone(),
                );
                running.spawn(async move {
                    let outcome = deliver(&client, &config, &target, &event, &stats).await;
                    (event.id.clone(), Finished { event, outcome })
                });
            }
            tokio::select! {
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Ok((id, outcome)) = done {
                        self.finish(&mailbox, sub, &id, outcome);
                    }
                }
                () = mailbox.wake.notified() => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        // Webhooks was dropped without `stop`: stop too.
                        running.abort_all();
                        return;
                    }
                }
            }
        }
    }

    fn finish(&self, mailbox: &Mailbox, sub: &Subscription, id: &str, outcome: Finished) {
        match outcome.outcome {
            Outcome::Delivered => self.stats.record_delivered(),
            Outcome::Dead { attempts, error } => {
                tracing::warn!(subscription = %sub.id, company = %sub.company, event = %id, attempts, %error, "webhook event dead-lettered");
                self.stats.record_dead_letter();
                let letter = DeadLetter {
                    subscription: sub.id.clone(),
                    company: sub.company.clone(),
                    url: sub.url.clone(),
                    attempts,
                    error,
                    at_ms: now_ms(),
                    event: outcome.event,
                };
                if let Err(error) = self.dead_letters.push(letter) {
                    // Not marked done: it is tried again after a restart.
                    tracing::error!(%error, "cannot record a dead letter");
                    return;
                }
            }
        }
        let completed = mailbox
            .outbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .complete(id);
        if let Err(error) = completed {
            tracing::error!(%error, "cannot record a delivered webhook event; it will be sent again");
        }
    }
}

/// An outcome with its event (a dead letter keeps the event).
#[derive(Debug)]
struct Finished {
    event: WebhookEvent,
    outcome: Outcome,
}

/// The wait before attempt `attempt + 1`: doubling from the initial backoff, capped, with up
/// to 25% added at random (so that a receiver's failures do not synchronise its retries).
pub fn backoff(config: &WebhookConfig, attempt: u32) -> Duration {
    let base = unjittered(config, attempt);
    let jitter = SmallRng::from_os_rng().random_range(0..=base.as_millis() as u64 / 4);
    base + Duration::from_millis(jitter)
}

fn unjittered(config: &WebhookConfig, attempt: u32) -> Duration {
    Duration::from_millis(
        config
            .initial_backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
            .min(config.max_backoff_ms),
    )
}

/// One subscription's receiver, as its delivery task sees it.
#[derive(Debug)]
struct Target {
    sub: Subscription,
    /// Its requests in flight.
    requests: Semaphore,
    health: Mutex<Health>,
}

impl Target {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether the receiver is down (see the module doc).
#[derive(Debug, Default)]
struct Health {
    /// Since when every attempt failed (`None`: the last answer was a success).
    failing_since: Option<Instant>,
    last_error: String,
    /// When a probe may next be sent, while down.
    next_probe: Option<Instant>,
    probes: u32,
    probing: bool,
}

/// May an attempt be made now?
#[derive(Debug, PartialEq, Eq)]
enum Admit {
    Send,
    /// Sent as the receiver's probe.
    Probe,
    /// Not sent: the receiver is down.
    Refuse(String),
}

impl Health {
    fn admit(&mut self, now: Instant, window: Duration) -> Admit {
        let Some(since) = self.failing_since else {
            return Admit::Send;
        };
        if now.duration_since(since) < window {
            return Admit::Send;
        }
        if !self.probing && self.next_probe.is_none_or(|at| now >= at) {
            self.probing = true;
            return Admit::Probe;
        }
        Admit::Refuse(format!(
            "not sent: the receiver has failed every attempt for {} s (last: {})",
            now.duration_since(since).as_secs(),
            self.last_error
        ))
    }

    fn answered(
        &mut self,
        failure: Option<&str>,
        probe: bool,
        config: &WebhookConfig,
        now: Instant,
    ) {
        match failure {
            None => {
                *self = Health::default();
            }
            Some(error) => {
                self.failing_since.get_or_insert(now);
                error.clone_into(&mut self.last_error);
                if probe {
                    self.probing = false;
                    self.probes += 1;
                    self.next_probe = Some(now + backoff(config, self.probes));
                }
            }
        }
    }
}

/// How long `max_attempts` attempts take at the least: the backoffs between them, unjittered.
pub fn retry_window(config: &WebhookConfig) -> Duration {
    (1..config.max_attempts.max(1))
        .map(|attempt| unjittered(config, attempt))
        .sum()
}

/// Sends one event until it is delivered, refused for good, or out of attempts.
async fn deliver(
    client: &reqwest::Client,
    config: &WebhookConfig,
    target: &Target,
    event: &WebhookEvent,
    stats: &WebhookStats,
) -> Outcome {
    let sub = &target.sub;
    let body = event.body(sub.format);
    let signed = signature(&sub.secret, &body);
    let attempts = config.max_attempts.max(1);
    let window = retry_window(config);
    let mut error = String::new();
    for attempt in 1..=attempts {
        let admitted = target.health().admit(Instant::now(), window);
        let probe = match admitted {
            Admit::Send => false,
            Admit::Probe => true,
            Admit::Refuse(why) => {
                return Outcome::Dead {
                    attempts: attempt - 1,
                    error: why,
                };
            }
        };
        let response = {
            let _permit = target.requests.acquire().await;
            client
                .post(&sub.url)
                .header(CONTENT_TYPE, "application/json")
                .header("X-Fleetflow-Event-Id", &event.id)
                .header("X-Fleetflow-Event", &event.kind)
                .header("X-Fleetflow-Attempt", attempt.to_string())
                .header("X-Fleetflow-Signature", &signed)
                .timeout(Duration::from_millis(config.timeout_ms))
                .body(body.clone())
                .send()
                .await
        };
        let mut wait = backoff(config, attempt);
        let failure = match response {
            Ok(r) if r.status().is_success() => None,
            Ok(r) if retryable(r.status()) => {
                let after = r
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| {
                        Duration::from_secs(s).min(Duration::from_millis(config.max_backoff_ms))
                    });
                wait = wait.max(after.unwrap_or_default());
                Some(format!("HTTP {}", r.status()))
            }
            Ok(r) => {
                // The receiver answers: it is up, and refuses this event for good.
                target
                    .health()
                    .answered(None, probe, config, Instant::now());
                stats.record_failed_attempt();
                return Outcome::Dead {
                    attempts: attempt,
                    error: format!("HTTP {} (not retried)", r.status()),
                };
            }
            Err(e) if e.is_timeout() => Some("timed out".to_owned()),
            Err(e) => Some(format!("request failed: {}", root_cause(&e))),
        };
        target
            .health()
            .answered(failure.as_deref(), probe, config, Instant::now());
        let Some(failure) = failure else {
            return Outcome::Delivered;
        };
        error = failure;
        stats.record_failed_attempt();
        if attempt < attempts {
            tokio::time::sleep(wait).await;
        }
    }
    Outcome::Dead { attempts, error }
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// The innermost cause of a request error (reqwest's own message is generic).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_failing_for_a_whole_window_is_down_but_for_probes() {
        let config = WebhookConfig {
            max_attempts: 4,
            initial_backoff_ms: 100,
            max_backoff_ms: 300,
            ..WebhookConfig::default()
        };
        let window = retry_window(&config);
        assert_eq!(window, Duration::from_millis(100 + 200 + 300));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut h = Health::default();
        assert_eq!(h.admit(at(0), window), Admit::Send);
        h.answered(Some("HTTP 503"), false, &config, at(0));
        assert_eq!(
            h.admit(at(500), window),
            Admit::Send,
            "failing, not yet down"
        );
        assert_eq!(h.admit(at(600), window), Admit::Probe, "down: one probe");
        assert!(
            matches!(h.admit(at(600), window), Admit::Refuse(e) if e.contains("HTTP 503")),
            "the rest are refused"
        );
        h.answered(Some("timed out"), true, &config, at(700));
        assert!(
            matches!(h.admit(at(750), window), Admit::Refuse(_)),
            "the next probe waits"
        );
        assert_eq!(h.admit(at(900), window), Admit::Probe);
        h.answered(None, true, &config, at(950));
        assert_eq!(h.admit(at(950), window), Admit::Send, "a 2xx: up again");
    }
}
