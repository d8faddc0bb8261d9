//! `sightline detect`: the face-detection pipeline on a file, with an annotated copy and events.

use crate::bus::event_from_message;
use clap::Args;
use gst::prelude::*;
use sightline_core::events::JsonlSink;
use std::path::PathBuf;

#[derive(Args)]
pub struct DetectArgs {
    /// Photo (jpg/png) or video file.
    pub input: PathBuf,
    /// Annotated output: .mp4 (H.264), .mkv, or .png/.jpg for a photo.
    #[arg(long, short)]
    pub output: PathBuf,
    /// JSONL event log (one line per facedetect message).
    #[arg(long, short)]
    pub events: PathBuf,
    /// Camera name carried by the events.
    #[arg(long, default_value = "cam1")]
    pub camera: String,
    /// Width of the image given to the detector (0 = the frame's own).
    #[arg(long, default_value_t = 640)]
    pub inference_width: u32,
    /// Minimum face score.
    #[arg(long, default_value_t = 0.75)]
    pub score_threshold: f64,
    /// Privacy mode of the overlay: none, blur-unknown, blur-all.
    #[arg(long, default_value = "none")]
    pub privacy: String,
}

/// The pipeline description for `args`. Frames are converted to BGRx once, before detection:
/// the overlay draws on the same buffers, and no converter sits between the elements (GStreamer
/// 1.22's videoconvert keeps ROI boxes but drops their params, see docs/METADATA.md).
pub fn pipeline_description(a: &DetectArgs) -> Result<String, String> {
    let ext = a
        .output
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let enc = match ext.as_str() {
        "mp4" => {
            "x264enc tune=zerolatency speed-preset=veryfast ! video/x-h264,profile=high ! h264parse ! mp4mux"
        }
        "mkv" => "x264enc tune=zerolatency speed-preset=veryfast ! h264parse ! matroskamux",
        "png" => "pngenc snapshot=false",
        "jpg" | "jpeg" => "jpegenc",
        other => {
            return Err(format!(
                "output {}: unsupported extension '{other}' (mp4, mkv, png, jpg)",
                a.output.display()
            ));
        }
    };
    let q = |p: &std::path::Path| format!("\"{}\"", p.display().to_string().replace('"', "\\\""));
    Ok(format!(
        "filesrc location={input} ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! \
         facedetect name=facedetect camera={camera} inference-width={iw} score-threshold={st} ! \
         analyticsoverlay privacy={privacy} ! videoconvert ! {enc} ! filesink location={output}",
        input = q(&a.input),
        camera = a.camera,
        iw = a.inference_width,
        st = a.score_threshold,
        privacy = a.privacy,
        output = q(&a.output),
    ))
}

pub fn run(a: DetectArgs) -> Result<(), String> {
    crate::init_gst()?;
    if !a.input.is_file() {
        return Err(format!("input {} does not exist", a.input.display()));
    }
    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&a.events);
    let mut sink = JsonlSink::open(&a.events)
        .map_err(|e| format!("cannot open {}: {e}", a.events.display()))?;
    let desc = pipeline_description(&a)?;
    let pipeline = gst::parse::launch(&desc).map_err(|e| format!("cannot build pipeline: {e}"))?;
    let bus = pipeline.bus().ok_or("pipeline has no bus")?;
    if pipeline.set_state(gst::State::Playing).is_err() {
        // Read the error before going to NULL, which flushes the bus.
        let err = first_error(&bus).unwrap_or_else(|| "cannot start the pipeline".into());
        let _ = pipeline.set_state(gst::State::Null);
        return Err(err);
    }
    let started = std::time::Instant::now();
    let (mut frames, mut faces, mut max_faces) = (0u64, 0u64, 0usize);
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(error_text(e));
                break;
            }
            gst::MessageView::Warning(w) => {
                eprintln!("warning: {} ({})", w.error(), w.debug().unwrap_or_default())
            }
            _ => {
                if let Some(ev) = event_from_message(&msg) {
                    if ev.kind == "facedetect" {
                        frames += 1;
                        let n = ev.data["faces"].as_array().map_or(0, |f| f.len());
                        faces += n as u64;
                        max_faces = max_faces.max(n);
                    }
                    sink.write(&ev)
                        .map_err(|e| format!("cannot write {}: {e}", a.events.display()))?;
                }
            }
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{frames} frame(s) in {secs:.2} s ({:.1} frames/s), {faces} face detection(s), at most {max_faces} in one frame",
        frames as f64 / secs.max(1e-9)
    );
    println!("annotated: {}", a.output.display());
    println!("events:    {}", a.events.display());
    Ok(())
}

fn error_text(e: &gst::message::Error) -> String {
    format!(
        "{}: {} ({})",
        e.src()
            .map(|s| s.path_string().to_string())
            .unwrap_or_default(),
        e.error(),
        e.debug().unwrap_or_default()
    )
}

/// The first error message waiting on the bus (why a state change failed).
pub fn first_error(bus: &gst::Bus) -> Option<String> {
    while let Some(msg) = bus.pop() {
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(error_text(e));
        }
    }
    None
}
