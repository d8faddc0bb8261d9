//! Bad inputs are clear errors naming the file or field — never a panic or a hang: photos
//! that are empty or not images (alone and in a gallery directory), calibration and zones
//! files with NaN or huge numbers, pipeline files with an unbalanced quote or an unknown
//! variable. (Lying gallery headers: gallery.rs unit tests; spool lines: delivery.rs.)

use sightline_core::geometry::Calibration;
use sightline_core::runner::PipelineFile;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sl-bad-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn empty_and_non_image_photos_are_clear_errors_quickly() {
    gst::init().unwrap();
    let d = dir("photos");
    let empty = d.join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    let text = d.join("notes.png");
    std::fs::write(&text, "these are not pixels\n".repeat(100)).unwrap();
    for p in [&empty, &text] {
        let t = Instant::now();
        let Err(e) = sightline_core::video::decode_image(p) else {
            panic!("{} decoded", p.display());
        };
        assert!(e.contains(&p.display().to_string()), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    }
    // In a gallery directory: skipped with the reason, the good photo enrolled.
    let g = d.join("gallery");
    std::fs::create_dir_all(g.join("Obama")).unwrap();
    std::fs::copy(
        sightline_testkit::shared_data("faces/face_recognition_examples/obama/obama.jpg"),
        g.join("Obama/good.jpg"),
    )
    .unwrap();
    std::fs::copy(&empty, g.join("Obama/empty.jpg")).unwrap();
    std::fs::copy(&text, g.join("Obama/notes.png")).unwrap();
    let opts = sightline_core::inference::EngineOptions::default();
    let det_m = sightline_core::models::resolve("yunet-n", "yunet-n").unwrap();
    let emb_m = sightline_core::models::resolve("mobilefacenet", "mobilefacenet").unwrap();
    let mut det = sightline_core::detect::FaceDetector::new(
        sightline_core::inference::Engine::shared(&det_m, &opts).unwrap(),
    )
    .unwrap();
    let emb = sightline_core::embed::FaceEmbedder::new(
        sightline_core::inference::Engine::shared(&emb_m, &opts).unwrap(),
    )
    .unwrap();
    let (gallery, skipped) =
        sightline_core::enroll::gallery_from_directory(&g, &mut det, &emb).unwrap();
    assert_eq!(gallery.len(), 1);
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    for name in ["empty.jpg", "notes.png"] {
        assert!(
            skipped.iter().any(|s| s.contains(name)),
            "{name}: {skipped:?}"
        );
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn calibrations_and_zones_with_nan_or_huge_numbers_are_refused() {
    for (text, why) in [
        (
            r#"{"map":"m","units":"m","homography":[[1e308,0,0],[0,1e308,0],[0,0,1e-308]]}"#,
            "cal.json",
        ),
        (
            r#"{"map":"m","units":"m","homography":[[NaN,0,0],[0,1,0],[0,0,1]]}"#,
            "cal.json",
        ),
        (
            r#"{"map":"m","units":"m","points":[{"image":[1e300,0],"map":[0,0]},{"image":[1,0],"map":[1,0]},{"image":[0,1],"map":[0,1]},{"image":[1,1],"map":[1e309,1]}]}"#,
            "cal.json",
        ),
    ] {
        let e = Calibration::parse(text, "cal.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{text}: {e}");
    }
    for text in [
        r#"{"units":"normalized","cameras":{"door":[{"name":"z","polygon":[[0,0],[1e308,0],[1,1]]}]}}"#,
        r#"{"units":"normalized","cameras":{"door":[{"name":"z","polygon":[[0,0],[NaN,0],[1,1]]}]}}"#,
        r#"{"units":"normalized","cameras":{"door":[{"name":"z","polygon":[[0,0],[1,0],[1,1]],"dwell-seconds":1e999}]}}"#,
    ] {
        let e = sightline_core::zones::parse(text, "zones.json").unwrap_err();
        assert!(e.contains("zones.json"), "{text}: {e}");
    }
}

#[test]
fn pipeline_files_with_open_quotes_or_unknown_variables_are_refused() {
    let e = PipelineFile::parse(
        "# @var CAM1  camera\nfilesrc location=\"/a b.mp4 ! decodebin !\n  fakesink\n",
        "cam.pipeline",
    )
    .unwrap_err();
    assert!(e.contains("cam.pipeline:2") && e.contains("quote"), "{e}");
    // An escaped quote is not an open one.
    assert!(PipelineFile::parse("textoverlay text=\"say \\\"hi\\\"\" ! fakesink", "t").is_ok());
    let f = PipelineFile::parse(
        "# @var CAM1  camera\nuridecodebin3 uri=${CAM2} ! fakesink",
        "u.pipeline",
    )
    .unwrap();
    let e = f.substitute(&BTreeMap::new(), |_| None).unwrap_err();
    assert!(e.contains("CAM2"), "{e}");
    let mut set = BTreeMap::new();
    set.insert("NOPE".to_string(), "x".to_string());
    let e = f.substitute(&set, |_| None).unwrap_err();
    assert!(e.contains("NOPE"), "{e}");
    let e = PipelineFile::parse("fakesink name=${UNCLOSED", "x.pipeline")
        .unwrap()
        .substitute(&BTreeMap::new(), |_| None)
        .unwrap_err();
    assert!(e.contains("unterminated"), "{e}");
}
