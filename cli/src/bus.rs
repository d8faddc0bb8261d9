//! Element messages from the bus as Sightline events.

use gst::prelude::*;
use sightline_core::events::Event;
use sightline_core::meta::event_from_structure;

/// The event for an element message posted by a Sightline element (one with a `camera`
/// field), if it is one.
pub fn event_from_message(msg: &gst::Message) -> Option<Event> {
    let gst::MessageView::Element(el) = msg.view() else {
        return None;
    };
    let s = el.structure()?;
    if !s.has_field("camera") {
        return None;
    }
    let source = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
    Some(event_from_structure(s, &source, ""))
}
