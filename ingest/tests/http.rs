//! The ingest HTTP surface, driven with `oneshot` (no sockets): every door with good and bad
//! input; each rejection checked for status, body, and that nothing reached the sink.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fleetflow_ingest::{
    AuthMode, IngestConfig, IngestMetrics, IngestState, MemorySink, RecordSink, SinkError,
    UnknownVehiclePolicy, VehicleRegistry, app,
};
use fleetflow_model::{CompanyConfig, GpsStatus, Item, Source, Tenants, decode};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// 2025-02-18T10:20:00Z, a few minutes after the sample bodies' times.
const NOW_MS: i64 = 1_739_874_000_000;
const ADMIN: &str = "admin-secret";

struct Harness {
    app: Router,
    sink: Arc<MemorySink>,
    state: IngestState,
}

fn harness_with(config: IngestConfig, sink: Arc<dyn RecordSink>) -> IngestState {
    let companies = [
        CompanyConfig {
            id: "acme".into(),
            name: "Acme Rentals".into(),
            tokens: vec!["acme-token".into()],
        },
        CompanyConfig {
            id: "beta".into(),
            name: "Beta Taxi".into(),
            tokens: vec!["beta-token".into()],
        },
    ];
    let mut tenants = Tenants::new(&companies, Some(ADMIN)).expect("tenants");
    tenants
        .ensure_company(&config.default_company)
        .expect("default company");
    let registry = VehicleRegistry::new([
        ("2254690422".to_owned(), Arc::from("acme")),
        ("beta-1".to_owned(), Arc::from("beta")),
    ]);
    let metrics = IngestMetrics::new(&prometheus::Registry::new()).expect("metrics");
    IngestState::new(config, Arc::new(tenants), Arc::new(registry), sink, metrics)
        .expect("state")
        .with_clock(Arc::new(|| NOW_MS))
}

fn harness(config: IngestConfig) -> Harness {
    let sink = Arc::new(MemorySink::new());
    let state = harness_with(config, sink.clone());
    Harness {
        app: app(state.clone()),
        sink,
        state,
    }
}

fn open() -> Harness {
    harness(IngestConfig::default())
}

fn key_on_body() -> Value {
    json!({"mdn":2254690422i64,"tid":"TID001","mid":1,"pv":1,"did":1,"onTime":"20250218101530",
           "offTime":null,"gcd":"A","lat":37500704,"lng":127030236,"ang":0,"spd":0,"sum":123456})
}

fn key_off_body() -> Value {
    json!({"mdn":2254690422i64,"tid":"TID001","mid":1,"pv":1,"did":1,"onTime":null,
           "offTime":"20250218101830","gcd":"A","lat":37501704,"lng":127031236,"ang":90,"spd":0,"sum":2100})
}

fn cycle_body(points: usize) -> Value {
    let list: Vec<Value> = (0..points)
        .map(|i| {
            json!({"intervalAt": format!("20250218101{:03}", 531 + i).chars().take(14).collect::<String>(),
                   "gcd":"A","lat":37500710 + i as i64 * 10,"lng":127030250 + i as i64 * 10,
                   "ang":45,"spd":62,"sum":17})
        })
        .collect();
    json!({"mdn":2254690422i64,"tid":"TID001","mid":1,"pv":1,"did":1,"cCnt":points,"cList":list})
}

/// A well-formed cycle-info whose intervalAt values are real times (10:15:31 + i seconds).
fn cycle_body_times(points: usize) -> Value {
    let mut body = cycle_body(points);
    for (i, point) in body["cList"]
        .as_array_mut()
        .expect("list")
        .iter_mut()
        .enumerate()
    {
        let secs = 10 * 3600 + 15 * 60 + 31 + i as i64;
        point["intervalAt"] = json!(format!(
            "20250218{:02}{:02}{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        ));
    }
    body
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    (status, body, headers)
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("request")
}

fn post_json(path: &str, body: &Value) -> Request<Body> {
    post(path, body.to_string())
}

fn with_token(mut request: Request<Body>, token: &str) -> Request<Body> {
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

/// Asserts a Monicar-shaped failure and that nothing was produced.
async fn rejected(
    h: &Harness,
    request: Request<Body>,
    status: StatusCode,
    code: u64,
    field: Option<&str>,
) -> Value {
    let (got, body, _) = send(&h.app, request).await;
    assert_eq!(got, status, "body: {body}");
    assert_eq!(body["isSuccess"], json!(false), "{body}");
    assert_eq!(body["errorCode"], json!(code), "{body}");
    assert!(body["timestamp"].is_i64(), "{body}");
    assert!(
        body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["field"], json!(field), "{body}");
        assert!(
            body["errorMessage"]
                .as_str()
                .is_some_and(|m| m.starts_with(field)),
            "message must name {field}: {body}"
        );
    }
    assert!(h.sink.is_empty(), "a rejected request reached the sink");
    body
}

#[tokio::test]
async fn monicar_key_on_cycle_key_off_are_accepted_and_encoded() {
    let h = open();
    for (path, body) in [
        ("/api/v1/event-hub/key-on", key_on_body()),
        ("/api/v1/event-hub/cycle-info", cycle_body_times(60)),
        ("/api/v1/event-hub/key-off", key_off_body()),
    ] {
        let (status, body, _) = send(&h.app, post_json(path, &body)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["isSuccess"], json!(true));
        assert!(body["message"].is_string());
    }
    let records = h.sink.records();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.key == "2254690422"));
    let on = decode(&records[0].value).expect("decode");
    assert_eq!(on.company, "acme");
    assert_eq!(on.source, Source::Monicar);
    assert_eq!(on.received_ms, NOW_MS);
    match on.items[0] {
        Item::IgnitionOn { at, odometer_m } => {
            assert_eq!(odometer_m, Some(123_456));
            assert_eq!(at.time_ms, 1_739_873_730_000);
            assert_eq!((at.lat_e7, at.lon_e7), (375_007_040, 1_270_302_360));
            assert_eq!(at.gps, GpsStatus::Valid);
        }
        other => panic!("expected ignition on, got {other:?}"),
    }
    let cycle = decode(&records[1].value).expect("decode");
    assert_eq!(cycle.fix_count(), 60);
    assert_eq!(cycle.items[0].time_ms(), 1_739_873_731_000);
    assert_eq!(cycle.items[59].time_ms(), 1_739_873_790_000);
    assert_eq!(cycle.items[0].fix().speed_dkmh, 620);
    assert_eq!(cycle.items[0].fix().heading_ddeg, 450);
    let off = decode(&records[2].value).expect("decode");
    assert!(matches!(
        off.items[0],
        Item::IgnitionOff {
            trip_distance_m: Some(2100),
            ..
        }
    ));
}

#[tokio::test]
async fn monicar_ignores_unknown_fields() {
    let h = open();
    let mut body = key_on_body();
    body["somethingNew"] = json!({"nested": [1, 2]});
    let (status, _, _) = send(&h.app, post_json("/api/v1/event-hub/key-on", &body)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn monicar_bad_inputs_name_the_field() {
    let h = open();
    let cycle = "/api/v1/event-hub/cycle-info";
    let key_on = "/api/v1/event-hub/key-on";
    let key_off = "/api/v1/event-hub/key-off";
    // Malformed JSON.
    rejected(
        &h,
        post(cycle, "{\"mdn\": 1,"),
        StatusCode::BAD_REQUEST,
        1008,
        None,
    )
    .await;
    rejected(
        &h,
        post(cycle, "not json"),
        StatusCode::BAD_REQUEST,
        1008,
        None,
    )
    .await;
    // Wrong types.
    let mut body = cycle_body_times(60);
    body["cList"][3]["lat"] = json!(37.5);
    rejected(
        &h,
        post_json(cycle, &body),
        StatusCode::BAD_REQUEST,
        1001,
        Some("cList[3].lat"),
    )
    .await;
    let mut body = key_on_body();
    body["mdn"] = json!("abc");
    rejected(
        &h,
        post_json(key_on, &body),
        StatusCode::BAD_REQUEST,
        1001,
        Some("mdn"),
    )
    .await;
    // Missing fields.
    for field in [
        "mdn", "tid", "mid", "pv", "did", "onTime", "gcd", "lat", "lng", "ang", "spd", "sum",
    ] {
        let mut body = key_on_body();
        body.as_object_mut().expect("object").remove(field);
        rejected(
            &h,
            post_json(key_on, &body),
            StatusCode::BAD_REQUEST,
            301,
            Some(field),
        )
        .await;
    }
    let mut body = key_off_body();
    body["offTime"] = Value::Null;
    rejected(
        &h,
        post_json(key_off, &body),
        StatusCode::BAD_REQUEST,
        301,
        Some("offTime"),
    )
    .await;
    let mut body = cycle_body_times(60);
    body["cList"][59]
        .as_object_mut()
        .expect("object")
        .remove("intervalAt");
    rejected(
        &h,
        post_json(cycle, &body),
        StatusCode::BAD_REQUEST,
        301,
        Some("cList[59].intervalAt"),
    )
    .await;
    // cCnt mismatch, empty and oversized batches.
    let mut body = cycle_body_times(60);
    body["cCnt"] = json!(59);
    rejected(
        &h,
        post_json(cycle, &body),
        StatusCode::BAD_REQUEST,
        1001,
        Some("cCnt"),
    )
    .await;
    let mut body = cycle_body_times(1);
    body["cCnt"] = json!(0);
    body["cList"] = json!([]);
    rejected(
        &h,
        post_json(cycle, &body),
        StatusCode::BAD_REQUEST,
        1001,
        Some("cList"),
    )
    .await;
    let small = harness(IngestConfig {
        max_batch_items: 30,
        ..IngestConfig::default()
    });
    rejected(
        &small,
        post_json(cycle, &cycle_body_times(60)),
        StatusCode::PAYLOAD_TOO_LARGE,
        1001,
        Some("cList"),
    )
    .await;
    // Out of range.
    for (field, value) in [
        ("lat", json!(90_000_001)),
        ("lat", json!(-90_000_001)),
        ("lng", json!(180_000_001)),
        ("ang", json!(366)),
        ("ang", json!(-1)),
        ("spd", json!(256)),
        ("gcd", json!("X")),
    ] {
        let mut body = cycle_body_times(60);
        body["cList"][7][field] = value;
        let name = format!("cList[7].{field}");
        rejected(
            &h,
            post_json(cycle, &body),
            StatusCode::BAD_REQUEST,
            1001,
            Some(&name),
        )
        .await;
    }
    let mut body = key_on_body();
    body["pv"] = json!(70_000);
    rejected(
        &h,
        post_json(key_on, &body),
        StatusCode::BAD_REQUEST,
        1001,
        Some("pv"),
    )
    .await;
    // Bad time formats.
    for bad in [
        "2025021810153",
        "2025-02-18 10:15",
        "20250230101530",
        "20250218251530",
    ] {
        let mut body = cycle_body_times(60);
        body["cList"][0]["intervalAt"] = json!(bad);
        rejected(
            &h,
            post_json(cycle, &body),
            StatusCode::BAD_REQUEST,
            1001,
            Some("cList[0].intervalAt"),
        )
        .await;
    }
    // A fix more than 24 h ahead of the server clock.
    let mut body = key_on_body();
    body["onTime"] = json!("20250219102001");
    rejected(
        &h,
        post_json(key_on, &body),
        StatusCode::BAD_REQUEST,
        1001,
        Some("onTime"),
    )
    .await;
    // Exactly 24 h ahead is still accepted.
    body["onTime"] = json!("20250219102000");
    let (status, body, _) = send(&h.app, post_json(key_on, &body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn oversize_and_gzip_bodies() {
    let h = harness(IngestConfig {
        max_body_bytes: 2_000,
        ..IngestConfig::default()
    });
    let cycle = "/api/v1/event-hub/cycle-info";
    let big = cycle_body_times(60).to_string();
    assert!(big.len() > 2_000);
    rejected(
        &h,
        post(cycle, big.clone()),
        StatusCode::PAYLOAD_TOO_LARGE,
        1008,
        None,
    )
    .await;
    // Compressed it fits on the wire but not once inflated: still refused.
    let gz = gzip(big.as_bytes());
    assert!(gz.len() < 2_000);
    let mut request = post(cycle, gz);
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "gzip".parse().expect("header"));
    rejected(&h, request, StatusCode::PAYLOAD_TOO_LARGE, 1008, None).await;
    // A broken gzip stream.
    let mut request = post(cycle, vec![0x1f, 0x8b, 0, 1, 2, 3]);
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "gzip".parse().expect("header"));
    rejected(&h, request, StatusCode::BAD_REQUEST, 1008, None).await;

    let roomy = open();
    let mut request = post(cycle, gzip(big.as_bytes()));
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "gzip".parse().expect("header"));
    let (status, body, _) = send(&roomy.app, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

#[tokio::test]
async fn tokens_scope_companies() {
    let h = harness(IngestConfig {
        auth: AuthMode::Token,
        ..IngestConfig::default()
    });
    let key_on = "/api/v1/event-hub/key-on";
    // No token, wrong token.
    rejected(
        &h,
        post_json(key_on, &key_on_body()),
        StatusCode::UNAUTHORIZED,
        401,
        None,
    )
    .await;
    rejected(
        &h,
        with_token(post_json(key_on, &key_on_body()), "nope"),
        StatusCode::UNAUTHORIZED,
        401,
        None,
    )
    .await;
    // Beta's token cannot report Acme's vehicle.
    rejected(
        &h,
        with_token(post_json(key_on, &key_on_body()), "beta-token"),
        StatusCode::FORBIDDEN,
        1012,
        Some("mdn"),
    )
    .await;
    // Acme's can; an unknown vehicle joins the token's company.
    let (status, body, _) = send(
        &h.app,
        with_token(post_json(key_on, &key_on_body()), "acme-token"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut body = key_on_body();
    body["mdn"] = json!(999);
    let (status, _, _) = send(&h.app, with_token(post_json(key_on, &body), "beta-token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h.state.registry().company_of("999").as_deref(),
        Some("beta")
    );
    let last = decode(&h.sink.records()[1].value).expect("decode");
    assert_eq!(last.company, "beta");
}

#[tokio::test]
async fn unknown_vehicles_follow_the_policy() {
    let strict = harness(IngestConfig {
        unknown_vehicle: UnknownVehiclePolicy::Reject,
        ..IngestConfig::default()
    });
    let mut body = key_on_body();
    body["mdn"] = json!(77);
    let response = rejected(
        &strict,
        post_json("/api/v1/event-hub/key-on", &body),
        StatusCode::NOT_FOUND,
        1012,
        Some("mdn"),
    )
    .await;
    assert!(
        response["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("77"))
    );

    let lenient = open();
    let (status, _, _) = send(&lenient.app, post_json("/api/v1/event-hub/key-on", &body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        lenient.state.registry().company_of("77").as_deref(),
        Some("default")
    );
}

fn native_items() -> Value {
    json!([
        {"vehicle":"taxi-1","time":"2025-02-18T10:15:31Z","lat":37.5,"lon":127.0,"speed":30.5,"heading":90,"gps":"A"},
        {"vehicle":"taxi-2","time":1739873731000i64,"lat":37.6,"lon":127.1},
        {"vehicle":"taxi-1","time":"2025-02-18T10:15:32.500Z","lat":37.5001,"lon":127.0001,"altitude":12.5,"accuracy":3,"battery":80},
        {"vehicle":"taxi-1","type":"ignition_off","time":"2025-02-18T19:15:33+09:00","lat":37.5002,"lon":127.0002,"odometer":1500}
    ])
}

#[tokio::test]
async fn native_batches_make_one_record_per_vehicle() {
    let h = open();
    let (status, body, _) = send(&h.app, post_json("/v1/ingest", &native_items())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let records = h.sink.records();
    assert_eq!(records.len(), 2);
    let taxi1 = decode(&records[0].value).expect("decode");
    assert_eq!((taxi1.vehicle.as_str(), taxi1.items.len()), ("taxi-1", 3));
    assert_eq!(taxi1.source, Source::Native);
    assert_eq!(taxi1.items[1].time_ms(), 1_739_873_732_500);
    assert_eq!(taxi1.items[1].fix().altitude_dm, Some(125));
    assert_eq!(taxi1.items[2].time_ms(), 1_739_873_733_000);
    assert!(matches!(
        taxi1.items[2],
        Item::IgnitionOff {
            trip_distance_m: Some(1500),
            ..
        }
    ));
    assert_eq!(taxi1.items[0].fix().speed_dkmh, 305);

    // NDJSON, gzip'd.
    let ndjson: String = native_items()
        .as_array()
        .expect("array")
        .iter()
        .map(|item| format!("{item}\n"))
        .collect();
    let h = open();
    let mut request = post("/v1/ingest", gzip(ndjson.as_bytes()));
    request
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "gzip".parse().expect("header"));
    let (status, body, _) = send(&h.app, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(h.sink.len(), 2);
}

#[tokio::test]
async fn native_rejects_whole_requests() {
    let h = open();
    let mut items = native_items();
    items[2]["lat"] = json!(91.0);
    rejected(
        &h,
        post_json("/v1/ingest", &items),
        StatusCode::BAD_REQUEST,
        1001,
        Some("items[2].lat"),
    )
    .await;
    let mut items = native_items();
    items[3]["time"] = json!("2025-02-20T10:15:31Z");
    rejected(
        &h,
        post_json("/v1/ingest", &items),
        StatusCode::BAD_REQUEST,
        1001,
        Some("items[3].time"),
    )
    .await;
    let mut items = native_items();
    items[1].as_object_mut().expect("object").remove("vehicle");
    rejected(
        &h,
        post_json("/v1/ingest", &items),
        StatusCode::BAD_REQUEST,
        301,
        Some("items[1].vehicle"),
    )
    .await;
    let mut items = native_items();
    items[0]["speed"] = json!("fast");
    rejected(
        &h,
        post_json("/v1/ingest", &items),
        StatusCode::BAD_REQUEST,
        1001,
        Some("items[0].speed"),
    )
    .await;
    rejected(
        &h,
        post_json("/v1/ingest", &json!([])),
        StatusCode::BAD_REQUEST,
        1001,
        Some("items"),
    )
    .await;
    rejected(
        &h,
        post("/v1/ingest", "42"),
        StatusCode::BAD_REQUEST,
        1008,
        None,
    )
    .await;
    // A company token cannot slip a foreign vehicle into a batch of its own.
    let mut items = native_items();
    items[1]["vehicle"] = json!("beta-1");
    rejected(
        &h,
        with_token(post_json("/v1/ingest", &items), "acme-token"),
        StatusCode::FORBIDDEN,
        1012,
        Some("items[1].vehicle"),
    )
    .await;
    // Nothing was registered by the rejected requests.
    assert_eq!(h.state.registry().company_of("taxi-1"), None);
}

#[tokio::test]
async fn osmand_query_and_form() {
    let h = open();
    let request = Request::get(
        "/osmand?id=phone-7&lat=37.5&lon=127.0&timestamp=1739873731&speed=10&bearing=45&batt=90",
    )
    .body(Body::empty())
    .expect("request");
    let (status, body, _) = send(&h.app, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let request = Request::post("/osmand")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(
            "id=phone-7&lat=37.5&lon=127.0&timestamp=1739873732",
        ))
        .expect("request");
    let (status, _, _) = send(&h.app, request).await;
    assert_eq!(status, StatusCode::OK);
    let records = h.sink.records();
    assert_eq!(records.len(), 2);
    let first = decode(&records[0].value).expect("decode");
    assert_eq!(first.source, Source::Osmand);
    assert_eq!(first.items[0].fix().speed_dkmh, 185);

    let h = open();
    let bad = Request::get("/osmand?id=phone-7&lat=95&lon=127.0&timestamp=1739873731")
        .body(Body::empty())
        .expect("request");
    rejected(&h, bad, StatusCode::BAD_REQUEST, 1001, Some("lat")).await;
    let future = Request::get("/osmand?id=phone-7&lat=1&lon=1&timestamp=1800000000")
        .body(Body::empty())
        .expect("request");
    rejected(&h, future, StatusCode::BAD_REQUEST, 1001, Some("timestamp")).await;
    let token = harness(IngestConfig {
        auth: AuthMode::Token,
        ..IngestConfig::default()
    });
    let request = Request::get("/osmand?id=p&lat=1&lon=1&timestamp=1739873731&token=wrong")
        .body(Body::empty())
        .expect("request");
    rejected(&token, request, StatusCode::UNAUTHORIZED, 401, None).await;
    let request = Request::get("/osmand?id=p&lat=1&lon=1&timestamp=1739873731&token=acme-token")
        .body(Body::empty())
        .expect("request");
    let (status, _, _) = send(&token.app, request).await;
    assert_eq!(status, StatusCode::OK);
}

/// A sink whose deliveries fail with the given error.
struct FailingSink(SinkError);

impl RecordSink for FailingSink {
    fn send(
        &self,
        _: Vec<fleetflow_ingest::OutRecord>,
    ) -> BoxFuture<'static, Result<(), SinkError>> {
        let error = self.0.clone();
        Box::pin(async move { Err(error) })
    }
}

#[tokio::test]
async fn kafka_trouble_is_policy() {
    let app_with = |sink: Arc<dyn RecordSink>| app(harness_with(IngestConfig::default(), sink));
    let full = app_with(Arc::new(FailingSink(SinkError::QueueFull)));
    let (status, body, headers) =
        send(&full, post_json("/api/v1/event-hub/key-on", &key_on_body())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        headers.get(header::RETRY_AFTER).map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );

    let timeout = app_with(Arc::new(FailingSink(SinkError::NotDelivered(
        "timed out".into(),
    ))));
    let (status, _, headers) = send(
        &timeout,
        post_json("/api/v1/event-hub/key-on", &key_on_body()),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));

    let too_large = app_with(Arc::new(FailingSink(SinkError::TooLarge {
        key: "2254690422".into(),
    })));
    let (status, _, _) = send(
        &too_large,
        post_json("/api/v1/event-hub/key-on", &key_on_body()),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let fatal = app_with(Arc::new(FailingSink(SinkError::Fatal(
        "TopicAuthorizationFailed secret-host:9092".into(),
    ))));
    let (status, body, _) = send(
        &fatal,
        post_json("/api/v1/event-hub/key-on", &key_on_body()),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !body.to_string().contains("secret-host"),
        "internal detail leaked: {body}"
    );
}

#[tokio::test]
async fn admin_registry_endpoints() {
    let h = open();
    let put = |vehicle: &str, company: &str, token: &str| {
        with_token(
            Request::put(format!("/v1/admin/vehicles/{vehicle}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"company": company}).to_string()))
                .expect("request"),
            token,
        )
    };
    let (status, _, _) = send(&h.app, put("taxi-9", "beta", ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h.state.registry().company_of("taxi-9").as_deref(),
        Some("beta")
    );
    let (status, _, _) = send(&h.app, put("taxi-9", "acme", "acme-token")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body, _) = send(&h.app, put("taxi-9", "nobody", ADMIN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let list = |token: &str| {
        with_token(
            Request::get("/v1/admin/vehicles")
                .body(Body::empty())
                .expect("request"),
            token,
        )
    };
    let (_, body, _) = send(&h.app, list("beta-token")).await;
    let vehicles: Vec<&str> = body["vehicles"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v["vehicle"].as_str().expect("id"))
        .collect();
    assert_eq!(vehicles, ["beta-1", "taxi-9"]);
    let (_, body, _) = send(&h.app, list(ADMIN)).await;
    assert_eq!(body["vehicles"].as_array().expect("list").len(), 3);
    let delete = with_token(
        Request::delete("/v1/admin/vehicles/taxi-9")
            .body(Body::empty())
            .expect("request"),
        ADMIN,
    );
    let (status, _, _) = send(&h.app, delete).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.state.registry().company_of("taxi-9"), None);
}
