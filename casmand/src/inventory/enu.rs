//! Local east/north/up offsets of a surveyed point from the array's
//! reference (WGS84 geodetic → Earth-centred, Earth-fixed → the reference's
//! local tangent plane), for the correlator input map.

/// A geodetic position: degrees, degrees, metres above the ellipsoid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geodetic {
    /// Latitude, degrees north.
    pub latitude: f64,
    /// Longitude, degrees east.
    pub longitude: f64,
    /// Height, metres.
    pub height: f64,
}

/// WGS84 semi-major axis, metres.
const A: f64 = 6_378_137.0;
/// WGS84 flattening.
const F: f64 = 1.0 / 298.257_223_563;

impl Geodetic {
    /// Earth-centred, Earth-fixed coordinates, metres.
    fn ecef(self) -> [f64; 3] {
        let e2 = F * (2.0 - F);
        let (lat, lon) = (self.latitude.to_radians(), self.longitude.to_radians());
        let n = A / (1.0 - e2 * lat.sin().powi(2)).sqrt();
        [
            (n + self.height) * lat.cos() * lon.cos(),
            (n + self.height) * lat.cos() * lon.sin(),
            (n * (1.0 - e2) + self.height) * lat.sin(),
        ]
    }

    /// East, north and up of `self` from `reference`, metres.
    pub fn enu_from(self, reference: Geodetic) -> [f64; 3] {
        let (p, r) = (self.ecef(), reference.ecef());
        let d = [p[0] - r[0], p[1] - r[1], p[2] - r[2]];
        let (lat, lon) = (reference.latitude.to_radians(), reference.longitude.to_radians());
        let (sl, cl, so, co) = (lat.sin(), lat.cos(), lon.sin(), lon.cos());
        [
            -so * d[0] + co * d[1],
            -sl * co * d[0] - sl * so * d[1] + cl * d[2],
            cl * co * d[0] + cl * so * d[1] + sl * d[2],
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASM: Geodetic = Geodetic { latitude: 37.234286, longitude: -118.283416, height: 1183.8092 };

    #[test]
    fn offsets_of_points_around_the_reference() {
        let at = |dlat: f64, dlon: f64, dh: f64| {
            Geodetic {
                latitude: CASM.latitude + dlat,
                longitude: CASM.longitude + dlon,
                height: CASM.height + dh,
            }
            .enu_from(CASM)
        };
        assert_eq!(CASM.enu_from(CASM), [0.0, 0.0, 0.0]);
        // One arc-second of latitude is ~30.8 m here; of longitude ~24.6 m.
        let [e, n, u] = at(1.0 / 3600.0, 0.0, 0.0);
        assert!(e.abs() < 1e-6 && (n - 30.84).abs() < 0.05 && u.abs() < 1e-3, "{e} {n} {u}");
        let [e, n, u] = at(0.0, 1.0 / 3600.0, 0.0);
        assert!((e - 24.62).abs() < 0.05 && n.abs() < 1e-3 && u.abs() < 1e-3, "{e} {n} {u}");
        let [e, n, u] = at(0.0, 0.0, 2.5);
        assert!(e.abs() < 1e-9 && n.abs() < 1e-9 && (u - 2.5).abs() < 1e-9, "{e} {n} {u}");
    }
}
