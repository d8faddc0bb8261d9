// Sightline people-on-a-map plugin: `persondetect`, `reidmap`, `mapview`.
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! GStreamer plugin `reidmap` of Sightline: person detection, re-identification across
//! cameras and a floor map.

use gst::glib;

pub mod mapview;
pub mod persondetect;
pub mod reidmap;

/// The process-wide sharing of floor map `name` through Redis `url` (reidmap, mapview), on the
/// clock the map's times come from: the pipelines' default, the system clock.
fn share_map(
    name: &str,
    url: Option<&str>,
    map: std::sync::Arc<std::sync::Mutex<sightline_core::mapstate::MapState>>,
) -> Result<Option<std::sync::Arc<sightline_core::mapsync::MapSync>>, gst::ErrorMessage> {
    use gst::prelude::*;
    let Some(url) = url else { return Ok(None) };
    sightline_core::mapsync::shared_sync(
        name,
        url,
        map,
        std::sync::Arc::new(|| gst::SystemClock::obtain().time().nseconds()),
    )
    .map(Some)
    .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{}", e)))
}

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
