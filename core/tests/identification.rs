//! Identification on the colour photo sets of shared/data/faces (identities.json): a gallery
//! from some photos of each identity, probes from the others, and identities left out of the
//! gallery (plus the single-photo identities) must come back unknown. Four folds, so every
//! identity is left out once. Both embedding models, at their calibrated thresholds.

use sightline_core::detect::{DetectParams, FaceDetector};
use sightline_core::embed::FaceEmbedder;
use sightline_core::gallery::Gallery;
use sightline_core::inference::{Engine, EngineOptions};
use sightline_core::models;
use sightline_core::preprocess::{ImageView, PixelFormat, Plane};
use std::collections::BTreeMap;
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

struct Photo {
    path: String,
    identity: String,
    /// Embedding per model name.
    emb: BTreeMap<String, Vec<f32>>,
}

#[derive(Debug, Default)]
struct Score {
    genuine: usize,
    correct: usize,
    unknown: usize,
    rejected: usize,
}

#[test]
fn identification_and_unknown_rejection_on_colour_photos() {
    gst::init().unwrap();
    let ids: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared().join("data/faces/identities.json")).unwrap(),
    )
    .unwrap();
    let engine = |n: &str| {
        Engine::shared(&models::resolve(n, n).unwrap(), &EngineOptions::default()).unwrap()
    };
    let mut det = FaceDetector::new(engine("yunet-n")).unwrap();
    let embedders: Vec<(&str, f32, FaceEmbedder)> = vec![
        (
            "mobilefacenet",
            0.48,
            FaceEmbedder::new(engine("mobilefacenet")).unwrap(),
        ),
        (
            "w600k-mbf",
            0.30,
            FaceEmbedder::new(engine("w600k-mbf")).unwrap(),
        ),
    ];
    let mut photos = Vec::new();
    for (path, v) in ids["files"].as_object().unwrap() {
        let set = path.split('/').nth(1).unwrap_or("");
        if v["kind"] != "photo" || set == "bbt_faceapi" || set == "orl_att" {
            continue;
        }
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
        // The element's defaults: 640 px detector input; the main face is the largest.
        let faces = det.detect(&img, &DetectParams::default()).unwrap();
        let main = faces
            .iter()
            .max_by(|a, b| a.area().total_cmp(&b.area()))
            .unwrap_or_else(|| panic!("{path}: no face"));
        let lm = main.landmarks.unwrap();
        let emb = embedders
            .iter()
            .map(|(n, _, e)| (n.to_string(), e.embed(&img, &[lm]).unwrap().remove(0)))
            .collect();
        photos.push(Photo {
            path: path.clone(),
            identity: v["identity"].as_str().unwrap().to_string(),
            emb,
        });
    }
    let mut by_id: BTreeMap<String, Vec<&Photo>> = BTreeMap::new();
    for p in &photos {
        by_id.entry(p.identity.clone()).or_default().push(p);
    }
    let multi: Vec<&String> = by_id
        .iter()
        .filter(|(_, v)| v.len() >= 2)
        .map(|(k, _)| k)
        .collect();
    let singles: Vec<&Photo> = by_id
        .values()
        .filter(|v| v.len() == 1)
        .flatten()
        .copied()
        .collect();
    assert!(
        multi.len() >= 8 && photos.len() >= 40,
        "{} identities, {} photos",
        multi.len(),
        photos.len()
    );
    let mut report = String::new();
    for (model, threshold, emb) in &embedders {
        let mut score = Score::default();
        for fold in 0..4 {
            let mut g = Gallery::new(model, emb.dims());
            let mut probes: Vec<(&Photo, bool)> = singles.iter().map(|p| (*p, false)).collect();
            for (k, id) in multi.iter().enumerate() {
                let mut ps = by_id[*id].clone();
                ps.sort_by(|a, b| a.path.cmp(&b.path));
                if k % 4 == fold {
                    probes.extend(ps.iter().map(|p| (*p, false)));
                    continue;
                }
                // Enrol one photo, two when the identity has four or more.
                let n_enrol = if ps.len() >= 4 { 2 } else { 1 };
                for p in &ps[..n_enrol] {
                    g.add(id, &p.emb[*model]).unwrap();
                }
                probes.extend(ps[n_enrol..].iter().map(|p| (*p, true)));
            }
            for (p, known) in probes {
                let m = g.best_match(&p.emb[*model]).unwrap();
                let accepted = m.similarity >= *threshold;
                if known {
                    score.genuine += 1;
                    if accepted && m.name == p.identity {
                        score.correct += 1;
                    } else {
                        eprintln!("{model}: {} -> {} {:.3}", p.path, m.name, m.similarity);
                    }
                } else {
                    score.unknown += 1;
                    if !accepted {
                        score.rejected += 1;
                    } else {
                        eprintln!(
                            "{model}: unknown {} accepted as {} {:.3}",
                            p.path, m.name, m.similarity
                        );
                    }
                }
            }
        }
        let rank1 = score.correct as f64 / score.genuine as f64;
        let rejection = score.rejected as f64 / score.unknown as f64;
        report.push_str(&format!(
            "{model} (threshold {threshold}): rank-1 {rank1:.3} ({}/{}), unknown rejection {rejection:.3} ({}/{})\n",
            score.correct, score.genuine, score.rejected, score.unknown
        ));
        if *model == "mobilefacenet" {
            // Measured 1.000 / 1.000 (docs/benchmarks.md). The targets are 0.97 and
            // 0.95; with ~100 probes one more miss would cost 0.01, so the targets themselves
            // are the margin.
            assert!(rank1 >= 0.97, "{report}");
            assert!(rejection >= 0.95, "{report}");
        } else {
            assert!(rank1 >= 0.95 && rejection >= 0.95, "{report}");
        }
    }
    eprintln!("{report}");
}
