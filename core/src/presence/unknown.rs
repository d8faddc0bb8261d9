//! Stable temporary ids for unknown faces: a stranger keeps the same `unknown-id` while seen,
//! across every camera of the process that uses the same embedding model. An unknown whose
//! embedding matches a recent unknown (cosine >= threshold) gets that id; otherwise a new one.
//! Entries unseen for `ttl` are forgotten.
//!
//! With Redis configured, strangers are shared by every node: ids come from `INCR
//! <key>:unknown-seq`, embeddings live in the hash `<key>:unknowns` and last-seen times in the
//! sorted set `<key>:unknowns:seen`. All of that runs on a worker thread: a stranger this
//! node does not know is [`Assignment::Pending`] until the worker has asked Redis whether
//! another node knows them (or minted a new id), at most [`RESOLVE_TIMEOUT`]; facematch keeps
//! such a face undecided meanwhile. When Redis is slow or away, ids are minted locally
//! (`unknown-local-<pid>-<n>`, never colliding with the shared sequence) and the strangers
//! are published when it is back.

use crate::embed::{cosine, l2_normalised};
use crate::worker::Worker;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    /// Sum of the normalised embeddings seen (its direction is the running mean).
    sum: Vec<f32>,
    mean: Vec<f32>,
    last_seen: Instant,
}

/// A new stranger waits this long at most for Redis before getting a local id.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_millis(300);
/// How long [`UnknownRegistry::assign_within`] waits in the frame for the shared id: Redis
/// answers in about a millisecond, so a still photo gets its id in its own frame; a slower
/// answer arrives on a later frame (the face is undecided meanwhile).
pub const IN_FRAME_WAIT: Duration = Duration::from_millis(20);

/// The id of an unknown face: known now, or pending on Redis (poll it with the ticket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    Known(String),
    Pending(u64),
}

struct Waiting {
    ticket: u64,
    embedding: Vec<f32>,
    since: Instant,
}

pub struct UnknownRegistry {
    prefix: String,
    next: u64,
    next_ticket: u64,
    entries: Vec<Entry>,
    waiting: Vec<Waiting>,
    /// Tickets decided (also locally, after a timeout), kept until polled or stale.
    decided: HashMap<u64, (String, Instant)>,
    pub ttl: Duration,
    remote: Option<Remote>,
    /// The element whose settings the registry runs with.
    creator: Option<String>,
}

enum Job {
    Resolve {
        ticket: u64,
        embedding: Vec<f32>,
        threshold: f32,
    },
    Publish {
        id: String,
        mean: Vec<f32>,
    },
}

struct RemoteShared {
    resolved: Mutex<HashMap<u64, Option<String>>>,
    resolved_cv: Condvar,
    problems: Mutex<Vec<String>>,
    healthy: AtomicBool,
}

/// The registry's side of the Redis worker.
struct Remote {
    url: String,
    key: String,
    tx: SyncSender<Job>,
    shared: Arc<RemoteShared>,
    _worker: Option<Worker>,
}

const REMOTE_QUEUE: usize = 256;
const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// Strangers waiting to be published through an outage, at most.
const UNSENT_MAX: usize = 10_000;

struct RemoteLink {
    prefix: String,
    key: String,
    ttl: Duration,
    shared: Arc<RemoteShared>,
    redis: crate::redis_store::Reconnecting,
    unsent: HashMap<String, Vec<f32>>,
    pruned_at: Option<Instant>,
}

/// Says an outage or its end once, and keeps `healthy` in step.
fn note(shared: &RemoteShared, news: crate::redis_store::LinkNews) {
    use crate::redis_store::LinkNews;
    let text = match news {
        LinkNews::Down(why) => {
            shared.healthy.store(false, Ordering::Relaxed);
            why
        }
        LinkNews::Back => {
            shared.healthy.store(true, Ordering::Relaxed);
            "Redis is back: unknown ids are shared again".to_string()
        }
    };
    if let Ok(mut v) = shared.problems.lock() {
        v.push(text);
    }
}

impl RemoteLink {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        loop {
            match rx.recv_timeout(PRUNE_EVERY) {
                Ok(Job::Resolve {
                    ticket,
                    embedding,
                    threshold,
                }) => {
                    let id = self.resolve(&embedding, threshold);
                    if let Ok(mut r) = self.shared.resolved.lock() {
                        r.insert(ticket, id);
                    }
                    self.shared.resolved_cv.notify_all();
                }
                Ok(Job::Publish { id, mean }) => {
                    if self.unsent.len() < UNSENT_MAX || self.unsent.contains_key(&id) {
                        self.unsent.insert(id, mean);
                    }
                    self.flush();
                }
                Err(RecvTimeoutError::Timeout) => self.flush(),
                Err(RecvTimeoutError::Disconnected) => return,
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

    fn keys(&self) -> (String, String, String) {
        (
            format!("{}:unknowns", self.key),
            format!("{}:unknowns:seen", self.key),
            format!("{}:unknown-seq", self.key),
        )
    }

    /// The shared id of the stranger: another node's (cosine >= threshold), else a new one,
    /// published at once so that a node asking next finds it. None: Redis failed.
    fn resolve(&mut self, e: &[f32], threshold: f32) -> Option<String> {
        use redis::Commands;
        let (hash, seen, seq) = self.keys();
        let prefix = self.prefix.clone();
        let cutoff = unix_now() - self.ttl.as_secs_f64();
        let prune = self.pruned_at.is_none_or(|t| t.elapsed() >= PRUNE_EVERY);
        let con = self.con()?;
        let res = (|| -> redis::RedisResult<String> {
            if prune {
                let stale: Vec<String> = con.zrangebyscore(&seen, "-inf", cutoff)?;
                for id in &stale {
                    let _: i64 = con.hdel(&hash, id)?;
                    let _: i64 = con.zrem(&seen, id)?;
                }
            }
            let all: Vec<(String, Vec<u8>)> = con.hgetall(&hash)?;
            let known = all
                .into_iter()
                .filter_map(|(id, b)| decode_vector(&b).map(|v| (cosine(&v, e), id)))
                .filter(|(s, _)| *s >= threshold)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, id)| id);
            let id = match known {
                Some(id) => id,
                None => {
                    let n: u64 = con.incr(&seq, 1)?;
                    let id = format!("{prefix}{n}");
                    let _: i64 = con.hset(&hash, &id, encode_vector(e))?;
                    let _: i64 = con.zadd(&seen, &id, unix_now())?;
                    id
                }
            };
            Ok(id)
        })();
        if prune && res.is_ok() {
            self.pruned_at = Some(Instant::now());
        }
        match res {
            Ok(id) => Some(id),
            Err(err) => {
                self.failed(err);
                None
            }
        }
    }

    fn flush(&mut self) {
        use redis::Commands;
        if self.unsent.is_empty() {
            return;
        }
        let (hash, seen, _) = self.keys();
        let items: Vec<(String, Vec<f32>)> = self.unsent.drain().collect();
        let mut left = Vec::new();
        let mut error = None;
        match self.con() {
            None => left = items,
            Some(con) => {
                for (id, mean) in items {
                    if error.is_some() {
                        left.push((id, mean));
                        continue;
                    }
                    let r = (|| -> redis::RedisResult<()> {
                        let _: i64 = con.hset(&hash, &id, encode_vector(&mean))?;
                        let _: i64 = con.zadd(&seen, &id, unix_now())?;
                        Ok(())
                    })();
                    if let Err(e) = r {
                        left.push((id, mean));
                        error = Some(e);
                    }
                }
            }
        }
        self.unsent.extend(left);
        if let Some(e) = error {
            self.failed(e);
        }
    }
}

const REMOTE_RETRY: Duration = Duration::from_secs(10);

fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A vector of little-endian f32 (None unless the length is a whole number of floats).
fn decode_vector(b: &[u8]) -> Option<Vec<f32>> {
    (b.len().is_multiple_of(4) && !b.is_empty()).then(|| {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl UnknownRegistry {
    pub fn new(prefix: &str, ttl: Duration) -> Self {
        UnknownRegistry {
            prefix: prefix.to_string(),
            next: 1,
            next_ticket: 1,
            entries: Vec::new(),
            waiting: Vec::new(),
            decided: HashMap::new(),
            ttl,
            remote: None,
            creator: None,
        }
    }

    /// `element` starts using the registry with its `ttl` and Redis (url, key). The first
    /// element's settings stay in force; a warning naming both elements when they differ.
    pub fn join(
        &mut self,
        element: &str,
        ttl: Duration,
        redis: Option<(&str, &str)>,
    ) -> Option<String> {
        let Some(creator) = self.creator.clone() else {
            self.creator = Some(element.to_string());
            self.ttl = ttl;
            if let Some((url, key)) = redis {
                self.with_redis(url, key);
            }
            return None;
        };
        let mut diff = Vec::new();
        if ttl != self.ttl {
            diff.push(format!(
                "unknown-ttl={} (registry: {})",
                ttl.as_secs_f64(),
                self.ttl.as_secs_f64()
            ));
        }
        let ours = self
            .remote
            .as_ref()
            .map(|r| (r.url.as_str(), r.key.as_str()));
        if redis != ours {
            let show = |r: Option<(&str, &str)>| {
                r.map_or("none".to_string(), |(u, k)| {
                    format!("{} {k}", crate::redis_store::redact(u))
                })
            };
            diff.push(format!(
                "redis-url/gallery-key={} (registry: {})",
                show(redis),
                show(ours)
            ));
        }
        (!diff.is_empty() && creator != element).then(|| {
            format!(
                "{element} shares the unknown-id registry of {creator}, whose settings stay in force: {}",
                diff.join(", ")
            )
        })
    }

    /// Shares strangers with other nodes through Redis at `url`, under `key` (starts the
    /// worker thread; a second call with the same URL and key changes nothing).
    pub fn with_redis(&mut self, url: &str, key: &str) {
        if self
            .remote
            .as_ref()
            .is_some_and(|r| r.url == url && r.key == key)
        {
            return;
        }
        let (tx, rx) = mpsc::sync_channel(REMOTE_QUEUE);
        let shared = Arc::new(RemoteShared {
            resolved: Mutex::new(HashMap::new()),
            resolved_cv: Condvar::new(),
            problems: Mutex::new(Vec::new()),
            healthy: AtomicBool::new(true),
        });
        let link = RemoteLink {
            prefix: self.prefix.clone(),
            key: key.to_string(),
            ttl: self.ttl,
            shared: shared.clone(),
            redis: crate::redis_store::Reconnecting::new(
                url,
                Duration::from_millis(500),
                REMOTE_RETRY,
            ),
            unsent: HashMap::new(),
            pruned_at: None,
        };
        let panic_shared = shared.clone();
        let worker = Worker::spawn(
            "sl-unknowns",
            move |why| {
                panic_shared.healthy.store(false, Ordering::Relaxed);
                if let Ok(mut p) = panic_shared.problems.lock() {
                    p.push(why);
                }
            },
            move || link.run(rx),
        );
        let worker = match worker {
            Ok(w) => Some(w),
            Err(e) => {
                shared.healthy.store(false, Ordering::Relaxed);
                if let Ok(mut p) = shared.problems.lock() {
                    p.push(format!("cannot start the unknown-id worker: {e}"));
                }
                None
            }
        };
        self.remote = Some(Remote {
            url: url.to_string(),
            key: key.to_string(),
            tx,
            shared,
            _worker: worker,
        });
    }

    /// Redis problems (an outage, its end) since the last call, joined; each reported once.
    pub fn take_remote_error(&mut self) -> Option<String> {
        let r = self.remote.as_ref()?;
        let p = r
            .shared
            .problems
            .lock()
            .ok()
            .map(|mut p| std::mem::take(&mut *p))?;
        (!p.is_empty()).then(|| p.join("; "))
    }

    fn mint_local(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        if self.remote.is_some() {
            // Minted without Redis: must not collide with the shared sequence.
            format!("{}local-{}-{n}", self.prefix, std::process::id())
        } else {
            format!("{}{n}", self.prefix)
        }
    }

    fn publish(&self, id: &str, mean: &[f32]) {
        if let Some(r) = &self.remote {
            // Full queue: the next sighting publishes again.
            let _ = r.tx.try_send(Job::Publish {
                id: id.to_string(),
                mean: mean.to_vec(),
            });
        }
    }

    fn add_entry(&mut self, id: &str, e: &[f32], now: Instant) {
        if let Some(x) = self.entries.iter_mut().find(|x| x.id == id) {
            for (a, b) in x.sum.iter_mut().zip(e) {
                *a += b;
            }
            x.mean = l2_normalised(&x.sum);
            x.last_seen = now;
            return;
        }
        self.entries.push(Entry {
            id: id.to_string(),
            sum: e.to_vec(),
            mean: e.to_vec(),
            last_seen: now,
        });
    }

    /// The id for an unknown face with embedding `e`, at time `now`: known at once when the
    /// stranger was seen here (or there is no Redis, or Redis is away); else pending.
    pub fn assign(&mut self, e: &[f32], threshold: f32, now: Instant) -> Assignment {
        self.entries
            .retain(|x| now.duration_since(x.last_seen) <= self.ttl);
        self.decided
            .retain(|_, (_, t)| now.duration_since(*t) <= Duration::from_secs(60));
        // Waits whose track ended before they were polled.
        self.waiting
            .retain(|w| now.duration_since(w.since) <= 100 * RESOLVE_TIMEOUT);
        if let Some(r) = &self.remote
            && let Ok(mut m) = r.shared.resolved.lock()
        {
            let waiting: Vec<u64> = self.waiting.iter().map(|w| w.ticket).collect();
            m.retain(|t, _| waiting.contains(t));
        }
        let best = self
            .entries
            .iter_mut()
            .map(|x| (cosine(&x.mean, e), x))
            .filter(|(s, _)| *s >= threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, x)) = best {
            for (a, b) in x.sum.iter_mut().zip(e) {
                *a += b;
            }
            x.mean = l2_normalised(&x.sum);
            x.last_seen = now;
            let (id, mean) = (x.id.clone(), x.mean.clone());
            self.publish(&id, &mean);
            return Assignment::Known(id);
        }
        // The same stranger already waiting (another camera, the same moment): same ticket.
        if let Some(w) = self
            .waiting
            .iter()
            .find(|w| cosine(&w.embedding, e) >= threshold)
        {
            return Assignment::Pending(w.ticket);
        }
        if let Some(r) = &self.remote
            && r.shared.healthy.load(Ordering::Relaxed)
        {
            let ticket = self.next_ticket;
            let job = Job::Resolve {
                ticket,
                embedding: e.to_vec(),
                threshold,
            };
            if r.tx.try_send(job).is_ok() {
                self.next_ticket += 1;
                self.waiting.push(Waiting {
                    ticket,
                    embedding: e.to_vec(),
                    since: now,
                });
                return Assignment::Pending(ticket);
            }
        }
        let id = self.mint_local();
        self.add_entry(&id, e, now);
        self.publish(&id, e);
        Assignment::Known(id)
    }

    /// The id of a pending stranger once Redis answered (or after [`RESOLVE_TIMEOUT`], a
    /// local one); None while it is still waiting.
    pub fn poll(&mut self, ticket: u64, now: Instant) -> Option<String> {
        if let Some((id, _)) = self.decided.get(&ticket) {
            return Some(id.clone());
        }
        let k = self.waiting.iter().position(|w| w.ticket == ticket)?;
        let answer = self
            .remote
            .as_ref()
            .and_then(|r| r.shared.resolved.lock().ok()?.remove(&ticket));
        let w = &self.waiting[k];
        let id = match answer {
            Some(Some(id)) => id,
            // Redis failed, or is too slow: decided here.
            Some(None) => self.mint_local(),
            None if now.duration_since(w.since) >= RESOLVE_TIMEOUT => self.mint_local(),
            None => return None,
        };
        let w = self.waiting.swap_remove(k);
        self.add_entry(&id, &w.embedding, now);
        self.publish(&id, &w.embedding);
        self.decided.insert(ticket, (id.clone(), now));
        Some(id)
    }

    /// [`UnknownRegistry::assign`] on a shared registry, waiting up to `wait` for a pending
    /// stranger's shared id without holding the registry's lock (other cameras go on).
    pub fn assign_within(
        reg: &Mutex<UnknownRegistry>,
        e: &[f32],
        threshold: f32,
        wait: Duration,
    ) -> Assignment {
        let (a, shared) = {
            let mut r = reg.lock().unwrap_or_else(|p| p.into_inner());
            let a = r.assign(e, threshold, Instant::now());
            (a, r.remote.as_ref().map(|x| x.shared.clone()))
        };
        let (Assignment::Pending(ticket), Some(shared)) = (&a, shared) else {
            return a;
        };
        if let Ok(g) = shared.resolved.lock() {
            let _ = shared
                .resolved_cv
                .wait_timeout_while(g, wait, |m| !m.contains_key(ticket));
        }
        let mut r = reg.lock().unwrap_or_else(|p| p.into_inner());
        match r.poll(*ticket, Instant::now()) {
            Some(id) => Assignment::Known(id),
            None => a,
        }
    }

    /// False while Redis is unavailable (ids are then local).
    pub fn shared(&self) -> bool {
        self.remote
            .as_ref()
            .is_some_and(|r| r.shared.healthy.load(Ordering::Relaxed))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

static REGISTRIES: LazyLock<Mutex<HashMap<String, Arc<Mutex<UnknownRegistry>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The process-wide registry for an embedding model (shared by every facematch instance).
/// One per embedding model and Redis (URL and key, or none): strangers are shared by the
/// elements that follow the same Redis, and never mixed with those of another.
pub fn shared_registry(
    model: &str,
    prefix: &str,
    ttl: Duration,
    redis: Option<(&str, &str)>,
) -> Arc<Mutex<UnknownRegistry>> {
    let mut m = REGISTRIES.lock().unwrap_or_else(|e| e.into_inner());
    let (url, key) = redis.unwrap_or_default();
    m.entry(format!("{model}\u{0}{prefix}\u{0}{url}\u{0}{key}"))
        .or_insert_with(|| Arc::new(Mutex::new(UnknownRegistry::new(prefix, ttl))))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_stranger_same_id_new_stranger_new_id_and_expiry() {
        let mut r = UnknownRegistry::new("unknown-", Duration::from_secs(60));
        let t0 = Instant::now();
        let a = l2_normalised(&[1.0, 0.1, 0.0]);
        let a2 = l2_normalised(&[1.0, 0.2, 0.05]);
        let b = l2_normalised(&[0.0, 1.0, 0.0]);
        let known = |s: &str| Assignment::Known(s.to_string());
        assert_eq!(r.assign(&a, 0.5, t0), known("unknown-1"));
        assert_eq!(
            r.assign(&a2, 0.5, t0 + Duration::from_secs(1)),
            known("unknown-1")
        );
        assert_eq!(
            r.assign(&b, 0.5, t0 + Duration::from_secs(2)),
            known("unknown-2")
        );
        assert_eq!(r.len(), 2);
        // After the TTL the first stranger is forgotten and gets a fresh id.
        assert_eq!(
            r.assign(&a, 0.5, t0 + Duration::from_secs(70)),
            known("unknown-3")
        );
    }

    #[test]
    fn shared_registry_is_one_per_model() {
        let x = shared_registry("m-test", "u-", Duration::from_secs(1), None);
        let y = shared_registry("m-test", "u-", Duration::from_secs(1), None);
        assert!(Arc::ptr_eq(&x, &y));
        let z = shared_registry("other-model", "u-", Duration::from_secs(1), None);
        assert!(!Arc::ptr_eq(&x, &z));
        let r = shared_registry(
            "m-test",
            "u-",
            Duration::from_secs(1),
            Some(("redis://h/", "k")),
        );
        assert!(!Arc::ptr_eq(&x, &r), "another Redis, another registry");
    }
}
