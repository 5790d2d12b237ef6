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
//! [`CommitLog::recover`] runs before the dataflow starts: it finishes the newest commit (renames
//! its staged files into the tables and deletes what it removes, both idempotent) and deletes
//! staged files no commit lists (a window that was written but never committed).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

/// The commit log of one data dir.
#[derive(Debug, Clone)]
pub struct CommitLog {
    data_dir: PathBuf,
}

impl CommitLog {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        CommitLog {
            data_dir: data_dir.into(),
        }
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

    /// Renames staged files into place and deletes removed ones; idempotent.
    fn apply(&self, commit: &Commit) -> Result<(), CommitError> {
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
        for removed in &commit.removed {
            let path = self.data_dir.join(removed);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        for dir in touched_dirs {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    fn trim(&self, newest: u64) -> Result<(), CommitError> {
        if !newest.is_multiple_of(100) {
            return Ok(());
        }
        let seqs = self.sequence_numbers()?;
        if seqs.len() > KEEP_COMMITS {
            for seq in &seqs[..seqs.len() - KEEP_COMMITS] {
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
        let staging = self.staging_dir();
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io(&staging))?;
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
        c2.removed = vec!["positions/date=2020-12-01/part-1.parquet".into()];
        fs::write(log.commit_path(2), serde_json::to_vec(&c2).unwrap()).unwrap();
        assert_eq!(log.recover().unwrap(), Some(c2));
        assert!(dir.join("trips/date=2020-12-01/part-3.parquet").exists());
        assert!(
            !dir.join("positions/date=2020-12-01/part-1.parquet")
                .exists()
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
