//! Seeded random input for every ingest door (issue 35): Monicar's three events, native JSON
//! and NDJSON (plain and gzip'd), OsmAnd's query string, form body and JSON (Traccar Client). Each case is either
//! random bytes or a valid body with bytes flipped, inserted, deleted or spliced, so parsing
//! is reached at every depth. Every answer must be a 200 that produced records or a 4xx that
//! produced none (accepted whole or refused whole), never a 5xx or a panic.
//!
//! `FUZZ_CASES` sets the cases per door (default 2,000 in CI);
//! `cargo test --release -p fleetflow-ingest --test http fuzz -- --ignored` runs 1,000,000.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use fleetflow_ingest::{CYCLE_INFO_PATH, KEY_OFF_PATH, KEY_ON_PATH, NATIVE_PATH, OSMAND_PATH};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::support::{cycle_body_times, gzip, key_off_body, key_on_body, native_items, open, send};

/// How a case's bytes reach the door.
#[derive(Debug, Clone, Copy)]
enum Door {
    Json(&'static str),
    Ndjson { gzip: bool },
    OsmandQuery,
    OsmandForm,
    OsmandJson,
}

fn seeds() -> Vec<(Door, Vec<u8>)> {
    let items = native_items();
    let ndjson: String = items
        .as_array()
        .expect("items")
        .iter()
        .map(|item| format!("{item}\n"))
        .collect();
    let osmand = b"id=phone-7&lat=37.5&lon=127.0&timestamp=1739873731&speed=10&bearing=45&batt=90&altitude=30&accuracy=5&valid=true".to_vec();
    vec![
        (
            Door::Json(KEY_ON_PATH),
            key_on_body().to_string().into_bytes(),
        ),
        (
            Door::Json(KEY_OFF_PATH),
            key_off_body().to_string().into_bytes(),
        ),
        (
            Door::Json(CYCLE_INFO_PATH),
            cycle_body_times(5).to_string().into_bytes(),
        ),
        (Door::Json(NATIVE_PATH), items.to_string().into_bytes()),
        (Door::Ndjson { gzip: false }, ndjson.clone().into_bytes()),
        (Door::Ndjson { gzip: true }, ndjson.into_bytes()),
        (Door::OsmandQuery, osmand.clone()),
        (Door::OsmandForm, osmand),
        (
            Door::OsmandJson,
            br#"{"location":[{"timestamp":"2025-02-18T10:15:31.862Z","coords":{"latitude":37.42,"longitude":-122.08,"accuracy":5,"speed":10,"heading":-1,"altitude":5},"is_moving":true,"odometer":1200,"battery":{"level":0.8,"is_charging":false},"activity":{"type":"in_vehicle"},"extras":{}},{"coords":{"latitude":37.43,"longitude":-122.08}}],"device_id":"48241179"}"#.to_vec(),
        ),
    ]
}

/// Bytes a parser finds interesting: structure, quotes, escapes, digits, signs, UTF-8 edges.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"-",
    b"+",
    b"e308",
    b"0",
    b"9999999999999999999",
    b"1e-400",
    b"NaN",
    b"%",
    b"%FF",
    b"&",
    b"=",
    b"\n",
    b"\r\n",
    b"\xff",
    b"\xc3",
    b"\xf0\x9f\x98",
    b"0000",
    b"20250230",
    b"\0",
];

fn mutate(rng: &mut SmallRng, seed: &[u8]) -> Vec<u8> {
    if rng.random_ratio(1, 8) {
        let len = rng.random_range(0..256);
        return (0..len).map(|_| rng.random()).collect();
    }
    let mut bytes = seed.to_vec();
    for _ in 0..rng.random_range(1..6) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..5) {
            0 if at < bytes.len() => bytes[at] = rng.random(),
            1 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                bytes.splice(at..at, token.iter().copied());
            }
            2 if at < bytes.len() => {
                let end = (at + rng.random_range(1..16)).min(bytes.len());
                bytes.drain(at..end);
            }
            3 if at < bytes.len() => {
                // Repeat a slice: duplicated fields, lists, parameters.
                let end = (at + rng.random_range(1..64)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            _ => bytes.truncate(at),
        }
    }
    bytes
}

fn request(door: Door, bytes: Vec<u8>) -> Option<Request<Body>> {
    let builder = match door {
        Door::Json(path) => Request::post(path).header(header::CONTENT_TYPE, "application/json"),
        Door::Ndjson { gzip: zipped } => {
            let builder =
                Request::post(NATIVE_PATH).header(header::CONTENT_TYPE, "application/x-ndjson");
            if zipped {
                let body = gzip(&bytes);
                return builder
                    .header(header::CONTENT_ENCODING, "gzip")
                    .body(Body::from(body))
                    .ok();
            }
            builder
        }
        Door::OsmandQuery => {
            // Only what a URI may hold reaches a handler; the rest is percent-encoded.
            let query: String = bytes
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() && b != b'#' {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            return Request::get(format!("{OSMAND_PATH}?{query}"))
                .body(Body::empty())
                .ok();
        }
        Door::OsmandForm => Request::post(OSMAND_PATH)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
        Door::OsmandJson => {
            Request::post(OSMAND_PATH).header(header::CONTENT_TYPE, "application/json")
        }
    };
    builder.body(Body::from(bytes)).ok()
}

async fn fuzz(cases: usize) {
    let h = open();
    let mut rng = SmallRng::seed_from_u64(35);
    let seeds = seeds();
    let mut accepted = 0usize;
    for case in 0..cases * seeds.len() {
        let (door, seed) = &seeds[case % seeds.len()];
        let bytes = mutate(&mut rng, seed);
        let Some(request) = request(*door, bytes.clone()) else {
            continue;
        };
        let before = h.sink.len();
        let (status, body, _) = send(&h.app, request).await;
        let produced = h.sink.len() - before;
        let shown = String::from_utf8_lossy(&bytes);
        if status == StatusCode::OK {
            assert!(produced > 0, "{door:?} 200 without records: {shown:?}");
            accepted += 1;
        } else {
            assert!(
                status.is_client_error(),
                "{door:?} answered {status} {body} to {shown:?}"
            );
            assert_eq!(produced, 0, "{door:?} refused but produced: {shown:?}");
        }
        if h.sink.len() > 100_000 {
            h.sink.clear();
        }
    }
    // The mutations leave some bodies valid: the doors are reached past their parsers.
    assert!(accepted > 0);
}

fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_door_answers_random_input_with_a_clear_status() {
    fuzz(cases()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1,000,000 cases per door: run by hand (see the module doc)"]
async fn every_door_answers_a_million_random_inputs() {
    fuzz(1_000_000).await;
}
