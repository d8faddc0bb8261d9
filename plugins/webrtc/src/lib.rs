// Sightline WebRTC plugin: `webrtcsink` and `webrtcsrc` of gst-plugins-rs.
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! GStreamer plugin `sightlinewebrtc`: registers `webrtcsink` (with its built-in signalling
//! and web servers) and `webrtcsrc` from the crates.io `gst-plugin-webrtc` crate, built against
//! the system GStreamer by the workspace, so a deployment needs nothing beyond our build.

use gst::glib;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // gst-plugin-webrtc's TLS (signalling and web server) uses rustls; ring is the provider the
    // rest of the workspace (Redis TLS) uses too.
    let _ = rustls::crypto::ring::default_provider().install_default();
    gstrswebrtc::webrtcsink::register(plugin)?;
    gstrswebrtc::webrtcsrc::register(Some(plugin))?;
    Ok(())
}

gst::plugin_define!(
    sightlinewebrtc,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
