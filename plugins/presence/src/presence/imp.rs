use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use sightline_core::delivery::{
    DEFAULT_SPOOL_MAX_AGE, DEFAULT_SPOOL_MAX_BYTES, Delivery, DeliveryConfig, Only, SpoolLimits,
    default_node_id, default_spool_dir,
};
use sightline_core::events::utc_now;
use sightline_core::gallery::slug;
use sightline_core::meta::{self, event_from_structure};
use sightline_core::presence::{self, UnknownAlert};
use sightline_core::presence_sync::{GroupSync, GroupSyncConfig};
use sightline_core::redis_store::redact;
use sightline_core::sinks::Sink;
use sightline_core::zones::{self, ZoneEvent, ZoneTracker};

use super::hub::{FaceSighting, Hub, HubConfig, hub_for};
use std::sync::{Arc, LazyLock, Mutex};

/// The longest the end of a stream waits for the group's Redis worker to answer what was
/// sent (an alert on its way): the worker's first connection and its scripts, on a loaded
/// machine, took more than 1 s.
const EOS_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

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
pub(super) struct Settings {
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
    publish: Option<String>,
    spool_dir: Option<String>,
    spool_max_bytes: u64,
    spool_max_age: f64,
    unknown_alert_cameras: u32,
    unknown_alert_window: f64,
    zones: Option<String>,
}

const DEFAULT_UNKNOWN_WINDOW: f64 = 60.0;

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
            publish: None,
            spool_dir: None,
            spool_max_bytes: DEFAULT_SPOOL_MAX_BYTES,
            spool_max_age: DEFAULT_SPOOL_MAX_AGE.as_secs_f64(),
            unknown_alert_cameras: 0,
            unknown_alert_window: DEFAULT_UNKNOWN_WINDOW,
            zones: None,
        }
    }
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
        let configured = self.settings.lock().ok().and_then(|s| s.camera.clone());
        sightline_core::glue::engine::camera_name(configured, &*self.obj())
    }

    /// Posts each problem met off the streaming thread as an element warning.
    pub(super) fn report(&self, problems: Vec<String>) {
        for p in problems {
            gst::element_imp_warning!(self, gst::ResourceError::Read, ("{}", p));
        }
    }

    /// Posts events as messages and writes them to the group's event log and sinks.
    pub(super) fn emit(&self, hub: &Hub, events: Vec<presence::Event>) {
        if events.is_empty() {
            return;
        }
        let obj = self.obj();
        let base = obj.base_time().map_or(0, |t| t.nseconds());
        let own_camera = self.camera();
        for ev in events {
            self.emit_structure(hub, to_structure(&hub.name, &ev, &own_camera, base));
        }
    }

    /// One message: the bus and every sink of the group.
    fn emit_structure(&self, hub: &Hub, s: gst::Structure) {
        let obj = self.obj();
        let own_camera = self.camera();
        gst::info!(CAT, imp = self, "{s}");
        let event = event_from_structure(&s, &obj.name(), &own_camera);
        let mut problems = Vec::new();
        if let Ok(mut inner) = hub.inner.lock() {
            problems.append(&mut inner.problems);
            if let Some(d) = inner.publish.as_ref() {
                problems.extend(d.send_reporting(&event));
            }
        }
        for p in problems {
            gst::element_imp_warning!(self, gst::ResourceError::Write, ("{}", p));
        }
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }

    /// The `roster` event: every expected person of the group with its state now, so that
    /// dashboards and Home Assistant know everyone before anyone is seen.
    fn emit_roster(&self, hub: &Hub) {
        let people: Vec<(String, String, &'static str)> = match hub.inner.lock() {
            Ok(inner) => inner
                .group
                .people()
                .filter(|p| p.expected)
                .map(|p| (p.identity.clone(), p.label.clone(), p.state.name()))
                .collect(),
            Err(_) => return,
        };
        if people.is_empty() {
            return;
        }
        let list = |f: &dyn Fn(&(String, String, &'static str)) -> String| {
            gst::List::new(people.iter().map(f))
        };
        let s = gst::Structure::builder("presence")
            .field("group", hub.name.as_str())
            .field("event", "roster")
            .field("camera", self.camera())
            // At start: there may be no clock yet.
            .field(
                "clock-time",
                self.obj().clock().map_or(0, |c| c.time().nseconds()),
            )
            .field("running-time", 0u64)
            .field("utc-time", utc_now())
            .field("identities", list(&|p| p.0.clone()))
            .field("labels", list(&|p| p.1.clone()))
            .field("states", list(&|p| p.2.to_string()))
            .build();
        self.emit_structure(hub, s);
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
        presence::Event::SharedState {
            available,
            at_ns,
            detail,
        } => common(
            "presence",
            if *available {
                "shared-state-available"
            } else {
                "shared-state-unavailable"
            },
            *at_ns,
            None,
        )
        .field("detail", detail.as_str())
        .build(),
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
                    .blurb("JSONL file that receives every event of the group (appended); the older way to say publish=file:///PATH")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("node-id")
                    .nick("Node id")
                    .blurb("This node's name in shared state and delivered events (default: the host name)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("redis-url")
                    .nick("Redis URL")
                    .blurb("redis:// or rediss:// URL (the node's own ACL user): shares presence with the group's other nodes (Redis), and every event is appended to the Redis Stream `stream` (the older way to say publish=redis://...?stream=NAME)")
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
                    .blurb("http(s) URL that receives every alert as a JSON POST, retried with backoff until it answers 2xx (publish=http(s)://... receives every event)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("publish")
                    .nick("Publish")
                    .blurb("Comma-separated sink URLs that receive every event of the group, spooled on disk and delivered in order: file:///path.jsonl, redis[s]://...?stream=NAME, http[s]://... (webhook), mqtt[s]://[user:pw@]host[:port] (Home Assistant discovery), telegram://BOT_TOKEN@CHAT_ID (alerts); env:NAME or @FILE to keep secrets out of the pipeline. event-log, redis-url/stream and webhook-url are the older way to name some of them")
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
                glib::ParamSpecUInt64::builder("spool-max-bytes")
                    .nick("Spool maximum bytes")
                    .blurb("Undelivered events kept per sink, bytes; beyond it the oldest are dropped (never alerts), counted and warned about once. The file stays under about twice this")
                    .minimum(4096)
                    .default_value(DEFAULT_SPOOL_MAX_BYTES)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("spool-max-age-seconds")
                    .nick("Spool maximum age")
                    .blurb("Undelivered events older than this many seconds are dropped (never alerts)")
                    .minimum(1.0)
                    .maximum(31_536_000.0)
                    .default_value(DEFAULT_SPOOL_MAX_AGE.as_secs_f64())
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
            "publish" => s.publish = string(value),
            "spool-dir" => s.spool_dir = string(value),
            "spool-max-bytes" => s.spool_max_bytes = value.get().unwrap_or(DEFAULT_SPOOL_MAX_BYTES),
            "spool-max-age-seconds" => {
                s.spool_max_age = value.get().unwrap_or(DEFAULT_SPOOL_MAX_AGE.as_secs_f64())
            }
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
            // Read back without its secrets.
            "redis-url" => s
                .redis_url
                .as_deref()
                .map(sightline_core::secrets::redact_url)
                .to_value(),
            "stream" => s.stream.to_value(),
            "webhook-url" => s
                .webhook_url
                .as_deref()
                .map(sightline_core::secrets::redact_url)
                .to_value(),
            // Read back without its secrets.
            "publish" => s
                .publish
                .as_deref()
                .map(sightline_core::sinks::Sink::shown_list)
                .to_value(),
            "spool-dir" => s.spool_dir.to_value(),
            "spool-max-bytes" => s.spool_max_bytes.to_value(),
            "spool-max-age-seconds" => s.spool_max_age.to_value(),
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

/// The sinks that receive every event, and those that receive some.
type GroupSinks = (Vec<Sink>, Vec<(Sink, Only)>);

/// The group's sinks: `publish` and the older properties, which name some of them —
/// `event-log` (a JSONL file) and `redis-url`/`stream` receive every event, `webhook-url`
/// only alerts. The event log is opened here, so that a path that cannot be written fails
/// the start with its name, as it always did.
fn group_sinks(s: &Settings, mut full: Vec<Sink>) -> Result<GroupSinks, gst::ErrorMessage> {
    if let Some(path) = &s.event_log {
        let sink = Sink::event_log(path)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ["{}", e]))?;
        full.push(sink);
    }
    if let Some(url) = &s.redis_url {
        full.push(Sink::Redis {
            url: url.clone(),
            stream: s.stream.clone(),
        });
    }
    let mut partial = Vec::new();
    if let Some(url) = &s.webhook_url {
        partial.push((Sink::Webhook(url.clone()), Only::Alerts));
    }
    Ok((full, partial))
}

impl BaseTransformImpl for Presence {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let mut s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        sightline_core::props::resolve_secret("redis-url", &mut s.redis_url)?;
        sightline_core::props::resolve_secret("webhook-url", &mut s.webhook_url)?;
        sightline_core::props::resolve_secret("publish", &mut s.publish)?;
        let sinks = Sink::parse_list(s.publish.as_deref().unwrap_or(""))
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ["{}", e]))?;
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
        let cfg = HubConfig {
            node_id: s.node_id.clone(),
            grace_seconds: s.grace_seconds,
            absent_seconds: s.absent_seconds,
            camera_timeout_seconds: s.camera_timeout_seconds,
            unknown_alert_cameras: s.unknown_alert_cameras,
            unknown_alert_window: s.unknown_alert_window,
            redis_url: s.redis_url.clone(),
            stream: s.stream.clone(),
            webhook_url: s.webhook_url.clone(),
            publish: s.publish.clone(),
            spool_dir: s.spool_dir.clone(),
            event_log: s.event_log.clone(),
        };
        let (hub, conflict) = hub_for(&s.group, &cfg, &self.obj().name());
        if let Some(w) = conflict {
            gst::element_imp_warning!(self, gst::CoreError::Negotiation, ("{}", w));
        }
        {
            let mut inner = hub
                .inner
                .lock()
                .map_err(|_| gst::error_msg!(gst::CoreError::Failed, ["group lock poisoned"]))?;
            for name in &roster {
                inner.group.expect(&slug(name), name);
            }
            if inner.publish.is_none() {
                let (full, partial) = group_sinks(&s, sinks)?;
                if !full.is_empty() || !partial.is_empty() {
                    let spool = s
                        .spool_dir
                        .as_ref()
                        .map(std::path::PathBuf::from)
                        .unwrap_or_else(default_spool_dir);
                    let limits = SpoolLimits {
                        max_bytes: s.spool_max_bytes,
                        max_age: std::time::Duration::from_secs_f64(s.spool_max_age),
                        ..Default::default()
                    };
                    inner.publish = Some(
                        Delivery::start(DeliveryConfig {
                            node: format!("{}-{}-publish", s.node_id, slug(&s.group)),
                            name: Some(s.node_id.clone()),
                            spool_dir: spool.clone(),
                            sinks: full,
                            partial,
                            limits,
                        })
                        .map_err(|e| {
                            gst::error_msg!(
                                gst::ResourceError::OpenWrite,
                                ["Cannot open the event spool in {}: {}", spool.display(), e]
                            )
                        })?,
                    );
                }
            }
            if let Some(url) = &s.redis_url
                && inner.link.is_none()
            {
                let (weak, weak_panic) = (Arc::downgrade(&hub), Arc::downgrade(&hub));
                let link = GroupSync::start(
                    GroupSyncConfig::new(url, &slug(&s.group), &s.node_id),
                    move || {
                        if let Some(h) = weak.upgrade() {
                            h.poke();
                        }
                    },
                    move |why| {
                        if let Some(h) = weak_panic.upgrade()
                            && let Ok(mut i) = h.inner.lock()
                        {
                            i.problems.push(format!(
                                "Shared presence state stopped, decisions are local: {why}"
                            ));
                        }
                    },
                )
                .map_err(|e| {
                    gst::error_msg!(
                        gst::CoreError::Failed,
                        ["Cannot start the Redis link of group {}: {}", s.group, e]
                    )
                })?;
                gst::info!(
                    CAT,
                    imp = self,
                    "group {} shared through Redis {}",
                    s.group,
                    redact(url)
                );
                inner.link = Some(Arc::new(link));
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
        // Once per group and process: by its first element.
        let first = hub.inner.lock().is_ok_and(|i| i.members.len() == 1);
        if first {
            self.emit_roster(&hub);
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
        let (mut link, mut publish) = (None, None);
        if let Ok(mut inner) = hub.inner.lock() {
            let me = self.obj().downgrade();
            inner
                .members
                .retain(|w| w.upgrade().is_some_and(|o| Some(o) != me.upgrade()));
            if inner.members.is_empty() {
                // Last camera of the group in this process: stop its timer and its link.
                inner.stopping = true;
                link = inner.link.take();
                // Its sinks end cleanly (MQTT: `offline`); what waits stays spooled.
                publish = inner.publish.take();
                if let Some((id, _)) = &inner.pending {
                    id.unschedule();
                }
                hub.wake.notify_all();
            }
        }
        // Stopping the link waits a bounded time (a Redis call in progress is bounded by
        // the connection's timeouts), never under the group's lock.
        drop(link);
        drop(publish);
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view()
            && let Some(hub) = self.hub.lock().ok().and_then(|h| h.clone())
        {
            // The stream ends: what the Redis link still has on its way (bounded wait).
            let (events, problems) = hub.flush(EOS_WAIT);
            self.report(problems);
            self.emit(&hub, events);
        }
        self.parent_sink_event(event)
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
        let rois = meta::read_rois(buf);
        let faces: Vec<FaceSighting<'_>> = rois
            .iter()
            .map(|r| FaceSighting {
                label: r.recognition_label.as_deref(),
                identity: r.identity.as_deref(),
                unknown_id: r.unknown_id.as_deref(),
            })
            .collect();
        let (events, problems) = {
            let mut inner = hub.inner.lock().map_err(|_| gst::FlowError::Error)?;
            if inner.clock.is_none() {
                inner.clock = obj.clock();
            }
            let ev = inner.frame(&camera, now, &faces);
            hub.rearm(&mut inner);
            (ev, std::mem::take(&mut inner.problems))
        };
        self.report(problems);
        let mut events = events;
        events.extend(self.zone_events(buf, now, &camera));
        self.emit(&hub, events);
        Ok(gst::FlowSuccess::Ok)
    }
}
