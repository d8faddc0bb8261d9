//! Bad configuration of reidmap: a clear error naming the file or field, before any frame.

mod common;

use common::temp_dir;
use gst::prelude::*;
use std::path::Path;

/// Starts `videotestsrc ! reidmap <props> ! fakesink`; returns the error text and debug info.
fn start_error(props: &str) -> String {
    gst::init().unwrap();
    gstreidmap::plugin_register_static().unwrap();
    let p = gst::parse::launch(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=BGRx,width=320,height=240 ! reidmap {props} ! fakesink"
    ))
    .unwrap();
    let _ = p.set_state(gst::State::Playing);
    let bus = p.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .expect("an error or EOS");
    p.set_state(gst::State::Null).unwrap();
    match msg.view() {
        gst::MessageView::Error(e) => format!("{} {:?}", e.error(), e.debug()),
        _ => panic!("{props}: started without an error"),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn bad_calibrations_are_named_in_the_error() {
    let dir = temp_dir("reidmap-errors");
    let e = start_error("");
    assert!(e.contains("calibration"), "{e}");
    let missing = dir.join("nowhere.json").display().to_string();
    let e = start_error(&format!("calibration={missing}"));
    assert!(e.contains(&missing) && e.contains("Cannot read"), "{e}");
    let cases = [
        (
            "truncated.json",
            r#"{"units": "m", "points": [ {"image": [1,"#,
            "line 1",
        ),
        (
            "collinear.json",
            r#"{"points": [{"image": [0,0], "map": [0,0]}, {"image": [10,10], "map": [1,0]},
                           {"image": [20,20], "map": [1,1]}, {"image": [30,30], "map": [0,1]}]}"#,
            "image points are collinear",
        ),
        (
            "three.json",
            r#"{"points": [{"image": [0,0], "map": [0,0]}, {"image": [10,0], "map": [1,0]},
                           {"image": [10,10], "map": [1,1]}]}"#,
            "at least 4 point pairs",
        ),
        (
            "singular.json",
            r#"{"homography": [[1,2,3],[2,4,6],[0,0,1]]}"#,
            "singular",
        ),
        (
            "overflow.json",
            r#"{"homography": [[1e999,0,0],[0,1,0],[0,0,1]]}"#,
            "number out of range",
        ),
        ("empty.json", r#"{"units": "m"}"#, "needs \"points\""),
        (
            "distortion.json",
            r#"{"homography": [[1,0,0],[0,1,0],[0,0,1]], "distortion": {"k1": 0.1}}"#,
            "camera-matrix",
        ),
    ];
    for (name, text, want) in cases {
        let path = write(&dir, name, text);
        let e = start_error(&format!("calibration={path}"));
        assert!(
            e.contains("Bad calibration") && e.contains(&path) && e.contains(want),
            "{name}: {e}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_model_and_a_second_redis_for_one_map_are_errors() {
    let dir = temp_dir("reidmap-errors-2");
    let cal = write(
        &dir,
        "ok.json",
        r#"{"homography": [[0.01,0,0],[0,0.01,0],[0,0,1]]}"#,
    );
    let model = dir.join("osnet.onnx").display().to_string();
    let e = start_error(&format!("calibration={cal} reid-model={model}"));
    assert!(e.contains(&model), "{e}");
    // One map is shared through one Redis; a second URL for it is a configuration error.
    gst::init().unwrap();
    gstreidmap::plugin_register_static().unwrap();
    let first = gst::ElementFactory::make("reidmap")
        .property("calibration", &cal)
        .property("map", "one-redis")
        .property("redis-url", "redis://127.0.0.1:1")
        .build()
        .unwrap();
    first.set_state(gst::State::Paused).unwrap();
    let e = start_error(&format!(
        "calibration={cal} map=one-redis redis-url=redis://127.0.0.1:2"
    ));
    assert!(e.contains("one map, one Redis"), "{e}");
    first.set_state(gst::State::Null).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
