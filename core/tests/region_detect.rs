//! Searching only around the faces of the previous detection (`FaceDetector::detect_around`,
//! facedetect's `scan-interval`) finds the faces a whole-frame detection finds there, with the
//! same boxes, on every frame of the shared face videos and on the group photos; and that
//! searching only what changed and around the faces (`motion-scan`) finds every face too.

use gst::prelude::*;
use sightline_core::changes::{self, ChangeMap};
use sightline_core::detect::{DetectParams, FaceDetector, Searched};
use sightline_core::inference::{Engine, EngineOptions};
use sightline_core::models;
use sightline_core::postprocess::Detection;
use sightline_core::preprocess::{ImageView, PixelFormat, Plane};
use sightline_core::video::DecodedImage;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

fn shared() -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// A decoded frame, packed BGR.
type Frame = DecodedImage;

/// Every frame of a video, packed BGR.
fn frames(path: &Path) -> Vec<Frame> {
    gst::init().unwrap();
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=BGR ! fakesink name=sink",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let out = Arc::new(Mutex::new(Vec::new()));
    let pad = p.by_name("sink").unwrap().static_pad("sink").unwrap();
    let o = out.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let caps = pad.current_caps().unwrap();
        let vi = gst_video::VideoInfo::from_caps(&caps).unwrap();
        let buf = info.buffer().unwrap();
        let map = buf.map_readable().unwrap();
        o.lock().unwrap().push(Frame {
            data: map.as_slice().to_vec(),
            width: vi.width() as usize,
            height: vi.height() as usize,
            stride: vi.stride()[0] as usize,
        });
        gst::PadProbeReturn::Ok
    });
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS within 60 s");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    p.set_state(gst::State::Null).unwrap();
    std::mem::take(&mut *out.lock().unwrap())
}

fn detector() -> FaceDetector {
    let model = models::resolve("yunet-n", "yunet-n").expect("model (run scripts/setup)");
    FaceDetector::new(Engine::shared(&model, &EngineOptions::default()).unwrap())
        .expect("engine (ORT_DYLIB_PATH)")
}

/// The face of `among` that overlaps `d` most, with that IoU.
fn best(d: &Detection, among: &[Detection]) -> Option<(f32, Detection)> {
    among
        .iter()
        .map(|o| (o.iou(d), o.clone()))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// The shared face videos: heads turning and tilting, four small faces, two people walking in.
const FACE_VIDEOS: [&str; 4] = [
    "head-pose-face-detection-male.mjpeg.avi",
    "head-pose-face-detection-female.mjpeg.avi",
    "classroom.mjpeg.avi",
    "face-demographics-walking.mjpeg.avi",
];

/// Faces of `found` that the whole-frame detection `whole` does not have (IoU < 0.5).
fn extra(found: &[Detection], whole: &[Detection]) -> usize {
    found
        .iter()
        .filter(|a| best(a, whole).is_none_or(|(iou, _)| iou < 0.5))
        .count()
}

#[derive(Default, Debug)]
struct Tally {
    /// Faces of the whole-frame detection of frame t that were already there at t-1.
    followed: usize,
    /// ... that the region search, told the faces of t-1, found again (IoU >= 0.8).
    found: usize,
    /// Faces the region search gave that the whole frame does not have.
    extra: usize,
    ious: Vec<f32>,
    /// The detector's own jitter: IoU of each whole-frame face with the whole-frame detection
    /// of the same frame shifted by a few pixels (a CNN is not shift-invariant; a region's
    /// origin is such a shift).
    shifted: Vec<f32>,
}

/// The whole-frame detection of `f` without its first 7 columns and 5 rows, in `f`'s pixels.
fn detect_shifted(det: &mut FaceDetector, f: &Frame, p: &DetectParams) -> Vec<Detection> {
    let (dx, dy) = (7, 5);
    let view = ImageView::new(
        PixelFormat::Bgr,
        f.width - dx,
        f.height - dy,
        &[Plane {
            data: &f.data[dy * f.stride + dx * 3..],
            stride: f.stride,
        }],
    )
    .unwrap();
    let mut dets = det.detect(&view, p).unwrap();
    for d in dets.iter_mut() {
        d.translate(dx as f32, dy as f32);
    }
    dets
}

/// Frame by frame: the whole-frame detection of frame t against the search around the
/// whole-frame faces of t-1.
fn follow(det: &mut FaceDetector, frames: &[Frame], t: &mut Tally) {
    let p = DetectParams::default();
    let mut prev: Vec<Detection> = Vec::new();
    for f in frames {
        let img = f.view().unwrap();
        let whole = det.detect(&img, &p).unwrap();
        let shifted = detect_shifted(det, f, &p);
        t.shifted
            .extend(whole.iter().filter_map(|w| best(w, &shifted)).map(|b| b.0));
        if !prev.is_empty() {
            let (around, searched) = det.detect_around(&img, &p, &prev).unwrap();
            assert!(
                matches!(searched, Searched::Regions(n) if n >= 1),
                "{searched:?}"
            );
            for w in &whole {
                // A face that was there before (it overlaps one of t-1): it must be found.
                if best(w, &prev).is_some_and(|(iou, _)| iou > 0.3) {
                    t.followed += 1;
                    if let Some((iou, a)) = best(w, &around)
                        && iou >= 0.8
                    {
                        t.found += 1;
                        t.ious.push(iou);
                        assert!((a.score - w.score).abs() < 0.1, "{a:?} vs {w:?}");
                    }
                }
            }
            t.extra += extra(&around, &whole);
        }
        prev = whole;
    }
}

#[test]
fn faces_are_found_again_around_where_they_were() {
    let mut det = detector();
    let dir = shared().join("data/video/intel_sample_videos/derived");
    let mut t = Tally::default();
    for v in FACE_VIDEOS {
        let before = (t.followed, t.found, t.extra);
        follow(&mut det, &frames(&dir.join(v)), &mut t);
        eprintln!(
            "{v}: {} followed, {} found again, {} extra",
            t.followed - before.0,
            t.found - before.1,
            t.extra - before.2
        );
    }
    let pct = |v: &mut Vec<f32>, q: usize| {
        v.sort_by(f32::total_cmp);
        v[v.len() * q / 100]
    };
    let (median, p10) = (pct(&mut t.ious, 50), pct(&mut t.ious, 10));
    let (jitter_median, jitter_p10) = (pct(&mut t.shifted, 50), pct(&mut t.shifted, 10));
    eprintln!(
        "{} followed, {} found again, {} extra; IoU with the whole frame: region search median {median:.3} p10 {p10:.3}, whole frame shifted 7,5 px median {jitter_median:.3} p10 {jitter_p10:.3}",
        t.followed, t.found, t.extra
    );
    // 4 videos (head turning and tilting, four small faces, two people walking closer): some
    // hundred faces that were there a frame before.
    assert!(t.followed >= 150, "{} faces followed", t.followed);
    // All but ~2 % found again (a face whose score sits at the threshold may drop out on one
    // side only; measured: 327 of 327).
    assert!(
        t.found * 100 >= t.followed * 98,
        "{} of {} found again",
        t.found,
        t.followed
    );
    // The boxes differ from the whole frame's no more than the whole frame's differ from
    // themselves when the frame moves by a few pixels (measured: median 0.929 vs 0.930, p10
    // 0.872 vs 0.886; the small classroom faces jitter most): the search adds no error of its
    // own beyond that noise (0.02 on the median, 0.04 on the tail).
    assert!(
        median >= jitter_median - 0.02,
        "median IoU {median} vs {jitter_median}"
    );
    assert!(p10 >= jitter_p10 - 0.04, "p10 IoU {p10} vs {jitter_p10}");
    // No face the whole frame does not have, beyond the same threshold flicker.
    assert!(t.extra * 100 <= t.followed * 2, "{} extra faces", t.extra);
}

#[test]
fn group_photos_give_the_same_faces_from_their_regions() {
    gst::init().unwrap();
    let mut det = detector();
    let p = DetectParams::default();
    let faces = shared().join("data/faces");
    // Mean landmark distance, in face widths.
    let lm = |a: &Detection, b: &Detection| {
        let (la, lb) = (a.landmarks.unwrap(), b.landmarks.unwrap());
        (0..5)
            .map(|k| ((la[k][0] - lb[k][0]).powi(2) + (la[k][1] - lb[k][1]).powi(2)).sqrt())
            .sum::<f32>()
            / 5.0
            / b.width()
    };
    let mut n = 0;
    for rel in [
        "face_recognition_examples/group/obama_and_biden.jpg",
        "face_recognition_examples/group/two_people.jpg",
    ] {
        let f = sightline_core::video::decode_image(&faces.join(rel)).unwrap();
        let view = f.view().unwrap();
        let whole = det.detect(&view, &p).unwrap();
        let (around, searched) = det.detect_around(&view, &p, &whole).unwrap();
        // Large faces, but the regions still cost less than the frame.
        assert!(
            matches!(searched, Searched::Regions(n) if n >= 1),
            "{searched:?}"
        );
        let shifted = detect_shifted(&mut det, &f, &p);
        assert_eq!(around.len(), whole.len(), "{rel}: {around:?} vs {whole:?}");
        for w in &whole {
            let (iou, a) = best(w, &around).unwrap();
            let (jitter, s) = best(w, &shifted).unwrap();
            let (err, jitter_err) = (lm(&a, w), lm(&s, w));
            eprintln!(
                "{rel}: IoU {iou:.3} (shifted {jitter:.3}), landmarks {err:.3} (shifted {jitter_err:.3}) face widths"
            );
            // The same face. Large faces lose context beyond the region's margin (one face
            // width): measured IoU 0.83-0.96 (shifted 0.90-0.98) and landmarks 0.013-0.030
            // face widths off (shifted 0.010-0.027); an aligned 112 px crop then moves by at
            // most ~5 px at 0.05.
            assert!(iou >= 0.8, "{rel}: {a:?} vs {w:?}");
            assert!(err <= 0.05, "{rel}: landmarks {err} vs {jitter_err}");
            n += 1;
        }
        // Nothing known: nothing searched, nothing found.
        assert_eq!(
            det.detect_around(&view, &p, &[]).unwrap(),
            (vec![], Searched::Regions(0))
        );
    }
    assert!(n >= 4, "{n} faces");
}

#[derive(Default, Debug)]
struct ChangeTally {
    /// Faces of the whole-frame detections.
    faces: usize,
    /// ... that the scan of what changed (and around the faces it found a frame before)
    /// found too (IoU >= 0.5).
    found: usize,
    /// Faces it gave that the whole frame does not have.
    extra: usize,
    /// Scans after the first, and the share of the frame they searched, summed.
    scans: usize,
    searched: f32,
}

/// facedetect's `motion-scan` on every frame (no whole-frame scan after the first, stricter
/// than the element's every 10th): the change map and the regions around the faces the scan
/// itself found a frame before, against the whole-frame detection of each frame.
fn scan_changes(det: &mut FaceDetector, frames: &[Frame], t: &mut ChangeTally) {
    let p = DetectParams::default();
    let mut map = ChangeMap::default();
    let mut known: Vec<Detection> = Vec::new();
    for f in frames {
        let img = f.view().unwrap();
        let whole = det.detect(&img, &p).unwrap();
        map.measure(&img);
        let (dets, regions) = if map.ready() {
            det.detect_around_changes(&img, &p, &known, &map.changed(changes::THRESHOLD))
                .unwrap()
        } else {
            (whole.clone(), None)
        };
        match &regions {
            None => map.searched_all(),
            Some(r) => {
                map.searched(r);
                t.scans += 1;
                t.searched +=
                    r.iter().map(|r| r.w * r.h).sum::<f32>() / (f.width * f.height) as f32;
            }
        }
        t.faces += whole.len();
        t.found += whole
            .iter()
            .filter(|w| best(w, &dets).is_some_and(|(iou, _)| iou >= 0.5))
            .count();
        t.extra += extra(&dets, &whole);
        known = dets;
    }
}

#[test]
fn scanning_what_changed_finds_the_faces_of_the_whole_frame() {
    let mut det = detector();
    let dir = shared().join("data/video/intel_sample_videos/derived");
    let mut all = ChangeTally::default();
    for v in FACE_VIDEOS {
        let mut t = ChangeTally::default();
        scan_changes(&mut det, &frames(&dir.join(v)), &mut t);
        eprintln!(
            "{v}: {} of {} faces found, {} extra; {} scans searched {:.2} of the frame on average",
            t.found,
            t.faces,
            t.extra,
            t.scans,
            t.searched / t.scans.max(1) as f32
        );
        all.faces += t.faces;
        all.found += t.found;
        all.extra += t.extra;
        all.scans += t.scans;
        all.searched += t.searched;
    }
    let share = all.searched / all.scans as f32;
    eprintln!(
        "{} of {} faces found, {} extra; {} scans searched {share:.2} of the frame on average",
        all.found, all.faces, all.extra, all.scans
    );
    assert!(all.faces >= 150, "{} faces", all.faces);
    // Every face, new ones included (two people walk in, heads turn), but for the threshold
    // flicker of a face scored at the threshold on one side only (~2 %, as above).
    assert!(
        all.found * 100 >= all.faces * 98,
        "{} of {} found",
        all.found,
        all.faces
    );
    assert!(
        all.extra * 100 <= all.faces * 2,
        "{} extra faces",
        all.extra
    );
    // And for less than the whole frame: these are fixed cameras.
    assert!(share < 0.8, "searched {share:.2} of the frame");
}
