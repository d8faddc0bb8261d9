//! Test data shared by the reidmap tests.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

pub use sightline_testkit::{pets_calibration as crop_calibration, shared_data as data};

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
