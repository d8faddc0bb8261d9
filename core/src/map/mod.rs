//! The floor map: calibration and homography, the map state of every camera, sharing it
//! between processes (Redis).

pub mod geometry;
pub mod mapstate;
pub mod mapsync;
