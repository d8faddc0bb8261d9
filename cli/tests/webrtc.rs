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

use common::browser::{
    Browser, HOST, Running, artifacts, in_network_namespace, rgb_at, screenshot_pixels,
};
use common::{gallery, pipeline, runner, tmp, wait_for};
use serde_json::{Value, json};
use sightline_core::events::read_jsonl;
use sightline_core::video::DecodedImage;
use sightline_testkit::{RtspServer, free_port, shared_data};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    // The live page sends a browser without a session to the login page.
    let tab = b.open(&format!("https://{HOST}:{web1}/live"));
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
        b.eval(&tab, "location.pathname") == json!("/live")
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
    let map = Running::spawn(
        runner(
            &pipeline("reid-map.pipeline"),
            &common::reid_map_vars(
                &dir,
                &[("BIND", HOST.into()), ("SIGNALLING_PORT", sig2.to_string())],
            ),
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
        "http://{HOST}:{web2}/live?signalling=ws://{HOST}:{sig2}"
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
