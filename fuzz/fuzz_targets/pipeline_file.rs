//! Pipeline files: variables, ${NAME:+words}, units.
#![no_main]
use std::collections::BTreeMap;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(f) = sightline_core::runner::PipelineFile::parse(text, "fuzz") else { return };
    let env = |k: &str| (k.len() % 2 == 0).then(|| format!("v-{k}"));
    if let Ok(desc) = f.substitute(&BTreeMap::new(), env) {
        let _ = sightline_core::runner::split_units(&desc);
        let _ = sightline_core::secrets::redact_urls_in_text(&desc);
    }
});
