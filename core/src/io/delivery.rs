//! Durable, ordered, bounded event delivery to a Redis Stream and/or a webhook.
//!
//! Every event is first appended to a spool file on disk (`<spool-dir>/<node>.spool.jsonl`,
//! one line `{"seq","t","alert","event"}` per event, numbered by a per-node sequence) and then
//! delivered in order by a background thread. Redis delivery is idempotent: a Lua script adds
//! the event to the stream only if its sequence is beyond the node's last delivered one
//! (`<stream>:delivered:<node>`), so a reply lost with the connection, or a restart after
//! `kill -9`, never yields a duplicate. Webhook POSTs carry `Idempotency-Key: <node>-<seq>`
//! so a receiver can drop a repeat (HTTP itself is at-least-once). While a sink is down,
//! events wait in the spool (also across restarts) and are delivered in order when it
//! returns; retries back off from 0.2 s to 5 s.
//!
//! The spool is bounded ([`SpoolLimits`]): events waiting longer than `max_age`, and the
//! oldest events beyond `max_bytes`, are dropped — never alerts (`presence-alert`); every
//! drop is counted ([`Delivery::dropped`]) and reported once per episode. The file is
//! fsynced every `fsync_interval` and at once after an alert, by a syncer thread (the
//! caller, often a streaming thread, only appends), which also compacts the file when
//! delivered lines make up more than half of it, so the file stays under about twice
//! `max_bytes`. After a crash, everything written before the last fsync is delivered.

use crate::events::Event;
use crate::secrets::scrub_url_in;
use crate::sinks::Sink;
use crate::worker::Worker;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Stream length kept (approximately) by XADD MAXLEN ~.
pub const STREAM_MAXLEN: u64 = 100_000;

/// The event kind that is never dropped from a full spool.
pub const ALERT_KIND: &str = "presence-alert";

/// A file smaller than this is never compacted.
const COMPACT_SLACK: u64 = 1 << 20;

const XADD_ONCE: &str = r"
local last = tonumber(redis.call('GET', KEYS[2]) or '-1')
local seq = tonumber(ARGV[1])
if seq <= last then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[3], 'node', ARGV[4], 'seq', ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
return 1
";

/// This machine's name (`/etc/hostname`), the default node id of the elements.
pub fn default_node_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into())
}

/// `$XDG_STATE_HOME/sightline/spool`, or `~/.local/state/sightline/spool`.
pub fn default_spool_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("sightline")
        .join("spool")
}

/// How much the spool keeps while a sink is away.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpoolLimits {
    /// Bytes of undelivered events kept (alerts beyond it are kept too).
    pub max_bytes: u64,
    /// Undelivered events older than this are dropped (alerts are kept).
    pub max_age: Duration,
    /// How often written events are fsynced (alerts: at once).
    pub fsync_interval: Duration,
}

pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 << 20;
pub const DEFAULT_SPOOL_MAX_AGE: Duration = Duration::from_secs(7 * 86_400);
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_secs(1);

impl Default for SpoolLimits {
    fn default() -> Self {
        SpoolLimits {
            max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            max_age: DEFAULT_SPOOL_MAX_AGE,
            fsync_interval: DEFAULT_FSYNC_INTERVAL,
        }
    }
}

/// Which events a sink receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Only {
    /// Alerts (`presence-alert`): the presence element's `webhook-url`.
    Alerts,
    /// Events of these kinds: the reidmap element's `event-log` and `redis-url`
    /// (trajectories).
    Kinds(Vec<String>),
    /// Every event but these kinds: the runner's published sinks, which never get the
    /// history's embeddings.
    Except(Vec<String>),
}

impl Only {
    pub fn wants(&self, kind: &str) -> bool {
        match self {
            Only::Alerts => kind == ALERT_KIND,
            Only::Kinds(k) => k.iter().any(|k| k == kind),
            Only::Except(k) => !k.iter().any(|k| k == kind),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryConfig {
    pub node: String,
    pub spool_dir: PathBuf,
    /// The sinks that receive every event (the `publish` list).
    pub sinks: Vec<Sink>,
    /// Sinks that receive only some events (the elements' older properties). A sink that is
    /// also in `sinks` receives everything.
    pub partial: Vec<(Sink, Only)>,
    /// The node's name in MQTT topics and Home Assistant (default: `node`, which also names
    /// the spool).
    pub name: Option<String>,
    pub limits: SpoolLimits,
}

/// One sink of a delivery: the name of its cursor file ([`Sink::key`]), the sink, and which
/// events it receives (None: all).
type Target = (String, Sink, Option<Only>);

impl DeliveryConfig {
    /// Every sink once, those of `sinks` first.
    fn targets(&self) -> Vec<Target> {
        let mut t: Vec<Target> = Vec::new();
        let all = self.sinks.iter().map(|s| (s, None));
        let some = self.partial.iter().map(|(s, o)| (s, Some(o)));
        for (s, only) in all.chain(some) {
            let key = s.key();
            match t.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, Some(Only::Kinds(have)))) => {
                    if let Some(Only::Kinds(more)) = only {
                        have.extend(more.iter().cloned());
                    } else if only == Some(&Only::Alerts) {
                        have.push(ALERT_KIND.to_string());
                    }
                }
                Some((_, _, have @ Some(Only::Alerts))) => {
                    if let Some(Only::Kinds(more)) = only {
                        let mut k = more.clone();
                        k.push(ALERT_KIND.to_string());
                        *have = Some(Only::Kinds(k));
                    }
                }
                Some(_) => {}
                None => t.push((key, s.clone(), only.cloned())),
            }
        }
        t
    }
}

/// The bits of the sinks of `targets` that do not receive an event of `kind`: marked
/// delivered to them from the start.
fn skipped(targets: &[Option<Only>], kind: &str) -> u64 {
    targets
        .iter()
        .enumerate()
        .filter(|(_, o)| o.as_ref().is_some_and(|o| !o.wants(kind)))
        .fold(0, |d, (i, _)| d | 1 << i)
}

/// One sink's state, for metrics and health.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkStatus {
    /// The sink as [`Sink::display`] shows it (no secrets).
    pub name: String,
    /// Events spooled and not yet delivered to it.
    pub backlog: u64,
    /// Failed attempts so far.
    pub errors: u64,
    /// False from a failure to the next delivery.
    pub up: bool,
}

struct Pending {
    seq: u64,
    /// Unix milliseconds when it was spooled.
    t_ms: u64,
    alert: bool,
    json: Arc<str>,
    /// Bit i: delivered to sink i.
    done: u64,
}

impl Pending {
    fn line(&self) -> String {
        format!(
            "{{\"seq\":{},\"t\":{},\"alert\":{},\"event\":{}}}\n",
            self.seq, self.t_ms, self.alert, self.json
        )
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the delivery threads.
    wake: Condvar,
    /// Wakes the syncer.
    sync_wake: Condvar,
    /// Signalled when events leave the queue (delivered everywhere).
    delivered: Condvar,
    /// Every sink's bit.
    all: u64,
    /// Per sink: which events it receives (None: all).
    only: Vec<Option<Only>>,
    limits: SpoolLimits,
    path: PathBuf,
}

struct Queue {
    items: VecDeque<Pending>,
    next_seq: u64,
    spool: Option<File>,
    file_bytes: u64,
    pending_bytes: u64,
    /// Written since the last fsync; an alert among them.
    dirty: bool,
    sync_now: bool,
    compacting: bool,
    stopping: bool,
    /// Set with `stopping`: until then, healthy sinks go on delivering what is waiting.
    drain_until: Option<std::time::Instant>,
    /// Last delivery error per sink, taken by the owner to report.
    errors: Vec<String>,
    delivered: u64,
    dropped: u64,
    /// A drop episode was reported (reset when the spool has room again).
    drop_reported: bool,
    fsyncs: u64,
    /// Per sink: the sequence it delivers next, its status.
    next: Vec<u64>,
    sinks: Vec<SinkStatus>,
}

impl Queue {
    /// Index of the first item with a sequence of at least `seq` (items are in order).
    fn index_of(&self, seq: u64) -> usize {
        self.items.partition_point(|p| p.seq < seq)
    }

    /// Removes the events every sink has, from the front.
    fn pop_delivered(&mut self, all: u64) {
        while self.items.front().is_some_and(|p| p.done & all == all) {
            if let Some(p) = self.items.pop_front() {
                self.pending_bytes = self.pending_bytes.saturating_sub(p.json.len() as u64);
                self.delivered += 1;
            }
        }
    }
}

/// Handle of the delivery threads; dropping it stops them (pending events stay spooled).
pub struct Delivery {
    shared: Arc<Shared>,
    workers: Vec<Worker>,
    spool_path: PathBuf,
}

fn spool_path(cfg: &DeliveryConfig) -> PathBuf {
    cfg.spool_dir.join(format!("{}.spool.jsonl", cfg.node))
}

fn cursor_path(cfg: &DeliveryConfig, sink: &str) -> PathBuf {
    cfg.spool_dir.join(format!("{}.{sink}.cursor", cfg.node))
}

fn read_cursor(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn write_cursor(p: &Path, seq: u64) {
    let tmp = p.with_extension("tmp");
    if std::fs::write(&tmp, seq.to_string()).is_ok() {
        let _ = std::fs::rename(tmp, p);
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One spool line read back: (seq, unix ms, alert, event JSON). None for a line that is
/// not one (a line cut by a crash, garbage): it is skipped.
pub fn parse_spool_line(line: &str) -> Option<(u64, Option<u64>, bool, String)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let seq = v.get("seq")?.as_u64()?;
    let ev = v.get("event")?;
    if !ev.is_object() {
        return None;
    }
    let alert = v
        .get("alert")
        .and_then(|a| a.as_bool())
        .unwrap_or_else(|| ev.get("kind").and_then(|k| k.as_str()) == Some(ALERT_KIND));
    Some((
        seq,
        v.get("t").and_then(|t| t.as_u64()),
        alert,
        ev.to_string(),
    ))
}

/// The `kind` of an event's JSON ("" if it has none).
fn event_kind(json: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(default)]
        kind: String,
    }
    serde_json::from_str::<Kind>(json)
        .map(|k| k.kind)
        .unwrap_or_default()
}

impl Queue {
    /// Drops what the limits no longer allow: events older than `max_age`, then the oldest
    /// beyond `max_bytes`; never alerts.
    fn enforce(&mut self, limits: &SpoolLimits, now_ms: u64) {
        let max_age_ms = limits.max_age.as_millis() as u64;
        let mut dropped = 0;
        // Items are in spool order, so the old ones come first; alerts among them stay.
        let mut i = 0;
        while i < self.items.len() && now_ms.saturating_sub(self.items[i].t_ms) > max_age_ms {
            if self.items[i].alert {
                i += 1;
                continue;
            }
            if let Some(p) = self.items.remove(i) {
                self.pending_bytes = self.pending_bytes.saturating_sub(p.json.len() as u64);
                dropped += 1;
            }
        }
        let mut i = 0;
        while self.pending_bytes > limits.max_bytes && i < self.items.len() {
            if self.items[i].alert {
                i += 1;
                continue;
            }
            if let Some(p) = self.items.remove(i) {
                self.pending_bytes = self.pending_bytes.saturating_sub(p.json.len() as u64);
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.dropped += dropped;
            if !self.drop_reported {
                self.drop_reported = true;
                self.errors.push(format!(
                    "event spool full (limits: {} bytes, {} s): dropping the oldest events, never alerts",
                    limits.max_bytes,
                    limits.max_age.as_secs()
                ));
            }
        } else if self.pending_bytes <= limits.max_bytes / 2 {
            self.drop_reported = false;
        }
    }
}

impl Delivery {
    /// Opens the spool (delivering what a previous run left) and starts the threads.
    pub fn start(cfg: DeliveryConfig) -> std::io::Result<Delivery> {
        let targets = cfg.targets();
        if targets.is_empty() || targets.len() > 64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("1 to 64 event sinks, not {}", targets.len()),
            ));
        }
        let all = if targets.len() == 64 {
            u64::MAX
        } else {
            (1u64 << targets.len()) - 1
        };
        std::fs::create_dir_all(&cfg.spool_dir)?;
        let path = spool_path(&cfg);
        let cursors: Vec<Option<u64>> = targets
            .iter()
            .map(|(key, _, _)| read_cursor(&cursor_path(&cfg, key)))
            .collect();
        let only: Vec<Option<Only>> = targets.iter().map(|(_, _, o)| o.clone()).collect();
        let filtered = only.iter().any(Option::is_some);
        let mut items: VecDeque<Pending> = VecDeque::new();
        let mut next_seq = 0;
        let mut pending_bytes = 0;
        let now = unix_ms();
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                let Some((seq, t, alert, json)) = parse_spool_line(&line) else {
                    continue;
                };
                if items.back().is_some_and(|p| p.seq >= seq) {
                    // Out of order or repeated: the file was not written by us.
                    continue;
                }
                next_seq = next_seq.max(seq + 1);
                let mut done = cursors
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.is_some_and(|c| seq <= c))
                    .fold(0u64, |d, (i, _)| d | 1 << i);
                if filtered {
                    done |= skipped(&only, &event_kind(&json));
                }
                if done & all != all {
                    pending_bytes += json.len() as u64;
                    items.push_back(Pending {
                        seq,
                        t_ms: t.unwrap_or(now),
                        alert,
                        json: json.into(),
                        done,
                    });
                }
            }
        }
        for c in cursors.iter().flatten() {
            next_seq = next_seq.max(c + 1);
        }
        let spool = OpenOptions::new().create(true).append(true).open(&path)?;
        let file_bytes = spool.metadata().map(|m| m.len()).unwrap_or(0);
        let first = items.front().map_or(next_seq, |p| p.seq);
        let mut queue = Queue {
            items,
            next_seq,
            spool: Some(spool),
            file_bytes,
            pending_bytes,
            dirty: false,
            sync_now: false,
            compacting: false,
            stopping: false,
            drain_until: None,
            errors: Vec::new(),
            delivered: 0,
            dropped: 0,
            drop_reported: false,
            fsyncs: 0,
            next: cursors.iter().map(|c| c.map_or(first, |c| c + 1)).collect(),
            sinks: targets
                .iter()
                .map(|(_, s, _)| SinkStatus {
                    name: s.display(),
                    backlog: 0,
                    errors: 0,
                    up: true,
                })
                .collect(),
        };
        queue.enforce(&cfg.limits, now);
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            wake: Condvar::new(),
            sync_wake: Condvar::new(),
            delivered: Condvar::new(),
            all,
            only,
            limits: cfg.limits,
            path: path.clone(),
        });
        let report = |shared: &Arc<Shared>| {
            let s = shared.clone();
            move |why: String| {
                if let Ok(mut q) = s.queue.lock() {
                    q.errors.push(why);
                }
            }
        };
        let mut workers = Vec::new();
        for (i, (key, sink, _)) in targets.into_iter().enumerate() {
            let (sh, cursor) = (shared.clone(), cursor_path(&cfg, &key));
            let name = cfg.name.as_deref().unwrap_or(&cfg.node);
            let deliverer = deliverer(&sink, &cfg.node, name);
            workers.push(Worker::spawn(
                &format!("sl-deliver-{key}"),
                report(&shared),
                move || run(sh, i, deliverer, cursor),
            )?);
        }
        let s2 = shared.clone();
        workers.push(Worker::spawn(
            "sl-spool-sync",
            report(&shared),
            move || syncer(s2),
        )?);
        Ok(Delivery {
            shared,
            workers,
            spool_path: path,
        })
    }

    /// Spools `ev` (on disk, then in order to the sinks). Returns its sequence number, None
    /// when no sink receives events of its kind (it is not spooled). The event is kept for
    /// delivery even when the spool file cannot be written (the error is returned then, for
    /// a warning).
    pub fn send(&self, ev: &Event) -> std::io::Result<Option<u64>> {
        let json: Arc<str> = serde_json::to_string(ev)?.into();
        let alert = ev.kind == ALERT_KIND;
        let done = skipped(&self.shared.only, &ev.kind);
        let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if done == self.shared.all {
            return Ok(None);
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        let p = Pending {
            seq,
            t_ms: unix_ms(),
            alert,
            json,
            done,
        };
        let line = p.line();
        let written = match q.spool.as_mut() {
            Some(f) => f.write_all(line.as_bytes()),
            None => Ok(()),
        };
        if written.is_ok() {
            q.file_bytes += line.len() as u64;
            q.dirty = true;
            q.sync_now |= alert;
        }
        q.pending_bytes += p.json.len() as u64;
        q.items.push_back(p);
        let now = unix_ms();
        q.enforce(&self.shared.limits, now);
        // Past its bound the file is compacted now, not at the next fsync interval.
        let compact =
            !q.compacting && q.file_bytes > 2 * self.shared.limits.max_bytes + COMPACT_SLACK;
        if compact {
            q.sync_now = true;
        }
        drop(q);
        self.shared.wake.notify_all();
        if alert || compact {
            self.shared.sync_wake.notify_all();
        }
        written.map(|_| Some(seq))
    }

    /// Spools `ev` and returns what went wrong, worded for an element warning: the spool
    /// could not be written, events were dropped, or delivery is delayed (one line per
    /// outage).
    pub fn send_reporting(&self, ev: &Event) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.send(ev) {
            problems.push(format!(
                "Cannot spool event in {}: {e}",
                self.spool_path.display()
            ));
        }
        problems.extend(self.take_problems());
        problems
    }

    /// [`Delivery::take_errors`] worded for an element warning.
    pub fn take_problems(&self) -> Vec<String> {
        self.take_errors()
            .into_iter()
            .map(|e| format!("Event delivery delayed (events are kept and sent in order when it is back): {e}"))
            .collect()
    }

    /// Events spooled but not yet delivered everywhere.
    pub fn backlog(&self) -> usize {
        self.shared.queue.lock().map(|q| q.items.len()).unwrap_or(0)
    }

    /// Waits until every event is delivered everywhere, for at most `within`, and at most
    /// `stalled` without one leaving the queue (a sink that is down); the backlog left.
    /// Dropping the handle afterwards stops the threads as usual (the rest stays spooled).
    pub fn finish(&self, within: Duration, stalled: Duration) -> usize {
        let start = std::time::Instant::now();
        let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        let mut left = q.items.len();
        let mut moved = start;
        while left > 0 {
            let wait = within
                .saturating_sub(start.elapsed())
                .min(stalled.saturating_sub(moved.elapsed()));
            if wait.is_zero() {
                break;
            }
            q = self
                .shared
                .delivered
                .wait_timeout(q, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if q.items.len() < left {
                moved = std::time::Instant::now();
            }
            left = q.items.len();
        }
        left
    }

    /// Bytes of events waiting.
    pub fn backlog_bytes(&self) -> u64 {
        self.shared
            .queue
            .lock()
            .map(|q| q.pending_bytes)
            .unwrap_or(0)
    }

    /// Size of the spool file.
    pub fn spool_bytes(&self) -> u64 {
        self.shared.queue.lock().map(|q| q.file_bytes).unwrap_or(0)
    }

    pub fn delivered(&self) -> u64 {
        self.shared.queue.lock().map(|q| q.delivered).unwrap_or(0)
    }

    /// Events dropped because the spool was full or they were too old (never alerts).
    pub fn dropped(&self) -> u64 {
        self.shared.queue.lock().map(|q| q.dropped).unwrap_or(0)
    }

    /// fsyncs of the spool file so far.
    pub fn fsyncs(&self) -> u64 {
        self.shared.queue.lock().map(|q| q.fsyncs).unwrap_or(0)
    }

    /// Delivery errors since the last call (one per outage).
    pub fn take_errors(&self) -> Vec<String> {
        self.shared
            .queue
            .lock()
            .map(|mut q| std::mem::take(&mut q.errors))
            .unwrap_or_default()
    }

    pub fn spool_path(&self) -> &Path {
        &self.spool_path
    }

    /// Every sink's state, in configuration order.
    pub fn sinks(&self) -> Vec<SinkStatus> {
        let Ok(q) = self.shared.queue.lock() else {
            return Vec::new();
        };
        q.sinks
            .iter()
            .enumerate()
            .map(|(i, st)| SinkStatus {
                backlog: (q.items.len() - q.index_of(q.next[i])) as u64,
                ..st.clone()
            })
            .collect()
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        if let Ok(mut q) = self.shared.queue.lock() {
            q.stopping = true;
            q.drain_until = Some(deadline - Duration::from_millis(100));
        }
        self.shared.wake.notify_all();
        self.shared.sync_wake.notify_all();
        // Bounded (0.5 s for all threads): sinks that work deliver what waits for 0.4 s
        // (the rest stays in the spool for the next start); a delivery in progress is
        // bounded by its own timeouts (Redis 2 s, HTTP and MQTT 5 s) and ends by itself;
        // what it delivers then is recorded as usual, nothing is lost.
        for w in self.workers.drain(..) {
            w.finish_by(deadline);
        }
    }
}

/// fsyncs the spool on its interval (at once after an alert) and compacts it.
fn syncer(shared: Arc<Shared>) {
    loop {
        let file = {
            let q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            let (mut q, _) = shared
                .sync_wake
                .wait_timeout_while(q, shared.limits.fsync_interval, |q| {
                    !q.stopping && !q.sync_now
                })
                .unwrap_or_else(|e| e.into_inner());
            let file = if q.dirty {
                q.spool.as_ref().and_then(|f| f.try_clone().ok())
            } else {
                None
            };
            q.dirty = false;
            q.sync_now = false;
            if q.stopping && file.is_none() {
                return;
            }
            file
        };
        if let Some(f) = file {
            let ok = f.sync_data().is_ok();
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            if ok {
                q.fsyncs += 1;
            } else {
                q.dirty = true;
            }
            if q.stopping {
                return;
            }
        }
        compact_if_needed(&shared);
    }
}

/// Rewrites the spool with only the undelivered events when delivered ones make up most of
/// it. The bulk is written without the lock (events share their JSON through `Arc`); only
/// the events spooled meanwhile are appended under it, then the new file replaces the old.
fn compact_if_needed(shared: &Shared) {
    let snapshot: Vec<String> = {
        let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.compacting || q.file_bytes <= 2 * q.pending_bytes + COMPACT_SLACK {
            return;
        }
        q.compacting = true;
        q.items.iter().map(Pending::line).collect()
    };
    let last_seq = snapshot
        .last()
        .and_then(|l| parse_spool_line(l))
        .map(|(s, ..)| s);
    let tmp = shared.path.with_extension("jsonl.compact");
    let written = (|| -> std::io::Result<u64> {
        let mut f = File::create(&tmp)?;
        let mut n = 0;
        for l in &snapshot {
            f.write_all(l.as_bytes())?;
            n += l.len() as u64;
        }
        Ok(n)
    })();
    let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    q.compacting = false;
    let Ok(mut bytes) = written else {
        let _ = std::fs::remove_file(&tmp);
        return;
    };
    let result = (|| -> std::io::Result<File> {
        let mut f = OpenOptions::new().append(true).open(&tmp)?;
        for p in q
            .items
            .iter()
            .filter(|p| last_seq.is_none_or(|s| p.seq > s))
        {
            let l = p.line();
            f.write_all(l.as_bytes())?;
            bytes += l.len() as u64;
        }
        f.sync_data()?;
        std::fs::rename(&tmp, &shared.path)?;
        if let Some(dir) = shared.path.parent() {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(f)
    })();
    match result {
        Ok(f) => {
            q.spool = Some(f);
            q.file_bytes = bytes;
            q.fsyncs += 1;
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            q.errors.push(format!(
                "cannot compact the spool {}: {e}",
                shared.path.display()
            ));
        }
    }
}

/// Delivers one event to one sink; `Err` is retried with back-off (the text names the
/// sink, without secrets).
pub trait DeliverEvent: Send {
    fn deliver(&mut self, seq: u64, json: &str, alert: bool) -> Result<(), String>;

    /// Delivers `items` in order; returns how many (a prefix) were delivered, and the error
    /// that stopped it. Sinks that can send a batch in one round trip override it.
    fn deliver_batch(&mut self, items: &[Item]) -> (usize, Result<(), String>) {
        for (k, it) in items.iter().enumerate() {
            if let Err(e) = self.deliver(it.seq, &it.json, it.alert) {
                return (k, Err(e));
            }
        }
        (items.len(), Ok(()))
    }
}

/// One event waiting for a sink.
pub struct Item {
    pub seq: u64,
    pub json: Arc<str>,
    pub alert: bool,
}

/// The deliverer of one sink; `node` keys the Redis sequence, `name` is the node in MQTT.
fn deliverer(sink: &Sink, node: &str, name: &str) -> Box<dyn DeliverEvent> {
    match sink {
        Sink::Redis { url, stream } => Box::new(RedisStream {
            url: url.clone(),
            stream: stream.clone(),
            node: node.to_string(),
            con: None,
        }),
        Sink::Webhook(url) => match http_agent() {
            Ok(http) => Box::new(Webhook {
                url: url.clone(),
                node: node.to_string(),
                http,
            }),
            Err(e) => Box::new(Unusable(format!("webhook {}: {e}", sink.display()))),
        },
        Sink::File(path) => Box::new(JsonlFile {
            path: path.clone(),
            out: None,
            first: true,
        }),
        Sink::Mqtt(spec) => Box::new(crate::mqtt::MqttDeliver::new(spec, name)),
        Sink::History {
            location,
            retention,
        } => Box::new(crate::history::Writer::new(location, retention, node, name)),
        Sink::Telegram { token, chat, api } => match http_agent() {
            Ok(http) => Box::new(crate::telegram::Telegram::new(token, chat, api, http)),
            Err(e) => Box::new(Unusable(format!("{}: {e}", sink.display()))),
        },
    }
}

/// A sink that cannot work as configured (its CA file is unreadable, …): every delivery
/// fails with the reason, said once like any outage; its events wait in the spool.
struct Unusable(String);

impl DeliverEvent for Unusable {
    fn deliver(&mut self, _seq: u64, _json: &str, _alert: bool) -> Result<(), String> {
        Err(self.0.clone())
    }
}

/// The HTTP client of the webhook and Telegram sinks: 5 s for a whole request. HTTPS
/// trusts Mozilla's roots; with `SIGHTLINE_HTTP_CA` (a PEM file: a private CA, a proxy's),
/// the system's CA bundle (`SSL_CERT_FILE`, else /etc/ssl/certs/ca-certificates.crt) and
/// that file instead.
pub fn http_agent() -> Result<ureq::Agent, String> {
    let mut cfg = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(true);
    if let Some(ca) = std::env::var_os("SIGHTLINE_HTTP_CA") {
        let extra = std::fs::read(&ca).map_err(|e| {
            format!(
                "cannot read SIGHTLINE_HTTP_CA {}: {e}",
                ca.to_string_lossy()
            )
        })?;
        let system = std::env::var_os("SSL_CERT_FILE")
            .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
        let mut certs = Vec::new();
        for pem in [std::fs::read(system).unwrap_or_default(), extra] {
            for item in ureq::tls::parse_pem(&pem).flatten() {
                if let ureq::tls::PemItem::Certificate(c) = item {
                    certs.push(c);
                }
            }
        }
        if certs.is_empty() {
            return Err(format!(
                "no certificate in SIGHTLINE_HTTP_CA {}",
                ca.to_string_lossy()
            ));
        }
        cfg = cfg.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::from(certs))
                .build(),
        );
    }
    Ok(ureq::Agent::new_with_config(cfg.build()))
}

struct RedisStream {
    url: String,
    stream: String,
    node: String,
    con: Option<redis::Connection>,
}

impl DeliverEvent for RedisStream {
    /// One pipeline of idempotent adds: a batch is one round trip, and a batch sent again
    /// after a lost reply adds nothing twice.
    fn deliver_batch(&mut self, items: &[Item]) -> (usize, Result<(), String>) {
        if self.con.is_none() {
            match crate::redis_store::connect(&self.url) {
                Ok(c) => self.con = Some(c),
                Err(e) => return (0, Err(e)),
            }
        }
        let Some(con) = self.con.as_mut() else {
            return (0, Err("no Redis connection".into()));
        };
        let delivered = format!("{}:delivered:{}", self.stream, self.node);
        let mut pipe = redis::pipe();
        for it in items {
            pipe.cmd("EVAL")
                .arg(XADD_ONCE)
                .arg(2)
                .arg(&self.stream)
                .arg(&delivered)
                .arg(it.seq)
                .arg(STREAM_MAXLEN)
                .arg(&*it.json)
                .arg(&self.node)
                .ignore();
        }
        match pipe.query::<()>(con) {
            Ok(()) => (items.len(), Ok(())),
            Err(e) => {
                self.con = None;
                (
                    0,
                    Err(format!(
                        "Redis {}: {}",
                        crate::redis_store::redact(&self.url),
                        crate::redis_store::scrub(&self.url, &e)
                    )),
                )
            }
        }
    }

    fn deliver(&mut self, seq: u64, json: &str, _alert: bool) -> Result<(), String> {
        if self.con.is_none() {
            self.con = Some(crate::redis_store::connect(&self.url)?);
        }
        let Some(con) = self.con.as_mut() else {
            return Err("no Redis connection".into());
        };
        let res: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(XADD_ONCE)
            .arg(2)
            .arg(&self.stream)
            .arg(format!("{}:delivered:{}", self.stream, self.node))
            .arg(seq)
            .arg(STREAM_MAXLEN)
            .arg(json)
            .arg(&self.node)
            .query(con);
        res.map(|_| ()).map_err(|e| {
            self.con = None;
            format!(
                "Redis {}: {}",
                crate::redis_store::redact(&self.url),
                crate::redis_store::scrub(&self.url, &e)
            )
        })
    }
}

struct Webhook {
    url: String,
    node: String,
    http: ureq::Agent,
}

impl DeliverEvent for Webhook {
    fn deliver(&mut self, seq: u64, json: &str, _alert: bool) -> Result<(), String> {
        self.http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", format!("{}-{seq}", self.node))
            .send(json)
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "webhook {}: {}",
                    crate::secrets::redact_url(&self.url),
                    scrub_url_in(&e.to_string(), &self.url)
                )
            })
    }
}

/// JSON lines appended to a file. The one event that can be written twice (written, then
/// the process died before its cursor was saved) is the last line of the file: the first
/// event after a start is not appended again when it is that line.
struct JsonlFile {
    path: PathBuf,
    out: Option<File>,
    first: bool,
}

impl DeliverEvent for JsonlFile {
    /// One write for the batch (after the first event's check against the last line).
    fn deliver_batch(&mut self, items: &[Item]) -> (usize, Result<(), String>) {
        let Some((first, rest)) = items.split_first() else {
            return (0, Ok(()));
        };
        if let Err(e) = self.deliver(first.seq, &first.json, first.alert) {
            return (0, Err(e));
        }
        let mut text = String::with_capacity(rest.iter().map(|i| i.json.len() + 1).sum());
        for it in rest {
            text.push_str(&it.json);
            text.push('\n');
        }
        let Some(out) = self.out.as_mut() else {
            return (
                1,
                Err(format!("event file {}: not open", self.path.display())),
            );
        };
        match out.write_all(text.as_bytes()) {
            Ok(()) => (items.len(), Ok(())),
            Err(e) => {
                self.out = None;
                (1, Err(format!("event file {}: {e}", self.path.display())))
            }
        }
    }

    fn deliver(&mut self, _seq: u64, json: &str, _alert: bool) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("event file {}: {e}", self.path.display());
        if self.out.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(fail)?;
            }
            self.out = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .map_err(fail)?,
            );
        }
        if std::mem::take(&mut self.first) && last_line(&self.path).as_deref() == Some(json) {
            return Ok(());
        }
        let Some(out) = self.out.as_mut() else {
            return Err(format!("event file {}: not open", self.path.display()));
        };
        let mut line = String::with_capacity(json.len() + 1);
        line.push_str(json);
        line.push('\n');
        out.write_all(line.as_bytes()).map_err(|e| {
            self.out = None;
            fail(e)
        })
    }
}

/// The last line of a file (without its newline), read from its end.
fn last_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let take = len.min(1 << 20);
    f.seek(SeekFrom::Start(len - take)).ok()?;
    let mut buf = Vec::with_capacity(take as usize);
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .map(str::to_string)
}

/// One sink's delivery thread: the oldest event it has not had, in order, retried with
/// back-off (0.2 s doubling to 5 s) while the sink fails.
/// Events a sink thread takes at once: one round trip for a batch where the sink allows it.
const BATCH: usize = 256;

fn run(shared: Arc<Shared>, i: usize, mut sink: Box<dyn DeliverEvent>, cursor: PathBuf) {
    let bit = 1u64 << i;
    let mut backoff = Duration::from_millis(200);
    let mut reported = false;
    loop {
        let batch: Vec<Item> = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let draining =
                    !reported && q.drain_until.is_some_and(|t| std::time::Instant::now() < t);
                if q.stopping && !draining {
                    return;
                }
                let k = q.index_of(q.next[i]);
                if let Some(p) = q.items.get(k) {
                    if p.done & bit == 0 {
                        // This and the events after it that the sink has not had, in order.
                        break q
                            .items
                            .range(k..)
                            .take_while(|p| p.done & bit == 0)
                            .take(BATCH)
                            .map(|p| Item {
                                seq: p.seq,
                                json: p.json.clone(),
                                alert: p.alert,
                            })
                            .collect();
                    }
                    // Marked delivered at start (its cursor): move on.
                    let s = p.seq + 1;
                    q.next[i] = s;
                    continue;
                }
                if q.stopping {
                    return;
                }
                // Everything delivered everywhere: the spool can start over.
                if q.items.is_empty() && !q.compacting && q.file_bytes > 0 {
                    if let Some(f) = q.spool.as_mut() {
                        let _ = f.set_len(0);
                    }
                    q.file_bytes = 0;
                    q.dirty = true;
                }
                q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let (n, result) = sink.deliver_batch(&batch);
        let n = n.min(batch.len());
        if n > 0 {
            write_cursor(&cursor, batch[n - 1].seq);
        }
        let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        for it in &batch[..n] {
            let k = q.index_of(it.seq);
            if let Some(p) = q.items.get_mut(k).filter(|p| p.seq == it.seq) {
                p.done |= bit;
            }
            q.next[i] = it.seq + 1;
        }
        q.pop_delivered(shared.all);
        shared.delivered.notify_all();
        match result {
            Ok(()) => {
                q.sinks[i].up = true;
                backoff = Duration::from_millis(200);
                reported = false;
            }
            Err(e) => {
                q.sinks[i].errors += 1;
                q.sinks[i].up = false;
                if !reported {
                    q.errors.push(e);
                    reported = true;
                }
                // Wait for the backoff (or a stop request).
                let (q, _) = shared
                    .wake
                    .wait_timeout_while(q, backoff, |q| !q.stopping)
                    .unwrap_or_else(|e| e.into_inner());
                if q.stopping {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, n: u64, pad: usize) -> Event {
        Event::new(
            kind,
            "src",
            "cam",
            Some(n),
            "2026-12-01T00:00:00.000Z".into(),
            serde_json::json!({ "n": n, "pad": "x".repeat(pad) }),
        )
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sl-spool-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// A sink that never answers: an unroutable webhook port on loopback that refuses.
    fn cfg(name: &str, limits: SpoolLimits) -> DeliveryConfig {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        DeliveryConfig {
            node: name.into(),
            spool_dir: dir(name),
            sinks: vec![Sink::Webhook(format!("http://127.0.0.1:{port}/x"))],
            limits,
            ..Default::default()
        }
    }

    #[test]
    fn a_full_spool_drops_the_oldest_events_never_alerts_and_counts_them() {
        let limits = SpoolLimits {
            max_bytes: 20_000,
            ..Default::default()
        };
        let c = cfg("full", limits);
        let d = Delivery::start(c.clone()).unwrap();
        for n in 0..500 {
            let kind = if n % 50 == 0 { ALERT_KIND } else { "presence" };
            d.send(&ev(kind, n, 200)).unwrap();
        }
        assert!(
            d.backlog_bytes() <= 20_000 + 10 * 400,
            "{}",
            d.backlog_bytes()
        );
        assert!(d.dropped() > 400, "{}", d.dropped());
        let problems = d.take_errors();
        assert_eq!(
            problems.iter().filter(|p| p.contains("spool full")).count(),
            1,
            "reported once: {problems:?}"
        );
        drop(d);
        // What is left on disk after a restart: every alert, and the newest events.
        let d = Delivery::start(c.clone()).unwrap();
        let q = d.shared.queue.lock().unwrap();
        let ns: Vec<u64> = q
            .items
            .iter()
            .map(|p| {
                serde_json::from_str::<serde_json::Value>(&p.json).unwrap()["data"]["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        for a in (0..500).step_by(50) {
            assert!(ns.contains(&a), "alert {a} kept: {ns:?}");
        }
        assert!(ns.contains(&499));
        assert!(!ns.contains(&1), "oldest dropped");
        drop(q);
        drop(d);
        let _ = std::fs::remove_dir_all(c.spool_dir);
    }

    #[test]
    fn events_older_than_max_age_are_dropped_alerts_kept() {
        // The queue alone, with times given: events spooled at 0, 1 and 2 s, an alert at 1 s.
        let item = |seq, t_ms, alert| Pending {
            seq,
            t_ms,
            alert,
            json: Arc::from("{}"),
            done: 0,
        };
        let mut q = Queue {
            items: VecDeque::from([
                item(0, 0, false),
                item(1, 1000, true),
                item(2, 1000, false),
                item(3, 2000, false),
            ]),
            next_seq: 4,
            spool: None,
            file_bytes: 0,
            pending_bytes: 8,
            dirty: false,
            sync_now: false,
            compacting: false,
            stopping: false,
            drain_until: None,
            errors: Vec::new(),
            delivered: 0,
            dropped: 0,
            drop_reported: false,
            fsyncs: 0,
            next: vec![0],
            sinks: Vec::new(),
        };
        let limits = SpoolLimits {
            max_age: Duration::from_secs(1),
            ..Default::default()
        };
        // At 1.5 s only the first is older than 1 s.
        q.enforce(&limits, 1500);
        let seqs = |q: &Queue| q.items.iter().map(|p| p.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&q), [1, 2, 3]);
        assert_eq!(q.dropped, 1);
        // At 10 s everything is: only the alert stays (an undelivered alert does not keep
        // the events after it).
        q.enforce(&limits, 10_000);
        assert_eq!(seqs(&q), [1]);
        assert_eq!(q.dropped, 3);
        assert_eq!(q.errors.len(), 1, "{:?}", q.errors);
        assert!(q.errors[0].contains("never alerts"), "{:?}", q.errors);
    }

    #[test]
    fn the_spool_is_fsynced_at_once_after_an_alert_and_compacted() {
        let c = cfg(
            "sync",
            SpoolLimits {
                fsync_interval: Duration::from_secs(3600),
                max_bytes: 1 << 20,
                ..Default::default()
            },
        );
        let d = Delivery::start(c.clone()).unwrap();
        d.send(&ev("presence", 0, 10)).unwrap();
        d.send(&ev(ALERT_KIND, 1, 10)).unwrap();
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while d.fsyncs() == 0 && std::time::Instant::now() < end {
            std::thread::yield_now();
        }
        assert!(
            d.fsyncs() >= 1,
            "an alert is fsynced without waiting for the interval"
        );
        drop(d);
        let _ = std::fs::remove_dir_all(c.spool_dir);
    }

    fn ns_in(path: &Path) -> Vec<u64> {
        crate::events::read_jsonl(path)
            .unwrap_or_default()
            .iter()
            .map(|e| e.data["n"].as_u64().unwrap())
            .collect()
    }

    fn wait_for(mut ok: impl FnMut() -> bool) -> bool {
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while !ok() {
            if std::time::Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// The elements' older properties: a sink that receives only alerts, or only some kinds,
    /// beside one that receives everything, in one spool; also for what a previous run left.
    #[test]
    fn partial_sinks_receive_only_their_events_also_after_a_restart() {
        let d0 = dir("partial");
        let (all, alerts, kinds) = (d0.join("all.jsonl"), d0.join("a.jsonl"), d0.join("k.jsonl"));
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let down = format!("http://127.0.0.1:{}/x", l.local_addr().unwrap().port());
        drop(l);
        let c = DeliveryConfig {
            node: "partial".into(),
            spool_dir: d0.join("spool"),
            sinks: vec![Sink::File(all.clone())],
            partial: vec![
                (Sink::File(alerts.clone()), Only::Alerts),
                (
                    Sink::File(kinds.clone()),
                    Only::Kinds(vec!["trajectory".into()]),
                ),
                // Down, so that the spool keeps every event for the restart below.
                (Sink::Webhook(down), Only::Alerts),
            ],
            ..Default::default()
        };
        let kind = |n: u64| match n % 3 {
            0 => ALERT_KIND,
            1 => "trajectory",
            _ => "presence",
        };
        let d = Delivery::start(c.clone()).unwrap();
        for n in 0..6 {
            d.send(&ev(kind(n), n, 10)).unwrap();
        }
        assert!(wait_for(
            || ns_in(&all).len() == 6 && ns_in(&kinds).len() == 2
        ));
        assert!(wait_for(|| ns_in(&alerts).len() == 2));
        drop(d);
        // The files' sinks lose what they had (their cursors too): the restart delivers it
        // again from the spool, still filtered.
        for p in [&all, &alerts, &kinds] {
            std::fs::remove_file(p).unwrap();
        }
        for f in std::fs::read_dir(d0.join("spool")).unwrap().flatten() {
            if f.path().to_string_lossy().contains("file-") {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
        let d = Delivery::start(c.clone()).unwrap();
        assert!(wait_for(
            || ns_in(&all).len() == 6 && ns_in(&kinds).len() == 2
        ));
        assert!(wait_for(|| ns_in(&alerts).len() == 2));
        assert_eq!(ns_in(&alerts), vec![0, 3]);
        assert_eq!(ns_in(&kinds), vec![1, 4]);
        assert_eq!(ns_in(&all), (0..6).collect::<Vec<_>>());
        drop(d);
        // A kind no sink receives is not spooled.
        let only = DeliveryConfig {
            node: "partial-only".into(),
            sinks: Vec::new(),
            partial: vec![(Sink::File(kinds.clone()), Only::Alerts)],
            ..c
        };
        let d = Delivery::start(only).unwrap();
        assert_eq!(d.send(&ev("presence", 9, 10)).unwrap(), None);
        assert!(d.send(&ev(ALERT_KIND, 10, 10)).unwrap().is_some());
        drop(d);
        let _ = std::fs::remove_dir_all(d0);
    }

    #[test]
    fn a_sink_given_whole_and_partial_receives_everything() {
        let f = Sink::File("/tmp/x.jsonl".into());
        let c = DeliveryConfig {
            sinks: vec![f.clone()],
            partial: vec![(f.clone(), Only::Alerts)],
            ..Default::default()
        };
        assert_eq!(c.targets(), vec![(f.key(), f.clone(), None)]);
        let c = DeliveryConfig {
            partial: vec![
                (f.clone(), Only::Alerts),
                (f.clone(), Only::Kinds(vec!["t".into()])),
            ],
            ..Default::default()
        };
        let t = c.targets();
        assert_eq!(t.len(), 1);
        let only = t[0].2.clone().unwrap();
        assert!(only.wants("t") && only.wants(ALERT_KIND) && !only.wants("presence"));
    }

    #[test]
    fn spool_lines_cut_or_corrupt_are_skipped() {
        assert!(parse_spool_line("{\"seq\":1,\"event\":{\"kind\":\"x\"}}").is_some());
        assert!(parse_spool_line("{\"seq\":1,\"event\":{\"ki").is_none());
        assert!(parse_spool_line("{\"seq\":-1,\"event\":{}}").is_none());
        assert!(parse_spool_line("{\"seq\":1,\"event\":3}").is_none());
        assert!(parse_spool_line("\u{0}\u{1}garbage").is_none());
        let (_, _, alert, _) =
            parse_spool_line("{\"seq\":1,\"event\":{\"kind\":\"presence-alert\"}}").unwrap();
        assert!(alert, "old lines without the flag: alert from the kind");
    }
}
