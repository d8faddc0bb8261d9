//! Per-camera multi-object tracking by box overlap: detections are matched to tracks greedily
//! by IoU (best pairs first); unmatched detections open tracks; tracks not seen for
//! `max_missed` updates close. Time comes from the caller (buffer running time).

#[derive(Debug, Clone)]
pub struct Track<T> {
    pub id: u64,
    /// x1, y1, x2, y2 in frame pixels.
    pub bbox: [f32; 4],
    pub hits: u32,
    pub missed: u32,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    pub data: T,
}

#[derive(Debug, Clone)]
pub struct Tracker<T> {
    next_id: u64,
    pub tracks: Vec<Track<T>>,
    pub iou_threshold: f32,
    pub max_missed: u32,
}

pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    inter / (area(a) + area(b) - inter + 1e-9)
}

impl<T> Tracker<T> {
    pub fn new(iou_threshold: f32, max_missed: u32) -> Self {
        Tracker {
            next_id: 1,
            tracks: Vec::new(),
            iou_threshold,
            max_missed,
        }
    }

    /// Forgets every track (a seek or a new stream: what follows is not a continuation) and
    /// returns them; ids keep counting, so a track id is never reused.
    pub fn reset(&mut self) -> Vec<Track<T>> {
        std::mem::take(&mut self.tracks)
    }

    /// Gives track `index` a new id (the object it follows turned out to be another one) and
    /// returns it.
    pub fn renew_id(&mut self, index: usize) -> Option<u64> {
        let t = self.tracks.get_mut(index)?;
        t.id = self.next_id;
        t.hits = 1;
        self.next_id += 1;
        Some(t.id)
    }

    /// Associates this frame's detections; returns, per detection, the index of its track in
    /// `self.tracks`, and the tracks that closed (not seen for more than `max_missed` updates).
    pub fn update(
        &mut self,
        dets: &[[f32; 4]],
        ts_ns: u64,
        mut new_data: impl FnMut() -> T,
    ) -> (Vec<usize>, Vec<Track<T>>) {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (di, d) in dets.iter().enumerate() {
            for (ti, t) in self.tracks.iter().enumerate() {
                let o = iou(d, &t.bbox);
                if o >= self.iou_threshold {
                    pairs.push((o, di, ti));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut det_track = vec![usize::MAX; dets.len()];
        let mut used = vec![false; self.tracks.len()];
        for (_, di, ti) in pairs {
            if det_track[di] == usize::MAX && !used[ti] {
                det_track[di] = ti;
                used[ti] = true;
            }
        }
        for (ti, t) in self.tracks.iter_mut().enumerate() {
            if used[ti] {
                t.missed = 0;
            } else {
                t.missed += 1;
            }
        }
        for (di, d) in dets.iter().enumerate() {
            match det_track[di] {
                usize::MAX => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        bbox: *d,
                        hits: 1,
                        missed: 0,
                        first_seen_ns: ts_ns,
                        last_seen_ns: ts_ns,
                        data: new_data(),
                    });
                    self.next_id += 1;
                    det_track[di] = self.tracks.len() - 1;
                }
                ti => {
                    let t = &mut self.tracks[ti];
                    t.bbox = *d;
                    t.hits += 1;
                    t.last_seen_ns = ts_ns;
                }
            }
        }
        // Close stale tracks, keeping indices of the live ones valid for the caller.
        let mut closed = Vec::new();
        let mut remap = vec![usize::MAX; self.tracks.len()];
        let mut kept = Vec::with_capacity(self.tracks.len());
        for (i, t) in std::mem::take(&mut self.tracks).into_iter().enumerate() {
            if t.missed > self.max_missed {
                closed.push(t);
            } else {
                remap[i] = kept.len();
                kept.push(t);
            }
        }
        self.tracks = kept;
        (det_track.into_iter().map(|i| remap[i]).collect(), closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_forgets_tracks_but_never_reuses_an_id() {
        let mut t: Tracker<u32> = Tracker::new(0.3, 5);
        let (a, _) = t.update(&[[0.0, 0.0, 10.0, 10.0]], 0, || 0);
        assert_eq!(t.tracks[a[0]].id, 1);
        assert_eq!(t.reset().len(), 1);
        assert!(t.tracks.is_empty());
        // The same box after the reset is a new track with a new id.
        let (b, _) = t.update(&[[0.0, 0.0, 10.0, 10.0]], 1, || 0);
        assert_eq!(t.tracks[b[0]].id, 2);
    }

    #[test]
    fn tracks_follow_moving_boxes_and_close_when_gone() {
        let mut t: Tracker<u32> = Tracker::new(0.3, 2);
        let (a, _) = t.update(&[[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]], 0, || 0);
        assert_eq!(a.len(), 2);
        let ids: Vec<u64> = a.iter().map(|&i| t.tracks[i].id).collect();
        assert_eq!(ids, vec![1, 2]);
        // Both move a little; order of detections swapped.
        let (b, _) = t.update(&[[52.0, 50.0, 62.0, 60.0], [2.0, 0.0, 12.0, 10.0]], 1, || 0);
        assert_eq!(t.tracks[b[0]].id, 2);
        assert_eq!(t.tracks[b[1]].id, 1);
        assert_eq!(t.tracks[b[1]].hits, 2);
        // Track 2 disappears for 3 updates -> closed on the third.
        for k in 2..4 {
            let (_, closed) = t.update(&[[2.0, 0.0, 12.0, 10.0]], k, || 0);
            assert!(closed.is_empty());
        }
        let (c, closed) = t.update(&[[2.0, 0.0, 12.0, 10.0]], 4, || 0);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].id, 2);
        assert_eq!(t.tracks[c[0]].id, 1);
        // A far new box opens track 3.
        let (d, _) = t.update(
            &[[2.0, 0.0, 12.0, 10.0], [100.0, 100.0, 110.0, 110.0]],
            5,
            || 7,
        );
        assert_eq!(t.tracks[d[1]].id, 3);
        assert_eq!(t.tracks[d[1]].data, 7);
        assert_eq!(t.renew_id(d[1]), Some(4));
        assert_eq!(t.tracks[d[1]].id, 4);
    }

    #[test]
    fn iou_values() {
        assert!((iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 0.0, 3.0, 2.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
    }
}
