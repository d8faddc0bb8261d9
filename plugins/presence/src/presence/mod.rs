//! `presence`: who is here, who left, one alert per absence — across every camera of a group.
//!
//! Put it after `facematch` on each camera; every `presence` with the same `group` in the
//! process shares one state (ANY-of-N: a person seen by any camera of the group is present).
//! Timeouts fire from the pipeline clock even when no buffer arrives; a camera that stops
//! delivering frames is reported and, when every camera of the group has stopped, absence
//! clocks stop instead of marking everyone absent. Every transition and alert is a bus
//! message (`presence`, `presence-alert`) and a line in the `event-log` JSONL file.
//!
//! ```sh
//! gst-launch-1.0 rtspsrc location=rtsp://cam1/stream ! decodebin ! videoconvert ! \
//!     video/x-raw,format=BGRx ! facedetect ! facematch gallery=staff.slg ! \
//!     presence group=outlet1 camera=door absent-seconds=300 event-log=/var/log/outlet1.jsonl ! fakesink
//! ```

use gst::glib;
use gst::prelude::*;

mod hub;
mod imp;

glib::wrapper! {
    pub struct Presence(ObjectSubclass<imp::Presence>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "presence",
        gst::Rank::NONE,
        Presence::static_type(),
    )
}
