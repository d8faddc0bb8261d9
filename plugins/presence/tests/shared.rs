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
