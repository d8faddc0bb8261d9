//! Face embeddings: aligned 112x112 crops warped straight from the frame into the model's
//! batch tensor, one run for every face of a frame, L2-normalised outputs.

use crate::align::align_into;
use crate::inference::{EngineHandle, InferenceError};
use crate::models::DecoderKind;
use crate::preprocess::{ImageView, TensorTarget};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Inference(#[from] InferenceError),
    #[error("model '{0}' is not an embedding model (decoder {1:?})")]
    WrongDecoder(String, DecoderKind),
    #[error("model '{0}' has no output '{1}'")]
    MissingOutput(String, String),
    #[error("model '{model}' returned {got} values for {faces} faces, expected {dims} per face")]
    Shape {
        model: String,
        got: usize,
        faces: usize,
        dims: usize,
    },
}

pub struct FaceEmbedder {
    engine: EngineHandle,
    output: usize,
    dims: usize,
    target: TensorTarget,
}

impl FaceEmbedder {
    pub fn new(engine: EngineHandle) -> Result<Self, EmbedError> {
        let spec = &engine.model.spec;
        if spec.output.decoder != DecoderKind::Embedding {
            return Err(EmbedError::WrongDecoder(
                spec.name.clone(),
                spec.output.decoder,
            ));
        }
        let name = spec.output.names.first().cloned().unwrap_or_default();
        let output = engine
            .output_index(&name)
            .ok_or_else(|| EmbedError::MissingOutput(spec.name.clone(), name.clone()))?;
        let dims = spec.output.dims.unwrap_or(0);
        let (h, w) = spec.input.fixed_size().unwrap_or((112, 112));
        let target = TensorTarget::from_spec(&spec.input, w as usize, h as usize);
        Ok(FaceEmbedder {
            engine,
            output,
            dims,
            target,
        })
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn model_name(&self) -> &str {
        &self.engine.model.spec.name
    }

    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    /// One L2-normalised embedding per face (given by its five landmarks), in one model run.
    pub fn embed(
        &self,
        img: &ImageView,
        faces: &[[[f32; 2]; 5]],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.run(img, faces, false)
    }

    /// Like [`Self::embed`], each face averaged with its mirror image (the aligned crop
    /// flipped left to right; the ArcFace template is symmetric to half a pixel), as ArcFace
    /// evaluation does: one model run of twice the faces. Enrolment uses it (a reference
    /// that is not biased towards one side of the face); live matching does not (twice the
    /// cost for no measurable gain, docs/benchmarks.md).
    pub fn embed_with_mirror(
        &self,
        img: &ImageView,
        faces: &[[[f32; 2]; 5]],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.run(img, faces, true)
    }

    /// One model run over the aligned faces (each followed by its mirror when `mirror`).
    fn run(
        &self,
        img: &ImageView,
        faces: &[[[f32; 2]; 5]],
        mirror: bool,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let per_face = if mirror { 2 } else { 1 };
        let item = self.target.len();
        let t = self.target;
        let shape = [
            (per_face * faces.len()) as i64,
            3,
            t.height as i64,
            t.width as i64,
        ];
        let out = self.engine.run_with(shape, |dst| {
            for (lm, slots) in faces.iter().zip(dst.chunks_exact_mut(per_face * item)) {
                let (face, flipped) = slots.split_at_mut(item);
                align_into(img, lm, &t, face);
                // Empty unless mirrored: each row of each plane reversed.
                for (src, dst) in face
                    .chunks_exact(t.width)
                    .zip(flipped.chunks_exact_mut(t.width))
                {
                    for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                        *d = *s;
                    }
                }
            }
        })?;
        let data = &out[self.output].data;
        if data.len() != per_face * faces.len() * self.dims {
            return Err(EmbedError::Shape {
                model: self.model_name().to_string(),
                got: data.len(),
                faces: per_face * faces.len(),
                dims: self.dims,
            });
        }
        Ok(data
            .chunks_exact(per_face * self.dims)
            .map(|views| {
                let (a, b) = views.split_at(self.dims);
                if b.is_empty() {
                    return l2_normalised(a);
                }
                let sum: Vec<f32> = a.iter().zip(b).map(|(x, y)| x + y).collect();
                l2_normalised(&sum)
            })
            .collect())
    }
}

/// `v / |v|` (a zero vector stays zero).
pub fn l2_normalised(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter().map(|x| x / n).collect()
    } else {
        v.to_vec()
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Embeddings of image regions stretched to the model's input (person re-identification:
/// OSNet takes a 128x256 crop of the person box), one model run for every box of a frame.
pub struct CropEmbedder {
    engine: EngineHandle,
    output: usize,
    dims: usize,
    target: TensorTarget,
}

impl CropEmbedder {
    pub fn new(engine: EngineHandle) -> Result<Self, EmbedError> {
        let spec = &engine.model.spec;
        if spec.output.decoder != DecoderKind::Embedding {
            return Err(EmbedError::WrongDecoder(
                spec.name.clone(),
                spec.output.decoder,
            ));
        }
        let name = spec.output.names.first().cloned().unwrap_or_default();
        let output = engine
            .output_index(&name)
            .ok_or_else(|| EmbedError::MissingOutput(spec.name.clone(), name.clone()))?;
        let (h, w) = spec.input.fixed_size().unwrap_or((256, 128));
        let target = TensorTarget::from_spec(&spec.input, w as usize, h as usize);
        Ok(CropEmbedder {
            dims: spec.output.dims.unwrap_or(0),
            engine,
            output,
            target,
        })
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn model_name(&self) -> &str {
        &self.engine.model.spec.name
    }

    /// One L2-normalised embedding per box (x1, y1, x2, y2 in frame pixels, clipped).
    pub fn embed(&self, img: &ImageView, boxes: &[[f32; 4]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if boxes.is_empty() {
            return Ok(Vec::new());
        }
        let item = self.target.len();
        let t = self.target;
        let shape = [boxes.len() as i64, 3, t.height as i64, t.width as i64];
        let (fw, fh) = (img.width as f32, img.height as f32);
        let out = self.engine.run_with(shape, |dst| {
            for (b, slot) in boxes.iter().zip(dst.chunks_exact_mut(item)) {
                let x1 = b[0].clamp(0.0, fw - 1.0);
                let y1 = b[1].clamp(0.0, fh - 1.0);
                let src = crate::preprocess::SrcRect {
                    x: x1,
                    y: y1,
                    w: (b[2].min(fw) - x1).max(1.0),
                    h: (b[3].min(fh) - y1).max(1.0),
                };
                crate::preprocess::resize_into(img, src, t.width, t.height, &t, slot);
            }
        })?;
        let data = &out[self.output].data;
        if data.len() != boxes.len() * self.dims {
            return Err(EmbedError::Shape {
                model: self.model_name().to_string(),
                got: data.len(),
                faces: boxes.len(),
                dims: self.dims,
            });
        }
        Ok(data.chunks_exact(self.dims).map(l2_normalised).collect())
    }
}
