//! Test data shared by the reidmap tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn data(rel: &str) -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("data")
        .join(rel)
}

/// Writes the calibration of a crop of vtest.avi starting at x = `left` (0: the whole frame):
/// ground (m) = S * H * T(left) * pixel, with the PETS ground homography H (mm).
pub fn crop_calibration(left: f64, path: &Path) {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data(
            "multicam/pets2009/pets2009_view001_ground_homography.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let h = &doc["View_001"]["H_undistorted_px_to_ground_mm"];
    let m: [[f64; 3]; 3] =
        std::array::from_fn(|r| std::array::from_fn(|c| h[r][c].as_f64().unwrap()));
    let scaled: Vec<Vec<f64>> = (0..3)
        .map(|r| {
            let s = if r < 2 { 0.001 } else { 1.0 };
            vec![s * m[r][0], s * m[r][1], s * (m[r][0] * left + m[r][2])]
        })
        .collect();
    std::fs::write(
        path,
        serde_json::json!({"map": "pets", "units": "m", "homography": scaled}).to_string(),
    )
    .unwrap();
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
