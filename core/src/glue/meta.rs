//! The one place that writes and reads Sightline metadata on GStreamer buffers and turns
//! element message structures into JSON. Contract: docs/METADATA.md.

use crate::postprocess::{Detection, LANDMARK_NAMES};
use gst_video::VideoRegionOfInterestMeta;

pub const ROI_FACE: &str = "face";
pub const ROI_PERSON: &str = "person";
pub const PARAM_DETECTION: &str = "detection";
pub const PARAM_LANDMARKS: &str = "landmarks";
pub const PARAM_OBJECT_ID: &str = "object_id";
pub const PARAM_RECOGNITION: &str = "recognition";

/// Field names of the landmark points, `<name>_x` / `<name>_y`, in [`LANDMARK_NAMES`] order.
pub fn landmark_fields() -> [(String, String); 5] {
    LANDMARK_NAMES.map(|n| {
        let n = n.replace('-', "_");
        (format!("{n}_x"), format!("{n}_y"))
    })
}

/// Pixel rectangle of a detection, clipped to the frame.
pub fn pixel_rect(d: &Detection, frame_w: u32, frame_h: u32) -> (u32, u32, u32, u32) {
    let x = d.x1.max(0.0).round() as u32;
    let y = d.y1.max(0.0).round() as u32;
    let x2 = (d.x2.round() as u32).min(frame_w);
    let y2 = (d.y2.round() as u32).min(frame_h);
    (
        x.min(frame_w),
        y.min(frame_h),
        x2.saturating_sub(x),
        y2.saturating_sub(y),
    )
}

/// Adds one ROI meta for `d` with its `detection` (and `landmarks`) params. Its id is the
/// number of ROI metas already on the buffer, so ids stay dense (0..n-1). Returns the id.
#[allow(clippy::too_many_arguments)]
pub fn add_detection(
    buffer: &mut gst::BufferRef,
    roi_type: &str,
    d: &Detection,
    frame_w: u32,
    frame_h: u32,
    label: &str,
    label_id: i32,
    model_name: &str,
) -> i32 {
    let rect = pixel_rect(d, frame_w, frame_h);
    #[cfg(not(feature = "analytics"))]
    let id = count_rois(buffer) as i32;
    // With GstAnalytics, the ROI meta takes the object-detection Mtd's id, so consumers
    // pair the two forms by id (as DL Streamer does), unless an element without GstAnalytics
    // already gave that id to a ROI of its own.
    #[cfg(feature = "analytics")]
    let id = match crate::glue::analytics::add_object(buffer, roi_type, rect, d.score) {
        Some(od)
            if !buffer
                .iter_meta::<VideoRegionOfInterestMeta>()
                .any(|m| m.id() == od) =>
        {
            od
        }
        _ => count_rois(buffer) as i32,
    };
    let (fw, fh) = (frame_w.max(1) as f64, frame_h.max(1) as f64);
    let mut meta = VideoRegionOfInterestMeta::add(buffer, roi_type, rect);
    meta.set_id(id);
    meta.set_parent_id(-1);
    meta.add_param(
        gst::Structure::builder(PARAM_DETECTION)
            .field("x_min", (d.x1 as f64 / fw).clamp(0.0, 1.0))
            .field("y_min", (d.y1 as f64 / fh).clamp(0.0, 1.0))
            .field("x_max", (d.x2 as f64 / fw).clamp(0.0, 1.0))
            .field("y_max", (d.y2 as f64 / fh).clamp(0.0, 1.0))
            .field("confidence", d.score as f64)
            .field("label_id", label_id)
            .field("label", label)
            .field("model_name", model_name)
            .build(),
    );
    if let Some(lm) = &d.landmarks {
        meta.add_param(landmarks_param(lm, rect, model_name));
    }
    id
}

/// DL Streamer's tensor codes (`GVA::Tensor::Precision::FP32`, `Layout::NC`).
const GVA_PRECISION_FP32: i32 = 10;
const GVA_LAYOUT_NC: i32 = 193;
/// DL Streamer's tensor `format` for points normalised to the ROI box.
pub const LANDMARK_POINTS: &str = "landmark_points";

/// The `landmarks` param in both forms: DL Streamer's tensor (`format` = `landmark_points`,
/// `data_buffer` = float32 x,y pairs normalised to the ROI box `rect`, as gstgva's
/// `Tensor.data()` and `gvawatermark` read it) and our named fields in frame pixels.
pub fn landmarks_param(
    lm: &[[f32; 2]; 5],
    rect: (u32, u32, u32, u32),
    model_name: &str,
) -> gst::Structure {
    let (x, y, w, h) = rect;
    let (w, h) = (w.max(1) as f32, h.max(1) as f32);
    let data: Vec<u8> = lm
        .iter()
        .flat_map(|p| [(p[0] - x as f32) / w, (p[1] - y as f32) / h])
        .flat_map(f32::to_ne_bytes)
        .collect();
    let mut s = gst::Structure::builder(PARAM_LANDMARKS)
        .field("format", LANDMARK_POINTS)
        .field("precision", GVA_PRECISION_FP32)
        .field("layout", GVA_LAYOUT_NC)
        .field("dims", gst::Array::new([1u32, 2 * lm.len() as u32]))
        .field("data_buffer", glib::Variant::array_from_fixed_array(&data))
        .field("model_name", model_name);
    for ((fx, fy), p) in landmark_fields().iter().zip(lm) {
        s = s
            .field(fx.as_str(), p[0] as f64)
            .field(fy.as_str(), p[1] as f64);
    }
    s.build()
}

/// Landmarks from a `landmarks` param: our pixel fields, else DL Streamer's `landmark_points`
/// tensor (five points, normalised to the ROI box `rect`).
fn read_landmarks(s: &gst::StructureRef, rect: (u32, u32, u32, u32)) -> Option<[[f32; 2]; 5]> {
    let mut lm = [[0.0f32; 2]; 5];
    let named = landmark_fields()
        .iter()
        .zip(lm.iter_mut())
        .all(
            |((fx, fy), p)| match (s.get::<f64>(fx.as_str()), s.get::<f64>(fy.as_str())) {
                (Ok(x), Ok(y)) => {
                    *p = [x as f32, y as f32];
                    true
                }
                _ => false,
            },
        );
    if named {
        return Some(lm);
    }
    if s.get::<&str>("format").ok()? != LANDMARK_POINTS {
        return None;
    }
    let v = s.get::<glib::Variant>("data_buffer").ok()?;
    let bytes = v.fixed_array::<u8>().ok()?;
    if bytes.len() != 4 * 10 {
        return None;
    }
    let f: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let (x, y, w, h) = rect;
    for (i, p) in lm.iter_mut().enumerate() {
        *p = [
            x as f32 + w as f32 * f[2 * i],
            y as f32 + h as f32 * f[2 * i + 1],
        ];
    }
    Some(lm)
}

/// The `face` structure of a `facedetect` message: OpenCV's fields (`x y width height`, uint)
/// plus `confidence` and the landmark points.
pub fn face_structure(d: &Detection, frame_w: u32, frame_h: u32) -> gst::Structure {
    let (x, y, w, h) = pixel_rect(d, frame_w, frame_h);
    let mut s = gst::Structure::builder("face")
        .field("x", x)
        .field("y", y)
        .field("width", w)
        .field("height", h)
        .field("confidence", d.score as f64);
    if let Some(lm) = &d.landmarks {
        for ((fx, fy), p) in landmark_fields().iter().zip(lm) {
            s = s
                .field(fx.as_str(), p[0] as f64)
                .field(fy.as_str(), p[1] as f64);
        }
        for (part, (bx, by, bw, bh)) in opencv_parts(lm, frame_w, frame_h) {
            s = s
                .field(format!("{part}->x"), bx)
                .field(format!("{part}->y"), by)
                .field(format!("{part}->width"), bw)
                .field(format!("{part}->height"), bh);
        }
    }
    s.build()
}

/// A box in frame pixels: x, y, width, height.
pub type PixelBox = (u32, u32, u32, u32);

/// OpenCV's optional `eyes`, `nose` and `mouth` boxes (`<part>->x/y/width/height`, uint
/// pixels) made from our points, as OpenCV's Haar cascades would frame them: `eyes` spans
/// both eye centres with a quarter of the eye distance `d` added on each side and is `d/2`
/// high; `nose` is `d/2` square around the nose tip; `mouth` spans the two mouth corners and
/// is `d/3` high. Centres are measured points, sizes follow from `d`. Clipped to the frame.
pub fn opencv_parts(
    lm: &[[f32; 2]; 5],
    frame_w: u32,
    frame_h: u32,
) -> Vec<(&'static str, PixelBox)> {
    let [re, le, nose, rm, lmo] = *lm;
    let d = ((le[0] - re[0]).powi(2) + (le[1] - re[1]).powi(2)).sqrt();
    if !d.is_finite() || d < 1.0 {
        return Vec::new();
    }
    let bx = |x1: f32, y1: f32, x2: f32, y2: f32| {
        let clip = |v: f32, max: u32| v.round().clamp(0.0, max as f32) as u32;
        let (x1, y1) = (clip(x1, frame_w), clip(y1, frame_h));
        let (x2, y2) = (clip(x2, frame_w), clip(y2, frame_h));
        (x1, y1, x2.saturating_sub(x1), y2.saturating_sub(y1))
    };
    let eye_y = (re[1] + le[1]) / 2.0;
    let mouth_y = (rm[1] + lmo[1]) / 2.0;
    vec![
        (
            "eyes",
            bx(
                re[0].min(le[0]) - d / 4.0,
                eye_y - d / 4.0,
                re[0].max(le[0]) + d / 4.0,
                eye_y + d / 4.0,
            ),
        ),
        (
            "nose",
            bx(
                nose[0] - d / 4.0,
                nose[1] - d / 4.0,
                nose[0] + d / 4.0,
                nose[1] + d / 4.0,
            ),
        ),
        (
            "mouth",
            bx(
                rm[0].min(lmo[0]),
                mouth_y - d / 6.0,
                rm[0].max(lmo[0]),
                mouth_y + d / 6.0,
            ),
        ),
    ]
}

/// What facematch decided for a face.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition {
    /// Display name, or "unknown".
    pub label: String,
    /// Stable identity id (gallery id), or the unknown id for strangers.
    pub identity: String,
    pub similarity: f64,
    /// Temporary id of an unknown face ("" for known people).
    pub unknown_id: String,
    /// The identity's index in the gallery in use (0…n-1), -1 for a stranger.
    pub label_id: i32,
}

pub const PARAM_EMBEDDING: &str = "embedding";

/// Adds params to the ROI meta with id `roi_id`; false if there is none.
pub fn add_params(buffer: &mut gst::BufferRef, roi_id: i32, params: Vec<gst::Structure>) -> bool {
    for mut m in buffer.iter_meta_mut::<VideoRegionOfInterestMeta>() {
        if m.id() == roi_id {
            for p in params {
                m.add_param(p);
            }
            return true;
        }
    }
    false
}

/// The `object_id` param: `id` as a plain int (G_TYPE_INT), as DL Streamer writes and reads
/// it; a track id beyond 2^31-1 wraps (a camera makes far fewer tracks).
/// A tracked object as a tracker knows it (times are the buffers' running time, ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    pub id: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// The person's id on the floor map (reidmap), once placed.
    pub global_id: Option<u64>,
}

/// Annotates the object with ROI id `roi_id`: its `object_id` and `recognition` params plus
/// `extra` ones on the ROI meta and, with the `analytics` feature, its tracking and
/// classification Mtds related to the object. False if the buffer has no such ROI.
pub fn annotate(
    buffer: &mut gst::BufferRef,
    roi_id: i32,
    track: &Tracked,
    recognition: Option<&Recognition>,
    extra: Vec<gst::Structure>,
) -> bool {
    let mut params = vec![object_id_param(track.id)];
    params.extend(recognition.map(recognition_param));
    params.extend(extra);
    let added = add_params(buffer, roi_id, params);
    #[cfg(feature = "analytics")]
    let added = crate::glue::analytics::relate(buffer, roi_id, track, recognition) || added;
    added
}

pub fn object_id_param(track_id: u64) -> gst::Structure {
    gst::Structure::builder(PARAM_OBJECT_ID)
        .field("id", object_id(track_id))
        .build()
}

/// A track id as the int `object_id` carries.
pub fn object_id(track_id: u64) -> i32 {
    (track_id & i32::MAX as u64) as i32
}

/// The `recognition` param: our fields plus gstgva's classification `Tensor` reads
/// (`label`, `confidence` = the similarity, `label_id` = the identity's gallery index).
pub fn recognition_param(r: &Recognition) -> gst::Structure {
    gst::Structure::builder(PARAM_RECOGNITION)
        .field("label", r.label.as_str())
        .field("identity", r.identity.as_str())
        .field("similarity", r.similarity)
        .field("unknown-id", r.unknown_id.as_str())
        .field("confidence", r.similarity)
        .field("label_id", r.label_id)
        .build()
}

/// The opt-in `embedding` param: the L2-normalised vector as little-endian f32 bytes.
pub fn embedding_param(v: &[f32], model: &str) -> gst::Structure {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    gst::Structure::builder(PARAM_EMBEDDING)
        .field("model", model)
        .field("dims", v.len() as i32)
        .field("format", "F32LE")
        .field("data", glib::Bytes::from_owned(bytes))
        .build()
}

/// Reads the `embedding` param back.
pub fn read_embedding(s: &gst::StructureRef) -> Option<Vec<f32>> {
    let b = s.get::<glib::Bytes>("data").ok()?;
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

pub fn count_rois(buffer: &gst::BufferRef) -> usize {
    buffer.iter_meta::<VideoRegionOfInterestMeta>().count()
}

/// A ROI as read back from a buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Roi {
    pub id: i32,
    pub parent_id: i32,
    pub roi_type: String,
    pub rect: (u32, u32, u32, u32),
    pub confidence: Option<f64>,
    pub detection_label: Option<String>,
    pub landmarks: Option<[[f32; 2]; 5]>,
    pub object_id: Option<i64>,
    /// `recognition` label ("unknown" for strangers).
    pub recognition_label: Option<String>,
    pub identity: Option<String>,
    pub unknown_id: Option<String>,
    pub similarity: Option<f64>,
}

impl Roi {
    /// The label to show: the recognised name if any, else the detection label.
    pub fn display_label(&self) -> Option<&str> {
        self.recognition_label
            .as_deref()
            .or(self.detection_label.as_deref())
    }

    /// The overlay's caption: the name (or detection label), a score in percent, the track
    /// id. A recognised face shows its similarity, a detection its confidence; an unknown
    /// face shows none (its best similarity to the gallery, often negative, says nothing
    /// about who it is). A score is shown within 0–100 %.
    pub fn caption(&self) -> String {
        let mut t = self.display_label().unwrap_or(&self.roi_type).to_string();
        let score = if self.is_unknown() {
            None
        } else if self.recognition_label.is_some() {
            self.similarity
        } else {
            self.confidence
        };
        if let Some(s) = score.filter(|s| s.is_finite()) {
            t.push_str(&format!(" {:.0}%", s.clamp(0.0, 1.0) * 100.0));
        }
        if let Some(id) = self.object_id {
            t.push_str(&format!(" #{id}"));
        }
        t
    }

    pub fn is_unknown(&self) -> bool {
        self.recognition_label.as_deref() == Some("unknown")
    }

    /// Positively recognised as an enrolled person: a recognition with a label other than
    /// `unknown` and an identity. Everything else (unknown, undecided, too small or poor to
    /// embed, no facematch upstream, params lost on the way) is not.
    pub fn is_recognised(&self) -> bool {
        self.recognition_label
            .as_deref()
            .is_some_and(|l| !l.is_empty() && l != "unknown")
            && self.identity.as_deref().is_some_and(|i| !i.is_empty())
    }
}

/// Reads every ROI meta of the buffer, in id order.
pub fn read_rois(buffer: &gst::BufferRef) -> Vec<Roi> {
    let mut rois: Vec<Roi> = buffer
        .iter_meta::<VideoRegionOfInterestMeta>()
        .map(|m| {
            let det = m.param(PARAM_DETECTION);
            let rec = m.param(PARAM_RECOGNITION);
            let landmarks = m
                .param(PARAM_LANDMARKS)
                .and_then(|s| read_landmarks(s, m.rect()));
            Roi {
                id: m.id(),
                parent_id: m.parent_id(),
                roi_type: m.roi_type().to_string(),
                rect: m.rect(),
                confidence: det.and_then(|s| s.get::<f64>("confidence").ok()),
                detection_label: det.and_then(|s| s.get::<String>("label").ok()),
                landmarks,
                object_id: m.param(PARAM_OBJECT_ID).and_then(|s| {
                    s.get::<i64>("id")
                        .ok()
                        .or_else(|| s.get::<i32>("id").ok().map(i64::from))
                }),
                recognition_label: rec.and_then(|s| s.get::<String>("label").ok()),
                identity: rec.and_then(|s| s.get::<String>("identity").ok()),
                unknown_id: rec
                    .and_then(|s| s.get::<String>("unknown-id").ok())
                    .filter(|u| !u.is_empty()),
                similarity: rec.and_then(|s| s.get::<f64>("similarity").ok()),
            }
        })
        .collect();
    rois.sort_by_key(|r| r.id);
    #[cfg(feature = "analytics")]
    if rois.is_empty() {
        return crate::glue::analytics::read_objects(buffer);
    }
    rois
}

/// The event of an element message `s` posted by element `source`: `camera`, `running-time`
/// and `utc-time` are lifted out of the fields (camera `fallback_camera` and the current time
/// when absent), every other field is the data.
pub fn event_from_structure(
    s: &gst::StructureRef,
    source: &str,
    fallback_camera: &str,
) -> crate::events::Event {
    let mut data = structure_to_json(s);
    let (mut camera, mut running_time, mut utc) = (None, None, None);
    if let Some(obj) = data.as_object_mut() {
        camera = obj
            .remove("camera")
            .and_then(|v| v.as_str().map(str::to_string));
        running_time = obj.remove("running-time").and_then(|v| v.as_u64());
        utc = obj
            .remove("utc-time")
            .and_then(|v| v.as_str().map(str::to_string));
    }
    crate::events::Event::new(
        s.name(),
        source,
        camera.as_deref().unwrap_or(fallback_camera),
        running_time,
        utc.unwrap_or_else(crate::events::utc_now),
        data,
    )
}

/// Converts a structure (an element message) to JSON: numbers, strings, booleans, nested
/// structures and lists; other types as their serialised string.
pub fn structure_to_json(s: &gst::StructureRef) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (name, value) in s.iter() {
        map.insert(name.to_string(), value_to_json(value));
    }
    serde_json::Value::Object(map)
}

fn value_to_json(v: &glib::SendValue) -> serde_json::Value {
    use serde_json::Value as J;
    macro_rules! try_num {
        ($($t:ty),*) => {$(
            if let Ok(x) = v.get::<$t>() {
                return serde_json::json!(x);
            }
        )*};
    }
    try_num!(u32, i32, u64, i64, f64, f32, bool);
    if let Ok(x) = v.get::<String>() {
        return J::String(x);
    }
    if let Ok(s) = v.get::<gst::Structure>() {
        return structure_to_json(&s);
    }
    if let Ok(l) = v.get::<gst::List>() {
        return J::Array(l.iter().map(value_to_json).collect());
    }
    if let Ok(a) = v.get::<gst::Array>() {
        return J::Array(a.iter().map(value_to_json).collect());
    }
    let v: &glib::Value = v;
    match gst::prelude::GstValueExt::serialize(v) {
        Ok(s) => J::String(s.to_string()),
        Err(_) => J::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roi(label: Option<&str>, similarity: Option<f64>, confidence: Option<f64>) -> Roi {
        Roi {
            id: 1,
            parent_id: 0,
            roi_type: "face".into(),
            rect: (0, 0, 10, 10),
            confidence,
            detection_label: Some("face".into()),
            landmarks: None,
            object_id: Some(3),
            recognition_label: label.map(str::to_string),
            identity: None,
            unknown_id: None,
            similarity,
        }
    }

    #[test]
    fn captions_show_a_meaningful_score_only() {
        assert_eq!(
            roi(Some("Ada"), Some(0.734), Some(0.9)).caption(),
            "Ada 73% #3"
        );
        // An unknown face: no similarity (here negative), no detection score either.
        assert_eq!(
            roi(Some("unknown"), Some(-0.12), Some(0.9)).caption(),
            "unknown #3"
        );
        assert_eq!(roi(None, None, Some(0.91)).caption(), "face 91% #3");
        assert_eq!(roi(Some("Ada"), Some(1.2), None).caption(), "Ada 100% #3");
    }

    fn det() -> Detection {
        Detection {
            x1: 10.0,
            y1: 20.0,
            x2: 50.0,
            y2: 80.0,
            score: 0.9,
            landmarks: Some([
                [20.0, 40.0],
                [40.0, 40.0],
                [30.0, 55.0],
                [22.0, 65.0],
                [38.0, 65.0],
            ]),
            class_id: 0,
        }
    }

    #[test]
    fn rois_are_dense_and_read_back() {
        gst::init().unwrap();
        let mut buf = gst::Buffer::new();
        let b = buf.get_mut().unwrap();
        // A ROI already there from an upstream element.
        VideoRegionOfInterestMeta::add(b, "person", (0, 0, 5, 5));
        let id = add_detection(b, ROI_FACE, &det(), 100, 100, "face", 0, "yunet-n");
        assert_eq!(id, 1);
        assert_eq!(
            add_detection(b, ROI_FACE, &det(), 100, 100, "face", 0, "yunet-n"),
            2
        );
        let rois = read_rois(b);
        assert_eq!(rois.len(), 3);
        let r = &rois[1];
        assert_eq!(r.rect, (10, 20, 40, 60));
        assert_eq!(r.confidence, Some(0.9f32 as f64));
        assert_eq!(r.display_label(), Some("face"));
        assert_eq!(r.landmarks.unwrap()[2], [30.0, 55.0]);
        let m = b.iter_meta::<VideoRegionOfInterestMeta>().nth(1).unwrap();
        let p = m.param("detection").unwrap();
        assert_eq!(p.get::<f64>("x_min").unwrap(), 0.1);
        assert_eq!(p.get::<f64>("y_max").unwrap(), 0.8);
        assert_eq!(p.get::<&str>("model_name").unwrap(), "yunet-n");
    }

    #[test]
    fn landmarks_read_back_from_the_dl_streamer_tensor_alone() {
        gst::init().unwrap();
        let lm = det().landmarks.unwrap();
        let rect = (10, 20, 40, 60);
        let mut s = landmarks_param(&lm, rect, "yunet-n");
        assert_eq!(s.get::<&str>("format").unwrap(), LANDMARK_POINTS);
        assert_eq!(s.get::<i32>("precision").unwrap(), 10);
        // The right eye (20, 40) in a 40x60 box at (10, 20): (0.25, 0.333…).
        let v = s.get::<glib::Variant>("data_buffer").unwrap();
        let b = v.fixed_array::<u8>().unwrap();
        assert_eq!(b.len(), 40);
        assert_eq!(f32::from_ne_bytes([b[0], b[1], b[2], b[3]]), 0.25);
        for (fx, fy) in landmark_fields() {
            s.remove_field(fx.as_str());
            s.remove_field(fy.as_str());
        }
        let back = read_landmarks(&s, rect).unwrap();
        for (a, b) in back.iter().zip(&lm) {
            assert!((a[0] - b[0]).abs() < 1e-4 && (a[1] - b[1]).abs() < 1e-4);
        }
    }

    #[test]
    fn opencv_parts_are_boxes_around_the_points() {
        // Eye distance 20: eyes 15..45 x 35..45, nose 25..35 x 50..60, mouth 22..38 x 62..68.
        let parts = opencv_parts(&det().landmarks.unwrap(), 100, 100);
        assert_eq!(
            parts,
            vec![
                ("eyes", (15, 35, 30, 10)),
                ("nose", (25, 50, 10, 10)),
                ("mouth", (22, 62, 16, 6)),
            ]
        );
        // Clipped to a small frame.
        let clipped = opencv_parts(&det().landmarks.unwrap(), 40, 100);
        assert_eq!(clipped[0].1, (15, 35, 25, 10));
        let face = face_structure(&det(), 100, 100);
        assert_eq!(face.get::<u32>("eyes->width").unwrap(), 30);
        assert_eq!(face.get::<u32>("mouth->y").unwrap(), 62);
    }

    #[test]
    fn object_ids_are_plain_ints() {
        gst::init().unwrap();
        let s = object_id_param(17);
        assert_eq!(s.get::<i32>("id").unwrap(), 17);
        assert!(s.get::<i64>("id").is_err());
        assert_eq!(object_id(u64::from(u32::MAX) + 5), 4);
        assert_eq!(object_id(i32::MAX as u64), i32::MAX);
    }

    #[test]
    fn structures_convert_to_json() {
        gst::init().unwrap();
        let face = face_structure(&det(), 100, 100);
        let s = gst::Structure::builder("facedetect")
            .field("camera", "cam1")
            .field("running-time", 5u64)
            .field("faces", gst::List::new([face]))
            .build();
        let j = structure_to_json(&s);
        assert_eq!(j["camera"], "cam1");
        assert_eq!(j["running-time"], 5);
        assert_eq!(j["faces"][0]["width"], 40);
        assert_eq!(j["faces"][0]["nose_x"], 30.0);
    }
}
