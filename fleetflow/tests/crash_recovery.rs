//! Exactly once across crashes: while the emulator posts, a part of the system is killed and
//! restarted; afterwards `positions` holds every record's fixes exactly once and the current
//! trips equal those of one uninterrupted run over the same topic.
//!
//! Real processes throughout: Tansu with sqlite storage as the broker, `fleetflow ingest`,
//! `fleetflow pipeline`, `fleetflow emulate`.

mod support;

use std::path::Path;
use std::time::Duration;

use fleetflow_pipeline::table_reader::{current_trips, position_keys};
use rand::{Rng, SeedableRng};
use support::{
    Fleetflow, Proc, distinct_fix_keys, finish_emulator, pipeline_until_caught_up,
    read_all_records, report_field, start_emulator, start_fleetflow, start_tansu, start_tansu_on,
    temp_dir,
};

const TOPIC: &str = "fleetflow.telemetry";

fn start_pipeline(brokers: &str, data_dir: &Path) -> Fleetflow {
    start_fleetflow(
        "pipeline",
        &[
            "--brokers",
            brokers,
            "--data-dir",
            data_dir.to_str().expect("utf8"),
        ],
        &[
            ("FLEETFLOW_PIPELINE__FLUSH_SECS", "1"),
            // Compaction at every chance, so kills land in merges too.
            ("FLEETFLOW_PIPELINE__COMPACTION__INTERVAL_SECS", "0.3"),
            ("FLEETFLOW_PIPELINE__COMPACTION__MIN_FILES", "2"),
        ],
    )
}

fn start_ingest(brokers: &str, data_dir: &Path, http: Option<&str>) -> Fleetflow {
    let mut extra = vec![
        "--brokers",
        brokers,
        "--data-dir",
        data_dir.to_str().expect("utf8"),
    ];
    if let Some(http) = http {
        extra.extend(["--http", http]);
    }
    start_fleetflow("ingest", &extra, &[])
}

fn sigkill(proc: Proc) {
    drop(proc); // Proc's Drop is SIGKILL + wait.
}

/// The checks every crash scenario ends with.
fn assert_exactly_once(brokers: &str, crashed: &Path, acked_points: u64) {
    let records = read_all_records(brokers, TOPIC);
    let expected = distinct_fix_keys(&records);
    assert!(
        expected.len() as u64 >= acked_points,
        "the topic holds {} distinct fixes, fewer than the {acked_points} acked",
        expected.len()
    );
    let written = position_keys(crashed).expect("positions readable");
    let mut deduped = written.clone();
    deduped.dedup();
    assert_eq!(written.len(), deduped.len(), "positions holds a fix twice");
    assert_eq!(
        written, expected,
        "positions differs from the topic's fixes"
    );

    let clean = temp_dir("crash-clean");
    pipeline_until_caught_up(brokers, &clean);
    assert_eq!(position_keys(&clean).expect("readable"), expected);
    let (got, want) = (
        current_trips(crashed).expect("trips"),
        current_trips(&clean).expect("trips"),
    );
    assert!(!want.is_empty(), "the run produced no trips");
    assert_eq!(
        got, want,
        "trips after crashes differ from an uninterrupted run"
    );
}

#[test]
fn pipeline_killed_at_random_moments_loses_and_doubles_nothing() {
    let dir = temp_dir("crash-pipeline");
    let tansu = start_tansu(&format!("sqlite:///{}/tansu.db", dir.display()));
    let ingest = start_ingest(&tansu.brokers, &dir.join("ingest"), None);
    let emulator = start_emulator(ingest.http, 60, 30);
    let data = dir.join("data");
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for kill in 0..6 {
        let pipeline = start_pipeline(&tansu.brokers, &data);
        std::thread::sleep(Duration::from_millis(rng.random_range(1500..4500)));
        eprintln!("SIGKILL pipeline #{kill}");
        sigkill(pipeline.proc);
    }
    let total = finish_emulator(emulator);
    assert_eq!(report_field(&total, "err"), 0, "{total}");
    let log = fleetflow_pipeline::commit_log::CommitLog::new(&data);
    let commits = log.sequence_numbers().expect("commit log");
    assert!(
        commits.len() >= 5,
        "the killed pipelines committed only {commits:?}: kills came too early to test recovery"
    );
    let merges = commits
        .iter()
        .filter(|seq| !log.read(**seq).expect("commit").removed.is_empty())
        .count();
    assert!(merges >= 1, "no compaction ran between the kills");
    // A last restart catches up and ends.
    pipeline_until_caught_up(&tansu.brokers, &data);
    assert_exactly_once(&tansu.brokers, &data, report_field(&total, "points"));
    drop(ingest);
}

/// Waits until the emulator has had at least `ok` requests acked.
fn wait_for_acks(emulator: &Proc, ok: u64) {
    loop {
        let line = emulator.wait_line("ok=", Duration::from_secs(120));
        if report_field(&line, "ok") >= ok {
            return;
        }
    }
}

#[test]
fn broker_killed_and_restarted_loses_and_doubles_nothing() {
    let dir = temp_dir("crash-broker");
    let storage = format!("sqlite:///{}/tansu.db", dir.display());
    let tansu = start_tansu(&storage);
    let brokers = tansu.brokers.clone();
    let port: u16 = brokers
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let ingest = start_ingest(&brokers, &dir.join("ingest"), None);
    let data = dir.join("data");
    let pipeline = start_pipeline(&brokers, &data);
    let emulator = start_emulator(ingest.http, 60, 30);
    wait_for_acks(&emulator, 100);
    eprintln!("SIGKILL broker");
    sigkill(tansu.proc);
    std::thread::sleep(Duration::from_secs(3));
    let tansu = start_tansu_on(&storage, port);
    let total = finish_emulator(emulator);
    assert_eq!(report_field(&total, "dropped"), 0, "{total}");
    assert!(
        pipeline.proc.terminate().success(),
        "pipeline did not stop cleanly"
    );
    pipeline_until_caught_up(&brokers, &data);
    assert_exactly_once(&brokers, &data, report_field(&total, "points"));
    drop((ingest, tansu));
}

#[test]
fn ingest_restarted_while_clients_retry_loses_and_doubles_nothing() {
    let dir = temp_dir("crash-ingest");
    let tansu = start_tansu(&format!("sqlite:///{}/tansu.db", dir.display()));
    let http = format!("127.0.0.1:{}", support::free_port());
    let ingest = start_ingest(&tansu.brokers, &dir.join("ingest"), Some(&http));
    let data = dir.join("data");
    let pipeline = start_pipeline(&tansu.brokers, &data);
    let emulator = start_emulator(ingest.http, 60, 30);
    wait_for_acks(&emulator, 100);
    eprintln!("SIGKILL ingest");
    sigkill(ingest.proc);
    std::thread::sleep(Duration::from_secs(2));
    let ingest = start_ingest(&tansu.brokers, &dir.join("ingest"), Some(&http));
    let total = finish_emulator(emulator);
    assert_eq!(report_field(&total, "dropped"), 0, "{total}");
    assert!(
        report_field(&total, "retries") > 0,
        "no client had to retry: {total}"
    );
    assert!(
        pipeline.proc.terminate().success(),
        "pipeline did not stop cleanly"
    );
    pipeline_until_caught_up(&tansu.brokers, &data);
    assert_exactly_once(&tansu.brokers, &data, report_field(&total, "points"));
    drop(ingest);
}
