//! What `sightline bench capacity` relies on keeps behaviour: the analysis reads the decoder's
//! own I420 frames (no conversion of the whole frame first) and decides exactly as it does on
//! converted BGRx frames, on the RTSP test camera; searching only around known faces between
//! whole-frame scans (`scan-interval`) keeps the decisions.

mod common;

use common::{runner, tmp};
use gst::prelude::*;
use sightline_core::events::{Event, read_jsonl};
use sightline_testkit::{RtspServer, shared_data};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// A still of the face video's first frame, to enrol its person.
fn still(video: &Path, out: &Path) {
    gst::init().unwrap();
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! pngenc snapshot=true ! filesink location=\"{}\"",
        video.display(),
        out.display()
    ))
    .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the still is written");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    p.set_state(gst::State::Null).unwrap();
}

/// The decisions of one branch: faces found per analysed frame (by running time), each
/// recognition decision (a track's label as it changes), and the presence changes, in order.
#[derive(Debug, Default)]
struct Decisions {
    faces: BTreeMap<u64, Vec<[f64; 4]>>,
    labels: Vec<String>,
    similarities: Vec<f64>,
    presence: Vec<String>,
    /// Detections that searched only around known faces (`scan` = `regions`).
    region_scans: usize,
}

fn decisions(events: &[Event], camera: &str) -> Decisions {
    let mut d = Decisions::default();
    let text = |e: &Event, k: &str| e.data[k].as_str().unwrap_or("").to_string();
    for e in events.iter().filter(|e| e.camera == camera) {
        let t = e.running_time_ns.unwrap_or(0);
        match e.kind.as_str() {
            "facedetect" => {
                d.region_scans += usize::from(e.data["scan"] == "regions");
                let boxes = e.data["faces"].as_array().into_iter().flatten();
                let num = |f: &serde_json::Value, k: &str| f[k].as_f64().unwrap_or(f64::NAN);
                d.faces.insert(
                    t,
                    boxes
                        .map(|f| [num(f, "x"), num(f, "y"), num(f, "width"), num(f, "height")])
                        .collect(),
                );
            }
            "facematch" => {
                d.labels.push(format!(
                    "{t}: track {} {} -> {}",
                    e.data["track-id"],
                    text(e, "previous-label"),
                    text(e, "label")
                ));
                d.similarities
                    .push(e.data["similarity"].as_f64().unwrap_or(f64::NAN));
            }
            k if k.starts_with("presence") => d.presence.push(format!(
                "{t}: {k} {} {} {} -> {}",
                text(e, "event"),
                text(e, "identity"),
                text(e, "from"),
                text(e, "to")
            )),
            _ => {}
        }
    }
    d
}

#[test]
fn analysis_of_decoder_i420_frames_decides_as_on_converted_bgrx() {
    let dir = tmp("capacity-i420");
    let video =
        shared_data("video/intel_sample_videos/derived/head-pose-face-detection-male.mjpeg.avi");
    let png = dir.join("still.png");
    still(&video, &png);
    let g = dir.join("g.slg");
    for (name, photo) in [
        ("visitor", png.clone()),
        (
            "Barack Obama",
            shared_data("faces/face_recognition_examples/obama/obama.jpg"),
        ),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_sightline"))
            .args(["gallery", "--file"])
            .arg(&g)
            .args(["enroll", "--name", name])
            .arg(&photo)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let cam = RtspServer::start_video("face", "h264", &video);
    // One decoder, one frame rate cut; the same frames to both branches. Plain queues: every
    // frame of the cut is analysed on both, whatever the machine's load.
    let file = dir.join("both.pipeline");
    let branch = |name: &str, conversion: &str, detect: &str| {
        format!(
            "t. ! queue ! {conversion} ! sightlinefacedetect camera={name} idle-seconds=0 {detect} ! \
             facematch camera={name} gallery=\"{}\" ! \
             presence group={name} camera={name} grace-seconds=1 absent-seconds=2 ! fakesink sync=false\n",
            g.display()
        )
    };
    std::fs::write(
        &file,
        format!(
            "uridecodebin3 uri={} ! videorate drop-only=true max-rate=5 ! tee name=t\n{}{}{}",
            cam.url(),
            branch("bgrx", "videoconvert ! video/x-raw,format=BGRx", ""),
            branch("i420", "capsfilter caps=video/x-raw,format=I420", ""),
            branch(
                "regions",
                "capsfilter caps=video/x-raw,format=I420",
                "scan-interval=3"
            ),
        ),
    )
    .unwrap();
    let ev = dir.join("events.jsonl");
    let o = runner(&file, &[], &[])
        .args(["--http", "", "--duration", "8", "--events"])
        .arg(&ev)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let events = read_jsonl(&ev).unwrap();
    let (bgrx, i420) = (decisions(&events, "bgrx"), decisions(&events, "i420"));
    eprintln!("bgrx: {bgrx:?}\ni420: {i420:?}");
    // Frames analysed by both (the run stops both at one moment, so one may have one more).
    let common: Vec<&u64> = bgrx
        .faces
        .keys()
        .filter(|t| i420.faces.contains_key(t))
        .collect();
    assert!(
        common.len() >= 20,
        "{} frames analysed by both\n{err}",
        common.len()
    );
    // The same faces, boxes within 3 px: the two read slightly different pixels (videoconvert
    // converts in fixed point with its own chroma siting; the detector's resampler converts
    // in float), as a JPEG decoded by two libraries does (tests/yunet_reference.rs: 3.5 px).
    for t in &common {
        let (a, b) = (&bgrx.faces[t], &i420.faces[t]);
        assert_eq!(a.len(), b.len(), "faces in the frame at {t} ns");
        for (a, b) in a.iter().zip(b) {
            assert!(
                a.iter().zip(b).all(|(a, b)| (a - b).abs() <= 3.0),
                "frame at {t} ns: {a:?} against {b:?}"
            );
        }
    }
    assert!(
        bgrx.labels.iter().any(|l| l.ends_with("-> visitor")),
        "the enrolled person was recognised: {bgrx:?}"
    );
    assert_eq!(bgrx.labels, i420.labels);
    for (a, b) in bgrx.similarities.iter().zip(&i420.similarities) {
        assert!((a - b).abs() < 0.02, "similarity {a} against {b}");
    }
    assert!(
        !bgrx.presence.is_empty(),
        "presence decided something\n{err}"
    );
    assert_eq!(bgrx.presence, i420.presence);

    // The whole frame on every 3rd analysed frame, around the face between: the same faces on
    // every frame both analysed (boxes as core/tests/region_detect.rs measures: as close as
    // the detector is to itself a few pixels over), the same decisions.
    let regions = decisions(&events, "regions");
    let mut both = 0;
    for (t, a) in &i420.faces {
        if let Some(b) = regions.faces.get(t) {
            assert_eq!(a.len(), b.len(), "faces in the frame at {t} ns");
            both += 1;
        }
    }
    assert!(both >= 20, "{both} frames analysed by both");
    // Two of every three detections searched regions only; without scan-interval none did.
    assert!(
        regions.region_scans * 2 >= both,
        "{} region scans",
        regions.region_scans
    );
    assert_eq!(i420.region_scans, 0);
    assert_eq!(regions.labels, i420.labels);
    for (a, b) in regions.similarities.iter().zip(&i420.similarities) {
        assert!((a - b).abs() < 0.05, "similarity {a} against {b}");
    }
    assert_eq!(regions.presence, i420.presence);
}
