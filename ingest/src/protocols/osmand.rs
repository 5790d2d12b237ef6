//! The OsmAnd protocol, as the Traccar Client phone app and Traccar's load-test tool send it:
//! `GET` or `POST /osmand?id=..&lat=..&lon=..&timestamp=..&speed=..` (query parameters, or a
//! form-encoded body). Clients that cannot set headers pass their company token as `token`.
//!
//! `id` (or `deviceid`), `lat` and `lon` (or `location=lat,lon`) are required. `timestamp` is
//! epoch seconds (milliseconds when larger than 2^31, as Traccar reads it), RFC 3339, or
//! `yyyy-MM-dd HH:mm:ss` in UTC; without it the fix time is the time of receipt, as Traccar
//! does, and the fix says so ([`Fix::server_time`]). `speed` is in knots, `bearing` (or
//! `heading`) degrees, `altitude` and `accuracy` metres, `batt` percent, `valid=false` marks an
//! invalid fix. Other parameters are ignored, as Traccar stores them as free attributes.
//!
//! A body sent as `Content-Type: application/json` is the protocol's JSON form (the current
//! Traccar Client app), read by [`crate::protocols::osmand_json`]; a `token` then comes from the query.
//!
//! Answers are Traccar's: 200 with an empty body once the fix is durable, 4xx with a JSON
//! body naming the field otherwise. The door is `/osmand` on the main listener, and every path
//! of the optional dedicated listener (`ingest.osmand_listen`, [`osmand_app`]), as devices are
//! configured with a host and port only.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use fleetflow_model::{E7, Fix, GpsStatus, Item, Source};

use crate::error::IngestError;
use crate::field::{At, Clock};
use crate::metrics::Endpoint;
use crate::protocols::osmand_json::parse_json;
use crate::request::{Parsed, handle_with};
use crate::state::{IngestState, VehicleBatch};

const KNOTS_TO_KMH: f64 = 1.852;

/// The query's and the form body's parameters. A parameter given twice (in either) is refused,
/// as is one whose percent-decoded bytes are not UTF-8: silently taking one of two values, or
/// storing replacement characters, would record something the device did not say.
fn params(query: Option<&str>, body: &[u8]) -> Result<HashMap<String, String>, IngestError> {
    let mut params: HashMap<String, String> = HashMap::new();
    let mut add = |pairs: Vec<(String, String)>| -> Result<(), IngestError> {
        for (name, value) in pairs {
            if name.contains(char::REPLACEMENT_CHARACTER) {
                return Err(IngestError::UnreadableBody(
                    "a parameter name is not UTF-8".to_owned(),
                ));
            }
            if value.contains(char::REPLACEMENT_CHARACTER) {
                return Err(IngestError::invalid(name, "is not UTF-8 text"));
            }
            if params.contains_key(&name) {
                return Err(IngestError::invalid(name, "is given more than once"));
            }
            params.insert(name, value);
        }
        Ok(())
    };
    if let Some(query) = query {
        add(serde_urlencoded::from_str(query)
            .map_err(|e| IngestError::UnreadableBody(format!("bad query string: {e}")))?)?;
    }
    if !body.iter().all(u8::is_ascii_whitespace) {
        add(serde_urlencoded::from_bytes(body)
            .map_err(|e| IngestError::UnreadableBody(format!("bad form body: {e}")))?)?;
    }
    Ok(params)
}

fn number(params: &HashMap<String, String>, name: &str) -> Result<Option<f64>, IngestError> {
    params
        .get(name)
        .map(|text| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| IngestError::invalid(name, format!("{text:?} is not a number")))
        })
        .transpose()
}

fn timestamp(text: &str) -> Result<i64, IngestError> {
    let text = text.trim();
    if let Ok(value) = text.parse::<i64>() {
        return Ok(if value < i64::from(i32::MAX) {
            value.saturating_mul(1_000)
        } else {
            value
        });
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map(|time| time.and_utc().timestamp_millis())
        .map_err(|_| {
            IngestError::invalid(
                "timestamp",
                format!("{text:?} is not epoch seconds, epoch ms, RFC 3339 or yyyy-MM-dd HH:mm:ss"),
            )
        })
}

fn parse_osmand(
    params: &HashMap<String, String>,
    clock: &Clock,
) -> Result<VehicleBatch, IngestError> {
    let at = At::TOP;
    let id = params
        .get("id")
        .or_else(|| params.get("deviceid"))
        .ok_or_else(|| IngestError::missing("id"))?;
    let vehicle = at.vehicle_id(id.trim().to_owned(), "id")?;
    let (lat, lon) = match params.get("location") {
        Some(location) if !params.contains_key("lat") => {
            let (lat, lon) = location.split_once(',').ok_or_else(|| {
                IngestError::invalid("location", format!("{location:?} is not \"lat,lon\""))
            })?;
            let parse = |v: &str| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        IngestError::invalid("location", format!("{location:?} is not \"lat,lon\""))
                    })
            };
            (parse(lat)?, parse(lon)?)
        }
        _ => (
            at.required(number(params, "lat")?, "lat")?,
            at.required(number(params, "lon")?, "lon")?,
        ),
    };
    at.float_in_range(lat, -90.0..=90.0, "lat")?;
    at.float_in_range(lon, -180.0..=180.0, "lon")?;
    let (time_ms, server_time) = match params.get("timestamp") {
        Some(text) => {
            let time_ms = timestamp(text)?;
            at.in_range(time_ms, 0..=i64::MAX, "timestamp")?;
            (at.fix_time(time_ms, clock, "timestamp")?, false)
        }
        None => (clock.now_ms, true),
    };
    let mut fix = Fix::new(
        time_ms,
        (lat * E7).round() as i32,
        (lon * E7).round() as i32,
    );
    fix.server_time = server_time;
    if let Some(knots) = number(params, "speed")? {
        let kmh = at.float_in_range(knots, 0.0..=3_000.0, "speed")? * KNOTS_TO_KMH;
        fix.speed_dkmh = (kmh * 10.0).round() as u16;
    }
    let bearing = match number(params, "bearing")? {
        Some(value) => Some((value, "bearing")),
        None => number(params, "heading")?.map(|value| (value, "heading")),
    };
    if let Some((value, name)) = bearing {
        fix.heading_ddeg = (at.float_in_range(value, 0.0..=360.0, name)? * 10.0).round() as u16;
    }
    if let Some(altitude) = number(params, "altitude")? {
        fix.altitude_dm = Some(
            (at.float_in_range(altitude, -12_000.0..=100_000.0, "altitude")? * 10.0).round() as i32,
        );
    }
    if let Some(accuracy) = number(params, "accuracy")? {
        fix.accuracy_dm = Some(
            (at.float_in_range(accuracy, 0.0..=1_000_000.0, "accuracy")? * 10.0).round() as u32,
        );
    }
    if let Some(battery) = number(params, "batt")? {
        fix.battery_dpct =
            Some((at.float_in_range(battery, 0.0..=100.0, "batt")? * 10.0).round() as u16);
    }
    fix.gps = match params.get("valid").map(|v| v.trim().to_ascii_lowercase()) {
        None => GpsStatus::Unknown,
        Some(v) if v == "true" || v == "1" => GpsStatus::Valid,
        Some(v) if v == "false" || v == "0" => GpsStatus::Invalid,
        Some(v) => {
            return Err(IngestError::invalid(
                "valid",
                format!("{v:?} is not true or false"),
            ));
        }
    };
    Ok(VehicleBatch {
        vehicle,
        field: "id".to_owned(),
        items: vec![Item::Fix(fix)],
        attributes: Vec::new(),
    })
}

pub(crate) async fn osmand(
    State(state): State<IngestState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .get(..16)
                .is_some_and(|t| t.eq_ignore_ascii_case("application/json"))
        });
    handle_with(
        &state,
        Endpoint::Osmand,
        Source::Osmand,
        &headers,
        body,
        |bytes, clock, _| {
            if json {
                let mut params = params(query.as_deref(), b"")?;
                let request = parse_json(bytes, clock)?;
                return Ok(Parsed {
                    batches: vec![request.batch],
                    token: params.remove("token"),
                });
            }
            let mut params = params(query.as_deref(), bytes)?;
            Ok(Parsed {
                batches: vec![parse_osmand(&params, clock)?],
                token: params.remove("token"),
            })
        },
        // Traccar's answer: 200, empty.
        |_| StatusCode::OK.into_response(),
    )
    .await
}

/// The dedicated OsmAnd listener's routes (`ingest.osmand_listen`): the protocol on every path
/// and method, as Traccar's port 5055 takes it.
pub fn osmand_app(state: IngestState) -> Router {
    Router::new()
        .fallback(any(osmand))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
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
    fn reads_traccar_client_parameters() {
        let p = params(
            Some("id=phone1&lat=37.5&lon=127.25&timestamp=1739873731&speed=10&bearing=90.5&batt=55&valid=true"),
            b"",
        )
        .expect("params");
        let batch = parse_osmand(&p, &CLOCK).expect("valid");
        let fix = *batch.items[0].fix();
        assert_eq!(batch.vehicle, "phone1");
        assert_eq!(fix.time_ms, 1_739_873_731_000);
        assert_eq!(fix.speed_dkmh, 185);
        assert_eq!(fix.heading_ddeg, 905);
        assert_eq!(fix.battery_dpct, Some(550));
        assert_eq!(fix.gps, GpsStatus::Valid);
        let p = params(
            None,
            b"deviceid=x&location=1.5,2.5&timestamp=2025-02-18%2010:15:31",
        )
        .expect("form");
        let fix = *parse_osmand(&p, &CLOCK).expect("valid").items[0].fix();
        assert_eq!(
            (fix.lat_e7, fix.lon_e7, fix.time_ms),
            (15_000_000, 25_000_000, 1_739_873_731_000)
        );
    }

    #[test]
    fn names_the_bad_parameter() {
        for (query, field) in [
            ("lat=1&lon=2&timestamp=1739873731", "id"),
            ("id=a&lat=91&lon=2&timestamp=1739873731", "lat"),
            ("id=a&lat=1&lon=x&timestamp=1739873731", "lon"),
            ("id=a&lat=1&lon=2&timestamp=1739873731&speed=-1", "speed"),
        ] {
            let error = parse_osmand(&params(Some(query), b"").expect("params"), &CLOCK)
                .expect_err("must fail");
            assert_eq!(error.field(), Some(field), "{query}: {error}");
        }
    }
}
