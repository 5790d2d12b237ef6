//! Geodesy helpers: haversine distance on the mean Earth sphere and the local east/north metre
//! plane the road grid is laid out in.

/// Mean Earth radius in metres (IUGG), the radius fleetflow uses for every haversine distance.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres between two (lat, lon) points in degrees.
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// Haversine distance in metres between two points given in Monicar's degrees x 1,000,000.
pub fn haversine_e6_m(lat1: i32, lng1: i32, lat2: i32, lng2: i32) -> f64 {
    haversine_m(
        f64::from(lat1) / 1e6,
        f64::from(lng1) / 1e6,
        f64::from(lat2) / 1e6,
        f64::from(lng2) / 1e6,
    )
}

/// An equirectangular projection around a centre: metres east/north <-> degrees. Accurate to well
/// under a metre across a city of ~15 km.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalPlane {
    lat0: f64,
    lon0: f64,
    metres_per_deg_lat: f64,
    metres_per_deg_lon: f64,
}

impl LocalPlane {
    /// A plane centred on (`lat0`, `lon0`) in degrees.
    pub fn new(lat0: f64, lon0: f64) -> LocalPlane {
        let metres_per_deg_lat = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        LocalPlane {
            lat0,
            lon0,
            metres_per_deg_lat,
            metres_per_deg_lon: metres_per_deg_lat * lat0.to_radians().cos().max(1e-6),
        }
    }

    /// (lat, lon) in degrees of a point `x` metres east and `y` metres north of the centre.
    pub fn to_lat_lon(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.lat0 + y / self.metres_per_deg_lat,
            self.lon0 + x / self.metres_per_deg_lon,
        )
    }
}

/// Compass heading in degrees (0 = north, 90 = east, in `[0, 360)`) of a move by (`dx`, `dy`) metres.
pub fn heading_deg(dx: f64, dy: f64) -> f64 {
    dx.atan2(dy).to_degrees().rem_euclid(360.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_degree_of_latitude() {
        let d = haversine_m(37.0, 127.0, 38.0, 127.0);
        assert!((d - 111_195.08).abs() < 1.0, "{d}");
    }

    #[test]
    fn plane_round_trips_with_haversine() {
        let plane = LocalPlane::new(37.5665, 126.9780);
        let (lat, lon) = plane.to_lat_lon(3_000.0, 4_000.0);
        let d = haversine_m(37.5665, 126.9780, lat, lon);
        assert!((d - 5_000.0).abs() < 5.0, "{d}");
    }

    #[test]
    fn headings() {
        assert!((heading_deg(0.0, 1.0) - 0.0).abs() < 1e-9);
        assert!((heading_deg(1.0, 0.0) - 90.0).abs() < 1e-9);
        assert!((heading_deg(0.0, -1.0) - 180.0).abs() < 1e-9);
        assert!((heading_deg(-1.0, 0.0) - 270.0).abs() < 1e-9);
    }
}
