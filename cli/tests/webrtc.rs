//! WebRTC out in a real browser: `sightline run` streams the annotated camera
//! (single-camera.pipeline, an RTSP camera looping a real face video, signalling and page over
//! TLS), then the live floor map (reid-map.pipeline on PETS) with webrtcsink; headless Chromium
//! opens the viewer page that the runner serves and plays both: decoded frames grow,
//! screenshots show the overlay boxes and the people on the map (saved to
//! target/test-artifacts/), and the page picks the camera up again when its runner restarts.
//!
//! ICE ignores loopback, so the test re-runs itself inside a network namespace of its own
//! (`unshare --net`) with a veth pair on 198.18.0.0/24 (the benchmarking range): nothing here
//! can reach, or is reachable from, any other address.

mod common;

use common::{gallery, pipeline, runner, stop, tmp, wait_for};
use serde_json::{Value, json};
use sightline_core::events::read_jsonl;
use sightline_core::video::{DecodedImage, decode_image};
use sightline_testkit::{RtspServer, free_port, pets_calibration, shared_data};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INNER: &str = "SIGHTLINE_TEST_IN_NETNS";
const HOST: &str = "198.18.0.1";

/// Outside the namespace: runs `test` again in a fresh one and returns false (the caller
/// returns). Inside: brings up the veth pair and returns true.
fn in_network_namespace(test: &str) -> bool {
    if std::env::var_os(INNER).is_some() {
        for cmd in [
            "ip link set lo up",
            "ip link add sl0 type veth peer name sl1",
            "ip addr add 198.18.0.1/24 dev sl0",
            "ip addr add 198.18.0.2/24 dev sl1",
            "ip link set sl0 up",
            "ip link set sl1 up",
        ] {
            let args: Vec<&str> = cmd.split(' ').collect();
            let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
            assert!(st.success(), "{cmd}");
        }
        return true;
    }
    let mut c = Command::new("unshare");
    if !is_root() {
        c.arg("--map-root-user");
    }
    let out = c
        .arg("--net")
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .output()
        .expect("unshare (util-linux)");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("{stdout}{stderr}");
    // The inner panic message last, where a truncated CI log still shows it.
    let why: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .take_while(|l| !l.starts_with("stack backtrace") && !l.starts_with("note:"))
        .take(40)
        .collect();
    assert!(
        out.status.success(),
        "{test} failed inside its network namespace:\n{}",
        why.join("\n")
    );
    false
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|u| u.split_whitespace().next() == Some("0"))
}

/// A minimal Chrome DevTools Protocol client over the browser's WebSocket (tungstenite).
struct Browser {
    child: Child,
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next_id: u64,
    profile: PathBuf,
    /// Console messages and exceptions of the pages, for failure reports.
    console: Vec<String>,
}

impl Browser {
    fn start(profile: PathBuf, extra: &[&str]) -> Browser {
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium (Debian package chromium)");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("chromium exited before its DevTools line")
                .unwrap();
            if let Some(u) = line.strip_prefix("DevTools listening on ") {
                break u.trim().to_string();
            }
        };
        // Keep draining stderr so chromium never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let (ws, _) = tungstenite::connect(url.as_str()).expect("CDP websocket");
        Browser {
            child,
            ws,
            next_id: 0,
            profile,
            console: Vec::new(),
        }
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let mut msg = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        loop {
            let m = self.ws.read().expect("CDP read");
            let Ok(text) = m.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap();
            if v["id"] == json!(self.next_id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            match v["method"].as_str() {
                Some("Runtime.consoleAPICalled") => {
                    let args: Vec<String> = v["params"]["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| a["value"].to_string())
                        .collect();
                    self.console.push(args.join(" "));
                }
                Some("Runtime.exceptionThrown") => {
                    self.console
                        .push(v["params"]["exceptionDetails"].to_string());
                }
                _ => {}
            }
        }
    }

    /// Opens `url` in a new tab; returns the tab's session id.
    fn open(&mut self, url: &str) -> String {
        let t = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let a = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": t["targetId"], "flatten": true}),
        );
        let session = a["sessionId"].as_str().unwrap().to_string();
        self.call(Some(&session), "Runtime.enable", json!({}));
        self.call(Some(&session), "Page.navigate", json!({"url": url}));
        session
    }

    fn eval(&mut self, session: &str, expr: &str) -> Value {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        r["result"]["value"].clone()
    }

    fn screenshot(&mut self, session: &str, path: &Path) {
        use base64::Engine;
        let r = self.call(
            Some(session),
            "Page.captureScreenshot",
            json!({"format": "png"}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The viewer's report for one stream: (state, decoded frames, width, height).
fn stream_state(b: &mut Browser, tab: &str, name: &str) -> Option<(String, u64, u64, u64)> {
    let v = b.eval(
        tab,
        "JSON.stringify(window.sightlineViewer ? window.sightlineViewer.streams() : [])",
    );
    let list: Vec<Value> = serde_json::from_str(v.as_str().unwrap_or("[]")).unwrap();
    let s = list.into_iter().find(|s| s["name"] == json!(name))?;
    Some((
        s["state"].as_str().unwrap_or("").to_string(),
        s["frames"].as_u64().unwrap_or(0),
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
    ))
}

/// Waits until the tab plays `name` and its decoded frame count grows; returns the counts.
fn plays(b: &mut Browser, tab: &str, name: &str) -> (u64, u64) {
    let t0 = Instant::now();
    let first = loop {
        if let Some((state, frames, w, h)) = stream_state(b, tab, name)
            && state == "streaming"
            && frames >= 10
            && w > 0
            && h > 0
        {
            break frames;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let page = b.eval(tab, "document.body ? document.body.innerText : ''");
            panic!(
                "{name} not playing: {:?}\npage: {page}\nconsole:\n{}",
                stream_state(b, tab, name),
                b.console.join("\n"),
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    std::thread::sleep(Duration::from_secs(3));
    let (_, later, _, _) = stream_state(b, tab, name).unwrap();
    assert!(
        later > first + 5,
        "{name}: decoded frames {first} -> {later}"
    );
    (first, later)
}

/// The RGB pixel at (x, y) of a screenshot decoded by core's decode_image (packed BGR).
fn rgb_at(img: &DecodedImage, x: usize, y: usize) -> [u8; 3] {
    let p = &img.data[y * img.stride + x * 3..y * img.stride + x * 3 + 3];
    [p[2], p[1], p[0]]
}

fn screenshot_pixels(path: &Path) -> DecodedImage {
    gst::init().unwrap();
    decode_image(path).unwrap()
}

/// Horizontal and vertical runs of at least `len` pixels within `tol` of `colour` (box edges
/// the overlay draws; nothing in a face video is a long straight line of a saturated colour).
fn straight_runs(img: &DecodedImage, colour: [u8; 3], tol: i32, len: usize) -> usize {
    let (w, h) = (&img.width, &img.height);
    let near = |x: usize, y: usize| {
        let p = rgb_at(img, x, y);
        (0..3).all(|c| (p[c] as i32 - colour[c] as i32).abs() <= tol)
    };
    let mut runs = 0;
    for y in 0..*h {
        let mut n = 0;
        for x in 0..*w {
            n = if near(x, y) { n + 1 } else { 0 };
            if n == len {
                runs += 1;
            }
        }
    }
    for x in 0..*w {
        let mut n = 0;
        for y in 0..*h {
            n = if near(x, y) { n + 1 } else { 0 };
            if n == len {
                runs += 1;
            }
        }
    }
    runs
}

/// A runner process, killed when dropped; on a failure its log is printed.
struct Running {
    child: Option<Child>,
    log: PathBuf,
}

impl Running {
    fn spawn(cmd: &mut Command, log: PathBuf) -> Running {
        let f = std::fs::File::create(&log).unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(f).spawn().unwrap();
        Running {
            child: Some(child),
            log,
        }
    }

    /// Sends `sig` (STOP, CONT, …) to the runner.
    fn signal(&self, sig: &str) {
        common::signal(self.child.as_ref().unwrap().id(), sig);
    }

    /// SIGTERM, then the exit status and the log.
    fn stop(mut self) -> (bool, String) {
        let out = stop(self.child.take().unwrap());
        (
            out.status.success(),
            std::fs::read_to_string(&self.log).unwrap_or_default(),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if std::thread::panicking() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("--- {} (last lines)", self.log.display());
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// A self-signed certificate for HOST (openssl); returns the base64 SHA-256 of its public key.
fn self_signed(cert: &Path, key: &Path) -> String {
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=sightline-test"])
        .args(["-addext", &format!("subjectAltName=IP:{HOST}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success());
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -pubkey -noout -in '{}' | openssl pkey -pubin -outform der | \
             openssl dgst -sha256 -binary | base64",
            cert.display()
        ))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn artifacts() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_browser_plays_the_annotated_camera_and_the_live_map() {
    if !in_network_namespace("a_browser_plays_the_annotated_camera_and_the_live_map") {
        return;
    }
    let dir = tmp("webrtc");
    let g = gallery(&dir);
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web");
    assert!(
        web.join("gstwebrtc-api-3.0.0.min.js").exists(),
        "web/gstwebrtc-api-3.0.0.min.js is missing: run scripts/setup"
    );
    // A live camera: the real face video looped by an RTSP server.
    let face =
        shared_data("video/intel_sample_videos/derived/head-pose-face-detection-male.mjpeg.avi");
    let cam = RtspServer::start_video("cam1", "h264", &face);

    // The camera's page over TLS with a throw-away certificate for HOST; the browser accepts
    // exactly that key (SPKI pin), nothing else. Access needs a token: the browser logs in
    // (session cookie) and signals through the runner's proxy, to webrtcsink's signalling
    // server on loopback.
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let spki = self_signed(&cert, &key);
    let (sig1, web1) = (free_port(), free_port());
    let events = dir.join("camera.jsonl");
    let tokens = dir.join("tokens.json");
    let token = common::auth(&tokens, "wall", "viewer");
    let camera_runner = |log: &str| {
        let mut c = runner(
            &pipeline("single-camera.pipeline"),
            &[
                ("CAM1", cam.url()),
                ("GALLERY", g.display().to_string()),
                ("CAMERA", "door".into()),
                ("BIND", "127.0.0.1".into()),
                ("SIGNALLING_PORT", sig1.to_string()),
            ],
            &[],
        );
        c.args(["--http", &format!("{HOST}:{web1}"), "--auth"])
            .arg(&tokens)
            .arg("--state-dir")
            .arg(dir.join("camera-state"))
            .arg("--web")
            .arg(&web)
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .arg("--events")
            .arg(&events);
        Running::spawn(&mut c, dir.join(log))
    };
    let camera = camera_runner("camera.log");
    wait_for("camera signalling and web server", 60, || {
        TcpStream::connect(("127.0.0.1", sig1)).is_ok() && TcpStream::connect((HOST, web1)).is_ok()
    });
    assert!(
        TcpStream::connect((HOST, sig1)).is_err(),
        "the signalling server listens on loopback only"
    );

    let mut b = Browser::start(
        dir.join("profile"),
        &[&format!("--ignore-certificate-errors-spki-list={spki}")],
    );
    // The viewer sends a browser without a session to the login page.
    let tab = b.open(&format!("https://{HOST}:{web1}/"));
    wait_for("the login page", 30, || {
        b.eval(&tab, "location.pathname") == json!("/login")
            && b.eval(&tab, "!!document.getElementById('token')") == json!(true)
    });
    // A wrong token first: the page says why and stays.
    b.eval(
        &tab,
        "document.getElementById('token').value = 'slt_00000000_wrong'; \
         document.getElementById('login').requestSubmit(); true",
    );
    wait_for("the login error", 20, || {
        b.eval(&tab, "document.getElementById('message').textContent")
            .as_str()
            .is_some_and(|m| m.contains("unknown or revoked token"))
    });
    b.eval(
        &tab,
        &format!(
            "document.getElementById('token').value = '{token}'; \
             document.getElementById('login').requestSubmit(); true"
        ),
    );
    wait_for("the viewer after the login", 30, || {
        b.eval(&tab, "location.pathname") == json!("/")
            && b.eval(&tab, "!!window.sightlineViewer") == json!(true)
    });
    // The session cookie's flags, as the browser stored them.
    let cookies = b.call(None, "Storage.getCookies", json!({}));
    let c = cookies["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sightline_session")
        .cloned()
        .expect("the session cookie");
    assert_eq!(
        (&c["httpOnly"], &c["secure"], &c["sameSite"]),
        (&json!(true), &json!(true), &json!("Strict")),
        "{c}"
    );
    assert!(!c["value"].as_str().unwrap().contains(&token));
    let (f1, f2) = plays(&mut b, &tab, "door");
    // The face video plays with its boxes; wait for a frame with a decision drawn.
    std::thread::sleep(Duration::from_secs(2));
    let shot = artifacts().join("webrtc-viewer-camera.png");
    b.screenshot(&tab, &shot);
    let img = screenshot_pixels(&shot);
    let boxes: usize = [[40, 220, 60], [235, 40, 40], [250, 210, 0]]
        .iter()
        .map(|c| straight_runs(&img, *c, 60, 24))
        .sum();
    eprintln!(
        "camera: frames {f1} -> {f2}, {boxes} overlay edges, screenshot {}",
        shot.display()
    );
    assert!(boxes >= 4, "no overlay box in {}", shot.display());
    // Page and signalling really went over TLS, through the runner.
    let proto = b.eval(
        &tab,
        "location.protocol + ' ' + window.sightlineViewer.signalling",
    );
    assert_eq!(
        proto,
        json!(format!("https: wss://{HOST}:{web1}/api/v1/signalling"))
    );
    // The runner's /metrics on the same HTTPS address (the port probes above, plain TCP
    // without a handshake, did not stop it).
    let metrics = b.eval(&tab, "fetch('/metrics').then(r => r.text())");
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(
        metrics.contains("sightline_frames_processed_total{camera=\"door\"}"),
        "{metrics}"
    );

    // The camera's runner restarts (an upgrade, a crash): the open page shows the stream offline,
    // then plays the new producer of the same name by itself (the session outlives the
    // restart: kept in the state directory).
    let (ok, log) = camera.stop();
    assert!(ok, "{log}");
    wait_for("the page to show door offline", 20, || {
        stream_state(&mut b, &tab, "door").is_some_and(|s| s.0 != "streaming")
    });
    let camera = camera_runner("camera-restarted.log");
    let (r1, r2) = plays(&mut b, &tab, "door");
    eprintln!("camera after its runner restarted: frames {r1} -> {r2}");
    // The runner hangs for a while (stopped; to the browser, like a cut link): ICE consent fails
    // and the session ends while the stream is still listed; the page retries until it plays.
    camera.signal("STOP");
    let t0 = Instant::now();
    wait_for("the page to retry the hung stream", 90, || {
        stream_state(&mut b, &tab, "door").is_some_and(|s| s.0 == "retrying")
    });
    let lost = t0.elapsed();
    std::thread::sleep(Duration::from_secs(5));
    camera.signal("CONT");
    let (h1, h2) = plays(&mut b, &tab, "door");
    let attempts = b.eval(
        &tab,
        "window.sightlineViewer.streams().find(s => s.name == 'door').attempts",
    );
    eprintln!(
        "camera after a hang: session lost after {:.1} s, playing again (frames {h1} -> {h2}, \
         {attempts} sessions in all)",
        lost.as_secs_f64()
    );
    assert!(attempts.as_u64().unwrap_or(0) >= 3, "{attempts}");
    let (ok, log) = camera.stop();
    assert!(ok, "{log}");
    let ev = read_jsonl(&events).unwrap();
    assert!(ev.iter().any(|e| e.kind == "facedetect"));
    drop(cam);

    // The live map, after the camera (two runners at once would share the two cores).
    let (sig2, web2) = (free_port(), free_port());
    let (cal1, cal2) = (dir.join("left.json"), dir.join("right.json"));
    pets_calibration(0.0, &cal1);
    pets_calibration(0.0, &cal2);
    let vtest = common::uri(&shared_data("video/vtest.avi"));
    let map = Running::spawn(
        runner(
            &pipeline("reid-map.pipeline"),
            &[
                ("CAM1", vtest.clone()),
                ("CAM2", vtest),
                ("CAL1", cal1.display().to_string()),
                ("CAL2", cal2.display().to_string()),
                ("TRAJECTORIES", dir.join("traj.jsonl").display().to_string()),
                // The PETS ground plane (metres), where the people of vtest walk.
                ("EXTENT", "min-x=-25 min-y=-20 max-x=5 max-y=17".into()),
                ("BIND", HOST.into()),
                ("SIGNALLING_PORT", sig2.to_string()),
            ],
            &[],
        )
        .args([
            "--insecure-no-auth",
            "--http",
            &format!("{HOST}:{web2}"),
            "--web",
        ])
        .arg(&web)
        .arg("--events")
        .arg(dir.join("map.jsonl")),
        dir.join("map.log"),
    );
    for port in [sig2, web2] {
        wait_for("map signalling and web server", 60, || {
            TcpStream::connect((HOST, port)).is_ok()
        });
    }
    let tab = b.open(&format!(
        "http://{HOST}:{web2}/?signalling=ws://{HOST}:{sig2}"
    ));
    let (m1, m2) = plays(&mut b, &tab, "map");
    let shot = artifacts().join("webrtc-viewer-map.png");
    b.screenshot(&tab, &shot);
    // People are dots in their global id's colour on a grey-white grid: count saturated
    // pixels below the header and the tile's caption.
    let img = screenshot_pixels(&shot);
    let (w, h) = (img.width, img.height);
    let dots = (80..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = rgb_at(&img, x, y);
            let (mx, mn) = (*p.iter().max().unwrap(), *p.iter().min().unwrap());
            mx as i32 - mn as i32 > 90
        })
        .count();
    eprintln!(
        "map: frames {m1} -> {m2}, {dots} pixels of people, screenshot {}",
        shot.display()
    );
    assert!(dots > 150, "no people on the map in {}", shot.display());
    drop(b);
    let (ok, log) = map.stop();
    assert!(ok, "{log}");
    std::fs::remove_dir_all(dir).unwrap();
}
