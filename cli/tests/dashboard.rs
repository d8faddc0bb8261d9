//! The operator's dashboard in a real browser: `sightline run --auth` on real photos and an
//! RTSP camera, headless Chromium (its own network namespace, see common::browser) logged in
//! as an operator, then as a viewer:
//!
//! - overview: the enrolled person's card turns present within 2 s of their first recognition
//!   and absent after the test's short absence time; the alert is acknowledged by a click and
//!   the API shows who acknowledged it; the RTSP camera's tile turns down when the camera is
//!   killed and up when it returns; the event → screen latency is measured;
//! - gallery: a photo uploaded through the page is recognised by the running camera within
//!   2 s; a photo with no face shows the refusal; a face chosen on a live snapshot is enrolled;
//! - roles: a viewer sees no acknowledge or enrol controls; a revoked session goes back to the
//!   login page;
//! - map: the reid-map pipeline's people are dots of their global id's colour on the canvas,
//!   and the page lists their ids.
//!
//! Screenshots of every page go to target/test-artifacts/dashboard-*.png.

mod common;

use common::browser::{Browser, HOST, Running, artifacts, in_network_namespace};
use common::{auth, gallery, pipeline, runner, tmp, wait_for};
use serde_json::{Value, json};
use sightline_core::events::read_jsonl;
use sightline_testkit::{RtspServer, free_port, shared_data};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// GET `path` of the runner with a bearer token: the JSON body.
fn api(port: u16, path: &str, token: &str) -> Value {
    let r = ureq::get(&format!("http://{HOST}:{port}{path}"))
        .header("Authorization", &format!("Bearer {token}"))
        .call();
    match r {
        Ok(mut r) => r
            .body_mut()
            .read_to_string()
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

fn unix_ms(utc: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(utc)
        .unwrap_or_else(|e| panic!("{utc}: {e}"))
        .timestamp_millis()
}

/// The page's value of `expr` (JSON.stringify'd there, parsed here); null while the page is
/// being replaced (a redirect to the login page, the way back).
fn page(b: &mut Browser, tab: &str, expr: &str) -> Value {
    let Some(v) = b.try_eval(tab, &format!("JSON.stringify({expr})")) else {
        return Value::Null;
    };
    serde_json::from_str(v.as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

fn wait_page(b: &mut Browser, tab: &str, what: &str, secs: u64, expr: &str) {
    let t0 = Instant::now();
    while page(b, tab, expr) != json!(true) {
        if t0.elapsed() > Duration::from_secs(secs) {
            let text = b.eval(tab, "document.body ? document.body.innerText : ''");
            panic!(
                "timed out: {what}\npage: {text}\nconsole:\n{}",
                b.console.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn login(b: &mut Browser, tab: &str, token: &str, back_to: &str) {
    wait_page(
        b,
        tab,
        "the login page",
        30,
        "location.pathname === '/login' && !!document.getElementById('token')",
    );
    b.eval(
        tab,
        &format!(
            "document.getElementById('token').value = '{token}'; \
             document.getElementById('login').requestSubmit(); true"
        ),
    );
    wait_page(
        b,
        tab,
        "back from the login",
        30,
        &format!("location.pathname === '{back_to}' && !!document.getElementById('who')"),
    );
}

fn person(b: &mut Browser, tab: &str, id: &str) -> Option<String> {
    page(
        b,
        tab,
        &format!(
            "(document.querySelector('.person[data-identity=\"{id}\"]') || {{dataset: {{}}}}).dataset.state || null"
        ),
    )
    .as_str()
    .map(str::to_string)
}

fn camera_state(b: &mut Browser, tab: &str, name: &str) -> Option<String> {
    page(
        b,
        tab,
        &format!(
            "(document.querySelector('.camera[data-camera=\"{name}\"]') || {{dataset: {{}}}}).dataset.state || null"
        ),
    )
    .as_str()
    .map(str::to_string)
}

fn wait_camera(b: &mut Browser, tab: &str, name: &str, state: &str, secs: u64) -> Duration {
    let t0 = Instant::now();
    while camera_state(b, tab, name).as_deref() != Some(state) {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{name} not {state} within {secs} s: {:?}",
            camera_state(b, tab, name)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    t0.elapsed()
}

fn shot(b: &mut Browser, tab: &str, name: &str) {
    let p = artifacts().join(format!("dashboard-{name}.png"));
    b.screenshot(tab, &p);
    eprintln!("screenshot {}", p.display());
}

/// When the overview drew `identity`'s change to `state` (the first since `after`, Unix ms):
/// (drawn at, the event's time). A change the page loaded with (it happened before) is not
/// one it was told of, so it does not count.
fn drawn(b: &mut Browser, tab: &str, identity: &str, state: &str, after: i64) -> (i64, i64) {
    let list = page(
        b,
        tab,
        &format!("window.sightlineDashboard.shown()['{identity}']"),
    );
    let changes = list.as_array().cloned().unwrap_or_default();
    let loaded = changes.first().map_or(0, |c| c["at"].as_i64().unwrap());
    changes
        .iter()
        .skip(1)
        .filter(|c| c["state"] == json!(state))
        .map(|c| {
            (
                c["at"].as_i64().unwrap(),
                unix_ms(c["since"].as_str().unwrap()),
            )
        })
        .find(|(at, since)| *since >= after && *at > loaded)
        .unwrap_or_else(|| panic!("{identity} never drawn {state} after {after}: {list}"))
}

/// The first `facematch` event of `camera` labelled `label` in the event log: its UTC in ms.
fn first_recognition(events: &Path, camera: &str, label: &str) -> Option<i64> {
    read_jsonl(events)
        .ok()?
        .iter()
        .find(|e| e.kind == "facematch" && e.camera == camera && e.data["label"] == json!(label))
        .map(|e| unix_ms(&e.utc))
}

#[test]
fn the_dashboard_follows_the_site_live() {
    if !in_network_namespace("the_dashboard_follows_the_site_live") {
        return;
    }
    let dir = tmp("dashboard");
    let g = gallery(&dir);
    let tokens = dir.join("tokens.json");
    let operator = auth(&tokens, "ops", "operator");
    let viewer = auth(&tokens, "wall", "viewer");
    let mut yard = RtspServer::start("yard", "h264");
    // door: 24 s of an empty scene (time for the browser to log in on a loaded machine),
    // Obama for 3 s, then empty (4 frames/s, real time);
    // till: Joe Biden, not enrolled, all the time; yard: an RTSP camera the test drops.
    let obama = shared_data("faces/face_recognition_examples/obama/obama2.jpg");
    let biden = shared_data("faces/face_recognition_examples/biden/biden2.jpg");
    let pf = dir.join("shop.pipeline");
    let caps = "video/x-raw,format=I420,width=314,height=600,framerate=4/1";
    std::fs::write(
        &pf,
        format!(
            "concat name=c ! videoconvert ! video/x-raw,format=BGRx ! facedetect camera=door ! \
             facematch camera=door gallery={g} ! presence group=shop camera=door grace-seconds=1 \
             absent-seconds=4 roster=\"Barack Obama\" ! fakesink sync=true\n\
             videotestsrc pattern=black num-buffers=96 ! {caps} ! c.\n\
             multifilesrc location={obama} loop=true caps=image/jpeg,framerate=4/1 ! jpegdec ! videoconvert ! \
             videoscale ! {caps} ! identity eos-after=12 ! c.\n\
             videotestsrc pattern=black num-buffers=2400 ! {caps} ! c.\n\
             multifilesrc location={biden} loop=true caps=image/jpeg,framerate=2/1 ! jpegdec ! videoconvert ! \
             videoscale ! video/x-raw,format=BGRx,width=400,height=400,framerate=2/1 ! \
             facedetect camera=till ! facematch camera=till gallery={g} ! fakesink sync=true\n\
             uridecodebin3 uri={yard} ! videoconvert ! video/x-raw,format=BGRx ! facedetect camera=yard ! fakesink\n",
            g = g.display(),
            obama = obama.display(),
            biden = biden.display(),
            yard = yard.url(),
        ),
    )
    .unwrap();
    let port = free_port();
    let events = dir.join("events.jsonl");
    let state = dir.join("state");
    let spawn_outlet = || {
        Running::spawn(
            runner(&pf, &[], &[])
                .args(["--http", &format!("{HOST}:{port}"), "--auth"])
                .arg(&tokens)
                .arg("--state-dir")
                .arg(&state)
                .arg("--spool-dir")
                .arg(dir.join("spool"))
                .arg("--events")
                .arg(&events)
                .args(["--max-backoff", "1"]),
            dir.join("outlet.log"),
        )
    };
    let outlet = spawn_outlet();
    let mut b = Browser::start(dir.join("profile"), &[]);
    let tab = b.open(&format!("http://{HOST}:{port}/"));
    // No session: the login page, then the overview.
    login(&mut b, &tab, &operator, "/");
    shot(&mut b, &tab, "login-done");
    wait_page(
        &mut b,
        &tab,
        "the roster on the board",
        30,
        "!!document.querySelector('.person[data-identity=\"barack-obama\"]')",
    );

    // --- presence: present within 2 s of the first recognition, then absent ---
    let t0 = Instant::now();
    while person(&mut b, &tab, "barack-obama").as_deref() != Some("present") {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "never present: {:?}",
            person(&mut b, &tab, "barack-obama")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (shown_at, since) = drawn(&mut b, &tab, "barack-obama", "present", 0);
    let first = first_recognition(&events, "door", "Barack Obama").expect("a recognition");
    let after_recognition = shown_at - first;
    let after_event = shown_at - since;
    eprintln!(
        "present on screen {after_recognition} ms after the first recognition, \
         {after_event} ms after the presence event's time"
    );
    assert!(after_recognition <= 2000, "{after_recognition} ms");
    assert!(after_event <= 1000, "{after_event} ms");
    shot(&mut b, &tab, "overview-present");
    let t0 = Instant::now();
    while person(&mut b, &tab, "barack-obama").as_deref() != Some("absent") {
        assert!(t0.elapsed() < Duration::from_secs(30), "never absent");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (absent_at, absent_since) = drawn(&mut b, &tab, "barack-obama", "absent", since);
    let absent_lag = absent_at - absent_since;
    eprintln!("absent on screen {absent_lag} ms after the presence event's time");
    assert!(absent_lag <= 1000, "{absent_lag} ms");

    // --- the alert of the absence, acknowledged by a click ---
    let newest = loop {
        let a = api(port, "/api/v1/alerts", &viewer)["alerts"][0].clone();
        if a["event"] == "absent"
            && a["identity"] == "barack-obama"
            && unix_ms(a["utc"].as_str().unwrap()) >= since
        {
            break a;
        }
        assert!(t0.elapsed() < Duration::from_secs(40), "no absence alert");
        std::thread::sleep(Duration::from_millis(100));
    };
    let id = newest["id"].as_str().unwrap().to_string();
    let button = format!("button[data-ack=\"{id}\"]");
    wait_page(
        &mut b,
        &tab,
        "the alert in the feed",
        5,
        &format!("!!document.querySelector('{button}')"),
    );
    let feed = page(&mut b, &tab, "document.getElementById('alerts').innerText");
    assert!(
        feed.as_str().unwrap().contains("Barack Obama absent"),
        "{feed}"
    );
    b.click(&tab, &button);
    wait_for("the ack in the API", 10, || {
        api(port, "/api/v1/alerts", &viewer)["alerts"]
            .as_array()
            .is_some_and(|l| {
                l.iter()
                    .any(|a| a["id"] == json!(id) && a["ack"]["by"] == "ops")
            })
    });
    wait_page(
        &mut b,
        &tab,
        "the ack on screen",
        5,
        &format!(
            "document.querySelector('li[data-alert=\"{id}\"]').innerText.includes('acknowledged by ops')"
        ),
    );
    shot(&mut b, &tab, "overview-acknowledged");

    // --- a camera that drops turns down at once, and up when it returns ---
    wait_camera(&mut b, &tab, "yard", "up", 60);
    yard.kill();
    let down = wait_camera(&mut b, &tab, "yard", "down", 30);
    shot(&mut b, &tab, "overview-camera-down");
    yard.restart();
    let up = wait_camera(&mut b, &tab, "yard", "up", 60);
    eprintln!(
        "yard down on screen {:.1} s after the camera was killed, up {:.1} s after it returned",
        down.as_secs_f64(),
        up.as_secs_f64()
    );
    // rtspsrc notices a silent camera after its 5 s UDP timeout.
    assert!(down <= Duration::from_secs(12), "{down:?}");
    let tiles = page(
        &mut b,
        &tab,
        "Array.from(document.querySelectorAll('.camera')).map(e => e.dataset.camera)",
    );
    assert_eq!(tiles, json!(["door", "till", "yard"]));

    // --- the gallery: upload, refusal, snapshot ---
    b.navigate(&tab, &format!("http://{HOST}:{port}/gallery"));
    wait_page(
        &mut b,
        &tab,
        "the gallery list",
        20,
        "!!document.querySelector('tr[data-label=\"Barack Obama\"]') && !!document.getElementById('enrol')",
    );
    let photo = shared_data("faces/face_recognition_examples/biden/biden.jpg");
    b.eval(
        &tab,
        "document.getElementById('name').value = 'Joe Biden'; true",
    );
    b.set_files(&tab, "#photos", &[&photo]);
    b.click(&tab, "#enrol-button");
    wait_page(
        &mut b,
        &tab,
        "the enrolment answer",
        30,
        "!!document.querySelector('#results li[data-status]')",
    );
    let answered = page(
        &mut b,
        &tab,
        "[document.querySelector('#results li').dataset.status, Date.now(), document.querySelector('#results li').textContent]",
    );
    assert_eq!(answered[0], json!("201"), "{answered}");
    let enrolled_at = answered[1].as_i64().unwrap();
    let t0 = Instant::now();
    let known = loop {
        if let Some(t) = first_recognition(&events, "till", "Joe Biden") {
            break t;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "Joe Biden never recognised"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = known - enrolled_at;
    eprintln!("uploaded through the page: recognised {took} ms after the answer");
    // The camera analyses 2 frames/s: 2 s plus one frame.
    assert!(took <= 2500, "{took} ms");
    wait_page(
        &mut b,
        &tab,
        "Joe Biden listed",
        10,
        "!!document.querySelector('tr[data-label=\"Joe Biden\"]')",
    );
    // A photo without a face: the refusal, and nothing added.
    let empty = shared_data("multicam/meva/frames/G328.png");
    b.eval(
        &tab,
        "document.getElementById('name').value = 'Nobody'; true",
    );
    b.set_files(&tab, "#photos", &[&empty]);
    b.click(&tab, "#enrol-button");
    wait_page(
        &mut b,
        &tab,
        "the refusal",
        30,
        "!!document.querySelector('#results li[data-status=\"422\"]')",
    );
    let refusal = page(
        &mut b,
        &tab,
        "document.querySelector('#results li').textContent",
    );
    assert!(
        refusal.as_str().unwrap().contains("refused — no face"),
        "{refusal}"
    );
    // A snapshot of the live camera: its one face, chosen, enrolled as a second photo.
    b.eval(
        &tab,
        "document.getElementById('camera').value = 'till'; true",
    );
    b.click(&tab, "#take");
    wait_page(
        &mut b,
        &tab,
        "the snapshot with its face",
        20,
        "document.querySelectorAll('#faces button').length === 1",
    );
    b.eval(
        &tab,
        "document.getElementById('snap-name').value = 'Joe Biden'; true",
    );
    b.click(&tab, "#snap-button");
    wait_page(
        &mut b,
        &tab,
        "the snapshot enrolled",
        30,
        "document.getElementById('snap-message').textContent.includes('enrolled from till (2 photos)')",
    );
    wait_page(
        &mut b,
        &tab,
        "two photos listed",
        10,
        "document.querySelector('tr[data-label=\"Joe Biden\"] .count').textContent === '2'",
    );
    assert!(
        !page(&mut b, &tab, "document.body.innerText")
            .as_str()
            .unwrap()
            .contains("Nobody"),
        "nothing enrolled for the refused photo"
    );
    shot(&mut b, &tab, "gallery");
    // The phone-sized overview.
    b.call(
        Some(&tab),
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    );
    b.navigate(&tab, &format!("http://{HOST}:{port}/"));
    wait_page(
        &mut b,
        &tab,
        "the overview on a phone",
        20,
        "!!document.querySelector('.camera[data-camera=\"yard\"]')",
    );
    let overflow = page(
        &mut b,
        &tab,
        "document.documentElement.scrollWidth <= window.innerWidth",
    );
    assert_eq!(overflow, json!(true), "the overview is wider than a phone");
    shot(&mut b, &tab, "overview-phone");
    b.call(
        Some(&tab),
        "Emulation.clearDeviceMetricsOverride",
        json!({}),
    );

    // --- a viewer: no controls; a revoked token ends the session ---
    b.click(&tab, "#logout");
    login(&mut b, &tab, &viewer, "/");
    wait_page(
        &mut b,
        &tab,
        "the alerts as a viewer",
        20,
        "document.querySelectorAll('li[data-alert]').length > 0",
    );
    let controls = page(
        &mut b,
        &tab,
        "[document.querySelectorAll('button[data-ack]').length, \
          Array.from(document.querySelectorAll('nav a')).map(a => a.textContent)]",
    );
    assert_eq!(
        controls,
        json!([0, ["Overview", "Live", "Map"]]),
        "a viewer's page"
    );
    shot(&mut b, &tab, "overview-viewer");
    b.navigate(&tab, &format!("http://{HOST}:{port}/gallery"));
    wait_page(
        &mut b,
        &tab,
        "the gallery as a viewer",
        20,
        "!!document.querySelector('tr[data-label=\"Joe Biden\"]')",
    );
    let controls = page(
        &mut b,
        &tab,
        "[!!document.getElementById('enrol'), !!document.getElementById('take'), \
          document.querySelectorAll('button.danger').length]",
    );
    assert_eq!(controls, json!([false, false, 0]), "a viewer's gallery");
    b.navigate(&tab, &format!("http://{HOST}:{port}/"));
    wait_camera(&mut b, &tab, "yard", "up", 30);
    let o = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["auth", "--file"])
        .arg(&tokens)
        .args(["revoke", "wall"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The next change the page fetches meets the revoked session: to the login page.
    yard.kill();
    wait_page(
        &mut b,
        &tab,
        "the login page after the revocation",
        30,
        "location.pathname === '/login'",
    );
    let (ok, log) = outlet.stop();
    assert!(ok, "{log}");
    assert!(
        !log.contains(&operator) && !log.contains(&viewer),
        "a token in the log"
    );
    drop(yard);

    // --- the map: the reid-map pipeline on the same address and state (the session goes
    // on) ---
    // A floor plan: pale sand (the colour the test looks for on the canvas), a dark wall.
    let plan = dir.join("plan.png");
    let (pw, ph) = (300usize, 370usize);
    let mut rgb = vec![0u8; pw * ph * 3];
    for (k, p) in rgb.chunks_exact_mut(3).enumerate() {
        let (x, y) = (k % pw, k / pw);
        let wall = x < 6 || y < 6 || x >= pw - 6 || y >= ph - 6;
        p.copy_from_slice(if wall {
            &[60, 60, 60]
        } else {
            &[236, 222, 190]
        });
    }
    gst::init().unwrap();
    sightline_core::video::save_png(&plan, &rgb, pw, ph).unwrap();
    let map = Running::spawn(
        runner(
            &pipeline("reid-map.pipeline"),
            &common::reid_map_vars(
                &dir,
                &[
                    ("FLOOR_PLAN", plan.display().to_string()),
                    ("SIGNALLING_PORT", free_port().to_string()),
                ],
            ),
            &[],
        )
        .args(["--http", &format!("{HOST}:{port}"), "--auth"])
        .arg(&tokens)
        .arg("--state-dir")
        .arg(&state),
        dir.join("map.log"),
    );
    let ops_tab = b.open(&format!("http://{HOST}:{port}/map"));
    // The operator's session of before: kept in the state directory.
    let t0 = Instant::now();
    loop {
        let path = page(&mut b, &ops_tab, "location.pathname");
        if path == json!("/login") {
            login(&mut b, &ops_tab, &operator, "/map");
            break;
        }
        if path == json!("/map") && page(&mut b, &ops_tab, "!!window.sightlineMap") == json!(true) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no map page");
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_page(
        &mut b,
        &ops_tab,
        "people on the map",
        60,
        "window.sightlineMap.people().length >= 2 && document.querySelectorAll('#ids li').length >= 2",
    );
    // Both cameras' footprints (the page asks for the layout again, at most every 5 s, when
    // a camera without one reports), drawn with the people.
    wait_page(
        &mut b,
        &ops_tab,
        "both cameras' footprints",
        30,
        "(window.sightlineMap.footprints || []).length === 2",
    );
    // Pixels of the palette's colours on the canvas (mapview's colours, the grid is grey).
    let counted = page(
        &mut b,
        &ops_tab,
        "(() => { const c = document.getElementById('plan'); \
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
          const pal = [[230,25,75],[60,180,75],[0,130,200],[245,130,48],[145,30,180],[70,240,240],[240,50,230],[128,128,0]]; \
          let n = 0; for (let i = 0; i < d.length; i += 4) { \
            if (pal.some(p => Math.abs(d[i]-p[0]) < 30 && Math.abs(d[i+1]-p[1]) < 30 && Math.abs(d[i+2]-p[2]) < 30)) n++; } \
          return { pixels: n, drawn: window.sightlineMap.people().map(p => p.global_id), \
                   listed: Array.from(document.querySelectorAll('#ids li')).map(l => Number(l.dataset.globalId)) }; })()",
    );
    eprintln!("map: {counted}");
    let drawn = counted["drawn"].as_array().unwrap();
    let mut listed: Vec<i64> = counted["listed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let mut ids: Vec<i64> = drawn.iter().map(|v| v.as_i64().unwrap()).collect();
    ids.sort();
    listed.sort();
    assert!(!ids.is_empty(), "nobody on the map: {counted}");
    assert_eq!(ids, listed, "the list names the dots drawn");
    // A dot is a disc of radius 11 (~380 pixels): at least one per person drawn.
    // A dot is a disc of radius 11 (~380 pixels); people close together overlap and their
    // labels cover part of a neighbour: at least 40 % of a disc each.
    let pixels = counted["pixels"].as_u64().unwrap();
    assert!(pixels as usize >= 150 * ids.len(), "{counted}");
    // The floor plan under them (its sand at the centre of the area), and both cameras'
    // footprints.
    let layout = page(
        &mut b,
        &ops_tab,
        "(() => { const c = document.getElementById('plan'); \
          const p = c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data; \
          return { centre: [p[0], p[1], p[2]], footprints: window.sightlineMap.footprints }; })()",
    );
    eprintln!("map layout: {layout}");
    assert_eq!(layout["footprints"], json!(["cam1", "cam2"]), "{layout}");
    let centre: Vec<i64> = layout["centre"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert!(
        centre
            .iter()
            .zip([236, 222, 190])
            .all(|(a, b)| (a - b).abs() <= 40),
        "the floor plan at the centre: {centre:?}"
    );
    // The mapview video beside it, through the signalling proxy.
    wait_page(
        &mut b,
        &ops_tab,
        "the mapview stream playing beside the map",
        90,
        "(() => { const f = document.getElementById('video'); \
          const v = f && f.contentWindow && f.contentWindow.sightlineViewer; \
          const s = v && v.streams().find(s => s.name === 'map'); \
          return !!s && s.state === 'streaming' && s.frames > 10; })()",
    );
    shot(&mut b, &ops_tab, "map");
    drop(b);
    let (ok, log) = map.stop();
    assert!(ok, "{log}");
    std::fs::remove_dir_all(dir).unwrap();
}
