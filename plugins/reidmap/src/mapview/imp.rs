use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;

use sightline_core::draw::{Canvas, Rgb};
use sightline_core::mapstate::{MapConfig, MapState, shared_map};
use sightline_core::mapsync::MapSync;
use sightline_core::preprocess::{SrcRect, TensorTarget, resize_into};

use std::sync::{Arc, LazyLock, Mutex};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "mapview",
        gst::DebugColorFlags::empty(),
        Some("Sightline floor map video"),
    )
});

#[derive(Debug, Clone)]
struct Settings {
    map: String,
    width: u32,
    height: u32,
    fps: u32,
    extent: [f64; 4],
    floor_plan: Option<String>,
    trail_seconds: f64,
    hide_after_seconds: f64,
    is_live: bool,
    redis_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            map: "map".into(),
            width: 640,
            height: 480,
            fps: 10,
            extent: [0.0, 0.0, 20.0, 15.0],
            floor_plan: None,
            trail_seconds: 10.0,
            hide_after_seconds: 5.0,
            is_live: true,
            redis_url: None,
        }
    }
}

struct State {
    map: Arc<Mutex<MapState>>,
    /// The background, packed RGBx of the output size.
    background: Vec<u8>,
    frame: u64,
    sync: Option<Arc<MapSync>>,
}

#[derive(Default)]
pub struct MapView {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

const PALETTE: [Rgb; 8] = [
    [230, 25, 75],
    [60, 180, 75],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
    [128, 128, 0],
];

/// The colour of a global id.
pub fn colour_of(id: u64) -> Rgb {
    PALETTE[(id as usize) % PALETTE.len()]
}

/// Map coordinates to output pixels (y up on the map, down in the image).
fn to_px(s: &Settings, x: f64, y: f64) -> (f64, f64) {
    let [x0, y0, x1, y1] = s.extent;
    (
        (x - x0) / (x1 - x0) * s.width as f64,
        (y1 - y) / (y1 - y0) * s.height as f64,
    )
}

fn canvas<'a>(data: &'a mut [u8], s: &Settings) -> Canvas<'a> {
    Canvas {
        data,
        stride: s.width as usize * 4,
        width: s.width as usize,
        height: s.height as usize,
        bpp: 4,
        off: [0, 1, 2],
    }
}

/// A metric grid: a line every map unit, a darker one every 5.
fn grid(s: &Settings) -> Vec<u8> {
    let mut data = vec![0u8; (s.width * s.height * 4) as usize];
    let mut c = canvas(&mut data, s);
    c.fill_rect(0, 0, s.width as i64, s.height as i64, [245, 245, 240]);
    let [x0, y0, x1, y1] = s.extent;
    for k in (x0.ceil() as i64)..=(x1.floor() as i64) {
        let (px, _) = to_px(s, k as f64, y0);
        let col = if k % 5 == 0 {
            [170, 170, 170]
        } else {
            [220, 220, 215]
        };
        c.fill_rect(px as i64, 0, 1, s.height as i64, col);
    }
    for k in (y0.ceil() as i64)..=(y1.floor() as i64) {
        let (_, py) = to_px(s, x0, k as f64);
        let col = if k % 5 == 0 {
            [170, 170, 170]
        } else {
            [220, 220, 215]
        };
        c.fill_rect(0, py as i64, s.width as i64, 1, col);
    }
    data
}

/// The floor plan image scaled to the output (it covers the map extent).
fn floor_plan(path: &str, s: &Settings) -> Result<Vec<u8>, String> {
    let img = sightline_core::video::decode_image(std::path::Path::new(path))?;
    let view = img.view().map_err(|e| e.to_string())?;
    let (w, h) = (s.width as usize, s.height as usize);
    let t = TensorTarget {
        width: w,
        height: h,
        color: sightline_core::models::ColorOrder::Rgb,
        mean: [0.0; 3],
        std: [1.0; 3],
        pad_value: 0.0,
    };
    let mut planar = vec![0f32; t.len()];
    resize_into(
        &view,
        SrcRect {
            x: 0.0,
            y: 0.0,
            w: img.width as f32,
            h: img.height as f32,
        },
        w,
        h,
        &t,
        &mut planar,
    );
    let n = w * h;
    let mut out = vec![255u8; n * 4];
    for i in 0..n {
        for c in 0..3 {
            out[i * 4 + c] = planar[c * n + i].round().clamp(0.0, 255.0) as u8;
        }
    }
    Ok(out)
}

#[glib::object_subclass]
impl ObjectSubclass for MapView {
    const NAME: &'static str = "SightlineMapView";
    type Type = super::MapView;
    type ParentType = gst_base::PushSrc;
}

impl ObjectImpl for MapView {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Settings::default();
            let coord = |name: &'static str, blurb: &'static str, v: f64| {
                glib::ParamSpecDouble::builder(name)
                    .nick(name)
                    .blurb(blurb)
                    .minimum(-1e7)
                    .maximum(1e7)
                    .default_value(v)
                    .mutable_ready()
                    .build()
            };
            vec![
                glib::ParamSpecString::builder("map").nick("Map").blurb("Name of the map whose people are drawn (the map property of reidmap)").default_value(Some("map")).mutable_ready().build(),
                glib::ParamSpecUInt::builder("width").nick("Width").blurb("Output width, pixels").minimum(64).maximum(8192).default_value(d.width).mutable_ready().build(),
                glib::ParamSpecUInt::builder("height").nick("Height").blurb("Output height, pixels").minimum(64).maximum(8192).default_value(d.height).mutable_ready().build(),
                glib::ParamSpecUInt::builder("fps").nick("Frames per second").blurb("Output frame rate").minimum(1).maximum(120).default_value(d.fps).mutable_ready().build(),
                coord("min-x", "Left edge of the map area shown (map units)", d.extent[0]),
                coord("min-y", "Bottom edge of the map area shown (map units)", d.extent[1]),
                coord("max-x", "Right edge of the map area shown (map units)", d.extent[2]),
                coord("max-y", "Top edge of the map area shown (map units)", d.extent[3]),
                glib::ParamSpecString::builder("floor-plan").nick("Floor plan").blurb("Image covering exactly the map area shown; unset: a metric grid (a line per unit, darker every 5)").mutable_ready().build(),
                glib::ParamSpecDouble::builder("trail-seconds").nick("Trail seconds").blurb("Length of the fading trail behind each person, seconds").minimum(0.0).maximum(3600.0).default_value(d.trail_seconds).mutable_playing().build(),
                glib::ParamSpecDouble::builder("hide-after-seconds").nick("Hide after seconds").blurb("People not seen for this long are not drawn").minimum(0.0).maximum(3600.0).default_value(d.hide_after_seconds).mutable_playing().build(),
                glib::ParamSpecString::builder("redis-url").nick("Redis URL").blurb("Show the map shared through this Redis by every process of the site (the reidmap elements' redis-url); unset = this process's cameras only").mutable_ready().build(),
                glib::ParamSpecBoolean::builder("is-live").nick("Live").blurb("Produce frames in real time (on the clock); false: as fast as downstream takes them").default_value(true).mutable_ready().build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let Ok(mut s) = self.settings.lock() else {
            return;
        };
        match pspec.name() {
            "map" => {
                s.map = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "map".into())
            }
            "width" => s.width = value.get().unwrap_or(640),
            "height" => s.height = value.get().unwrap_or(480),
            "fps" => s.fps = value.get().unwrap_or(10),
            "min-x" => s.extent[0] = value.get().unwrap_or(0.0),
            "min-y" => s.extent[1] = value.get().unwrap_or(0.0),
            "max-x" => s.extent[2] = value.get().unwrap_or(20.0),
            "max-y" => s.extent[3] = value.get().unwrap_or(15.0),
            "floor-plan" => {
                s.floor_plan = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .filter(|p| !p.is_empty())
            }
            "trail-seconds" => s.trail_seconds = value.get().unwrap_or(10.0),
            "hide-after-seconds" => s.hide_after_seconds = value.get().unwrap_or(5.0),
            "redis-url" => {
                s.redis_url = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .filter(|p| !p.is_empty())
            }
            "is-live" => {
                s.is_live = value.get().unwrap_or(true);
                let live = s.is_live;
                drop(s);
                self.obj().set_live(live);
            }
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        match pspec.name() {
            "map" => s.map.to_value(),
            "width" => s.width.to_value(),
            "height" => s.height.to_value(),
            "fps" => s.fps.to_value(),
            "min-x" => s.extent[0].to_value(),
            "min-y" => s.extent[1].to_value(),
            "max-x" => s.extent[2].to_value(),
            "max-y" => s.extent[3].to_value(),
            "floor-plan" => s.floor_plan.to_value(),
            "trail-seconds" => s.trail_seconds.to_value(),
            "hide-after-seconds" => s.hide_after_seconds.to_value(),
            "is-live" => s.is_live.to_value(),
            // Read back without its secrets.
            "redis-url" => s
                .redis_url
                .as_deref()
                .map(sightline_core::secrets::redact_url)
                .to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

impl GstObjectImpl for MapView {}

impl ElementImpl for MapView {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Sightline floor map video",
                "Source/Video",
                "Renders the people of a floor map (global ids, fading trails) over a floor plan or a metric grid",
                "Sightline developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::Rgbx)
                .build();
            gst::PadTemplate::new(
                "src",
                gst::PadDirection::Src,
                gst::PadPresence::Always,
                &caps,
            )
            .into_iter()
            .collect()
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseSrcImpl for MapView {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let mut s = self.settings.lock().map(|s| s.clone()).unwrap_or_default();
        sightline_core::props::resolve_secret("redis-url", &mut s.redis_url)?;
        if !(s.extent[2] > s.extent[0] && s.extent[3] > s.extent[1]) {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("mapview: max-x/max-y must be greater than min-x/min-y")
            ));
        }
        let background = match &s.floor_plan {
            Some(p) => floor_plan(p, &s).map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenRead,
                    ("Cannot load floor plan: {}", e)
                )
            })?,
            None => grid(&s),
        };
        let map = shared_map(&s.map, MapConfig::default());
        let sync = crate::share_map(&s.map, s.redis_url.as_deref(), map.clone())?;
        *self
            .state
            .lock()
            .map_err(|_| gst::error_msg!(gst::CoreError::Failed, ["lock poisoned"]))? =
            Some(State {
                map,
                background,
                frame: 0,
                sync,
            });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Ok(mut st) = self.state.lock() {
            *st = None;
        }
        Ok(())
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let s = self.settings.lock().ok()?.clone();
        let caps = gst_video::VideoCapsBuilder::new()
            .format(gst_video::VideoFormat::Rgbx)
            .width(s.width as i32)
            .height(s.height as i32)
            .framerate(gst::Fraction::new(s.fps as i32, 1))
            .build();
        Some(match filter {
            Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn is_seekable(&self) -> bool {
        false
    }
}

impl PushSrcImpl for MapView {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let s = self
            .settings
            .lock()
            .map_err(|_| gst::FlowError::Error)?
            .clone();
        let obj = self.obj();
        let mut guard = self.state.lock().map_err(|_| gst::FlowError::Error)?;
        let st = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let dur = gst::ClockTime::SECOND / s.fps as u64;
        let pts = dur * st.frame;
        st.frame += 1;
        let map = st.map.clone();
        let mut data = st.background.clone();
        let problems = st
            .sync
            .as_ref()
            .map(|sync| sync.take_errors())
            .unwrap_or_default();
        drop(guard);
        for p in problems {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Read,
                (
                    "Shared map unavailable (showing this process's cameras; shared again when Redis is back): {}",
                    p
                )
            );
        }
        // Live: produce each frame at its time on the clock.
        if s.is_live
            && let (Some(clock), Some(base)) = (obj.clock(), obj.base_time())
        {
            let id = clock.new_single_shot_id(base + pts);
            let (res, _) = id.wait();
            if res == Err(gst::ClockError::Unscheduled) {
                return Err(gst::FlowError::Flushing);
            }
        }
        let now = obj
            .clock()
            .unwrap_or_else(gst::SystemClock::obtain)
            .time()
            .nseconds();
        let people = map
            .lock()
            .map(|m| m.snapshot(now, (s.hide_after_seconds * 1e9) as u64))
            .unwrap_or_default();
        let mut c = canvas(&mut data, &s);
        let trail_ns = (s.trail_seconds * 1e9) as u64;
        for p in &people {
            let col = colour_of(p.global_id);
            // Trail: older points fade towards the background.
            for (t, pos) in &p.trail {
                let age = now.saturating_sub(*t);
                if age > trail_ns {
                    continue;
                }
                let fade = 1.0 - age as f64 / trail_ns.max(1) as f64;
                let (x, y) = to_px(&s, pos[0], pos[1]);
                let (xi, yi) = (x as i64, y as i64);
                if xi >= 0 && yi >= 0 && (xi as u32) < s.width && (yi as u32) < s.height {
                    let bg = c.get(xi as usize, yi as usize);
                    let mix: Rgb = std::array::from_fn(|k| {
                        (bg[k] as f64 + (col[k] as f64 - bg[k] as f64) * fade * 0.6) as u8
                    });
                    c.dot(x as f32, y as f32, 1, mix);
                }
            }
            let (x, y) = to_px(&s, p.position[0], p.position[1]);
            c.dot(x as f32, y as f32, 6, col);
            c.label(
                x as i64 + 8,
                y as i64 - 8,
                &format!("#{}", p.global_id),
                1,
                [255, 255, 255],
                col,
            );
        }
        let mut buf = gst::Buffer::from_mut_slice(data);
        {
            let b = buf.get_mut().ok_or(gst::FlowError::Error)?;
            b.set_pts(pts);
            b.set_duration(dur);
        }
        Ok(CreateSuccess::NewBuffer(buf))
    }
}
