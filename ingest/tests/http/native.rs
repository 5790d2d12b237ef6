//! The native batch endpoint.

use axum::http::{StatusCode, header};
use fleetflow_model::{Item, Source, decode};
use serde_json::json;

use crate::support::*;

const NATIVE: &str = fleetflow_ingest::NATIVE_PATH;

/// A change that makes a batch invalid.
type Breakage = fn(&mut serde_json::Value);

#[tokio::test]
async fn native_batches_make_one_record_per_vehicle() {
    let h = open();
    let (status, body, _) = send(&h.app, post_json(NATIVE, &native_items())).await;
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
    let mut request = post(NATIVE, gzip(ndjson.as_bytes()));
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
    let mut cases = Vec::new();
    let changes: [(&str, Breakage, u64); 4] = [
        ("items[2].lat", |items| items[2]["lat"] = json!(91.0), 1001),
        (
            "items[3].time",
            |items| items[3]["time"] = json!("2025-02-20T10:15:31Z"),
            1001,
        ),
        (
            "items[1].vehicle",
            |items| {
                items[1].as_object_mut().expect("object").remove("vehicle");
            },
            301,
        ),
        (
            "items[0].speed",
            |items| items[0]["speed"] = json!("fast"),
            1001,
        ),
    ];
    for (field, change, code) in changes {
        let mut items = native_items();
        change(&mut items);
        cases.push(bad_json(NATIVE, &items, code, field));
    }
    cases.push(bad_json(NATIVE, &json!([]), 1001, "items"));
    // Fixes before ingest.min_fix_date (2000-01-01), as an unset clock sends them (issue 35).
    for old in [
        json!(0),
        json!("1970-01-01T00:00:00Z"),
        json!("0001-01-01T00:00:00Z"),
    ] {
        let mut items = native_items();
        items[3]["time"] = old;
        cases.push(bad_json(NATIVE, &items, 1001, "items[3].time"));
    }
    cases.push(Bad {
        request: post(NATIVE, "42"),
        status: StatusCode::BAD_REQUEST,
        code: 1008,
        field: None,
    });
    // Without a company token, an id two companies hold is ambiguous: the whole batch is refused.
    let mut items = native_items();
    items[1]["vehicle"] = json!("shared-1");
    cases.push(Bad {
        request: with_token(post_json(NATIVE, &items), ADMIN),
        status: StatusCode::CONFLICT,
        code: 1012,
        field: Some("items[1].vehicle".to_owned()),
    });
    all_rejected(&h, cases).await;
    // Nothing was registered by the rejected requests.
    assert_eq!(h.state.registry().company_of("taxi-1"), None);
}
