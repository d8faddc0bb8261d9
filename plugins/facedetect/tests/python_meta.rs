//! The metas can be read from Python (PyGObject), as integrators do: a script pulls a buffer
//! from an appsink, counts the ROI metas and fetches each by its (dense) id; and another reads
//! the `facedetect` bus messages (docs/METADATA.md), what each detection searched included.

mod common;

use common::*;
use std::process::Command;

/// Runs one of the Python readers with the plugin built next to this test; its JSON lines.
fn python(script: &str, args: &[&str]) -> Vec<serde_json::Value> {
    init();
    // The plugin .so next to the test binary's target dir (built by `cargo build`).
    let exe = std::env::current_exe().unwrap();
    let target_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    assert!(
        target_dir.join("libgstfacedetect.so").is_file(),
        "build the plugin first (cargo build)"
    );
    let out = Command::new("/usr/bin/python3")
        .arg(format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(args)
        .env("GST_PLUGIN_PATH", &target_dir)
        .output()
        .expect("/usr/bin/python3 (Debian python3-gi)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn python_reads_every_roi_and_its_params() {
    let image = data("faces/misc/t1.jpg");
    let rows = python("read_meta.py", &[image.to_str().unwrap()]);
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

#[test]
fn python_reads_what_each_detection_searched() {
    // A head turning in front of a still background, 62 frames: the whole frame first, then
    // every 3rd detection a scan of what changed (and around the face), the face followed in
    // between; the whole frame again on the 10th scan.
    let video = data("video/intel_sample_videos/derived/head-pose-face-detection-male.mjpeg.avi");
    let rows = python(
        "read_messages.py",
        &[
            video.to_str().unwrap(),
            "scan-interval=3",
            "motion-scan=true",
        ],
    );
    assert_eq!(rows.len(), 62, "one message per frame");
    let scans: Vec<&str> = rows.iter().map(|r| r["scan"].as_str().unwrap()).collect();
    assert_eq!(scans[0], "frame");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["frame"], i as u64);
        let (scan, searched) = (scans[i], r["searched"].as_f64().unwrap());
        // One person, in view all along.
        assert_eq!(r["faces"], 1, "frame {i}: {r}");
        match scan {
            "frame" => assert_eq!(searched, 1.0),
            // Only around the face (one face width on every side: under the whole frame).
            "regions" | "changes" => assert!(searched > 0.0 && searched < 1.0, "{r}"),
            other => panic!("scan {other}"),
        }
        // Two of every three detections follow the face; the scans fall on every 3rd.
        assert_eq!(scan == "regions", i % 3 != 0, "frame {i}: {scans:?}");
    }
    // After the whole frame at 0, nine scans of what changed (3, 6, ..., 27), then the whole
    // frame again (30 and 60).
    assert_eq!(scans[27], "changes", "{scans:?}");
    assert_eq!((scans[30], scans[60]), ("frame", "frame"), "{scans:?}");
    assert!(
        scans.iter().filter(|s| **s == "changes").count() >= 15,
        "{scans:?}"
    );
    // The followed face is where the whole frame finds it: boxes from frame to frame move by
    // less than a third of the face (a head turning at 12 frames/s).
    for w in rows.windows(2) {
        let (a, b) = (&w[0]["box"], &w[1]["box"]);
        let width = a[2].as_f64().unwrap();
        for k in 0..2 {
            let d = (a[k].as_f64().unwrap() - b[k].as_f64().unwrap()).abs();
            assert!(d < width / 3.0, "{a} -> {b}");
        }
    }
}
