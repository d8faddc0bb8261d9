//! Multi-object tracking for people (SORT-style with appearance): a constant-velocity Kalman
//! filter per track on the box centre and size, association of predicted boxes with
//! detections by IoU blended with appearance (ReID cosine) through an optimal assignment
//! (Kuhn–Munkres), tracks kept through short occlusions, and IDF1 for evaluation.

use crate::track::iou;
use pathfinding::kuhn_munkres::kuhn_munkres_min;
use pathfinding::matrix::Matrix;

/// Constant-velocity Kalman filter on (cx, cy, w, h) with velocities, diagonal covariance
/// per component pair (position, velocity) — the four axes are independent.
#[derive(Debug, Clone)]
pub(crate) struct AxisKf {
    pub(crate) x: f32,
    pub(crate) v: f32,
    // Covariance [[pxx, pxv], [pxv, pvv]].
    pxx: f32,
    pxv: f32,
    pvv: f32,
}

impl AxisKf {
    pub(crate) fn new(x: f32, pos_var: f32) -> Self {
        AxisKf {
            x,
            v: 0.0,
            pxx: pos_var,
            pxv: 0.0,
            pvv: pos_var * 10.0,
        }
    }

    pub(crate) fn predict(&mut self, q: f32) {
        self.predict_dt(1.0, q);
    }

    /// Predicts `dt` time units ahead.
    pub(crate) fn predict_dt(&mut self, dt: f32, q: f32) {
        self.x += self.v * dt;
        self.pxx += 2.0 * dt * self.pxv + dt * dt * self.pvv + q;
        self.pxv += dt * self.pvv;
        self.pvv += q * 0.1;
    }

    pub(crate) fn update(&mut self, z: f32, r: f32) {
        let s = self.pxx + r;
        let (kx, kv) = (self.pxx / s, self.pxv / s);
        let y = z - self.x;
        self.x += kx * y;
        self.v += kv * y;
        let (pxx, pxv, pvv) = (self.pxx, self.pxv, self.pvv);
        self.pxx = (1.0 - kx) * pxx;
        self.pxv = (1.0 - kx) * pxv;
        self.pvv = pvv - kv * pxv;
    }
}

#[derive(Debug, Clone)]
pub struct MotTrack<T> {
    pub id: u64,
    axes: [AxisKf; 4],
    pub hits: u32,
    /// Updates since the last matched detection.
    pub missed: u32,
    /// Appearance: running mean of the ReID embeddings (L2-normalised).
    pub appearance: Option<Vec<f32>>,
    pub data: T,
}

impl<T> MotTrack<T> {
    /// The (predicted or updated) box x1, y1, x2, y2.
    pub fn bbox(&self) -> [f32; 4] {
        let [cx, cy, w, h] = [
            self.axes[0].x,
            self.axes[1].x,
            self.axes[2].x.max(1.0),
            self.axes[3].x.max(1.0),
        ];
        [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
    }

    pub fn confirmed(&self, min_hits: u32) -> bool {
        self.hits >= min_hits
    }
}

#[derive(Debug, Clone)]
pub struct MotConfig {
    /// Minimum IoU between a predicted box and a detection to associate them (without
    /// appearance).
    pub iou_gate: f32,
    /// Weight of the appearance distance in the association cost (0 = IoU only).
    pub appearance_weight: f32,
    /// Appearance similarity that re-associates a track whose box moved too far for the IoU
    /// gate (after an occlusion).
    pub appearance_gate: f32,
    /// Updates a track survives without a detection.
    pub max_missed: u32,
    /// Hits before a track is reported.
    pub min_hits: u32,
}

impl Default for MotConfig {
    fn default() -> Self {
        MotConfig {
            iou_gate: 0.3,
            appearance_weight: 0.5,
            appearance_gate: 0.75,
            max_missed: 30,
            min_hits: 3,
        }
    }
}

pub struct MotTracker<T> {
    pub config: MotConfig,
    pub tracks: Vec<MotTrack<T>>,
    next_id: u64,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl<T> MotTracker<T> {
    pub fn new(config: MotConfig) -> Self {
        MotTracker {
            config,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// One frame: predicts every track, associates `dets` (with optional L2-normalised
    /// `appearance` per detection), updates, opens and closes tracks. Returns, per detection,
    /// the index of its track in `self.tracks`.
    pub fn update(
        &mut self,
        dets: &[[f32; 4]],
        appearance: Option<&[Vec<f32>]>,
        mut new_data: impl FnMut() -> T,
    ) -> Vec<usize> {
        for t in self.tracks.iter_mut() {
            let q = (t.axes[2].x.max(t.axes[3].x) * 0.05).powi(2);
            for a in t.axes.iter_mut() {
                a.predict(q);
            }
        }
        // Cost matrix: detections x tracks; gated pairs cost a large constant.
        const NO: i64 = 1_000_000;
        let (nd, nt) = (dets.len(), self.tracks.len());
        let mut assign = vec![usize::MAX; nd];
        if nd > 0 && nt > 0 {
            let size = nd.max(nt);
            let mut m = Matrix::new(size, size, NO);
            for (i, d) in dets.iter().enumerate() {
                for (j, t) in self.tracks.iter().enumerate() {
                    let o = iou(d, &t.bbox());
                    let app = match (appearance.and_then(|a| a.get(i)), &t.appearance) {
                        (Some(a), Some(b)) => Some(cosine(a, b)),
                        _ => None,
                    };
                    let ok = o >= self.config.iou_gate
                        || app.is_some_and(|s| s >= self.config.appearance_gate);
                    if ok {
                        let w = if app.is_some() {
                            self.config.appearance_weight
                        } else {
                            0.0
                        };
                        let cost = (1.0 - w) * (1.0 - o) + w * (1.0 - app.unwrap_or(0.0));
                        m[(i, j)] = (cost * 10_000.0) as i64;
                    }
                }
            }
            let (_, cols) = kuhn_munkres_min(&m);
            for (i, &j) in cols.iter().enumerate().take(nd) {
                if j < nt && m[(i, j)] < NO {
                    assign[i] = j;
                }
            }
        }
        let mut matched = vec![false; nt];
        for (i, d) in dets.iter().enumerate() {
            let (cx, cy, w, h) = (
                (d[0] + d[2]) / 2.0,
                (d[1] + d[3]) / 2.0,
                d[2] - d[0],
                d[3] - d[1],
            );
            let emb = appearance.and_then(|a| a.get(i)).cloned();
            match assign[i] {
                usize::MAX => {
                    let var = (w.max(h) * 0.1).powi(2);
                    self.tracks.push(MotTrack {
                        id: self.next_id,
                        axes: [
                            AxisKf::new(cx, var),
                            AxisKf::new(cy, var),
                            AxisKf::new(w, var),
                            AxisKf::new(h, var),
                        ],
                        hits: 1,
                        missed: 0,
                        appearance: emb,
                        data: new_data(),
                    });
                    self.next_id += 1;
                    matched.push(true);
                    assign[i] = self.tracks.len() - 1;
                }
                j => {
                    let t = &mut self.tracks[j];
                    let r = (w.max(h) * 0.05).powi(2);
                    for (a, z) in t.axes.iter_mut().zip([cx, cy, w, h]) {
                        a.update(z, r);
                    }
                    t.hits += 1;
                    t.missed = 0;
                    if let Some(e) = emb {
                        t.appearance = Some(match t.appearance.take() {
                            Some(prev) => crate::embed::l2_normalised(
                                &prev
                                    .iter()
                                    .zip(&e)
                                    .map(|(a, b)| 0.9 * a + 0.1 * b)
                                    .collect::<Vec<_>>(),
                            ),
                            None => e,
                        });
                    }
                    matched[j] = true;
                }
            }
        }
        for (j, t) in self.tracks.iter_mut().enumerate() {
            if !matched[j] {
                t.missed += 1;
            }
        }
        // Close stale tracks, keeping the indices returned valid.
        let mut remap = vec![usize::MAX; self.tracks.len()];
        let mut kept = Vec::with_capacity(self.tracks.len());
        for (i, t) in std::mem::take(&mut self.tracks).into_iter().enumerate() {
            if t.missed <= self.config.max_missed {
                remap[i] = kept.len();
                kept.push(t);
            }
        }
        self.tracks = kept;
        assign.into_iter().map(|j| remap[j]).collect()
    }
}

/// IDF1 of predicted ids against ground-truth ids over frames of (id, box) lists: the best
/// one-to-one mapping of ids (Kuhn–Munkres on co-occurrence at IoU >= 0.5), then
/// 2·IDTP / (ground-truth boxes + predicted boxes). Also returns the number of ID switches
/// (a ground-truth id matched to a different predicted id than in its previous match).
pub fn idf1(gt: &[Vec<(u64, [f32; 4])>], pred: &[Vec<(u64, [f32; 4])>]) -> (f64, usize) {
    use std::collections::HashMap;
    let mut gid: HashMap<u64, usize> = HashMap::new();
    let mut pid: HashMap<u64, usize> = HashMap::new();
    let mut co: HashMap<(usize, usize), i64> = HashMap::new();
    let (mut n_gt, mut n_pred, mut switches) = (0usize, 0usize, 0usize);
    let mut last: HashMap<u64, u64> = HashMap::new();
    for (g, p) in gt.iter().zip(pred) {
        n_gt += g.len();
        n_pred += p.len();
        // Per-frame matching by IoU (greedy, best first).
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (i, (_, gb)) in g.iter().enumerate() {
            for (j, (_, pb)) in p.iter().enumerate() {
                let o = iou(gb, pb);
                if o >= 0.5 {
                    pairs.push((o, i, j));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut ug, mut up) = (vec![false; g.len()], vec![false; p.len()]);
        for (_, i, j) in pairs {
            if ug[i] || up[j] {
                continue;
            }
            ug[i] = true;
            up[j] = true;
            let (gi, pi) = (g[i].0, p[j].0);
            if last.get(&gi).is_some_and(|&prev| prev != pi) {
                switches += 1;
            }
            last.insert(gi, pi);
            let a = {
                let n = gid.len();
                *gid.entry(gi).or_insert(n)
            };
            let b = {
                let n = pid.len();
                *pid.entry(pi).or_insert(n)
            };
            *co.entry((a, b)).or_insert(0) += 1;
        }
    }
    if gid.is_empty() || pid.is_empty() {
        return (0.0, switches);
    }
    let size = gid.len().max(pid.len());
    let mut m = Matrix::new(size, size, 0i64);
    for ((a, b), c) in &co {
        m[(*a, *b)] = -c;
    }
    let (total, _) = kuhn_munkres_min(&m);
    let idtp = (-total) as f64;
    (2.0 * idtp / (n_gt + n_pred) as f64, switches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_walkers_crossing_keep_their_ids_with_appearance() {
        let mut t: MotTracker<()> = MotTracker::new(MotConfig {
            min_hits: 1,
            ..Default::default()
        });
        let (a, b) = (vec![1.0, 0.0], vec![0.0, 1.0]);
        let mut ids_a = Vec::new();
        // A walks right, B walks left; they cross at x = 100 around frame 10.
        for f in 0..20 {
            let xa = 10.0 + 9.0 * f as f32;
            let xb = 190.0 - 9.0 * f as f32;
            let dets = [[xa, 50.0, xa + 20.0, 100.0], [xb, 52.0, xb + 20.0, 102.0]];
            let idx = t.update(&dets, Some(&[a.clone(), b.clone()]), || ());
            ids_a.push(t.tracks[idx[0]].id);
        }
        assert!(
            ids_a.iter().all(|&i| i == ids_a[0]),
            "A kept one id: {ids_a:?}"
        );
    }

    #[test]
    fn a_short_occlusion_does_not_change_the_id() {
        let mut t: MotTracker<()> = MotTracker::new(MotConfig {
            min_hits: 1,
            ..Default::default()
        });
        let mut ids = Vec::new();
        for f in 0..30 {
            let x = 10.0 + 3.0 * f as f32;
            let dets: Vec<[f32; 4]> = if (10..15).contains(&f) {
                vec![]
            } else {
                vec![[x, 50.0, x + 20.0, 100.0]]
            };
            let idx = t.update(&dets, None, || ());
            if let Some(&i) = idx.first() {
                ids.push(t.tracks[i].id);
            }
        }
        assert!(ids.iter().all(|&i| i == ids[0]), "{ids:?}");
    }

    #[test]
    fn idf1_of_perfect_and_swapped_tracks() {
        let b1 = [0.0, 0.0, 10.0, 10.0];
        let b2 = [50.0, 0.0, 60.0, 10.0];
        let gt: Vec<Vec<(u64, [f32; 4])>> = (0..10).map(|_| vec![(1, b1), (2, b2)]).collect();
        let (f, s) = idf1(&gt, &gt);
        assert!((f - 1.0).abs() < 1e-9 && s == 0);
        // Predicted ids swap halfway: each gt id matches one pred id for 5 of 10 frames.
        let pred: Vec<Vec<(u64, [f32; 4])>> = (0..10)
            .map(|i| {
                if i < 5 {
                    vec![(7, b1), (8, b2)]
                } else {
                    vec![(8, b1), (7, b2)]
                }
            })
            .collect();
        let (f, s) = idf1(&gt, &pred);
        assert!((f - 0.5).abs() < 1e-9, "{f}");
        assert_eq!(s, 2);
    }
}
