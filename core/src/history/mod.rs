//! History: what happened, kept in a database and asked later (journeys, presence timelines,
//! occupancy, heat maps), with retention and erasure. No images, ever.
//!
//! The store is fed by the publisher ([`crate::delivery`]): it is one more sink (`sqlite:PATH`
//! or `postgres://…`), so events reach it from the spool, in order, off the video path, in
//! batched transactions, and a replayed spool writes nothing twice (rows are keyed by the
//! spool's node and the event's sequence). See docs/history.md.

pub mod db;
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
        }
    }

    fn write(&mut self, items: &[Item]) -> Result<(), String> {
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
