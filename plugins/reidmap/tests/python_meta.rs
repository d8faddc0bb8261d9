//! reidmap's params and messages read from Python (PyGObject), as integrators do.

mod common;

use common::{crop_calibration, data, temp_dir};
use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn python_reads_map_positions_and_messages() {
    let dir = temp_dir("py-map");
    let cal = dir.join("pets.json");
    crop_calibration(0.0, &cal);
    let exe = std::env::current_exe().unwrap();
    let target_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    assert!(
        target_dir.join("libgstreidmap.so").is_file(),
        "build the plugin first (cargo build)"
    );
    let out = Command::new("/usr/bin/python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_map.py"))
        .arg(data("video/vtest.avi"))
        .arg(&cal)
        .arg("60")
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
    // Params: (running time, track) -> (global id, x).
    let mut placed = BTreeMap::new();
    for r in rows.iter().filter(|r| r.get("roi").is_some()) {
        assert_eq!(r["roi"], "person");
        assert_eq!(r["map"], "py");
        let (x, y) = (r["x"].as_f64().unwrap(), r["y"].as_f64().unwrap());
        // The PETS 2009 scene: a square of about 20 m around the ground origin.
        assert!(x.abs() < 40.0 && y.abs() < 40.0, "{r}");
        assert!(r["global-id"].as_i64().unwrap() >= 1);
        placed.insert(
            (
                r["running-time"].as_u64().unwrap(),
                r["track"].as_i64().unwrap() as u64,
            ),
            (r["global-id"].as_i64().unwrap() as u64, x),
        );
    }
    assert!(
        placed.len() >= 100,
        "{} placed persons in 60 frames",
        placed.len()
    );
    // Every message's people are the params of its frame.
    let messages: Vec<&serde_json::Value> =
        rows.iter().filter(|r| r["message"] == "reidmap").collect();
    assert!(messages.len() >= 40, "{}", messages.len());
    for m in &messages {
        assert_eq!(m["units"], "m");
        let rt = m["running-time"].as_u64().unwrap();
        for p in m["people"].as_array().unwrap() {
            let (gid, x) = placed[&(rt, p["track"].as_u64().unwrap())];
            assert_eq!(p["global-id"].as_u64().unwrap(), gid);
            assert_eq!(p["x"].as_f64().unwrap(), x);
        }
    }
    // Trajectories at end of stream, with their points.
    let trajectories: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["message"] == "reidmap-trajectory")
        .collect();
    assert!(trajectories.len() >= 5, "{}", trajectories.len());
    for t in trajectories {
        let pts = t["points"].as_array().unwrap();
        assert!(!pts.is_empty());
        let first = &pts[0];
        let (_, x) = placed[&(first[0].as_u64().unwrap(), t["track"].as_u64().unwrap())];
        assert_eq!(first[1].as_f64().unwrap(), x);
    }
    std::fs::remove_dir_all(dir).unwrap();
}
