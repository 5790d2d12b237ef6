//! The OsmAnd protocol's JSON form, as the Traccar Client app posts it (`Content-Type:
//! application/json`, read as Traccar's `OsmAndProtocolDecoder` reads it):
//!
//! ```json
//! {"device_id": "48241179",
//!  "location": {"timestamp": "2025-06-15T13:45:12.862Z",
//!               "coords": {"latitude": 37.42, "longitude": -122.08, "accuracy": 5,
//!                          "speed": 0, "heading": -1, "altitude": 5},
//!               "is_moving": false, "odometer": 0, "event": "motionchange",
//!               "battery": {"level": 1, "is_charging": false},
//!               "activity": {"type": "still"}, "extras": {}}}
//! ```
//!
//! - `device_id` (a string, or a number) is the vehicle id.
//! - `location` is one object, or a list of them (the geolocation SDK's batch sync); each is one
//!   fix of the device, named `location` or `location[i]` in errors.
//! - `timestamp`: RFC 3339. Without it the fix time is the time of receipt, and the fix says so
//!   ([`Fix::server_time`], the `server_time` bit of `positions.flags`).
//! - `coords.latitude`/`longitude` are required (Traccar would reuse the device's last
//!   position; fleetflow stores fixes only as sent). `speed` is m/s and `heading` degrees, a
//!   negative value of either meaning unknown (stored as 0, as the query form's absent ones);
//!   `accuracy` and `altitude` are metres; `battery.level` is 0..1 (negative: unknown).
//! - `is_moving`, `odometer`, `event`, `mock`, `activity`, `battery.is_charging` and `extras` have
//!   no column of their own: each fix keeps those it was sent, in the shape they came in, as one
//!   JSON object in `positions.attributes` (at most 4 KiB; more is refused, naming the location).
//!
//! Fields are named by their path (`location.coords.latitude`); unknown fields are ignored, as
//! Traccar ignores them.

use serde_json::{Map, Value};

use fleetflow_model::record::MAX_ATTRIBUTES_LEN;
use fleetflow_model::{E7, Fix, GpsStatus, Item, ItemAttributes};

use crate::error::IngestError;
use crate::field::{At, Clock};
use crate::state::VehicleBatch;

/// Most fixes one JSON request may carry (a batch sync after a long time offline).
const MAX_LOCATIONS: usize = 10_000;

/// The attributes a location may carry that no column holds: kept, as sent, in
/// `positions.attributes` (one JSON object per fix).
pub const ATTRIBUTES: [&str; 6] = [
    "is_moving",
    "odometer",
    "event",
    "mock",
    "activity",
    "extras",
];

/// One JSON request: its vehicle's fixes, with their attributes.
#[derive(Debug)]
pub struct JsonRequest {
    pub batch: VehicleBatch,
}

pub fn parse_json(bytes: &[u8], clock: &Clock) -> Result<JsonRequest, IngestError> {
    let root: Value = serde_json::from_slice(bytes)
        .map_err(|e| IngestError::UnreadableBody(format!("not valid JSON: {e}")))?;
    let root = root
        .as_object()
        .ok_or_else(|| IngestError::invalid("body", "must be a JSON object"))?;
    let id = match root.get("device_id") {
        None | Some(Value::Null) => return Err(IngestError::missing("device_id")),
        Some(Value::String(id)) => id.trim().to_owned(),
        Some(Value::Number(id)) => id.to_string(),
        Some(_) => {
            return Err(IngestError::invalid(
                "device_id",
                "must be a string or a number",
            ));
        }
    };
    let vehicle = At::TOP.vehicle_id(id, "device_id")?;
    let fixes = match root.get("location") {
        None | Some(Value::Null) => return Err(IngestError::missing("location")),
        Some(Value::Object(location)) => vec![location_fix(location, "location", clock)?],
        Some(Value::Array(locations)) => {
            if locations.is_empty() {
                return Err(IngestError::invalid("location", "is an empty list"));
            }
            if locations.len() > MAX_LOCATIONS {
                return Err(IngestError::BatchTooLarge {
                    field: "location".to_owned(),
                    count: locations.len(),
                    max: MAX_LOCATIONS,
                });
            }
            locations
                .iter()
                .enumerate()
                .map(|(i, location)| {
                    let path = format!("location[{i}]");
                    let location = location
                        .as_object()
                        .ok_or_else(|| IngestError::invalid(path.clone(), "must be an object"))?;
                    location_fix(location, &path, clock)
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        Some(_) => {
            return Err(IngestError::invalid(
                "location",
                "must be an object or a list of objects",
            ));
        }
    };
    let mut items = Vec::with_capacity(fixes.len());
    let mut attributes = Vec::new();
    for (index, (item, json)) in fixes.into_iter().enumerate() {
        items.push(item);
        if let Some(json) = json {
            attributes.push(ItemAttributes {
                item: index as u32,
                json,
            });
        }
    }
    Ok(JsonRequest {
        batch: VehicleBatch {
            vehicle,
            field: "device_id".to_owned(),
            items,
            attributes,
        },
    })
}

/// A number at `map[name]`: `None` when absent or null, an error naming `path.name` otherwise.
fn number(map: &Map<String, Value>, path: &str, name: &str) -> Result<Option<f64>, IngestError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| {
                IngestError::invalid(format!("{path}.{name}"), "is not a finite number")
            }),
        Some(_) => Err(IngestError::invalid(
            format!("{path}.{name}"),
            "must be a number",
        )),
    }
}

fn object<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, IngestError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(inner)),
        Some(_) => Err(IngestError::invalid(
            format!("{path}.{name}"),
            "must be an object",
        )),
    }
}

/// One location's fix, and its attributes with no column as a JSON object (none sent: `None`).
fn location_fix(
    location: &Map<String, Value>,
    path: &str,
    clock: &Clock,
) -> Result<(Item, Option<String>), IngestError> {
    let at = At::TOP;
    let coords_path = format!("{path}.coords");
    let coords = object(location, path, "coords")?
        .ok_or_else(|| IngestError::missing(coords_path.clone()))?;
    let lat = number(coords, &coords_path, "latitude")?
        .ok_or_else(|| IngestError::missing(format!("{coords_path}.latitude")))?;
    let lon = number(coords, &coords_path, "longitude")?
        .ok_or_else(|| IngestError::missing(format!("{coords_path}.longitude")))?;
    at.float_in_range(lat, -90.0..=90.0, &format!("{coords_path}.latitude"))?;
    at.float_in_range(lon, -180.0..=180.0, &format!("{coords_path}.longitude"))?;
    let time_path = format!("{path}.timestamp");
    let (time_ms, server_time) = match location.get("timestamp") {
        None | Some(Value::Null) => (clock.now_ms, true),
        Some(Value::String(text)) => {
            let time = chrono::DateTime::parse_from_rfc3339(text.trim()).map_err(|_| {
                IngestError::invalid(
                    time_path.clone(),
                    format!("{text:?} is not an RFC 3339 time (2025-06-15T13:45:12.862Z)"),
                )
            })?;
            (
                at.fix_time(time.timestamp_millis(), clock, &time_path)?,
                false,
            )
        }
        Some(_) => {
            return Err(IngestError::invalid(
                time_path,
                "must be an RFC 3339 string",
            ));
        }
    };
    let mut fix = Fix::new(
        time_ms,
        (lat * E7).round() as i32,
        (lon * E7).round() as i32,
    );
    fix.server_time = server_time;
    // Coordinates from the phone's location service: valid unless it says otherwise.
    fix.gps = GpsStatus::Valid;
    if let Some(mps) = number(coords, &coords_path, "speed")?.filter(|v| *v >= 0.0) {
        let mps = at.float_in_range(mps, 0.0..=1_000.0, &format!("{coords_path}.speed"))?;
        fix.speed_dkmh = (mps * 36.0).round() as u16;
    }
    if let Some(heading) = number(coords, &coords_path, "heading")?.filter(|v| *v >= 0.0) {
        let heading = at.float_in_range(heading, 0.0..=360.0, &format!("{coords_path}.heading"))?;
        fix.heading_ddeg = (heading * 10.0).round() as u16;
    }
    if let Some(accuracy) = number(coords, &coords_path, "accuracy")?.filter(|v| *v >= 0.0) {
        let accuracy = at.float_in_range(
            accuracy,
            0.0..=1_000_000.0,
            &format!("{coords_path}.accuracy"),
        )?;
        fix.accuracy_dm = Some((accuracy * 10.0).round() as u32);
    }
    if let Some(altitude) = number(coords, &coords_path, "altitude")? {
        let altitude = at.float_in_range(
            altitude,
            -12_000.0..=100_000.0,
            &format!("{coords_path}.altitude"),
        )?;
        fix.altitude_dm = Some((altitude * 10.0).round() as i32);
    }
    let battery_path = format!("{path}.battery");
    if let Some(battery) = object(location, path, "battery")?
        && let Some(level) = number(battery, &battery_path, "level")?.filter(|v| *v >= 0.0)
    {
        let level = at.float_in_range(level, 0.0..=1.0, &format!("{battery_path}.level"))?;
        fix.battery_dpct = Some((level * 1_000.0).round() as u16);
    }
    Ok((Item::Fix(fix), attributes(location, path)?))
}

/// The location's [`ATTRIBUTES`] and `battery.is_charging` that were sent (not null; `extras`
/// not `{}`, the app's default), as one JSON object in the shape they came in.
fn attributes(location: &Map<String, Value>, path: &str) -> Result<Option<String>, IngestError> {
    let mut kept = Map::new();
    for name in ATTRIBUTES {
        match location.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::Object(extras)) if name == "extras" && extras.is_empty() => {}
            Some(value) => {
                kept.insert(name.to_owned(), value.clone());
            }
        }
    }
    if let Some(charging) = location
        .get("battery")
        .and_then(Value::as_object)
        .and_then(|battery| battery.get("is_charging"))
        .filter(|v| !v.is_null())
    {
        let mut battery = Map::new();
        battery.insert("is_charging".to_owned(), charging.clone());
        kept.insert("battery".to_owned(), Value::Object(battery));
    }
    if kept.is_empty() {
        return Ok(None);
    }
    let json = Value::Object(kept).to_string();
    if json.len() > MAX_ATTRIBUTES_LEN {
        return Err(IngestError::invalid(
            path.to_owned(),
            format!(
                "its attributes ({}, battery.is_charging) take {} bytes as JSON, more than {MAX_ATTRIBUTES_LEN}",
                ATTRIBUTES.join(", "),
                json.len()
            ),
        ));
    }
    Ok(Some(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock {
        min_ms: 946_684_800_000,
        now_ms: 1_750_000_000_000,
        max_future_ms: 86_400_000,
    };

    /// Traccar's own decoder test bodies (`OsmAndProtocolDecoderTest`): the Traccar Client
    /// template, the raw iOS plugin form with unknowns as -1, and an Android one with speed.
    const CLIENT: &str = r#"{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5},"is_moving":false,"odometer":0,"event":"motionchange","battery":{"level":1,"is_charging":false},"activity":{"type":"still"},"extras":{},"_":"&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&"},"device_id":"48241179"}"#;
    const IOS: &str = r#"{"location":{"extras":{},"mock":true,"coords":{"speed_accuracy":-1,"speed":-1,"longitude":-122.406417,"ellipsoidal_altitude":0,"floor":null,"heading_accuracy":-1,"latitude":37.785834000000001,"accuracy":5,"altitude_accuracy":-1,"altitude":0,"heading":-1},"is_moving":false,"age":188,"odometer":0,"uuid":"2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8","event":"motionchange","battery":{"level":-1,"is_charging":false},"activity":{"type":"unknown","confidence":100},"timestamp":"2025-05-09T04:11:30.579Z"},"device_id":"658765"}"#;
    const ANDROID: &str = r#"{"location":{"event":"motionchange","is_moving":false,"uuid":"0e9a2473-a9a7-4c00-997b-fb97d2154e75","timestamp":"2021-07-21T08:06:34.444Z","odometer":0,"coords":{"latitude":-6.1148096,"longitude":106.6837015,"accuracy":3.8,"speed":18.67,"speed_accuracy":0.26,"heading":63,"heading_accuracy":0.28,"altitude":35.7,"altitude_accuracy":3.8},"activity":{"type":"still","confidence":100},"battery":{"is_charging":false,"level":0.79},"extras":{}},"device_id":"8737767034"}"#;

    fn fix(request: &JsonRequest) -> Fix {
        *request.batch.items[0].fix()
    }

    #[test]
    fn reads_what_traccar_client_sends() {
        let r = parse_json(CLIENT.as_bytes(), &CLOCK).expect("client body");
        assert_eq!(r.batch.vehicle, "48241179");
        let f = fix(&r);
        assert_eq!(f.time_ms, 1_749_995_112_862);
        assert_eq!((f.lat_e7, f.lon_e7), (374_219_983, -1_220_840_000));
        assert_eq!((f.speed_dkmh, f.heading_ddeg), (0, 0));
        assert_eq!((f.accuracy_dm, f.altitude_dm), (Some(50), Some(50)));
        assert_eq!(f.battery_dpct, Some(1_000));
        assert!(!f.server_time);
        // What has no column is kept as sent (`extras: {}` is nothing; `_` is not an attribute).
        assert_eq!(
            r.batch.attributes,
            [ItemAttributes {
                item: 0,
                json: r#"{"activity":{"type":"still"},"battery":{"is_charging":false},"event":"motionchange","is_moving":false,"odometer":0}"#.to_owned(),
            }]
        );

        let ios = parse_json(IOS.as_bytes(), &CLOCK).expect("ios body");
        assert!(ios.batch.attributes[0].json.contains(r#""mock":true"#));
        let f = fix(&ios);
        assert_eq!((f.speed_dkmh, f.heading_ddeg, f.battery_dpct), (0, 0, None));
        assert_eq!(f.lat_e7, 377_858_340);

        let f = fix(&parse_json(ANDROID.as_bytes(), &CLOCK).expect("android body"));
        // 18.67 m/s is 67.2 km/h; battery 0.79 is 79 %.
        assert_eq!((f.speed_dkmh, f.heading_ddeg), (672, 630));
        assert_eq!((f.battery_dpct, f.altitude_dm), (Some(790), Some(357)));
    }

    #[test]
    fn attributes_are_per_fix_and_bounded() {
        let body = r#"{"device_id": 17, "location": [
            {"coords": {"latitude": 1.5, "longitude": 2.5}},
            {"coords": {"latitude": 1.5, "longitude": 2.5}, "event": "heartbeat", "extras": {"trip": 4}}]}"#;
        let r = parse_json(body.as_bytes(), &CLOCK).expect("valid");
        assert_eq!(
            r.batch.attributes,
            [ItemAttributes {
                item: 1,
                json: r#"{"event":"heartbeat","extras":{"trip":4}}"#.to_owned(),
            }]
        );
        let huge = format!(
            r#"{{"device_id": 17, "location": {{"coords": {{"latitude": 1, "longitude": 2}}, "extras": {{"note": "{}"}}}}}}"#,
            "x".repeat(MAX_ATTRIBUTES_LEN)
        );
        let error = parse_json(huge.as_bytes(), &CLOCK).expect_err("too long");
        assert!(error.to_string().contains("location"), "{error}");
    }

    #[test]
    fn without_a_timestamp_the_fix_is_at_the_time_of_receipt() {
        let body = r#"{"device_id": 17, "location": [
            {"coords": {"latitude": 1.5, "longitude": 2.5}},
            {"timestamp": "2025-06-15T13:45:12Z", "coords": {"latitude": 1.5, "longitude": 2.5}}]}"#;
        let r = parse_json(body.as_bytes(), &CLOCK).expect("valid");
        assert_eq!(r.batch.vehicle, "17");
        let fixes: Vec<(i64, bool)> = r
            .batch
            .items
            .iter()
            .map(|i| (i.fix().time_ms, i.fix().server_time))
            .collect();
        assert_eq!(fixes, [(CLOCK.now_ms, true), (1_749_995_112_000, false)]);
    }

    #[test]
    fn names_the_bad_field() {
        let cases = [
            (
                r#"{"location": {"coords": {"latitude": 1, "longitude": 2}}}"#,
                "device_id",
            ),
            (r#"{"device_id": "a"}"#, "location"),
            (r#"{"device_id": "a", "location": {}}"#, "location.coords"),
            (
                r#"{"device_id": "a", "location": {"coords": {"longitude": 2}}}"#,
                "location.coords.latitude",
            ),
            (
                r#"{"device_id": "a", "location": {"coords": {"latitude": 91, "longitude": 2}}}"#,
                "location.coords.latitude",
            ),
            (
                r#"{"device_id": "a", "location": {"coords": {"latitude": 1, "longitude": "x"}}}"#,
                "location.coords.longitude",
            ),
            (
                r#"{"device_id": "a", "location": {"timestamp": "yesterday", "coords": {"latitude": 1, "longitude": 2}}}"#,
                "location.timestamp",
            ),
            (
                r#"{"device_id": "a", "location": {"timestamp": "1970-01-01T00:00:00Z", "coords": {"latitude": 1, "longitude": 2}}}"#,
                "location.timestamp",
            ),
            (
                r#"{"device_id": "a", "location": {"coords": {"latitude": 1, "longitude": 2, "heading": 400}}}"#,
                "location.coords.heading",
            ),
            (
                r#"{"device_id": "a", "location": {"coords": {"latitude": 1, "longitude": 2}, "battery": {"level": 80}}}"#,
                "location.battery.level",
            ),
            (
                r#"{"device_id": "a", "location": [{"coords": {"latitude": 1, "longitude": 2}}, 5]}"#,
                "location[1]",
            ),
            (
                r#"{"device_id": "", "location": {"coords": {"latitude": 1, "longitude": 2}}}"#,
                "device_id",
            ),
        ];
        for (body, field) in cases {
            let error = parse_json(body.as_bytes(), &CLOCK).expect_err(body);
            assert_eq!(error.field(), Some(field), "{body}: {error}");
        }
    }
}
