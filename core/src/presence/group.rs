//! Presence of people in a group of cameras (an outlet): who is here, who left, one alert per
//! absence. Pure logic; time (ns, any monotonic base shared by the group's cameras) comes from
//! the caller, so 300-second timeouts are tested in microseconds.
//!
//! Per identity:
//!
//! ```text
//! NOT_SEEN --hit--> PRESENT(active) --no hit for grace--> PRESENT(grace) --hit--> PRESENT(active)
//!                        ^                                     |
//!                        |                    no hit for absent-seconds since the last hit
//!                        +------------hit (re-entry)------ ABSENT (one alert)
//! ```
//!
//! An expected person (roster) never seen within `absent` of the group's start is ABSENT too
//! (alerted once). While every camera of the group is offline the clocks of absence stop: time
//! without cameras never counts as time away.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PresenceConfig {
    /// No hit for this long: the person is in grace (still present, not in view).
    pub grace_ns: u64,
    /// No hit for this long: the person is absent (alert).
    pub absent_ns: u64,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            grace_ns: 10_000_000_000,
            absent_ns: 300_000_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    NotSeen,
    Active,
    Grace,
    Absent,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::NotSeen => "not-seen",
            State::Active => "present",
            State::Grace => "grace",
            State::Absent => "absent",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub identity: String,
    pub label: String,
    pub state: State,
    /// Last hit (group time, with offline periods removed).
    pub last_seen_ns: Option<u64>,
    pub last_camera: Option<String>,
    /// Whether the current absence has been alerted.
    pub alerted: bool,
    pub expected: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A state change of one identity.
    Transition {
        identity: String,
        label: String,
        from: State,
        to: State,
        at_ns: u64,
        camera: Option<String>,
    },
    /// The one alert of an absence (absent for `absent_for_ns`; None: never seen).
    AbsentAlert {
        identity: String,
        label: String,
        at_ns: u64,
        absent_for_ns: Option<u64>,
        last_camera: Option<String>,
    },
    CameraOffline {
        camera: String,
        at_ns: u64,
        last_frame_ns: u64,
    },
    CameraOnline {
        camera: String,
        at_ns: u64,
    },
    /// Every camera of the group stopped: absences are suspended.
    GroupOffline {
        at_ns: u64,
    },
    GroupOnline {
        at_ns: u64,
        offline_for_ns: u64,
    },
    /// The same stranger was seen by enough cameras (or nodes) within the window.
    UnknownAlert(UnknownAlert),
    /// A zone event of one camera.
    Zone {
        camera: String,
        event: crate::zones::ZoneEvent,
    },
    /// The group's state shared with other nodes (Redis) became unavailable (decisions are
    /// local until it is back) or available again (caught up).
    SharedState {
        available: bool,
        at_ns: u64,
        detail: String,
    },
}

#[derive(Debug, Clone)]
struct Camera {
    last_frame_ns: u64,
    online: bool,
}

/// The state of one group (ANY-of-N: a hit on any camera counts).
#[derive(Debug, Clone)]
pub struct Group {
    pub config: PresenceConfig,
    /// A camera that delivers no frame for this long is offline.
    pub camera_timeout_ns: u64,
    people: BTreeMap<String, Person>,
    cameras: BTreeMap<String, Camera>,
    started_ns: Option<u64>,
    /// Total time every camera was offline (subtracted from absence clocks).
    offline_total_ns: u64,
    offline_since_ns: Option<u64>,
}

impl Group {
    pub fn new(config: PresenceConfig, camera_timeout_ns: u64) -> Self {
        Group {
            config,
            camera_timeout_ns,
            people: BTreeMap::new(),
            cameras: BTreeMap::new(),
            started_ns: None,
            offline_total_ns: 0,
            offline_since_ns: None,
        }
    }

    /// Declares who is expected (they start NOT_SEEN and alert if never seen).
    pub fn expect(&mut self, identity: &str, label: &str) {
        self.people
            .entry(identity.to_string())
            .or_insert_with(|| Person {
                identity: identity.to_string(),
                label: label.to_string(),
                state: State::NotSeen,
                last_seen_ns: None,
                last_camera: None,
                alerted: false,
                expected: true,
            })
            .expected = true;
    }

    pub fn person(&self, identity: &str) -> Option<&Person> {
        self.people.get(identity)
    }

    pub fn people(&self) -> impl Iterator<Item = &Person> {
        self.people.values()
    }

    pub fn is_offline(&self) -> bool {
        self.offline_since_ns.is_some()
    }

    /// Group time: `now` minus the time every camera was offline.
    fn effective(&self, now: u64) -> u64 {
        let open = self.offline_since_ns.map_or(0, |s| now.saturating_sub(s));
        now.saturating_sub(self.offline_total_ns + open)
    }

    /// A frame from `camera` at `now` (whatever it showed): camera health.
    pub fn frame(&mut self, camera: &str, now: u64) -> Vec<Event> {
        let mut ev = Vec::new();
        self.started_ns.get_or_insert(now);
        let cam = self.cameras.entry(camera.to_string()).or_insert(Camera {
            last_frame_ns: now,
            online: true,
        });
        cam.last_frame_ns = cam.last_frame_ns.max(now);
        if !cam.online {
            cam.online = true;
            ev.push(Event::CameraOnline {
                camera: camera.to_string(),
                at_ns: now,
            });
        }
        if let Some(since) = self.offline_since_ns.take() {
            let gap = now.saturating_sub(since);
            self.offline_total_ns += gap;
            ev.push(Event::GroupOnline {
                at_ns: now,
                offline_for_ns: gap,
            });
        }
        ev
    }

    /// `identity` was recognised on `camera` at `now`.
    pub fn hit(&mut self, identity: &str, label: &str, camera: &str, now: u64) -> Vec<Event> {
        let mut ev = self.frame(camera, now);
        let eff = self.effective(now);
        let p = self
            .people
            .entry(identity.to_string())
            .or_insert_with(|| Person {
                identity: identity.to_string(),
                label: label.to_string(),
                state: State::NotSeen,
                last_seen_ns: None,
                last_camera: None,
                alerted: false,
                expected: false,
            });
        if !label.is_empty() {
            p.label = label.to_string();
        }
        let from = p.state;
        p.last_seen_ns = Some(eff);
        p.last_camera = Some(camera.to_string());
        if from != State::Active {
            p.state = State::Active;
            p.alerted = false;
            ev.push(Event::Transition {
                identity: p.identity.clone(),
                label: p.label.clone(),
                from,
                to: State::Active,
                at_ns: now,
                camera: Some(camera.to_string()),
            });
        }
        ev
    }

    /// `identity` was seen at `at` somewhere else (another node of the group): refreshes the
    /// last sighting if that is newer, without touching camera health. A person out of view or
    /// absent here becomes present again (a transition without a camera).
    pub fn seen_elsewhere(&mut self, identity: &str, label: &str, at: u64) -> Vec<Event> {
        let eff = self.effective(at);
        let p = self
            .people
            .entry(identity.to_string())
            .or_insert_with(|| Person {
                identity: identity.to_string(),
                label: label.to_string(),
                state: State::NotSeen,
                last_seen_ns: None,
                last_camera: None,
                alerted: false,
                expected: false,
            });
        if p.last_seen_ns.is_some_and(|t| t >= eff) {
            return Vec::new();
        }
        p.last_seen_ns = Some(eff);
        if !label.is_empty() {
            p.label = label.to_string();
        }
        let mut ev = Vec::new();
        if p.state != State::Active {
            ev.push(Event::Transition {
                identity: p.identity.clone(),
                label: p.label.clone(),
                from: p.state,
                to: State::Active,
                at_ns: at,
                camera: None,
            });
            p.state = State::Active;
            p.alerted = false;
        }
        ev
    }

    /// People whose next timeout is due at `now` (worth checking with other nodes first).
    pub fn due(&self, now: u64) -> Vec<(String, Option<u64>)> {
        let eff = self.effective(now);
        self.people
            .values()
            .filter(|p| match (p.state, p.last_seen_ns) {
                (State::Active, Some(t)) => eff.saturating_sub(t) >= self.config.grace_ns,
                (State::Grace, Some(t)) => eff.saturating_sub(t) >= self.config.absent_ns,
                _ => false,
            })
            .map(|p| (p.identity.clone(), p.last_seen_ns.map(|t| t + (now - eff))))
            .collect()
    }

    /// Advances the clock to `now`: grace, absences, alerts, camera and group health.
    pub fn tick(&mut self, now: u64) -> Vec<Event> {
        let mut ev = Vec::new();
        self.started_ns.get_or_insert(now);
        // Cameras.
        let mut any_online = false;
        for (name, cam) in self.cameras.iter_mut() {
            if cam.online && now.saturating_sub(cam.last_frame_ns) >= self.camera_timeout_ns {
                cam.online = false;
                ev.push(Event::CameraOffline {
                    camera: name.clone(),
                    at_ns: now,
                    last_frame_ns: cam.last_frame_ns,
                });
            }
            any_online |= cam.online;
        }
        if !self.cameras.is_empty() && !any_online && self.offline_since_ns.is_none() {
            // From the last frame any camera delivered: that is when watching stopped.
            let since = self
                .cameras
                .values()
                .map(|c| c.last_frame_ns)
                .max()
                .unwrap_or(now);
            self.offline_since_ns = Some(since);
            ev.push(Event::GroupOffline { at_ns: now });
        }
        if self.is_offline() {
            return ev;
        }
        let eff = self.effective(now);
        let start = self.started_ns.unwrap_or(now);
        for p in self.people.values_mut() {
            let since_hit = match p.last_seen_ns {
                Some(t) => eff.saturating_sub(t),
                None => eff.saturating_sub(start),
            };
            let (from, mut to) = (p.state, p.state);
            match p.state {
                State::Active if since_hit >= self.config.absent_ns => to = State::Absent,
                State::Active if since_hit >= self.config.grace_ns => to = State::Grace,
                State::Grace if since_hit >= self.config.absent_ns => to = State::Absent,
                State::NotSeen if p.expected && since_hit >= self.config.absent_ns => {
                    to = State::Absent
                }
                _ => {}
            }
            if to != from {
                // Passing through grace on the way out, so every transition is reported.
                if from == State::Active && to == State::Absent {
                    ev.push(Event::Transition {
                        identity: p.identity.clone(),
                        label: p.label.clone(),
                        from,
                        to: State::Grace,
                        at_ns: now,
                        camera: None,
                    });
                }
                p.state = to;
                ev.push(Event::Transition {
                    identity: p.identity.clone(),
                    label: p.label.clone(),
                    from: if from == State::Active && to == State::Absent {
                        State::Grace
                    } else {
                        from
                    },
                    to,
                    at_ns: now,
                    camera: None,
                });
            }
            if p.state == State::Absent && !p.alerted && (p.expected || p.last_seen_ns.is_some()) {
                p.alerted = true;
                ev.push(Event::AbsentAlert {
                    identity: p.identity.clone(),
                    label: p.label.clone(),
                    at_ns: now,
                    absent_for_ns: p.last_seen_ns.map(|t| eff.saturating_sub(t)),
                    last_camera: p.last_camera.clone(),
                });
            }
        }
        ev
    }

    /// The next time `tick` could produce an event (for a clock wait), if any.
    pub fn next_deadline(&self) -> Option<u64> {
        let mut best: Option<u64> = None;
        let mut consider = |t: u64| best = Some(best.map_or(t, |b| b.min(t)));
        for cam in self.cameras.values().filter(|c| c.online) {
            consider(cam.last_frame_ns + self.camera_timeout_ns);
        }
        if self.is_offline() {
            return best;
        }
        // Group time runs behind clock time by the offline total.
        let shift = self.offline_total_ns;
        let start = self.started_ns.unwrap_or(0);
        for p in self.people.values() {
            let base = p.last_seen_ns.unwrap_or(start.saturating_sub(shift)) + shift;
            match p.state {
                State::Active => consider(base + self.config.grace_ns),
                State::Grace => consider(base + self.config.absent_ns),
                State::NotSeen if p.expected => consider(base + self.config.absent_ns),
                _ => {}
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn group() -> Group {
        Group::new(
            PresenceConfig {
                grace_ns: 10 * S,
                absent_ns: 300 * S,
            },
            30 * S,
        )
    }

    fn transitions(ev: &[Event]) -> Vec<(String, State, State)> {
        ev.iter()
            .filter_map(|e| match e {
                Event::Transition {
                    identity, from, to, ..
                } => Some((identity.clone(), *from, *to)),
                _ => None,
            })
            .collect()
    }

    fn alerts(ev: &[Event]) -> usize {
        ev.iter()
            .filter(|e| matches!(e, Event::AbsentAlert { .. }))
            .count()
    }

    #[test]
    fn arrive_grace_return_absent_alert_once_reenter_alert_again() {
        let mut g = group();
        let ev = g.hit("ann", "Ann", "cam1", 0);
        assert_eq!(
            transitions(&ev),
            vec![("ann".into(), State::NotSeen, State::Active)]
        );
        // Seen every second for 5 s: nothing new.
        for t in 1..=5 {
            assert!(g.hit("ann", "Ann", "cam1", t * S).is_empty());
            assert!(g.tick(t * S).is_empty());
        }
        // Grace boundary: 9.999 s after the last hit nothing, at 10 s grace.
        assert!(g.tick(15 * S - 1).is_empty());
        assert_eq!(
            transitions(&g.tick(15 * S)),
            vec![("ann".into(), State::Active, State::Grace)]
        );
        // Back in view: active again, no alert.
        let ev = g.hit("ann", "Ann", "cam2", 20 * S);
        assert_eq!(
            transitions(&ev),
            vec![("ann".into(), State::Grace, State::Active)]
        );
        // Gone: grace at 30 s, absent at 320 s exactly, one alert.
        g.frame("cam1", 100 * S);
        assert_eq!(
            transitions(&g.tick(30 * S)),
            vec![("ann".into(), State::Active, State::Grace)]
        );
        for t in (40..320).step_by(10) {
            g.frame("cam1", t * S);
            assert_eq!(alerts(&g.tick(t * S)), 0, "t={t}");
        }
        g.frame("cam1", 320 * S - 1);
        assert!(g.tick(320 * S - 1).is_empty());
        let ev = g.tick(320 * S);
        assert_eq!(
            transitions(&ev),
            vec![("ann".into(), State::Grace, State::Absent)]
        );
        assert_eq!(alerts(&ev), 1);
        match ev.iter().find(|e| matches!(e, Event::AbsentAlert { .. })) {
            Some(Event::AbsentAlert {
                absent_for_ns,
                last_camera,
                ..
            }) => {
                assert_eq!(*absent_for_ns, Some(300 * S));
                assert_eq!(last_camera.as_deref(), Some("cam2"));
            }
            _ => unreachable!(),
        }
        // Still absent later: no second alert.
        g.frame("cam1", 400 * S);
        assert!(g.tick(400 * S).is_empty());
        // Re-entry, then a new absence alerts again.
        let ev = g.hit("ann", "Ann", "cam1", 500 * S);
        assert_eq!(
            transitions(&ev),
            vec![("ann".into(), State::Absent, State::Active)]
        );
        g.frame("cam1", 800 * S);
        let ev = g.tick(800 * S);
        assert_eq!(alerts(&ev), 1);
    }

    #[test]
    fn any_of_n_a_hit_on_any_camera_keeps_a_person_present() {
        let mut g = group();
        g.hit("bob", "Bob", "door", 0);
        // Gone from the door, seen by the till every 5 s.
        for t in (5..=600).step_by(5) {
            g.frame("door", t * S);
            g.hit("bob", "Bob", "till", t * S);
            let ev = g.tick(t * S);
            assert!(
                transitions(&ev).is_empty() && alerts(&ev) == 0,
                "t={t}: {ev:?}"
            );
        }
        assert_eq!(g.person("bob").unwrap().state, State::Active);
    }

    #[test]
    fn a_long_jump_in_time_goes_through_grace_to_absent() {
        let mut g = group();
        g.hit("cy", "Cy", "cam", 0);
        g.frame("cam", 1000 * S);
        let ev = g.tick(1000 * S);
        assert_eq!(
            transitions(&ev),
            vec![
                ("cy".into(), State::Active, State::Grace),
                ("cy".into(), State::Grace, State::Absent)
            ]
        );
        assert_eq!(alerts(&ev), 1);
    }

    #[test]
    fn an_expected_person_never_seen_alerts_once_after_absent_seconds() {
        let mut g = group();
        g.expect("dee", "Dee");
        g.frame("cam", 0);
        assert!(g.tick(0).is_empty());
        g.frame("cam", 299 * S);
        assert!(g.tick(299 * S).is_empty());
        g.frame("cam", 300 * S);
        let ev = g.tick(300 * S);
        assert_eq!(
            transitions(&ev),
            vec![("dee".into(), State::NotSeen, State::Absent)]
        );
        match &ev[1] {
            Event::AbsentAlert { absent_for_ns, .. } => assert_eq!(*absent_for_ns, None),
            e => panic!("{e:?}"),
        }
        // Someone not expected and never seen: nothing.
        assert_eq!(g.people().count(), 1);
    }

    #[test]
    fn cameras_going_offline_never_make_people_absent() {
        let mut g = group();
        g.hit("eve", "Eve", "cam1", 0);
        g.frame("cam2", 0);
        // Both cameras stop at 5 s. Offline after the 30 s camera timeout.
        g.frame("cam1", 5 * S);
        g.frame("cam2", 5 * S);
        let ev = g.tick(35 * S);
        assert!(ev.contains(&Event::CameraOffline {
            camera: "cam1".into(),
            at_ns: 35 * S,
            last_frame_ns: 5 * S
        }));
        assert!(ev.contains(&Event::GroupOffline { at_ns: 35 * S }));
        // An hour without cameras: no absence, no alert.
        assert!(g.tick(3600 * S).is_empty());
        // Watching stopped 5 s after the hit: not even grace yet.
        assert_eq!(g.person("eve").unwrap().state, State::Active);
        // cam2 is back: the group is online; the 3595 s without cameras do not count.
        let ev = g.frame("cam2", 3600 * S);
        assert!(ev.contains(&Event::CameraOnline {
            camera: "cam2".into(),
            at_ns: 3600 * S
        }));
        assert!(ev.contains(&Event::GroupOnline {
            at_ns: 3600 * S,
            offline_for_ns: 3595 * S
        }));
        // Eve was last seen 5 s of watching before the outage: absent 295 s of watching later.
        g.frame("cam2", 3894 * S);
        assert_eq!(alerts(&g.tick(3894 * S)), 0);
        g.frame("cam2", 3895 * S);
        assert_eq!(alerts(&g.tick(3895 * S)), 1);
    }

    #[test]
    fn one_camera_offline_reports_it_but_the_group_keeps_watching() {
        let mut g = group();
        g.hit("fay", "Fay", "a", 0);
        g.frame("b", 0);
        for t in 1..=40 {
            g.frame("b", t * S);
        }
        let ev = g.tick(40 * S);
        assert!(
            ev.iter()
                .any(|e| matches!(e, Event::CameraOffline { camera, .. } if camera == "a"))
        );
        assert!(!ev.iter().any(|e| matches!(e, Event::GroupOffline { .. })));
        assert!(!g.is_offline());
    }

    #[test]
    fn a_sighting_elsewhere_keeps_a_person_present_and_brings_them_back() {
        let mut g = group();
        g.hit("hal", "Hal", "cam", 0);
        g.frame("cam", 20 * S);
        assert_eq!(g.due(20 * S), vec![("hal".to_string(), Some(0))]);
        // Another node saw Hal at 15 s: not due any more, no transition (still active).
        assert!(g.seen_elsewhere("hal", "Hal", 15 * S).is_empty());
        assert!(g.due(20 * S).is_empty());
        assert!(
            g.seen_elsewhere("hal", "Hal", 10 * S).is_empty(),
            "older news is ignored"
        );
        g.frame("cam", 30 * S);
        assert_eq!(
            transitions(&g.tick(30 * S)),
            vec![("hal".into(), State::Active, State::Grace)]
        );
        let ev = g.seen_elsewhere("hal", "Hal", 31 * S);
        assert_eq!(
            transitions(&ev),
            vec![("hal".into(), State::Grace, State::Active)]
        );
    }

    #[test]
    fn next_deadline_is_the_earliest_timeout() {
        let mut g = group();
        assert_eq!(g.next_deadline(), None);
        g.hit("gil", "Gil", "cam", 2 * S);
        assert_eq!(
            g.next_deadline(),
            Some(12 * S),
            "grace before camera timeout (32 s)"
        );
        g.tick(12 * S);
        assert_eq!(
            g.next_deadline(),
            Some(32 * S),
            "camera timeout before absence (302 s)"
        );
        g.frame("cam", 100 * S);
        assert_eq!(g.next_deadline(), Some(130 * S));
        g.frame("cam", 290 * S);
        assert_eq!(g.next_deadline(), Some(302 * S));
    }
}

/// "The same stranger on k cameras within a window": one alert per unknown id.
#[derive(Debug, Clone)]
pub struct UnknownConsensus {
    pub cameras_needed: usize,
    pub window_ns: u64,
    seen: BTreeMap<String, BTreeMap<String, u64>>,
    alerted: BTreeMap<String, u64>,
}

/// Raised when an unknown id has been seen by enough distinct cameras.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownAlert {
    pub unknown_id: String,
    pub cameras: Vec<String>,
    pub at_ns: u64,
}

impl UnknownConsensus {
    pub fn new(cameras_needed: usize, window_ns: u64) -> Self {
        UnknownConsensus {
            cameras_needed,
            window_ns,
            seen: BTreeMap::new(),
            alerted: BTreeMap::new(),
        }
    }

    /// `unknown_id` seen on `camera` at `now`; the alert if this sighting completes the
    /// consensus (an id alerts again only after it was unseen for a whole window).
    pub fn sighting(&mut self, unknown_id: &str, camera: &str, now: u64) -> Option<UnknownAlert> {
        if self.cameras_needed == 0 {
            return None;
        }
        let w = self.window_ns;
        self.seen.retain(|_, cams| {
            cams.retain(|_, t| now.saturating_sub(*t) <= w);
            !cams.is_empty()
        });
        self.alerted
            .retain(|id, t| now.saturating_sub(*t) <= w || self.seen.contains_key(id));
        let cams = self.seen.entry(unknown_id.to_string()).or_default();
        cams.insert(camera.to_string(), now);
        if cams.len() >= self.cameras_needed && !self.alerted.contains_key(unknown_id) {
            self.alerted.insert(unknown_id.to_string(), now);
            return Some(UnknownAlert {
                unknown_id: unknown_id.to_string(),
                cameras: cams.keys().cloned().collect(),
                at_ns: now,
            });
        }
        if let Some(t) = self.alerted.get_mut(unknown_id) {
            *t = now;
        }
        None
    }
}

#[cfg(test)]
mod consensus_tests {
    use super::*;
    const S: u64 = 1_000_000_000;

    #[test]
    fn k_cameras_within_the_window_alert_once_k_minus_one_never() {
        let mut c = UnknownConsensus::new(3, 60 * S);
        assert!(c.sighting("u1", "a", 0).is_none());
        assert!(
            c.sighting("u1", "a", 5 * S).is_none(),
            "the same camera twice is one camera"
        );
        assert!(c.sighting("u1", "b", 10 * S).is_none());
        let a = c.sighting("u1", "c", 20 * S).expect("third camera");
        assert_eq!(a.cameras, vec!["a", "b", "c"]);
        assert!(
            c.sighting("u1", "d", 25 * S).is_none(),
            "one alert per stranger"
        );
        // Another stranger on two cameras only: nothing.
        assert!(c.sighting("u2", "a", 30 * S).is_none());
        assert!(c.sighting("u2", "b", 31 * S).is_none());
    }

    #[test]
    fn sightings_outside_the_window_do_not_count() {
        let mut c = UnknownConsensus::new(2, 60 * S);
        assert!(c.sighting("u", "a", 0).is_none());
        assert!(
            c.sighting("u", "b", 61 * S).is_none(),
            "camera a's sighting expired"
        );
        assert!(c.sighting("u", "a", 100 * S).is_some());
    }

    #[test]
    fn zero_disables_it() {
        let mut c = UnknownConsensus::new(0, 60 * S);
        for cam in ["a", "b", "c", "d"] {
            assert!(c.sighting("u", cam, 0).is_none());
        }
    }
}
