//! The `/v1/live/*` HTTP surface, through `oneshot` on the router over a store fed by hand:
//! every view, cursor polling, the SSE stream, tenant isolation, and clear 400s.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fleetflow_live_store::alerts::{Alert, AlertKind};
use fleetflow_live_store::routes::RecentFix;
use fleetflow_live_store::store::{LiveStore, LiveStoreConfig};
use fleetflow_live_store::{Leader, LiveRow, Period, PeriodTotal};
use fleetflow_live_store::{LiveFix, Motion, Status, Trip, TripRule, VehicleLive};
use fleetflow_model::{CompanyConfig, Tenants};
use fleetflow_query::{LiveApi, live_routes};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

#[path = "support/live_vehicle.rs"]
mod live_vehicle;
use live_vehicle::vehicle;

const ADMIN: &str = "root-token";
const TOKEN_A: &str = "token-a";
const TOKEN_B: &str = "token-b";

fn tenants() -> Arc<Tenants> {
    let company = |id: &str, token: &str| CompanyConfig {
        id: id.into(),
        name: id.into(),
        tokens: vec![token.into()],
        trips: None,
    };
    Arc::new(
        Tenants::new(&[company("a", TOKEN_A), company("b", TOKEN_B)], Some(ADMIN))
            .expect("valid tenants"),
    )
}

fn summary_rows(vehicles: &[&VehicleLive]) -> Vec<(LiveRow, isize)> {
    let mut counts = std::collections::BTreeMap::new();
    for v in vehicles {
        *counts
            .entry((
                v.company.clone(),
                v.state.ignition,
                Status::from(v.state.motion),
            ))
            .or_insert(0) += 1;
    }
    counts
        .into_iter()
        .map(|(k, n)| (LiveRow::Summary(k, n), 1))
        .collect()
}

/// Company a: a1 moving and a2 parked in Seoul; company b: b1 idle next to a1.
fn store() -> Arc<LiveStore> {
    let store = Arc::new(LiveStore::new(LiveStoreConfig {
        change_log: 5,
        ..LiveStoreConfig::default()
    }));
    let a1 = vehicle("a", "a1", 37.5665, 126.9780, Motion::Moving);
    let a2 = vehicle("a", "a2", 37.4000, 127.1000, Motion::Parked);
    let b1 = vehicle("b", "b1", 37.5670, 126.9785, Motion::Idle);
    let total = |km: u64| PeriodTotal {
        distance_mm: km * 1_000_000,
        driving_ms: 600_000,
        trips: 1,
    };
    let mut rows: Vec<(LiveRow, isize)> = vec![
        (LiveRow::Vehicle(a1.clone()), 1),
        (LiveRow::Vehicle(a2.clone()), 1),
        (LiveRow::Vehicle(b1.clone()), 1),
        (
            LiveRow::Total(Period::Today, ("a".into(), "a1".into()), total(12)),
            1,
        ),
        (
            LiveRow::Total(Period::Today, ("b".into(), "b1".into()), total(30)),
            1,
        ),
    ];
    rows.extend(summary_rows(&[&a1, &a2, &b1]));
    for (company, vehicle, geofence, since_ms) in
        [("a", "a1", "depot", 900), ("b", "b1", "yard", 800)]
    {
        rows.push((
            LiveRow::Inside {
                company: company.into(),
                vehicle: vehicle.into(),
                geofence: geofence.into(),
                since_ms,
            },
            1,
        ));
    }
    for (company, vehicle, km) in [("a", "a1", 12), ("b", "b1", 30)] {
        rows.push((
            LiveRow::Leader(Leader {
                company: company.into(),
                period: Period::Today,
                rank: 1,
                vehicle: vehicle.into(),
                distance_mm: km * 1_000_000,
            }),
            1,
        ));
    }
    let alerts = ["a1", "b1"]
        .map(|v| Alert {
            seq: 0,
            epoch: 0,
            company: v[..1].into(),
            vehicle: v.into(),
            kind: AlertKind::Overspeed,
            time_ms: 950,
            pos: None,
            value: Some(130.0),
            geofence: None,
            retraction: false,
        })
        .to_vec();
    store.apply(vec![(10, rows, alerts)], 11);
    store
}

async fn get(store: &Arc<LiveStore>, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
    let app = live_routes(LiveApi::new(Some(store.clone()), tenants()));
    let mut request = Request::get(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|v| v["vehicle"].as_str().expect("vehicle").to_owned())
        .collect()
}

#[tokio::test]
async fn every_view_answers_with_its_dataflow_time() {
    let store = store();
    let (status, body) = get(&store, "/v1/live/vehicles", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["upto_ms"], 11);
    assert_eq!(ids(&body["vehicles"]), ["a1", "a2", "b1"]);
    let a1 = &body["vehicles"][0];
    assert_eq!(a1["status"], "moving");
    assert_eq!(a1["status_since_ms"], 900);
    assert_eq!(a1["position"]["speed_kmh"], 42.0);
    assert_eq!(a1["today"]["distance_m"], 12_000.0);
    assert_eq!(a1["odometer_km"], 12_345.0);

    let (_, body) = get(&store, "/v1/live/vehicles?status=parked,idle", Some(ADMIN)).await;
    assert_eq!(ids(&body["vehicles"]), ["a2", "b1"]);
    let (_, body) = get(&store, "/v1/live/vehicles?q=A2", Some(ADMIN)).await;
    assert_eq!(ids(&body["vehicles"]), ["a2"]);

    let (status, body) = get(&store, "/v1/live/vehicles/b1", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["vehicle"]["status"], "idle");

    let (_, body) = get(&store, "/v1/live/summary", Some(ADMIN)).await;
    assert_eq!(body["total"]["all"], 3);
    assert_eq!(body["total"]["engine_on"], 2);
    assert_eq!(body["total"]["engine_off"], 1);
    assert_eq!(body["companies"][0]["company"], "a");
    assert_eq!(body["companies"][0]["moving"], 1);

    // Nearest first; a2 is ~20 km away, outside 1 km.
    let (_, body) = get(
        &store,
        "/v1/live/nearby?lat=37.5665&lon=126.9780&radius_m=1000",
        Some(ADMIN),
    )
    .await;
    assert_eq!(ids(&body["vehicles"]), ["a1", "b1"]);
    assert_eq!(body["vehicles"][0]["distance_m"], 0.0);
    let (_, body) = get(
        &store,
        "/v1/live/nearby?lat=37.5665&lon=126.9780&radius_m=50000&status=parked&limit=5",
        Some(ADMIN),
    )
    .await;
    assert_eq!(ids(&body["vehicles"]), ["a2"]);

    let (_, body) = get(
        &store,
        "/v1/live/clusters?bbox=126.5,37.0,127.5,38.0&zoom=4",
        Some(ADMIN),
    )
    .await;
    let clusters = body["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0]["count"], 3);
    assert_eq!(clusters[0]["parked"], 1);
    let (_, body) = get(
        &store,
        "/v1/live/clusters?bbox=126.5,37.0,127.5,38.0&zoom=10",
        Some(ADMIN),
    )
    .await;
    assert_eq!(
        body["clusters"].as_array().unwrap().len(),
        2,
        "a2 apart at zoom 10"
    );

    let (_, body) = get(&store, "/v1/live/leaderboard?period=today", Some(ADMIN)).await;
    assert_eq!(body["boards"][1]["entries"][0]["vehicle"], "b1");
    assert_eq!(body["boards"][1]["entries"][0]["distance_m"], 30_000.0);
    let (_, body) = get(&store, "/v1/live/leaderboard?period=week", Some(ADMIN)).await;
    assert_eq!(body["boards"], Value::Array(vec![]));

    let (_, body) = get(&store, "/v1/live/alerts", Some(ADMIN)).await;
    assert_eq!(ids(&body["alerts"]), ["a1", "b1"]);
    assert_eq!(body["alerts"][0]["kind"], "overspeed");
    assert_eq!(body["cursor"], 2);
    let (_, body) = get(&store, "/v1/live/alerts?since=1", Some(ADMIN)).await;
    assert_eq!(ids(&body["alerts"]), ["b1"]);
}

#[tokio::test]
async fn cursor_polling_returns_exactly_the_changes() {
    let store = store();
    let (_, body) = get(&store, "/v1/live/vehicles", Some(ADMIN)).await;
    let cursor = body["cursor"].as_u64().unwrap();
    let (_, body) = get(
        &store,
        &format!("/v1/live/changes?since={cursor}"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(body["changes"], Value::Array(vec![]));

    // a2 drives off; b1 leaves the view.
    let a2 = vehicle("a", "a2", 37.4000, 127.1000, Motion::Parked);
    let a2_moving = vehicle("a", "a2", 37.4010, 127.1000, Motion::Moving);
    let b1 = vehicle("b", "b1", 37.5670, 126.9785, Motion::Idle);
    store.apply(
        vec![(
            20,
            vec![
                (LiveRow::Vehicle(a2), -1),
                (LiveRow::Vehicle(a2_moving), 1),
                (LiveRow::Vehicle(b1), -1),
            ],
            vec![],
        )],
        21,
    );
    let (status, body) = get(
        &store,
        &format!("/v1/live/changes?since={cursor}"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["upto_ms"], 21);
    let changes = body["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["vehicle"], "a2");
    assert_eq!(changes[0]["state"]["status"], "moving");
    assert_eq!(changes[1]["vehicle"], "b1");
    assert_eq!(changes[1]["state"], Value::Null);
    // The same through /vehicles?since=, and a company token sees its own changes only.
    let (_, body) = get(
        &store,
        &format!("/v1/live/vehicles?since={cursor}"),
        Some(TOKEN_B),
    )
    .await;
    assert_eq!(ids(&body["changes"]), ["b1"]);
    // Polling on from the new cursor: nothing.
    let next = body["cursor"].as_u64().unwrap();
    let (_, body) = get(
        &store,
        &format!("/v1/live/changes?since={next}"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(body["changes"], Value::Array(vec![]));

    // Past the log's reach (5 changes): 410, naming the parameter.
    for i in 0..6 {
        let v = vehicle("a", &format!("x{i}"), 37.0, 127.0, Motion::Parked);
        store.apply(
            vec![(30 + i, vec![(LiveRow::Vehicle(v), 1)], vec![])],
            31 + i,
        );
    }
    let (status, body) = get(
        &store,
        &format!("/v1/live/changes?since={cursor}"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["parameter"], "since");
}

#[tokio::test]
async fn a_company_token_never_sees_another_company() {
    let store = store();
    for uri in [
        "/v1/live/vehicles",
        "/v1/live/nearby?lat=37.5665&lon=126.9780&radius_m=100000&limit=100",
        "/v1/live/alerts",
        "/v1/live/changes?since=0",
    ] {
        let (status, body) = get(&store, uri, Some(TOKEN_A)).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let text = body.to_string();
        assert!(text.contains("\"a1\""), "{uri}: {text}");
        assert!(
            !text.contains("\"b1\"") && !text.contains("\"b\""),
            "{uri}: {text}"
        );
    }
    let (_, body) = get(&store, "/v1/live/summary", Some(TOKEN_A)).await;
    assert_eq!(body["total"]["all"], 2);
    assert_eq!(body["companies"].as_array().unwrap().len(), 1);
    let (_, body) = get(&store, "/v1/live/leaderboard", Some(TOKEN_A)).await;
    assert_eq!(body["boards"].as_array().unwrap().len(), 1);
    let (_, body) = get(
        &store,
        "/v1/live/clusters?bbox=126,37,128,38&zoom=2",
        Some(TOKEN_A),
    )
    .await;
    assert_eq!(body["clusters"][0]["count"], 2);
    let (status, _) = get(&store, "/v1/live/vehicles/b1", Some(TOKEN_A)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "as if it did not exist");
    let (status, body) = get(&store, "/v1/live/vehicles?company=b", Some(TOKEN_A)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["parameter"], "company");
    // The admin can narrow to one company.
    let (_, body) = get(&store, "/v1/live/vehicles?company=b", Some(ADMIN)).await;
    assert_eq!(ids(&body["vehicles"]), ["b1"]);
    let (status, body) = get(&store, "/v1/live/vehicles/b1?company=b", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["vehicle"]["company"], "b");
    for token in [None, Some("wrong")] {
        let (status, body) = get(&store, "/v1/live/vehicles", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body["error"].as_str().unwrap().contains("Bearer"));
    }
}

/// Issue 35: a vehicle is a company and an id. The same id in two companies is two vehicles;
/// each company sees its own, and the admin names the company when the id is ambiguous.
#[tokio::test]
async fn one_id_in_two_companies_is_two_vehicles() {
    let store = Arc::new(LiveStore::new(LiveStoreConfig::default()));
    let in_a = vehicle("a", "x1", 37.5665, 126.9780, Motion::Moving);
    let in_b = vehicle("b", "x1", 35.1796, 129.0756, Motion::Parked);
    let mut rows = vec![
        (LiveRow::Vehicle(in_a.clone()), 1),
        (LiveRow::Vehicle(in_b.clone()), 1),
    ];
    rows.extend(summary_rows(&[&in_a, &in_b]));
    store.apply(vec![(10, rows, Vec::new())], 11);
    for (token, company) in [(TOKEN_A, "a"), (TOKEN_B, "b")] {
        let (status, body) = get(&store, "/v1/live/vehicles/x1", Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["vehicle"]["company"], company);
    }
    let (status, body) = get(&store, "/v1/live/vehicles/x1", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["parameter"], "company");
    let (status, body) = get(&store, "/v1/live/vehicles/x1?company=b", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["vehicle"]["position"]["lat"], 35.1796);
    let (_, body) = get(&store, "/v1/live/vehicles", Some(ADMIN)).await;
    assert_eq!(ids(&body["vehicles"]), ["x1", "x1"]);
}

#[tokio::test]
async fn bad_parameters_get_a_clear_400() {
    let store = store();
    for (uri, parameter, says) in [
        ("/v1/live/nearby?lat=abc&lon=1", "lat", "not a number"),
        ("/v1/live/nearby?lon=1", "lat", "required"),
        ("/v1/live/nearby?lat=95&lon=1", "lat", "out of range"),
        (
            "/v1/live/nearby?lat=1&lon=1&radius_m=1e9",
            "radius_m",
            "out of range",
        ),
        (
            "/v1/live/vehicles?status=flying",
            "status",
            "moving, idle, parked, offline",
        ),
        (
            "/v1/live/vehicles?limt=3",
            "query",
            "unknown parameter \"limt\"",
        ),
        (
            "/v1/live/clusters?bbox=1,2,3&zoom=3",
            "bbox",
            "min_lon,min_lat,max_lon,max_lat",
        ),
        ("/v1/live/clusters?bbox=1,2,3,4", "zoom", "required"),
        (
            "/v1/live/leaderboard?period=year",
            "period",
            "today or week",
        ),
        ("/v1/live/alerts?kind=fire", "kind", "overspeed"),
        ("/v1/live/changes", "since", "required"),
        ("/v1/live/changes?since=-1", "since", "not a number"),
    ] {
        let (status, body) = get(&store, uri, Some(ADMIN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["parameter"], parameter, "{uri}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(says), "{uri}: {error}");
    }
}

#[tokio::test]
async fn without_a_pipeline_the_views_are_unavailable() {
    let app = live_routes(LiveApi::new(None, tenants()));
    let response = app
        .oneshot(
            Request::get("/v1/live/summary")
                .header("authorization", format!("Bearer {ADMIN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// Reads SSE frames until one whose event is `name`; returns its data.
async fn next_event(body: &mut Body, name: &str) -> (u64, Value) {
    let mut text = String::new();
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
            .await
            .expect("an event within 5 s")
            .expect("the stream is open")
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = text.find("\n\n") {
            let message: String = text.drain(..end + 2).collect();
            let field = |f: &str| {
                message
                    .lines()
                    .find_map(|l| l.strip_prefix(f))
                    .map(|v| v.trim().to_owned())
            };
            if field("event:").as_deref() == Some(name) {
                let id = field("id:").unwrap().parse().unwrap();
                return (id, serde_json::from_str(&field("data:").unwrap()).unwrap());
            }
        }
    }
}

#[tokio::test]
async fn the_stream_sends_a_snapshot_then_the_changes_a_company_may_see() {
    let store = store();
    let app = live_routes(LiveApi::new(Some(store.clone()), tenants()));
    // EventSource cannot set headers: the token rides in the query.
    let response = app
        .oneshot(
            Request::get(format!("/v1/live/stream?token={TOKEN_A}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let (id, snapshot) = next_event(&mut body, "snapshot").await;
    assert_eq!(ids(&snapshot["vehicles"]), ["a1", "a2"]);
    assert_eq!(id, snapshot["cursor"].as_u64().unwrap());

    // b changes first (a company-a stream sends nothing for it), then a1, with an alert.
    let b1 = vehicle("b", "b1", 37.5670, 126.9785, Motion::Idle);
    store.apply(vec![(20, vec![(LiveRow::Vehicle(b1), -1)], vec![])], 21);
    let a1 = vehicle("a", "a1", 37.5665, 126.9780, Motion::Moving);
    let a1_idle = vehicle("a", "a1", 37.5665, 126.9780, Motion::Idle);
    let alert = Alert {
        seq: 0,
        epoch: 0,
        company: "a".into(),
        vehicle: "a1".into(),
        kind: AlertKind::MaintenanceDue,
        time_ms: 2_000,
        pos: None,
        value: Some(15_000.0),
        geofence: None,
        retraction: false,
    };
    store.apply(
        vec![(
            30,
            vec![(LiveRow::Vehicle(a1), -1), (LiveRow::Vehicle(a1_idle), 1)],
            vec![alert],
        )],
        31,
    );
    let (_, changes) = next_event(&mut body, "changes").await;
    assert_eq!(changes["upto_ms"], 31);
    assert_eq!(ids(&changes["changes"]), ["a1"]);
    assert_eq!(changes["changes"][0]["state"]["status"], "idle");
    let (_, alerts) = next_event(&mut body, "alerts").await;
    assert_eq!(alerts["alerts"][0]["kind"], "maintenance_due");

    // Closing the store ends the stream (so a server can shut down).
    store.close();
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
        .await
        .expect("the stream ends");
    assert!(end.is_none());
}

/// a1 (company a) and b1 (company b) on open trips that started at 500 ms, a2 parked; fixes
/// from before a1's trip and inside it.
fn route_store() -> Arc<LiveStore> {
    let store = Arc::new(LiveStore::new(LiveStoreConfig::default()));
    let on_trip = |mut v: VehicleLive| {
        v.state.open_trip = Some(Trip {
            start_ms: 500,
            rule: TripRule::Ignition,
            start_pos: None,
            end_ms: 800,
            end_pos: None,
            distance_mm: 0,
            device_distance_m: None,
            moving_ms: 0,
            idle_ms: 0,
            max_speed_dkmh: 0,
            points: 3,
            closed_by: None,
        });
        v
    };
    let a1 = on_trip(vehicle("a", "a1", 37.5665, 126.9780, Motion::Moving));
    let a2 = vehicle("a", "a2", 37.4000, 127.1000, Motion::Parked);
    let b1 = on_trip(vehicle("b", "b1", 37.5670, 126.9785, Motion::Moving));
    let fix = |company: &str, v: &str, time_ms: i64| {
        LiveRow::Fix(RecentFix {
            company: company.into(),
            vehicle: v.into(),
            fix: LiveFix {
                time_ms,
                lat_e7: 375_665_000 + time_ms as i32,
                lon_e7: 1_269_780_000,
                speed_dkmh: 300,
            },
        })
    };
    let mut rows = vec![
        (LiveRow::Vehicle(a1), 1),
        (LiveRow::Vehicle(a2), 1),
        (LiveRow::Vehicle(b1), 1),
    ];
    for t in [100, 600, 700, 800] {
        rows.push((fix("a", "a1", t), 1));
    }
    rows.push((fix("a", "a2", 700), 1));
    rows.push((fix("b", "b1", 600), 1));
    store.apply(vec![(10, rows, vec![])], 11);
    store
}

fn route_times(route: &Value) -> Vec<i64> {
    route["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p[2].as_f64().expect("time") as i64)
        .collect()
}

#[tokio::test]
async fn live_routes_are_the_open_trips_recent_fixes() {
    let store = route_store();
    let (status, body) = get(&store, "/v1/live/routes", Some(ADMIN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["upto_ms"], 11);
    assert_eq!(body["count"], 2, "a2 has no open trip: {body}");
    assert_eq!(ids(&body["routes"]), ["a1", "b1"]);
    let a1 = &body["routes"][0];
    assert_eq!(
        route_times(a1),
        [600, 700, 800],
        "the fix before the trip is not on it"
    );
    assert_eq!(a1["trip_id"], "a1:500");
    assert_eq!(a1["status"], "moving");
    assert_eq!(a1["points"][0][0], 37.5665600);
    assert_eq!(a1["points"][0][3], 30.0);

    // A company sees its own routes only, whatever it asks for.
    let (_, body) = get(&store, "/v1/live/routes", Some(TOKEN_B)).await;
    assert_eq!(ids(&body["routes"]), ["b1"]);
    let (_, body) = get(&store, "/v1/live/routes?vehicle=a1", Some(TOKEN_B)).await;
    assert_eq!(body["count"], 0);

    // Thinning keeps the ends; after_ms returns the tail; bbox picks by current position.
    let (_, body) = get(&store, "/v1/live/routes?vehicle=a1&points=2", Some(ADMIN)).await;
    assert_eq!(route_times(&body["routes"][0]), [600, 800]);
    assert_eq!(body["routes"][0]["total_points"], 3);
    let (_, body) = get(&store, "/v1/live/routes?after_ms=650", Some(TOKEN_A)).await;
    assert_eq!(route_times(&body["routes"][0]), [700, 800]);
    let (_, body) = get(
        &store,
        "/v1/live/routes?bbox=126.97,37.56,126.98,37.5668",
        Some(ADMIN),
    )
    .await;
    assert_eq!(ids(&body["routes"]), ["a1"], "b1 is just outside: {body}");
    let (_, body) = get(&store, "/v1/live/routes?limit=1", Some(ADMIN)).await;
    assert_eq!(
        (body["count"].as_u64(), ids(&body["routes"]).len()),
        (Some(2), 1)
    );

    // A fix leaves the window: it leaves the route.
    let gone = LiveRow::Fix(RecentFix {
        company: "a".into(),
        vehicle: "a1".into(),
        fix: LiveFix {
            time_ms: 600,
            lat_e7: 375_665_600,
            lon_e7: 1_269_780_000,
            speed_dkmh: 300,
        },
    });
    store.apply(vec![(20, vec![(gone, -1)], vec![])], 21);
    let (_, body) = get(&store, "/v1/live/routes?vehicle=a1", Some(ADMIN)).await;
    assert_eq!(route_times(&body["routes"][0]), [700, 800]);

    for bad in [
        "points=1",
        "points=x",
        "bbox=1,2,3",
        "status=flying",
        "after_ms=soon",
        "vehicles=a1",
    ] {
        let (status, body) = get(&store, &format!("/v1/live/routes?{bad}"), Some(ADMIN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].as_str().is_some(), "{bad}: {body}");
    }
    let (status, _) = get(&store, "/v1/live/routes", Some("nope")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// `/v1/live/geofences` lists who is inside each geofence now, per company; each vehicle shows
/// the geofences it is inside.
#[tokio::test]
async fn geofences_show_who_is_inside_to_their_company_only() {
    let store = store();
    let (status, body) = get(&store, "/v1/live/geofences", Some(TOKEN_A)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["geofences"],
        serde_json::json!([{"company": "a", "id": "depot", "count": 1,
            "vehicles": [{"vehicle": "a1", "since_ms": 900}]}])
    );
    let (_, body) = get(&store, "/v1/live/geofences", Some(ADMIN)).await;
    assert_eq!(body["geofences"].as_array().unwrap().len(), 2);
    let (_, body) = get(&store, "/v1/live/vehicles", Some(TOKEN_A)).await;
    let a1 = body["vehicles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["vehicle"] == "a1")
        .unwrap()
        .clone();
    assert_eq!(
        a1["geofences"],
        serde_json::json!([{"id": "depot", "since_ms": 900}])
    );
}
