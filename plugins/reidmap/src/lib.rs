// Sightline people-on-a-map plugin: `persondetect`, `reidmap`, `mapview`.
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! GStreamer plugin `reidmap` of Sightline: person detection, re-identification across
//! cameras and a floor map.

use gst::glib;

pub mod mapview;
pub mod persondetect;
pub mod reidmap;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    persondetect::register(plugin)?;
    reidmap::register(plugin)?;
    mapview::register(plugin)
}

gst::plugin_define!(
    reidmap,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
