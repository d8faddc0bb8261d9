//! The GstAnalytics form of facedetect's output, read by GStreamer's own consumer:
//! `objectdetectionoverlay` (GStreamer >= 1.24) draws our faces. Built only with the
//! `analytics` feature (scripts/test-debian13 runs it on Debian 13's GStreamer 1.26).
#![cfg(feature = "analytics")]

mod common;

use common::*;
use gst::prelude::*;
use std::sync::{Arc, Mutex};

#[test]
fn objectdetectionoverlay_draws_our_boxes_on_a_real_photo() {
    init();
    if gst::ElementFactory::find("objectdetectionoverlay").is_none() {
        panic!("objectdetectionoverlay (gst-plugins-bad >= 1.24) is not installed");
    }
    // t1.jpg: six faces (plugins/facedetect/tests/tools.rs).
    let photo = data("faces/misc/t1.jpg");
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! jpegdec ! videoconvert ! video/x-raw,format=BGRx ! \
         sightlinefacedetect inference-width=0 ! objectdetectionoverlay name=ov ! \
         appsink name=sink sync=false",
        photo.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    // The frame as it enters the overlay, to compare with what leaves it.
    let before: Arc<Mutex<Vec<u8>>> = Arc::default();
    let b2 = before.clone();
    p.by_name("ov")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                *b2.lock().unwrap() = b.map_readable().unwrap().to_vec();
            }
            gst::PadProbeReturn::Ok
        });
    let sink = p
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let sample = sink.pull_sample().expect("a frame");
    p.set_state(gst::State::Null).unwrap();
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let (w, stride) = (info.width() as usize, info.stride()[0] as usize);
    let h = info.height() as usize;
    let buf = sample.buffer().unwrap();
    let after = buf.map_readable().unwrap().to_vec();
    let before = before.lock().unwrap().clone();
    assert_eq!(before.len(), after.len());
    let changed = |x: usize, y: usize| {
        let o = y * stride + x * 4;
        before[o..o + 3] != after[o..o + 3]
    };
    // Our ROI metas and the relation meta's objects are the same faces (paired by id).
    let rois = sightline_core::meta::read_rois(buf);
    assert_eq!(rois.len(), 6, "{rois:?}");
    let objects = sightline_core::glue::analytics::read_objects(buf);
    assert_eq!(objects.len(), 6);
    for (r, o) in rois.iter().zip(&objects) {
        assert_eq!((r.id, r.rect, r.roi_type.as_str()), (o.id, o.rect, "face"));
    }
    // Each box's outline is drawn: most pixels of a 2-pixel band on its edges changed.
    for r in &rois {
        let (x0, y0, bw, bh) = (
            r.rect.0 as usize,
            r.rect.1 as usize,
            r.rect.2 as usize,
            r.rect.3 as usize,
        );
        let (x1, y1) = ((x0 + bw).min(w - 1), (y0 + bh).min(h - 1));
        let mut band = Vec::new();
        for x in x0..=x1 {
            for d in 0..2 {
                band.push((x, (y0 + d).min(h - 1)));
                band.push((x, y1.saturating_sub(d)));
            }
        }
        for y in y0..=y1 {
            for d in 0..2 {
                band.push(((x0 + d).min(w - 1), y));
                band.push((x1.saturating_sub(d), y));
            }
        }
        let hit = band.iter().filter(|&&(x, y)| changed(x, y)).count();
        assert!(
            hit * 2 > band.len(),
            "box {:?}: {hit} of {} outline pixels drawn",
            r.rect,
            band.len()
        );
    }
    // Far from every box (label text sits next to a box) nothing is drawn.
    let margin = 40;
    let near = |x: usize, y: usize| {
        rois.iter().any(|r| {
            let (x0, y0) = (r.rect.0 as usize, r.rect.1 as usize);
            let (x1, y1) = (x0 + r.rect.2 as usize, y0 + r.rect.3 as usize);
            x + margin >= x0 && x <= x1 + margin && y + margin >= y0 && y <= y1 + margin
        })
    };
    let far: Vec<(usize, usize)> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| !near(x, y))
        .collect();
    let drawn_far = far.iter().filter(|&&(x, y)| changed(x, y)).count();
    assert!(!far.is_empty());
    assert_eq!(drawn_far, 0, "{drawn_far} pixels drawn far from every face");
}
