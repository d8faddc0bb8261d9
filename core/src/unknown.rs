//! Stable temporary ids for unknown faces: a stranger keeps the same `unknown-id` while seen,
//! across every camera of the process that uses the same embedding model. An unknown whose
//! embedding matches a recent unknown (cosine >= threshold) gets that id; otherwise a new one.
//! Entries unseen for `ttl` are forgotten.

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

#[derive(Debug)]
pub struct UnknownRegistry {
    prefix: String,
    next: u64,
    entries: Vec<Entry>,
    pub ttl: Duration,
}

impl UnknownRegistry {
    pub fn new(prefix: &str, ttl: Duration) -> Self {
        UnknownRegistry {
            prefix: prefix.to_string(),
            next: 1,
            entries: Vec::new(),
            ttl,
        }
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
            return x.id.clone();
        }
        let id = format!("{}{}", self.prefix, self.next);
        self.next += 1;
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
