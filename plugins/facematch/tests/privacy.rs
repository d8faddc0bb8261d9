//! `analyticsoverlay privacy=blur-unknown` fails closed: on a real group photo through
//! facedetect ! facematch, only the face recognised as the enrolled person stays sharp;
//! faces that are unknown, below min-face-size, not yet embedded, or never seen by a
//! facematch are pixelated.

use gst::prelude::*;
use sightline_core::gallery::Gallery;
use sightline_core::meta::{Roi, read_rois};
use std::path::PathBuf;
use std::sync::Once;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacedetect::plugin_register_static().unwrap();
        gstfacematch::plugin_register_static().unwrap();
    });
}

fn data(rel: &str) -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("data")
        .join(rel)
}

/// A gallery with Obama enrolled from his own photo.
fn gallery() -> PathBuf {
    static G: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    G.get_or_init(make_gallery).clone()
}

fn make_gallery() -> PathBuf {
    let path = std::env::temp_dir().join(format!("sl-privacy-{}.slg", std::process::id()));
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
        &data("faces/face_recognition_examples/obama/obama.jpg"),
        sightline_core::enroll::FacePolicy::Single,
    )
    .unwrap()
    .embedding;
    let mut g = Gallery::new("mobilefacenet", 192);
    g.add("Barack Obama", &v).unwrap();
    g.save(&path).unwrap();
    path
}

/// The group photo through `analysis`, before and after the overlay (one frame).
fn run(analysis: &str) -> (gst::Sample, gst::Sample) {
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,format=BGRx,width=1000,height=714,pixel-aspect-ratio=1/1 ! {analysis} ! \
         tee name=t t. ! queue ! appsink name=before sync=false \
         t. ! queue ! analyticsoverlay privacy=blur-unknown draw-labels=false ! appsink name=after sync=false",
        data("faces/face_recognition_examples/group/obama_and_biden.jpg").display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = |n: &str| {
        p.by_name(n)
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap()
    };
    let (b, a) = (sink("before"), sink("after"));
    p.set_state(gst::State::Playing).unwrap();
    let timeout = gst::ClockTime::from_seconds(60);
    let before = b
        .try_pull_sample(timeout)
        .expect("a frame before the overlay");
    let after = a
        .try_pull_sample(timeout)
        .expect("a frame after the overlay");
    p.set_state(gst::State::Null).unwrap();
    (before, after)
}

/// In the middle half of a box (BGRx): the detail (sum of horizontal green differences) and
/// the fraction of horizontal neighbours that are exactly equal.
fn detail(s: &gst::Sample, r: (u32, u32, u32, u32)) -> (u64, f64) {
    let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
    let stride = info.stride()[0] as usize;
    let map = s.buffer().unwrap().map_readable().unwrap();
    let (x, y, w, h) = (r.0 as usize, r.1 as usize, r.2 as usize, r.3 as usize);
    let (mut sum, mut equal, mut n) = (0u64, 0u64, 0u64);
    for yy in y + h / 4..y + 3 * h / 4 {
        for xx in x + w / 4..x + 3 * w / 4 {
            let i = yy * stride + xx * 4;
            let (a, b) = (&map[i..i + 3], &map[i + 4..i + 7]);
            sum += (a[1] as i64 - b[1] as i64).unsigned_abs();
            equal += (a == b) as u64;
            n += 1;
        }
    }
    (sum, equal as f64 / n.max(1) as f64)
}

fn faces(s: &gst::Sample) -> Vec<Roi> {
    read_rois(s.buffer().unwrap())
        .into_iter()
        .filter(|r| r.roi_type == "face" && r.rect.2 >= 8 && r.rect.3 >= 8)
        .collect()
}

/// Pixelated: at least 80 % of neighbouring pixels are equal (a pixelation block spans a
/// sixth of the box: ~93 % of pairs lie inside a block); sharp: the detail is at least 90 %
/// of the input's (the overlay draws only the box outline, outside the measured middle).
/// Each face must be one or the other.
fn blurred(before: &gst::Sample, after: &gst::Sample, r: &Roi) -> bool {
    let ((b, b_eq), (a, a_eq)) = (detail(before, r.rect), detail(after, r.rect));
    let pixelated = a_eq >= 0.8 && b_eq < 0.5;
    let sharp = a * 10 >= b * 9 && a_eq < 0.5;
    assert!(
        pixelated != sharp,
        "face {:?}: detail {a} of {b}, equal neighbours {a_eq:.2} (input {b_eq:.2})",
        r.rect
    );
    pixelated
}

#[test]
fn only_the_recognised_face_stays_sharp() {
    init();
    let g = gallery();
    let (before, after) = run(&format!(
        "facedetect ! facematch gallery=\"{}\"",
        g.display()
    ));
    let fs = faces(&before);
    assert!(fs.len() >= 2, "{fs:?}");
    let known: Vec<&Roi> = fs.iter().filter(|r| r.is_recognised()).collect();
    assert_eq!(known.len(), 1, "Obama recognised: {fs:?}");
    assert_eq!(known[0].recognition_label.as_deref(), Some("Barack Obama"));
    for r in &fs {
        assert_eq!(
            blurred(&before, &after, r),
            !r.is_recognised(),
            "face {:?} ({:?})",
            r.rect,
            r.recognition_label
        );
    }
}

#[test]
fn faces_facematch_did_not_decide_are_blurred() {
    init();
    let g = gallery();
    for (why, analysis) in [
        ("no facematch upstream", "facedetect".to_string()),
        (
            "below min-face-size",
            format!(
                "facedetect ! facematch gallery=\"{}\" min-face-size=4096",
                g.display()
            ),
        ),
        (
            "not embedded (quality below min-quality)",
            format!(
                "facedetect ! facematch gallery=\"{}\" min-quality=1.0",
                g.display()
            ),
        ),
    ] {
        let (before, after) = run(&analysis);
        let fs = faces(&before);
        assert!(fs.len() >= 2, "{why}: {fs:?}");
        for r in &fs {
            assert!(!r.is_recognised(), "{why}: {r:?}");
            assert!(
                blurred(&before, &after, r),
                "{why}: face {:?} is sharp",
                r.rect
            );
        }
    }
}
