//! analyticsoverlay draws what facedetect found, and blurs unknown faces in privacy mode.

mod common;

use common::*;
use gst::prelude::*;
use sightline_core::meta::read_rois;

/// Sum of absolute horizontal differences of the green channel inside a rectangle (BGRx):
/// a measure of detail.
fn detail(buf: &gst::BufferRef, stride: usize, r: (u32, u32, u32, u32)) -> u64 {
    let map = buf.map_readable().unwrap();
    let (x, y, w, h) = (r.0 as usize, r.1 as usize, r.2 as usize, r.3 as usize);
    let mut sum = 0u64;
    for yy in y + h / 4..y + 3 * h / 4 {
        for xx in x + w / 4..x + 3 * w / 4 {
            let a = map[yy * stride + xx * 4 + 1] as i64;
            let b = map[yy * stride + (xx + 1) * 4 + 1] as i64;
            sum += (a - b).unsigned_abs();
        }
    }
    sum
}

fn detect_and_overlay(privacy: &str, mark_unknown: &[usize]) -> (gst::Buffer, gst::Buffer, usize) {
    let (buf, caps) = decode(&data("faces/misc/t1.jpg"), "BGRx", None);
    let stride = gst_video::VideoInfo::from_caps(&caps).unwrap().stride()[0] as usize;
    let (mut h, _bus) = harness(&[("inference-width", &0u32)]);
    let mut detected = run_one(&mut h, buf.clone(), &caps);
    // What facematch will write: a `recognition` param on some faces.
    {
        let b = detected.make_mut();
        for (i, mut m) in b
            .iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>()
            .enumerate()
        {
            let label = if mark_unknown.contains(&i) {
                "unknown"
            } else {
                "alice"
            };
            m.add_param(
                gst::Structure::builder("recognition")
                    .field("label", label)
                    .field("identity", label)
                    .field("similarity", 0.7f64)
                    .build(),
            );
        }
    }
    let mut o = gst_check::Harness::new("analyticsoverlay");
    o.element()
        .unwrap()
        .set_property_from_str("privacy", privacy);
    o.play();
    o.set_src_caps(caps);
    o.push(detected.clone()).unwrap();
    (detected, o.pull().unwrap(), stride)
}

#[test]
fn boxes_and_labels_are_drawn_where_the_faces_are() {
    init();
    let (input, out, stride) = detect_and_overlay("none", &[]);
    let rois = read_rois(&out);
    assert_eq!(rois.len(), 6);
    let map = out.map_readable().unwrap();
    let orig = input.map_readable().unwrap();
    for r in &rois {
        let (x, y, _, h) = (
            r.rect.0 as usize,
            r.rect.1 as usize,
            r.rect.2,
            r.rect.3 as usize,
        );
        // Left edge of the box, mid-height: the "known" colour (40, 220, 60) in BGRx.
        let i = (y + h / 2) * stride + x * 4;
        assert_eq!(&map[i..i + 3], &[60, 220, 40], "box edge of {:?}", r.rect);
        // The label sits above the box: pixels changed there.
        let above = (y.saturating_sub(6)) * stride + (x + 2) * 4;
        assert_ne!(
            &map[above..above + 3],
            &orig[above..above + 3],
            "label of {:?}",
            r.rect
        );
    }
}

#[test]
fn privacy_blurs_unknown_faces_only() {
    init();
    let (input, out, stride) = detect_and_overlay("blur-unknown", &[0, 2]);
    let rois = read_rois(&out);
    for (i, r) in rois.iter().enumerate() {
        let before = detail(&input, stride, r.rect);
        let after = detail(&out, stride, r.rect);
        if i == 0 || i == 2 {
            assert!(
                after * 4 < before,
                "face {i} not blurred: {after} vs {before}"
            );
        } else {
            assert!(
                after * 10 >= before * 9,
                "face {i} blurred: {after} vs {before}"
            );
        }
    }
}

#[test]
fn frames_without_rois_pass_untouched() {
    init();
    let (buf, caps) = decode(&data("multicam/meva/frames/G328.png"), "BGRx", Some(640));
    let mut o = gst_check::Harness::new("analyticsoverlay");
    o.play();
    o.set_src_caps(caps);
    o.push(buf.clone()).unwrap();
    let out = o.pull().unwrap();
    assert_eq!(
        out.map_readable().unwrap().as_slice(),
        buf.map_readable().unwrap().as_slice()
    );
}
