//! Face quality for deciding when a face is worth (re-)embedding: size, sharpness and
//! frontality, each in 0..1, multiplied.

use crate::postprocess::Detection;
use crate::preprocess::{ImageView, Sampler, with_sampler};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Shorter box side in pixels.
    pub size: f32,
    /// Variance of the Laplacian of the luma on a 32x32 grid over the face (higher = sharper).
    pub sharpness: f32,
    /// 1 for a frontal face, towards 0 as the nose moves towards one eye (yaw).
    pub frontality: f32,
    /// Combined score, 0..1.
    pub score: f32,
}

/// Size at which a face counts as fully usable (MobileFaceNet is reliable from ~40 px).
const FULL_SIZE: f32 = 64.0;
/// Laplacian variance at which a face counts as sharp (32x32 grid, luma 0..255).
const FULL_SHARPNESS: f32 = 150.0;

pub fn frontality(lm: &[[f32; 2]; 5]) -> f32 {
    let [re, le, nose, _, _] = *lm;
    let eye_dist = ((le[0] - re[0]).powi(2) + (le[1] - re[1]).powi(2)).sqrt();
    if eye_dist <= 1e-3 {
        return 0.0;
    }
    let mid = (re[0] + le[0]) / 2.0;
    (1.0 - 2.0 * (nose[0] - mid).abs() / eye_dist).clamp(0.0, 1.0)
}

/// Laplacian variance of the luma sampled on a 32x32 grid inside the face box.
pub fn sharpness(img: &ImageView, d: &Detection) -> f32 {
    const G: usize = 32;
    let (x0, y0) = (d.x1.max(0.0), d.y1.max(0.0));
    let (w, h) = (
        (d.x2.min(img.width as f32) - x0).max(1.0),
        (d.y2.min(img.height as f32) - y0).max(1.0),
    );
    let mut grid = [[0f32; G]; G];
    with_sampler!(img, s => {
        for (gy, row) in grid.iter_mut().enumerate() {
            for (gx, v) in row.iter_mut().enumerate() {
                let x = (x0 + (gx as f32 + 0.5) * w / G as f32) as usize;
                let y = (y0 + (gy as f32 + 0.5) * h / G as f32) as usize;
                *v = s.luma(x.min(img.width - 1), y.min(img.height - 1));
            }
        }
    });
    let mut vals = Vec::with_capacity((G - 2) * (G - 2));
    for y in 1..G - 1 {
        for x in 1..G - 1 {
            vals.push(
                grid[y - 1][x] + grid[y + 1][x] + grid[y][x - 1] + grid[y][x + 1]
                    - 4.0 * grid[y][x],
            );
        }
    }
    let mean = vals.iter().sum::<f32>() / vals.len() as f32;
    vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / vals.len() as f32
}

/// The face region of the ArcFace 112x112 crop (cheek to cheek, brow to chin): where
/// [`aligned`] looks.
const FACE_REGION: (usize, usize, usize, usize) = (16, 16, 96, 112);

/// What the embedder will see of a face, measured on its aligned 112x112 crop (so the same
/// for a face of 60 or 600 px): the fraction of the face region that lies outside the photo
/// (a face cut by the frame edge; the detector clips its box to the frame, so the box cannot
/// tell), and the Laplacian variance of the luma over the region's part inside the photo
/// (blur at the scale of the face; luma 0..255).
pub fn aligned(img: &ImageView, lm: &[[f32; 2]; 5]) -> (f32, f32) {
    use crate::align::{ARCFACE_112, RAW_CROP_112, invert, similarity_transform, warp_into};
    let t = RAW_CROP_112;
    let inv = invert(&similarity_transform(lm, &ARCFACE_112));
    let mut planar = vec![0f32; t.len()];
    warp_into(img, &inv, &t, &mut planar);
    let n = 112 * 112;
    let (x0, y0, x1, y1) = FACE_REGION;
    let inside = |u: usize, v: usize| {
        let (u, v) = (u as f32, v as f32);
        let x = inv[0][0] * u + inv[0][1] * v + inv[0][2];
        let y = inv[1][0] * u + inv[1][1] * v + inv[1][2];
        x >= 0.0 && y >= 0.0 && x <= (img.width - 1) as f32 && y <= (img.height - 1) as f32
    };
    let luma = |u: usize, v: usize| {
        let i = v * 112 + u;
        (planar[i] + planar[n + i] + planar[2 * n + i]) / 3.0
    };
    let (mut out, mut total) = (0usize, 0usize);
    let mut lap = Vec::new();
    for v in y0..y1 {
        for u in x0..x1 {
            total += 1;
            if !inside(u, v) {
                out += 1;
                continue;
            }
            // The Laplacian where it and its four neighbours are in the photo.
            if u > 0
                && v > 0
                && u < 111
                && v < 111
                && inside(u - 1, v)
                && inside(u + 1, v)
                && inside(u, v - 1)
                && inside(u, v + 1)
            {
                lap.push(
                    luma(u - 1, v) + luma(u + 1, v) + luma(u, v - 1) + luma(u, v + 1)
                        - 4.0 * luma(u, v),
                );
            }
        }
    }
    let sharpness = if lap.is_empty() {
        0.0
    } else {
        let mean = lap.iter().sum::<f32>() / lap.len() as f32;
        lap.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / lap.len() as f32
    };
    (out as f32 / total as f32, sharpness)
}

pub fn assess(img: &ImageView, d: &Detection) -> Quality {
    let size = d.width().min(d.height());
    let sharp = sharpness(img, d);
    let front = d.landmarks.as_ref().map_or(0.0, frontality);
    let score = (size / FULL_SIZE).clamp(0.0, 1.0)
        * (sharp / FULL_SHARPNESS).clamp(0.05, 1.0)
        * (0.25 + 0.75 * front);
    Quality {
        size,
        sharpness: sharp,
        frontality: front,
        score,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontal_face_scores_one_and_turned_face_less() {
        let frontal = [
            [40.0, 50.0],
            [70.0, 50.0],
            [55.0, 65.0],
            [42.0, 80.0],
            [68.0, 80.0],
        ];
        assert!((frontality(&frontal) - 1.0).abs() < 1e-6);
        let turned = [
            [40.0, 50.0],
            [70.0, 50.0],
            [66.0, 65.0],
            [42.0, 80.0],
            [68.0, 80.0],
        ];
        assert!((frontality(&turned) - (1.0 - 22.0 / 30.0)).abs() < 1e-5);
        let profile = [
            [40.0, 50.0],
            [70.0, 50.0],
            [75.0, 65.0],
            [42.0, 80.0],
            [68.0, 80.0],
        ];
        assert_eq!(frontality(&profile), 0.0);
    }

    #[test]
    fn blur_lowers_sharpness() {
        use crate::preprocess::{PixelFormat, Plane};
        let (w, h) = (64usize, 64usize);
        let sharp: Vec<u8> = (0..w * h)
            .map(|i| {
                if (i % w / 4 + i / w / 4) % 2 == 0 {
                    200
                } else {
                    30
                }
            })
            .collect();
        let flat = vec![120u8; w * h];
        let d = Detection {
            x1: 0.0,
            y1: 0.0,
            x2: 64.0,
            y2: 64.0,
            score: 1.0,
            landmarks: None,
            class_id: 0,
        };
        let s1 = sharpness(
            &ImageView::new(
                PixelFormat::Gray8,
                w,
                h,
                &[Plane {
                    data: &sharp,
                    stride: w,
                }],
            )
            .unwrap(),
            &d,
        );
        let s2 = sharpness(
            &ImageView::new(
                PixelFormat::Gray8,
                w,
                h,
                &[Plane {
                    data: &flat,
                    stride: w,
                }],
            )
            .unwrap(),
            &d,
        );
        assert!(s1 > 1000.0 && s2 < 1e-3, "{s1} {s2}");
    }

    #[test]
    fn aligned_crop_tells_a_face_cut_by_the_edge_and_blur() {
        use crate::preprocess::{PixelFormat, Plane};
        let (w, h) = (200usize, 200usize);
        let checker: Vec<u8> = (0..w * h)
            .map(|i| {
                if (i % w / 3 + i / w / 3) % 2 == 0 {
                    220
                } else {
                    20
                }
            })
            .collect();
        let flat = vec![128u8; w * h];
        let img = ImageView::new(
            PixelFormat::Gray8,
            w,
            h,
            &[Plane {
                data: &checker,
                stride: w,
            }],
        )
        .unwrap();
        // The ArcFace template scaled 1.5x around the middle of the image: all inside.
        let lm = |dx: f32| {
            let mut l = crate::align::ARCFACE_112;
            for p in &mut l {
                p[0] = p[0] * 1.5 + 16.0 + dx;
                p[1] = p[1] * 1.5 + 16.0;
            }
            l
        };
        let (out, sharp) = aligned(&img, &lm(0.0));
        assert_eq!(out, 0.0);
        assert!(sharp > 1000.0, "{sharp}");
        // Moved left by 60 px: the face region (template x 16..96) spans frame x -20..100,
        // a sixth of it outside.
        let (out, _) = aligned(&img, &lm(-60.0));
        assert!((out - 20.0 / 120.0).abs() < 0.02, "{out}");
        let img = ImageView::new(
            PixelFormat::Gray8,
            w,
            h,
            &[Plane {
                data: &flat,
                stride: w,
            }],
        )
        .unwrap();
        let (_, sharp) = aligned(&img, &lm(0.0));
        assert!(sharp < 1e-3, "{sharp}");
    }
}
