//! Tracking within one camera: the IoU tracker, multi-object tracking, trajectories.

pub mod mot;
pub mod track;
pub mod trajectory;
