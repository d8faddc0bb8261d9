//! Helpers shared by the facedetect tests: real images from ../shared/data, decoded by
//! GStreamer into the format a test asks for.
#![allow(dead_code)]

use gst::prelude::*;
use std::path::PathBuf;
use std::sync::Once;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("gst init");
        gstfacedetect::plugin_register_static().expect("register facedetect");
        assert!(
            std::env::var_os("ORT_DYLIB_PATH").is_some(),
            "ORT_DYLIB_PATH is not set: run the tests through scripts/test (it installs ONNX Runtime)"
        );
    });
}

/// `../shared/data` (or `$SIGHTLINE_SHARED/data`).
pub fn data_dir() -> PathBuf {
    let shared = std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    shared.join("data")
}

pub fn data(rel: &str) -> PathBuf {
    let p = data_dir().join(rel);
    assert!(p.is_file(), "test data {} is missing", p.display());
    p
}

/// faces/identities.json
pub fn identities() -> serde_json::Value {
    let text = std::fs::read_to_string(data("faces/identities.json")).expect("identities.json");
    serde_json::from_str(&text).expect("identities.json parses")
}

/// Decodes the first frame of `path` as `format` (optionally scaled to `width`).
pub fn decode(
    path: &std::path::Path,
    format: &str,
    width: Option<u32>,
) -> (gst::Buffer, gst::Caps) {
    decode_n(path, format, width, 1).remove(0)
}

/// Decodes up to `n` frames of `path` as `format` (optionally scaled to `width`).
pub fn decode_n(
    path: &std::path::Path,
    format: &str,
    width: Option<u32>,
    n: usize,
) -> Vec<(gst::Buffer, gst::Caps)> {
    decode_filtered(path, "", format, width, n)
}

/// As [`decode_n`], with `filter` (e.g. `videobalance brightness=-0.8 ! `) applied first.
pub fn decode_filtered(
    path: &std::path::Path,
    filter: &str,
    format: &str,
    width: Option<u32>,
    n: usize,
) -> Vec<(gst::Buffer, gst::Caps)> {
    let scale = width
        .map(|w| format!("videoscale ! video/x-raw,width={w},pixel-aspect-ratio=1/1 ! "))
        .unwrap_or_default();
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! {filter}{scale}videoconvert ! video/x-raw,format={format} ! appsink name=sink sync=false",
        path.display()
    );
    let p = gst::parse::launch(&desc).expect("decode pipeline");
    let sink = p
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).expect("decode playing");
    let mut out = Vec::new();
    while out.len() < n {
        let Ok(s) = sink.pull_sample() else { break };
        out.push((s.buffer_owned().unwrap(), s.caps_owned().unwrap()));
    }
    p.set_state(gst::State::Null).unwrap();
    assert!(!out.is_empty(), "no frame decoded from {}", path.display());
    out
}

/// A harness around a new `facedetect` with properties set and a bus attached.
pub fn harness(props: &[(&str, &dyn ToValue)]) -> (gst_check::Harness, gst::Bus) {
    let mut h = gst_check::Harness::new("facedetect");
    let el = h.element().unwrap();
    for (k, v) in props {
        el.set_property_from_value(k, &v.to_value());
    }
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    h.play();
    let _ = &mut h;
    (h, bus)
}

/// Pushes one buffer and returns what comes out.
pub fn run_one(h: &mut gst_check::Harness, buf: gst::Buffer, caps: &gst::Caps) -> gst::Buffer {
    h.set_src_caps(caps.clone());
    h.push(buf).expect("push");
    h.pull().expect("pull")
}

/// Element messages of the given structure name waiting on `bus`.
pub fn messages(bus: &gst::Bus, name: &str) -> Vec<gst::Structure> {
    let mut v = Vec::new();
    while let Some(m) = bus.pop() {
        if let Some(s) = m.structure()
            && s.name() == name
        {
            v.push(s.to_owned());
        }
    }
    v
}

/// Error and warning texts waiting on `bus`.
pub fn errors(bus: &gst::Bus) -> Vec<String> {
    let mut v = Vec::new();
    while let Some(m) = bus.pop() {
        match m.view() {
            gst::MessageView::Error(e) => v.push(format!(
                "ERROR {} | {}",
                e.error(),
                e.debug().unwrap_or_default()
            )),
            gst::MessageView::Warning(w) => v.push(format!(
                "WARNING {} | {}",
                w.error(),
                w.debug().unwrap_or_default()
            )),
            _ => {}
        }
    }
    v
}
