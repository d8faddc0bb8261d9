use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use sightline_core::glue::engine;

use sightline_core::detect::FaceDetector;
use sightline_core::embed::FaceEmbedder;
use sightline_core::enroll::gallery_from_directory;
use sightline_core::events::utc_now;
use sightline_core::gallery::Gallery;
use sightline_core::inference::{Engine, EngineOptions};
use sightline_core::meta;
use sightline_core::models::{self, DecoderKind};
use sightline_core::postprocess::Detection;
use sightline_core::quality;
use sightline_core::recognition::{self, Absorbed, FaceTrack, Policy};
use sightline_core::redis_store::{self, Subscription, redact};
use sightline_core::track::Tracker;
use sightline_core::unknown::{Assignment, IN_FRAME_WAIT, UnknownRegistry, shared_registry};
use sightline_core::video::{ANALYSIS_FORMATS, caps_for, filter_pad_templates, image_view};
use sightline_core::watch::{DEFAULT_POLL, Watcher, watch};

use super::ExecutionProvider;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::{Duration, Instant};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "facematch",
        gst::DebugColorFlags::empty(),
        Some("Sightline face recognition"),
    )
});

const DEFAULT_MODEL: &str = "mobilefacenet";
const DEFAULT_THRESHOLD: f64 = -1.0;
const DEFAULT_REEMBED_INTERVAL: u32 = 10;
const DEFAULT_MIN_FACE_SIZE: u32 = 32;
const DEFAULT_MIN_QUALITY: f64 = 0.1;
const DEFAULT_ATTACH_EMBEDDING: bool = false;
const DEFAULT_POST_EMBEDDING: bool = false;
const DEFAULT_DEVICE_ID: i32 = 0;
const DEFAULT_MAX_BATCH: u32 = 0;
const DEFAULT_BATCH_TIMEOUT_MS: u32 = 5;
const DEFAULT_POST_MESSAGES: bool = true;
const DEFAULT_UNKNOWN_TTL: f64 = 600.0;
const DEFAULT_GALLERY_KEY: &str = "sightline:gallery";
/// Frames a track may go unseen before it closes.
const TRACK_MAX_MISSED: u32 = 15;

#[derive(Debug, Clone)]
struct Settings {
    model: String,
    gallery: Option<String>,
    redis_url: Option<String>,
    gallery_key: String,
    threshold: f64,
    reembed_interval: u32,
    min_face_size: u32,
    min_quality: f64,
    attach_embedding: bool,
    post_embedding: bool,
    execution_provider: ExecutionProvider,
    device_id: i32,
    max_batch: u32,
    batch_timeout_ms: u32,
    camera: Option<String>,
    unknown_ttl: f64,
    post_messages: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: DEFAULT_MODEL.to_string(),
            gallery: None,
            redis_url: None,
            gallery_key: DEFAULT_GALLERY_KEY.to_string(),
            threshold: DEFAULT_THRESHOLD,
            reembed_interval: DEFAULT_REEMBED_INTERVAL,
            min_face_size: DEFAULT_MIN_FACE_SIZE,
            min_quality: DEFAULT_MIN_QUALITY,
            attach_embedding: DEFAULT_ATTACH_EMBEDDING,
            post_embedding: DEFAULT_POST_EMBEDDING,
            execution_provider: ExecutionProvider::default(),
            device_id: DEFAULT_DEVICE_ID,
            max_batch: DEFAULT_MAX_BATCH,
            batch_timeout_ms: DEFAULT_BATCH_TIMEOUT_MS,
            camera: None,
            unknown_ttl: DEFAULT_UNKNOWN_TTL,
            post_messages: DEFAULT_POST_MESSAGES,
        }
    }
}

/// The local gallery (file or directory), the shared one (Redis) and their union, which is
/// what matching uses. Watchers replace a part and recombine; the streaming thread only ever
/// clones the `combined` Arc.
struct Galleries {
    local: RwLock<Arc<Gallery>>,
    remote: RwLock<Arc<Gallery>>,
    combined: RwLock<Arc<Gallery>>,
}

impl Galleries {
    fn new(local: Gallery, remote: Gallery) -> Self {
        let g = Galleries {
            local: RwLock::new(Arc::new(local)),
            remote: RwLock::new(Arc::new(remote)),
            combined: RwLock::new(Arc::new(Gallery::default())),
        };
        g.recombine();
        g
    }

    fn recombine(&self) -> usize {
        let (Ok(l), Ok(r)) = (self.local.read(), self.remote.read()) else {
            return 0;
        };
        let mut c = (**l).clone();
        let _ = c.merge(&r);
        let n = c.len();
        if let Ok(mut cur) = self.combined.write() {
            *cur = Arc::new(c);
        }
        n
    }

    fn current(&self) -> Option<Arc<Gallery>> {
        self.combined.read().ok().map(|g| g.clone())
    }
}

struct State {
    embedder: FaceEmbedder,
    gallery: Arc<Galleries>,
    /// The gallery the current decisions were made against.
    decided_with: Arc<Gallery>,
    _watcher: Option<Watcher>,
    _subscription: Option<Subscription>,
    tracker: Tracker<FaceTrack>,
    unknowns: Arc<Mutex<UnknownRegistry>>,
    threshold: f32,
    info: Option<gst_video::VideoInfo>,
    frames: u64,
    started: Instant,
    embeddings: u64,
}

#[derive(Default)]
pub struct FaceMatch {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

/// Loads a gallery from `source` (file or directory; empty = an empty gallery) for `emb`'s
/// model. Returns it and the photos a directory gallery had to skip.
fn load_gallery(
    source: Option<&str>,
    model: &str,
    dims: usize,
    emb: Option<&FaceEmbedder>,
) -> Result<(Gallery, Vec<String>), String> {
    let Some(src) = source.filter(|s| !s.is_empty()) else {
        return Ok((Gallery::new(model, dims), Vec::new()));
    };
    let path = Path::new(src);
    if path.is_dir() {
        let det_model = models::resolve("yunet-n", "yunet-n").map_err(|e| e.to_string())?;
        let engine =
            Engine::shared(&det_model, &EngineOptions::default()).map_err(|e| e.to_string())?;
        let mut det = FaceDetector::new(engine).map_err(|e| e.to_string())?;
        let owned;
        let emb = match emb {
            Some(e) => e,
            None => {
                let m = models::resolve(model, model).map_err(|e| e.to_string())?;
                owned = FaceEmbedder::new(
                    Engine::shared(&m, &EngineOptions::default()).map_err(|e| e.to_string())?,
                )
                .map_err(|e| e.to_string())?;
                &owned
            }
        };
        return gallery_from_directory(path, &mut det, emb);
    }
    let g = Gallery::load(path).map_err(|e| e.to_string())?;
    g.expect_model(model, dims)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((g, Vec::new()))
}

impl FaceMatch {
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
        self.obj()
            .segment()
            .downcast_ref::<gst::ClockTime>()
            .and_then(|s| s.to_running_time(pts))
    }

    /// Starts watching the gallery source; changes are loaded on the watcher thread and
    /// swapped in atomically (the streaming thread never waits for a reload).
    fn watch_gallery(
        &self,
        source: &str,
        model: String,
        dims: usize,
        slots: Arc<Galleries>,
    ) -> Watcher {
        let weak = self.obj().downgrade();
        let weak_panic = weak.clone();
        let src = source.to_string();
        let on_panic = move |why: String| {
            if let Some(obj) = weak_panic.upgrade() {
                gst::element_warning!(
                    obj,
                    gst::CoreError::Failed,
                    ("The gallery is no longer reloaded when it changes: {}", why)
                );
            }
        };
        let on_change = move || {
            let Some(obj) = weak.upgrade() else { return };
            let imp = obj.imp();
            match load_gallery(Some(&src), &model, dims, None) {
                Ok((g, skipped)) => {
                    for s in skipped {
                        gst::warning!(CAT, obj = obj, "gallery photo skipped: {s}");
                    }
                    if let Ok(mut cur) = slots.local.write() {
                        *cur = Arc::new(g);
                    }
                    let n = slots.recombine();
                    gst::info!(CAT, obj = obj, "gallery {src} reloaded: {n} identities");
                    imp.post(
                        gst::Structure::builder("facematch-gallery")
                            .field("camera", imp.camera())
                            .field("source", src.as_str())
                            .field("identities", n as u32)
                            .field("utc-time", utc_now())
                            .build(),
                    );
                }
                Err(e) => {
                    gst::element_warning!(
                        obj,
                        gst::ResourceError::Read,
                        (
                            "Gallery {} changed but cannot be loaded; keeping the previous one",
                            src
                        ),
                        ["{}", e]
                    );
                }
            }
        };
        watch(PathBuf::from(source), DEFAULT_POLL, on_change, on_panic)
    }
}

impl FaceMatch {
    /// Follows the shared gallery in Redis: reloads on every announcement and after every
    /// reconnection.
    fn subscribe_gallery(
        &self,
        url: &str,
        key: &str,
        model: String,
        dims: usize,
        slots: Arc<Galleries>,
    ) -> Subscription {
        let weak = self.obj().downgrade();
        let weak_err = weak.clone();
        let (u, k) = (url.to_string(), key.to_string());
        redis_store::subscribe_updates(
            url,
            key,
            move || {
                let Some(obj) = weak.upgrade() else { return };
                match redis_store::pull_gallery(&u, &k, &model, dims) {
                    Ok(g) => {
                        if let Ok(mut cur) = slots.remote.write() {
                            *cur = Arc::new(g);
                        }
                        let n = slots.recombine();
                        gst::info!(
                            CAT,
                            obj = obj,
                            "shared gallery {k} reloaded: {n} identities"
                        );
                        let imp = obj.imp();
                        imp.post(
                            gst::Structure::builder("facematch-gallery")
                                .field("camera", imp.camera())
                                .field("source", format!("redis:{k}"))
                                .field("identities", n as u32)
                                .field("utc-time", utc_now())
                                .build(),
                        );
                    }
                    Err(e) => gst::element_warning!(
                        obj,
                        gst::ResourceError::Read,
                        ("Shared gallery {} cannot be loaded", k),
                        ["{}", e]
                    ),
                }
            },
            move |e| {
                if let Some(obj) = weak_err.upgrade() {
                    gst::element_warning!(
                        obj,
                        gst::ResourceError::OpenRead,
                        ("Shared gallery unavailable, retrying: {}", e)
                    );
                }
            },
        )
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FaceMatch {
    const NAME: &'static str = "SightlineFaceMatch";
    type Type = super::FaceMatch;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for FaceMatch {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Embedding model")
                    .blurb("Face embedding model: mobilefacenet (192-d, default) or w600k-mbf (512-d, better on small faces, InsightFace licence: NON-COMMERCIAL research use only), or a path")
                    .default_value(Some(DEFAULT_MODEL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("gallery")
                    .nick("Gallery")
                    .blurb("Gallery file written by `sightline gallery`, or a directory GALLERY/<name>/*.jpg|png enrolled at start; reloaded when it changes; unset = empty gallery (everyone is unknown)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("redis-url")
                    .nick("Redis URL")
                    .blurb("redis:// or rediss:// URL (with the node's own ACL user/password) of a gallery shared by several nodes")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("gallery-key")
                    .nick("Gallery key")
                    .blurb("Redis key of the shared gallery (its updates are announced on channel <key>:updates)")
                    .default_value(Some(DEFAULT_GALLERY_KEY))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("threshold")
                    .nick("Threshold")
                    .blurb("Cosine similarity at or above which a face is the gallery identity; -1 = the model's calibrated default (mobilefacenet 0.48, w600k-mbf 0.30: FAR 0.1 % per pair on the shared face sets)")
                    .minimum(-1.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("reembed-interval")
                    .nick("Re-embed interval")
                    .blurb("Re-embed a tracked face at most every N frames (sooner when its quality improves by 25 %)")
                    .minimum(1)
                    .maximum(100_000)
                    .default_value(DEFAULT_REEMBED_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-face-size")
                    .nick("Minimum face size")
                    .blurb("Faces whose shorter side is below this many pixels are tracked but not recognised (MobileFaceNet rank-1 falls from 0.95 at 28 px to 0.70 at 20 px)")
                    .maximum(4096)
                    .default_value(DEFAULT_MIN_FACE_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("min-quality")
                    .nick("Minimum quality")
                    .blurb("Faces whose quality (size x sharpness x frontality, 0-1) is below this are not embedded")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_MIN_QUALITY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("post-embedding")
                    .nick("Post embedding")
                    .blurb("Add the decision's embedding to the facematch message (`embedding`: int8 of the L2-normalised vector, base64) for the history's search by photo (sightline run --history-embeddings); off: no embedding leaves the element")
                    .default_value(DEFAULT_POST_EMBEDDING)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("attach-embedding")
                    .nick("Attach embedding")
                    .blurb("Add the track's embedding (L2-normalised, F32LE bytes) as an `embedding` param to each face ROI")
                    .default_value(DEFAULT_ATTACH_EMBEDDING)
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
                    .blurb("Largest batch of face crops the shared session forms across cameras; 0 = auto (1 on CPU, 8 on GPU); the faces of one frame always go in one run")
                    .maximum(64)
                    .default_value(DEFAULT_MAX_BATCH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("batch-timeout")
                    .nick("Batch timeout")
                    .blurb("Milliseconds the shared session waits for other cameras' faces to fill a batch")
                    .maximum(1000)
                    .default_value(DEFAULT_BATCH_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("camera")
                    .nick("Camera")
                    .blurb("Camera name carried by messages and events (default: the element name)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("unknown-ttl")
                    .nick("Unknown TTL")
                    .blurb("Seconds an unknown face's temporary id is remembered after it was last seen")
                    .minimum(1.0)
                    .maximum(86_400.0)
                    .default_value(DEFAULT_UNKNOWN_TTL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a facematch message when a track's identity is decided or changes")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("embeddings")
                    .nick("Embeddings")
                    .blurb("Number of face embeddings computed since start (read-only)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("identities")
                    .nick("Identities")
                    .blurb("Number of identities in the gallery in use (read-only)")
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
        let string = |v: &glib::Value| {
            v.get::<Option<String>>()
                .ok()
                .flatten()
                .filter(|x| !x.is_empty())
        };
        match pspec.name() {
            "model" => s.model = string(value).unwrap_or_else(|| DEFAULT_MODEL.to_string()),
            "gallery" => s.gallery = string(value),
            "redis-url" => s.redis_url = string(value),
            "gallery-key" => {
                s.gallery_key = string(value).unwrap_or_else(|| DEFAULT_GALLERY_KEY.to_string())
            }
            "threshold" => s.threshold = value.get().unwrap_or(DEFAULT_THRESHOLD),
            "reembed-interval" => {
                s.reembed_interval = value.get().unwrap_or(DEFAULT_REEMBED_INTERVAL)
            }
            "min-face-size" => s.min_face_size = value.get().unwrap_or(DEFAULT_MIN_FACE_SIZE),
            "min-quality" => s.min_quality = value.get().unwrap_or(DEFAULT_MIN_QUALITY),
            "post-embedding" => s.post_embedding = value.get().unwrap_or(DEFAULT_POST_EMBEDDING),
            "attach-embedding" => {
                s.attach_embedding = value.get().unwrap_or(DEFAULT_ATTACH_EMBEDDING)
            }
            "execution-provider" => s.execution_provider = value.get().unwrap_or_default(),
            "device-id" => s.device_id = value.get().unwrap_or(DEFAULT_DEVICE_ID),
            "max-batch" => s.max_batch = value.get().unwrap_or(DEFAULT_MAX_BATCH),
            "batch-timeout" => s.batch_timeout_ms = value.get().unwrap_or(DEFAULT_BATCH_TIMEOUT_MS),
            "camera" => s.camera = string(value),
            "unknown-ttl" => s.unknown_ttl = value.get().unwrap_or(DEFAULT_UNKNOWN_TTL),
            "post-messages" => s.post_messages = value.get().unwrap_or(DEFAULT_POST_MESSAGES),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
        if pspec.name() == "threshold"
            && let Ok(mut st) = self.state.lock()
            && let Some(st) = st.as_mut()
            && s.threshold >= 0.0
        {
            st.threshold = s.threshold as f32;
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "embeddings" => {
                return self
                    .state
                    .lock()
                    .ok()
                    .and_then(|s| s.as_ref().map(|s| s.embeddings))
                    .unwrap_or(0)
                    .to_value();
            }
            "identities" => {
                return self
                    .state
                    .lock()
                    .ok()
                    .and_then(|s| {
                        s.as_ref()
                            .and_then(|s| s.gallery.current().map(|g| g.len() as u32))
                    })
                    .unwrap_or(0)
                    .to_value();
            }
            _ => {}
        }
        let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        match pspec.name() {
            "model" => s.model.to_value(),
            "gallery" => s.gallery.to_value(),
            // Read back without its secrets.
            "redis-url" => s
                .redis_url
                .as_deref()
                .map(sightline_core::secrets::redact_url)
                .to_value(),
            "gallery-key" => s.gallery_key.to_value(),
            "threshold" => s.threshold.to_value(),
            "reembed-interval" => s.reembed_interval.to_value(),
            "min-face-size" => s.min_face_size.to_value(),
            "min-quality" => s.min_quality.to_value(),
            "attach-embedding" => s.attach_embedding.to_value(),
            "post-embedding" => s.post_embedding.to_value(),
            "execution-provider" => s.execution_provider.to_value(),
            "device-id" => s.device_id.to_value(),
            "max-batch" => s.max_batch.to_value(),
            "batch-timeout" => s.batch_timeout_ms.to_value(),
            "camera" => s.camera.to_value(),
            "unknown-ttl" => s.unknown_ttl.to_value(),
            "post-messages" => s.post_messages.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

impl GstObjectImpl for FaceMatch {}

impl ElementImpl for FaceMatch {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Sightline face recognition",
                "Filter/Analyzer/Video",
                "Recognises the faces found by facedetect against an enrolled gallery (aligned embeddings, per-camera tracks, stable ids for strangers)",
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

impl BaseTransformImpl for FaceMatch {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let mut s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        sightline_core::props::resolve_secret("redis-url", &mut s.redis_url)?;
        let model = engine::resolve_model("face embedding", &s.model, DEFAULT_MODEL)?;
        if model.spec.output.decoder != DecoderKind::Embedding
            || model.spec.role != "face-embedding"
        {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                [
                    "Model {} is a {}, facematch needs a face-embedding model (mobilefacenet, w600k-mbf)",
                    model.spec.name,
                    model.spec.role
                ]
            ));
        }
        if !model.spec.commercial {
            gst::warning!(
                CAT,
                imp = self,
                "model {}: {}",
                model.spec.name,
                model.spec.licence
            );
        }
        let opts = engine::engine_options(
            s.execution_provider.into(),
            s.device_id,
            s.max_batch,
            s.batch_timeout_ms,
        );
        let engine = engine::shared_engine(&model, &opts)?;
        let embedder = FaceEmbedder::new(engine).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::Settings,
                [
                    "Model {} cannot be used by facematch: {}",
                    model.path.display(),
                    e
                ]
            )
        })?;
        let (model_name, dims) = (embedder.model_name().to_string(), embedder.dims());
        let (gallery, skipped) =
            load_gallery(s.gallery.as_deref(), &model_name, dims, Some(&embedder)).map_err(
                |e| {
                    gst::error_msg!(
                        gst::ResourceError::OpenRead,
                        [
                            "Cannot load gallery {}: {}",
                            s.gallery.as_deref().unwrap_or(""),
                            e
                        ]
                    )
                },
            )?;
        for sk in &skipped {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Read,
                ("Gallery photo skipped: {}", sk)
            );
        }
        // The shared gallery: a node that cannot reach Redis at start runs with its local
        // gallery and picks the shared one up when Redis answers.
        let remote = match &s.redis_url {
            Some(url) => match redis_store::pull_gallery(url, &s.gallery_key, &model_name, dims) {
                Ok(g) => g,
                Err(e) => {
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::OpenRead,
                        (
                            "Shared gallery in Redis unavailable at start; running with the local gallery ({} identities) and retrying",
                            gallery.len()
                        ),
                        ["{}", e]
                    );
                    Gallery::new(&model_name, dims)
                }
            },
            None => Gallery::new(&model_name, dims),
        };
        let slots = Arc::new(Galleries::new(gallery, remote));
        let gallery = slots.current().unwrap_or_default();
        gst::info!(
            CAT,
            imp = self,
            "gallery: {} identities, model {model_name}",
            gallery.len()
        );
        let watcher = s
            .gallery
            .as_deref()
            .map(|src| self.watch_gallery(src, model_name.clone(), dims, slots.clone()));
        let subscription = s.redis_url.as_deref().map(|url| {
            self.subscribe_gallery(url, &s.gallery_key, model_name.clone(), dims, slots.clone())
        });
        if let Some(url) = &s.redis_url {
            gst::info!(
                CAT,
                imp = self,
                "following shared gallery {} at {}",
                s.gallery_key,
                redact(url)
            );
        }
        let threshold = if s.threshold >= 0.0 {
            s.threshold as f32
        } else {
            model.spec.output.match_threshold.unwrap_or(0.5)
        };
        let unknowns = shared_registry(
            &model_name,
            "unknown-",
            Duration::from_secs_f64(s.unknown_ttl),
            s.redis_url
                .as_deref()
                .map(|url| (url, s.gallery_key.as_str())),
        );
        // Strangers are shared by every node following the same key.
        let joined = unknowns.lock().ok().and_then(|mut u| {
            u.join(
                &self.obj().name(),
                Duration::from_secs_f64(s.unknown_ttl),
                s.redis_url
                    .as_deref()
                    .map(|url| (url, s.gallery_key.as_str())),
            )
        });
        if let Some(w) = joined {
            gst::element_imp_warning!(self, gst::CoreError::Negotiation, ("{}", w));
        }
        *self
            .state
            .lock()
            .map_err(|_| gst::error_msg!(gst::CoreError::Failed, ["state lock poisoned"]))? =
            Some(State {
                embedder,
                gallery: slots,
                decided_with: gallery,
                _watcher: watcher,
                _subscription: subscription,
                tracker: Tracker::new(0.3, TRACK_MAX_MISSED),
                unknowns,
                threshold,
                info: None,
                frames: 0,
                started: Instant::now(),
                embeddings: 0,
            });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Ok(mut st) = self.state.lock() {
            *st = None;
        }
        Ok(())
    }

    /// A flush (seek) or a new stream ends every track: the next frame is not a continuation
    /// of the last one, and a face at the same place may be someone else.
    fn sink_event(&self, event: gst::Event) -> bool {
        if matches!(
            event.view(),
            gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_)
        ) && let Ok(mut st) = self.state.lock()
            && let Some(st) = st.as_mut()
        {
            st.tracker.reset();
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
        let camera = self.camera();
        let rt = self.running_time(buf);
        let mut guard = self.state.lock().map_err(|_| gst::FlowError::Error)?;
        let st = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = st.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        let ts_ns = rt
            .map(|t| t.nseconds())
            .unwrap_or_else(|| st.started.elapsed().as_nanos() as u64);
        let frame_no = st.frames;
        st.frames += 1;

        // The faces facedetect found, with their landmarks.
        let faces: Vec<(i32, Detection)> = meta::read_rois(buf)
            .into_iter()
            .filter(|r| r.roi_type == meta::ROI_FACE)
            .filter_map(|r| {
                let lm = r.landmarks?;
                let (x, y, w, h) = r.rect;
                Some((
                    r.id,
                    Detection {
                        x1: x as f32,
                        y1: y as f32,
                        x2: (x + w) as f32,
                        y2: (y + h) as f32,
                        score: r.confidence.unwrap_or(1.0) as f32,
                        landmarks: Some(lm),
                        class_id: 0,
                    },
                ))
            })
            .collect();
        let boxes: Vec<[f32; 4]> = faces
            .iter()
            .map(|(_, d)| [d.x1, d.y1, d.x2, d.y2])
            .collect();
        let (assign, _closed) = st.tracker.update(&boxes, ts_ns, FaceTrack::default);

        // Which faces to embed: new tracks, due tracks, and faces clearly better than before.
        let policy = Policy {
            min_face_size: s.min_face_size as f32,
            min_quality: s.min_quality as f32,
            reembed_interval: s.reembed_interval as u64,
            threshold: st.threshold,
        };
        let mut chosen: Vec<(usize, [[f32; 2]; 5], f32)> = Vec::new();
        if !faces.is_empty() {
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
            for (k, (_, d)) in faces.iter().enumerate() {
                if !policy.big_enough(d.width().min(d.height())) {
                    continue;
                }
                let q = quality::assess(&img, d);
                let due = policy.due(&st.tracker.tracks[assign[k]].data, q.score, frame_no);
                if due && let Some(lm) = d.landmarks {
                    chosen.push((k, lm, q.score));
                }
            }
            if !chosen.is_empty() {
                let lms: Vec<[[f32; 2]; 5]> = chosen.iter().map(|c| c.1).collect();
                let vecs = st.embedder.embed(&img, &lms).map_err(|e| {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Failed,
                        ("Face embedding failed: {}", e)
                    );
                    gst::FlowError::Error
                })?;
                engine::warn_if_refused(&*self.obj(), "Face embedding", st.embedder.engine());
                st.embeddings += vecs.len() as u64;
                for ((k, _, q), v) in chosen.iter().zip(vecs) {
                    // The box was matched by position, but the face is someone else's (people
                    // crossing, a cut): a new track, decided afresh.
                    let ti = assign[*k];
                    let track = &mut st.tracker.tracks[ti];
                    if track.data.absorb(&v, *q, frame_no, st.threshold) == Absorbed::NewPerson {
                        let old = track.id;
                        let new = st.tracker.renew_id(ti).unwrap_or(old);
                        gst::debug!(
                            CAT,
                            imp = self,
                            "track {old}: appearance changed, now track {new}"
                        );
                    }
                }
            }
        }

        // Decide: tracks with a new embedding, or every track when the gallery was reloaded.
        let gallery = st.gallery.current().ok_or(gst::FlowError::Error)?;
        let reloaded = !Arc::ptr_eq(&gallery, &st.decided_with);
        st.decided_with = gallery.clone();
        let mut changes = Vec::new();
        let mut remote_errors = Vec::new();
        let embedded: Vec<usize> = chosen.iter().map(|c| assign[c.0]).collect();
        for (ti, t) in st.tracker.tracks.iter_mut().enumerate() {
            let waiting = t.data.pending_unknown.is_some();
            if t.data.embeds == 0 || !(reloaded || waiting || embedded.contains(&ti)) {
                continue;
            }
            let rec = match policy.known(gallery.best_match(&t.data.mean)) {
                Ok(rec) => rec,
                Err(best_similarity) => {
                    let uid = match t.data.unknown_id() {
                        // Keep a stranger's id while the track lasts.
                        Some(u) => Some(u.to_string()),
                        None => {
                            let id = match t.data.pending_unknown {
                                Some(ticket) => st
                                    .unknowns
                                    .lock()
                                    .ok()
                                    .and_then(|mut u| u.poll(ticket, Instant::now())),
                                None => match UnknownRegistry::assign_within(
                                    &st.unknowns,
                                    &t.data.mean,
                                    st.threshold,
                                    IN_FRAME_WAIT,
                                ) {
                                    Assignment::Known(id) => Some(id),
                                    Assignment::Pending(ticket) => {
                                        t.data.pending_unknown = Some(ticket);
                                        None
                                    }
                                },
                            };
                            if id.is_some() {
                                t.data.pending_unknown = None;
                            }
                            if let Some(e) = st
                                .unknowns
                                .lock()
                                .ok()
                                .and_then(|mut u| u.take_remote_error())
                            {
                                remote_errors.push(e);
                            }
                            id
                        }
                    };
                    // Undecided until the registry answers (a frame or two; bounded).
                    let Some(uid) = uid else { continue };
                    recognition::unknown(&uid, best_similarity)
                }
            };
            if let Some(previous) = t.data.decide(rec.clone()) {
                changes.push((
                    t.id,
                    rec,
                    previous,
                    t.bbox,
                    s.post_embedding
                        .then(|| sightline_core::history::rows::encode_embedding(&t.data.mean)),
                ));
            }
        }

        // Params on each face ROI.
        let model_name = st.embedder.model_name().to_string();
        for (k, (roi_id, _)) in faces.iter().enumerate() {
            let t = &st.tracker.tracks[assign[k]];
            let mut extra = Vec::new();
            if s.attach_embedding && t.data.embeds > 0 {
                extra.push(meta::embedding_param(&t.data.mean, &model_name));
            }
            let tracked = meta::Tracked {
                id: t.id,
                first_seen_ns: t.first_seen_ns,
                last_seen_ns: t.last_seen_ns,
                global_id: None,
            };
            meta::annotate(buf, *roi_id, &tracked, t.data.decision.as_ref(), extra);
        }
        drop(guard);
        for e in remote_errors {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Read,
                (
                    "Unknown ids are local while Redis is unavailable (shared again when it is back): {}",
                    e
                )
            );
        }
        if s.post_messages {
            for (track, rec, previous, b, embedding) in changes {
                gst::debug!(
                    CAT,
                    imp = self,
                    "{camera}: track {track} is {} ({:.3})",
                    rec.label,
                    rec.similarity
                );
                let mut m = gst::Structure::builder("facematch")
                    .field("camera", camera.as_str())
                    .field("track-id", track)
                    .field("label", rec.label.as_str())
                    .field("identity", rec.identity.as_str())
                    .field("similarity", rec.similarity)
                    .field("unknown-id", rec.unknown_id.as_str())
                    .field("previous-label", previous.as_str())
                    .field("model", model_name.as_str())
                    .field("x", b[0].max(0.0).round() as u32)
                    .field("y", b[1].max(0.0).round() as u32)
                    .field("width", (b[2] - b[0]).max(0.0).round() as u32)
                    .field("height", (b[3] - b[1]).max(0.0).round() as u32)
                    .field("running-time", ts_ns)
                    .field("utc-time", utc_now())
                    .build();
                if let Some(e) = embedding {
                    m.set("embedding", e);
                }
                self.post(m);
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
