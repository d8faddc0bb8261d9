//! Trajectories of the people of vtest.avi (PETS 2009): what reidmap posts, logs and streams
//! when tracks end and at end of stream, checked against the positions it put on the buffers,
//! and delivered through a Redis outage.

mod common;

use common::{crop_calibration, data, temp_dir};
use gst::prelude::*;
use sightline_core::events::{Event, read_jsonl};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// Positions on buffers: (track id, running time) -> map position.
type Placed = BTreeMap<(u64, u64), (f64, f64)>;

struct Run {
    placed: Placed,
    trajectories: Vec<gst::Structure>,
    warnings: Vec<String>,
}

/// Runs `frames` frames of vtest through persondetect ! reidmap `props`; `during(frame)` is
/// called after each frame; `before_stop` once all frames are through (pipeline still up).
fn run(frames: u32, props: &str, mut during: impl FnMut(u32), before_stop: impl FnOnce()) -> Run {
    gst::init().unwrap();
    gstreidmap::plugin_register_static().unwrap();
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! identity eos-after={frames} ! persondetect inference-width=480 ! reidmap name=r camera=pets post-interval=0 {props} ! appsink name=s sync=false",
        data("video/vtest.avi").display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = p
        .by_name("s")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut placed = Placed::new();
    let mut n = 0;
    while let Ok(s) = sink.pull_sample() {
        let b = s.buffer().unwrap();
        let seg = s
            .segment()
            .unwrap()
            .downcast_ref::<gst::ClockTime>()
            .unwrap();
        let rt = seg.to_running_time(b.pts().unwrap()).unwrap().nseconds();
        for m in b.iter_meta::<gst_video::VideoRegionOfInterestMeta>() {
            if let (Some(mp), Some(obj)) = (m.param("map-position"), m.param("object_id")) {
                let track = obj.get::<i32>("id").unwrap() as u64;
                placed.insert(
                    (track, rt),
                    (mp.get::<f64>("x").unwrap(), mp.get::<f64>("y").unwrap()),
                );
            }
        }
        n += 1;
        during(n);
    }
    // (identity eos-after=N lets N or N - 1 buffers through, whichever wins a race.)
    assert!(n + 1 >= frames && n <= frames, "{n} frames came through");
    before_stop();
    // (A pipeline going to NULL flushes its bus: read it first.)
    let (mut trajectories, mut warnings) = (Vec::new(), Vec::new());
    while let Some(m) = bus.pop() {
        match m.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "reidmap-trajectory") {
                    trajectories.push(s.to_owned());
                }
            }
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            gst::MessageView::Error(e) => panic!("error: {} {:?}", e.error(), e.debug()),
            _ => {}
        }
    }
    p.set_state(gst::State::Null).unwrap();
    Run {
        placed,
        trajectories,
        warnings,
    }
}

fn points(t: &gst::StructureRef) -> Vec<(u64, f64, f64)> {
    t.get::<gst::List>("points")
        .unwrap()
        .iter()
        .map(|v| {
            let p = v.get::<gst::Structure>().unwrap();
            (
                p.get::<u64>("running-time").unwrap(),
                p.get::<f64>("x").unwrap(),
                p.get::<f64>("y").unwrap(),
            )
        })
        .collect()
}

/// Trajectories agree with the buffers, sample at most 5 Hz, move at walking speed, and
/// every placed track has exactly one.
fn check(r: &Run) {
    let tracks: BTreeSet<u64> = r.placed.keys().map(|k| k.0).collect();
    let mut seen = BTreeSet::new();
    let mut speeds = Vec::new();
    for t in &r.trajectories {
        let track = t.get::<u64>("track-id").unwrap();
        assert!(seen.insert(track), "track {track} has one trajectory");
        assert!(["track-ended", "stream-ended"].contains(&t.get::<&str>("reason").unwrap()));
        assert_eq!(t.get::<&str>("units").unwrap(), "m");
        let pts = points(t);
        assert!(!pts.is_empty());
        assert_eq!(t.get::<u64>("start-running-time").unwrap(), pts[0].0);
        assert_eq!(t.get::<u64>("running-time").unwrap(), pts[pts.len() - 1].0);
        for w in pts.windows(2) {
            assert!(w[1].0 >= w[0].0 + 200_000_000, "at most 5 points a second");
            let dt = (w[1].0 - w[0].0) as f64 / 1e9;
            speeds.push((w[1].1 - w[0].1).hypot(w[1].2 - w[0].2) / dt);
        }
        for (rt, x, y) in pts {
            let Some(&(bx, by)) = r.placed.get(&(track, rt)) else {
                let near: Vec<_> = r.placed.keys().filter(|k| k.0 == track).take(5).collect();
                panic!("track {track} not placed at {rt}; placed at {near:?}");
            };
            assert!((bx - x).abs() < 1e-9 && (by - y).abs() < 1e-9);
        }
    }
    assert_eq!(seen, tracks, "every placed track has its trajectory");
    speeds.sort_by(f64::total_cmp);
    let median = speeds[speeds.len() / 2];
    eprintln!(
        "{} trajectories, {} steps, median speed {median:.2} m/s",
        r.trajectories.len(),
        speeds.len()
    );
    // People walk at 0.5-2 m/s; PETS S2.L1 has walkers and a few slow groups.
    assert!((0.3..2.5).contains(&median), "median speed {median}");
}

fn logged(path: &Path) -> Vec<Event> {
    read_jsonl(path).unwrap()
}

#[test]
fn trajectories_follow_the_tracks_and_reach_the_event_log() {
    let dir = temp_dir("traj");
    let cal = dir.join("pets.json");
    crop_calibration(0.0, &cal);
    let log = dir.join("events.jsonl");
    let published = dir.join("published.jsonl");
    let r = run(
        200,
        &format!(
            "map=traj calibration={} event-log={} publish=file://{} spool-dir={}",
            cal.display(),
            log.display(),
            published.display(),
            dir.join("spool").display()
        ),
        |_| {},
        || {},
    );
    assert!(r.trajectories.len() >= 5, "{}", r.trajectories.len());
    check(&r);
    // Tracks that end mid-stream and those open at the end.
    let reasons: BTreeSet<&str> = r
        .trajectories
        .iter()
        .map(|t| t.get::<&str>("reason").unwrap())
        .collect();
    assert!(reasons.contains("stream-ended"), "{reasons:?}");
    let events = logged(&log);
    assert_eq!(events.len(), r.trajectories.len());
    for (e, t) in events.iter().zip(&r.trajectories) {
        assert_eq!(e.kind, "reidmap-trajectory");
        assert_eq!(e.camera, "pets");
        assert_eq!(e.data["track-id"], t.get::<u64>("track-id").unwrap());
        assert_eq!(e.data["global-id"], t.get::<u64>("global-id").unwrap());
        assert_eq!(e.data["points"].as_array().unwrap().len(), points(t).len());
        assert_eq!(
            e.running_time_ns,
            Some(t.get::<u64>("running-time").unwrap())
        );
    }
    // The publish sinks get every message: the same trajectories, and the positions.
    let out = logged(&published);
    let traj: Vec<&Event> = out
        .iter()
        .filter(|e| e.kind == "reidmap-trajectory")
        .collect();
    assert_eq!(traj.len(), events.len());
    for (p, e) in traj.iter().zip(&events) {
        assert_eq!(p.data, e.data);
    }
    let positions = out.iter().filter(|e| e.kind == "reidmap").count();
    assert!(positions >= 10, "{positions} position events published");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn map_and_trajectories_go_through_redis_and_survive_an_outage() {
    let dir = temp_dir("traj-redis");
    let cal = dir.join("pets.json");
    crop_calibration(0.0, &cal);
    let log = dir.join("events.jsonl");
    let mut redis = sightline_testkit::RedisServer::start(&[]);
    let url = redis.url(None);
    let map = "traj-redis";
    let stream = "site:events";
    let people_key = format!("sightline:map:{map}:people");
    let count_stream = |con: &mut redis::Connection| -> usize {
        redis::cmd("XLEN").arg(stream).query(con).unwrap_or(0)
    };
    let mut shared_ids = BTreeSet::new();
    // Redis restarts empty (no persistence): what was delivered before is gone with it.
    let before_outage = std::cell::Cell::new(0);
    let r = run(
        250,
        &format!(
            "map={map} calibration={} event-log={} redis-url={url} stream={stream} spool-dir={}",
            cal.display(),
            log.display(),
            dir.join("spool").display()
        ),
        |n| match n {
            60 => {
                // The people this process follows are on the shared map.
                let mut con = redis::Client::open(url.as_str())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                let t0 = Instant::now();
                while shared_ids.is_empty() && t0.elapsed() < Duration::from_secs(10) {
                    let fields: Vec<String> = redis::cmd("HKEYS")
                        .arg(&people_key)
                        .query(&mut con)
                        .unwrap();
                    shared_ids = fields
                        .iter()
                        .filter_map(|f| f.strip_prefix("p/")?.split('/').next()?.parse().ok())
                        .collect::<BTreeSet<u64>>();
                    std::thread::sleep(Duration::from_millis(50));
                }
                before_outage.set(logged(&log).len());
                redis.kill();
            }
            // Frames 60-150 run with Redis away: tracks that end then are spooled.
            150 => redis.restart(),
            _ => {}
        },
        || {
            // Everything logged since reaches the stream once Redis is back.
            let want = logged(&log).len() - before_outage.get();
            let mut con = redis::Client::open(url.as_str())
                .unwrap()
                .get_connection()
                .unwrap();
            let t0 = Instant::now();
            while count_stream(&mut con) < want && t0.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(100));
            }
        },
    );
    check(&r);
    assert!(!shared_ids.is_empty(), "people shared on the map");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("Map sharing interrupted")),
        "outage reported: {:?}",
        r.warnings
    );
    let events = logged(&log);
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
    let streamed: Vec<Event> = entries
        .iter()
        .map(|(_, f)| {
            serde_json::from_str(&f.iter().find(|(k, _)| k == "event").unwrap().1).unwrap()
        })
        .collect();
    // Every trajectory logged since the outage began, once and in order (plus, at most, ones
    // logged just before it and not yet delivered then).
    let key = |e: &Event| e.data["track-id"].as_u64().unwrap();
    let streamed: Vec<u64> = streamed.iter().map(key).collect();
    let logged_keys: Vec<u64> = events.iter().map(key).collect();
    let before_outage = before_outage.get();
    let after = &logged_keys[before_outage..];
    assert!(
        streamed.ends_with(after) && logged_keys.ends_with(&streamed),
        "streamed {streamed:?}, logged {logged_keys:?} ({before_outage} before the outage)"
    );
    assert!(
        after.len() >= 3,
        "trajectories during and after the outage: {after:?}"
    );
    // Ids given out come from the block reserved in Redis.
    let ids: BTreeSet<u64> = r
        .trajectories
        .iter()
        .map(|t| t.get::<u64>("global-id").unwrap())
        .collect();
    assert!(ids.iter().all(|&g| (1..=2000).contains(&g)), "{ids:?}");
    drop(redis);
    std::fs::remove_dir_all(dir).unwrap();
}
