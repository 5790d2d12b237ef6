//! The SQL behaviour, pinned by sqllogictest files (`tests/slt/*.slt`) run through the engine
//! the HTTP endpoint uses (`SqlEngine::query`: read-only checks, tenant scoping, row limit and
//! error classification included), over a synthetic history written into the Parquet layout
//! and a live store fed by hand.
//!
//! Harness directive (not SQL): `statement ok` + `as <acme|globex|admin>` switches the principal the
//! following queries run as. `SLT_COMPLETE=1` rewrites the files' expected results instead.

use std::path::{Path, PathBuf};

use arrow::array::Array;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use fleetflow_model::Principal;
use fleetflow_query::history::synthetic::{HistoryShape, write_history};
use fleetflow_query::{QueryError, SqlConfig, SqlEngine};
use sqllogictest::{DBOutput, DefaultColumnType};

#[path = "support/live_vehicle.rs"]
mod live_vehicle;
use live_vehicle::live_store;

#[derive(Debug)]
struct HarnessError(String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

impl From<QueryError> for HarnessError {
    fn from(e: QueryError) -> Self {
        HarnessError(match &e {
            QueryError::Sql {
                line: Some(l),
                column: Some(c),
                ..
            } => format!("{e} [at line {l}, column {c}]"),
            QueryError::Internal(detail) => format!("internal error: {detail}"),
            _ => e.to_string(),
        })
    }
}

struct FleetDb {
    engine: SqlEngine,
    data_dir: PathBuf,
    principal: Principal,
}

#[async_trait]
impl sqllogictest::AsyncDB for FleetDb {
    type Error = HarnessError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, HarnessError> {
        if let Some(who) = sql.trim().strip_prefix("as ") {
            self.principal = match who.trim() {
                "admin" => Principal::Admin,
                company => Principal::Company(company.into()),
            };
            return Ok(DBOutput::StatementComplete(0));
        }
        let answer = self.engine.query(&self.principal, sql, None).await?;
        let types = answer
            .schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                t if t.is_integer() => DefaultColumnType::Integer,
                t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => {
                    DefaultColumnType::FloatingPoint
                }
                _ => DefaultColumnType::Text,
            })
            .collect();
        let options = FormatOptions::default().with_null("NULL");
        let data_dir = self.data_dir.to_string_lossy().into_owned();
        let mut rows = Vec::new();
        for batch in &answer.batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| HarnessError(e.to_string()))?;
            for row in 0..batch.num_rows() {
                let cells: Vec<String> = formatters
                    .iter()
                    .zip(batch.columns())
                    .map(|(f, c)| {
                        let text = f.value(row).to_string();
                        let text = text
                            .replace(&data_dir, "<data>")
                            .replace(data_dir.trim_start_matches('/'), "<data>");
                        let text = deterministic_metrics(text.trim_end());
                        if c.is_valid(row) && text.is_empty() {
                            "(empty)".to_owned()
                        } else {
                            text
                        }
                    })
                    .collect();
                rows.extend(split_lines(cells));
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "fleetflow"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

/// A row whose cells span lines (plans) as one row per line, as the file shows it: the first
/// line with the other cells, then each further line alone.
fn split_lines(cells: Vec<String>) -> Vec<Vec<String>> {
    if !cells.iter().any(|c| c.contains('\n')) {
        return vec![cells];
    }
    let mut first = Vec::new();
    let mut more = Vec::new();
    for cell in cells {
        let mut lines = cell.lines().map(str::to_owned);
        first.push(lines.next().unwrap_or_default());
        more.extend(lines.map(|l| vec![l]));
    }
    std::iter::once(first).chain(more).collect()
}

/// `EXPLAIN ANALYZE` metrics without the timings and sizes that vary from run to run: only
/// row counts and what pruning kept.
fn deterministic_metrics(text: &str) -> String {
    const KEPT: [&str; 4] = [
        "output_rows=",
        "files_ranges_pruned_statistics=",
        "row_groups_pruned_statistics=",
        "page_index_rows_pruned=",
    ];
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("metrics=[") {
        let (before, metrics) = rest.split_at(start + "metrics=[".len());
        out.push_str(before);
        let end = metrics.find(']').unwrap_or(metrics.len());
        let kept: Vec<&str> = metrics[..end]
            .split(", ")
            .filter(|m| KEPT.iter().any(|k| m.starts_with(k)))
            .collect();
        out.push_str(&kept.join(", "));
        rest = &metrics[end..];
    }
    out.push_str(rest);
    out
}

async fn run(file: &Path) {
    let dir = std::env::temp_dir().join(format!(
        "fleetflow-slt-{}-{}",
        std::process::id(),
        file.file_stem().expect("file name").to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    write_history(&dir, &HistoryShape::default()).expect("history written");
    let engine = SqlEngine::new(
        &dir,
        SqlConfig {
            max_rows: 1000,
            // Plans show their partitioning: the same on every machine.
            threads: 2,
            ..SqlConfig::default()
        },
        Some(live_store()),
    )
    .expect("engine");
    let make = {
        let engine = engine.clone();
        let dir = dir.clone();
        move || {
            let db = FleetDb {
                engine: engine.clone(),
                data_dir: dir.clone(),
                principal: Principal::Admin,
            };
            async move { Ok::<_, HarnessError>(db) }
        }
    };
    let mut runner = sqllogictest::Runner::new(make);
    if std::env::var_os("SLT_COMPLETE").is_some() {
        runner
            .update_test_file(
                file,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .expect("completed");
    } else if let Err(e) = runner.run_file_async(file).await {
        panic!("{}: {}", file.display(), e.display(true));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .expect("tests/slt")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        run(&file).await;
    }
}
