//! The plugin as an operator meets it: gst-inspect-1.0 and gst-launch-1.0 -m, with the
//! plugin loaded from GST_PLUGIN_PATH, next to OpenCV's `facedetect` when that is installed.

mod common;

use common::*;
use gst::prelude::*;
use std::process::Command;

fn plugin_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    assert!(
        dir.join("libgstfacedetect.so").is_file(),
        "build the plugin first (cargo build)"
    );
    dir
}

fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn gst_inspect_lists_every_property_with_its_blurb() {
    init();
    let text = tool("gst-inspect-1.0", &["sightlinefacedetect"]);
    assert!(text.contains("Sightline face detection"), "{text}");
    let el = gst::ElementFactory::make("sightlinefacedetect")
        .build()
        .unwrap();
    for p in el.list_properties() {
        if p.owner_type() != el.type_() {
            continue;
        }
        let blurb = p.blurb().unwrap_or_default();
        assert!(blurb.len() > 10, "{} has no real blurb", p.name());
        assert!(text.contains(p.name()), "{} not listed", p.name());
        let start: String = blurb.chars().take(40).collect();
        assert!(
            text.contains(&start),
            "blurb of {} not shown: {start}",
            p.name()
        );
    }
    // Enumerations list their choices.
    assert!(
        text.contains("(0): cpu") && text.contains("(1): cuda"),
        "{text}"
    );
}

#[test]
fn gst_launch_m_prints_the_messages() {
    init();
    let photo = data("faces/misc/t1.jpg");
    let text = tool(
        "gst-launch-1.0",
        &[
            "-m",
            "filesrc",
            &format!("location={}", photo.display()),
            "!",
            "jpegdec",
            "!",
            "videoconvert",
            "!",
            "sightlinefacedetect",
            "camera=hall",
            "inference-width=0",
            "!",
            "fakesink",
        ],
    );
    let line = text
        .lines()
        .find(|l| l.contains("(element): facedetect,"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("camera=(string)hall"), "{line}");
    assert_eq!(line.matches("face\\,\\ x\\=").count(), 6, "{line}");
}

#[test]
fn sightlinefacedetect_is_always_ours_even_next_to_opencv() {
    init();
    let ours = tool("gst-inspect-1.0", &["sightlinefacedetect"]);
    assert!(ours.contains("Sightline face detection"));
    // With gstreamer1.0-opencv installed, the registry holds two `facedetect` features and the
    // plugin registered last wins (docs/elements.md). Report which one this machine resolves.
    let opencv = Command::new("gst-inspect-1.0")
        .arg("opencv")
        .output()
        .is_ok_and(|o| o.status.success());
    let generic = tool("gst-inspect-1.0", &["facedetect"]);
    let winner = if generic.contains("Sightline face detection") {
        "Sightline"
    } else {
        "OpenCV"
    };
    eprintln!("opencv plugin installed: {opencv}; `facedetect` resolves to {winner}'s element");
    if !opencv {
        assert_eq!(winner, "Sightline");
    }
}
