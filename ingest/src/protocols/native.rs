//! The native high-throughput endpoint: `POST /v1/ingest`, many vehicles' fixes and ignition
//! events in one request.
//!
//! The body is a JSON array of items or NDJSON (one item per line), told apart by its first
//! non-blank byte; `Content-Encoding: gzip` is accepted. An item:
//!
//! ```json
//! {"vehicle":"taxi-17","time":"2025-02-18T10:15:31Z","lat":37.500710,"lon":127.030250,
//!  "speed":62.0,"heading":45,"gps":"A","altitude":31.5,"accuracy":4.0,"battery":87}
//! {"vehicle":"taxi-17","type":"ignition_off","time":1739873790000,"lat":37.5,"lon":127.03,
//!  "odometer":8120}
//! ```
//!
//! `vehicle` (string or integer), `time` (RFC 3339 or epoch milliseconds), `lat`, `lon` (degrees)
//! are required; `type` is `position` (default), `ignition_on` or `ignition_off`; `speed` km/h,
//! `heading` degrees, `altitude` and `accuracy` metres, `battery` percent, `odometer` metres
//! (ignition events only: the total at ignition on, the trip distance at ignition off).
//! Unknown fields are refused, so a misspelt field is reported rather than silently dropped.

use std::borrow::Cow;
use std::fmt;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use fleetflow_model::{E7, Fix, GpsStatus, Item, Source};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::error::IngestError;
use crate::field::{At, Clock, json_error};
use crate::metrics::Endpoint;
use crate::request::{Parsed, handle};
use crate::state::{IngestState, VehicleBatch, group_by_vehicle};

mod fast_path;

const LIST: &str = "items";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeItem<'a> {
    #[serde(borrow)]
    vehicle: Option<VehicleId<'a>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    time: Option<FlexTime>,
    lat: Option<f64>,
    lon: Option<f64>,
    speed: Option<f64>,
    heading: Option<f64>,
    #[serde(borrow)]
    gps: Option<Cow<'a, str>>,
    altitude: Option<f64>,
    accuracy: Option<f64>,
    battery: Option<f64>,
    odometer: Option<f64>,
}

/// A vehicle id given as a string (borrowed from the body when it has no escapes) or an
/// integer.
#[derive(Debug)]
struct VehicleId<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for VehicleId<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = VehicleId<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a vehicle id string or integer")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<VehicleId<'a>, E> {
                Ok(VehicleId(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<VehicleId<'a>, E> {
                Ok(VehicleId(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<VehicleId<'a>, E> {
                Ok(VehicleId(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<VehicleId<'a>, E> {
                Ok(VehicleId(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A time given as RFC 3339 text or integer epoch milliseconds.
#[derive(Debug)]
struct FlexTime(i64);

impl<'de> Deserialize<'de> for FlexTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FlexTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time or integer epoch milliseconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FlexTime, E> {
                parse_rfc3339(v)
                    .map(FlexTime)
                    .map_err(|e| E::custom(format_args!("{v:?} is not an RFC 3339 time: {e}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FlexTime, E> {
                i64::try_from(v)
                    .map(FlexTime)
                    .map_err(|_| E::custom("epoch milliseconds out of range"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FlexTime, E> {
                Ok(FlexTime(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Epoch milliseconds of an RFC 3339 time.
fn parse_rfc3339(text: &str) -> Result<i64, chrono::ParseError> {
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis())
}

impl<'a> NativeItem<'a> {
    fn validate(self, at: At, clock: &Clock) -> Result<(Cow<'a, str>, Item), IngestError> {
        let vehicle = at.vehicle_id(at.required(self.vehicle, "vehicle")?.0, "vehicle")?;
        let time_ms = at.required(self.time, "time")?.0;
        at.in_range(time_ms, 0..=i64::MAX, "time")?;
        at.fix_time(time_ms, clock, "time")?;
        let lat = at.float_in_range(at.required(self.lat, "lat")?, -90.0..=90.0, "lat")?;
        let lon = at.float_in_range(at.required(self.lon, "lon")?, -180.0..=180.0, "lon")?;
        let mut fix = Fix::new(
            time_ms,
            (lat * E7).round() as i32,
            (lon * E7).round() as i32,
        );
        if let Some(speed) = self.speed {
            fix.speed_dkmh =
                (at.float_in_range(speed, 0.0..=6_000.0, "speed")? * 10.0).round() as u16;
        }
        if let Some(heading) = self.heading {
            fix.heading_ddeg =
                (at.float_in_range(heading, 0.0..=360.0, "heading")? * 10.0).round() as u16;
        }
        if let Some(gps) = self.gps.as_deref() {
            fix.gps = match gps.as_bytes() {
                [code] => GpsStatus::from_code(*code),
                _ => None,
            }
            .filter(|status| *status != GpsStatus::Unknown)
            .ok_or_else(|| {
                IngestError::invalid(
                    at.field("gps"),
                    format!("{gps:?} is not one of \"A\", \"V\", \"0\", \"P\""),
                )
            })?;
        }
        if let Some(altitude) = self.altitude {
            fix.altitude_dm = Some(
                (at.float_in_range(altitude, -12_000.0..=100_000.0, "altitude")? * 10.0).round()
                    as i32,
            );
        }
        if let Some(accuracy) = self.accuracy {
            fix.accuracy_dm = Some(
                (at.float_in_range(accuracy, 0.0..=1_000_000.0, "accuracy")? * 10.0).round() as u32,
            );
        }
        if let Some(battery) = self.battery {
            fix.battery_dpct =
                Some((at.float_in_range(battery, 0.0..=100.0, "battery")? * 10.0).round() as u16);
        }
        let odometer = self
            .odometer
            .map(|m| {
                at.float_in_range(m, 0.0..=1e15, "odometer")
                    .map(|m| m.round() as u64)
            })
            .transpose()?;
        let item = match self.kind.as_deref().unwrap_or("position") {
            "position" if odometer.is_some() => {
                return Err(IngestError::invalid(
                    at.field("odometer"),
                    "only ignition_on and ignition_off items carry an odometer",
                ));
            }
            "position" => Item::Fix(fix),
            "ignition_on" => Item::IgnitionOn {
                at: fix,
                odometer_m: odometer,
            },
            "ignition_off" => Item::IgnitionOff {
                at: fix,
                trip_distance_m: odometer,
            },
            other => {
                return Err(IngestError::invalid(
                    at.field("type"),
                    format!(
                        "{other:?} is not one of \"position\", \"ignition_on\", \"ignition_off\""
                    ),
                ));
            }
        };
        Ok((vehicle, item))
    }
}

/// Parses and validates a native body into per-vehicle batches.
fn parse_native(
    bytes: &[u8],
    max_items: usize,
    clock: &Clock,
) -> Result<Vec<VehicleBatch>, IngestError> {
    validate_items(read_items(bytes, max_items)?, max_items, clock)
}

/// A body's items, unvalidated: a JSON array or NDJSON.
fn read_items(bytes: &[u8], max_items: usize) -> Result<Vec<NativeItem<'_>>, IngestError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => match fast_path::scan_array(bytes, max_items) {
            Some(items) => Ok(items),
            None => serde_json::from_slice::<Vec<NativeItem<'_>>>(bytes)
                .map_err(|error| json_error::<Vec<NativeItem<'_>>>(bytes, error, LIST)),
        },
        Some(b'{') => parse_ndjson(bytes, max_items),
        _ => Err(not_items()),
    }
}

fn not_items() -> IngestError {
    IngestError::UnreadableBody(
        "expected a JSON array of items or NDJSON (one item object per line)".to_owned(),
    )
}

fn validate_items<'a>(
    items: Vec<NativeItem<'a>>,
    max_items: usize,
    clock: &Clock,
) -> Result<Vec<VehicleBatch>, IngestError> {
    if items.is_empty() {
        return Err(IngestError::invalid(LIST, "batch is empty"));
    }
    if items.len() > max_items {
        return Err(IngestError::BatchTooLarge {
            field: LIST.to_owned(),
            count: items.len(),
            max: max_items,
        });
    }
    let validated = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let at = At::item(LIST, index);
            let (vehicle, item) = item.validate(at, clock)?;
            Ok((vehicle, at, item))
        })
        .collect::<Result<Vec<_>, IngestError>>()?;
    Ok(group_by_vehicle(validated))
}

/// NDJSON items: each by the fast path when it can, else by serde. On an error, the whole body
/// is read again by serde alone, so the error's line and column count from the body's start.
fn parse_ndjson(bytes: &[u8], max_items: usize) -> Result<Vec<NativeItem<'_>>, IngestError> {
    let mut items = Vec::new();
    // Where the previous item ended (serde's `byte_offset`).
    let mut end = 0;
    loop {
        // The next item starts after JSON whitespace; none means the body is read.
        let Some(start) = bytes[end..]
            .iter()
            .position(|b| !matches!(b, b' ' | b'\n' | b'\t' | b'\r'))
            .map(|skipped| end + skipped)
        else {
            return Ok(items);
        };
        match fast_path::scan_item(bytes, start) {
            Some((item, next)) => {
                items.push(item);
                end = next;
            }
            None => {
                let mut stream = serde_json::Deserializer::from_slice(&bytes[start..])
                    .into_iter::<NativeItem<'_>>();
                match stream.next() {
                    Some(Ok(item)) => {
                        items.push(item);
                        end = start + stream.byte_offset();
                    }
                    _ => return parse_ndjson_serde(bytes, max_items),
                }
            }
        }
        if items.len() > max_items {
            // Counted as too large without parsing the rest.
            return Ok(items);
        }
    }
}

/// NDJSON items by serde alone.
fn parse_ndjson_serde(bytes: &[u8], max_items: usize) -> Result<Vec<NativeItem<'_>>, IngestError> {
    let mut items = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<NativeItem<'_>>();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => return Ok(items),
            Some(Ok(item)) => {
                items.push(item);
                if items.len() > max_items {
                    // Counted as too large without parsing the rest.
                    return Ok(items);
                }
            }
            Some(Err(error)) => {
                let index = items.len();
                return Err(
                    match json_error::<NativeItem<'_>>(&bytes[start..], error, LIST) {
                        IngestError::InvalidField { field, reason } => IngestError::InvalidField {
                            field: format!("{LIST}[{index}].{field}"),
                            reason,
                        },
                        IngestError::UnreadableBody(reason) => {
                            IngestError::UnreadableBody(format!("{LIST}[{index}]: {reason}"))
                        }
                        other => other,
                    },
                );
            }
        }
    }
}

pub(crate) async fn ingest(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(
        &state,
        Endpoint::Native,
        Source::Native,
        &headers,
        body,
        |bytes, clock, config| parse_native(bytes, config.max_batch_items, clock).map(Parsed::from),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock {
        min_ms: 946_684_800_000,
        now_ms: 1_739_900_000_000,
        max_future_ms: 86_400_000,
    };

    #[test]
    fn array_and_ndjson_mean_the_same() {
        let array = br#"[{"vehicle":"a","time":"2025-02-18T10:15:31Z","lat":37.5,"lon":127.0},
                        {"vehicle":7,"time":1739873731000,"lat":-1.25,"lon":2.5,"type":"ignition_on","odometer":5}]"#;
        let ndjson = b"{\"vehicle\":\"a\",\"time\":\"2025-02-18T10:15:31Z\",\"lat\":37.5,\"lon\":127.0}\n\
                       {\"vehicle\":7,\"time\":1739873731000,\"lat\":-1.25,\"lon\":2.5,\"type\":\"ignition_on\",\"odometer\":5}\n";
        let a = parse_native(array, 10, &CLOCK).expect("array");
        let b = parse_native(ndjson, 10, &CLOCK).expect("ndjson");
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].vehicle, "7");
        assert_eq!(a[0].items[0].time_ms(), 1_739_873_731_000);
        assert_eq!(a[1].items[0].fix().lat_e7, -12_500_000);
    }

    #[test]
    fn errors_name_the_item_and_field() {
        let cases: [(&[u8], &str); 5] = [
            (br#"[{"vehicle":"a","time":1739873731000,"lat":95,"lon":0}]"#, "items[0].lat"),
            (b"{\"vehicle\":\"a\",\"time\":1739873731000,\"lat\":1,\"lon\":0}\n{\"vehicle\":\"a\",\"time\":\"x\",\"lat\":1,\"lon\":0}", "items[1].time"),
            (br#"[{"vehicle":"a","time":1739873731000,"lat":1,"lon":0},{"vehicle":"a","time":1739873731000,"lat":1}]"#, "items[1].lon"),
            (br#"[{"vehicle":"a","time":1739873731000,"lat":1,"lon":0,"sped":3}]"#, "items[0]"),
            (br#"[{"vehicle":"a","time":1739873731000,"lat":1,"lon":0,"odometer":3}]"#, "items[0].odometer"),
        ];
        for (body, field) in cases {
            let error = parse_native(body, 10, &CLOCK).expect_err("must fail");
            let text = error.to_string();
            assert!(text.starts_with(field), "{text} should name {field}");
        }
    }
}
