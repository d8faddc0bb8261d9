//! `sightline detect`, the README's main job, end to end on a real face video.

use sightline_core::events::read_jsonl;
use std::path::PathBuf;
use std::process::Command;

fn shared() -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sl-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn detect_writes_annotated_video_and_one_event_per_frame() {
    let input =
        shared().join("data/video/intel_sample_videos/derived/face-demographics-walking.mjpeg.avi");
    let dir = out_dir("walk");
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["detect", input.to_str().unwrap(), "--camera", "corridor"])
        .arg("--output")
        .arg(dir.join("a.mp4"))
        .arg("--events")
        .arg(dir.join("e.jsonl"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("annotated:") && stdout.contains("events:"),
        "{stdout}"
    );
    let mp4 = std::fs::metadata(dir.join("a.mp4")).unwrap();
    assert!(mp4.len() > 50_000, "annotated video is {} bytes", mp4.len());
    let events = read_jsonl(&dir.join("e.jsonl")).unwrap();
    // 35 frames, two people walking towards the camera (faces 10-30 px): both are found in
    // every frame and nothing else (the clip's ground truth, identities.json).
    assert_eq!(events.len(), 35);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.schema, "sightline.event/1");
        assert_eq!(e.kind, "facedetect");
        assert_eq!(e.camera, "corridor");
        assert_eq!(e.data["frame"], i as u64);
        assert_eq!(
            e.data["faces"].as_array().unwrap().len(),
            2,
            "frame {i}: {}",
            e.data
        );
    }
    // Monotonic running time from the file's timestamps (12 frames/s).
    let t: Vec<u64> = events.iter().map(|e| e.running_time_ns.unwrap()).collect();
    assert!(t.windows(2).all(|w| w[1] > w[0]));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_onnx_runtime_is_a_clear_error() {
    let input = shared().join("data/faces/misc/astronaut.png");
    let dir = out_dir("noort");
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["detect", input.to_str().unwrap()])
        .arg("--output")
        .arg(dir.join("a.png"))
        .arg("--events")
        .arg(dir.join("e.jsonl"))
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr
            .contains("cannot load the ONNX Runtime library /nonexistent/libonnxruntime.so.1.31.1"),
        "{stderr}"
    );
    assert!(stderr.contains("scripts/setup"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn models_verify_passes_and_list_shows_licences() {
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["models", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("w600k-mbf") && text.contains(" NO "),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["models", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn models_fetch_from_a_directory_checks_sha256() {
    let src = out_dir("fetch-src");
    let dest = out_dir("fetch-dest");
    let real = sightline_core::models::resolve("yunet-n", "yunet-n")
        .unwrap()
        .path;
    std::fs::copy(&real, src.join("face_detection_yunet_n_dynamic.onnx")).unwrap();
    std::fs::write(
        src.join("face_detection_yunet_2023mar_640.onnx"),
        b"corrupt",
    )
    .unwrap();
    let run = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_sightline"))
            .args(["models", "fetch", name, "--from"])
            .arg(&src)
            .arg("--dest")
            .arg(&dest)
            .output()
            .unwrap()
    };
    let ok = run("yunet-n");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(dest.join("face_detection_yunet_n_dynamic.onnx").is_file());
    let bad = run("yunet-s");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).contains("sha256"));
    assert!(
        !dest.join("face_detection_yunet_2023mar_640.onnx").exists(),
        "a bad file is not installed"
    );
    std::fs::remove_dir_all(src).unwrap();
    std::fs::remove_dir_all(dest).unwrap();
}
