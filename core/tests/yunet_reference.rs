//! The Rust YuNet pipeline (preprocess + shared engine + decode + NMS) against numbers produced
//! by shared/models/reference_decode.py on the same photos
//! (scripts/reference/yunet_reference.py -> tests/fixtures/yunet_reference.json).

use sightline_core::detect::{DetectParams, FaceDetector};
use sightline_core::inference::{Engine, EngineOptions};
use sightline_core::models;
use sightline_core::preprocess::{ImageView, PixelFormat, Plane};
use std::path::PathBuf;

fn shared() -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// Decodes a photo to packed BGR with GStreamer (the reference uses cv2.imread, also BGR).
fn decode_bgr(path: &std::path::Path) -> (Vec<u8>, usize, usize, usize) {
    gst::init().unwrap();
    let img = sightline_core::video::decode_image(path).unwrap();
    (img.data, img.width, img.height, img.stride)
}

#[test]
fn yunet_matches_the_python_reference() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/yunet_reference.json")).unwrap();
    let model = models::resolve("yunet-n", "yunet-n").expect("model (run scripts/setup)");
    let engine =
        Engine::shared(&model, &EngineOptions::default()).expect("engine (ORT_DYLIB_PATH)");
    let mut det = FaceDetector::new(engine).unwrap();
    for (key, v) in fixture.as_object().unwrap() {
        let rel = v["path"].as_str().unwrap();
        let (data, w, h, stride) = decode_bgr(&shared().join("data").join(rel));
        assert_eq!(
            (w as u64, h as u64),
            (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap())
        );
        let scale = v["scale"].as_f64().unwrap();
        let native = scale == 1.0;
        let params = DetectParams {
            // The reference run's threshold.
            score_threshold: 0.6,
            inference_width: if native {
                0
            } else {
                (w as f64 * scale).round() as u32
            },
            ..DetectParams::default()
        };
        let img = ImageView::new(
            PixelFormat::Bgr,
            w,
            h,
            &[Plane {
                data: &data,
                stride,
            }],
        )
        .unwrap();
        let got = det.detect(&img, &params).unwrap();
        let want = v["faces"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{key}: face count");
        // Tolerances. PNG: identical pixels, so only float rounding (native) and our bilinear
        // resampler against cv2.resize's fixed-point one (scaled) remain. JPEG: GStreamer's
        // jpegdec + videoconvert and libjpeg upsample chroma differently (a few levels), which
        // moves the box regression of the least certain faces by up to ~3 px.
        let png = rel.ends_with(".png");
        let (box_tol, score_tol) = match (png, native) {
            (true, true) => (0.05, 0.001),
            (true, false) => (1.0, 0.01),
            (false, _) => (3.5, 0.03),
        };
        for row in want {
            let mut r: Vec<f32> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            // Sightline clips boxes to the frame (the reference does not).
            for (k, c) in r.iter_mut().take(4).enumerate() {
                *c = c.clamp(0.0, if k % 2 == 0 { w as f32 } else { h as f32 });
            }
            let best = got
                .iter()
                .min_by(|a, b| {
                    let da = (a.x1 - r[0]).abs() + (a.y1 - r[1]).abs();
                    let db = (b.x1 - r[0]).abs() + (b.y1 - r[1]).abs();
                    da.total_cmp(&db)
                })
                .unwrap();
            let coords = [best.x1, best.y1, best.x2, best.y2];
            for (k, c) in coords.iter().enumerate() {
                assert!(
                    (c - r[k]).abs() <= box_tol,
                    "{key}: box {coords:?} vs reference {:?}",
                    &r[..4]
                );
            }
            let lm = best.landmarks.unwrap();
            for (k, p) in lm.iter().enumerate() {
                let d = (p[0] - r[4 + 2 * k]).abs().max((p[1] - r[5 + 2 * k]).abs());
                // Landmarks of a face in three-quarter view move more than its box.
                assert!(
                    d <= if png { box_tol } else { 2.0 * box_tol },
                    "{key}: landmark {k} differs by {d} px"
                );
            }
            assert!(
                (best.score - r[14]).abs() <= score_tol,
                "{key}: score {} vs {}",
                best.score,
                r[14]
            );
        }
    }
}
