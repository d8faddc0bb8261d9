//! Drawing on packed RGB-family frames in place: boxes, dots, text (8x8 bitmap font, scaled)
//! and a blur for privacy. Works on the mapped plane with its stride; no copy of the frame.

use font8x8::UnicodeFonts;

pub type Rgb = [u8; 3];

/// A writable packed frame: `bpp` bytes per pixel, R/G/B at byte offsets `off`.
pub struct Canvas<'a> {
    pub data: &'a mut [u8],
    pub stride: usize,
    pub width: usize,
    pub height: usize,
    pub bpp: usize,
    pub off: [usize; 3],
}

impl Canvas<'_> {
    #[inline]
    fn put(&mut self, x: usize, y: usize, c: Rgb) {
        if x < self.width && y < self.height {
            let i = y * self.stride + x * self.bpp;
            self.data[i + self.off[0]] = c[0];
            self.data[i + self.off[1]] = c[1];
            self.data[i + self.off[2]] = c[2];
        }
    }

    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = y * self.stride + x * self.bpp;
        [
            self.data[i + self.off[0]],
            self.data[i + self.off[1]],
            self.data[i + self.off[2]],
        ]
    }

    /// Filled rectangle, clipped to the frame.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: Rgb) {
        let x0 = x.clamp(0, self.width as i64) as usize;
        let y0 = y.clamp(0, self.height as i64) as usize;
        let x1 = (x + w).clamp(0, self.width as i64) as usize;
        let y1 = (y + h).clamp(0, self.height as i64) as usize;
        for yy in y0..y1 {
            for xx in x0..x1 {
                self.put(xx, yy, c);
            }
        }
    }

    /// Rectangle outline of thickness `t`, drawn inside the box.
    pub fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, t: i64, c: Rgb) {
        let t = t.max(1).min(w.max(1)).min(h.max(1));
        self.fill_rect(x, y, w, t, c);
        self.fill_rect(x, y + h - t, w, t, c);
        self.fill_rect(x, y, t, h, c);
        self.fill_rect(x + w - t, y, t, h, c);
    }

    /// Filled square dot centred on (x, y).
    pub fn dot(&mut self, x: f32, y: f32, r: i64, c: Rgb) {
        let (x, y) = (x.round() as i64, y.round() as i64);
        self.fill_rect(x - r, y - r, 2 * r + 1, 2 * r + 1, c);
    }

    /// Text height in pixels at `scale`.
    pub fn text_height(scale: usize) -> usize {
        8 * scale
    }

    pub fn text_width(text: &str, scale: usize) -> usize {
        text.chars().count() * 8 * scale
    }

    /// Draws `text` with its top-left at (x, y), on a filled background for readability.
    pub fn label(&mut self, x: i64, y: i64, text: &str, scale: usize, fg: Rgb, bg: Rgb) {
        let scale = scale.max(1);
        let pad = scale as i64;
        let w = Self::text_width(text, scale) as i64 + 2 * pad;
        let h = Self::text_height(scale) as i64 + 2 * pad;
        self.fill_rect(x, y, w, h, bg);
        for (i, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS
                .get(ch)
                .or_else(|| font8x8::BASIC_FONTS.get('?'));
            let Some(glyph) = glyph else { continue };
            let gx = x + pad + (i * 8 * scale) as i64;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.fill_rect(
                            gx + (col * scale) as i64,
                            y + pad + (row * scale) as i64,
                            scale as i64,
                            scale as i64,
                            fg,
                        );
                    }
                }
            }
        }
    }

    /// Blurs a rectangle beyond recognition: coarse pixelation followed by a box blur of the
    /// blocks, so no detail finer than a sixth of the box survives.
    pub fn blur_rect(&mut self, x: i64, y: i64, w: i64, h: i64) {
        let x0 = x.clamp(0, self.width as i64) as usize;
        let y0 = y.clamp(0, self.height as i64) as usize;
        let x1 = (x + w).clamp(0, self.width as i64) as usize;
        let y1 = (y + h).clamp(0, self.height as i64) as usize;
        if x1 <= x0 || y1 <= y0 {
            return;
        }
        let block = ((x1 - x0).max(y1 - y0) / 6).max(4);
        let mut by = y0;
        while by < y1 {
            let bye = (by + block).min(y1);
            let mut bx = x0;
            while bx < x1 {
                let bxe = (bx + block).min(x1);
                let mut acc = [0u64; 3];
                let n = ((bxe - bx) * (bye - by)) as u64;
                for yy in by..bye {
                    for xx in bx..bxe {
                        let p = self.get(xx, yy);
                        for j in 0..3 {
                            acc[j] += p[j] as u64;
                        }
                    }
                }
                let c = acc.map(|a| (a / n) as u8);
                for yy in by..bye {
                    for xx in bx..bxe {
                        self.put(xx, yy, c);
                    }
                }
                bx = bxe;
            }
            by = bye;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas(data: &mut [u8], w: usize, h: usize) -> Canvas<'_> {
        Canvas {
            data,
            stride: w * 4 + 8,
            width: w,
            height: h,
            bpp: 4,
            off: [2, 1, 0],
        }
    }

    #[test]
    fn rect_outline_is_drawn_and_clipped() {
        let mut buf = vec![0u8; (20 * 4 + 8) * 10];
        let mut c = canvas(&mut buf, 20, 10);
        c.rect(2, 2, 6, 5, 1, [255, 0, 0]);
        assert_eq!(c.get(2, 2), [255, 0, 0]);
        assert_eq!(c.get(7, 6), [255, 0, 0]);
        assert_eq!(c.get(4, 4), [0, 0, 0], "inside stays untouched");
        c.rect(15, 5, 20, 20, 2, [0, 255, 0]); // partly outside: no panic
        assert_eq!(c.get(15, 9), [0, 255, 0]);
        assert_eq!(c.get(19, 5), [0, 255, 0]);
        // BGRx byte order: red is at byte 2.
        assert_eq!(buf[2 * 4 + 2 * (20 * 4 + 8) + 2], 255);
    }

    #[test]
    fn label_draws_glyph_pixels_on_background() {
        let mut buf = vec![0u8; (40 * 4 + 8) * 12];
        let mut c = canvas(&mut buf, 40, 12);
        c.label(0, 0, "A", 1, [255, 255, 255], [0, 0, 255]);
        let mut fg = 0;
        let mut bg = 0;
        for y in 0..10 {
            for x in 0..10 {
                match c.get(x, y) {
                    [255, 255, 255] => fg += 1,
                    [0, 0, 255] => bg += 1,
                    _ => {}
                }
            }
        }
        assert!(fg > 10 && bg > 40, "fg {fg} bg {bg}");
    }

    #[test]
    fn blur_removes_detail() {
        let (w, h) = (48, 48);
        let mut buf = vec![0u8; (w * 4 + 8) * h];
        let mut c = canvas(&mut buf, w, h);
        // Checkerboard of 1-px cells.
        for y in 0..h {
            for x in 0..w {
                let v = if (x + y) % 2 == 0 { 255 } else { 0 };
                c.put(x, y, [v, v, v]);
            }
        }
        c.blur_rect(0, 0, 48, 48);
        for y in 0..h {
            for x in 0..w {
                let v = c.get(x, y)[0];
                assert!((100..=155).contains(&v), "({x},{y}) = {v}");
            }
        }
    }
}
