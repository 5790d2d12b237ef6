//! Retention removes the oldest partitions while queries run: no query fails, none sees part of
//! a partition, no row of a kept day is lost; and a retention change never deletes what a newer
//! setting keeps.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::{Date32Type, Int64Type};
use fleetflow_model::{Principal, Table};
use fleetflow_query::history::synthetic::{HistoryShape, write_history};
use fleetflow_query::{SqlConfig, SqlEngine};
use fleetflow_tables::commit_log::{CommitLog, CommitWriter};
use fleetflow_tables::retention::{RetentionConfig, read_cutoffs, retain_once};
use fleetflow_tables::table_reader::table_files;

const DAY_MS: i64 = 86_400_000;
const DAYS: usize = 6;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fleetflow-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Rows per date (days since 1970) of `table`.
async fn per_day(engine: &SqlEngine, table: &str) -> Result<BTreeMap<i32, i64>, String> {
    let sql = format!("SELECT date, count(*) FROM {table} GROUP BY date");
    let answer = engine
        .query(&Principal::Admin, &sql, None)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut out = BTreeMap::new();
    for b in &answer.batches {
        let dates = b.column(0).as_primitive::<Date32Type>();
        let counts = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.insert(dates.value(i), counts.value(i));
        }
    }
    Ok(out)
}

fn config(days: &[(&str, u32)]) -> RetentionConfig {
    RetentionConfig {
        days: days.iter().map(|(t, d)| ((*t).to_owned(), *d)).collect(),
        grace_secs: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_partitions_while_queries_run_and_none_fails() {
    let dir = temp_dir("retention");
    let shape = HistoryShape {
        days: DAYS,
        ..HistoryShape::default()
    };
    write_history(&dir, &shape).expect("history");
    let first_day = shape.first_day_ms / DAY_MS;
    let engine = SqlEngine::new(&dir, SqlConfig::default(), None).expect("engine");
    let before = per_day(&engine, "positions").await.unwrap();
    let vehicle_days = per_day(&engine, "vehicle_daily").await.unwrap();
    assert_eq!(before.len(), DAYS);
    assert_eq!(vehicle_days.len(), DAYS);

    // Queries in a loop while retention runs: each answer holds every kept day whole, and each
    // older day whole or not at all.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for table in ["positions", "vehicle_daily"] {
        let (engine, stop, answered) = (engine.clone(), stop.clone(), answered.clone());
        let full = if table == "positions" {
            before.clone()
        } else {
            vehicle_days.clone()
        };
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let got = per_day(&engine, table).await.expect("no query fails");
                for (day, rows) in &got {
                    assert_eq!(Some(rows), full.get(day), "{table}: day {day} whole");
                }
                // (A shorter setting hides day 3 for a moment, below.)
                for day in full.keys().filter(|d| i64::from(**d) >= first_day + 4) {
                    assert!(got.contains_key(day), "{table}: kept day {day} lost");
                }
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let log = CommitLog::new(&dir);
    let resume = log.recover().expect("recover");
    let writer = CommitWriter::new(log, resume);
    // "Now" is noon of the last day: 2 days kept besides today removes the first 3 days.
    let now = shape.first_day_ms + (DAYS as i64 - 1) * DAY_MS + DAY_MS / 2;
    let keep = config(&[("positions", 2), ("vehicle_daily", 2)]);
    let published = retain_once(&writer, &keep, now).expect("publish");
    assert_eq!(published.partitions, 0, "nothing removed before the grace");
    assert_eq!(
        read_cutoffs(&dir).first_day(Table::Positions),
        Some(first_day + 3)
    );
    // New queries no longer read the old days; their files are all still there.
    assert_eq!(per_day(&engine, "positions").await.unwrap().len(), 3);
    assert_eq!(table_files(&dir, Table::Positions).unwrap().len(), DAYS);

    // A shorter setting, changed back before its grace ran out, removes nothing more.
    let shorter = config(&[("positions", 1), ("vehicle_daily", 2)]);
    retain_once(&writer, &shorter, now + 10).expect("publish");
    assert_eq!(per_day(&engine, "positions").await.unwrap().len(), 2);
    retain_once(&writer, &keep, now + 20).expect("publish");
    assert_eq!(per_day(&engine, "positions").await.unwrap().len(), 3);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let removed = retain_once(&writer, &keep, now + 2000).expect("remove");
    assert_eq!(
        removed.partitions, 6,
        "3 days of positions and of vehicle_daily"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.expect("readers hold");
    }
    assert!(answered.load(Ordering::Relaxed) > 10);

    let after = per_day(&engine, "positions").await.unwrap();
    let kept: BTreeMap<i32, i64> = before
        .into_iter()
        .filter(|(d, _)| i64::from(*d) >= first_day + 3)
        .collect();
    assert_eq!(after, kept, "every row of the kept days");
    assert_eq!(table_files(&dir, Table::Positions).unwrap().len(), 3);
    // Tables without a limit keep everything.
    assert_eq!(per_day(&engine, "trips").await.unwrap().len(), DAYS);

    // A longer setting shows what is still there again, and removes nothing.
    let longer = config(&[("positions", 30)]);
    let report = retain_once(&writer, &longer, now + 4000).expect("publish");
    assert_eq!(report.partitions, 0);
    assert_eq!(per_day(&engine, "vehicle_daily").await.unwrap().len(), 3);
    assert_eq!(per_day(&engine, "positions").await.unwrap().len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}
