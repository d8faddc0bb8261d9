//! GStreamer video frames as [`ImageView`]s (no copy), and the formats Sightline reads.

use crate::preprocess::{ImageError, ImageView, PixelFormat, Plane, YuvMatrix, YuvStandard};
use gst_video::VideoFormat;
use gst_video::prelude::*;

/// Formats every Sightline analysis element reads directly: the packed RGB family first
/// (also what can be drawn on, [`DRAW_FORMATS`]), then YUV and grey.
pub const ANALYSIS_FORMATS: &[VideoFormat] = &[
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::Xrgb,
    VideoFormat::Xbgr,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Argb,
    VideoFormat::Abgr,
    VideoFormat::Nv12,
    VideoFormat::I420,
    VideoFormat::Gray8,
];

/// Packed RGB-family formats that can be drawn on.
pub const DRAW_FORMATS: &[VideoFormat] = ANALYSIS_FORMATS.split_at(10).0;

pub fn pixel_format(f: VideoFormat) -> Option<PixelFormat> {
    Some(match f {
        VideoFormat::Rgb => PixelFormat::Rgb,
        VideoFormat::Bgr => PixelFormat::Bgr,
        VideoFormat::Rgbx => PixelFormat::Rgbx,
        VideoFormat::Bgrx => PixelFormat::Bgrx,
        VideoFormat::Xrgb => PixelFormat::Xrgb,
        VideoFormat::Xbgr => PixelFormat::Xbgr,
        VideoFormat::Rgba => PixelFormat::Rgba,
        VideoFormat::Bgra => PixelFormat::Bgra,
        VideoFormat::Argb => PixelFormat::Argb,
        VideoFormat::Abgr => PixelFormat::Abgr,
        VideoFormat::Nv12 => PixelFormat::Nv12,
        VideoFormat::I420 => PixelFormat::I420,
        VideoFormat::Gray8 => PixelFormat::Gray8,
        _ => return None,
    })
}

/// Caps for `formats`, any size and frame rate.
pub fn caps_for(formats: &[VideoFormat]) -> gst::Caps {
    gst_video::VideoCapsBuilder::new()
        .format_list(formats.iter().copied())
        .build()
}

/// "src" and "sink" always-pads with the same caps, as an in-place filter has.
pub fn filter_pad_templates(caps: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("src", gst::PadDirection::Src),
        ("sink", gst::PadDirection::Sink),
    ]
    .into_iter()
    .filter_map(|(name, dir)| gst::PadTemplate::new(name, dir, gst::PadPresence::Always, caps).ok())
    .collect()
}

/// Comma-separated names of `formats`, for error messages.
pub fn format_names(formats: &[VideoFormat]) -> String {
    formats
        .iter()
        .map(|f| f.to_str().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Borrows a mapped frame's planes as an [`ImageView`].
pub fn image_view<'a>(
    frame: &'a gst_video::VideoFrameRef<&gst::BufferRef>,
) -> Result<ImageView<'a>, ImageError> {
    let format = pixel_format(frame.format()).ok_or(ImageError::Empty(0, 0))?;
    let mut planes = [Plane::default(); 3];
    let strides = frame.plane_stride();
    for (i, p) in planes.iter_mut().enumerate().take(format.n_planes()) {
        let data = frame
            .plane_data(i as u32)
            .map_err(|_| ImageError::Empty(0, 0))?;
        *p = Plane {
            data,
            stride: strides[i].max(0) as usize,
        };
    }
    let mut view = ImageView::new(
        format,
        frame.width() as usize,
        frame.height() as usize,
        &planes[..format.n_planes()],
    )?;
    view.yuv = yuv_matrix(&frame.info().colorimetry());
    Ok(view)
}

/// The YUV conversion a frame's colorimetry asks for (BT.601 limited range when unknown).
pub fn yuv_matrix(c: &gst_video::VideoColorimetry) -> YuvMatrix {
    YuvMatrix {
        matrix: match c.matrix() {
            gst_video::VideoColorMatrix::Bt709 => YuvStandard::Bt709,
            gst_video::VideoColorMatrix::Bt2020 => YuvStandard::Bt2020,
            _ => YuvStandard::Bt601,
        },
        full_range: c.range() == gst_video::VideoColorRange::Range0_255,
    }
}
