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
}
