//! `sightlinefacedetect` (alias `facedetect`): detects faces and their five landmarks with YuNet (ONNX Runtime), in place.
//!
//! Each face becomes a `GstVideoRegionOfInterestMeta` (roi_type `face`) with a `detection`
//! param (normalised box, confidence, label, model name) and a `landmarks` param (right eye,
//! left eye, nose, right mouth corner, left mouth corner, in frame pixels). ROI ids are dense
//! within the buffer. A `facedetect` element message (same shape as OpenCV's `facedetect`:
//! `faces` = list of `face` structures with `x y width height`, plus `confidence` and the
//! landmarks) is posted for every frame that ran detection. See docs/METADATA.md.
//!
//! Its documented name is `sightlinefacedetect`; `facedetect` is a compatible alias, by the
//! rule in [`register`] (OpenCV's plugin has an element of that name).
//!
//! ```sh
//! gst-launch-1.0 -m filesrc location=face.jpg ! decodebin ! videoconvert ! \
//!     sightlinefacedetect camera=door ! analyticsoverlay ! videoconvert ! autovideosink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FaceDetect(ObjectSubclass<imp::FaceDetect>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

sightline_core::execution_provider_enum!(ExecutionProvider, "SightlineFaceDetectExecutionProvider");

/// Registers `sightlinefacedetect` (the documented name, always ours) and the alias
/// `facedetect` by a rule, because OpenCV's plugin (`gstreamer1.0-opencv`) registers an
/// element of that name too and GStreamer keeps one feature per name, the plugin scanned
/// last winning, which depends on the registry's history:
///
/// * registered statically (inside Sightline's own tools): always ours;
/// * loaded from a plugin file: ours only where OpenCV's plugin is not installed, so
///   `facedetect` is OpenCV's element wherever OpenCV's plugin is installed, on a fresh
///   registry and after any rescan alike.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    let _ = ExecutionProvider::static_type();
    gst::Element::register(
        Some(plugin),
        "sightlinefacedetect",
        gst::Rank::NONE,
        FaceDetect::static_type(),
    )?;
    if plugin.filename().is_some() && opencv_plugin_installed() {
        return Ok(());
    }
    gst::Element::register(
        Some(plugin),
        "facedetect",
        gst::Rank::NONE,
        FaceDetect::static_type(),
    )
}

/// Whether OpenCV's GStreamer plugin file is in a directory GStreamer scans: the
/// `GST_PLUGIN_PATH`/`GST_PLUGIN_SYSTEM_PATH` (and `_1_0`) lists and the system plugin
/// directory next to the libgstreamer this process loaded.
fn opencv_plugin_installed() -> bool {
    let mut dirs: Vec<std::path::PathBuf> = [
        "GST_PLUGIN_PATH_1_0",
        "GST_PLUGIN_PATH",
        "GST_PLUGIN_SYSTEM_PATH_1_0",
        "GST_PLUGIN_SYSTEM_PATH",
    ]
    .iter()
    .filter_map(std::env::var_os)
    .flat_map(|v| std::env::split_paths(&v).collect::<Vec<_>>())
    .collect();
    if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
        dirs.extend(
            maps.lines()
                .filter_map(|l| l.split_whitespace().nth(5))
                .filter(|p| p.contains("/libgstreamer-1.0.so"))
                .filter_map(|p| std::path::Path::new(p).parent())
                .map(|d| d.join("gstreamer-1.0")),
        );
    }
    dirs.iter().any(|d| d.join("libgstopencv.so").is_file())
}
