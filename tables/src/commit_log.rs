//! The commit log: which files the tables hold and which Kafka offsets they cover.
//!
//! `<data-dir>/_fleetflow/commits/<seq>.json`, one file per commit, each written under a
//! temporary name, fsync'd and renamed, so a commit either exists whole or not at all. A commit
//! lists the data files it adds (written beforehand under `_fleetflow/staging/`) and removes
//! (compaction), and carries the complete offset state:
//! - `offsets`: per partition, the next Kafka offset to read; everything before it is in the
//!   tables, nothing after it is;
//! - `replay_from`: per partition, where a restart must start reading to rebuild the
//!   sessionizer's state; records from there up to `offsets` are re-read but produce no rows.
//!
//! Two kinds of commit, made one at a time through one [`CommitWriter`]:
//! - a window's: its staged files are renamed into the tables;
//! - a compaction's: it replaces files of one partition directory by their merge, in one atomic
//!   directory exchange ([`crate::partition_swap`]); offsets stay as they were.
//!
//! [`CommitLog::recover`] runs before the dataflow starts: it finishes the newest commit (both
//! kinds of apply are idempotent) and deletes staged files no commit lists (a window that was
//! written but never committed, a merge that was never committed).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::partition_swap;

/// A file a commit adds to a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    pub table: String,
    /// Where it lives once committed, relative to the data dir (`positions/date=.../part-...`).
    pub path: String,
    /// Where it was written, relative to the data dir (`_fleetflow/staging/...`).
    pub staged: String,
    pub rows: u64,
    pub bytes: u64,
}

/// One commit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub seq: u64,
    /// The dataflow timestamps this commit covers end before this epoch (ms).
    pub upto_epoch: u64,
    pub offsets: BTreeMap<i32, i64>,
    pub replay_from: BTreeMap<i32, i64>,
    pub added: Vec<DataFile>,
    /// Paths (relative to the data dir) this commit removes: compaction's inputs.
    #[serde(default)]
    pub removed: Vec<String>,
    pub committed_at_ms: i64,
    /// The Kafka cluster these offsets are positions in (its cluster id), when the broker
    /// reported one: a restart against another cluster is refused (`broker_check.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

/// Commit log errors.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("commit log I/O at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("commit {path} is unreadable: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("compaction commit {seq} spans several partitions or none")]
    NotOnePartition { seq: u64 },
    #[error("an earlier commit failed to apply; the pipeline must restart to recover")]
    Failed,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CommitError + '_ {
    move |source| CommitError::Io {
        path: path.to_owned(),
        source,
    }
}

/// How many commit records to keep: each carries the whole offset state, so older ones are
/// only history.
const KEEP_COMMITS: usize = 1000;

/// A reader's hold on the commit log (Materialize's read hold): every commit after
/// [`ReadHold::get`] must stay readable as it was committed, its files not compacted away and
/// its record not trimmed, until the reader has read it and advanced the hold. The webhook
/// dispatcher holds the commits whose events it has not yet handed to its outboxes.
#[derive(Debug, Clone)]
pub struct ReadHold(Arc<AtomicU64>);

impl ReadHold {
    /// A hold at `seq`: commits after it are held.
    pub fn new(seq: u64) -> ReadHold {
        ReadHold(Arc::new(AtomicU64::new(seq)))
    }

    /// The newest commit the reader is done with.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// The reader is done with every commit up to `seq`.
    pub fn advance(&self, seq: u64) {
        self.0.fetch_max(seq, Ordering::AcqRel);
    }
}

/// The commit log of one data dir.
#[derive(Debug, Clone)]
pub struct CommitLog {
    data_dir: PathBuf,
    hold: Option<ReadHold>,
}

impl CommitLog {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        CommitLog {
            data_dir: data_dir.into(),
            hold: None,
        }
    }

    /// This log, with commits after `hold` kept readable (see [`ReadHold`]).
    pub fn with_read_hold(mut self, hold: Option<ReadHold>) -> Self {
        self.hold = hold;
        self
    }

    /// The files added by commits a reader still holds: compaction leaves them alone. Call it
    /// after listing the files it would merge: a file can only be listed once its commit is
    /// durable, so every listed file of a held commit is found.
    pub fn held_files(&self) -> Result<std::collections::HashSet<String>, CommitError> {
        let mut held = std::collections::HashSet::new();
        let Some(hold) = &self.hold else {
            return Ok(held);
        };
        let from = hold.get();
        for seq in self.sequence_numbers()? {
            if seq > from {
                match self.read(seq) {
                    Ok(commit) => held.extend(commit.added.into_iter().map(|f| f.path)),
                    // Trimmed meanwhile: it was not held.
                    Err(CommitError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(held)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn commits_dir(&self) -> PathBuf {
        self.data_dir.join("_fleetflow").join("commits")
    }

    pub fn staging_dir(&self) -> PathBuf {
        self.data_dir.join("_fleetflow").join("staging")
    }

    /// Where partition directories replaced by compaction go, until nobody can still be listing
    /// them.
    pub fn retired_dir(&self) -> PathBuf {
        self.data_dir.join("_fleetflow").join("retired")
    }

    fn commit_path(&self, seq: u64) -> PathBuf {
        self.commits_dir().join(format!("{seq:020}.json"))
    }

    /// Sequence numbers of the commits on disk, ascending.
    pub fn sequence_numbers(&self) -> Result<Vec<u64>, CommitError> {
        let dir = self.commits_dir();
        let mut seqs = Vec::new();
        match fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let name = entry.map_err(io(&dir))?.file_name();
                    let name = name.to_string_lossy();
                    if let Some(seq) = name
                        .strip_suffix(".json")
                        .and_then(|s| s.parse::<u64>().ok())
                    {
                        seqs.push(seq);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&dir)(e)),
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    pub fn read(&self, seq: u64) -> Result<Commit, CommitError> {
        let path = self.commit_path(seq);
        let bytes = fs::read(&path).map_err(io(&path))?;
        serde_json::from_slice(&bytes).map_err(|source| CommitError::Corrupt { path, source })
    }

    /// The newest commit, if any.
    pub fn latest(&self) -> Result<Option<Commit>, CommitError> {
        match self.sequence_numbers()?.last() {
            Some(&seq) => self.read(seq).map(Some),
            None => Ok(None),
        }
    }

    /// Makes `commit` durable, then applies it: staged files renamed into the tables, removed
    /// files deleted. A crash anywhere leaves either no commit (its staged files are deleted by
    /// the next recovery) or the commit (recovery finishes applying it).
    pub fn commit(&self, commit: &Commit) -> Result<(), CommitError> {
        if !commit.removed.is_empty() {
            compaction_names(commit)?;
        }
        let dir = self.commits_dir();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let tmp = dir.join(format!(".{:020}.json.tmp", commit.seq));
        {
            let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
            let bytes = serde_json::to_vec_pretty(commit).expect("commits serialize");
            file.write_all(&bytes).map_err(io(&tmp))?;
            file.sync_all().map_err(io(&tmp))?;
        }
        let path = self.commit_path(commit.seq);
        fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&dir)?;
        self.apply(commit)?;
        self.trim(commit.seq)
    }

    /// Applies a durable commit; idempotent.
    fn apply(&self, commit: &Commit) -> Result<(), CommitError> {
        if commit.removed.is_empty() {
            self.apply_window(commit)
        } else {
            self.apply_compaction(commit)
        }
    }

    /// Renames a window's staged files into place.
    fn apply_window(&self, commit: &Commit) -> Result<(), CommitError> {
        let mut touched_dirs = Vec::new();
        for file in &commit.added {
            let staged = self.data_dir.join(&file.staged);
            let target = self.data_dir.join(&file.path);
            if staged.exists() {
                let parent = target
                    .parent()
                    .expect("table files live in a partition dir")
                    .to_owned();
                fs::create_dir_all(&parent).map_err(io(&parent))?;
                fs::rename(&staged, &target).map_err(io(&target))?;
                if !touched_dirs.contains(&parent) {
                    touched_dirs.push(parent);
                }
            }
        }
        for dir in touched_dirs {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Replaces a compaction's inputs by its output in one directory exchange.
    fn apply_compaction(&self, commit: &Commit) -> Result<(), CommitError> {
        let (dir, names) = compaction_names(commit)?;
        let (remove, add_names) = names.split_at(commit.removed.len());
        let staged: Vec<PathBuf> = commit
            .added
            .iter()
            .map(|f| self.data_dir.join(&f.staged))
            .collect();
        let add: Vec<(&Path, &str)> = staged
            .iter()
            .map(PathBuf::as_path)
            .zip(add_names.iter().copied())
            .collect();
        let live = self.data_dir.join(&dir);
        let side = self
            .retired_dir()
            .join(format!("{:020}", commit.seq))
            .join(&dir);
        partition_swap::replace_files(&live, &side, remove, &add).map_err(io(&live))?;
        for path in &staged {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(path)(e)),
            }
        }
        Ok(())
    }

    /// Deletes partition directories retired by compaction more than `grace` ago.
    pub fn prune_retired(&self, grace: Duration) -> Result<(), CommitError> {
        let dir = self.retired_dir();
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries {
            let entry = entry.map_err(io(&dir))?;
            let old_enough = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= grace);
            if old_enough {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(io(&path))?;
            }
        }
        Ok(())
    }

    fn trim(&self, newest: u64) -> Result<(), CommitError> {
        if !newest.is_multiple_of(100) {
            return Ok(());
        }
        let seqs = self.sequence_numbers()?;
        if seqs.len() > KEEP_COMMITS {
            let held = self.hold.as_ref().map_or(u64::MAX, ReadHold::get);
            for seq in seqs[..seqs.len() - KEEP_COMMITS]
                .iter()
                .filter(|seq| **seq <= held)
            {
                let path = self.commit_path(*seq);
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(())
    }

    /// Brings the data dir to the state of its newest commit and returns that commit. Run it
    /// before the dataflow starts, from one process.
    pub fn recover(&self) -> Result<Option<Commit>, CommitError> {
        let latest = self.latest()?;
        if let Some(commit) = &latest {
            self.apply(commit)?;
        }
        for scratch in [self.staging_dir(), self.retired_dir()] {
            if scratch.exists() {
                fs::remove_dir_all(&scratch).map_err(io(&scratch))?;
            }
        }
        // Temporary commit files of a commit that never completed.
        if let Ok(entries) = fs::read_dir(self.commits_dir()) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(latest)
    }
}

/// A compaction commit's partition directory and the file names it removes then adds; an
/// error unless every path is in the same one.
fn compaction_names(commit: &Commit) -> Result<(PathBuf, Vec<&str>), CommitError> {
    let not_one = || CommitError::NotOnePartition { seq: commit.seq };
    let partition = |path: &str| Path::new(path).parent().map(Path::to_owned);
    let dir = commit
        .removed
        .first()
        .and_then(|p| partition(p))
        .ok_or_else(not_one)?;
    let names = commit
        .removed
        .iter()
        .map(String::as_str)
        .chain(commit.added.iter().map(|f| f.path.as_str()))
        .map(|p| match (partition(p), Path::new(p).file_name()) {
            (Some(d), Some(name)) if d == dir => name.to_str().ok_or_else(not_one),
            _ => Err(not_one()),
        })
        .collect::<Result<Vec<&str>, _>>()?;
    Ok((dir, names))
}

/// Makes commits one at a time, from the sink (windows) and the compactor (merges), and numbers
/// them. A commit that fails after it became durable leaves the tables between two states, so
/// every later commit is refused: the pipeline stops and recovery finishes the failed one.
#[derive(Debug)]
pub struct CommitWriter {
    log: CommitLog,
    state: Mutex<WriterState>,
}

#[derive(Debug)]
struct WriterState {
    /// The newest commit, without its file lists.
    last: Commit,
    failed: bool,
}

impl CommitWriter {
    /// `resume`: the commit [`CommitLog::recover`] returned.
    pub fn new(log: CommitLog, resume: Option<Commit>) -> Self {
        let mut last = resume.unwrap_or_default();
        last.added.clear();
        last.removed.clear();
        CommitWriter {
            log,
            state: Mutex::new(WriterState {
                last,
                failed: false,
            }),
        }
    }

    pub fn log(&self) -> &CommitLog {
        &self.log
    }

    /// The newest commit's sequence number, offsets and epoch (file lists empty).
    pub fn last(&self) -> Commit {
        self.lock().last.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits a window: its files and the offset state after it.
    pub fn commit_window(
        &self,
        upto_epoch: u64,
        offsets: BTreeMap<i32, i64>,
        replay_from: BTreeMap<i32, i64>,
        added: Vec<DataFile>,
    ) -> Result<Commit, CommitError> {
        self.commit_with(|last| Commit {
            seq: last.seq + 1,
            upto_epoch,
            offsets,
            replay_from,
            added,
            removed: Vec::new(),
            committed_at_ms: now_ms(),
            cluster_id: last.cluster_id.clone(),
        })
    }

    /// Commits a compaction: `removed` (paths in one partition directory) replaced by `added`
    /// (staged files for the same directory). Offsets stay those of the newest commit.
    pub fn commit_compaction(
        &self,
        added: Vec<DataFile>,
        removed: Vec<String>,
    ) -> Result<Commit, CommitError> {
        self.commit_with(|last| Commit {
            seq: last.seq + 1,
            added,
            removed,
            committed_at_ms: now_ms(),
            ..last.clone()
        })
    }

    fn commit_with(&self, make: impl FnOnce(&Commit) -> Commit) -> Result<Commit, CommitError> {
        let mut state = self.lock();
        if state.failed {
            return Err(CommitError::Failed);
        }
        let commit = make(&state.last);
        if !commit.removed.is_empty() {
            // Checked before anything is durable: a malformed commit is refused, not failed.
            compaction_names(&commit)?;
        }
        state.failed = true;
        self.log.commit(&commit)?;
        state.failed = false;
        state.last = Commit {
            added: Vec::new(),
            removed: Vec::new(),
            ..commit.clone()
        };
        Ok(commit)
    }
}

/// Wall-clock epoch milliseconds (commit times, unique file names).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// fsync a directory so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), CommitError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("fleetflow-commitlog-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn commit_renames_and_recovery_finishes_or_discards() {
        let dir = tempdir("basic");
        let log = CommitLog::new(&dir);
        assert_eq!(log.recover().unwrap(), None);
        let staged = "_fleetflow/staging/positions/date=2020-12-01/part-1.parquet";
        fs::create_dir_all(dir.join(staged).parent().unwrap()).unwrap();
        fs::write(dir.join(staged), b"one").unwrap();
        let commit = Commit {
            seq: 1,
            upto_epoch: 10,
            offsets: [(0, 5)].into(),
            replay_from: [(0, 0)].into(),
            added: vec![DataFile {
                table: "positions".into(),
                path: "positions/date=2020-12-01/part-1.parquet".into(),
                staged: staged.into(),
                rows: 1,
                bytes: 3,
            }],
            removed: vec![],
            committed_at_ms: 0,
            cluster_id: None,
        };
        log.commit(&commit).unwrap();
        assert_eq!(
            fs::read(dir.join("positions/date=2020-12-01/part-1.parquet")).unwrap(),
            b"one"
        );
        // A window written but never committed, then a crash: recovery deletes it.
        let orphan = dir.join("_fleetflow/staging/positions/date=2020-12-01/part-2.parquet");
        fs::write(&orphan, b"two").unwrap();
        assert_eq!(log.recover().unwrap(), Some(commit.clone()));
        assert!(!orphan.exists());
        // A commit made durable whose renames did not happen: recovery performs them.
        let staged3 = "_fleetflow/staging/trips/date=2020-12-01/part-3.parquet";
        fs::create_dir_all(dir.join(staged3).parent().unwrap()).unwrap();
        fs::write(dir.join(staged3), b"three").unwrap();
        let mut c2 = commit.clone();
        c2.seq = 2;
        c2.added[0].staged = staged3.into();
        c2.added[0].path = "trips/date=2020-12-01/part-3.parquet".into();
        fs::write(log.commit_path(2), serde_json::to_vec(&c2).unwrap()).unwrap();
        assert_eq!(log.recover().unwrap(), Some(c2.clone()));
        assert!(dir.join("trips/date=2020-12-01/part-3.parquet").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_read_hold_names_the_files_of_the_commits_it_holds() {
        let dir = tempdir("hold");
        let hold = ReadHold::new(1);
        let log = CommitLog::new(&dir).with_read_hold(Some(hold.clone()));
        for seq in 1..=3 {
            let staged = format!("_fleetflow/staging/events/date=2020-12-01/part-{seq}.parquet");
            fs::create_dir_all(dir.join(&staged).parent().unwrap()).unwrap();
            fs::write(dir.join(&staged), b"x").unwrap();
            let commit = Commit {
                seq,
                added: vec![DataFile {
                    table: "events".into(),
                    path: format!("events/date=2020-12-01/part-{seq}.parquet"),
                    staged,
                    rows: 1,
                    bytes: 1,
                }],
                ..Commit::default()
            };
            log.commit(&commit).unwrap();
        }
        let held = |log: &CommitLog| {
            let mut files: Vec<String> = log.held_files().unwrap().into_iter().collect();
            files.sort();
            files
        };
        assert_eq!(
            held(&log),
            [
                "events/date=2020-12-01/part-2.parquet",
                "events/date=2020-12-01/part-3.parquet"
            ]
        );
        hold.advance(3);
        hold.advance(2);
        assert_eq!(hold.get(), 3, "a hold never moves back");
        assert!(held(&log).is_empty());
        assert!(
            held(&CommitLog::new(&dir)).is_empty(),
            "no hold, nothing held"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn compaction_commit_is_finished_by_recovery() {
        let dir = tempdir("compaction");
        fs::create_dir_all(&dir).unwrap();
        if !partition_swap::exchange_supported(&dir).unwrap() {
            eprintln!("skipped: no RENAME_EXCHANGE on this filesystem");
            return;
        }
        let log = CommitLog::new(&dir);
        let part = dir.join("positions/date=2020-12-01");
        fs::create_dir_all(&part).unwrap();
        for name in ["part-1.parquet", "part-2.parquet", "part-3.parquet"] {
            fs::write(part.join(name), name).unwrap();
        }
        let staged = "_fleetflow/staging/compaction/positions/date=2020-12-01/part-c1.parquet";
        fs::create_dir_all(dir.join(staged).parent().unwrap()).unwrap();
        fs::write(dir.join(staged), b"merged").unwrap();
        let compaction = Commit {
            seq: 7,
            added: vec![DataFile {
                table: "positions".into(),
                path: "positions/date=2020-12-01/part-c1.parquet".into(),
                staged: staged.into(),
                rows: 2,
                bytes: 6,
            }],
            removed: vec![
                "positions/date=2020-12-01/part-1.parquet".into(),
                "positions/date=2020-12-01/part-2.parquet".into(),
            ],
            ..Commit::default()
        };
        // Durable, and a crash left a half-built side directory.
        fs::create_dir_all(log.commits_dir()).unwrap();
        fs::write(log.commit_path(7), serde_json::to_vec(&compaction).unwrap()).unwrap();
        let side = log
            .retired_dir()
            .join(format!("{:020}", 7))
            .join("positions/date=2020-12-01");
        fs::create_dir_all(&side).unwrap();
        fs::write(side.join("junk"), b"").unwrap();
        assert_eq!(log.recover().unwrap(), Some(compaction.clone()));
        let mut names: Vec<_> = fs::read_dir(&part)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["part-3.parquet", "part-c1.parquet"]);
        assert!(!log.retired_dir().exists() && !log.staging_dir().exists());
        // Recovering again changes nothing.
        assert_eq!(log.recover().unwrap(), Some(compaction.clone()));
        assert_eq!(fs::read(part.join("part-c1.parquet")).unwrap(), b"merged");
        // The writer continues the numbering and refuses after a failed commit.
        let writer = CommitWriter::new(log.clone(), log.latest().unwrap());
        assert_eq!(
            writer
                .commit_window(1, [].into(), [].into(), vec![])
                .unwrap()
                .seq,
            8
        );
        let bad = writer.commit_compaction(vec![], vec!["a/b/c".into(), "x/y".into()]);
        assert!(matches!(bad, Err(CommitError::NotOnePartition { seq: 9 })));
        assert_eq!(
            writer
                .commit_window(2, [].into(), [].into(), vec![])
                .unwrap()
                .seq,
            9
        );
        // A commit whose apply fails (its input directory is gone) stops every later one.
        let mut gone = compaction.clone();
        gone.removed = vec!["positions/date=2020-12-02/part-1.parquet".into()];
        gone.added[0].path = "positions/date=2020-12-02/part-c2.parquet".into();
        fs::create_dir_all(dir.join("positions/date=2020-12-02/part-1.parquet")).unwrap();
        assert!(writer.commit_compaction(gone.added, gone.removed).is_err());
        assert!(matches!(
            writer.commit_window(3, [].into(), [].into(), vec![]),
            Err(CommitError::Failed)
        ));
        let _ = fs::remove_dir_all(&dir);
    }
}
