//! The Rust YOLOX-nano person detector against shared/models/reference_decode.py
//! (scripts/reference/yolox_reference.py -> tests/fixtures/yolox_reference.json).

use sightline_core::detect::{DetectParams, PersonDetector};
use sightline_core::inference::{Engine, EngineOptions};
use sightline_core::models;
use sightline_core::preprocess::{ImageView, PixelFormat, Plane};
use std::path::PathBuf;

fn shared() -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

#[test]
fn yolox_matches_the_python_reference() {
    gst::init().unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/yolox_reference.json")).unwrap();
    let model = models::resolve("yolox-nano", "yolox-nano").expect("model (run scripts/setup)");
    let mut det =
        PersonDetector::new(Engine::shared(&model, &EngineOptions::default()).unwrap()).unwrap();
    for (rel, v) in fixture.as_object().unwrap() {
        let img = sightline_core::video::decode_image(&shared().join("data").join(rel)).unwrap();
        let view = ImageView::new(
            PixelFormat::Bgr,
            img.width,
            img.height,
            &[Plane {
                data: &img.data,
                stride: img.stride,
            }],
        )
        .unwrap();
        let params = DetectParams {
            score_threshold: 0.3,
            nms_threshold: 0.45,
            inference_width: 640,
            ..DetectParams::default()
        };
        let plan = det.plan(img.width, img.height, &params);
        assert_eq!(
            [plan.tensor_w as u64, plan.tensor_h as u64],
            [
                v["tensor"][0].as_u64().unwrap(),
                v["tensor"][1].as_u64().unwrap()
            ],
            "{rel}"
        );
        let got = det.detect(&view, &params).unwrap();
        let want = v["persons"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{rel}: {got:?}");
        // PNG: identical pixels, only resampling rounding differs (cv2 fixed point; the
        // reference truncates the scaled size where we round). JPEG: decoders differ too.
        let (box_tol, score_tol): (f32, f32) = if rel.ends_with(".png") {
            (1.5, 0.01)
        } else {
            (4.0, 0.03)
        };
        for row in want {
            let r: Vec<f32> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let clip = [
                r[0].max(0.0),
                r[1].max(0.0),
                r[2].min(img.width as f32),
                r[3].min(img.height as f32),
            ];
            let best = got
                .iter()
                .min_by(|a, b| {
                    ((a.x1 - clip[0]).abs() + (a.y1 - clip[1]).abs())
                        .total_cmp(&((b.x1 - clip[0]).abs() + (b.y1 - clip[1]).abs()))
                })
                .unwrap();
            // Large boxes (a person cut by the frame edge) move by up to 2 % with the decoder.
            let tol = box_tol.max(0.02 * (clip[3] - clip[1]));
            for (k, c) in [best.x1, best.y1, best.x2, best.y2].iter().enumerate() {
                assert!((c - clip[k]).abs() <= tol, "{rel}: {best:?} vs {clip:?}");
            }
            assert!(
                (best.score - r[4]).abs() <= score_tol,
                "{rel}: score {} vs {}",
                best.score,
                r[4]
            );
        }
    }
}
