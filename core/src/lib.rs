//! sightline-core: everything the Sightline elements share, grouped by domain:
//!
//! | module | what |
//! |---|---|
//! | [`vision`] | models, inference, pre/post-processing, detection, alignment, embedding, quality, galleries |
//! | [`tracking`] | trackers and trajectories within a camera |
//! | [`map`] | calibration, the floor map, sharing it between processes |
//! | [`presence`] | presence groups, their sharing between nodes, zones, unknown ids, activity |
//! | [`io`] | events, the spool and delivery, Redis, secrets, file watching, worker threads |
//! | [`glue`] | GStreamer glue: metadata, property types, video frames |
//! | [`runner`] | pipeline files and the runner's pure logic |
//! | [`control`] | operating a site: API tokens and roles, the state the API shows |
//! | [`history`] | the history store (SQLite, PostgreSQL): rows from events, queries, retention, erasure |
//!
//! Pure logic has no GStreamer types; [`meta`] is the one module that reads and writes
//! Sightline's GStreamer metadata. Every module is also reachable at the top level
//! (`sightline_core::detect`, …), the paths the elements and tools use.

pub mod control;
pub mod glue;
pub mod history;
pub mod io;
pub mod map;
pub mod presence;
pub mod runner;
pub mod tracking;
pub mod vision;

pub use glue::{meta, props, video};
pub use io::{
    delivery, events, homeassistant, mqtt, redis_store, secrets, sinks, telegram, watch, worker,
};
pub use map::{geometry, mapstate, mapsync};
pub use presence::sync as presence_sync;
pub use presence::{activity, unknown, zones};
pub use tracking::{mot, track, trajectory};
pub use vision::{
    align, calibrate, changes, detect, draw, embed, enroll, gallery, inference, models,
    postprocess, preprocess, quality, recognition,
};
