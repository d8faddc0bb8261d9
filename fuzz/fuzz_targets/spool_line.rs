//! Event JSON read back from the spool, and URLs redacted for messages.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sightline_core::delivery::parse_spool_line(text);
        let r = sightline_core::secrets::redact_url(text);
        let _ = sightline_core::secrets::redact_urls_in_text(text);
        // For the schemes Sightline's sinks and sources use, redacting twice changes
        // nothing more (opaque URLs of other schemes may be normalised differently).
        let ours = ["http:", "https:", "redis:", "rediss:", "rtsp:", "rtsps:", "mqtt:", "mqtts:"];
        if ours.iter().any(|s| r.starts_with(s)) {
            assert_eq!(sightline_core::secrets::redact_url(&r), r);
        }
    }
});
