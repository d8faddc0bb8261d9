//! The metas can be read from Python (PyGObject), as integrators do: a script pulls a buffer
//! from an appsink, counts the ROI metas and fetches each by its (dense) id.

mod common;

use common::*;
use std::process::Command;

#[test]
fn python_reads_every_roi_and_its_params() {
    init();
    // The plugin .so next to the test binary's target dir (built by `cargo build`).
    let exe = std::env::current_exe().unwrap();
    let target_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    assert!(
        target_dir.join("libgstfacedetect.so").is_file(),
        "build the plugin first (cargo build)"
    );
    let out = Command::new("/usr/bin/python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_meta.py"))
        .arg(data("faces/misc/t1.jpg"))
        .env("GST_PLUGIN_PATH", &target_dir)
        .output()
        .expect("/usr/bin/python3 (Debian python3-gi)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let n = rows.last().unwrap()["n"].as_u64().unwrap();
    assert_eq!(n, 6);
    for (i, r) in rows[..6].iter().enumerate() {
        assert_eq!(r["id"], i as u64);
        assert_eq!(r["type"], "face");
        assert_eq!(r["label"], "face");
        assert_eq!(r["model_name"], "yunet-n");
        let (x0, x1) = (r["x_min"].as_f64().unwrap(), r["x_max"].as_f64().unwrap());
        assert!(0.0 <= x0 && x0 < x1 && x1 <= 1.0);
        // The normalised box agrees with the pixel rectangle (1280 px wide photo).
        assert!((x0 * 1280.0 - r["x"].as_f64().unwrap()).abs() <= 1.0);
        assert!(r["confidence"].as_f64().unwrap() >= 0.6);
        let nose = r["nose_x"].as_f64().unwrap();
        assert!(
            nose > r["x"].as_f64().unwrap()
                && nose < r["x"].as_f64().unwrap() + r["w"].as_f64().unwrap()
        );
    }
}
