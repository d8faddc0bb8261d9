//! Vision: models and inference, pre- and post-processing, detection, alignment, embedding,
//! face quality, galleries and enrolment, drawing.

pub mod align;
pub mod calibrate;
pub mod changes;
pub mod detect;
pub mod draw;
pub mod embed;
pub mod enroll;
pub mod gallery;
pub mod inference;
pub mod int8;
pub mod models;
pub mod postprocess;
pub mod preprocess;
pub mod quality;
pub mod recognition;
