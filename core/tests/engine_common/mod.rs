//! What the engine tests share: photos with faces, and detectors on one shared engine run
//! side by side.

use sightline_core::detect::{DetectParams, FaceDetector};
use sightline_core::inference::{Engine, EngineOptions};
use sightline_core::models;
use sightline_core::postprocess::Detection;
use sightline_core::preprocess::ImageView;
use sightline_core::video::DecodedImage;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};

fn shared() -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

pub struct Photo {
    pub name: &'static str,
    img: DecodedImage,
}

impl Photo {
    pub fn view(&self) -> ImageView<'_> {
        self.img.view().unwrap()
    }
}

pub fn same(a: &[Detection], b: &[Detection]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            (a.x1 - b.x1).abs() < 1e-3
                && (a.y1 - b.y1).abs() < 1e-3
                && (a.x2 - b.x2).abs() < 1e-3
                && (a.y2 - b.y2).abs() < 1e-3
                && (a.score - b.score).abs() < 1e-4
        })
}

pub fn photos() -> Vec<Photo> {
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
    .map(|name| Photo {
        name,
        img: sightline_core::video::decode_image(&faces.join(name)).unwrap(),
    })
    .collect()
}

/// `threads` detectors on one shared engine of `model`, released together, each detecting
/// `rounds` photos in turn: every answer must equal the one-at-a-time answer in `want`.
pub fn detect_side_by_side(
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

/// A detector on the shared engine of `model`, and its answers for `photos` one at a time
/// (what every thread must get when they run side by side); every photo has a face.
pub fn answers_one_at_a_time(
    model: &models::ResolvedModel,
    photos: &[Photo],
) -> (FaceDetector, Vec<Vec<Detection>>) {
    let params = DetectParams::default();
    let mut one = FaceDetector::new(Engine::shared(model, &EngineOptions::default()).unwrap())
        .expect("engine (ORT_DYLIB_PATH)");
    let want: Vec<Vec<Detection>> = photos
        .iter()
        .map(|p| one.detect(&p.view(), &params).unwrap())
        .collect();
    assert!(want.iter().all(|w| !w.is_empty()), "a face in every photo");
    (one, want)
}
