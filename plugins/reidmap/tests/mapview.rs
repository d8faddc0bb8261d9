//! `mapview` draws the people of a shared map where they are, in their colour, with a trail,
//! hides people not seen lately, and fails clearly on a bad area or floor plan.

use gst::prelude::*;
use sightline_core::mapstate::{MapConfig, shared_map};

const W: u32 = 400;
const H: u32 = 300;
/// Map area shown: 20 m x 15 m, so 20 px per metre.
const EXTENT: [f64; 4] = [0.0, 0.0, 20.0, 15.0];

fn init() {
    gst::init().unwrap();
    gstreidmap::plugin_register_static().unwrap();
}

fn to_px(x: f64, y: f64) -> (usize, usize) {
    let [x0, y0, x1, y1] = EXTENT;
    (
        ((x - x0) / (x1 - x0) * W as f64) as usize,
        ((y1 - y) / (y1 - y0) * H as f64) as usize,
    )
}

fn now() -> u64 {
    gst::SystemClock::obtain().time().nseconds()
}

/// Renders `frames` frames of map `map` (non-live) and returns the last one, RGBx.
fn render(map: &str, extra: &str, frames: usize) -> Result<Vec<u8>, String> {
    let desc = format!(
        "mapview map={map} is-live=false width={W} height={H} min-x={} min-y={} max-x={} max-y={} {extra} ! appsink name=s sync=false",
        EXTENT[0], EXTENT[1], EXTENT[2], EXTENT[3]
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
    let started = p.set_state(gst::State::Playing).is_ok();
    let mut last = None;
    for _ in 0..if started { frames } else { 0 } {
        match sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
            Some(s) => {
                let caps = s.caps().unwrap().structure(0).unwrap().to_owned();
                assert_eq!(caps.get::<&str>("format").unwrap(), "RGBx");
                assert_eq!(caps.get::<i32>("width").unwrap(), W as i32);
                let map = s.buffer().unwrap().map_readable().unwrap();
                assert_eq!(map.len(), (W * H * 4) as usize);
                last = Some(map.to_vec());
            }
            None => break,
        }
    }
    let err = p
        .bus()
        .unwrap()
        .pop_filtered(&[gst::MessageType::Error])
        .map(|m| match m.view() {
            gst::MessageView::Error(e) => format!(
                "{} ({})",
                e.error(),
                e.debug().map(|d| d.to_string()).unwrap_or_default()
            ),
            _ => unreachable!(),
        });
    p.set_state(gst::State::Null).unwrap();
    match (err, last) {
        (Some(e), _) => Err(e),
        (None, Some(f)) => Ok(f),
        (None, None) => Err("no frame".into()),
    }
}

fn px(frame: &[u8], (x, y): (usize, usize)) -> [u8; 3] {
    let i = (y * W as usize + x) * 4;
    [frame[i], frame[i + 1], frame[i + 2]]
}

#[test]
fn people_are_drawn_at_their_map_position_in_their_colour() {
    init();
    let map = shared_map("mapview-test", MapConfig::default());
    let t = now();
    let (a, b) = {
        let mut m = map.lock().unwrap();
        // Person a walks along y = 5.5 from x = 2.25 to 5.25 in the last 3 s (off the grid
        // lines); b stands at (15.5, 10.5).
        for k in 0..6u64 {
            let x = 2.25 + 0.5 * k as f64;
            m.observe(
                "cam",
                1,
                [x, 5.5],
                None,
                t - 3_000_000_000 + k * 500_000_000,
            );
        }
        let (a, _) = m.observe("cam", 1, [5.25, 5.5], None, t);
        let (b, _) = m.observe("cam", 2, [15.5, 10.5], None, t);
        (a, b)
    };
    assert_ne!(a, b);
    let frame = render("mapview-test", "", 2).unwrap();
    let people = map.lock().unwrap().snapshot(now(), 5_000_000_000);
    for p in &people {
        let at = to_px(p.position[0], p.position[1]);
        assert_eq!(
            px(&frame, at),
            gstreidmap::mapview::colour_of(p.global_id),
            "person {} at {:?} (pixel {at:?})",
            p.global_id,
            p.position
        );
    }
    assert_ne!(
        gstreidmap::mapview::colour_of(a),
        gstreidmap::mapview::colour_of(b)
    );
    // The trail of a: its oldest points are drawn, faded between the background and its colour.
    let bg = [245u8, 245, 240];
    let col = gstreidmap::mapview::colour_of(a);
    let trail = &people.iter().find(|p| p.global_id == a).unwrap().trail;
    let first = trail.first().unwrap().1;
    let tp = px(&frame, to_px(first[0], first[1]));
    assert!(
        tp != bg && (0..3).all(|k| tp[k] >= bg[k].min(col[k]) && tp[k] <= bg[k].max(col[k])),
        "trail pixel {tp:?} is not between {bg:?} and {col:?}"
    );
    // Far from everyone: the grid background (or a grid line).
    let empty = px(&frame, to_px(10.5, 2.5));
    assert_eq!(empty, bg);
    let line = px(&frame, to_px(10.0, 2.5));
    assert_eq!(line, [170, 170, 170], "every 5 m a darker line");
}

#[test]
fn people_not_seen_lately_are_not_drawn() {
    init();
    let map = shared_map("mapview-test-old", MapConfig::default());
    let (old, pos) =
        map.lock()
            .unwrap()
            .observe("cam", 1, [7.5, 7.5], None, now() - 20_000_000_000);
    let frame = render("mapview-test-old", "hide-after-seconds=5", 2).unwrap();
    assert_ne!(
        px(&frame, to_px(pos[0], pos[1])),
        gstreidmap::mapview::colour_of(old)
    );
    assert_eq!(px(&frame, to_px(pos[0], pos[1])), [245, 245, 240]);
    // With a longer window it is drawn.
    let frame = render("mapview-test-old", "hide-after-seconds=60", 2).unwrap();
    assert_eq!(
        px(&frame, to_px(pos[0], pos[1])),
        gstreidmap::mapview::colour_of(old)
    );
}

#[test]
fn a_floor_plan_is_the_background() {
    init();
    let dir = std::env::temp_dir().join(format!("sl-mapview-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plan = dir.join("plan.png");
    // A uniform plan of colour (0x20, 0x60, 0xa0), a quarter of the output size.
    let p = gst::parse::launch(&format!(
        "videotestsrc pattern=solid-color foreground-color=0xff2060a0 num-buffers=1 ! video/x-raw,width=100,height=75 ! pngenc ! filesink location=\"{}\"",
        plan.display()
    ))
    .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    p.bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos])
        .unwrap();
    p.set_state(gst::State::Null).unwrap();
    let frame = render(
        "mapview-test-plan",
        &format!("floor-plan=\"{}\"", plan.display()),
        1,
    )
    .unwrap();
    for at in [
        (0, 0),
        (W as usize / 2, H as usize / 2),
        (W as usize - 1, H as usize - 1),
    ] {
        let c = px(&frame, at);
        assert!(
            c.iter()
                .zip([0x20u8, 0x60, 0xa0])
                .all(|(a, b)| a.abs_diff(b) <= 2),
            "{at:?}: {c:?}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_bad_area_or_floor_plan_is_a_clear_error() {
    init();
    let e = render("mapview-test-bad", "floor-plan=/nonexistent/plan.png", 1).unwrap_err();
    assert!(
        e.contains("floor plan") && e.contains("/nonexistent/plan.png"),
        "{e}"
    );
    let p = gst::parse::launch("mapview is-live=false min-x=5 max-x=5 ! appsink name=s sync=false")
        .unwrap();
    let _ = p.set_state(gst::State::Playing);
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .unwrap();
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    assert!(e.error().to_string().contains("max-x"), "{}", e.error());
    p.set_state(gst::State::Null).unwrap();
}
