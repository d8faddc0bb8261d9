//! Face detection: preprocessing, the shared engine and YuNet decoding put together.

use crate::inference::{EngineHandle, InferenceError};
use crate::models::DecoderKind;
use crate::models::InputSpec;
use crate::postprocess::{DecodeError, Detection, YunetLevel, decode_yolox, decode_yunet, nms};
use crate::preprocess::{ImageView, SrcRect, TensorTarget, resize_into};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectParams {
    pub score_threshold: f32,
    pub nms_threshold: f32,
    /// Width of the image given to the model; 0 = derived from the height, or the frame's own.
    pub inference_width: u32,
    /// Height of the image given to the model; 0 = derived from the width, or the frame's own.
    pub inference_height: u32,
    /// Faces smaller than this (shorter box side, frame pixels) are dropped.
    pub min_face_size: f32,
    /// A frame smaller than the inference size is enlarged at most this much (at least 1:
    /// never enlarged); see [`DEFAULT_MAX_UPSCALE`].
    pub max_upscale: f32,
}

/// How much a small frame is enlarged for the face detector at most. A face that fills a
/// small frame grows, enlarged, past the sizes YuNet's anchors find: on the 250 ORL images
/// (92×112, the face ~70 % of the frame) every face is found from 1.5× to 5× (138–460 px
/// wide), the first one is missed at 5.5×, 19 at 6.5× and 40 at 7× (640 px, the default
/// inference width). 2× keeps a 2.5× margin to the first miss and leaves every frame of
/// 320 px and more as it was (their scale to 640 px is at most 2).
pub const DEFAULT_MAX_UPSCALE: f32 = 2.0;

impl Default for DetectParams {
    fn default() -> Self {
        DetectParams {
            score_threshold: 0.75,
            nms_threshold: 0.3,
            inference_width: 640,
            inference_height: 0,
            min_face_size: 0.0,
            max_upscale: DEFAULT_MAX_UPSCALE,
        }
    }
}

/// How a frame maps into the model's tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub content_w: usize,
    pub content_h: usize,
    pub tensor_w: usize,
    pub tensor_h: usize,
    pub scale_x: f32,
    pub scale_y: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Inference(#[from] InferenceError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("model '{0}' is not a YuNet face detector (decoder {1:?})")]
    WrongDecoder(String, DecoderKind),
}

pub struct FaceDetector {
    engine: EngineHandle,
    /// Output indices of (cls, obj, bbox, kps) per stride.
    levels: Vec<(u32, [usize; 4])>,
}

impl FaceDetector {
    pub fn new(engine: EngineHandle) -> Result<Self, DetectError> {
        let spec = &engine.model.spec;
        if spec.output.decoder != DecoderKind::Yunet {
            return Err(DetectError::WrongDecoder(
                spec.name.clone(),
                spec.output.decoder,
            ));
        }
        let mut levels = Vec::new();
        for &st in &spec.output.strides {
            let mut idx = [0usize; 4];
            for (k, head) in ["cls", "obj", "bbox", "kps"].iter().enumerate() {
                let name = format!("{head}_{st}");
                idx[k] = engine
                    .output_index(&name)
                    .ok_or(DecodeError::MissingOutput(name))?;
            }
            levels.push((st, idx));
        }
        Ok(FaceDetector { engine, levels })
    }

    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    /// The tensor geometry for a `w` x `h` frame.
    pub fn plan(&self, w: usize, h: usize, p: &DetectParams) -> Plan {
        plan_for(&self.engine.model.spec.input, w, h, p)
    }

    /// Detects faces; boxes and landmarks in frame pixels, best first.
    pub fn detect(
        &mut self,
        img: &ImageView,
        p: &DetectParams,
    ) -> Result<Vec<Detection>, DetectError> {
        let plan = self.plan(img.width, img.height, p);
        let dets = self.detect_in(img, SrcRect::whole(img), plan, p)?;
        Ok(finish(nms(dets, p.nms_threshold), p))
    }

    /// Detects faces only in the regions around `known` (the faces of an earlier frame: each
    /// box grown by [`REGION_MARGIN`] on every side, overlapping regions merged), each region at
    /// the scale a whole-frame detection uses, so a face is seen at the size it had there. A
    /// face cut by a region's inner edge (it moved further) is left out. Falls back to the whole
    /// frame for a fixed-size model, or when the regions would cost as much as the frame.
    /// Boxes and landmarks in frame pixels, best first, and what was searched.
    pub fn detect_around(
        &mut self,
        img: &ImageView,
        p: &DetectParams,
        known: &[Detection],
    ) -> Result<(Vec<Detection>, Searched), DetectError> {
        let (dets, regions) = self.detect_around_changes(img, p, known, &[])?;
        let searched = regions.map_or(Searched::Frame, |r| Searched::Regions(r.len()));
        Ok((dets, searched))
    }

    /// [`FaceDetector::detect_around`] the faces `known` and the parts of the frame in
    /// `changed` (frame pixels; each grown as a face's box is), with the regions searched
    /// (`None`: the whole frame was).
    pub fn detect_around_changes(
        &mut self,
        img: &ImageView,
        p: &DetectParams,
        known: &[Detection],
        changed: &[SrcRect],
    ) -> Result<(Vec<Detection>, Option<Vec<SrcRect>>), DetectError> {
        self.search_regions(img, p, known, changed, None)
    }

    /// Follows the faces `known`: [`FaceDetector::detect_around`] them, each region seen at
    /// the scale that shows its smallest known face `face_px` tensor pixels across (never finer
    /// than the whole frame's scale), so a large face costs what a small one does. A face
    /// much smaller than the known ones inside their region may be missed: what the
    /// detections between two scans of facedetect's `scan-interval` use, whose new faces are
    /// the next scan's; see [`FOLLOW_FACE_PX`]. The regions searched (`None`: the whole frame).
    pub fn follow(
        &mut self,
        img: &ImageView,
        p: &DetectParams,
        known: &[Detection],
        face_px: f32,
    ) -> Result<(Vec<Detection>, Option<Vec<SrcRect>>), DetectError> {
        self.search_regions(img, p, known, &[], Some(face_px))
    }

    fn search_regions(
        &mut self,
        img: &ImageView,
        p: &DetectParams,
        known: &[Detection],
        changed: &[SrcRect],
        face_px: Option<f32>,
    ) -> Result<(Vec<Detection>, Option<Vec<SrcRect>>), DetectError> {
        let full = self.plan(img.width, img.height, p);
        let input = &self.engine.model.spec.input;
        if input.fixed_size().is_some() {
            return Ok((self.detect(img, p)?, None));
        }
        let align = input.align.max(1) as usize;
        let min_side = MIN_REGION_TENSOR_PX / full.scale_x.max(1e-6);
        let boxes = corners(known).chain(changed.iter().map(|r| [r.x, r.y, r.x + r.w, r.y + r.h]));
        let frame = (img.width as f32, img.height as f32);
        let plans: Vec<(SrcRect, Plan)> =
            regions_around(boxes, img.width, img.height, REGION_MARGIN, min_side)
                .into_iter()
                .map(|r| {
                    let k = face_px.map_or(1.0, |px| follow_scale(&r, known, px, full.scale_x));
                    region_plan(r, frame, (full.scale_x * k, full.scale_y * k), align)
                })
                .collect();
        let cost: usize = plans.iter().map(|(_, q)| q.tensor_w * q.tensor_h).sum();
        if cost >= full.tensor_w * full.tensor_h {
            return Ok((self.detect(img, p)?, None));
        }
        let mut all = Vec::new();
        for &(r, plan) in &plans {
            all.extend(
                self.detect_in(img, r, plan, p)?
                    .into_iter()
                    .filter(|d| !cut_by_inner_edge(d, &r, frame, 1.0)),
            );
        }
        let searched = plans.into_iter().map(|(r, _)| r).collect();
        Ok((finish(nms(all, p.nms_threshold), p), Some(searched)))
    }

    /// Raw detections (before NMS) in region `src` of the frame, resampled as `plan` says; in
    /// frame pixels.
    fn detect_in(
        &mut self,
        img: &ImageView,
        src: SrcRect,
        plan: Plan,
        p: &DetectParams,
    ) -> Result<Vec<Detection>, DetectError> {
        let target =
            TensorTarget::from_spec(&self.engine.model.spec.input, plan.tensor_w, plan.tensor_h);
        let shape = [1, 3, plan.tensor_h as i64, plan.tensor_w as i64];
        // Preprocessing writes straight into the tensor that is run.
        let o = self.engine.run_with(shape, |dst| {
            resize_into(img, src, plan.content_w, plan.content_h, &target, dst)
        })?;
        let levels: Vec<YunetLevel> = self
            .levels
            .iter()
            .map(|&(stride, [c, ob, b, k])| YunetLevel {
                stride,
                cls: &o[c].data,
                obj: &o[ob].data,
                bbox: &o[b].data,
                kps: &o[k].data,
            })
            .collect();
        let mut dets = decode_yunet(&levels, plan.tensor_w, plan.tensor_h, p.score_threshold)?;
        for d in dets.iter_mut() {
            d.unscale(plan.scale_x, plan.scale_y, src.w, src.h);
            d.translate(src.x, src.y);
        }
        Ok(dets)
    }
}

/// What [`FaceDetector::detect_around`] searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Searched {
    /// The whole frame (a fixed-size model, or regions that would cost as much).
    Frame,
    /// This many regions around the known faces (0 when none was known).
    Regions(usize),
}

/// How far the region searched for a known face reaches past its box, in box sizes on every
/// side. The detector needs context: with 0.75 the boxes of large faces on the group photos
/// differed from the whole frame's by IoU 0.92 (0.98 when the whole frame only moves by a few
/// pixels); with 1.0 by 0.94-0.96, and every face of the face videos that was there a frame
/// before was found again (327 of 327; 0.75: 325). 1.0 also holds a face that moved up to its
/// own width between two detections (at 5 analysed frames per second a face ~0.16 m wide walking
/// straight across the view at 1.4 m/s moves 1.75 widths; it is found again by the next
/// whole-frame scan).
pub const REGION_MARGIN: f32 = 1.0;

/// The smallest side of a region, in tensor pixels (two cells of YuNet's coarsest level).
const MIN_REGION_TENSOR_PX: f32 = 64.0;

/// The size, in tensor pixels, at which [`FaceDetector::follow`] sees a known face (its
/// shorter side). Calibrated on the frames of the four shared face videos (each frame's
/// whole-frame faces against the faces followed from the previous frame's;
/// core/tests/region_detect.rs) and the group photos: every face is found again from 32 px
/// up (at 24 px the first is lost); the boxes and landmarks stay as close to the whole
/// frame's as the whole frame is to itself moved by a few pixels (IoU median 0.919 at 64 px,
/// 0.914 at 48, 0.930 shifted; landmarks 0.035 / 0.037 / 0.033 face widths), and embeddings
/// of the followed faces match the whole frame's as closely as the shifted frame's do
/// (cosine median 0.96, 10th percentile 0.84 either way). 48 px moved the landmarks of one hard
/// face of the group photos (score 0.90) by 0.076 face widths (shifted: 0.027); 64 keeps
/// every face within 0.035.
pub const FOLLOW_FACE_PX: f32 = 64.0;

/// How much coarser than the frame's scale `frame_scale` region `r` may be seen so that the
/// smallest face of `known` in it (by its centre) is `face_px` tensor pixels: at most 1 (the
/// frame's scale), and 1 for a region with no known face.
fn follow_scale(r: &SrcRect, known: &[Detection], face_px: f32, frame_scale: f32) -> f32 {
    let smallest = known
        .iter()
        .filter(|d| {
            let (cx, cy) = ((d.x1 + d.x2) / 2.0, (d.y1 + d.y2) / 2.0);
            cx >= r.x && cx < r.x + r.w && cy >= r.y && cy < r.y + r.h
        })
        .map(|d| d.width().min(d.height()))
        .fold(f32::INFINITY, f32::min);
    if !smallest.is_finite() || smallest <= 0.0 {
        return 1.0;
    }
    (face_px / (smallest * frame_scale)).min(1.0)
}

/// Regions of a `w` x `h` frame to search for the faces `known`: each box grown by `margin`
/// box sizes on every side (to at least `min_side` pixels a side), clipped to the frame,
/// whole pixels; regions that overlap are merged into their bounding box until none overlap.
pub fn face_regions(
    known: &[Detection],
    w: usize,
    h: usize,
    margin: f32,
    min_side: f32,
) -> Vec<SrcRect> {
    regions_around(corners(known), w, h, margin, min_side)
}

/// The boxes of `dets` as (x1, y1, x2, y2).
fn corners(dets: &[Detection]) -> impl Iterator<Item = [f32; 4]> + '_ {
    dets.iter().map(|d| [d.x1, d.y1, d.x2, d.y2])
}

/// [`face_regions`] of boxes given as (x1, y1, x2, y2); empty boxes are left out.
fn regions_around(
    boxes: impl Iterator<Item = [f32; 4]>,
    w: usize,
    h: usize,
    margin: f32,
    min_side: f32,
) -> Vec<SrcRect> {
    let (fw, fh) = (w as f32, h as f32);
    // (x1, y1, x2, y2)
    let mut rs: Vec<[f32; 4]> = boxes
        .filter(|b| b[2] > b[0] && b[3] > b[1])
        .map(|[bx1, by1, bx2, by2]| {
            let grow = |lo: f32, hi: f32, max: f32| {
                let c = (lo + hi) / 2.0;
                let half = ((hi - lo) * (0.5 + margin)).max(min_side / 2.0);
                ((c - half).max(0.0).floor(), (c + half).min(max).ceil())
            };
            let (x1, x2) = grow(bx1, bx2, fw);
            let (y1, y2) = grow(by1, by2, fh);
            [x1, y1, x2, y2]
        })
        .collect();
    let overlap =
        |a: &[f32; 4], b: &[f32; 4]| a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
    let mut merged = true;
    while merged {
        merged = false;
        'scan: for i in 0..rs.len() {
            for j in i + 1..rs.len() {
                if overlap(&rs[i], &rs[j]) {
                    let b = rs.swap_remove(j);
                    let a = &mut rs[i];
                    *a = [
                        a[0].min(b[0]),
                        a[1].min(b[1]),
                        a[2].max(b[2]),
                        a[3].max(b[3]),
                    ];
                    merged = true;
                    break 'scan;
                }
            }
        }
    }
    rs.into_iter()
        .filter(|r| r[2] > r[0] && r[3] > r[1])
        .map(|r| SrcRect {
            x: r[0],
            y: r[1],
            w: r[2] - r[0],
            h: r[3] - r[1],
        })
        .collect()
}

/// Region `r` of a `fw` x `fh` frame seen at the frame's scale (`scale_x`, `scale_y`), its
/// tensor padded up to `align`: the region grows (right and down, or left and up at the
/// frame's edge) to fill that padding with frame pixels rather than the pad value, so the
/// model sees the face's surroundings as a whole-frame detection does.
fn region_plan(
    r: SrcRect,
    (fw, fh): (f32, f32),
    (scale_x, scale_y): (f32, f32),
    align: usize,
) -> (SrcRect, Plan) {
    let axis = |start: f32, len: f32, max: f32, scale: f32| {
        let tensor = (((len * scale).round() as usize).max(1)).div_ceil(align) * align;
        let want = (tensor as f32 / scale).min(max);
        let start = start.min(max - want).max(0.0).floor();
        let len = want.min(max - start).floor();
        let content = (((len * scale).round() as usize).max(1)).min(tensor);
        (start, len, content, tensor)
    };
    let (x, w, content_w, tensor_w) = axis(r.x, r.w, fw, scale_x);
    let (y, h, content_h, tensor_h) = axis(r.y, r.h, fh, scale_y);
    (
        SrcRect { x, y, w, h },
        Plan {
            content_w,
            content_h,
            tensor_w,
            tensor_h,
            scale_x: content_w as f32 / w,
            scale_y: content_h as f32 / h,
        },
    )
}

/// Whether `d` touches (within `e` pixels) an edge of region `r` that is not an edge of the
/// `fw` x `fh` frame: it may be cut there.
fn cut_by_inner_edge(d: &Detection, r: &SrcRect, (fw, fh): (f32, f32), e: f32) -> bool {
    (d.x1 <= r.x + e && r.x > 0.0)
        || (d.y1 <= r.y + e && r.y > 0.0)
        || (d.x2 >= r.x + r.w - e && r.x + r.w < fw)
        || (d.y2 >= r.y + r.h - e && r.y + r.h < fh)
}

/// Faces below the minimum size, or empty, go.
fn finish(mut dets: Vec<Detection>, p: &DetectParams) -> Vec<Detection> {
    dets.retain(|d| d.width().min(d.height()) >= p.min_face_size && d.area() > 0.0);
    dets
}

/// The tensor geometry for a `w` x `h` frame: the frame scaled to the requested inference size
/// (aspect kept), at the top-left of a tensor padded up to the model's alignment (or its fixed
/// size).
pub fn plan_for(input: &InputSpec, w: usize, h: usize, p: &DetectParams) -> Plan {
    let (wf, hf) = (w as f32, h as f32);
    let (s, fixed) = match input.fixed_size() {
        Some((th, tw)) => (
            (tw as f32 / wf).min(th as f32 / hf),
            Some((tw as usize, th as usize)),
        ),
        None => {
            let (iw, ih) = (p.inference_width as f32, p.inference_height as f32);
            let s = match (iw > 0.0, ih > 0.0) {
                (false, false) => 1.0,
                (true, false) => iw / wf,
                (false, true) => ih / hf,
                (true, true) => (iw / wf).min(ih / hf),
            };
            (s, None)
        }
    };
    // Never enlarged past max_upscale (a fixed-size tensor is then padded).
    let s = s.min(p.max_upscale.max(1.0));
    let content_w = ((wf * s).round() as usize).max(1);
    let content_h = ((hf * s).round() as usize).max(1);
    let align = input.align.max(1) as usize;
    let (tensor_w, tensor_h) = fixed.unwrap_or((
        content_w.div_ceil(align) * align,
        content_h.div_ceil(align) * align,
    ));
    let (content_w, content_h) = (content_w.min(tensor_w), content_h.min(tensor_h));
    Plan {
        content_w,
        content_h,
        tensor_w,
        tensor_h,
        scale_x: content_w as f32 / wf,
        scale_y: content_h as f32 / hf,
    }
}

/// Person detection (YOLOX, COCO class 0): same planning and preprocessing as faces.
pub struct PersonDetector {
    engine: EngineHandle,
    output: usize,
}

impl PersonDetector {
    pub fn new(engine: EngineHandle) -> Result<Self, DetectError> {
        let spec = &engine.model.spec;
        if spec.output.decoder != DecoderKind::Yolox {
            return Err(DetectError::WrongDecoder(
                spec.name.clone(),
                spec.output.decoder,
            ));
        }
        let name = spec.output.names.first().cloned().unwrap_or_default();
        let output = engine
            .output_index(&name)
            .ok_or(DecodeError::MissingOutput(name))?;
        Ok(PersonDetector { engine, output })
    }

    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    pub fn plan(&self, w: usize, h: usize, p: &DetectParams) -> Plan {
        plan_for(&self.engine.model.spec.input, w, h, p)
    }

    /// Detects persons; boxes in frame pixels, best first.
    pub fn detect(
        &mut self,
        img: &ImageView,
        p: &DetectParams,
    ) -> Result<Vec<Detection>, DetectError> {
        let full = SrcRect::whole(img);
        Ok(finish(
            nms(self.detect_region(img, full, p)?, p.nms_threshold),
            p,
        ))
    }

    /// Detects persons on the whole frame and on each of `tiles` (each at the inference size,
    /// so far, small people get more pixels), merged: overlapping boxes by NMS, and pieces of a
    /// person cut by a tile's inner edge dropped when a larger box holds them.
    pub fn detect_tiled(
        &mut self,
        img: &ImageView,
        p: &DetectParams,
        tiles: &[SrcRect],
    ) -> Result<Vec<Detection>, DetectError> {
        let full = SrcRect::whole(img);
        let mut all: Vec<(Detection, bool)> = self
            .detect_region(img, full, p)?
            .into_iter()
            .map(|d| (d, false))
            .collect();
        let frame = (img.width as f32, img.height as f32);
        for t in tiles {
            for d in self.detect_region(img, *t, p)? {
                let cut = cut_by_inner_edge(&d, t, frame, 2.0);
                all.push((d, cut));
            }
        }
        Ok(finish(merge_tiled(all, p.nms_threshold), p))
    }

    /// Raw detections (before NMS) in region `src` of the frame, in frame pixels.
    fn detect_region(
        &mut self,
        img: &ImageView,
        src: SrcRect,
        p: &DetectParams,
    ) -> Result<Vec<Detection>, DetectError> {
        let spec = &self.engine.model.spec;
        let plan = plan_for(
            &spec.input,
            src.w.round() as usize,
            src.h.round() as usize,
            p,
        );
        let target = TensorTarget::from_spec(&spec.input, plan.tensor_w, plan.tensor_h);
        let shape = [1, 3, plan.tensor_h as i64, plan.tensor_w as i64];
        let strides = spec.output.strides.clone();
        let o = self.engine.run_with(shape, |dst| {
            resize_into(img, src, plan.content_w, plan.content_h, &target, dst)
        })?;
        let mut dets = decode_yolox(
            &o[self.output].data,
            plan.tensor_w,
            plan.tensor_h,
            &strides,
            0,
            p.score_threshold,
        )?;
        for d in dets.iter_mut() {
            d.unscale(plan.scale_x, plan.scale_y, src.w, src.h);
            d.translate(src.x, src.y);
        }
        Ok(dets)
    }
}

/// `cols` x `rows` tiles covering a `w` x `h` frame, neighbours overlapping by `overlap` (a
/// fraction of the tile size, 0-0.9), row by row.
pub fn tile_rects(w: usize, h: usize, cols: u32, rows: u32, overlap: f32) -> Vec<SrcRect> {
    let overlap = overlap.clamp(0.0, 0.9);
    let axis = |len: usize, n: u32| -> Vec<(f32, f32)> {
        let n = n.max(1);
        let size = len as f32 / (n as f32 - (n as f32 - 1.0) * overlap);
        (0..n)
            .map(|i| {
                let start = (i as f32 * size * (1.0 - overlap)).min(len as f32 - size);
                (start.max(0.0).round(), size.round().min(len as f32))
            })
            .collect()
    };
    let (xs, ys) = (axis(w, cols), axis(h, rows));
    ys.iter()
        .flat_map(|&(y, th)| {
            xs.iter()
                .map(move |&(x, tw)| SrcRect { x, y, w: tw, h: th })
        })
        .collect()
}

/// Merges detections from the whole frame and its tiles (`true`: cut by a tile's inner edge):
/// a cut box mostly (> 60 %) inside a larger box is a piece of that person and goes; then NMS,
/// best first.
pub fn merge_tiled(all: Vec<(Detection, bool)>, nms_threshold: f32) -> Vec<Detection> {
    let inside = |a: &Detection, b: &Detection| {
        let w = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
        let h = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
        w * h / a.area().max(1e-9)
    };
    let whole: Vec<Detection> = all
        .iter()
        .filter(|(d, cut)| {
            !*cut
                || !all
                    .iter()
                    .any(|(o, _)| o.area() > d.area() && inside(d, o) > 0.6)
        })
        .map(|(d, _)| d.clone())
        .collect();
    nms(whole, nms_threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dims: [i64; 4]) -> InputSpec {
        InputSpec {
            name: "input".into(),
            layout: "NCHW".into(),
            color: crate::models::ColorOrder::Bgr,
            mean: [0.0; 3],
            std: [1.0; 3],
            dims,
            align: 32,
            resize: crate::models::ResizeMode::PadBottomRight,
            pad_value: 0.0,
        }
    }

    #[test]
    fn small_frames_are_enlarged_at_most_max_upscale() {
        let p = DetectParams::default();
        let dynamic = spec([1, 3, 0, 0]);
        // An ORL image (92x112): 2x, not the 7x that 640 px would ask.
        let orl = plan_for(&dynamic, 92, 112, &p);
        assert_eq!((orl.content_w, orl.content_h), (184, 224));
        assert_eq!((orl.tensor_w, orl.tensor_h), (192, 224));
        assert!((orl.scale_x - 2.0).abs() < 1e-6);
        // 320 px and more: as before (the scale to 640 is at most 2).
        let sub = plan_for(&dynamic, 320, 240, &p);
        assert_eq!((sub.content_w, sub.content_h), (640, 480));
        let hd = plan_for(&dynamic, 1920, 1080, &p);
        assert_eq!((hd.content_w, hd.content_h), (640, 360));
        // 1: never enlarged; a fixed tensor is padded around the frame.
        let never = DetectParams {
            max_upscale: 1.0,
            ..p
        };
        let n = plan_for(&dynamic, 92, 112, &never);
        assert_eq!((n.content_w, n.content_h), (92, 112));
        let fixed = plan_for(&spec([1, 3, 320, 320]), 92, 112, &p);
        assert_eq!((fixed.content_w, fixed.content_h), (184, 224));
        assert_eq!((fixed.tensor_w, fixed.tensor_h), (320, 320));
        // Below 1 means 1 (a cap never shrinks a frame).
        let odd = DetectParams {
            max_upscale: 0.5,
            ..p
        };
        assert_eq!(plan_for(&dynamic, 92, 112, &odd).content_w, 92);
    }
    use crate::postprocess::tests::det;

    #[test]
    fn tiles_cover_the_frame_with_overlap() {
        let t = tile_rects(640, 480, 2, 2, 0.25);
        assert_eq!(t.len(), 4);
        // Tile width 640 / (2 - 0.25) = 366, second starts at 274: 92 px shared.
        assert_eq!((t[0].x, t[0].w, t[1].x), (0.0, 366.0, 274.0));
        assert_eq!(t[1].x + t[1].w, 640.0);
        assert_eq!(t[3].y + t[3].h, 480.0);
        assert_eq!(tile_rects(640, 480, 1, 1, 0.25)[0].w, 640.0);
    }

    #[test]
    fn tile_pieces_go_and_separate_people_stay() {
        let whole = det(100.0, 100.0, 140.0, 220.0, 0.7);
        // The upper part of the same person, cut by a tile edge, scored higher.
        let piece = det(101.0, 100.0, 139.0, 160.0, 0.8);
        // A small person next to them, inside no box.
        let other = det(200.0, 100.0, 220.0, 150.0, 0.5);
        // Same box from the frame and a tile: NMS keeps one.
        let dup = det(100.0, 101.0, 141.0, 221.0, 0.6);
        let out = merge_tiled(
            vec![
                (whole.clone(), false),
                (piece.clone(), true),
                (other.clone(), true),
                (dup, false),
            ],
            0.45,
        );
        assert_eq!(out, vec![whole.clone(), other]);
        // Not cut: a small box inside a big one is a person of its own (e.g. further back).
        let small = det(110.0, 100.0, 130.0, 130.0, 0.6);
        let out = merge_tiled(vec![(whole.clone(), false), (small.clone(), false)], 0.45);
        assert_eq!(out.len(), 2);
        let out = merge_tiled(vec![(whole.clone(), false), (small, true)], 0.45);
        assert_eq!(out, vec![whole]);
    }

    #[test]
    fn regions_grow_around_faces_clip_to_the_frame_and_merge_when_they_overlap() {
        // A 40x40 face at (100,100): 0.75 of its size on every side -> 100x100 around its centre.
        let r = face_regions(&[det(100.0, 100.0, 140.0, 140.0, 0.9)], 640, 480, 0.75, 0.0);
        assert_eq!(
            r,
            vec![SrcRect {
                x: 70.0,
                y: 70.0,
                w: 100.0,
                h: 100.0
            }]
        );
        // At the frame's corner: clipped.
        let r = face_regions(&[det(0.0, 450.0, 40.0, 480.0, 0.9)], 640, 480, 0.75, 0.0);
        assert_eq!(
            (r[0].x, r[0].y, r[0].x + r[0].w, r[0].y + r[0].h),
            (0.0, 427.0, 70.0, 480.0)
        );
        // A tiny face: at least min_side a side.
        let r = face_regions(
            &[det(300.0, 200.0, 304.0, 204.0, 0.9)],
            640,
            480,
            0.75,
            48.0,
        );
        assert_eq!((r[0].w, r[0].h), (48.0, 48.0));
        // Two faces whose regions overlap become one region holding both; a third far away stays
        // apart; a chain (A overlaps B only after B merged with C) ends as one region.
        let faces = [
            det(100.0, 100.0, 140.0, 140.0, 0.9),
            det(180.0, 100.0, 220.0, 140.0, 0.8),
            det(500.0, 300.0, 540.0, 340.0, 0.7),
        ];
        let mut r = face_regions(&faces, 640, 480, 0.75, 0.0);
        r.sort_by(|a, b| a.x.total_cmp(&b.x));
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].x, r[0].w), (70.0, 180.0));
        assert_eq!((r[1].x, r[1].y), (470.0, 270.0));
        let chain = [
            det(100.0, 100.0, 140.0, 140.0, 0.9),
            det(260.0, 100.0, 300.0, 140.0, 0.9),
            det(180.0, 160.0, 220.0, 200.0, 0.9),
        ];
        assert_eq!(face_regions(&chain, 640, 480, 0.75, 0.0).len(), 1);
        // Nothing known, nothing to search; empty boxes are ignored.
        assert!(face_regions(&[], 640, 480, 0.75, 0.0).is_empty());
        assert!(face_regions(&[det(5.0, 5.0, 5.0, 9.0, 0.9)], 640, 480, 0.75, 0.0).is_empty());
    }

    #[test]
    fn a_followed_region_is_seen_so_its_smallest_face_has_the_size_asked() {
        let r = SrcRect {
            x: 0.0,
            y: 0.0,
            w: 600.0,
            h: 400.0,
        };
        // Faces of 200 and 150 px (shorter side) at a frame scale of 0.5: the smaller one is
        // 75 px at that scale; 60 px asked: 0.8 of the frame's scale.
        let faces = [
            det(100.0, 100.0, 300.0, 320.0, 0.9),
            det(350.0, 100.0, 500.0, 280.0, 0.9),
        ];
        assert!((follow_scale(&r, &faces, 60.0, 0.5) - 0.8).abs() < 1e-6);
        // Never finer than the frame's scale.
        assert_eq!(follow_scale(&r, &faces, 200.0, 0.5), 1.0);
        // A face whose centre is outside the region does not count; none: the frame's scale.
        let away = [det(700.0, 100.0, 720.0, 120.0, 0.9)];
        assert_eq!(follow_scale(&r, &away, 60.0, 0.5), 1.0);
        let both = [faces[0].clone(), away[0].clone()];
        assert!((follow_scale(&r, &both, 60.0, 0.5) - 0.6).abs() < 1e-6);
    }

    #[test]
    fn a_region_is_seen_at_the_frame_scale_and_grows_to_fill_the_alignment() {
        let r = SrcRect {
            x: 70.0,
            y: 70.0,
            w: 100.0,
            h: 150.0,
        };
        let s = 4.0 / 3.0;
        // 133 x 200 tensor pixels pad to 160 x 224: the region grows to 120 x 168 frame pixels.
        let (g, q) = region_plan(r, (640.0, 480.0), (s, s), 32);
        assert_eq!((g.x, g.y, g.w, g.h), (70.0, 70.0, 120.0, 168.0));
        assert_eq!((q.content_w, q.content_h), (160, 224));
        assert_eq!((q.tensor_w, q.tensor_h), (160, 224));
        assert!((q.scale_x - s).abs() < 1e-6 && (q.scale_y - s).abs() < 1e-6);
        // At the right and bottom edges it grows left and up instead.
        let edge = SrcRect {
            x: 540.0,
            y: 330.0,
            w: 100.0,
            h: 150.0,
        };
        let (g, q) = region_plan(edge, (640.0, 480.0), (s, s), 32);
        assert_eq!((g.x + g.w, g.y + g.h), (640.0, 480.0));
        assert_eq!((g.w, g.h, q.content_w), (120.0, 168.0, 160));
        // A frame smaller than the padded size: all of it, the rest padded.
        let small = SrcRect {
            x: 0.0,
            y: 0.0,
            w: 50.0,
            h: 40.0,
        };
        let (g, q) = region_plan(small, (50.0, 40.0), (1.0, 1.0), 32);
        assert_eq!((g.w, g.h), (50.0, 40.0));
        assert_eq!(
            (q.content_w, q.content_h, q.tensor_w, q.tensor_h),
            (50, 40, 64, 64)
        );
    }
}
