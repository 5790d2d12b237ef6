//! Compaction under load: while windows are committed and merged, a glob reader (list the
//! partition directory, then read its files) never sees a window twice (inputs and merge) or
//! misses one that was committed before it started listing (neither).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use fleetflow_model::{Fix, GpsStatus, Source, Table};
use fleetflow_pipeline::sink::table_batches;
use fleetflow_pipeline::{PositionRow, VehicleName};
use fleetflow_tables::commit_log::{CommitLog, CommitWriter, DataFile};
use fleetflow_tables::compaction::{CompactionConfig, FileRows, compact_once};
use fleetflow_tables::parquet_file::{FileKind, WRITE_BATCH_ROWS, write_file};
use fleetflow_tables::partition_swap::exchange_supported;
use fleetflow_tables::table_reader::{position_keys, read_table, table_files};

const WINDOWS: u64 = 120;
const ROWS_PER_WINDOW: u64 = 50;
const DAY_MS: i64 = 1_606_780_800_000; // 2020-12-01

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fleetflow-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A fresh temp dir, if its filesystem has the atomic exchange compaction needs (else the test
/// is skipped, and says so).
fn exchange_dir(name: &str) -> Option<PathBuf> {
    let dir = temp_dir(name);
    if exchange_supported(&dir).expect("probe") {
        return Some(dir);
    }
    eprintln!("skipped: no RENAME_EXCHANGE on this filesystem");
    None
}

/// Window `w`'s rows: vehicles `v0..v4`, times that encode the window.
fn window_rows(w: u64) -> Vec<PositionRow> {
    let company: Arc<str> = Arc::from("acme");
    (0..ROWS_PER_WINDOW)
        .map(|i| {
            let name = VehicleName::new(company.clone(), Arc::from(format!("v{}", i % 5)));
            let mut fix = Fix::new(
                DAY_MS + (w * ROWS_PER_WINDOW + i) as i64 * 1000,
                375_000_000 + i as i32,
                1_270_000_000,
            );
            fix.speed_dkmh = 300;
            fix.gps = GpsStatus::Valid;
            let offset = (w * ROWS_PER_WINDOW + i) as i64;
            PositionRow::new(name, &fix, 0, Source::Native, 0, offset)
        })
        .collect()
}

/// Stages and commits window `w` the way the sink does.
fn commit_window(writer: &CommitWriter, w: u64) {
    let dir = writer.log().data_dir();
    let path = format!("positions/date=2020-12-01/part-{w}-w0-{w}.parquet");
    let staged = format!("_fleetflow/staging/{path}");
    let rows = window_rows(w);
    let written = write_file(
        &dir.join(&staged),
        Table::Positions,
        FileKind::Flush,
        table_batches::positions_batches(&rows, WRITE_BATCH_ROWS),
    )
    .expect("write");
    assert_eq!(written.rows, ROWS_PER_WINDOW);
    let file = DataFile {
        table: "positions".into(),
        path,
        staged,
        rows: written.rows,
        bytes: written.bytes,
    };
    writer
        .commit_window(
            w + 1,
            [(0, ((w + 1) * ROWS_PER_WINDOW) as i64)].into(),
            [].into(),
            vec![file],
        )
        .expect("commit");
}

fn window_of_time(time_ms: i64) -> u64 {
    ((time_ms - DAY_MS) / 1000) as u64 / ROWS_PER_WINDOW
}

#[test]
fn glob_readers_never_see_both_or_neither() {
    let Some(dir) = exchange_dir("compaction-readers") else {
        return;
    };
    let log = CommitLog::new(&dir);
    let writer = Arc::new(CommitWriter::new(
        log.clone(),
        log.recover().expect("recover"),
    ));
    let config = CompactionConfig {
        min_files: 3,
        ..CompactionConfig::default()
    };
    let committed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let reader = {
        let (dir, committed, done) = (dir.clone(), committed.clone(), done.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !done.load(Ordering::Relaxed) {
                let before = committed.load(Ordering::SeqCst);
                let keys = position_keys(&dir).expect("a glob read succeeds (retrying NotFound)");
                let mut per_window: BTreeMap<u64, u64> = BTreeMap::new();
                for pair in keys.windows(2) {
                    assert_ne!(
                        pair[0], pair[1],
                        "a fix read twice: inputs and merge both seen"
                    );
                }
                for (_, time) in &keys {
                    *per_window.entry(window_of_time(*time)).or_default() += 1;
                }
                for (w, n) in &per_window {
                    assert_eq!(*n, ROWS_PER_WINDOW, "window {w} seen in part");
                }
                for w in 0..before {
                    assert!(
                        per_window.contains_key(&w),
                        "window {w}, committed before the read, is missing: neither seen"
                    );
                }
                reads += 1;
            }
            reads
        })
    };

    let mut merges = 0;
    let mut known = FileRows::default();
    for w in 0..WINDOWS {
        commit_window(&writer, w);
        committed.store(w + 1, Ordering::SeqCst);
        if w % 4 == 3 {
            merges += compact_once(&writer, &config, &mut known)
                .expect("compaction")
                .merges;
        }
    }
    done.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader thread");
    eprintln!("{reads} concurrent reads, {merges} merges");
    assert!(reads > 10, "the reader barely ran ({reads} reads)");
    assert!(merges > 10, "only {merges} merges");

    // Everything, once, in fewer files, each sorted by (vehicle, time).
    let keys = position_keys(&dir).expect("read");
    assert_eq!(keys.len() as u64, WINDOWS * ROWS_PER_WINDOW);
    let files = table_files(&dir, Table::Positions).expect("list");
    assert!(files.len() < 8, "{} files left", files.len());
    for batch in read_table(&dir, Table::Positions).expect("read") {
        let vehicles = batch.column_by_name("vehicle").expect("vehicle");
        let times = batch.column_by_name("time").expect("time");
        let rows = (0..batch.num_rows()).map(|i| {
            (
                arrow::array::AsArray::as_string::<i32>(vehicles)
                    .value(i)
                    .to_owned(),
                arrow::array::AsArray::as_primitive::<arrow::datatypes::TimestampMillisecondType>(
                    times,
                )
                .value(i),
            )
        });
        let rows: Vec<_> = rows.collect();
        assert!(
            rows.windows(2).all(|p| p[0] <= p[1]),
            "a merged file is not sorted"
        );
    }

    // The commit log says what happened, and a restart keeps it.
    let last = log.latest().expect("log").expect("a commit");
    assert_eq!(
        last.offsets,
        [(0, (WINDOWS * ROWS_PER_WINDOW) as i64)].into()
    );
    drop(writer);
    log.recover().expect("recover");
    assert_eq!(
        position_keys(&dir).expect("read").len() as u64,
        WINDOWS * ROWS_PER_WINDOW
    );
    assert_no_scratch_left(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

fn assert_no_scratch_left(dir: &Path) {
    for scratch in ["_fleetflow/staging", "_fleetflow/retired"] {
        assert!(!dir.join(scratch).exists(), "{scratch} left after recovery");
    }
}

/// A merge reads at most eight files (its memory is a few megabytes an input), and one pass
/// merges again while enough small files are left: twenty windows end as one file.
#[test]
fn one_pass_merges_many_files_eight_at_a_time() {
    let Some(dir) = exchange_dir("compaction-fan-in") else {
        return;
    };
    let log = CommitLog::new(&dir);
    let writer = CommitWriter::new(log.clone(), log.recover().expect("recover"));
    for w in 0..20 {
        commit_window(&writer, w);
    }
    let config = CompactionConfig {
        min_files: 3,
        ..CompactionConfig::default()
    };
    let report = compact_once(&writer, &config, &mut FileRows::default()).expect("compaction");
    // 8 -> 1, 8 -> 1, then the 4 left and the 2 merges.
    assert_eq!(report.merges, 3, "{report:?}");
    assert_eq!(report.files_in, 22, "{report:?}");
    assert_eq!(report.rows, 20 * ROWS_PER_WINDOW + 16 * ROWS_PER_WINDOW);
    let files = table_files(&dir, Table::Positions).expect("list");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        position_keys(&dir).expect("read").len() as u64,
        20 * ROWS_PER_WINDOW
    );
    let _ = std::fs::remove_dir_all(&dir);
}
