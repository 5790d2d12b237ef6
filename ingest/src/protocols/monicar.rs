//! Monicar's event-hub API, byte-compatible with its emulators (`shared/monicar-api.md`):
//! `POST /api/v1/event-hub/{key-on,key-off,cycle-info}`.
//!
//! Every field is read as optional so that a missing one is answered with Monicar's code 301
//! naming it; a field of the wrong type or out of range gets 1001, a body that is not JSON 1008.
//! Unknown fields are ignored, as Monicar does (its emulator sends a per-point `sum`).
//!
//! fleetflow does not keep Monicar's per-vehicle ignition state at ingest (code 101, key-on while
//! on; 1015, odometer mismatch): ingest is stateless so that many instances can run behind a
//! load balancer. Such sequences are accepted and judged by the pipeline, which sees each
//! vehicle's events in order.

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use fleetflow_model::{Fix, GpsStatus, Item, Source};
use serde::Deserialize;

use crate::error::IngestError;
use crate::field::{At, Clock, json_error};
use crate::metrics::Endpoint;
use crate::request::handle;
use crate::state::{IngestState, VehicleBatch};

/// The terminal fields key-on, key-off and cycle-info share. (Not `#[serde(flatten)]`ed into the
/// bodies: flatten would buffer the whole `cList` before reading it.)
struct Terminal<'a> {
    mdn: Option<i64>,
    tid: Option<&'a str>,
    mid: Option<i64>,
    pv: Option<i64>,
    did: Option<i64>,
}

impl Terminal<'_> {
    /// Checks the terminal fields; the vehicle id is `mdn` in decimal.
    fn vehicle(&self) -> Result<String, IngestError> {
        let at = At::TOP;
        let mdn = at.required(self.mdn, "mdn")?;
        at.in_range(mdn, 1..=i64::MAX, "mdn")?;
        at.required(self.tid.as_ref(), "tid")?;
        at.required(self.mid, "mid")?;
        at.in_range(at.required(self.pv, "pv")?, 0..=65_535, "pv")?;
        at.required(self.did, "did")?;
        Ok(mdn.to_string())
    }
}

/// A key-on or key-off body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyEvent<'a> {
    mdn: Option<i64>,
    #[serde(borrow)]
    tid: Option<Cow<'a, str>>,
    mid: Option<i64>,
    pv: Option<i64>,
    did: Option<i64>,
    #[serde(borrow)]
    on_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    off_time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    gcd: Option<Cow<'a, str>>,
    lat: Option<i64>,
    lng: Option<i64>,
    ang: Option<i64>,
    spd: Option<i64>,
    sum: Option<i64>,
}

/// A cycle-info body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CycleInfo<'a> {
    mdn: Option<i64>,
    #[serde(borrow)]
    tid: Option<Cow<'a, str>>,
    mid: Option<i64>,
    pv: Option<i64>,
    did: Option<i64>,
    c_cnt: Option<i64>,
    #[serde(borrow)]
    c_list: Option<Vec<CyclePoint<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CyclePoint<'a> {
    #[serde(borrow)]
    interval_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    gcd: Option<Cow<'a, str>>,
    lat: Option<i64>,
    lng: Option<i64>,
    ang: Option<i64>,
    spd: Option<i64>,
}

/// The position fields Monicar sends with every point and key event.
struct MonicarFix<'a> {
    time: Option<&'a str>,
    time_name: &'static str,
    gcd: Option<&'a str>,
    lat: Option<i64>,
    lng: Option<i64>,
    ang: Option<i64>,
    spd: Option<i64>,
}

impl MonicarFix<'_> {
    fn validate(&self, at: At, clock: &Clock) -> Result<Fix, IngestError> {
        let time = at.required(self.time, self.time_name)?;
        let time_ms = at.compact_time(time, self.time_name)?;
        at.fix_time(time_ms, clock, self.time_name)?;
        let gcd = at.required(self.gcd, "gcd")?;
        let gps = match gcd {
            "A" => GpsStatus::Valid,
            "V" => GpsStatus::Invalid,
            "0" => GpsStatus::NotFitted,
            "P" => GpsStatus::BadAtIgnition,
            other => {
                return Err(IngestError::invalid(
                    at.field("gcd"),
                    format!("{other:?} is not one of \"A\", \"V\", \"0\", \"P\""),
                ));
            }
        };
        let lat = at.in_range(
            at.required(self.lat, "lat")?,
            -90_000_000..=90_000_000,
            "lat",
        )?;
        let lng = at.in_range(
            at.required(self.lng, "lng")?,
            -180_000_000..=180_000_000,
            "lng",
        )?;
        let ang = at.in_range(at.required(self.ang, "ang")?, 0..=365, "ang")?;
        let spd = at.in_range(at.required(self.spd, "spd")?, 0..=255, "spd")?;
        // The ranges above make these conversions exact.
        Ok(Fix {
            time_ms,
            lat_e7: (lat * 10) as i32,
            lon_e7: (lng * 10) as i32,
            speed_dkmh: (spd * 10) as u16,
            heading_ddeg: (ang * 10) as u16,
            gps,
            altitude_dm: None,
            accuracy_dm: None,
            battery_dpct: None,
            server_time: false,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Key {
    On,
    Off,
}

macro_rules! terminal {
    ($body:expr) => {
        Terminal {
            mdn: $body.mdn,
            tid: $body.tid.as_deref(),
            mid: $body.mid,
            pv: $body.pv,
            did: $body.did,
        }
    };
}

impl KeyEvent<'_> {
    fn into_batch(self, key: Key, clock: &Clock) -> Result<VehicleBatch, IngestError> {
        let at = At::TOP;
        let vehicle = terminal!(self).vehicle()?;
        let (time, time_name) = match key {
            Key::On => (self.on_time.as_deref(), "onTime"),
            Key::Off => (self.off_time.as_deref(), "offTime"),
        };
        if let (Key::Off, Some(on_time)) = (key, self.on_time.as_deref()) {
            at.compact_time(on_time, "onTime")?;
        }
        let fix = MonicarFix {
            time,
            time_name,
            gcd: self.gcd.as_deref(),
            lat: self.lat,
            lng: self.lng,
            ang: self.ang,
            spd: self.spd,
        }
        .validate(at, clock)?;
        let sum = at.in_range(at.required(self.sum, "sum")?, 0..=i64::MAX, "sum")? as u64;
        let item = match key {
            Key::On => Item::IgnitionOn {
                at: fix,
                odometer_m: Some(sum),
            },
            Key::Off => Item::IgnitionOff {
                at: fix,
                trip_distance_m: Some(sum),
            },
        };
        Ok(VehicleBatch {
            vehicle,
            field: "mdn".to_owned(),
            items: vec![item],
            attributes: Vec::new(),
        })
    }
}

impl CycleInfo<'_> {
    fn into_batch(self, max_items: usize, clock: &Clock) -> Result<VehicleBatch, IngestError> {
        let at = At::TOP;
        let vehicle = terminal!(self).vehicle()?;
        let c_cnt = at.required(self.c_cnt, "cCnt")?;
        let list = at.required(self.c_list, "cList")?;
        if list.is_empty() {
            return Err(IngestError::invalid("cList", "batch is empty"));
        }
        if list.len() > max_items {
            return Err(IngestError::BatchTooLarge {
                field: "cList".to_owned(),
                count: list.len(),
                max: max_items,
            });
        }
        if c_cnt != list.len() as i64 {
            return Err(IngestError::invalid(
                "cCnt",
                format!("is {c_cnt} but cList has {} items", list.len()),
            ));
        }
        let items = list
            .iter()
            .enumerate()
            .map(|(index, point)| {
                MonicarFix {
                    time: point.interval_at.as_deref(),
                    time_name: "intervalAt",
                    gcd: point.gcd.as_deref(),
                    lat: point.lat,
                    lng: point.lng,
                    ang: point.ang,
                    spd: point.spd,
                }
                .validate(At::item("cList", index), clock)
                .map(Item::Fix)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(VehicleBatch {
            vehicle,
            field: "mdn".to_owned(),
            items,
            attributes: Vec::new(),
        })
    }
}

pub(crate) async fn key_on(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    key_event(&state, &headers, body, Key::On).await
}

pub(crate) async fn key_off(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    key_event(&state, &headers, body, Key::Off).await
}

async fn key_event(state: &IngestState, headers: &HeaderMap, body: Body, key: Key) -> Response {
    let endpoint = match key {
        Key::On => Endpoint::KeyOn,
        Key::Off => Endpoint::KeyOff,
    };
    handle(
        state,
        endpoint,
        Source::Monicar,
        headers,
        body,
        |bytes, clock, _| {
            let event: KeyEvent<'_> = serde_json::from_slice(bytes)
                .map_err(|error| json_error::<KeyEvent<'_>>(bytes, error, "cList"))?;
            Ok(vec![event.into_batch(key, clock)?].into())
        },
    )
    .await
}

pub(crate) async fn cycle_info(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(
        &state,
        Endpoint::CycleInfo,
        Source::Monicar,
        &headers,
        body,
        |bytes, clock, config| {
            let cycle: CycleInfo<'_> = serde_json::from_slice(bytes)
                .map_err(|error| json_error::<CycleInfo<'_>>(bytes, error, "cList"))?;
            Ok(vec![cycle.into_batch(config.max_batch_items, clock)?].into())
        },
    )
    .await
}
