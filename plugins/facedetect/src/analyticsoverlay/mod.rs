//! `analyticsoverlay`: draws every region-of-interest meta on the frame, in place — boxes,
//! facial landmarks, readable labels (recognised name or detection label, score, track id).
//! `privacy=blur-unknown` blurs faces whose recognition label is `unknown`;
//! `privacy=blur-all` blurs every face.
//!
//! ```sh
//! gst-launch-1.0 filesrc location=group.jpg ! decodebin ! videoconvert ! facedetect ! \
//!     videoconvert ! analyticsoverlay ! videoconvert ! pngenc ! filesink location=out.png
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct AnalyticsOverlay(ObjectSubclass<imp::AnalyticsOverlay>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "SightlinePrivacyMode")]
pub enum PrivacyMode {
    #[default]
    #[enum_value(name = "Draw every face as it is", nick = "none")]
    None = 0,
    #[enum_value(
        name = "Blur every face not recognised as an enrolled person (unknown, undecided, too small, no facematch)",
        nick = "blur-unknown"
    )]
    BlurUnknown = 1,
    #[enum_value(name = "Blur every face", nick = "blur-all")]
    BlurAll = 2,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    let _ = PrivacyMode::static_type();
    gst::Element::register(
        Some(plugin),
        "analyticsoverlay",
        gst::Rank::NONE,
        AnalyticsOverlay::static_type(),
    )
}
