//! Face alignment: the least-squares similarity transform (Umeyama) from the five detected
//! landmarks to the ArcFace 112x112 template, and a bilinear warp that samples the frame's
//! planes directly into the embedding model's tensor (no intermediate crop image).

use crate::preprocess::{ImageView, Sampler, TensorTarget, sample_bilinear, with_sampler};

/// The standard ArcFace 112x112 template, in the landmark order of
/// [`crate::postprocess::LANDMARK_NAMES`].
pub const ARCFACE_112: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// The aligned 112x112 face as it is: planar RGB, values 0..255, black outside the frame (for
/// looking at it: quality, saved crops; the embedders use their own normalisation).
pub const RAW_CROP_112: TensorTarget = TensorTarget {
    width: 112,
    height: 112,
    color: crate::models::ColorOrder::Rgb,
    mean: [0.0; 3],
    std: [1.0; 3],
    pad_value: 0.0,
};

/// A 2x3 affine matrix mapping source (frame) points to destination (crop) points.
pub type Affine = [[f32; 3]; 2];

/// Least-squares similarity transform (rotation, uniform scale, translation; no reflection)
/// taking `src` onto `dst` — the same as Umeyama's method / skimage SimilarityTransform for
/// point sets that are not mirrored, computed in closed form for 2-D.
pub fn similarity_transform(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Affine {
    let n = src.len().min(dst.len()).max(1) as f64;
    let mean = |p: &[[f32; 2]]| {
        let (sx, sy) = p.iter().fold((0.0f64, 0.0f64), |a, q| {
            (a.0 + q[0] as f64, a.1 + q[1] as f64)
        });
        (sx / n, sy / n)
    };
    let (msx, msy) = mean(src);
    let (mdx, mdy) = mean(dst);
    let (mut num_a, mut num_b, mut den) = (0.0f64, 0.0f64, 0.0f64);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] as f64 - msx, s[1] as f64 - msy);
        let (dx, dy) = (d[0] as f64 - mdx, d[1] as f64 - mdy);
        num_a += sx * dx + sy * dy;
        num_b += sx * dy - sy * dx;
        den += sx * sx + sy * sy;
    }
    if den <= f64::EPSILON {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    }
    let (a, b) = (num_a / den, num_b / den);
    let tx = mdx - (a * msx - b * msy);
    let ty = mdy - (b * msx + a * msy);
    [
        [a as f32, -b as f32, tx as f32],
        [b as f32, a as f32, ty as f32],
    ]
}

/// Inverse of a similarity/affine 2x3 matrix (crop -> frame).
pub fn invert(m: &Affine) -> Affine {
    let [[a, b, c], [d, e, f]] = *m;
    let det = a * e - b * d;
    let det = if det.abs() < 1e-12 { 1e-12 } else { det };
    let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
    [[ia, ib, -(ia * c + ib * f)], [id, ie, -(id * c + ie * f)]]
}

/// Warps the face given by `landmarks` into item `index` of an `[N, 3, 112, 112]` tensor:
/// bilinear, black outside the frame (as cv2.warpAffine with border 0), channel order and
/// normalisation from `target` (whose width/height must be the template size).
pub fn align_into(
    img: &ImageView,
    landmarks: &[[f32; 2]; 5],
    target: &TensorTarget,
    dst: &mut [f32],
) {
    let m = similarity_transform(landmarks, &ARCFACE_112);
    let inv = invert(&m);
    warp_into(img, &inv, target, dst);
}

/// Fills one `[3, H, W]` tensor item by sampling the frame at `inv * (u, v)` for every output
/// pixel (u, v).
pub fn warp_into(img: &ImageView, inv: &Affine, t: &TensorTarget, dst: &mut [f32]) {
    let plane = t.width * t.height;
    let oi: [usize; 3] = match t.color {
        crate::models::ColorOrder::Rgb => [0, 1, 2],
        crate::models::ColorOrder::Bgr => [2, 1, 0],
    };
    let [[a, b, c], [d, e, f]] = *inv;
    with_sampler!(img, s => {
        for v in 0..t.height {
            for u in 0..t.width {
                let (uf, vf) = (u as f32, v as f32);
                let x = a * uf + b * vf + c;
                let y = d * uf + e * vf + f;
                let rgb = sample_border(&s, img.width, img.height, x, y);
                for j in 0..3 {
                    let ch = oi[j];
                    dst[ch * plane + v * t.width + u] = (rgb[j] - t.mean[ch]) / t.std[ch];
                }
            }
        }
    })
}

/// Bilinear sample with a black border: pixels outside the frame count as 0 (cv2's
/// BORDER_CONSTANT), so crops near the frame edge fade to black as in the reference.
#[inline(always)]
fn sample_border<S: Sampler>(s: &S, w: usize, h: usize, x: f32, y: f32) -> [f32; 3] {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let inside = |xx: i64, yy: i64| xx >= 0 && yy >= 0 && (xx as usize) < w && (yy as usize) < h;
    if inside(x0, y0) && inside(x0 + 1, y0 + 1) {
        return sample_bilinear(s, w, h, x, y).unwrap_or([0.0; 3]);
    }
    let px = |xx: i64, yy: i64| {
        if inside(xx, yy) {
            s.rgb(xx as usize, yy as usize)
        } else {
            [0.0; 3]
        }
    };
    let (p00, p10, p01, p11) = (
        px(x0, y0),
        px(x0 + 1, y0),
        px(x0, y0 + 1),
        px(x0 + 1, y0 + 1),
    );
    let mut out = [0.0; 3];
    for j in 0..3 {
        let top = p00[j] + (p10[j] - p00[j]) * fx;
        let bot = p01[j] + (p11[j] - p01[j]) * fx;
        out[j] = top + (bot - top) * fy;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_known_similarity_are_recovered() {
        let m = similarity_transform(&ARCFACE_112, &ARCFACE_112);
        assert!((m[0][0] - 1.0).abs() < 1e-5 && m[0][1].abs() < 1e-5 && m[0][2].abs() < 1e-3);
        // Scale 2, rotate 90 degrees, shift (10, 20).
        let src: Vec<[f32; 2]> = ARCFACE_112.to_vec();
        let dst: Vec<[f32; 2]> = src
            .iter()
            .map(|p| [-2.0 * p[1] + 10.0, 2.0 * p[0] + 20.0])
            .collect();
        let m = similarity_transform(&src, &dst);
        assert!(
            (m[0][0]).abs() < 1e-4 && (m[0][1] + 2.0).abs() < 1e-4 && (m[1][0] - 2.0).abs() < 1e-4
        );
        assert!((m[0][2] - 10.0).abs() < 1e-2 && (m[1][2] - 20.0).abs() < 1e-2);
        let inv = invert(&m);
        let p = dst[2];
        let back = [
            inv[0][0] * p[0] + inv[0][1] * p[1] + inv[0][2],
            inv[1][0] * p[0] + inv[1][1] * p[1] + inv[1][2],
        ];
        assert!((back[0] - src[2][0]).abs() < 1e-3 && (back[1] - src[2][1]).abs() < 1e-3);
    }

    #[test]
    fn degenerate_landmarks_do_not_panic() {
        let same = [[5.0f32, 5.0]; 5];
        let m = similarity_transform(&same, &ARCFACE_112);
        assert!(m.iter().flatten().all(|v| v.is_finite()));
    }
}
