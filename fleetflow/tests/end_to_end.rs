//! End to end with real processes: the `fleetflow` binary over real HTTP, records read back by
//! an independent Kafka consumer, from the embedded broker and from a separate Tansu broker.

mod support;

use std::process::Command;
use std::time::Duration;

use fleetflow_model::{Item, Source};
use serde_json::{Value, json};
use support::{http, post_json, read_records, start_fleetflow, start_tansu, temp_dir};

const TOPIC: &str = "fleetflow.telemetry";
const KEY_ON: &str = "/api/v1/event-hub/key-on";
const KEY_OFF: &str = "/api/v1/event-hub/key-off";
const CYCLE: &str = "/api/v1/event-hub/cycle-info";

fn key(kind: &str, mdn: i64, time: &str, sum: i64) -> Value {
    let (on, off) = if kind == "on" {
        (json!(time), Value::Null)
    } else {
        (Value::Null, json!(time))
    };
    json!({"mdn":mdn,"tid":"TID001","mid":1,"pv":1,"did":1,"onTime":on,"offTime":off,
           "gcd":"A","lat":37500704,"lng":127030236,"ang":0,"spd":0,"sum":sum})
}

/// 60 points from 2025-02-18 10:{minute}:00 on.
fn cycle(mdn: i64, minute: u32) -> Value {
    let list: Vec<Value> = (0..60i64)
        .map(|s| {
            json!({"intervalAt": format!("2025021810{minute:02}{s:02}"),
                   "gcd":"A","lat":37500704 + s * 12,"lng":127030236 + s * 9,"ang":37,"spd":50,"sum":14})
        })
        .collect();
    json!({"mdn":mdn,"tid":"TID001","mid":1,"pv":1,"did":1,"cCnt":60,"cList":list})
}

#[test]
fn run_with_embedded_broker_acks_what_an_external_consumer_reads() {
    let data_dir = temp_dir("e2e-run");
    let ff = start_fleetflow(
        "run",
        &["--data-dir", data_dir.to_str().expect("utf8")],
        &[],
    );
    assert!(
        ff.admin_token.is_some(),
        "run must print a generated admin token"
    );

    let mdn = 2_254_690_422;
    let mut expected_points = 0;
    assert_eq!(
        post_json(ff.http, KEY_ON, &key("on", mdn, "20250218101530", 50_000)).0,
        200
    );
    for minute in 16..19 {
        let (status, body) = post_json(ff.http, CYCLE, &cycle(mdn, minute));
        assert_eq!(status, 200, "{body}");
        expected_points += 60;
    }
    assert_eq!(
        post_json(ff.http, KEY_OFF, &key("off", mdn, "20250218101905", 2_100)).0,
        200
    );
    let native = json!([
        {"vehicle":"taxi-1","time":"2025-02-18T10:15:31Z","lat":37.5,"lon":127.0,"speed":20},
        {"vehicle":"taxi-2","time":1739873731000i64,"lat":37.6,"lon":127.1},
        {"vehicle":"taxi-1","time":"2025-02-18T10:15:32Z","lat":37.5001,"lon":127.0001}
    ]);
    let (status, body) = post_json(ff.http, "/v1/ingest", &native);
    assert_eq!(status, 200, "{body}");
    expected_points += 3;
    let (status, _) = http(
        ff.http,
        "GET",
        "/osmand?id=phone-1&lat=37.5&lon=127&timestamp=1739873731&speed=5",
        &[],
        b"",
    );
    assert_eq!(status, 200);
    expected_points += 1;

    // Rejected requests produce nothing.
    let mut bad = cycle(mdn, 20);
    bad["cCnt"] = json!(61);
    let (status, body) = post_json(ff.http, CYCLE, &bad);
    assert_eq!(status, 400);
    assert!(body.contains("\"field\":\"cCnt\""), "{body}");
    let (status, _) = http(ff.http, "POST", CYCLE, &[], b"{oops");
    assert_eq!(status, 400);

    // key-on, 3 cycles, key-off, 2 native vehicles, 1 OsmAnd = 8 records.
    let records = read_records(&ff.brokers, TOPIC, 8, Duration::from_secs(60));
    assert!(
        read_records_more(&ff.brokers, 9),
        "a rejected request reached Kafka"
    );
    let points: usize = records.iter().map(|(_, r)| r.fix_count()).sum();
    assert_eq!(points, expected_points);
    for (key, record) in &records {
        assert_eq!(key, &record.vehicle);
        assert_eq!(record.company, "default");
    }
    let monicar: Vec<_> = records
        .iter()
        .filter(|(key, _)| key == "2254690422")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        monicar.len(),
        5,
        "one vehicle's records stay in one partition, in order"
    );
    assert!(matches!(
        monicar[0].items[0],
        Item::IgnitionOn {
            odometer_m: Some(50_000),
            ..
        }
    ));
    assert!(matches!(
        monicar[4].items[0],
        Item::IgnitionOff {
            trip_distance_m: Some(2_100),
            ..
        }
    ));
    let minutes: Vec<i64> = monicar[1..4].iter().map(|r| r.items[0].time_ms()).collect();
    assert!(
        minutes.windows(2).all(|w| w[0] < w[1]),
        "per-vehicle order kept: {minutes:?}"
    );
    assert!(records.iter().any(|(_, r)| r.source == Source::Osmand));

    // Issue 35: without the admin token, `/status` says only that the process is up, and
    // `/metrics` is refused.
    let (status, public) = http(ff.http, "GET", "/status", &[], b"");
    assert_eq!(status, 200);
    let public: Value = serde_json::from_str(&public).expect("status json");
    assert_eq!(public["service"], json!("fleetflow"));
    assert!(
        public.get("kafka").is_none() && public.get("ingest").is_none(),
        "{public}"
    );
    let (status, _) = http(ff.http, "GET", "/metrics", &[], b"");
    assert_eq!(status, 401);
    let admin = ff.admin_token.clone().expect("admin token");
    let bearer = format!("Bearer {admin}");
    let as_admin = [("Authorization", bearer.as_str())];
    let (status, status_body) = http(ff.http, "GET", "/status", &as_admin, b"");
    assert_eq!(status, 200);
    let status_json: Value = serde_json::from_str(&status_body).expect("status json");
    assert_eq!(
        status_json["ingest"]["points_accepted"],
        json!(expected_points)
    );
    assert_eq!(status_json["kafka"]["embedded"], json!(true));
    let (status, metrics) = http(ff.http, "GET", "/metrics", &as_admin, b"");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("fleetflow_ingest_points_total{endpoint=\"cycle_info\"} 180"),
        "{metrics}"
    );
    assert!(metrics.contains("fleetflow_ingest_requests_rejected_total{endpoint=\"cycle_info\",reason=\"invalid_field\"} 1"));

    // The live views, on the same listener, reflect what was acked.
    let auth = [("Authorization", bearer.as_str())];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let vehicle = loop {
        let (status, body) = http(ff.http, "GET", "/v1/live/vehicles/2254690422", &auth, b"");
        if status == 200 {
            let v: Value = serde_json::from_str(&body).expect("json");
            if v["vehicle"]["ignition"] == "off" {
                break v;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the vehicle never became visible: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(vehicle["upto_ms"].as_u64().expect("upto_ms") > 0);
    assert_eq!(vehicle["vehicle"]["status"], "parked");
    assert_eq!(vehicle["vehicle"]["odometer_km"], 50.0);
    assert!(
        vehicle["vehicle"]["position"]["lat"].as_f64().is_some(),
        "{vehicle}"
    );
    let (status, summary) = http(ff.http, "GET", "/v1/live/summary", &auth, b"");
    assert_eq!(status, 200);
    let summary: Value = serde_json::from_str(&summary).expect("json");
    assert_eq!(summary["total"]["all"], 4, "{summary}");
    let (status, _) = http(ff.http, "GET", "/v1/live/summary", &[], b"");
    assert_eq!(status, 401);
    // An open SSE stream does not hold up the graceful shutdown.
    let mut sse = std::net::TcpStream::connect(ff.http).expect("connect");
    std::io::Write::write_all(
        &mut sse,
        format!("GET /v1/live/stream?token={admin} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .expect("write");
    let mut head = [0u8; 64];
    let n = std::io::Read::read(&mut sse, &mut head).expect("read");
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));

    let exit = ff.proc.terminate();
    assert!(exit.success(), "graceful shutdown failed: {exit}");
    drop(sse);
    let _ = std::fs::remove_dir_all(data_dir);
}

/// Whether no more than `beyond - 1` records are on the topic (waits briefly for stragglers).
fn read_records_more(brokers: &str, beyond: usize) -> bool {
    std::panic::catch_unwind(|| read_records(brokers, TOPIC, beyond, Duration::from_secs(3)))
        .is_err()
}

#[test]
fn ingest_against_a_real_broker_process() {
    let tansu = start_tansu("memory://tansu/");
    let data_dir = temp_dir("e2e-tansu");
    let ff = start_fleetflow(
        "ingest",
        &[
            "--brokers",
            &tansu.brokers,
            "--data-dir",
            data_dir.to_str().expect("utf8"),
        ],
        &[],
    );
    for vehicle in 0..5 {
        let (status, body) = post_json(ff.http, CYCLE, &cycle(1_000 + vehicle, 16));
        assert_eq!(status, 200, "{body}");
    }
    let records = read_records(&tansu.brokers, TOPIC, 5, Duration::from_secs(60));
    let mut vehicles: Vec<&str> = records.iter().map(|(k, _)| k.as_str()).collect();
    vehicles.sort_unstable();
    assert_eq!(vehicles, ["1000", "1001", "1002", "1003", "1004"]);
    assert!(records.iter().all(|(_, r)| r.fix_count() == 60));
    assert!(ff.proc.terminate().success());
    let _ = std::fs::remove_dir_all(data_dir);
}

#[test]
fn config_file_env_and_flags_layer() {
    let dir = temp_dir("e2e-config");
    let config = dir.join("fleetflow.toml");
    std::fs::write(
        &config,
        r#"
        [ingest]
        unknown_vehicle = "reject"
        [[companies]]
        id = "acme"
        tokens = ["acme-token"]
        [vehicles]
        "2254690422" = "acme"
        "#,
    )
    .expect("write config");
    let ff = start_fleetflow(
        "run",
        &[
            "--config",
            config.to_str().expect("utf8"),
            "--data-dir",
            dir.to_str().expect("utf8"),
        ],
        &[
            ("FLEETFLOW_INGEST__AUTH", "token"),
            ("FLEETFLOW_ADMIN_TOKEN", "from-env"),
        ],
    );
    assert_eq!(
        ff.admin_token, None,
        "a configured admin token is not printed"
    );
    let body = key("on", 2_254_690_422, "20250218101530", 1);
    assert_eq!(
        post_json(ff.http, KEY_ON, &body).0,
        401,
        "env turned authentication on"
    );
    let (status, _) = http(
        ff.http,
        "POST",
        KEY_ON,
        &[
            ("Authorization", "Bearer acme-token"),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200);
    let unknown = key("on", 5, "20250218101530", 1);
    let (status, response) = http(
        ff.http,
        "POST",
        KEY_ON,
        &[("Authorization", "Bearer from-env")],
        unknown.to_string().as_bytes(),
    );
    assert_eq!(
        status, 404,
        "the file's unknown_vehicle = reject applies: {response}"
    );
    assert!(response.contains("1012"));
    drop(ff);

    // Bad configuration is a clear error and a failed exit.
    std::fs::write(&config, "[kafka]\nbrokerz = \"x\"\n").expect("write config");
    let output = Command::new(support::fleetflow_bin())
        .args(["run", "--config", config.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("brokerz"), "{stderr}");
    let output = Command::new(support::fleetflow_bin())
        .arg("ingest")
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--brokers"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn emulated_fleet_is_accepted_without_errors() {
    let data_dir = temp_dir("e2e-emulate");
    let ff = start_fleetflow(
        "run",
        &["--data-dir", data_dir.to_str().expect("utf8")],
        &[],
    );
    let output = Command::new(support::fleetflow_bin())
        .args([
            "emulate",
            "--vehicles",
            "300",
            "--speedup",
            "60",
            "--duration",
            "6",
        ])
        .args([
            "--report-every",
            "2",
            "--target",
            &format!("http://{}", ff.http),
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("emulate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let total = stdout
        .lines()
        .find(|line| line.starts_with("total:"))
        .unwrap_or_else(|| panic!("no total line in {stdout}"));
    let field = |name: &str| -> u64 {
        total
            .split_whitespace()
            .find_map(|word| word.strip_prefix(&format!("{name}=")))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {total}"))
    };
    assert_eq!(field("err"), 0, "{total}");
    let acked = field("ok");
    assert!(acked >= 300, "every vehicle keys on at least: {total}");

    let bearer = format!("Bearer {}", ff.admin_token.clone().expect("admin token"));
    let (_, status) = http(
        ff.http,
        "GET",
        "/status",
        &[("Authorization", bearer.as_str())],
        b"",
    );
    let status: Value = serde_json::from_str(&status).expect("status json");
    let delivered = status["ingest"]["records_delivered"]
        .as_u64()
        .expect("count");
    assert!(
        delivered >= acked,
        "server delivered {delivered}, emulator saw {acked} acks"
    );
    let records = read_records(
        &ff.brokers,
        TOPIC,
        delivered as usize,
        Duration::from_secs(60),
    );
    assert!(
        read_records_more(&ff.brokers, delivered as usize + 1),
        "more records than acks"
    );
    let vehicles: std::collections::HashSet<&str> =
        records.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(vehicles.len(), 300);
    drop(ff);
    let _ = std::fs::remove_dir_all(data_dir);
}

/// Issue 37: phones and trackers on the dedicated OsmAnd port, at any path: the legacy query
/// form without a timestamp and the Traccar Client app's JSON, both shown by the live view.
#[test]
fn osmand_devices_report_on_the_dedicated_port() {
    let data_dir = temp_dir("e2e-osmand");
    let ff = start_fleetflow(
        "run",
        &[
            "--data-dir",
            data_dir.to_str().expect("utf8"),
            "--admin-token",
            "osmand-admin",
        ],
        &[
            ("FLEETFLOW_INGEST__OSMAND_LISTEN", "127.0.0.1:0"),
            ("FLEETFLOW_PIPELINE__FLUSH_SECS", "1"),
        ],
    );
    let port = ff.osmand.expect("fleetflow printed its OsmAnd listener");
    let (status, body) = http(port, "GET", "/?id=tracker-1&lat=37.5&lon=127.0", &[], b"");
    assert_eq!((status, body.as_str()), (200, ""));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let client = json!({"device_id": "48241179", "location": {
        "timestamp": rfc3339(now),
        "coords": {"latitude": 37.4219983, "longitude": 127.084, "accuracy": 5, "speed": 10,
                   "heading": -1, "altitude": 5},
        "is_moving": true, "odometer": 0, "event": "motionchange",
        "battery": {"level": 0.8, "is_charging": false}, "activity": {"type": "in_vehicle"},
        "extras": {}}});
    let (status, body) = http(
        port,
        "POST",
        "/any/path",
        &[("Content-Type", "application/json")],
        client.to_string().as_bytes(),
    );
    assert_eq!((status, body.as_str()), (200, ""));
    let (status, _) = http(port, "GET", "/?id=tracker-1&lat=95&lon=127.0", &[], b"");
    assert_eq!(status, 400);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = http(
            ff.http,
            "GET",
            "/v1/live/vehicles",
            &[("Authorization", "Bearer osmand-admin")],
            b"",
        );
        let listed: Value = serde_json::from_str(&body).expect("json");
        let ids: Vec<&str> = listed["vehicles"]
            .as_array()
            .map(|v| v.iter().filter_map(|v| v["vehicle"].as_str()).collect())
            .unwrap_or_default();
        if ids.contains(&"tracker-1") && ids.contains(&"48241179") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not in the live view: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // What has no column is in `positions.attributes`; the time of receipt is flagged.
    let sql = json!({"sql": "SELECT vehicle, attributes, flags & 16 AS receipt FROM positions ORDER BY vehicle"});
    let rows = loop {
        let (status, body) = http(
            ff.http,
            "POST",
            "/v1/sql",
            &[
                ("Authorization", "Bearer osmand-admin"),
                ("Content-Type", "application/json"),
            ],
            sql.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("json");
        if answer["row_count"] == 2 {
            break answer["rows"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "positions not written: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        rows,
        json!([
            {"vehicle": "48241179", "receipt": 0, "attributes": r#"{"activity":{"type":"in_vehicle"},"battery":{"is_charging":false},"event":"motionchange","is_moving":true,"odometer":0}"#},
            {"vehicle": "tracker-1", "receipt": 16, "attributes": null},
        ])
    );
}

/// `secs` since the epoch as RFC 3339 UTC (`2025-06-15T13:45:12Z`).
fn rfc3339(secs: u64) -> String {
    let (y, m, d) = fleetflow_model::compact_time::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem / 60 % 60,
        rem % 60
    )
}
