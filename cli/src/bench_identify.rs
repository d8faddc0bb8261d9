//! `sightline bench identify`: identification accuracy out of sample on the shared face sets,
//! for each embedding model: the one-photo protocol (every other person enrolled from their
//! first photo, their other photos as probes, the rest strangers) at the model's default
//! threshold and at thresholds cross-validated by identity, TAR at FAR 1e-3 and 1e-4, and the
//! cost and gain of averaging each face's embedding with its mirror image's.

use sightline_core::calibrate::{self, FaceSet, OnePhoto, Person};
use sightline_core::detect::{DetectParams, FaceDetector};
use sightline_core::embed::FaceEmbedder;
use sightline_core::enroll::embed_face_sets;
use std::path::Path;
use std::time::{Duration, Instant};

/// The image kinds of identities.json scored, and how the tables name them.
pub const KINDS: [(&str, &str); 3] = [
    ("face_image", "ORL grey 92x112"),
    ("face_crop", "tight grey crops 150x150"),
    ("photo", "colour photos"),
];
/// FAR of the threshold the one-photo protocol is scored at: with ~12 people enrolled, a
/// stranger is falsely accepted with probability about 12 x FAR, so 1e-3 keeps unknown
/// rejection near 0.99.
pub const PROTOCOL_FAR: f64 = 1e-3;
const FOLDS: usize = 2;

pub fn bench_identify(data: &Path, models_list: &[String]) -> Result<(), String> {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("faces/identities.json"))
            .map_err(|e| format!("{}: {e}", data.join("faces/identities.json").display()))?,
    )
    .map_err(|e| format!("identities.json: {e}"))?;
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.0).collect();
    let sets = calibrate::face_sets(&doc, &kinds);
    println!(
        "identification on {} ({} folds by identity; cross-validated thresholds at FAR {PROTOCOL_FAR:e} on the other folds' identities)",
        data.join("faces").display(),
        FOLDS
    );
    for model in models_list {
        let (mut det, emb) = crate::gallery_cmd::models_for(model)?;
        let default = crate::gallery_cmd::match_threshold(model)?;
        // Live probes plain, references as enrolment makes them (mirror-averaged): the
        // product; the same without the mirror; and the mirror everywhere.
        let (product, missing) = embed_face_sets(&mut det, &emb, data, &sets, false);
        let mut plain = product.clone();
        for p in plain.iter_mut().flat_map(|s| s.people.iter_mut()) {
            p.reference = None;
        }
        let (mirrored, _) = embed_face_sets(&mut det, &emb, data, &sets, true);
        let cost = mirror_cost(&mut det, &emb, data, &sets)?;
        println!("\n## {model} (default threshold {default})");
        for m in &missing {
            println!("no face: {m}");
        }
        report(&plain, default, "no mirror");
        report(
            &product,
            default,
            "enrolment photo averaged with its mirror (the default)",
        );
        report(&mirrored, default, "every face averaged with its mirror");
        let all_imp: Vec<f32> = plain
            .iter()
            .flat_map(|s| calibrate::pair_scores(&s.people.iter().collect::<Vec<_>>()).1)
            .collect();
        println!(
            "in-sample threshold at FAR 1e-3 over all {} impostor pairs: {:.3}",
            all_imp.len(),
            calibrate::threshold_at_far(&all_imp, 1e-3)
        );
        println!(
            "embedding time per face: {:.2} ms plain, {:.2} ms with the mirror (x{:.2})",
            cost.0.as_secs_f64() * 1e3,
            cost.1.as_secs_f64() * 1e3,
            cost.1.as_secs_f64() / cost.0.as_secs_f64()
        );
    }
    Ok(())
}

fn report(sets: &[FaceSet], default: f32, label: &str) {
    let cv = calibrate::cross_validate(sets, FOLDS, PROTOCOL_FAR, &[1e-3, 1e-4]);
    println!("\n{label}: fold thresholds {:.3?}", cv.thresholds);
    println!(
        "| images | people | default threshold: rank-1 | rejection | cross-validated: rank-1 | rejection |"
    );
    println!("|---|---|---|---|---|---|");
    for (set, (_, cvs)) in sets.iter().zip(&cv.one_photo) {
        let people: Vec<&Person> = set.people.iter().collect();
        let d = calibrate::one_photo(&people, default);
        let name = KINDS
            .iter()
            .find(|k| k.0 == set.kind)
            .map_or(set.kind.as_str(), |k| k.1);
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            people.len(),
            frac(d.correct, d.genuine),
            frac(d.rejected, d.strangers),
            frac(cvs.correct, cvs.genuine),
            frac(cvs.rejected, cvs.strangers)
        );
    }
    let mut total = OnePhoto::default();
    for (_, s) in &cv.one_photo {
        total.add(s);
    }
    println!(
        "all sets, cross-validated: rank-1 {:.3}, rejection {:.3}",
        total.rank1(),
        total.rejection()
    );
    for t in &cv.tar {
        println!(
            "TAR at FAR {:e}: {:.4} of {} genuine pairs (thresholds {:.3}-{:.3}; FAR met on the scored folds {:.2e} of {} impostor pairs)",
            t.far, t.tar, t.genuine, t.thresholds[0], t.thresholds[1], t.measured_far, t.impostor
        );
    }
}

fn frac(a: usize, b: usize) -> String {
    format!("{:.3} ({a}/{b})", a as f64 / b.max(1) as f64)
}

/// Embedding time per face without and with the mirror (the same face, back to back).
fn mirror_cost(
    det: &mut FaceDetector,
    emb: &FaceEmbedder,
    root: &Path,
    sets: &std::collections::BTreeMap<String, Vec<(String, Vec<String>)>>,
) -> Result<(Duration, Duration), String> {
    let (mut plain_t, mut both_t, mut faces) = (Duration::ZERO, Duration::ZERO, 0u32);
    for p in sets.values().flatten().flat_map(|(_, paths)| paths) {
        let img = sightline_core::video::decode_image(&root.join(p))?;
        let view = img.view().map_err(|e| e.to_string())?;
        let found = det
            .detect(&view, &DetectParams::default())
            .map_err(|e| e.to_string())?;
        let Some(lm) = found
            .iter()
            .max_by(|a, b| a.area().total_cmp(&b.area()))
            .and_then(|f| f.landmarks)
        else {
            continue;
        };
        let t0 = Instant::now();
        std::hint::black_box(emb.embed(&view, &[lm]).map_err(|e| e.to_string())?);
        let t1 = Instant::now();
        std::hint::black_box(
            emb.embed_with_mirror(&view, &[lm])
                .map_err(|e| e.to_string())?,
        );
        plain_t += t1 - t0;
        both_t += t1.elapsed();
        faces += 1;
    }
    let n = faces.max(1);
    Ok((plain_t / n, both_t / n))
}
