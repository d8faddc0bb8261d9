//! Two processes, one per camera (the left and right 480 px of vtest.avi, 192 px of overlap),
//! each playing its pipeline in real time, share one floor map through a real Redis: a person
//! walking through the overlap gets the same global id in both processes' trajectories.
//!
//! Live cameras give each frame its capture time; two files played by two processes do not:
//! each file's frame n is at the process's base time + n x 100 ms, and each process picks its
//! base time when it reaches PLAYING, after loading its models — a second apart under load,
//! which puts a walking person a metre apart on the shared map. So both processes are this
//! test binary run again ([`child_process`]), and both play from one agreed base time on the
//! system clock (monotonic, the same in every process), as if one capture clock fed them.

mod common;

use common::{crop_calibration, data, temp_dir};
use gst::prelude::*;
use sightline_core::events::{Event, read_jsonl};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const CHILD_DESC: &str = "SIGHTLINE_TEST_CHILD_PIPELINE";
const CHILD_BASE: &str = "SIGHTLINE_TEST_CHILD_BASE_TIME";

fn camera(name: &str, crop: &str, cal: &Path, url: &str, dir: &Path, base: u64) -> Child {
    let plugins = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .to_path_buf();
    let desc = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! identity eos-after=300 ! videocrop {crop} ! persondetect inference-width=480 ! reidmap camera={name} map=e2e calibration={} redis-url={url} event-log={} spool-dir={} ! fakesink sync=true",
        data("video/vtest.avi").display(),
        cal.display(),
        dir.join(format!("{name}.jsonl")).display(),
        dir.join(format!("spool-{name}")).display(),
    );
    Command::new(std::env::current_exe().unwrap())
        .args(["child_process", "--exact", "--ignored", "--nocapture"])
        .env("GST_PLUGIN_PATH", plugins)
        // Two processes on the test machine's 2 cores: one inference thread each, not
        // spinning (the default pool, all cores each and spinning, has the two processes
        // fight over the cores: 35 to 78 s for a 30 s clip, and the map then compares a
        // person's positions from moments seconds apart).
        .env("SIGHTLINE_THREADS", "1")
        .env("SIGHTLINE_ORT_SPIN", "0")
        .env(CHILD_DESC, desc)
        .env(CHILD_BASE, base.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// One camera's process (run by the test below, not on its own): plays the pipeline in
/// `SIGHTLINE_TEST_CHILD_PIPELINE` on the system clock from the base time in
/// `SIGHTLINE_TEST_CHILD_BASE_TIME` (ns) to its end.
#[test]
#[ignore = "one camera's process of two_processes_give_a_person_in_the_overlap_one_global_id"]
fn child_process() {
    let (Ok(desc), Ok(base)) = (std::env::var(CHILD_DESC), std::env::var(CHILD_BASE)) else {
        return;
    };
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipeline.use_clock(Some(&gst::SystemClock::obtain()));
    // No start time: the pipeline keeps the base time it is given.
    pipeline.set_start_time(gst::ClockTime::NONE);
    pipeline.set_base_time(gst::ClockTime::from_nseconds(base.parse().unwrap()));
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(600),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("end of stream within 600 s");
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("{}: {:?}", e.error(), e.debug());
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

/// A trajectory: global id and points (running time ns, x, y) with the foot in the overlap.
struct Traj {
    gid: u64,
    points: Vec<(u64, f64, f64)>,
}

fn trajectories(events: &[Event]) -> Vec<Traj> {
    events
        .iter()
        .filter(|e| e.kind == "reidmap-trajectory")
        .map(|e| Traj {
            gid: e.data["global-id"].as_u64().unwrap(),
            points: e.data["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["running-time"].as_u64().unwrap(),
                        p["x"].as_f64().unwrap(),
                        p["y"].as_f64().unwrap(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Points of `a` and `b` at the same moment of the video (±150 ms) within 0.5 m of each other.
fn together(a: &Traj, b: &Traj) -> usize {
    a.points
        .iter()
        .filter(|p| {
            b.points
                .iter()
                .any(|q| p.0.abs_diff(q.0) <= 150_000_000 && (p.1 - q.1).hypot(p.2 - q.2) < 0.5)
        })
        .count()
}

#[test]
fn two_processes_give_a_person_in_the_overlap_one_global_id() {
    let dir = temp_dir("two-proc");
    let redis = sightline_testkit::RedisServer::start(&[]);
    let url = redis.url(None);
    let (ca, cb) = (dir.join("a.json"), dir.join("b.json"));
    crop_calibration(0.0, &ca);
    crop_calibration(288.0, &cb);
    // Both play from 5 s from now: time to load the models on two busy cores (a process
    // that is later plays its first frames late, at their right times).
    gst::init().unwrap();
    let base = gst::SystemClock::obtain().time().nseconds() + 5_000_000_000;
    let children = [
        camera("left", "right=288", &ca, &url, &dir, base),
        camera("right", "left=288", &cb, &url, &dir, base),
    ];
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let left = trajectories(&read_jsonl(&dir.join("left.jsonl")).unwrap());
    let right = trajectories(&read_jsonl(&dir.join("right.jsonl")).unwrap());
    // Pairs: a left and a right trajectory that walk together for at least 2 s (10 points).
    let (mut pairs, mut same) = (0, 0);
    for a in &left {
        let Some(b) = right.iter().max_by_key(|b| together(a, b)) else {
            continue;
        };
        if together(a, b) >= 10 {
            pairs += 1;
            same += usize::from(a.gid == b.gid);
        }
    }
    let ids: std::collections::BTreeSet<u64> = left.iter().chain(&right).map(|t| t.gid).collect();
    eprintln!(
        "{} + {} trajectories; {pairs} people seen by both processes, {same} with one global id; {} global ids: {ids:?}",
        left.len(),
        right.len(),
        ids.len()
    );
    assert!(pairs >= 3, "people in the overlap: {pairs}");
    // Measured 7 of 8 (three runs). Across processes views arrive a sync round (200 ms) late
    // and a trajectory carries the id it ends with; 3 of 4 leaves room for one more miss.
    assert!(same * 4 >= pairs * 3, "{same} of {pairs}");
    // Both processes hand out ids from their own blocks: the two blocks differ.
    assert!(
        ids.iter().any(|&g| g <= 1000) && ids.iter().any(|&g| g > 1000),
        "{ids:?}"
    );
    drop(redis);
    std::fs::remove_dir_all(dir).unwrap();
}
