//! Monicar's event hub: key-on, cycle-info, key-off.

use axum::http::StatusCode;
use fleetflow_ingest::IngestConfig;
use fleetflow_model::{GpsStatus, Item, Source, decode};
use serde_json::{Value, json};

use crate::support::*;

const CYCLE: &str = fleetflow_ingest::CYCLE_INFO_PATH;
const KEY_ON: &str = fleetflow_ingest::KEY_ON_PATH;
const KEY_OFF: &str = fleetflow_ingest::KEY_OFF_PATH;

#[tokio::test]
async fn monicar_key_on_cycle_key_off_are_accepted_and_encoded() {
    let h = open();
    for (path, body) in [
        (KEY_ON, key_on_body()),
        (CYCLE, cycle_body_times(60)),
        (KEY_OFF, key_off_body()),
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
    let (status, _, _) = send(&h.app, post_json(KEY_ON, &body)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn monicar_bad_inputs_name_the_field() {
    let h = open();
    /// A cycle-info body with one change.
    fn cycle(change: impl FnOnce(&mut Value)) -> Value {
        let mut body = cycle_body_times(60);
        change(&mut body);
        body
    }
    fn key_on(change: impl FnOnce(&mut Value)) -> Value {
        let mut body = key_on_body();
        change(&mut body);
        body
    }
    // Malformed JSON.
    let mut cases = vec![
        Bad {
            request: post(CYCLE, "{\"mdn\": 1,"),
            status: StatusCode::BAD_REQUEST,
            code: 1008,
            field: None,
        },
        Bad {
            request: post(CYCLE, "not json"),
            status: StatusCode::BAD_REQUEST,
            code: 1008,
            field: None,
        },
    ];
    // Wrong types.
    cases.push(bad_json(
        CYCLE,
        &cycle(|b| b["cList"][3]["lat"] = json!(37.5)),
        1001,
        "cList[3].lat",
    ));
    cases.push(bad_json(
        KEY_ON,
        &key_on(|b| b["mdn"] = json!("abc")),
        1001,
        "mdn",
    ));
    // Missing fields.
    for field in [
        "mdn", "tid", "mid", "pv", "did", "onTime", "gcd", "lat", "lng", "ang", "spd", "sum",
    ] {
        let body = key_on(|b| {
            b.as_object_mut().expect("object").remove(field);
        });
        cases.push(bad_json(KEY_ON, &body, 301, field));
    }
    let mut off = key_off_body();
    off["offTime"] = Value::Null;
    cases.push(bad_json(KEY_OFF, &off, 301, "offTime"));
    let body = cycle(|b| {
        b["cList"][59]
            .as_object_mut()
            .expect("object")
            .remove("intervalAt");
    });
    cases.push(bad_json(CYCLE, &body, 301, "cList[59].intervalAt"));
    // cCnt mismatch and an empty batch.
    cases.push(bad_json(
        CYCLE,
        &cycle(|b| b["cCnt"] = json!(59)),
        1001,
        "cCnt",
    ));
    let empty = cycle(|b| {
        b["cCnt"] = json!(0);
        b["cList"] = json!([]);
    });
    cases.push(bad_json(CYCLE, &empty, 1001, "cList"));
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
        let body = cycle(|b| b["cList"][7][field] = value);
        cases.push(bad_json(CYCLE, &body, 1001, &format!("cList[7].{field}")));
    }
    cases.push(bad_json(
        KEY_ON,
        &key_on(|b| b["pv"] = json!(70_000)),
        1001,
        "pv",
    ));
    // Bad time formats.
    for bad in [
        "2025021810153",
        "2025-02-18 10:15",
        "20250230101530",
        "20250218251530",
    ] {
        let body = cycle(|b| b["cList"][0]["intervalAt"] = json!(bad));
        cases.push(bad_json(CYCLE, &body, 1001, "cList[0].intervalAt"));
    }
    // Fixes before ingest.min_fix_date (2000-01-01): an unset device clock (year 1, 1900,
    // 1970) would each open a `date=` partition of its own (issue 35).
    for old in [
        "00010101000000",
        "19000101000000",
        "19700101000000",
        "19991231235959",
    ] {
        let body = cycle(|b| b["cList"][2]["intervalAt"] = json!(old));
        cases.push(bad_json(CYCLE, &body, 1001, "cList[2].intervalAt"));
        cases.push(bad_json(
            KEY_ON,
            &key_on(|b| b["onTime"] = json!(old)),
            1001,
            "onTime",
        ));
    }
    // A fix more than 24 h ahead of the server clock.
    cases.push(bad_json(
        KEY_ON,
        &key_on(|b| b["onTime"] = json!("20250219102001")),
        1001,
        "onTime",
    ));
    all_rejected(&h, cases).await;

    // An oversized batch.
    let small = harness(IngestConfig {
        max_batch_items: 30,
        ..IngestConfig::default()
    });
    rejected(
        &small,
        post_json(CYCLE, &cycle_body_times(60)),
        StatusCode::PAYLOAD_TOO_LARGE,
        1001,
        Some("cList"),
    )
    .await;

    // Exactly 24 h ahead is still accepted.
    let body = key_on(|b| b["onTime"] = json!("20250219102000"));
    let (status, body, _) = send(&h.app, post_json(KEY_ON, &body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
