// Sightline face recognition plugin: `facematch`.
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! GStreamer plugin `facematch` of Sightline: recognises the faces found by `facedetect`
//! against an enrolled gallery, with per-camera tracks and stable ids for strangers.

use gst::glib;

pub mod facematch;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    facematch::register(plugin)
}

gst::plugin_define!(
    facematch,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
