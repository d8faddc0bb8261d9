//! History: what happened, kept in a database and asked later (journeys, presence timelines,
//! occupancy, heat maps), with retention and erasure. No images, ever.
//!
//! The store is fed by the publisher ([`crate::delivery`]): it is one more sink (`sqlite:PATH`
//! or `postgres://…`), so events reach it from the spool, in order, off the video path, in
//! batched transactions, and a replayed spool writes nothing twice (rows are keyed by the
//! spool's node and the event's sequence). See docs/history.md.

pub mod db;
pub mod heat;
pub mod heatpng;
pub mod query;
pub mod rows;

pub use db::{Db, Location, Val};
pub use query::{Range, Retention};

use crate::delivery::{DeliverEvent, Item};
use crate::events::Event;
use std::time::{Duration, Instant};

/// How often the writer purges rows past their retention (and once at its first batch).
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Parses a duration: `30s`, `15m`, `1h`, `1d` (or plain seconds).
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (30s, 15m, 1h, 1d)"))?;
    let unit_ms = match unit {
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        "d" => 86_400e3,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, m, h, d)")),
    };
    Ok((n * unit_ms) as i64)
}

/// Parses a time: RFC 3339 (`2026-12-02T14:00:00Z`), a date and time without zone (UTC),
/// a date (`2026-12-02`, midnight UTC), `now`, or an age (`-24h`, `-90m`, `-7d`), relative to `now_ms`.
pub fn parse_time_ms(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now_ms);
    }
    if let Some(age) = s.strip_prefix('-') {
        return Ok(now_ms - parse_duration_ms(age)?);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_millis());
    }
    Err(format!(
        "{s:?} is not a time (2026-12-02T14:00:00Z, 2026-12-02, now, -24h)"
    ))
}

/// RFC 3339 UTC with milliseconds.
pub fn utc_of_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The history sink of a delivery: events to rows, one transaction per batch. The database
/// is opened (and migrated) at the first batch and again after an error; while it cannot
/// be written, batches fail and wait in the spool.
pub struct Writer {
    location: Location,
    /// The spool's node id: with the sequence, the key that makes a replay harmless.
    stream: String,
    /// The node's name, stored with each row.
    node: String,
    retention: Retention,
    db: Option<Db>,
    purged_at: Option<Instant>,
    /// Events that had no rows for a reason worth saying (said once).
    skipped: u64,
    /// The writing thread runs at a lower CPU priority (set at its first batch).
    yielding: bool,
}

/// The nice value of the history's writing thread: under CPU contention the video path
/// (nice 0) gets about ten times its share; the writer catches up when the CPU is free (the
/// spool holds the backlog). Measured: `sightline bench history --video` (docs/benchmarks.md).
pub const WRITER_NICE: i32 = 19;

/// Lowers the calling thread's CPU priority to [`WRITER_NICE`] (on Linux the nice value is
/// per thread; elsewhere, or where it cannot be changed, nothing happens).
fn yield_cpu_to_video() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority takes plain integers; `who` 0 is the calling thread on Linux.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, WRITER_NICE);
    }
}

impl Writer {
    pub fn new(location: &Location, retention: &Retention, stream: &str, node: &str) -> Writer {
        Writer {
            location: location.clone(),
            stream: stream.to_string(),
            node: node.to_string(),
            retention: retention.clone(),
            db: None,
            purged_at: None,
            skipped: 0,
            yielding: false,
        }
    }

    fn write(&mut self, items: &[Item]) -> Result<(), String> {
        if !self.yielding {
            yield_cpu_to_video();
            self.yielding = true;
        }
        let mut rows = Vec::new();
        for it in items {
            let rs = serde_json::from_str::<Event>(&it.json)
                .map_err(|e| e.to_string())
                .and_then(|ev| rows::rows_of(&self.stream, it.seq, &self.node, &ev));
            match rs {
                Ok(r) => rows.extend(r),
                Err(e) => {
                    // An event that cannot be stored is not retried for ever.
                    if self.skipped == 0 {
                        eprintln!(
                            "history {}: event {} not stored: {e}",
                            self.location.display(),
                            it.seq
                        );
                    }
                    self.skipped += 1;
                }
            }
        }
        if self.db.is_none() {
            self.db = Some(Db::open(&self.location)?);
        }
        let db = self.db.as_mut().expect("opened");
        if !rows.is_empty()
            && let Err(e) = db.insert(&rows)
        {
            self.db = None;
            return Err(e);
        }
        if self.purged_at.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            self.purged_at = Some(Instant::now());
            if let Err(e) = query::purge(db, &self.retention, now_ms()) {
                self.db = None;
                return Err(e);
            }
        }
        Ok(())
    }
}

impl DeliverEvent for Writer {
    fn deliver(&mut self, seq: u64, json: &str, alert: bool) -> Result<(), String> {
        self.write(&[Item {
            seq,
            json: json.into(),
            alert,
        }])
    }

    fn deliver_batch(&mut self, items: &[Item]) -> (usize, Result<(), String>) {
        match self.write(items) {
            Ok(()) => (items.len(), Ok(())),
            Err(e) => (0, Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_parse_as_documented() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time_ms("now", now).unwrap(), now);
        assert_eq!(parse_time_ms("-24h", now).unwrap(), now - 86_400_000);
        assert_eq!(parse_time_ms("-90m", now).unwrap(), now - 5_400_000);
        let day = parse_time_ms("2026-12-02", now).unwrap();
        assert_eq!(parse_time_ms("2026-12-02T00:00:00Z", now).unwrap(), day);
        assert_eq!(
            parse_time_ms("2026-12-02T14:00", now).unwrap(),
            day + 14 * 3_600_000
        );
        assert_eq!(
            parse_time_ms("2026-12-02T15:00:00+01:00", now).unwrap(),
            day + 14 * 3_600_000
        );
        assert!(
            parse_time_ms("yesterday", now)
                .unwrap_err()
                .contains("yesterday")
        );
        assert_eq!(parse_duration_ms("15m").unwrap(), 900_000);
        assert_eq!(parse_duration_ms("1d").unwrap(), 86_400_000);
        assert_eq!(parse_duration_ms("30").unwrap(), 30_000);
        assert!(parse_duration_ms("5w").is_err());
    }
}
