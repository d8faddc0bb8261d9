//! sightline-core: everything the Sightline elements share.
//!
//! Pure logic (pre/post-processing, decoding, activity analysis, events) has no GStreamer
//! types; [`meta`] is the one module that reads and writes Sightline's GStreamer metadata.

pub mod activity;
pub mod align;
pub mod delivery;
pub mod detect;
pub mod draw;
pub mod embed;
pub mod enroll;
pub mod events;
pub mod gallery;
pub mod geometry;
pub mod inference;
pub mod mapstate;
pub mod mapsync;
pub mod meta;
pub mod models;
pub mod mot;
pub mod postprocess;
pub mod preprocess;
pub mod presence;
pub mod presence_sync;
pub mod props;
pub mod quality;
pub mod redis_store;
pub mod runner;
pub mod secrets;
pub mod track;
pub mod trajectory;
pub mod unknown;
pub mod video;
pub mod watch;
pub mod worker;
pub mod zones;
