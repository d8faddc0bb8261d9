//! Helpers shared by the `sightline run` tests: the pipeline files, the runner binary, a
//! gallery enrolled from a real photo, polling and SIGTERM.
#![allow(dead_code)]

pub mod browser;

use sightline_testkit::shared_data;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub fn uri(p: &Path) -> String {
    format!("file://{}", p.canonicalize().unwrap().display())
}

pub fn pipeline(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../pipelines")
        .join(name)
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sl-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn runner(file: &Path, sets: &[(&str, String)], extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sightline"));
    // The default spool, state and history of the test's runners: not the user's.
    c.env(
        "XDG_STATE_HOME",
        std::env::temp_dir().join(format!("sl-run-{}-state", std::process::id())),
    );
    c.arg("run").arg(file);
    for (k, v) in sets {
        c.arg("--set").arg(format!("{k}={v}"));
    }
    c.args(extra);
    c
}

pub fn gallery(dir: &Path) -> PathBuf {
    let g = dir.join("staff.slg");
    let o = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["gallery", "--file"])
        .arg(&g)
        .args(["enroll", "--name", "Barack Obama"])
        .arg(shared_data(
            "faces/face_recognition_examples/obama/obama.jpg",
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    g
}

/// The variables of pipelines/reid-map.pipeline for two cameras that both watch PETS
/// vtest.avi (calibrations written into `dir`), with `extra` ones after them.
pub fn reid_map_vars(dir: &Path, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let (cal1, cal2) = (dir.join("left.json"), dir.join("right.json"));
    sightline_testkit::pets_calibration(0.0, &cal1);
    sightline_testkit::pets_calibration(0.0, &cal2);
    let vtest = uri(&shared_data("video/vtest.avi"));
    let mut v = vec![
        ("CAM1", vtest.clone()),
        ("CAM2", vtest),
        ("CAL1", cal1.display().to_string()),
        ("CAL2", cal2.display().to_string()),
        ("TRAJECTORIES", dir.join("traj.jsonl").display().to_string()),
        // The PETS ground plane (metres), where the people of vtest walk.
        ("EXTENT", "min-x=-25 min-y=-20 max-x=5 max-y=17".into()),
    ];
    v.extend_from_slice(extra);
    v
}

/// A new token from the real `sightline auth` command (alone on the last line of stdout).
pub fn auth(file: &Path, name: &str, role: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["auth", "--file"])
        .arg(file)
        .args(["add", name, "--role", role])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn stop(mut child: Child) -> Output {
    signal(child.id(), "TERM");
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Sends signal `sig` (TERM, STOP, CONT, …) to process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
    assert!(st.is_ok_and(|s| s.success()), "kill -{sig} {pid}");
}

/// The runner's /metrics text on 127.0.0.1:`port` (None while it does not answer).
pub fn metrics(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body.split_once("\r\n\r\n")?.1.to_string())
}

/// A child process killed when the test ends, also when it fails (a runner left behind
/// would take the CPU from the tests after it).
pub struct Killed(pub Option<Child>);

impl Killed {
    /// SIGTERM and wait (see [`stop`]).
    pub fn stop(mut self) -> Output {
        stop(self.0.take().expect("a child"))
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Resident memory of process `pid`, KiB (0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
