//! The frontier-driven Parquet sink. Design note: `parquet_sink.md`, beside this file.
//!
//! Two operators:
//! - **ParquetWrite**, on every worker: buffers the rows of each flush window (dataflow
//!   timestamps are epoch milliseconds; a window is `flush_ms` of them) and, once the frontier of
//!   all its inputs passes the window's end, has its writer thread ([`WindowWriter`]) write one
//!   sorted file per table and date under the staging directory, and reports the files.
//! - **ParquetCommit**, on worker 0: once its frontier passes a window's end (so every worker has
//!   reported that window's files and the source every offset it read before it), writes one
//!   commit listing the files and the Kafka offsets they cover, then renames the files into the
//!   tables ([`CommitLog::commit`]).
//!
//! Rows at timestamp 0 are a restart's replay (records already committed, re-read to rebuild
//! sessionization state) and are dropped here.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use fleetflow_model::{Rollup, Table, partition_dir};
use parquet::errors::ParquetError;
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::progress::frontier::MutableAntichain;

use crate::rollups::rollup_changes::RollupChanges;
use crate::rows::{ErrorRow, EventRow, PositionRow, TripRecord, VisitRecord};
use crate::sink::table_batches::{self, Detected, Version};
use crate::sink::window_writer::{QUEUED_WINDOWS, WindowJob, WindowWriter};
use crate::trips::sessionize_operator::{Epoch, Retained, SessionStreams};
use fleetflow_tables::commit_log::{Commit, CommitLog, CommitWriter, DataFile};
use fleetflow_tables::parquet_file::{FileKind, WRITE_BATCH_ROWS, write_file};

/// Where and how often the sink writes.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub data_dir: PathBuf,
    /// Flush window, ms of dataflow time: how often files (and commits) are made.
    pub flush_ms: u64,
    /// The most `positions` rows a worker holds for one window: at this many it writes them as
    /// a file of the window now (committed with the window's others), and fills a new buffer.
    pub part_rows: usize,
    /// Makes the commits, numbered after the one recovered from the commit log
    /// ([`CommitLog::recover`]); shared with the compactor.
    pub commits: Arc<CommitWriter>,
}

impl SinkConfig {
    /// A sink committing into `log` on a fresh or recovered data dir (`resume`: what
    /// [`CommitLog::recover`] returned).
    pub fn new(log: CommitLog, flush_ms: u64, resume: Option<Commit>) -> Self {
        let data_dir = log.data_dir().to_owned();
        let commits = Arc::new(CommitWriter::new(log, resume));
        SinkConfig {
            data_dir,
            flush_ms,
            part_rows: DEFAULT_PART_ROWS,
            commits,
        }
    }

    /// The same sink, holding at most `rows` `positions` rows per window and worker.
    pub fn with_part_rows(self, rows: usize) -> Self {
        SinkConfig {
            part_rows: rows.max(1),
            ..self
        }
    }
}

/// [`SinkConfig::part_rows`] by default: one row group (128 Ki rows), 10 MiB of
/// [`PositionRow`]s. A worker's buffers in use (filling, queued, being written, spare) were ~10
/// in a catch-up: with 512 Ki rows each, 0.9 GB for two workers.
pub const DEFAULT_PART_ROWS: usize = fleetflow_tables::parquet_file::ROW_GROUP_ROWS;

/// A file written under staging for one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedFile {
    pub window_end: Epoch,
    pub file: DataFile,
}

/// What a commit did, for metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    pub seq: u64,
    pub upto_epoch: Epoch,
    pub rows: BTreeMap<String, u64>,
    pub files: usize,
    pub offsets: BTreeMap<i32, i64>,
}

fn window_end(time: Epoch, flush_ms: u64) -> Epoch {
    (time / flush_ms + 1) * flush_ms
}

/// Whether no input can still deliver a time before `end`.
fn passed(frontiers: &[MutableAntichain<Epoch>], end: Epoch) -> bool {
    frontiers.iter().all(|f| !f.less_equal(&(end - 1)))
}

struct WindowRows {
    cap: Option<Capability<Epoch>>,
    data: WindowData,
    /// Jobs handed to the writer for this window so far: its early `positions` parts.
    parts: usize,
}

/// Emptied `positions` buffers kept for the next windows: one per job the writer may hold
/// (queued or being written) plus the one filling. They stay allocated while the load pauses:
/// at most this many buffers of at most [`SinkConfig::part_rows`] rows each.
const SPARE_BUFFERS: usize = QUEUED_WINDOWS + 2;

/// A window's rows, as handed to the writer thread.
#[derive(Default)]
struct WindowData {
    trips: Vec<(TripRecord, isize)>,
    visits: Vec<(VisitRecord, isize)>,
    positions: Vec<PositionRow>,
    events: Vec<Detected<EventRow>>,
    errors: Vec<Detected<ErrorRow>>,
    /// What the window's fixes and trip changes change in the rollups, kept as they arrive.
    rollups: RollupChanges,
}

/// One job for the [`WindowWriter`]: a window's rows, or an early part of its `positions`. Its
/// files are named after the window's end, the worker and the job's number within the window.
struct WriteWindow {
    end: Epoch,
    worker: usize,
    part: usize,
    data: WindowData,
}

impl WindowJob for WriteWindow {
    fn write(&mut self, log: &CommitLog) -> Result<Vec<DataFile>, String> {
        let mut out = WindowFiles {
            log,
            end: self.end,
            worker: self.worker,
            part: self.part,
            files: Vec::new(),
        };
        write_window(&mut out, &mut self.data).map_err(|e| e.to_string())?;
        Ok(out.files)
    }
}

impl WindowRows {
    fn new(positions: Vec<PositionRow>) -> Self {
        WindowRows {
            cap: None,
            data: WindowData {
                positions,
                ..WindowData::default()
            },
            parts: 0,
        }
    }

    fn hold(&mut self, cap: Capability<Epoch>) {
        if self.cap.as_ref().is_none_or(|c| cap.time() < c.time()) {
            self.cap = Some(cap);
        }
    }
}

/// The window rows at `cap`'s timestamp belong to, holding `cap` for it; `None` for
/// timestamp 0, a restart's replay, whose rows were committed before. A new window takes a
/// spare `positions` buffer if there is one.
fn window_of<'w>(
    windows: &'w mut BTreeMap<Epoch, WindowRows>,
    spare: &mut Vec<Vec<PositionRow>>,
    cap: Capability<Epoch>,
    flush_ms: u64,
) -> Option<&'w mut WindowRows> {
    let time = *cap.time();
    if time == 0 {
        return None;
    }
    let window = windows
        .entry(window_end(time, flush_ms))
        .or_insert_with(|| WindowRows::new(spare.pop().unwrap_or_default()));
    window.hold(cap);
    Some(window)
}

/// Makes room for `more` rows in `buffer`, growing it as `Vec` would (doubling) but never past
/// `part_rows` unless the rows need it: a buffer is handed to the writer before it would go
/// over, so room past that bound would never be used, and a doubled buffer is twice the bytes.
fn reserve_within(buffer: &mut Vec<PositionRow>, more: usize, part_rows: usize) {
    let needed = buffer.len() + more;
    if needed > buffer.capacity() {
        let target = (2 * buffer.capacity()).min(part_rows).max(needed);
        buffer.reserve_exact(target - buffer.len());
    }
}

/// Extension trait: write the session streams to Parquet, exactly once.
pub trait WriteParquet<'scope> {
    /// `source_offsets`: (partition, next offset to read) at the timestamp up to which the
    /// source has read. Returns one summary per commit, on worker 0.
    fn write_parquet(
        self,
        source_offsets: StreamVec<'scope, Epoch, (i32, i64)>,
        config: SinkConfig,
    ) -> StreamVec<'scope, Epoch, CommitSummary>;
}

impl<'scope> WriteParquet<'scope> for SessionStreams<'scope> {
    fn write_parquet(
        self,
        source_offsets: StreamVec<'scope, Epoch, (i32, i64)>,
        config: SinkConfig,
    ) -> StreamVec<'scope, Epoch, CommitSummary> {
        let scope = self.positions.scope();
        let staged = write_windows(&self, &config, scope.index());
        commit_windows(staged, source_offsets, self.retained, config)
    }
}

fn write_windows<'scope>(
    streams: &SessionStreams<'scope>,
    config: &SinkConfig,
    worker: usize,
) -> StreamVec<'scope, Epoch, StagedFile> {
    let mut builder = OperatorBuilder::new("ParquetWrite".to_owned(), streams.positions.scope());
    let mut trips_in = builder.new_input(streams.trips.inner.clone(), Pipeline);
    let mut visits_in = builder.new_input(streams.visits.inner.clone(), Pipeline);
    let mut positions_in = builder.new_input(streams.positions.clone(), Pipeline);
    let mut events_in = builder.new_input(streams.events.clone(), Pipeline);
    let mut errors_in = builder.new_input(streams.errors.clone(), Pipeline);
    let (staged_out, staged) = builder.new_output::<Vec<StagedFile>>();
    let mut staged_out = OutputBuilder::from(staged_out);
    let flush_ms = config.flush_ms.max(1);
    let part_rows = config.part_rows.max(1);
    let log = CommitLog::new(&config.data_dir);
    let scope = streams.positions.scope();
    let activator = scope
        .worker()
        .sync_activator_for(builder.operator_info().address.to_vec());

    builder.build(move |initial| {
        drop(initial);
        let mut windows: BTreeMap<Epoch, WindowRows> = BTreeMap::new();
        let mut spare: Vec<Vec<PositionRow>> = Vec::new();
        let writer = WindowWriter::spawn(log, worker, activator);
        // Windows handed to the writer, oldest first, with the capability to report them at.
        let mut writing: VecDeque<(Epoch, Capability<Epoch>)> = VecDeque::new();
        move |frontiers| {
            trips_in.for_each(|cap, data| {
                if let Some(w) = window_of(&mut windows, &mut spare, cap.retain(0), flush_ms) {
                    w.data
                        .rollups
                        .add_trips(data.iter().map(|(t, _, d)| (t, *d)));
                    w.data.trips.extend(data.drain(..).map(|(t, _, d)| (t, d)));
                }
            });
            visits_in.for_each(|cap, data| {
                if let Some(w) = window_of(&mut windows, &mut spare, cap.retain(0), flush_ms) {
                    w.data.visits.extend(data.drain(..).map(|(v, _, d)| (v, d)));
                }
            });
            positions_in.for_each(|cap, data| {
                let end = window_end(*cap.time(), flush_ms);
                if let Some(w) = window_of(&mut windows, &mut spare, cap.retain(0), flush_ms) {
                    w.data.rollups.add_positions(data);
                    let held = &mut w.data.positions;
                    if !held.is_empty() && held.len() + data.len() > part_rows {
                        // A backlog read at full speed: write what the window holds now, as a
                        // file of the window, rather than hold seconds of rows until its end.
                        let positions = std::mem::replace(held, spare.pop().unwrap_or_default());
                        let job = WriteWindow {
                            end,
                            worker,
                            part: w.parts,
                            data: WindowData {
                                positions,
                                ..WindowData::default()
                            },
                        };
                        w.parts += 1;
                        writer.submit(end, job);
                        let cap = w.cap.clone().expect("the window holds a capability");
                        writing.push_back((end, cap));
                    }
                    reserve_within(&mut w.data.positions, data.len(), part_rows);
                    w.data.positions.append(data);
                }
            });
            events_in.for_each(|cap, data| {
                let detected_ms = *cap.time() as i64;
                if let Some(w) = window_of(&mut windows, &mut spare, cap.retain(0), flush_ms) {
                    w.data
                        .events
                        .extend(data.drain(..).map(|row| Detected { row, detected_ms }));
                }
            });
            errors_in.for_each(|cap, data| {
                let detected_ms = *cap.time() as i64;
                if let Some(w) = window_of(&mut windows, &mut spare, cap.retain(0), flush_ms) {
                    w.data
                        .errors
                        .extend(data.drain(..).map(|row| Detected { row, detected_ms }));
                }
            });
            while let Some(entry) = windows.first_entry() {
                let end = *entry.key();
                if !passed(frontiers, end) {
                    break;
                }
                let rows = entry.remove();
                let Some(cap) = rows.cap else { continue };
                let job = WriteWindow {
                    end,
                    worker,
                    part: rows.parts,
                    data: rows.data,
                };
                writer.submit(end, job);
                writing.push_back((end, cap));
            }
            let mut out = staged_out.activate();
            while let Some((end, files, job)) = writer.finished() {
                let buffer = job.data.positions;
                if buffer.capacity() > 0 && spare.len() < SPARE_BUFFERS {
                    spare.push(buffer);
                }
                let (submitted, cap) = writing.pop_front().expect("a window was submitted");
                assert_eq!(end, submitted, "the writer returns windows in order");
                out.session(&cap)
                    .give_iterator(files.into_iter().map(|file| StagedFile {
                        window_end: end,
                        file,
                    }));
            }
        }
    });
    staged
}

/// Writes one window's rows (or a part of them) into `out`: one file per table and date
/// partition. Leaves `rows` empty, with the `positions` buffer's capacity kept for another
/// window, unless it is over twice what this one needed (the load fell) or the window's
/// positions were none or spanned two dates.
fn write_window(
    out: &mut WindowFiles,
    rows: &mut WindowData,
) -> Result<(), Box<dyn std::error::Error>> {
    let end = out.end;
    let positions = &mut rows.positions;
    let needed = positions.len();
    if let Some(day) = single_day(positions, |p| p.time_ms) {
        let batches = table_batches::positions_batches(positions, WRITE_BATCH_ROWS);
        out.write(Table::Positions, day, batches)?;
        positions.clear();
    } else {
        for (day, part) in group_by_day(std::mem::take(positions), |p| p.time_ms) {
            let batches = table_batches::positions_batches(&part, WRITE_BATCH_ROWS);
            out.write(Table::Positions, day, batches)?;
        }
    }
    if positions.capacity() > 2 * needed.max(1 << 16) {
        *positions = Vec::new();
    }
    let trips = versions(std::mem::take(&mut rows.trips), end, TripRecord::id);
    for (day, mut part) in group_by_day(trips, |v| v.record.trip.start_ms) {
        out.write(Table::Trips, day, [table_batches::trips(&mut part)])?;
    }
    let visits = versions(std::mem::take(&mut rows.visits), end, VisitRecord::id);
    for (day, mut part) in group_by_day(visits, |v| v.record.visit.enter_ms) {
        out.write(
            Table::GeofenceVisits,
            day,
            [table_batches::visits(&mut part)],
        )?;
    }
    for (day, mut part) in group_by_day(std::mem::take(&mut rows.events), |e| e.row.time_ms) {
        out.write(Table::Events, day, [table_batches::events(&mut part)])?;
    }
    for (day, mut part) in group_by_day(std::mem::take(&mut rows.errors), |e| e.detected_ms) {
        out.write(Table::Errors, day, [table_batches::errors(&mut part)])?;
    }
    let rollups = std::mem::take(&mut rows.rollups);
    if !rollups.is_empty() {
        for rollup in Rollup::ALL {
            for (day, part) in group_by_day(rollups.rows(rollup), |(k, _)| k.start_ms) {
                out.write(rollup.table(), day, [table_batches::rollup(rollup, &part)])?;
            }
        }
    }
    Ok(())
}

/// The files of one writer job, staged as they are written, named after the window's end, the
/// worker, the job's number within the window (its early parts come first) and their number
/// within the job.
struct WindowFiles<'a> {
    log: &'a CommitLog,
    end: Epoch,
    worker: usize,
    part: usize,
    files: Vec<DataFile>,
}

impl WindowFiles<'_> {
    fn write(
        &mut self,
        table: Table,
        date: String,
        batches: impl IntoIterator<Item = Result<RecordBatch, ArrowError>>,
    ) -> Result<(), ParquetError> {
        let (end, worker, part, number) = (self.end, self.worker, self.part, self.files.len() + 1);
        let path = format!(
            "{}/{date}/part-{end}-w{worker}-{part}-{number}.parquet",
            table.name()
        );
        let staged = format!("_fleetflow/staging/{path}");
        let written = write_file(
            &self.log.data_dir().join(&staged),
            table,
            FileKind::Flush,
            batches,
        )?;
        self.files.push(DataFile {
            table: table.name().to_owned(),
            path,
            staged,
            rows: written.rows,
            bytes: written.bytes,
        });
        Ok(())
    }
}

const DAY_MS: i64 = 86_400_000;

/// The UTC date partition (`date=YYYY-MM-DD`) of every row of `rows`, if they share one.
fn single_day<R>(rows: &[R], time_ms: impl Fn(&R) -> i64) -> Option<String> {
    let first = time_ms(rows.first()?).div_euclid(DAY_MS);
    rows.iter()
        .all(|r| time_ms(r).div_euclid(DAY_MS) == first)
        .then(|| partition_dir(first * DAY_MS))
}

/// Rows grouped by the UTC date partition of `time_ms(row)`, as `date=YYYY-MM-DD`.
fn group_by_day<R>(rows: Vec<R>, time_ms: impl Fn(&R) -> i64) -> Vec<(String, Vec<R>)> {
    if rows.is_empty() {
        return Vec::new();
    }
    if let Some(day) = single_day(&rows, &time_ms) {
        return vec![(day, rows)];
    }
    let mut groups: BTreeMap<i64, Vec<R>> = BTreeMap::new();
    for row in rows {
        groups
            .entry(time_ms(&row).div_euclid(DAY_MS))
            .or_default()
            .push(row);
    }
    groups
        .into_iter()
        .map(|(day, rows)| (partition_dir(day * DAY_MS), rows))
        .collect()
}

/// A window's trip (or visit) changes as version rows: each one inserted (net) is a new
/// version; one only retracted is a `deleted` version.
fn versions<R: Ord>(
    mut changes: Vec<(R, isize)>,
    version: Epoch,
    id: impl Fn(&R) -> String,
) -> Vec<Version<R>> {
    changes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut net: Vec<(R, isize)> = Vec::with_capacity(changes.len());
    for (record, diff) in changes {
        match net.last_mut() {
            Some((last, d)) if *last == record => *d += diff,
            _ => net.push((record, diff)),
        }
    }
    net.retain(|(_, d)| *d != 0);
    let inserted: std::collections::HashSet<String> = net
        .iter()
        .filter(|(_, d)| *d > 0)
        .map(|(r, _)| id(r))
        .collect();
    net.into_iter()
        .filter(|(record, d)| *d > 0 || !inserted.contains(&id(record)))
        .map(|(record, d)| Version {
            record,
            version: version as i64,
            deleted: d < 0,
        })
        .collect()
}

/// A window waiting to be committed: a capability to report with, its files, the offsets read
/// before its end.
type PendingWindow = (Option<Capability<Epoch>>, Vec<DataFile>, Vec<(i32, i64)>);

/// The pending window `cap`'s timestamp belongs to, holding the earliest capability for it.
fn pending_window(
    pending: &mut BTreeMap<Epoch, PendingWindow>,
    cap: Capability<Epoch>,
    flush_ms: u64,
) -> &mut PendingWindow {
    let slot = pending
        .entry(window_end(*cap.time(), flush_ms))
        .or_default();
    if slot.0.as_ref().is_none_or(|c| cap.time() < c.time()) {
        slot.0 = Some(cap);
    }
    slot
}

fn commit_windows<'scope>(
    staged: StreamVec<'scope, Epoch, StagedFile>,
    source_offsets: StreamVec<'scope, Epoch, (i32, i64)>,
    retained: StreamVec<'scope, Epoch, Retained>,
    config: SinkConfig,
) -> StreamVec<'scope, Epoch, CommitSummary> {
    let mut builder = OperatorBuilder::new("ParquetCommit".to_owned(), staged.scope());
    let mut staged_in = builder.new_input(staged, Exchange::new(|_: &StagedFile| 0));
    let mut offsets_in = builder.new_input(source_offsets, Exchange::new(|_: &(i32, i64)| 0));
    let mut retained_in = builder.new_input(retained, Exchange::new(|_: &Retained| 0));
    let (summary_out, summaries) = builder.new_output::<Vec<CommitSummary>>();
    let mut summary_out = OutputBuilder::from(summary_out);
    let flush_ms = config.flush_ms.max(1);
    let commits = config.commits;
    let resume = commits.last();

    builder.build(move |initial| {
        drop(initial);
        let mut offsets = resume.offsets;
        let mut replay_from = resume.replay_from;
        // Per window: the files, the offsets read before its end, a capability to report with.
        let mut pending: BTreeMap<Epoch, PendingWindow> = BTreeMap::new();
        // Per worker: its reports of what it holds (epoch -> partition -> offset), from the
        // last one before the newest committed window on. A window's commit must use each
        // worker's report as of the window's end, not a later one: a later report may no longer
        // hold items the window's state held (evicted into the archive in an epoch the commit
        // does not cover, which a restart undoes), and the replay must bring those back.
        let mut held: HashMap<usize, BTreeMap<Epoch, HashMap<i32, i64>>> = HashMap::new();
        move |frontiers| {
            // Both the files and the offsets hold the window's capability: a window whose
            // records were all dropped (duplicates, replay) has offsets and no files, and its
            // commit is reported as well.
            staged_in.for_each(|cap, data| {
                let slot = pending_window(&mut pending, cap.retain(0), flush_ms);
                slot.1.extend(data.drain(..).map(|s| s.file));
            });
            offsets_in.for_each(|cap, data| {
                let slot = pending_window(&mut pending, cap.retain(0), flush_ms);
                slot.2.append(data);
            });
            retained_in.for_each(|cap, data| {
                let t = *cap.time();
                for (worker, partition, offset) in data.drain(..) {
                    let reports = held.entry(worker).or_default();
                    reports.entry(t).or_default().insert(partition, offset);
                }
            });
            let mut out = summary_out.activate();
            while let Some(entry) = pending.first_entry() {
                let end = *entry.key();
                if !passed(frontiers, end) {
                    break;
                }
                let (cap, files, read) = entry.remove();
                let before = offsets.clone();
                for (partition, next) in read {
                    let slot = offsets.entry(partition).or_insert(next);
                    *slot = (*slot).max(next);
                }
                // Each worker's state as of the window's end: its last report before it.
                let as_of: Vec<&HashMap<i32, i64>> = held
                    .values_mut()
                    .filter_map(|reports| {
                        let (&at, _) = reports.range(..end).next_back()?;
                        reports.retain(|&t, _| t >= at);
                        reports.get(&at)
                    })
                    .collect();
                for (partition, next) in &offsets {
                    let holds = as_of
                        .iter()
                        .filter_map(|m| m.get(partition).copied())
                        .min()
                        .unwrap_or(*next);
                    replay_from.insert(*partition, holds.min(*next));
                }
                if files.is_empty() && offsets == before {
                    continue;
                }
                let commit = commits
                    .commit_window(end, offsets.clone(), replay_from.clone(), files)
                    .unwrap_or_else(|e| {
                        panic!("Parquet sink cannot commit window ending {end}: {e}")
                    });
                let seq = commit.seq;
                tracing::debug!(
                    seq,
                    upto_epoch = end,
                    files = commit.added.len(),
                    "committed"
                );
                if let Some(cap) = cap {
                    let mut rows = BTreeMap::new();
                    for f in &commit.added {
                        *rows.entry(f.table.clone()).or_insert(0) += f.rows;
                    }
                    out.session(&cap).give(CommitSummary {
                        seq,
                        upto_epoch: end,
                        rows,
                        files: commit.added.len(),
                        offsets: commit.offsets.clone(),
                    });
                }
            }
        }
    });
    summaries
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use fleetflow_model::{TripRules, encode_to_vec};
    use timely::dataflow::InputHandleVec;
    use timely::dataflow::operators::{Inspect, Probe};

    use super::*;
    use crate::source::raw_record::RawRecord;
    use crate::synthetic::{FleetShape, generate};
    use crate::trips::sessionize::{RuleBook, Sessionizer};
    use crate::trips::sessionize_operator::Sessionize;

    /// Runs sessionize and the sink into `dir` (1 s windows, at most `part_rows` positions
    /// rows per window and worker). Each round's records are read at its epoch, and then the
    /// source reports its next offset (partition 0). Returns the commit summaries.
    fn run_sink(
        dir: &std::path::Path,
        part_rows: usize,
        rounds: Vec<(Epoch, Vec<RawRecord>, i64)>,
    ) -> Vec<CommitSummary> {
        let sink = SinkConfig::new(CommitLog::new(dir), 1_000, None).with_part_rows(part_rows);
        timely::execute_directly(move |worker| {
            let seen = Rc::new(RefCell::new(Vec::new()));
            let mut input = InputHandleVec::<Epoch, RawRecord>::new();
            let mut offsets = InputHandleVec::<Epoch, (i32, i64)>::new();
            let probe = worker.dataflow::<Epoch, _, _>(|scope| {
                let streams = input.to_stream(scope).sessionize(|| {
                    Sessionizer::new(RuleBook::new(&TripRules::default()), 3_600_000)
                });
                let seen = seen.clone();
                streams
                    .write_parquet(offsets.to_stream(scope), sink)
                    .inspect(move |s| seen.borrow_mut().push(s.clone()))
                    .probe()
                    .0
            });
            for (epoch, records, next_offset) in rounds {
                input.advance_to(epoch);
                offsets.advance_to(epoch);
                for record in records {
                    input.send(record);
                }
                offsets.send((0, next_offset));
            }
            input.close();
            offsets.close();
            while !probe.done() {
                worker.step();
            }
            seen.take()
        })
    }

    /// `shape`'s records, numbered from offset 0.
    fn raw_records(shape: &FleetShape) -> Vec<RawRecord> {
        generate(shape)
            .iter()
            .enumerate()
            .map(|(i, r)| RawRecord {
                partition: 0,
                offset: i as i64,
                key: Some(r.vehicle.clone().into_bytes()),
                payload: encode_to_vec(r),
            })
            .collect()
    }

    /// A window with more `positions` rows than a worker may hold is written in parts as they
    /// fill, each a sorted file, all committed at the window's end: the table holds exactly the
    /// rows one file per window gives, and every other table is unchanged.
    #[test]
    fn a_full_window_is_written_in_parts_and_committed_whole() {
        use arrow::array::AsArray;
        use arrow::datatypes::TimestampMillisecondType;
        use fleetflow_tables::table_reader::{position_keys, read_table, table_files};

        let records = raw_records(&FleetShape {
            vehicles: 3,
            fixes_per_vehicle: 400,
            batch: 10,
            ..FleetShape::default()
        });
        let n = records.len() as i64;
        let base =
            std::env::temp_dir().join(format!("fleetflow-sink-parts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (whole, parts) = (base.join("whole"), base.join("parts"));
        let one = run_sink(&whole, usize::MAX, vec![(500, records.clone(), n)]);
        let many = run_sink(&parts, 100, vec![(500, records, n)]);
        assert_eq!(one.len(), 1, "{one:?}");
        assert_eq!(many.len(), 1, "{many:?}");
        assert_eq!(one[0].rows, many[0].rows);
        assert_eq!(one[0].rows["positions"], 1_200);
        let files = |dir: &std::path::Path| table_files(dir, Table::Positions).unwrap().len();
        assert_eq!(files(&whole), 1);
        assert!(files(&parts) >= 12, "{} files", files(&parts));
        assert_eq!(
            position_keys(&parts).unwrap(),
            position_keys(&whole).unwrap()
        );
        // Each part is sorted by (vehicle, time), as every table file is.
        for batch in read_table(&parts, Table::Positions).unwrap() {
            let vehicle = batch.column_by_name("vehicle").unwrap().as_string::<i32>();
            let time = batch
                .column_by_name("time")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            let keys: Vec<(&str, i64)> = (0..batch.num_rows())
                .map(|i| (vehicle.value(i), time.value(i)))
                .collect();
            assert!(keys.is_sorted(), "a part out of order");
        }
        for table in [Table::Trips, Table::Events, Table::Errors] {
            assert_eq!(
                read_table(&parts, table)
                    .unwrap()
                    .iter()
                    .map(RecordBatch::num_rows)
                    .sum::<usize>(),
                read_table(&whole, table)
                    .unwrap()
                    .iter()
                    .map(RecordBatch::num_rows)
                    .sum::<usize>(),
                "{table:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&base);
    }

    /// A stream whose last windows hold nothing but re-sent records (a client retrying
    /// acknowledged requests) is still committed, and reported, up to its end: those windows
    /// write no files, but their offsets advance.
    #[test]
    fn windows_of_only_duplicates_commit_their_offsets() {
        let dir = std::env::temp_dir().join(format!("fleetflow-sink-dups-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let records = raw_records(&FleetShape {
            vehicles: 2,
            fixes_per_vehicle: 120,
            ..FleetShape::default()
        });
        let n = records.len() as i64;
        // Epoch 1,000: every record once (offsets 0..n). Epochs 3,000 and 5,000, in windows of
        // their own: all of them again (offsets n..3n).
        let rounds = [1_000, 3_000, 5_000]
            .into_iter()
            .enumerate()
            .map(|(round, epoch)| {
                let first = round as i64 * n;
                let sent = records
                    .iter()
                    .map(|r| RawRecord {
                        offset: first + r.offset,
                        ..r.clone()
                    })
                    .collect();
                (epoch, sent, first + n)
            })
            .collect();
        let summaries = run_sink(&dir, DEFAULT_PART_ROWS, rounds);
        let windows: Vec<(Epoch, usize, i64)> = summaries
            .iter()
            .map(|s| (s.upto_epoch, s.files, s.offsets[&0]))
            .collect();
        assert_eq!(
            windows.iter().map(|w| w.0).collect::<Vec<_>>(),
            [2_000, 4_000, 6_000],
            "{windows:?}"
        );
        assert!(
            windows[0].1 > 0,
            "the first window writes files: {windows:?}"
        );
        assert_eq!(windows[1..], [(4_000, 0, 2 * n), (6_000, 0, 3 * n)]);
        let recovered = CommitLog::new(&dir).recover().unwrap().expect("a commit");
        assert_eq!(recovered.offsets, [(0, 3 * n)].into());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
