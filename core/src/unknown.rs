//! Stable temporary ids for unknown faces: a stranger keeps the same `unknown-id` while seen,
//! across every camera of the process that uses the same embedding model. An unknown whose
//! embedding matches a recent unknown (cosine >= threshold) gets that id; otherwise a new one.
//! Entries unseen for `ttl` are forgotten.
//!
//! With Redis configured, strangers are shared by every node: ids come from `INCR
//! <key>:unknown-seq`, embeddings live in the hash `<key>:unknowns` and last-seen times in the
//! sorted set `<key>:unknowns:seen`. A node that does not know a stranger locally asks Redis
//! before minting a new id. Redis trouble never blocks the stream for long: after a failure
//! the registry works locally for 10 s before trying again.

use crate::embed::{cosine, l2_normalised};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    /// Sum of the normalised embeddings seen (its direction is the running mean).
    sum: Vec<f32>,
    mean: Vec<f32>,
    last_seen: Instant,
}

pub struct UnknownRegistry {
    prefix: String,
    next: u64,
    entries: Vec<Entry>,
    pub ttl: Duration,
    remote: Option<Remote>,
}

struct Remote {
    url: String,
    key: String,
    con: Option<redis::Connection>,
    retry_at: Option<Instant>,
    last_error: Option<String>,
}

const REMOTE_RETRY: Duration = Duration::from_secs(10);

impl Remote {
    fn con(&mut self, now: Instant) -> Option<&mut redis::Connection> {
        if self.con.is_none() && self.retry_at.is_none_or(|t| now >= t) {
            match crate::redis_store::connect(&self.url) {
                Ok(c) => {
                    let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
                    let _ = c.set_write_timeout(Some(Duration::from_millis(500)));
                    self.con = Some(c);
                    self.retry_at = None;
                }
                Err(e) => {
                    self.last_error = Some(e);
                    self.retry_at = Some(now + REMOTE_RETRY);
                }
            }
        }
        self.con.as_mut()
    }

    fn failed(&mut self, now: Instant, e: redis::RedisError) {
        self.last_error = Some(format!(
            "Redis {}: {e}",
            crate::redis_store::redact(&self.url)
        ));
        self.con = None;
        self.retry_at = Some(now + REMOTE_RETRY);
    }

    /// The id of a stranger other nodes saw (cosine >= threshold), if any.
    fn lookup(&mut self, e: &[f32], threshold: f32, ttl: Duration, now: Instant) -> Option<String> {
        use redis::Commands;
        let (hash, seen) = (
            format!("{}:unknowns", self.key),
            format!("{}:unknowns:seen", self.key),
        );
        let cutoff = unix_now() - ttl.as_secs_f64();
        let con = self.con(now)?;
        let res = (|| -> redis::RedisResult<Option<String>> {
            let stale: Vec<String> = con.zrangebyscore(&seen, "-inf", cutoff)?;
            for id in &stale {
                let _: i64 = con.hdel(&hash, id)?;
                let _: i64 = con.zrem(&seen, id)?;
            }
            let all: Vec<(String, Vec<u8>)> = con.hgetall(&hash)?;
            Ok(all
                .into_iter()
                .map(|(id, b)| {
                    let v: Vec<f32> = b
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    (cosine(&v, e), id)
                })
                .filter(|(s, _)| *s >= threshold)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, id)| id))
        })();
        match res {
            Ok(v) => v,
            Err(err) => {
                self.failed(now, err);
                None
            }
        }
    }

    /// A new id from the shared sequence.
    fn mint(&mut self, now: Instant) -> Option<u64> {
        use redis::Commands;
        let seq = format!("{}:unknown-seq", self.key);
        let con = self.con(now)?;
        match con.incr::<_, _, u64>(&seq, 1) {
            Ok(n) => Some(n),
            Err(err) => {
                self.failed(now, err);
                None
            }
        }
    }

    fn publish(&mut self, id: &str, e: &[f32], now: Instant) {
        use redis::Commands;
        let (hash, seen) = (
            format!("{}:unknowns", self.key),
            format!("{}:unknowns:seen", self.key),
        );
        let bytes: Vec<u8> = e.iter().flat_map(|x| x.to_le_bytes()).collect();
        let Some(con) = self.con(now) else { return };
        let res = (|| -> redis::RedisResult<()> {
            let _: i64 = con.hset(&hash, id, bytes)?;
            let _: i64 = con.zadd(&seen, id, unix_now())?;
            Ok(())
        })();
        if let Err(err) = res {
            self.failed(now, err);
        }
    }
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
            entries: Vec::new(),
            ttl,
            remote: None,
        }
    }

    /// Shares strangers with other nodes through Redis at `url`, under `key`.
    pub fn with_redis(&mut self, url: &str, key: &str) {
        if self
            .remote
            .as_ref()
            .is_some_and(|r| r.url == url && r.key == key)
        {
            return;
        }
        self.remote = Some(Remote {
            url: url.to_string(),
            key: key.to_string(),
            con: None,
            retry_at: None,
            last_error: None,
        });
    }

    /// The last Redis error, taken (so that each outage is reported once).
    pub fn take_remote_error(&mut self) -> Option<String> {
        self.remote.as_mut().and_then(|r| r.last_error.take())
    }

    /// The id for an unknown face with embedding `e`, at time `now`.
    pub fn assign(&mut self, e: &[f32], threshold: f32, now: Instant) -> String {
        self.entries
            .retain(|x| now.duration_since(x.last_seen) <= self.ttl);
        let best = self
            .entries
            .iter_mut()
            .map(|x| {
                let s = cosine(&x.mean, e);
                (s, x)
            })
            .filter(|(s, _)| *s >= threshold)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, x)) = best {
            for (a, b) in x.sum.iter_mut().zip(e) {
                *a += b;
            }
            x.mean = l2_normalised(&x.sum);
            x.last_seen = now;
            let (id, mean) = (x.id.clone(), x.mean.clone());
            if let Some(r) = self.remote.as_mut() {
                r.publish(&id, &mean, now);
            }
            return id;
        }
        let ttl = self.ttl;
        let shared = self
            .remote
            .as_mut()
            .and_then(|r| r.lookup(e, threshold, ttl, now));
        let id = match shared {
            Some(id) => id,
            None => match self.remote.as_mut().and_then(|r| r.mint(now)) {
                Some(n) => format!("{}{n}", self.prefix),
                None => {
                    let n = self.next;
                    self.next += 1;
                    if self.remote.is_some() {
                        // Minted without Redis: must not collide with the shared sequence.
                        format!("{}local-{}-{n}", self.prefix, std::process::id())
                    } else {
                        format!("{}{n}", self.prefix)
                    }
                }
            },
        };
        if let Some(r) = self.remote.as_mut() {
            r.publish(&id, e, now);
        }
        self.entries.push(Entry {
            id: id.clone(),
            sum: e.to_vec(),
            mean: e.to_vec(),
            last_seen: now,
        });
        id
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
pub fn shared_registry(model: &str, prefix: &str, ttl: Duration) -> Arc<Mutex<UnknownRegistry>> {
    let mut m = REGISTRIES.lock().unwrap_or_else(|e| e.into_inner());
    m.entry(format!("{model}\u{0}{prefix}"))
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
        assert_eq!(r.assign(&a, 0.5, t0), "unknown-1");
        assert_eq!(r.assign(&a2, 0.5, t0 + Duration::from_secs(1)), "unknown-1");
        assert_eq!(r.assign(&b, 0.5, t0 + Duration::from_secs(2)), "unknown-2");
        assert_eq!(r.len(), 2);
        // After the TTL the first stranger is forgotten and gets a fresh id.
        assert_eq!(r.assign(&a, 0.5, t0 + Duration::from_secs(70)), "unknown-3");
    }

    #[test]
    fn shared_registry_is_one_per_model() {
        let x = shared_registry("m-test", "u-", Duration::from_secs(1));
        let y = shared_registry("m-test", "u-", Duration::from_secs(1));
        assert!(Arc::ptr_eq(&x, &y));
        let z = shared_registry("other-model", "u-", Duration::from_secs(1));
        assert!(!Arc::ptr_eq(&x, &z));
    }
}
