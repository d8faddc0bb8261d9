//! What the runner's API shows: the cameras, who is present in each presence group, the
//! recent alerts (with who acknowledged them) and the people placed on the floor maps — kept
//! from the events the runner sees, in memory, with no GStreamer types. The runner feeds it
//! from its main loop; the HTTP server reads snapshots of it.

use crate::events::Event;
use crate::geometry::Calibration;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Alerts kept for `GET /api/v1/alerts`.
pub const MAX_ALERTS: usize = 1000;
/// A person not reported on a map for this long is no longer shown.
pub const MAP_STALE_MS: u64 = 5_000;
/// Frames/s is measured over this window.
const FPS_WINDOW_MS: u64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraRun {
    Starting,
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Camera {
    pub name: String,
    pub state: CameraRun,
    /// The source URI or file, without credentials.
    pub uri: Option<String>,
    pub frames_in: u64,
    pub frames_processed: u64,
    pub fps: f64,
    pub delay_s: Option<f64>,
    pub reconnects: u64,
    pub last_error: Option<String>,
    #[serde(skip)]
    samples: VecDeque<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    pub identity: String,
    pub label: String,
    /// `present`, `grace`, `absent` or `not-seen`.
    pub state: String,
    /// UTC of the last change of state.
    pub since: Option<String>,
    pub last_camera: Option<String>,
    /// UTC of the last sighting the runner heard of (an arrival, a return, a recognition).
    pub last_seen: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub group: String,
    /// False between `group-offline` and `group-online` (every camera offline).
    pub online: bool,
    pub cameras: Vec<String>,
    pub people: Vec<Person>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ack {
    pub by: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub id: String,
    pub utc: String,
    /// `absent` or `unknown`.
    pub event: String,
    pub group: Option<String>,
    pub identity: Option<String>,
    pub label: Option<String>,
    pub camera: String,
    /// The alert event's `data`, as published.
    pub data: Value,
    pub ack: Option<Ack>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placed {
    pub global_id: u64,
    pub x: f64,
    pub y: f64,
    pub cameras: Vec<String>,
    pub updated: String,
}

/// The floor a camera sees, on the map (its frame's border through its calibration).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Footprint {
    pub camera: String,
    pub polygon: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapView {
    pub map: String,
    pub units: String,
    /// The area shown by the site's mapview element (min-x, min-y, max-x, max-y), if any.
    pub extent: Option<[f64; 4]>,
    /// The mapview element has a floor-plan image (covering `extent`):
    /// GET /api/v1/map/{map}/floor-plan.
    pub floor_plan: bool,
    pub cameras: Vec<Footprint>,
    pub people: Vec<Placed>,
}

#[derive(Debug, Clone, Default)]
struct GroupState {
    online: bool,
    cameras: BTreeSet<String>,
    people: BTreeMap<String, Person>,
}

/// One camera's view of a person on a map.
#[derive(Debug, Clone)]
struct Seen {
    x: f64,
    y: f64,
    utc: String,
    at_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct MapState {
    units: String,
    /// global id -> camera -> what it saw last.
    people: BTreeMap<u64, BTreeMap<String, Seen>>,
    extent: Option<[f64; 4]>,
    floor_plan: Option<std::path::PathBuf>,
    /// camera -> its calibration, and its footprint for the frame size last reported.
    calibrations: BTreeMap<String, Calibration>,
    footprints: BTreeMap<String, (FrameSize, Vec<[f64; 2]>)>,
}

/// A frame's width and height, pixels.
type FrameSize = (u64, u64);

/// Footprints reach at most this far from the camera (map units) without an extent;
/// with one, twice its diagonal.
const FOOTPRINT_RANGE: f64 = 200.0;

#[derive(Debug, Default)]
pub struct Site {
    /// How many cameras (units) the runner runs, and those built at least once.
    units: usize,
    built: BTreeSet<String>,
    cameras: BTreeMap<String, Camera>,
    groups: BTreeMap<String, GroupState>,
    alerts: VecDeque<Alert>,
    next_alert: u64,
    maps: BTreeMap<String, MapState>,
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// The `alert-ack` event of `alert` (docs/METADATA.md): who acknowledged it and when, and
/// what identifies the alert beyond this process's `alert-id` (its time, group, camera and
/// subject), so the history can keep the acknowledgement with the alert.
pub fn ack_event(alert: &Alert, by: &str, at: &str) -> Event {
    let d = &alert.data;
    let field = |k: &str| d.get(k).cloned().unwrap_or(Value::String(String::new()));
    Event::new(
        "alert-ack",
        "api",
        &alert.camera,
        None,
        at.to_string(),
        serde_json::json!({
            "alert-id": alert.id,
            "alert-utc": alert.utc,
            "group": field("group"),
            "event": field("event"),
            "identity": field("identity"),
            "label": field("label"),
            "unknown-id": field("unknown-id"),
            "by": by,
        }),
    )
}

impl Site {
    // --- cameras (the runner's units) ---

    fn camera(&mut self, name: &str) -> &mut Camera {
        self.cameras
            .entry(name.to_string())
            .or_insert_with(|| Camera {
                name: name.to_string(),
                state: CameraRun::Starting,
                uri: None,
                frames_in: 0,
                frames_processed: 0,
                fps: 0.0,
                delay_s: None,
                reconnects: 0,
                last_error: None,
                samples: VecDeque::new(),
            })
    }

    /// The camera's pipeline is being built (first start or a reconnect).
    pub fn camera_starting(&mut self, name: &str, uri: Option<String>) {
        let c = self.camera(name);
        c.state = CameraRun::Starting;
        if uri.is_some() {
            c.uri = uri;
        }
    }

    /// The runner runs `n` cameras (units).
    pub fn set_units(&mut self, n: usize) {
        self.units = n;
    }

    /// The camera's pipeline was built and set playing (at least once since the start).
    pub fn camera_built(&mut self, name: &str) {
        self.built.insert(name.to_string());
        self.camera(name);
    }

    /// Ready (`/health/ready`) once every camera was built once; else why not.
    pub fn ready(&self) -> Result<(), String> {
        if self.built.len() >= self.units {
            Ok(())
        } else {
            Err(format!(
                "{} of {} cameras built so far",
                self.built.len(),
                self.units
            ))
        }
    }

    /// The camera's pipeline delivers frames.
    pub fn camera_up(&mut self, name: &str) {
        self.camera(name).state = CameraRun::Up;
    }

    /// The camera failed (it is rebuilt later) with `why`.
    pub fn camera_down(&mut self, name: &str, why: &str, reconnects: u64) {
        let c = self.camera(name);
        c.state = CameraRun::Down;
        c.last_error = Some(why.to_string());
        c.reconnects = reconnects;
        c.fps = 0.0;
        c.samples.clear();
    }

    /// The camera was removed.
    pub fn camera_removed(&mut self, name: &str) {
        self.cameras.remove(name);
        self.built.remove(name);
    }

    /// Frame counters of `name` at `now_ms`: the frames/s over the last 5 s follows (of the
    /// frames analysed; of those out of the pipeline when it has no analytics element); a
    /// camera whose frames move is up. True when that made it up.
    pub fn camera_counts(
        &mut self,
        name: &str,
        frames_in: u64,
        processed: u64,
        delay_s: Option<f64>,
        now_ms: u64,
    ) -> bool {
        let c = self.camera(name);
        // A sink may hold frames (webrtcsink before its first viewer): the analysed frames
        // tell whether the camera works.
        let (moved, before) = if frames_in > 0 {
            (frames_in, c.frames_in)
        } else {
            (processed, c.frames_processed)
        };
        let came_up = moved > before && c.state == CameraRun::Starting;
        if came_up {
            c.state = CameraRun::Up;
        }
        c.frames_in = frames_in;
        c.frames_processed = processed;
        c.delay_s = delay_s;
        c.samples.push_back((now_ms, moved));
        while c
            .samples
            .front()
            .is_some_and(|(t, _)| now_ms.saturating_sub(*t) > FPS_WINDOW_MS)
        {
            c.samples.pop_front();
        }
        c.fps = match (c.samples.front(), c.samples.back()) {
            (Some((t0, n0)), Some((t1, n1))) if t1 > t0 && n1 >= n0 => {
                (n1 - n0) as f64 * 1000.0 / (t1 - t0) as f64
            }
            _ => 0.0,
        };
        came_up
    }

    pub fn cameras(&self) -> Vec<Camera> {
        self.cameras.values().cloned().collect()
    }

    // --- events ---

    /// Takes what an event tells: presence transitions and rosters, recognitions, alerts,
    /// map positions. `now_ms` is when it arrived (Unix ms).
    pub fn event(&mut self, ev: &Event, now_ms: u64) {
        match ev.kind.as_str() {
            "presence" => self.presence(ev),
            "presence-alert" => self.alert(ev),
            "facematch" => self.recognised(ev),
            "reidmap" => self.placed(ev, now_ms),
            _ => {}
        }
    }

    fn presence(&mut self, ev: &Event) {
        let d = &ev.data;
        let Some(name) = text(d, "group") else { return };
        let g = self.groups.entry(name).or_insert_with(|| GroupState {
            online: true,
            ..Default::default()
        });
        if !ev.camera.is_empty() {
            g.cameras.insert(ev.camera.clone());
        }
        let camera = text(d, "camera").filter(|c| !c.is_empty());
        match text(d, "event").as_deref() {
            Some("group-offline") => g.online = false,
            Some("group-online") => g.online = true,
            Some("camera-offline" | "camera-online") => {
                if let Some(c) = camera {
                    g.cameras.insert(c);
                }
            }
            Some("roster") => {
                let list = |k: &str| d.get(k).and_then(Value::as_array).cloned();
                let (ids, labels, states) = (list("identities"), list("labels"), list("states"));
                for (k, id) in ids.unwrap_or_default().iter().enumerate() {
                    let Some(id) = id.as_str() else { continue };
                    let at = |l: &Option<Vec<Value>>| {
                        l.as_ref()
                            .and_then(|l| l.get(k))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    };
                    let p = g.people.entry(id.to_string()).or_insert_with(|| Person {
                        identity: id.to_string(),
                        label: at(&labels).unwrap_or_else(|| id.to_string()),
                        state: "not-seen".into(),
                        since: None,
                        last_camera: None,
                        last_seen: None,
                    });
                    if let Some(s) = at(&states) {
                        p.state = s;
                    }
                }
            }
            Some(event) => {
                let (Some(id), Some(to)) = (text(d, "identity"), text(d, "to")) else {
                    return;
                };
                let label = text(d, "label").unwrap_or_else(|| id.clone());
                let p = g.people.entry(id.clone()).or_insert_with(|| Person {
                    identity: id.clone(),
                    label: label.clone(),
                    state: "not-seen".into(),
                    since: None,
                    last_camera: None,
                    last_seen: None,
                });
                p.label = label;
                if p.state != to {
                    p.state = to;
                    p.since = Some(ev.utc.clone());
                }
                // A sighting: the person was seen on that camera now.
                if matches!(event, "arrived" | "back-in-view" | "re-entered") {
                    p.last_camera = camera.or_else(|| Some(ev.camera.clone()));
                    p.last_seen = Some(ev.utc.clone());
                }
            }
            None => {}
        }
    }

    fn recognised(&mut self, ev: &Event) {
        let Some(id) = text(&ev.data, "identity") else {
            return;
        };
        if text(&ev.data, "label").as_deref() == Some("unknown") {
            return;
        }
        for g in self.groups.values_mut() {
            if let Some(p) = g.people.get_mut(&id) {
                p.last_camera = Some(ev.camera.clone());
                p.last_seen = Some(ev.utc.clone());
            }
        }
    }

    fn alert(&mut self, ev: &Event) {
        let d = &ev.data;
        self.next_alert += 1;
        self.alerts.push_front(Alert {
            id: self.next_alert.to_string(),
            utc: ev.utc.clone(),
            event: text(d, "event").unwrap_or_else(|| "absent".into()),
            group: text(d, "group"),
            identity: text(d, "identity").filter(|s| !s.is_empty()),
            label: text(d, "label").filter(|s| !s.is_empty()),
            camera: ev.camera.clone(),
            data: d.clone(),
            ack: None,
        });
        self.alerts.truncate(MAX_ALERTS);
    }

    fn placed(&mut self, ev: &Event, now_ms: u64) {
        let d = &ev.data;
        let Some(map) = text(d, "map") else { return };
        let m = self.maps.entry(map).or_default();
        if let Some(u) = text(d, "units") {
            m.units = u;
        }
        let size = (
            d.get("frame-width").and_then(Value::as_u64),
            d.get("frame-height").and_then(Value::as_u64),
        );
        if let ((Some(w), Some(h)), Some(c)) = (size, m.calibrations.get(&ev.camera))
            && m.footprints
                .get(&ev.camera)
                .is_none_or(|(s, _)| *s != (w, h))
        {
            let range = m.extent.map_or(FOOTPRINT_RANGE, |[x0, y0, x1, y1]| {
                2.0 * ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt()
            });
            let polygon = c.footprint(w as f64, h as f64, range);
            m.footprints.insert(ev.camera.clone(), ((w, h), polygon));
        }
        // This camera's list replaces what it said before.
        for seen in m.people.values_mut() {
            seen.remove(&ev.camera);
        }
        for p in d
            .get("people")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(id), Some(x), Some(y)) = (
                p.get("global-id").and_then(Value::as_u64),
                p.get("x").and_then(Value::as_f64),
                p.get("y").and_then(Value::as_f64),
            ) else {
                continue;
            };
            m.people.entry(id).or_default().insert(
                ev.camera.clone(),
                Seen {
                    x,
                    y,
                    utc: ev.utc.clone(),
                    at_ms: now_ms,
                },
            );
        }
        m.people.retain(|_, s| !s.is_empty());
    }

    // --- the maps' layout (from the pipeline's elements) ---

    /// The area a mapview element shows of `map`, and its floor-plan image.
    pub fn set_map_view(
        &mut self,
        map: &str,
        extent: [f64; 4],
        floor_plan: Option<std::path::PathBuf>,
    ) {
        let m = self.maps.entry(map.to_string()).or_default();
        m.extent = Some(extent);
        m.floor_plan = floor_plan;
    }

    /// `camera`'s calibration to `map` (its footprint follows once its frame size is known).
    pub fn set_calibration(&mut self, map: &str, camera: &str, c: Calibration) {
        let m = self.maps.entry(map.to_string()).or_default();
        if m.units.is_empty() {
            m.units = c.units.clone();
        }
        m.calibrations.insert(camera.to_string(), c);
        m.footprints.remove(camera);
    }

    /// The floor-plan image of `map`, if its mapview element has one.
    pub fn floor_plan(&self, map: &str) -> Option<std::path::PathBuf> {
        self.maps.get(map)?.floor_plan.clone()
    }

    // --- reads ---

    pub fn presence_groups(&self) -> Vec<Group> {
        self.groups
            .iter()
            .map(|(name, g)| Group {
                group: name.clone(),
                online: g.online,
                cameras: g.cameras.iter().cloned().collect(),
                people: g.people.values().cloned().collect(),
            })
            .collect()
    }

    /// Alerts newest first; with `since` (RFC 3339 UTC), only the later ones.
    pub fn alerts(&self, since: Option<&str>) -> Vec<Alert> {
        self.alerts
            .iter()
            .filter(|a| since.is_none_or(|s| later(&a.utc, s)))
            .cloned()
            .collect()
    }

    /// Records that `by` acknowledged alert `id` at `at`: the alert, and its `alert-ack`
    /// event when this was its first acknowledgement (a second one keeps the first and
    /// publishes nothing); None if there is no such alert.
    pub fn ack(&mut self, id: &str, by: &str, at: &str) -> Option<(Alert, Option<Event>)> {
        let a = self.alerts.iter_mut().find(|a| a.id == id)?;
        if a.ack.is_some() {
            return Some((a.clone(), None));
        }
        a.ack = Some(Ack {
            by: by.to_string(),
            at: at.to_string(),
        });
        let ev = ack_event(a, by, at);
        Some((a.clone(), Some(ev)))
    }

    /// Forgets `subject` (an identity, label or unknown id; digits: a global id) as the
    /// history's erasure does: their alerts, their place in the presence groups and on the
    /// maps. What is forgotten, counted: (alerts, people, map places).
    pub fn forget(&mut self, subject: &str) -> (usize, usize, usize) {
        let named = |v: &Value, k: &str| v.get(k).and_then(Value::as_str) == Some(subject);
        let before = self.alerts.len();
        self.alerts.retain(|a| {
            !(a.identity.as_deref() == Some(subject)
                || a.label.as_deref() == Some(subject)
                || named(&a.data, "unknown-id"))
        });
        let alerts = before - self.alerts.len();
        let mut people = 0;
        for g in self.groups.values_mut() {
            let n = g.people.len();
            g.people
                .retain(|id, p| !(id == subject || p.identity == subject || p.label == subject));
            people += n - g.people.len();
        }
        let mut places = 0;
        if let Ok(gid) = subject.parse::<u64>() {
            for m in self.maps.values_mut() {
                places += usize::from(m.people.remove(&gid).is_some());
            }
        }
        (alerts, people, places)
    }

    /// The people placed on each map now: where the cameras that see them put them (their
    /// mean), without those not reported for 5 s.
    pub fn maps(&self, now_ms: u64) -> Vec<MapView> {
        self.maps
            .iter()
            .map(|(name, m)| MapView {
                map: name.clone(),
                units: m.units.clone(),
                extent: m.extent,
                floor_plan: m.floor_plan.is_some(),
                cameras: m
                    .footprints
                    .iter()
                    .map(|(camera, (_, polygon))| Footprint {
                        camera: camera.clone(),
                        polygon: polygon.clone(),
                    })
                    .collect(),
                people: m
                    .people
                    .iter()
                    .filter_map(|(id, seen)| {
                        let fresh: Vec<(&String, &Seen)> = seen
                            .iter()
                            .filter(|(_, s)| now_ms.saturating_sub(s.at_ms) <= MAP_STALE_MS)
                            .collect();
                        if fresh.is_empty() {
                            return None;
                        }
                        let n = fresh.len() as f64;
                        Some(Placed {
                            global_id: *id,
                            x: fresh.iter().map(|(_, s)| s.x).sum::<f64>() / n,
                            y: fresh.iter().map(|(_, s)| s.y).sum::<f64>() / n,
                            cameras: fresh.iter().map(|(c, _)| (*c).clone()).collect(),
                            updated: fresh
                                .iter()
                                .map(|(_, s)| s.utc.clone())
                                .max()
                                .unwrap_or_default(),
                        })
                    })
                    .collect(),
            })
            .collect()
    }
}

/// `a` after `b`, both RFC 3339 (any offset); unparsable `b` admits everything.
fn later(a: &str, b: &str) -> bool {
    match (
        chrono::DateTime::parse_from_rfc3339(a),
        chrono::DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(a), Ok(b)) => a > b,
        _ => true,
    }
}

/// Checks a `since` parameter: RFC 3339, e.g. `2026-12-02T10:00:00Z`.
pub fn check_since(s: &str) -> Result<(), String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|_| ())
        .map_err(|e| format!("since: not an RFC 3339 time ({e}), e.g. 2026-12-02T10:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(kind: &str, camera: &str, utc: &str, data: Value) -> Event {
        Event::new(kind, "src", camera, None, utc.into(), data)
    }

    #[test]
    fn presence_follows_roster_arrival_grace_absence_and_alerts() {
        let mut s = Site::default();
        s.event(
            &ev("presence", "door", "2026-12-02T10:00:00.000Z", json!({"group": "outlet", "event": "roster",
                "identities": ["ann", "bob"], "labels": ["Ann", "Bob"], "states": ["not-seen", "not-seen"]})),
            0,
        );
        let g = &s.presence_groups()[0];
        assert_eq!(g.people.len(), 2);
        assert_eq!(g.people[0].state, "not-seen");
        let step = |s: &mut Site, utc: &str, event: &str, to: &str, cam: &str| {
            s.event(
                &ev(
                    "presence",
                    cam,
                    utc,
                    json!({"group": "outlet", "event": event, "identity": "ann",
                    "label": "Ann", "to": to, "camera": cam}),
                ),
                0,
            )
        };
        step(
            &mut s,
            "2026-12-02T10:00:05.000Z",
            "arrived",
            "present",
            "door",
        );
        step(
            &mut s,
            "2026-12-02T10:00:30.000Z",
            "out-of-view",
            "grace",
            "till",
        );
        let ann = s.presence_groups()[0].people[0].clone();
        assert_eq!(ann.state, "grace");
        assert_eq!(ann.since.as_deref(), Some("2026-12-02T10:00:30.000Z"));
        assert_eq!(
            ann.last_camera.as_deref(),
            Some("door"),
            "grace is no sighting"
        );
        assert_eq!(ann.last_seen.as_deref(), Some("2026-12-02T10:00:05.000Z"));
        s.event(
            &ev(
                "facematch",
                "till",
                "2026-12-02T10:00:40.000Z",
                json!({"label": "Ann", "identity": "ann"}),
            ),
            0,
        );
        step(
            &mut s,
            "2026-12-02T10:05:00.000Z",
            "absent",
            "absent",
            "door",
        );
        let ann = s.presence_groups()[0].people[0].clone();
        assert_eq!(ann.state, "absent");
        assert_eq!(ann.last_camera.as_deref(), Some("till"));
        s.event(
            &ev(
                "presence-alert",
                "door",
                "2026-12-02T10:05:00.000Z",
                json!({"group": "outlet", "event": "absent",
                "identity": "ann", "label": "Ann"}),
            ),
            0,
        );
        s.event(
            &ev(
                "presence-alert",
                "door",
                "2026-12-02T10:06:00.000Z",
                json!({"group": "outlet", "event": "unknown",
                "unknown-id": "unknown-3", "identity": ""}),
            ),
            0,
        );
        let all = s.alerts(None);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].event, "unknown", "newest first");
        assert_eq!(all[0].identity, None);
        assert_eq!(s.alerts(Some("2026-12-02T10:05:30Z")).len(), 1);
        assert_eq!(
            s.alerts(Some("2026-12-02T11:05:30+01:00")).len(),
            1,
            "any offset"
        );
        let id = all[1].id.clone();
        let (a, published) = s.ack(&id, "alice", "2026-12-02T10:07:00.000Z").unwrap();
        assert_eq!(a.ack.as_ref().unwrap().by, "alice");
        let ack = published.expect("the first acknowledgement is published");
        assert_eq!(
            (ack.kind.as_str(), ack.utc.as_str(), ack.camera.as_str()),
            ("alert-ack", "2026-12-02T10:07:00.000Z", a.camera.as_str())
        );
        assert_eq!(ack.data["alert-utc"], a.utc.as_str());
        assert_eq!(ack.data["by"], "alice");
        assert_eq!(ack.data["group"], a.data["group"]);
        let (again, published) = s.ack(&id, "bob", "2026-12-02T10:08:00.000Z").unwrap();
        assert_eq!(
            again.ack.unwrap().by,
            "alice",
            "the first acknowledgement stays"
        );
        assert!(published.is_none(), "and is published once");
        assert!(s.ack("999", "bob", "x").is_none());
        s.event(
            &ev(
                "presence",
                "door",
                "2026-12-02T10:09:00.000Z",
                json!({"group": "outlet", "event": "group-offline"}),
            ),
            0,
        );
        assert!(!s.presence_groups()[0].online);
    }

    #[test]
    fn an_erased_person_is_forgotten_from_alerts_presence_and_maps() {
        let mut s = Site::default();
        s.event(
            &ev("presence", "door", "2026-12-02T10:00:00.000Z", json!({"group": "outlet", "event": "roster",
                "identities": ["ann", "bob"], "labels": ["Ann", "Bob"], "states": ["present", "present"]})),
            0,
        );
        for (utc, data) in [
            (
                "2026-12-02T10:05:00.000Z",
                json!({"group": "outlet", "event": "absent", "identity": "ann", "label": "Ann"}),
            ),
            (
                "2026-12-02T10:05:01.000Z",
                json!({"group": "outlet", "event": "absent", "identity": "bob", "label": "Bob"}),
            ),
            (
                "2026-12-02T10:06:00.000Z",
                json!({"group": "outlet", "event": "unknown", "unknown-id": "unknown-3", "identity": ""}),
            ),
        ] {
            s.event(&ev("presence-alert", "door", utc, data), 0);
        }
        for (gid, cam) in [(17, "door"), (18, "till")] {
            s.event(
                &ev(
                    "reidmap",
                    cam,
                    "2026-12-02T10:06:00.000Z",
                    json!({"map": "shop", "units": "m",
                    "people": [{"global-id": gid, "x": 1.0, "y": 2.0}]}),
                ),
                0,
            );
        }
        let placed = |s: &Site| s.maps(0).iter().map(|m| m.people.len()).sum::<usize>();
        assert_eq!(placed(&s), 2);
        assert_eq!(s.forget("ann"), (1, 1, 0));
        assert_eq!(s.forget("unknown-3"), (1, 0, 0));
        let left = s.alerts(None);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].identity.as_deref(), Some("bob"));
        let people: Vec<_> = s.presence_groups()[0]
            .people
            .iter()
            .map(|p| p.identity.clone())
            .collect();
        assert_eq!(people, ["bob"]);
        assert_eq!(s.forget("17"), (0, 0, 1));
        assert_eq!(placed(&s), 1);
        assert_eq!(s.forget("nobody"), (0, 0, 0));
    }

    #[test]
    fn alerts_are_bounded() {
        let mut s = Site::default();
        for k in 0..(MAX_ALERTS + 10) {
            s.event(
                &ev(
                    "presence-alert",
                    "c",
                    &format!("2026-12-02T10:00:{:02}.000Z", k % 60),
                    json!({"event": "absent"}),
                ),
                0,
            );
        }
        assert_eq!(s.alerts(None).len(), MAX_ALERTS);
        assert_eq!(s.alerts(None)[0].id, (MAX_ALERTS + 10).to_string());
    }

    #[test]
    fn cameras_count_frames_per_second_and_go_down_and_up() {
        let mut s = Site::default();
        s.set_units(2);
        s.camera_starting("door", Some("rtsp://cam/door".into()));
        assert_eq!(s.cameras()[0].state, CameraRun::Starting);
        s.camera_built("door");
        assert_eq!(s.ready().unwrap_err(), "1 of 2 cameras built so far");
        s.camera_built("till");
        assert!(s.ready().is_ok());
        let ups: Vec<bool> = (0..=10u64)
            .map(|k| s.camera_counts("door", k * 10, k * 10, Some(0.1), k * 1000))
            .collect();
        // Announced once: when the first frames were processed.
        assert_eq!(ups.iter().filter(|u| **u).count(), 1);
        assert!(ups[1]);
        let c = &s.cameras()[0];
        assert_eq!(c.state, CameraRun::Up);
        assert!((c.fps - 10.0).abs() < 1e-9, "{}", c.fps);
        s.camera_down("door", "stream error", 1);
        let c = &s.cameras()[0];
        assert_eq!((c.state, c.fps, c.reconnects), (CameraRun::Down, 0.0, 1));
        assert_eq!(c.last_error.as_deref(), Some("stream error"));
    }

    #[test]
    fn maps_show_fresh_people_once_across_cameras() {
        let mut s = Site::default();
        let at = |s: &mut Site, cam: &str, people: Value, now: u64| {
            s.event(
                &ev(
                    "reidmap",
                    cam,
                    "2026-12-02T10:00:00.000Z",
                    json!({"map": "floor", "units": "m", "people": people}),
                ),
                now,
            )
        };
        at(
            &mut s,
            "c1",
            json!([{"global-id": 7, "x": 1.0, "y": 2.0, "track-id": 1}]),
            0,
        );
        at(
            &mut s,
            "c2",
            json!([{"global-id": 7, "x": 1.2, "y": 2.0}, {"global-id": 8, "x": 5.0, "y": 5.0}]),
            100,
        );
        let m = &s.maps(200)[0];
        assert_eq!(m.people.len(), 2);
        assert_eq!(m.people[0].cameras, vec!["c1", "c2"]);
        assert!((m.people[0].x - 1.1).abs() < 1e-9);
        // c2 no longer sees 8; c1 stops reporting: 7 stays through c2 until it is stale.
        at(
            &mut s,
            "c2",
            json!([{"global-id": 7, "x": 1.2, "y": 2.0}]),
            3000,
        );
        let m = &s.maps(5500)[0];
        assert_eq!(m.people.len(), 1);
        assert_eq!(m.people[0].cameras, vec!["c2"]);
        assert!(s.maps(9000)[0].people.is_empty());
    }

    #[test]
    fn a_map_shows_its_extent_floor_plan_and_camera_footprints() {
        let mut s = Site::default();
        s.set_map_view("floor", [0.0, 0.0, 20.0, 15.0], Some("plan.png".into()));
        let top = Calibration::parse(
            r#"{"units": "m", "homography": [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]]}"#,
            "c1",
        )
        .unwrap();
        s.set_calibration("floor", "c1", top);
        // Known before any person is placed; the footprint once the frame size is.
        let m = &s.maps(0)[0];
        assert_eq!(
            (m.extent, m.floor_plan, m.cameras.len(), m.units.as_str()),
            (Some([0.0, 0.0, 20.0, 15.0]), true, 0, "m")
        );
        s.event(
            &ev(
                "reidmap",
                "c1",
                "2026-12-02T10:00:00.000Z",
                json!({"map": "floor", "units": "m", "frame-width": 640, "frame-height": 480,
                       "people": [{"global-id": 3, "x": 1.0, "y": 1.0}]}),
            ),
            0,
        );
        let m = &s.maps(0)[0];
        assert_eq!(m.cameras.len(), 1);
        let f = &m.cameras[0];
        assert_eq!(f.camera, "c1");
        assert_eq!(f.polygon.len(), 64);
        assert!(
            f.polygon
                .iter()
                .any(|p| (p[0] - 6.4).abs() < 1e-9 && (p[1] - 4.8).abs() < 1e-9)
        );
        assert_eq!(s.floor_plan("floor"), Some("plan.png".into()));
        assert_eq!(s.floor_plan("other"), None);
    }

    #[test]
    fn since_must_be_rfc3339() {
        assert!(check_since("2026-12-02T10:00:00Z").is_ok());
        assert!(check_since("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
