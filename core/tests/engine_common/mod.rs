//! What the engine tests share: photos with faces, and detectors on one shared engine run
//! side by side.

use sightline_core::detect::{DetectParams, FaceDetector};
use sightline_core::inference::{Engine, EngineOptions};
use sightline_core::models;
use sightline_core::postprocess::Detection;
use sightline_core::preprocess::{ImageView, PixelFormat, Plane};
use std::path::PathBuf;
use std::sync::{Arc, Barrier};

fn shared() -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

pub struct Photo {
    pub name: &'static str,
    data: Vec<u8>,
    width: usize,
    height: usize,
    stride: usize,
}

impl Photo {
    pub fn view(&self) -> ImageView<'_> {
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
