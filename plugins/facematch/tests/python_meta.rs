//! facematch's params read from Python (PyGObject), as integrators do.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn python_reads_recognition_object_id_and_embedding() {
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
    // A gallery with Biden; the photo shows Obama and Biden.
    let dir = std::env::temp_dir().join(format!("sl-fm-py-{}", std::process::id()));
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
    let out = Command::new("/usr/bin/python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/read_recognition.py"
        ))
        .arg(faces.join("face_recognition_examples/group/two_people.jpg"))
        .arg(&g)
        .env("GST_PLUGIN_PATH", &plugins)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
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
