//! Trajectories of tracked people on the map: per track, positions sampled at a bounded rate,
//! handed out when the track ends (or in segments, for people followed for very long).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrajectoryConfig {
    /// Minimum time between two points (ns); 200 ms = at most 5 points per second.
    pub min_interval_ns: u64,
    /// Points per trajectory; a longer track is handed out in segments of this many.
    pub max_points: usize,
}

impl Default for TrajectoryConfig {
    fn default() -> Self {
        TrajectoryConfig {
            min_interval_ns: 200_000_000,
            max_points: 3000,
        }
    }
}

/// Why a trajectory was handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The track was lost (the person left or stayed hidden).
    TrackEnded,
    /// The track goes on; this segment reached `max_points`.
    SegmentFull,
    /// The stream ended or the element stopped.
    StreamEnded,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::TrackEnded => "track-ended",
            EndReason::SegmentFull => "segment-full",
            EndReason::StreamEnded => "stream-ended",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    pub track: u64,
    /// The person's global id when handed out (merges may have changed it on the way).
    pub global_id: u64,
    /// (time ns, map position), oldest first; never empty.
    pub points: Vec<(u64, [f64; 2])>,
    /// Segment number of this track, from 0.
    pub segment: u32,
    pub reason: EndReason,
}

#[derive(Debug, Default)]
struct Open {
    global_id: u64,
    points: Vec<(u64, [f64; 2])>,
    segment: u32,
}

/// Collects the trajectories of one camera's tracks.
#[derive(Debug, Default)]
pub struct TrajectoryRecorder {
    pub config: TrajectoryConfig,
    open: BTreeMap<u64, Open>,
}

impl TrajectoryRecorder {
    pub fn new(config: TrajectoryConfig) -> Self {
        TrajectoryRecorder {
            config,
            open: BTreeMap::new(),
        }
    }

    /// Track `track` (now global id `global_id`) is at `pos` at time `t`; returns a full
    /// segment when this point completes one.
    pub fn record(
        &mut self,
        track: u64,
        global_id: u64,
        t: u64,
        pos: [f64; 2],
    ) -> Option<Trajectory> {
        let cfg = self.config;
        let o = self.open.entry(track).or_default();
        o.global_id = global_id;
        if o.points
            .last()
            .is_some_and(|(last, _)| t < last.saturating_add(cfg.min_interval_ns))
        {
            return None;
        }
        o.points.push((t, pos));
        if o.points.len() < cfg.max_points.max(1) {
            return None;
        }
        let points = std::mem::take(&mut o.points);
        let segment = o.segment;
        o.segment += 1;
        Some(Trajectory {
            track,
            global_id,
            points,
            segment,
            reason: EndReason::SegmentFull,
        })
    }

    /// Track `track` ended: its trajectory, if it has points not yet handed out.
    pub fn close(&mut self, track: u64, reason: EndReason) -> Option<Trajectory> {
        let o = self.open.remove(&track)?;
        (!o.points.is_empty()).then_some(Trajectory {
            track,
            global_id: o.global_id,
            points: o.points,
            segment: o.segment,
            reason,
        })
    }

    /// Every open trajectory, oldest track first (end of stream).
    pub fn close_all(&mut self, reason: EndReason) -> Vec<Trajectory> {
        let tracks: Vec<u64> = self.open.keys().copied().collect();
        tracks
            .into_iter()
            .filter_map(|t| self.close(t, reason))
            .collect()
    }

    /// Tracks with an open trajectory.
    pub fn open_tracks(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn points_are_sampled_at_most_every_interval() {
        let mut r = TrajectoryRecorder::new(TrajectoryConfig::default());
        // 25 fps for 2 s: 50 observations, at most 5 points per second.
        for k in 0..50u64 {
            assert!(r.record(7, 3, k * 40 * MS, [k as f64, 0.0]).is_none());
        }
        let t = r.close(7, EndReason::TrackEnded).unwrap();
        assert_eq!(t.points.len(), 10);
        assert!(t.points.windows(2).all(|w| w[1].0 - w[0].0 >= 200 * MS));
        assert_eq!((t.track, t.global_id, t.segment), (7, 3, 0));
        assert_eq!(t.reason.as_str(), "track-ended");
        assert!(
            r.close(7, EndReason::TrackEnded).is_none(),
            "handed out once"
        );
    }

    #[test]
    fn long_tracks_come_in_segments_and_the_last_global_id_wins() {
        let mut r = TrajectoryRecorder::new(TrajectoryConfig {
            min_interval_ns: 0,
            max_points: 4,
        });
        let mut full = Vec::new();
        for k in 0..10u64 {
            let gid = if k < 6 { 5 } else { 2 }; // merged into an older id on the way
            full.extend(r.record(1, gid, k, [0.0, k as f64]));
        }
        assert_eq!(full.len(), 2);
        assert_eq!(
            full.iter().map(|t| t.segment).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert!(
            full.iter()
                .all(|t| t.points.len() == 4 && t.reason == EndReason::SegmentFull)
        );
        let rest = r.close_all(EndReason::StreamEnded);
        assert_eq!(rest.len(), 1);
        assert_eq!(
            (rest[0].segment, rest[0].global_id, rest[0].points.len()),
            (2, 2, 2)
        );
        assert_eq!(r.open_tracks(), 0);
    }

    #[test]
    fn a_track_whose_points_were_all_handed_out_gives_nothing_more() {
        let mut r = TrajectoryRecorder::new(TrajectoryConfig {
            min_interval_ns: 0,
            max_points: 2,
        });
        assert!(r.record(1, 1, 0, [0.0, 0.0]).is_none());
        assert!(r.record(1, 1, 1, [0.0, 0.0]).is_some());
        assert!(r.close(1, EndReason::TrackEnded).is_none());
        assert!(r.close_all(EndReason::StreamEnded).is_empty());
    }
}
