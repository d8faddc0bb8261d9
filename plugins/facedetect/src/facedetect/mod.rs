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

/// Execution provider choices, as listed by gst-inspect.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "SightlineExecutionProvider")]
pub enum ExecutionProvider {
    #[default]
    #[enum_value(name = "CPU (always available)", nick = "cpu")]
    Cpu = 0,
    #[enum_value(
        name = "CUDA (build with --features cuda, onnxruntime-gpu library)",
        nick = "cuda"
    )]
    Cuda = 1,
    #[enum_value(name = "TensorRT (build with --features tensorrt)", nick = "tensorrt")]
    TensorRt = 2,
    #[enum_value(name = "OpenVINO (build with --features openvino)", nick = "openvino")]
    OpenVino = 3,
}

impl From<ExecutionProvider> for sightline_core::inference::Provider {
    fn from(p: ExecutionProvider) -> Self {
        use sightline_core::inference::Provider;
        match p {
            ExecutionProvider::Cpu => Provider::Cpu,
            ExecutionProvider::Cuda => Provider::Cuda,
            ExecutionProvider::TensorRt => Provider::TensorRt,
            ExecutionProvider::OpenVino => Provider::OpenVino,
        }
    }
}

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
