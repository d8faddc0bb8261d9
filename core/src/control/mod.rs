//! Operating a site: access tokens and roles of the runner's API, and the state the API
//! shows (cameras, presence, alerts, maps).

pub mod api;
pub mod auth;
pub mod cameras;
pub mod journal;
pub mod session;
pub mod site;

/// Writes `path` atomically (a temporary file, fsync, rename), readable by its owner only.
pub fn write_private(path: &std::path::Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}
