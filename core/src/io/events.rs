//! The versioned event schema and the JSONL sink.
//!
//! Every bus message an element posts becomes one [`Event`]; the schema string is bumped on any
//! incompatible change. See docs/METADATA.md for each kind's `data`.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const SCHEMA: &str = "sightline.event/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Always [`SCHEMA`] for this version.
    pub schema: String,
    /// The message structure name, e.g. `facedetect`, `facedetect-dark`.
    pub kind: String,
    /// Name of the element that posted it.
    pub source: String,
    /// Camera name (element `camera` property).
    pub camera: String,
    /// Pipeline running time of the frame, nanoseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_time_ns: Option<u64>,
    /// UTC wall time when the element posted it, RFC 3339 with milliseconds.
    pub utc: String,
    /// The message's other fields.
    pub data: serde_json::Value,
}

impl Event {
    pub fn new(
        kind: &str,
        source: &str,
        camera: &str,
        running_time_ns: Option<u64>,
        utc: String,
        data: serde_json::Value,
    ) -> Self {
        Event {
            schema: SCHEMA.to_string(),
            kind: kind.to_string(),
            source: source.to_string(),
            camera: camera.to_string(),
            running_time_ns,
            utc,
            data,
        }
    }
}

/// Current UTC time as RFC 3339 with milliseconds (`2026-11-21T10:00:00.123Z`).
pub fn utc_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// UTC time `ago_ns` nanoseconds before now, formatted as [`utc_now`].
pub fn utc_ago(ago_ns: u64) -> String {
    (chrono::Utc::now() - chrono::Duration::nanoseconds(ago_ns.min(i64::MAX as u64) as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Appends events as JSON lines, each with one `write` to a file opened for appending, so a
/// crash loses nothing written and several sinks (elements) may share one file.
pub struct JsonlSink {
    path: PathBuf,
    out: File,
}

impl JsonlSink {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonlSink {
            path: path.to_path_buf(),
            out: f,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, ev: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(ev)?;
        line.push(b'\n');
        self.out.write_all(&line)
    }
}

/// Reads a JSONL event file; a malformed line is an error naming its line number. A last
/// line without its newline is an event still being written (the file may be live) and is
/// left out; the next read sees it whole.
pub fn read_jsonl(path: &Path) -> Result<Vec<Event>, String> {
    let mut text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_still_being_written_is_left_out_and_a_malformed_one_named() {
        let path = std::env::temp_dir().join(format!("sl-live-{}.jsonl", std::process::id()));
        let ev = Event::new("k", "s", "c", None, utc_now(), serde_json::json!({}));
        let whole = serde_json::to_string(&ev).unwrap();
        std::fs::write(&path, format!("{whole}\n{}", &whole[..whole.len() / 2])).unwrap();
        assert_eq!(read_jsonl(&path).unwrap(), vec![ev.clone()]);
        std::fs::write(&path, format!("{whole}\n{{\"half\n{whole}\n")).unwrap();
        let err = read_jsonl(&path).unwrap_err();
        assert!(err.contains(".jsonl:2:"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn jsonl_round_trip() {
        let path = std::env::temp_dir().join(format!("sl-events-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let ev = Event::new(
            "facedetect",
            "facedetect0",
            "cam1",
            Some(40_000_000),
            utc_now(),
            serde_json::json!({"faces": []}),
        );
        {
            let mut s = JsonlSink::open(&path).unwrap();
            s.write(&ev).unwrap();
            s.write(&ev).unwrap();
        }
        let back = read_jsonl(&path).unwrap();
        assert_eq!(back, vec![ev.clone(), ev]);
        let line = std::fs::read_to_string(&path).unwrap();
        assert!(
            line.starts_with("{\"schema\":\"sightline.event/1\""),
            "{line}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn utc_is_rfc3339_millis() {
        let t = utc_now();
        assert!(chrono::DateTime::parse_from_rfc3339(&t).is_ok(), "{t}");
        assert!(t.ends_with('Z') && t.len() == 24, "{t}");
    }
}
