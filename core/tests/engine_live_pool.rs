//! The pool `sightline run` uses for live cameras ([`prefer_live_pool`]): one thread, so each
//! run is sequential on its caller's thread, while the cameras' streaming threads still run
//! the shared model side by side on up to one session per core, each getting its own
//! image's answer. (Its own test binary: the pool is made once per process.)

mod engine_common;

use engine_common::{answers_one_at_a_time, detect_side_by_side, photos};
use sightline_core::inference::{max_cpu_sessions, pool_spinning, pool_threads, prefer_live_pool};
use sightline_core::models;
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[test]
fn live_cameras_run_sequentially_each_yet_side_by_side() {
    if std::env::var_os("SIGHTLINE_THREADS").is_some()
        || std::env::var_os("SIGHTLINE_ORT_SPIN").is_some()
    {
        eprintln!("SIGHTLINE_THREADS / SIGHTLINE_ORT_SPIN set: they decide the pool");
        return;
    }
    assert!(prefer_live_pool(), "asked before any model was loaded");
    assert_eq!(pool_threads(), 1);
    assert!(!pool_spinning());

    let photos = photos();
    let model = models::resolve("yunet-n", "yunet-n").expect("model (run scripts/setup)");
    let (one, want) = answers_one_at_a_time(&model, &photos);
    assert!(!prefer_live_pool(), "too late once a model is loaded");

    detect_side_by_side(&model, &Arc::new(photos), &Arc::new(want), 4, 12);
    let stats = one.engine().stats();
    let made = stats.sessions.load(Ordering::SeqCst);
    let most = stats.most_at_once.load(Ordering::SeqCst);
    eprintln!("{made} session(s) with a pool of one thread; at most {most} runs at once");
    assert!(made >= 1 && made <= max_cpu_sessions(), "{made} sessions");
    assert!(most <= made, "{most} runs at once on {made} sessions");
    if max_cpu_sessions() >= 2 {
        // One pool thread no longer means one session: the cameras' runs overlapped.
        assert!(made >= 2 && most >= 2, "{made} sessions, {most} at once");
    }
}
