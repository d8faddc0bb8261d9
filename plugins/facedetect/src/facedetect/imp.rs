use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::VideoFormat;
use sightline_core::glue::engine;

use sightline_core::activity::{ActivityConfig, ActivityEvent, ActivityMonitor};
use sightline_core::changes::{self, ChangeMap};
use sightline_core::detect::{DetectParams, FOLLOW_FACE_PX, FaceDetector};
use sightline_core::events::utc_now;
use sightline_core::meta;
use sightline_core::postprocess::Detection;
use sightline_core::preprocess::luma_grid;
use sightline_core::video::{
    ANALYSIS_FORMATS, caps_for, filter_pad_templates, format_names, image_view,
};

use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use super::ExecutionProvider;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "facedetect",
        gst::DebugColorFlags::empty(),
        Some("Sightline face detection"),
    )
});

const DEFAULT_MODEL: &str = "yunet-n";
const DEFAULT_SCORE_THRESHOLD: f64 = 0.75;
const DEFAULT_NMS_THRESHOLD: f64 = 0.3;
const DEFAULT_INFERENCE_WIDTH: u32 = 640;
const DEFAULT_INFERENCE_HEIGHT: u32 = 0;
const DEFAULT_INTERVAL: u32 = 1;
const DEFAULT_SCAN_INTERVAL: u32 = 1;
const DEFAULT_MOTION_SCAN: bool = false;
/// With `motion-scan`, every this many scans is still a whole-frame one: what a change below
/// the threshold or a face cut by a region's edge kept from view is found within this many
/// scans (6 s at 5 analysed frames/s with `scan-interval=3`).
const MOTION_FULL_SCAN_EVERY: u32 = 10;
const DEFAULT_MIN_FACE_SIZE: u32 = 0;
const DEFAULT_DEVICE_ID: i32 = 0;
const DEFAULT_MAX_BATCH: u32 = 0;
const DEFAULT_BATCH_TIMEOUT_MS: u32 = 5;
const DEFAULT_POST_MESSAGES: bool = true;
const DEFAULT_IDLE_SECONDS: f64 = 30.0;
const DEFAULT_IDLE_INTERVAL: u32 = 10;
const DEFAULT_DARK_THRESHOLD: f64 = 25.0;
const DEFAULT_DARK_SECONDS: f64 = 10.0;
/// Luma grid used for motion and darkness: 32 x 24 cells, 4 samples each.
const GRID_W: usize = 32;
const GRID_H: usize = 24;

#[derive(Debug, Clone)]
struct Settings {
    model: String,
    camera: Option<String>,
    score_threshold: f64,
    nms_threshold: f64,
    inference_width: u32,
    inference_height: u32,
    max_upscale: f64,
    interval: u32,
    scan_interval: u32,
    motion_scan: bool,
    min_face_size: u32,
    execution_provider: ExecutionProvider,
    device_id: i32,
    max_batch: u32,
    batch_timeout_ms: u32,
    post_messages: bool,
    idle_seconds: f64,
    idle_interval: u32,
    dark_threshold: f64,
    dark_seconds: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: DEFAULT_MODEL.to_string(),
            camera: None,
            score_threshold: DEFAULT_SCORE_THRESHOLD,
            nms_threshold: DEFAULT_NMS_THRESHOLD,
            inference_width: DEFAULT_INFERENCE_WIDTH,
            inference_height: DEFAULT_INFERENCE_HEIGHT,
            max_upscale: sightline_core::detect::DEFAULT_MAX_UPSCALE as f64,
            interval: DEFAULT_INTERVAL,
            scan_interval: DEFAULT_SCAN_INTERVAL,
            motion_scan: DEFAULT_MOTION_SCAN,
            min_face_size: DEFAULT_MIN_FACE_SIZE,
            execution_provider: ExecutionProvider::default(),
            device_id: DEFAULT_DEVICE_ID,
            max_batch: DEFAULT_MAX_BATCH,
            batch_timeout_ms: DEFAULT_BATCH_TIMEOUT_MS,
            post_messages: DEFAULT_POST_MESSAGES,
            idle_seconds: DEFAULT_IDLE_SECONDS,
            idle_interval: DEFAULT_IDLE_INTERVAL,
            dark_threshold: DEFAULT_DARK_THRESHOLD,
            dark_seconds: DEFAULT_DARK_SECONDS,
        }
    }
}

impl Settings {
    fn params(&self) -> DetectParams {
        DetectParams {
            score_threshold: self.score_threshold as f32,
            nms_threshold: self.nms_threshold as f32,
            inference_width: self.inference_width,
            inference_height: self.inference_height,
            min_face_size: self.min_face_size as f32,
            max_upscale: self.max_upscale as f32,
        }
    }

    fn activity(&self) -> ActivityConfig {
        ActivityConfig {
            dark_threshold: self.dark_threshold as f32,
            dark_seconds: self.dark_seconds,
            idle_seconds: self.idle_seconds,
            ..ActivityConfig::default()
        }
    }
}

struct State {
    detector: FaceDetector,
    model_name: String,
    info: Option<gst_video::VideoInfo>,
    frames: u64,
    /// Frames since detection last ran.
    since_detect: u32,
    /// Detections since the last scan (whole frame, or what changed).
    since_scan: u32,
    /// Scans of what changed since the last whole-frame scan (`motion-scan`).
    since_full: u32,
    /// The picture's cells when they were last searched (`motion-scan`).
    changes: ChangeMap,
    last: Vec<Detection>,
    activity: ActivityMonitor,
    grid: Vec<u8>,
    started: Instant,
    inferences: u64,
}

#[derive(Default)]
pub struct FaceDetect {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

impl FaceDetect {
    fn camera(&self) -> String {
        let configured = self.settings.lock().ok().and_then(|s| s.camera.clone());
        sightline_core::glue::engine::camera_name(configured, &*self.obj())
    }

    fn post(&self, s: gst::Structure) {
        let msg = gst::message::Element::builder(s).src(&*self.obj()).build();
        let _ = self.obj().post_message(msg);
    }

    fn running_time(&self, buf: &gst::BufferRef) -> Option<gst::ClockTime> {
        let pts = buf.pts()?;
        let seg = self.obj().segment();
        seg.downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_running_time(pts))
    }

    fn handle_activity(
        &self,
        events: Vec<ActivityEvent>,
        camera: &str,
        rt: Option<gst::ClockTime>,
    ) {
        for ev in events {
            match ev {
                ActivityEvent::DarkStarted {
                    mean_luma,
                    since_ns,
                } => {
                    let (dark_threshold, dark_seconds) = self
                        .settings
                        .lock()
                        .map(|s| (s.dark_threshold, s.dark_seconds))
                        .unwrap_or((DEFAULT_DARK_THRESHOLD, DEFAULT_DARK_SECONDS));
                    gst::warning!(
                        CAT,
                        imp = self,
                        "camera {camera}: scene too dark (mean luma {mean_luma:.0})"
                    );
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Failed,
                        ("Scene too dark to detect faces on camera {}", camera),
                        [
                            "mean luma {:.0} has been below dark-threshold {:.0} for at least dark-seconds {:.0} s",
                            mean_luma,
                            dark_threshold,
                            dark_seconds
                        ]
                    );
                    self.post(
                        gst::Structure::builder("facedetect-dark")
                            .field("camera", camera)
                            .field("dark", true)
                            .field("mean-luma", mean_luma as f64)
                            .field("since-running-time", since_ns)
                            .field("running-time", rt.map(|t| t.nseconds()).unwrap_or(0))
                            .field("utc-time", utc_now())
                            .build(),
                    );
                }
                ActivityEvent::DarkEnded { mean_luma } => {
                    gst::info!(
                        CAT,
                        imp = self,
                        "camera {camera}: scene bright enough again"
                    );
                    self.post(
                        gst::Structure::builder("facedetect-dark")
                            .field("camera", camera)
                            .field("dark", false)
                            .field("mean-luma", mean_luma as f64)
                            .field("running-time", rt.map(|t| t.nseconds()).unwrap_or(0))
                            .field("utc-time", utc_now())
                            .build(),
                    );
                }
                ActivityEvent::IdleEntered | ActivityEvent::IdleLeft => {
                    let idle = ev == ActivityEvent::IdleEntered;
                    gst::info!(
                        CAT,
                        imp = self,
                        "camera {camera}: idle mode {}",
                        if idle { "on" } else { "off" }
                    );
                    self.post(
                        gst::Structure::builder("facedetect-idle")
                            .field("camera", camera)
                            .field("idle", idle)
                            .field("running-time", rt.map(|t| t.nseconds()).unwrap_or(0))
                            .field("utc-time", utc_now())
                            .build(),
                    );
                }
            }
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FaceDetect {
    const NAME: &'static str = "SightlineFaceDetect";
    type Type = super::FaceDetect;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for FaceDetect {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb("Face detector: a models.toml name (yunet-n, yunet-s) or a path to an .onnx file; names are looked up in $SIGHTLINE_MODELS, the installed data dir and the user cache, and checked by sha256")
                    .default_value(Some(DEFAULT_MODEL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("camera")
                    .nick("Camera")
                    .blurb("Camera name carried by messages and events (default: the element name)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("score-threshold")
                    .nick("Score threshold")
                    .blurb("Minimum face score (0-1). 0.75 is calibrated on the labelled clips and photos: true faces scored >= 0.85 (partly visible ones >= 0.74), false detections <= 0.75")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_SCORE_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("nms-threshold")
                    .nick("NMS threshold")
                    .blurb("IoU above which overlapping faces are merged (0-1)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_NMS_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("inference-width")
                    .nick("Inference width")
                    .blurb("Width in pixels of the image given to the model (aspect ratio kept); 0 = derived from inference-height, or the frame's own size when both are 0. Larger finds smaller faces, costs more")
                    .maximum(8192)
                    .default_value(DEFAULT_INFERENCE_WIDTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("inference-height")
                    .nick("Inference height")
                    .blurb("Height in pixels of the image given to the model; 0 = derived from inference-width. With both set, the frame is fitted inside")
                    .maximum(8192)
                    .default_value(DEFAULT_INFERENCE_HEIGHT)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("max-upscale")
                    .nick("Maximum upscale")
                    .blurb("A frame smaller than the inference size is enlarged at most this much (1 = never): a face that fills a small frame or a tight crop is not found once enlarged past what the detector's anchors cover (every ORL 92x112 face found up to 5x, misses from 5.5x)")
                    .minimum(1.0)
                    .maximum(16.0)
                    .default_value(sightline_core::detect::DEFAULT_MAX_UPSCALE as f64)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Detect every N-th frame; frames in between carry the last faces")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("scan-interval")
                    .nick("Scan interval")
                    .blurb("While faces are in view, scan the whole frame on every N-th detection; the detections in between search only around the faces last found (at the frame's scale), so a new face beside them is found up to N-1 detections later. With no face in view every detection scans the whole frame. 1 = always the whole frame")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(DEFAULT_SCAN_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("motion-scan")
                    .nick("Motion scan")
                    .blurb("A scan searches only the parts of the frame whose picture changed since they were last searched (16-pixel cells whose mean luma moved by more than 8 of 255), with the faces last found, at the frame's scale; the whole frame on the first scan, when the changes would cost as much, and on every 10th scan. A still part of the picture gives the detector what it gave before")
                    .default_value(DEFAULT_MOTION_SCAN)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-face-size")
                    .nick("Minimum face size")
                    .blurb("Drop faces whose shorter side is below this many frame pixels")
                    .maximum(8192)
                    .default_value(DEFAULT_MIN_FACE_SIZE)
                    .mutable_playing()
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
                    .default_value(DEFAULT_DEVICE_ID)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-batch")
                    .nick("Maximum batch")
                    .blurb("Largest batch the shared model session forms from frames of several cameras (same size); 1 = never batch; 0 = auto (1 on CPU, 8 on GPU providers). On CPU, 4 gave +26 % throughput with 8 cameras for +66 MB")
                    .minimum(0)
                    .maximum(64)
                    .default_value(DEFAULT_MAX_BATCH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("batch-timeout")
                    .nick("Batch timeout")
                    .blurb("Milliseconds the shared session waits for other cameras' frames to fill a batch (only while several elements share it)")
                    .maximum(1000)
                    .default_value(DEFAULT_BATCH_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a facedetect element message for every frame that ran detection")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("idle-seconds")
                    .nick("Idle after seconds")
                    .blurb("Seconds without motion and without faces after which detection runs only every idle-interval frames; 0 = never idle")
                    .minimum(0.0)
                    .maximum(86_400.0)
                    .default_value(DEFAULT_IDLE_SECONDS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("idle-interval")
                    .nick("Idle interval")
                    .blurb("In idle mode, detect every N-th frame (motion returns to full rate at once)")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(DEFAULT_IDLE_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("dark-threshold")
                    .nick("Dark threshold")
                    .blurb("Mean luma (0-255) below which the scene is too dark for face detection")
                    .minimum(0.0)
                    .maximum(255.0)
                    .default_value(DEFAULT_DARK_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("dark-seconds")
                    .nick("Dark seconds")
                    .blurb("How long the scene must stay dark before a warning is posted, seconds")
                    .minimum(0.0)
                    .maximum(86_400.0)
                    .default_value(DEFAULT_DARK_SECONDS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("inferences")
                    .nick("Inferences")
                    .blurb("Number of frames that ran detection since start (read-only)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let Ok(mut s) = self.settings.lock() else {
            return;
        };
        match pspec.name() {
            "model" => {
                s.model = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| DEFAULT_MODEL.to_string())
            }
            "camera" => {
                s.camera = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .filter(|c| !c.is_empty())
            }
            "score-threshold" => s.score_threshold = value.get().unwrap_or(DEFAULT_SCORE_THRESHOLD),
            "nms-threshold" => s.nms_threshold = value.get().unwrap_or(DEFAULT_NMS_THRESHOLD),
            "inference-width" => s.inference_width = value.get().unwrap_or(DEFAULT_INFERENCE_WIDTH),
            "inference-height" => {
                s.inference_height = value.get().unwrap_or(DEFAULT_INFERENCE_HEIGHT)
            }
            "max-upscale" => {
                s.max_upscale = value
                    .get()
                    .unwrap_or(sightline_core::detect::DEFAULT_MAX_UPSCALE as f64)
            }
            "interval" => s.interval = value.get().unwrap_or(DEFAULT_INTERVAL),
            "scan-interval" => s.scan_interval = value.get().unwrap_or(DEFAULT_SCAN_INTERVAL),
            "motion-scan" => s.motion_scan = value.get().unwrap_or(DEFAULT_MOTION_SCAN),
            "min-face-size" => s.min_face_size = value.get().unwrap_or(DEFAULT_MIN_FACE_SIZE),
            "execution-provider" => s.execution_provider = value.get().unwrap_or_default(),
            "device-id" => s.device_id = value.get().unwrap_or(DEFAULT_DEVICE_ID),
            "max-batch" => s.max_batch = value.get().unwrap_or(DEFAULT_MAX_BATCH),
            "batch-timeout" => s.batch_timeout_ms = value.get().unwrap_or(DEFAULT_BATCH_TIMEOUT_MS),
            "post-messages" => s.post_messages = value.get().unwrap_or(DEFAULT_POST_MESSAGES),
            "idle-seconds" => s.idle_seconds = value.get().unwrap_or(DEFAULT_IDLE_SECONDS),
            "idle-interval" => s.idle_interval = value.get().unwrap_or(DEFAULT_IDLE_INTERVAL),
            "dark-threshold" => s.dark_threshold = value.get().unwrap_or(DEFAULT_DARK_THRESHOLD),
            "dark-seconds" => s.dark_seconds = value.get().unwrap_or(DEFAULT_DARK_SECONDS),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
        // Thresholds that also live in the running state.
        let activity = s.activity();
        drop(s);
        if let Ok(mut st) = self.state.lock()
            && let Some(st) = st.as_mut()
        {
            st.activity.config = activity;
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "inferences" {
            return self
                .state
                .lock()
                .ok()
                .and_then(|s| s.as_ref().map(|s| s.inferences))
                .unwrap_or(0)
                .to_value();
        }
        let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        match pspec.name() {
            "model" => s.model.to_value(),
            "camera" => s.camera.to_value(),
            "score-threshold" => s.score_threshold.to_value(),
            "nms-threshold" => s.nms_threshold.to_value(),
            "inference-width" => s.inference_width.to_value(),
            "inference-height" => s.inference_height.to_value(),
            "max-upscale" => s.max_upscale.to_value(),
            "interval" => s.interval.to_value(),
            "scan-interval" => s.scan_interval.to_value(),
            "motion-scan" => s.motion_scan.to_value(),
            "min-face-size" => s.min_face_size.to_value(),
            "execution-provider" => s.execution_provider.to_value(),
            "device-id" => s.device_id.to_value(),
            "max-batch" => s.max_batch.to_value(),
            "batch-timeout" => s.batch_timeout_ms.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "idle-seconds" => s.idle_seconds.to_value(),
            "idle-interval" => s.idle_interval.to_value(),
            "dark-threshold" => s.dark_threshold.to_value(),
            "dark-seconds" => s.dark_seconds.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

impl GstObjectImpl for FaceDetect {}

impl ElementImpl for FaceDetect {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Sightline face detection",
                "Filter/Analyzer/Video",
                "Detects faces and 5 landmarks (YuNet, ONNX Runtime) and attaches them as region-of-interest metas",
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

impl BaseTransformImpl for FaceDetect {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        let model = engine::resolve_model("face detection", &s.model, DEFAULT_MODEL)?;
        if !model.verified {
            gst::warning!(
                CAT,
                imp = self,
                "{} is not listed in models.toml: sha256 not checked, I/O assumed to be {}'s",
                model.path.display(),
                DEFAULT_MODEL
            );
        }
        let opts = engine::engine_options(
            s.execution_provider.into(),
            s.device_id,
            s.max_batch,
            s.batch_timeout_ms,
        );
        let engine = engine::shared_engine(&model, &opts)?;
        let detector = FaceDetector::new(engine).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                [
                    "Model {} cannot be used by facedetect: {}",
                    model.path.display(),
                    e
                ]
            )
        })?;
        gst::info!(
            CAT,
            imp = self,
            "model {} ({}) on {}, {} element(s) share it",
            model.spec.name,
            model.path.display(),
            opts.provider.name(),
            detector.engine().clients()
        );
        *self
            .state
            .lock()
            .map_err(|_| gst::error_msg!(gst::CoreError::Failed, ["state lock poisoned"]))? =
            Some(State {
                detector,
                model_name: model.spec.name.clone(),
                info: None,
                frames: 0,
                since_detect: 0,
                since_scan: 0,
                since_full: 0,
                changes: ChangeMap::default(),
                last: Vec::new(),
                activity: ActivityMonitor::new(s.activity()),
                grid: Vec::with_capacity(GRID_W * GRID_H),
                started: Instant::now(),
                inferences: 0,
            });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Ok(mut st) = self.state.lock() {
            *st = None;
        }
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "Cannot parse video caps {}", incaps))?;
        let mut st = self
            .state
            .lock()
            .map_err(|_| gst::loggable_error!(CAT, "state lock poisoned"))?;
        let st = st
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        gst::debug!(
            CAT,
            imp = self,
            "caps {}x{} {:?}",
            info.width(),
            info.height(),
            info.format()
        );
        st.info = Some(info);
        Ok(())
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        if direction == gst::PadDirection::Sink
            && let gst::QueryViewMut::AcceptCaps(q) = query.view_mut()
        {
            let caps = q.caps_owned();
            if caps.is_fixed()
                && let Some(s) = caps.structure(0)
                && s.name() == "video/x-raw"
                && let Ok(fmt) = s.get::<&str>("format")
                && !ANALYSIS_FORMATS.contains(&VideoFormat::from_string(fmt))
            {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    (
                        "Unsupported video format {}: facedetect reads {}; put videoconvert before it",
                        fmt,
                        format_names(ANALYSIS_FORMATS)
                    ),
                    ["caps {}", caps]
                );
            }
        }
        BaseTransformImplExt::parent_query(self, direction, query)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        let camera = self.camera();
        let rt = self.running_time(buf);
        let mut guard = self.state.lock().map_err(|_| gst::FlowError::Error)?;
        let st = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = st.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let ts_ns = rt
            .map(|t| t.nseconds())
            .unwrap_or_else(|| st.started.elapsed().as_nanos() as u64);

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
        luma_grid(&img, GRID_W, GRID_H, &mut st.grid);
        let (_, events) = st.activity.observe(ts_ns, &st.grid);
        let woke = events.contains(&ActivityEvent::IdleLeft);
        let interval = if st.activity.is_idle() {
            settings.idle_interval
        } else {
            settings.interval
        }
        .max(1);
        let run = st.frames == 0 || woke || st.since_detect + 1 >= interval;
        let mut all_events = events;
        // Whole frame, or only around the faces last found (see scan-interval), or around them
        // and what changed (motion-scan).
        let due = run && (st.last.is_empty() || st.since_scan + 1 >= settings.scan_interval.max(1));
        let mut how = Scan::Frame;
        // Share of the frame's pixels searched.
        let mut searched = 1.0;
        if run {
            let params = settings.params();
            let motion = settings.motion_scan;
            if motion {
                st.changes.measure(&img);
            }
            let whole = due
                && !(motion && st.changes.ready() && st.since_full + 1 < MOTION_FULL_SCAN_EVERY);
            let found = if whole {
                st.detector.detect(&img, &params).map(|d| (d, None))
            } else if due {
                let changed = st.changes.changed(changes::THRESHOLD);
                st.detector
                    .detect_around_changes(&img, &params, &st.last, &changed)
            } else {
                // Between scans: following the faces found, each at a size that is enough.
                st.detector.follow(&img, &params, &st.last, FOLLOW_FACE_PX)
            };
            let (dets, regions) = found.map_err(|e| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("Face detection failed: {}", e)
                );
                gst::FlowError::Error
            })?;
            how = match (&regions, due) {
                (None, _) => Scan::Frame,
                (Some(_), true) => Scan::Changes,
                (Some(_), false) => Scan::Regions,
            };
            if let Some(r) = &regions {
                let area = r.iter().fold(0.0, |a, r| a + r.w * r.h);
                searched = (area / (img.width * img.height) as f32).min(1.0) as f64;
            }
            if motion {
                match &regions {
                    None => st.changes.searched_all(),
                    Some(r) => st.changes.searched(r),
                }
            }
            engine::warn_if_refused(&*self.obj(), "Face detection", st.detector.engine());
            st.since_detect = 0;
            st.since_scan = if how == Scan::Regions {
                st.since_scan + 1
            } else {
                0
            };
            st.since_full = match how {
                Scan::Frame => 0,
                Scan::Changes => st.since_full + 1,
                Scan::Regions => st.since_full,
            };
            st.inferences += 1;
            if !dets.is_empty() {
                all_events.extend(st.activity.faces_seen(ts_ns));
            }
            st.last = dets;
        } else {
            st.since_detect += 1;
        }
        st.frames += 1;
        drop(frame);

        let (w, h) = (info.width(), info.height());
        for d in &st.last {
            meta::add_detection(buf, meta::ROI_FACE, d, w, h, "face", 0, &st.model_name);
        }
        let msg = (run && settings.post_messages).then(|| {
            let faces = gst::List::new(st.last.iter().map(|d| meta::face_structure(d, w, h)));
            gst::Structure::builder("facedetect")
                .field("camera", camera.as_str())
                .field(
                    "timestamp",
                    buf.pts().map(|t| t.nseconds()).unwrap_or(u64::MAX),
                )
                .field(
                    "stream-time",
                    buf.pts()
                        .and_then(|p| {
                            self.obj()
                                .segment()
                                .downcast_ref::<gst::ClockTime>()
                                .and_then(|s| s.to_stream_time(p))
                        })
                        .map(|t| t.nseconds())
                        .unwrap_or(u64::MAX),
                )
                .field("running-time", ts_ns)
                .field(
                    "duration",
                    buf.duration().map(|t| t.nseconds()).unwrap_or(u64::MAX),
                )
                .field("utc-time", utc_now())
                .field("frame", st.frames - 1)
                .field("model", st.model_name.as_str())
                .field("scan", how.as_str())
                .field("searched", searched)
                .field("faces", faces)
                .build()
        });
        drop(guard);
        self.handle_activity(all_events, &camera, rt);
        if let Some(m) = msg {
            self.post(m);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

/// What a detection searched (the `scan` field of the `facedetect` message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// The whole frame.
    Frame,
    /// Around the faces last found (between scans).
    Regions,
    /// Around the faces last found and the parts of the picture that changed (a scan with
    /// `motion-scan`).
    Changes,
}

impl Scan {
    fn as_str(self) -> &'static str {
        match self {
            Scan::Frame => "frame",
            Scan::Regions => "regions",
            Scan::Changes => "changes",
        }
    }
}
