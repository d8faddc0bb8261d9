//! Several cameras' streaming threads share one model: on CPU their runs go side by side on
//! up to one session per core, and every thread still gets exactly its own image's answer.

mod engine_common;

use engine_common::{answers_one_at_a_time, detect_side_by_side, photos};
use sightline_core::inference::{max_cpu_sessions, pool_threads};
use sightline_core::models;
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[test]
fn cameras_sharing_a_model_run_side_by_side_and_get_their_own_answers() {
    let photos = photos();
    let model = models::resolve("yunet-n", "yunet-n").expect("model (run scripts/setup)");
    // One at a time first: the answers every thread must get.
    let (one, want) = answers_one_at_a_time(&model, &photos);
    let stats = || one.engine().stats();
    assert_eq!(stats().sessions.load(Ordering::SeqCst), 1);

    // Four threads, 48 runs, released together.
    detect_side_by_side(&model, &Arc::new(photos), &Arc::new(want), 4, 12);
    let made = stats().sessions.load(Ordering::SeqCst);
    let most = stats().most_at_once.load(Ordering::SeqCst);
    eprintln!(
        "{made} session(s) for {} pool thread(s); at most {most} runs at once",
        pool_threads()
    );
    assert!(made >= 1 && made <= max_cpu_sessions(), "{made} sessions");
    assert!(most <= made, "{most} runs at once on {made} sessions");
    if max_cpu_sessions() >= 2 {
        // The runs overlapped.
        assert!(most >= 2, "runs never overlapped ({most})");
    }
}

/// When no further session can be loaded (here: the model file is gone after the first was
/// loaded; in the field, memory), the runs share the sessions there are: every frame is
/// still answered, and the reason is given once.
#[test]
fn runs_share_the_loaded_session_when_no_further_one_can_be_made() {
    if max_cpu_sessions() < 2 {
        eprintln!("one core: a single session is all there ever is");
        return;
    }
    let photos = Arc::new(photos());
    let mut model = models::resolve("yunet-n", "yunet-n").expect("model (run scripts/setup)");
    let copy = std::env::temp_dir().join(format!("sightline-refusal-{}.onnx", std::process::id()));
    std::fs::copy(&model.path, &copy).unwrap();
    model.path = copy.clone();
    let (one, want) = answers_one_at_a_time(&model, &photos);
    let want = Arc::new(want);
    std::fs::remove_file(&copy).unwrap();

    detect_side_by_side(&model, &photos, &want, 4, 12);
    let engine = one.engine();
    assert_eq!(engine.stats().sessions.load(Ordering::SeqCst), 1);
    assert_eq!(engine.stats().most_at_once.load(Ordering::SeqCst), 1);
    let why = engine.take_refusal().expect("the refusal is reported");
    assert!(why.contains("sightline-refusal"), "names the file: {why}");
    assert_eq!(engine.take_refusal(), None, "said once");
}
