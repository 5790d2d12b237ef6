//! Background compaction: merges the small files frequent flushes leave in a partition into
//! large ones, so readers open few files with full row groups.
//!
//! Per (table, date) partition, the files smaller than half the target size and holding fewer
//! than half the target rows are candidates; when there are at least `min_files` of them, the
//! smallest are merged (up to the target size and rows, and at most eight at a time, again
//! while enough are left) into one file sorted like every table file (a k-way merge of the
//! sorted inputs, [`crate::sorted_merge`]), written under staging, and committed as one
//! compaction commit that adds the merge and removes its inputs: the commit log records it and
//! the partition directory switches in one atomic exchange ([`crate::partition_swap`]), so a
//! glob reader sees either the inputs or the merge, never both, never neither.
//!
//! A rollup table's merge is also consolidated: its change rows become one per key
//! ([`crate::rollup_consolidation`]).
//!
//! The compactor runs beside worker 0 (the committer) and commits through the same
//! [`CommitWriter`]; only the sink adds files and only the compactor removes them, so its inputs
//! are still there when it commits, and files the sink adds meanwhile stay in the directory.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use arrow::array::{RecordBatch, new_null_array};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use fleetflow_model::Table;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;
use serde::{Deserialize, Serialize};

use crate::commit_log::{CommitError, CommitWriter, DataFile, now_ms};
use crate::parquet_file::{FileKind, WRITE_BATCH_ROWS, write_file};
use crate::partition_swap;
use crate::retention::{RetentionConfig, RetentionStats, retain_once};
use crate::rollup_consolidation::consolidate;
use crate::sorted_merge::SortedMerge;

/// `[pipeline.compaction]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionConfig {
    pub enabled: bool,
    /// How often partitions are looked at, seconds.
    pub interval_secs: f64,
    /// Merge a partition once it holds this many small files.
    pub min_files: usize,
    /// Size a merged file aims at, MiB; files of half this size or more are left alone.
    pub target_mib: u64,
    /// Most rows in a merged file; files of half this or more are left alone. A merge streams
    /// (a batch per input at a time), so this bounds files, not memory: a very regular load
    /// compresses to about one byte a point, and 64 MiB alone would be some 70 million rows.
    pub target_rows: u64,
    /// How long a replaced partition directory is kept for listings in progress, seconds.
    pub retain_secs: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            enabled: true,
            interval_secs: 30.0,
            min_files: 8,
            target_mib: 64,
            target_rows: 2_000_000,
            retain_secs: 60,
        }
    }
}

impl CompactionConfig {
    fn target_bytes(&self) -> u64 {
        self.target_mib.saturating_mul(1 << 20)
    }
}

/// Compaction errors: they stop one merge, not the pipeline (except a failed commit, which the
/// sink's next commit turns into a stop; see [`CommitWriter`]).
#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    #[error("reading or writing {path}: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: ParquetError,
    },
    #[error("listing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("merging {path}: {source}")]
    Arrow {
        path: PathBuf,
        #[source]
        source: ArrowError,
    },
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Merges committed.
    pub merges: u64,
    /// Files they replaced.
    pub files_in: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rows: u64,
}

/// A committed file: its path relative to the data dir, its size and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TableFile {
    path: String,
    bytes: u64,
    rows: u64,
}

/// Most files one merge reads. A merge holds, for each input, a zstd context, a page and a
/// batch per column (~2.8 MB a `positions` file): 27 inputs were 75 MB in a catch-up's heap
/// profile (issue 39). A pass merges a partition again while it has enough candidates (up to
/// the target's rows in all), so the cap bounds memory, not how many files a pass takes in.
const MERGE_INPUTS: usize = 8;

/// Which files of one partition to merge: the smallest candidates (at most
/// [`MERGE_INPUTS`]), up to the target size and rows; `None` when there are too few.
fn pick(mut files: Vec<TableFile>, config: &CompactionConfig) -> Option<Vec<TableFile>> {
    let target = config.target_bytes();
    files.retain(|f| is_candidate(f.bytes, f.rows, config));
    if files.len() < config.min_files.max(2) {
        return None;
    }
    files.sort_by(|a, b| a.bytes.cmp(&b.bytes).then_with(|| a.path.cmp(&b.path)));
    let (mut bytes, mut rows) = (0, 0);
    let picked: Vec<TableFile> = files
        .into_iter()
        .take_while(|f| {
            bytes += f.bytes;
            rows += f.rows;
            bytes <= target && rows <= config.target_rows
        })
        .take(MERGE_INPUTS)
        .collect();
    (picked.len() >= 2).then_some(picked)
}

/// Whether a file of `bytes` and `rows` may be merged: under half of both targets.
fn is_candidate(bytes: u64, rows: u64, config: &CompactionConfig) -> bool {
    bytes < config.target_bytes() / 2 && rows < config.target_rows / 2
}

/// Row counts of committed files, each read once from its footer (a file never changes under
/// its name), so a pass reads no footer it read before. (Each commit records its files' rows
/// too, but older commits are pruned from the log: the footer is what every file still has.)
#[derive(Debug, Default)]
pub struct FileRows(HashMap<String, u64>);

impl FileRows {
    fn rows(&mut self, data_dir: &Path, path: &str) -> Result<u64, CompactionError> {
        if let Some(rows) = self.0.get(path) {
            return Ok(*rows);
        }
        let full = data_dir.join(path);
        let file = File::open(&full).map_err(|source| CompactionError::Io {
            path: full.clone(),
            source,
        })?;
        let metadata = ParquetMetaDataReader::new()
            .parse_and_finish(&file)
            .map_err(|source| CompactionError::Parquet { path: full, source })?;
        let rows = u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0);
        self.0.insert(path.to_owned(), rows);
        Ok(rows)
    }
}

/// The committed files of each partition of `table`: (partition dir relative to the data dir,
/// files). Rows are read (through `known`) only for files small enough in bytes to be
/// candidates; a larger file is given the row target, which no candidate reaches.
fn partitions(
    data_dir: &Path,
    table: Table,
    config: &CompactionConfig,
    known: &mut FileRows,
) -> Result<Vec<(String, Vec<TableFile>)>, CompactionError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CompactionError::Io { path, source }
    };
    let root = data_dir.join(table.name());
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return Ok(out);
    };
    for dir in dirs {
        let dir = dir.map_err(io(&root))?;
        let name = dir.file_name().to_string_lossy().into_owned();
        if !dir.file_type().map_err(io(&root))?.is_dir() {
            continue;
        }
        let rel = format!("{}/{name}", table.name());
        let mut files = Vec::new();
        for file in std::fs::read_dir(dir.path()).map_err(io(&dir.path()))? {
            let file = file.map_err(io(&dir.path()))?;
            let file_name = file.file_name().to_string_lossy().into_owned();
            if file_name.ends_with(".parquet") {
                let bytes = file.metadata().map_err(io(&file.path()))?.len();
                let path = format!("{rel}/{file_name}");
                let rows = if is_candidate(bytes, 0, config) {
                    // A footer that cannot be read leaves its file out (merging it would fail
                    // too), not the rest of the pass.
                    known.rows(data_dir, &path).unwrap_or_else(|error| {
                        tracing::warn!(%error, "compaction leaves out a file it cannot read");
                        config.target_rows
                    })
                } else {
                    config.target_rows
                };
                files.push(TableFile { path, bytes, rows });
            }
        }
        out.push((rel, files));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Rows per batch a merge reads from each input: with tens of inputs, a few megabytes in all.
const READ_BATCH_ROWS: usize = 8_192;

/// The batches of one input file, in its table's schema; an error names the file.
type InputBatches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// The merge of `inputs` (each sorted, as every table file is), sorted by the table's sort
/// columns: read a batch per input at a time, written out a batch at a time (so its memory is a
/// few megabytes, however many rows it merges). A rollup table's merge is consolidated, which
/// takes the whole merge at once: its change rows are few, one per key and window.
fn merge(
    data_dir: &Path,
    table: Table,
    inputs: &[TableFile],
) -> Result<Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>>>, CompactionError> {
    let schema = table.schema();
    let mut files: Vec<InputBatches> = Vec::with_capacity(inputs.len());
    for input in inputs {
        let path = data_dir.join(&input.path);
        let file = File::open(&path).map_err(|source| CompactionError::Io {
            path: path.clone(),
            source,
        })?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map(|b| b.with_batch_size(READ_BATCH_ROWS))
            .and_then(|b| b.build())
            .map_err(|source| CompactionError::Parquet {
                path: path.clone(),
                source,
            })?;
        let schema = schema.clone();
        files.push(Box::new(reader.map(move |batch| {
            batch
                .and_then(|batch| in_table_schema(batch, &schema))
                .map_err(|e| ArrowError::ExternalError(format!("{}: {e}", path.display()).into()))
        })));
    }
    let arrow = |source| CompactionError::Arrow {
        path: data_dir.join(&inputs[0].path),
        source,
    };
    let merged =
        SortedMerge::new(&schema, files, &table.sort_columns(), WRITE_BATCH_ROWS).map_err(arrow)?;
    let Some(rollup) = table.rollup() else {
        return Ok(Box::new(merged));
    };
    let batches = merged.collect::<Result<Vec<_>, _>>().map_err(arrow)?;
    let batch = concat_batches(&schema, &batches).map_err(arrow)?;
    let batch = consolidate(rollup, &batch).map_err(arrow)?;
    Ok(Box::new(std::iter::once(Ok(batch))))
}

/// `batch` with the columns of `schema`, by name: a file written before a nullable column was
/// added (`positions.attributes`, session 26) lacks it and reads as nulls there, as DataFusion
/// reads such files; the merged file has the table's current schema.
fn in_table_schema(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => Ok(column.clone()),
            None if field.is_nullable() => Ok(new_null_array(field.data_type(), batch.num_rows())),
            None => Err(ArrowError::SchemaError(format!(
                "the file has no column {:?}",
                field.name()
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// One pass over every table and partition: merges what [`pick`] selects and commits each
/// merge. Used by the background [`Compactor`] and by tests; `known` carries the row counts
/// read from footers from one pass to the next.
pub fn compact_once(
    writer: &CommitWriter,
    config: &CompactionConfig,
    known: &mut FileRows,
) -> Result<CompactionReport, CompactionError> {
    let data_dir = writer.log().data_dir().to_owned();
    let mut report = CompactionReport::default();
    let mut listed = HashSet::new();
    for table in Table::ALL {
        let listing = partitions(&data_dir, table, config, known)?;
        // Files of commits a reader holds stay as they are (after the listing: see `held_files`).
        let held = writer.log().held_files()?;
        for (partition, mut files) in listing {
            listed.extend(files.iter().map(|f| f.path.clone()));
            files.retain(|f| !held.contains(&f.path));
            // Merges go on while candidates are left, up to the target's rows in all: what
            // one merge of up to the target did before merges took at most `MERGE_INPUTS`.
            let mut rows = 0;
            while rows < config.target_rows
                && let Some(inputs) = pick(files.clone(), config)
            {
                let merged =
                    merge_and_commit(writer, &data_dir, table, &partition, &inputs, &mut report)?;
                rows += merged.rows;
                files.retain(|f| !inputs.contains(f));
                listed.insert(merged.path.clone());
                known.0.insert(merged.path.clone(), merged.rows);
                files.push(merged);
            }
        }
    }
    // Forget the files that are gone (merged away); a file listed again is read no more.
    known.0.retain(|path, _| listed.contains(path));
    Ok(report)
}

/// Merges `inputs` (files of `partition`), commits the merge in their place and counts it in
/// `report`; returns the merged file.
fn merge_and_commit(
    writer: &CommitWriter,
    data_dir: &Path,
    table: Table,
    partition: &str,
    inputs: &[TableFile],
    report: &mut CompactionReport,
) -> Result<TableFile, CompactionError> {
    let batches = merge(data_dir, table, inputs)?;
    let name = format!("part-c{}-{}.parquet", now_ms(), report.merges);
    let path = format!("{partition}/{name}");
    let staged = format!("_fleetflow/staging/compaction/{path}");
    let written = write_file(&data_dir.join(&staged), table, FileKind::Compacted, batches)
        .map_err(|source| CompactionError::Parquet {
            path: data_dir.join(&staged),
            source,
        })?;
    let added_path = path.clone();
    let added = DataFile {
        table: table.name().to_owned(),
        path,
        staged,
        rows: written.rows,
        bytes: written.bytes,
    };
    let removed = inputs.iter().map(|f| f.path.clone()).collect();
    let commit = writer.commit_compaction(vec![added], removed)?;
    tracing::debug!(
        seq = commit.seq,
        partition = %partition,
        files = inputs.len(),
        rows = written.rows,
        "compacted"
    );
    report.merges += 1;
    report.files_in += inputs.len() as u64;
    report.bytes_in += inputs.iter().map(|f| f.bytes).sum::<u64>();
    report.bytes_out += written.bytes;
    report.rows += written.rows;
    Ok(TableFile {
        path: added_path,
        bytes: written.bytes,
        rows: written.rows,
    })
}

/// The background compaction thread.
#[derive(Debug)]
pub struct Compactor {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Compactor {
    /// Starts compacting (when `config.enabled`) and applying `retention` every
    /// `interval_secs`; `on_report` sees each pass that merged something, `retained` counts
    /// what retention removed. Returns `None` (and says why) when the filesystem lacks the
    /// atomic exchange.
    pub fn spawn(
        writer: Arc<CommitWriter>,
        config: CompactionConfig,
        retention: RetentionConfig,
        retained: Arc<RetentionStats>,
        on_report: impl Fn(&CompactionReport) + Send + 'static,
    ) -> Option<Compactor> {
        let scratch = writer.log().data_dir().join("_fleetflow");
        match std::fs::create_dir_all(&scratch)
            .and_then(|()| partition_swap::exchange_supported(&scratch))
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(dir = %scratch.display(), "compaction off: the filesystem has no atomic directory exchange (renameat2 RENAME_EXCHANGE)");
                return None;
            }
            Err(error) => {
                tracing::warn!(dir = %scratch.display(), %error, "compaction off: cannot probe the filesystem");
                return None;
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let interval = Duration::from_secs_f64(config.interval_secs.max(0.01));
        let grace = Duration::from_secs(config.retain_secs);
        let handle = std::thread::Builder::new()
            .name("fleetflow-compactor".into())
            .spawn(move || {
                lower_priority();
                let mut known = FileRows::default();
                let retains = !retention.days.is_empty();
                while !sleep_unless_stopped(&stopping, interval) {
                    let compacted = match config.enabled {
                        true => compact_once(&writer, &config, &mut known),
                        false => Ok(CompactionReport::default()),
                    };
                    match compacted {
                        Ok(report) if report.merges > 0 => on_report(&report),
                        Ok(_) => {}
                        Err(CompactionError::Commit(error)) => {
                            // The sink's next commit is refused too: the pipeline stops and
                            // recovery finishes this one.
                            tracing::error!(%error, "compaction commit failed; compactor stops");
                            return;
                        }
                        Err(error) => tracing::warn!(%error, "compaction skipped a merge"),
                    }
                    if retains {
                        match retain_once(&writer, &retention, now_ms()) {
                            Ok(report) => retained.record(&report),
                            Err(error @ CommitError::Io { .. }) => {
                                tracing::warn!(%error, "retention skipped a pass");
                            }
                            Err(error) => {
                                tracing::error!(%error, "retention commit failed; compactor stops");
                                return;
                            }
                        }
                    }
                    if let Err(error) = writer.log().prune_retired(grace) {
                        tracing::warn!(%error, "cannot delete retired partition directories");
                    }
                }
            })
            .expect("spawning the compactor thread");
        Some(Compactor { stop, handle })
    }

    /// Stops after the pass in progress.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.thread().unpark();
        let _ = self.handle.join();
    }
}

/// Nice value of the compactor thread: the scheduler gives it about a tenth of a core's
/// share against a busy normal thread.
const COMPACTOR_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority. Compaction is never on the path from a record to
/// its commit, so when the cores are busy the dataflow and its Parquet writers come first and
/// compaction catches up when they idle; small files only wait a little longer to be merged.
fn lower_priority() {
    // On Linux a thread id names one thread to setpriority(PRIO_PROCESS).
    let thread = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(thread), COMPACTOR_NICE) {
        tracing::debug!(%error, "compactor keeps the normal CPU priority");
    }
}

/// Sleeps `interval` (waking early on stop); true if stopped.
fn sleep_unless_stopped(stop: &AtomicBool, interval: Duration) -> bool {
    let deadline = std::time::Instant::now() + interval;
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::park_timeout(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, bytes: u64) -> TableFile {
        TableFile {
            path: path.into(),
            bytes,
            rows: bytes / 10,
        }
    }

    #[test]
    fn picks_the_smallest_files_up_to_the_target() {
        let config = CompactionConfig {
            min_files: 3,
            target_mib: 1,
            ..CompactionConfig::default()
        };
        let mib = 1 << 20;
        // Too few small files.
        assert_eq!(
            pick(vec![file("a", 10), file("b", 10), file("c", mib)], &config),
            None
        );
        let picked = pick(
            vec![
                file("big", mib / 2),
                file("d", 300_000),
                file("c", 300_000),
                file("a", 10),
                file("b", 20),
                file("e", 500_000),
            ],
            &config,
        )
        .unwrap();
        let names: Vec<_> = picked.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_merge_reads_at_most_merge_inputs_files() {
        let config = CompactionConfig {
            min_files: 2,
            ..CompactionConfig::default()
        };
        let files = (0..3 * MERGE_INPUTS as u64)
            .map(|i| file(&format!("f{i:02}"), 100 + i))
            .collect();
        let picked = pick(files, &config).unwrap();
        let names: Vec<_> = picked.iter().map(|f| f.path.clone()).collect();
        let smallest: Vec<_> = (0..MERGE_INPUTS).map(|i| format!("f{i:02}")).collect();
        assert_eq!(names, smallest);
    }

    #[test]
    fn the_row_target_bounds_a_merge_of_well_compressed_files() {
        let config = CompactionConfig {
            min_files: 2,
            target_mib: 64,
            target_rows: 1_000,
            ..CompactionConfig::default()
        };
        let compressed = |path: &str, rows: u64| TableFile {
            path: path.into(),
            bytes: 100,
            rows,
        };
        // Small in bytes, but half the row target or more: not a candidate.
        assert_eq!(
            pick(vec![compressed("a", 500), compressed("b", 600)], &config),
            None
        );
        // Merged up to the row target, smallest first.
        let picked = pick(
            vec![
                compressed("a", 400),
                compressed("b", 300),
                compressed("c", 400),
                compressed("d", 450),
            ],
            &config,
        )
        .unwrap();
        let rows: u64 = picked.iter().map(|f| f.rows).sum();
        assert_eq!(picked.len(), 2);
        assert!(rows <= config.target_rows, "{rows} rows");
    }

    /// A `positions` file from before `attributes` merges with newer ones: nulls there.
    #[test]
    fn an_older_file_reads_in_the_current_schema() {
        use arrow::array::{Array, ArrayRef, Int64Array};
        use arrow::datatypes::{DataType, Field, Schema};
        let current: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("kafka_offset", DataType::Int64, false),
            Field::new("attributes", DataType::Utf8, true),
        ]));
        let old = RecordBatch::try_new(
            Arc::new(Schema::new(vec![current.field(0).clone()])),
            vec![Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef],
        )
        .unwrap();
        let read = in_table_schema(old, &current).unwrap();
        assert_eq!(read.schema(), current);
        assert_eq!(read.column(1).null_count(), 2);
        // A missing non-nullable column is an error, not nulls.
        let empty = RecordBatch::new_empty(Arc::new(Schema::new(vec![current.field(1).clone()])));
        assert!(in_table_schema(empty, &current).is_err());
    }
}
