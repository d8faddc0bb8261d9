use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use sightline_core::draw::{Canvas, Rgb};
use sightline_core::meta::{self, Roi};
use sightline_core::preprocess::PixelFormat;
use sightline_core::video::{DRAW_FORMATS, caps_for, filter_pad_templates, pixel_format};

use std::sync::{LazyLock, Mutex};

use super::PrivacyMode;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "analyticsoverlay",
        gst::DebugColorFlags::empty(),
        Some("Sightline analytics overlay"),
    )
});

const DEFAULT_DRAW_LANDMARKS: bool = true;
const DEFAULT_DRAW_LABELS: bool = true;
const DEFAULT_LINE_WIDTH: u32 = 2;
const DEFAULT_TEXT_SCALE: u32 = 0;

const KNOWN: Rgb = [40, 220, 60];
const UNKNOWN: Rgb = [235, 40, 40];
const FACE: Rgb = [250, 210, 0];
const PERSON: Rgb = [40, 140, 255];
const LANDMARK: Rgb = [0, 230, 255];
const TEXT: Rgb = [0, 0, 0];

#[derive(Debug, Clone, Copy)]
struct Settings {
    draw_landmarks: bool,
    draw_labels: bool,
    line_width: u32,
    text_scale: u32,
    privacy: PrivacyMode,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            draw_landmarks: DEFAULT_DRAW_LANDMARKS,
            draw_labels: DEFAULT_DRAW_LABELS,
            line_width: DEFAULT_LINE_WIDTH,
            text_scale: DEFAULT_TEXT_SCALE,
            privacy: PrivacyMode::default(),
        }
    }
}

#[derive(Default)]
pub struct AnalyticsOverlay {
    settings: Mutex<Settings>,
}

fn colour(roi: &Roi) -> Rgb {
    match (roi.roi_type.as_str(), roi.recognition_label.as_deref()) {
        (_, Some("unknown")) => UNKNOWN,
        (_, Some(_)) => KNOWN,
        ("person", None) => PERSON,
        _ => FACE,
    }
}

#[glib::object_subclass]
impl ObjectSubclass for AnalyticsOverlay {
    const NAME: &'static str = "SightlineAnalyticsOverlay";
    type Type = super::AnalyticsOverlay;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for AnalyticsOverlay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecBoolean::builder("draw-landmarks")
                    .nick("Draw landmarks")
                    .blurb("Draw the five facial landmarks")
                    .default_value(DEFAULT_DRAW_LANDMARKS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("draw-labels")
                    .nick("Draw labels")
                    .blurb("Draw the label (name or class), score and track id above each box")
                    .default_value(DEFAULT_DRAW_LABELS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("line-width")
                    .nick("Line width")
                    .blurb("Box line width in pixels")
                    .minimum(1)
                    .maximum(32)
                    .default_value(DEFAULT_LINE_WIDTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("text-scale")
                    .nick("Text scale")
                    .blurb("Label glyph size in multiples of 8 pixels; 0 = from the frame height (8 px per 360 lines, at least 1)")
                    .maximum(16)
                    .default_value(DEFAULT_TEXT_SCALE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("privacy", PrivacyMode::default())
                    .nick("Privacy")
                    .blurb("Blur faces: none, those recognised as unknown, or all")
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
        match pspec.name() {
            "draw-landmarks" => s.draw_landmarks = value.get().unwrap_or(DEFAULT_DRAW_LANDMARKS),
            "draw-labels" => s.draw_labels = value.get().unwrap_or(DEFAULT_DRAW_LABELS),
            "line-width" => s.line_width = value.get().unwrap_or(DEFAULT_LINE_WIDTH),
            "text-scale" => s.text_scale = value.get().unwrap_or(DEFAULT_TEXT_SCALE),
            "privacy" => s.privacy = value.get().unwrap_or_default(),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().map(|s| *s).unwrap_or_default();
        match pspec.name() {
            "draw-landmarks" => s.draw_landmarks.to_value(),
            "draw-labels" => s.draw_labels.to_value(),
            "line-width" => s.line_width.to_value(),
            "text-scale" => s.text_scale.to_value(),
            "privacy" => s.privacy.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

impl GstObjectImpl for AnalyticsOverlay {}

impl ElementImpl for AnalyticsOverlay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Sightline analytics overlay",
                "Filter/Effect/Video",
                "Draws region-of-interest metas (faces, persons, landmarks, names, track ids); optional privacy blur",
                "Sightline developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(|| filter_pad_templates(&caps_for(DRAW_FORMATS)));
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for AnalyticsOverlay {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        // Frames without ROIs pass untouched and are never mapped writable (no copy).
        if meta::count_rois(buf) == 0 {
            return Ok(gst::FlowSuccess::Ok);
        }
        self.parent_transform_ip(buf)
    }
}

impl VideoFilterImpl for AnalyticsOverlay {
    fn transform_frame_ip(
        &self,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let s = self.settings.lock().map(|s| *s).unwrap_or_default();
        let rois = meta::read_rois(frame.buffer());
        let Some((bpp, off)) = pixel_format(frame.format()).and_then(PixelFormat::packed_layout)
        else {
            return Err(gst::FlowError::NotNegotiated);
        };
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        let stride = frame.plane_stride()[0].max(0) as usize;
        let data = frame.plane_data_mut(0).map_err(|_| gst::FlowError::Error)?;
        let mut c = Canvas {
            data,
            stride,
            width,
            height,
            bpp,
            off,
        };
        let scale = if s.text_scale > 0 {
            s.text_scale as usize
        } else {
            (height / 360).max(1)
        };
        let lw = s.line_width as i64;
        for roi in &rois {
            let (x, y, w, h) = (
                roi.rect.0 as i64,
                roi.rect.1 as i64,
                roi.rect.2 as i64,
                roi.rect.3 as i64,
            );
            let is_face = roi.roi_type == meta::ROI_FACE;
            let blur = is_face
                && match s.privacy {
                    PrivacyMode::None => false,
                    // Fails closed: only a positively recognised face stays sharp.
                    PrivacyMode::BlurUnknown => !roi.is_recognised(),
                    PrivacyMode::BlurAll => true,
                };
            if blur {
                c.blur_rect(x, y, w, h);
            }
            let col = colour(roi);
            c.rect(x, y, w, h, lw, col);
            if s.draw_landmarks
                && !blur
                && let Some(lm) = roi.landmarks
            {
                let r = (w / 40).clamp(1, 4);
                for p in lm {
                    c.dot(p[0], p[1], r, LANDMARK);
                }
            }
            if s.draw_labels {
                let text = roi.caption();
                let th = Canvas::text_height(scale) as i64 + 2 * scale as i64;
                let ty = if y >= th { y - th } else { y + h };
                c.label(x, ty, &text, scale, TEXT, col);
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
