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

/// Which element a name resolves to with registry `reg` and, when `plugins` is given, our
/// plugin directory on GST_PLUGIN_PATH.
fn resolves_to(
    name: &str,
    reg: &std::path::Path,
    plugins: Option<&std::path::Path>,
) -> &'static str {
    let mut cmd = Command::new("gst-inspect-1.0");
    cmd.arg(name)
        .env("GST_REGISTRY_1_0", reg)
        .env_remove("GST_PLUGIN_PATH")
        .env_remove("GST_PLUGIN_PATH_1_0");
    if let Some(p) = plugins {
        cmd.env("GST_PLUGIN_PATH", p);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        "none"
    } else if text.contains("Sightline face detection") {
        "Sightline"
    } else if text.contains("opencv") {
        "OpenCV"
    } else {
        panic!("{name} is neither: {text}")
    }
}

#[test]
fn the_names_resolve_by_the_rule_on_a_fresh_registry_and_after_rescans() {
    init();
    // The rule (docs/elements.md): `sightlinefacedetect` is always ours; the plugin file
    // registers the alias `facedetect` only where OpenCV's plugin is not installed, so the
    // name never depends on which plugin a registry happened to scan last.
    let opencv = std::path::Path::new("/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstopencv.so")
        .is_file()
        || Command::new("gst-inspect-1.0")
            .arg("opencv")
            .output()
            .is_ok_and(|o| o.status.success());
    let expected = if opencv { "OpenCV" } else { "Sightline" };
    let dir = std::env::temp_dir().join(format!("sl-names-{}", std::process::id()));
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let lib = plugins.join("libgstfacedetect.so");
    std::fs::copy(plugin_dir().join("libgstfacedetect.so"), &lib).unwrap();
    let reg = dir.join("registry.bin");
    let check = |when: &str| {
        assert_eq!(
            resolves_to("sightlinefacedetect", &reg, Some(&plugins)),
            "Sightline",
            "{when}"
        );
        assert_eq!(
            resolves_to("facedetect", &reg, Some(&plugins)),
            expected,
            "{when}: opencv installed: {opencv}"
        );
    };
    check("fresh registry");
    check("cached registry");
    // A scan without our plugin drops it; the next one finds it again.
    let without = resolves_to("facedetect", &reg, None);
    assert_eq!(without, if opencv { "OpenCV" } else { "none" });
    check("rescan after the plugin was away");
    // A changed plugin file is scanned again (its plugin_init runs anew).
    let f = std::fs::File::options().append(true).open(&lib).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    check("rescan of a changed plugin file");
    std::fs::remove_dir_all(dir).unwrap();
}
