//! Event JSON read back from the spool, and URLs redacted for messages.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sightline_core::delivery::parse_spool_line(text);
        let r = sightline_core::secrets::redact_url(text);
        // Redacting twice changes nothing more.
        assert_eq!(sightline_core::secrets::redact_url(&r), r);
    }
});
