// Sightline presence plugin: `presence`.
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! GStreamer plugin `presence` of Sightline: turns recognitions into attendance, absence
//! alerts and camera-health events, shared by every camera of a group.

use gst::glib;

pub mod presence;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    presence::register(plugin)
}

gst::plugin_define!(
    presence,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
