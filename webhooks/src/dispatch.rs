//! The dispatcher: reads each new commit's `events` files, in commit order, and appends every
//! event to the outbox of each subscription that wants it; then records the commit as
//! dispatched (`<data-dir>/webhooks/dispatched.json`) and advances its [`ReadHold`], which
//! keeps compaction and trimming off the commits it has not read.
//!
//! A crash between the appends and the record re-reads that commit: outboxes ignore ids they
//! hold, so nothing is owed twice. The live store's offline and milestone alerts, which follow
//! the dataflow's clock, are dispatched from the store's alert feed
//! ([`Dispatcher::dispatch_alerts`]); `offline` reaches the event log too, when the vehicle is
//! heard again, under the same id. A subscription receives the events of the commits
//! dispatched after it was created. On the first start the dispatcher begins after the newest
//! commit: history from before webhooks existed is not sent.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fleetflow_live_store::LiveStore;
use fleetflow_model::Table;
use fleetflow_tables::commit_log::{CommitError, CommitLog, ReadHold};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::WebhookError;
use crate::event::{WebhookEvent, read_events_file};
use crate::outbox::Outbox;
use crate::stats::WebhookStats;
use crate::subscription::{LIVE_ALERT_KINDS, Subscription, Subscriptions};

/// `dispatched.json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Every commit up to this one is in the outboxes.
    seq: u64,
}

/// One subscription's outbox and the signal that wakes its delivery task.
#[derive(Debug)]
pub struct Mailbox {
    pub subscription: Subscription,
    pub outbox: Mutex<Outbox>,
    pub wake: Notify,
}

/// The open outboxes, by subscription id.
pub type Mailboxes = Arc<Mutex<BTreeMap<String, Arc<Mailbox>>>>;

/// Reads commits (and the live store's alerts) into outboxes.
#[derive(Debug)]
pub struct Dispatcher {
    log: CommitLog,
    /// The live store, where the pipeline runs in this process: its offline, online and
    /// milestone alerts.
    live: Option<Arc<LiveStore>>,
    /// The newest live alert dispatched (the store's alert sequence starts anew with the
    /// process).
    alert_cursor: AtomicU64,
    subscriptions: Arc<Subscriptions>,
    mailboxes: Mailboxes,
    hold: ReadHold,
    cursor_path: PathBuf,
    outbox_dir: PathBuf,
    stats: Arc<WebhookStats>,
}

impl Dispatcher {
    /// The hold to give the pipeline's commit log before it starts: at the recorded cursor,
    /// or at the newest commit on the first start (which is then recorded).
    pub fn initial_hold(data_dir: &Path) -> Result<ReadHold, WebhookError> {
        let path = cursor_path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let cursor: Cursor = serde_json::from_slice(&bytes)
                    .map_err(|source| WebhookError::Corrupt { path, source })?;
                Ok(ReadHold::new(cursor.seq))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let newest = CommitLog::new(data_dir)
                    .sequence_numbers()
                    .map_err(commit_error)?
                    .last()
                    .copied()
                    .unwrap_or(0);
                write_cursor(&path, Cursor { seq: newest })?;
                Ok(ReadHold::new(newest))
            }
            Err(e) => Err(WebhookError::io(path)(e)),
        }
    }

    pub fn new(
        data_dir: &Path,
        hold: ReadHold,
        live: Option<Arc<LiveStore>>,
        subscriptions: Arc<Subscriptions>,
        mailboxes: Mailboxes,
        stats: Arc<WebhookStats>,
    ) -> Dispatcher {
        Dispatcher {
            log: CommitLog::new(data_dir),
            live,
            alert_cursor: AtomicU64::new(0),
            subscriptions,
            mailboxes,
            hold,
            cursor_path: cursor_path(data_dir),
            outbox_dir: data_dir.join("webhooks").join("outbox"),
            stats,
        }
    }

    /// Opens outboxes of new subscriptions and removes those of deleted ones; returns the
    /// mailboxes opened (their delivery tasks are to be started).
    pub fn sync_subscriptions(&self) -> Result<Vec<Arc<Mailbox>>, WebhookError> {
        let subs = self.subscriptions.reload_if_changed()?;
        let mut boxes = self.mailboxes.lock().unwrap_or_else(|e| e.into_inner());
        let mut opened = Vec::new();
        for sub in subs.iter() {
            if !boxes.contains_key(&sub.id) {
                let outbox = Outbox::open(&self.outbox_dir.join(&sub.id))?;
                let mailbox = Arc::new(Mailbox {
                    subscription: sub.clone(),
                    outbox: Mutex::new(outbox),
                    wake: Notify::new(),
                });
                boxes.insert(sub.id.clone(), mailbox.clone());
                opened.push(mailbox);
            }
        }
        let gone: Vec<String> = boxes
            .keys()
            .filter(|id| !subs.iter().any(|s| &s.id == *id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(mailbox) = boxes.remove(&id) {
                // Its delivery task sees the mailbox gone and stops.
                mailbox.wake.notify_one();
            }
            Outbox::remove(&self.outbox_dir.join(&id))?;
        }
        Ok(opened)
    }

    /// Dispatches every commit after the cursor whose files are in place; returns how many
    /// commits it dispatched.
    pub fn dispatch_pending(&self) -> Result<usize, WebhookError> {
        let from = self.hold.get();
        let seqs: Vec<u64> = self
            .log
            .sequence_numbers()
            .map_err(commit_error)?
            .into_iter()
            .filter(|s| *s > from)
            .collect();
        if let Some(first) = seqs.first()
            && *first > from + 1
            && from > 0
        {
            // Only when no hold kept them (the dispatcher was not running beside the pipeline).
            self.stats.record_skipped_commits(first - from - 1);
            tracing::warn!(
                from = from + 1,
                to = first - 1,
                "webhooks: commits were trimmed before they were dispatched; their events are not sent"
            );
        }
        let newest = seqs.last().copied();
        let newest = newest.as_ref();
        let mut done = 0;
        for seq in seqs.iter().copied() {
            let commit = match self.log.read(seq) {
                Ok(c) => c,
                Err(e) => return Err(commit_error(e)),
            };
            // Compaction commits re-write rows already dispatched; with no subscription there
            // is no one to read for.
            let anyone = !self
                .mailboxes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty();
            if commit.removed.is_empty() && anyone {
                let mut events = Vec::new();
                for file in commit
                    .added
                    .iter()
                    .filter(|f| f.table == Table::Events.name())
                {
                    // A durable commit's files are renamed into place right after it: until
                    // then they are under their staged name.
                    let data_dir = self.log.data_dir();
                    let path = [&file.path, &file.staged]
                        .into_iter()
                        .map(|p| data_dir.join(p))
                        .find(|p| p.exists());
                    match path {
                        Some(path) => events.extend(read_events_file(&path)?),
                        // The newest commit: its renames may still be under way.
                        None if Some(&seq) == newest => return Ok(done),
                        // A later commit exists, so this one's renames are done and the file
                        // was compacted away: only when no hold kept it (delivery was off).
                        None => {
                            self.stats.record_skipped_commits(1);
                            tracing::warn!(
                                seq,
                                file = %file.path,
                                "webhooks: an events file was compacted before it was dispatched; its events are not sent"
                            );
                        }
                    }
                }
                let appended = self.fan_out(&events)?;
                self.stats.record_dispatched(appended as u64);
            }
            write_cursor(&self.cursor_path, Cursor { seq })?;
            self.hold.advance(seq);
            done += 1;
        }
        Ok(done)
    }

    /// Dispatches the live store's new offline and milestone alerts. They follow the dataflow's
    /// clock: what the store raised since the last call is dispatched, and a crash can lose the
    /// milestones of one poll interval (an offline alert lost so is in the event log once the
    /// vehicle is back, and a vehicle still silent after a restart is reported offline again).
    pub fn dispatch_alerts(&self) -> Result<usize, WebhookError> {
        let Some(live) = &self.live else {
            return Ok(0);
        };
        let cursor = self.alert_cursor.load(Ordering::Relaxed);
        let (newest, events): (u64, Vec<WebhookEvent>) = live.read(|snap| {
            let mut newest = cursor;
            let mut events = Vec::new();
            for alert in snap.alerts_since(cursor) {
                newest = newest.max(alert.seq);
                if LIVE_ALERT_KINDS.contains(&alert.kind) {
                    events.push(WebhookEvent::from_alert(alert));
                }
            }
            (newest, events)
        });
        let appended = self.fan_out(&events)?;
        self.stats.record_dispatched(appended as u64);
        self.alert_cursor.store(newest, Ordering::Relaxed);
        Ok(appended)
    }

    /// Appends each event to the outboxes that want it; returns how many appends that made.
    fn fan_out(&self, events: &[WebhookEvent]) -> Result<usize, WebhookError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut appended = 0;
        let boxes: Vec<Arc<Mailbox>> = self
            .mailboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut by_company: HashMap<&str, Vec<&WebhookEvent>> = HashMap::new();
        for event in events {
            by_company.entry(&event.company).or_default().push(event);
        }
        for mailbox in boxes {
            let sub = &mailbox.subscription;
            let wanted: Vec<WebhookEvent> = by_company
                .get(sub.company.as_str())
                .into_iter()
                .flatten()
                .filter(|e| sub.wants(&e.company, &e.kind))
                .map(|e| (*e).clone())
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let added = mailbox
                .outbox
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .append(&wanted)?;
            if added > 0 {
                mailbox.wake.notify_one();
            }
            appended += added;
        }
        Ok(appended)
    }
}

fn cursor_path(data_dir: &Path) -> PathBuf {
    data_dir.join("webhooks").join("dispatched.json")
}

fn commit_error(e: CommitError) -> WebhookError {
    WebhookError::Events(e.to_string())
}

/// Writes the cursor under a temporary name and renames it: a crash leaves the old or the new
/// one. Not fsync'd: a power loss can only move it back, and outboxes ignore what they hold.
fn write_cursor(path: &Path, cursor: Cursor) -> Result<(), WebhookError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(WebhookError::io(dir))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec(&cursor).expect("cursor serializes"),
    )
    .map_err(WebhookError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(WebhookError::io(path))
}
