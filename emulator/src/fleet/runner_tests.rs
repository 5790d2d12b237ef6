//! End-to-end tests of [`crate::run`] against the in-test HTTP server.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::config::EmulatorConfig;
use crate::fleet::report::{ErrorClass, Report};
use crate::fleet::runner::run;
use crate::fleet::test_server::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_posts_to_a_server_and_retries_a_503() {
    let server = TestServer::start(true).await;
    let config = EmulatorConfig {
        vehicles: 50,
        target: format!("http://{}", server.addr),
        seed: 11,
        speedup: 60.0,
        duration: Some(Duration::from_millis(2_500)),
        token: Some("secret".to_owned()),
        report_every: Duration::from_millis(500),
        ..EmulatorConfig::default()
    };
    let (_stop_tx, stop_rx) = watch::channel(false);
    let mut reports: Vec<Report> = Vec::new();
    let last = run(config, stop_rx, |r| reports.push(r.clone()))
        .await
        .expect("runs");
    let received = server.requests();
    assert!(!received.is_empty(), "something arrived");
    assert!(!reports.is_empty(), "live reports were made");
    assert!(last.to_string().starts_with("t="));

    // Counting matches what the server answered.
    let ok = received.iter().filter(|r| r.status == 200).count() as u64;
    assert!(last.cumulative.requests_ok > 0);
    assert!(last.cumulative.requests_ok <= ok);
    assert_eq!(last.cumulative.errors_of(ErrorClass::Status(503)), 1);
    assert!(last.cumulative.points_ok % 60 == 0);

    // Headers as Monicar's emulator sends them.
    let first = &received[0];
    assert_eq!(first.status, 503);
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.header("accept"), Some("application/json"));
    assert_eq!(first.header("key-version"), Some("1.0"));
    assert_eq!(first.header("authorization"), Some("Bearer secret"));
    assert_eq!(first.header("timestamp").map(str::len), Some(14));
    assert_eq!(first.header("tuid").map(str::len), Some(36));

    // The refused body was sent again, identically, after Retry-After.
    let resent = received[1..]
        .iter()
        .any(|r| r.body == first.body && r.path == first.path);
    assert!(resent, "the 503'd request was retried with the same body");
    assert_eq!(last.cumulative.retries, 1);

    // Per vehicle: key-on first, sequential and well-formed.
    let mut first_path: HashMap<i64, String> = HashMap::new();
    for request in &received {
        let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
        let mdn = body["mdn"].as_i64().expect("mdn");
        assert!((2_254_690_000..2_254_690_050).contains(&mdn));
        first_path
            .entry(mdn)
            .or_insert_with(|| request.path.clone());
    }
    for path in first_path.values() {
        assert_eq!(path, "/api/v1/event-hub/key-on");
    }
}

#[tokio::test]
async fn stops_on_signal_and_rejects_bad_targets() {
    let (stop_tx, stop_rx) = watch::channel(false);
    let config = EmulatorConfig {
        vehicles: 3,
        target: "http://127.0.0.1:9".to_owned(),
        ..EmulatorConfig::default()
    };
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stop_tx.send(true);
    });
    let report = run(config, stop_rx, |_| {}).await.expect("runs");
    stopper.await.expect("stopper");
    assert!(report.elapsed < Duration::from_secs(10));

    let (_tx, rx) = watch::channel(false);
    let bad = EmulatorConfig {
        target: "ftp://x".to_owned(),
        ..EmulatorConfig::default()
    };
    assert!(run(bad, rx, |_| {}).await.is_err());
}
