//! Webhook delivery end to end without the pipeline: events committed into the `events` table
//! as the pipeline's sink commits them, delivered to local receivers that fail, recover or
//! never answer, across a stop and restart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use fleetflow_live_store::{
    IgnitionState, LiveRow, LiveStore, LiveStoreConfig, MachineLive, Motion, VehicleLive,
};
use fleetflow_tables::commit_log::{CommitLog, CommitWriter};
use fleetflow_webhooks::event::{WebhookEvent, signature};
use fleetflow_webhooks::subscription::NewSubscription;
use fleetflow_webhooks::synthetic;
use fleetflow_webhooks::{Format, Subscriptions, WebhookConfig, Webhooks};

const T0: i64 = 1_606_780_800_000;

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Got {
    endpoint: String,
    id: String,
    company: String,
    answered: u16,
    signed: bool,
}

#[derive(Debug, Default)]
struct Receiver {
    got: Mutex<Vec<Got>>,
    tries: Mutex<HashMap<(String, String), u32>>,
}

const SECRET: &str = "s3cret";

/// `/flaky` fails each event's first 3 tries, `/dead` every try, `/ok` none.
async fn receive(
    State(r): State<Arc<Receiver>>,
    UrlPath(endpoint): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let id = headers["x-fleetflow-event-id"].to_str().unwrap().to_owned();
    let tries = {
        let mut tries = r.tries.lock().unwrap();
        let n = tries.entry((endpoint.clone(), id.clone())).or_insert(0);
        *n += 1;
        *n
    };
    let status = match endpoint.as_str() {
        "flaky" if tries <= 3 => StatusCode::SERVICE_UNAVAILABLE,
        "dead" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    };
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    r.got.lock().unwrap().push(Got {
        endpoint,
        id,
        company: json["company"].as_str().unwrap_or_default().to_owned(),
        answered: status.as_u16(),
        signed: headers["x-fleetflow-signature"] == signature(SECRET, &body).as_str(),
    });
    status
}

async fn receiver() -> (SocketAddr, Arc<Receiver>) {
    let state = Arc::new(Receiver::default());
    let app = Router::new()
        .route("/{endpoint}", post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, state)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ff-webhooks-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn commit_events(writer: &CommitWriter, rows: &[(&str, &str, &str, i64)]) {
    synthetic::commit_events(writer, rows).unwrap();
}

fn subscribe(subs: &Subscriptions, company: &str, url: String, events: &[&str]) {
    let request = NewSubscription {
        url,
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        format: Format::Json,
        secret: Some(SECRET.into()),
        company: None,
    };
    subs.create(company, &request, 0).unwrap();
}

fn config() -> WebhookConfig {
    WebhookConfig {
        max_attempts: 5,
        initial_backoff_ms: 20,
        max_backoff_ms: 100,
        timeout_ms: 2_000,
        poll_ms: 20,
        ..WebhookConfig::default()
    }
}

fn start(data_dir: &Path, subs: &Arc<Subscriptions>) -> Webhooks {
    start_with(data_dir, subs, None)
}

fn start_with(
    data_dir: &Path,
    subs: &Arc<Subscriptions>,
    live: Option<Arc<LiveStore>>,
) -> Webhooks {
    let prepared = Webhooks::prepare(data_dir, &config(), subs.clone()).unwrap();
    Webhooks::start(prepared, live).unwrap()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscribed_event_arrives_once_per_id_to_its_own_company_only() {
    let dir = temp_dir("deliver");
    let (addr, received) = receiver().await;
    let subs = Arc::new(Subscriptions::open(&dir).unwrap());
    subscribe(
        &subs,
        "acme",
        format!("http://{addr}/flaky"),
        &["trip_end", "overspeed"],
    );
    subscribe(&subs, "acme", format!("http://{addr}/dead"), &["overspeed"]);
    subscribe(&subs, "globex", format!("http://{addr}/ok"), &["trip_end"]);

    let log = CommitLog::new(&dir);
    let writer = CommitWriter::new(log, None);
    let webhooks = start(&dir, &subs);
    commit_events(
        &writer,
        &[
            ("acme", "a1", "trip_end", T0),
            ("acme", "a1", "ignition_on", T0 + 1),
            ("acme", "a2", "overspeed", T0 + 2),
            ("globex", "g1", "trip_end", T0 + 3),
            ("globex", "g1", "overspeed", T0 + 4),
        ],
    );
    // Stopped while the flaky receiver is still failing: what is owed stays owed.
    wait_for("first tries", || received.got.lock().unwrap().len() >= 3).await;
    tokio::task::spawn_blocking(move || webhooks.stop())
        .await
        .unwrap();
    // Committed while delivery is down, and again after it restarts.
    commit_events(&writer, &[("acme", "a3", "trip_end", T0 + 10)]);
    let webhooks = start(&dir, &subs);
    commit_events(&writer, &[("globex", "g2", "trip_end", T0 + 20)]);

    let delivered = |endpoint: &str| {
        let got = received.got.lock().unwrap();
        let mut ids: Vec<String> = got
            .iter()
            .filter(|g| g.endpoint == endpoint && g.answered == 200)
            .map(|g| g.id.clone())
            .collect();
        ids.sort();
        ids
    };
    wait_for("deliveries", || {
        delivered("flaky").len() >= 3
            && delivered("ok").len() >= 2
            && webhooks.dead_letters.total() >= 1
    })
    .await;
    // Let late retries or duplicates show up.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let id = |c: &str, v: &str, k: &str, t: i64| {
        WebhookEvent::id_of(c, v, k, t, Some(&format!("{v}:{t}")), Some(1.5))
    };
    let unique = |mut ids: Vec<String>| {
        ids.dedup();
        ids
    };
    let flaky = delivered("flaky");
    let mut expected = vec![
        id("acme", "a1", "trip_end", T0),
        id("acme", "a2", "overspeed", T0 + 2),
        id("acme", "a3", "trip_end", T0 + 10),
    ];
    expected.sort();
    assert_eq!(unique(flaky.clone()), expected, "acme's subscribed events");
    let mut expected = vec![
        id("globex", "g1", "trip_end", T0 + 3),
        id("globex", "g2", "trip_end", T0 + 20),
    ];
    expected.sort();
    assert_eq!(unique(delivered("ok")), expected, "globex's trip ends");
    // A 200 can be answered again only for a request in flight at the stop.
    let duplicates = flaky.len() + delivered("ok").len() - 5;
    assert!(duplicates <= 1, "{duplicates} duplicates");
    let got = received.got.lock().unwrap().clone();
    for g in &got {
        let own = match g.endpoint.as_str() {
            "ok" => "globex",
            _ => "acme",
        };
        assert_eq!(g.company, own, "{g:?}");
        assert!(g.signed, "{g:?}");
    }
    // The same id on every try: 3 failures then the success, per flaky event.
    for event in &flaky {
        let tries = got
            .iter()
            .filter(|g| g.endpoint == "flaky" && &g.id == event)
            .count();
        assert!(tries >= 4, "{event}: {tries} tries");
    }
    let letters = webhooks.dead_letters.recent();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].event.kind, "overspeed");
    assert_eq!(letters[0].attempts, 5);
    assert_eq!(letters[0].error, "HTTP 500 Internal Server Error");
    assert_eq!(webhooks.dead_letters.total(), 1);
    // Since the restart: a3's trip end to the flaky receiver, g2's to globex's.
    assert_eq!(webhooks.stats.counts().dispatched, 2);
    tokio::task::spawn_blocking(move || webhooks.stop())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A vehicle's live state, as the dataflow sends it to the store.
fn vehicle(company: &str, id: &str) -> LiveRow {
    LiveRow::Vehicle(VehicleLive {
        vehicle: id.into(),
        company: company.into(),
        state: MachineLive {
            fix: None,
            ignition: IgnitionState::Unknown,
            open_trip: None,
            odometer_m: None,
            motion: Motion::Parked,
            motion_since_ms: 0,
        },
    })
}

fn offline(company: &str, id: &str, since_ms: u64) -> LiveRow {
    LiveRow::Offline {
        company: company.into(),
        vehicle: id.into(),
        since_ms,
    }
}

/// The live store's offline alert reaches the subscriptions of its company at once; the event
/// log's `offline` (same id) and `online`, committed when the vehicle is heard again, follow:
/// each arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_and_online_alerts_are_delivered() {
    let dir = temp_dir("alerts");
    let (addr, received) = receiver().await;
    let subs = Arc::new(Subscriptions::open(&dir).unwrap());
    subscribe(
        &subs,
        "acme",
        format!("http://{addr}/ok"),
        &["offline", "online"],
    );
    subscribe(
        &subs,
        "globex",
        format!("http://{addr}/other"),
        &["offline"],
    );
    let live = Arc::new(LiveStore::new(LiveStoreConfig::default()));
    let webhooks = start_with(&dir, &subs, Some(live.clone()));
    live.apply(
        vec![(
            50,
            vec![(vehicle("acme", "a1"), 1), (offline("acme", "a1", 50), 1)],
            vec![],
        )],
        51,
    );
    wait_for("the store's offline alert", || {
        received
            .got
            .lock()
            .unwrap()
            .iter()
            .any(|g| g.answered == 200)
    })
    .await;
    live.apply(
        vec![(60, vec![(offline("acme", "a1", 50), -1)], vec![])],
        61,
    );
    let log = CommitLog::new(&dir);
    let resume = log.recover().unwrap();
    commit_events(
        &CommitWriter::new(log, resume),
        &[("acme", "a1", "offline", 50), ("acme", "a1", "online", 60)],
    );
    let kinds = || {
        let got = received.got.lock().unwrap();
        got.iter()
            .filter(|g| g.answered == 200)
            .map(|g| (g.endpoint.clone(), g.company.clone()))
            .collect::<Vec<_>>()
    };
    wait_for("two alerts", || kinds().len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        kinds(),
        [
            ("ok".to_owned(), "acme".to_owned()),
            ("ok".to_owned(), "acme".to_owned())
        ],
        "acme's offline and online, nothing to globex"
    );
    let ids: Vec<String> = received
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|g| g.id.clone())
        .collect();
    assert!(ids.contains(&WebhookEvent::id_of(
        "acme", "a1", "offline", 50, None, None
    )));
    assert!(ids.contains(&WebhookEvent::id_of("acme", "a1", "online", 60, None, None)));
    tokio::task::spawn_blocking(move || webhooks.stop())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Delivery was off while compaction replaced a commit's events file: that commit is skipped
/// (and counted), not waited for, and later commits are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_file_is_gone_is_skipped_not_waited_for() {
    let dir = temp_dir("gone");
    let (addr, received) = receiver().await;
    let subs = Arc::new(Subscriptions::open(&dir).unwrap());
    subscribe(&subs, "acme", format!("http://{addr}/ok"), &["trip_end"]);
    let writer = CommitWriter::new(CommitLog::new(&dir), None);
    // The cursor is recorded at the newest commit (none yet) on the first start.
    Webhooks::prepare(&dir, &config(), subs.clone()).unwrap();
    let gone = synthetic::commit_events(&writer, &[("acme", "a1", "trip_end", T0)]).unwrap();
    std::fs::remove_file(dir.join(&gone.added[0].path)).unwrap();
    commit_events(&writer, &[("acme", "a2", "trip_end", T0 + 1)]);
    let webhooks = start(&dir, &subs);
    let delivered = || {
        received
            .got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.answered == 200)
            .map(|g| g.id.clone())
            .collect::<Vec<_>>()
    };
    wait_for("the later commit's event", || !delivered().is_empty()).await;
    let a2 = WebhookEvent::id_of(
        "acme",
        "a2",
        "trip_end",
        T0 + 1,
        Some(&format!("a2:{}", T0 + 1)),
        Some(1.5),
    );
    assert_eq!(delivered(), [a2]);
    assert_eq!(webhooks.stats.counts().skipped_commits, 1);
    tokio::task::spawn_blocking(move || webhooks.stop())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
