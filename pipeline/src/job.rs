//! The pipeline job: recover the data dir, start timely workers, build each worker's dataflow
//! (Kafka source -> sessionize -> Parquet sink and live views), run until asked to stop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleetflow_model::{Table, TripRules};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::{Inspect, Probe};

use crate::live::alerts::device_alerts;
use crate::live::publish::PublishLive;
use crate::live::routes::recent_fixes;
use crate::live::views::{LiveViewConfig, inside, live_views};
use crate::sink::parquet_sink::{CommitSummary, SinkConfig, WriteParquet};
use crate::source::broker_check::{BrokerMismatch, observe, reconcile};
use crate::source::kafka_source::{SourceConfig, SourceError, kafka_source};
use crate::trips::archive::{Archive, archive_dir};
use crate::trips::geofence_feed::GeofenceFeed;
use crate::trips::repair::RepairCounters;
use crate::trips::sessionize::{RuleBook, Sessionizer};
use crate::trips::sessionize_operator::{Epoch, Sessionize};
use fleetflow_geofences::Geofences;
use fleetflow_live_store::store::{LiveStore, LiveStoreConfig};
use fleetflow_tables::commit_log::{CommitError, CommitLog, ReadHold};
use fleetflow_tables::compaction::{CompactionConfig, CompactionReport, Compactor};
use fleetflow_tables::retention::{RetentionConfig, RetentionStats};

/// `[pipeline]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Whether `fleetflow run` starts the pipeline (off: ingest only).
    pub enabled: bool,
    /// Timely worker threads in this process.
    pub workers: usize,
    /// Dataflow timestamp granularity, ms: how often the source closes an epoch. 50 keeps the
    /// live views' ack -> visible p99 under 250 ms at 100,000 points/s; 200 costs about 8%
    /// less throughput and doubles that latency (benches/RESULTS.md).
    pub tick_ms: u64,
    /// How often the sink writes files and commits (seconds of dataflow time).
    pub flush_secs: f64,
    /// The most `positions` rows a worker holds for one flush window: at this many it writes
    /// them at once, as one more file of the window (committed with the others at its end).
    /// A backlog read at 1.7M points/s filled 5 s windows with ~8M rows, 80 bytes each, until
    /// their end; the default (131,072, one row group) is 10 MiB a buffer. Live loads of up to
    /// ~25,000 points/s per worker never reach it.
    pub flush_max_rows: usize,
    /// Flow control: the Kafka source stops reading while this many MiB of record payload
    /// (per worker) are read but not yet committed to Parquet, so a backlog stays in Kafka
    /// rather than in memory. 64 MiB caught up 10% faster than no bound, at 4 GB less peak
    /// memory, on an 82M-point backlog (`benches/RESULTS.md`, session 25); 32 MiB cost 30% of
    /// the speed (the room is freed one flush window at a time). 0 turns flow control off.
    pub source_max_in_flight_mib: f64,
    /// Correction horizon, seconds: how much of each vehicle's history (behind its newest item)
    /// memory holds. A late item inside it re-runs the vehicle from a checkpoint; an older one
    /// is repaired from the archive on disk (`trips/archive.md`), slower (~0.2 ms) but as
    /// exact. The sessionizer keeps 40 bytes per item, in room that grows by doubling: at one
    /// fix per second, the default 10 minutes (600 items, room for 1,024) is 24-41 KB per
    /// vehicle, 0.4-0.6 GB for 15,000 vehicles (1 h would be 2.2-3.9 GB).
    pub horizon_secs: u64,
    /// Trip rules for companies without their own (`[companies.trips]`).
    pub trips: TripRules,
    /// Background merging of small files (`[pipeline.compaction]`).
    pub compaction: CompactionConfig,
    /// How many days of each table to keep (`[pipeline.retention]`; default: all).
    pub retention: RetentionConfig,
    /// The live views (`[pipeline.live]`).
    pub live: LiveConfig,
}

/// `[pipeline.live]`: the live views and their store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveConfig {
    /// Silence after which a vehicle is offline, seconds: from when ingest received its newest
    /// record, on the dataflow's (wall-clock) time.
    pub offline_after_secs: u64,
    /// Places per company leaderboard.
    pub leaderboard_top: usize,
    /// Changed vehicles the cursor log keeps (an older cursor must read the full state).
    pub change_log: usize,
    /// Alerts the alert feed keeps.
    pub alert_log: usize,
    /// Today's-distance milestone alerts every this many km (0: none).
    pub milestone_km: u64,
    /// How far back live routes reach, seconds of dataflow time (0: no live routes). Each
    /// fix in the window costs about 150 bytes: 15,000 vehicles at 1 Hz hold 4.5 million
    /// fixes at the default.
    pub route_secs: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            offline_after_secs: 300,
            leaderboard_top: 10,
            change_log: 100_000,
            alert_log: 10_000,
            milestone_km: 100,
            route_secs: 300,
        }
    }
}

impl LiveConfig {
    pub fn views(&self) -> LiveViewConfig {
        LiveViewConfig {
            offline_after_ms: self.offline_after_secs.saturating_mul(1000),
            leaderboard_top: self.leaderboard_top.max(1),
            route_window_ms: self.route_secs.saturating_mul(1000),
        }
    }

    pub fn store(&self) -> LiveStoreConfig {
        LiveStoreConfig {
            change_log: self.change_log,
            alert_log: self.alert_log,
            milestone_m: self.milestone_km.saturating_mul(1000),
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            enabled: true,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            tick_ms: 50,
            flush_secs: 5.0,
            flush_max_rows: crate::sink::parquet_sink::DEFAULT_PART_ROWS,
            source_max_in_flight_mib: 64.0,
            horizon_secs: 600,
            trips: TripRules::default(),
            compaction: CompactionConfig::default(),
            retention: RetentionConfig::default(),
            live: LiveConfig::default(),
        }
    }
}

/// Everything a pipeline run needs.
#[derive(Debug, Clone)]
pub struct PipelineJob {
    pub config: PipelineConfig,
    pub data_dir: PathBuf,
    /// Consumer settings (bootstrap servers etc.).
    pub kafka: ClientConfig,
    pub topic: String,
    /// Per-company trip rules.
    pub company_rules: Vec<(String, TripRules)>,
    pub timely: timely::Config,
    pub stop_when_caught_up: bool,
    /// When the broker does not hold the log the commit log's offsets are in (`broker_check`):
    /// re-base the offsets on what the broker holds (loudly) instead of refusing to start.
    pub rebaseline: bool,
    /// A reader of the commits (the webhook dispatcher) that compaction and trimming wait for.
    pub read_hold: Option<ReadHold>,
    /// The geofences file, watched while the pipeline runs (`None`: no geofences).
    pub geofences: Option<Arc<Geofences>>,
}

/// Pipeline errors.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("invalid pipeline config: {0}")]
    Config(String),
    #[error("timely: {0}")]
    Timely(String),
    #[error(
        "the Kafka broker does not hold the log this data dir's commit log was read from:\n  {}\nRestore the broker's data, or start with --rebaseline to read what the broker holds (a replaced log is read as new, from its first record; records deleted unread stay lost). The Parquet history is kept either way.",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
    )]
    Broker(Vec<BrokerMismatch>),
}

/// Live counters for `/metrics` and `/status`.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub records_read: Arc<AtomicU64>,
    /// Milliseconds (summed over workers) the Kafka source did not read because of flow control.
    pub source_throttled_ms: Arc<AtomicU64>,
    pub commits: AtomicU64,
    pub last_commit_epoch: AtomicU64,
    pub positions_written: AtomicU64,
    pub trips_written: AtomicU64,
    pub events_written: AtomicU64,
    pub errors_written: AtomicU64,
    pub visits_written: AtomicU64,
    /// The newest commit's summary.
    pub last_commit: Mutex<Option<CommitSummary>>,
    /// Compaction merges committed, the files they replaced, bytes before and after.
    pub compactions: AtomicU64,
    pub compacted_files: AtomicU64,
    pub compacted_bytes_in: AtomicU64,
    pub compacted_bytes_out: AtomicU64,
    /// Rollup change rows written.
    pub rollups_written: AtomicU64,
    /// What retention removed.
    pub retention: Arc<RetentionStats>,
    /// What repairs of items beyond the correction horizon did.
    pub repairs: Arc<RepairCounters>,
}

impl PipelineStats {
    fn record(&self, summary: &CommitSummary) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.last_commit_epoch
            .store(summary.upto_epoch, Ordering::Relaxed);
        for (table, rows) in &summary.rows {
            let Some(table) = Table::from_name(table) else {
                continue;
            };
            let counter = match table {
                Table::Positions => &self.positions_written,
                Table::Trips => &self.trips_written,
                Table::Events => &self.events_written,
                Table::GeofenceVisits => &self.visits_written,
                Table::Errors => &self.errors_written,
                Table::VehicleHourly
                | Table::VehicleDaily
                | Table::CompanyHourly
                | Table::CompanyDaily => &self.rollups_written,
            };
            counter.fetch_add(*rows, Ordering::Relaxed);
        }
        *self.last_commit.lock().unwrap_or_else(|e| e.into_inner()) = Some(summary.clone());
    }

    fn record_compaction(&self, report: &CompactionReport) {
        self.compactions.fetch_add(report.merges, Ordering::Relaxed);
        self.compacted_files
            .fetch_add(report.files_in, Ordering::Relaxed);
        self.compacted_bytes_in
            .fetch_add(report.bytes_in, Ordering::Relaxed);
        self.compacted_bytes_out
            .fetch_add(report.bytes_out, Ordering::Relaxed);
    }
}

/// A started pipeline.
pub struct RunningPipeline {
    shutdown: Arc<AtomicBool>,
    /// Stops the geofence watcher.
    geofence_watch: Arc<AtomicBool>,
    guards: timely::communication::WorkerGuards<Result<(), String>>,
    pub stats: Arc<PipelineStats>,
    /// The live views, as worker 0 of this process publishes them (in a cluster, process 0
    /// holds them; the others' stay empty).
    pub live: Arc<LiveStore>,
}

impl std::fmt::Debug for RunningPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningPipeline").finish_non_exhaustive()
    }
}

impl RunningPipeline {
    /// Asks the source to drain and stop; returns once every worker has finished (the sink has
    /// committed what was read).
    pub fn stop(self) -> Result<(), PipelineError> {
        self.shutdown.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for the workers (a `stop_when_caught_up` run ends by itself).
    pub fn join(self) -> Result<(), PipelineError> {
        self.geofence_watch.store(true, Ordering::Release);
        for result in self.guards.join() {
            result.and_then(|r| r).map_err(PipelineError::Timely)?;
        }
        Ok(())
    }

    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        self.shutdown.clone()
    }
}

/// Recovers the data dir and starts the workers.
pub fn start(job: PipelineJob) -> Result<RunningPipeline, PipelineError> {
    job.config.trips.validate().map_err(PipelineError::Config)?;
    for (company, rules) in &job.company_rules {
        rules
            .validate()
            .map_err(|e| PipelineError::Config(format!("company {company}: {e}")))?;
    }
    std::fs::create_dir_all(&job.data_dir).map_err(|source| CommitError::Io {
        path: job.data_dir.clone(),
        source,
    })?;
    let recovered = CommitLog::new(&job.data_dir).recover()?;
    let view = observe(&job.kafka, &job.topic)?;
    let reconciled = reconcile(recovered, &view, job.rebaseline).map_err(PipelineError::Broker)?;
    for mismatch in &reconciled.mismatches {
        tracing::error!(%mismatch, "RE-BASELINED on the broker's log (--rebaseline)");
    }
    for (partition, replay_from, low) in &reconciled.short_replay {
        tracing::warn!(
            partition,
            replay_from,
            low,
            "retention deleted records the restart replays to rebuild state: vehicles last heard before offset {low} are missing from the live views until they report again"
        );
    }
    let resume = reconciled.resume;
    // The archive is as of the last commit: changes of later epochs are undone on open.
    let archive_from = resume.as_ref().map(|c| (c.upto_epoch, false));
    let (archive_upto, archive_fresh) = archive_from.unwrap_or((0, true));
    let archive_dir = archive_dir(&job.data_dir);
    let stats = Arc::new(PipelineStats::default());
    if let Some(commit) = &resume {
        tracing::info!(seq = commit.seq, offsets = ?commit.offsets, replay_from = ?commit.replay_from, cluster_id = ?commit.cluster_id, "resuming from commit");
        // `/status` shows the committed offsets from the start, not only after a new commit.
        *stats.last_commit.lock().unwrap_or_else(|e| e.into_inner()) = Some(CommitSummary {
            seq: commit.seq,
            upto_epoch: commit.upto_epoch,
            rows: Default::default(),
            files: 0,
            offsets: commit.offsets.clone(),
        });
        stats
            .last_commit_epoch
            .store(commit.upto_epoch, Ordering::Relaxed);
    }
    // A fresh data dir records the broker's cluster id with its first commit.
    let resume = resume.or_else(|| {
        view.cluster_id
            .clone()
            .map(|cluster_id| fleetflow_tables::commit_log::Commit {
                cluster_id: Some(cluster_id),
                ..Default::default()
            })
    });
    let shutdown = Arc::new(AtomicBool::new(false));
    let flush_ms = (job.config.flush_secs * 1000.0).round().max(1.0) as u64;
    let horizon_ms = (job.config.horizon_secs as i64).saturating_mul(1000);
    let offline_after_ms = job.config.live.views().offline_after_ms;
    let source = SourceConfig {
        client: job.kafka.clone(),
        topic: job.topic.clone(),
        tick_ms: job.config.tick_ms,
        resume: resume.clone(),
        stop_when_caught_up: job.stop_when_caught_up,
        shutdown: shutdown.clone(),
        records_read: stats.records_read.clone(),
        max_in_flight_bytes: (job.config.source_max_in_flight_mib.max(0.0) * 1_048_576.0) as u64,
        throttled_ms: stats.source_throttled_ms.clone(),
    };
    let log = CommitLog::new(&job.data_dir).with_read_hold(job.read_hold.clone());
    let sink = SinkConfig::new(log, flush_ms, resume).with_part_rows(job.config.flush_max_rows);
    let compaction = job.config.compaction.clone();
    let retention = job.config.retention.clone();
    retention.limits().map_err(PipelineError::Config)?;
    let rules = job
        .company_rules
        .iter()
        .fold(RuleBook::new(&job.config.trips), |book, (c, r)| {
            book.with_company(c, r)
        });
    let geofence_feed = GeofenceFeed::default();
    let geofence_watch = Arc::new(AtomicBool::new(false));
    if let Some(geofences) = &job.geofences {
        geofence_feed
            .watch(
                geofences.clone(),
                Duration::from_secs(1),
                geofence_watch.clone(),
            )
            .map_err(|e| PipelineError::Config(format!("geofence watcher: {e}")))?;
    }
    let live = Arc::new(LiveStore::new(job.config.live.store()));
    let view_config = job.config.live.views();
    let worker_live = live.clone();
    let worker_stats = stats.clone();
    let guards = timely::execute(job.timely.clone(), move |worker| -> Result<(), String> {
        let source = source.clone();
        let sink = sink.clone();
        let rules = rules.clone();
        let geofence_feed = geofence_feed.clone();
        let archive = Archive::open(
            &archive_dir,
            worker.index(),
            worker.peers(),
            archive_upto,
            archive_fresh,
        )
        .map_err(|e| e.to_string())?;
        let stats = worker_stats.clone();
        let live = worker_live.clone();
        // The compactor commits beside the committer, worker 0.
        let compactor = (worker.index() == 0 && (compaction.enabled || !retention.days.is_empty()))
            .then(|| {
                let stats = stats.clone();
                Compactor::spawn(
                    sink.commits.clone(),
                    compaction.clone(),
                    retention.clone(),
                    stats.retention.clone(),
                    move |r| stats.record_compaction(r),
                )
            })
            .flatten();
        // How far the commits have come: the source's flow control reads it.
        let committed: ProbeHandle<Epoch> = ProbeHandle::new();
        let probe: Result<ProbeHandle<Epoch>, SourceError> =
            worker.dataflow::<Epoch, _, _>(|scope| {
                let (records, progress) = kafka_source(scope, source, committed.clone())?;
                let seen = committed.clone();
                // Undo records of epochs the commits have covered are dropped.
                let archive = archive.with_committed(move || {
                    seen.with_frontier(|f| f.first().copied().unwrap_or(u64::MAX))
                });
                let counters = stats.repairs.clone();
                let mut streams = records.sessionize(move || {
                    Sessionizer::new(rules, horizon_ms)
                        .with_archive(archive)
                        .with_repair_counters(counters)
                        .with_geofence_feed(geofence_feed)
                        .with_offline_after(offline_after_ms)
                });
                // The sink reads the rows the route window passed on (moved, not copied).
                let (recent, positions) =
                    recent_fixes(streams.positions, view_config.route_window_ms);
                streams.positions = positions;
                live_views(
                    streams.vehicles.clone(),
                    streams.heard.clone(),
                    streams.trips.clone(),
                    recent,
                    &view_config,
                )
                .rows()
                .concatenate([inside(streams.visits.clone())])
                .publish_live(device_alerts(streams.events.clone()), live);
                streams
                    .write_parquet(progress, sink)
                    .inspect(move |summary| stats.record(summary))
                    .probe_with(&committed);
                Ok(committed)
            });
        let probe = probe.map_err(|e| e.to_string());
        if probe.is_ok() {
            while worker.step_or_park(Some(Duration::from_millis(20))) {}
        }
        if let Some(compactor) = compactor {
            compactor.stop();
        }
        probe.map(drop)
    })
    .map_err(PipelineError::Timely)?;
    Ok(RunningPipeline {
        shutdown,
        geofence_watch,
        guards,
        stats,
        live,
    })
}
