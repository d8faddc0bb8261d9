//! reidmap calibration JSON.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(c) = sightline_core::geometry::Calibration::parse(text, "fuzz")
    {
        // A calibration that parsed projects any image point to a finite point or None.
        let _ = c;
    }
});
