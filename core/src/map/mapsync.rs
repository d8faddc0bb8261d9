//! Sharing a floor map between processes (nodes) through Redis.
//!
//! Each node keeps its own [`MapState`]; a background thread, every `interval`:
//! 1. reserves a block of global ids when its block runs low (`INCRBY <prefix>:ids 1000`), so
//!    ids handed out by different nodes never collide;
//! 2. writes what the node's cameras saw since the last round — one field per person and node
//!    in the hash `<prefix>:people` (`p/<global id>/<node>` → JSON position, velocity, time,
//!    cameras) and the appearance, only when it changed, in `<prefix>:looks`
//!    (`<global id>/<node>` → little-endian f32s) — and the merges it made (`a/<gone>` →
//!    `<kept> <utc ms>`);
//! 3. reads everyone else's fields and hands them to [`MapState::import`].
//!
//! `<prefix>` is `sightline:map:<map name>`. Times cross nodes as UTC milliseconds and are
//! converted to and from each node's own clock, so nodes need NTP-synchronised clocks (as
//! any multi-camera system does). Fields older than the map's `forget_ns` are deleted by
//! whichever node sees them first. While Redis is away the map keeps working locally (ids
//! then come from the rest of the block, or a random 40-bit range when no block was ever
//! reserved); the thread reconnects with back-off and shares again.

use crate::mapstate::{MapState, SharedView};
use crate::redis_store::{connect, redact};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::sync::{Arc, Condvar, LazyLock, Mutex, Weak};
use std::time::Duration;

/// Ids reserved per `INCRBY`.
pub const ID_BLOCK: u64 = 1000;

/// Ids at or above this come from the random range used while Redis is unreachable.
const FALLBACK_BASE: u64 = 1 << 40;

/// Reserves a block of ids, never below the largest id this node knows of nor, when the
/// counter is missing (a Redis restarted without persistence), below any id still shared —
/// rounded up to the end of its block, as blocks are aligned.
const RESERVE: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[2])
if cur == 0 then
  for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
    local id = tonumber(string.match(f, '^[pa]/(%d+)'))
    if id and id < tonumber(ARGV[3]) and id > floor then floor = id end
  end
end
floor = math.ceil(floor / tonumber(ARGV[1])) * tonumber(ARGV[1])
if cur < floor then redis.call('SET', KEYS[1], floor) end
return redis.call('INCRBY', KEYS[1], ARGV[1])
";

/// The clock of the map's times (ns): the GStreamer system clock for the elements.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Record {
    x: f64,
    y: f64,
    vx: f64,
    vy: f64,
    /// Last observation, Unix ms.
    utc_ms: i64,
    cameras: Vec<String>,
    /// Version of the appearance in `<prefix>:looks`; 0: none.
    look: u64,
}

/// Redis keys of map `map`.
pub fn prefix(map: &str) -> String {
    format!("sightline:map:{map}")
}

fn utc_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn encode_look(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn decode_look(b: &[u8]) -> Option<Vec<f32>> {
    (b.len().is_multiple_of(4) && !b.is_empty()).then(|| {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

/// A person field `p/<gid>/<node>`.
fn parse_person_field(f: &str) -> Option<(u64, &str)> {
    let rest = f.strip_prefix("p/")?;
    let (gid, node) = rest.split_once('/')?;
    Some((gid.parse().ok()?, node))
}

#[derive(Debug, Clone)]
pub struct MapSyncConfig {
    pub url: String,
    pub map: String,
    /// This process's name in the shared fields (unique per process).
    pub node: String,
    pub interval: Duration,
}

struct Shared {
    stop: Mutex<bool>,
    wake: Condvar,
    errors: Mutex<Vec<String>>,
    /// Failing, and reported.
    outage: AtomicBool,
    rounds: AtomicU64,
}

/// The sharing thread of one map; dropping the last handle stops it.
pub struct MapSync {
    cfg: MapSyncConfig,
    shared: Arc<Shared>,
    handle: Option<crate::worker::Worker>,
}

struct Worker {
    cfg: MapSyncConfig,
    prefix: String,
    map: Arc<Mutex<MapState>>,
    clock: Clock,
    con: Option<redis::Connection>,
    last_push: u64,
    /// Look versions written (ours) and read (theirs), by field.
    pushed_looks: HashMap<u64, u64>,
    read_looks: HashMap<String, (u64, Vec<f32>)>,
    /// Pending merges not yet written (kept across an outage).
    merges: Vec<(u64, u64)>,
    had_block: bool,
    /// Largest reserved-range id used or seen.
    max_seen: u64,
}

impl MapSync {
    /// Starts sharing `map`; the first id block is reserved before returning when Redis
    /// answers (else a random range is used and the error is reported by `take_errors`).
    pub fn start(cfg: MapSyncConfig, map: Arc<Mutex<MapState>>, clock: Clock) -> MapSync {
        let shared = Arc::new(Shared {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            errors: Mutex::new(Vec::new()),
            outage: AtomicBool::new(false),
            rounds: AtomicU64::new(0),
        });
        let mut w = Worker {
            prefix: prefix(&cfg.map),
            cfg: cfg.clone(),
            map,
            clock,
            con: None,
            last_push: 0,
            pushed_looks: HashMap::new(),
            read_looks: HashMap::new(),
            merges: Vec::new(),
            had_block: false,
            max_seen: 0,
        };
        if let Err(e) = w.reserve_ids() {
            w.fallback_block();
            w.report(&shared, e);
        }
        let (sh, panicked) = (shared.clone(), shared.clone());
        let handle = crate::worker::Worker::spawn(
            &format!("mapsync-{}", cfg.map),
            move |why| {
                panicked.outage.store(true, Ordering::Relaxed);
                if let Ok(mut e) = panicked.errors.lock() {
                    e.push(format!("Map sharing stopped, the map is local: {why}"));
                }
            },
            move || w.run(&sh),
        )
        .ok();
        MapSync {
            cfg,
            shared,
            handle,
        }
    }

    /// Delivery problems since the last call (one per outage), for the element to post.
    pub fn take_errors(&self) -> Vec<String> {
        self.shared
            .errors
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    /// False from a failure until the next successful round.
    pub fn connected(&self) -> bool {
        !self.shared.outage.load(Ordering::SeqCst)
    }

    /// Completed rounds (written and read), for tests and statistics.
    pub fn rounds(&self) -> u64 {
        self.shared.rounds.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> &str {
        &self.cfg.url
    }
}

impl Drop for MapSync {
    fn drop(&mut self) {
        if let Ok(mut s) = self.shared.stop.lock() {
            *s = true;
        }
        self.shared.wake.notify_all();
        // Bounded: a round in progress is bounded by the connection's timeouts.
        if let Some(h) = self.handle.take() {
            h.finish_within(crate::worker::STOP_WAIT);
        }
    }
}

impl Worker {
    /// Records a failure, once per outage.
    fn report(&self, shared: &Shared, e: String) {
        if !shared.outage.swap(true, Ordering::SeqCst)
            && let Ok(mut errs) = shared.errors.lock()
        {
            errs.push(e);
        }
    }

    fn con(&mut self) -> Result<&mut redis::Connection, String> {
        if self.con.is_none() {
            self.con = Some(connect(&self.cfg.url)?);
        }
        self.con
            .as_mut()
            .ok_or_else(|| "no Redis connection".to_string())
    }

    fn failed(&mut self, e: redis::RedisError) -> String {
        self.con = None;
        // Redis may come back empty: share everything again then.
        self.last_push = 0;
        self.pushed_looks.clear();
        format!(
            "Map {} not shared: Redis {}: {e}",
            self.cfg.map,
            redact(&self.cfg.url)
        )
    }

    fn reserve_ids(&mut self) -> Result<(), String> {
        let key = format!("{}:ids", self.prefix);
        let people = format!("{}:people", self.prefix);
        let floor = self.max_seen;
        let con = self.con()?;
        let end: Result<u64, _> = redis::cmd("EVAL")
            .arg(RESERVE)
            .arg(2)
            .arg(&key)
            .arg(&people)
            .arg(ID_BLOCK)
            .arg(floor)
            .arg(FALLBACK_BASE)
            .query(con);
        match end {
            Ok(end) => {
                self.max_seen = self.max_seen.max(end);
                if let Ok(mut m) = self.map.lock() {
                    m.set_id_block(end + 1 - ID_BLOCK, end + 1);
                }
                self.had_block = true;
                Ok(())
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Ids while no block could be reserved: a random 40-bit range, far above reserved ones.
    fn fallback_block(&mut self) {
        if self.had_block {
            return; // the rest of the last block, then past it (unlikely to be reached)
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ ((std::process::id() as u64) << 20);
        let start = FALLBACK_BASE + (seed % FALLBACK_BASE) / ID_BLOCK * ID_BLOCK;
        if let Ok(mut m) = self.map.lock() {
            m.set_id_block(start, start + ID_BLOCK);
        }
        self.had_block = true;
    }

    fn run(&mut self, shared: &Shared) {
        let mut backoff = self.cfg.interval;
        loop {
            let wait = if self.round().map_err(|e| self.report(shared, e)).is_ok() {
                shared.outage.store(false, Ordering::SeqCst);
                shared.rounds.fetch_add(1, Ordering::SeqCst);
                backoff = self.cfg.interval;
                self.cfg.interval
            } else {
                backoff = (backoff * 2).min(Duration::from_secs(5));
                backoff
            };
            let Ok(stop) = shared.stop.lock() else { return };
            let Ok((stop, _)) = shared.wake.wait_timeout_while(stop, wait, |s| !*s) else {
                return;
            };
            if *stop {
                return;
            }
        }
    }

    /// One write-then-read round.
    fn round(&mut self) -> Result<(), String> {
        if self.map.lock().map(|m| m.ids_left()).unwrap_or(ID_BLOCK) < ID_BLOCK / 5 {
            self.reserve_ids()?;
        }
        let now = (self.clock)();
        let utc = utc_ms();
        let to_utc = |t: u64| utc - (now.saturating_sub(t) / 1_000_000) as i64;
        let (views, merges, forget_ms) = {
            let mut m = self
                .map
                .lock()
                .map_err(|_| "map lock poisoned".to_string())?;
            (
                m.local_views(&self.cfg.node, self.last_push),
                m.take_merges(),
                (m.config.forget_ns / 1_000_000) as i64,
            )
        };
        self.merges.extend(merges);
        let people = format!("{}:people", self.prefix);
        let looks = format!("{}:looks", self.prefix);
        let node = self.cfg.node.clone();
        // Write.
        let mut pipe = redis::pipe();
        let mut new_looks = Vec::new();
        for v in &views {
            let rec = Record {
                x: v.position[0],
                y: v.position[1],
                vx: v.velocity[0],
                vy: v.velocity[1],
                utc_ms: to_utc(v.t),
                cameras: v.cameras.clone(),
                look: if v.appearance.is_some() {
                    v.look_version.max(1)
                } else {
                    0
                },
            };
            let json = serde_json::to_string(&rec).map_err(|e| e.to_string())?;
            pipe.cmd("HSET")
                .arg(&people)
                .arg(format!("p/{}/{node}", v.global_id))
                .arg(json)
                .ignore();
            if let Some(a) = &v.appearance
                && self.pushed_looks.get(&v.global_id) != Some(&rec.look)
            {
                pipe.cmd("HSET")
                    .arg(&looks)
                    .arg(format!("{}/{node}", v.global_id))
                    .arg(encode_look(a))
                    .ignore();
                new_looks.push((v.global_id, rec.look));
            }
        }
        for (gone, keep) in &self.merges {
            pipe.cmd("HSET")
                .arg(&people)
                .arg(format!("a/{gone}"))
                .arg(format!("{keep} {utc}"))
                .ignore();
            pipe.cmd("HDEL")
                .arg(&people)
                .arg(format!("p/{gone}/{node}"))
                .ignore();
            pipe.cmd("HDEL")
                .arg(&looks)
                .arg(format!("{gone}/{node}"))
                .ignore();
        }
        let all: HashMap<String, String> = {
            pipe.cmd("HGETALL").arg(&people);
            let con = self.con()?;
            let res: Result<(HashMap<String, String>,), _> = pipe.query(con);
            match res {
                Ok((all,)) => all,
                Err(e) => return Err(self.failed(e)),
            }
        };
        self.last_push = now;
        self.merges.clear();
        self.pushed_looks.extend(new_looks);
        // Read.
        let mut stale = Vec::new();
        let mut aliases = Vec::new();
        let mut theirs = Vec::new();
        for (field, value) in &all {
            if let Some(gone) = field.strip_prefix("a/") {
                let mut it = value.split(' ');
                match (
                    gone.parse::<u64>(),
                    it.next().and_then(|k| k.parse::<u64>().ok()),
                    it.next().and_then(|t| t.parse::<i64>().ok()),
                ) {
                    (Ok(g), Some(k), Some(t)) if utc - t <= forget_ms => aliases.push((g, k)),
                    _ => stale.push(field.clone()),
                }
                continue;
            }
            let Some((gid, from)) = parse_person_field(field) else {
                continue;
            };
            match serde_json::from_str::<Record>(value) {
                Ok(r) if utc - r.utc_ms > forget_ms => stale.push(field.clone()),
                Ok(r) if from != node => theirs.push((field.clone(), gid, from.to_string(), r)),
                Ok(_) => {}
                Err(_) => stale.push(field.clone()),
            }
        }
        // Appearances that changed since last read.
        let want: Vec<String> = theirs
            .iter()
            .filter(|(f, _, _, r)| {
                r.look > 0 && self.read_looks.get(f).is_none_or(|(v, _)| *v != r.look)
            })
            .map(|(_, gid, from, _)| format!("{gid}/{from}"))
            .collect();
        if !want.is_empty() || !stale.is_empty() {
            let mut pipe = redis::pipe();
            if !want.is_empty() {
                pipe.cmd("HMGET").arg(&looks).arg(&want);
            }
            if !stale.is_empty() {
                pipe.cmd("HDEL").arg(&people).arg(&stale).ignore();
                let stale_looks: Vec<String> = stale
                    .iter()
                    .filter_map(|f| parse_person_field(f).map(|(g, n)| format!("{g}/{n}")))
                    .collect();
                if !stale_looks.is_empty() {
                    pipe.cmd("HDEL").arg(&looks).arg(stale_looks).ignore();
                }
            }
            let con = self.con()?;
            let res: Result<Vec<Vec<Option<Vec<u8>>>>, _> = pipe.query(con);
            let got = match res {
                Ok(g) => g,
                Err(e) => return Err(self.failed(e)),
            };
            if let Some(vals) = got.into_iter().next() {
                for (k, v) in want.iter().zip(vals) {
                    let field = format!("p/{k}");
                    let version = theirs
                        .iter()
                        .find(|(f, ..)| *f == field)
                        .map_or(0, |(_, _, _, r)| r.look);
                    if let Some(look) = v.as_deref().and_then(decode_look) {
                        self.read_looks.insert(field, (version, look));
                    }
                }
            }
        }
        for gid in theirs
            .iter()
            .map(|t| t.1)
            .chain(aliases.iter().map(|a| a.1))
        {
            if gid < FALLBACK_BASE {
                self.max_seen = self.max_seen.max(gid);
            }
        }
        let views: Vec<SharedView> = theirs
            .into_iter()
            .map(|(field, gid, from, r)| SharedView {
                global_id: gid,
                node: from,
                position: [r.x, r.y],
                velocity: [r.vx, r.vy],
                t: now.saturating_sub(((utc - r.utc_ms).max(0) as u64) * 1_000_000),
                cameras: r.cameras,
                appearance: self.read_looks.get(&field).map(|(_, l)| l.clone()),
                look_version: r.look,
            })
            .collect();
        self.read_looks.retain(|f, _| {
            views
                .iter()
                .any(|v| format!("p/{}/{}", v.global_id, v.node) == *f)
        });
        if let Ok(mut m) = self.map.lock() {
            m.import(views, &aliases, (self.clock)());
        }
        Ok(())
    }
}

static SYNCS: LazyLock<Mutex<HashMap<String, Weak<MapSync>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// This process's name in shared maps: host name and process id.
pub fn process_node() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}-{}", std::process::id())
}

/// The process-wide sharing of map `name` through `url`, started by the first element that
/// asks and stopped when the last one lets go. Two different URLs for one map are an error.
pub fn shared_sync(
    name: &str,
    url: &str,
    map: Arc<Mutex<MapState>>,
    clock: Clock,
) -> Result<Arc<MapSync>, String> {
    let mut syncs = SYNCS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = syncs.get(name).and_then(Weak::upgrade) {
        if s.url() != url {
            return Err(format!(
                "map {name} is already shared through {}; one map, one Redis",
                redact(s.url())
            ));
        }
        return Ok(s);
    }
    let s = Arc::new(MapSync::start(
        MapSyncConfig {
            url: url.to_string(),
            map: name.to_string(),
            node: process_node(),
            interval: Duration::from_millis(200),
        },
        map,
        clock,
    ));
    syncs.insert(name.to_string(), Arc::downgrade(&s));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapstate::MapConfig;
    use sightline_testkit::RedisServer;

    fn clock() -> Clock {
        let start = std::time::Instant::now();
        Arc::new(move || start.elapsed().as_nanos() as u64 + 1_000_000_000)
    }

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let t0 = std::time::Instant::now();
        while !f() {
            assert!(t0.elapsed() < Duration::from_secs(20), "timed out: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn node(url: &str, name: &str, map: &Arc<Mutex<MapState>>, c: &Clock) -> MapSync {
        MapSync::start(
            MapSyncConfig {
                url: url.to_string(),
                map: "test".into(),
                node: name.into(),
                interval: Duration::from_millis(50),
            },
            map.clone(),
            c.clone(),
        )
    }

    #[test]
    fn look_bytes_round_trip() {
        let v = vec![0.5f32, -1.25, 3.0e-7];
        assert_eq!(decode_look(&encode_look(&v)), Some(v));
        assert_eq!(decode_look(&[1, 2, 3]), None);
        assert_eq!(parse_person_field("p/17/host-42"), Some((17, "host-42")));
        assert_eq!(parse_person_field("a/17"), None);
    }

    /// Two nodes with their own map state share one person through a real Redis, survive a
    /// Redis restart, and never hand out the same id.
    #[test]
    fn two_nodes_share_people_through_redis_and_survive_an_outage() {
        let mut redis = RedisServer::start(&[]);
        let url = redis.url(None);
        let c = clock();
        let a = Arc::new(Mutex::new(MapState::new(MapConfig::default())));
        let b = Arc::new(Mutex::new(MapState::new(MapConfig::default())));
        let sa = node(&url, "a", &a, &c);
        let sb = node(&url, "b", &b, &c);
        assert!(sa.take_errors().is_empty() && sb.take_errors().is_empty());
        let look = [0.6f32, 0.8, 0.0];
        let (g, _) = a
            .lock()
            .unwrap()
            .observe("a/door", 1, [1.0, 1.0], Some(&look), c());
        // B learns the person, with a's camera and appearance.
        wait_until("b sees a's person", || {
            b.lock()
                .unwrap()
                .snapshot(c(), 5_000_000_000)
                .iter()
                .any(|p| p.global_id == g && p.cameras == ["a/door"])
        });
        // They walk into b's camera: same id. A stranger gets an id from b's block.
        a.lock().unwrap().track_ended("a/door", 1);
        let (g2, _) = b
            .lock()
            .unwrap()
            .observe("b/hall", 5, [2.0, 1.0], Some(&look), c());
        assert_eq!(g2, g);
        let (g3, _) =
            b.lock()
                .unwrap()
                .observe("b/hall", 6, [4.0, 1.0], Some(&[0.0, 0.0, 1.0]), c());
        // Ids come in aligned blocks of ID_BLOCK: a's person from a's block, b's from b's.
        assert_ne!(
            (g3 - 1) / ID_BLOCK,
            (g - 1) / ID_BLOCK,
            "{g} {g3}: b's own block"
        );
        wait_until("a sees both, with b's camera", || {
            let snap = a.lock().unwrap().snapshot(c(), 5_000_000_000);
            snap.iter()
                .any(|p| p.global_id == g && p.cameras == ["b/hall"])
                && snap.iter().any(|p| p.global_id == g3)
        });
        // Redis goes away: both keep working locally and report it once.
        redis.kill();
        let rounds = sb.rounds();
        let (g4, _) = b
            .lock()
            .unwrap()
            .observe("b/hall", 7, [9.0, 9.0], None, c());
        wait_until("the outage is reported", || {
            let e = sb.take_errors();
            !e.is_empty() && e[0].contains("Map test not shared") && !sb.connected()
        });
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(sb.rounds(), rounds, "no round completes without Redis");
        assert!(sb.take_errors().is_empty(), "one report per outage");
        // Back: b's person seen during the outage reaches a.
        redis.restart();
        wait_until("a learns what b saw during the outage", || {
            b.lock()
                .unwrap()
                .observe("b/hall", 7, [9.0, 9.0], None, c());
            a.lock()
                .unwrap()
                .snapshot(c(), 5_000_000_000)
                .iter()
                .any(|p| p.global_id == g4)
        });
        assert!(sb.connected());
        // Redis came back empty (no persistence): a node starting now still gets ids above
        // every id in use.
        let c3 = Arc::new(Mutex::new(MapState::new(MapConfig::default())));
        let sc = node(&url, "c", &c3, &c);
        let (g5, _) = c3
            .lock()
            .unwrap()
            .observe("c/gate", 1, [50.0, 50.0], None, c());
        let b_block_end = (g4 - 1) / ID_BLOCK * ID_BLOCK + ID_BLOCK;
        assert!(g5 > b_block_end, "{g5} vs b's block ending {b_block_end}");
        drop((sa, sb, sc));
    }
}
