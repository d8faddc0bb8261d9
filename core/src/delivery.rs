//! Durable, ordered event delivery to a Redis Stream and/or a webhook.
//!
//! Every event is first appended to a spool file on disk (`<spool-dir>/<node>.spool.jsonl`,
//! numbered by a per-node sequence) and then delivered in order by a background thread. Redis
//! delivery is idempotent: a Lua script adds the event to the stream only if its sequence is
//! beyond the node's last delivered one (`<stream>:delivered:<node>`), so a reply lost with
//! the connection never yields a duplicate. While Redis or the webhook is down, events wait
//! in the spool (nothing is lost, also across restarts) and are delivered in order when it
//! returns; retries back off from 0.2 s to 5 s.

use crate::events::Event;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Stream length kept (approximately) by XADD MAXLEN ~.
pub const STREAM_MAXLEN: u64 = 100_000;

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

#[derive(Debug, Clone, Default)]
pub struct DeliveryConfig {
    pub node: String,
    pub spool_dir: PathBuf,
    pub redis_url: Option<String>,
    pub stream: String,
    pub webhook_url: Option<String>,
}

struct Pending {
    seq: u64,
    json: String,
    redis_done: bool,
    webhook_done: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    has_redis: bool,
    has_webhook: bool,
}

struct Queue {
    items: VecDeque<Pending>,
    next_seq: u64,
    spool: Option<File>,
    stopping: bool,
    /// Last delivery error per sink, taken by the owner to report.
    errors: Vec<String>,
    delivered: u64,
}

/// Handle of the delivery thread; dropping it stops the thread (pending events stay spooled).
pub struct Delivery {
    shared: Arc<Shared>,
    handle: Option<std::thread::JoinHandle<()>>,
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

impl Delivery {
    /// Opens the spool (delivering what a previous run left) and starts the thread.
    pub fn start(cfg: DeliveryConfig) -> std::io::Result<Delivery> {
        std::fs::create_dir_all(&cfg.spool_dir)?;
        let path = spool_path(&cfg);
        let redis_cursor = read_cursor(&cursor_path(&cfg, "redis"));
        let webhook_cursor = read_cursor(&cursor_path(&cfg, "webhook"));
        let mut items = VecDeque::new();
        let mut next_seq = 0;
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let (Some(seq), Some(ev)) = (v["seq"].as_u64(), v.get("event")) else {
                    continue;
                };
                next_seq = next_seq.max(seq + 1);
                let redis_done = cfg.redis_url.is_none() || redis_cursor.is_some_and(|c| seq <= c);
                let webhook_done =
                    cfg.webhook_url.is_none() || webhook_cursor.is_some_and(|c| seq <= c);
                if !(redis_done && webhook_done) {
                    items.push_back(Pending {
                        seq,
                        json: ev.to_string(),
                        redis_done,
                        webhook_done,
                    });
                }
            }
        }
        next_seq = next_seq
            .max(redis_cursor.map_or(0, |c| c + 1))
            .max(webhook_cursor.map_or(0, |c| c + 1));
        let spool = OpenOptions::new().create(true).append(true).open(&path)?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                items,
                next_seq,
                spool: Some(spool),
                stopping: false,
                errors: Vec::new(),
                delivered: 0,
            }),
            wake: Condvar::new(),
            has_redis: cfg.redis_url.is_some(),
            has_webhook: cfg.webhook_url.is_some(),
        });
        let s = shared.clone();
        let c = cfg.clone();
        let handle = std::thread::Builder::new()
            .name("sl-delivery".into())
            .spawn(move || run(s, c))?;
        Ok(Delivery {
            shared,
            handle: Some(handle),
            spool_path: path,
        })
    }

    /// Spools `ev` (on disk, then in order to the sinks). Returns its sequence number.
    pub fn send(&self, ev: &Event) -> std::io::Result<u64> {
        let json = serde_json::to_string(ev)?;
        let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        let seq = q.next_seq;
        q.next_seq += 1;
        if let Some(f) = q.spool.as_mut() {
            writeln!(f, "{{\"seq\":{seq},\"event\":{json}}}")?;
            f.flush()?;
        }
        q.items.push_back(Pending {
            seq,
            json,
            redis_done: !self.shared.has_redis,
            webhook_done: !self.shared.has_webhook,
        });
        self.shared.wake.notify_all();
        Ok(seq)
    }

    /// Spools `ev` and returns what went wrong, worded for an element warning: the spool
    /// could not be written, or delivery is delayed (one line per outage).
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

    pub fn delivered(&self) -> u64 {
        self.shared.queue.lock().map(|q| q.delivered).unwrap_or(0)
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
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.queue.lock() {
            q.stopping = true;
        }
        self.shared.wake.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(shared: Arc<Shared>, cfg: DeliveryConfig) {
    let mut redis: Option<redis::Connection> = None;
    let http = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(true)
            .build(),
    );
    let mut backoff = Duration::from_millis(200);
    let mut reported = false;
    loop {
        // The oldest pending event.
        let (seq, json, redis_done, webhook_done) = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if q.stopping {
                    return;
                }
                if let Some(p) = q.items.front() {
                    break (p.seq, p.json.clone(), p.redis_done, p.webhook_done);
                }
                // Everything delivered: the spool can start over.
                if let Some(f) = q.spool.as_mut() {
                    let _ = f.set_len(0);
                }
                q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let mut err = None;
        let mut r_ok = redis_done;
        if !redis_done && let Some(url) = &cfg.redis_url {
            if redis.is_none() {
                match crate::redis_store::connect(url) {
                    Ok(c) => {
                        let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                        redis = Some(c);
                    }
                    Err(e) => err = Some(e),
                }
            }
            if let Some(con) = redis.as_mut() {
                let res: redis::RedisResult<i64> = redis::cmd("EVAL")
                    .arg(XADD_ONCE)
                    .arg(2)
                    .arg(&cfg.stream)
                    .arg(format!("{}:delivered:{}", cfg.stream, cfg.node))
                    .arg(seq)
                    .arg(STREAM_MAXLEN)
                    .arg(&json)
                    .arg(&cfg.node)
                    .query(con);
                match res {
                    Ok(_) => {
                        r_ok = true;
                        write_cursor(&cursor_path(&cfg, "redis"), seq);
                    }
                    Err(e) => {
                        err = Some(format!("Redis {}: {e}", crate::redis_store::redact(url)));
                        redis = None;
                    }
                }
            }
        }
        let mut w_ok = webhook_done;
        if !webhook_done && let Some(url) = &cfg.webhook_url {
            match http
                .post(url)
                .header("Content-Type", "application/json")
                .send(json.as_str())
            {
                Ok(_) => {
                    w_ok = true;
                    write_cursor(&cursor_path(&cfg, "webhook"), seq);
                }
                Err(e) => err = Some(format!("webhook {url}: {e}")),
            }
        }
        let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = q.items.front_mut()
            && p.seq == seq
        {
            p.redis_done = r_ok;
            p.webhook_done = w_ok;
            if r_ok && w_ok {
                q.items.pop_front();
                q.delivered += 1;
            }
        }
        match err {
            None => {
                backoff = Duration::from_millis(200);
                reported = false;
            }
            Some(e) => {
                if !reported {
                    q.errors.push(e);
                    reported = true;
                }
                let stopping = q.stopping;
                drop(q);
                if stopping {
                    return;
                }
                // Wait for the backoff (or a stop request).
                let q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
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
