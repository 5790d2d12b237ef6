//! What every ingest HTTP test shares: a harness around `app(state)` with an in-memory sink,
//! sample bodies, and the assertion every rejection must pass.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fleetflow_ingest::{
    IngestConfig, IngestMetrics, IngestState, MemorySink, RecordSink, SinkError, VehicleRegistry,
    app,
};
use fleetflow_model::{CompanyConfig, Tenants};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// 2025-02-18T10:20:00Z, a few minutes after the sample bodies' times.
pub const NOW_MS: i64 = 1_739_874_000_000;
pub const ADMIN: &str = "admin-secret";

pub struct Harness {
    pub app: Router,
    pub sink: Arc<MemorySink>,
    pub state: IngestState,
}

pub fn harness_with(config: IngestConfig, sink: Arc<dyn RecordSink>) -> IngestState {
    let companies = [
        CompanyConfig {
            id: "acme".into(),
            name: "Acme Rentals".into(),
            tokens: vec!["acme-token".into()],
            trips: None,
        },
        CompanyConfig {
            id: "beta".into(),
            name: "Beta Taxi".into(),
            tokens: vec!["beta-token".into()],
            trips: None,
        },
    ];
    let mut tenants = Tenants::new(&companies, Some(ADMIN)).expect("tenants");
    tenants
        .ensure_company(&config.default_company)
        .expect("default company");
    let registry = VehicleRegistry::new([
        ("2254690422".to_owned(), Arc::from("acme")),
        ("beta-1".to_owned(), Arc::from("beta")),
        // One id in two companies: two vehicles; a request without a company token is ambiguous.
        ("shared-1".to_owned(), Arc::from("acme")),
        ("shared-1".to_owned(), Arc::from("beta")),
    ]);
    let metrics = IngestMetrics::new(&prometheus::Registry::new()).expect("metrics");
    IngestState::new(config, Arc::new(tenants), Arc::new(registry), sink, metrics)
        .expect("state")
        .with_clock(Arc::new(|| NOW_MS))
}

pub fn harness(config: IngestConfig) -> Harness {
    let sink = Arc::new(MemorySink::new());
    let state = harness_with(config, sink.clone());
    Harness {
        app: app(state.clone()),
        sink,
        state,
    }
}

pub fn open() -> Harness {
    harness(IngestConfig::default())
}

pub fn key_on_body() -> Value {
    json!({"mdn":2254690422i64,"tid":"TID001","mid":1,"pv":1,"did":1,"onTime":"20250218101530",
           "offTime":null,"gcd":"A","lat":37500704,"lng":127030236,"ang":0,"spd":0,"sum":123456})
}

pub fn key_off_body() -> Value {
    json!({"mdn":2254690422i64,"tid":"TID001","mid":1,"pv":1,"did":1,"onTime":null,
           "offTime":"20250218101830","gcd":"A","lat":37501704,"lng":127031236,"ang":90,"spd":0,"sum":2100})
}

pub fn cycle_body(points: usize) -> Value {
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
pub fn cycle_body_times(points: usize) -> Value {
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

pub async fn send(
    app: &Router,
    request: Request<Body>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
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

pub fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("request")
}

pub fn post_json(path: &str, body: &Value) -> Request<Body> {
    post(path, body.to_string())
}

pub fn with_token(mut request: Request<Body>, token: &str) -> Request<Body> {
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

/// Asserts a Monicar-shaped failure and that nothing was produced.
pub async fn rejected(
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

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

pub fn native_items() -> Value {
    json!([
        {"vehicle":"taxi-1","time":"2025-02-18T10:15:31Z","lat":37.5,"lon":127.0,"speed":30.5,"heading":90,"gps":"A"},
        {"vehicle":"taxi-2","time":1739873731000i64,"lat":37.6,"lon":127.1},
        {"vehicle":"taxi-1","time":"2025-02-18T10:15:32.500Z","lat":37.5001,"lon":127.0001,"altitude":12.5,"accuracy":3,"battery":80},
        {"vehicle":"taxi-1","type":"ignition_off","time":"2025-02-18T19:15:33+09:00","lat":37.5002,"lon":127.0002,"odometer":1500}
    ])
}

/// A sink whose deliveries fail with the given error.
pub struct FailingSink(pub SinkError);

impl RecordSink for FailingSink {
    fn send(
        &self,
        _: Vec<fleetflow_ingest::OutRecord>,
    ) -> BoxFuture<'static, Result<(), SinkError>> {
        let error = self.0.clone();
        Box::pin(async move { Err(error) })
    }
}

/// One bad request and the rejection it must get (status, Monicar code, named field).
pub struct Bad {
    pub request: Request<Body>,
    pub status: StatusCode,
    pub code: u64,
    pub field: Option<String>,
}

/// A JSON body to `path` that must be refused with 400, `code`, naming `field`.
pub fn bad_json(path: &str, body: &Value, code: u64, field: &str) -> Bad {
    Bad {
        request: post_json(path, body),
        status: StatusCode::BAD_REQUEST,
        code,
        field: Some(field.to_owned()),
    }
}

/// Sends every case to `h`, each checked by [`rejected`].
pub async fn all_rejected(h: &Harness, cases: Vec<Bad>) {
    for case in cases {
        rejected(
            h,
            case.request,
            case.status,
            case.code,
            case.field.as_deref(),
        )
        .await;
    }
}
