//! One model session for many facedetect instances, and batching across cameras. Its own test
//! binary (own process), so the session count is not disturbed by other tests.

mod common;

use common::*;
use gst::prelude::*;

#[test]
fn models_are_shared_between_instances_and_frames_are_batched() {
    init();
    let (buf, caps) = decode(&data("faces/misc/t1.jpg"), "BGRx", Some(640));
    let pipeline = gst::Pipeline::new();
    let mut srcs = Vec::new();
    for i in 0..2 {
        let src = gst_app::AppSrc::builder()
            .caps(&caps)
            .format(gst::Format::Time)
            .build();
        let det = gst::ElementFactory::make("facedetect")
            .name(format!("shared{i}"))
            .property("max-batch", 2u32)
            .property("batch-timeout", 200u32)
            .build()
            .unwrap();
        let sink = gst::ElementFactory::make("fakesink").build().unwrap();
        pipeline.add_many([src.upcast_ref(), &det, &sink]).unwrap();
        gst::Element::link_many([src.upcast_ref(), &det, &sink]).unwrap();
        srcs.push(src);
    }
    let before = sightline_core::inference::live_engines();
    pipeline.set_state(gst::State::Playing).unwrap();
    for i in 0..5u64 {
        for src in &srcs {
            let mut b = buf.copy();
            b.make_mut().set_pts(gst::ClockTime::from_mseconds(40 * i));
            src.push_buffer(b).unwrap();
        }
    }
    for src in &srcs {
        src.end_of_stream().unwrap();
    }
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap();
    assert_eq!(msg.type_(), gst::MessageType::Eos);
    assert_eq!(
        sightline_core::inference::live_engines(),
        before.max(1),
        "one session for both"
    );
    let model = sightline_core::models::resolve("yunet-n", "yunet-n").unwrap();
    let engine = sightline_core::inference::Engine::shared(&model, &Default::default()).unwrap();
    assert_eq!(
        engine.clients(),
        3,
        "two elements and this handle share one engine"
    );
    let stats = engine.stats();
    assert!(
        stats
            .largest_batch
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2,
        "frames of the two cameras were batched"
    );
    drop(engine);
    pipeline.set_state(gst::State::Null).unwrap();
}
