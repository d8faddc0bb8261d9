//! Where the picture changed since it was last searched: the mean luma of 16-pixel cells,
//! each compared with the value it had when a detection last covered it. `facedetect
//! motion-scan` searches only those parts (and the known faces) instead of the whole frame:
//! a part of the picture that did not change gives the detector what it gave before.

use crate::preprocess::{ImageView, PixelFormat, Sampler, SrcRect, with_sampler};

/// Side of a cell, frame pixels.
pub const CELL_PX: usize = 16;

/// A cell changed when its mean luma (0-255) moved by more than this since it was last
/// searched. Calibrated on the project's videos, frames 0.6 s apart (a scan every 3rd frame
/// at 5 analysed frames/s): on static parts of the picture the change is noise, median
/// 0.1-0.5 (vtest.avi, a fixed camera at 768×576; the face videos H.264-encoded at 720p and
/// 1080p); on vtest.avi the share of changed cells falls from 7.8 % at 4 to 6.3 % at 8 and
/// 5.6 % at 12, the people walking, so above 8 what is left is motion. A noisier camera
/// only makes more cells count as changed: more is searched, nothing is skipped.
pub const THRESHOLD: f32 = 8.0;

/// The luma of each cell now and when it was last searched.
#[derive(Debug, Default, Clone)]
pub struct ChangeMap {
    width: usize,
    height: usize,
    cols: usize,
    rows: usize,
    current: Vec<f32>,
    /// NaN: never searched.
    reference: Vec<f32>,
    /// Luma sums and pixel counts per cell while measuring (kept: no allocation per frame).
    sums: Vec<u32>,
    counts: Vec<u32>,
}

impl ChangeMap {
    /// Measures the cells of `img` (a new frame size starts afresh: nothing searched yet).
    pub fn measure(&mut self, img: &ImageView) {
        if img.width != self.width || img.height != self.height {
            self.width = img.width;
            self.height = img.height;
            self.cols = img.width.div_ceil(CELL_PX);
            self.rows = img.height.div_ceil(CELL_PX);
            self.reference = vec![f32::NAN; self.cols * self.rows];
        }
        self.sums.clear();
        self.sums.resize(self.cols * self.rows, 0);
        self.counts.clear();
        self.counts.resize(self.cols * self.rows, 0);
        cell_sums(img, self.cols, &mut self.sums, &mut self.counts);
        self.current.clear();
        self.current.extend(
            self.sums
                .iter()
                .zip(&self.counts)
                .map(|(&s, &n)| s as f32 / n.max(1) as f32),
        );
    }

    /// Whether every cell was searched at least once (before that only a whole-frame search
    /// is right).
    pub fn ready(&self) -> bool {
        !self.reference.is_empty() && self.reference.iter().all(|r| !r.is_nan())
    }

    /// The parts of the frame that changed since they were last searched: the bounding boxes
    /// of 8-connected groups of changed cells, in frame pixels, clipped to the frame.
    pub fn changed(&self, threshold: f32) -> Vec<SrcRect> {
        let (cols, rows) = (self.cols, self.rows);
        let hit: Vec<bool> = self
            .current
            .iter()
            .zip(&self.reference)
            .map(|(c, r)| r.is_nan() || (c - r).abs() > threshold)
            .collect();
        let mut seen = vec![false; hit.len()];
        let mut out = Vec::new();
        let mut stack = Vec::new();
        for start in 0..hit.len() {
            if !hit[start] || seen[start] {
                continue;
            }
            seen[start] = true;
            stack.push(start);
            let (mut x1, mut y1, mut x2, mut y2) = (cols, rows, 0, 0);
            while let Some(i) = stack.pop() {
                let (x, y) = (i % cols, i / cols);
                (x1, y1, x2, y2) = (x1.min(x), y1.min(y), x2.max(x), y2.max(y));
                for ny in y.saturating_sub(1)..=(y + 1).min(rows - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(cols - 1) {
                        let j = ny * cols + nx;
                        if hit[j] && !seen[j] {
                            seen[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
            let px = |c: usize, max: usize| (c * CELL_PX).min(max) as f32;
            let (fx1, fy1) = (px(x1, self.width), px(y1, self.height));
            let (fx2, fy2) = (px(x2 + 1, self.width), px(y2 + 1, self.height));
            out.push(SrcRect {
                x: fx1,
                y: fy1,
                w: fx2 - fx1,
                h: fy2 - fy1,
            });
        }
        out
    }

    /// The cells that lie wholly inside one of `regions` (frame pixels) were searched: their
    /// luma now is what later frames are compared with.
    pub fn searched(&mut self, regions: &[SrcRect]) {
        for r in regions {
            let c1 = (r.x.max(0.0) as usize).div_ceil(CELL_PX);
            let r1 = (r.y.max(0.0) as usize).div_ceil(CELL_PX);
            let right = (r.x + r.w).max(0.0) as usize;
            let bottom = (r.y + r.h).max(0.0) as usize;
            // A cell at the frame's right or bottom edge is whole when the region reaches it.
            let c2 = if right >= self.width {
                self.cols
            } else {
                right / CELL_PX
            };
            let r2 = if bottom >= self.height {
                self.rows
            } else {
                bottom / CELL_PX
            };
            for y in r1..r2.min(self.rows) {
                for x in c1..c2.min(self.cols) {
                    let i = y * self.cols + x;
                    self.reference[i] = self.current[i];
                }
            }
        }
    }

    /// The whole frame was searched.
    pub fn searched_all(&mut self) {
        self.reference.clone_from(&self.current);
    }
}

/// Adds the luma of each `CELL_PX` cell (`cols` a row; the last row and column of cells may
/// be smaller) to `sums` and its pixels to `counts`, every other row read: the Y plane of YUV
/// frames as it is, RGB frames through BT.601 weights.
fn cell_sums(img: &ImageView, cols: usize, sums: &mut [u32], counts: &mut [u32]) {
    let (w, h) = (img.width, img.height);
    match img.format {
        PixelFormat::I420 | PixelFormat::Nv12 | PixelFormat::Gray8 => {
            let p = &img.planes[0];
            for y in (0..h).step_by(2) {
                let row = &p.data[y * p.stride..y * p.stride + w];
                let base = (y / CELL_PX) * cols;
                for (cx, chunk) in row.chunks(CELL_PX).enumerate() {
                    sums[base + cx] += chunk.iter().map(|&v| v as u32).sum::<u32>();
                    counts[base + cx] += chunk.len() as u32;
                }
            }
        }
        _ => with_sampler!(img, s => {
            for y in (0..h).step_by(2) {
                let base = (y / CELL_PX) * cols;
                for x in (0..w).step_by(2) {
                    sums[base + x / CELL_PX] += s.luma(x, y).round() as u32;
                    counts[base + x / CELL_PX] += 1;
                }
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::Plane;

    fn gray(w: usize, h: usize, data: &[u8]) -> ImageView<'_> {
        let p = Plane { data, stride: w };
        ImageView::new(PixelFormat::Gray8, w, h, &[p]).unwrap()
    }

    #[test]
    fn nothing_searched_means_everything_changed() {
        let px = vec![100u8; 40 * 20];
        let mut m = ChangeMap::default();
        m.measure(&gray(40, 20, &px));
        assert!(!m.ready());
        assert_eq!(
            m.changed(THRESHOLD),
            vec![SrcRect {
                x: 0.0,
                y: 0.0,
                w: 40.0,
                h: 20.0
            }]
        );
        m.searched_all();
        assert!(m.ready());
        assert!(m.changed(THRESHOLD).is_empty());
    }

    #[test]
    fn changed_cells_group_into_boxes_and_noise_does_not_count() {
        let (w, h) = (128, 64);
        let mut px = vec![100u8; w * h];
        let mut m = ChangeMap::default();
        m.measure(&gray(w, h, &px));
        m.searched_all();
        // Noise, and the whole picture 5 levels brighter: nothing changed.
        for (i, v) in px.iter_mut().enumerate() {
            *v = 105 + (i % 7) as u8 - 3;
        }
        m.measure(&gray(w, h, &px));
        assert!(m.changed(THRESHOLD).is_empty());
        // Something bright at x 20..40, y 4..30 (cells 1-2, 0-1), and at x 100..110 (cell 6).
        for y in 4..30 {
            for x in (20..40).chain(100..110) {
                px[y * w + x] = 250;
            }
        }
        m.measure(&gray(w, h, &px));
        let mut boxes = m.changed(THRESHOLD);
        boxes.sort_by(|a, b| a.x.total_cmp(&b.x));
        assert_eq!(
            boxes,
            vec![
                SrcRect {
                    x: 16.0,
                    y: 0.0,
                    w: 32.0,
                    h: 32.0
                },
                SrcRect {
                    x: 96.0,
                    y: 0.0,
                    w: 16.0,
                    h: 32.0
                }
            ]
        );
        // Searching the first box's cells (and a region that covers cell 6 only in part)
        // leaves the second changed.
        m.searched(&[
            SrcRect {
                x: 10.0,
                y: 0.0,
                w: 45.0,
                h: 40.0,
            },
            SrcRect {
                x: 100.0,
                y: 0.0,
                w: 28.0,
                h: 64.0,
            },
        ]);
        assert_eq!(
            m.changed(THRESHOLD),
            vec![SrcRect {
                x: 96.0,
                y: 0.0,
                w: 16.0,
                h: 32.0
            }]
        );
    }

    #[test]
    fn ragged_edges_and_a_new_size() {
        // 40 x 20: cells of 16, 16, 8 by 16, 4.
        let mut px = vec![50u8; 40 * 20];
        let mut m = ChangeMap::default();
        m.measure(&gray(40, 20, &px));
        m.searched_all();
        for y in 16..20 {
            for x in 32..40 {
                px[y * 40 + x] = 200;
            }
        }
        m.measure(&gray(40, 20, &px));
        assert_eq!(
            m.changed(THRESHOLD),
            vec![SrcRect {
                x: 32.0,
                y: 16.0,
                w: 8.0,
                h: 4.0
            }]
        );
        // A region reaching the frame's corner covers the ragged cell.
        m.searched(&[SrcRect {
            x: 30.0,
            y: 10.0,
            w: 10.0,
            h: 10.0,
        }]);
        assert!(m.changed(THRESHOLD).is_empty());
        m.measure(&gray(20, 10, &px[..200]));
        assert!(!m.ready(), "a new frame size starts afresh");
    }
}
