//! Zones on a scripted path: buffers carry the ROIs facematch would have written (the
//! element reads metadata only), with timestamps as the clock.

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

/// A 640x480 frame with one recognised face centred at (cx, cy) (normalised).
fn frame_with(subject: Option<(&str, f64, f64)>, t: u64) -> gst::Buffer {
    let mut b = gst::Buffer::with_size(640 * 480 * 4).unwrap();
    {
        let b = b.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(t));
        if let Some((name, cx, cy)) = subject {
            let d = sightline_core::postprocess::Detection {
                x1: (cx * 640.0 - 20.0) as f32,
                y1: (cy * 480.0 - 25.0) as f32,
                x2: (cx * 640.0 + 20.0) as f32,
                y2: (cy * 480.0 + 25.0) as f32,
                score: 0.9,
                landmarks: None,
                class_id: 0,
            };
            let id =
                sightline_core::meta::add_detection(b, "face", &d, 640, 480, "face", 0, "yunet-n");
            let rec = sightline_core::meta::Recognition {
                label: name.to_string(),
                identity: sightline_core::gallery::slug(name),
                similarity: 0.8,
                unknown_id: String::new(),
                label_id: 0,
            };
            let track = sightline_core::meta::Tracked {
                id: 1,
                first_seen_ns: 0,
                last_seen_ns: t,
                global_id: None,
            };
            sightline_core::meta::annotate(b, id, &track, Some(&rec), Vec::new());
        }
    }
    b
}

/// The frame with only its GstAnalytics form: every ROI meta removed.
#[cfg(feature = "analytics")]
fn without_rois(mut b: gst::Buffer) -> gst::Buffer {
    let m = b.get_mut().unwrap();
    while let Some(r) = m.meta_mut::<gst_video::VideoRegionOfInterestMeta>() {
        r.remove().unwrap();
    }
    b
}

fn zones_file(text: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("sl-zones-{}-{n}.json", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

/// The zone events of Ann's scripted path; `frame` turns each frame into what is pushed.
fn zone_events(frame: fn(gst::Buffer) -> gst::Buffer) -> Vec<(String, String, String, u64)> {
    init();
    let zones = zones_file(
        r#"{"cameras": {"door": [
            {"name": "entrance", "polygon": [[0.0,0.0],[0.5,0.0],[0.5,1.0],[0.0,1.0]], "dwell-seconds": 10},
            {"name": "till", "polygon": [[0.6,0.2],[0.9,0.2],[0.75,0.8]]}]}}"#,
    );
    // Properties first: the harness starts the element it is given.
    let el = gst::ElementFactory::make("presence")
        .property("camera", "door")
        .property("group", "zones-test")
        .property("zones", zones.to_str().unwrap())
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps_str("video/x-raw,format=BGRx,width=640,height=480,framerate=1/1");
    for t in 0..12 {
        h.push(frame(frame_with(Some(("Ann", 0.2, 0.5)), t * S)))
            .unwrap();
    }
    h.push(frame(frame_with(Some(("Ann", 0.75, 0.4)), 12 * S)))
        .unwrap();
    h.push(frame(frame_with(None, 13 * S))).unwrap();
    h.push(frame(frame_with(None, 14 * S))).unwrap();
    let mut got = Vec::new();
    while let Some(m) = bus.pop() {
        if let Some(s) = m.structure()
            && s.get::<&str>("event").is_ok_and(|e| e.starts_with("zone-"))
        {
            got.push((
                s.get::<String>("event").unwrap(),
                s.get::<String>("zone").unwrap(),
                s.get::<String>("subject").unwrap(),
                s.get::<u64>("running-time").unwrap() / S,
            ));
        }
    }
    std::fs::remove_file(zones).unwrap();
    got
}

fn expected_path() -> Vec<(String, String, String, u64)> {
    let e = |a: &str, z: &str, t: u64| (a.to_string(), z.to_string(), "ann".to_string(), t);
    vec![
        e("zone-enter", "entrance", 0),
        e("zone-dwell", "entrance", 10),
        e("zone-leave", "entrance", 12),
        e("zone-enter", "till", 12),
        e("zone-leave", "till", 14),
    ]
}

#[test]
fn enter_dwell_move_and_leave_on_a_scripted_path() {
    assert_eq!(zone_events(|b| b), expected_path());
}

/// presence reads facematch's decisions from the GstAnalytics form alone (object detection
/// + related classification and tracking) when a buffer carries no ROI metas.
#[cfg(feature = "analytics")]
#[test]
fn the_same_path_from_the_gstanalytics_form_alone() {
    assert_eq!(zone_events(without_rois), expected_path());
}

#[test]
fn a_bad_zones_file_is_a_clear_error() {
    init();
    let zones =
        zones_file(r#"{"cameras": {"door": [{"name": "gate", "polygon": [[0,0],[1,1]]}]}}"#);
    let p = gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 ! presence camera=door zones={} ! fakesink",
        zones.display()
    ))
    .unwrap();
    let _ = p.set_state(gst::State::Playing);
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .expect("error");
    p.set_state(gst::State::Null).unwrap();
    let gst::MessageView::Error(err) = msg.view() else {
        unreachable!()
    };
    let text = format!("{} {}", err.error(), err.debug().unwrap_or_default());
    assert!(
        text.contains("Bad zones file")
            && text.contains("zone \"gate\"")
            && text.contains("at least 3 points"),
        "{text}"
    );
    std::fs::remove_file(zones).unwrap();
}

#[test]
fn a_roster_from_a_gallery_expects_everyone_in_it() {
    init();
    let dir = std::env::temp_dir().join(format!("sl-roster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let g = dir.join("staff.slg");
    let mut gal = sightline_core::gallery::Gallery::new("mobilefacenet", 4);
    gal.add("Ann Lee", &[1.0, 0.0, 0.0, 0.0]).unwrap();
    gal.add("Bo", &[0.0, 1.0, 0.0, 0.0]).unwrap();
    gal.save(&g).unwrap();
    let el = gst::ElementFactory::make("presence")
        .property("group", "roster-test")
        .property("roster", format!("gallery:{}", g.display()))
        .property("absent-seconds", 60.0f64)
        .property("camera-timeout-seconds", 3600.0f64)
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(&el, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps_str("video/x-raw,format=BGRx,width=640,height=480,framerate=1/1");
    // Ann shows up; Bo never does: after 60 s Bo is absent (never seen), Ann is not.
    h.push(frame_with(Some(("Ann Lee", 0.2, 0.5)), 0)).unwrap();
    for t in 1..=61 {
        h.push(frame_with(Some(("Ann Lee", 0.2, 0.5)), t * S))
            .unwrap();
        let clock = h.testclock().unwrap();
        // The timer (re-)arms asynchronously: wait until it waits.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while clock.peek_next_pending_id().is_none() && std::time::Instant::now() < end {
            std::thread::yield_now();
        }

        while clock
            .peek_next_pending_id()
            .is_some_and(|id| id.time().nseconds() <= t * S)
        {
            clock.crank();
            let end = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while clock.peek_next_pending_id().is_none() && std::time::Instant::now() < end {
                std::thread::yield_now();
            }
        }
    }
    let mut alerts = Vec::new();
    while let Some(m) = bus.pop() {
        if let Some(s) = m.structure()
            && s.name() == "presence-alert"
        {
            alerts.push((
                s.get::<String>("identity").unwrap(),
                s.get::<bool>("never-seen").unwrap(),
            ));
        }
    }
    assert_eq!(alerts, vec![("bo".to_string(), true)]);
    std::fs::remove_dir_all(dir).unwrap();
}
