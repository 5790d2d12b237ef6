//! What every door shares: body limits and gzip, tokens and companies, the unknown-vehicle
//! policy, Kafka errors as policy, and the registry's admin endpoints.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fleetflow_ingest::{AuthMode, IngestConfig, RecordSink, SinkError, UnknownVehiclePolicy, app};
use fleetflow_model::decode;
use serde_json::json;

use crate::support::*;

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

#[tokio::test]
async fn tokens_scope_companies() {
    let h = harness(IngestConfig {
        auth: AuthMode::Token,
        ..IngestConfig::default()
    });
    let key_on = fleetflow_ingest::KEY_ON_PATH;
    let unauthorized = |request| Bad {
        request,
        status: StatusCode::UNAUTHORIZED,
        code: 401,
        field: None,
    };
    let cases = vec![
        // No token, wrong token.
        unauthorized(post_json(key_on, &key_on_body())),
        unauthorized(with_token(post_json(key_on, &key_on_body()), "nope")),
    ];
    all_rejected(&h, cases).await;
    // Acme's token reports Acme's vehicle.
    let (status, body, _) = send(
        &h.app,
        with_token(post_json(key_on, &key_on_body()), "acme-token"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Issue 35: Beta's token sending Acme's vehicle id is Beta's own vehicle of that id, and
    // Acme's device goes on as before (it used to be 403 forever for whoever came second).
    let (status, body, _) = send(
        &h.app,
        with_token(post_json(key_on, &key_on_body()), "beta-token"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body, _) = send(
        &h.app,
        with_token(post_json(key_on, &key_on_body()), "acme-token"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        h.state.registry().companies_of("2254690422"),
        [Arc::<str>::from("acme"), Arc::from("beta")]
    );
    let companies: Vec<String> = h
        .sink
        .records()
        .iter()
        .map(|r| decode(&r.value).expect("decode").company)
        .collect();
    assert_eq!(companies, ["acme", "beta", "acme"]);
    // An unknown vehicle joins the token's company.
    let mut body = key_on_body();
    body["mdn"] = json!(999);
    let (status, _, _) = send(&h.app, with_token(post_json(key_on, &body), "beta-token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h.state.registry().company_of("999").as_deref(),
        Some("beta")
    );
    // Under `unknown_vehicle = "reject"` a token may send only its company's registered ids.
    let strict = harness(IngestConfig {
        auth: AuthMode::Token,
        unknown_vehicle: UnknownVehiclePolicy::Reject,
        ..IngestConfig::default()
    });
    rejected(
        &strict,
        with_token(post_json(key_on, &key_on_body()), "beta-token"),
        StatusCode::NOT_FOUND,
        1012,
        Some("mdn"),
    )
    .await;
    let (status, body, _) = send(
        &strict.app,
        with_token(post_json(key_on, &key_on_body()), "acme-token"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
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
    assert_eq!(vehicles, ["beta-1", "shared-1", "taxi-9"]);
    let (_, body, _) = send(&h.app, list(ADMIN)).await;
    assert_eq!(body["vehicles"].as_array().expect("list").len(), 5);
    // The same id in a second company is a second vehicle; removing it from one leaves the other.
    let (status, _, _) = send(&h.app, put("taxi-9", "acme", ADMIN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.state.registry().companies_of("taxi-9").len(), 2);
    let delete_from = |vehicle: &str, company: &str| {
        with_token(
            Request::delete(format!("/v1/admin/vehicles/{vehicle}?company={company}"))
                .body(Body::empty())
                .expect("request"),
            ADMIN,
        )
    };
    let (status, body, _) = send(&h.app, delete_from("taxi-9", "acme")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = send(&h.app, delete_from("taxi-9", "acme")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(&h.app, delete_from("taxi-9", "nobody")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
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

/// Issue 35: a client that sends its head and then trickles (or stalls) its body is answered
/// 408 at `body_timeout_secs`, and nothing is produced.
#[tokio::test]
async fn a_stalled_body_is_refused_at_its_deadline() {
    let h = harness(IngestConfig {
        body_timeout_secs: 1,
        ..IngestConfig::default()
    });
    let first = futures::stream::once(async {
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"mdn\": "))
    });
    let stalled = futures::StreamExt::chain(first, futures::stream::pending());
    let request = Request::post(fleetflow_ingest::KEY_ON_PATH)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stalled))
        .expect("request");
    let started = std::time::Instant::now();
    let (status, body, _) = send(&h.app, request).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(h.sink.records().is_empty());
}
