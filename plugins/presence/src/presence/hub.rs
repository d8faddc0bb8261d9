//! The process-wide state of a presence group: one [`Hub`] per (node, group), shared by
//! every `presence` element of that group in the process, with its timer thread and its
//! link to the other nodes ([`GroupSync`], a Redis worker).
//!
//! Nothing here waits on the network while a lock is held or on a streaming thread: the
//! elements read local state and enqueue to the link; the link's results are absorbed on the
//! next frame or by the timer, which the link wakes.

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use sightline_core::sinks::Sink;

use sightline_core::delivery::Delivery;
use sightline_core::presence::{self, Group, PresenceConfig, UnknownAlert, UnknownConsensus};
use sightline_core::presence_sync::{GroupSync, Outcome, RateLimit, Request};
use sightline_core::redis_store::redact;

use std::collections::HashMap;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How long the timer waits for a fresh pull of the other nodes' sightings before it
/// declares anyone out of view or absent (bounded: a slow Redis delays a timeout by this).
const REFRESH_WAIT: Duration = Duration::from_millis(1000);
/// A sighting of one identity goes to Redis at most once per this much clock time.
const PUSH_EVERY_NS: u64 = 1_000_000_000;

/// The settings a group runs with; the first element of the group sets them.
#[derive(Debug, Clone, PartialEq)]
pub struct HubConfig {
    pub node_id: String,
    pub grace_seconds: f64,
    pub absent_seconds: f64,
    pub camera_timeout_seconds: f64,
    pub unknown_alert_cameras: u32,
    pub unknown_alert_window: f64,
    pub redis_url: Option<String>,
    pub stream: String,
    pub webhook_url: Option<String>,
    pub publish: Option<String>,
    pub spool_dir: Option<String>,
    pub event_log: Option<String>,
}

impl HubConfig {
    /// The properties in which `other` differs from `self`, as `name=theirs (group: ours)`.
    pub fn differences(&self, other: &HubConfig) -> Vec<String> {
        let url = |u: &Option<String>| u.as_deref().map(redact).unwrap_or_else(|| "unset".into());
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "unset".into());
        let mut d = Vec::new();
        let mut f64s = |name: &str, a: f64, b: f64| {
            if a != b {
                d.push(format!("{name}={b} (group: {a})"));
            }
        };
        f64s("grace-seconds", self.grace_seconds, other.grace_seconds);
        f64s("absent-seconds", self.absent_seconds, other.absent_seconds);
        f64s(
            "camera-timeout-seconds",
            self.camera_timeout_seconds,
            other.camera_timeout_seconds,
        );
        f64s(
            "unknown-alert-window-seconds",
            self.unknown_alert_window,
            other.unknown_alert_window,
        );
        if self.unknown_alert_cameras != other.unknown_alert_cameras {
            d.push(format!(
                "unknown-alert-cameras={} (group: {})",
                other.unknown_alert_cameras, self.unknown_alert_cameras
            ));
        }
        for (name, a, b) in [
            ("redis-url", url(&self.redis_url), url(&other.redis_url)),
            (
                "webhook-url",
                url(&self.webhook_url),
                url(&other.webhook_url),
            ),
            (
                "publish",
                self.publish
                    .as_deref()
                    .map_or_else(|| "unset".into(), Sink::shown_list),
                other
                    .publish
                    .as_deref()
                    .map_or_else(|| "unset".into(), Sink::shown_list),
            ),
            ("stream", self.stream.clone(), other.stream.clone()),
            ("spool-dir", opt(&self.spool_dir), opt(&other.spool_dir)),
            ("event-log", opt(&self.event_log), opt(&other.event_log)),
        ] {
            if a != b {
                d.push(format!("{name}={b} (group: {a})"));
            }
        }
        d
    }
}

pub struct Hub {
    pub name: String,
    pub inner: Mutex<HubInner>,
    pub wake: Condvar,
    pub config: HubConfig,
    /// The element whose settings the group runs with.
    pub creator: String,
}

pub struct HubInner {
    pub group: Group,
    pub members: Vec<glib::WeakRef<super::Presence>>,
    pub clock: Option<gst::Clock>,
    /// The clock wait in progress and its deadline.
    pub pending: Option<(gst::SingleShotClockId, u64)>,
    /// Every event to the group's sinks (`publish` and the older properties).
    pub publish: Option<Delivery>,
    pub consensus: UnknownConsensus,
    /// The group shared with other nodes (Redis), when configured.
    pub link: Option<Arc<GroupSync>>,
    link_up: bool,
    /// Clock time of the last sighting sent to the link, per identity.
    pushed: HashMap<String, u64>,
    /// (unknown id, camera) pairs sent to the link, at most every quarter window.
    unknown_limit: RateLimit,
    /// Local consensus alerts waiting for the shared decision, by unknown id.
    held_unknown: HashMap<String, UnknownAlert>,
    /// Unknown ids alerted (clock time), so that local and shared never both alert.
    alerted_unknown: HashMap<String, u64>,
    /// Absence alerts waiting for the link's claim.
    claims: HashMap<u64, presence::Event>,
    next_claim: u64,
    /// Problems met off the streaming threads, reported by the next element that can.
    pub problems: Vec<String>,
    pub timer_started: bool,
    pub stopping: bool,
    /// The timer took events out and is handing them to an element (outside the lock).
    pub delivering: bool,
}

/// What facematch said about one face of a frame.
pub struct FaceSighting<'a> {
    pub label: Option<&'a str>,
    pub identity: Option<&'a str>,
    pub unknown_id: Option<&'a str>,
}

static HUBS: LazyLock<Mutex<HashMap<String, Arc<Hub>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The group `name` of node `cfg.node_id`, created with `cfg` if it does not exist. The second
/// value is a warning when the group exists with other settings (which stay in force).
pub fn hub_for(name: &str, cfg: &HubConfig, element: &str) -> (Arc<Hub>, Option<String>) {
    // One state per (node, group): elements of one node share it in the process; two
    // node-ids in one process behave as two nodes that share only through Redis.
    let hub_key = format!("{}\u{0}{name}", cfg.node_id);
    let mut hubs = HUBS.lock().unwrap_or_else(|e| e.into_inner());
    hubs.retain(|_, h| h.inner.lock().map(|i| !i.stopping).unwrap_or(false));
    let hub = hubs
        .entry(hub_key)
        .or_insert_with(|| {
            Arc::new(Hub {
                name: name.to_string(),
                inner: Mutex::new(HubInner::new(cfg)),
                wake: Condvar::new(),
                config: cfg.clone(),
                creator: element.to_string(),
            })
        })
        .clone();
    let diff = hub.config.differences(cfg);
    let warning = (!diff.is_empty() && hub.creator != element).then(|| {
        format!(
            "{element} joins presence group {name} with other settings than {} (the group keeps its own): {}",
            hub.creator,
            diff.join(", ")
        )
    });
    (hub, warning)
}

impl HubInner {
    fn new(s: &HubConfig) -> Self {
        HubInner {
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
            publish: None,
            consensus: UnknownConsensus::new(
                s.unknown_alert_cameras as usize,
                (s.unknown_alert_window * 1e9) as u64,
            ),
            link: None,
            link_up: true,
            pushed: HashMap::new(),
            unknown_limit: RateLimit::default(),
            held_unknown: HashMap::new(),
            alerted_unknown: HashMap::new(),
            claims: HashMap::new(),
            next_claim: 0,
            problems: Vec::new(),
            timer_started: false,
            stopping: false,
            delivering: false,
        }
    }

    /// The group's clock time; before a pipeline clock is known (preroll), the system
    /// clock, which pipelines use by default.
    fn now(&self) -> u64 {
        self.clock
            .clone()
            .unwrap_or_else(|| gst::SystemClock::obtain().upcast())
            .time()
            .nseconds()
    }

    /// Takes the link's results: other nodes' sightings, shared alerts, claims.
    pub fn absorb(&mut self, now: u64) -> Vec<presence::Event> {
        let Some(link) = self.link.clone() else {
            return Vec::new();
        };
        self.problems.extend(link.take_problems());
        let mut ev = Vec::new();
        let up = link.healthy();
        if up != self.link_up {
            self.link_up = up;
            ev.push(presence::Event::SharedState {
                available: up,
                at_ns: now,
                detail: format!("Redis {}", redact(link.url())),
            });
            if !up {
                // Local decisions from now on: the held local alerts are due.
                let held: Vec<UnknownAlert> = self.held_unknown.drain().map(|(_, a)| a).collect();
                for a in held {
                    ev.extend(self.alert_unknown(a, now));
                }
            }
        }
        for o in link.take_outcomes() {
            match o {
                Outcome::Sightings(all) => {
                    for (id, t, label) in all {
                        if t <= now {
                            ev.extend(self.group.seen_elsewhere(&id, &label, t));
                        }
                    }
                }
                Outcome::UnknownAlert { uid, cameras } => {
                    self.held_unknown.remove(&uid);
                    let a = UnknownAlert {
                        unknown_id: uid,
                        cameras: vec![format!("{cameras} cameras of the group's nodes")],
                        at_ns: now,
                    };
                    ev.extend(self.alert_unknown(a, now));
                }
                Outcome::UnknownUndecided { uid } => {
                    if let Some(a) = self.held_unknown.remove(&uid) {
                        ev.extend(self.alert_unknown(a, now));
                    }
                }
                Outcome::Claimed { token, won } => {
                    if let Some(e) = self.claims.remove(&token)
                        && won
                    {
                        ev.push(e);
                    }
                }
            }
        }
        ev
    }

    /// The alert of a stranger, unless this id was alerted within the window.
    fn alert_unknown(&mut self, a: UnknownAlert, now: u64) -> Option<presence::Event> {
        let w = self.consensus.window_ns;
        self.alerted_unknown
            .retain(|_, t| now.saturating_sub(*t) <= w);
        if self.alerted_unknown.contains_key(&a.unknown_id) {
            return None;
        }
        self.alerted_unknown.insert(a.unknown_id.clone(), now);
        Some(presence::Event::UnknownAlert(a))
    }

    /// One frame of `camera` at clock time `now` with the faces facematch decided.
    pub fn frame(
        &mut self,
        camera: &str,
        now: u64,
        faces: &[FaceSighting<'_>],
    ) -> Vec<presence::Event> {
        let mut ev = self.absorb(now);
        ev.extend(self.group.frame(camera, now));
        let needed = self.consensus.cameras_needed as u32;
        let window = Duration::from_nanos(self.consensus.window_ns);
        for f in faces {
            if let (Some("unknown"), Some(uid)) = (f.label, f.unknown_id)
                && needed > 0
            {
                let local = self.consensus.sighting(uid, camera, now);
                match self.link.clone() {
                    None => ev.extend(local.and_then(|a| self.alert_unknown(a, now))),
                    Some(link) => {
                        let mut refused = false;
                        if self.unknown_limit.pass(
                            &format!("{uid}\u{0}{camera}"),
                            window / 4,
                            Instant::now(),
                        ) {
                            refused = link
                                .send(Request::Unknown {
                                    uid: uid.to_string(),
                                    camera: camera.to_string(),
                                    needed,
                                    window,
                                })
                                .is_err();
                        }
                        if let Some(a) = local {
                            if refused || !link.healthy() {
                                ev.extend(self.alert_unknown(a, now));
                            } else {
                                // The shared consensus decides; this one is kept in case
                                // Redis cannot answer.
                                let w = self.consensus.window_ns;
                                self.held_unknown
                                    .retain(|_, h| now.saturating_sub(h.at_ns) <= w);
                                self.held_unknown.insert(uid.to_string(), a);
                            }
                        }
                    }
                }
            }
            if let (Some(label), Some(identity)) = (f.label, f.identity)
                && label != "unknown"
            {
                ev.extend(self.group.hit(identity, label, camera, now));
                if let Some(link) = &self.link
                    && self
                        .pushed
                        .get(identity)
                        .is_none_or(|p| now >= p + PUSH_EVERY_NS)
                    && link
                        .send(Request::Seen {
                            identity: identity.to_string(),
                            label: label.to_string(),
                            at: now,
                        })
                        .is_ok()
                {
                    self.pushed.insert(identity.to_string(), now);
                }
            }
        }
        ev
    }

    /// Ticks the group at `now`; absence alerts go to the link to be claimed (one node
    /// raises each), or straight out without a link.
    fn tick(&mut self, now: u64) -> Vec<presence::Event> {
        let mut ev = Vec::new();
        for e in self.group.tick(now) {
            if let presence::Event::AbsentAlert { identity, .. } = &e
                && let Some(link) = self.link.clone()
            {
                let last = self
                    .group
                    .person(identity)
                    .and_then(|p| p.last_seen_ns)
                    .unwrap_or(0);
                let token = self.next_claim;
                self.next_claim += 1;
                let req = Request::Claim {
                    token,
                    identity: identity.clone(),
                    last_seen: last,
                    tolerance: self.group.config.absent_ns / 2,
                };
                if link.send(req).is_ok() {
                    self.claims.insert(token, e);
                    continue;
                }
            }
            ev.push(e);
        }
        ev
    }

    fn member(&self) -> Option<super::Presence> {
        self.members.iter().find_map(|w| w.upgrade())
    }
}

impl Hub {
    /// Re-arms the timer if the group's next deadline moved earlier than the current wait.
    pub fn rearm(&self, inner: &mut HubInner) {
        let next = inner.group.next_deadline();
        match (&inner.pending, next) {
            (Some((id, at)), Some(n)) if n < *at => id.unschedule(),
            (None, Some(_)) => {}
            _ => return,
        }
        self.wake.notify_all();
    }

    /// Wakes the timer to absorb the link's results (called on the link's thread).
    pub fn poke(&self) {
        if let Ok(inner) = self.inner.lock()
            && let Some((id, _)) = &inner.pending
        {
            id.unschedule();
        }
        self.wake.notify_all();
    }

    /// Waits (at most `wait`, without the lock) until the link has answered every request
    /// sent so far, then returns what it answered: at the end of a stream, so that a result
    /// still on its way (an alert) is not lost.
    pub fn flush(&self, wait: Duration) -> (Vec<presence::Event>, Vec<String>) {
        let link = self.inner.lock().ok().and_then(|i| i.link.clone());
        if let Some(l) = link.filter(|l| l.healthy()) {
            l.sync(wait);
        }
        let Ok(mut inner) = self.inner.lock() else {
            return (Vec::new(), Vec::new());
        };
        // The timer may have taken the link's results (an alert) just before: they reach
        // the element before the stream's end goes on (bounded wait).
        let end = Instant::now() + wait;
        while inner.delivering {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            inner = match self.wake.wait_timeout(inner, left) {
                Ok((g, _)) => g,
                Err(_) => return (Vec::new(), Vec::new()),
            };
        }
        let now = inner.now();
        let ev = inner.absorb(now);
        (ev, std::mem::take(&mut inner.problems))
    }

    /// The timer's delivery is done: a flush waiting for it goes on.
    fn delivered(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.delivering = false;
        }
        self.wake.notify_all();
    }

    /// Hands events and problems to a member element.
    fn deliver(
        &self,
        member: Option<super::Presence>,
        events: Vec<presence::Event>,
        problems: Vec<String>,
    ) {
        if let Some(m) = member {
            m.imp().report(problems);
            m.imp().emit(self, events);
        }
    }

    /// The timer: waits on the group's clock for the next deadline and ticks the group;
    /// absorbs the link's results whenever the link wakes it.
    pub fn run_timer(self: Arc<Self>) {
        loop {
            let (events, problems, member, wait) = {
                let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if inner.stopping {
                        return;
                    }
                    let now = inner.now();
                    let ev = inner.absorb(now);
                    let problems = std::mem::take(&mut inner.problems);
                    if !ev.is_empty() || !problems.is_empty() {
                        inner.delivering = true;
                        break (ev, problems, inner.member(), None);
                    }
                    if let (Some(clock), Some(d)) =
                        (inner.clock.clone(), inner.group.next_deadline())
                    {
                        let id = clock.new_single_shot_id(gst::ClockTime::from_nseconds(d));
                        inner.pending = Some((id.clone(), d));
                        break (Vec::new(), Vec::new(), None, Some((id, d)));
                    }
                    inner = self.wake.wait(inner).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some((id, deadline)) = wait else {
                self.deliver(member, events, problems);
                self.delivered();
                continue;
            };
            let (res, _) = id.wait();
            let link = {
                let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                inner.pending = None;
                if inner.stopping {
                    return;
                }
                inner.link.clone()
            };
            if res == Err(gst::ClockError::Unscheduled) {
                // Re-armed for an earlier deadline, or woken by the link.
                continue;
            }
            // A deadline: first learn what the other nodes saw (bounded wait, no lock held).
            if let Some(l) = link.filter(|l| l.healthy()) {
                l.sync(REFRESH_WAIT);
            }
            let (events, problems, member) = {
                let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                if inner.stopping {
                    return;
                }
                let now = if inner.clock.is_some() {
                    inner.now()
                } else {
                    deadline
                };
                let mut ev = inner.absorb(now);
                ev.extend(inner.tick(now));
                let problems = std::mem::take(&mut inner.problems);
                inner.delivering = true;
                (ev, problems, inner.member())
            };
            self.deliver(member, events, problems);
            self.delivered();
        }
    }
}
