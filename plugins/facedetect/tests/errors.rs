//! Bad input gets a clear error naming the file or field, never a panic.

mod common;

use common::*;
use gst::prelude::*;

/// Runs `desc` until error or EOS; returns the error texts posted on the bus.
fn run_pipeline(desc: &str) -> Vec<String> {
    let p = gst::parse::launch(desc).unwrap();
    let bus = p.bus().unwrap();
    let _ = p.set_state(gst::State::Playing);
    let mut out = Vec::new();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Error(e) => {
                out.push(format!("{} | {}", e.error(), e.debug().unwrap_or_default()));
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    p.set_state(gst::State::Null).unwrap();
    out
}

fn photo_pipeline(props: &str) -> String {
    format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! facedetect {props} ! fakesink",
        data("faces/misc/astronaut.png").display()
    )
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sl-errors-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn missing_model_names_the_path_and_how_to_get_it() {
    init();
    let errs = run_pipeline(&photo_pipeline(
        "model=/nonexistent/models/face_detection_yunet_n_dynamic.onnx",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("Cannot load face detection model"),
        "{errs:?}"
    );
    assert!(
        errs[0].contains("/nonexistent/models/face_detection_yunet_n_dynamic.onnx"),
        "{errs:?}"
    );
    assert!(errs[0].contains("sightline models fetch"), "{errs:?}");
}

#[test]
fn unknown_model_name_lists_the_known_ones() {
    init();
    let errs = run_pipeline(&photo_pipeline("model=yunet-xl"));
    assert!(
        errs[0].contains("unknown model 'yunet-xl'") && errs[0].contains("yunet-n"),
        "{errs:?}"
    );
}

#[test]
fn wrong_sha256_is_refused() {
    init();
    // A truncated copy of the real model under its registered file name.
    let dir = tmpdir("sha");
    let real = sightline_core::models::resolve("yunet-n", "yunet-n")
        .unwrap()
        .path;
    let bytes = std::fs::read(real).unwrap();
    let bad = dir.join("face_detection_yunet_n_dynamic.onnx");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let errs = run_pipeline(&photo_pipeline(&format!("model={}", bad.display())));
    assert!(errs[0].contains("sha256"), "{errs:?}");
    assert!(errs[0].contains(bad.to_str().unwrap()), "{errs:?}");
    assert!(errs[0].contains("models.toml expects 104ee26c"), "{errs:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn corrupt_custom_model_is_an_onnx_runtime_error_naming_the_file() {
    init();
    let dir = tmpdir("corrupt");
    let bad = dir.join("my_detector.onnx");
    std::fs::write(&bad, b"this is not an ONNX protobuf").unwrap();
    let errs = run_pipeline(&photo_pipeline(&format!("model={}", bad.display())));
    assert!(
        errs[0].contains("Cannot load model") && errs[0].contains(bad.to_str().unwrap()),
        "{errs:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_model_of_the_wrong_kind_is_refused() {
    init();
    let errs = run_pipeline(&photo_pipeline("model=mobilefacenet"));
    assert!(errs[0].contains("not a YuNet face detector"), "{errs:?}");
}

#[test]
fn unsupported_caps_name_the_format_and_the_fix() {
    init();
    // Linked statically, GStreamer itself refuses the link and names the caps.
    let err = gst::parse::launch("videotestsrc ! video/x-raw,format=YUY2 ! facedetect ! fakesink")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("can't handle caps video/x-raw, format=(string)YUY2"),
        "{err}"
    );
    // Negotiated at run time (appsrc, decodebin): facedetect posts the error.
    let p = gst::parse::launch("appsrc name=src format=time caps=video/x-raw,format=YUY2,width=320,height=240,framerate=25/1 ! facedetect ! fakesink").unwrap();
    let src = p
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut b = gst::Buffer::with_size(320 * 240 * 2).unwrap();
    b.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
    let _ = src.push_buffer(b);
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .expect("an error");
    p.set_state(gst::State::Null).unwrap();
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = e.error().to_string();
    assert!(
        text.contains("Unsupported video format YUY2") && text.contains("videoconvert"),
        "{text}"
    );
}
