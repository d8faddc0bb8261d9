use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use sightline_core::glue::engine;

use sightline_core::detect::{DetectParams, PersonDetector, tile_rects};
use sightline_core::events::utc_now;
use sightline_core::meta;
use sightline_core::postprocess::Detection;
use sightline_core::video::{ANALYSIS_FORMATS, caps_for, filter_pad_templates, image_view};

use std::sync::{LazyLock, Mutex};

use super::ExecutionProvider;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "persondetect",
        gst::DebugColorFlags::empty(),
        Some("Sightline person detection"),
    )
});

const DEFAULT_MODEL: &str = "yolox-nano";
const DEFAULT_SCORE_THRESHOLD: f64 = 0.4;
const DEFAULT_NMS_THRESHOLD: f64 = 0.45;
const DEFAULT_INFERENCE_WIDTH: u32 = 640;
const DEFAULT_INTERVAL: u32 = 1;
const DEFAULT_MIN_SIZE: u32 = 0;
const DEFAULT_TILE_OVERLAP: f64 = 0.25;
const DEFAULT_MAX_BATCH: u32 = 0;
const DEFAULT_BATCH_TIMEOUT_MS: u32 = 5;

#[derive(Debug, Clone)]
struct Settings {
    model: String,
    camera: Option<String>,
    score_threshold: f64,
    nms_threshold: f64,
    inference_width: u32,
    inference_height: u32,
    interval: u32,
    min_size: u32,
    tile_columns: u32,
    tile_rows: u32,
    tile_overlap: f64,
    execution_provider: ExecutionProvider,
    device_id: i32,
    max_batch: u32,
    batch_timeout_ms: u32,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: DEFAULT_MODEL.into(),
            camera: None,
            score_threshold: DEFAULT_SCORE_THRESHOLD,
            nms_threshold: DEFAULT_NMS_THRESHOLD,
            inference_width: DEFAULT_INFERENCE_WIDTH,
            inference_height: 0,
            interval: DEFAULT_INTERVAL,
            min_size: DEFAULT_MIN_SIZE,
            tile_columns: 1,
            tile_rows: 1,
            tile_overlap: DEFAULT_TILE_OVERLAP,
            execution_provider: ExecutionProvider::default(),
            device_id: 0,
            max_batch: DEFAULT_MAX_BATCH,
            batch_timeout_ms: DEFAULT_BATCH_TIMEOUT_MS,
            post_messages: true,
        }
    }
}

struct State {
    detector: PersonDetector,
    model_name: String,
    info: Option<gst_video::VideoInfo>,
    frames: u64,
    since_detect: u32,
    last: Vec<Detection>,
    inferences: u64,
}

#[derive(Default)]
pub struct PersonDetect {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for PersonDetect {
    const NAME: &'static str = "SightlinePersonDetect";
    type Type = super::PersonDetect;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for PersonDetect {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb("Person detector: a models.toml name (yolox-nano) or a path to an .onnx file, checked by sha256")
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
                    .blurb("Minimum person score (objectness x class, 0-1). 0.4 maximises F1 on the annotated PETS 2009 frames at 640 px (precision 0.81, recall 0.90; at 0.3: 0.77 / 0.91)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_SCORE_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("nms-threshold")
                    .nick("NMS threshold")
                    .blurb("IoU above which overlapping persons are merged (0-1)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_NMS_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("inference-width")
                    .nick("Inference width")
                    .blurb("Width of the image given to the model (aspect kept); 0 = from inference-height or the frame's own. YOLOX-nano recall on small people grows with it (MOT17: 0.44 at 416, 0.66 at 640, 0.78 at 1088)")
                    .maximum(8192)
                    .default_value(DEFAULT_INFERENCE_WIDTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("inference-height")
                    .nick("Inference height")
                    .blurb("Height of the image given to the model; 0 = derived from inference-width")
                    .maximum(8192)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Detect every N-th frame; frames in between carry the last persons")
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-size")
                    .nick("Minimum size")
                    .blurb("Drop persons whose shorter box side is below this many pixels")
                    .maximum(8192)
                    .default_value(DEFAULT_MIN_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("tile-columns")
                    .nick("Tile columns")
                    .blurb("Also detect on a grid of tile-columns x tile-rows tiles, each at the inference size, for small, far people (1 x 1 = whole frame only; costs one model run per tile)")
                    .minimum(1)
                    .maximum(8)
                    .default_value(1)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("tile-rows")
                    .nick("Tile rows")
                    .blurb("Rows of the tile grid (see tile-columns)")
                    .minimum(1)
                    .maximum(8)
                    .default_value(1)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("tile-overlap")
                    .nick("Tile overlap")
                    .blurb("Overlap of neighbouring tiles, as a fraction of the tile size (a person cut by one tile is whole in the next)")
                    .minimum(0.0)
                    .maximum(0.9)
                    .default_value(DEFAULT_TILE_OVERLAP)
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
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-batch")
                    .nick("Maximum batch")
                    .blurb("Largest batch the shared session forms from several cameras (same size); 0 = auto (1 on CPU, 8 on GPU)")
                    .maximum(64)
                    .default_value(DEFAULT_MAX_BATCH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("batch-timeout")
                    .nick("Batch timeout")
                    .blurb("Milliseconds the shared session waits for other cameras' frames to fill a batch")
                    .maximum(1000)
                    .default_value(DEFAULT_BATCH_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a persondetect message for every frame that ran detection")
                    .default_value(true)
                    .mutable_playing()
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
            "model" => s.model = string(value).unwrap_or_else(|| DEFAULT_MODEL.into()),
            "camera" => s.camera = string(value),
            "score-threshold" => s.score_threshold = value.get().unwrap_or(DEFAULT_SCORE_THRESHOLD),
            "nms-threshold" => s.nms_threshold = value.get().unwrap_or(DEFAULT_NMS_THRESHOLD),
            "inference-width" => s.inference_width = value.get().unwrap_or(DEFAULT_INFERENCE_WIDTH),
            "inference-height" => s.inference_height = value.get().unwrap_or(0),
            "interval" => s.interval = value.get().unwrap_or(DEFAULT_INTERVAL),
            "min-size" => s.min_size = value.get().unwrap_or(DEFAULT_MIN_SIZE),
            "tile-columns" => s.tile_columns = value.get().unwrap_or(1),
            "tile-rows" => s.tile_rows = value.get().unwrap_or(1),
            "tile-overlap" => s.tile_overlap = value.get().unwrap_or(DEFAULT_TILE_OVERLAP),
            "execution-provider" => s.execution_provider = value.get().unwrap_or_default(),
            "device-id" => s.device_id = value.get().unwrap_or(0),
            "max-batch" => s.max_batch = value.get().unwrap_or(DEFAULT_MAX_BATCH),
            "batch-timeout" => s.batch_timeout_ms = value.get().unwrap_or(DEFAULT_BATCH_TIMEOUT_MS),
            "post-messages" => s.post_messages = value.get().unwrap_or(true),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        match pspec.name() {
            "model" => s.model.to_value(),
            "camera" => s.camera.to_value(),
            "score-threshold" => s.score_threshold.to_value(),
            "nms-threshold" => s.nms_threshold.to_value(),
            "inference-width" => s.inference_width.to_value(),
            "inference-height" => s.inference_height.to_value(),
            "interval" => s.interval.to_value(),
            "min-size" => s.min_size.to_value(),
            "tile-columns" => s.tile_columns.to_value(),
            "tile-rows" => s.tile_rows.to_value(),
            "tile-overlap" => s.tile_overlap.to_value(),
            "execution-provider" => s.execution_provider.to_value(),
            "device-id" => s.device_id.to_value(),
            "max-batch" => s.max_batch.to_value(),
            "batch-timeout" => s.batch_timeout_ms.to_value(),
            "post-messages" => s.post_messages.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

impl GstObjectImpl for PersonDetect {}

impl ElementImpl for PersonDetect {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Sightline person detection",
                "Filter/Analyzer/Video",
                "Detects people (YOLOX-nano, ONNX Runtime) and attaches them as region-of-interest metas",
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

impl BaseTransformImpl for PersonDetect {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        let model = engine::resolve_model("person detection", &s.model, DEFAULT_MODEL)?;
        let opts = engine::engine_options(
            s.execution_provider.into(),
            s.device_id,
            s.max_batch,
            s.batch_timeout_ms,
        );
        let engine = engine::shared_engine(&model, &opts)?;
        let detector = PersonDetector::new(engine).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                (
                    "Model {} cannot be used by persondetect: {}",
                    model.path.display(),
                    e
                )
            )
        })?;
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
                last: Vec::new(),
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
        st.as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?
            .info = Some(info);
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        let camera = s
            .camera
            .clone()
            .unwrap_or_else(|| self.obj().name().to_string());
        let rt = buf.pts().and_then(|pts| {
            self.obj()
                .segment()
                .downcast_ref::<gst::ClockTime>()
                .and_then(|seg| seg.to_running_time(pts))
        });
        let mut guard = self.state.lock().map_err(|_| gst::FlowError::Error)?;
        let st = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = st.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let run = st.frames == 0 || st.since_detect + 1 >= s.interval.max(1);
        if run {
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
            let params = DetectParams {
                score_threshold: s.score_threshold as f32,
                nms_threshold: s.nms_threshold as f32,
                inference_width: s.inference_width,
                inference_height: s.inference_height,
                min_face_size: s.min_size as f32,
                // Measured for faces only (DEFAULT_MAX_UPSCALE); persons keep the scale
                // their inference size asks for.
                max_upscale: f32::MAX,
            };
            let found = if s.tile_columns * s.tile_rows > 1 {
                let tiles = tile_rects(
                    img.width,
                    img.height,
                    s.tile_columns,
                    s.tile_rows,
                    s.tile_overlap as f32,
                );
                st.detector.detect_tiled(&img, &params, &tiles)
            } else {
                st.detector.detect(&img, &params)
            };
            st.last = found.map_err(|e| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("Person detection failed: {}", e)
                );
                gst::FlowError::Error
            })?;
            st.since_detect = 0;
            st.inferences += 1;
        } else {
            st.since_detect += 1;
        }
        st.frames += 1;
        let (w, h) = (info.width(), info.height());
        for d in &st.last {
            meta::add_detection(buf, meta::ROI_PERSON, d, w, h, "person", 0, &st.model_name);
        }
        let msg = (run && s.post_messages).then(|| {
            let persons = gst::List::new(st.last.iter().map(|d| {
                let (x, y, pw, ph) = meta::pixel_rect(d, w, h);
                gst::Structure::builder("person")
                    .field("x", x)
                    .field("y", y)
                    .field("width", pw)
                    .field("height", ph)
                    .field("confidence", d.score as f64)
                    .build()
            }));
            gst::Structure::builder("persondetect")
                .field("camera", camera.as_str())
                .field("running-time", rt.map_or(0, |t| t.nseconds()))
                .field("utc-time", utc_now())
                .field("frame", st.frames - 1)
                .field("model", st.model_name.as_str())
                .field("persons", persons)
                .build()
        });
        drop(guard);
        if let Some(m) = msg {
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(m).src(&*self.obj()).build());
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
