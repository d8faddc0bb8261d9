//! OSNet person embeddings against shared/models/reference_decode.py on a PNG photo
//! (scripts/reference/osnet_reference.py -> tests/fixtures/osnet_reference.json).

use sightline_core::embed::{CropEmbedder, cosine};
use sightline_core::inference::{Engine, EngineOptions};
use sightline_core::models;
use sightline_core::preprocess::{ImageView, PixelFormat, Plane};
use std::path::PathBuf;

#[test]
fn osnet_matches_the_python_reference() {
    gst::init().unwrap();
    let fx: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/osnet_reference.json")).unwrap();
    let shared = std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let img = sightline_core::video::decode_image(
        &shared.join("data").join(fx["image"].as_str().unwrap()),
    )
    .unwrap();
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
    let m = models::resolve("osnet-x025", "osnet-x025").unwrap();
    let emb = CropEmbedder::new(Engine::shared(&m, &EngineOptions::default()).unwrap()).unwrap();
    let boxes: Vec<[f32; 4]> = fx["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| std::array::from_fn(|k| b[k].as_f64().unwrap() as f32))
        .collect();
    let e = emb.embed(&view, &boxes).unwrap();
    // Resampling differs slightly (the reference resizes the crop with cv2; we sample the
    // frame): components within 0.02, cosines within 0.01.
    for (i, want) in fx["first8"].as_array().unwrap().iter().enumerate() {
        for (k, w) in want.as_array().unwrap().iter().enumerate() {
            assert!(
                (e[i][k] - w.as_f64().unwrap() as f32).abs() < 0.02,
                "crop {i} component {k}: {} vs {w}",
                e[i][k]
            );
        }
    }
    for (pair, (a, b)) in [("0-1", (0, 1)), ("0-2", (0, 2))] {
        let want = fx["cosines"][pair].as_f64().unwrap() as f32;
        let got = cosine(&e[a], &e[b]);
        assert!((got - want).abs() < 0.01, "{pair}: {got} vs {want}");
    }
}
