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

/// A decoded still image, packed BGR.
pub struct DecodedImage {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl DecodedImage {
    pub fn view(&self) -> Result<ImageView<'_>, ImageError> {
        ImageView::new(
            PixelFormat::Bgr,
            self.width,
            self.height,
            &[Plane {
                data: &self.data,
                stride: self.stride,
            }],
        )
    }
}

/// Decodes the first frame of a photo (any format decodebin knows) to packed BGR.
/// Needs `gst::init()`.
/// The longest [`decode_image`] waits for a photo.
pub const DECODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub fn decode_image(path: &std::path::Path) -> Result<DecodedImage, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot decode {}: {e}", path.display());
    if !path.is_file() {
        return Err(fail(&"no such file"));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(&e))?;
    decode_image_bytes(&bytes, &path.display().to_string(), DECODE_TIMEOUT)
}

/// [`decode_image`] of a photo in memory (an upload), waiting at most `timeout`; `origin`
/// names it in errors.
pub fn decode_image_bytes(
    bytes: &[u8],
    origin: &str,
    timeout: std::time::Duration,
) -> Result<DecodedImage, String> {
    use gst::prelude::*;
    let fail = |e: &dyn std::fmt::Display| format!("cannot decode {origin}: {e}");
    if bytes.is_empty() {
        return Err(fail(&"not an image (empty)"));
    }
    let p = gst::parse::launch(
        "appsrc name=src ! decodebin ! videoconvert ! video/x-raw,format=BGR ! appsink name=sink sync=false",
    )
    .map_err(|e| fail(&e))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| fail(&"not a pipeline"))?;
    let src = p.by_name("src").ok_or_else(|| fail(&"no appsrc"))?;
    let sink = p.by_name("sink").ok_or_else(|| fail(&"no appsink"))?;
    if p.set_state(gst::State::Playing).is_err() {
        let _ = p.set_state(gst::State::Null);
        return Err(fail(&"not an image (the decoder refused it)"));
    }
    let _ = src.emit_by_name::<gst::FlowReturn>(
        "push-buffer",
        &[&gst::Buffer::from_slice(bytes.to_vec())],
    );
    let _ = src.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
    // Never an unbounded wait: a file the decoders choke on errors out without EOS, so the
    // sample is polled while the bus is watched, at most DECODE_TIMEOUT.
    let deadline = std::time::Instant::now() + timeout;
    let bus = p.bus();
    let mut err = None;
    let mut sample = None;
    while sample.is_none() && err.is_none() {
        sample = sink.emit_by_name::<Option<gst::Sample>>(
            "try-pull-sample",
            &[&gst::ClockTime::from_mseconds(50)],
        );
        if let Some(m) = bus
            .as_ref()
            .and_then(|b| b.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos]))
        {
            err = Some(match m.view() {
                gst::MessageView::Error(e) => e.error().to_string(),
                _ => "no image in the file".to_string(),
            });
        }
        if sample.is_none() && err.is_none() && std::time::Instant::now() >= deadline {
            err = Some(format!("no image after {:.1} s", timeout.as_secs_f64()));
        }
    }
    let _ = p.set_state(gst::State::Null);
    let sample = match sample {
        Some(s) => s,
        None => return Err(fail(&err.unwrap_or_else(|| "no image in the file".into()))),
    };
    let info = sample
        .caps()
        .and_then(|c| gst_video::VideoInfo::from_caps(c).ok())
        .ok_or_else(|| fail(&"no caps"))?;
    let buf = sample.buffer().ok_or_else(|| fail(&"no buffer"))?;
    let map = buf.map_readable().map_err(|e| fail(&e))?;
    Ok(DecodedImage {
        data: map.to_vec(),
        width: info.width() as usize,
        height: info.height() as usize,
        stride: info.stride()[0].max(0) as usize,
    })
}

/// A video frame as JPEG bytes, in memory (GStreamer's jpegenc), within `timeout`.
pub fn encode_jpeg(
    sample: &gst::Sample,
    quality: i32,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, String> {
    use gst::prelude::*;
    let fail = |e: &dyn std::fmt::Display| format!("cannot encode the frame: {e}");
    let caps = sample.caps().ok_or_else(|| fail(&"no caps"))?;
    let mut buf = sample
        .buffer()
        .ok_or_else(|| fail(&"no buffer"))?
        .to_owned();
    {
        let b = buf.make_mut();
        b.set_pts(gst::ClockTime::NONE);
        b.set_dts(gst::ClockTime::NONE);
    }
    let p = gst::parse::launch(&format!(
        "appsrc name=src ! videoconvert ! jpegenc quality={} ! appsink name=sink sync=false",
        quality.clamp(1, 100)
    ))
    .map_err(|e| fail(&e))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| fail(&"not a pipeline"))?;
    let src = p.by_name("src").ok_or_else(|| fail(&"no appsrc"))?;
    let sink = p.by_name("sink").ok_or_else(|| fail(&"no appsink"))?;
    src.set_property("caps", caps.to_owned());
    if p.set_state(gst::State::Playing).is_err() {
        let _ = p.set_state(gst::State::Null);
        return Err(fail(&"the encoder refused the frame"));
    }
    let _ = src.emit_by_name::<gst::FlowReturn>("push-buffer", &[&buf]);
    let _ = src.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
    let out = sink.emit_by_name::<Option<gst::Sample>>(
        "try-pull-sample",
        &[&gst::ClockTime::from_nseconds(timeout.as_nanos() as u64)],
    );
    let _ = p.set_state(gst::State::Null);
    let out = out.ok_or_else(|| fail(&"no JPEG from the encoder"))?;
    let b = out.buffer().ok_or_else(|| fail(&"no buffer"))?;
    let map = b.map_readable().map_err(|e| fail(&e))?;
    Ok(map.to_vec())
}

/// Writes packed RGB pixels as a PNG file (GStreamer's pngenc). Needs `gst::init()`.
pub fn save_png(
    path: &std::path::Path,
    rgb: &[u8],
    width: usize,
    height: usize,
) -> Result<(), String> {
    use gst::prelude::*;
    let fail = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", path.display());
    let p = gst::parse::launch(&format!(
        "appsrc name=src ! videoconvert ! pngenc ! filesink name=sink location=\"{}\"",
        path.display().to_string().replace('"', "\\\"")
    ))
    .map_err(|e| fail(&e))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| fail(&"not a pipeline"))?;
    let src = p.by_name("src").ok_or_else(|| fail(&"no appsrc"))?;
    let info = gst_video::VideoInfo::builder(VideoFormat::Rgb, width as u32, height as u32)
        .build()
        .map_err(|e| fail(&e))?;
    src.set_property("caps", info.to_caps().map_err(|e| fail(&e))?);
    let stride = info.stride()[0] as usize;
    let mut data = vec![0u8; info.size()];
    for y in 0..height {
        data[y * stride..y * stride + width * 3]
            .copy_from_slice(&rgb[y * width * 3..(y + 1) * width * 3]);
    }
    p.set_state(gst::State::Playing).map_err(|e| fail(&e))?;
    let _ =
        src.emit_by_name::<gst::FlowReturn>("push-buffer", &[&gst::Buffer::from_mut_slice(data)]);
    let _ = src.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
    let bus = p.bus().ok_or_else(|| fail(&"no bus"))?;
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = p.set_state(gst::State::Null);
    match msg.map(|m| m.type_()) {
        Some(gst::MessageType::Eos) => Ok(()),
        _ => Err(fail(&"encoding failed")),
    }
}
