//! `facedetect`: detects faces and their five landmarks with YuNet (ONNX Runtime), in place.
//!
//! Each face becomes a `GstVideoRegionOfInterestMeta` (roi_type `face`) with a `detection`
//! param (normalised box, confidence, label, model name) and a `landmarks` param (right eye,
//! left eye, nose, right mouth corner, left mouth corner, in frame pixels). ROI ids are dense
//! within the buffer. A `facedetect` element message (same shape as OpenCV's `facedetect`:
//! `faces` = list of `face` structures with `x y width height`, plus `confidence` and the
//! landmarks) is posted for every frame that ran detection. See docs/METADATA.md.
//!
//! OpenCV's plugin (`gstreamer1.0-opencv`) registers an element with the same name; this
//! element is also registered as `sightlinefacedetect`, a name that is always ours.
//!
//! ```sh
//! gst-launch-1.0 -m filesrc location=face.jpg ! decodebin ! videoconvert ! \
//!     facedetect camera=door ! analyticsoverlay ! videoconvert ! autovideosink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FaceDetect(ObjectSubclass<imp::FaceDetect>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

sightline_core::execution_provider_enum!(ExecutionProvider, "SightlineFaceDetectExecutionProvider");

/// Registers `facedetect` and its always-unambiguous alias `sightlinefacedetect`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    let _ = ExecutionProvider::static_type();
    gst::Element::register(
        Some(plugin),
        "sightlinefacedetect",
        gst::Rank::NONE,
        FaceDetect::static_type(),
    )?;
    gst::Element::register(
        Some(plugin),
        "facedetect",
        gst::Rank::NONE,
        FaceDetect::static_type(),
    )
}
