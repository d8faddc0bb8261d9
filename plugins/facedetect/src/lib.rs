// Sightline face detection plugin: `facedetect` (YuNet face + landmarks) and `analyticsoverlay`.
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! GStreamer plugin `facedetect` of Sightline.
//!
//! Elements:
//! * `facedetect` (also registered as `sightlinefacedetect`): YuNet face detection with
//!   5 landmarks, in place, attaching `GstVideoRegionOfInterestMeta`s.
//! * `analyticsoverlay`: draws every ROI meta (boxes, landmarks, labels, track ids), with an
//!   optional privacy blur of unknown faces.

use gst::glib;

mod analyticsoverlay;
pub mod facedetect;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    facedetect::register(plugin)?;
    analyticsoverlay::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    facedetect,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
