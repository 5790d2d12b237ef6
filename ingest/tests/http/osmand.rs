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
