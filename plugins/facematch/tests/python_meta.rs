//! facematch's params read from Python (PyGObject), as integrators do.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The plugin directory, the shared faces, and a gallery with Biden (in a temp dir).
fn setup(tag: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    gst::init().unwrap();
    let exe = std::env::current_exe().unwrap();
    let plugins = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    assert!(
        plugins.join("libgstfacematch.so").is_file(),
        "build the plugins first (cargo build)"
    );
    let faces = std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("data/faces");
    let dir = std::env::temp_dir().join(format!("sl-fm-py-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let g = dir.join("g.slg");
    let m = sightline_core::models::resolve("mobilefacenet", "mobilefacenet").unwrap();
    let d = sightline_core::models::resolve("yunet-n", "yunet-n").unwrap();
    let opts = sightline_core::inference::EngineOptions::default();
    let emb = sightline_core::embed::FaceEmbedder::new(
        sightline_core::inference::Engine::shared(&m, &opts).unwrap(),
    )
    .unwrap();
    let mut det = sightline_core::detect::FaceDetector::new(
        sightline_core::inference::Engine::shared(&d, &opts).unwrap(),
    )
    .unwrap();
    let v = sightline_core::enroll::embed_file(
        &mut det,
        &emb,
        &faces.join("face_recognition_examples/biden/biden.jpg"),
        sightline_core::enroll::FacePolicy::Single,
    )
    .unwrap()
    .embedding;
    let mut gal = sightline_core::gallery::Gallery::new("mobilefacenet", 192);
    gal.add("Joe Biden", &v).unwrap();
    gal.save(&g).unwrap();
    (plugins, faces, dir, g)
}

/// Runs a script of this directory on `image` with `gallery`; its JSON lines.
fn python(script: &str, plugins: &Path, image: &Path, gallery: &Path) -> Vec<serde_json::Value> {
    let out = Command::new("/usr/bin/python3")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(script),
        )
        .arg(image)
        .arg(gallery)
        .env("GST_PLUGIN_PATH", plugins)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn dl_streamer_readers_get_every_param_with_its_type() {
    let (plugins, faces, dir, g) = setup("gva");
    // The photo shows Obama and Biden; the gallery holds Biden.
    let rows = python(
        "dlstreamer_reads.py",
        &plugins,
        &faces.join("face_recognition_examples/group/two_people.jpg"),
        &g,
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        let gva = &r["gstgva"];
        // object_id: a plain int, the same through PyGObject and gstgva's reads.
        assert_eq!(r["id_is_int"], true, "{r}");
        let id = r["object_id"].as_i64().unwrap();
        assert!(id >= 1, "{r}");
        assert_eq!(gva["object_id"].as_i64(), Some(id), "{r}");
        // recognition: confidence = similarity, label_id = gallery index (-1 for strangers).
        assert_eq!(r["confidence"], r["similarity"], "{r}");
        assert_eq!(gva["recognition_confidence"], r["similarity"], "{r}");
        let biden = r["label"] == "Joe Biden";
        assert_eq!(r["label_id"], if biden { 0 } else { -1 }, "{r}");
        assert_eq!(gva["recognition_label_id"], r["label_id"], "{r}");
        assert_eq!(gva["recognition_label"], r["label"], "{r}");
        // The ROI as gstgva sees it: box, label, detection confidence.
        assert_eq!(gva["rect"], r["rect"], "{r}");
        assert_eq!(gva["label"], "face", "{r}");
        assert!(gva["detection_confidence"].as_f64().unwrap() >= 0.6, "{r}");
        // Landmarks: five points normalised to the box (inside it), which back in pixels are
        // our named fields (float32: well within a hundredth of a pixel).
        assert_eq!(r["format"], "landmark_points", "{r}");
        assert_eq!(gva["landmarks_format"], "landmark_points", "{r}");
        let pts: Vec<f64> = r["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(pts.len(), 10, "{r}");
        let data = gva["landmarks_data"].as_array().unwrap();
        assert_eq!(data.len(), 10, "{r}");
        for (a, b) in pts.iter().zip(data) {
            assert_eq!(*a, b.as_f64().unwrap(), "{r}");
        }
        assert!(pts.iter().all(|p| (0.0..=1.0).contains(p)), "{r}");
        let rect: Vec<f64> = r["rect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (i, px) in r["pixels"].as_array().unwrap().iter().enumerate() {
            let (origin, size) = (rect[i % 2], rect[2 + i % 2]);
            let back = origin + size * pts[i];
            assert!((back - px.as_f64().unwrap()).abs() < 0.01, "{r}");
        }
    }
    assert_eq!(
        rows.iter().filter(|r| r["label"] == "Joe Biden").count(),
        1,
        "{rows:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn python_reads_recognition_object_id_and_embedding() {
    // A gallery with Biden; the photo shows Obama and Biden.
    let (plugins, faces, dir, g) = setup("rec");
    let rows = python(
        "read_recognition.py",
        &plugins,
        &faces.join("face_recognition_examples/group/two_people.jpg"),
        &g,
    );
    let stdout = format!("{rows:?}");
    assert_eq!(rows.len(), 2, "{stdout}");
    let biden: Vec<&serde_json::Value> =
        rows.iter().filter(|r| r["label"] == "Joe Biden").collect();
    let unknown: Vec<&serde_json::Value> =
        rows.iter().filter(|r| r["label"] == "unknown").collect();
    assert_eq!((biden.len(), unknown.len()), (1, 1), "{stdout}");
    assert_eq!(biden[0]["identity"], "joe-biden");
    assert_eq!(biden[0]["unknown_id"], "");
    assert!(biden[0]["similarity"].as_f64().unwrap() >= 0.48);
    assert!(
        unknown[0]["unknown_id"]
            .as_str()
            .unwrap()
            .starts_with("unknown-")
    );
    for r in &rows {
        assert_eq!(r["dims"], 192);
        assert!(
            (r["norm"].as_f64().unwrap() - 1.0).abs() < 1e-3,
            "L2-normalised"
        );
        assert!(r["track"].as_i64().unwrap() >= 1);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// GstAnalytics (GStreamer >= 1.24, `analytics` feature; run by scripts/test-debian13): each
/// face's object-detection Mtd has the ROI's id and box, its related classification is the
/// enrolled name (or `unknown`) and its related tracking id is the ROI's `object_id`.
#[cfg(feature = "analytics")]
#[test]
fn python_reads_the_gstanalytics_form_paired_with_the_rois() {
    let (plugins, faces, dir, g) = setup("ana");
    let rows = python(
        "analytics_reads.py",
        &plugins,
        &faces.join("face_recognition_examples/group/two_people.jpg"),
        &g,
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        let roi = &r["roi"];
        assert!(roi.is_object(), "no ROI meta with the Mtd's id: {r}");
        assert_eq!(r["type"], "face", "{r}");
        assert_eq!(r["box"], roi["rect"], "{r}");
        assert!(r["confidence"].as_f64().unwrap() >= 0.6, "{r}");
        assert_eq!(r["classes"].as_array().unwrap().len(), 1, "{r}");
        assert_eq!(r["classes"][0], roi["label"], "{r}");
        assert_eq!(r["tracks"].as_array().unwrap().len(), 1, "{r}");
        assert_eq!(r["tracks"][0], roi["object_id"], "{r}");
    }
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["classes"][0].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Joe Biden") && names.contains(&"unknown"),
        "{names:?}"
    );
    let biden = rows
        .iter()
        .find(|r| r["classes"][0] == "Joe Biden")
        .unwrap();
    assert!(biden["levels"][0].as_f64().unwrap() >= 0.48, "{biden}");
    std::fs::remove_dir_all(dir).unwrap();
}
