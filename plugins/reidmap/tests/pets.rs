//! persondetect on PETS 2009 (vtest.avi, frames 0-399) against the annotated person boxes.

use gst::prelude::*;
use sightline_core::meta::read_rois;
use std::path::PathBuf;

fn data(rel: &str) -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("data")
        .join(rel)
}

type Box4 = [f32; 4];

/// Ground truth per frame: (person id, (x1, y1, x2, y2)).
fn ground_truth() -> Vec<Vec<(u64, Box4)>> {
    let text = std::fs::read_to_string(data(
        "multicam/pets2009/annotations/PETS2009-S2L1_frames000-399.csv",
    ))
    .unwrap();
    let mut frames = vec![Vec::new(); 400];
    for line in text.lines().skip(1) {
        let v: Vec<f32> = line.split(',').map(|x| x.trim().parse().unwrap()).collect();
        frames[v[0] as usize].push((v[1] as u64, [v[2], v[3], v[2] + v[4], v[3] + v[5]]));
    }
    frames
}

fn iou(a: &Box4, b: &Box4) -> f32 {
    sightline_core::track::iou(a, b)
}

/// Detections of the first 400 frames.
fn detect_all(props: &str) -> Vec<Vec<Box4>> {
    gst::init().unwrap();
    gstreidmap::plugin_register_static().unwrap();
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! persondetect {props} ! appsink name=sink sync=false",
        data("video/vtest.avi").display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    while out.len() < 400 {
        let s = sink.pull_sample().unwrap();
        out.push(
            read_rois(s.buffer().unwrap())
                .iter()
                .map(|r| {
                    [
                        r.rect.0 as f32,
                        r.rect.1 as f32,
                        (r.rect.0 + r.rect.2) as f32,
                        (r.rect.1 + r.rect.3) as f32,
                    ]
                })
                .collect(),
        );
    }
    p.set_state(gst::State::Null).unwrap();
    out
}

#[derive(Debug, Default)]
struct Counts {
    gt: usize,
    tp: usize,
    fp: usize,
}

/// Greedy IoU >= 0.5 matching; counts for people at least `min_h` px tall (ground truth below
/// it, and detections matched to it, are ignored; unmatched detections count as false
/// positives only if they are that tall too).
fn evaluate(gt: &[Vec<Box4>], det: &[Vec<Box4>], min_h: f32) -> Counts {
    let mut c = Counts::default();
    for (g, d) in gt.iter().zip(det) {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (gi, gb) in g.iter().enumerate() {
            for (di, db) in d.iter().enumerate() {
                let o = iou(gb, db);
                if o >= 0.5 {
                    pairs.push((o, gi, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut gm, mut dm) = (vec![false; g.len()], vec![None; d.len()]);
        for (_, gi, di) in pairs {
            if !gm[gi] && dm[di].is_none() {
                gm[gi] = true;
                dm[di] = Some(gi);
            }
        }
        let tall = |b: &Box4| b[3] - b[1] >= min_h;
        c.gt += g.iter().filter(|b| tall(b)).count();
        for (di, db) in d.iter().enumerate() {
            match dm[di] {
                Some(gi) if tall(&g[gi]) => c.tp += 1,
                Some(_) => {}
                None if tall(db) => c.fp += 1,
                None => {}
            }
        }
    }
    c
}

#[test]
fn pets2009_recall_precision_and_tracking() {
    let gt_ids = ground_truth();
    let gt: Vec<Vec<Box4>> = gt_ids
        .iter()
        .map(|f| f.iter().map(|g| g.1).collect())
        .collect();
    // The element's defaults: 640 px input, score 0.4.
    let det = detect_all("");
    let big = evaluate(&gt, &det, 100.0);
    let all = evaluate(&gt, &det, 0.0);
    let r = |c: &Counts| c.tp as f64 / c.gt as f64;
    let p = |c: &Counts| c.tp as f64 / (c.tp + c.fp) as f64;
    eprintln!(
        "people >= 100 px: recall {:.3} precision {:.3} ({big:?}); all: recall {:.3} precision {:.3} ({all:?})",
        r(&big),
        p(&big),
        r(&all),
        p(&all)
    );
    // Measured 1.000 / 0.855 (people >= 100 px) and 0.902 / 0.808 (all) here. Targets for
    // people >= 100 px: recall >= 0.75 at precision >= 0.8; the all-size bounds hold the
    // measured values with about 5 points of margin (2396 boxes: one point is 24 boxes).
    assert!(r(&big) >= 0.75 && p(&big) >= 0.8, "{big:?}");
    assert!(r(&all) >= 0.85 && p(&all) >= 0.75, "{all:?}");

    // Tracking (Kalman + IoU, Kuhn-Munkres association) on the same detections.
    let mut tracker: sightline_core::mot::MotTracker<()> =
        sightline_core::mot::MotTracker::new(Default::default());
    let min_hits = tracker.config.min_hits;
    let pred: Vec<Vec<(u64, Box4)>> = det
        .iter()
        .map(|d| {
            let idx = tracker.update(d, None, || ());
            idx.iter()
                .zip(d)
                .filter(|(i, _)| tracker.tracks[**i].confirmed(min_hits))
                .map(|(i, b)| (tracker.tracks[*i].id, *b))
                .collect()
        })
        .collect();
    let (f1, switches) = sightline_core::mot::idf1(&gt_ids, &pred);
    eprintln!("tracking: IDF1 {f1:.3}, {switches} ID switches");
    // Target IDF1 >= 0.6.
    assert!(f1 >= 0.6, "IDF1 {f1}");
}

/// Tiling for small, far people: at a small inference size, where people shrink to a few
/// pixels, 2 x 2 tiles find the people the whole-frame pass misses (at 192 px: 14-45 px tall).
#[test]
fn tiles_find_small_people_a_small_input_misses() {
    let gt: Vec<Vec<Box4>> = ground_truth()
        .iter()
        .map(|f| f.iter().map(|g| g.1).collect())
        .collect();
    let r = |c: &Counts| c.tp as f64 / c.gt as f64;
    let p = |c: &Counts| c.tp as f64 / (c.tp + c.fp) as f64;
    let plain = evaluate(&gt, &detect_all("inference-width=192"), 0.0);
    let tiled = evaluate(
        &gt,
        &detect_all("inference-width=192 tile-columns=2 tile-rows=2"),
        0.0,
    );
    eprintln!(
        "192 px: recall {:.3} precision {:.3}; 192 px + 2x2 tiles: recall {:.3} precision {:.3}",
        r(&plain),
        p(&plain),
        r(&tiled),
        p(&tiled)
    );
    // Measured recall 0.566 -> 0.890, precision 0.821 -> 0.845.
    assert!(r(&tiled) >= r(&plain) + 0.2, "{plain:?} {tiled:?}");
    assert!(r(&tiled) >= 0.8 && p(&tiled) >= 0.8, "{tiled:?}");
}
