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
        let target =
            TensorTarget::from_spec(&self.engine.model.spec.input, plan.tensor_w, plan.tensor_h);
        let src = SrcRect::whole(img);
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
        let raw = decode_yunet(&levels, plan.tensor_w, plan.tensor_h, p.score_threshold)?;
        let mut dets = nms(raw, p.nms_threshold);
        let (fw, fh) = (img.width as f32, img.height as f32);
        for d in dets.iter_mut() {
            d.unscale(plan.scale_x, plan.scale_y, fw, fh);
        }
        dets.retain(|d| d.width().min(d.height()) >= p.min_face_size && d.area() > 0.0);
        Ok(dets)
    }
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
        let mut dets = nms(self.detect_region(img, full, p)?, p.nms_threshold);
        dets.retain(|d| d.width().min(d.height()) >= p.min_face_size && d.area() > 0.0);
        Ok(dets)
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
        for t in tiles {
            let (fw, fh) = (img.width as f32, img.height as f32);
            for d in self.detect_region(img, *t, p)? {
                // Touching an edge of the tile that is not an edge of the frame: maybe cut.
                let e = 2.0;
                let cut = (d.x1 <= t.x + e && t.x > 0.0)
                    || (d.y1 <= t.y + e && t.y > 0.0)
                    || (d.x2 >= t.x + t.w - e && t.x + t.w < fw)
                    || (d.y2 >= t.y + t.h - e && t.y + t.h < fh);
                all.push((d, cut));
            }
        }
        let mut dets = merge_tiled(all, p.nms_threshold);
        dets.retain(|d| d.width().min(d.height()) >= p.min_face_size && d.area() > 0.0);
        Ok(dets)
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
            d.x1 += src.x;
            d.x2 += src.x;
            d.y1 += src.y;
            d.y2 += src.y;
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
}
