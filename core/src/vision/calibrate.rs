//! Threshold calibration for face identification, out of sample: a threshold is chosen on the
//! impostor pairs of some identities and measured on other identities (folds by identity),
//! and the one-photo protocol an operator meets (one enrolment photo per person, strangers
//! among the probes) is scored at a given threshold.

use crate::embed::cosine;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The photos of one identity, in order (the first is its enrolment photo in the one-photo
/// protocol): one embedding per photo in which a face was found.
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub embeddings: Vec<Vec<f32>>,
    /// The gallery embedding of the first photo as enrolment makes it (it may differ from a
    /// probe's: enrolment averages the face with its mirror); `None`: `embeddings[0]`.
    pub reference: Option<Vec<f32>>,
}

/// Similarities of every pair of photos of the same identity (genuine) and of different
/// identities (impostor).
pub fn pair_scores(people: &[&Person]) -> (Vec<f32>, Vec<f32>) {
    let all: Vec<(usize, &[f32])> = people
        .iter()
        .enumerate()
        .flat_map(|(k, p)| p.embeddings.iter().map(move |e| (k, e.as_slice())))
        .collect();
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for (i, (a, ea)) in all.iter().enumerate() {
        for (b, eb) in &all[i + 1..] {
            let s = cosine(ea, eb);
            if a == b {
                genuine.push(s);
            } else {
                impostor.push(s);
            }
        }
    }
    (genuine, impostor)
}

/// The lowest threshold (accept when similarity >= threshold) at which at most `far` of the
/// `impostor` similarities are accepted. With n pairs, a FAR below 1/n cannot be told apart
/// from 0: the threshold is then just above the highest impostor.
pub fn threshold_at_far(impostor: &[f32], far: f64) -> f32 {
    let mut s: Vec<f32> = impostor.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let allowed = (far * s.len() as f64).floor() as usize;
    match s.get(allowed) {
        // Everything at or above the (allowed+1)-th highest would be one too many.
        Some(v) => v.next_up(),
        None => -1.0,
    }
}

/// Fraction of `scores` at or above `threshold`.
pub fn rate_at(scores: &[f32], threshold: f32) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().filter(|s| **s >= threshold).count() as f64 / scores.len() as f64
}

/// The fold (0..k) of each of `n` identities, taken in their order: 0, 1, …, k-1, 0, …
pub fn identity_folds(n: usize, k: usize) -> Vec<usize> {
    (0..n).map(|i| i % k.max(1)).collect()
}

/// Outcome of the one-photo protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OnePhoto {
    /// Probes of enrolled people, and those matched to the right person above the threshold.
    pub genuine: usize,
    pub correct: usize,
    /// Probes of people not enrolled, and those left unknown.
    pub strangers: usize,
    pub rejected: usize,
}

impl OnePhoto {
    pub fn rank1(&self) -> f64 {
        self.correct as f64 / self.genuine.max(1) as f64
    }
    pub fn rejection(&self) -> f64 {
        self.rejected as f64 / self.strangers.max(1) as f64
    }
    pub fn add(&mut self, o: &OnePhoto) {
        self.genuine += o.genuine;
        self.correct += o.correct;
        self.strangers += o.strangers;
        self.rejected += o.rejected;
    }
}

/// Which people the one-photo protocol enrols: every other one (0, 2, 4, …), from their first
/// photo; the others are strangers.
pub fn enrolled_in_protocol(index: usize) -> bool {
    index.is_multiple_of(2)
}

/// The one-photo protocol on `people` at `threshold`: every other person enrolled from their
/// first photo, their other photos as probes (right person at or above the threshold counts);
/// every photo of the others must stay unknown (best similarity below the threshold).
/// People with no photo are skipped; an enrolled person with one photo gives no probe.
pub fn one_photo(people: &[&Person], threshold: f32) -> OnePhoto {
    let people: Vec<&&Person> = people.iter().filter(|p| !p.embeddings.is_empty()).collect();
    let gallery: Vec<(usize, &[f32])> = people
        .iter()
        .enumerate()
        .filter(|(k, _)| enrolled_in_protocol(*k))
        .map(|(k, p)| (k, p.reference.as_deref().unwrap_or(&p.embeddings[0])))
        .collect();
    let best = |q: &[f32]| {
        gallery
            .iter()
            .map(|(k, e)| (*k, cosine(e, q)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    let mut out = OnePhoto::default();
    for (k, p) in people.iter().enumerate() {
        let enrolled = enrolled_in_protocol(k);
        let probes = if enrolled {
            &p.embeddings[1..]
        } else {
            &p.embeddings[..]
        };
        for q in probes {
            let m = best(q);
            if enrolled {
                out.genuine += 1;
                if m.is_some_and(|(who, s)| who == k && s >= threshold) {
                    out.correct += 1;
                }
            } else {
                out.strangers += 1;
                if m.is_none_or(|(_, s)| s < threshold) {
                    out.rejected += 1;
                }
            }
        }
    }
    out
}

/// A set of photos of one kind (ORL images, tight crops, photos…) and its people.
#[derive(Debug, Clone)]
pub struct FaceSet {
    pub kind: String,
    pub people: Vec<Person>,
}

/// The people of fold `fold` of `k` (by identity, within each set), or of every other fold.
pub fn fold_people(set: &FaceSet, k: usize, fold: usize, inside: bool) -> Vec<&Person> {
    let folds = identity_folds(set.people.len(), k);
    set.people
        .iter()
        .zip(folds)
        .filter(|(_, f)| (*f == fold) == inside)
        .map(|(p, _)| p)
        .collect()
}

/// Impostor similarities within each set (pairs across sets, e.g. a grey ORL image against a
/// colour photo, are too easy to say anything) of the people `pick` selects.
fn impostors<'a>(sets: &'a [FaceSet], pick: impl Fn(&'a FaceSet) -> Vec<&'a Person>) -> Vec<f32> {
    sets.iter().flat_map(|s| pair_scores(&pick(s)).1).collect()
}

/// The threshold fold `fold` of `k` is scored at: FAR `far` on the impostors of the other
/// folds' identities, so it never saw the identities it is scored on.
pub fn fold_threshold(sets: &[FaceSet], k: usize, fold: usize, far: f64) -> f32 {
    threshold_at_far(&impostors(sets, |s| fold_people(s, k, fold, false)), far)
}

/// TAR at a FAR target, out of sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TarAtFar {
    pub far: f64,
    /// Genuine pairs of the scored folds accepted, and their number.
    pub tar: f64,
    pub genuine: usize,
    /// The FAR actually met on the scored folds' impostors, and their number.
    pub measured_far: f64,
    pub impostor: usize,
    /// The thresholds chosen, one per fold.
    pub thresholds: [f32; 2],
}

/// Cross-validation by identity with `k` folds.
#[derive(Debug, Clone)]
pub struct CrossValidation {
    /// Protocol threshold of each fold (FAR `protocol_far` on the other folds).
    pub thresholds: Vec<f32>,
    /// One-photo protocol per set, folds summed; each fold at its own threshold.
    pub one_photo: Vec<(String, OnePhoto)>,
    pub tar: Vec<TarAtFar>,
}

/// For each fold: thresholds from the other folds' identities; TAR and the one-photo protocol
/// measured on the fold's own identities.
pub fn cross_validate(
    sets: &[FaceSet],
    k: usize,
    protocol_far: f64,
    fars: &[f64],
) -> CrossValidation {
    let mut one: Vec<(String, OnePhoto)> = sets
        .iter()
        .map(|s| (s.kind.clone(), OnePhoto::default()))
        .collect();
    let mut tar: Vec<TarAtFar> = fars
        .iter()
        .map(|f| TarAtFar {
            far: *f,
            thresholds: [f32::INFINITY, f32::NEG_INFINITY],
            ..Default::default()
        })
        .collect();
    let mut accepted = vec![(0usize, 0usize); fars.len()];
    let mut thresholds = Vec::new();
    for fold in 0..k {
        let train = impostors(sets, |s| fold_people(s, k, fold, false));
        let t = threshold_at_far(&train, protocol_far);
        thresholds.push(t);
        let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
        for (set, (_, score)) in sets.iter().zip(one.iter_mut()) {
            let people = fold_people(set, k, fold, true);
            score.add(&one_photo(&people, t));
            let (g, i) = pair_scores(&people);
            genuine.extend(g);
            impostor.extend(i);
        }
        for ((r, far), acc) in tar.iter_mut().zip(fars).zip(accepted.iter_mut()) {
            let t = threshold_at_far(&train, *far);
            r.thresholds = [r.thresholds[0].min(t), r.thresholds[1].max(t)];
            acc.0 += genuine.iter().filter(|s| **s >= t).count();
            acc.1 += impostor.iter().filter(|s| **s >= t).count();
            r.genuine += genuine.len();
            r.impostor += impostor.len();
        }
    }
    for (r, (g, i)) in tar.iter_mut().zip(accepted) {
        r.tar = g as f64 / r.genuine.max(1) as f64;
        r.measured_far = i as f64 / r.impostor.max(1) as f64;
    }
    CrossValidation {
        thresholds,
        one_photo: one,
        tar,
    }
}

/// Orders names with their numbers by value: `s2/10.pgm` after `s2/9.pgm`, `s10` after `s9`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let b = s.as_bytes();
        for i in 1..=b.len() {
            if i == b.len() || b[i].is_ascii_digit() != b[start].is_ascii_digit() {
                out.push((b[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let o = match (x, y) {
            ((true, n), (true, m)) => {
                let (n, m) = (n.trim_start_matches('0'), m.trim_start_matches('0'));
                n.len().cmp(&m.len()).then(n.cmp(m))
            }
            _ => x.1.cmp(y.1),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    ca.len().cmp(&cb.len()).then(a.cmp(b))
}

/// The face sets of a ground-truth file (`identities.json`: `files` maps a path to its `kind`
/// and `identity`): for each of `kinds`, its identities in natural order, each with its
/// photos' paths in natural order (the first is the one the one-photo protocol enrols).
pub fn face_sets(
    doc: &serde_json::Value,
    kinds: &[&str],
) -> BTreeMap<String, Vec<(String, Vec<String>)>> {
    let mut by: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (path, v) in doc["files"].as_object().into_iter().flatten() {
        let (Some(kind), Some(id)) = (v["kind"].as_str(), v["identity"].as_str()) else {
            continue;
        };
        if kinds.contains(&kind) {
            by.entry(kind.to_string())
                .or_default()
                .entry(id.to_string())
                .or_default()
                .push(path.clone());
        }
    }
    by.into_iter()
        .map(|(kind, ids)| {
            let mut ids: Vec<(String, Vec<String>)> = ids.into_iter().collect();
            for (_, paths) in &mut ids {
                paths.sort_by(|a, b| natural_cmp(a, b));
            }
            ids.sort_by(|a, b| natural_cmp(&a.0, &b.0));
            (kind, ids)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(angle_deg: f32) -> Vec<f32> {
        let a = angle_deg.to_radians();
        vec![a.cos(), a.sin()]
    }

    fn person(name: &str, angles: &[f32]) -> Person {
        Person {
            name: name.into(),
            embeddings: angles.iter().map(|a| unit(*a)).collect(),
            reference: None,
        }
    }

    #[test]
    fn pairs_split_into_genuine_and_impostor() {
        let a = person("a", &[0.0, 10.0]);
        let b = person("b", &[90.0]);
        let (g, i) = pair_scores(&[&a, &b]);
        assert_eq!(g.len(), 1);
        assert!((g[0] - 10f32.to_radians().cos()).abs() < 1e-6);
        assert_eq!(i.len(), 2);
        assert!(i.iter().all(|s| s.abs() < 0.2));
    }

    #[test]
    fn threshold_accepts_at_most_the_allowed_impostors() {
        let imp: Vec<f32> = (0..1000).map(|k| k as f32 / 1000.0).collect();
        // FAR 1e-2: 10 of 1000 may pass; the 11th highest (0.989) must not.
        let t = threshold_at_far(&imp, 1e-2);
        assert!(t > 0.989 && t <= 0.990, "{t}");
        assert!((rate_at(&imp, t) - 0.01).abs() < 1e-9);
        // Below 1/n: just above the highest impostor.
        let t = threshold_at_far(&imp, 1e-4);
        assert!(t > 0.999);
        assert_eq!(rate_at(&imp, t), 0.0);
        assert_eq!(threshold_at_far(&[], 1e-3), -1.0);
        assert_eq!(rate_at(&[], 0.5), 0.0);
    }

    #[test]
    fn natural_order_reads_numbers_by_value() {
        let mut v = vec![
            "s10/1.pgm",
            "s2/10.pgm",
            "s2/9.pgm",
            "s1/1.pgm",
            "a",
            "s2/09.pgm",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            vec![
                "a",
                "s1/1.pgm",
                "s2/09.pgm",
                "s2/9.pgm",
                "s2/10.pgm",
                "s10/1.pgm"
            ]
        );
    }

    #[test]
    fn face_sets_group_by_kind_and_identity_in_natural_order() {
        let doc = serde_json::json!({"files": {
            "orl/s10/1.pgm": {"kind": "face_image", "identity": "orl:s10"},
            "orl/s2/10.pgm": {"kind": "face_image", "identity": "orl:s2"},
            "orl/s2/2.pgm": {"kind": "face_image", "identity": "orl:s2"},
            "g.jpg": {"kind": "group"},
            "p.jpg": {"kind": "photo", "identity": "p"},
        }});
        let sets = face_sets(&doc, &["face_image"]);
        assert_eq!(sets.len(), 1);
        let orl = &sets["face_image"];
        assert_eq!(orl[0].0, "orl:s2");
        assert_eq!(orl[0].1, vec!["orl/s2/2.pgm", "orl/s2/10.pgm"]);
        assert_eq!(orl[1].0, "orl:s10");
    }

    #[test]
    fn cross_validation_scores_each_fold_at_a_threshold_from_the_others() {
        // Ten people, each two photos 4 degrees apart; people 30 degrees apart, so within a
        // fold (every other person) impostors score at most cos(56) = 0.56 and genuine pairs
        // cos(4) = 0.998.
        let people: Vec<Person> = (0..10)
            .map(|k| {
                let a = k as f32 * 30.0;
                person(&format!("p{k}"), &[a, a + 4.0])
            })
            .collect();
        let sets = [FaceSet {
            kind: "x".into(),
            people,
        }];
        let cv = cross_validate(&sets, 2, 1e-3, &[1e-3]);
        assert_eq!(cv.thresholds.len(), 2);
        for t in &cv.thresholds {
            assert!(*t > 0.55 && *t < 0.6, "{t}");
        }
        let one = cv.one_photo[0].1;
        // Per fold: 5 people, 3 enrolled (3 probes), 2 strangers (4 photos).
        assert_eq!((one.genuine, one.strangers), (6, 8));
        // Out of sample the threshold is not perfect: in each fold one stranger photo (184
        // degrees in fold 0) is 56 degrees from an enrolled person (240), as close as the
        // other fold's worst impostor pair, and is accepted.
        assert_eq!((one.rank1(), one.rejection()), (1.0, 0.75));
        let t = cv.tar[0];
        assert_eq!((t.genuine, t.tar), (10, 1.0));
        // The same pairs at 56 degrees: 3 of the scored folds' 80 impostor pairs.
        assert_eq!(t.impostor, 80);
        assert!((t.measured_far - 3.0 / 80.0).abs() < 1e-12);
        // The fold's own people are not in its threshold: fold 0 is people 0, 2, 4, …
        assert_eq!(fold_people(&sets[0], 2, 0, true)[1].name, "p2");
        assert_eq!(fold_people(&sets[0], 2, 0, false)[0].name, "p1");
        assert_eq!(fold_threshold(&sets, 2, 0, 1e-3), cv.thresholds[0]);
    }

    #[test]
    fn folds_cycle_over_identities() {
        assert_eq!(identity_folds(5, 2), vec![0, 1, 0, 1, 0]);
        assert_eq!(identity_folds(3, 0), vec![0, 0, 0]);
    }

    #[test]
    fn one_photo_protocol_counts_matches_and_rejections() {
        // a and c enrolled (first photo), b and d strangers.
        let a = person("a", &[0.0, 5.0, 60.0]); // 60 deg: too far from its enrolment photo
        let b = person("b", &[90.0, 95.0]);
        let c = person("c", &[180.0, 185.0]);
        let d = person("d", &[3.0]); // a stranger who looks like a
        let empty = person("e", &[]);
        let r = one_photo(&[&a, &b, &empty, &c, &d], 0.9);
        // People without photos are skipped before taking every other one: a, c enrolled.
        assert_eq!(
            r,
            OnePhoto {
                genuine: 3,
                correct: 2,
                strangers: 3,
                rejected: 2
            }
        );
        assert!((r.rank1() - 2.0 / 3.0).abs() < 1e-9);
        // A reference closer to the far probe of a wins it.
        let a2 = Person {
            reference: Some(unit(30.0)),
            ..a.clone()
        };
        let r2 = one_photo(&[&a2, &b, &c, &d], 0.85);
        assert_eq!((r2.genuine, r2.correct), (3, 3));
        let mut sum = OnePhoto::default();
        sum.add(&r);
        sum.add(&r);
        assert_eq!(sum.genuine, 6);
    }
}
