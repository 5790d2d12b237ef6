//! Retention: each table keeps the date partitions of its last `days` days (UTC, by the
//! partition's date: a row's event time, a trip's start, a rollup's period); older partitions
//! are removed whole. Design note: `retention.md`, beside this file.
//!
//! Two steps, so that no query fails and none sees part of a partition:
//! 1. **Publish** the cutoff (the oldest date kept) per table in `_fleetflow/retention.json`.
//!    The SQL engine reads it for every session and filters each table on `date >= cutoff`, a
//!    filter on the partition column that prunes the listing: new queries never open a file of
//!    an expired partition.
//! 2. **Remove**, once a cutoff has been published for `grace_secs` (longer than the query
//!    timeout, so every query that listed the partition before has finished), the partitions
//!    before it: one commit per partition that removes its files (the commit log records it; the
//!    directory switches in one exchange, as for compaction), never a file of a commit a reader
//!    holds.
//!
//! A longer setting moves the cutoff back at once (what is still on disk is queried again); the
//! removal step checks the current setting again, so a retention change never deletes what a
//! newer setting keeps. Runs on the compactor's thread, so merges and removals never overlap.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fleetflow_model::{Rollup, Table};
use serde::{Deserialize, Serialize};

use crate::commit_log::{CommitError, CommitWriter};

const DAY_MS: i64 = 86_400_000;

/// `[pipeline.retention]` in the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days to keep per table (`positions = 90`), besides today; a table not named is kept
    /// forever. Rollups are named by their view (`vehicle_hourly`) or table
    /// (`vehicle_hourly_changes`).
    pub days: BTreeMap<String, u32>,
    /// How long a cutoff is published before the partitions before it are removed, seconds:
    /// longer than the longest query (`[query] timeout_secs`, 30 by default).
    pub grace_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            days: BTreeMap::new(),
            grace_secs: 120,
        }
    }
}

impl RetentionConfig {
    /// The tables with a limit, and their days; an unknown name is an error naming it.
    pub fn limits(&self) -> Result<BTreeMap<Table, u32>, String> {
        let mut out = BTreeMap::new();
        for (name, days) in &self.days {
            let table = Table::from_name(name)
                .or_else(|| {
                    Rollup::ALL
                        .into_iter()
                        .find(|r| r.view() == name)
                        .map(Rollup::table)
                })
                .ok_or_else(|| {
                    format!("pipeline.retention.days: no table {name:?} (positions, trips, events, errors, geofence_visits, vehicle_hourly, vehicle_daily, company_hourly, company_daily)")
                })?;
            out.insert(table, *days);
        }
        Ok(out)
    }
}

/// A table's published cutoff: the first UTC day (days since 1970) kept, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutoff {
    pub day: i64,
    pub since_ms: i64,
}

/// The published cutoffs, by table name (`_fleetflow/retention.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutoffs {
    pub tables: BTreeMap<String, Cutoff>,
}

fn cutoffs_path(data_dir: &Path) -> PathBuf {
    data_dir.join("_fleetflow").join("retention.json")
}

/// The published cutoffs (none when nothing was published or the file is unreadable: then
/// nothing has been removed either, since removal follows publication).
pub fn read_cutoffs(data_dir: &Path) -> Cutoffs {
    std::fs::read(cutoffs_path(data_dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

impl Cutoffs {
    /// The first day `table` keeps, if it has a cutoff.
    pub fn first_day(&self, table: Table) -> Option<i64> {
        self.tables.get(table.name()).map(|c| c.day)
    }
}

fn publish(data_dir: &Path, cutoffs: &Cutoffs) -> Result<(), CommitError> {
    let path = cutoffs_path(data_dir);
    let io = |source| CommitError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(path.parent().expect("under _fleetflow")).map_err(io)?;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(cutoffs).expect("cutoffs serialize");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)?;
    crate::commit_log::sync_dir(path.parent().expect("under _fleetflow"))
}

/// What one pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub partitions: u64,
    pub files: u64,
    pub bytes: u64,
    /// The cutoffs in force after the pass: per table name, the first day kept.
    pub cutoffs: BTreeMap<String, i64>,
}

/// Totals since start, for `/metrics` and `/status`.
#[derive(Debug, Default)]
pub struct RetentionStats {
    pub partitions: AtomicU64,
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    /// Per table name, the first day kept (days since 1970), as of the last pass.
    pub cutoffs: std::sync::Mutex<BTreeMap<String, i64>>,
}

impl RetentionStats {
    pub fn record(&self, report: &RetentionReport) {
        self.partitions
            .fetch_add(report.partitions, Ordering::Relaxed);
        self.files.fetch_add(report.files, Ordering::Relaxed);
        self.bytes.fetch_add(report.bytes, Ordering::Relaxed);
        *self.cutoffs.lock().unwrap_or_else(|e| e.into_inner()) = report.cutoffs.clone();
    }
}

/// The `date=YYYY-MM-DD` partitions of `table`, as (day, directory name).
fn partitions(data_dir: &Path, table: Table) -> std::io::Result<Vec<(i64, String)>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(data_dir.join(table.name())) else {
        return Ok(out);
    };
    for entry in entries {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(day) = parse_partition(name) {
            out.push((day, name.to_owned()));
        }
    }
    out.sort();
    Ok(out)
}

/// The day of `date=YYYY-MM-DD`.
fn parse_partition(name: &str) -> Option<i64> {
    let date = name.strip_prefix("date=")?;
    let mut parts = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, m, d) = (
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    );
    let day = fleetflow_model::compact_time::days_from_civil(y, m, d);
    (fleetflow_model::partition_dir(day * DAY_MS) == name).then_some(day)
}

/// One pass at wall-clock `now_ms`: publishes the cutoffs `config` implies, then removes the
/// partitions before cutoffs published at least `grace_secs` ago (and still implied).
pub fn retain_once(
    writer: &CommitWriter,
    config: &RetentionConfig,
    now_ms: i64,
) -> Result<RetentionReport, CommitError> {
    let data_dir = writer.log().data_dir().to_owned();
    let limits = config.limits().unwrap_or_default();
    let today = now_ms.div_euclid(DAY_MS);
    let published = read_cutoffs(&data_dir);
    let mut next = Cutoffs::default();
    for (table, days) in &limits {
        let day = today - i64::from(*days);
        // A new cutoff (the day turned, or the setting changed) is published now; what it
        // uncovers (a longer setting) is queried again at once, what it hides is removed once
        // its grace has passed.
        let cutoff = match published.tables.get(table.name()) {
            Some(c) if c.day == day => *c,
            _ => Cutoff {
                day,
                since_ms: now_ms,
            },
        };
        next.tables.insert(table.name().to_owned(), cutoff);
    }
    if next != published {
        publish(&data_dir, &next)?;
    }
    let mut report = RetentionReport {
        cutoffs: next
            .tables
            .iter()
            .map(|(t, c)| (t.clone(), c.day))
            .collect(),
        ..RetentionReport::default()
    };
    let held = writer.log().held_files()?;
    for table in limits.keys() {
        let Some(cutoff) = next.tables.get(table.name()) else {
            continue;
        };
        if cutoff.since_ms.saturating_add(grace_ms(config)) > now_ms {
            continue;
        }
        // The cutoff is the current setting's (computed above from it).
        let first_kept = cutoff.day;
        let listed = partitions(&data_dir, *table).map_err(|source| CommitError::Io {
            path: data_dir.join(table.name()),
            source,
        })?;
        for (day, name) in listed {
            if day >= first_kept {
                break;
            }
            let dir = format!("{}/{name}", table.name());
            let files = partition_files(&data_dir, &dir)?;
            let files: Vec<(String, u64)> = files
                .into_iter()
                .filter(|(path, _)| !held.contains(path))
                .collect();
            if files.is_empty() {
                continue;
            }
            let removed = files.iter().map(|(p, _)| p.clone()).collect();
            let commit = writer.commit_compaction(Vec::new(), removed)?;
            tracing::info!(seq = commit.seq, table = table.name(), partition = %name, files = files.len(), "retention removed a partition");
            report.partitions += 1;
            report.files += files.len() as u64;
            report.bytes += files.iter().map(|(_, b)| b).sum::<u64>();
        }
    }
    Ok(report)
}

fn grace_ms(config: &RetentionConfig) -> i64 {
    i64::try_from(config.grace_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The Parquet files of partition `dir` (relative to the data dir), with their sizes.
fn partition_files(data_dir: &Path, dir: &str) -> Result<Vec<(String, u64)>, CommitError> {
    let path = data_dir.join(dir);
    let io = |source| CommitError::Io {
        path: path.clone(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".parquet") && !name.starts_with('.') {
            let bytes = entry.metadata().map_err(io)?.len();
            out.push((format!("{dir}/{name}"), bytes));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse_only_when_well_formed() {
        assert_eq!(parse_partition("date=2020-12-01"), Some(18_597));
        assert_eq!(parse_partition("date=2020-12-1"), None);
        assert_eq!(parse_partition("date=2020-13-01"), None);
        assert_eq!(parse_partition("x=2020-12-01"), None);
    }

    #[test]
    fn unknown_tables_are_named() {
        let config = RetentionConfig {
            days: [
                ("positions".to_owned(), 90),
                ("vehicle_daily".to_owned(), 400),
            ]
            .into(),
            ..RetentionConfig::default()
        };
        let limits = config.limits().unwrap();
        assert_eq!(limits[&Table::Positions], 90);
        assert_eq!(limits[&Table::VehicleDaily], 400);
        let bad = RetentionConfig {
            days: [("position".to_owned(), 90)].into(),
            ..RetentionConfig::default()
        };
        assert!(bad.limits().unwrap_err().contains("\"position\""));
    }
}
