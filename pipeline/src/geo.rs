//! Distances on the Earth.
//!
//! Haversine on a sphere of the IUGG mean Earth radius R1 = 6,371,008.8 m (Traccar uses the
//! equatorial 6,378,137 m, Redis 6,372,797.56 m). The spherical model errs by up to ~0.5 % against
//! the WGS 84 ellipsoid, which is well inside GPS noise for trip distances.

use fleetflow_model::E7;

/// Mean Earth radius (IUGG R1), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A position in degrees x 10^7, as the model carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatLonE7 {
    pub lat_e7: i32,
    pub lon_e7: i32,
}

impl LatLonE7 {
    pub fn new(lat_e7: i32, lon_e7: i32) -> Self {
        LatLonE7 { lat_e7, lon_e7 }
    }
}

/// Great-circle distance in metres between two positions (haversine).
pub fn haversine_m(a: LatLonE7, b: LatLonE7) -> f64 {
    if a == b {
        return 0.0;
    }
    let to_rad = std::f64::consts::PI / 180.0 / E7;
    let lat1 = f64::from(a.lat_e7) * to_rad;
    let lat2 = f64::from(b.lat_e7) * to_rad;
    let dlat = lat2 - lat1;
    let dlon = (f64::from(b.lon_e7) - f64::from(a.lon_e7)) * to_rad;
    let s_lat = (dlat * 0.5).sin();
    let s_lon = (dlon * 0.5).sin();
    let h = s_lat * s_lat + lat1.cos() * lat2.cos() * s_lon * s_lon;
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
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
    fn symmetric_and_across_the_antimeridian() {
        let a = p(10.0, 179.9);
        let b = p(10.0, -179.9);
        assert!((haversine_m(a, b) - haversine_m(b, a)).abs() < 1e-9);
        assert!(haversine_m(a, b) < 25_000.0);
    }
}
