//! `sightline`: models, face detection on files, benchmarks.

mod auth_cmd;
mod bench;
mod bench_api;
mod bench_capacity;
mod bench_history;
mod bench_identify;
mod bench_publish;
mod bench_reid;
mod bus;
mod detect;
mod gallery_cmd;
mod history_cmd;
mod http;
mod models_cmd;
mod run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sightline",
    version,
    about = "Sightline video analytics: models, detection, benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List, fetch and verify the ONNX models described in models/models.toml.
    #[command(subcommand)]
    Models(models_cmd::ModelsCmd),
    /// Detect faces in a photo or video file: writes an annotated copy and a JSONL event log.
    Detect(detect::DetectArgs),
    /// Enrol people and manage galleries (file, JSON export/import).
    Gallery(gallery_cmd::GalleryArgs),
    /// Benchmarks (programs, not tests): facedetect against bare ONNX Runtime, frames/s, RSS.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Run a pipeline file (pipelines/) and supervise it: reconnects, events, /metrics, the API.
    Run(Box<run::RunArgs>),
    /// Access tokens of the runner's API (sightline run --auth FILE).
    Auth(auth_cmd::AuthArgs),
    /// Ask the history the runner keeps: journeys, presence timelines, occupancy, heat maps;
    /// purge and erase.
    History(history_cmd::HistoryArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Models(c) => models_cmd::run(c),
        Cmd::Detect(a) => detect::run(a),
        Cmd::Bench(b) => bench::run(b),
        Cmd::Gallery(g) => gallery_cmd::run(g),
        Cmd::Run(r) => run::run(*r),
        Cmd::Auth(a) => auth_cmd::run(a),
        Cmd::History(h) => history_cmd::run(h),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sightline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// gst::init plus the statically linked Sightline plugins.
pub fn init_gst() -> Result<(), String> {
    gst::init().map_err(|e| format!("GStreamer init failed: {e}"))?;
    gstfacedetect::plugin_register_static()
        .map_err(|e| format!("cannot register the facedetect plugin: {e}"))?;
    gstfacematch::plugin_register_static()
        .map_err(|e| format!("cannot register the facematch plugin: {e}"))?;
    gstreidmap::plugin_register_static()
        .map_err(|e| format!("cannot register the reidmap plugin: {e}"))?;
    gstpresence::plugin_register_static()
        .map_err(|e| format!("cannot register the presence plugin: {e}"))?;
    gstsightlinewebrtc::plugin_register_static()
        .map_err(|e| format!("cannot register the WebRTC plugin: {e}"))
}
