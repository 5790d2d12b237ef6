//! A geofence's shape: a GeoJSON `Polygon` (holes allowed) or `MultiPolygon`, or a circle. Each
//! is checked before it is stored, with a message naming what is wrong, and then asked whether
//! it holds a position.
//!
//! Coordinates are longitude and latitude in degrees (GeoJSON's order), taken as a plane for
//! polygons (a polygon may not cross the antimeridian: split it in two); a circle measures
//! great-circle distance. A position on a polygon's edge, a hole's edge included, is inside;
//! one on a circle is inside.

use fleetflow_model::E7;
use fleetflow_model::geo::{GeoPoint, LatLonE7};
use geo::algorithm::Validation;
use geo::{BoundingRect, Intersects, MultiPolygon, Point};
use serde_json::Value;

/// Most vertices one geofence may have (all its rings together).
pub const MAX_VERTICES: usize = 10_000;
/// Largest circle radius accepted, metres.
pub const MAX_RADIUS_M: f64 = 1_000_000.0;

/// A checked shape, ready to test positions against.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// x is longitude, y latitude.
    Area(MultiPolygon<f64>),
    Circle {
        center: GeoPoint,
        radius_m: f64,
    },
}

/// A bounding box in degrees: (min lon, min lat), (max lon, max lat).
pub type Bbox = ([f64; 2], [f64; 2]);

impl Shape {
    /// Parses and checks a GeoJSON geometry (the `geometry` field of a request); the error
    /// names what is wrong, starting with `geometry`.
    pub fn from_geojson(value: &Value) -> Result<Shape, String> {
        let geometry: geojson::Geometry =
            serde_json::from_value(value.clone()).map_err(|e| format!("geometry: {e}"))?;
        let coordinates = value.get("coordinates").unwrap_or(&Value::Null);
        let polygons: Vec<&Value> = match value.get("type").and_then(Value::as_str) {
            Some("Polygon") => vec![coordinates],
            Some("MultiPolygon") => coordinates
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            other => {
                return Err(format!(
                    "geometry: type {} is not Polygon or MultiPolygon",
                    other.map_or("(none)".to_owned(), |t| format!("{t:?}"))
                ));
            }
        };
        if polygons.is_empty() {
            return Err("geometry: a MultiPolygon with no polygons".to_owned());
        }
        let mut vertices = 0;
        for (p, polygon) in polygons.iter().enumerate() {
            let rings = polygon.as_array().map(Vec::as_slice).unwrap_or_default();
            if rings.is_empty() {
                return Err(format!("geometry: polygon {p} has no rings"));
            }
            for (r, ring) in rings.iter().enumerate() {
                let where_ = if polygons.len() == 1 {
                    format!("ring {r}")
                } else {
                    format!("polygon {p}, ring {r}")
                };
                vertices += check_ring(ring, &where_)?;
            }
        }
        if vertices > MAX_VERTICES {
            return Err(format!(
                "geometry: {vertices} vertices; at most {MAX_VERTICES}"
            ));
        }
        let area =
            match geo::Geometry::<f64>::try_from(geometry).map_err(|e| format!("geometry: {e}"))? {
                geo::Geometry::Polygon(p) => MultiPolygon::new(vec![p]),
                geo::Geometry::MultiPolygon(m) => m,
                _ => unreachable!("the type was checked above"),
            };
        area.check_validation()
            .map_err(|e| format!("geometry: {e}"))?;
        Ok(Shape::Area(area))
    }

    /// Checks a circle; the error names the field.
    pub fn circle(lat: f64, lon: f64, radius_m: f64) -> Result<Shape, String> {
        check_position(lon, lat).map_err(|e| format!("center: {e}"))?;
        if !(radius_m.is_finite() && radius_m > 0.0 && radius_m <= MAX_RADIUS_M) {
            return Err(format!(
                "radius_m: {radius_m} is not above 0 and at most {MAX_RADIUS_M}"
            ));
        }
        Ok(Shape::Circle {
            center: GeoPoint::new(to_e7(lat, lon)),
            radius_m,
        })
    }

    /// Whether the shape holds the position (degrees x 10^7).
    pub fn contains(&self, pos: LatLonE7) -> bool {
        match self {
            Shape::Area(area) => {
                let point = Point::new(f64::from(pos.lon_e7) / E7, f64::from(pos.lat_e7) / E7);
                area.intersects(&point)
            }
            Shape::Circle { center, radius_m } => {
                center.distance_m(&GeoPoint::new(pos)) <= *radius_m
            }
        }
    }

    /// The shape's bounding box, for the index (a circle's is a little larger than the circle).
    pub fn bbox(&self) -> Bbox {
        match self {
            Shape::Area(area) => {
                let rect = area.bounding_rect().expect("a checked area has vertices");
                ([rect.min().x, rect.min().y], [rect.max().x, rect.max().y])
            }
            Shape::Circle { center, radius_m } => {
                let lat = f64::from(center.pos.lat_e7) / E7;
                let lon = f64::from(center.pos.lon_e7) / E7;
                // One degree of latitude is at least 110.5 km; of longitude, that times cos(lat).
                let dlat = radius_m / 110_000.0;
                let cos = lat.to_radians().cos().max(1e-6);
                let dlon = (dlat / cos).min(360.0);
                ([lon - dlon, lat - dlat], [lon + dlon, lat + dlat])
            }
        }
    }
}

fn to_e7(lat: f64, lon: f64) -> LatLonE7 {
    LatLonE7::new((lat * E7).round() as i32, (lon * E7).round() as i32)
}

fn check_position(lon: f64, lat: f64) -> Result<(), String> {
    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
        return Err(format!("latitude {lat} is out of range -90..=90"));
    }
    if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
        return Err(format!("longitude {lon} is out of range -180..=180"));
    }
    Ok(())
}

/// Checks one ring's positions (range, closed, enough of them); returns how many it has.
fn check_ring(ring: &Value, where_: &str) -> Result<usize, String> {
    let positions = ring
        .as_array()
        .ok_or_else(|| format!("geometry: {where_} is not an array of positions"))?;
    let mut coords = Vec::with_capacity(positions.len());
    for (i, position) in positions.iter().enumerate() {
        let pair = position
            .as_array()
            .filter(|p| p.len() >= 2)
            .and_then(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
            .ok_or_else(|| {
                format!("geometry: {where_}, position {i} is not [longitude, latitude]")
            })?;
        check_position(pair.0, pair.1)
            .map_err(|e| format!("geometry: {where_}, position {i}: {e}"))?;
        coords.push(pair);
    }
    if coords.len() < 4 {
        return Err(format!(
            "geometry: {where_} has {} positions; a closed ring needs at least 4 (the last repeats the first)",
            coords.len()
        ));
    }
    if coords.first() != coords.last() {
        return Err(format!(
            "geometry: {where_} is not closed: its last position must repeat its first"
        ));
    }
    Ok(coords.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(lat: f64, lon: f64) -> LatLonE7 {
        to_e7(lat, lon)
    }

    fn square(lon0: f64, lat0: f64, side: f64) -> Vec<[f64; 2]> {
        vec![
            [lon0, lat0],
            [lon0 + side, lat0],
            [lon0 + side, lat0 + side],
            [lon0, lat0 + side],
            [lon0, lat0],
        ]
    }

    #[test]
    fn a_polygon_with_a_hole_holds_what_is_between_its_rings() {
        let shape = Shape::from_geojson(&json!({
            "type": "Polygon",
            "coordinates": [square(127.0, 37.0, 0.1), square(127.04, 37.04, 0.02)],
        }))
        .unwrap();
        assert!(shape.contains(at(37.01, 127.01)), "inside the outer ring");
        assert!(!shape.contains(at(37.05, 127.05)), "in the hole");
        assert!(!shape.contains(at(37.2, 127.05)), "outside");
        assert!(shape.contains(at(37.0, 127.05)), "on the edge");
        assert!(shape.contains(at(37.04, 127.05)), "on the hole's edge");
        assert_eq!(shape.bbox(), ([127.0, 37.0], [127.1, 37.1]));
    }

    #[test]
    fn a_circle_holds_what_is_within_its_radius() {
        let shape = Shape::circle(37.5, 127.0, 1_000.0).unwrap();
        // 0.0089 degrees of latitude is about 990 m; 0.0091 about 1,012 m.
        assert!(shape.contains(at(37.5089, 127.0)));
        assert!(!shape.contains(at(37.5091, 127.0)));
        let ([lon0, lat0], [lon1, lat1]) = shape.bbox();
        assert!(lat0 < 37.491 && lat1 > 37.509 && lon0 < 126.9887 && lon1 > 127.0113);
    }

    #[test]
    fn what_is_wrong_is_named() {
        let err = |v: Value| Shape::from_geojson(&v).unwrap_err();
        let mut open = square(127.0, 37.0, 0.1);
        open.pop();
        open.push([127.0, 37.05]);
        assert!(
            err(json!({"type": "Polygon", "coordinates": [open]})).contains("ring 0 is not closed"),
        );
        let bowtie = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]];
        let e = err(json!({"type": "Polygon", "coordinates": [bowtie]}));
        assert!(
            e.contains("self-intersection") || e.contains("intersect"),
            "{e}"
        );
        let e = err(
            json!({"type": "Polygon", "coordinates": [[[0.0, 0.0], [200.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]}),
        );
        assert!(
            e.contains("position 1: longitude 200 is out of range"),
            "{e}"
        );
        let e = err(json!({"type": "Point", "coordinates": [0.0, 0.0]}));
        assert!(
            e.contains("\"Point\" is not Polygon or MultiPolygon"),
            "{e}"
        );
        let e =
            err(json!({"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]]}));
        assert!(e.contains("at least 4"), "{e}");
        let many: Vec<[f64; 2]> = (0..=MAX_VERTICES + 1)
            .map(|i| {
                let a = i as f64 / (MAX_VERTICES + 1) as f64 * std::f64::consts::TAU;
                [a.cos(), a.sin()]
            })
            .chain(std::iter::once([1.0, 0.0]))
            .collect();
        let e = err(json!({"type": "Polygon", "coordinates": [many]}));
        assert!(e.contains("vertices; at most"), "{e}");
        assert!(
            Shape::circle(91.0, 0.0, 10.0)
                .unwrap_err()
                .starts_with("center: latitude 91")
        );
        assert!(
            Shape::circle(0.0, 0.0, 0.0)
                .unwrap_err()
                .starts_with("radius_m:")
        );
    }
}
