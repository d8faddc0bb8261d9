//! `facematch`: recognises faces against an enrolled gallery, in place, after `facedetect`.
//!
//! For each face ROI it keeps a per-camera track, embeds the face (aligned with its five
//! landmarks) only when the track is new, every `reembed-interval` frames, or when the face's
//! quality (size, sharpness, frontality) improves, and matches the track's quality-weighted
//! mean embedding against the gallery. It writes `object_id` and `recognition` params (and
//! the opt-in `embedding`) to each face ROI and posts a `facematch` message when a track's
//! identity is first decided or changes. Strangers get a stable `unknown-id`, shared by every
//! camera of the process. The gallery (file or directory) is reloaded when it changes.
//!
//! ```sh
//! gst-launch-1.0 filesrc location=door.mp4 ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! \
//!     facedetect ! facematch gallery=staff.slg camera=door ! analyticsoverlay ! videoconvert ! autovideosink
//! ```
//!
//! The `w600k-mbf` model (InsightFace) is licensed for non-commercial research only.

use gst::glib;
use gst::prelude::*;

mod imp;

sightline_core::execution_provider_enum!(ExecutionProvider, "SightlineFaceMatchExecutionProvider");

glib::wrapper! {
    pub struct FaceMatch(ObjectSubclass<imp::FaceMatch>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    let _ = ExecutionProvider::static_type();
    gst::Element::register(
        Some(plugin),
        "facematch",
        gst::Rank::NONE,
        FaceMatch::static_type(),
    )
}
