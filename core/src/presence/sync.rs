//! A presence group shared by several nodes through Redis, on a worker thread.
//!
//! The video path never waits on Redis: the element enqueues requests (a sighting, a
//! stranger seen by a camera, an absence alert to claim) into a bounded queue and reads the
//! worker's results later; it decides on its local state in the meantime. The worker:
//!
//! - publishes each identity's last sighting (`<prefix>:seen` / `<prefix>:labels`, newer
//!   wins), and pulls every node's sightings every `refresh` and on request, so that a node
//!   checks the others before declaring anyone out of view or absent;
//! - claims absence alerts so that one node raises each (`<prefix>:alerted:<identity>`,
//!   the absence's last sighting with a tolerance);
//! - counts distinct cameras per stranger across nodes and raises the unknown-person alert
//!   once (`sightline:unknown:<group>:<uid>:cameras|alerted`).
//!
//! Every connection has connect, read and write timeouts. While Redis is away the link is
//! `degraded`: sightings wait (the newest per identity) and are published when it is back,
//! a claim is granted locally (an alert twice is better than none), and the element runs the
//! unknown-person consensus on its own cameras. Each outage is reported once, and its end too.

use crate::redis_store::{LinkNews, Reconnecting, redact};
use crate::worker::Worker;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Atomically records a sighting of an unknown id by one camera of one node and raises the
/// alert once when enough distinct cameras saw it within the window. Returns the number of
/// cameras when this call raised the alert, else 0.
pub const UNKNOWN_CONSENSUS: &str = r"
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[4]) and redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return n
end
return 0
";

/// Claims the alert of one absence: an alert already raised for a last sighting within
/// ARGV[2] of ours is the same absence (nodes may know the last sighting a little apart).
pub const CLAIM_ALERT: &str = r"
local prev = tonumber(redis.call('GET', KEYS[1]) or '-1')
if prev >= 0 and prev >= tonumber(ARGV[1]) - tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
";

/// Records a sighting if it is newer than the one stored.
pub const SEEN_IF_NEWER: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  return 1
end
return 0
";

/// How long an absence-alert claim is remembered in Redis.
const CLAIM_TTL_MS: u64 = 30 * 86_400_000;

#[derive(Debug, Clone)]
pub struct GroupSyncConfig {
    pub url: String,
    /// The group's name as used in keys (slug).
    pub group: String,
    /// This node's id (in consensus members).
    pub node: String,
    /// How often every node's sightings are pulled.
    pub refresh: Duration,
    /// Read/write timeout of the connection.
    pub io_timeout: Duration,
    /// Requests waiting at most; more are refused (the caller decides locally).
    pub queue: usize,
}

impl GroupSyncConfig {
    pub fn new(url: &str, group: &str, node: &str) -> Self {
        GroupSyncConfig {
            url: url.to_string(),
            group: group.to_string(),
            node: node.to_string(),
            refresh: Duration::from_secs(1),
            io_timeout: Duration::from_secs(1),
            queue: 1024,
        }
    }

    fn presence_prefix(&self) -> String {
        format!("sightline:presence:{}", self.group)
    }

    fn unknown_prefix(&self) -> String {
        format!("sightline:unknown:{}", self.group)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `identity` seen at clock time `at` (ns).
    Seen {
        identity: String,
        label: String,
        at: u64,
    },
    /// A stranger seen by `camera`; the alert needs `needed` cameras within `window`.
    Unknown {
        uid: String,
        camera: String,
        needed: u32,
        window: Duration,
    },
    /// May this node raise the alert of `identity`'s absence since `last_seen`?
    Claim {
        token: u64,
        identity: String,
        last_seen: u64,
        tolerance: u64,
    },
    /// Pull every node's sightings now; `ticket` (from [`GroupSync::sync`]) is marked done
    /// after the pull, every request sent before it handled.
    Refresh { ticket: u64 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every sighting of the group known to Redis: (identity, clock time, label).
    Sightings(Vec<(String, u64, String)>),
    /// This node raised the shared alert for stranger `uid`, seen by `cameras` cameras.
    UnknownAlert { uid: String, cameras: i64 },
    /// Redis could not count this stranger's sighting: decide locally.
    UnknownUndecided { uid: String },
    /// The claim's answer; `won` is true as well when Redis could not be asked.
    Claimed { token: u64, won: bool },
}

struct Shared {
    outcomes: Mutex<VecDeque<Outcome>>,
    problems: Mutex<Vec<String>>,
    healthy: AtomicBool,
    /// Tickets handed out by `sync`, and the highest one the worker has answered.
    tickets: AtomicU64,
    answered: Mutex<u64>,
    answered_cv: Condvar,
    refused: AtomicU64,
    stop: AtomicBool,
}

/// The element's handle on the worker. Dropping it stops the worker within a bounded time.
pub struct GroupSync {
    tx: Option<SyncSender<Request>>,
    shared: Arc<Shared>,
    worker: Option<Worker>,
    url: String,
}

impl GroupSync {
    /// Starts the worker. `notify` runs on the worker thread after results were added (the
    /// element wakes its timer with it); it must not block.
    pub fn start(
        cfg: GroupSyncConfig,
        notify: impl Fn() + Send + 'static,
        on_panic: impl FnOnce(String) + Send + 'static,
    ) -> std::io::Result<GroupSync> {
        let (tx, rx) = mpsc::sync_channel(cfg.queue.max(1));
        let shared = Arc::new(Shared {
            outcomes: Mutex::new(VecDeque::new()),
            problems: Mutex::new(Vec::new()),
            healthy: AtomicBool::new(true),
            tickets: AtomicU64::new(0),
            answered: Mutex::new(0),
            answered_cv: Condvar::new(),
            refused: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let url = cfg.url.clone();
        let s = shared.clone();
        let worker = Worker::spawn(&format!("sl-group-{}", cfg.group), on_panic, move || {
            Link::new(cfg, s).run(rx, notify)
        })?;
        Ok(GroupSync {
            tx: Some(tx),
            shared,
            worker: Some(worker),
            url,
        })
    }

    /// Enqueues without waiting; gives the request back when the queue is full (or the
    /// worker is gone), for the caller to decide locally.
    pub fn send(&self, r: Request) -> Result<(), Request> {
        let Some(tx) = &self.tx else { return Err(r) };
        match tx.try_send(r) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(r)) | Err(TrySendError::Disconnected(r)) => {
                if self.shared.refused.fetch_add(1, Ordering::Relaxed) == 0 {
                    self.problem(format!(
                        "Redis {} too slow: its request queue is full, deciding locally",
                        redact(&self.url)
                    ));
                }
                Err(r)
            }
        }
    }

    fn problem(&self, p: String) {
        if let Ok(mut v) = self.shared.problems.lock() {
            v.push(p);
        }
    }

    /// False while Redis is unreachable, failing or too slow.
    pub fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
    }

    /// Requests refused because the queue was full, since the start.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }

    pub fn take_outcomes(&self) -> Vec<Outcome> {
        self.shared
            .outcomes
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// Outages and recoveries since the last call, each worded for a warning (once each).
    pub fn take_problems(&self) -> Vec<String> {
        self.shared
            .problems
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// Asks for a pull of every node's sightings and waits, at most `timeout`, until the
    /// worker has handled every request sent before this call and published their results;
    /// true if it did. A pull the worker started earlier on its own does not count.
    pub fn sync(&self, timeout: Duration) -> bool {
        let ticket = self.shared.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        if self.send(Request::Refresh { ticket }).is_err() {
            return false;
        }
        let Ok(g) = self.shared.answered.lock() else {
            return false;
        };
        self.shared
            .answered_cv
            .wait_timeout_while(g, timeout, |n| *n < ticket)
            .map(|(n, _)| *n >= ticket)
            .unwrap_or(false)
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for GroupSync {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Disconnects the channel: the worker ends after the request in progress, whose
        // Redis call is bounded by the connection's timeouts.
        self.tx.take();
        if let Some(w) = self.worker.take() {
            w.finish_within(Duration::from_millis(500));
        }
    }
}

/// Says an outage or its end once, and keeps `healthy` in step.
fn note(shared: &Shared, news: LinkNews) {
    let text = match news {
        LinkNews::Down(why) => {
            shared.healthy.store(false, Ordering::Relaxed);
            format!(
                "Shared presence state is local while Redis is unavailable (caught up when it is back): {why}"
            )
        }
        LinkNews::Back => {
            shared.healthy.store(true, Ordering::Relaxed);
            "Redis is back: shared presence state caught up".to_string()
        }
    };
    if let Ok(mut v) = shared.problems.lock() {
        v.push(text);
    }
}

struct Link {
    cfg: GroupSyncConfig,
    shared: Arc<Shared>,
    redis: Reconnecting,
    /// Sightings not yet published (the newest per identity), kept through outages.
    unsent: HashMap<String, (u64, String)>,
    /// The newest sighting published per identity.
    pushed: HashMap<String, u64>,
}

impl Link {
    fn new(cfg: GroupSyncConfig, shared: Arc<Shared>) -> Self {
        Link {
            redis: Reconnecting::new(&cfg.url, cfg.io_timeout, Duration::from_secs(5)),
            cfg,
            shared,
            unsent: HashMap::new(),
            pushed: HashMap::new(),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Request>, notify: impl Fn()) {
        let mut next_refresh = Instant::now();
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return;
            }
            let wait = next_refresh.saturating_duration_since(Instant::now());
            let req = match rx.recv_timeout(wait) {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut out = Vec::new();
            // The highest sync ticket this pass answers.
            let mut ticket = 0;
            let refresh = match req {
                None => true,
                Some(Request::Refresh { ticket: t }) => {
                    ticket = t;
                    true
                }
                Some(r) => {
                    self.handle(r, &mut out);
                    // Drain what else is waiting before pulling, so a pull sees it.
                    while let Ok(r) = rx.try_recv() {
                        if let Request::Refresh { ticket: t } = r {
                            ticket = ticket.max(t);
                            next_refresh = Instant::now();
                        } else {
                            self.handle(r, &mut out);
                        }
                    }
                    Instant::now() >= next_refresh
                }
            };
            if refresh {
                self.flush_unsent();
                if let Some(all) = self.pull() {
                    out.push(Outcome::Sightings(all));
                }
                next_refresh = Instant::now() + self.cfg.refresh;
            }
            // Results first, then the ticket: a waiter sees every result of the requests sent
            // before its Refresh.
            if !out.is_empty() {
                if let Ok(mut q) = self.shared.outcomes.lock() {
                    q.extend(out);
                }
                notify();
            }
            if ticket > 0 {
                if let Ok(mut n) = self.shared.answered.lock() {
                    *n = (*n).max(ticket);
                }
                self.shared.answered_cv.notify_all();
            }
        }
    }

    fn con(&mut self) -> Option<&mut redis::Connection> {
        let (con, news) = self.redis.get();
        if let Some(n) = news {
            note(&self.shared, n);
        }
        con
    }

    fn failed(&mut self, e: redis::RedisError) {
        if let Some(n) = self.redis.failed(&e) {
            note(&self.shared, n);
        }
    }

    fn handle(&mut self, r: Request, out: &mut Vec<Outcome>) {
        match r {
            Request::Seen {
                identity,
                label,
                at,
            } => {
                if self.pushed.get(&identity).is_some_and(|p| *p >= at) {
                    return;
                }
                let newer = self.unsent.get(&identity).is_none_or(|(t, _)| *t < at);
                if newer {
                    self.unsent.insert(identity, (at, label));
                }
                self.flush_unsent();
            }
            Request::Unknown {
                uid,
                camera,
                needed,
                window,
            } => match self.unknown(&uid, &camera, needed, window) {
                Some(0) => {}
                Some(n) => out.push(Outcome::UnknownAlert { uid, cameras: n }),
                None => out.push(Outcome::UnknownUndecided { uid }),
            },
            Request::Claim {
                token,
                identity,
                last_seen,
                tolerance,
            } => {
                let won = self.claim(&identity, last_seen, tolerance).unwrap_or(true);
                out.push(Outcome::Claimed { token, won });
            }
            Request::Refresh { .. } => {}
        }
    }

    fn flush_unsent(&mut self) {
        if self.unsent.is_empty() {
            return;
        }
        let prefix = self.cfg.presence_prefix();
        let (seen, labels) = (format!("{prefix}:seen"), format!("{prefix}:labels"));
        let pending: Vec<(String, (u64, String))> = self.unsent.drain().collect();
        let mut left = Vec::new();
        let mut done = Vec::new();
        let mut error = None;
        {
            let Some(con) = self.con() else {
                self.unsent.extend(pending);
                return;
            };
            for (id, (t, label)) in pending {
                if error.is_some() {
                    left.push((id, (t, label)));
                    continue;
                }
                let res: redis::RedisResult<i64> = redis::cmd("EVAL")
                    .arg(SEEN_IF_NEWER)
                    .arg(2)
                    .arg(&seen)
                    .arg(&labels)
                    .arg(&id)
                    .arg(t)
                    .arg(&label)
                    .query(con);
                match res {
                    Ok(_) => done.push((id, t)),
                    Err(e) => {
                        left.push((id, (t, label)));
                        error = Some(e);
                    }
                }
            }
        }
        self.pushed.extend(done);
        self.unsent.extend(left);
        if let Some(e) = error {
            self.failed(e);
        }
    }

    fn pull(&mut self) -> Option<Vec<(String, u64, String)>> {
        let prefix = self.cfg.presence_prefix();
        let (seen, labels) = (format!("{prefix}:seen"), format!("{prefix}:labels"));
        let con = self.con()?;
        type Maps = (HashMap<String, u64>, HashMap<String, String>);
        let res = (|| -> redis::RedisResult<Maps> {
            Ok((
                redis::cmd("HGETALL").arg(&seen).query(con)?,
                redis::cmd("HGETALL").arg(&labels).query(con)?,
            ))
        })();
        match res {
            Ok((t, l)) => Some(
                t.into_iter()
                    .map(|(id, t)| {
                        let label = l.get(&id).cloned().unwrap_or_default();
                        (id, t, label)
                    })
                    .collect(),
            ),
            Err(e) => {
                self.failed(e);
                None
            }
        }
    }

    fn claim(&mut self, identity: &str, last_seen: u64, tolerance: u64) -> Option<bool> {
        let key = format!("{}:alerted:{identity}", self.cfg.presence_prefix());
        let con = self.con()?;
        let res: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(CLAIM_ALERT)
            .arg(1)
            .arg(key)
            .arg(last_seen)
            .arg(tolerance)
            .arg(CLAIM_TTL_MS)
            .query(con);
        match res {
            Ok(v) => Some(v == 1),
            Err(e) => {
                self.failed(e);
                None
            }
        }
    }

    fn unknown(&mut self, uid: &str, camera: &str, needed: u32, window: Duration) -> Option<i64> {
        let prefix = self.cfg.unknown_prefix();
        let member = format!("{}/{camera}", self.cfg.node);
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let con = self.con()?;
        let res: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(UNKNOWN_CONSENSUS)
            .arg(2)
            .arg(format!("{prefix}:{uid}:cameras"))
            .arg(format!("{prefix}:{uid}:alerted"))
            .arg(unix_ms)
            .arg(member)
            .arg(window.as_millis().max(1) as u64)
            .arg(needed)
            .query(con);
        match res {
            Ok(n) => Some(n),
            Err(e) => {
                self.failed(e);
                None
            }
        }
    }
}

/// Rate limit of the element side: (key) -> when it last went to Redis; entries older than
/// `keep` are pruned on insert, so the map never outgrows the strangers of one window.
#[derive(Debug, Default)]
pub struct RateLimit {
    last: HashMap<String, Instant>,
    pruned_at: Option<Instant>,
}

impl RateLimit {
    /// True (and remembered) if `key` did not pass within `every`.
    pub fn pass(&mut self, key: &str, every: Duration, now: Instant) -> bool {
        if self
            .last
            .get(key)
            .is_some_and(|t| now.saturating_duration_since(*t) < every)
        {
            return false;
        }
        if self
            .pruned_at
            .is_none_or(|t| now.saturating_duration_since(t) >= every)
        {
            self.last
                .retain(|_, t| now.saturating_duration_since(*t) < every);
            self.pruned_at = Some(now);
        }
        self.last.insert(key.to_string(), now);
        true
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_passes_once_per_interval_and_forgets_old_keys() {
        let mut r = RateLimit::default();
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert!(r.pass("a", s, t0));
        assert!(!r.pass("a", s, t0 + Duration::from_millis(500)));
        assert!(r.pass("a", s, t0 + Duration::from_millis(1500)));
        for k in 0..100 {
            r.pass(&format!("k{k}"), s, t0 + Duration::from_millis(1600));
        }
        // 10 s later only the new key is left.
        assert!(r.pass("z", s, t0 + Duration::from_secs(11)));
        assert_eq!(r.len(), 1);
    }
}
