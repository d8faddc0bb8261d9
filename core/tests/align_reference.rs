//! Alignment and embeddings against shared/models/reference_decode.py
//! (scripts/reference/align_reference.py -> tests/fixtures/align_reference.json), on PNG
//! photos so both sides see identical pixels.

use sightline_core::align::{ARCFACE_112, align_into, similarity_transform};
use sightline_core::detect::{DetectParams, FaceDetector};
use sightline_core::embed::{FaceEmbedder, cosine};
use sightline_core::inference::{Engine, EngineOptions};
use sightline_core::models::{self, ColorOrder};
use sightline_core::preprocess::{ImageView, PixelFormat, Plane, TensorTarget};
use std::path::PathBuf;

fn shared() -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

fn decode_bgr(path: &std::path::Path) -> (Vec<u8>, usize, usize, usize) {
    gst::init().unwrap();
    let img = sightline_core::video::decode_image(path).unwrap();
    (img.data, img.width, img.height, img.stride)
}

fn engine(name: &str) -> sightline_core::inference::EngineHandle {
    let m = models::resolve(name, name).expect("model (scripts/setup)");
    Engine::shared(&m, &EngineOptions::default()).expect("engine")
}

#[test]
fn alignment_and_embeddings_match_the_python_reference() {
    let fx: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/align_reference.json")).unwrap();
    let mut det = FaceDetector::new(engine("yunet-n")).unwrap();
    let params = DetectParams {
        score_threshold: 0.6,
        inference_width: 0,
        ..DetectParams::default()
    };
    let mut landmarks = Vec::new();
    let mut images = Vec::new();
    // Astronaut first (the fixture's first8 are of the astronaut).
    let mut photos: Vec<_> = fx["photos"].as_object().unwrap().iter().collect();
    photos.sort_by_key(|(p, _)| !p.contains("astronaut"));
    for (path, v) in photos {
        let (data, w, h, stride) = decode_bgr(&shared().join("data").join(path));
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
        let faces = det.detect(&img, &params).unwrap();
        let best = faces
            .iter()
            .max_by(|a, b| a.area().total_cmp(&b.area()))
            .unwrap();
        let lm = best.landmarks.unwrap();
        let want: Vec<f32> = v["landmarks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        for (k, p) in lm.iter().enumerate() {
            assert!(
                (p[0] - want[2 * k]).abs() < 0.05 && (p[1] - want[2 * k + 1]).abs() < 0.05,
                "{path}: landmark {k}"
            );
        }
        // The similarity matrix (Umeyama in the reference, closed form here).
        let m = similarity_transform(&lm, &ARCFACE_112);
        let wm = v["matrix"].as_array().unwrap();
        for r in 0..2 {
            for c in 0..3 {
                let want = wm[r][c].as_f64().unwrap() as f32;
                let tol = if c == 2 { 0.02 } else { 1e-4 };
                assert!(
                    (m[r][c] - want).abs() < tol,
                    "{path}: m[{r}][{c}] = {} vs {want}",
                    m[r][c]
                );
            }
        }
        // The warped crop: raw BGR values, compared with cv2.warpAffine's (fixed-point
        // interpolation: 1/32 px steps, so a level or two of difference is expected).
        let t = TensorTarget {
            width: 112,
            height: 112,
            color: ColorOrder::Bgr,
            mean: [0.0; 3],
            std: [1.0; 3],
            pad_value: 0.0,
        };
        let mut crop = vec![0.0f32; t.len()];
        align_into(&img, &lm, &t, &mut crop);
        let plane = 112 * 112;
        for (c, want) in v["crop_mean_bgr"].as_array().unwrap().iter().enumerate() {
            let mean = crop[c * plane..(c + 1) * plane].iter().sum::<f32>() / plane as f32;
            assert!(
                (mean - want.as_f64().unwrap() as f32).abs() < 0.5,
                "{path}: channel {c} mean {mean} vs {want}"
            );
        }
        for (c, want) in v["crop_center_bgr"].as_array().unwrap().iter().enumerate() {
            let got = crop[c * plane + 56 * 112 + 56];
            assert!(
                (got - want.as_f64().unwrap() as f32).abs() <= 2.0,
                "{path}: centre {c}"
            );
        }
        landmarks.push(lm);
        images.push((data, w, h, stride));
    }
    for (name, file) in [
        ("mobilefacenet", "face_recognition_mobilefacenet_192d.onnx"),
        ("w600k-mbf", "face_recognition_w600k_mbf_512d.onnx"),
    ] {
        let emb = FaceEmbedder::new(engine(name)).unwrap();
        let mut e = Vec::new();
        for ((data, w, h, stride), lm) in images.iter().zip(&landmarks) {
            let img = ImageView::new(
                PixelFormat::Bgr,
                *w,
                *h,
                &[Plane {
                    data,
                    stride: *stride,
                }],
            )
            .unwrap();
            e.push(emb.embed(&img, &[*lm]).unwrap().remove(0));
        }
        let want = &fx["embeddings"][file];
        let cos = cosine(&e[0], &e[1]);
        let want_cos = want["cosine_astronaut_tom"].as_f64().unwrap() as f32;
        assert!(
            (cos - want_cos).abs() < 0.01,
            "{name}: cosine {cos} vs {want_cos}"
        );
        for (k, w) in want["first8_astronaut"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            assert!(
                (e[0][k] - w.as_f64().unwrap() as f32).abs() < 0.01,
                "{name}: component {k}"
            );
        }
        // Batching several faces in one run gives the same vectors.
        let (data, w, h, stride) = &images[0];
        let img = ImageView::new(
            PixelFormat::Bgr,
            *w,
            *h,
            &[Plane {
                data,
                stride: *stride,
            }],
        )
        .unwrap();
        let batch = emb
            .embed(&img, &[landmarks[0], landmarks[0], landmarks[0]])
            .unwrap();
        assert_eq!(batch.len(), 3);
        for v in &batch {
            assert!(cosine(v, &e[0]) > 0.9999);
        }
    }
}
