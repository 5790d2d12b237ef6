//! `POST /v1/sql` and `/v1/history/*` through `oneshot`: formats, row limit, errors with
//! positions, tokens, and tenant isolation through both doors.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use fleetflow_query::{SqlApi, history_routes, sql_routes};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

#[path = "support/history_fixture.rs"]
mod history_fixture;
use history_fixture::{ACME, ADMIN, GLOBEX, History, history};

struct Fixture {
    app: Router,
    _history: History,
}

fn fixture(name: &str) -> Fixture {
    let history = history(&format!("sql-http-{name}"), None);
    let api = SqlApi {
        engine: history.engine.clone(),
        tenants: history.tenants.clone(),
    };
    Fixture {
        app: sql_routes(api.clone()).merge(history_routes(api)),
        _history: history,
    }
}

async fn send(
    app: &Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = app.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, headers, body.to_vec())
}

fn sql_request(token: Option<&str>, query: &str, sql: &str) -> Request<Body> {
    let mut r = Request::post(format!("/v1/sql{query}")).header("content-type", "application/json");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::from(json!({ "sql": sql }).to_string()))
        .expect("request")
}

async fn sql_json(app: &Router, token: &str, sql: &str) -> (StatusCode, Value) {
    let (status, _, body) = send(app, sql_request(Some(token), "", sql)).await;
    (status, serde_json::from_slice(&body).expect("json"))
}

fn get(token: &str, uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}

async fn get_json(app: &Router, token: &str, uri: &str) -> (StatusCode, Value) {
    let (status, _, body) = send(app, get(token, uri)).await;
    (status, serde_json::from_slice(&body).expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_answers_in_every_format() {
    let f = fixture("formats");
    let sql = "SELECT vehicle, count(*) AS n FROM positions GROUP BY vehicle ORDER BY vehicle";
    let (status, body) = sql_json(&f.app, ADMIN, sql).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["row_count"], 4);
    assert_eq!(body["truncated"], false);
    assert_eq!(body["columns"][0]["name"], "vehicle");
    assert_eq!(body["rows"][0], json!({"vehicle": "v0000", "n": 24}));

    let (status, headers, csv) = send(&f.app, sql_request(Some(ADMIN), "?format=csv", sql)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let csv = String::from_utf8(csv).expect("utf-8");
    assert!(csv.starts_with("vehicle,n\nv0000,24\n"), "{csv}");

    // Accept chooses when there is no ?format=.
    let mut request = sql_request(Some(ADMIN), "", sql);
    request.headers_mut().insert(
        "accept",
        "application/vnd.apache.arrow.stream"
            .parse()
            .expect("header"),
    );
    let (status, headers, ipc) = send(&f.app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-fleetflow-rows"], "4");
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)
        .expect("arrow stream");
    let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, 4);

    let (status, _, parquet) = send(&f.app, sql_request(Some(ADMIN), "?format=parquet", sql)).await;
    assert_eq!(status, StatusCode::OK);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(parquet),
    )
    .expect("parquet")
    .build()
    .expect("reader");
    let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_limits_rows_and_explains_errors() {
    let f = fixture("limits");
    // max_rows is 50; positions has 96 rows.
    let (status, headers, body) = send(
        &f.app,
        sql_request(Some(ADMIN), "", "SELECT * FROM positions"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-fleetflow-truncated"], "true");
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["row_count"], 50);
    assert_eq!(body["truncated"], true);
    let (_, headers, _) = send(
        &f.app,
        sql_request(Some(ADMIN), "?limit=3", "SELECT * FROM positions"),
    )
    .await;
    assert_eq!(headers["x-fleetflow-rows"], "3");

    let (status, body) = sql_json(&f.app, ACME, "SELECT vehicle,\n  nope FROM positions").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");
    assert_eq!(
        (body["line"].clone(), body["column"].clone()),
        (json!(2), json!(3))
    );

    let (status, body) = sql_json(&f.app, ACME, "DROP TABLE positions").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("read-only"),
        "{body}"
    );

    for (query, parameter) in [
        ("?format=xml", "format"),
        ("?limit=51", "limit"),
        ("?rows=1", "query"),
    ] {
        let (status, _, body) = send(&f.app, sql_request(Some(ACME), query, "SELECT 1")).await;
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["parameter"], parameter, "{query}: {body}");
    }
    let bad_body = Request::post("/v1/sql")
        .header("authorization", format!("Bearer {ACME}"))
        .body(Body::from("{\"query\": \"SELECT 1\"}"))
        .expect("request");
    let (status, _, body) = send(&f.app, bad_body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("sql"));

    let (status, _, _) = send(&f.app, sql_request(None, "", "SELECT 1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(&f.app, sql_request(Some("wrong"), "", "SELECT 1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_routes_answer_geojson_trips_daily_and_top() {
    let f = fixture("rest");
    // v0001 (globex), 2020-12-01: trips at 06:00 and 09:00, six fixes each.
    let (status, route) = get_json(
        &f.app,
        GLOBEX,
        "/v1/history/route?vehicle=v0001&from=2020-12-01T00:00:00Z&to=2020-12-02T00:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{route}");
    assert_eq!(route["geometry"]["type"], "LineString");
    assert_eq!(
        route["geometry"]["coordinates"].as_array().unwrap().len(),
        12
    );
    assert_eq!(
        route["properties"]["times_ms"].as_array().unwrap().len(),
        12
    );
    assert_eq!(route["properties"]["company"], "globex");
    let (_, every) = get_json(
        &f.app,
        GLOBEX,
        "/v1/history/route?vehicle=v0001&from=1606780800000&to=1606867200000&every=5",
    )
    .await;
    assert_eq!(every["properties"]["points"], 3);

    let (status, trips) = get_json(
        &f.app,
        ACME,
        "/v1/history/trips?vehicle=v0000&from=2020-12-01T00:00:00Z&to=2020-12-02T00:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{trips}");
    let trips = trips["trips"].as_array().unwrap().clone();
    // The newest version of the corrected trip, and not the deleted one.
    assert_eq!(trips.len(), 2);
    assert_eq!(trips[0]["version"], 2);

    let (status, daily) = get_json(
        &f.app,
        ACME,
        "/v1/history/daily?vehicle=v0000&from=2020-11-30&to=2020-12-02",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{daily}");
    let days = daily["days"].as_array().unwrap();
    assert_eq!(days.len(), 3);
    assert_eq!(days[0]["trips"], 0);
    assert_eq!(days[1]["trips"], 2);
    assert!(days[1]["distance_m"].as_f64().unwrap() > 1000.0);

    let (status, top) = get_json(
        &f.app,
        ADMIN,
        "/v1/history/top?from=2020-12-01&to=2020-12-02&limit=3",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{top}");
    assert_eq!(top["vehicles"].as_array().unwrap().len(), 3);

    for (uri, parameter) in [
        ("/v1/history/route?vehicle=v0001&from=x&to=1", "from"),
        ("/v1/history/route?from=0&to=1", "vehicle"),
        ("/v1/history/route?vehicle=v0001&from=5&to=1", "to"),
        ("/v1/history/daily?from=2020-13-01&to=2020-12-02", "from"),
        ("/v1/history/daily?days=0", "days"),
        ("/v1/history/top?days=7&limit=0", "limit"),
        ("/v1/history/top?company=globex", "company"),
    ] {
        let (status, body) = get_json(&f.app, ACME, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["parameter"], parameter, "{uri}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_never_reads_another_companys_rows() {
    let f = fixture("isolation");
    for sql in [
        "SELECT DISTINCT company FROM positions",
        "SELECT DISTINCT company FROM trips_latest",
        "SELECT DISTINCT p.company FROM positions p JOIN trips t ON p.trip_id = t.trip_id",
        "SELECT DISTINCT company FROM events WHERE vehicle IN (SELECT vehicle FROM positions)",
        "SELECT DISTINCT company FROM errors",
    ] {
        let (status, body) = sql_json(&f.app, ACME, sql).await;
        assert_eq!(status, StatusCode::OK, "{sql}: {body}");
        assert_eq!(body["rows"], json!([{"company": "acme"}]), "{sql}");
    }
    // globex's vehicle, through every REST route.
    let (_, route) = get_json(
        &f.app,
        ACME,
        "/v1/history/route?vehicle=v0001&from=0&to=1906780800000",
    )
    .await;
    assert_eq!(route["properties"]["points"], 0);
    let (_, trips) = get_json(
        &f.app,
        ACME,
        "/v1/history/trips?vehicle=v0001&from=0&to=1906780800000",
    )
    .await;
    assert_eq!(trips["trips"], json!([]));
    let (_, daily) = get_json(
        &f.app,
        ACME,
        "/v1/history/daily?vehicle=v0001&from=2020-12-01&to=2020-12-02",
    )
    .await;
    assert!(
        daily["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["trips"] == 0)
    );
    let (_, top) = get_json(
        &f.app,
        ACME,
        "/v1/history/top?from=2020-12-01&to=2020-12-02",
    )
    .await;
    assert!(
        top["vehicles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["company"] == "acme")
    );
}
