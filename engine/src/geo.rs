//! Positions inside the dataflow: WGS84 degrees as fixed-point micro-degrees.
//!
//! `f64` is neither `Ord` nor `Hash`, and records that are exchanged, sorted or
//! arranged need both; a micro-degree is ~0.11 m, far below GPS or cell-tower
//! precision, so nothing of value is lost. Conversions to H3 go through h3o.

use h3o::{CellIndex, LatLng, Resolution};

/// A WGS84 position in micro-degrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Latitude x 1e6.
    pub lat_e6: i32,
    /// Longitude x 1e6.
    pub lon_e6: i32,
}

/// Mean Earth radius used for distances, metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

impl Point {
    /// From degrees; `None` when out of range or not finite (the reader rejects such rows).
    pub fn from_degrees(lat: f64, lon: f64) -> Option<Point> {
        let ok = lat.is_finite() && lon.is_finite() && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon);
        ok.then(|| Point { lat_e6: (lat * 1e6).round() as i32, lon_e6: (lon * 1e6).round() as i32 })
    }

    /// Latitude in degrees.
    pub fn lat(self) -> f64 {
        f64::from(self.lat_e6) / 1e6
    }

    /// Longitude in degrees.
    pub fn lon(self) -> f64 {
        f64::from(self.lon_e6) / 1e6
    }

    /// Great-circle distance in metres (haversine).
    pub fn distance_m(self, other: Point) -> f64 {
        let (p1, p2) = (self.lat().to_radians(), other.lat().to_radians());
        let dp = p2 - p1;
        let dl = (other.lon() - self.lon()).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().asin()
    }

    /// The H3 cell containing this point.
    pub fn cell(self, resolution: Resolution) -> CellIndex {
        LatLng::new(self.lat(), self.lon()).expect("Point holds valid degrees").to_cell(resolution)
    }
}

impl From<LatLng> for Point {
    fn from(ll: LatLng) -> Point {
        Point { lat_e6: (ll.lat() * 1e6).round() as i32, lon_e6: (ll.lng() * 1e6).round() as i32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_distance() {
        assert!(Point::from_degrees(91.0, 0.0).is_none());
        assert!(Point::from_degrees(f64::NAN, 0.0).is_none());
        let a = Point::from_degrees(36.0671, 120.3826).unwrap(); // Qingdao
        let b = Point::from_degrees(36.0761, 120.3826).unwrap(); // ~1 km north
        let d = a.distance_m(b);
        assert!((d - 1000.8).abs() < 5.0, "{d}");
    }
}
