//! facematch as an operator meets it: gst-inspect-1.0, and gst-launch-1.0 with both plugins
//! loaded from GST_PLUGIN_PATH into one process (each plugin has its own copy of the core,
//! so their GTypes must not clash).

use std::process::Command;

fn plugin_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    for lib in ["libgstfacedetect.so", "libgstfacematch.so"] {
        assert!(
            dir.join(lib).is_file(),
            "build the plugins first (cargo build): {lib}"
        );
    }
    dir
}

fn tool(name: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(name)
        .args(args)
        .env("GST_PLUGIN_PATH", plugin_dir())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn gst_inspect_documents_properties_and_the_licence_of_w600k() {
    let (ok, text) = tool("gst-inspect-1.0", &["facematch"]);
    assert!(ok, "{text}");
    for p in [
        "model",
        "gallery",
        "redis-url",
        "gallery-key",
        "threshold",
        "reembed-interval",
        "min-face-size",
        "attach-embedding",
        "execution-provider",
    ] {
        assert!(text.contains(&format!("  {p}")), "{p} missing: {text}");
    }
    assert!(text.contains("NON-COMMERCIAL"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn both_plugins_in_one_gst_launch_process() {
    let photo = std::env::var_os("SIGHTLINE_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
        })
        .join("data/faces/misc/t1.jpg");
    let (ok, text) = tool(
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
            "video/x-raw,format=BGRx",
            "!",
            "sightlinefacedetect",
            "!",
            "facematch",
            "camera=hall",
            "!",
            "fakesink",
        ],
    );
    assert!(ok && !text.contains("panicked"), "{text}");
    // Empty gallery: all six faces are strangers, each decided once.
    let decided = text
        .lines()
        .filter(|l| l.contains("(element): facematch,") && l.contains("label=(string)unknown"))
        .count();
    assert_eq!(decided, 6, "{text}");
}

/// Runs one gst-launch process (one "node") on `photo` with facematch following `url`;
/// returns the unknown ids it posted.
fn node_unknown_ids(photo: &std::path::Path, url: &str) -> Vec<String> {
    let (ok, text) = tool(
        "gst-launch-1.0",
        &[
            "-m",
            "filesrc",
            &format!("location={}", photo.display()),
            "!",
            "decodebin",
            "!",
            "videoconvert",
            "!",
            "video/x-raw,format=BGRx",
            "!",
            "sightlinefacedetect",
            "!",
            "facematch",
            &format!("redis-url={url}"),
            "!",
            "fakesink",
        ],
    );
    assert!(ok, "{text}");
    text.lines()
        .filter(|l| l.contains("(element): facematch,"))
        .filter_map(|l| l.split("unknown-id=(string)").nth(1))
        .map(|rest| rest.split([',', ' ']).next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_stranger_keeps_one_unknown_id_across_nodes_through_redis() {
    let redis = sightline_testkit::RedisServer::start(&[]);
    let url = redis.url(None);
    let faces = std::env::var_os("SIGHTLINE_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
        })
        .join("data/faces");
    // Node A and node B (separate processes) see two different photos of the same stranger.
    let a = node_unknown_ids(
        &faces.join("face_recognition_examples/obama/obama.jpg"),
        &url,
    );
    let b = node_unknown_ids(
        &faces.join("face_recognition_examples/obama/obama2.jpg"),
        &url,
    );
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a, b, "same stranger, same id on both nodes");
    // Another stranger on node B gets another id.
    let c = node_unknown_ids(
        &faces.join("face_recognition_examples/biden/biden.jpg"),
        &url,
    );
    assert_eq!(c.len(), 1);
    assert_ne!(c, a);
}
