//! Model output decoding (YuNet) and non-maximum suppression, ported from
//! `shared/models/reference_decode.py` and checked against it.

/// One detected object in frame pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
    /// Five facial landmarks (x, y) in frame pixels, in the order of [`LANDMARK_NAMES`].
    pub landmarks: Option<[[f32; 2]; 5]>,
    pub class_id: i32,
}

/// Landmark order: the person's right eye (image left), left eye, nose tip, right mouth corner,
/// left mouth corner — the ArcFace template order.
pub const LANDMARK_NAMES: [&str; 5] =
    ["right-eye", "left-eye", "nose", "right-mouth", "left-mouth"];

impl Detection {
    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }

    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }

    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    pub fn iou(&self, o: &Detection) -> f32 {
        let w = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let h = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        let inter = w * h;
        inter / (self.area() + o.area() - inter + 1e-9)
    }

    /// Moves the box and the landmarks by (`dx`, `dy`) pixels: from a region's coordinates into
    /// the frame's.
    pub fn translate(&mut self, dx: f32, dy: f32) {
        self.x1 += dx;
        self.x2 += dx;
        self.y1 += dy;
        self.y2 += dy;
        if let Some(l) = self.landmarks.as_mut() {
            for p in l.iter_mut() {
                p[0] += dx;
                p[1] += dy;
            }
        }
    }

    /// Maps tensor coordinates back to the frame: divides by the scale, clips to the frame.
    pub fn unscale(&mut self, scale_x: f32, scale_y: f32, frame_w: f32, frame_h: f32) {
        self.x1 = (self.x1 / scale_x).clamp(0.0, frame_w);
        self.x2 = (self.x2 / scale_x).clamp(0.0, frame_w);
        self.y1 = (self.y1 / scale_y).clamp(0.0, frame_h);
        self.y2 = (self.y2 / scale_y).clamp(0.0, frame_h);
        if let Some(l) = self.landmarks.as_mut() {
            for p in l.iter_mut() {
                p[0] /= scale_x;
                p[1] /= scale_y;
            }
        }
    }
}

/// Greedy NMS: keeps the best box, drops boxes overlapping it by more than `iou_threshold`;
/// returns the kept detections, best first (same as the reference `nms`).
pub fn nms(mut dets: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    'outer: for d in dets {
        for k in &keep {
            if k.iou(&d) > iou_threshold {
                continue 'outer;
            }
        }
        keep.push(d);
    }
    keep
}

/// The four YuNet output tensors of one stride (batch element already selected).
pub struct YunetLevel<'a> {
    pub stride: u32,
    pub cls: &'a [f32],
    pub obj: &'a [f32],
    pub bbox: &'a [f32],
    pub kps: &'a [f32],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error(
        "YuNet output for stride {stride} has {got} anchors, expected {expected} for a {w}x{h} input"
    )]
    AnchorCount {
        stride: u32,
        got: usize,
        expected: usize,
        w: usize,
        h: usize,
    },
    #[error("model output '{0}' is missing")]
    MissingOutput(String),
}

/// Decodes YuNet outputs for a `pad_w` x `pad_h` input (identical to cv::FaceDetectorYN):
/// score = sqrt(cls * obj), boxes and landmarks relative to the anchor cell.
/// Returned coordinates are in tensor pixels, before NMS.
pub fn decode_yunet(
    levels: &[YunetLevel],
    pad_w: usize,
    pad_h: usize,
    score_threshold: f32,
) -> Result<Vec<Detection>, DecodeError> {
    let mut out = Vec::new();
    for lv in levels {
        let st = lv.stride as usize;
        let (cols, rows) = (pad_w / st, pad_h / st);
        let n = cols * rows;
        if lv.cls.len() != n
            || lv.obj.len() != n
            || lv.bbox.len() != 4 * n
            || lv.kps.len() != 10 * n
        {
            return Err(DecodeError::AnchorCount {
                stride: lv.stride,
                got: lv.cls.len(),
                expected: n,
                w: pad_w,
                h: pad_h,
            });
        }
        let s = lv.stride as f32;
        for i in 0..n {
            let score = (lv.cls[i].clamp(0.0, 1.0) * lv.obj[i].clamp(0.0, 1.0)).sqrt();
            if score < score_threshold {
                continue;
            }
            let (r, c) = ((i / cols) as f32, (i % cols) as f32);
            let b = &lv.bbox[4 * i..4 * i + 4];
            let cx = (c + b[0]) * s;
            let cy = (r + b[1]) * s;
            let w = b[2].exp() * s;
            let h = b[3].exp() * s;
            let k = &lv.kps[10 * i..10 * i + 10];
            let mut lm = [[0.0f32; 2]; 5];
            for (j, p) in lm.iter_mut().enumerate() {
                p[0] = (k[2 * j] + c) * s;
                p[1] = (k[2 * j + 1] + r) * s;
            }
            out.push(Detection {
                x1: cx - w / 2.0,
                y1: cy - h / 2.0,
                x2: cx + w / 2.0,
                y2: cy + h / 2.0,
                score,
                landmarks: Some(lm),
                class_id: 0,
            });
        }
    }
    Ok(out)
}

/// Decodes YOLOX outputs `[A, 5 + classes]` for a `pad_w` x `pad_h` input (anchors by
/// stride 8, 16, 32, row-major): `cx = (tx + gx) * s`, `w = exp(tw) * s`,
/// `score = obj * cls[class_id]`. Boxes in tensor pixels, before NMS.
pub fn decode_yolox(
    out: &[f32],
    pad_w: usize,
    pad_h: usize,
    strides: &[u32],
    class_id: usize,
    score_threshold: f32,
) -> Result<Vec<Detection>, DecodeError> {
    let anchors: usize = strides
        .iter()
        .map(|&s| (pad_w / s as usize) * (pad_h / s as usize))
        .sum();
    if anchors == 0 || !out.len().is_multiple_of(anchors) || out.len() / anchors < 5 + class_id + 1
    {
        return Err(DecodeError::AnchorCount {
            stride: strides.first().copied().unwrap_or(0),
            got: out.len(),
            expected: anchors,
            w: pad_w,
            h: pad_h,
        });
    }
    let row = out.len() / anchors;
    let mut dets = Vec::new();
    let mut i = 0;
    for &st in strides {
        let s = st as usize;
        let (cols, rows) = (pad_w / s, pad_h / s);
        for gy in 0..rows {
            for gx in 0..cols {
                let r = &out[i * row..(i + 1) * row];
                i += 1;
                let score = r[4] * r[5 + class_id];
                if score <= score_threshold {
                    continue;
                }
                let sf = st as f32;
                let cx = (r[0] + gx as f32) * sf;
                let cy = (r[1] + gy as f32) * sf;
                let w = r[2].exp() * sf;
                let h = r[3].exp() * sf;
                dets.push(Detection {
                    x1: cx - w / 2.0,
                    y1: cy - h / 2.0,
                    x2: cx + w / 2.0,
                    y2: cy + h / 2.0,
                    score,
                    landmarks: None,
                    class_id: class_id as i32,
                });
            }
        }
    }
    Ok(dets)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn det(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Detection {
        Detection {
            x1,
            y1,
            x2,
            y2,
            score,
            landmarks: None,
            class_id: 0,
        }
    }

    #[test]
    fn nms_keeps_best_and_disjoint() {
        let d = vec![
            det(0.0, 0.0, 10.0, 10.0, 0.8),
            det(1.0, 1.0, 11.0, 11.0, 0.9),
            det(20.0, 20.0, 30.0, 30.0, 0.7),
        ];
        let k = nms(d, 0.3);
        assert_eq!(k.len(), 2);
        assert_eq!(k[0].score, 0.9);
        assert_eq!(k[1].score, 0.7);
    }

    #[test]
    fn nms_threshold_is_strict_greater() {
        // IoU of these two is exactly 1/3.
        let a = det(0.0, 0.0, 2.0, 1.0, 0.9);
        let b = det(1.0, 0.0, 3.0, 1.0, 0.8);
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(nms(vec![a.clone(), b.clone()], 0.34).len(), 2);
        assert_eq!(nms(vec![a, b], 0.3).len(), 1);
    }

    #[test]
    fn yunet_decode_single_anchor() {
        // 32x32 input, stride 32 -> 1 anchor; strides 8 and 16 give 16 and 4 empty anchors.
        let zeros = |n| vec![0.0f32; n];
        let (c8, o8, b8, k8) = (zeros(16), zeros(16), zeros(64), zeros(160));
        let (c16, o16, b16, k16) = (zeros(4), zeros(4), zeros(16), zeros(40));
        let cls = [0.81f32];
        let obj = [1.0f32];
        let bbox = [0.5f32, 0.5, 0.0, 0.0];
        let kps = [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.5, 0.6, 0.7, 0.8, 0.9];
        let levels = [
            YunetLevel {
                stride: 8,
                cls: &c8,
                obj: &o8,
                bbox: &b8,
                kps: &k8,
            },
            YunetLevel {
                stride: 16,
                cls: &c16,
                obj: &o16,
                bbox: &b16,
                kps: &k16,
            },
            YunetLevel {
                stride: 32,
                cls: &cls,
                obj: &obj,
                bbox: &bbox,
                kps: &kps,
            },
        ];
        let d = decode_yunet(&levels, 32, 32, 0.6).unwrap();
        assert_eq!(d.len(), 1);
        let d = &d[0];
        assert!((d.score - 0.9).abs() < 1e-6);
        assert_eq!((d.x1, d.y1, d.x2, d.y2), (0.0, 0.0, 32.0, 32.0));
        let lm = d.landmarks.unwrap();
        assert!((lm[0][0] - 3.2).abs() < 1e-5 && (lm[4][1] - 28.8).abs() < 1e-5);
    }

    #[test]
    fn yolox_decode_one_anchor() {
        // 32x32 input: 16 + 4 + 1 anchors of 85 values; the stride-32 anchor holds a person.
        let mut out = vec![0.0f32; 21 * 85];
        let a = &mut out[20 * 85..21 * 85];
        a[0] = 0.5;
        a[1] = 0.5;
        a[4] = 0.9; // objectness
        a[5] = 0.8; // person
        let d = decode_yolox(&out, 32, 32, &[8, 16, 32], 0, 0.3).unwrap();
        assert_eq!(d.len(), 1);
        assert!((d[0].score - 0.72).abs() < 1e-6);
        assert_eq!((d[0].x1, d[0].y1, d[0].x2, d[0].y2), (0.0, 0.0, 32.0, 32.0));
        assert!(decode_yolox(&out[..100], 32, 32, &[8, 16, 32], 0, 0.3).is_err());
    }

    #[test]
    fn yunet_decode_rejects_wrong_shapes() {
        let v = vec![0.0f32; 3];
        let levels = [YunetLevel {
            stride: 8,
            cls: &v,
            obj: &v,
            bbox: &v,
            kps: &v,
        }];
        assert!(matches!(
            decode_yunet(&levels, 32, 32, 0.5),
            Err(DecodeError::AnchorCount { .. })
        ));
    }
}
