//! Floor-map projection on the calibrated cameras of shared/data/multicam.

use sightline_core::geometry::{Calibration, Distortion, Homography};
use std::path::PathBuf;

fn data(rel: &str) -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("data")
        .join(rel)
}

fn m3(v: &serde_json::Value) -> [[f64; 3]; 3] {
    std::array::from_fn(|r| std::array::from_fn(|c| v[r][c].as_f64().unwrap()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The pixel of world point (x, y, 0) through the camera model: x_cam = R X + T, normalise,
/// radial k1/k2 distortion (OpenCV convention), K.
fn project_krtd(cam: &serde_json::Value, x: f64, y: f64) -> [f64; 2] {
    let (r, t, k) = (m3(&cam["R"]), &cam["T"], m3(&cam["K"]));
    let p: Vec<f64> = (0..3)
        .map(|i| r[i][0] * x + r[i][1] * y + t[i].as_f64().unwrap())
        .collect();
    let (mut u, mut v) = (p[0] / p[2], p[1] / p[2]);
    let r2 = u * u + v * v;
    let (k1, k2) = (
        cam["D_k1_k2"][0].as_f64().unwrap(),
        cam["D_k1_k2"][1].as_f64().unwrap(),
    );
    let f = 1.0 + k1 * r2 + k2 * r2 * r2;
    u *= f;
    v *= f;
    [k[0][0] * u + k[0][2], k[1][1] * v + k[1][2]]
}

#[test]
fn meva_ground_landmarks_land_within_half_a_metre() {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data("multicam/meva/meva_cameras.json")).unwrap(),
    )
    .unwrap();
    let mut report = Vec::new();
    for (name, cam) in doc["cameras"].as_object().unwrap() {
        let k = m3(&cam["K"]);
        let d = &cam["D_k1_k2"];
        let dist = Distortion::OpenCv {
            k1: d[0].as_f64().unwrap(),
            k2: d[1].as_f64().unwrap(),
            k,
        };
        let calib = Calibration::parse(
            &serde_json::json!({"map": "meva", "homography": cam["H_undistorted_px_to_ground_m"],
                                "distortion": {"model": "opencv", "k1": d[0], "k2": d[1], "camera-matrix": cam["K"]}})
            .to_string(),
            name,
        )
        .unwrap();
        let dist_m =
            |m: [f64; 2], w: &[f64; 2]| ((m[0] - w[0]).powi(2) + (m[1] - w[1]).powi(2)).sqrt();
        let obs = cam["landmark_observations"].as_array().unwrap();
        let world = |o: &serde_json::Value| {
            [
                o["world_m"][0].as_f64().unwrap(),
                o["world_m"][1].as_f64().unwrap(),
                o["world_m"][2].as_f64().unwrap(),
            ]
        };
        let pixel = |o: &serde_json::Value| {
            [
                o["pixel"][0].as_f64().unwrap(),
                o["pixel"][1].as_f64().unwrap(),
            ]
        };
        // (a) Surveyed landmarks on the ground, as observed in the image. A point at height z
        // maps through a ground homography about z x (distance / camera height) away from its
        // footprint (at 200 m from a 10 m high camera, 1 cm of height is 0.2 m), so only
        // landmarks for which that is under 0.25 m test the homography rather than the survey.
        let (r, t) = (m3(&cam["R"]), &cam["T"]);
        let centre: Vec<f64> = (0..3)
            .map(|j| {
                -(0..3)
                    .map(|i| r[i][j] * t[i].as_f64().unwrap())
                    .sum::<f64>()
            })
            .collect();
        let plane_error = |w: [f64; 3]| {
            w[2].abs() * ((w[0] - centre[0]).powi(2) + (w[1] - centre[1]).powi(2)).sqrt()
                / centre[2]
        };
        let on_ground: Vec<f64> = obs
            .iter()
            .filter(|o| plane_error(world(o)) < 0.25)
            .map(|o| {
                dist_m(
                    calib.to_map(pixel(o)[0], pixel(o)[1]).unwrap(),
                    &[world(o)[0], world(o)[1]],
                )
            })
            .collect();
        // (b) Every landmark's ground footprint (x, y, 0), imaged through the camera model,
        // back through the calibration (distortion + homography).
        let feet: Vec<([f64; 2], [f64; 2])> = obs
            .iter()
            .map(|o| {
                (
                    project_krtd(cam, world(o)[0], world(o)[1]),
                    [world(o)[0], world(o)[1]],
                )
            })
            .collect();
        let through_calib = median(
            feet.iter()
                .map(|(p, w)| dist_m(calib.to_map(p[0], p[1]).unwrap(), w))
                .collect(),
        );
        // (c) Our DLT fitted on the footprints, each one left out of its own fit.
        let loo = median(
            (0..feet.len())
                .map(|i| {
                    let img: Vec<[f64; 2]> = feet
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, (p, _))| dist.undistort(p[0], p[1]))
                        .collect();
                    let map: Vec<[f64; 2]> = feet
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, (_, w))| *w)
                        .collect();
                    let h = Homography::from_pairs(&img, &map).unwrap();
                    let u = dist.undistort(feet[i].0[0], feet[i].0[1]);
                    dist_m(h.apply(u[0], u[1]).unwrap(), &feet[i].1)
                })
                .collect(),
        );
        // (d) Our DLT fitted on the surveyed ground landmarks themselves, leave-one-out.
        let surveyed: Vec<([f64; 2], [f64; 2])> = obs
            .iter()
            .filter(|o| plane_error(world(o)) < 0.25)
            .map(|o| {
                (
                    dist.undistort(pixel(o)[0], pixel(o)[1]),
                    [world(o)[0], world(o)[1]],
                )
            })
            .collect();
        let surveyed_loo = (surveyed.len() >= 5).then(|| {
            median(
                (0..surveyed.len())
                    .map(|i| {
                        let img: Vec<[f64; 2]> = surveyed
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != i)
                            .map(|(_, g)| g.0)
                            .collect();
                        let map: Vec<[f64; 2]> = surveyed
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != i)
                            .map(|(_, g)| g.1)
                            .collect();
                        let h = Homography::from_pairs(&img, &map).unwrap();
                        dist_m(
                            h.apply(surveyed[i].0[0], surveyed[i].0[1]).unwrap(),
                            &surveyed[i].1,
                        )
                    })
                    .collect(),
            )
        });
        if let Some(e) = surveyed_loo {
            report.push(format!(
                "{name}: our DLT from {} surveyed ground landmarks, leave-one-out: median {e:.3} m",
                surveyed.len()
            ));
            assert!(e < 0.5, "{report:?}");
        }
        let direct = if on_ground.is_empty() {
            "none on the ground".to_string()
        } else {
            format!(
                "{} on the ground: median {:.3} m",
                on_ground.len(),
                median(on_ground.clone())
            )
        };
        report.push(format!(
            "{name}: surveyed landmarks {direct}; {} footprints through the calibration: median {through_calib:.3} m; our DLT leave-one-out: median {loo:.3} m",
            feet.len()
        ));
        if !on_ground.is_empty() {
            assert!(median(on_ground) < 0.5, "{report:?}");
        }
        assert!(through_calib < 0.5 && loo < 0.5, "{report:?}");
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn pets_ground_homography_round_trips() {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data(
            "multicam/pets2009/pets2009_view001_ground_homography.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let v = &doc["View_001"];
    let to_px = Homography::new(m3(&v["H_ground_mm_to_undistorted_px"])).unwrap();
    let to_ground = Homography::new(m3(&v["H_undistorted_px_to_ground_mm"])).unwrap();
    let mut worst: f64 = 0.0;
    for x in (-10_000..=20_000).step_by(2500) {
        for y in (-10_000..=20_000).step_by(2500) {
            let px = to_px.apply(x as f64, y as f64).unwrap();
            let g = to_ground.apply(px[0], px[1]).unwrap();
            worst = worst.max((g[0] - x as f64).abs().max((g[1] - y as f64).abs()));
        }
    }
    assert!(worst < 1e-3, "round trip error {worst} mm");
    // Our inverse of the image->ground homography equals the file's ground->image one.
    let inv = to_ground.inverse().unwrap();
    let (a, b) = (
        inv.apply(1000.0, 2000.0).unwrap(),
        to_px.apply(1000.0, 2000.0).unwrap(),
    );
    assert!((a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6);
    // The Tsai undistortion moves pixels by a plausible amount (kappa1 is small) and keeps
    // the principal point fixed.
    let t = &v["tsai"];
    let tsai = Distortion::Tsai {
        kappa1: t["intrinsic"]["kappa1"].as_f64().unwrap(),
        dpx: t["geometry"]["dpx"].as_f64().unwrap(),
        dpy: t["geometry"]["dpy"].as_f64().unwrap(),
        cx: t["intrinsic"]["cx"].as_f64().unwrap(),
        cy: t["intrinsic"]["cy"].as_f64().unwrap(),
        sx: t["intrinsic"]["sx"].as_f64().unwrap(),
        k: m3(&v["K_undistorted_px"]),
    };
    let c = tsai.undistort(
        t["intrinsic"]["cx"].as_f64().unwrap(),
        t["intrinsic"]["cy"].as_f64().unwrap(),
    );
    assert!((c[0] - t["intrinsic"]["cx"].as_f64().unwrap()).abs() < 1e-6);
    let corner = tsai.undistort(0.0, 0.0);
    assert!(
        (corner[0] - 0.0).abs() < 40.0 && (corner[1] - 0.0).abs() < 40.0,
        "{corner:?}"
    );
}
