//! Enrolment: one embedding per photo of a person, and galleries made from a directory
//! `GALLERY/<identity name>/*.jpg|png`.

use crate::detect::{DetectParams, FaceDetector};
use crate::embed::FaceEmbedder;
use crate::gallery::Gallery;
use crate::postprocess::Detection;
use crate::preprocess::ImageView;
use crate::video::decode_image;
use std::path::{Path, PathBuf};

/// What to do with a photo that shows several faces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FacePolicy {
    /// Refuse it (default): the photo must show one person.
    Single,
    /// Take the largest face.
    Largest,
    /// The face at this point (pixels of the photo): the one whose box holds it (the
    /// nearest centre when boxes overlap); none there is an error.
    At(f32, f32),
}

/// Faces smaller than this fraction of the largest face's area are background faces and do
/// not make a photo "several faces".
const BACKGROUND_AREA: f32 = 0.25;

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("{0}: no face found (enrolment needs a clear, frontal photo of the person)")]
    NoFace(String),
    #[error(
        "{path}: {count} faces found; enrol a photo of one person, or pass --largest to take the largest face"
    )]
    SeveralFaces { path: String, count: usize },
    #[error("{path}: no face at ({x:.0}, {y:.0}); {count} face(s) elsewhere on the photo")]
    NoFaceAt {
        path: String,
        x: f32,
        y: f32,
        count: usize,
    },
    #[error("{0}")]
    Decode(String),
    #[error("{path}: {err}")]
    Model { path: String, err: String },
}

/// Detector settings for enrolment photos: 640 px input (the main face of a portrait is then
/// 100-400 px, where YuNet is most reliable) and the element's default score threshold.
pub fn enrol_params() -> DetectParams {
    DetectParams::default()
}

/// The face to enrol from a photo, per `policy`.
pub fn pick_face(
    faces: &[Detection],
    policy: FacePolicy,
    origin: &str,
) -> Result<Detection, EnrollError> {
    let largest = faces
        .iter()
        .max_by(|a, b| a.area().total_cmp(&b.area()))
        .ok_or_else(|| EnrollError::NoFace(origin.to_string()))?;
    if let FacePolicy::At(x, y) = policy {
        let centre_distance = |f: &Detection| {
            let (cx, cy) = ((f.x1 + f.x2) / 2.0, (f.y1 + f.y2) / 2.0);
            (cx - x).powi(2) + (cy - y).powi(2)
        };
        return faces
            .iter()
            .filter(|f| (f.x1..=f.x2).contains(&x) && (f.y1..=f.y2).contains(&y))
            .min_by(|a, b| centre_distance(a).total_cmp(&centre_distance(b)))
            .cloned()
            .ok_or_else(|| EnrollError::NoFaceAt {
                path: origin.to_string(),
                x,
                y,
                count: faces.len(),
            });
    }
    let big = faces
        .iter()
        .filter(|f| f.area() >= BACKGROUND_AREA * largest.area())
        .count();
    if policy == FacePolicy::Single && big > 1 {
        return Err(EnrollError::SeveralFaces {
            path: origin.to_string(),
            count: big,
        });
    }
    Ok(largest.clone())
}

/// The embedding of the person in `img` (and the face used).
pub fn embed_photo(
    det: &mut FaceDetector,
    emb: &FaceEmbedder,
    img: &ImageView,
    policy: FacePolicy,
    origin: &str,
) -> Result<(Vec<f32>, Detection), EnrollError> {
    let model = |e: &dyn std::fmt::Display| EnrollError::Model {
        path: origin.to_string(),
        err: e.to_string(),
    };
    let faces = det.detect(img, &enrol_params()).map_err(|e| model(&e))?;
    let face = pick_face(&faces, policy, origin)?;
    let lm = face
        .landmarks
        .ok_or_else(|| model(&"the detector gave no landmarks"))?;
    let v = emb.embed(img, &[lm]).map_err(|e| model(&e))?.remove(0);
    Ok((v, face))
}

/// Decodes and embeds a photo in memory (an upload); `origin` names it in errors.
pub fn embed_bytes(
    det: &mut FaceDetector,
    emb: &FaceEmbedder,
    bytes: &[u8],
    policy: FacePolicy,
    origin: &str,
) -> Result<(Vec<f32>, Detection), EnrollError> {
    // Only JPEG and PNG, by their signatures: other formats' decoders may stall on odd
    // input (a 1x1 GIF never prerolls with GStreamer 1.22), and a request must not hang.
    let jpeg = bytes.starts_with(&[0xFF, 0xD8, 0xFF]);
    let png = bytes.starts_with(b"\x89PNG\r\n\x1a\n");
    if !jpeg && !png {
        return Err(EnrollError::Decode(format!(
            "{origin}: not a JPEG or PNG image"
        )));
    }
    // An upload waits less than a file.
    let img = crate::video::decode_image_bytes(bytes, origin, std::time::Duration::from_secs(3))
        .map_err(EnrollError::Decode)?;
    let view = img
        .view()
        .map_err(|e| EnrollError::Decode(format!("{origin}: {e}")))?;
    embed_photo(det, emb, &view, policy, origin)
}

/// Decodes and embeds a photo file.
pub fn embed_file(
    det: &mut FaceDetector,
    emb: &FaceEmbedder,
    path: &Path,
    policy: FacePolicy,
) -> Result<(Vec<f32>, Detection), EnrollError> {
    let img = decode_image(path).map_err(EnrollError::Decode)?;
    let view = img
        .view()
        .map_err(|e| EnrollError::Decode(format!("{}: {e}", path.display())))?;
    embed_photo(det, emb, &view, policy, &path.display().to_string())
}

pub fn is_photo(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        matches!(
            e.to_ascii_lowercase().as_str(),
            "jpg" | "jpeg" | "png" | "pgm" | "bmp" | "webp"
        )
    })
}

/// Photos of a directory gallery: (identity name, photo path), sorted.
pub fn list_directory(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let read = |d: &Path| {
        std::fs::read_dir(d)
            .map_err(|e| format!("cannot read gallery directory {}: {e}", d.display()))
    };
    let mut out = Vec::new();
    for entry in read(dir)?.flatten() {
        let p = entry.path();
        if !p.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        for photo in read(&p)?.flatten() {
            let f = photo.path();
            if f.is_file() && is_photo(&f) {
                out.push((name.clone(), f));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A gallery enrolled from `dir`: photos without a usable face are skipped and reported.
pub fn gallery_from_directory(
    dir: &Path,
    det: &mut FaceDetector,
    emb: &FaceEmbedder,
) -> Result<(Gallery, Vec<String>), String> {
    let mut g = Gallery::new(emb.model_name(), emb.dims());
    let mut skipped = Vec::new();
    for (name, photo) in list_directory(dir)? {
        match embed_file(det, emb, &photo, FacePolicy::Single) {
            Ok((v, _)) => {
                g.add(&name, &v).map_err(|e| e.to_string())?;
            }
            Err(e) => skipped.push(e.to_string()),
        }
    }
    Ok((g, skipped))
}

/// A cheap fingerprint of a gallery file or directory (names, sizes, mtimes) for hot reload.
pub fn fingerprint(path: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let md = std::fs::metadata(path).ok()?;
    if md.is_dir() {
        for (name, photo) in list_directory(path).ok()? {
            name.hash(&mut h);
            photo.hash(&mut h);
            if let Ok(m) = std::fs::metadata(&photo) {
                m.len().hash(&mut h);
                m.modified().ok().hash(&mut h);
            }
        }
    } else {
        md.len().hash(&mut h);
        md.modified().ok().hash(&mut h);
    }
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, w: f32) -> Detection {
        Detection {
            x1: x,
            y1: 0.0,
            x2: x + w,
            y2: w,
            score: 0.9,
            landmarks: None,
            class_id: 0,
        }
    }

    #[test]
    fn policy_single_refuses_two_people_but_ignores_background_faces() {
        assert!(matches!(
            pick_face(&[], FacePolicy::Single, "p"),
            Err(EnrollError::NoFace(_))
        ));
        let one_plus_tiny = [face(0.0, 100.0), face(200.0, 30.0)];
        assert_eq!(
            pick_face(&one_plus_tiny, FacePolicy::Single, "p")
                .unwrap()
                .x1,
            0.0
        );
        let two = [face(0.0, 100.0), face(200.0, 90.0)];
        let err = pick_face(&two, FacePolicy::Single, "p")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("2 faces") && err.contains("--largest"),
            "{err}"
        );
        assert_eq!(pick_face(&two, FacePolicy::Largest, "p").unwrap().x1, 0.0);
    }

    #[test]
    fn a_point_chooses_the_face_of_a_group_photo() {
        let two = [face(0.0, 100.0), face(200.0, 90.0)];
        let at = |x, y| pick_face(&two, FacePolicy::At(x, y), "p");
        assert_eq!(at(250.0, 40.0).unwrap().x1, 200.0);
        assert_eq!(at(10.0, 10.0).unwrap().x1, 0.0);
        let err = at(150.0, 40.0).unwrap_err().to_string();
        assert!(
            err.contains("no face at (150, 40)") && err.contains("2 face(s)"),
            "{err}"
        );
        // Overlapping boxes: the nearest centre.
        let nested = [face(0.0, 100.0), face(40.0, 20.0)];
        let p = pick_face(&nested, FacePolicy::At(50.0, 10.0), "p").unwrap();
        assert_eq!(p.x1, 40.0);
        assert!(matches!(
            pick_face(&[], FacePolicy::At(1.0, 1.0), "p"),
            Err(EnrollError::NoFace(_))
        ));
    }
}
