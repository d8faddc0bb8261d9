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
}

impl Default for DetectParams {
    fn default() -> Self {
        DetectParams {
            score_threshold: 0.75,
            nms_threshold: 0.3,
            inference_width: 640,
            inference_height: 0,
            min_face_size: 0.0,
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
        let src = SrcRect {
            x: 0.0,
            y: 0.0,
            w: img.width as f32,
            h: img.height as f32,
        };
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
        let spec = &self.engine.model.spec;
        let plan = plan_for(&spec.input, img.width, img.height, p);
        let target = TensorTarget::from_spec(&spec.input, plan.tensor_w, plan.tensor_h);
        let src = SrcRect {
            x: 0.0,
            y: 0.0,
            w: img.width as f32,
            h: img.height as f32,
        };
        let shape = [1, 3, plan.tensor_h as i64, plan.tensor_w as i64];
        let strides = spec.output.strides.clone();
        let o = self.engine.run_with(shape, |dst| {
            resize_into(img, src, plan.content_w, plan.content_h, &target, dst)
        })?;
        let raw = decode_yolox(
            &o[self.output].data,
            plan.tensor_w,
            plan.tensor_h,
            &strides,
            0,
            p.score_threshold,
        )?;
        let mut dets = nms(raw, p.nms_threshold);
        let (fw, fh) = (img.width as f32, img.height as f32);
        for d in dets.iter_mut() {
            d.unscale(plan.scale_x, plan.scale_y, fw, fh);
        }
        dets.retain(|d| d.width().min(d.height()) >= p.min_face_size && d.area() > 0.0);
        Ok(dets)
    }
}
