//! facematch on real photos and video from ../shared/data.

use gst::prelude::*;
use sightline_core::gallery::Gallery;
use sightline_core::meta::read_rois;
use std::path::{Path, PathBuf};
use std::sync::Once;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacedetect::plugin_register_static().unwrap();
        gstfacematch::plugin_register_static().unwrap();
        assert!(
            std::env::var_os("ORT_DYLIB_PATH").is_some(),
            "run through scripts/test"
        );
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
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("sl-fm-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A gallery file with `name` enrolled from `photos` (through the library, as the CLI does).
fn enrol(path: &Path, people: &[(&str, &[PathBuf])]) {
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
    let mut g = if path.exists() {
        Gallery::load(path).unwrap()
    } else {
        Gallery::new("mobilefacenet", 192)
    };
    for (name, photos) in people {
        for p in *photos {
            let v = sightline_core::enroll::embed_file(
                &mut det,
                &emb,
                p,
                sightline_core::enroll::FacePolicy::Single,
            )
            .unwrap()
            .embedding;
            g.add(name, &v).unwrap();
        }
    }
    g.save(path).unwrap();
}

/// Writes frame 0 of a video as PNG (the "still" to enrol from).
fn still_of(video: &Path, out: &Path) {
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! pngenc snapshot=true ! filesink location=\"{}\"",
        video.display(),
        out.display()
    ))
    .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    p.bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap();
    p.set_state(gst::State::Null).unwrap();
    assert!(out.is_file());
}

struct Run {
    /// Per frame: (label, unknown-id, track id) of each face.
    frames: Vec<Vec<(String, String, i64)>>,
    messages: Vec<gst::Structure>,
    embeddings: u64,
    /// facedetect's detections that scanned the whole frame / only around known faces.
    scans: (usize, usize),
}

fn run_video(video: &Path, facematch_props: &str) -> Run {
    run_video_with(video, "", facematch_props)
}

fn run_video_with(video: &Path, facedetect_props: &str, facematch_props: &str) -> Run {
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=BGRx ! facedetect {facedetect_props} ! facematch name=fm {facematch_props} ! appsink name=sink sync=false",
        video.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        let rois = read_rois(s.buffer().unwrap());
        frames.push(
            rois.iter()
                .map(|r| {
                    (
                        r.recognition_label.clone().unwrap_or_default(),
                        r.unknown_id.clone().unwrap_or_default(),
                        r.object_id.unwrap_or(-1),
                    )
                })
                .collect(),
        );
    }
    let embeddings = p.by_name("fm").unwrap().property::<u64>("embeddings");
    let bus = p.bus().unwrap();
    let mut messages = Vec::new();
    let mut scans = (0, 0);
    while let Some(m) = bus.pop() {
        if let gst::MessageView::Error(e) = m.view() {
            panic!("{} {:?}", e.error(), e.debug());
        }
        if let Some(s) = m.structure() {
            match (s.name().as_str(), s.get::<&str>("scan")) {
                ("facematch", _) => messages.push(s.to_owned()),
                ("facedetect", Ok("frame")) => scans.0 += 1,
                ("facedetect", Ok("regions")) => scans.1 += 1,
                _ => {}
            }
        }
    }
    p.set_state(gst::State::Null).unwrap();
    Run {
        frames,
        messages,
        embeddings,
        scans,
    }
}

#[test]
fn a_video_track_is_recognised_once_and_a_stranger_stays_one_unknown() {
    init();
    let dir = tmp("video");
    let male = data("video/intel_sample_videos/derived/head-pose-face-detection-male.mjpeg.avi");
    let still = dir.join("male.png");
    still_of(&male, &still);
    let g = dir.join("g.slg");
    enrol(&g, &[("Visitor", &[still])]);
    let run = run_video(&male, &format!("gallery={} camera=lobby", g.display()));
    assert_eq!(run.frames.len(), 62);
    let with_face: Vec<&Vec<(String, String, i64)>> =
        run.frames.iter().filter(|f| !f.is_empty()).collect();
    let recognised = with_face
        .iter()
        .filter(|f| f.iter().any(|(l, _, _)| l == "Visitor"))
        .count();
    // The head turns and tilts: a few frames may have no usable face, but the track that is
    // there is the enrolled person.
    assert!(
        recognised * 10 >= with_face.len() * 9,
        "{recognised}/{} frames recognised",
        with_face.len()
    );
    assert!(
        run.frames
            .iter()
            .flatten()
            .all(|(l, _, _)| l == "Visitor" || l.is_empty()),
        "never anyone else"
    );
    // One decision per track, not one per frame.
    let decided: Vec<(u64, String)> = run
        .messages
        .iter()
        .map(|s| {
            (
                s.get::<u64>("track-id").unwrap(),
                s.get::<String>("label").unwrap(),
            )
        })
        .collect();
    let tracks: std::collections::BTreeSet<i64> =
        run.frames.iter().flatten().map(|f| f.2).collect();
    assert!(
        decided.len() <= tracks.len() && !decided.is_empty(),
        "{decided:?} for tracks {tracks:?}"
    );
    assert!(decided.iter().all(|(_, l)| l == "Visitor"));
    let m = &run.messages[0];
    assert_eq!(m.get::<&str>("camera").unwrap(), "lobby");
    assert_eq!(m.get::<&str>("identity").unwrap(), "visitor");
    assert!(m.get::<f64>("similarity").unwrap() >= 0.48 && m.get::<u64>("running-time").is_ok());
    // Re-embedding is rationed: far fewer embeddings than frames.
    assert!(
        run.embeddings * 3 <= run.frames.len() as u64,
        "{} embeddings for {} frames",
        run.embeddings,
        run.frames.len()
    );

    // A stranger (another person's video) with the same gallery: unknown, one stable id.
    let female =
        data("video/intel_sample_videos/derived/head-pose-face-detection-female.mjpeg.avi");
    let run = run_video(&female, &format!("gallery={}", g.display()));
    let labels: Vec<&(String, String, i64)> = run
        .frames
        .iter()
        .flatten()
        .filter(|f| !f.0.is_empty())
        .collect();
    assert!(!labels.is_empty());
    assert!(
        labels.iter().all(|(l, _, _)| l == "unknown"),
        "stranger never recognised as the visitor"
    );
    let ids: std::collections::BTreeSet<&String> = labels.iter().map(|f| &f.1).collect();
    assert_eq!(ids.len(), 1, "one unknown id: {ids:?}");
    assert!(ids.iter().next().unwrap().starts_with("unknown-"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn searching_only_around_known_faces_keeps_the_decisions() {
    init();
    let dir = tmp("regions");
    let male = data("video/intel_sample_videos/derived/head-pose-face-detection-male.mjpeg.avi");
    let female =
        data("video/intel_sample_videos/derived/head-pose-face-detection-female.mjpeg.avi");
    let still = dir.join("male.png");
    still_of(&male, &still);
    let g = dir.join("g.slg");
    enrol(&g, &[("Visitor", &[still])]);
    let props = format!("gallery={}", g.display());
    let recognised = |r: &Run| {
        r.frames
            .iter()
            .filter(|f| f.iter().any(|(l, _, _)| l == "Visitor"))
            .count()
    };
    let decisions = |r: &Run| {
        r.messages
            .iter()
            .map(|m| m.get::<String>("label").unwrap())
            .collect::<Vec<_>>()
    };
    // The whole frame on every 6th frame (twice a second at 12 fps), around the face between.
    let whole = run_video(&male, &props);
    let around = run_video_with(&male, "scan-interval=6", &props);
    eprintln!(
        "male: recognised on {} / {} frames (whole frame every time: {}), scans {:?}, decisions {:?} vs {:?}",
        recognised(&around),
        around.frames.len(),
        recognised(&whole),
        around.scans,
        decisions(&around),
        decisions(&whole)
    );
    assert_eq!(around.frames.len(), whole.frames.len());
    // 62 frames: the whole frame scanned on 11 (every 6th, and whenever the face was lost).
    assert!(
        around.scans.0 >= 11 && around.scans.1 >= 40,
        "{:?}",
        around.scans
    );
    // The same decisions; the person recognised on as many frames (one frame of slack: a face
    // whose score sits at the threshold while the head turns may be kept on one side only).
    assert_eq!(decisions(&around), decisions(&whole));
    assert!(
        recognised(&around) + 1 >= recognised(&whole),
        "{} vs {}",
        recognised(&around),
        recognised(&whole)
    );
    assert!(
        around
            .frames
            .iter()
            .flatten()
            .all(|(l, _, _)| l == "Visitor" || l.is_empty())
    );
    // The stranger stays one unknown.
    let stranger = run_video_with(&female, "scan-interval=6", &props);
    let ids: std::collections::BTreeSet<&String> = stranger
        .frames
        .iter()
        .flatten()
        .filter(|f| !f.0.is_empty())
        .map(|f| {
            assert_eq!(f.0, "unknown");
            &f.1
        })
        .collect();
    assert_eq!(ids.len(), 1, "one unknown id: {ids:?}");
    assert!(stranger.scans.1 > 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// appsrc ! facedetect ! facematch ! appsink, frames pushed by the test.
struct Live {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    n: u64,
}

impl Live {
    fn new(caps: &gst::Caps, props: &str) -> Live {
        let pipeline = gst::parse::launch(&format!(
            "appsrc name=src format=time ! facedetect ! facematch name=fm {props} ! appsink name=sink sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let src = pipeline
            .by_name("src")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        src.set_caps(Some(caps));
        let sink = pipeline
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        Live {
            pipeline,
            src,
            sink,
            n: 0,
        }
    }

    fn push(&mut self, b: &gst::Buffer) -> Vec<sightline_core::meta::Roi> {
        let mut b = b.copy();
        b.make_mut()
            .set_pts(gst::ClockTime::from_mseconds(100 * self.n));
        self.n += 1;
        self.src.push_buffer(b).unwrap();
        read_rois(self.sink.pull_sample().unwrap().buffer().unwrap())
    }

    fn wait_for(&self, name: &str, secs: u64) -> Option<gst::Structure> {
        let bus = self.pipeline.bus().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if let Some(m) = bus.timed_pop(gst::ClockTime::from_mseconds(100))
                && let Some(s) = m.structure()
                && s.name() == name
            {
                return Some(s.to_owned());
            }
        }
        None
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn photo(rel: &str, width: u32) -> (gst::Buffer, gst::Caps) {
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! video/x-raw,format=BGRx,width={width},height={width},pixel-aspect-ratio=1/1 ! appsink name=sink",
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

#[test]
fn a_person_enrolled_while_playing_is_recognised_within_two_seconds() {
    init();
    let dir = tmp("reload");
    let g = dir.join("g.slg");
    enrol(
        &g,
        &[(
            "Joe Biden",
            &[data("faces/face_recognition_examples/biden/biden.jpg")],
        )],
    );
    // Square frames, so that every photo has the same caps.
    let (obama, caps) = photo("faces/face_recognition_examples/obama/obama2.jpg", 480);
    let mut live = Live::new(
        &caps,
        &format!("gallery={} reembed-interval=1", g.display()),
    );
    let before = live.push(&obama);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].recognition_label.as_deref(), Some("unknown"));
    // Enrol Obama from another photo while the pipeline runs (atomic file replace).
    let t = std::time::Instant::now();
    enrol(
        &g,
        &[(
            "Barack Obama",
            &[data("faces/face_recognition_examples/obama/obama.jpg")],
        )],
    );
    let msg = live
        .wait_for("facematch-gallery", 5)
        .expect("gallery reload message");
    let latency = t.elapsed();
    assert_eq!(msg.get::<u32>("identities").unwrap(), 2);
    assert!(
        latency <= std::time::Duration::from_secs(2),
        "reload took {latency:?}"
    );
    let after = live.push(&obama);
    assert_eq!(after[0].recognition_label.as_deref(), Some("Barack Obama"));
    // No frame was dropped: every pushed frame came out.
    assert_eq!(live.n, 2);
    drop(live);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_same_stranger_has_one_unknown_id_on_every_camera_of_the_process() {
    init();
    let (stranger, caps) = photo("faces/misc/Tom_Hanks_54745.png", 256);
    let (other, _) = photo("faces/misc/astronaut.png", 256);
    let mut cam_a = Live::new(&caps, "camera=a model=w600k-mbf");
    let mut cam_b = Live::new(&caps, "camera=b model=w600k-mbf");
    let a = cam_a.push(&stranger);
    let b = cam_b.push(&stranger);
    let ua = a[0].unknown_id.clone().unwrap();
    assert_eq!(
        b[0].unknown_id.as_deref(),
        Some(ua.as_str()),
        "same stranger, same id on camera b"
    );
    // Another stranger, on a third camera: another id.
    let mut cam_c = Live::new(&caps, "camera=c model=w600k-mbf");
    let d = cam_c.push(&other);
    assert_ne!(
        d[0].unknown_id.as_deref(),
        Some(ua.as_str()),
        "another person, another id"
    );
}

#[test]
fn bad_galleries_are_clear_errors_or_warnings() {
    init();
    let dir = tmp("bad");
    let start = |props: String| -> Vec<String> {
        let p = gst::parse::launch(&format!(
            "videotestsrc num-buffers=1 ! video/x-raw,format=BGRx ! facematch {props} ! fakesink"
        ))
        .unwrap();
        let _ = p.set_state(gst::State::Playing);
        let bus = p.bus().unwrap();
        let mut out = Vec::new();
        for m in bus.iter_timed(gst::ClockTime::from_seconds(30)) {
            match m.view() {
                gst::MessageView::Error(e) => {
                    out.push(format!(
                        "ERROR {} {}",
                        e.error(),
                        e.debug().unwrap_or_default()
                    ));
                    break;
                }
                gst::MessageView::Warning(w) => out.push(format!(
                    "WARNING {} {}",
                    w.error(),
                    w.debug().unwrap_or_default()
                )),
                gst::MessageView::Eos(_) => break,
                _ => {}
            }
        }
        p.set_state(gst::State::Null).unwrap();
        out
    };
    let missing = dir.join("nope.slg");
    let e = start(format!("gallery={}", missing.display()));
    assert!(
        e[0].contains("Cannot load gallery") && e[0].contains(missing.to_str().unwrap()),
        "{e:?}"
    );
    let corrupt = dir.join("corrupt.slg");
    std::fs::write(&corrupt, b"not a gallery at all").unwrap();
    let e = start(format!("gallery={}", corrupt.display()));
    assert!(e[0].contains("not a Sightline gallery file"), "{e:?}");
    // A 512-d gallery for the 192-d default model.
    let wide = dir.join("w600k.slg");
    Gallery::new("w600k-mbf", 512).save(&wide).unwrap();
    let e = start(format!("gallery={}", wide.display()));
    assert!(
        e[0].contains("re-enrol") && e[0].contains("w600k-mbf"),
        "{e:?}"
    );
    // A directory gallery with a photo that shows no face: a warning naming it, runs on.
    let gdir = dir.join("staff");
    std::fs::create_dir_all(gdir.join("Barack Obama")).unwrap();
    std::fs::create_dir_all(gdir.join("Empty Room")).unwrap();
    std::fs::copy(
        data("faces/face_recognition_examples/obama/obama.jpg"),
        gdir.join("Barack Obama/1.jpg"),
    )
    .unwrap();
    std::fs::copy(
        data("multicam/meva/frames/G328.png"),
        gdir.join("Empty Room/1.png"),
    )
    .unwrap();
    let e = start(format!("gallery={}", gdir.display()));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("WARNING")
            && e[0].contains("Empty Room/1.png")
            && e[0].contains("no face found"),
        "{e:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A gallery with `name` enrolled from one photo, in memory.
fn gallery_of(name: &str, photo: &str) -> Gallery {
    let dir = tmp(&format!("mem-{}", sightline_core::gallery::slug(name)));
    let f = dir.join("g.slg");
    enrol(&f, &[(name, &[data(photo)])]);
    let g = Gallery::load(&f).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    g
}

#[test]
fn a_redis_gallery_update_reaches_a_running_pipeline_within_two_seconds() {
    init();
    let redis = sightline_testkit::RedisServer::start(&[
        "--user",
        "default",
        "off",
        "--user",
        "cam1",
        "on",
        ">pw1",
        "~sightline:*",
        "&*",
        "+@all",
    ]);
    let url = redis.url(Some(("cam1", "pw1")));
    let (obama, caps) = photo("faces/face_recognition_examples/obama/obama2.jpg", 480);
    let mut live = Live::new(
        &caps,
        &format!("redis-url={url} gallery-key=sightline:staff reembed-interval=1"),
    );
    assert_eq!(
        live.push(&obama)[0].recognition_label.as_deref(),
        Some("unknown")
    );
    let g = gallery_of(
        "Barack Obama",
        "faces/face_recognition_examples/obama/obama.jpg",
    );
    let t = std::time::Instant::now();
    sightline_core::redis_store::push_gallery(&url, "sightline:staff", &g, false).unwrap();
    let msg = live
        .wait_for("facematch-gallery", 5)
        .expect("shared gallery reload");
    assert!(
        t.elapsed() <= std::time::Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(msg.get::<&str>("source").unwrap(), "redis:sightline:staff");
    assert_eq!(
        live.push(&obama)[0].recognition_label.as_deref(),
        Some("Barack Obama")
    );
}

#[test]
fn redis_down_at_start_warns_runs_locally_and_catches_up_when_it_returns() {
    init();
    let mut redis = sightline_testkit::RedisServer::start(&[]);
    let url = redis.url(None);
    let g = gallery_of(
        "Barack Obama",
        "faces/face_recognition_examples/obama/obama.jpg",
    );
    sightline_core::redis_store::push_gallery(&url, "sightline:gallery", &g, false).unwrap();
    redis.kill();
    let dir = tmp("redis-down");
    let local = dir.join("local.slg");
    enrol(
        &local,
        &[(
            "Joe Biden",
            &[data("faces/face_recognition_examples/biden/biden.jpg")],
        )],
    );
    let (biden, caps) = photo("faces/face_recognition_examples/biden/biden2.jpg", 480);
    let (obama, _) = photo("faces/face_recognition_examples/obama/obama2.jpg", 480);
    let mut live = Live::new(
        &caps,
        &format!(
            "redis-url={url} gallery={} reembed-interval=1",
            local.display()
        ),
    );
    let warning = {
        let bus = live.pipeline.bus().unwrap();
        bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Warning],
        )
        .expect("a warning")
    };
    let gst::MessageView::Warning(w) = warning.view() else {
        unreachable!()
    };
    let text = format!("{} {}", w.error(), w.debug().unwrap_or_default());
    assert!(
        text.contains("Shared gallery in Redis unavailable at start")
            && text.contains("local gallery (1 identities)"),
        "{text}"
    );
    assert!(text.contains("unreachable"), "{text}");
    assert_eq!(
        live.push(&biden)[0].recognition_label.as_deref(),
        Some("Joe Biden")
    );
    assert_eq!(
        live.push(&obama)[0].recognition_label.as_deref(),
        Some("unknown")
    );
    // Redis is back (empty after the restart): the node pushes again, the pipeline follows.
    redis.restart();
    sightline_core::redis_store::push_gallery(&url, "sightline:gallery", &g, false).unwrap();
    live.wait_for("facematch-gallery", 10)
        .expect("reloaded after reconnecting");
    assert_eq!(
        live.push(&obama)[0].recognition_label.as_deref(),
        Some("Barack Obama")
    );
    drop(live);
    std::fs::remove_dir_all(dir).unwrap();
}
