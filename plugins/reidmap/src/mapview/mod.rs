//! `mapview`: a live video of the floor map — the floor plan (or a metric grid), every person
//! of the map as a dot labelled with their global id, and a fading trail — so the map can be
//! encoded and streamed like any camera.
//!
//! ```sh
//! gst-launch-1.0 ... reidmap map=floor1 ... \
//!     mapview map=floor1 min-x=0 max-x=30 min-y=0 max-y=20 ! videoconvert ! x264enc ! ...
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct MapView(ObjectSubclass<imp::MapView>) @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "mapview",
        gst::Rank::NONE,
        MapView::static_type(),
    )
}

pub use imp::colour_of;
