//! `sightline bench publish`: events per second through the publisher to a JSONL file, a Redis
//! Stream and an MQTT broker at once, against plain JSONL appends of the same events measured
//! in the same run; peak RSS; then the broker away for a while: the spool's growth and the
//! catch-up time once it is back. redis-server and mosquitto (Debian packages) are started here
//! on 127.0.0.1, each on a free port with its own directory, and stopped at the end.

use sightline_core::delivery::{Delivery, DeliveryConfig};
use sightline_core::events::{Event, JsonlSink};
use sightline_core::sinks::Sink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Option<Child>,
    cmd: Vec<String>,
    port: u16,
}

impl Server {
    fn start(cmd: Vec<String>, port: u16) -> Result<Server, String> {
        let mut s = Server {
            child: None,
            cmd,
            port,
        };
        s.spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new(&self.cmd[0])
            .args(&self.cmd[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{} (run scripts/setup): {e}", self.cmd[0]))?;
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "{} did not start on port {}",
            self.cmd[0], self.port
        ))
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn event(i: u64) -> Event {
    // A presence transition, the size of a real one (~330 bytes of JSON).
    Event::new(
        "presence",
        "presence0",
        "door",
        Some(i * 100_000_000),
        sightline_core::events::utc_now(),
        serde_json::json!({"group": "outlet-7", "event": "arrived", "identity": "ann-smith",
            "label": "Ann Smith", "from": "not-seen", "to": "present", "camera": "door",
            "clock-time": 1_000_000_000u64 + i, "running-time": i, "n": i}),
    )
}

fn rss_kb(field: &str) -> u64 {
    status_kb("self", field)
}

/// A `kB` field (`VmRSS:`, `VmHWM:`) of /proc/PID/status (`self`: this process); 0 if unread.
pub(crate) fn status_kb(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn wait(what: &str, secs: u64, mut f: impl FnMut() -> bool) -> Result<Duration, String> {
    let t = Instant::now();
    while !f() {
        if t.elapsed() > Duration::from_secs(secs) {
            return Err(format!("{what}: not within {secs} s"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(t.elapsed())
}

pub fn bench_publish(events: u64, outage_s: f64, rate: f64) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("sl-bench-publish-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("mqtt")).map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir.join("mqtt"), std::fs::Permissions::from_mode(0o777));
    }
    let result = run(&dir, events, outage_s, rate);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(dir: &Path, events: u64, outage_s: f64, rate: f64) -> Result<(), String> {
    let (rport, mport) = (free_port()?, free_port()?);
    let _redis = Server::start(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            &rport.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .map(String::from)
        .to_vec(),
        rport,
    )?;
    let conf = dir.join("mqtt/mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {mport} 127.0.0.1\nallow_anonymous true\n"),
    )
    .map_err(|e| e.to_string())?;
    let mut broker = Server::start(
        vec!["mosquitto".into(), "-c".into(), conf.display().to_string()],
        mport,
    )?;
    let evs: Vec<Event> = (0..events).map(event).collect();

    // Baseline: the same events appended to a JSONL file, one write each.
    let base_path = dir.join("baseline.jsonl");
    let mut base = JsonlSink::open(&base_path).map_err(|e| e.to_string())?;
    let t = Instant::now();
    for e in &evs {
        base.write(e).map_err(|e| e.to_string())?;
    }
    let base_rate = events as f64 / t.elapsed().as_secs_f64();

    // The publisher, three sinks at once.
    let file: PathBuf = dir.join("events.jsonl");
    let sinks = Sink::parse_list(&format!(
        "file://{},redis://127.0.0.1:{rport}/?stream=bench,mqtt://127.0.0.1:{mport}",
        file.display()
    ))?;
    let rss0 = rss_kb("VmRSS:");
    let d = Delivery::start(DeliveryConfig {
        node: "bench".into(),
        spool_dir: dir.join("spool"),
        sinks,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let t = Instant::now();
    for e in &evs {
        d.send(e).map_err(|e| e.to_string())?;
    }
    let sent = t.elapsed();
    // When each sink had everything.
    let mut finished: Vec<Option<Duration>> = vec![None; 3];
    wait("every event delivered to the 3 sinks", 600, || {
        for (k, st) in d.sinks().iter().enumerate() {
            if st.backlog == 0 && finished[k].is_none() {
                finished[k] = Some(t.elapsed());
            }
        }
        d.delivered() >= events
    })?;
    let all = t.elapsed();
    let rate_all = events as f64 / all.as_secs_f64();
    println!(
        "publisher: {events} events to file + Redis + MQTT in {:.2} s = {rate_all:.0} events/s \
         (send() returned after {:.3} s: {:.1} µs per event on the caller's thread)",
        all.as_secs_f64(),
        sent.as_secs_f64(),
        sent.as_secs_f64() * 1e6 / events as f64
    );
    println!(
        "baseline: plain JSONL appends {base_rate:.0} events/s; ratio publisher/baseline = {:.3}",
        rate_all / base_rate
    );
    for (s, f) in d.sinks().iter().zip(&finished) {
        let secs = f.unwrap_or(all).as_secs_f64();
        println!(
            "  sink {}: all {events} in {secs:.2} s ({:.0} events/s), errors {}",
            s.name,
            events as f64 / secs,
            s.errors
        );
    }
    println!(
        "rss: {} KiB before the publisher, {} KiB after, peak {} KiB",
        rss0,
        rss_kb("VmRSS:"),
        rss_kb("VmHWM:")
    );

    // The broker goes away for outage_s while events arrive at `rate`.
    broker.stop();
    let spool0 = d.spool_bytes();
    let n = (outage_s * rate) as u64;
    let t = Instant::now();
    for i in 0..n {
        let due = Duration::from_secs_f64(i as f64 / rate);
        if let Some(w) = due.checked_sub(t.elapsed()) {
            std::thread::sleep(w);
        }
        d.send(&event(events + i)).map_err(|e| e.to_string())?;
    }
    let mqtt_backlog = d
        .sinks()
        .iter()
        .find(|s| s.name.starts_with("mqtt"))
        .map_or(0, |s| s.backlog);
    println!(
        "outage: broker away {:.0} s, {n} events at {rate:.0}/s: spool {} -> {} bytes ({:.0} bytes per event), MQTT backlog {mqtt_backlog}, file and Redis backlog {}",
        t.elapsed().as_secs_f64(),
        spool0,
        d.spool_bytes(),
        (d.spool_bytes().saturating_sub(spool0)) as f64 / n.max(1) as f64,
        d.sinks()
            .iter()
            .filter(|s| !s.name.starts_with("mqtt"))
            .map(|s| s.backlog)
            .sum::<u64>()
    );
    broker.spawn()?;
    let back = Instant::now();
    wait("MQTT caught up", 600, || {
        d.sinks().iter().all(|s| s.backlog == 0)
    })?;
    println!(
        "catch-up: {:.2} s from the broker's return to an empty MQTT backlog (includes the retry back-off, at most 5 s); spool now {} bytes",
        back.elapsed().as_secs_f64(),
        d.spool_bytes()
    );
    let lines = std::fs::read_to_string(&file)
        .map_err(|e| e.to_string())?
        .lines()
        .count() as u64;
    println!("file: {lines} lines for {} events", events + n);
    drop(d);
    Ok(())
}
