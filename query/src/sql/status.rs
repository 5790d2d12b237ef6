//! What `/status` says about the query side: the engine, its threads, its memory pool and the
//! tables a session sees (history on disk, live views in memory).

use std::path::Path;
use std::sync::atomic::Ordering;

use datafusion::execution::memory_pool::MemoryLimit;
use fleetflow_model::Table;
use serde::Serialize;

use crate::sql::engine::SqlEngine;
use crate::sql::live_tables::LiveTable;

/// `/status`'s `query` section.
#[derive(Debug, Clone, Serialize)]
pub struct QueryStatus {
    /// `"up"` once the engine is built (it serves from then on).
    pub engine: &'static str,
    pub datafusion: &'static str,
    /// Threads that run queries.
    pub threads: usize,
    pub memory_pool: MemoryPoolStatus,
    /// Statements planned since start (HTTP, history routes and Postgres wire).
    pub queries: u64,
    pub tables: Vec<TableStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemoryPoolStatus {
    /// `None`: unbounded.
    pub limit_bytes: Option<usize>,
    /// Held by running queries now.
    pub reserved_bytes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableStatus {
    pub name: &'static str,
    /// `history` (Parquet under the data dir) or `live` (the pipeline's views, in memory).
    pub kind: &'static str,
    /// Committed Parquet files and their bytes (history tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl SqlEngine {
    /// The engine as `/status` reports it (walks the history directories: cheap next to a query).
    pub fn status(&self) -> QueryStatus {
        let pool = &self.runtime().memory_pool;
        let limit_bytes = match pool.memory_limit() {
            MemoryLimit::Finite(bytes) => Some(bytes),
            MemoryLimit::Infinite | MemoryLimit::Unknown => None,
        };
        let mut tables: Vec<TableStatus> = Table::ALL
            .into_iter()
            .map(|table| {
                let (files, bytes) = parquet_files(&self.data_dir().join(table.name()));
                TableStatus {
                    name: table.name(),
                    kind: "history",
                    files: Some(files),
                    bytes: Some(bytes),
                }
            })
            .collect();
        if self.has_live() {
            tables.extend(LiveTable::ALL.into_iter().map(|table| TableStatus {
                name: table.name(),
                kind: "live",
                files: None,
                bytes: None,
            }));
        }
        QueryStatus {
            engine: "up",
            datafusion: datafusion::DATAFUSION_VERSION,
            threads: self.thread_count(),
            memory_pool: MemoryPoolStatus {
                limit_bytes,
                reserved_bytes: pool.reserved(),
            },
            queries: self.queries_planned().load(Ordering::Relaxed),
            tables,
        }
    }
}

/// Committed `.parquet` files under a table directory (date partitions one level down), and
/// their bytes. Staged and retired files live elsewhere (`_fleetflow/`).
fn parquet_files(dir: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                files += 1;
                bytes += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    (files, bytes)
}
