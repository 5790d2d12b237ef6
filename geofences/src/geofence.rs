//! A geofence as stored: its company, its versions (each edit is a new version that applies
//! from when it was made), and when it was deleted. The dataflow tests a fix against the
//! version in force at the fix's time, so a created or edited geofence applies from its
//! creation (or edit) on, and the answers for older fixes stay what they were.
//!
//! The request bodies of `POST` and `PUT /v1/geofences` are checked here, naming the first
//! field that is wrong.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::shape::Shape;

/// Longest name accepted, bytes.
pub const MAX_NAME_LEN: usize = 200;
/// Versions kept per geofence; older ones are dropped (fixes from before the oldest kept
/// version are then in no version of it).
pub const MAX_VERSIONS: usize = 20;

/// A circle's center.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Center {
    pub lat: f64,
    pub lon: f64,
}

/// A shape as given: a GeoJSON geometry, or a circle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ShapeSpec {
    Geometry { geometry: Value },
    Circle { center: Center, radius_m: f64 },
}

impl ShapeSpec {
    /// The checked shape.
    pub fn shape(&self) -> Result<Shape, String> {
        match self {
            ShapeSpec::Geometry { geometry } => Shape::from_geojson(geometry),
            ShapeSpec::Circle { center, radius_m } => {
                Shape::circle(center.lat, center.lon, *radius_m)
            }
        }
    }
}

/// What a geofence is from `from_ms` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// Wall-clock ms of the create or edit; it applies to fixes at or after this time.
    pub from_ms: i64,
    pub name: String,
    pub spec: ShapeSpec,
}

/// One geofence, with its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geofence {
    pub id: String,
    pub company: String,
    /// Oldest first; never empty.
    pub versions: Vec<Version>,
    /// When it was deleted: fixes at or after this time are in none of its versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_ms: Option<i64>,
}

impl Geofence {
    /// The newest version.
    pub fn current(&self) -> &Version {
        self.versions.last().expect("a geofence has a version")
    }

    /// The version in force at `time_ms`, if any.
    pub fn version_at(&self, time_ms: i64) -> Option<&Version> {
        if self.deleted_ms.is_some_and(|d| time_ms >= d) {
            return None;
        }
        let after = self.versions.partition_point(|v| v.from_ms <= time_ms);
        after.checked_sub(1).map(|i| &self.versions[i])
    }

    /// What `GET /v1/geofences` shows: the current version.
    pub fn public(&self) -> Value {
        let current = self.current();
        let mut body = serde_json::json!({
            "id": self.id,
            "company": self.company,
            "name": current.name,
            "created_ms": self.versions[0].from_ms,
            "updated_ms": current.from_ms,
        });
        match &current.spec {
            ShapeSpec::Geometry { geometry } => body["geometry"] = geometry.clone(),
            ShapeSpec::Circle { center, radius_m } => {
                body["center"] = serde_json::json!({"lat": center.lat, "lon": center.lon});
                body["radius_m"] = serde_json::json!(radius_m);
            }
        }
        body
    }
}

/// The body of `POST /v1/geofences` (or one element of an array of them) and of `PUT`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGeofence {
    pub name: String,
    #[serde(default)]
    pub geometry: Option<Value>,
    #[serde(default)]
    pub center: Option<Center>,
    #[serde(default)]
    pub radius_m: Option<f64>,
    /// Whose: only the admin names it; a company's token always means that company.
    #[serde(default)]
    pub company: Option<String>,
}

impl NewGeofence {
    /// Checks every field, naming the first that is wrong; returns the version it makes.
    pub fn validate(&self, from_ms: i64) -> Result<Version, String> {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_LEN {
            return Err(format!("name: must be 1-{MAX_NAME_LEN} bytes, not blank"));
        }
        let spec = match (&self.geometry, self.center, self.radius_m) {
            (Some(geometry), None, None) => ShapeSpec::Geometry {
                geometry: geometry.clone(),
            },
            (None, Some(center), Some(radius_m)) => ShapeSpec::Circle { center, radius_m },
            (None, Some(_), None) => return Err("radius_m: a circle needs one".to_owned()),
            (None, None, Some(_)) => return Err("center: a circle needs one".to_owned()),
            (None, None, None) => {
                return Err(
                    "geometry: give a GeoJSON Polygon or MultiPolygon, or a circle's center and radius_m"
                        .to_owned(),
                );
            }
            (Some(_), _, _) => {
                return Err(
                    "geometry: give either geometry or center and radius_m, not both".to_owned(),
                );
            }
        };
        spec.shape()?;
        Ok(Version {
            from_ms,
            name: self.name.clone(),
            spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn circle(name: &str) -> NewGeofence {
        serde_json::from_value(
            json!({"name": name, "center": {"lat": 37.5, "lon": 127.0}, "radius_m": 500}),
        )
        .unwrap()
    }

    #[test]
    fn each_version_applies_from_its_time_until_the_next_or_the_deletion() {
        let v = |from_ms, name: &str| circle(name).validate(from_ms).unwrap();
        let mut g = Geofence {
            id: "g".to_owned(),
            company: "acme".to_owned(),
            versions: vec![v(100, "a"), v(200, "b")],
            deleted_ms: None,
        };
        assert_eq!(g.version_at(99), None);
        assert_eq!(g.version_at(100).unwrap().name, "a");
        assert_eq!(g.version_at(199).unwrap().name, "a");
        assert_eq!(g.version_at(5_000).unwrap().name, "b");
        g.deleted_ms = Some(300);
        assert_eq!(g.version_at(299).unwrap().name, "b");
        assert_eq!(g.version_at(300), None);
        assert_eq!(g.public()["radius_m"], json!(500.0));
        assert_eq!(g.public()["created_ms"], json!(100));
    }

    #[test]
    fn a_bad_field_is_named() {
        let err = |v: Value| {
            serde_json::from_value::<NewGeofence>(v)
                .map_err(|e| e.to_string())
                .and_then(|r| r.validate(0).map(drop))
                .unwrap_err()
        };
        assert!(
            err(json!({"name": " ", "center": {"lat": 0, "lon": 0}, "radius_m": 1}))
                .starts_with("name:")
        );
        assert!(err(json!({"name": "x", "center": {"lat": 0, "lon": 0}})).starts_with("radius_m:"));
        assert!(err(json!({"name": "x"})).starts_with("geometry:"));
        assert!(
            err(json!({"name": "x", "center": {"lat": 95, "lon": 0}, "radius_m": 1}))
                .starts_with("center: latitude 95")
        );
        assert!(err(json!({"name": "x", "radius": 1})).contains("unknown field `radius`"));
    }
}
