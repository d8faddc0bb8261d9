use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use sightline_core::delivery::{Delivery, DeliveryConfig, default_node_id, default_spool_dir};
use sightline_core::events::{JsonlSink, utc_now};
use sightline_core::gallery::slug;
use sightline_core::meta::{self, event_from_structure};
use sightline_core::presence::{self, Group, PresenceConfig, UnknownAlert, UnknownConsensus};
use sightline_core::zones::{self, ZoneEvent, ZoneTracker};

use std::collections::HashMap;
use std::sync::{Arc, Condvar, LazyLock, Mutex};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "presence",
        gst::DebugColorFlags::empty(),
        Some("Sightline presence"),
    )
});

const DEFAULT_GROUP: &str = "default";
const DEFAULT_GRACE: f64 = 10.0;
const DEFAULT_ABSENT: f64 = 300.0;
const DEFAULT_CAMERA_TIMEOUT: f64 = 30.0;

#[derive(Debug, Clone)]
struct Settings {
    group: String,
    camera: Option<String>,
    grace_seconds: f64,
    absent_seconds: f64,
    camera_timeout_seconds: f64,
    roster: Option<String>,
    event_log: Option<String>,
    node_id: String,
    redis_url: Option<String>,
    stream: String,
    webhook_url: Option<String>,
    spool_dir: Option<String>,
    unknown_alert_cameras: u32,
    unknown_alert_window: f64,
    zones: Option<String>,
}

const DEFAULT_UNKNOWN_WINDOW: f64 = 60.0;

/// Atomically records a sighting of an unknown id by one camera of one node and raises the
/// alert once when enough distinct cameras saw it within the window. Returns the number of
/// cameras when this call raised the alert, else 0.
const UNKNOWN_CONSENSUS: &str = r"
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[4]) and redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return n
end
return 0
";

const DEFAULT_STREAM: &str = "sightline:events";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            group: DEFAULT_GROUP.to_string(),
            camera: None,
            grace_seconds: DEFAULT_GRACE,
            absent_seconds: DEFAULT_ABSENT,
            camera_timeout_seconds: DEFAULT_CAMERA_TIMEOUT,
            roster: None,
            event_log: None,
            node_id: default_node_id(),
            redis_url: None,
            stream: DEFAULT_STREAM.to_string(),
            webhook_url: None,
            spool_dir: None,
            unknown_alert_cameras: 0,
            unknown_alert_window: DEFAULT_UNKNOWN_WINDOW,
            zones: None,
        }
    }
}

/// One group of cameras in this process: the shared state, the elements that feed it, the
/// clock its timeouts run on, and its event log.
struct Hub {
    name: String,
    inner: Mutex<HubInner>,
    wake: Condvar,
}

struct HubInner {
    group: Group,
    members: Vec<glib::WeakRef<super::Presence>>,
    clock: Option<gst::Clock>,
    /// The clock wait in progress and its deadline.
    pending: Option<(gst::SingleShotClockId, u64)>,
    log: Option<JsonlSink>,
    /// Every event to the Redis Stream; alerts to the webhook.
    stream: Option<Delivery>,
    webhook: Option<Delivery>,
    consensus: UnknownConsensus,
    /// Shared consensus across nodes (Redis), when configured.
    consensus_redis: Option<ConsensusRedis>,
    /// The group's state shared with other nodes (Redis), when configured.
    shared: Option<SharedGroup>,
    /// Problems met on the timer thread, reported by the next emit.
    problems: Vec<String>,
    timer_started: bool,
    stopping: bool,
}

static HUBS: LazyLock<Mutex<HashMap<String, Arc<Hub>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn hub_for(name: &str, s: &Settings) -> Arc<Hub> {
    // One state per (node, group): elements of one node share it in the process; two
    // node-ids in one process behave as two nodes that share only through Redis.
    let hub_key = format!("{}\u{0}{name}", s.node_id);
    let mut hubs = HUBS.lock().unwrap_or_else(|e| e.into_inner());
    hubs.retain(|_, h| h.inner.lock().map(|i| !i.stopping).unwrap_or(false));
    hubs.entry(hub_key)
        .or_insert_with(|| {
            Arc::new(Hub {
                name: name.to_string(),
                inner: Mutex::new(HubInner {
                    group: Group::new(
                        PresenceConfig {
                            grace_ns: (s.grace_seconds * 1e9) as u64,
                            absent_ns: (s.absent_seconds * 1e9) as u64,
                        },
                        (s.camera_timeout_seconds * 1e9) as u64,
                    ),
                    members: Vec::new(),
                    clock: None,
                    pending: None,
                    log: None,
                    stream: None,
                    webhook: None,
                    consensus: UnknownConsensus::new(
                        s.unknown_alert_cameras as usize,
                        (s.unknown_alert_window * 1e9) as u64,
                    ),
                    consensus_redis: None,
                    shared: None,
                    problems: Vec::new(),
                    timer_started: false,
                    stopping: false,
                }),
                wake: Condvar::new(),
            })
        })
        .clone()
}

/// Roster entries: "a, b", "@file" (one name per line) or "gallery:FILE" (every identity of a
/// gallery file written by `sightline gallery`).
fn parse_roster(spec: &str) -> Result<Vec<String>, String> {
    if let Some(path) = spec.strip_prefix("gallery:") {
        let g = sightline_core::gallery::Gallery::load(std::path::Path::new(path))
            .map_err(|e| e.to_string())?;
        return Ok(g.identities().iter().map(|i| i.name.clone()).collect());
    }
    let text = match spec.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read roster file {path}: {e}"))?,
        None => spec.replace(',', "\n"),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

impl Hub {
    /// Ticks the group at `now`, first catching up with other nodes' sightings of the people
    /// whose timeouts are due, then keeping only the absence alerts this node won.
    fn tick_shared(inner: &mut HubInner, now: u64) -> Vec<presence::Event> {
        let mut ev = Vec::new();
        if let Some(shared) = inner.shared.as_mut() {
            let due = inner.group.due(now);
            let ids: Vec<String> = due.iter().map(|d| d.0.clone()).collect();
            match shared.fetch(&ids) {
                Ok(remote) => {
                    for ((id, local), r) in due.iter().zip(remote) {
                        if let Some((t, label)) = r
                            && local.is_none_or(|l| t > l)
                            && t <= now
                        {
                            ev.extend(inner.group.seen_elsewhere(id, &label, t));
                        }
                    }
                }
                Err(e) => inner.problems.push(e),
            }
        }
        for e in inner.group.tick(now) {
            if let presence::Event::AbsentAlert { identity, .. } = &e
                && let Some(shared) = inner.shared.as_mut()
            {
                let last = inner
                    .group
                    .person(identity)
                    .and_then(|p| p.last_seen_ns)
                    .unwrap_or(0);
                match shared.claim_alert(identity, last, inner.group.config.absent_ns / 2) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(err) => inner.problems.push(err),
                }
            }
            ev.push(e);
        }
        ev
    }
    /// Re-arms the timer if `group`'s next deadline moved earlier than the current wait.
    fn rearm(&self, inner: &mut HubInner) {
        let next = inner.group.next_deadline();
        match (&inner.pending, next) {
            (Some((id, at)), Some(n)) if n < *at => id.unschedule(),
            (None, Some(_)) => {}
            _ => return,
        }
        self.wake.notify_all();
    }

    /// The timer: waits on the group's clock for the next deadline and ticks the group.
    fn run_timer(self: Arc<Self>) {
        loop {
            let (id, deadline) = {
                let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if inner.stopping {
                        return;
                    }
                    if let (Some(clock), Some(d)) =
                        (inner.clock.clone(), inner.group.next_deadline())
                    {
                        let id = clock.new_single_shot_id(gst::ClockTime::from_nseconds(d));
                        inner.pending = Some((id.clone(), d));
                        break (id, d);
                    }
                    inner = self.wake.wait(inner).unwrap_or_else(|e| e.into_inner());
                }
            };
            let (res, _) = id.wait();
            let (events, member) = {
                let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                inner.pending = None;
                if inner.stopping {
                    return;
                }
                if res == Err(gst::ClockError::Unscheduled) {
                    // Re-armed for an earlier deadline.
                    continue;
                }
                let now = inner
                    .clock
                    .as_ref()
                    .map_or(deadline, |c| c.time().nseconds());
                let ev = Hub::tick_shared(&mut inner, now);
                let member = inner.members.iter().find_map(|w| w.upgrade());
                (ev, member)
            };
            if let Some(m) = member {
                m.imp().emit(&self, events);
            }
        }
    }
}

/// Keeps the presence of a group consistent across nodes: every sighting is published (last
/// sighting per identity, in pipeline clock time: nodes sharing a group run on comparable
/// clocks, e.g. the system clock of one machine or a network/NTP clock), a node checks the
/// others' sightings before declaring anyone out of view or absent, and one node only raises
/// each absence alert (SET NX on the absence's last sighting). A (re)started node loads the
/// group's sightings.
struct SharedGroup {
    url: String,
    prefix: String,
    con: Option<redis::Connection>,
    retry_at: Option<std::time::Instant>,
    /// identity -> clock time of the last sighting published.
    pushed: HashMap<String, u64>,
    loaded: bool,
}

/// Claims the alert of one absence: an alert already raised for a last sighting within
/// ARGV[2] of ours is the same absence (nodes may know the last sighting a little apart).
const CLAIM_ALERT: &str = r"
local prev = tonumber(redis.call('GET', KEYS[1]) or '-1')
if prev >= 0 and prev >= tonumber(ARGV[1]) - tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
";

const SEEN_IF_NEWER: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  return 1
end
return 0
";

impl SharedGroup {
    fn con(&mut self) -> Result<&mut redis::Connection, String> {
        let now = std::time::Instant::now();
        if self.con.is_none() {
            if self.retry_at.is_some_and(|t| now < t) {
                return Err(format!(
                    "Redis {} unavailable",
                    sightline_core::redis_store::redact(&self.url)
                ));
            }
            match sightline_core::redis_store::connect(&self.url) {
                Ok(c) => {
                    let _ = c.set_read_timeout(Some(std::time::Duration::from_millis(500)));
                    self.con = Some(c);
                }
                Err(e) => {
                    self.retry_at = Some(now + std::time::Duration::from_secs(10));
                    return Err(e);
                }
            }
        }
        self.con
            .as_mut()
            .ok_or_else(|| "Redis unavailable".to_string())
    }

    fn failed(&mut self, e: redis::RedisError) -> String {
        self.con = None;
        self.retry_at = Some(std::time::Instant::now() + std::time::Duration::from_secs(10));
        format!(
            "Redis {}: {e}",
            sightline_core::redis_store::redact(&self.url)
        )
    }

    /// Publishes a sighting (at most once a second per identity).
    fn push(&mut self, identity: &str, label: &str, t: u64) -> Result<(), String> {
        if self
            .pushed
            .get(identity)
            .is_some_and(|p| t < p + 1_000_000_000)
        {
            return Ok(());
        }
        let (seen, labels) = (
            format!("{}:seen", self.prefix),
            format!("{}:labels", self.prefix),
        );
        let res: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(SEEN_IF_NEWER)
            .arg(2)
            .arg(seen)
            .arg(labels)
            .arg(identity)
            .arg(t)
            .arg(label)
            .query(self.con()?);
        match res {
            Ok(_) => {
                self.pushed.insert(identity.to_string(), t);
                Ok(())
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Last sightings (clock time, label) of `ids` on any node.
    fn fetch(&mut self, ids: &[String]) -> Result<Vec<Option<(u64, String)>>, String> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (seen, labels) = (
            format!("{}:seen", self.prefix),
            format!("{}:labels", self.prefix),
        );
        let con = self.con()?;
        type Columns = (Vec<Option<u64>>, Vec<Option<String>>);
        let res = (|| -> redis::RedisResult<Columns> {
            let t: Vec<Option<u64>> = redis::cmd("HMGET").arg(&seen).arg(ids).query(con)?;
            let l: Vec<Option<String>> = redis::cmd("HMGET").arg(&labels).arg(ids).query(con)?;
            Ok((t, l))
        })();
        match res {
            Ok((t, l)) => Ok(t
                .into_iter()
                .zip(l)
                .map(|(t, l)| t.map(|t| (t, l.unwrap_or_default())))
                .collect()),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Every sighting of the group: (identity, clock time, label).
    fn load(&mut self) -> Result<Vec<(String, u64, String)>, String> {
        let (seen, labels) = (
            format!("{}:seen", self.prefix),
            format!("{}:labels", self.prefix),
        );
        let con = self.con()?;
        let res = (|| -> redis::RedisResult<(HashMap<String, u64>, HashMap<String, String>)> {
            Ok((
                redis::cmd("HGETALL").arg(&seen).query(con)?,
                redis::cmd("HGETALL").arg(&labels).query(con)?,
            ))
        })();
        match res {
            Ok((t, l)) => Ok(t
                .into_iter()
                .map(|(id, t)| {
                    let label = l.get(&id).cloned().unwrap_or_default();
                    (id, t, label)
                })
                .collect()),
            Err(e) => Err(self.failed(e)),
        }
    }

    /// True if this node may raise the alert of `identity`'s absence since `last_seen`.
    fn claim_alert(
        &mut self,
        identity: &str,
        last_seen: u64,
        tolerance: u64,
    ) -> Result<bool, String> {
        let key = format!("{}:alerted:{identity}", self.prefix);
        let res: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(CLAIM_ALERT)
            .arg(1)
            .arg(key)
            .arg(last_seen)
            .arg(tolerance)
            .arg(30 * 86_400_000u64)
            .query(self.con()?);
        match res {
            Ok(v) => Ok(v == 1),
            Err(e) => Err(self.failed(e)),
        }
    }
}

struct ConsensusRedis {
    url: String,
    prefix: String,
    node: String,
    con: Option<redis::Connection>,
    retry_at: Option<std::time::Instant>,
    /// (unknown id, camera) -> when it was last reported to Redis.
    reported: HashMap<(String, String), std::time::Instant>,
}

impl ConsensusRedis {
    /// Reports a sighting; Ok(Some(cameras)) when this node raised the shared alert.
    fn sighting(
        &mut self,
        uid: &str,
        camera: &str,
        needed: u32,
        window: f64,
    ) -> Result<Option<i64>, String> {
        let now = std::time::Instant::now();
        let key = (uid.to_string(), camera.to_string());
        // Each camera reports a stranger at most every quarter window.
        if self
            .reported
            .get(&key)
            .is_some_and(|t| now.duration_since(*t).as_secs_f64() < window / 4.0)
        {
            return Ok(None);
        }
        if self.con.is_none() {
            if self.retry_at.is_some_and(|t| now < t) {
                return Err("Redis unavailable".into());
            }
            match sightline_core::redis_store::connect(&self.url) {
                Ok(c) => self.con = Some(c),
                Err(e) => {
                    self.retry_at = Some(now + std::time::Duration::from_secs(10));
                    return Err(e);
                }
            }
        }
        let Some(con) = self.con.as_mut() else {
            return Err("Redis unavailable".into());
        };
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let res: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(UNKNOWN_CONSENSUS)
            .arg(2)
            .arg(format!("{}:{uid}:cameras", self.prefix))
            .arg(format!("{}:{uid}:alerted", self.prefix))
            .arg(unix_ms)
            .arg(format!("{}/{camera}", self.node))
            .arg((window * 1000.0) as u64)
            .arg(needed)
            .query(con);
        match res {
            Ok(n) => {
                self.reported.insert(key, now);
                Ok((n > 0).then_some(n))
            }
            Err(e) => {
                self.con = None;
                self.retry_at = Some(now + std::time::Duration::from_secs(10));
                Err(format!(
                    "Redis {}: {e}",
                    sightline_core::redis_store::redact(&self.url)
                ))
            }
        }
    }
}

#[derive(Default)]
pub struct Presence {
    settings: Mutex<Settings>,
    hub: Mutex<Option<Arc<Hub>>>,
    /// This camera's zones, and the frame size to normalise positions.
    zones: Mutex<Option<ZoneTracker>>,
    frame_size: Mutex<Option<(u32, u32)>>,
}

impl Presence {
    /// Zone events of this frame: every face/person ROI, by identity, unknown id or track.
    fn zone_events(&self, buf: &gst::BufferRef, now: u64, camera: &str) -> Vec<presence::Event> {
        let Ok(mut z) = self.zones.lock() else {
            return Vec::new();
        };
        let Some(tracker) = z.as_mut() else {
            return Vec::new();
        };
        let Some((w, h)) = self.frame_size.lock().ok().and_then(|f| *f) else {
            return Vec::new();
        };
        let seen: Vec<(String, f64, f64)> = meta::read_rois(buf)
            .into_iter()
            .filter_map(|r| {
                let subject = match (
                    r.recognition_label.as_deref(),
                    r.identity.clone(),
                    r.unknown_id.clone(),
                    r.object_id,
                ) {
                    (Some("unknown"), _, Some(u), _) => u,
                    (Some(_), Some(id), _, _) => id,
                    (_, _, _, Some(t)) => format!("{}-track-{t}", r.roi_type),
                    _ => return None,
                };
                let (x, y, rw, rh) = r.rect;
                Some((
                    subject,
                    (x as f64 + rw as f64 / 2.0) / w as f64,
                    (y as f64 + rh as f64 / 2.0) / h as f64,
                ))
            })
            .collect();
        tracker
            .update(now, &seen)
            .into_iter()
            .map(|e| presence::Event::Zone {
                camera: camera.to_string(),
                event: e,
            })
            .collect()
    }

    fn camera(&self) -> String {
        self.settings
            .lock()
            .ok()
            .and_then(|s| s.camera.clone())
            .unwrap_or_else(|| self.obj().name().to_string())
    }

    /// Posts events as messages and writes them to the group's event log.
    fn emit(&self, hub: &Hub, events: Vec<presence::Event>) {
        if events.is_empty() {
            return;
        }
        let obj = self.obj();
        let base = obj.base_time().map_or(0, |t| t.nseconds());
        let own_camera = self.camera();
        for ev in events {
            let s = to_structure(&hub.name, &ev, &own_camera, base);
            gst::info!(CAT, imp = self, "{s}");
            let event = event_from_structure(&s, &obj.name(), &own_camera);
            let mut problems = Vec::new();
            if let Ok(mut inner) = hub.inner.lock() {
                problems.append(&mut inner.problems);
                if let Some(log) = inner.log.as_mut()
                    && let Err(e) = log.write(&event)
                {
                    problems.push(format!(
                        "Cannot write event log {}: {e}",
                        log.path().display()
                    ));
                }
                for (sink, only_alerts) in [
                    (inner.stream.as_ref(), false),
                    (inner.webhook.as_ref(), true),
                ] {
                    let Some(d) = sink else { continue };
                    if !only_alerts || s.name() == "presence-alert" {
                        problems.extend(d.send_reporting(&event));
                    } else {
                        problems.extend(d.take_problems());
                    }
                }
            }
            for p in problems {
                gst::element_imp_warning!(self, gst::ResourceError::Write, ("{}", p));
            }
            let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
        }
    }
}

fn to_structure(group: &str, ev: &presence::Event, own_camera: &str, base: u64) -> gst::Structure {
    let common = |name: &str, kind: &str, at: u64, camera: Option<&str>| {
        gst::Structure::builder(name)
            .field("group", group)
            .field("event", kind)
            .field("camera", camera.unwrap_or(own_camera))
            .field("clock-time", at)
            .field("running-time", at.saturating_sub(base))
            .field("utc-time", utc_now())
    };
    match ev {
        presence::Event::Transition {
            identity,
            label,
            from,
            to,
            at_ns,
            camera,
        } => {
            let kind = match (from, to) {
                (presence::State::NotSeen, presence::State::Active) => "arrived",
                (presence::State::Absent, presence::State::Active) => "re-entered",
                (presence::State::Grace, presence::State::Active) => "back-in-view",
                (_, presence::State::Grace) => "out-of-view",
                (_, presence::State::Absent) => "absent",
                _ => "changed",
            };
            common("presence", kind, *at_ns, camera.as_deref())
                .field("identity", identity.as_str())
                .field("label", label.as_str())
                .field("from", from.name())
                .field("to", to.name())
                .build()
        }
        presence::Event::AbsentAlert {
            identity,
            label,
            at_ns,
            absent_for_ns,
            last_camera,
        } => common("presence-alert", "absent", *at_ns, last_camera.as_deref())
            .field("identity", identity.as_str())
            .field("label", label.as_str())
            .field(
                "absent-seconds",
                absent_for_ns.map_or(-1.0, |n| n as f64 / 1e9),
            )
            .field("never-seen", absent_for_ns.is_none())
            .build(),
        presence::Event::CameraOffline {
            camera,
            at_ns,
            last_frame_ns,
        } => common("presence", "camera-offline", *at_ns, Some(camera))
            .field("last-frame-clock-time", *last_frame_ns)
            .build(),
        presence::Event::CameraOnline { camera, at_ns } => {
            common("presence", "camera-online", *at_ns, Some(camera)).build()
        }
        presence::Event::GroupOffline { at_ns } => {
            common("presence", "group-offline", *at_ns, None).build()
        }
        presence::Event::UnknownAlert(UnknownAlert {
            unknown_id,
            cameras,
            at_ns,
        }) => common("presence-alert", "unknown", *at_ns, None)
            .field("unknown-id", unknown_id.as_str())
            .field("cameras", cameras.join(","))
            .field("camera-count", cameras.len() as u32)
            .build(),
        presence::Event::Zone { camera, event } => {
            let (kind, zone, subject, at, stayed) = match event {
                ZoneEvent::Enter {
                    zone,
                    subject,
                    at_ns,
                } => ("zone-enter", zone, subject, *at_ns, None),
                ZoneEvent::Leave {
                    zone,
                    subject,
                    at_ns,
                    stayed_ns,
                } => ("zone-leave", zone, subject, *at_ns, Some(*stayed_ns)),
                ZoneEvent::Dwell {
                    zone,
                    subject,
                    at_ns,
                    stayed_ns,
                } => ("zone-dwell", zone, subject, *at_ns, Some(*stayed_ns)),
            };
            let mut b = common("presence", kind, at, Some(camera))
                .field("zone", zone.as_str())
                .field("subject", subject.as_str());
            if let Some(st) = stayed {
                b = b.field("stayed-seconds", st as f64 / 1e9);
            }
            b.build()
        }
        presence::Event::GroupOnline {
            at_ns,
            offline_for_ns,
        } => common("presence", "group-online", *at_ns, None)
            .field("offline-seconds", *offline_for_ns as f64 / 1e9)
            .build(),
    }
}

#[glib::object_subclass]
impl ObjectSubclass for Presence {
    const NAME: &'static str = "SightlinePresence";
    type Type = super::Presence;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for Presence {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("group")
                    .nick("Group")
                    .blurb("Group of cameras (an outlet): every presence element of the process with the same group shares one state (ANY-of-N)")
                    .default_value(Some(DEFAULT_GROUP))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("camera")
                    .nick("Camera")
                    .blurb("Camera name carried by events (default: the element name)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("grace-seconds")
                    .nick("Grace seconds")
                    .blurb("Seconds without a sighting after which a present person is out of view (still present)")
                    .minimum(0.0)
                    .maximum(86_400.0)
                    .default_value(DEFAULT_GRACE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("absent-seconds")
                    .nick("Absent seconds")
                    .blurb("Seconds without a sighting on any camera of the group after which a person is absent (one alert per absence)")
                    .minimum(0.001)
                    .maximum(31_536_000.0)
                    .default_value(DEFAULT_ABSENT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("camera-timeout-seconds")
                    .nick("Camera timeout seconds")
                    .blurb("A camera that delivers no frame for this long is offline; with every camera offline absences are suspended")
                    .minimum(0.001)
                    .maximum(86_400.0)
                    .default_value(DEFAULT_CAMERA_TIMEOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("roster")
                    .nick("Roster")
                    .blurb("Who is expected: comma-separated names, @FILE with one name per line, or gallery:FILE for every identity of a gallery; expected people never seen alert after absent-seconds. Unset: everyone recognised")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("event-log")
                    .nick("Event log")
                    .blurb("JSONL file that receives every transition and alert of the group (appended)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("node-id")
                    .nick("Node id")
                    .blurb("This node's name in shared state and delivered events (default: the host name)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("redis-url")
                    .nick("Redis URL")
                    .blurb("redis:// or rediss:// URL (the node's own ACL user): every event is appended to a Redis Stream, buffered on disk while Redis is away")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("stream")
                    .nick("Stream")
                    .blurb("Redis Stream key that receives the events")
                    .default_value(Some(DEFAULT_STREAM))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("webhook-url")
                    .nick("Webhook URL")
                    .blurb("http(s) URL that receives every alert as a JSON POST, retried with backoff until it answers 2xx")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("unknown-alert-cameras")
                    .nick("Unknown alert cameras")
                    .blurb("Raise one alert when the same unknown person (facematch unknown-id) is seen by at least this many distinct cameras (of every node, through Redis when redis-url is set) within unknown-alert-window-seconds; 0 = off")
                    .maximum(1000)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("unknown-alert-window-seconds")
                    .nick("Unknown alert window")
                    .blurb("Window of the unknown-person consensus, seconds")
                    .minimum(0.001)
                    .maximum(86_400.0)
                    .default_value(DEFAULT_UNKNOWN_WINDOW)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("zones")
                    .nick("Zones")
                    .blurb("JSON file of named polygons per camera (docs/elements.md): zone-enter, zone-leave and zone-dwell events for known and unknown people")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("spool-dir")
                    .nick("Spool directory")
                    .blurb("Where undelivered events wait on disk (default: $XDG_STATE_HOME/sightline/spool)")
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let Ok(mut s) = self.settings.lock() else {
            return;
        };
        let string = |v: &glib::Value| {
            v.get::<Option<String>>()
                .ok()
                .flatten()
                .filter(|x| !x.is_empty())
        };
        match pspec.name() {
            "group" => s.group = string(value).unwrap_or_else(|| DEFAULT_GROUP.to_string()),
            "camera" => s.camera = string(value),
            "grace-seconds" => s.grace_seconds = value.get().unwrap_or(DEFAULT_GRACE),
            "absent-seconds" => s.absent_seconds = value.get().unwrap_or(DEFAULT_ABSENT),
            "camera-timeout-seconds" => {
                s.camera_timeout_seconds = value.get().unwrap_or(DEFAULT_CAMERA_TIMEOUT)
            }
            "roster" => s.roster = string(value),
            "event-log" => s.event_log = string(value),
            "node-id" => s.node_id = string(value).unwrap_or_else(default_node_id),
            "redis-url" => s.redis_url = string(value),
            "stream" => s.stream = string(value).unwrap_or_else(|| DEFAULT_STREAM.to_string()),
            "webhook-url" => s.webhook_url = string(value),
            "spool-dir" => s.spool_dir = string(value),
            "zones" => s.zones = string(value),
            "unknown-alert-cameras" => s.unknown_alert_cameras = value.get().unwrap_or(0),
            "unknown-alert-window-seconds" => {
                s.unknown_alert_window = value.get().unwrap_or(DEFAULT_UNKNOWN_WINDOW)
            }
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        match pspec.name() {
            "group" => s.group.to_value(),
            "camera" => s.camera.to_value(),
            "grace-seconds" => s.grace_seconds.to_value(),
            "absent-seconds" => s.absent_seconds.to_value(),
            "camera-timeout-seconds" => s.camera_timeout_seconds.to_value(),
            "roster" => s.roster.to_value(),
            "event-log" => s.event_log.to_value(),
            "node-id" => s.node_id.to_value(),
            "redis-url" => s.redis_url.to_value(),
            "stream" => s.stream.to_value(),
            "webhook-url" => s.webhook_url.to_value(),
            "spool-dir" => s.spool_dir.to_value(),
            "zones" => s.zones.to_value(),
            "unknown-alert-cameras" => s.unknown_alert_cameras.to_value(),
            "unknown-alert-window-seconds" => s.unknown_alert_window.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

impl GstObjectImpl for Presence {}

impl ElementImpl for Presence {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Sightline presence",
                "Filter/Analyzer/Video",
                "Presence and absence of recognised people across the cameras of a group, one alert per absence, camera health",
                "Sightline developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            sightline_core::video::filter_pad_templates(&gst::Caps::builder("video/x-raw").build())
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for Presence {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        let roster = match &s.roster {
            Some(spec) => parse_roster(spec).map_err(|e| {
                gst::error_msg!(gst::ResourceError::OpenRead, ["Bad roster: {}", e])
            })?,
            None => Vec::new(),
        };
        let camera = s
            .camera
            .clone()
            .unwrap_or_else(|| self.obj().name().to_string());
        if let Some(path) = &s.zones {
            let text = std::fs::read_to_string(path).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenRead,
                    ["Cannot read zones file {}: {}", path, e]
                )
            })?;
            let cfg = zones::parse(&text, path).map_err(|e| {
                gst::error_msg!(gst::ResourceError::Settings, ["Bad zones file: {}", e])
            })?;
            let mine = cfg.cameras.get(&camera).cloned().unwrap_or_default();
            if mine.is_empty() {
                gst::warning!(
                    CAT,
                    imp = self,
                    "zones file {path} has no zones for camera {camera}"
                );
            }
            if let Ok(mut z) = self.zones.lock() {
                *z = Some(ZoneTracker::new(mine, cfg.leave_after_ns));
            }
        }
        let hub = hub_for(&s.group, &s);
        {
            let mut inner = hub
                .inner
                .lock()
                .map_err(|_| gst::error_msg!(gst::CoreError::Failed, ["group lock poisoned"]))?;
            for name in &roster {
                inner.group.expect(&slug(name), name);
            }
            if let Some(path) = &s.event_log
                && inner.log.is_none()
            {
                inner.log = Some(JsonlSink::open(std::path::Path::new(path)).map_err(|e| {
                    gst::error_msg!(
                        gst::ResourceError::OpenWrite,
                        ["Cannot open event log {}: {}", path, e]
                    )
                })?);
            }
            let spool = s
                .spool_dir
                .as_ref()
                .map(std::path::PathBuf::from)
                .unwrap_or_else(default_spool_dir);
            let node = format!("{}-{}", s.node_id, slug(&s.group));
            let open = |cfg: DeliveryConfig| {
                Delivery::start(cfg).map_err(|e| {
                    gst::error_msg!(
                        gst::ResourceError::OpenWrite,
                        ["Cannot open the event spool in {}: {}", spool.display(), e]
                    )
                })
            };
            if let Some(url) = &s.redis_url
                && inner.stream.is_none()
            {
                inner.stream = Some(open(DeliveryConfig {
                    node: format!("{node}-stream"),
                    spool_dir: spool.clone(),
                    redis_url: Some(url.clone()),
                    stream: s.stream.clone(),
                    webhook_url: None,
                })?);
            }
            if let Some(url) = &s.webhook_url
                && inner.webhook.is_none()
            {
                inner.webhook = Some(open(DeliveryConfig {
                    node: format!("{node}-webhook"),
                    spool_dir: spool.clone(),
                    redis_url: None,
                    stream: String::new(),
                    webhook_url: Some(url.clone()),
                })?);
            }
            if let Some(url) = &s.redis_url
                && inner.consensus_redis.is_none()
                && s.unknown_alert_cameras > 0
            {
                inner.consensus_redis = Some(ConsensusRedis {
                    url: url.clone(),
                    prefix: format!("sightline:unknown:{}", slug(&s.group)),
                    node: s.node_id.clone(),
                    con: None,
                    retry_at: None,
                    reported: HashMap::new(),
                });
            }
            if let Some(url) = &s.redis_url
                && inner.shared.is_none()
            {
                inner.shared = Some(SharedGroup {
                    url: url.clone(),
                    prefix: format!("sightline:presence:{}", slug(&s.group)),
                    con: None,
                    retry_at: None,
                    pushed: HashMap::new(),
                    loaded: false,
                });
            }
            inner.members.push(self.obj().downgrade());
            if !inner.timer_started {
                inner.timer_started = true;
                let h = hub.clone();
                std::thread::Builder::new()
                    .name(format!("sl-presence-{}", s.group))
                    .spawn(move || h.run_timer())
                    .map_err(|e| {
                        gst::error_msg!(
                            gst::CoreError::Failed,
                            ["Cannot start the presence timer: {}", e]
                        )
                    })?;
            }
        }
        *self
            .hub
            .lock()
            .map_err(|_| gst::error_msg!(gst::CoreError::Failed, ["lock poisoned"]))? = Some(hub);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let Some(hub) = self.hub.lock().ok().and_then(|mut h| h.take()) else {
            return Ok(());
        };
        if let Ok(mut inner) = hub.inner.lock() {
            let me = self.obj().downgrade();
            inner
                .members
                .retain(|w| w.upgrade().is_some_and(|o| Some(o) != me.upgrade()));
            if inner.members.is_empty() {
                // Last camera of the group in this process: stop its timer.
                inner.stopping = true;
                if let Some((id, _)) = &inner.pending {
                    id.unschedule();
                }
                hub.wake.notify_all();
            }
        }
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "Cannot parse video caps {}", incaps))?;
        if let Ok(mut f) = self.frame_size.lock() {
            *f = Some((info.width(), info.height()));
        }
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let hub = self
            .hub
            .lock()
            .ok()
            .and_then(|h| h.clone())
            .ok_or(gst::FlowError::Flushing)?;
        let obj = self.obj();
        let Some(pts) = buf.pts() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let Some(rt) = obj
            .segment()
            .downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_running_time(pts))
        else {
            return Ok(gst::FlowSuccess::Ok);
        };
        // The frame's clock time. Before PLAYING (preroll) the base time is not known yet:
        // the clock's current time stands in for it.
        let now = if obj.current_state() == gst::State::Playing {
            rt.nseconds() + obj.base_time().map_or(0, |t| t.nseconds())
        } else {
            // No clock distributed yet: the system clock, which pipelines use by default.
            obj.clock()
                .unwrap_or_else(gst::SystemClock::obtain)
                .time()
                .nseconds()
        };
        let camera = self.camera();
        let mut problems = Vec::new();
        let events = {
            let mut inner = hub.inner.lock().map_err(|_| gst::FlowError::Error)?;
            if inner.clock.is_none() {
                inner.clock = obj.clock();
            }
            // A (re)started node picks the group's state up from the other nodes.
            let mut ev = Vec::new();
            if let Some(shared) = inner.shared.as_mut()
                && !shared.loaded
            {
                match shared.load() {
                    Ok(all) => {
                        shared.loaded = true;
                        for (id, t, label) in all {
                            if t <= now {
                                ev.extend(inner.group.seen_elsewhere(&id, &label, t));
                            }
                        }
                    }
                    Err(e) => problems.push(e),
                }
            }
            ev.extend(inner.group.frame(&camera, now));
            let (needed, window) = (
                inner.consensus.cameras_needed as u32,
                inner.consensus.window_ns as f64 / 1e9,
            );
            for roi in meta::read_rois(buf) {
                if let (Some("unknown"), Some(uid)) =
                    (roi.recognition_label.as_deref(), roi.unknown_id.as_deref())
                    && needed > 0
                {
                    let shared = inner
                        .consensus_redis
                        .as_mut()
                        .map(|r| r.sighting(uid, &camera, needed, window));
                    match shared {
                        Some(Ok(Some(n))) => ev.push(presence::Event::UnknownAlert(UnknownAlert {
                            unknown_id: uid.to_string(),
                            cameras: vec![format!("{n} cameras of the group's nodes")],
                            at_ns: now,
                        })),
                        Some(Ok(None)) => {}
                        Some(Err(e)) => {
                            problems.push(e);
                            ev.extend(
                                inner
                                    .consensus
                                    .sighting(uid, &camera, now)
                                    .map(presence::Event::UnknownAlert),
                            );
                        }
                        None => ev.extend(
                            inner
                                .consensus
                                .sighting(uid, &camera, now)
                                .map(presence::Event::UnknownAlert),
                        ),
                    }
                }
                if let (Some(label), Some(identity)) =
                    (roi.recognition_label.as_deref(), roi.identity.as_deref())
                    && label != "unknown"
                {
                    ev.extend(inner.group.hit(identity, label, &camera, now));
                    if let Some(shared) = inner.shared.as_mut()
                        && let Err(e) = shared.push(identity, label, now)
                    {
                        problems.push(e);
                    }
                }
            }
            hub.rearm(&mut inner);
            ev
        };
        for p in problems {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Read,
                (
                    "Unknown-person consensus is local while Redis is unavailable: {}",
                    p
                )
            );
        }
        let mut events = events;
        events.extend(self.zone_events(buf, now, &camera));
        self.emit(&hub, events);
        Ok(gst::FlowSuccess::Ok)
    }
}
