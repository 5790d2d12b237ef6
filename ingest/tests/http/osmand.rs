//! The OsmAnd endpoint (Traccar Client).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fleetflow_ingest::{AuthMode, IngestConfig};
use fleetflow_model::{Source, decode};

use crate::support::*;

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
    // Before ingest.min_fix_date (2000-01-01): an unset clock (issue 35).
    for old in ["0", "946684799", "-62135596800"] {
        let request = Request::get(format!("/osmand?id=phone-7&lat=1&lon=1&timestamp={old}"))
            .body(Body::empty())
            .expect("request");
        rejected(
            &h,
            request,
            StatusCode::BAD_REQUEST,
            1001,
            Some("timestamp"),
        )
        .await;
    }
    // Issue 35: bytes that are not UTF-8, a parameter given twice, and an absurd number are
    // refused by name, and the answer stays short.
    for (query, field) in [
        ("id=%FF%FE&lat=1&lon=1&timestamp=1739873731", "id"),
        ("id=p&lat=1&lat=2&lon=1&timestamp=1739873731", "lat"),
        ("id=p&lat=1&lon=1&timestamp=1739873731&speed=1e308", "speed"),
        (
            "id=p&lat=1&lon=1&timestamp=-9223372036854775808",
            "timestamp",
        ),
    ] {
        let request = Request::get(format!("/osmand?{query}"))
            .body(Body::empty())
            .expect("request");
        let body = rejected(&h, request, StatusCode::BAD_REQUEST, 1001, Some(field)).await;
        let message = body["errorMessage"].as_str().expect("message");
        assert!(message.len() < 120, "{message}");
    }
    let twice = Request::post("/osmand?id=p&lat=1&lon=1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("timestamp=1739873731&lon=2"))
        .expect("request");
    rejected(&h, twice, StatusCode::BAD_REQUEST, 1001, Some("lon")).await;
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

/// Issue 37: the Traccar Client app's JSON body (Traccar's own decoder test fixture), the legacy
/// query form without a timestamp, and the dedicated listener's any-path routes.
#[tokio::test]
async fn traccar_client_json_and_the_dedicated_listener() {
    const CLIENT: &str = r#"{"location":{"timestamp":"2025-02-18T10:15:31.862Z","coords":{"latitude":37.4219983,"longitude":-122.084,"accuracy":5,"speed":10,"heading":-1,"altitude":5},"is_moving":true,"odometer":1200,"event":"motionchange","battery":{"level":0.8,"is_charging":false},"activity":{"type":"in_vehicle"},"extras":{},"_":"&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&"},"device_id":"48241179"}"#;
    let h = open();
    let json = |path: &str, body: &str| {
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Body::from(body.to_owned()))
            .expect("request")
    };
    let (status, body, _) = send(&h.app, json("/osmand", CLIENT)).await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::Value::Null));
    let record = decode(&h.sink.records()[0].value).expect("decode");
    assert_eq!(record.vehicle, "48241179");
    let fix = *record.items[0].fix();
    // 10 m/s is 36 km/h; heading -1 is unknown; battery 0.8 is 80 %.
    assert_eq!((fix.speed_dkmh, fix.heading_ddeg), (360, 0));
    assert_eq!(fix.battery_dpct, Some(800));
    assert_eq!(fix.time_ms, 1_739_873_731_862);
    assert!(!fix.server_time);
    // A bad JSON field is named; nothing is produced.
    let bad = CLIENT.replace("\"latitude\":37.4219983", "\"latitude\":\"north\"");
    rejected(
        &open(),
        json("/osmand", &bad),
        StatusCode::BAD_REQUEST,
        1001,
        Some("location.coords.latitude"),
    )
    .await;

    // Without a timestamp the fix is at the time of receipt, and says so.
    let request = Request::get("/osmand?id=tracker-1&lat=37.5&lon=127.0")
        .body(Body::empty())
        .expect("request");
    let (status, _, _) = send(&h.app, request).await;
    assert_eq!(status, StatusCode::OK);
    let record = decode(&h.sink.records()[1].value).expect("decode");
    let fix = *record.items[0].fix();
    assert_eq!(fix.time_ms, NOW_MS);
    assert!(fix.server_time);

    // The dedicated listener: any path, GET or POST, the same validation and tokens.
    let token = harness(IngestConfig {
        auth: AuthMode::Token,
        ..IngestConfig::default()
    });
    let dedicated = fleetflow_ingest::osmand_app(token.state.clone());
    for path in ["/", "/any/path"] {
        let request = Request::get(format!("{path}?id=p&lat=1&lon=1&token=acme-token"))
            .body(Body::empty())
            .expect("request");
        let (status, _, _) = send(&dedicated, request).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let (status, _, _) = send(
            &dedicated,
            json(&format!("{path}?token=acme-token"), CLIENT),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let request = Request::get("/?id=p&lat=1&lon=1")
        .body(Body::empty())
        .expect("request");
    let (status, _, _) = send(&dedicated, request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let request = Request::post("/x")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("id=p&lat=95&lon=1&token=acme-token"))
        .expect("request");
    let (status, body, _) = send(&dedicated, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["errorMessage"].as_str().map(|m| m.starts_with("lat")),
        Some(true),
        "{body}"
    );
    assert_eq!(token.sink.records().len(), 4);
}
