//! Preprocessing straight from mapped video planes (with their strides) into model tensors.
//!
//! No intermediate full-frame image is made: every output element is sampled from the source
//! planes, converted to the model's channel order and normalised in one pass.

use crate::models::{ColorOrder, InputSpec};

/// Pixel formats the samplers read. Packed formats name their byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgbx,
    Bgrx,
    Xrgb,
    Xbgr,
    Rgba,
    Bgra,
    Argb,
    Abgr,
    Nv12,
    I420,
    Gray8,
}

impl PixelFormat {
    /// Bytes per pixel and the byte offsets of R, G, B for packed formats.
    pub fn packed_layout(self) -> Option<(usize, [usize; 3])> {
        use PixelFormat::*;
        Some(match self {
            Rgb => (3, [0, 1, 2]),
            Bgr => (3, [2, 1, 0]),
            Rgbx | Rgba => (4, [0, 1, 2]),
            Bgrx | Bgra => (4, [2, 1, 0]),
            Xrgb | Argb => (4, [1, 2, 3]),
            Xbgr | Abgr => (4, [3, 2, 1]),
            Gray8 => (1, [0, 0, 0]),
            Nv12 | I420 => return None,
        })
    }

    pub fn n_planes(self) -> usize {
        match self {
            PixelFormat::Nv12 => 2,
            PixelFormat::I420 => 3,
            _ => 1,
        }
    }
}

/// One plane of a mapped frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plane<'a> {
    pub data: &'a [u8],
    pub stride: usize,
}

/// A borrowed view of a frame's planes; validated on construction so sampling cannot go out of
/// bounds.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub planes: [Plane<'a>; 3],
    /// How YUV formats convert to RGB (ignored for RGB formats).
    pub yuv: YuvMatrix,
}

/// YUV to RGB conversion of a YUV frame: matrix and range from the caps' colorimetry.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct YuvMatrix {
    pub matrix: YuvStandard,
    /// Full range (0-255, as JPEG) instead of limited (16-235/240).
    pub full_range: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YuvStandard {
    #[default]
    Bt601,
    Bt709,
    Bt2020,
}

impl YuvMatrix {
    /// [y_scale, y_offset, r_v, g_u, g_v, b_u] with the chroma scale folded in.
    fn coefficients(self) -> [f32; 6] {
        let (kr, kb) = match self.matrix {
            YuvStandard::Bt601 => (0.299f32, 0.114f32),
            YuvStandard::Bt709 => (0.2126, 0.0722),
            YuvStandard::Bt2020 => (0.2627, 0.0593),
        };
        let kg = 1.0 - kr - kb;
        let (ys, yo, cs) = if self.full_range {
            (1.0, 0.0, 1.0)
        } else {
            (255.0 / 219.0, 16.0, 255.0 / 224.0)
        };
        [
            ys,
            yo,
            2.0 * (1.0 - kr) * cs,
            -2.0 * kb * (1.0 - kb) / kg * cs,
            -2.0 * kr * (1.0 - kr) / kg * cs,
            2.0 * (1.0 - kb) * cs,
        ]
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error(
        "frame {width}x{height} {format:?}: plane {plane} has {len} bytes, needs {needed} (stride {stride})"
    )]
    PlaneTooSmall {
        format: PixelFormat,
        width: usize,
        height: usize,
        plane: usize,
        len: usize,
        needed: usize,
        stride: usize,
    },
    #[error("frame {0}x{1} is empty")]
    Empty(usize, usize),
}

impl<'a> ImageView<'a> {
    pub fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        planes: &[Plane<'a>],
    ) -> Result<Self, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::Empty(width, height));
        }
        let mut p = [Plane::default(); 3];
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let needs: [(usize, usize); 3] = match format {
            PixelFormat::Nv12 => [(width, height), (cw * 2, ch), (0, 0)],
            PixelFormat::I420 => [(width, height), (cw, ch), (cw, ch)],
            f => {
                let (bpp, _) = f.packed_layout().unwrap_or((1, [0; 3]));
                [(width * bpp, height), (0, 0), (0, 0)]
            }
        };
        for i in 0..format.n_planes() {
            let plane = planes.get(i).copied().unwrap_or_default();
            let (row, rows) = needs[i];
            let needed = plane.stride * (rows - 1) + row;
            if plane.stride < row || plane.data.len() < needed {
                return Err(ImageError::PlaneTooSmall {
                    format,
                    width,
                    height,
                    plane: i,
                    len: plane.data.len(),
                    needed,
                    stride: plane.stride,
                });
            }
            p[i] = plane;
        }
        Ok(ImageView {
            format,
            width,
            height,
            planes: p,
            yuv: YuvMatrix::default(),
        })
    }
}

/// Reads one pixel as RGB (0..255 as f32) and its luma.
pub trait Sampler {
    fn rgb(&self, x: usize, y: usize) -> [f32; 3];
    fn luma(&self, x: usize, y: usize) -> f32 {
        let [r, g, b] = self.rgb(x, y);
        0.299 * r + 0.587 * g + 0.114 * b
    }
    /// Writes `out.len()` pixels of row `y` starting at column `x0`, one channel per slice
    /// (R into `out[0]`, G into `out[1]`, B into `out[2]`) through `f`.
    #[inline(always)]
    fn row(&self, y: usize, x0: usize, out: [&mut [f32]; 3], f: impl Fn(usize, f32) -> f32) {
        let [r, g, b] = out;
        for (i, ((r, g), b)) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()).enumerate() {
            let v = self.rgb(x0 + i, y);
            *r = f(0, v[0]);
            *g = f(1, v[1]);
            *b = f(2, v[2]);
        }
    }
    /// One output row of a bilinear resize: source rows `ya` and `yb` weighted by `fy`, then
    /// the columns of `taps` (monotonic); RGB component j of pixel i goes through `f(j, v)`
    /// into `out[j][i]`. Formats that can override this with a separable pass (the two rows
    /// blended once, in a contiguous loop the compiler vectorises, then the columns picked
    /// from that blend): the same arithmetic as [`Sampler::bilinear`] in the other order.
    #[inline(always)]
    fn resample_row(
        &self,
        rows: (usize, usize, f32),
        taps: &[(usize, usize, f32)],
        _scratch: &mut RowScratch,
        out: [&mut [f32]; 3],
        f: impl Fn(usize, f32) -> f32,
    ) {
        let (ya, yb, fy) = rows;
        let [r, g, b] = out;
        for (i, &(xa, xb, fx)) in taps.iter().enumerate() {
            let v = self.bilinear(xa, xb, fx, ya, yb, fy);
            r[i] = f(0, v[0]);
            g[i] = f(1, v[1]);
            b[i] = f(2, v[2]);
        }
    }
    /// Bilinear RGB between pixels (xa, ya) and (xb, yb) with weights fx, fy of the second.
    #[inline(always)]
    fn bilinear(&self, xa: usize, xb: usize, fx: f32, ya: usize, yb: usize, fy: f32) -> [f32; 3] {
        let a = self.rgb(xa, ya);
        let b = self.rgb(xb, ya);
        let c = self.rgb(xa, yb);
        let d = self.rgb(xb, yb);
        let mut out = [0.0; 3];
        for j in 0..3 {
            let top = a[j] + (b[j] - a[j]) * fx;
            let bot = c[j] + (d[j] - c[j]) * fx;
            out[j] = top + (bot - top) * fy;
        }
        out
    }
}

/// Buffers of [`Sampler::resample_row`], kept across the rows of one resize.
#[derive(Default)]
pub struct RowScratch {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    /// Luma, U and V per output pixel.
    px: Vec<[f32; 3]>,
    /// Column taps in a subsampled chroma plane, one per output pixel (made on the first row).
    chroma_taps: Vec<(usize, usize, f32)>,
}

/// `out[i] = a[i] + (b[i] - a[i]) * f` over two source rows (u8), as f32.
#[inline(always)]
fn blend_rows(a: &[u8], b: &[u8], f: f32, out: &mut Vec<f32>) {
    out.clear();
    out.extend(a.iter().zip(b).map(|(&a, &b)| {
        let a = a as f32;
        a + (b as f32 - a) * f
    }));
}

/// The first and one past the last source column of monotonic taps.
#[inline(always)]
fn tap_span(taps: &[(usize, usize, f32)]) -> (usize, usize) {
    match (taps.first(), taps.last()) {
        (Some(first), Some(last)) => (first.0, last.1 + 1),
        _ => (0, 0),
    }
}

/// Bilinear read of a subsampled plane at a continuous position (clamped to the plane).
#[inline(always)]
fn plane_bilinear(
    p: &Plane,
    step: usize,
    offset: usize,
    w: usize,
    h: usize,
    x: f32,
    y: f32,
) -> f32 {
    let (xa, xb, fx) = tap(x, w);
    let (ya, yb, fy) = tap(y, h);
    let at = |xx: usize, yy: usize| p.data[yy * p.stride + xx * step + offset] as f32;
    let top = at(xa, ya) + (at(xb, ya) - at(xa, ya)) * fx;
    let bot = at(xa, yb) + (at(xb, yb) - at(xa, yb)) * fx;
    top + (bot - top) * fy
}

/// Position in a 2x2-subsampled chroma plane of luma position `p` (chroma sited at the centre
/// of each 2x2 block, as JPEG and videoconvert's default).
#[inline(always)]
fn chroma_pos(p: f32) -> f32 {
    (p + 0.5) * 0.5 - 0.5
}

pub(crate) struct Packed<'a, const BPP: usize> {
    pub(crate) data: &'a [u8],
    pub(crate) stride: usize,
    pub(crate) off: [usize; 3],
}

impl<const BPP: usize> Sampler for Packed<'_, BPP> {
    #[inline(always)]
    fn resample_row(
        &self,
        rows: (usize, usize, f32),
        taps: &[(usize, usize, f32)],
        scratch: &mut RowScratch,
        out: [&mut [f32]; 3],
        f: impl Fn(usize, f32) -> f32,
    ) {
        let (ya, yb, fy) = rows;
        let (lo, hi) = tap_span(taps);
        let row = |y: usize| &self.data[y * self.stride + lo * BPP..y * self.stride + hi * BPP];
        blend_rows(row(ya), row(yb), fy, &mut scratch.a);
        let blended = &scratch.a;
        let [or, og, ob] = self.off;
        // Gather per output pixel, then normalise in a loop of its own (vectorised).
        let mut px = std::mem::take(&mut scratch.px);
        px.clear();
        px.extend(taps.iter().map(|&(xa, xb, fx)| {
            let pa = &blended[(xa - lo) * BPP..(xa - lo + 1) * BPP];
            let pb = &blended[(xb - lo) * BPP..(xb - lo + 1) * BPP];
            [
                pa[or] + (pb[or] - pa[or]) * fx,
                pa[og] + (pb[og] - pa[og]) * fx,
                pa[ob] + (pb[ob] - pa[ob]) * fx,
            ]
        }));
        let [r, g, b] = out;
        for (((&[pr, pg, pb], r), g), b) in px
            .iter()
            .zip(r.iter_mut())
            .zip(g.iter_mut())
            .zip(b.iter_mut())
        {
            *r = f(0, pr);
            *g = f(1, pg);
            *b = f(2, pb);
        }
        scratch.px = px;
    }
    #[inline(always)]
    fn row(&self, y: usize, x0: usize, out: [&mut [f32]; 3], f: impl Fn(usize, f32) -> f32) {
        let [r, g, b] = out;
        let n = r.len();
        let start = y * self.stride + x0 * BPP;
        let src = &self.data[start..start + n * BPP];
        let [or, og, ob] = self.off;
        for (((px, r), g), b) in src
            .chunks_exact(BPP)
            .zip(r.iter_mut())
            .zip(g.iter_mut())
            .zip(b.iter_mut())
        {
            *r = f(0, px[or] as f32);
            *g = f(1, px[og] as f32);
            *b = f(2, px[ob] as f32);
        }
    }
    #[inline(always)]
    fn rgb(&self, x: usize, y: usize) -> [f32; 3] {
        let i = y * self.stride + x * BPP;
        let px = &self.data[i..i + BPP];
        [
            px[self.off[0]] as f32,
            px[self.off[1]] as f32,
            px[self.off[2]] as f32,
        ]
    }
}

pub(crate) struct Gray<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) stride: usize,
}

impl Sampler for Gray<'_> {
    #[inline(always)]
    fn rgb(&self, x: usize, y: usize) -> [f32; 3] {
        let v = self.data[y * self.stride + x] as f32;
        [v, v, v]
    }
    #[inline(always)]
    fn luma(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.stride + x] as f32
    }
}

#[inline(always)]
fn yuv_to_rgb(k: &[f32; 6], y: f32, u: f32, v: f32) -> [f32; 3] {
    let c = (y - k[1]) * k[0];
    let d = u - 128.0;
    let e = v - 128.0;
    [
        (c + k[2] * e).clamp(0.0, 255.0),
        (c + k[3] * d + k[4] * e).clamp(0.0, 255.0),
        (c + k[5] * d).clamp(0.0, 255.0),
    ]
}

/// 4:2:0 YUV, semi-planar (NV12: `uv` interleaved, step 2) or planar (I420: step 1).
pub(crate) struct Yuv420<'a> {
    y: Plane<'a>,
    u: Plane<'a>,
    v: Plane<'a>,
    /// Bytes between chroma samples and offsets of U and V.
    step: usize,
    u_off: usize,
    v_off: usize,
    cw: usize,
    ch: usize,
    k: [f32; 6],
}

impl<'a> Yuv420<'a> {
    /// `step`: bytes between chroma samples; `v_off`: offset of V within a sample (NV12: 1).
    pub(crate) fn new(
        img: &ImageView<'a>,
        u: Plane<'a>,
        v: Plane<'a>,
        step: usize,
        v_off: usize,
    ) -> Self {
        Yuv420 {
            y: img.planes[0],
            u,
            v,
            step,
            u_off: 0,
            v_off,
            cw: img.width.div_ceil(2),
            ch: img.height.div_ceil(2),
            k: img.yuv.coefficients(),
        }
    }

    #[inline(always)]
    fn chroma(&self, x: f32, y: f32) -> (f32, f32) {
        let (cx, cy) = (chroma_pos(x), chroma_pos(y));
        (
            plane_bilinear(&self.u, self.step, self.u_off, self.cw, self.ch, cx, cy),
            plane_bilinear(&self.v, self.step, self.v_off, self.cw, self.ch, cx, cy),
        )
    }

    #[inline(always)]
    fn y_at(&self, x: usize, y: usize) -> f32 {
        self.y.data[y * self.y.stride + x] as f32
    }
}

impl Sampler for Yuv420<'_> {
    #[inline(always)]
    fn resample_row(
        &self,
        rows: (usize, usize, f32),
        taps: &[(usize, usize, f32)],
        scratch: &mut RowScratch,
        out: [&mut [f32]; 3],
        f: impl Fn(usize, f32) -> f32,
    ) {
        let (ya, yb, fy) = rows;
        let (lo, hi) = tap_span(taps);
        let luma = |y: usize| &self.y.data[y * self.y.stride + lo..y * self.y.stride + hi];
        blend_rows(luma(ya), luma(yb), fy, &mut scratch.a);
        // Chroma at the continuous position of each output pixel, as `bilinear` reads it.
        if scratch.chroma_taps.len() != taps.len() {
            scratch.chroma_taps.clear();
            scratch.chroma_taps.extend(
                taps.iter()
                    .map(|&(xa, _, fx)| tap(chroma_pos(xa as f32 + fx), self.cw)),
            );
        }
        let (ca, cb, fcy) = tap(chroma_pos(ya as f32 + fy), self.ch);
        let (clo, chi) = tap_span(&scratch.chroma_taps);
        let (s, uo, vo) = (self.step, self.u_off, self.v_off);
        // Bytes of the chroma samples clo..chi of row y (NV12: U and V interleaved, step 2).
        fn chroma<'p>(p: &Plane<'p>, y: usize, from: usize, to: usize) -> &'p [u8] {
            &p.data[y * p.stride + from..y * p.stride + to]
        }
        let (from, to) = (clo * s, chi * s);
        blend_rows(
            chroma(&self.u, ca, from, to),
            chroma(&self.u, cb, from, to),
            fcy,
            &mut scratch.b,
        );
        blend_rows(
            chroma(&self.v, ca, from, to),
            chroma(&self.v, cb, from, to),
            fcy,
            &mut scratch.c,
        );
        // Gather luma and chroma per output pixel, then convert in a loop of its own (one
        // the compiler vectorises).
        let mut px = std::mem::take(&mut scratch.px);
        px.clear();
        let (ys, us, vs) = (&scratch.a, &scratch.b, &scratch.c);
        px.extend(taps.iter().zip(&scratch.chroma_taps).map(
            |(&(xa, xb, fx), &(cxa, cxb, fcx))| {
                let y0 = ys[xa - lo];
                let (ia, ib) = ((cxa - clo) * s, (cxb - clo) * s);
                [
                    y0 + (ys[xb - lo] - y0) * fx,
                    us[ia + uo] + (us[ib + uo] - us[ia + uo]) * fcx,
                    vs[ia + vo] + (vs[ib + vo] - vs[ia + vo]) * fcx,
                ]
            },
        ));
        let [r, g, b] = out;
        for (((&[y, u, v], r), g), b) in px
            .iter()
            .zip(r.iter_mut())
            .zip(g.iter_mut())
            .zip(b.iter_mut())
        {
            let p = yuv_to_rgb(&self.k, y, u, v);
            *r = f(0, p[0]);
            *g = f(1, p[1]);
            *b = f(2, p[2]);
        }
        scratch.px = px;
    }
    #[inline(always)]
    fn rgb(&self, x: usize, y: usize) -> [f32; 3] {
        let (u, v) = self.chroma(x as f32, y as f32);
        yuv_to_rgb(&self.k, self.y_at(x, y), u, v)
    }
    #[inline(always)]
    fn luma(&self, x: usize, y: usize) -> f32 {
        ((self.y_at(x, y) - self.k[1]) * self.k[0]).clamp(0.0, 255.0)
    }
    #[inline(always)]
    fn bilinear(&self, xa: usize, xb: usize, fx: f32, ya: usize, yb: usize, fy: f32) -> [f32; 3] {
        // YUV to RGB is affine: interpolate in YUV, convert once.
        let top = self.y_at(xa, ya) + (self.y_at(xb, ya) - self.y_at(xa, ya)) * fx;
        let bot = self.y_at(xa, yb) + (self.y_at(xb, yb) - self.y_at(xa, yb)) * fx;
        let (u, v) = self.chroma(xa as f32 + fx, ya as f32 + fy);
        yuv_to_rgb(&self.k, top + (bot - top) * fy, u, v)
    }
}

/// Runs `$body` with `$s` bound to the sampler matching the image's format (monomorphised).
macro_rules! with_sampler {
    ($img:expr, $s:ident => $body:expr) => {{
        use $crate::preprocess::{Gray, Packed, PixelFormat, Yuv420};
        let img: &$crate::preprocess::ImageView = $img;
        let p0 = img.planes[0];
        match img.format {
            PixelFormat::Nv12 => {
                let uv = img.planes[1];
                let $s = Yuv420::new(img, uv, uv, 2, 1);
                $body
            }
            PixelFormat::I420 => {
                let $s = Yuv420::new(img, img.planes[1], img.planes[2], 1, 0);
                $body
            }
            PixelFormat::Gray8 => {
                let $s = Gray {
                    data: p0.data,
                    stride: p0.stride,
                };
                $body
            }
            f => {
                let (bpp, off) = f.packed_layout().unwrap_or((3, [0, 1, 2]));
                if bpp == 3 {
                    let $s = Packed::<3> {
                        data: p0.data,
                        stride: p0.stride,
                        off,
                    };
                    $body
                } else {
                    let $s = Packed::<4> {
                        data: p0.data,
                        stride: p0.stride,
                        off,
                    };
                    $body
                }
            }
        }
    }};
}
pub(crate) use with_sampler;

/// Where the model's tensor goes and how its values are made.
#[derive(Debug, Clone, Copy)]
pub struct TensorTarget {
    /// Tensor width and height (NCHW, one image).
    pub width: usize,
    pub height: usize,
    pub color: ColorOrder,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub pad_value: f32,
}

impl TensorTarget {
    pub fn from_spec(spec: &InputSpec, width: usize, height: usize) -> Self {
        TensorTarget {
            width,
            height,
            color: spec.color,
            mean: spec.mean,
            std: spec.std,
            pad_value: spec.pad_value,
        }
    }

    pub fn len(&self) -> usize {
        3 * self.width * self.height
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A source rectangle in frame pixels (floating point, may be fractional).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SrcRect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl SrcRect {
    /// The whole of `img`.
    pub fn whole(img: &ImageView) -> SrcRect {
        SrcRect {
            x: 0.0,
            y: 0.0,
            w: img.width as f32,
            h: img.height as f32,
        }
    }
}

/// Resamples `src` of the image (bilinear, pixel centres as cv2.resize INTER_LINEAR) into the
/// top-left `content_w` x `content_h` of the tensor and fills the rest with the pad value.
/// Channel order and normalisation follow `target`. `dst.len()` must be `target.len()`.
pub fn resize_into(
    img: &ImageView,
    src: SrcRect,
    content_w: usize,
    content_h: usize,
    target: &TensorTarget,
    dst: &mut [f32],
) {
    debug_assert_eq!(dst.len(), target.len());
    let content_w = content_w.min(target.width);
    let content_h = content_h.min(target.height);
    with_sampler!(img, s => resize_generic(&s, img.width, img.height, src, content_w, content_h, target, dst))
}

#[inline(always)]
fn out_index(color: ColorOrder) -> [usize; 3] {
    // Position of R, G, B in the tensor's channel dimension.
    match color {
        ColorOrder::Rgb => [0, 1, 2],
        ColorOrder::Bgr => [2, 1, 0],
    }
}

#[allow(clippy::too_many_arguments)]
fn resize_generic<S: Sampler>(
    s: &S,
    iw: usize,
    ih: usize,
    src: SrcRect,
    cw: usize,
    ch: usize,
    t: &TensorTarget,
    dst: &mut [f32],
) {
    let plane = t.width * t.height;
    let oi = out_index(t.color);
    let inv_std = [1.0 / t.std[0], 1.0 / t.std[1], 1.0 / t.std[2]];
    let (r_plane, rest) = dst.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    let mut planes: [&mut [f32]; 3] = [r_plane, g_plane, b_plane];
    // planes[k] is tensor channel k; RGB value j goes to channel oi[j].
    let norm = |j: usize, v: f32| (v - t.mean[oi[j]]) * inv_std[oi[j]];
    let exact = (src.w - cw as f32).abs() < 1e-6
        && (src.h - ch as f32).abs() < 1e-6
        && src.x.fract() == 0.0
        && src.y.fract() == 0.0
        && src.x >= 0.0
        && src.y >= 0.0
        && src.x as usize + cw <= iw
        && src.y as usize + ch <= ih;
    let (x0s, y0s) = (src.x as usize, src.y as usize);
    // Horizontal taps, computed once per call.
    let sx = src.w / cw.max(1) as f32;
    let sy = src.h / ch.max(1) as f32;
    let mut scratch = RowScratch::default();
    let taps: Vec<(usize, usize, f32)> = if exact {
        Vec::new()
    } else {
        (0..cw)
            .map(|dx| tap(src.x + (dx as f32 + 0.5) * sx - 0.5, iw))
            .collect()
    };
    for dy in 0..t.height {
        let row = dy * t.width;
        if dy >= ch {
            for p in planes.iter_mut() {
                p[row..row + t.width].fill(t.pad_value);
            }
            continue;
        }
        if exact {
            let [p0, p1, p2] = &mut planes;
            let mut by_channel: [&mut [f32]; 3] = [
                &mut p0[row..row + cw],
                &mut p1[row..row + cw],
                &mut p2[row..row + cw],
            ];
            // Reorder so that slot j receives RGB component j.
            let [c0, c1, c2] = &mut by_channel;
            let rgb_slots: [&mut [f32]; 3] = match oi {
                [0, 1, 2] => [c0, c1, c2],
                _ => [c2, c1, c0],
            };
            s.row(y0s + dy, x0s, rgb_slots, norm);
        } else {
            let rows = tap(src.y + (dy as f32 + 0.5) * sy - 0.5, ih);
            let [p0, p1, p2] = &mut planes;
            let mut by_channel: [&mut [f32]; 3] = [
                &mut p0[row..row + cw],
                &mut p1[row..row + cw],
                &mut p2[row..row + cw],
            ];
            let [c0, c1, c2] = &mut by_channel;
            let rgb_slots: [&mut [f32]; 3] = match oi {
                [0, 1, 2] => [c0, c1, c2],
                _ => [c2, c1, c0],
            };
            s.resample_row(rows, &taps, &mut scratch, rgb_slots, norm);
        }
        if cw < t.width {
            for p in planes.iter_mut() {
                p[row + cw..row + t.width].fill(t.pad_value);
            }
        }
    }
}

/// Bilinear tap: the two source indices around `pos` (clamped to the image) and the weight of
/// the second.
#[inline(always)]
fn tap(pos: f32, size: usize) -> (usize, usize, f32) {
    let max = (size - 1) as f32;
    let p = pos.clamp(0.0, max);
    let i0 = p.floor();
    let f = p - i0;
    let i0 = i0 as usize;
    (i0, (i0 + 1).min(size - 1), f)
}

/// Samples RGB (0..255) at a fractional position with bilinear interpolation; `None` outside
/// the image. Used for warps (face alignment).
pub fn sample_bilinear<S: Sampler>(s: &S, w: usize, h: usize, x: f32, y: f32) -> Option<[f32; 3]> {
    if x < -0.5 || y < -0.5 || x > w as f32 - 0.5 || y > h as f32 - 0.5 {
        return None;
    }
    let (xa, xb, fx) = tap(x, w);
    let (ya, yb, fy) = tap(y, h);
    Some(s.bilinear(xa, xb, fx, ya, yb, fy))
}

/// Mean luma (0..255) of a `gw` x `gh` grid of cells, each sampled at 4 points; written into
/// `out` (resized to `gw * gh`). Cheap: 4 reads per cell, whatever the frame size.
pub fn luma_grid(img: &ImageView, gw: usize, gh: usize, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(gw * gh);
    with_sampler!(img, s => {
        for gy in 0..gh {
            for gx in 0..gw {
                let mut acc = 0.0;
                for (ox, oy) in [(0.25f32, 0.25f32), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                    let x = (((gx as f32 + ox) / gw as f32) * img.width as f32) as usize;
                    let y = (((gy as f32 + oy) / gh as f32) * img.height as f32) as usize;
                    acc += s.luma(x.min(img.width - 1), y.min(img.height - 1));
                }
                out.push((acc / 4.0).round().clamp(0.0, 255.0) as u8);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(w: usize, h: usize, color: ColorOrder) -> TensorTarget {
        TensorTarget {
            width: w,
            height: h,
            color,
            mean: [0.0; 3],
            std: [1.0; 3],
            pad_value: -1.0,
        }
    }

    #[test]
    fn packed_formats_agree_with_strides() {
        // 3x2 image with distinct colours, padded rows (stride > row bytes).
        let px = [
            [10u8, 20, 30],
            [40, 50, 60],
            [70, 80, 90],
            [100, 110, 120],
            [130, 140, 150],
            [160, 170, 180],
        ];
        let mut results = Vec::new();
        for fmt in [
            PixelFormat::Rgb,
            PixelFormat::Bgr,
            PixelFormat::Rgbx,
            PixelFormat::Bgrx,
            PixelFormat::Xrgb,
            PixelFormat::Abgr,
        ] {
            let (bpp, off) = fmt.packed_layout().unwrap();
            let stride = 3 * bpp + 5;
            let mut data = vec![0u8; stride * 2];
            for (i, p) in px.iter().enumerate() {
                let (x, y) = (i % 3, i / 3);
                for j in 0..3 {
                    data[y * stride + x * bpp + off[j]] = p[j];
                }
            }
            let img = ImageView::new(
                fmt,
                3,
                2,
                &[Plane {
                    data: &data,
                    stride,
                }],
            )
            .unwrap();
            let t = target(4, 3, ColorOrder::Bgr);
            let mut out = vec![0.0; t.len()];
            resize_into(
                &img,
                SrcRect {
                    x: 0.0,
                    y: 0.0,
                    w: 3.0,
                    h: 2.0,
                },
                3,
                2,
                &t,
                &mut out,
            );
            results.push(out);
        }
        for r in &results[1..] {
            assert_eq!(r, &results[0]);
        }
        let out = &results[0];
        // Channel 0 is blue (BGR): pixel (1,0) has b = 60.
        assert_eq!(out[1], 60.0);
        // Green plane, pixel (2,1) = 170.
        assert_eq!(out[12 + 4 + 2], 170.0);
        // Pad column and row.
        assert_eq!(out[3], -1.0);
        assert_eq!(out[8], -1.0);
    }

    #[test]
    fn nv12_and_i420_match_rgb_on_grey() {
        // Mid-grey Y=126, U=V=128 is RGB ~128 everywhere.
        let (w, h) = (4, 4);
        let y = vec![126u8; w * h];
        let uv = vec![128u8; w * h / 2];
        let u = vec![128u8; w * h / 4];
        let v = u.clone();
        let nv12 = ImageView::new(
            PixelFormat::Nv12,
            w,
            h,
            &[
                Plane {
                    data: &y,
                    stride: w,
                },
                Plane {
                    data: &uv,
                    stride: w,
                },
            ],
        )
        .unwrap();
        let i420 = ImageView::new(
            PixelFormat::I420,
            w,
            h,
            &[
                Plane {
                    data: &y,
                    stride: w,
                },
                Plane {
                    data: &u,
                    stride: 2,
                },
                Plane {
                    data: &v,
                    stride: 2,
                },
            ],
        )
        .unwrap();
        for img in [nv12, i420] {
            let t = target(4, 4, ColorOrder::Rgb);
            let mut out = vec![0.0; t.len()];
            resize_into(
                &img,
                SrcRect {
                    x: 0.0,
                    y: 0.0,
                    w: 4.0,
                    h: 4.0,
                },
                4,
                4,
                &t,
                &mut out,
            );
            for v in out {
                assert!((v - 128.1).abs() < 1.0, "{v}");
            }
        }
    }

    /// The per-pixel bilinear of every format (what `resample_row` replaces) for one target.
    fn per_pixel(
        img: &ImageView,
        src: SrcRect,
        cw: usize,
        ch: usize,
        t: &TensorTarget,
    ) -> Vec<f32> {
        let mut out = vec![t.pad_value; t.len()];
        let plane = t.width * t.height;
        let oi = out_index(t.color);
        let (sx, sy) = (src.w / cw as f32, src.h / ch as f32);
        with_sampler!(img, s => {
            for dy in 0..ch {
                let (ya, yb, fy) = tap(src.y + (dy as f32 + 0.5) * sy - 0.5, img.height);
                for dx in 0..cw {
                    let (xa, xb, fx) = tap(src.x + (dx as f32 + 0.5) * sx - 0.5, img.width);
                    let v = s.bilinear(xa, xb, fx, ya, yb, fy);
                    for j in 0..3 {
                        out[oi[j] * plane + dy * t.width + dx] = v[j];
                    }
                }
            }
        });
        out
    }

    #[test]
    fn separable_rows_equal_the_per_pixel_bilinear_in_every_format() {
        // Odd sizes, padded strides, crops at fractional offsets, down- and upscales: the
        // row-wise resize (rows blended first) gives the per-pixel bilinear's values.
        let (w, h) = (37usize, 23usize);
        let noise = |n: usize, k: usize| -> Vec<u8> {
            (0..n)
                .map(|i| ((i * 2654435761 + k * 97) >> 7) as u8)
                .collect()
        };
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let y = noise((w + 3) * h, 1);
        let u = noise((cw + 1) * ch, 2);
        let v = noise((cw + 1) * ch, 3);
        let uv = noise((cw * 2 + 2) * ch, 4);
        let bgrx = noise((w * 4 + 8) * h, 5);
        let rgb = noise((w * 3 + 1) * h, 6);
        let views = [
            ImageView::new(
                PixelFormat::Bgrx,
                w,
                h,
                &[Plane {
                    data: &bgrx,
                    stride: w * 4 + 8,
                }],
            ),
            ImageView::new(
                PixelFormat::Rgb,
                w,
                h,
                &[Plane {
                    data: &rgb,
                    stride: w * 3 + 1,
                }],
            ),
            ImageView::new(
                PixelFormat::Gray8,
                w,
                h,
                &[Plane {
                    data: &y,
                    stride: w + 3,
                }],
            ),
            ImageView::new(
                PixelFormat::I420,
                w,
                h,
                &[
                    Plane {
                        data: &y,
                        stride: w + 3,
                    },
                    Plane {
                        data: &u,
                        stride: cw + 1,
                    },
                    Plane {
                        data: &v,
                        stride: cw + 1,
                    },
                ],
            ),
            ImageView::new(
                PixelFormat::Nv12,
                w,
                h,
                &[
                    Plane {
                        data: &y,
                        stride: w + 3,
                    },
                    Plane {
                        data: &uv,
                        stride: cw * 2 + 2,
                    },
                ],
            ),
        ];
        let crops = [
            (
                SrcRect {
                    x: 0.0,
                    y: 0.0,
                    w: w as f32,
                    h: h as f32,
                },
                16,
                9,
            ),
            (
                SrcRect {
                    x: 0.0,
                    y: 0.0,
                    w: w as f32,
                    h: h as f32,
                },
                61,
                40,
            ),
            (
                SrcRect {
                    x: 3.5,
                    y: 2.25,
                    w: 20.0,
                    h: 13.5,
                },
                11,
                7,
            ),
            (
                SrcRect {
                    x: -2.0,
                    y: 5.0,
                    w: 30.0,
                    h: 30.0,
                },
                15,
                15,
            ),
        ];
        for img in views {
            let img = img.unwrap();
            for (src, cw, ch) in crops {
                let t = target(cw + 3, ch + 2, ColorOrder::Bgr);
                let mut out = vec![0.0; t.len()];
                resize_into(&img, src, cw, ch, &t, &mut out);
                let want = per_pixel(&img, src, cw, ch, &t);
                for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-3,
                        "{:?} {src:?} -> {cw}x{ch}: value {i} is {a}, per pixel {b}",
                        img.format
                    );
                }
            }
        }
    }

    #[test]
    fn downscale_is_bilinear_like_opencv() {
        // A horizontal ramp 0,10,20,...,70 (8 px) downscaled to 4 px: cv2.resize INTER_LINEAR
        // samples at 0.5,2.5,4.5,6.5 -> 5,25,45,65.
        let data: Vec<u8> = (0..8).map(|i| (i * 10) as u8).collect();
        let img = ImageView::new(
            PixelFormat::Gray8,
            8,
            1,
            &[Plane {
                data: &data,
                stride: 8,
            }],
        )
        .unwrap();
        let t = target(4, 1, ColorOrder::Rgb);
        let mut out = vec![0.0; t.len()];
        resize_into(
            &img,
            SrcRect {
                x: 0.0,
                y: 0.0,
                w: 8.0,
                h: 1.0,
            },
            4,
            1,
            &t,
            &mut out,
        );
        assert_eq!(&out[..4], &[5.0, 25.0, 45.0, 65.0]);
    }

    #[test]
    fn normalisation_and_channel_order() {
        let data = [255u8, 0, 0];
        let img = ImageView::new(
            PixelFormat::Rgb,
            1,
            1,
            &[Plane {
                data: &data,
                stride: 3,
            }],
        )
        .unwrap();
        let t = TensorTarget {
            width: 1,
            height: 1,
            color: ColorOrder::Rgb,
            mean: [127.5; 3],
            std: [128.0; 3],
            pad_value: 0.0,
        };
        let mut out = vec![0.0; 3];
        resize_into(
            &img,
            SrcRect {
                x: 0.0,
                y: 0.0,
                w: 1.0,
                h: 1.0,
            },
            1,
            1,
            &t,
            &mut out,
        );
        assert!((out[0] - 127.5 / 128.0).abs() < 1e-6);
        assert!((out[1] + 127.5 / 128.0).abs() < 1e-6);
    }

    #[test]
    fn short_planes_are_rejected() {
        let data = vec![0u8; 10];
        let err = ImageView::new(
            PixelFormat::Rgb,
            4,
            4,
            &[Plane {
                data: &data,
                stride: 12,
            }],
        )
        .unwrap_err();
        assert!(matches!(err, ImageError::PlaneTooSmall { .. }));
        assert!(
            ImageView::new(
                PixelFormat::Nv12,
                4,
                4,
                &[Plane {
                    data: &[0; 16],
                    stride: 4
                }]
            )
            .is_err()
        );
    }

    #[test]
    fn luma_grid_reads_brightness() {
        let data = vec![200u8; 64 * 48];
        let img = ImageView::new(
            PixelFormat::Gray8,
            64,
            48,
            &[Plane {
                data: &data,
                stride: 64,
            }],
        )
        .unwrap();
        let mut out = Vec::new();
        luma_grid(&img, 8, 6, &mut out);
        assert_eq!(out.len(), 48);
        assert!(out.iter().all(|&v| v == 200));
    }
}
