//! `sightline run FILE`: runs a pipeline file and supervises it.
//!
//! The description is split into independent units (chains not linked to each other, usually
//! one per camera, plus e.g. a `mapview` chain); each runs as its own GStreamer pipeline in this
//! process, so Sightline's process-wide state (presence groups, floor maps, galleries, model
//! sessions) is shared while a failing camera is torn down and rebuilt on its own, with back-off,
//! and never stops the others. Every element message becomes an event (JSONL, Redis Stream) and a
//! log line; `/metrics` (Prometheus) and `/health` are served over HTTP; SIGINT/SIGTERM end every
//! unit with EOS so nothing is lost.

use clap::Args;
use gst::prelude::*;
use sightline_core::control::cameras::{AddedCamera, CameraStore};
use sightline_core::control::journal::{JOURNAL_EVENTS, Journal};
use sightline_core::control::session::Sessions;
use sightline_core::control::site::Site;
use sightline_core::delivery::{
    Delivery, DeliveryConfig, SpoolLimits, default_node_id, default_spool_dir,
};
use sightline_core::events::{Event, utc_now};
use sightline_core::meta::event_from_structure;
use sightline_core::runner::{Backoff, Metrics, PipelineFile, split_units, substitute_decoders};
use sightline_core::secrets::{read_secret_file, redact_urls_in_text};
use sightline_core::sinks::Sink;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct RunArgs {
    /// The pipeline file (see pipelines/README.md).
    file: PathBuf,
    /// Set a variable of the file: NAME=VALUE (repeatable); else the environment, else its default.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Append every event to this JSONL file (the same as `--publish file:///PATH`).
    #[arg(long)]
    events: Option<PathBuf>,
    /// Publish every event to this sink (repeatable): file:///path.jsonl, redis[s]://…?stream=,
    /// http[s]://… (webhook), mqtt[s]://[user:pw@]host[:port] (Home Assistant discovery),
    /// telegram://BOT_TOKEN@CHAT_ID (alerts). Better kept off the command line (visible in
    /// `ps`): SIGHTLINE_PUBLISH, comma-separated.
    #[arg(
        long,
        value_name = "URL",
        env = "SIGHTLINE_PUBLISH",
        hide_env_values = true,
        value_delimiter = ','
    )]
    publish: Vec<String>,
    /// This node's name in MQTT topics and Home Assistant (default: the host name).
    #[arg(long)]
    node: Option<String>,
    /// Send every event to this Redis (Stream `--stream`), spooled on disk while it is away.
    /// Better kept off the command line (visible in `ps`): `SIGHTLINE_REDIS_URL`, or
    /// `--redis-url-file` / `SIGHTLINE_REDIS_URL_FILE` naming a file that holds it.
    #[arg(long, env = "SIGHTLINE_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// A file whose first line is the Redis URL (for passwords; see --redis-url).
    #[arg(long, env = "SIGHTLINE_REDIS_URL_FILE", conflicts_with = "redis_url")]
    redis_url_file: Option<PathBuf>,
    #[arg(long, default_value = "sightline:events")]
    stream: String,
    #[arg(long)]
    spool_dir: Option<PathBuf>,
    /// Undelivered events kept, bytes (beyond: the oldest dropped, never alerts).
    #[arg(long, default_value_t = sightline_core::delivery::DEFAULT_SPOOL_MAX_BYTES)]
    spool_max_bytes: u64,
    /// Undelivered events older than this many seconds are dropped (never alerts).
    #[arg(long, default_value_t = sightline_core::delivery::DEFAULT_SPOOL_MAX_AGE.as_secs_f64())]
    spool_max_age: f64,
    /// Address of the API, the dashboard (/), /metrics and /health
    /// ("" = none).
    #[arg(long, default_value = "127.0.0.1:9108")]
    http: String,
    /// Token file of the API (sightline auth): requests need `Authorization: Bearer TOKEN`
    /// with a role (viewer, operator, admin). Without it the runner serves only on a
    /// loopback address.
    #[arg(long, env = "SIGHTLINE_AUTH")]
    auth: Option<PathBuf>,
    /// Serve --http beyond loopback without --auth: anyone who reaches it may do everything.
    #[arg(long)]
    insecure_no_auth: bool,
    /// A token that may read /metrics (for Prometheus) when --http is not loopback, besides
    /// viewer tokens. Better kept off the command line: SIGHTLINE_METRICS_TOKEN.
    #[arg(long, env = "SIGHTLINE_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// The gallery managed through the API (/api/v1/gallery); default: the `gallery` of
    /// the file's facematch elements when they all use one file.
    #[arg(long, env = "SIGHTLINE_GALLERY")]
    gallery: Option<PathBuf>,
    /// Where the cameras added or removed through the API are kept, to be restored at the
    /// next start (default: $XDG_STATE_HOME/sightline/state/NODE, else
    /// ~/.local/state/sightline/state/NODE).
    #[arg(long, env = "SIGHTLINE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Keep history (sightings, presence, alerts, zones, trails, cameras) in this database:
    /// sqlite:PATH or postgres://… ("" = none; see docs/history.md). Default:
    /// sqlite:STATE_DIR/history.db. A password is better kept off the command line:
    /// SIGHTLINE_HISTORY.
    #[arg(long, env = "SIGHTLINE_HISTORY", hide_env_values = true)]
    history: Option<String>,
    /// Days kept per kind of history row: KIND=DAYS,… (sightings=30, trajectories=30,
    /// presence=90, zones=90, cameras=90, alerts=365; 0 = forever).
    #[arg(long, default_value = "")]
    history_retention: String,
    /// Also keep each face decision's embedding (int8, 7 days by default) for
    /// `sightline history search-face`: sets `post-embedding` on the facematch elements.
    /// Embeddings go only to the history, never to the API or another sink.
    #[arg(long)]
    history_embeddings: bool,
    /// Directory of the dashboard pages served at / (default: web/ here, or share/sightline/web
    /// next to the installed binary).
    #[arg(long, env = "SIGHTLINE_WEB")]
    web: Option<PathBuf>,
    /// The WebRTC signalling server that /api/v1/signalling proxies to (ws://HOST:PORT);
    /// default: the one a webrtcsink of the file runs (run-signalling-server=true), which
    /// should then listen on loopback only.
    #[arg(long, env = "SIGHTLINE_SIGNALLING")]
    signalling: Option<String>,
    /// PEM certificate: --http becomes HTTPS (the viewer's signalling goes through it).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<String>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<String>,
    /// Longest wait between two reconnects of a camera, seconds.
    #[arg(long, default_value_t = 30.0)]
    max_backoff: f64,
    /// Stop (with EOS, like SIGTERM) after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Play cameras that are files again from the start when they end, without a gap (a
    /// segment seek: the running time goes on, so presence timing stays true). For demos.
    #[arg(long = "loop")]
    loop_files: bool,
    /// Print the units and exit.
    #[arg(long)]
    dry_run: bool,
}

/// Replaces hardware decoders this machine lacks with software ones, saying which was chosen.
fn choose_decoders(desc: &str) -> String {
    let (out, choices) = substitute_decoders(desc, |f| gst::ElementFactory::find(f).is_some());
    for (hw, sw) in choices {
        match sw {
            Some(sw) => log_line(
                "warning",
                "runner",
                &format!(
                    "decoder: {hw} is not available here (no GPU plugin or device); using software {sw}"
                ),
            ),
            None => log_line("info", "runner", &format!("decoder: hardware {hw}")),
        }
    }
    out
}

/// One supervised unit.
struct Unit {
    desc: String,
    name: String,
    pipeline: Option<gst::Pipeline>,
    bus_watch: Option<gst::bus::BusWatchGuard>,
    backoff: Backoff,
    started: Option<Instant>,
    live: bool,
    /// Finished for good (a file that ended, or shutdown).
    done: bool,
    reconnects: u64,
    /// Being removed through the API (EOS sent), or removed.
    removed: bool,
    /// `--loop`: the file plays as a segment (the first seek was made).
    segment: bool,
}

impl Unit {
    fn new(desc: String, name: String, max_backoff: Duration) -> Unit {
        Unit {
            desc,
            name,
            pipeline: None,
            bus_watch: None,
            backoff: Backoff::new(Duration::from_millis(500), max_backoff),
            started: None,
            live: false,
            done: false,
            reconnects: 0,
            removed: false,
            segment: false,
        }
    }
}

/// What the API asks of the main loop (which owns the pipelines).
pub enum Command {
    /// Add camera `name` (the template's description `desc`); the answer: (status, message).
    Add {
        name: String,
        uri: String,
        vars: BTreeMap<String, String>,
        desc: String,
        reply: std::sync::mpsc::Sender<(u16, String)>,
    },
    /// Drain (EOS) and remove camera `name`.
    Remove {
        name: String,
        reply: std::sync::mpsc::Sender<(u16, String)>,
    },
    /// The next frame of camera `name` (a copy, in memory), or why not: (status, message).
    Snapshot {
        name: String,
        reply: std::sync::mpsc::Sender<Result<gst::Sample, (u16, String)>>,
    },
    /// An event of the runner's own (an alert's acknowledgement): to the event stream, the
    /// log and the sinks, as the elements' events go.
    Publish(Event),
}

struct Shared {
    metrics: Arc<Mutex<Metrics>>,
    /// What the API shows.
    site: Arc<Mutex<Site>>,
    /// The recent events for the API's event stream, and its wake-up.
    journal: Arc<Mutex<Journal>>,
    notify: Arc<tokio::sync::Notify>,
    /// Cameras added and removed through the API (kept in `state_dir`).
    store: CameraStore,
    state_dir: PathBuf,
    max_backoff: Duration,
    delivery: Option<Delivery>,
    shutting_down: bool,
    /// `--loop`: file cameras play again from the start.
    loop_files: bool,
    /// `--history-embeddings`: facematch elements post embeddings, for the history only.
    history_embeddings: bool,
    main_loop: glib::MainLoop,
}

type Ctx = Rc<RefCell<(Vec<Unit>, Shared)>>;

impl Shared {
    /// A `camera` event on the API's event stream (not published): the camera's state
    /// changed to `state` (`up`, `down`, `finished`, `removed`), for the dashboard's camera
    /// strip, at once.
    fn camera_event(&self, name: &str, state: &str, reason: Option<&str>, reconnects: u64) {
        let ev = sightline_core::events::Event::new(
            "camera",
            "runner",
            name,
            None,
            utc_now(),
            serde_json::json!({"state": state, "reason": reason, "reconnects": reconnects}),
        );
        journal(self, &ev);
    }
}

/// One JSON log line on stderr. URLs in the message are shown without their secrets: the
/// runner logs GStreamer's own errors, which quote camera URLs with their credentials.
fn log_line(level: &str, unit: &str, msg: &str) {
    let msg = redact_urls_in_text(msg);
    let line = serde_json::json!({"utc": utc_now(), "level": level, "unit": unit, "msg": msg});
    eprintln!("{line}");
}

/// The camera name of a unit: the `camera` property of its first Sightline element, else the
/// name of its first element.
fn unit_name(p: &gst::Pipeline, k: usize) -> String {
    let mut first = None;
    let elements: Vec<gst::Element> = p.iterate_sorted().into_iter().flatten().collect();
    for e in elements.iter().rev() {
        if first.is_none() {
            first = Some(e.name().to_string());
        }
        if e.find_property("camera")
            .is_some_and(|p| p.value_type() == String::static_type())
        {
            let c: Option<String> = e.property("camera");
            return c.unwrap_or_else(|| e.name().to_string());
        }
    }
    first.unwrap_or_else(|| format!("unit{k}"))
}

/// The source pad of a camera's decoder (uridecodebin3 and its kin), where `--loop` seeks:
/// a seek there goes to the demuxer alone, not through muxers downstream that cannot seek.
fn decoder_pad(p: &gst::Pipeline) -> Option<gst::Pad> {
    p.iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| {
            e.factory().is_some_and(|f| {
                matches!(
                    f.name().as_str(),
                    "uridecodebin3" | "uridecodebin" | "decodebin3" | "decodebin"
                )
            })
        })
        .and_then(|e| e.src_pads().into_iter().next())
}

/// Plays the camera's file from its start as a segment (`--loop`); false if it cannot.
fn loop_seek(p: &gst::Pipeline, flags: gst::SeekFlags) -> bool {
    let seek = gst::event::Seek::new(
        1.0,
        flags,
        gst::SeekType::Set,
        gst::ClockTime::ZERO,
        gst::SeekType::None,
        gst::ClockTime::NONE,
    );
    match decoder_pad(p) {
        Some(pad) => pad.send_event(seek),
        None => p.send_event(seek),
    }
}

/// Where a snapshot of a camera is taken: the sink pad of its first analytics element
/// (raw video, before any overlay is drawn).
fn snapshot_pad(p: &gst::Pipeline) -> Option<gst::Pad> {
    p.iterate_sorted()
        .into_iter()
        .flatten()
        .filter(is_analytics)
        .last()
        .and_then(|e| e.static_pad("sink"))
}

/// One of our analytics elements, where a camera's frames enter the analysis.
fn is_analytics(e: &gst::Element) -> bool {
    e.factory().is_some_and(|f| {
        matches!(
            f.name().as_str(),
            "facedetect" | "sightlinefacedetect" | "persondetect"
        )
    })
}

/// Probes for frames in (into the first analytics element) and processed (into the sinks),
/// and the time between the two.
fn add_probes(p: &gst::Pipeline, camera: &str, metrics: &Arc<Mutex<Metrics>>) {
    let elements: Vec<gst::Element> = p.iterate_elements().into_iter().flatten().collect();
    let entered: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    for e in elements.iter().filter(|e| is_analytics(e)) {
        if let Some(pad) = e.static_pad("sink") {
            let (m, cam, ent) = (metrics.clone(), camera.to_string(), entered.clone());
            pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                // A frame counts once however many analytics elements it reaches (chained,
                // or on the branches of a tee): the first one to see its running time counts
                // it (not its timestamp, which repeats when a file loops).
                let new = match (info.buffer(), ent.lock()) {
                    (Some(b), Ok(mut ent)) => {
                        if ent.len() > 256 {
                            ent.clear();
                        }
                        let key = frame_key(pad, b);
                        let fresh = !ent.contains_key(&key);
                        ent.entry(key).or_insert_with(Instant::now);
                        fresh
                    }
                    _ => false,
                };
                if new && let Ok(mut m) = m.lock() {
                    m.inc(
                        "sightline_frames_in_total",
                        "Frames that reached the analytics (each once)",
                        &[("camera", &cam)],
                        1.0,
                    );
                }
                gst::PadProbeReturn::Ok
            });
        }
    }
    // A leaky queue (live cameras: the freshest frame is analysed, older ones dropped, so the
    // delay stays bounded when the analytics fall behind) drops one buffer per overrun.
    for e in elements.iter().filter(|e| is_leaky_queue(e)) {
        let (m, cam, queue) = (metrics.clone(), camera.to_string(), e.name().to_string());
        e.connect("overrun", false, move |_| {
            if let Ok(mut m) = m.lock() {
                m.inc(
                    "sightline_frames_dropped_total",
                    "Frames a leaky queue dropped because what follows it was busy",
                    &[("camera", &cam), ("queue", &queue)],
                    1.0,
                );
            }
            None
        });
    }
    for e in elements
        .iter()
        .filter(|e| e.element_flags().contains(gst::ElementFlags::SINK))
    {
        // "sink", or the request pad a bin such as webrtcsink gave the link ("video_0").
        if let Some(pad) = e.sink_pads().into_iter().next() {
            let (m, cam, ent) = (metrics.clone(), camera.to_string(), entered.clone());
            pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                let delay = info.buffer().and_then(|b| frame_age(pad, b));
                let latency = info.buffer().and_then(|b| {
                    ent.lock()
                        .ok()?
                        .remove(&frame_key(pad, b))
                        .map(|t| t.elapsed().as_secs_f64())
                });
                if let Ok(mut m) = m.lock() {
                    m.inc(
                        "sightline_frames_processed_total",
                        "Frames that came out of the pipeline",
                        &[("camera", &cam)],
                        1.0,
                    );
                    if let Some(d) = delay {
                        m.set(
                            "sightline_frame_delay_seconds",
                            "How far behind the pipeline clock the last frame reached the sink \
                             (capture to analysed, for live cameras)",
                            &[("camera", &cam)],
                            d,
                        );
                    }
                    if let Some(l) = latency {
                        m.set(
                            "sightline_inference_latency_seconds",
                            "Time from entering the analytics to the sink, last frame",
                            &[("camera", &cam)],
                            l,
                        );
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The camera's source as the API shows it: the `location` or `uri` of the pipeline's first
/// source element, without credentials.
fn source_uri(p: &gst::Pipeline) -> Option<String> {
    let mut elements: Vec<gst::Element> = p.iterate_recurse().into_iter().flatten().collect();
    elements.retain(|e| e.element_flags().contains(gst::ElementFlags::SOURCE));
    elements.iter().find_map(|e| {
        ["location", "uri"].iter().find_map(|prop| {
            e.find_property(prop)
                .filter(|p| p.value_type() == String::static_type())
                .and_then(|_| e.property::<Option<String>>(prop))
                .map(|v| redact_urls_in_text(&v))
        })
    })
}

/// A frame's identity across the elements of a pipeline: its running time (ns; its
/// timestamp when the pad has no time segment).
fn frame_key(pad: &gst::Pad, b: &gst::BufferRef) -> u64 {
    let pts = b.pts();
    pad.sticky_event::<gst::event::Segment>(0)
        .and_then(|seg| {
            seg.segment()
                .downcast_ref::<gst::ClockTime>()?
                .to_running_time(pts?)
        })
        .or(pts)
        .map_or(0, |t| t.nseconds())
}

/// Running time of the pipeline clock now minus the buffer's running time, in seconds (0 when
/// the buffer is early, as files without clock sync are).
fn frame_age(pad: &gst::Pad, b: &gst::BufferRef) -> Option<f64> {
    let e = pad.parent_element()?;
    let now = e.current_running_time()?;
    let seg = pad.sticky_event::<gst::event::Segment>(0)?;
    let rt = seg
        .segment()
        .downcast_ref::<gst::ClockTime>()?
        .to_running_time(b.pts()?)?;
    Some(now.saturating_sub(rt).nseconds() as f64 / 1e9)
}

fn is_leaky_queue(e: &gst::Element) -> bool {
    e.factory().is_some_and(|f| f.name() == "queue")
        && e.property_value("leaky")
            .transform::<i32>()
            .ok()
            .and_then(|v| v.get::<i32>().ok())
            .is_some_and(|leaky| leaky != 0)
}

/// Counts what a message says (faces, recognitions, persons, alerts).
fn count_message(m: &mut Metrics, s: &gst::StructureRef, camera: &str) {
    let list_len = |f: &str| s.get::<gst::List>(f).map_or(0, |l| l.len()) as f64;
    match s.name().as_str() {
        "facedetect" => m.inc(
            "sightline_faces_total",
            "Faces detected",
            &[("camera", camera)],
            list_len("faces"),
        ),
        "facematch" => m.inc(
            "sightline_recognitions_total",
            "Identity decisions (facematch messages)",
            &[("camera", camera)],
            1.0,
        ),
        "persondetect" => m.inc(
            "sightline_persons_total",
            "Persons detected",
            &[("camera", camera)],
            list_len("persons"),
        ),
        "presence-alert" => m.inc("sightline_alerts_total", "Alerts raised", &[], 1.0),
        "presence" => {
            let up = match s.get::<String>("event").ok().as_deref() {
                Some("shared-state-available") => 1.0,
                Some("shared-state-unavailable") => 0.0,
                _ => return,
            };
            let group = s.get::<String>("group").unwrap_or_default();
            m.set(
                "sightline_shared_state_up",
                "1 while the presence group's Redis link works, 0 while decisions are local",
                &[("group", &group)],
                up,
            );
        }
        _ => {}
    }
}

fn start_unit(ctx: &Ctx, k: usize) {
    let mut g = ctx.borrow_mut();
    let (units, shared) = &mut *g;
    if units[k].done || units[k].removed || shared.shutting_down {
        return;
    }
    let u = &mut units[k];
    let p = match gst::parse::launch(&u.desc) {
        Ok(e) => match e.downcast::<gst::Pipeline>() {
            Ok(p) => p,
            Err(e) => {
                let p = gst::Pipeline::new();
                let _ = p.add(&e);
                p
            }
        },
        Err(e) => {
            log_line("error", &u.name, &format!("cannot build the pipeline: {e}"));
            drop(g);
            schedule_restart(ctx, k);
            return;
        }
    };
    if shared.history_embeddings {
        for e in p.iterate_recurse().into_iter().flatten() {
            if e.factory().is_some_and(|f| f.name() == "facematch") {
                e.set_property("post-embedding", true);
            }
        }
    }
    if u.name.is_empty() {
        u.name = unit_name(&p, k);
        if shared.store.is_removed(&u.name) {
            u.done = true;
            u.removed = true;
            log_line(
                "info",
                &u.name,
                "removed through the API earlier: not started",
            );
            if let Ok(mut site) = shared.site.lock() {
                site.camera_removed(&u.name);
                site.set_units(units.iter().filter(|u| !u.removed).count());
            }
            return;
        }
    }
    if let Ok(mut site) = shared.site.lock() {
        site.camera_starting(&u.name, source_uri(&p));
    }
    add_probes(&p, &u.name, &shared.metrics);
    let bus = p.bus().expect("a pipeline has a bus");
    let c = ctx.clone();
    u.bus_watch = bus
        .add_watch_local(move |_, msg| {
            on_message(&c, k, msg);
            glib::ControlFlow::Continue
        })
        .ok();
    let res = p.set_state(gst::State::Playing);
    u.live = matches!(res, Ok(gst::StateChangeSuccess::NoPreroll)) || u.live;
    u.started = Some(Instant::now());
    u.segment = false;
    u.pipeline = Some(p);
    if let Ok(mut m) = shared.metrics.lock() {
        m.set(
            "sightline_camera_up",
            "1 while the camera's pipeline runs",
            &[("camera", &u.name)],
            1.0,
        );
    }
    log_line("info", &u.name, "started");
    if res.is_ok()
        && let Ok(mut site) = shared.site.lock()
    {
        site.camera_built(&u.name);
    }
    if res.is_err() {
        drop(g);
        fail(ctx, k, "cannot start (see the error above)");
    }
}

fn stop_unit(u: &mut Unit) {
    if let Some(p) = u.pipeline.take() {
        let _ = p.set_state(gst::State::Null);
    }
    u.bus_watch = None;
}

fn schedule_restart(ctx: &Ctx, k: usize) {
    let delay = {
        let mut g = ctx.borrow_mut();
        let (units, shared) = &mut *g;
        if shared.shutting_down || units[k].removed {
            return;
        }
        let u = &mut units[k];
        // A run longer than a minute was stable: reconnect quickly again.
        if u.started
            .is_some_and(|t| t.elapsed() > Duration::from_secs(60))
        {
            u.backoff.reset();
        }
        u.reconnects += 1;
        if let Ok(mut m) = shared.metrics.lock() {
            m.inc(
                "sightline_reconnects_total",
                "Times a camera's pipeline was rebuilt after a failure",
                &[("camera", &u.name)],
                1.0,
            );
        }
        u.backoff.next_delay()
    };
    let c = ctx.clone();
    glib::timeout_add_local_once(delay, move || start_unit(&c, k));
}

/// A unit failed (error, or EOS of a live source): tear it down and try again later.
fn fail(ctx: &Ctx, k: usize, why: &str) {
    {
        let mut g = ctx.borrow_mut();
        let (units, shared) = &mut *g;
        let u = &mut units[k];
        stop_unit(u);
        if let Ok(mut m) = shared.metrics.lock() {
            m.set(
                "sightline_camera_up",
                "1 while the camera's pipeline runs",
                &[("camera", &u.name)],
                0.0,
            );
        }
        let why = redact_urls_in_text(why);
        if let Ok(mut site) = shared.site.lock() {
            site.camera_down(&u.name, &why, u.reconnects + 1);
        }
        shared.camera_event(&u.name, "down", Some(&why), u.reconnects + 1);
        log_line(
            "warning",
            &u.name,
            &format!("{why}; reconnecting (other cameras keep running)"),
        );
    }
    schedule_restart(ctx, k);
}

fn finish(ctx: &Ctx, k: usize) {
    let mut g = ctx.borrow_mut();
    let (units, shared) = &mut *g;
    if units[k].done && units[k].pipeline.is_none() {
        quit_when_done(units, shared);
        return;
    }
    stop_unit(&mut units[k]);
    units[k].done = true;
    if let Ok(mut site) = shared.site.lock() {
        if units[k].removed {
            site.camera_removed(&units[k].name);
            site.set_units(units.iter().filter(|u| !u.removed).count());
        } else {
            site.camera_down(&units[k].name, "finished", units[k].reconnects);
        }
    }
    let state = if units[k].removed {
        "removed"
    } else {
        "finished"
    };
    shared.camera_event(&units[k].name, state, None, units[k].reconnects);
    if let Ok(mut m) = shared.metrics.lock()
        && units[k].removed
    {
        // Gone, not down: /health no longer counts it.
        m.remove_with("sightline_camera_up", "camera", &units[k].name);
    }
    let what = if units[k].removed {
        "removed"
    } else {
        "finished"
    };
    log_line("info", &units[k].name, what);
    quit_when_done(units, shared);
}

/// The runner ends when every camera has ended (files played to the end, or a stop) — not
/// when the API removed them all: a site served through the API waits for new cameras.
fn quit_when_done(units: &[Unit], shared: &Shared) {
    if units.iter().all(|u| u.done) && (shared.shutting_down || units.iter().any(|u| !u.removed)) {
        shared.main_loop.quit();
    }
}

/// Carries out what the API asked (on the main loop, which owns the pipelines).
fn command(ctx: &Ctx, c: Command) {
    match c {
        Command::Snapshot { name, reply } => {
            let g = ctx.borrow();
            let unit = g.0.iter().find(|u| u.name == name && !u.removed);
            let pad = unit
                .and_then(|u| u.pipeline.as_ref())
                .and_then(snapshot_pad);
            match (unit, pad) {
                (None, _) => {
                    let _ = reply.send(Err((404, format!("no camera {name}"))));
                }
                (Some(_), None) => {
                    let _ = reply.send(Err((
                        409,
                        format!("camera {name} has no video frames to take (not running, or no analytics element)"),
                    )));
                }
                (Some(_), Some(pad)) => {
                    // On the streaming thread: one deep copy of the next frame, handed over
                    // by a channel that never blocks; then the probe goes.
                    let reply = Mutex::new(Some(reply));
                    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                        let Some(b) = info.buffer() else {
                            return gst::PadProbeReturn::Ok;
                        };
                        if let Some(tx) = reply.lock().ok().and_then(|mut r| r.take()) {
                            let sample = match (b.copy_deep(), pad.current_caps()) {
                                (Ok(copy), Some(caps)) => {
                                    Ok(gst::Sample::builder().buffer(&copy).caps(&caps).build())
                                }
                                _ => Err((500, "the frame could not be copied".to_string())),
                            };
                            let _ = tx.send(sample);
                        }
                        gst::PadProbeReturn::Remove
                    });
                }
            }
        }
        Command::Add {
            name,
            uri,
            vars,
            desc,
            reply,
        } => {
            let answer = add_camera(ctx, &name, &desc);
            if answer.0 == 201 {
                let mut g = ctx.borrow_mut();
                let shared = &mut g.1;
                shared.store.add(AddedCamera {
                    name: name.clone(),
                    uri,
                    vars,
                });
                if let Err(e) = shared.store.save(&shared.state_dir) {
                    log_line(
                        "warning",
                        "api",
                        &format!("{e}; the camera runs but will not be restored after a restart"),
                    );
                }
            }
            let _ = reply.send(answer);
        }
        Command::Remove { name, reply } => {
            let _ = reply.send(remove_camera(ctx, &name));
        }
        Command::Publish(ev) => {
            let g = ctx.borrow();
            journal(&g.1, &ev);
            deliver(&g.1, &ev);
            log_line(
                "event",
                &ev.camera,
                &format!(
                    "{}, {}",
                    ev.kind,
                    serde_json::to_string(&ev.data).unwrap_or_default()
                ),
            );
        }
    }
}

/// Builds camera `name` from `desc` and starts it while the others run: (201, …), or why
/// not ((400, the parse or link error), (409, the name is taken)).
fn add_camera(ctx: &Ctx, name: &str, desc: &str) -> (u16, String) {
    let k = {
        let mut g = ctx.borrow_mut();
        let (units, shared) = &mut *g;
        if shared.shutting_down {
            return (503, "the runner is stopping".into());
        }
        if units.iter().any(|u| u.name == name && !u.removed) {
            return (409, format!("a camera named {name} exists"));
        }
        let desc = choose_decoders(desc);
        let parts = split_units(&desc);
        if parts.len() != 1 {
            return (
                400,
                format!(
                    "the camera template makes {} independent pipelines, not one",
                    parts.len()
                ),
            );
        }
        if let Err(e) = preflight(&desc) {
            return (400, redact_urls_in_text(&e));
        }
        units.push(Unit::new(desc, name.to_string(), shared.max_backoff));
        if let Ok(mut site) = shared.site.lock() {
            site.set_units(units.iter().filter(|u| !u.removed).count());
        }
        units.len() - 1
    };
    log_line("info", name, "added through the API");
    start_unit(ctx, k);
    (201, format!("camera {name} added"))
}

/// Ends camera `name` with EOS (forced down after 10 s) and forgets it: (202, …) or 404.
fn remove_camera(ctx: &Ctx, name: &str) -> (u16, String) {
    let (k, pipeline) = {
        let mut g = ctx.borrow_mut();
        let (units, shared) = &mut *g;
        let Some(k) = units.iter().position(|u| u.name == name && !u.removed) else {
            return (404, format!("no camera named {name}"));
        };
        units[k].removed = true;
        shared.store.remove(name);
        if let Err(e) = shared.store.save(&shared.state_dir) {
            log_line(
                "warning",
                "api",
                &format!("{e}; the camera would come back after a restart"),
            );
        }
        (k, units[k].pipeline.clone())
    };
    log_line("info", name, "removing through the API: EOS");
    match pipeline {
        Some(p) => {
            p.send_event(gst::event::Eos::new());
            let c = ctx.clone();
            glib::timeout_add_local_once(Duration::from_secs(10), move || {
                let pending = c.borrow().0[k].pipeline.is_some();
                if pending {
                    log_line(
                        "warning",
                        "api",
                        "the camera did not drain in 10 s; stopped",
                    );
                    finish(&c, k);
                }
            });
        }
        // Waiting to reconnect: nothing to drain.
        None => finish(ctx, k),
    }
    (202, format!("camera {name} is being removed"))
}

fn on_message(ctx: &Ctx, k: usize, msg: &gst::Message) {
    use gst::MessageView as V;
    let (name, shutting_down, live, removed, looping) = {
        let g = ctx.borrow();
        let u = &g.0[k];
        let looping = g.1.loop_files && !u.live && !u.removed && !g.1.shutting_down;
        (
            u.name.clone(),
            g.1.shutting_down,
            u.live,
            u.removed,
            looping,
        )
    };
    match msg.view() {
        // --loop: once the pipeline plays, the file plays as a segment; at the segment's
        // end, again.
        V::StateChanged(_) | V::SegmentDone(_) if looping => {
            let first = match msg.view() {
                V::StateChanged(sc) => {
                    let from_pipeline = msg
                        .src()
                        .is_some_and(|s| s.downcast_ref::<gst::Pipeline>().is_some());
                    if !from_pipeline || sc.current() != gst::State::Playing {
                        return;
                    }
                    true
                }
                _ => false,
            };
            let mut g = ctx.borrow_mut();
            let u = &mut g.0[k];
            // The first seek once (a flushing seek makes the pipeline play again).
            if first && u.segment {
                return;
            }
            u.segment = true;
            let Some(p) = u.pipeline.clone() else { return };
            drop(g);
            if !first {
                if !loop_seek(&p, gst::SeekFlags::SEGMENT) {
                    log_line(
                        "warning",
                        &name,
                        "--loop: the file cannot seek again; it ends",
                    );
                }
                return;
            }
            // A pipeline whose sinks do not preroll is PLAYING before its demuxer has read
            // the file's headers: the first seek is tried again for up to 5 s.
            let mut tries = 0;
            glib::timeout_add_local(Duration::from_millis(100), move || {
                tries += 1;
                if loop_seek(&p, gst::SeekFlags::FLUSH | gst::SeekFlags::SEGMENT) {
                    return glib::ControlFlow::Break;
                }
                if tries >= 50 {
                    log_line(
                        "warning",
                        &name,
                        "--loop: this source cannot seek; it plays once",
                    );
                    return glib::ControlFlow::Break;
                }
                glib::ControlFlow::Continue
            });
        }
        V::Eos(_) => {
            if shutting_down || !live || removed {
                finish(ctx, k);
            } else {
                fail(ctx, k, "the live source ended (EOS)");
            }
        }
        V::Error(e) => {
            let src = msg
                .src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_default();
            log_line(
                "error",
                &name,
                &format!("{src}: {} ({})", e.error(), e.debug().unwrap_or_default()),
            );
            if shutting_down || removed {
                finish(ctx, k);
            } else {
                fail(ctx, k, &format!("stream error: {}", e.error()));
            }
        }
        V::Warning(w) => {
            let src = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
            log_line("warning", &name, &format!("{src}: {}", w.error()));
        }
        V::Qos(q) => {
            let (_, dropped) = q.stats();
            let g = ctx.borrow();
            if let Ok(mut m) = g.1.metrics.lock() {
                m.set(
                    "sightline_drops",
                    "Frames dropped for lateness (QoS), as last reported",
                    &[("camera", &name)],
                    dropped.value() as f64,
                );
            }
        }
        V::Element(_) => {
            let Some(s) = msg.structure() else { return };
            let src = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
            let mut ev = event_from_structure(s, &src, &name);
            // A decision's embedding goes to the history alone (its own event kind, which
            // no other sink receives), never to the API's event stream or a published sink.
            let embedding = sightline_core::history::rows::take_embedding(&mut ev);
            let camera = ev.camera.clone();
            let mut g = ctx.borrow_mut();
            let shared = &mut g.1;
            if let Ok(mut site) = shared.site.lock() {
                site.event(&ev, unix_ms());
            }
            journal(shared, &ev);
            if let Ok(mut m) = shared.metrics.lock() {
                count_message(&mut m, s, &camera);
                m.inc(
                    "sightline_events_total",
                    "Events",
                    &[("kind", s.name())],
                    1.0,
                );
            }
            // An element that publishes its own events (`publish` set) is not published
            // a second time.
            let published = msg
                .src()
                .and_then(|o| o.downcast_ref::<gst::Element>())
                .filter(|e| e.find_property("publish").is_some())
                .and_then(|e| e.property::<Option<String>>("publish"))
                .is_some_and(|p| !p.trim().is_empty());
            if published {
                return;
            }
            deliver(shared, &ev);
            if let Some(emb) = embedding.as_ref().filter(|_| shared.history_embeddings) {
                deliver(shared, emb);
            }
            if s.name().as_str() != "facedetect" && s.name().as_str() != "persondetect" {
                if embedding.is_some() {
                    // The log shows the decision, not the face's embedding.
                    let mut shown = s.to_owned();
                    shown.remove_field("embedding");
                    log_line("event", &camera, &shown.to_string());
                } else {
                    log_line("event", &camera, &s.to_string());
                }
            }
        }
        _ => {}
    }
}

/// `ev` on the API's event stream.
fn journal(shared: &Shared, ev: &Event) {
    if let (Ok(json), Ok(mut j)) = (serde_json::to_string(ev), shared.journal.lock()) {
        j.push(&ev.kind, json.into());
        shared.notify.notify_waiters();
    }
}

/// `ev` to the publisher's sinks (spooled; never waits on them).
fn deliver(shared: &Shared, ev: &Event) {
    if let Some(d) = shared.delivery.as_ref() {
        for p in d.send_reporting(ev) {
            log_line("warning", "events", &p);
        }
        delivery_metrics(d, &shared.metrics);
    }
}

/// Every camera's frame counters into the API's state (frames/s); a camera that starts
/// delivering frames is announced (a `camera` event, state `up`).
fn camera_counts(units: &[Unit], shared: &Shared) {
    let mut came_up = Vec::new();
    {
        let (Ok(m), Ok(mut site)) = (shared.metrics.lock(), shared.site.lock()) else {
            return;
        };
        let now = unix_ms();
        for u in units.iter().filter(|u| !u.name.is_empty() && !u.done) {
            let get = |name: &str| m.get(name, &[("camera", &u.name)]);
            if site.camera_counts(
                &u.name,
                get("sightline_frames_in_total").unwrap_or(0.0) as u64,
                get("sightline_frames_processed_total").unwrap_or(0.0) as u64,
                get("sightline_frame_delay_seconds"),
                now,
            ) {
                came_up.push((u.name.clone(), u.reconnects));
            }
        }
    }
    for (name, reconnects) in came_up {
        shared.camera_event(&name, "up", None, reconnects);
    }
}

/// The publisher's state as metrics: refreshed at each event and every second, so that an
/// outage shows while no event comes.
/// At most this long a stopping runner waits for its sinks to take the events still
/// waiting, and at most `STOP_STALLED` without any of them going (a sink that is down): the
/// rest stays in the spool for the next start.
const STOP_DRAIN: Duration = Duration::from_secs(10);
const STOP_STALLED: Duration = Duration::from_secs(3);

/// Gives the sinks (the history writer runs at the lowest CPU priority) the time to take
/// what waits before the runner stops; says so once.
fn finish_delivery(d: &Delivery) {
    let left = d.backlog();
    if left == 0 {
        return;
    }
    log_line(
        "info",
        "runner",
        &format!(
            "delivering {left} waiting event(s) before stopping (at most {} s; the rest stays in the spool)",
            STOP_DRAIN.as_secs()
        ),
    );
    d.finish(STOP_DRAIN, STOP_STALLED);
}

fn delivery_metrics(d: &Delivery, metrics: &Mutex<Metrics>) {
    let Ok(mut m) = metrics.lock() else { return };
    m.set(
        "sightline_event_backlog",
        "Events not yet delivered to every sink",
        &[],
        d.backlog() as f64,
    );
    for st in d.sinks() {
        m.set(
            "sightline_publish_backlog",
            "Events waiting for a sink",
            &[("sink", &st.name)],
            st.backlog as f64,
        );
        m.set(
            "sightline_publish_errors_total",
            "Failed deliveries to a sink (each retried)",
            &[("sink", &st.name)],
            st.errors as f64,
        );
        m.set(
            "sightline_publish_up",
            "1 while a sink takes events, 0 from a failure to its next delivery",
            &[("sink", &st.name)],
            if st.up { 1.0 } else { 0.0 },
        );
    }
    m.set(
        "sightline_spool_bytes",
        "Size of the event spool file, bytes",
        &[],
        d.spool_bytes() as f64,
    );
    m.set(
        "sightline_spool_dropped_total",
        "Events dropped from a full or too old spool (never alerts)",
        &[],
        d.dropped() as f64,
    );
}

/// Ends every unit with EOS; forces them down after 10 s.
fn shutdown(ctx: &Ctx) {
    let pipelines: Vec<(usize, Option<gst::Pipeline>)> = {
        let mut g = ctx.borrow_mut();
        if g.1.shutting_down {
            return;
        }
        g.1.shutting_down = true;
        g.0.iter()
            .enumerate()
            .map(|(k, u)| (k, u.pipeline.clone()))
            .collect()
    };
    log_line("info", "runner", "stopping: EOS to every camera");
    for (k, p) in pipelines {
        match p {
            Some(p) => {
                // A looping file never ends by itself (its demuxer loops and ignores an EOS
                // sent to the pipeline): the end of stream goes in after its decoder.
                let looped = ctx.borrow().0[k].segment;
                let peer = looped
                    .then(|| decoder_pad(&p))
                    .flatten()
                    .and_then(|d| d.peer());
                match peer {
                    Some(peer) => {
                        peer.send_event(gst::event::Eos::new());
                    }
                    None => {
                        p.send_event(gst::event::Eos::new());
                    }
                }
            }
            None => finish(ctx, k),
        }
    }
    // No camera at all (a site whose cameras all come through the API): nothing to drain.
    {
        let g = ctx.borrow();
        quit_when_done(&g.0, &g.1);
    }
    let c = ctx.clone();
    glib::timeout_add_local_once(Duration::from_secs(10), move || {
        let n = c.borrow().0.len();
        for k in 0..n {
            if !c.borrow().0[k].done {
                log_line(
                    "warning",
                    "runner",
                    "a camera did not drain in 10 s; stopped",
                );
                finish(&c, k);
            }
        }
    });
}

/// web/ of the source tree (the working directory) or share/sightline/web of an installation.
fn default_web_dir() -> Option<PathBuf> {
    let installed = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("share/sightline/web")));
    [Some(PathBuf::from("web")), installed]
        .into_iter()
        .flatten()
        .find(|d| crate::http::viewer_dir_problem(d).is_none())
}

/// Builds a unit once before anything runs, so a configuration that can never work (a typo,
/// a missing element, an unusable certificate) stops
/// the runner at once with the reason instead of being retried forever.
/// Every element of the descriptions, built once (the ones that do not build are skipped:
/// the preflight says why).
fn unit_elements(units: &[String]) -> Vec<gst::Element> {
    let mut elements = Vec::new();
    for d in units {
        let Ok(e) = gst::parse::launch(d) else {
            continue;
        };
        if let Some(bin) = e.downcast_ref::<gst::Bin>() {
            elements.extend(bin.iterate_recurse().into_iter().flatten());
        }
        elements.push(e);
    }
    elements
}

fn factory_is(el: &gst::Element, name: &str) -> bool {
    el.factory().is_some_and(|f| f.name() == name)
}

/// The one gallery file of the descriptions' facematch elements (None: none, or several).
/// The facematch elements' shared Redis state, as (URL, gallery key), for erasures through
/// the API. An element reads its URL back redacted: one with a secret is usable only when
/// it is the runner's own `--redis-url` (the same once redacted); else None.
fn shared_state(elements: &[gst::Element], own: Option<&str>) -> Vec<(Option<String>, String)> {
    use sightline_core::secrets::{MASK, redact_url};
    let mut found = std::collections::BTreeSet::new();
    for el in elements.iter().filter(|e| factory_is(e, "facematch")) {
        let Some(shown) = el
            .property::<Option<String>>("redis-url")
            .filter(|u| !u.trim().is_empty())
        else {
            continue;
        };
        let key: String = el
            .property::<Option<String>>("gallery-key")
            .unwrap_or_default();
        let url = if !shown.contains(MASK) {
            Some(shown)
        } else {
            own.filter(|u| redact_url(u) == shown).map(str::to_string)
        };
        found.insert((url, key));
    }
    found.into_iter().collect()
}

fn the_gallery(elements: &[gst::Element]) -> Option<PathBuf> {
    let mut found = std::collections::BTreeSet::new();
    for el in elements {
        if factory_is(el, "facematch")
            && let Some(g) = el.property::<Option<String>>("gallery")
            && std::path::Path::new(&g).is_file()
        {
            found.insert(std::path::absolute(&g).unwrap_or_else(|_| PathBuf::from(&g)));
        }
    }
    (found.len() == 1)
        .then(|| found.into_iter().next())
        .flatten()
}

/// The floor maps' layout for the API: each mapview's area and floor plan, each reidmap's
/// calibration (its camera's footprint). A calibration that cannot be read is left out here
/// (the element itself says why).
fn map_layout(elements: &[gst::Element], site: &mut Site) {
    for el in elements {
        if factory_is(el, "mapview") {
            let map = el.property::<Option<String>>("map").unwrap_or_default();
            let extent = ["min-x", "min-y", "max-x", "max-y"].map(|p| el.property::<f64>(p));
            let plan = el
                .property::<Option<String>>("floor-plan")
                .filter(|p| !p.is_empty())
                .map(|p| std::path::absolute(&p).unwrap_or_else(|_| PathBuf::from(p)));
            site.set_map_view(&map, extent, plan);
        } else if factory_is(el, "reidmap") {
            let map = el.property::<Option<String>>("map").unwrap_or_default();
            let camera = el
                .property::<Option<String>>("camera")
                .unwrap_or_else(|| el.name().to_string());
            let Some(path) = el.property::<Option<String>>("calibration") else {
                continue;
            };
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    sightline_core::geometry::Calibration::parse(&t, &path)
                        .map_err(|e| e.to_string())
                });
            if let Ok(c) = parsed {
                site.set_calibration(&map, &camera, c);
            }
        }
    }
}

/// The signalling server `/api/v1/signalling` proxies to: `--signalling`, else the one that
/// a webrtcsink of the descriptions runs (`run-signalling-server=true`). A server that
/// speaks TLS, or several, cannot be chosen (said, and no proxy).
fn the_signalling(given: Option<&str>, elements: &[gst::Element]) -> Option<String> {
    if let Some(g) = given {
        return Some(g.to_string());
    }
    let mut found = std::collections::BTreeSet::new();
    for el in elements {
        if factory_is(el, "webrtcsink")
            && el.find_property("run-signalling-server").is_some()
            && el.property::<bool>("run-signalling-server")
        {
            let host = el.property::<String>("signalling-server-host");
            let port = el.property::<u32>("signalling-server-port");
            let tls = el
                .property::<Option<String>>("signalling-server-cert")
                .is_some_and(|c| !c.is_empty());
            let host = match host.as_str() {
                "0.0.0.0" | "" => "127.0.0.1".to_string(),
                "::" => "[::1]".to_string(),
                h if h.contains(':') => format!("[{h}]"),
                h => h.to_string(),
            };
            found.insert((format!("ws://{host}:{port}"), tls));
        }
    }
    let mut it = found.into_iter();
    match (it.next(), it.next()) {
        (None, _) => None,
        (Some((_, true)), None) => {
            log_line(
                "warning",
                "runner",
                "the webrtcsink signalling server speaks TLS: /api/v1/signalling proxies to \
                 plain ws:// on loopback only (leave the pipeline's CERT/KEY empty; the \
                 runner's --tls-cert covers browsers). No signalling proxy",
            );
            None
        }
        (Some((url, false)), None) => Some(url),
        (Some(_), Some(_)) => {
            log_line(
                "warning",
                "runner",
                "several webrtcsink signalling servers: /api/v1/signalling needs \
                 --signalling ws://HOST:PORT to know which. No signalling proxy",
            );
            None
        }
    }
}

fn preflight(desc: &str) -> Result<(), String> {
    let e = gst::parse::launch(desc).map_err(|e| format!("cannot build \"{desc}\": {e}"))?;
    let mut elements = vec![e.clone()];
    if let Some(bin) = e.downcast_ref::<gst::Bin>() {
        elements.extend(bin.iterate_recurse().into_iter().flatten());
    }
    for el in elements {
        if el.factory().is_some_and(|f| f.name() == "webrtcsink") {
            check_webrtcsink(&el)?;
        }
    }
    Ok(())
}

/// webrtcsink runs its servers with whatever certificate it is given and, when that cannot be
/// loaded, falls back to plain text (signalling) or dies on the first connection (web): check
/// both pairs first. Its own HTTPS web server also stops at the first failed handshake
/// (gst-plugin-webrtc 0.15), hence the warning.
fn check_webrtcsink(el: &gst::Element) -> Result<(), String> {
    let prop = |n: &str| el.property::<Option<String>>(n);
    let name = el.name();
    for server in ["signalling-server", "web-server"] {
        if !el.property::<bool>(&format!("run-{server}")) {
            continue;
        }
        let cert = prop(&format!("{server}-cert")).filter(|c| !c.is_empty());
        sightline_core::runner::check_tls_pair(
            &format!("{name}: {server}-cert/-key"),
            cert.as_deref(),
            prop(&format!("{server}-key")).as_deref(),
        )?;
        if server == "web-server" && cert.is_some() {
            log_line(
                "warning",
                &name,
                "webrtcsink's own HTTPS server stops at the first failed TLS handshake \
                 (gst-plugin-webrtc 0.15); prefer the runner's page: --tls-cert/--tls-key",
            );
        }
    }
    Ok(())
}

/// GStreamer's own debug log (GST_DEBUG) with URLs redacted: its parser logs the whole
/// pipeline description, and sources such as rtspsrc log camera URLs with their credentials.
/// Replaces the default handler in this process; same fields, no colours.
fn redacting_gst_log() {
    if std::env::var_os("GST_DEBUG").is_none() {
        return;
    }
    gst::log::remove_default_log_function();
    let pid = std::process::id();
    let t0 = Instant::now();
    gst::log::add_log_function(move |cat, level, file, function, line, obj, msg| {
        let Some(text) = msg.get() else { return };
        let obj = obj.map(|o| format!(":<{o}>")).unwrap_or_default();
        let thread = std::thread::current();
        eprintln!(
            "{:.9} {pid} {:?} {:>7} {:>20} {file}:{line}:{function}{obj} {}",
            t0.elapsed().as_secs_f64(),
            thread.id(),
            format!("{level:?}").to_uppercase(),
            cat.name(),
            redact_urls_in_text(text.as_str())
        );
    });
}

/// The runner's state directory for `node`: $XDG_STATE_HOME/sightline/state/NODE, else
/// ~/.local/state/sightline/state/NODE.
pub fn default_state_dir(node: &str) -> PathBuf {
    default_spool_dir()
        .parent()
        .map(|d| d.join("state"))
        .unwrap_or_else(|| PathBuf::from("state"))
        .join(sightline_core::gallery::slug(node))
}

pub fn run(a: RunArgs) -> Result<(), String> {
    redacting_gst_log();
    // Live cameras analysed at their rate: each camera's runs sequential on its own thread,
    // nothing spinning between frames (SIGHTLINE_THREADS / SIGHTLINE_ORT_SPIN override).
    sightline_core::inference::prefer_live_pool();
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| format!("cannot read {}: {e}", a.file.display()))?;
    let file = PipelineFile::parse(&text, &a.file.display().to_string())?;
    let mut set = BTreeMap::new();
    for s in &a.set {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("--set {s}: expected NAME=VALUE"))?;
        set.insert(k.to_string(), v.to_string());
    }
    let desc = file.substitute(&set, |n| std::env::var(n).ok())?;
    crate::init_gst()?;
    let desc = choose_decoders(&desc);
    // A file with only a camera template has no unit of its own.
    let units: Vec<String> = split_units(&desc)
        .into_iter()
        .filter(|u| !u.trim().is_empty())
        .collect();
    for u in &units {
        preflight(u)?;
    }
    if a.dry_run {
        // The substituted descriptions, without the secrets they may carry.
        for u in &units {
            println!("{}", redact_urls_in_text(u));
        }
        return Ok(());
    }
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let site = Arc::new(Mutex::new(Site::default()));
    let node = a.node.clone().unwrap_or_else(default_node_id);
    let journal = Arc::new(Mutex::new(Journal::new(&node, JOURNAL_EVENTS)));
    let notify = Arc::new(tokio::sync::Notify::new());
    let state_dir = a
        .state_dir
        .clone()
        .unwrap_or_else(|| default_state_dir(&node));
    let history = match a.history.as_deref().map(str::trim) {
        Some("") => None,
        Some(u) => Some(u.to_string()),
        None => Some(crate::history_cmd::default_location(&state_dir)),
    };
    let history_location = history
        .as_deref()
        .map(sightline_core::history::Location::parse)
        .transpose()?;
    let store = CameraStore::load(&state_dir)?;
    let max = Duration::from_secs_f64(a.max_backoff.max(0.5));
    // Cameras added through the API before: built again from the template.
    let env = |n: &str| std::env::var(n).ok();
    let mut restored = Vec::new();
    for c in &store.added {
        match file.camera(&c.name, &c.uri, &c.vars, &set, env) {
            Ok(d) => {
                log_line("info", &c.name, "restored (added through the API)");
                restored.push(Unit::new(choose_decoders(&d), c.name.clone(), max));
            }
            Err(e) => log_line(
                "error",
                &c.name,
                &format!("cannot restore the camera added through the API: {e}"),
            ),
        }
    }
    if let Ok(mut s) = site.lock() {
        s.set_units(units.len() + restored.len());
    }
    let (commands_tx, commands) = std::sync::mpsc::channel::<Command>();
    if let Ok(mut s) = site.lock() {
        s.set_units(units.len());
    }
    if !a.http.is_empty() {
        let web_dir = a.web.clone().or_else(default_web_dir);
        let scheme = if a.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        let loopback = sightline_core::control::api::is_loopback(&a.http);
        let elements = unit_elements(&units);
        if let Ok(mut s) = site.lock() {
            map_layout(&elements, &mut s);
        }
        let signalling = the_signalling(a.signalling.as_deref(), &elements);
        if let Some(s) = &signalling {
            let shown = sightline_core::secrets::redact_url(s);
            let u = url::Url::parse(s).map_err(|e| format!("--signalling {shown}: {e}"))?;
            if u.scheme() != "ws" {
                return Err(format!(
                    "--signalling {shown}: the proxy speaks plain ws:// to a signalling server on this machine"
                ));
            }
        }
        let sessions_file = state_dir.join("sessions.json");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let sessions = match Sessions::open(&sessions_file, now_ms) {
            Ok(s) => s,
            Err(e) => {
                log_line(
                    "warning",
                    "runner",
                    &format!("{e}: starting with no browser sessions (they log in again)"),
                );
                Sessions::fresh(&sessions_file)
            }
        };
        let tokens = match &a.auth {
            Some(f) => Some(Mutex::new(sightline_core::control::auth::Tokens::open(f)?)),
            None if loopback || a.insecure_no_auth => None,
            None => {
                return Err(format!(
                    "refusing to serve --http {} without --auth: anyone who can reach it \
                     could watch the cameras and change the site. Give --auth FILE (make \
                     tokens with `sightline auth --file FILE add NAME --role admin`), \
                     serve on a loopback address, or accept the risk with --insecure-no-auth",
                    a.http
                ));
            }
        };
        if tokens.is_none() && !loopback {
            log_line(
                "warning",
                "runner",
                &format!(
                    "--insecure-no-auth: {} is served without access control to anyone who can reach it",
                    a.http
                ),
            );
        }
        crate::http::serve(
            crate::http::HttpConfig {
                addr: a.http.clone(),
                web_dir: web_dir.clone(),
                tls: a.tls_cert.clone().zip(a.tls_key.clone()),
            },
            crate::http::Api {
                metrics: metrics.clone(),
                site: site.clone(),
                tokens,
                loopback,
                metrics_token: a.metrics_token.clone().filter(|t| !t.is_empty()),
                journal: journal.clone(),
                notify: notify.clone(),
                cameras: Some(crate::http::CameraControl {
                    file: file.clone(),
                    set: set.clone(),
                    commands: Mutex::new(commands_tx.clone()),
                }),
                gallery: a.gallery.clone().or_else(|| the_gallery(&elements)),
                gallery_lock: Mutex::new(()),
                sessions: Mutex::new(sessions),
                limiter: Mutex::default(),
                tls: a.tls_cert.is_some(),
                signalling: signalling.clone(),
                history: history_location.clone(),
                shared_state: shared_state(
                    &elements,
                    a.redis_url
                        .clone()
                        .or_else(|| {
                            a.redis_url_file
                                .as_ref()
                                .and_then(|f| read_secret_file(f).ok())
                        })
                        .as_deref(),
                ),
                history_db: Mutex::default(),
            },
        )?;
        let page = match &web_dir {
            Some(d) => format!(", dashboard {scheme}://{}/ ({})", a.http, d.display()),
            None => String::new(),
        };
        let access = if a.auth.is_some() {
            "tokens required"
        } else {
            "no tokens"
        };
        let proxy = match &signalling {
            Some(s) => format!(", WebRTC signalling of {s} at /api/v1/signalling"),
            None => String::new(),
        };
        log_line(
            "info",
            "runner",
            &format!(
                "API on {scheme}://{}/api/v1/ ({access}), metrics on {scheme}://{}/metrics{page}{proxy}",
                a.http, a.http
            ),
        );
    }
    let mut sinks = Vec::new();
    if let Some(p) = &a.events {
        let p = std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))?;
        sinks.push(Sink::File(p));
    }
    for url in &a.publish {
        sinks.extend(Sink::parse_list(url)?);
    }
    let redis_url = match (&a.redis_url, &a.redis_url_file) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(f)) => Some(read_secret_file(f)?),
        (None, None) => None,
    };
    let limits = SpoolLimits {
        max_bytes: a.spool_max_bytes,
        max_age: Duration::from_secs_f64(a.spool_max_age.max(1.0)),
        ..Default::default()
    };
    if let Some(url) = &redis_url {
        sinks.push(Sink::Redis {
            url: url.clone(),
            stream: a.stream.clone(),
        });
    }
    let mut partial = Vec::new();
    if a.history_embeddings {
        if history.is_none() {
            return Err("--history-embeddings needs a history (--history is \"\")".into());
        }
        // The published sinks receive every event but the history's embeddings.
        let except = sightline_core::delivery::Only::Except(vec![
            sightline_core::history::rows::EMBEDDING_KIND.to_string(),
        ]);
        partial.extend(sinks.iter().map(|s| (s.clone(), except.clone())));
    }
    if let Some(location) = history_location.clone() {
        log_line(
            "info",
            "runner",
            &format!("keeping history in {}", location.display()),
        );
        partial.push((
            Sink::History {
                location,
                retention: sightline_core::history::Retention::parse(&a.history_retention)?,
            },
            sightline_core::delivery::Only::Kinds(
                sightline_core::history::rows::KINDS
                    .iter()
                    .map(|k| k.to_string())
                    .collect(),
            ),
        ));
    }
    let delivery = if sinks.is_empty() && partial.is_empty() {
        None
    } else {
        // One spool per node and set of destinations (a runner of other sinks has its own).
        let keys: Vec<String> = sinks.iter().map(Sink::key).collect();
        let set = sightline_core::sinks::short_hash(&keys.join(" "));
        let shown: Vec<String> = sinks.iter().map(Sink::display).collect();
        if !shown.is_empty() {
            log_line(
                "info",
                "runner",
                &format!("publishing events to {}", shown.join(", ")),
            );
        }
        Some(
            Delivery::start(DeliveryConfig {
                node: format!("{node}-runner-{set}"),
                name: Some(node.clone()),
                spool_dir: a.spool_dir.clone().unwrap_or_else(default_spool_dir),
                // With embeddings, the published sinks are in `partial` (all but those).
                sinks: if a.history_embeddings {
                    Vec::new()
                } else {
                    sinks
                },
                partial,
                limits,
            })
            .map_err(|e| format!("cannot open the event spool: {e}"))?,
        )
    };
    let main_loop = glib::MainLoop::new(None, false);
    let ctx: Ctx = Rc::new(RefCell::new((
        units
            .iter()
            .map(|d| Unit::new(d.clone(), String::new(), max))
            .chain(restored)
            .collect(),
        Shared {
            metrics,
            site,
            journal,
            notify,
            store,
            state_dir,
            max_backoff: max,
            delivery,
            shutting_down: false,
            loop_files: a.loop_files,
            history_embeddings: a.history_embeddings && history.is_some(),
            main_loop: main_loop.clone(),
        },
    )));
    drop(commands_tx);
    let n = ctx.borrow().0.len();
    for k in 0..n {
        start_unit(&ctx, k);
    }
    // SIGINT/SIGTERM set a flag (signal-hook: async-signal-safe); the main loop polls it.
    let term = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    {
        let c = ctx.clone();
        glib::timeout_add_local(Duration::from_millis(100), move || {
            if term.load(std::sync::atomic::Ordering::SeqCst) {
                shutdown(&c);
                return glib::ControlFlow::Break;
            }
            // What the API asked, at most 100 ms later.
            while let Ok(cmd) = commands.try_recv() {
                command(&c, cmd);
            }
            glib::ControlFlow::Continue
        });
    }
    {
        // The publisher's metrics and outage warnings also while no event comes.
        let c = ctx.clone();
        glib::timeout_add_local(Duration::from_secs(1), move || {
            let g = c.borrow();
            camera_counts(&g.0, &g.1);
            if let Some(d) = g.1.delivery.as_ref() {
                for p in d.take_problems() {
                    log_line("warning", "events", &p);
                }
                delivery_metrics(d, &g.1.metrics);
            }
            glib::ControlFlow::Continue
        });
    }
    if let Some(d) = a.duration {
        let c = ctx.clone();
        glib::timeout_add_local_once(Duration::from_secs_f64(d), move || shutdown(&c));
    }
    main_loop.run();
    let g = ctx.borrow();
    if let Some(d) = g.1.delivery.as_ref() {
        finish_delivery(d);
    }
    let reconnects: u64 = g.0.iter().map(|u| u.reconnects).sum();
    log_line(
        "info",
        "runner",
        &format!("stopped; {reconnects} reconnect(s)"),
    );
    Ok(())
}
