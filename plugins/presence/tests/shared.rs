//! Two nodes watching one outlet share the group through a real Redis: one absence alert
//! between them, and a restarted node picks the state up. Each node is a presence element
//! with its own node-id and its own test clock (advanced in step); frames carry the ROIs
//! facematch would have written.

use gst::prelude::*;
use std::sync::Once;

const S: u64 = 1_000_000_000;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstpresence::plugin_register_static().unwrap();
    });
}

fn frame(person: Option<&str>, t: u64) -> gst::Buffer {
    let mut b = gst::Buffer::with_size(64 * 48 * 4).unwrap();
    {
        let b = b.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(t));
        if let Some(name) = person {
            let d = sightline_core::postprocess::Detection {
                x1: 10.0,
                y1: 10.0,
                x2: 30.0,
                y2: 35.0,
                score: 0.9,
                landmarks: None,
                class_id: 0,
            };
            let id =
                sightline_core::meta::add_detection(b, "face", &d, 64, 48, "face", 0, "yunet-n");
            let rec = sightline_core::meta::Recognition {
                label: name.into(),
                identity: sightline_core::gallery::slug(name),
                similarity: 0.8,
                unknown_id: String::new(),
                label_id: 0,
            };
            sightline_core::meta::add_params(
                b,
                id,
                vec![sightline_core::meta::recognition_param(&rec)],
            );
        }
    }
    b
}

struct Node {
    h: gst_check::Harness,
    bus: gst::Bus,
}

impl Node {
    fn start(id: &str, url: &str, spool: &std::path::Path, at: u64) -> Node {
        let el = gst::ElementFactory::make("presence")
            .property("group", "outlet-shared")
            .property("camera", format!("cam-{id}"))
            .property("node-id", id)
            .property("redis-url", url)
            .property("spool-dir", spool.join(id).to_str().unwrap())
            .property("camera-timeout-seconds", 86_400.0f64)
            .build()
            .unwrap();
        let bus = gst::Bus::new();
        el.set_bus(Some(&bus));
        let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
        h.set_time(gst::ClockTime::from_nseconds(at)).unwrap();
        h.play();
        h.set_src_caps_str("video/x-raw,format=BGRx,width=64,height=48,framerate=1/1");
        Node { h, bus }
    }

    fn push(&mut self, person: Option<&str>, t: u64) {
        self.h.push(frame(person, t)).unwrap();
        let _ = self.h.pull();
    }

    /// Runs this node's timeouts up to `t`.
    fn advance(&mut self, t: u64) {
        let clock = self.h.testclock().unwrap();
        // The timer (re-)arms asynchronously: wait until it waits.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while clock.peek_next_pending_id().is_none() && std::time::Instant::now() < end {
            std::thread::yield_now();
        }

        loop {
            match clock.peek_next_pending_id() {
                Some(id) if id.time().nseconds() <= t => {
                    clock.crank();
                    // Let the timer finish: it re-arms (or has nothing left to wait for).
                    let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
                    while clock.peek_next_pending_id().is_none() && std::time::Instant::now() < end
                    {
                        std::thread::yield_now();
                    }
                }
                _ => break,
            }
        }
        if clock.time().nseconds() < t {
            clock.set_time(gst::ClockTime::from_nseconds(t));
        }
    }

    /// Ends the stream: the element waits (bounded) for what the Redis link still has on its
    /// way, e.g. the answer to an absence alert's claim, and posts it.
    fn finish(&mut self) {
        assert!(self.h.push_event(gst::event::Eos::new()));
    }

    /// (event, identity, clock s) of the messages so far.
    fn events(&self, out: &mut Vec<(String, String, String, u64)>) {
        while let Some(m) = self.bus.pop() {
            if let Some(s) = m.structure()
                && let Ok(id) = s.get::<String>("identity")
            {
                out.push((
                    s.name().to_string(),
                    s.get::<String>("event").unwrap(),
                    id,
                    s.get::<u64>("clock-time").unwrap() / S,
                ));
            }
        }
    }
}

#[test]
fn two_nodes_one_absence_alert_and_a_restarted_node_picks_the_state_up() {
    init();
    let redis = sightline_testkit::RedisServer::start(&[]);
    let url = redis.url(None);
    let spool = std::env::temp_dir().join(format!("sl-shared-{}", std::process::id()));
    let mut a = Node::start("n1", &url, &spool, 0);
    let mut b = Node::start("n2", &url, &spool, 0);
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    // Ann passes node 1's camera at 0 s, then stays in front of node 2's until 200 s.
    a.push(Some("Ann"), 0);
    b.push(None, 0);
    for t in (5..=200).step_by(5) {
        a.advance(t * S);
        b.advance(t * S);
        a.push(None, t * S);
        b.push(Some("Ann"), t * S);
    }
    // Node 1 restarts at 250 s.
    a.events(&mut ea);
    drop(a);
    let mut a = Node::start("n1", &url, &spool, 250 * S);
    a.push(None, 250 * S);
    for t in (255..=600).step_by(5) {
        a.advance(t * S);
        b.advance(t * S);
        a.push(None, t * S);
        b.push(None, t * S);
    }
    // The alert is claimed through Redis (one node raises it): its answer comes back on the
    // link's thread, so it is in once both streams have ended.
    a.finish();
    b.finish();
    a.events(&mut ea);
    b.events(&mut eb);
    let alerts: Vec<_> = ea
        .iter()
        .chain(&eb)
        .filter(|e| e.0 == "presence-alert")
        .cloned()
        .collect();
    assert_eq!(alerts.len(), 1, "node 1: {ea:?}\nnode 2: {eb:?}");
    // 300 s after the last sighting anywhere (200 s), not after node 1's (0 s).
    assert_eq!(alerts[0].3, 500, "{alerts:?}");
    // Node 1 never declared Ann absent at 300 s.
    assert!(!ea.iter().any(|e| e.1 == "absent" && e.3 < 500), "{ea:?}");
    drop(a);
    drop(b);
    let _ = std::fs::remove_dir_all(spool);
}

/// One node as its own gst-launch process, in real time on the system clock: Ann (a real
/// photo) for 1 s, then an empty scene for 4 s, through facedetect ! facematch ! presence.
fn node_process(
    id: &str,
    url: &str,
    gallery: &std::path::Path,
    spool: &std::path::Path,
) -> std::process::Child {
    let shared = std::env::var_os("SIGHTLINE_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
        });
    let plugins = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .to_path_buf();
    let still = |path: std::path::PathBuf, n: u32| {
        format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! video/x-raw,format=BGRx,width=320,height=320,pixel-aspect-ratio=1/1 ! imagefreeze num-buffers={n} ! video/x-raw,framerate=10/1 ! c.",
            path.display()
        )
    };
    let desc = format!(
        "concat name=c ! sightlinefacedetect ! facematch gallery=\"{}\" ! presence group=outlet-proc node-id={id} camera={id} redis-url={url} grace-seconds=0.5 absent-seconds=2 camera-timeout-seconds=60 spool-dir=\"{}\" ! fakesink sync=true  {}  {}",
        gallery.display(),
        spool.join(id).display(),
        still(
            shared.join("data/faces/face_recognition_examples/obama/obama2.jpg"),
            10
        ),
        still(shared.join("data/multicam/meva/frames/G328.png"), 40),
    );
    std::process::Command::new("gst-launch-1.0")
        .arg("-m")
        .args(desc.split_whitespace())
        .env("GST_PLUGIN_PATH", plugins)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_processes_watching_one_outlet_raise_exactly_one_absence_alert() {
    init();
    let redis = sightline_testkit::RedisServer::start(&[]);
    let url = redis.url(None);
    let dir = std::env::temp_dir().join(format!("sl-shared-proc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The gallery: Ann = Barack Obama's other photo.
    let shared = std::env::var_os("SIGHTLINE_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
        });
    let gallery = dir.join("g.slg");
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
    let v = sightline_core::enroll::embed_file(
        &mut det,
        &emb,
        &shared.join("data/faces/face_recognition_examples/obama/obama.jpg"),
        sightline_core::enroll::FacePolicy::Single,
    )
    .unwrap()
    .embedding;
    let mut g = sightline_core::gallery::Gallery::new("mobilefacenet", 192);
    g.add("Ann", &v).unwrap();
    g.save(&gallery).unwrap();
    let a = node_process("proc-a", &url, &gallery, &dir);
    let b = node_process("proc-b", &url, &gallery, &dir);
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (ta, tb) = (
        String::from_utf8_lossy(&oa.stdout),
        String::from_utf8_lossy(&ob.stdout),
    );
    assert!(
        oa.status.success() && ob.status.success(),
        "{ta}\n{tb}\n{}",
        String::from_utf8_lossy(&oa.stderr)
    );
    let count = |t: &str, what: &str| {
        t.lines()
            .filter(|l| l.contains("(element): presence,") && l.contains(what))
            .count()
    };
    // Both processes saw Ann arrive and leave ...
    for t in [&ta, &tb] {
        assert_eq!(count(t, "event=(string)arrived"), 1, "{t}");
        assert_eq!(count(t, "event=(string)absent, "), 1, "{t}");
    }
    // ... and exactly one of them raised the alert.
    let alerts = |t: &str| {
        t.lines()
            .filter(|l| l.contains("(element): presence-alert,"))
            .count()
    };
    let alerts = alerts(&ta) + alerts(&tb);
    assert_eq!(alerts, 1, "{ta}\n{tb}");
    let _ = std::fs::remove_dir_all(dir);
}
