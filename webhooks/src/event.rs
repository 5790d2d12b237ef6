//! One event as webhooks send it: read from the committed `events` files, identified by a hash
//! of what it is (so the same event has the same id however often it is read or sent), rendered
//! as a JSON or Slack body and signed.

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use fleetflow_live_store::{Alert, AlertKind, Period};
use hmac::{Hmac, Mac};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::WebhookError;
use crate::subscription::Format;

/// One event of one vehicle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// 32 hex digits: the same for every read and every retry of this event.
    pub id: String,
    /// An `events.kind` value (`trip_end`).
    pub kind: String,
    pub company: String,
    pub vehicle: String,
    /// When it happened (event time), epoch ms.
    pub time_ms: i64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub trip_id: Option<String>,
    /// The kind's measure (README "Webhooks").
    pub value: Option<f64>,
    /// When the pipeline detected it, epoch ms.
    pub detected_at_ms: i64,
    /// The geofence of `geofence_enter` and `geofence_exit`.
    #[serde(default)]
    pub geofence_id: Option<String>,
    /// Takes back an event sent before (same kind, time and geofence): a late fix showed it
    /// did not happen. Its id is not the event's, so receivers that de-duplicate keep both.
    #[serde(default)]
    pub retraction: bool,
}

impl WebhookEvent {
    /// The id of the event `(company, vehicle, kind, time, trip or geofence, value)`: the
    /// first 16 bytes of their SHA-256, as hex. The value is part of it so that a correction
    /// that changes only an event's measure (a trip's distance) sends the corrected event under
    /// a new id, after the old one's retraction. A retraction's is
    /// [`WebhookEvent::retraction_id`].
    pub fn id_of(
        company: &str,
        vehicle: &str,
        kind: &str,
        time_ms: i64,
        reference: Option<&str>,
        value: Option<f64>,
    ) -> String {
        let mut h = Sha256::new();
        for part in [company, vehicle, kind] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.update(time_ms.to_le_bytes());
        h.update(reference.unwrap_or("").as_bytes());
        if let Some(v) = value {
            h.update([0]);
            h.update(v.to_bits().to_le_bytes());
        }
        hex::encode(&h.finalize()[..16])
    }

    /// The id of the retraction of the event with id `id`.
    pub fn retraction_id(id: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"retraction\0");
        h.update(id.as_bytes());
        hex::encode(&h.finalize()[..16])
    }

    /// A live store alert (offline, back online, a distance milestone) as an event.
    ///
    /// A milestone's id is its vehicle, day and distance, not the moment the store noticed it:
    /// after a restart the store rebuilds today's distances and raises the milestone passed
    /// again, under the same id, so one lost in a crash is sent then, and a repeat is
    /// de-duplicated.
    pub fn from_alert(alert: &Alert) -> WebhookEvent {
        let kind = alert.kind.as_str();
        let degrees = |e7: i32| f64::from(e7) / 1e7;
        let (id_time, id_value) = match alert.kind {
            AlertKind::Milestone => (Period::Today.window(alert.time_ms).0 as i64, alert.value),
            _ => (alert.time_ms, None),
        };
        WebhookEvent {
            id: WebhookEvent::id_of(
                &alert.company,
                &alert.vehicle,
                kind,
                id_time,
                None,
                id_value,
            ),
            kind: kind.to_owned(),
            company: alert.company.to_string(),
            vehicle: alert.vehicle.to_string(),
            time_ms: alert.time_ms,
            lat: alert.pos.map(|(lat, _)| degrees(lat)),
            lon: alert.pos.map(|(_, lon)| degrees(lon)),
            trip_id: None,
            value: alert.value,
            detected_at_ms: alert.epoch as i64,
            geofence_id: None,
            retraction: false,
        }
    }

    /// The body sent to a subscription of `format`.
    pub fn body(&self, format: Format) -> Vec<u8> {
        let value = match format {
            Format::Json => serde_json::json!({
                "id": self.id,
                "kind": self.kind,
                "company": self.company,
                "vehicle": self.vehicle,
                "time": rfc3339(self.time_ms),
                "time_ms": self.time_ms,
                "lat": self.lat,
                "lon": self.lon,
                "trip_id": self.trip_id,
                "value": self.value,
                "detected_at_ms": self.detected_at_ms,
                "geofence_id": self.geofence_id,
                "retraction": self.retraction,
            }),
            Format::Slack => serde_json::json!({ "text": self.slack_text() }),
        };
        serde_json::to_vec(&value).expect("a JSON value serializes")
    }

    /// One line for a Slack channel: who, what, when, where.
    pub fn slack_text(&self) -> String {
        let what = match (self.kind.as_str(), self.value) {
            ("ignition_on", _) => "ignition on".to_owned(),
            ("ignition_off", _) => "ignition off".to_owned(),
            ("trip_start", _) => "trip started".to_owned(),
            ("trip_end", Some(m)) => format!("trip ended, {:.1} km", m / 1000.0),
            ("trip_end", None) => "trip ended".to_owned(),
            ("overspeed", Some(kmh)) => format!("overspeeding at {kmh:.0} km/h"),
            ("maintenance_due", Some(km)) => format!("maintenance due at {km:.0} km"),
            ("offline", _) => "offline (nothing heard)".to_owned(),
            ("online", _) => "back online".to_owned(),
            ("milestone", Some(km)) => format!("passed {km:.0} km today"),
            ("geofence_enter", _) => format!(
                "entered geofence {}",
                self.geofence_id.as_deref().unwrap_or("?")
            ),
            ("geofence_exit", _) => format!(
                "left geofence {}",
                self.geofence_id.as_deref().unwrap_or("?")
            ),
            (kind, _) => kind.replace('_', " "),
        };
        let place = match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => format!(
                " at <https://www.openstreetmap.org/?mlat={lat:.5}&mlon={lon:.5}|{lat:.5}, {lon:.5}>"
            ),
            _ => String::new(),
        };
        let what = if self.retraction {
            format!("correction: did not happen: {what}")
        } else {
            what
        };
        format!(
            "*{}* ({}): {what}, {}{place}",
            self.vehicle,
            self.company,
            rfc3339(self.time_ms)
        )
    }
}

/// `X-Fleetflow-Signature`: `sha256=` and the hex HMAC-SHA256 of `body` keyed by `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Every event in one committed `events` file.
pub fn read_events_file(path: &Path) -> Result<Vec<WebhookEvent>, WebhookError> {
    let failed =
        |e: &dyn std::fmt::Display| WebhookError::Events(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(WebhookError::io(path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| failed(&e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| failed(&e))?;
        events_of(&batch, &mut out).map_err(|e| failed(&e))?;
    }
    Ok(out)
}

fn events_of(batch: &RecordBatch, out: &mut Vec<WebhookEvent>) -> Result<(), String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| format!("no column {name}"))
    };
    let text = |name: &str| -> Result<_, String> {
        let c = cast(&column(name)?, &DataType::Utf8).map_err(|e| e.to_string())?;
        Ok(c.as_string::<i32>().clone())
    };
    let int = |name: &str| -> Result<_, String> {
        let c = cast(&column(name)?, &DataType::Int64).map_err(|e| e.to_string())?;
        Ok(c.as_primitive::<Int64Type>().clone())
    };
    let float = |name: &str| -> Result<_, String> {
        let c = cast(&column(name)?, &DataType::Float64).map_err(|e| e.to_string())?;
        Ok(c.as_primitive::<Float64Type>().clone())
    };
    let (company, vehicle, kind, trip) = (
        text("company")?,
        text("vehicle")?,
        text("kind")?,
        text("trip_id")?,
    );
    let (time, detected) = (int("time")?, int("detected_at")?);
    let (lat, lon, value) = (float("lat")?, float("lon")?, float("value")?);
    // Files written before session 28 have neither column.
    let geofence = match batch.column_by_name("geofence_id") {
        Some(_) => Some(text("geofence_id")?),
        None => None,
    };
    let retraction = match batch.column_by_name("retraction") {
        Some(c) => Some(
            cast(c, &DataType::Boolean)
                .map_err(|e| e.to_string())?
                .as_boolean()
                .clone(),
        ),
        None => None,
    };
    let opt = |a: &arrow::array::Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
    for i in 0..batch.num_rows() {
        let trip_id = (!trip.is_null(i)).then(|| trip.value(i).to_owned());
        let geofence_id = geofence
            .as_ref()
            .and_then(|g| (!g.is_null(i)).then(|| g.value(i).to_owned()));
        let retraction = retraction
            .as_ref()
            .is_some_and(|r| !r.is_null(i) && r.value(i));
        let (company, vehicle, kind) = (company.value(i), vehicle.value(i), kind.value(i));
        let reference = trip_id.as_deref().or(geofence_id.as_deref());
        let id = WebhookEvent::id_of(
            company,
            vehicle,
            kind,
            time.value(i),
            reference,
            opt(&value, i),
        );
        out.push(WebhookEvent {
            id: if retraction {
                WebhookEvent::retraction_id(&id)
            } else {
                id
            },
            kind: kind.to_owned(),
            company: company.to_owned(),
            vehicle: vehicle.to_owned(),
            time_ms: time.value(i),
            lat: opt(&lat, i),
            lon: opt(&lon, i),
            trip_id,
            value: opt(&value, i),
            detected_at_ms: detected.value(i),
            geofence_id,
            retraction,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> WebhookEvent {
        WebhookEvent {
            id: WebhookEvent::id_of(
                "acme",
                "v1",
                "trip_end",
                1_606_780_800_000,
                Some("v1:1"),
                Some(12_345.0),
            ),
            kind: "trip_end".into(),
            company: "acme".into(),
            vehicle: "v1".into(),
            time_ms: 1_606_780_800_000,
            lat: Some(37.5665),
            lon: Some(126.978),
            trip_id: Some("v1:1".into()),
            value: Some(12_345.0),
            detected_at_ms: 1_606_780_801_000,
            geofence_id: None,
            retraction: false,
        }
    }

    #[test]
    fn ids_depend_on_what_the_event_is_only() {
        let e = event();
        let id = |kind, value| {
            WebhookEvent::id_of("acme", "v1", kind, 1_606_780_800_000, Some("v1:1"), value)
        };
        assert_eq!(e.id.len(), 32);
        assert_eq!(e.id, id("trip_end", Some(12_345.0)));
        assert_ne!(e.id, id("trip_start", None));
        assert_ne!(
            e.id,
            id("trip_end", Some(12_346.0)),
            "a corrected distance is a new event"
        );
    }

    #[test]
    fn bodies_and_signature() {
        let e = event();
        let json: serde_json::Value = serde_json::from_slice(&e.body(Format::Json)).unwrap();
        assert_eq!(json["kind"], "trip_end");
        assert_eq!(json["time"], "2020-12-01T00:00:00.000Z");
        assert_eq!(json["retraction"], false);
        let slack: serde_json::Value = serde_json::from_slice(&e.body(Format::Slack)).unwrap();
        let text = slack["text"].as_str().unwrap();
        assert!(text.starts_with("*v1* (acme): trip ended, 12.3 km, 2020-12-01T00:00:00.000Z"));
        assert!(text.contains("mlat=37.56650"));
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_milestone_is_the_same_event_whenever_the_store_raises_it_that_day() {
        let alert = |time_ms: i64, km: f64| Alert {
            seq: 1,
            epoch: time_ms as u64,
            company: "acme".into(),
            vehicle: "v1".into(),
            kind: AlertKind::Milestone,
            time_ms,
            pos: None,
            value: Some(km),
            geofence: None,
            retraction: false,
        };
        let day = 1_606_780_800_000;
        let id = |time_ms, km| WebhookEvent::from_alert(&alert(time_ms, km)).id;
        assert_eq!(
            id(day + 1000, 20.0),
            id(day + 7_200_000, 20.0),
            "raised again"
        );
        assert_ne!(id(day + 1000, 20.0), id(day + 1000, 40.0));
        assert_ne!(
            id(day + 1000, 20.0),
            id(day + 86_400_000, 20.0),
            "another day"
        );
    }

    #[test]
    fn a_retraction_says_so_under_an_id_of_its_own() {
        let mut e = event();
        e.kind = "geofence_enter".into();
        e.trip_id = None;
        e.geofence_id = Some("depot".into());
        let text = e.slack_text();
        assert!(text.contains("entered geofence depot"), "{text}");
        e.retraction = true;
        e.id = WebhookEvent::retraction_id(&e.id);
        let json: serde_json::Value = serde_json::from_slice(&e.body(Format::Json)).unwrap();
        assert_eq!(json["retraction"], true);
        assert_eq!(json["geofence_id"], "depot");
        assert_ne!(json["id"], event().id);
        let text = e.slack_text();
        assert!(
            text.contains("correction: did not happen: entered geofence depot"),
            "{text}"
        );
    }
}
