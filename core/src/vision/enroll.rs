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

/// A photo's face as enrolment takes it: its embedding, the face, and how good a reference it
/// makes.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub embedding: Vec<f32>,
    pub face: Detection,
    pub review: PhotoReview,
}

/// How bad a finding about an enrolment photo is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Enrolled, but a better photo would make a better reference.
    Warn,
    /// Not enrolled: the photo would make a poor reference.
    Refuse,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// What is wrong, for the operator: the measured value and the limit.
    pub reason: String,
}

/// The quality of an enrolment photo's face (see [`review_face`] for the limits).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PhotoReview {
    /// Shorter side of the face box, photo pixels.
    pub size: f32,
    /// Laplacian variance over the face ([`crate::quality::sharpness`]).
    pub sharpness: f32,
    /// 1 frontal, 0 profile ([`crate::quality::frontality`]).
    pub frontality: f32,
    /// Fraction of the face box outside the photo (a face cut by the frame edge).
    pub outside: f32,
    /// Similarity to the person's other photos (the mean of their embeddings), when there
    /// are any.
    pub similarity: Option<f32>,
    pub findings: Vec<Finding>,
}

impl PhotoReview {
    pub fn refused(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Refuse)
    }

    /// The findings, "; "-separated (empty when none).
    pub fn summary(&self) -> String {
        self.findings
            .iter()
            .map(|f| f.reason.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Faces smaller than this are refused: facematch never matches them (its default
/// min-face-size), so they make no reference either.
pub const REFUSE_SIZE: f32 = 32.0;
/// Faces smaller than this are enrolled with a warning (the embedders are reliable from ~40 px).
pub const WARN_SIZE: f32 = 48.0;
/// More than this fraction of the face region of the aligned crop outside the photo is a
/// face cut by the frame edge: refused ([`crate::quality::aligned`]). Measured: the tight
/// shared crops (150x150, face 120-134 px) reach 0.14, ORL 0.12, photos 0; a portrait cut
/// through the eye 0.30, through the forehead 0.30.
pub const REFUSE_OUTSIDE: f32 = 0.25;
/// More than this: enrolled with a warning (a portrait cut through the cheek: 0.18).
pub const WARN_OUTSIDE: f32 = 0.15;
/// Sharpness of the aligned crop ([`crate::quality::aligned`]) below this is heavy blur:
/// refused. Measured: the shared sets' lowest is 50 (ORL; crops 173, photos 432); a 227 px
/// portrait blurred with sigma 5 px gives 20, sigma 10 px 3.
pub const REFUSE_SHARPNESS: f32 = 10.0;
/// Below this: enrolled with a warning (soft).
pub const WARN_SHARPNESS: f32 = 25.0;
/// Frontality below this is a turned head: enrolled with a warning.
pub const WARN_FRONTALITY: f32 = 0.4;

/// The quality findings about the face `d` of a photo `img`.
pub fn review_face(img: &ImageView, d: &Detection) -> PhotoReview {
    let size = d.width().min(d.height());
    let frontality = d.landmarks.as_ref().map_or(0.0, crate::quality::frontality);
    let (outside, sharpness) = d
        .landmarks
        .as_ref()
        .map_or((1.0, 0.0), |lm| crate::quality::aligned(img, lm));
    let mut findings = Vec::new();
    let mut add = |severity, reason: String| findings.push(Finding { severity, reason });
    if outside > REFUSE_OUTSIDE {
        add(
            Severity::Refuse,
            format!(
                "face cut by the edge of the photo ({:.0} % of it outside, at most {:.0} %)",
                outside * 100.0,
                REFUSE_OUTSIDE * 100.0
            ),
        );
    } else if outside > WARN_OUTSIDE {
        add(
            Severity::Warn,
            format!(
                "face close to the edge of the photo ({:.0} % of it outside)",
                outside * 100.0
            ),
        );
    }
    if size < REFUSE_SIZE {
        add(
            Severity::Refuse,
            format!(
                "face too small ({:.0} px, at least {REFUSE_SIZE:.0} px needed)",
                size
            ),
        );
    } else if size < WARN_SIZE {
        add(
            Severity::Warn,
            format!(
                "small face ({:.0} px; {WARN_SIZE:.0} px or more is better)",
                size
            ),
        );
    }
    if sharpness < REFUSE_SHARPNESS {
        add(
            Severity::Refuse,
            format!(
                "face blurred (sharpness {:.1}, at least {REFUSE_SHARPNESS:.0} needed)",
                sharpness
            ),
        );
    } else if sharpness < WARN_SHARPNESS {
        add(
            Severity::Warn,
            format!(
                "soft face (sharpness {:.1}; {WARN_SHARPNESS:.0} or more is better)",
                sharpness
            ),
        );
    }
    if d.landmarks.is_some() && frontality < WARN_FRONTALITY {
        add(
            Severity::Warn,
            format!(
                "head turned (frontality {:.2}; a frontal photo is a better reference)",
                frontality
            ),
        );
    }
    PhotoReview {
        size,
        sharpness,
        frontality,
        outside,
        similarity: None,
        findings,
    }
}

/// Adds to `review` how the photo's `embedding` compares with the person's `others` (their
/// other photos: already enrolled, or enrolled with it): below `threshold` (the model's match
/// threshold, at which facematch would not take them for the same person) it is refused as
/// inconsistent: likely someone else, or a photo too unlike the rest to help.
pub fn review_consistency(
    review: &mut PhotoReview,
    embedding: &[f32],
    others: &[&[f32]],
    threshold: f32,
) {
    if others.is_empty() {
        return;
    }
    let mut mean = vec![0f32; embedding.len()];
    for o in others {
        for (m, x) in mean.iter_mut().zip(o.iter()) {
            *m += x;
        }
    }
    let sim = crate::embed::cosine(&crate::embed::l2_normalised(&mean), embedding);
    review.similarity = Some(sim);
    if sim < threshold {
        review.findings.push(Finding {
            severity: Severity::Refuse,
            reason: format!(
                "does not look like the person's {} other photo(s) (similarity {sim:.2}, below the match threshold {threshold:.2}): someone else?",
                others.len()
            ),
        });
    }
}

/// The embedding of the person in `img`, the face used and its review.
pub fn embed_photo(
    det: &mut FaceDetector,
    emb: &FaceEmbedder,
    img: &ImageView,
    policy: FacePolicy,
    origin: &str,
) -> Result<Enrolled, EnrollError> {
    let model = |e: &dyn std::fmt::Display| EnrollError::Model {
        path: origin.to_string(),
        err: e.to_string(),
    };
    let faces = det.detect(img, &enrol_params()).map_err(|e| model(&e))?;
    let face = pick_face(&faces, policy, origin)?;
    let lm = face
        .landmarks
        .ok_or_else(|| model(&"the detector gave no landmarks"))?;
    // The reference is the face averaged with its mirror: measured free of cost at enrolment
    // and never worse for the matching that follows (docs/benchmarks.md).
    let v = emb
        .embed_with_mirror(img, &[lm])
        .map_err(|e| model(&e))?
        .remove(0);
    let review = review_face(img, &face);
    Ok(Enrolled {
        embedding: v,
        face,
        review,
    })
}

/// Decodes and embeds a photo in memory (an upload); `origin` names it in errors.
pub fn embed_bytes(
    det: &mut FaceDetector,
    emb: &FaceEmbedder,
    bytes: &[u8],
    policy: FacePolicy,
    origin: &str,
) -> Result<Enrolled, EnrollError> {
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
) -> Result<Enrolled, EnrollError> {
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
            Ok(e) => {
                g.add(&name, &e.embedding).map_err(|e| e.to_string())?;
            }
            Err(e) => skipped.push(e.to_string()),
        }
    }
    Ok((g, skipped))
}

/// Embeds the photos of ground-truth face sets (see [`crate::calibrate::face_sets`]; paths
/// relative to `root`) as the live path does (the largest face of each photo; `mirror`: each
/// face averaged with its mirror image), and each person's first photo as enrolment does.
/// Photos with no face are left out of their person and reported.
pub fn embed_face_sets(
    det: &mut FaceDetector,
    emb: &FaceEmbedder,
    root: &Path,
    sets: &std::collections::BTreeMap<String, Vec<(String, Vec<String>)>>,
    mirror: bool,
) -> (Vec<crate::calibrate::FaceSet>, Vec<String>) {
    let mut missing = Vec::new();
    let one = |path: &Path, det: &mut FaceDetector| -> Result<(Vec<f32>, Vec<f32>), String> {
        let img = decode_image(path)?;
        let view = img.view().map_err(|e| format!("{}: {e}", path.display()))?;
        let origin = path.display().to_string();
        let faces = det
            .detect(&view, &enrol_params())
            .map_err(|e| format!("{origin}: {e}"))?;
        let face = pick_face(&faces, FacePolicy::Largest, &origin).map_err(|e| e.to_string())?;
        let lm = [face.landmarks.ok_or("no landmarks")?];
        let fail = |e: crate::embed::EmbedError| format!("{origin}: {e}");
        let reference = emb.embed_with_mirror(&view, &lm).map_err(fail)?.remove(0);
        let live = if mirror {
            reference.clone()
        } else {
            emb.embed(&view, &lm).map_err(fail)?.remove(0)
        };
        Ok((live, reference))
    };
    let mut out = Vec::new();
    for (kind, ids) in sets {
        let mut people = Vec::new();
        for (name, paths) in ids {
            let (mut embeddings, mut reference) = (Vec::new(), None);
            for p in paths {
                match one(&root.join(p), det) {
                    Ok((live, r)) => {
                        reference.get_or_insert(r);
                        embeddings.push(live);
                    }
                    Err(e) => missing.push(e),
                }
            }
            people.push(crate::calibrate::Person {
                name: name.clone(),
                embeddings,
                reference,
            });
        }
        out.push(crate::calibrate::FaceSet {
            kind: kind.clone(),
            people,
        });
    }
    (out, missing)
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

    fn empty_review() -> PhotoReview {
        PhotoReview {
            size: 100.0,
            sharpness: 100.0,
            frontality: 1.0,
            outside: 0.0,
            similarity: None,
            findings: Vec::new(),
        }
    }

    #[test]
    fn a_photo_unlike_the_persons_others_is_refused() {
        let unit = |deg: f32| vec![deg.to_radians().cos(), deg.to_radians().sin()];
        let (a, b, far) = (unit(0.0), unit(20.0), unit(80.0));
        // No other photo: nothing to compare with.
        let mut r = empty_review();
        review_consistency(&mut r, &far, &[], 0.5);
        assert_eq!((r.similarity, r.refused()), (None, false));
        // Against the mean of the others (10 degrees): cos 70 = 0.34 < 0.5.
        review_consistency(&mut r, &far, &[&a, &b], 0.5);
        let s = r.similarity.unwrap();
        assert!((s - 70f32.to_radians().cos()).abs() < 1e-5, "{s}");
        assert!(r.refused());
        assert!(
            r.summary().contains("2 other photo(s) (similarity 0.34"),
            "{}",
            r.summary()
        );
        let mut ok = empty_review();
        review_consistency(&mut ok, &unit(15.0), &[&a, &b], 0.5);
        assert!(!ok.refused() && ok.findings.is_empty());
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
