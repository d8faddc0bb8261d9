//! facematch's recognition policy, without GStreamer: which tracked faces to embed, how a
//! track's embeddings combine (a quality-weighted mean), when a track's appearance changes
//! (someone else in the same box: a new track), and the gallery decision.

use crate::embed::{cosine, l2_normalised};
use crate::gallery::Match;
use crate::meta::Recognition;

/// A face is re-embedded early when its quality beats the best embedded so far by this factor.
pub const QUALITY_GAIN: f32 = 1.25;
/// The smallest weight of an embedding in a track's mean (a poor face still counts a little).
pub const MIN_WEIGHT: f32 = 0.05;

/// The settings that decide what is embedded and what is recognised.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Faces whose shorter side is below this many pixels are not embedded.
    pub min_face_size: f32,
    /// Faces whose quality (0-1) is below this are not embedded.
    pub min_quality: f32,
    /// A tracked face is re-embedded at most every this many frames (sooner when better).
    pub reembed_interval: u64,
    /// Cosine similarity at or above which a face is the gallery identity.
    pub threshold: f32,
}

/// What a face track has accumulated.
#[derive(Debug, Default, Clone)]
pub struct FaceTrack {
    /// Quality-weighted sum of the embeddings; `mean` is its direction.
    pub sum: Vec<f32>,
    pub mean: Vec<f32>,
    pub embeds: u32,
    pub last_embed_frame: u64,
    pub best_quality: f32,
    pub decision: Option<Recognition>,
    /// A new stranger whose id the unknown registry is still resolving (Redis).
    pub pending_unknown: Option<u64>,
}

impl Policy {
    /// Whether a face this size can be embedded at all (before its quality is measured).
    pub fn big_enough(&self, short_side: f32) -> bool {
        short_side >= self.min_face_size
    }

    /// Whether to embed this track's face of `quality` at `frame`: good enough, and the
    /// track has none yet, is due, or this face is clearly better than the best so far.
    pub fn due(&self, t: &FaceTrack, quality: f32, frame: u64) -> bool {
        quality >= self.min_quality
            && (t.embeds == 0
                || frame.saturating_sub(t.last_embed_frame) >= self.reembed_interval
                || quality > t.best_quality * QUALITY_GAIN)
    }

    /// The decision for a track's mean against the gallery's best match: the identity when
    /// the match reaches the threshold, else Err with the best similarity (0 without any).
    pub fn known(&self, best: Option<Match>) -> Result<Recognition, f64> {
        match best {
            Some(m) if m.similarity >= self.threshold => Ok(Recognition {
                label: m.name,
                identity: m.id,
                similarity: m.similarity as f64,
                unknown_id: String::new(),
                label_id: i32::try_from(m.identity).unwrap_or(-1),
            }),
            other => Err(other.map_or(0.0, |m| m.similarity as f64)),
        }
    }
}

/// What [`FaceTrack::absorb`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absorbed {
    /// Added to the track's mean.
    Added,
    /// Not the person the track had (cosine below the threshold): the track started afresh
    /// with this embedding; the caller gives it a new track id.
    NewPerson,
}

impl FaceTrack {
    /// Adds embedding `v` of a face of `quality` seen at `frame`.
    pub fn absorb(&mut self, v: &[f32], quality: f32, frame: u64, threshold: f32) -> Absorbed {
        let renewed = self.embeds > 0 && cosine(v, &self.mean) < threshold;
        if renewed {
            *self = FaceTrack::default();
        }
        let w = quality.max(MIN_WEIGHT);
        if self.sum.len() != v.len() {
            self.sum = vec![0.0; v.len()];
        }
        for (a, b) in self.sum.iter_mut().zip(v) {
            *a += w * b;
        }
        self.mean = l2_normalised(&self.sum);
        self.embeds += 1;
        self.last_embed_frame = frame;
        self.best_quality = self.best_quality.max(quality);
        if renewed {
            Absorbed::NewPerson
        } else {
            Absorbed::Added
        }
    }

    /// The stranger id this track keeps while it lasts, if it has one.
    pub fn unknown_id(&self) -> Option<&str> {
        self.decision
            .as_ref()
            .map(|d| d.unknown_id.as_str())
            .filter(|u| !u.is_empty())
    }

    /// Records `rec`; Some(previous label, "" for none) when the label or identity changed.
    pub fn decide(&mut self, rec: Recognition) -> Option<String> {
        let changed = self
            .decision
            .as_ref()
            .is_none_or(|d| d.label != rec.label || d.identity != rec.identity);
        let previous = self
            .decision
            .as_ref()
            .map(|d| d.label.clone())
            .unwrap_or_default();
        self.decision = Some(rec);
        changed.then_some(previous)
    }
}

/// The recognition of a stranger with id `uid`, best gallery similarity `similarity`.
pub fn unknown(uid: &str, similarity: f64) -> Recognition {
    Recognition {
        label: "unknown".into(),
        identity: uid.to_string(),
        similarity,
        unknown_id: uid.to_string(),
        label_id: -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            min_face_size: 32.0,
            min_quality: 0.1,
            reembed_interval: 10,
            threshold: 0.5,
        }
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        l2_normalised(v)
    }

    #[test]
    fn which_faces_are_embedded() {
        let p = policy();
        assert!(!p.big_enough(31.0) && p.big_enough(32.0));
        let mut t = FaceTrack::default();
        assert!(p.due(&t, 0.3, 0), "a new track");
        assert!(!p.due(&t, 0.05, 0), "too poor, even when new");
        t.absorb(&unit(&[1.0, 0.0]), 0.4, 0, p.threshold);
        assert!(!p.due(&t, 0.4, 5), "not yet due");
        assert!(p.due(&t, 0.4, 10), "due after the interval");
        assert!(p.due(&t, 0.51, 5), "25 % better: early");
        assert!(!p.due(&t, 0.49, 5), "not better enough");
    }

    #[test]
    fn the_mean_is_quality_weighted_and_a_new_person_renews_the_track() {
        let mut t = FaceTrack::default();
        let a = unit(&[1.0, 0.0, 0.0]);
        let b = unit(&[0.8, 0.6, 0.0]);
        assert_eq!(t.absorb(&a, 0.9, 0, 0.5), Absorbed::Added);
        assert_eq!(t.absorb(&b, 0.1, 3, 0.5), Absorbed::Added);
        // Weighted 0.9 : 0.1, the mean leans to a.
        assert!(cosine(&t.mean, &a) > cosine(&t.mean, &b));
        assert_eq!((t.embeds, t.last_embed_frame), (2, 3));
        assert!((t.best_quality - 0.9).abs() < 1e-6);
        // A weight never falls to zero.
        let mut z = FaceTrack::default();
        z.absorb(&a, 0.0, 0, 0.5);
        assert!((cosine(&z.mean, &a) - 1.0).abs() < 1e-5);
        // Someone else in the box: the track starts afresh with them.
        t.decision = Some(unknown("unknown-3", 0.1));
        let c = unit(&[0.0, 0.0, 1.0]);
        assert_eq!(t.absorb(&c, 0.5, 4, 0.5), Absorbed::NewPerson);
        assert_eq!(t.embeds, 1);
        assert!(t.decision.is_none() && t.unknown_id().is_none());
        assert!((cosine(&t.mean, &c) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn gallery_decisions_and_changes() {
        let p = policy();
        let m = |s: f32| Match {
            identity: 0,
            id: "ada".into(),
            name: "Ada".into(),
            similarity: s,
        };
        let r = p.known(Some(m(0.5))).unwrap();
        assert_eq!((r.label.as_str(), r.identity.as_str()), ("Ada", "ada"));
        assert_eq!(p.known(Some(m(0.49))).unwrap_err(), 0.49f32 as f64);
        assert_eq!(p.known(None).unwrap_err(), 0.0);
        let mut t = FaceTrack::default();
        assert_eq!(t.decide(unknown("unknown-1", 0.2)), Some(String::new()));
        assert_eq!(t.unknown_id(), Some("unknown-1"));
        assert_eq!(t.decide(unknown("unknown-1", 0.3)), None, "same: no change");
        assert_eq!(t.decide(r), Some("unknown".to_string()));
    }
}
