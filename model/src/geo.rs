//! Distances on the Earth.
//!
//! Haversine on a sphere of the IUGG mean Earth radius R1 = 6,371,008.8 m (Traccar uses the
//! equatorial 6,378,137 m, Redis 6,372,797.56 m). The spherical model errs by up to ~0.5 % against
//! the WGS 84 ellipsoid, which is well inside GPS noise for trip distances.

use crate::E7;

/// Mean Earth radius (IUGG R1), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A position in degrees x 10^7, as the model carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LatLonE7 {
    pub lat_e7: i32,
    pub lon_e7: i32,
}

impl LatLonE7 {
    pub fn new(lat_e7: i32, lon_e7: i32) -> Self {
        LatLonE7 { lat_e7, lon_e7 }
    }
}

const TO_RAD: f64 = std::f64::consts::PI / 180.0 / E7;

/// A position with its latitude's cosine computed once: the trip machine measures every fix
/// against its predecessor, the stop point and the arrival, and the cosine is the expensive part.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeoPoint {
    pub pos: LatLonE7,
    lat_rad: f64,
    cos_lat: f64,
}

impl GeoPoint {
    pub fn new(pos: LatLonE7) -> Self {
        let lat_rad = f64::from(pos.lat_e7) * TO_RAD;
        GeoPoint {
            pos,
            lat_rad,
            cos_lat: lat_rad.cos(),
        }
    }

    /// Great-circle distance in metres (haversine).
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        if self.pos == other.pos {
            return 0.0;
        }
        let dlat = other.lat_rad - self.lat_rad;
        let dlon = (f64::from(other.pos.lon_e7) - f64::from(self.pos.lon_e7)) * TO_RAD;
        let s_lat = sin_small(dlat * 0.5);
        let s_lon = sin_small(dlon * 0.5);
        let h = s_lat * s_lat + self.cos_lat * other.cos_lat * s_lon * s_lon;
        2.0 * EARTH_RADIUS_M * asin_small(h.sqrt().min(1.0))
    }
}

/// `sin x`; by its Taylor polynomial for |x| < 0.01 rad (legs under ~64 km), where the first
/// omitted term, x^7/5040, is below 1e-16 of the result.
fn sin_small(x: f64) -> f64 {
    if x.abs() < 0.01 {
        let x2 = x * x;
        x * (1.0 - x2 / 6.0 * (1.0 - x2 / 20.0))
    } else {
        x.sin()
    }
}

/// `asin y` for 0 <= y <= 1; by its Taylor polynomial below 0.01, where the first omitted term,
/// 5y^7/112, is below 1e-13 of the result.
fn asin_small(y: f64) -> f64 {
    if y < 0.01 {
        let y2 = y * y;
        y * (1.0 + y2 * (1.0 / 6.0 + y2 * (3.0 / 40.0)))
    } else {
        y.asin()
    }
}

/// Great-circle distance in metres between two positions (haversine).
pub fn haversine_m(a: LatLonE7, b: LatLonE7) -> f64 {
    GeoPoint::new(a).distance_m(&GeoPoint::new(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> LatLonE7 {
        LatLonE7::new((lat * E7).round() as i32, (lon * E7).round() as i32)
    }

    #[test]
    fn known_distances() {
        // Seoul City Hall to Busan City Hall: ~325 km great-circle.
        let d = haversine_m(p(37.5663, 126.9779), p(35.1798, 129.0750));
        assert!((d - 325_000.0).abs() < 2_000.0, "{d}");
        // One degree of latitude on this sphere.
        let d = haversine_m(p(0.0, 0.0), p(1.0, 0.0));
        assert!((d - EARTH_RADIUS_M * std::f64::consts::PI / 180.0).abs() < 1e-6);
        assert_eq!(haversine_m(p(10.0, 20.0), p(10.0, 20.0)), 0.0);
    }

    #[test]
    fn polynomials_agree_with_libm() {
        for i in 1..1000 {
            let x = f64::from(i) * 1e-5;
            assert!((sin_small(x) - x.sin()).abs() <= 1e-15 * x.sin(), "sin {x}");
            assert!(
                (asin_small(x) - x.asin()).abs() <= 1e-13 * x.asin(),
                "asin {x}"
            );
        }
        // A 100 m leg in Seoul against the plain formula.
        let (a, b) = (p(37.5663, 126.9779), p(37.5671, 126.9787));
        let to_rad = std::f64::consts::PI / 180.0;
        let (la, lb) = (37.5663 * to_rad, 37.5671 * to_rad);
        let h = ((lb - la) / 2.0).sin().powi(2)
            + la.cos() * lb.cos() * ((0.0008 * to_rad) / 2.0).sin().powi(2);
        let plain = 2.0 * EARTH_RADIUS_M * h.sqrt().asin();
        assert!(
            (haversine_m(a, b) - plain).abs() < 1e-6,
            "{}",
            haversine_m(a, b)
        );
    }

    #[test]
    fn symmetric_and_across_the_antimeridian() {
        let a = p(10.0, 179.9);
        let b = p(10.0, -179.9);
        assert!((haversine_m(a, b) - haversine_m(b, a)).abs() < 1e-9);
        assert!(haversine_m(a, b) < 25_000.0);
    }
}
