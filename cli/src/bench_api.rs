//! `sightline bench api`: the control API under load while cameras run. A `sightline run`
//! child runs two cameras (a real group photo at a camera's frame rate, decoded, detected,
//! matched against a gallery and followed by presence, paced in real time like a live camera
//! by `identity sync=true`, with the leaky queue of the pipeline files before the analytics); `wrk` (Debian
//! package) asks `/api/v1/presence` with a viewer token at a fixed rate. Three phases of the
//! same length: no load, load, no load again; the baseline of the cameras' frames/s is the
//! mean of the two quiet phases (so a drift of the machine over the run does not count as
//! the load's effect). Prints wrk's latency percentiles, the rate reached, each camera's
//! frames/s with and without the load, and the runner's RSS.

use sightline_core::control::auth::{Role, TokenFile};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PHOTO: &str = "../shared/data/faces/bbt_faceapi/group/bbt5.jpg";
const ENROL: &str = "../shared/data/faces/face_recognition_examples/obama/obama.jpg";

struct Runner(Child);

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `path` of the runner's API on 127.0.0.1:`port` with a bearer token, as JSON.
pub(crate) fn get(port: u16, path: &str, token: &str) -> Result<serde_json::Value, String> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    agent
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .and_then(|mut r| r.body_mut().read_to_string())
        .map_err(|e| format!("{path}: {e}"))
        .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("{path}: {e}")))
}

/// frames_processed of each camera.
fn processed(port: u16, token: &str) -> Result<Vec<(String, u64)>, String> {
    let v = get(port, "/api/v1/cameras", token)?;
    let mut out: Vec<(String, u64)> = v["cameras"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_string(),
                c["frames_processed"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    Ok(out)
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    crate::bench_publish::status_kb(&pid.to_string(), field)
}

/// Frames/s of each camera over `secs` seconds (counts from the API, time from here).
fn camera_fps(port: u16, token: &str, secs: f64) -> Result<Vec<(String, f64)>, String> {
    let (t0, a) = (Instant::now(), processed(port, token)?);
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (dt, b) = (t0.elapsed().as_secs_f64(), processed(port, token)?);
    Ok(a.iter()
        .zip(&b)
        .map(|((n, x), (_, y))| (n.clone(), y.saturating_sub(*x) as f64 / dt))
        .collect())
}

/// A latency of wrk's output (`1.23ms`, `850.00us`, `1.02s`) in ms.
fn ms(s: &str) -> Option<f64> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))?;
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => return None,
    })
}

pub fn bench_api(seconds: u64, rate: u32, camera_fps_set: u32) -> Result<(), String> {
    if Command::new("wrk").arg("--version").output().is_err() {
        return Err("wrk is not installed (Debian package wrk; scripts/setup installs it)".into());
    }
    for f in [PHOTO, ENROL] {
        if !Path::new(f).is_file() {
            return Err(format!(
                "{f}: not found (the shared data beside the checkout)"
            ));
        }
    }
    let dir = std::env::temp_dir().join(format!("sl-bench-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let r = run(&dir, seconds, rate, camera_fps_set);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn run(dir: &Path, seconds: u64, rate: u32, fps: u32) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let gallery = dir.join("staff.slg");
    let o = Command::new(&exe)
        .args(["gallery", "--file"])
        .arg(&gallery)
        .args(["enroll", "--name", "Barack Obama", ENROL])
        .output()
        .map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let tokens = dir.join("tokens.json");
    let mut f = TokenFile::load(&tokens)?;
    let token = f.add("bench", Role::Viewer, &sightline_core::events::utc_now())?;
    f.save(&tokens)?;
    let photo = std::path::absolute(PHOTO).map_err(|e| e.to_string())?;
    let mut desc = String::new();
    for cam in ["cam1", "cam2"] {
        desc.push_str(&format!(
            "multifilesrc location={} loop=true caps=image/jpeg,framerate={fps}/1 ! jpegdec ! \
             identity sync=true ! videoconvert ! video/x-raw,format=BGRx ! queue max-size-buffers=2 leaky=downstream ! \
             facedetect camera={cam} ! facematch camera={cam} gallery={} ! \
             presence group=site camera={cam} roster=\"Barack Obama\" ! fakesink sync=true\n",
            photo.display(),
            gallery.display()
        ));
    }
    let file = dir.join("site.pipeline");
    std::fs::write(&file, desc).map_err(|e| e.to_string())?;
    let port = crate::bench_publish::free_port()?;
    let child = Command::new(&exe)
        .arg("run")
        .arg(&file)
        .args(["--http", &format!("127.0.0.1:{port}"), "--auth"])
        .arg(&tokens)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("runner.log")).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| e.to_string())?;
    let runner = Runner(child);
    let pid = runner.0.id();
    // Both cameras processing, then 5 s to settle.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(p) = processed(port, &token)
            && p.len() == 2
            && p.iter().all(|(_, n)| *n > 0)
        {
            break;
        }
        if Instant::now() > end {
            let log = std::fs::read_to_string(dir.join("runner.log")).unwrap_or_default();
            return Err(format!("the cameras did not start within 60 s:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(5));
    let people = get(port, "/api/v1/presence", &token)?;
    let body_len = people.to_string().len();
    println!(
        "sightline run: 2 cameras ({} at {fps} frames/s, facedetect ! facematch ! presence), \
         /api/v1/presence answers {body_len} bytes",
        Path::new(PHOTO)
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
    );

    let secs = seconds as f64;
    let quiet1 = camera_fps(port, &token, secs)?;
    let rss_quiet = rss_kb(pid, "VmRSS:");

    // wrk paces each connection with delay(): C connections, one request per C/rate s each.
    let conns = 8u32;
    let script = dir.join("pace.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n\
             function delay() return {} end\n",
            (conns as f64 * 1000.0 / rate as f64).round() as u64
        ),
    )
    .map_err(|e| e.to_string())?;
    let wrk = Command::new("wrk")
        .args([
            "-t",
            "1",
            "-c",
            &conns.to_string(),
            "-d",
            &format!("{seconds}s"),
        ])
        .args(["--latency", "--timeout", "5s", "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/api/v1/presence"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("wrk: {e}"))?;
    let loaded = camera_fps(port, &token, secs)?;
    let out = wrk.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rss_loaded = rss_kb(pid, "VmRSS:");
    let quiet2 = camera_fps(port, &token, secs)?;

    let pct = |p: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(ms)
    };
    let rps: f64 = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    let non2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .map(str::trim)
        .unwrap_or("none");
    let (Some(p50), Some(p90), Some(p99)) = (pct("50%"), pct("90%"), pct("99%")) else {
        return Err(format!("wrk printed no latency distribution:\n{text}"));
    };
    println!(
        "wrk {seconds} s at {rate} requests/s asked ({conns} connections): {rps:.1} requests/s, \
         latency p50 {p50:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms; non-2xx: {non2xx}"
    );
    let mut worst = 0.0f64;
    for ((n, a), ((_, l), (_, b))) in quiet1.iter().zip(loaded.iter().zip(&quiet2)) {
        let base = (a + b) / 2.0;
        let change = if base > 0.0 {
            (l - base) / base * 100.0
        } else {
            0.0
        };
        worst = worst.min(change);
        println!(
            "{n}: {a:.2} frames/s before, {l:.2} under load, {b:.2} after: \
             {change:+.1} % against the quiet mean {base:.2}"
        );
    }
    println!(
        "runner RSS: {:.1} MiB quiet, {:.1} MiB under load, peak {:.1} MiB",
        rss_quiet as f64 / 1024.0,
        rss_loaded as f64 / 1024.0,
        rss_kb(pid, "VmHWM:") as f64 / 1024.0
    );
    let ok = p99 <= 50.0 && worst >= -5.0;
    println!(
        "target p99 <= 50 ms and cameras within 5 %: {}",
        if ok { "met" } else { "NOT met" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrk_latencies_are_read_in_ms() {
        assert_eq!(super::ms("850.00us"), Some(0.85));
        assert_eq!(super::ms("1.23ms"), Some(1.23));
        assert_eq!(super::ms("1.02s"), Some(1020.0));
        assert_eq!(super::ms("12"), None);
    }
}
