//! Starting and stopping webhooks beside the pipeline: the dispatcher on a thread of its own
//! (file and Parquet reads), a delivery task per subscription on a one-thread tokio runtime of
//! its own (`fleetflow-webhook`), so deliveries never queue on the workers that answer ingest's
//! requests, however many receivers are slow or dead.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use fleetflow_live_store::LiveStore;
use fleetflow_tables::commit_log::ReadHold;
use tokio::sync::watch;

use crate::WebhookError;
use crate::config::WebhookConfig;
use crate::deliver::{DeadLetters, Delivery};
use crate::dispatch::{Dispatcher, Mailboxes};
use crate::stats::WebhookStats;
use crate::subscription::Subscriptions;

/// Running webhooks.
#[derive(Debug)]
pub struct Webhooks {
    pub stats: Arc<WebhookStats>,
    pub dead_letters: Arc<DeadLetters>,
    stop: watch::Sender<bool>,
    stopped: Arc<AtomicBool>,
    dispatcher: Option<JoinHandle<()>>,
    /// Where the delivery tasks run; shut down (in the background) with `Webhooks`.
    runtime: Option<tokio::runtime::Runtime>,
}

/// What [`Webhooks::prepare`] sets up before the pipeline starts.
#[derive(Debug)]
pub struct Prepared {
    data_dir: PathBuf,
    config: WebhookConfig,
    subscriptions: Arc<Subscriptions>,
    /// Give it to the pipeline's commit log.
    pub hold: ReadHold,
}

impl Webhooks {
    /// Reads the dispatcher's cursor into the hold the pipeline's commit log must start with.
    pub fn prepare(
        data_dir: &Path,
        config: &WebhookConfig,
        subscriptions: Arc<Subscriptions>,
    ) -> Result<Prepared, WebhookError> {
        Ok(Prepared {
            data_dir: data_dir.to_owned(),
            config: config.clone(),
            subscriptions,
            hold: Dispatcher::initial_hold(data_dir)?,
        })
    }

    /// Starts the dispatcher thread (with `live`, the pipeline's live store in this process,
    /// for its alerts) and the delivery runtime.
    pub fn start(
        prepared: Prepared,
        live: Option<Arc<LiveStore>>,
    ) -> Result<Webhooks, WebhookError> {
        let Prepared {
            data_dir,
            config,
            subscriptions,
            hold,
        } = prepared;
        let stats = Arc::new(WebhookStats::default());
        let dead_letters = Arc::new(DeadLetters::open(&data_dir)?);
        let mailboxes = Mailboxes::default();
        let dispatcher = Dispatcher::new(
            &data_dir,
            hold,
            live,
            subscriptions,
            mailboxes.clone(),
            stats.clone(),
        );
        let delivery = Delivery {
            client: Delivery::client(&config),
            config: config.clone(),
            stats: stats.clone(),
            dead_letters: dead_letters.clone(),
            mailboxes: mailboxes.clone(),
        };
        // One thread: delivery is waiting on sockets and timers, and a second would only take
        // CPU from ingest and the dataflow under load.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fleetflow-webhook")
            .enable_all()
            .build()
            .map_err(WebhookError::io("webhook delivery runtime"))?;
        let spawner = runtime.handle().clone();
        let (stop, stop_rx) = watch::channel(false);
        let stopped = Arc::new(AtomicBool::new(false));
        let thread_stopped = stopped.clone();
        let thread_stats = stats.clone();
        let poll = Duration::from_millis(config.poll_ms.max(10));
        let dispatcher = std::thread::Builder::new()
            .name("webhook-dispatch".to_owned())
            .spawn(move || {
                while !thread_stopped.load(Ordering::Acquire) {
                    let round = dispatcher.sync_subscriptions().and_then(|opened| {
                        for mailbox in opened {
                            spawner.spawn(delivery.clone().run(mailbox, stop_rx.clone()));
                        }
                        dispatcher.dispatch_pending()?;
                        dispatcher.dispatch_alerts()
                    });
                    if let Err(error) = round {
                        tracing::error!(%error, "webhook dispatch");
                    }
                    let owed: usize = mailboxes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .values()
                        .map(|m| m.outbox.lock().unwrap_or_else(|e| e.into_inner()).owed())
                        .sum();
                    thread_stats.set_owed(owed as u64);
                    std::thread::sleep(poll);
                }
            })
            .map_err(WebhookError::io("webhook-dispatch thread"))?;
        Ok(Webhooks {
            stats,
            dead_letters,
            stop,
            stopped,
            dispatcher: Some(dispatcher),
            runtime: Some(runtime),
        })
    }

    /// Stops dispatching and delivering, and waits for the dispatcher; what is owed stays in
    /// the outboxes for the next start. (Dropping `Webhooks` stops them too, without waiting.)
    pub fn stop(mut self) {
        self.stopped.store(true, Ordering::Release);
        let _ = self.stop.send(true);
        if let Some(thread) = self.dispatcher.take() {
            let _ = thread.join();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Release);
        let _ = self.stop.send(true);
        // Not a plain drop: that blocks, and `Webhooks` may be dropped on an async task.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
