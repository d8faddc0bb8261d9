//! presence with a test clock: a scripted two-camera outlet on real photos
//! (appsrc ! facedetect ! facematch ! presence per camera), 300-second timeouts in seconds of
//! test time, driven by buffer timestamps and the pipeline's test clock. The photos of two
//! people appear at the same place from one frame to the next, which real video never does,
//! so facematch embeds every frame (reembed-interval=1) to notice the change at once.

use gst::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

const S: u64 = 1_000_000_000;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacedetect::plugin_register_static().unwrap();
        gstfacematch::plugin_register_static().unwrap();
        gstpresence::plugin_register_static().unwrap();
    });
}

fn data(rel: &str) -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("data")
        .join(rel)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sl-presence-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn enrol(path: &Path) {
    let m = sightline_core::models::resolve("mobilefacenet", "mobilefacenet").unwrap();
    let d = sightline_core::models::resolve("yunet-n", "yunet-n").unwrap();
    let opts = sightline_core::inference::EngineOptions::default();
    let emb = sightline_core::embed::FaceEmbedder::new(
        sightline_core::inference::Engine::shared(&m, &opts).unwrap(),
    )
    .unwrap();
    let mut det = sightline_core::detect::FaceDetector::new(
        sightline_core::inference::Engine::shared(&d, &opts).unwrap(),
    )
    .unwrap();
    let mut g = sightline_core::gallery::Gallery::new("mobilefacenet", 192);
    for (name, photo) in [
        (
            "Barack Obama",
            "faces/face_recognition_examples/obama/obama.jpg",
        ),
        (
            "Joe Biden",
            "faces/face_recognition_examples/biden/biden.jpg",
        ),
    ] {
        let v = sightline_core::enroll::embed_file(
            &mut det,
            &emb,
            &data(photo),
            sightline_core::enroll::FacePolicy::Single,
        )
        .unwrap()
        .embedding;
        g.add(name, &v).unwrap();
    }
    g.save(path).unwrap();
}

fn frame(rel: &str) -> (gst::Buffer, gst::Caps) {
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! video/x-raw,format=BGRx,width=480,height=480,pixel-aspect-ratio=1/1 ! appsink name=sink",
        data(rel).display()
    ))
    .unwrap();
    let sink = p
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let s = sink.pull_sample().unwrap();
    p.set_state(gst::State::Null).unwrap();
    (s.buffer_owned().unwrap(), s.caps_owned().unwrap())
}

struct Outlet {
    pipeline: gst::Pipeline,
    clock: gst_check::TestClock,
    cams: Vec<(gst_app::AppSrc, gst_app::AppSink)>,
    log: Vec<(u64, String, String, String)>,
}

impl Outlet {
    fn new(cameras: &[&str], gallery: &Path, event_log: &Path, group: &str) -> Outlet {
        Outlet::with(cameras, gallery, event_log, group, "")
    }

    fn with(
        cameras: &[&str],
        gallery: &Path,
        event_log: &Path,
        group: &str,
        extra: &str,
    ) -> Outlet {
        let mut desc = String::new();
        for c in cameras {
            desc.push_str(&format!(
                "appsrc name=src-{c} format=time ! facedetect ! facematch gallery={} camera={c} reembed-interval=1 ! presence group={group} camera={c} grace-seconds=10 absent-seconds=300 camera-timeout-seconds=30 event-log={} {extra} ! appsink name=sink-{c} sync=false async=false  ",
                gallery.display(),
                event_log.display()
            ));
        }
        let pipeline = gst::parse::launch(&desc)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let clock = gst_check::TestClock::new();
        pipeline.use_clock(Some(&clock));
        let (_, caps) = frame("faces/misc/astronaut.png");
        let cams = cameras
            .iter()
            .map(|c| {
                let src = pipeline
                    .by_name(&format!("src-{c}"))
                    .unwrap()
                    .downcast::<gst_app::AppSrc>()
                    .unwrap();
                src.set_caps(Some(&caps));
                let sink = pipeline
                    .by_name(&format!("sink-{c}"))
                    .unwrap()
                    .downcast::<gst_app::AppSink>()
                    .unwrap();
                (src, sink)
            })
            .collect();
        pipeline.set_state(gst::State::Playing).unwrap();
        pipeline.state(gst::ClockTime::from_seconds(10)).0.unwrap();
        Outlet {
            pipeline,
            clock,
            cams,
            log: Vec::new(),
        }
    }

    /// Runs the group's timeouts up to clock time `t` (each at its own deadline).
    fn advance_to(&mut self, t: u64) {
        // The timer (re-)arms asynchronously: wait until it waits.
        let end = std::time::Instant::now() + std::time::Duration::from_millis(500);
        while self.clock.peek_next_pending_id().is_none() && std::time::Instant::now() < end {
            std::thread::yield_now();
        }
        loop {
            match self.clock.peek_next_pending_id() {
                Some(id) if id.time().nseconds() <= t => {
                    self.clock.crank();
                    self.drain();
                }
                _ => break,
            }
        }
        if self.clock.time().nseconds() < t {
            self.clock.set_time(gst::ClockTime::from_nseconds(t));
        }
    }

    /// Pushes `buf` on camera `k` at time `t` and waits for it to come out.
    fn show(&mut self, k: usize, buf: &gst::Buffer, t: u64) {
        self.advance_to(t);
        let mut b = buf.copy();
        b.make_mut().set_pts(gst::ClockTime::from_nseconds(t));
        self.cams[k].0.push_buffer(b).unwrap();
        self.cams[k].1.pull_sample().unwrap();
        self.drain();
    }

    /// Collects presence messages: (clock time, structure name, event, identity or camera).
    fn drain(&mut self) {
        // After a crank the timer thread ticks and posts on its own: it is done when it waits on
        // the clock again (or has no deadline left).
        let bus = self.pipeline.bus().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
        loop {
            let m = bus.timed_pop(gst::ClockTime::from_mseconds(5));
            match m {
                Some(m) => {
                    if let Some(s) = m.structure()
                        && s.name().starts_with("presence")
                    {
                        let who = s
                            .get::<String>("identity")
                            .unwrap_or_else(|_| s.get::<String>("camera").unwrap_or_default());
                        self.log.push((
                            s.get::<u64>("clock-time").unwrap() / S,
                            s.name().to_string(),
                            s.get::<String>("event").unwrap(),
                            who,
                        ));
                    }
                }
                None if self.clock.peek_next_pending_id().is_some()
                    || std::time::Instant::now() > deadline =>
                {
                    break;
                }
                None => {}
            }
        }
    }
}

impl Drop for Outlet {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The event log once it holds the `n` presence messages the bus had: it is written by the
/// group's delivery thread, right after the bus message.
fn logged(path: &Path, n: usize) -> Vec<sightline_core::events::Event> {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = sightline_core::events::read_jsonl(path).unwrap_or_default();
        let have = events
            .iter()
            .filter(|e| e.kind.starts_with("presence"))
            .count();
        if have >= n || std::time::Instant::now() > end {
            return events;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn ev(t: u64, name: &str, event: &str, who: &str) -> (u64, String, String, String) {
    (t, name.to_string(), event.to_string(), who.to_string())
}

#[test]
fn outlet_timeline_any_of_n_one_alert_per_absence_and_reentry() {
    init();
    let dir = tmp("timeline");
    let gallery = dir.join("g.slg");
    enrol(&gallery);
    let log_path = dir.join("events.jsonl");
    let (obama, _) = frame("faces/face_recognition_examples/obama/obama2.jpg");
    let (biden, _) = frame("faces/face_recognition_examples/biden/biden2.jpg");
    let (empty, _) = frame("multicam/meva/frames/G328.png");
    let mut o = Outlet::new(&["door", "till"], &gallery, &log_path, "outlet-a");
    let wall = std::time::Instant::now();
    o.show(0, &obama, 0);
    o.show(1, &biden, 0);
    // Obama leaves the door but is at the till until 100 s; Biden is gone after 0 s.
    for t in (5..=455).step_by(5) {
        let at_door = if t == 450 { &obama } else { &empty };
        let at_till = if t <= 100 { &obama } else { &empty };
        o.show(0, at_door, t * S);
        o.show(1, at_till, t * S);
    }
    o.advance_to(455 * S);
    let people: Vec<_> = o
        .log
        .iter()
        .filter(|e| e.3 == "barack-obama" || e.3 == "joe-biden")
        .cloned()
        .collect();
    assert_eq!(
        people,
        vec![
            ev(0, "presence", "arrived", "barack-obama"),
            ev(0, "presence", "arrived", "joe-biden"),
            ev(10, "presence", "out-of-view", "joe-biden"),
            ev(110, "presence", "out-of-view", "barack-obama"),
            ev(300, "presence", "absent", "joe-biden"),
            ev(300, "presence-alert", "absent", "joe-biden"),
            ev(400, "presence", "absent", "barack-obama"),
            ev(400, "presence-alert", "absent", "barack-obama"),
            ev(450, "presence", "re-entered", "barack-obama"),
        ]
    );
    assert!(
        !o.log.iter().any(|e| e.2 == "camera-offline"),
        "both cameras kept delivering: {:?}",
        o.log
    );
    // The JSONL log holds the same events, in order.
    let events = logged(&log_path, o.log.len());
    let kinds: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.data["identity"].as_str().is_some())
        .map(|e| {
            (
                e.kind.clone(),
                e.data["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(kinds.len(), 9);
    assert_eq!(kinds[5], ("presence-alert".into(), "absent".into()));
    eprintln!("460 s of outlet time in {:?}", wall.elapsed());
    drop(o);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn all_cameras_stopping_reports_the_group_offline_and_alerts_nobody() {
    init();
    let dir = tmp("offline");
    let gallery = dir.join("g.slg");
    enrol(&gallery);
    let (obama, _) = frame("faces/face_recognition_examples/obama/obama2.jpg");
    let (biden, _) = frame("faces/face_recognition_examples/biden/biden2.jpg");
    let mut o = Outlet::new(
        &["door", "till"],
        &gallery,
        &dir.join("events.jsonl"),
        "outlet-b",
    );
    o.show(0, &obama, 0);
    o.show(1, &biden, 0);
    // No frame ever again: an hour passes on the clock alone.
    o.advance_to(3600 * S);
    let events: Vec<&str> = o.log.iter().map(|e| e.2.as_str()).collect();
    assert!(
        events.contains(&"camera-offline") && events.contains(&"group-offline"),
        "{events:?}"
    );
    assert_eq!(o.log.iter().filter(|e| e.2 == "camera-offline").count(), 2);
    assert!(
        !o.log.iter().any(|e| e.1 == "presence-alert"),
        "{:?}",
        o.log
    );
    assert!(!o.log.iter().any(|e| e.2 == "absent"), "{:?}", o.log);
    drop(o);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn redis_stream_gets_every_event_in_order_through_an_outage_and_the_webhook_gets_the_alerts() {
    init();
    let dir = tmp("delivery");
    let gallery = dir.join("g.slg");
    enrol(&gallery);
    let mut redis = sightline_testkit::RedisServer::start(&["--appendonly", "yes"]);
    let url = redis.url(None);
    let port = sightline_testkit::free_port();
    let (hooks, _server) = sightline_testkit::http_recorder(port, 10);
    let extra = format!(
        "node-id=n1 redis-url={url} stream=outlet:events webhook-url=http://127.0.0.1:{port}/alert spool-dir={}",
        dir.join("spool").display()
    );
    let log_path = dir.join("events.jsonl");
    let (obama, _) = frame("faces/face_recognition_examples/obama/obama2.jpg");
    let (biden, _) = frame("faces/face_recognition_examples/biden/biden2.jpg");
    let (empty, _) = frame("multicam/meva/frames/G328.png");
    let mut o = Outlet::with(&["door", "till"], &gallery, &log_path, "outlet-c", &extra);
    o.show(0, &obama, 0);
    o.show(1, &biden, 0);
    for t in (5..=455).step_by(5) {
        if t == 150 {
            redis.kill();
        }
        if t == 350 {
            redis.restart();
        }
        o.show(0, if t == 450 { &obama } else { &empty }, t * S);
        o.show(1, if t <= 100 { &obama } else { &empty }, t * S);
    }
    o.advance_to(455 * S);
    let logged = logged(&log_path, o.log.len());
    let key = |e: &sightline_core::events::Event| {
        (
            e.kind.clone(),
            e.data["event"].as_str().unwrap_or("").to_string(),
            e.data["clock-time"].as_u64().unwrap_or(0),
        )
    };
    let want: Vec<_> = logged.iter().map(key).collect();
    assert!(want.len() >= 9, "{want:?}");
    // Every event reaches the stream, in order, once.
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut got = Vec::new();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < end {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg("outlet:events")
            .arg("-")
            .arg("+")
            .query(&mut con)
            .unwrap();
        got = entries
            .iter()
            .map(|(_, f)| {
                let e: sightline_core::events::Event =
                    serde_json::from_str(&f.iter().find(|(k, _)| k == "event").unwrap().1).unwrap();
                key(&e)
            })
            .collect();
        if got.len() >= want.len() {
            break;
        }
        std::thread::yield_now();
    }
    assert_eq!(got, want);
    // The webhook received the two alerts.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while hooks.lock().unwrap().len() < 2 && std::time::Instant::now() < end {
        std::thread::yield_now();
    }
    let alerts: Vec<String> = hooks
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["data"]["identity"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(alerts, vec!["joe-biden", "barack-obama"]);
    drop(o);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_stranger_on_k_cameras_raises_one_alert_and_on_k_minus_one_none() {
    init();
    let dir = tmp("consensus");
    let gallery = dir.join("g.slg");
    enrol(&gallery);
    let (stranger, _) = frame("faces/misc/astronaut.png");
    let (empty, _) = frame("multicam/meva/frames/G328.png");
    let extra = "unknown-alert-cameras=3 unknown-alert-window-seconds=60";
    let mut o = Outlet::with(
        &["a", "b", "c"],
        &gallery,
        &dir.join("events.jsonl"),
        "outlet-k",
        extra,
    );
    // Two cameras see the stranger: no alert (k - 1).
    o.show(0, &stranger, 0);
    o.show(1, &stranger, 5 * S);
    o.show(2, &empty, 5 * S);
    let unknown_alerts = |o: &Outlet| {
        o.log
            .iter()
            .filter(|e| e.1 == "presence-alert" && e.2 == "unknown")
            .count()
    };
    assert_eq!(unknown_alerts(&o), 0, "{:?}", o.log);
    // The third camera within the window: one alert.
    o.show(2, &stranger, 10 * S);
    assert_eq!(unknown_alerts(&o), 1, "{:?}", o.log);
    // More sightings of the same stranger: still one.
    for t in [15, 20] {
        for k in 0..3 {
            o.show(k, &stranger, t * S);
        }
    }
    assert_eq!(unknown_alerts(&o), 1);
    drop(o);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn two_processes_share_the_unknown_consensus_through_redis() {
    let redis = sightline_testkit::RedisServer::start(&[]);
    let url = redis.url(None);
    let plugins = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .to_path_buf();
    assert!(
        plugins.join("libgstpresence.so").is_file(),
        "build the plugins first (cargo build)"
    );
    let dir = tmp("consensus-redis");
    // Each "node" is its own gst-launch process with its own camera; both follow Redis.
    let node = |name: &str, photo: &str| -> String {
        let out = std::process::Command::new("gst-launch-1.0")
            .args([
                "-m",
                "filesrc",
                &format!("location={}", data(photo).display()),
                "!",
                "decodebin",
                "!",
                "videoconvert",
                "!",
                "video/x-raw,format=BGRx",
                "!",
                "sightlinefacedetect",
                "!",
            ])
            .args(["facematch", &format!("redis-url={url}"), "!"])
            .args([
                "presence",
                "group=outlet-r",
                &format!("camera={name}"),
                &format!("node-id={name}"),
                &format!("redis-url={url}"),
                "unknown-alert-cameras=2",
            ])
            .arg(format!("spool-dir={}", dir.join(name).display()))
            .args(["!", "fakesink"])
            .env("GST_PLUGIN_PATH", &plugins)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    // The same stranger (two photos of one person) on node A, then node B.
    let a = node("node-a", "faces/face_recognition_examples/obama/obama.jpg");
    let b = node("node-b", "faces/face_recognition_examples/obama/obama2.jpg");
    let alerts = |t: &str| {
        t.lines()
            .filter(|l| l.contains("presence-alert") && l.contains("event=(string)unknown"))
            .count()
    };
    assert_eq!(alerts(&a), 0, "one camera is not enough: {a}");
    assert_eq!(
        alerts(&b),
        1,
        "the second node completes the consensus: {b}"
    );
    // A third node seeing the same stranger does not alert again.
    let c = node("node-c", "faces/face_recognition_examples/obama/obama3.jpg");
    assert_eq!(alerts(&c), 0, "{c}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `mosquitto_sub` once: messages on `topic` (`-v`: `topic payload` lines). With a fixed id
/// and `-c` its session (and what the broker queues for it while it is away) persists.
fn mqtt_sub(port: u16, id: Option<&str>, topic: &str, extra: &[&str]) -> Vec<String> {
    let mut c = std::process::Command::new("mosquitto_sub");
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-u",
        "ha",
        "-P",
        "pw",
    ])
    .args(["-q", "1", "-v", "-t", topic])
    .args(extra);
    if let Some(id) = id {
        c.args(["-i", id, "-c"]);
    }
    let out = c
        .output()
        .expect("mosquitto_sub (mosquitto-clients): run scripts/setup");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The retained payload of `topic`, once it is `want` (polled: delivery is asynchronous and
/// backs off up to 5 s after an outage).
fn retained_becomes(port: u16, topic: &str, want: &str, secs: u64) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut last = Vec::new();
    while std::time::Instant::now() < end {
        last = mqtt_sub(
            port,
            None,
            topic,
            &["-C", "1", "-W", "1", "--retained-only"],
        );
        if last
            .first()
            .is_some_and(|l| l.split_once(' ').map(|x| x.1) == Some(want))
        {
            return;
        }
    }
    panic!("{topic}: {last:?}, not {want:?}, within {secs} s");
}

#[test]
fn home_assistant_sees_the_roster_presence_states_and_one_alert_per_absence_through_a_broker_restart()
 {
    init();
    let dir = tmp("mqtt");
    let gallery = dir.join("g.slg");
    enrol(&gallery);
    let mut broker = sightline_testkit::MosquittoServer::start(Some(("ha", "pw")));
    let port = broker.port;
    // Home Assistant's side: a session that gets every alert, also those sent while it is
    // away (-E: subscribe, then leave).
    mqtt_sub(port, Some("ha-alerts"), "sightline/n1/alerts", &["-E"]);
    let extra = format!(
        "node-id=n1 roster=\"Barack Obama,Joe Biden\" publish=mqtt://ha:pw@127.0.0.1:{port} spool-dir={}",
        dir.join("spool").display()
    );
    let (obama, _) = frame("faces/face_recognition_examples/obama/obama2.jpg");
    let (biden, _) = frame("faces/face_recognition_examples/biden/biden2.jpg");
    let (empty, _) = frame("multicam/meva/frames/G328.png");
    let mut o = Outlet::with(
        &["door", "till"],
        &gallery,
        &dir.join("events.jsonl"),
        "outlet-m",
        &extra,
    );
    let state = |who: &str| format!("sightline/n1/presence/outlet-m/{who}");
    // The roster is announced before anyone is seen: both entities exist, OFF.
    for who in ["barack-obama", "joe-biden"] {
        let cfg = mqtt_sub(
            port,
            None,
            &format!("homeassistant/binary_sensor/sightline_n1/presence_outlet-m_{who}/config"),
            &["-C", "1", "-W", "10"],
        );
        let c: serde_json::Value = serde_json::from_str(cfg[0].split_once(' ').unwrap().1).unwrap();
        assert_eq!(c["device_class"], "presence");
        assert_eq!(c["state_topic"], state(who));
        assert_eq!(c["availability_topic"], "sightline/n1/availability");
        retained_becomes(port, &state(who), "OFF", 10);
    }
    retained_becomes(port, "sightline/n1/availability", "online", 10);
    o.show(0, &obama, 0);
    o.show(1, &biden, 0);
    retained_becomes(port, &state("joe-biden"), "ON", 10);
    retained_becomes(port, &state("barack-obama"), "ON", 10);
    for t in (5..=455).step_by(5) {
        if t == 150 {
            broker.stop();
        }
        if t == 350 {
            broker.restart();
        }
        o.show(0, if t == 450 { &obama } else { &empty }, t * S);
        o.show(1, if t <= 100 { &obama } else { &empty }, t * S);
        if t == 15 {
            // Biden is out of view since 10 s: grace counts as present.
            retained_becomes(port, &state("joe-biden"), "ON", 10);
        }
    }
    o.advance_to(455 * S);
    // Biden's absence (300 s) and Obama's (400 s) happened while or after the broker was
    // away; Obama re-entered at 450 s.
    retained_becomes(port, &state("joe-biden"), "OFF", 30);
    retained_becomes(port, &state("barack-obama"), "ON", 30);
    // Everything the session got: after the catch-up (the states above), within 3 s. (Not
    // -C 2: a subscriber that leaves right after its 2nd message may leave it unacknowledged,
    // and QoS 1 sends it again.)
    let alerts = mqtt_sub(port, Some("ha-alerts"), "sightline/n1/alerts", &["-W", "3"]);
    let who: Vec<String> = alerts
        .iter()
        .map(|l| {
            let a: serde_json::Value = serde_json::from_str(l.split_once(' ').unwrap().1).unwrap();
            assert_eq!(a["event_type"], "absent");
            a["identity"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(who, ["joe-biden", "barack-obama"], "one alert per absence");
    drop(o);
    // A clean stop says offline.
    retained_becomes(port, "sightline/n1/availability", "offline", 10);
    std::fs::remove_dir_all(dir).unwrap();
}
