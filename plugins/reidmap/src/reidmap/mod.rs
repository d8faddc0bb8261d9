//! `reidmap`: follows the people `persondetect` found, re-identifies them across cameras and
//! places them on a floor map.
//!
//! Per camera it tracks the person ROIs (Kalman + IoU), embeds each track with OSNet when it
//! is new and every `reembed-interval` frames (all due tracks of a frame in one run),
//! projects the foot point (bottom centre of the box) through the camera's calibration onto
//! the map, and links the track to a global identity shared by every camera of the process
//! that names the same `map` (appearance gated by map position and time). It writes
//! `object_id` and `map-position` params on each person ROI and posts rate-limited `reidmap`
//! messages.
//!
//! ```sh
//! gst-launch-1.0 filesrc location=hall.mp4 ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! \
//!     persondetect ! reidmap camera=hall map=floor1 calibration=hall.json ! fakesink
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct ReidMap(ObjectSubclass<imp::ReidMap>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

sightline_core::execution_provider_enum!(ExecutionProvider, "SightlineReidMapExecutionProvider");

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    let _ = ExecutionProvider::static_type();
    gst::Element::register(
        Some(plugin),
        "reidmap",
        gst::Rank::NONE,
        ReidMap::static_type(),
    )
}
