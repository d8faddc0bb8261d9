//! Several cameras' streaming threads share one model: on CPU their runs go side by side on
//! up to one session per thread of the inference pool, and every thread still gets exactly
//! its own image's answer.

use sightline_core::detect::{DetectParams, FaceDetector};
use sightline_core::inference::{Engine, EngineOptions, pool_threads};
use sightline_core::models;
use sightline_core::postprocess::Detection;
use sightline_core::preprocess::{ImageView, PixelFormat, Plane};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};

fn shared() -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

struct Photo {
    name: &'static str,
    data: Vec<u8>,
    width: usize,
    height: usize,
    stride: usize,
}

impl Photo {
    fn view(&self) -> ImageView<'_> {
        ImageView::new(
            PixelFormat::Bgr,
            self.width,
            self.height,
            &[Plane {
                data: &self.data,
                stride: self.stride,
            }],
        )
        .unwrap()
    }
}

fn same(a: &[Detection], b: &[Detection]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            (a.x1 - b.x1).abs() < 1e-3
                && (a.y1 - b.y1).abs() < 1e-3
                && (a.x2 - b.x2).abs() < 1e-3
                && (a.y2 - b.y2).abs() < 1e-3
                && (a.score - b.score).abs() < 1e-4
        })
}

fn photos() -> Vec<Photo> {
    gst::init().unwrap();
    let faces = shared().join("data/faces/face_recognition_examples");
    [
        "group/obama_and_biden.jpg",
        "group/two_people.jpg",
        "obama/obama.jpg",
        "biden/biden.jpg",
        "variants/obama-720p.jpg",
    ]
    .iter()
    .map(|name| {
        let img = sightline_core::video::decode_image(&faces.join(name)).unwrap();
        Photo {
            name,
            data: img.data,
            width: img.width,
            height: img.height,
            stride: img.stride,
        }
    })
    .collect()
}

/// `threads` detectors on one shared engine of `model`, released together, each detecting
/// `rounds` photos in turn: every answer must equal the one-at-a-time answer in `want`.
fn detect_side_by_side(
    model: &models::ResolvedModel,
    photos: &Arc<Vec<Photo>>,
    want: &Arc<Vec<Vec<Detection>>>,
    threads: usize,
    rounds: usize,
) {
    let params = DetectParams::default();
    let start = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (photos, want, start) = (photos.clone(), want.clone(), start.clone());
            let mut det =
                FaceDetector::new(Engine::shared(model, &EngineOptions::default()).unwrap())
                    .unwrap();
            std::thread::spawn(move || {
                start.wait();
                for r in 0..rounds {
                    let i = (t + r) % photos.len();
                    let got = det.detect(&photos[i].view(), &params).expect("answered");
                    assert!(
                        same(&got, &want[i]),
                        "thread {t}, {}: {got:?}, alone {:?}",
                        photos[i].name,
                        want[i]
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn cameras_sharing_a_model_run_side_by_side_and_get_their_own_answers() {
    let photos = photos();
    let model = models::resolve("yunet-n", "yunet-n").expect("model (run scripts/setup)");
    let params = DetectParams::default();
    // One at a time first: the answers every thread must get.
    let mut one = FaceDetector::new(Engine::shared(&model, &EngineOptions::default()).unwrap())
        .expect("engine (ORT_DYLIB_PATH)");
    let want: Vec<Vec<Detection>> = photos
        .iter()
        .map(|p| one.detect(&p.view(), &params).unwrap())
        .collect();
    assert!(want.iter().all(|w| !w.is_empty()), "a face in every photo");
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
    assert!(made >= 1 && made <= pool_threads(), "{made} sessions");
    assert!(most <= made, "{most} runs at once on {made} sessions");
    if pool_threads() >= 2 {
        // The runs overlapped.
        assert!(most >= 2, "runs never overlapped ({most})");
    }
}

/// When no further session can be loaded (here: the model file is gone after the first was
/// loaded; in the field, memory), the runs share the sessions there are: every frame is
/// still answered, and the reason is given once.
#[test]
fn runs_share_the_loaded_session_when_no_further_one_can_be_made() {
    if pool_threads() < 2 {
        eprintln!("one pool thread: a single session is all there ever is");
        return;
    }
    let photos = Arc::new(photos());
    let mut model = models::resolve("yunet-n", "yunet-n").expect("model (run scripts/setup)");
    let copy = std::env::temp_dir().join(format!("sightline-refusal-{}.onnx", std::process::id()));
    std::fs::copy(&model.path, &copy).unwrap();
    model.path = copy.clone();
    let mut one = FaceDetector::new(Engine::shared(&model, &EngineOptions::default()).unwrap())
        .expect("engine (ORT_DYLIB_PATH)");
    let params = DetectParams::default();
    let want: Arc<Vec<Vec<Detection>>> = Arc::new(
        photos
            .iter()
            .map(|p| one.detect(&p.view(), &params).unwrap())
            .collect(),
    );
    std::fs::remove_file(&copy).unwrap();

    detect_side_by_side(&model, &photos, &want, 4, 12);
    let engine = one.engine();
    assert_eq!(engine.stats().sessions.load(Ordering::SeqCst), 1);
    assert_eq!(engine.stats().most_at_once.load(Ordering::SeqCst), 1);
    let why = engine.take_refusal().expect("the refusal is reported");
    assert!(why.contains("sightline-refusal"), "names the file: {why}");
    assert_eq!(engine.take_refusal(), None, "said once");
}
