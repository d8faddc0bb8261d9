//! `sightline bench reidmap`: the people-on-a-map chain against bare ONNX Runtime runs of its
//! two models, measured back to back in one process.

use crate::bench::{bare_ms_per_run, decode_frames, median, peak_rss_kb, wait_eos};
use gst::prelude::*;
use ort::session::Session;
use sightline_core::inference::runtime;
use sightline_core::models;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const PETS_HOMOGRAPHY: &str =
    "../shared/data/multicam/pets2009/pets2009_view001_ground_homography.json";

/// Calibration of vtest.avi scaled to `width` (from 768 px): the PETS ground homography in m.
fn write_calibration(width: u32, path: &Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(PETS_HOMOGRAPHY).map_err(|e| format!("{PETS_HOMOGRAPHY}: {e}"))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let h = &doc["View_001"]["H_undistorted_px_to_ground_mm"];
    let k = 768.0 / width as f64;
    let mut m = [[0.0f64; 3]; 3];
    for (r, row) in m.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            let x = h[r][c].as_f64().ok_or("bad PETS homography")?;
            let col = if c < 2 { k } else { 1.0 };
            let unit = if r < 2 { 0.001 } else { 1.0 };
            *v = x * col * unit;
        }
    }
    std::fs::write(
        path,
        serde_json::json!({"map": "pets", "units": "m", "homography": m}).to_string(),
    )
    .map_err(|e| e.to_string())
}

/// ms per frame of `appsrc ! <chain> ! fakesink` over frames 1..=n, and the mean number of
/// ROIs with a map position per frame.
fn chain_ms_per_frame(
    frames: &[gst::Buffer],
    info: &gst_video::VideoInfo,
    chain: &str,
    n: usize,
) -> Result<(f64, f64), String> {
    let p = gst::parse::launch(&format!(
        "appsrc name=src format=time max-bytes=0 ! {chain} ! fakesink name=sink sync=false"
    ))
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let src = p
        .by_name("src")
        .and_then(|s| s.downcast::<gst_app::AppSrc>().ok())
        .ok_or("no appsrc")?;
    src.set_caps(Some(&info.to_caps().map_err(|e| e.to_string())?));
    let times = Arc::new(Mutex::new((Vec::with_capacity(n + 1), 0usize)));
    let t = times.clone();
    p.by_name("sink")
        .and_then(|s| s.static_pad("sink"))
        .ok_or("no sink pad")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let placed = info.buffer().map_or(0, |b| {
                b.iter_meta::<gst_video::VideoRegionOfInterestMeta>()
                    .filter(|m| m.param("map-position").is_some())
                    .count()
            });
            if let Ok(mut t) = t.lock() {
                t.0.push(Instant::now());
                t.1 += placed;
            }
            gst::PadProbeReturn::Ok
        });
    p.set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    for i in 0..=n {
        let mut b = frames[i % frames.len()].copy();
        b.make_mut()
            .set_pts(gst::ClockTime::from_mseconds(100 * i as u64));
        src.push_buffer(b).map_err(|e| format!("push: {e:?}"))?;
    }
    src.end_of_stream().map_err(|e| format!("eos: {e:?}"))?;
    let res = wait_eos(&p);
    let _ = p.set_state(gst::State::Null);
    res?;
    let t = times.lock().map_err(|_| "poisoned")?;
    if t.0.len() != n + 1 {
        return Err(format!("{} frames came out, expected {}", t.0.len(), n + 1));
    }
    Ok((
        (t.0[n] - t.0[0]).as_secs_f64() * 1e3 / n as f64,
        t.1 as f64 / (n + 1) as f64,
    ))
}

fn session(name: &str) -> Result<(Session, String), String> {
    let model = models::resolve(name, name).map_err(|e| e.to_string())?;
    let s = Session::builder(runtime().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?
        .commit_from_file(&model.path)
        .map_err(|e| e.to_string())?;
    Ok((s, model.spec.input.name.clone()))
}

/// Runs the benchmark on `input` scaled to `width`, `n` frames per measurement.
pub fn bench_reidmap(input: &Path, width: u32, n: usize, rounds: usize) -> Result<(), String> {
    // The frames cycle every 100 (10 s of vtest): tracks jump once per cycle, as at a cut.
    let (frames, info) = decode_frames(input, width, 100)?;
    let (w, h) = (info.width() as i64, info.height() as i64);
    let dir = std::env::temp_dir().join(format!("sightline-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let cal = dir.join("pets.json");
    write_calibration(width, &cal)?;
    let detect = format!("persondetect inference-width={width} post-messages=false");
    let map_default = format!(
        "{detect} ! reidmap calibration={} post-interval=0",
        cal.display()
    );
    let map_every = format!("{map_default} reembed-interval=1 min-height=0");
    // Bare baselines: YOLOX-nano on the same tensor size (letterbox to a multiple of 32),
    // OSNet on a batch of as many crops as the element embeds per frame.
    let (tw, th) = ((w + 31) / 32 * 32, (h + 31) / 32 * 32);
    let (mut yolox, yolox_in) = session("yolox-nano")?;
    let (mut osnet, osnet_in) = session("osnet-x025")?;
    let det_tensor = vec![0.5f32; (3 * tw * th) as usize];
    let (mut bare_det, mut el_det, mut el_map, mut el_every, mut bare_reid) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut placed_default, mut placed_every) = (0.0, 0.0);
    for _ in 0..rounds {
        bare_det.push(bare_ms_per_run(
            &mut yolox,
            &yolox_in,
            [1, 3, th, tw],
            &det_tensor,
            n,
        )?);
        el_det.push(chain_ms_per_frame(&frames, &info, &detect, n)?.0);
        let (ms, placed) = chain_ms_per_frame(&frames, &info, &map_default, n)?;
        el_map.push(ms);
        placed_default = placed;
        let (ms, placed) = chain_ms_per_frame(&frames, &info, &map_every, n)?;
        el_every.push(ms);
        placed_every = placed;
        let batch = placed.round().max(1.0) as i64;
        let crops = vec![0.5f32; (batch * 3 * 256 * 128) as usize];
        let ms = bare_ms_per_run(&mut osnet, &osnet_in, [batch, 3, 256, 128], &crops, n)?;
        bare_reid.push(ms / batch as f64);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (bd, ed, em, ee, br) = (
        median(&mut bare_det),
        median(&mut el_det),
        median(&mut el_map),
        median(&mut el_every),
        median(&mut bare_reid),
    );
    println!(
        "persondetect vtest {w}x{h} (tensor {tw}x{th}), {n} frames x {rounds} rounds: element {ed:.2} ms/frame, bare ONNX Runtime run() {bd:.2} ms -> ratio {:.3}",
        ed / bd
    );
    println!(
        "persondetect ! reidmap (defaults: embed new tracks, then every 10 frames): {em:.2} ms/frame = {:.1} frames/s, {placed_default:.1} people placed per frame; tracking + ReID + map add {:.2} ms/frame over detection",
        1e3 / em,
        em - ed
    );
    let per_person = (ee - ed) / placed_every.max(1e-9);
    println!(
        "persondetect ! reidmap embedding every person every frame: {ee:.2} ms/frame, {placed_every:.1} people/frame -> {per_person:.2} ms per person (tracking, crop, ReID, map) vs bare OSNet run() {br:.2} ms per crop in a batch of {} -> ratio {:.2}",
        placed_every.round().max(1.0),
        per_person / br
    );
    println!(
        "peak RSS of this process: {:.1} MiB",
        peak_rss_kb()? as f64 / 1024.0
    );
    Ok(())
}
