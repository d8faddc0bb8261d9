//! Element messages from the bus as Sightline events.

use gst::prelude::*;
use sightline_core::events::{Event, utc_now};
use sightline_core::meta::structure_to_json;

/// The event for an element message posted by a Sightline element, if it is one.
pub fn event_from_message(msg: &gst::Message) -> Option<Event> {
    let gst::MessageView::Element(el) = msg.view() else {
        return None;
    };
    let s = el.structure()?;
    let source = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
    let mut data = structure_to_json(s);
    let obj = data.as_object_mut()?;
    let camera = obj
        .remove("camera")
        .and_then(|v| v.as_str().map(str::to_string))?;
    let running_time = obj.remove("running-time").and_then(|v| v.as_u64());
    let utc = obj
        .remove("utc-time")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(utc_now);
    Some(Event::new(
        s.name(),
        &source,
        &camera,
        running_time,
        utc,
        data,
    ))
}
