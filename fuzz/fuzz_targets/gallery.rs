//! Gallery files and Redis entries: any bytes give a gallery or a Format error.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(g) = sightline_core::gallery::Gallery::from_bytes(data, "fuzz") {
        // What was read must write back and read again the same.
        let again = sightline_core::gallery::Gallery::from_bytes(&g.to_bytes(), "fuzz")
            .expect("a gallery read back");
        assert_eq!(again.identities(), g.identities());
    }
});
