//! Image ↔ floor-map geometry: homographies from point pairs (normalised DLT, least squares
//! for more than four pairs), lens distortion (OpenCV k1/k2 with a camera matrix, or the Tsai
//! kappa1 model of the PETS 2009 calibration), and the calibration file.
//!
//! Calibration file (JSON), image → map:
//!
//! ```json
//! {"map": "floor1", "units": "m",
//!  "points": [{"image": [x, y], "map": [X, Y]}, ...],      // at least 4; or:
//!  "homography": [[h11, h12, h13], [h21, h22, h23], [h31, h32, h33]],
//!  "distortion": {"model": "opencv", "k1": -0.1, "k2": 0.01,
//!                 "camera-matrix": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]}}
//! ```
//!
//! Pixels are undistorted first (when `distortion` is given), then mapped by the homography.

use nalgebra::{DMatrix, Matrix3};
use serde::Deserialize;

/// A planar projective transform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography(pub [[f64; 3]; 3]);

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GeometryError {
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> GeometryError {
    GeometryError::Invalid(msg.into())
}

impl Homography {
    pub fn matrix(&self) -> Matrix3<f64> {
        Matrix3::from_fn(|r, c| self.0[r][c])
    }

    fn from_matrix(m: &Matrix3<f64>) -> Self {
        let s = if m[(2, 2)].abs() > 1e-12 {
            m[(2, 2)]
        } else {
            1.0
        };
        Homography(std::array::from_fn(|r| {
            std::array::from_fn(|c| m[(r, c)] / s)
        }))
    }

    /// Checks a given matrix: finite and invertible.
    pub fn new(m: [[f64; 3]; 3]) -> Result<Self, GeometryError> {
        if m.iter().flatten().any(|v| !v.is_finite()) {
            return Err(invalid("homography has a NaN or infinite entry"));
        }
        let h = Homography(m);
        let det = h.matrix().determinant();
        let scale = m
            .iter()
            .flatten()
            .map(|v| v.abs())
            .fold(0.0, f64::max)
            .powi(3);
        if det.abs() <= 1e-12 * scale.max(1e-300) {
            return Err(invalid(format!(
                "homography is singular (determinant {det:e})"
            )));
        }
        Ok(h)
    }

    /// Least-squares homography taking `src[i]` to `dst[i]` (normalised DLT).
    pub fn from_pairs(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Result<Self, GeometryError> {
        let n = src.len().min(dst.len());
        if n < 4 {
            return Err(invalid(format!(
                "a homography needs at least 4 point pairs, got {n}"
            )));
        }
        if src.iter().chain(dst).flatten().any(|v| !v.is_finite()) {
            return Err(invalid("a point has a NaN or infinite coordinate"));
        }
        for (name, pts) in [("image", src), ("map", dst)] {
            if collinear(pts) {
                return Err(invalid(format!(
                    "the {name} points are collinear (or coincide): they do not span a plane"
                )));
            }
        }
        let (ts, ns) = normalise(src);
        let (td, nd) = normalise(dst);
        let mut a = DMatrix::<f64>::zeros(2 * n, 9);
        for i in 0..n {
            let ([x, y], [u, v]) = (ns[i], nd[i]);
            let r = 2 * i;
            a.row_mut(r)
                .copy_from_slice(&[-x, -y, -1.0, 0.0, 0.0, 0.0, u * x, u * y, u]);
            a.row_mut(r + 1)
                .copy_from_slice(&[0.0, 0.0, 0.0, -x, -y, -1.0, v * x, v * y, v]);
        }
        // The right singular vector of the smallest singular value.
        let ata = a.transpose() * &a;
        let eig = ata.symmetric_eigen();
        let (mut k, mut best) = (0, f64::INFINITY);
        for (i, v) in eig.eigenvalues.iter().enumerate() {
            if *v < best {
                best = *v;
                k = i;
            }
        }
        let h = eig.eigenvectors.column(k);
        let hn = Matrix3::new(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]);
        let td_inv = td
            .try_inverse()
            .ok_or_else(|| invalid("degenerate map points"))?;
        let m = td_inv * hn * ts;
        Homography::new(Homography::from_matrix(&m).0)
    }

    /// Maps a point; None when it maps to infinity (on the horizon line).
    pub fn apply(&self, x: f64, y: f64) -> Option<[f64; 2]> {
        let m = &self.0;
        let w = m[2][0] * x + m[2][1] * y + m[2][2];
        if w.abs() < 1e-12 {
            return None;
        }
        Some([
            (m[0][0] * x + m[0][1] * y + m[0][2]) / w,
            (m[1][0] * x + m[1][1] * y + m[1][2]) / w,
        ])
    }

    pub fn inverse(&self) -> Result<Self, GeometryError> {
        let inv = self
            .matrix()
            .try_inverse()
            .ok_or_else(|| invalid("homography is not invertible"))?;
        Ok(Homography::from_matrix(&inv))
    }
}

/// True if the points do not span a plane (all on one line).
fn collinear(p: &[[f64; 2]]) -> bool {
    let (cx, cy) = centroid(p);
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for q in p {
        let (dx, dy) = (q[0] - cx, q[1] - cy);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    // Smallest eigenvalue of the 2x2 scatter against the largest.
    let tr = sxx + syy;
    let det = sxx * syy - sxy * sxy;
    let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
    let (l1, l2) = (tr / 2.0 + disc, tr / 2.0 - disc);
    l1 <= 0.0 || l2 / l1 < 1e-8
}

fn centroid(p: &[[f64; 2]]) -> (f64, f64) {
    let n = p.len().max(1) as f64;
    (
        p.iter().map(|q| q[0]).sum::<f64>() / n,
        p.iter().map(|q| q[1]).sum::<f64>() / n,
    )
}

/// Hartley normalisation: centroid at 0, mean distance sqrt(2).
fn normalise(p: &[[f64; 2]]) -> (Matrix3<f64>, Vec<[f64; 2]>) {
    let (cx, cy) = centroid(p);
    let mean = p
        .iter()
        .map(|q| ((q[0] - cx).powi(2) + (q[1] - cy).powi(2)).sqrt())
        .sum::<f64>()
        / p.len().max(1) as f64;
    let s = if mean > 0.0 { 2f64.sqrt() / mean } else { 1.0 };
    let t = Matrix3::new(s, 0.0, -s * cx, 0.0, s, -s * cy, 0.0, 0.0, 1.0);
    (
        t,
        p.iter()
            .map(|q| [s * (q[0] - cx), s * (q[1] - cy)])
            .collect(),
    )
}

/// Lens distortion of a camera, to undistort pixels before the homography.
#[derive(Debug, Clone, PartialEq)]
pub enum Distortion {
    /// OpenCV radial model: distorted = undistorted * (1 + k1 r² + k2 r⁴), in normalised
    /// camera coordinates (K⁻¹ pixel).
    OpenCv { k1: f64, k2: f64, k: [[f64; 3]; 3] },
    /// Tsai (PETS 2009): Xd = dpx (u - cx) / sx, Yd = dpy (v - cy); Xu = Xd (1 + kappa1 r²);
    /// back to pixels with the undistorted camera matrix `k`.
    Tsai {
        kappa1: f64,
        dpx: f64,
        dpy: f64,
        cx: f64,
        cy: f64,
        sx: f64,
        k: [[f64; 3]; 3],
    },
}

impl Distortion {
    /// The undistorted pixel of a distorted one.
    pub fn undistort(&self, u: f64, v: f64) -> [f64; 2] {
        match self {
            Distortion::OpenCv { k1, k2, k } => {
                let (fx, fy, cx, cy) = (k[0][0], k[1][1], k[0][2], k[1][2]);
                let (xd, yd) = ((u - cx) / fx, (v - cy) / fy);
                // Invert the radial polynomial by fixed-point iteration (as cv::undistortPoints).
                let (mut x, mut y) = (xd, yd);
                for _ in 0..20 {
                    let r2 = x * x + y * y;
                    let f = 1.0 + k1 * r2 + k2 * r2 * r2;
                    x = xd / f;
                    y = yd / f;
                }
                [x * fx + cx, y * fy + cy]
            }
            Distortion::Tsai {
                kappa1,
                dpx,
                dpy,
                cx,
                cy,
                sx,
                k,
            } => {
                let xd = dpx * (u - cx) / sx;
                let yd = dpy * (v - cy);
                let f = 1.0 + kappa1 * (xd * xd + yd * yd);
                let (xu, yu) = (xd * f, yd * f);
                // Sensor millimetres to undistorted pixels through K (focal in pixels).
                let fx_mm = k[0][0] * dpx / sx;
                let fy_mm = k[1][1] * dpy;
                [
                    xu / fx_mm * k[0][0] + k[0][2],
                    yu / fy_mm * k[1][1] + k[1][2],
                ]
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct CalibrationFile {
    map: Option<String>,
    units: Option<String>,
    points: Option<Vec<PointPair>>,
    homography: Option<[[f64; 3]; 3]>,
    distortion: Option<DistortionFile>,
}

#[derive(Debug, Deserialize)]
struct PointPair {
    image: [f64; 2],
    map: [f64; 2],
}

#[derive(Debug, Deserialize)]
struct DistortionFile {
    model: Option<String>,
    k1: Option<f64>,
    k2: Option<f64>,
    #[serde(rename = "camera-matrix")]
    camera_matrix: Option<[[f64; 3]; 3]>,
}

/// A camera's calibration to a floor map.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub map: String,
    pub units: String,
    pub image_to_map: Homography,
    pub distortion: Option<Distortion>,
    /// Reprojection of the calibration pairs (map units): mean and max; None for a matrix.
    pub reprojection: Option<(f64, f64)>,
}

impl Calibration {
    pub fn parse(text: &str, origin: &str) -> Result<Self, GeometryError> {
        let f: CalibrationFile =
            serde_json::from_str(text).map_err(|e| invalid(format!("{origin}: {e}")))?;
        let distortion = match f.distortion {
            None => None,
            Some(d) => {
                let model = d.model.as_deref().unwrap_or("opencv");
                if model != "opencv" {
                    return Err(invalid(format!(
                        "{origin}: distortion.model \"{model}\" is not supported (opencv)"
                    )));
                }
                let k = d.camera_matrix.ok_or_else(|| {
                    invalid(format!("{origin}: distortion needs \"camera-matrix\""))
                })?;
                if k[0][0] <= 0.0 || k[1][1] <= 0.0 || k.iter().flatten().any(|v| !v.is_finite()) {
                    return Err(invalid(format!(
                        "{origin}: distortion.camera-matrix needs positive focal lengths"
                    )));
                }
                let (k1, k2) = (d.k1.unwrap_or(0.0), d.k2.unwrap_or(0.0));
                if !k1.is_finite() || !k2.is_finite() {
                    return Err(invalid(format!(
                        "{origin}: distortion.k1/k2 must be numbers"
                    )));
                }
                Some(Distortion::OpenCv { k1, k2, k })
            }
        };
        let (image_to_map, reprojection) = match (f.points, f.homography) {
            (Some(_), Some(_)) => {
                return Err(invalid(format!(
                    "{origin}: give \"points\" or \"homography\", not both"
                )));
            }
            (None, None) => {
                return Err(invalid(format!(
                    "{origin}: needs \"points\" (at least 4 image/map pairs) or \"homography\""
                )));
            }
            (None, Some(m)) => (
                Homography::new(m).map_err(|e| invalid(format!("{origin}: homography: {e}")))?,
                None,
            ),
            (Some(pairs), None) => {
                let img: Vec<[f64; 2]> = pairs
                    .iter()
                    .map(|p| match &distortion {
                        Some(d) => d.undistort(p.image[0], p.image[1]),
                        None => p.image,
                    })
                    .collect();
                let map: Vec<[f64; 2]> = pairs.iter().map(|p| p.map).collect();
                let h = Homography::from_pairs(&img, &map)
                    .map_err(|e| invalid(format!("{origin}: points: {e}")))?;
                let errs: Vec<f64> = img
                    .iter()
                    .zip(&map)
                    .map(|(i, m)| {
                        h.apply(i[0], i[1]).map_or(f64::INFINITY, |p| {
                            ((p[0] - m[0]).powi(2) + (p[1] - m[1]).powi(2)).sqrt()
                        })
                    })
                    .collect();
                let mean = errs.iter().sum::<f64>() / errs.len() as f64;
                let max = errs.iter().cloned().fold(0.0, f64::max);
                (h, Some((mean, max)))
            }
        };
        Ok(Calibration {
            map: f.map.unwrap_or_else(|| "map".into()),
            units: f.units.unwrap_or_else(|| "m".into()),
            image_to_map,
            distortion,
            reprojection,
        })
    }

    /// The map position of an image pixel (undistorted first).
    pub fn to_map(&self, u: f64, v: f64) -> Option<[f64; 2]> {
        let [x, y] = match &self.distortion {
            Some(d) => d.undistort(u, v),
            None => [u, v],
        };
        self.image_to_map.apply(x, y)
    }

    /// The floor a `width` × `height` frame sees: the frame's border mapped onto the map
    /// (16 points an edge, clockwise from the top left), without the part at or above the
    /// horizon (pixels that see no floor) and cut `max_range` map units from the bottom
    /// centre of the frame (the camera's foot, roughly). Empty when nothing of the frame
    /// maps to the floor.
    pub fn footprint(&self, width: f64, height: f64, max_range: f64) -> Vec<[f64; 2]> {
        const N: usize = 16;
        let m = &self.image_to_map.0;
        let undistorted = |u: f64, v: f64| match &self.distortion {
            Some(d) => d.undistort(u, v),
            None => [u, v],
        };
        let w_of = |u: f64, v: f64| {
            let [x, y] = undistorted(u, v);
            m[2][0] * x + m[2][1] * y + m[2][2]
        };
        // The floor's side of the horizon is the side of the frame's bottom centre.
        let sign = w_of(width / 2.0, height).signum();
        let Some(foot) = self.to_map(width / 2.0, height) else {
            return Vec::new();
        };
        // Clockwise from the top left, N points an edge.
        let corners = [[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]];
        let border: Vec<[f64; 2]> = (0..4)
            .flat_map(|e| {
                let (a, b) = (corners[e], corners[(e + 1) % 4]);
                (0..N).map(move |k| {
                    let t = k as f64 / N as f64;
                    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
                })
            })
            .collect();
        border
            .iter()
            .filter(|[u, v]| {
                let w = w_of(*u, *v);
                w.signum() == sign && w.abs() > 1e-9
            })
            .filter_map(|[u, v]| self.to_map(*u, *v))
            .map(|[x, y]| {
                let (dx, dy) = (x - foot[0], y - foot[1]);
                let d = (dx * dx + dy * dy).sqrt();
                if d > max_range {
                    let s = max_range / d;
                    [foot[0] + dx * s, foot[1] + dy * s]
                } else {
                    [x, y]
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_footprint_is_the_floor_the_frame_sees() {
        // A top-down camera: 100 px per metre, the frame 0..6.4 m × 0..4.8 m.
        let top = Calibration::parse(
            r#"{"homography": [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]]}"#,
            "top",
        )
        .unwrap();
        let f = top.footprint(640.0, 480.0, 100.0);
        assert_eq!(f.len(), 64);
        let (xs, ys): (Vec<f64>, Vec<f64>) = f.iter().map(|p| (p[0], p[1])).unzip();
        let max = |v: &[f64]| v.iter().cloned().fold(f64::MIN, f64::max);
        let min = |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min);
        assert!((min(&xs) - 0.0).abs() < 1e-9 && (max(&xs) - 6.4).abs() < 1e-9);
        assert!((min(&ys) - 0.0).abs() < 1e-9 && (max(&ys) - 4.8).abs() < 1e-9);
        // An oblique camera whose horizon crosses the frame at v = 100: the rows above see
        // no floor and are left out; far points are cut at the range.
        let oblique = Calibration {
            map: "m".into(),
            units: "m".into(),
            image_to_map: Homography::new([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.01, -1.0]])
                .unwrap(),
            distortion: None,
            reprojection: None,
        };
        let f = oblique.footprint(640.0, 480.0, 50.0);
        assert!(!f.is_empty() && f.len() < 64, "{}", f.len());
        let foot = oblique.to_map(320.0, 480.0).unwrap();
        for p in &f {
            let d = ((p[0] - foot[0]).powi(2) + (p[1] - foot[1]).powi(2)).sqrt();
            assert!(d <= 50.0 + 1e-6, "{p:?} {d}");
        }
    }

    #[test]
    fn dlt_recovers_a_known_homography_from_four_and_more_points() {
        let h =
            Homography::new([[0.9, 0.1, 5.0], [-0.05, 1.1, -3.0], [0.0005, 0.0002, 1.0]]).unwrap();
        let src: Vec<[f64; 2]> = vec![
            [0.0, 0.0],
            [640.0, 0.0],
            [640.0, 480.0],
            [0.0, 480.0],
            [320.0, 240.0],
            [100.0, 400.0],
        ];
        let dst: Vec<[f64; 2]> = src.iter().map(|p| h.apply(p[0], p[1]).unwrap()).collect();
        for n in [4, 6] {
            let est = Homography::from_pairs(&src[..n], &dst[..n]).unwrap();
            for p in &src {
                let (a, b) = (est.apply(p[0], p[1]).unwrap(), h.apply(p[0], p[1]).unwrap());
                assert!(
                    (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6,
                    "n={n}"
                );
            }
        }
        let inv = h.inverse().unwrap();
        let p = inv
            .apply(
                h.apply(123.0, 45.0).unwrap()[0],
                h.apply(123.0, 45.0).unwrap()[1],
            )
            .unwrap();
        assert!((p[0] - 123.0).abs() < 1e-9 && (p[1] - 45.0).abs() < 1e-9);
    }

    #[test]
    fn degenerate_input_is_a_clear_error() {
        let e = |t: &str| Calibration::parse(t, "cam.json").unwrap_err().to_string();
        assert!(e(r#"{"points":[{"image":[0,0],"map":[0,0]},{"image":[1,0],"map":[1,0]},{"image":[0,1],"map":[0,1]}]}"#).contains("at least 4 point pairs, got 3"));
        assert!(e(r#"{"points":[{"image":[0,0],"map":[0,0]},{"image":[1,1],"map":[1,0]},{"image":[2,2],"map":[0,1]},{"image":[3,3],"map":[1,1]}]}"#).contains("image points are collinear"));
        assert!(e(r#"{"homography":[[1,0,0],[0,1,0],[0,0,0]]}"#).contains("singular"));
        assert!(e(r#"{"homography":[[1,0,0],[2,0,0],[3,0,1]]}"#).contains("singular"));
        assert!(e(r#"{}"#).contains("needs \"points\""));
        assert!(e(r#"{"points":[{"image":[0,0],"map":[0,0]},{"image":[1,0],"map":[1,0]},{"image":[0,1],"map":[0,1]},{"image":[1,1],"map":[1,1]}],"distortion":{"k1":0.1}}"#).contains("camera-matrix"));
        assert!(e("not json").starts_with("cam.json:"));
        assert_eq!(
            Homography::from_pairs(
                &[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [f64::NAN, 1.0]],
                &[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
            )
            .unwrap_err()
            .to_string(),
            "a point has a NaN or infinite coordinate"
        );
    }

    #[test]
    fn reprojection_error_is_reported_and_opencv_undistortion_inverts_distortion() {
        let c = Calibration::parse(
            r#"{"map":"lobby","points":[{"image":[0,0],"map":[0,0]},{"image":[100,0],"map":[10,0]},{"image":[100,100],"map":[10,10]},{"image":[0,100],"map":[0,10]},{"image":[50,50],"map":[5.2,5]}]}"#,
            "c.json",
        )
        .unwrap();
        let (mean, max) = c.reprojection.unwrap();
        assert!(mean > 0.0 && max < 0.5, "{mean} {max}");
        assert_eq!(c.map, "lobby");
        let k = [[800.0, 0.0, 320.0], [0.0, 800.0, 240.0], [0.0, 0.0, 1.0]];
        let d = Distortion::OpenCv {
            k1: -0.2,
            k2: 0.05,
            k,
        };
        // Distort a point with the forward model, undistort it back.
        let (x, y) = (0.3, -0.2);
        let r2 = x * x + y * y;
        let f = 1.0 + -0.2 * r2 + 0.05 * r2 * r2;
        let (u, v) = (x * f * 800.0 + 320.0, y * f * 800.0 + 240.0);
        let p = d.undistort(u, v);
        assert!(
            (p[0] - (x * 800.0 + 320.0)).abs() < 1e-6 && (p[1] - (y * 800.0 + 240.0)).abs() < 1e-6,
            "{p:?}"
        );
    }
}
