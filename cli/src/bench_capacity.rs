//! `sightline bench capacity`: how many cameras this machine takes.
//!
//! Cameras are the testkit RTSP server serving an H.264 stream made here from a shared face
//! video (x264, no B-frames, a key frame every 2 s, 4 Mbit/s at 1080p30 and 2 Mbit/s at 720p25:
//! what a typical IP camera's main stream sends), as it is, looped. Each trial starts one
//! `sightline run` with N cameras of one kind and holds them for `--hold` seconds:
//!
//! - **decode**: `uridecodebin3 ! fakesink`, every frame decoded: the machine's limit;
//! - **ours**: the production chain at the analysis rate: `uridecodebin3` (decoder) →
//!   `videorate drop-only max-rate` (frames not analysed are dropped at once) → leaky queue →
//!   `sightlinefacedetect` → `facematch` → `presence`. The elements read the decoder's I420
//!   frames: only the analysed frames are scaled (and converted) — into the model's input;
//!   no whole frame is converted (tests/capacity.rs: the same decisions as on BGRx);
//! - **ours, `--scan-interval N`** (N > 1, also run): the same chain with `sightlinefacedetect
//!   scan-interval=N`: the whole frame on every N-th analysed frame, only the regions around
//!   the faces last found between (tests/capacity.rs: the same decisions);
//! - **ours, `--motion-scan`** (also run): the same with `motion-scan=true`: a scan searches
//!   only the parts of the picture that changed since they were last searched, and around the
//!   known faces (the whole frame on every 10th scan);
//! - **the Python peer** (`bench/capacity_peer.py`, the seed's design): one OpenCV
//!   `VideoCapture` process per camera decoding every frame and passing the analysis rate on to
//!   one inference process with the models, detection, alignment, embedding and matching of
//!   `bench/reference_pipeline.py`; it holds when every camera decodes ≥ 90 % of the stream's
//!   frames and has ≥ 90 % of the rate analysed.
//!
//! A camera holds when it delivers at least 90 % of its target rate (the stream's for decode,
//! the analysis rate for ours) and its `sightline_frame_delay_seconds` does not keep growing
//! (the last third of the hold at most 0.5 s above the first third). N doubles until a trial
//! fails, then the largest N that holds is found between the last two. With `--cameras N`
//! there is no ramp: one trial of each variant at exactly N cameras, to compare their cost at
//! equal load (CPU and RSS, and the analysis's CPU beyond the decode-only trial's). The
//! runner's CPU (all its threads) and RSS are read from /proc; the RTSP server's CPU is
//! reported apart (it runs on the same machine).

use gst::prelude::*;
use sightline_core::control::auth::{Role, TokenFile};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One camera kind of the benchmark.
#[derive(Debug, Clone, Copy)]
pub struct StreamKind {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub kbps: u32,
}

pub const STREAMS: [StreamKind; 2] = [
    StreamKind {
        name: "1080p30",
        width: 1920,
        height: 1080,
        fps: 30,
        kbps: 4000,
    },
    StreamKind {
        name: "720p25",
        width: 1280,
        height: 720,
        fps: 25,
        kbps: 2000,
    },
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Decode,
    Ours,
    /// bench/capacity_peer.py: OpenCV capture processes and one Python inference process.
    Peer,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Decode => "decode only",
            Mode::Ours => "sightline",
            Mode::Peer => "Python peer",
        }
    }
}

#[derive(Clone)]
pub struct Options {
    pub input: PathBuf,
    pub hold: u64,
    pub rate: u32,
    pub scan_interval: u32,
    /// Also run ours with `sightlinefacedetect motion-scan=true` (at `scan_interval`).
    pub motion_scan: bool,
    pub max_cameras: usize,
    /// One trial at exactly this many cameras instead of the ramp.
    pub cameras: Option<usize>,
    pub streams: Vec<String>,
    pub work_dir: PathBuf,
    /// Also ramp the Python peer (bench/capacity_peer.py).
    pub peer: bool,
}

/// What one trial measured.
#[derive(Debug, Clone)]
struct Trial {
    cameras: usize,
    held: bool,
    /// The slowest camera's frames/s and the largest delay growth (s).
    worst_fps: f64,
    worst_growth: f64,
    /// Runner CPU (cores) and RSS (MiB); the RTSP server's CPU (cores).
    cpu: f64,
    rss_mib: f64,
    server_cpu: f64,
    why: String,
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User + system CPU seconds of a process (all threads), from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces) in its parentheses.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat; here 11 and 12 (state is field 3).
    let hz = 100.0; // USER_HZ on Linux
    (ticks(11) + ticks(12)) / hz
}

/// Makes (once) the H.264 byte stream of `kind` from `input` in `dir`.
fn make_stream(input: &Path, kind: &StreamKind, dir: &Path) -> Result<PathBuf, String> {
    let gop = kind.fps * 2;
    let out = dir.join(format!(
        "{}-{}x{}p{}-{}k-g{gop}.h264",
        input
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .replace('.', "-"),
        kind.width,
        kind.height,
        kind.fps,
        kind.kbps
    ));
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = out.with_extension("part");
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! videorate ! \
         video/x-raw,format=I420,width={},height={},framerate={}/1,pixel-aspect-ratio=1/1 ! \
         x264enc bitrate={} key-int-max={gop} bframes=0 speed-preset=veryfast ! \
         video/x-h264,profile=main ! h264parse ! \
         video/x-h264,stream-format=byte-stream,alignment=au ! filesink location=\"{}\"",
        input.display(),
        kind.width,
        kind.height,
        kind.fps,
        kind.kbps,
        tmp.display()
    );
    let p = gst::parse::launch(&desc)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    p.set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let res = crate::bench::wait_eos(&p);
    let _ = p.set_state(gst::State::Null);
    res.map_err(|e| format!("encoding {}: {e}", input.display()))?;
    std::fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn pipeline(mode: Mode, url: &str, n: usize, o: &Options, gallery: &Path) -> String {
    let (rate, scan, motion) = (o.rate, o.scan_interval, o.motion_scan);
    let mut desc = String::new();
    for i in 1..=n {
        let cam = format!("cam{i}");
        desc.push_str(&match mode {
            Mode::Decode => {
                format!("uridecodebin3 name={cam} uri={url} ! fakesink sync=false\n")
            }
            // (The peer runs no pipeline file.)
            Mode::Ours | Mode::Peer => format!(
                "uridecodebin3 uri={url} ! videorate drop-only=true max-rate={rate} ! \
                 queue max-size-buffers=2 leaky=downstream ! \
                 sightlinefacedetect camera={cam} scan-interval={scan} motion-scan={motion} ! facematch camera={cam} gallery=\"{}\" ! \
                 presence group=bench camera={cam} ! fakesink sync=false\n",
                gallery.display()
            ),
        });
    }
    desc
}

/// The cameras of the runner: (name, frames processed, delay in s).
fn cameras(port: u16, token: &str) -> Result<Vec<(String, u64, Option<f64>)>, String> {
    let v = crate::bench_api::get(port, "/api/v1/cameras", token)?;
    let mut out: Vec<_> = v["cameras"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_string(),
                c["frames_processed"].as_u64().unwrap_or(0),
                c["delay_s"].as_f64(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

struct Setup {
    exe: PathBuf,
    dir: PathBuf,
    tokens: PathBuf,
    token: String,
    gallery: PathBuf,
}

/// The Python peer with `n` cameras: it holds when every camera decodes at least 90 % of
/// the stream's frames and has 90 % of the analysis rate analysed.
fn peer_trial(
    s: &Setup,
    url: &str,
    server_pid: u32,
    n: usize,
    stream_fps: f64,
    o: &Options,
) -> Result<Trial, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/capacity_peer.py");
    let scpu0 = cpu_seconds(server_pid);
    let t0 = Instant::now();
    let out = Command::new(crate::bench::bench_python())
        .arg(&script)
        .arg(url)
        .arg(n.to_string())
        .arg(o.rate.to_string())
        .arg(o.hold.to_string())
        .arg(s.dir.join("still.png"))
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let server_cpu = (cpu_seconds(server_pid) - scpu0) / t0.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            format!(
                "the Python peer printed no result: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let fps = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_f64())
            .collect()
    };
    let (read, analysed) = (fps("read_fps"), fps("analysed_fps"));
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (worst_read, worst_fps) = (min(&read), min(&analysed));
    let mut why = v["error"].as_str().unwrap_or("").to_string();
    if why.is_empty() && worst_read < 0.9 * stream_fps {
        why = format!("a camera decoded {worst_read:.1} of {stream_fps} frames/s");
    }
    if why.is_empty() && worst_fps < 0.9 * o.rate as f64 {
        why = format!("a camera at {worst_fps:.1} of {} frames/s", o.rate);
    }
    Ok(Trial {
        cameras: n,
        held: why.is_empty() && analysed.len() == n,
        worst_fps: if worst_fps.is_finite() {
            worst_fps
        } else {
            0.0
        },
        worst_growth: 0.0,
        cpu: v["cpu"].as_f64().unwrap_or(0.0),
        rss_mib: v["rss_mib"].as_f64().unwrap_or(0.0),
        server_cpu,
        why,
    })
}

fn trial(
    s: &Setup,
    mode: Mode,
    url: &str,
    server_pid: u32,
    n: usize,
    target_fps: f64,
    o: &Options,
) -> Result<Trial, String> {
    let file = s.dir.join("capacity.pipeline");
    std::fs::write(&file, pipeline(mode, url, n, o, &s.gallery)).map_err(|e| e.to_string())?;
    let port = crate::bench_publish::free_port()?;
    let log = s.dir.join("runner.log");
    let child = Command::new(&s.exe)
        .arg("run")
        .arg(&file)
        .args(["--http", &format!("127.0.0.1:{port}"), "--auth"])
        .arg(&s.tokens)
        .arg("--state-dir")
        .arg(s.dir.join("state"))
        .arg("--spool-dir")
        .arg(s.dir.join("spool"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| e.to_string())?;
    let runner = Proc(child);
    let pid = runner.0.id();
    // Every camera delivering, then 5 s to settle (model loading, the first key frame).
    let end = Instant::now() + Duration::from_secs(60 + 5 * n as u64);
    loop {
        if let Ok(c) = cameras(port, &s.token)
            && c.len() == n
            && c.iter().all(|x| x.1 > 0)
        {
            break;
        }
        if Instant::now() > end {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            return Ok(Trial {
                cameras: n,
                held: false,
                worst_fps: 0.0,
                worst_growth: 0.0,
                cpu: 0.0,
                rss_mib: 0.0,
                server_cpu: 0.0,
                why: format!("not every camera started: {}", tail.join(" | ")),
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(5));
    let (t0, first) = (Instant::now(), cameras(port, &s.token)?);
    let (cpu0, scpu0) = (cpu_seconds(pid), cpu_seconds(server_pid));
    let mut delays: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut last = first.clone();
    while t0.elapsed() < Duration::from_secs(o.hold) {
        std::thread::sleep(Duration::from_secs(1));
        last = cameras(port, &s.token)?;
        for (k, c) in last.iter().enumerate().take(n) {
            if let Some(d) = c.2 {
                delays[k].push(d);
            }
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(pid) - cpu0) / dt;
    let server_cpu = (cpu_seconds(server_pid) - scpu0) / dt;
    let rss_mib = crate::bench_publish::status_kb(&pid.to_string(), "VmRSS:") as f64 / 1024.0;
    let mut worst_fps = f64::INFINITY;
    let mut worst_growth = 0.0f64;
    for (k, (a, b)) in first.iter().zip(&last).enumerate() {
        worst_fps = worst_fps.min(b.1.saturating_sub(a.1) as f64 / dt);
        let d = &delays[k];
        if d.len() >= 3 {
            let third = d.len() / 3;
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            worst_growth = worst_growth.max(mean(&d[d.len() - third..]) - mean(&d[..third]));
        }
    }
    let held = worst_fps >= 0.9 * target_fps && worst_growth <= 0.5;
    let why = if held {
        String::new()
    } else if worst_fps < 0.9 * target_fps {
        format!("a camera at {worst_fps:.1} of {target_fps} frames/s")
    } else {
        format!("delay grew {worst_growth:.2} s")
    };
    drop(runner);
    Ok(Trial {
        cameras: n,
        held,
        worst_fps,
        worst_growth,
        cpu,
        rss_mib,
        server_cpu,
        why,
    })
}

/// The trial of the largest N (1..=max) that holds: N doubles until a trial fails (the cap
/// itself is tried too: 32 -> 48, not 32 -> stop), then the gap is bisected.
fn largest_holding<T>(
    max: usize,
    mut trial: impl FnMut(usize) -> Result<(bool, T), String>,
) -> Result<Option<T>, String> {
    let (mut good, mut bad): (Option<(usize, T)>, Option<usize>) = (None, None);
    let mut n = 1;
    while n <= max {
        let (held, t) = trial(n)?;
        if !held {
            bad = Some(n);
            break;
        }
        good = Some((n, t));
        if n == max {
            break;
        }
        n = (n * 2).min(max);
    }
    if let (Some(b), Some(lo)) = (bad, good.as_ref().map(|g| g.0)) {
        let (mut lo, mut hi) = (lo, b);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            let (held, t) = trial(mid)?;
            if held {
                lo = mid;
                good = Some((mid, t));
            } else {
                hi = mid;
            }
        }
    }
    Ok(good.map(|g| g.1))
}

/// Every trial of the ramp (see [`largest_holding`]) and the largest N that holds.
fn ramp(
    s: &Setup,
    mode: Mode,
    url: &str,
    server_pid: u32,
    target_fps: f64,
    o: &Options,
) -> Result<(Option<Trial>, Vec<Trial>), String> {
    let mut trials = Vec::new();
    let run = |n: usize, trials: &mut Vec<Trial>| -> Result<Trial, String> {
        let t = if mode == Mode::Peer {
            peer_trial(s, url, server_pid, n, target_fps, o)?
        } else {
            trial(s, mode, url, server_pid, n, target_fps, o)?
        };
        eprintln!(
            "  {} x{n}: {} (slowest {:.1} frames/s, delay growth {:.2} s, CPU {:.2} cores, RSS {:.0} MiB; server {:.2} cores){}",
            mode.name(),
            if t.held { "holds" } else { "fails" },
            t.worst_fps,
            t.worst_growth,
            t.cpu,
            t.rss_mib,
            t.server_cpu,
            if t.why.is_empty() {
                String::new()
            } else {
                format!(": {}", t.why)
            }
        );
        trials.push(t.clone());
        Ok(t)
    };
    if let Some(n) = o.cameras {
        let t = run(n, &mut trials)?;
        // Kept even when it failed: the comparison is of its cost (the reason is printed).
        return Ok((Some(t), trials));
    }
    let good = largest_holding(o.max_cameras, |n| {
        let t = run(n, &mut trials)?;
        Ok((t.held, t))
    })?;
    Ok((good, trials))
}

pub fn bench_capacity(o: &Options) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("sl-bench-capacity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let res = (|| {
        let gallery = crate::bench::enrol_first_frame(&o.input, &dir)?;
        let tokens = dir.join("tokens.json");
        let mut f = TokenFile::load(&tokens)?;
        let token = f.add("bench", Role::Viewer, &sightline_core::events::utc_now())?;
        f.save(&tokens)?;
        let s = Setup {
            exe,
            dir: dir.clone(),
            tokens,
            token,
            gallery,
        };
        let mut rows = Vec::new();
        for kind in STREAMS
            .iter()
            .filter(|k| o.streams.iter().any(|s| s == k.name))
        {
            let stream = make_stream(&o.input, kind, &o.work_dir)?;
            let server = sightline_testkit::RtspServer::start_h264_stream("cam", &stream, kind.fps);
            let url = server.url();
            let server_pid = server.pid().unwrap_or(0);
            eprintln!(
                "{}: {} ({} kbit/s, key frame every 2 s), served by the testkit RTSP server at {url}",
                kind.name,
                stream.display(),
                kind.kbps
            );
            let (limit, _) = ramp(&s, Mode::Decode, &url, server_pid, kind.fps as f64, o)?;
            // Ours scanning the whole frame every time; with --scan-interval N also ours with
            // the whole frame on every N-th analysed frame (regions around the faces between).
            let whole = Options {
                scan_interval: 1,
                motion_scan: false,
                ..o.clone()
            };
            let (ours, _) = ramp(&s, Mode::Ours, &url, server_pid, o.rate as f64, &whole)?;
            let regions = if o.scan_interval > 1 {
                let only_regions = Options {
                    motion_scan: false,
                    ..o.clone()
                };
                ramp(
                    &s,
                    Mode::Ours,
                    &url,
                    server_pid,
                    o.rate as f64,
                    &only_regions,
                )?
                .0
            } else {
                None
            };
            let motion = if o.motion_scan {
                ramp(&s, Mode::Ours, &url, server_pid, o.rate as f64, o)?.0
            } else {
                None
            };
            let peer = if o.peer {
                ramp(&s, Mode::Peer, &url, server_pid, kind.fps as f64, o)?.0
            } else {
                None
            };
            rows.push((kind.name, limit, ours, regions, motion, peer));
        }
        println!(
            "capacity (held {} s each; ours analyses {} frames/s per camera):",
            o.hold, o.rate
        );
        let motion_name = format!(
            "sightline scan-interval={} motion-scan=true",
            o.scan_interval
        );
        for (name, limit, ours, regions, motion, peer) in rows {
            if let Some(n) = o.cameras {
                // Equal load: the cost of each variant, and of the analysis beyond decoding.
                let cores = |t: &Option<Trial>| t.as_ref().map_or(f64::NAN, |t| t.cpu);
                // `ours`: our chain, whose decoding is the decode-only trial's (the peer
                // decodes with OpenCV: no baseline of its own).
                let line = |what: &str, t: &Option<Trial>, ours: bool| {
                    if let Some(t) = t {
                        let beyond = t.cpu - cores(&limit);
                        let analysis = if !ours {
                            String::new()
                        } else {
                            format!(
                                "; analysis beyond decoding {beyond:.2} cores, {:.1} ms of CPU per analysed frame",
                                beyond * 1000.0 / (n as f64 * o.rate as f64)
                            )
                        };
                        println!(
                            "{name} x{n}: {what}: {:.2} cores ({:.3} per camera{analysis}), {:.0} MiB RSS{}",
                            t.cpu,
                            t.cpu / n as f64,
                            t.rss_mib,
                            if t.held {
                                String::new()
                            } else {
                                format!("; did not hold: {}", t.why)
                            }
                        );
                    }
                };
                if let Some(l) = &limit {
                    println!(
                        "{name} x{n}: decode only: {:.2} cores ({:.3} per camera), {:.0} MiB RSS",
                        l.cpu,
                        l.cpu / n as f64,
                        l.rss_mib
                    );
                }
                line("sightline", &ours, true);
                line(
                    &format!("sightline scan-interval={}", o.scan_interval),
                    &regions,
                    true,
                );
                line(&motion_name, &motion, true);
                line(Mode::Peer.name(), &peer, false);
                continue;
            }
            let n = |t: &Option<Trial>| t.as_ref().map_or(0, |t| t.cameras);
            let per = |t: &Option<Trial>| {
                t.as_ref().map_or(String::from("-"), |t| {
                    format!(
                        "{:.2} cores, {:.0} MiB RSS per camera{}",
                        t.cpu / t.cameras as f64,
                        t.rss_mib / t.cameras as f64,
                        if t.held {
                            String::new()
                        } else {
                            format!("; did not hold: {}", t.why)
                        }
                    )
                })
            };
            let ratio = |t: &Option<Trial>| {
                if n(&limit) > 0 {
                    n(t) as f64 / n(&limit) as f64
                } else {
                    0.0
                }
            };
            println!(
                "{name}: sightline {} cameras ({}), decode-only limit {} cameras ({}) -> {:.2} of the limit (target >= 0.8){}",
                n(&ours),
                per(&ours),
                n(&limit),
                per(&limit),
                ratio(&ours),
                if n(&limit) >= o.max_cameras {
                    format!(" [limit capped by --max-cameras {}]", o.max_cameras)
                } else {
                    String::new()
                }
            );
            if o.scan_interval > 1 {
                println!(
                    "{name}: sightline scan-interval={} (whole frame on every {}-th analysed frame, around the known faces between) {} cameras ({}) -> {:.2} of the limit",
                    o.scan_interval,
                    o.scan_interval,
                    n(&regions),
                    per(&regions),
                    ratio(&regions)
                );
            }
            if o.motion_scan {
                println!(
                    "{name}: {motion_name} (a scan searches only what changed since it was last searched, and around the known faces) {} cameras ({}) -> {:.2} of the limit",
                    n(&motion),
                    per(&motion),
                    ratio(&motion)
                );
            }
            if o.peer {
                let times = |t: &Option<Trial>| {
                    if n(&peer) > 0 {
                        format!("{:.1}x", n(t) as f64 / n(&peer) as f64)
                    } else {
                        "-".into()
                    }
                };
                let mut variants = vec![format!("{} (whole frame)", times(&ours))];
                if o.scan_interval > 1 {
                    variants.push(format!(
                        "{} (scan-interval={})",
                        times(&regions),
                        o.scan_interval
                    ));
                }
                if o.motion_scan {
                    variants.push(format!("{} (motion-scan)", times(&motion)));
                }
                println!(
                    "{name}: Python peer {} cameras ({}) -> sightline {} the peer's cameras (target >= 3x)",
                    n(&peer),
                    per(&peer),
                    variants.join(", ")
                );
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    res
}

#[cfg(test)]
mod tests {
    use super::largest_holding;

    /// For every machine limit and cap: the answer is min(limit, cap) (none when even one
    /// camera fails), no trial goes past the cap, and the search stays logarithmic.
    #[test]
    fn the_ramp_finds_the_largest_n_up_to_and_including_the_cap() {
        for max in [1, 2, 3, 32, 48] {
            for limit in 0..=60 {
                let mut tried = Vec::new();
                let got = largest_holding(max, |n| {
                    tried.push(n);
                    Ok((n <= limit, n))
                })
                .unwrap();
                let want = (limit > 0).then(|| limit.min(max));
                assert_eq!(got, want, "limit {limit}, cap {max}: tried {tried:?}");
                assert!(tried.iter().all(|&n| n >= 1 && n <= max), "{tried:?}");
                assert!(tried.len() <= 2 * 7, "{} trials: {tried:?}", tried.len());
            }
        }
    }

    #[test]
    fn a_failing_trial_program_stops_the_ramp_with_its_error() {
        let r = largest_holding::<()>(8, |n| {
            if n == 4 {
                Err("runner crashed".into())
            } else {
                Ok((true, ()))
            }
        });
        assert_eq!(r, Err("runner crashed".to_string()));
    }
}
