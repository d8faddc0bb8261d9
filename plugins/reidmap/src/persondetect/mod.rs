//! `persondetect`: detects people with YOLOX-nano (ONNX Runtime), in place.
//!
//! Each person becomes a `GstVideoRegionOfInterestMeta` (roi_type `person`) with a
//! `detection` param (DL Streamer names); ROI ids are dense within the buffer. A
//! `persondetect` message lists the persons of every frame that ran detection.
//!
//! ```sh
//! gst-launch-1.0 filesrc location=vtest.avi ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! \
//!     persondetect inference-width=640 ! analyticsoverlay ! videoconvert ! autovideosink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct PersonDetect(ObjectSubclass<imp::PersonDetect>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

sightline_core::execution_provider_enum!(
    ExecutionProvider,
    "SightlinePersonDetectExecutionProvider"
);

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    let _ = ExecutionProvider::static_type();
    gst::Element::register(
        Some(plugin),
        "persondetect",
        gst::Rank::NONE,
        PersonDetect::static_type(),
    )
}
