use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use sightline_core::delivery::{
    Delivery, DeliveryConfig, Only, default_node_id, default_spool_dir,
};
use sightline_core::embed::CropEmbedder;
use sightline_core::events::{utc_ago, utc_now};
use sightline_core::gallery::slug;
use sightline_core::geometry::Calibration;
use sightline_core::inference::{Engine, EngineOptions};
use sightline_core::mapstate::{MapConfig, MapState, shared_map};
use sightline_core::mapsync::MapSync;
use sightline_core::meta;
use sightline_core::models;
use sightline_core::mot::{MotConfig, MotTracker};
use sightline_core::sinks::Sink;
use sightline_core::trajectory::{EndReason, Trajectory, TrajectoryConfig, TrajectoryRecorder};
use sightline_core::video::{ANALYSIS_FORMATS, caps_for, filter_pad_templates, image_view};

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use super::ExecutionProvider;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "reidmap",
        gst::DebugColorFlags::empty(),
        Some("Sightline people on a floor map"),
    )
});

const DEFAULT_MAP: &str = "map";
const DEFAULT_MODEL: &str = "osnet-x025";
const DEFAULT_MATCH_THRESHOLD: f64 = 0.65;
const DEFAULT_REEMBED: u32 = 10;
const DEFAULT_MIN_HEIGHT: u32 = 40;
const DEFAULT_POST_INTERVAL: f64 = 1.0;
const DEFAULT_STREAM: &str = "sightline:events";

#[derive(Debug, Clone)]
struct Settings {
    camera: Option<String>,
    map: String,
    calibration: Option<String>,
    reid_model: String,
    match_threshold: f64,
    reembed_interval: u32,
    min_height: u32,
    post_interval: f64,
    execution_provider: ExecutionProvider,
    device_id: i32,
    redis_url: Option<String>,
    stream: String,
    event_log: Option<String>,
    publish: Option<String>,
    spool_dir: Option<String>,
    node_id: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            camera: None,
            map: DEFAULT_MAP.into(),
            calibration: None,
            reid_model: DEFAULT_MODEL.into(),
            match_threshold: DEFAULT_MATCH_THRESHOLD,
            reembed_interval: DEFAULT_REEMBED,
            min_height: DEFAULT_MIN_HEIGHT,
            post_interval: DEFAULT_POST_INTERVAL,
            execution_provider: ExecutionProvider::default(),
            device_id: 0,
            redis_url: None,
            stream: DEFAULT_STREAM.into(),
            event_log: None,
            publish: None,
            spool_dir: None,
            node_id: default_node_id(),
        }
    }
}

#[derive(Debug, Default)]
struct TrackData {
    last_embed_frame: Option<u64>,
    /// Running time (ns) of the track's first frame.
    first_seen_ns: Option<u64>,
}

struct State {
    embedder: CropEmbedder,
    calibration: Calibration,
    map: Arc<Mutex<MapState>>,
    tracker: MotTracker<TrackData>,
    info: Option<gst_video::VideoInfo>,
    frames: u64,
    last_post_ns: Option<u64>,
    embeddings: u64,
    trajectories: TrajectoryRecorder,
    /// Sharing of the map with other processes (redis-url).
    sync: Option<Arc<MapSync>>,
    /// Every message to the `publish` sinks, trajectories to the older properties' sinks.
    publish: Option<Delivery>,
}

#[derive(Default)]
pub struct ReidMap {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for ReidMap {
    const NAME: &'static str = "SightlineReidMap";
    type Type = super::ReidMap;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for ReidMap {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("camera")
                    .nick("Camera")
                    .blurb("Camera name (default: the element name)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("map")
                    .nick("Map")
                    .blurb("Floor map name: every reidmap and mapview of the process with this map shares people and global ids")
                    .default_value(Some(DEFAULT_MAP))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("calibration")
                    .nick("Calibration")
                    .blurb("JSON calibration of this camera to the map: >= 4 image/map point pairs or a 3x3 homography, optional radial distortion (docs/elements.md)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("reid-model")
                    .nick("ReID model")
                    .blurb("Person re-identification model: a models.toml name (osnet-x025) or a path")
                    .default_value(Some(DEFAULT_MODEL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("match-threshold")
                    .nick("Match threshold")
                    .blurb("ReID cosine similarity at or above which tracks of different cameras are the same person (OSNet x0.25 on MOT17: same person 0.80-0.95, different 0.40-0.51 on average)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_MATCH_THRESHOLD)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("reembed-interval")
                    .nick("Re-embed interval")
                    .blurb("Embed a track when it is new and then every N frames (all due tracks of a frame in one run)")
                    .minimum(1)
                    .maximum(100_000)
                    .default_value(DEFAULT_REEMBED)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-height")
                    .nick("Minimum height")
                    .blurb("Persons shorter than this (pixels) are tracked and mapped but not embedded")
                    .maximum(8192)
                    .default_value(DEFAULT_MIN_HEIGHT)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("post-interval")
                    .nick("Post interval")
                    .blurb("Seconds between reidmap messages (positions of every tracked person); 0 = every frame")
                    .minimum(0.0)
                    .maximum(3600.0)
                    .default_value(DEFAULT_POST_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("redis-url")
                    .nick("Redis URL")
                    .blurb("Share the map (people, global ids) with the other processes of the site through this Redis (redis:// or rediss://), and send trajectories to its stream; unset = this process only")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("stream")
                    .nick("Stream")
                    .blurb("Redis Stream that receives the reidmap-trajectory events")
                    .default_value(Some(DEFAULT_STREAM))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("event-log")
                    .nick("Event log")
                    .blurb("Append reidmap-trajectory events to this JSON-lines file")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("publish")
                    .nick("Publish")
                    .blurb("Comma-separated sink URLs that receive every message of the element (reidmap positions, reidmap-trajectory), spooled on disk and delivered in order: file:///path.jsonl, redis[s]://...?stream=NAME, http[s]://..., mqtt[s]://..., telegram://... (docs/elements.md); env:NAME or @FILE keep secrets out of the pipeline")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("spool-dir")
                    .nick("Spool directory")
                    .blurb("Where trajectories wait on disk while Redis is unreachable (default: $XDG_STATE_HOME/sightline/spool)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("node-id")
                    .nick("Node id")
                    .blurb("Name of this machine in the events spool (default: the host name)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("execution-provider", ExecutionProvider::default())
                    .nick("Execution provider")
                    .blurb("ONNX Runtime execution provider; GPU providers need the matching cargo feature and library")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("device-id")
                    .nick("Device id")
                    .blurb("GPU device index for GPU execution providers")
                    .minimum(0)
                    .maximum(64)
                    .default_value(0)
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
            "camera" => s.camera = string(value),
            "map" => s.map = string(value).unwrap_or_else(|| DEFAULT_MAP.into()),
            "calibration" => s.calibration = string(value),
            "reid-model" => s.reid_model = string(value).unwrap_or_else(|| DEFAULT_MODEL.into()),
            "match-threshold" => s.match_threshold = value.get().unwrap_or(DEFAULT_MATCH_THRESHOLD),
            "reembed-interval" => s.reembed_interval = value.get().unwrap_or(DEFAULT_REEMBED),
            "min-height" => s.min_height = value.get().unwrap_or(DEFAULT_MIN_HEIGHT),
            "post-interval" => s.post_interval = value.get().unwrap_or(DEFAULT_POST_INTERVAL),
            "execution-provider" => s.execution_provider = value.get().unwrap_or_default(),
            "device-id" => s.device_id = value.get().unwrap_or(0),
            "redis-url" => s.redis_url = string(value),
            "stream" => s.stream = string(value).unwrap_or_else(|| DEFAULT_STREAM.into()),
            "event-log" => s.event_log = string(value),
            "publish" => s.publish = string(value),
            "spool-dir" => s.spool_dir = string(value),
            "node-id" => s.node_id = string(value).unwrap_or_else(default_node_id),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        match pspec.name() {
            "camera" => s.camera.to_value(),
            "map" => s.map.to_value(),
            "calibration" => s.calibration.to_value(),
            "reid-model" => s.reid_model.to_value(),
            "match-threshold" => s.match_threshold.to_value(),
            "reembed-interval" => s.reembed_interval.to_value(),
            "min-height" => s.min_height.to_value(),
            "post-interval" => s.post_interval.to_value(),
            "execution-provider" => s.execution_provider.to_value(),
            "device-id" => s.device_id.to_value(),
            // Read back without its secrets.
            "redis-url" => s
                .redis_url
                .as_deref()
                .map(sightline_core::secrets::redact_url)
                .to_value(),
            "stream" => s.stream.to_value(),
            "event-log" => s.event_log.to_value(),
            // Read back without its secrets.
            "publish" => s.publish.as_deref().map(Sink::shown_list).to_value(),
            "spool-dir" => s.spool_dir.to_value(),
            "node-id" => s.node_id.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

impl GstObjectImpl for ReidMap {}

impl ElementImpl for ReidMap {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Sightline re-identification to a floor map",
                "Filter/Analyzer/Video",
                "Tracks detected people, re-identifies them across cameras (OSNet) and places them on a floor map",
                "Sightline developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(|| filter_pad_templates(&caps_for(ANALYSIS_FORMATS)));
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for ReidMap {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let mut s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        sightline_core::props::resolve_secret("redis-url", &mut s.redis_url)?;
        sightline_core::props::resolve_secret("publish", &mut s.publish)?;
        let sinks = Sink::parse_list(s.publish.as_deref().unwrap_or(""))
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ["{}", e]))?;
        let path = s
            .calibration
            .clone()
            .ok_or_else(|| gst::error_msg!(gst::ResourceError::Settings, ("reidmap needs a calibration file (property calibration) to place people on the map")))?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Cannot read calibration {}: {}", path, e)
            )
        })?;
        let calibration = Calibration::parse(&text, &path).map_err(|e| {
            gst::error_msg!(gst::ResourceError::Settings, ("Bad calibration: {}", e))
        })?;
        match calibration.reprojection {
            Some((mean, max)) => gst::info!(
                CAT,
                imp = self,
                "calibration {path}: reprojection mean {mean:.3} max {max:.3} {}",
                calibration.units
            ),
            None => gst::info!(CAT, imp = self, "calibration {path}: given homography"),
        }
        let model = models::resolve(&s.reid_model, DEFAULT_MODEL).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Cannot load ReID model: {}", e)
            )
        })?;
        let opts = EngineOptions {
            provider: s.execution_provider.into(),
            device_id: s.device_id,
            max_batch: 0,
            batch_timeout: Duration::from_millis(5),
        };
        let engine = Engine::shared(&model, &opts).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Cannot load model {}: {}", model.path.display(), e)
            )
        })?;
        let embedder = CropEmbedder::new(engine).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "Model {} cannot be used by reidmap: {}",
                    model.path.display(),
                    e
                )
            )
        })?;
        let map = shared_map(
            &s.map,
            MapConfig {
                match_threshold: s.match_threshold as f32,
                ..MapConfig::default()
            },
        );
        let camera = self.camera();
        let sync = crate::share_map(&s.map, s.redis_url.as_deref(), map.clone())?;
        let publish = open_sinks(&s, sinks, &camera)?;
        *self
            .state
            .lock()
            .map_err(|_| gst::error_msg!(gst::CoreError::Failed, ["state lock poisoned"]))? =
            Some(State {
                embedder,
                calibration,
                map,
                tracker: MotTracker::new(MotConfig::default()),
                info: None,
                frames: 0,
                last_post_ns: None,
                embeddings: 0,
                trajectories: TrajectoryRecorder::new(TrajectoryConfig::default()),
                sync,
                publish,
            });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.end_all_trajectories();
        if let Ok(mut st) = self.state.lock() {
            *st = None;
        }
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Eos(_) = event.view() {
            self.end_all_trajectories();
        }
        self.parent_sink_event(event)
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "Cannot parse video caps {}", incaps))?;
        let mut st = self
            .state
            .lock()
            .map_err(|_| gst::loggable_error!(CAT, "state lock poisoned"))?;
        st.as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?
            .info = Some(info);
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        let obj = self.obj();
        let camera = s.camera.clone().unwrap_or_else(|| obj.name().to_string());
        // Clock time, common to every camera of the process.
        let rt = buf.pts().and_then(|pts| {
            obj.segment()
                .downcast_ref::<gst::ClockTime>()
                .and_then(|seg| seg.to_running_time(pts))
        });
        let now = match (rt, obj.current_state() == gst::State::Playing) {
            (Some(rt), true) => rt.nseconds() + obj.base_time().map_or(0, |t| t.nseconds()),
            (Some(rt), false) => obj.clock().map_or(rt.nseconds(), |c| c.time().nseconds()),
            (None, _) => obj
                .clock()
                .unwrap_or_else(gst::SystemClock::obtain)
                .time()
                .nseconds(),
        };
        let mut guard = self.state.lock().map_err(|_| gst::FlowError::Error)?;
        let st = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = st.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let frame_no = st.frames;
        st.frames += 1;
        let persons: Vec<(i32, [f32; 4])> = meta::read_rois(buf)
            .into_iter()
            .filter(|r| r.roi_type == meta::ROI_PERSON)
            .map(|r| {
                (
                    r.id,
                    [
                        r.rect.0 as f32,
                        r.rect.1 as f32,
                        (r.rect.0 + r.rect.2) as f32,
                        (r.rect.1 + r.rect.3) as f32,
                    ],
                )
            })
            .collect();
        let boxes: Vec<[f32; 4]> = persons.iter().map(|p| p.1).collect();
        let before: Vec<u64> = st.tracker.tracks.iter().map(|t| t.id).collect();
        let assign = st.tracker.update(&boxes, None, TrackData::default);
        let seen_at = rt.map_or(now, |t| t.nseconds());
        for &i in &assign {
            st.tracker.tracks[i]
                .data
                .first_seen_ns
                .get_or_insert(seen_at);
        }
        // Tracks that closed: the map forgets their links.
        let alive: Vec<u64> = st.tracker.tracks.iter().map(|t| t.id).collect();
        let mut finished = Vec::new();
        if let Ok(mut m) = st.map.lock() {
            for id in before.iter().filter(|id| !alive.contains(id)) {
                m.track_ended(&camera, *id);
                finished.extend(st.trajectories.close(*id, EndReason::TrackEnded));
            }
        }
        // Embeddings for confirmed tracks that are new or due, in one run.
        let min_hits = st.tracker.config.min_hits;
        let due: Vec<usize> = (0..persons.len())
            .filter(|&k| {
                let t = &st.tracker.tracks[assign[k]];
                t.confirmed(min_hits)
                    && (boxes[k][3] - boxes[k][1]) >= s.min_height as f32
                    && t.data
                        .last_embed_frame
                        .is_none_or(|f| frame_no.saturating_sub(f) >= s.reembed_interval as u64)
            })
            .collect();
        let mut embeddings: Vec<Option<Vec<f32>>> = vec![None; persons.len()];
        if !due.is_empty() {
            let frame =
                gst_video::VideoFrameRef::from_buffer_ref_readable(&*buf, &info).map_err(|_| {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Failed,
                        ("Cannot map video frame readable")
                    );
                    gst::FlowError::Error
                })?;
            let img = image_view(&frame).map_err(|e| {
                gst::element_imp_error!(self, gst::StreamError::Format, ("Bad video frame: {}", e));
                gst::FlowError::Error
            })?;
            let crops: Vec<[f32; 4]> = due.iter().map(|&k| boxes[k]).collect();
            let vecs = st.embedder.embed(&img, &crops).map_err(|e| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("Person re-identification failed: {}", e)
                );
                gst::FlowError::Error
            })?;
            st.embeddings += vecs.len() as u64;
            for (&k, v) in due.iter().zip(vecs) {
                st.tracker.tracks[assign[k]].data.last_embed_frame = Some(frame_no);
                embeddings[k] = Some(v);
            }
        }
        // The map: foot point (bottom centre of the box) through the calibration.
        let mut placed = Vec::new();
        if let Ok(mut m) = st.map.lock() {
            for (k, (roi_id, b)) in persons.iter().enumerate() {
                let t = &st.tracker.tracks[assign[k]];
                let mut params = Vec::new();
                let mut tracked = meta::Tracked {
                    id: t.id,
                    first_seen_ns: t.data.first_seen_ns.unwrap_or(seen_at),
                    last_seen_ns: seen_at,
                    global_id: None,
                };
                if t.confirmed(min_hits)
                    && let Some(p) = st
                        .calibration
                        .to_map(((b[0] + b[2]) / 2.0) as f64, b[3] as f64)
                {
                    let (gid, pos) = m.observe(&camera, t.id, p, embeddings[k].as_deref(), now);
                    params.push(
                        gst::Structure::builder("map-position")
                            .field("x", pos[0])
                            .field("y", pos[1])
                            .field("map", s.map.as_str())
                            .field("global-id", gid as i64)
                            .build(),
                    );
                    tracked.global_id = Some(gid);
                    placed.push((t.id, gid, pos));
                    // Trajectories in the buffers' running time.
                    let at = rt.map_or(now, |t| t.nseconds());
                    finished.extend(st.trajectories.record(t.id, gid, at, pos));
                }
                meta::annotate(buf, *roi_id, &tracked, None, params);
            }
        }
        let post = s.post_interval <= 0.0
            || st
                .last_post_ns
                .is_none_or(|l| now.saturating_sub(l) as f64 / 1e9 >= s.post_interval);
        let msg = (post && !placed.is_empty()).then(|| {
            st.last_post_ns = Some(now);
            let people = gst::List::new(placed.iter().map(|(track, gid, pos)| {
                gst::Structure::builder("person")
                    .field("track-id", *track)
                    .field("global-id", *gid)
                    .field("x", pos[0])
                    .field("y", pos[1])
                    .build()
            }));
            gst::Structure::builder("reidmap")
                .field("camera", camera.as_str())
                .field("map", s.map.as_str())
                .field("units", st.calibration.units.as_str())
                .field("frame-width", info.width())
                .field("frame-height", info.height())
                .field("running-time", rt.map_or(0, |t| t.nseconds()))
                .field("clock-time", now)
                .field("utc-time", utc_now())
                .field("people", people)
                .build()
        });
        let problems = st
            .sync
            .as_ref()
            .map(|sync| sync.take_errors())
            .unwrap_or_default();
        let mut delivery_problems = Vec::new();
        if let (Some(m), Some(d)) = (&msg, st.publish.as_ref()) {
            delivery_problems.extend(d.send_reporting(&meta::event_from_structure(
                m,
                &obj.name(),
                &camera,
            )));
        }
        let trajectories = self.publish_trajectories(st, &camera, &s.map, finished);
        drop(guard);
        for p in problems {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                (
                    "Map sharing interrupted (this process's cameras go on; shared again when Redis is back): {}",
                    p
                )
            );
        }
        for p in delivery_problems {
            gst::element_imp_warning!(self, gst::ResourceError::Write, ("{}", p));
        }
        for m in msg.into_iter().chain(trajectories) {
            let _ = obj.post_message(gst::message::Element::builder(m).src(&*obj).build());
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

/// The element's delivery: `publish` receives every message (positions and trajectories);
/// the older properties `event-log` (a JSONL file) and `redis-url`/`stream` receive the
/// trajectories. The event log is opened here, so that a path that cannot be written fails
/// the start with its name, as it always did.
fn open_sinks(
    s: &Settings,
    full: Vec<Sink>,
    camera: &str,
) -> Result<Option<Delivery>, gst::ErrorMessage> {
    let trajectories = || Only::Kinds(vec!["reidmap-trajectory".into()]);
    let mut partial = Vec::new();
    if let Some(path) = &s.event_log {
        let sink = Sink::event_log(path)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ("{}", e)))?;
        partial.push((sink, trajectories()));
    }
    if let Some(url) = &s.redis_url {
        let sink = Sink::Redis {
            url: url.clone(),
            stream: s.stream.clone(),
        };
        partial.push((sink, trajectories()));
    }
    if full.is_empty() && partial.is_empty() {
        return Ok(None);
    }
    let spool = s
        .spool_dir
        .as_ref()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(default_spool_dir);
    Delivery::start(DeliveryConfig {
        node: format!("{}-reidmap-{}-publish", s.node_id, slug(camera)),
        name: Some(s.node_id.clone()),
        spool_dir: spool.clone(),
        sinks: full,
        partial,
        ..Default::default()
    })
    .map(Some)
    .map_err(|e| {
        gst::error_msg!(
            gst::ResourceError::OpenWrite,
            ("Cannot open the event spool in {}: {}", spool.display(), e)
        )
    })
}

impl ReidMap {
    /// The `camera` property, else the element name.
    fn camera(&self) -> String {
        let configured = self.settings.lock().ok().and_then(|s| s.camera.clone());
        sightline_core::glue::engine::camera_name(configured, &*self.obj())
    }

    /// Ends every open trajectory (end of stream, stop) and posts them.
    fn end_all_trajectories(&self) {
        let map = self
            .settings
            .lock()
            .map(|s| s.map.clone())
            .unwrap_or_default();
        let camera = self.camera();
        let msgs = match self.state.lock() {
            Ok(mut g) => match g.as_mut() {
                Some(st) => {
                    let done = st.trajectories.close_all(EndReason::StreamEnded);
                    self.publish_trajectories(st, &camera, &map, done)
                }
                None => Vec::new(),
            },
            Err(_) => Vec::new(),
        };
        let obj = self.obj();
        for m in msgs {
            let _ = obj.post_message(gst::message::Element::builder(m).src(&*obj).build());
        }
    }

    /// Writes trajectories to the event log and the stream; returns the messages to post.
    fn publish_trajectories(
        &self,
        st: &mut State,
        camera: &str,
        map: &str,
        done: Vec<Trajectory>,
    ) -> Vec<gst::Structure> {
        if done.is_empty() {
            return Vec::new();
        }
        let obj = self.obj();
        let base = obj.base_time().map_or(0, |t| t.nseconds());
        // Clock time to UTC, as of now.
        let clock_now = obj
            .clock()
            .unwrap_or_else(gst::SystemClock::obtain)
            .time()
            .nseconds();
        let utc_of = |rt: u64| utc_ago(clock_now.saturating_sub(rt + base));
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for tr in done {
            let (first, last) = (tr.points[0].0, tr.points[tr.points.len() - 1].0);
            let points = gst::List::new(tr.points.iter().map(|(t, p)| {
                gst::Structure::builder("point")
                    .field("running-time", *t)
                    .field("x", p[0])
                    .field("y", p[1])
                    .build()
            }));
            let m = gst::Structure::builder("reidmap-trajectory")
                .field("camera", camera)
                .field("map", map)
                .field("units", st.calibration.units.as_str())
                .field("track-id", tr.track)
                .field("global-id", tr.global_id)
                .field("segment", tr.segment)
                .field("reason", tr.reason.as_str())
                .field("start-running-time", first)
                .field("running-time", last)
                .field("start-utc", utc_of(first))
                .field("utc-time", utc_of(last))
                .field("points", points)
                .build();
            if let Some(d) = st.publish.as_ref() {
                let ev = meta::event_from_structure(&m, &obj.name(), camera);
                problems.extend(d.send_reporting(&ev));
            }
            out.push(m);
        }
        for p in problems {
            gst::element_imp_warning!(self, gst::ResourceError::Write, ("{}", p));
        }
        out
    }
}
