//! Exactly once across crashes: while the emulator posts, a part of the system is killed and
//! restarted; afterwards `positions` holds every record's fixes exactly once and the current
//! trips equal those of one uninterrupted run over the same topic.
//!
//! Real processes throughout: Tansu with sqlite storage as the broker, `fleetflow ingest`,
//! `fleetflow pipeline`, `fleetflow emulate`.

mod support;

use std::path::Path;
use std::time::Duration;

use fleetflow_tables::table_reader::{current_trips, position_keys};
use rand::{Rng, SeedableRng};
use support::{
    Fleetflow, Proc, await_listening, distinct_fix_keys, finish_emulator, free_port,
    pipeline_until_caught_up, pipeline_until_caught_up_with, read_all_records, report_field,
    spawn_fleetflow, start_emulator, start_fleetflow, start_tansu, start_tansu_on, temp_dir,
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
        &PIPELINE_ENV,
    )
}

/// Every killed pipeline's settings: 1 s flushes, each worker writing a window's positions in
/// parts of 500 rows (a few per window at this load, more while catching up), and compaction
/// at every chance, so kills land between parts and in merges too; a 5-minute correction
/// horizon (the emulator's 60x speed makes it 5 s), so history is sealed into the archive and
/// vehicles resume from it after each kill, while the uninterrupted run it is compared with
/// keeps everything in memory (1 h).
const PIPELINE_ENV: [(&str, &str); 5] = [
    ("FLEETFLOW_PIPELINE__FLUSH_SECS", "1"),
    ("FLEETFLOW_PIPELINE__FLUSH_MAX_ROWS", "500"),
    ("FLEETFLOW_PIPELINE__HORIZON_SECS", "300"),
    ("FLEETFLOW_PIPELINE__COMPACTION__INTERVAL_SECS", "0.3"),
    ("FLEETFLOW_PIPELINE__COMPACTION__MIN_FILES", "2"),
];

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

    // The uninterrupted run reads under a tight flow-control bound (64 KiB in flight per
    // worker, a few dozen records): pausing and resuming the source changes no result.
    let clean = temp_dir("crash-clean");
    pipeline_until_caught_up_with(
        brokers,
        &clean,
        &[
            ("FLEETFLOW_PIPELINE__SOURCE_MAX_IN_FLIGHT_MIB", "0.0625"),
            ("FLEETFLOW_PIPELINE__FLUSH_SECS", "0.5"),
            ("FLEETFLOW_PIPELINE__HORIZON_SECS", "3600"),
        ],
    );
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
    let log = fleetflow_tables::commit_log::CommitLog::new(&data);
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
    let http = format!("127.0.0.1:{}", free_port());
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

/// `fleetflow run` with its default, durable embedded broker, on a fixed port and data dir.
fn start_run(data: &Path, http: &str) -> Fleetflow {
    start_fleetflow(
        "run",
        &[
            "--data-dir",
            data.to_str().expect("utf8"),
            "--http",
            http,
            "--admin-token",
            "crash-test",
        ],
        &[("FLEETFLOW_PIPELINE__FLUSH_SECS", "1")],
    )
}

/// The vehicles `/v1/live/vehicles` lists.
fn live_vehicles(ff: &Fleetflow) -> Vec<String> {
    let (status, body) = live_vehicles_answer(ff);
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    let mut ids: Vec<String> = answer["vehicles"]
        .as_array()
        .expect("vehicles")
        .iter()
        .map(|v| v["vehicle"].as_str().expect("vehicle id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn live_vehicles_answer(ff: &Fleetflow) -> (u16, String) {
    support::http(
        ff.http,
        "GET",
        "/v1/live/vehicles",
        &[("Authorization", "Bearer crash-test")],
        b"",
    )
}

/// `/status`'s committed offsets, summed: records the tables hold.
fn committed_records(ff: &Fleetflow) -> i64 {
    let (_, body) = support::http(
        ff.http,
        "GET",
        "/status",
        &[("Authorization", "Bearer crash-test")],
        b"",
    );
    let status: serde_json::Value = serde_json::from_str(&body).expect("json");
    status["pipeline"]["committed_offsets"]
        .as_object()
        .map_or(0, |o| {
            o.values().filter_map(serde_json::Value::as_i64).sum()
        })
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The README's main command, killed with SIGKILL at random moments while the fleet posts: every
/// acked point is in `positions` exactly once, trips equal an uninterrupted run's, and after
/// each restart the live views list every vehicle heard before it.
#[test]
fn run_killed_at_random_moments_keeps_every_acked_point_and_vehicle() {
    let dir = temp_dir("crash-run");
    let data = dir.join("data");
    let http = format!("127.0.0.1:{}", free_port());
    let mut ff = start_run(&data, &http);
    let emulator = start_emulator(ff.http, 60, 40);
    let mut rng = rand::rngs::StdRng::seed_from_u64(30);
    let mut seen: Vec<String> = Vec::new();
    for kill in 0..5 {
        std::thread::sleep(Duration::from_millis(rng.random_range(2000..5000)));
        seen = live_vehicles(&ff).into_iter().chain(seen).collect();
        seen.sort();
        seen.dedup();
        eprintln!(
            "SIGKILL fleetflow run #{kill} ({} vehicles seen)",
            seen.len()
        );
        sigkill(ff.proc);
        ff = start_run(&data, &http);
        // Rebuilt from the durable log: every vehicle seen before the kill is listed again
        // (the emulator is still posting, so new ones may join).
        wait_until(
            "the live views list every vehicle seen before the kill",
            Duration::from_secs(60),
            || {
                let now = live_vehicles(&ff);
                seen.iter().all(|v| now.binary_search(v).is_ok())
            },
        );
    }
    let total = finish_emulator(emulator);
    // Requests sent while fleetflow was down failed to connect and were retried: none dropped.
    assert_eq!(report_field(&total, "dropped"), 0, "{total}");

    // A kill after the last post, then a restart with nothing new to read: the live views come
    // back whole from the broker's log alone.
    let fleet = live_vehicles(&ff);
    assert_eq!(fleet.len(), 60, "the emulated fleet is 60 vehicles");
    sigkill(ff.proc);
    let ff = start_run(&data, &http);
    wait_until(
        "every vehicle ever posted is listed after the restart",
        Duration::from_secs(60),
        || live_vehicles(&ff) == fleet,
    );
    let records = read_all_records(&ff.brokers, TOPIC);
    wait_until(
        "the pipeline commits every record",
        Duration::from_secs(60),
        || committed_records(&ff) == records.len() as i64,
    );
    assert_exactly_once(&ff.brokers, &data, report_field(&total, "points"));
    drop(ff);
}

/// `fleetflow pipeline` as a timely cluster of `processes` processes of one worker each, on one
/// data dir (a shared file system), with `extra` flags. The processes listen only once all have
/// connected, so all are started before any is awaited.
fn start_cluster(brokers: &str, data: &Path, processes: usize, extra: &[&str]) -> Vec<Fleetflow> {
    let addresses: Vec<String> = (0..processes)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let addresses = addresses.join(",");
    let spawned: Vec<Proc> = (0..processes)
        .map(|index| {
            let index = index.to_string();
            let mut args = vec![
                "--brokers",
                brokers,
                "--data-dir",
                data.to_str().expect("utf8"),
                "--workers",
                "1",
                "--process",
                &index,
                "--cluster",
                &addresses,
                "--admin-token",
                "crash-test",
                "--postgres",
                "off",
            ];
            args.extend(extra);
            spawn_fleetflow("pipeline", &args, &PIPELINE_ENV)
        })
        .collect();
    spawned
        .into_iter()
        .map(|proc| await_listening(proc, "pipeline"))
        .collect()
}

/// Issue 39: a 2-process timely cluster under load, one process SIGKILLed at random moments and
/// the cluster restarted whole (as timely clusters restart): `positions` holds every fix exactly
/// once and trips equal a 1-process run; process 0 serves the whole fleet's live views and the
/// other process says it does not serve them.
#[test]
fn a_cluster_killed_and_restarted_equals_one_process() {
    let dir = temp_dir("crash-cluster");
    let tansu = start_tansu(&format!("sqlite:///{}/tansu.db", dir.display()));
    let ingest = start_ingest(&tansu.brokers, &dir.join("ingest"), None);
    let emulator = start_emulator(ingest.http, 60, 30);
    let data = dir.join("data");
    let mut rng = rand::rngs::StdRng::seed_from_u64(39);
    for kill in 0..4 {
        let mut cluster = start_cluster(&tansu.brokers, &data, 2, &[]);
        std::thread::sleep(Duration::from_millis(rng.random_range(2000..5000)));
        let victim = kill % 2;
        eprintln!("SIGKILL cluster process {victim} (#{kill})");
        let killed = cluster.remove(victim);
        sigkill(killed.proc);
        // The survivor has lost its peer: it must stop by itself (an operator, or systemd,
        // restarts the cluster whole), not hang.
        let mut survivor = cluster.remove(0).proc;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = survivor.child.try_wait().expect("wait") {
                assert!(!status.success(), "the survivor exited cleanly: {status}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the survivor of a killed cluster process did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let total = finish_emulator(emulator);
    assert_eq!(report_field(&total, "err"), 0, "{total}");

    // The restarted cluster serves the whole fleet's live views from process 0, whichever
    // process reads a vehicle's partition.
    let cluster = start_cluster(&tansu.brokers, &data, 2, &[]);
    wait_until(
        "process 0 lists every vehicle of the fleet",
        Duration::from_secs(60),
        || live_vehicles(&cluster[0]).len() == 60,
    );
    let (status, body) = live_vehicles_answer(&cluster[1]);
    assert_eq!(status, 503, "process 1 answered the live views: {body}");
    assert!(body.contains("process 0"), "{body}");
    for process in cluster {
        sigkill(process.proc);
    }

    // A last run catches up and ends, as a cluster.
    for process in start_cluster(&tansu.brokers, &data, 2, &["--until-caught-up"]) {
        let mut proc = process.proc;
        let status = proc.child.wait().expect("wait");
        assert!(
            status.success(),
            "cluster --until-caught-up failed: {status}"
        );
    }
    assert_exactly_once(&tansu.brokers, &data, report_field(&total, "points"));
    drop(ingest);
}

/// `fleetflow emulate` posting as `token`'s company, its vehicle ids from `mdn_base`.
fn start_company_emulator(target: std::net::SocketAddr, token: &str, mdn_base: i64) -> Proc {
    let mut command = std::process::Command::new(support::fleetflow_bin());
    command
        .args([
            "emulate",
            "--vehicles",
            "20",
            "--speedup",
            "60",
            "--duration",
            "30",
        ])
        .args(["--report-every", "5", "--token", token])
        .args(["--mdn-base", &mdn_base.to_string()])
        .args(["--target", &format!("http://{target}")])
        .env("RUST_LOG", "error");
    Proc::spawn("emulate", command)
}

/// Issue 41: every subscribed event of an emulated fleet of two companies reaches its company's
/// receiver, once per event id (a hash of the event), across SIGKILLs of `fleetflow run` during
/// delivery and with a receiver that fails each event's first 3 tries; no company receives
/// another company's events, and every delivery is signed. A third subscription, to a port
/// nothing listens on, fills the dead-letter list, which SQL shows to its company only.
#[test]
fn webhooks_deliver_every_event_once_per_id_across_kills() {
    use std::collections::{BTreeMap, BTreeSet};

    let dir = temp_dir("crash-webhooks");
    let data = dir.join("data");
    let config = dir.join("fleetflow.toml");
    std::fs::write(
        &config,
        r#"
[ingest]
auth = "token"

[webhooks]
initial_backoff_ms = 100
max_backoff_ms = 1000

[[companies]]
id = "acme"
tokens = ["acme-token"]

[[companies]]
id = "globex"
tokens = ["globex-token"]
"#,
    )
    .expect("config");
    let receiver_addr = format!("127.0.0.1:{}", free_port());
    let mut command = std::process::Command::new(support::fleetflow_bin());
    command
        .args(["webhook-test", "--listen", &receiver_addr])
        .args(["--secret", "s3cret", "--fail-first", "3"]);
    let receiver = Proc::spawn("receiver", command);
    let http = format!("127.0.0.1:{}", free_port());
    let start = || {
        start_fleetflow(
            "run",
            &[
                "--data-dir",
                data.to_str().expect("utf8"),
                "--http",
                &http,
                "--admin-token",
                "crash-test",
                "--config",
                config.to_str().expect("utf8"),
            ],
            &[("FLEETFLOW_PIPELINE__FLUSH_SECS", "1")],
        )
    };
    let mut ff = start();
    let subscribed: BTreeMap<&str, Vec<&str>> = [
        ("acme", vec!["trip_start", "trip_end"]),
        (
            "globex",
            vec![
                "ignition_on",
                "ignition_off",
                "trip_start",
                "trip_end",
                "overspeed",
            ],
        ),
    ]
    .into();
    for (company, kinds) in &subscribed {
        let body = serde_json::json!({
            "url": format!("http://{receiver_addr}/{company}"),
            "events": kinds,
            "secret": "s3cret",
            "company": company,
        });
        let (status, text) = support::http(
            ff.http,
            "POST",
            "/v1/webhooks",
            &[
                ("Authorization", "Bearer crash-test"),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 201, "{text}");
    }
    // And globex's trip ends to a port nothing listens on: each is dead-lettered.
    let dead = serde_json::json!({
        "url": format!("http://127.0.0.1:{}/dead", free_port()),
        "events": ["trip_end"],
    });
    let (status, text) = support::http(
        ff.http,
        "POST",
        "/v1/webhooks",
        &[
            ("Authorization", "Bearer globex-token"),
            ("Content-Type", "application/json"),
        ],
        dead.to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{text}");
    let emulators = [
        start_company_emulator(ff.http, "acme-token", 2_254_690_000),
        start_company_emulator(ff.http, "globex-token", 2_254_790_000),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(41);
    for kill in 0..2 {
        std::thread::sleep(Duration::from_millis(rng.random_range(4000..9000)));
        eprintln!("SIGKILL fleetflow run #{kill} while it delivers");
        sigkill(ff.proc);
        ff = start();
    }
    for emulator in emulators {
        let total = finish_emulator(emulator);
        assert_eq!(report_field(&total, "dropped"), 0, "{total}");
    }
    let records = read_all_records(&ff.brokers, TOPIC);
    wait_until(
        "the pipeline commits every record",
        Duration::from_secs(60),
        || committed_records(&ff) == records.len() as i64,
    );

    // What should arrive: the committed events of the subscribed kinds, by company.
    let expected: BTreeMap<String, BTreeSet<String>> = {
        let mut by_company: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let files =
            fleetflow_tables::table_reader::table_files(&data, fleetflow_model::Table::Events)
                .expect("events files");
        for file in files {
            for event in fleetflow_webhooks::event::read_events_file(&file).expect("events") {
                let wanted = subscribed
                    .get(event.company.as_str())
                    .is_some_and(|kinds| kinds.contains(&event.kind.as_str()));
                if wanted {
                    by_company
                        .entry(event.company)
                        .or_default()
                        .insert(event.id);
                }
            }
        }
        by_company
    };
    assert_eq!(expected.len(), 2, "both companies had events: {expected:?}");

    // What arrived, answered 200, by the path (company) it was sent to.
    let mut delivered: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    let mut tries: BTreeMap<String, u32> = BTreeMap::new();
    let mut drain = |delivered: &mut BTreeMap<String, BTreeMap<String, u32>>| {
        while let Ok(line) = receiver.lines.try_recv() {
            let got: serde_json::Value = serde_json::from_str(&line).expect("receiver line");
            let company = got["path"].as_str().expect("path").trim_start_matches('/');
            let id = got["id"].as_str().expect("id").to_owned();
            assert_eq!(got["signature"], "ok", "{line}");
            assert_eq!(
                got["body"]["company"], company,
                "another company's event: {line}"
            );
            *tries.entry(id.clone()).or_default() += 1;
            if got["answered"] == 200 {
                *delivered
                    .entry(company.to_owned())
                    .or_default()
                    .entry(id)
                    .or_default() += 1;
            }
        }
    };
    wait_until(
        "every subscribed event is delivered",
        Duration::from_secs(120),
        || {
            drain(&mut delivered);
            expected.iter().all(|(company, ids)| {
                delivered
                    .get(company)
                    .is_some_and(|got| ids.iter().all(|id| got.contains_key(id)))
            })
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    drain(&mut delivered);
    for (company, ids) in &expected {
        let got: BTreeSet<String> = delivered[company].keys().cloned().collect();
        assert_eq!(&got, ids, "{company}: delivered ids = committed ids");
        let again = delivered[company].values().filter(|n| **n > 1).count();
        eprintln!(
            "{company}: {} events delivered, {again} delivered again after a kill",
            ids.len()
        );
    }
    assert!(
        tries.values().all(|n| *n >= 4),
        "every event failed 3 times before its 200"
    );

    // The dead receiver's events are dead letters, in SQL, each company seeing its own.
    let dead_letters = |token: &str| -> BTreeSet<String> {
        let sql = serde_json::json!({"sql": "SELECT event_id FROM webhook_dead_letters"});
        let auth = format!("Bearer {token}");
        let (status, body) = support::http(
            ff.http,
            "POST",
            "/v1/sql",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            sql.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
        answer["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["event_id"].as_str().expect("event_id").to_owned())
            .collect()
    };
    let globex_trip_ends: BTreeSet<String> = {
        let files =
            fleetflow_tables::table_reader::table_files(&data, fleetflow_model::Table::Events)
                .expect("events files");
        files
            .iter()
            .flat_map(|f| fleetflow_webhooks::event::read_events_file(f).expect("events"))
            .filter(|e| e.company == "globex" && e.kind == "trip_end")
            .map(|e| e.id)
            .collect()
    };
    wait_until(
        "the dead receiver's events are dead-lettered",
        Duration::from_secs(120),
        || dead_letters("globex-token") == globex_trip_ends,
    );
    assert!(
        dead_letters("acme-token").is_empty(),
        "acme sees no globex dead letter"
    );
    assert_eq!(dead_letters("crash-test"), globex_trip_ends);
    drop(ff);
}
