//! GStreamer glue: the one module that reads and writes Sightline metadata, shared property
//! types, video frames and caps.

#[cfg(feature = "analytics")]
pub mod analytics;
pub mod engine;
pub mod meta;
pub mod props;
pub mod video;
