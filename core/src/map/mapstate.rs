//! The floor map shared by the cameras of a process: one global identity per person across
//! cameras (appearance gated by map position and time), smoothed positions (constant-velocity
//! Kalman filter in map units) and trajectories.

use crate::mot::AxisKf;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapConfig {
    /// Appearance (ReID cosine) at or above which two observations are the same person.
    pub match_threshold: f32,
    /// Fastest plausible walking speed (map units per second) for position gating.
    pub max_speed: f64,
    /// Position tolerance (map units): calibration and foot-point errors.
    pub slack: f64,
    /// Trajectory length kept, ns.
    pub trail_ns: u64,
    /// A person unseen this long is forgotten, ns.
    pub forget_ns: u64,
}

impl Default for MapConfig {
    fn default() -> Self {
        MapConfig {
            match_threshold: 0.65,
            max_speed: 3.0,
            slack: 1.5,
            trail_ns: 10_000_000_000,
            forget_ns: 60_000_000_000,
        }
    }
}

#[derive(Debug, Clone)]
struct MapPerson {
    appearance: Option<Vec<f32>>,
    axes: [AxisKf; 2],
    last_t: u64,
    trail: VecDeque<(u64, [f64; 2])>,
    /// Cameras of this process that currently follow this person, with their local track.
    cameras: BTreeMap<String, u64>,
    /// What other processes (nodes) share about this person, by node.
    remote: BTreeMap<String, SharedView>,
    /// Time of the last observation by a camera of this process.
    local_t: Option<u64>,
    /// Bumped whenever a camera of this process updates the appearance.
    look_version: u64,
}

impl MapPerson {
    fn new(pos: [f64; 2], velocity: [f64; 2], var: f32, t: u64) -> Self {
        let mut axes = [
            AxisKf::new(pos[0] as f32, var),
            AxisKf::new(pos[1] as f32, var),
        ];
        axes[0].v = velocity[0] as f32;
        axes[1].v = velocity[1] as f32;
        MapPerson {
            appearance: None,
            axes,
            last_t: t,
            trail: VecDeque::new(),
            cameras: BTreeMap::new(),
            remote: BTreeMap::new(),
            local_t: None,
            look_version: 0,
        }
    }

    /// Followed right now by some camera, of this process or another.
    fn followed(&self) -> bool {
        !self.cameras.is_empty() || self.remote.values().any(|v| !v.cameras.is_empty())
    }
}

/// One process's view of one person, as shared between processes (see `mapsync`).
#[derive(Debug, Clone, PartialEq)]
pub struct SharedView {
    pub global_id: u64,
    /// The process that shares it.
    pub node: String,
    pub position: [f64; 2],
    /// Map units per second.
    pub velocity: [f64; 2],
    /// Time of its last observation, on this process's clock (ns).
    pub t: u64,
    /// Its cameras that follow the person now.
    pub cameras: Vec<String>,
    pub appearance: Option<Vec<f32>>,
    /// Changes whenever the appearance does.
    pub look_version: u64,
}

/// A person on the map, for drawing and messages.
#[derive(Debug, Clone, PartialEq)]
pub struct MapEntry {
    pub global_id: u64,
    pub position: [f64; 2],
    pub last_seen_ns: u64,
    pub trail: Vec<(u64, [f64; 2])>,
    pub cameras: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct MapState {
    pub config: MapConfig,
    people: BTreeMap<u64, MapPerson>,
    links: HashMap<(String, u64), u64>,
    next_id: u64,
    /// End (exclusive) of the block of ids this process may hand out.
    id_end: u64,
    /// Merges (gone, kept) not yet shared with other processes.
    merges: Vec<(u64, u64)>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl MapState {
    pub fn new(config: MapConfig) -> Self {
        MapState {
            config,
            people: BTreeMap::new(),
            links: HashMap::new(),
            next_id: 1,
            id_end: u64::MAX,
            merges: Vec::new(),
        }
    }

    fn predicted(p: &MapPerson, t: u64) -> [f64; 2] {
        let dt = t.saturating_sub(p.last_t) as f64 / 1e9;
        [
            p.axes[0].x as f64 + p.axes[0].v as f64 * dt,
            p.axes[1].x as f64 + p.axes[1].v as f64 * dt,
        ]
    }

    /// An observation of local track `track` of `camera` at map position `pos` (with its
    /// appearance when known) at `t`; returns its global id and smoothed position.
    pub fn observe(
        &mut self,
        camera: &str,
        track: u64,
        pos: [f64; 2],
        appearance: Option<&[f32]>,
        t: u64,
    ) -> (u64, [f64; 2]) {
        let cfg = self.config;
        self.forget(t);
        let key = (camera.to_string(), track);
        let gid = match self.links.get(&key).copied() {
            Some(g) if self.people.contains_key(&g) => g,
            _ => {
                // A new local track: the best person it could be, else a new one.
                let mut best: Option<(f32, u64)> = None;
                for (id, p) in &self.people {
                    if p.cameras.get(camera).is_some_and(|&tr| tr != track) {
                        continue; // that person is another track of this very camera
                    }
                    let dt = t.saturating_sub(p.last_t) as f64 / 1e9;
                    let pr = Self::predicted(p, t);
                    let d = ((pr[0] - pos[0]).powi(2) + (pr[1] - pos[1]).powi(2)).sqrt();
                    if d > cfg.max_speed * dt + cfg.slack {
                        continue;
                    }
                    let score = match (appearance, &p.appearance) {
                        (Some(a), Some(b)) => {
                            let s = cosine(a, b);
                            if s < cfg.match_threshold {
                                continue;
                            }
                            s
                        }
                        // Without appearance, only a person seen right now by another
                        // camera at the same place (overlapping views) is a match.
                        _ if dt < 1.0 && d <= cfg.slack && p.followed() => {
                            0.5 - (d / cfg.slack) as f32 * 0.1
                        }
                        _ => continue,
                    };
                    if best.is_none_or(|(s, _)| score > s) {
                        best = Some((score, *id));
                    }
                }
                let g = match best {
                    Some((_, g)) => g,
                    None => {
                        let g = self.next_id;
                        self.next_id += 1;
                        let var = (cfg.slack * cfg.slack) as f32;
                        self.people
                            .insert(g, MapPerson::new(pos, [0.0, 0.0], var, t));
                        g
                    }
                };
                self.links.insert(key, g);
                g
            }
        };
        let Some(p) = self.people.get_mut(&gid) else {
            return (gid, pos);
        };
        p.cameras.insert(camera.to_string(), track);
        // Kalman step in map units (time in seconds).
        let dt = (t.saturating_sub(p.last_t) as f64 / 1e9) as f32;
        if t > p.last_t {
            for a in p.axes.iter_mut() {
                a.predict_dt(dt, 0.05 * dt.max(0.04));
            }
        }
        let r = (cfg.slack as f32 * 0.3).powi(2);
        p.axes[0].update(pos[0] as f32, r);
        p.axes[1].update(pos[1] as f32, r);
        p.last_t = p.last_t.max(t);
        p.local_t = Some(p.local_t.map_or(t, |l| l.max(t)));
        if let Some(a) = appearance {
            p.look_version += 1;
            p.appearance = Some(match p.appearance.take() {
                Some(prev) => crate::embed::l2_normalised(
                    &prev
                        .iter()
                        .zip(a)
                        .map(|(x, y)| 0.8 * x + 0.2 * y)
                        .collect::<Vec<_>>(),
                ),
                None => a.to_vec(),
            });
        }
        let smoothed = [p.axes[0].x as f64, p.axes[1].x as f64];
        p.trail.push_back((t, smoothed));
        while p
            .trail
            .front()
            .is_some_and(|(ts, _)| t.saturating_sub(*ts) > cfg.trail_ns)
        {
            p.trail.pop_front();
        }
        // Two ids for one person: another camera follows someone right here, right now, who
        // looks the same (a track that started at a crop edge, with a partial box, got its
        // own id). Merge them into the older id.
        let app = self.people.get(&gid).and_then(|p| p.appearance.clone());
        let merge = self
            .people
            .iter()
            .filter(|(id, q)| {
                // Views of other processes arrive a sync interval late.
                let recent = if q.remote.is_empty() {
                    500_000_000
                } else {
                    1_500_000_000
                };
                **id != gid
                    && !q.cameras.contains_key(camera)
                    && q.followed()
                    && t.saturating_sub(q.last_t) < recent
            })
            .filter_map(|(id, q)| {
                let d = ((q.axes[0].x as f64 - smoothed[0]).powi(2)
                    + (q.axes[1].x as f64 - smoothed[1]).powi(2))
                .sqrt();
                let same_look = match (&app, &q.appearance) {
                    (Some(a), Some(b)) => cosine(a, b) >= cfg.match_threshold,
                    _ => d <= cfg.slack * 0.3,
                };
                (d <= cfg.slack * 0.5 && same_look).then_some((d, *id))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, id)| id);
        match merge {
            Some(other) => {
                let (keep, gone) = (gid.min(other), gid.max(other));
                self.merge(keep, gone);
                self.merges.push((gone, keep));
                (keep, smoothed)
            }
            None => (gid, smoothed),
        }
    }

    /// Forgets people unseen for `forget_ns` at `now`, and their links.
    fn forget(&mut self, now: u64) {
        let forget = self.config.forget_ns;
        let stale: Vec<u64> = self
            .people
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.last_t) > forget)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.people.remove(&id);
            self.links.retain(|_, g| *g != id);
        }
    }

    /// Folds person `gone` into person `keep`: links, cameras, appearance.
    fn merge(&mut self, keep: u64, gone: u64) {
        let Some(g) = self.people.remove(&gone) else {
            return;
        };
        for v in self.links.values_mut() {
            if *v == gone {
                *v = keep;
            }
        }
        if let Some(k) = self.people.get_mut(&keep) {
            k.cameras.extend(g.cameras);
            k.remote.extend(g.remote);
            k.local_t = k.local_t.max(g.local_t);
            k.look_version += 1;
            k.appearance = match (k.appearance.take(), g.appearance) {
                (Some(a), Some(b)) => Some(crate::embed::l2_normalised(
                    &a.iter().zip(&b).map(|(x, y)| x + y).collect::<Vec<_>>(),
                )),
                (a, b) => a.or(b),
            };
            k.last_t = k.last_t.max(g.last_t);
        }
    }

    /// Local track `track` of `camera` has ended.
    pub fn track_ended(&mut self, camera: &str, track: u64) {
        if let Some(g) = self.links.remove(&(camera.to_string(), track))
            && let Some(p) = self.people.get_mut(&g)
        {
            p.cameras.remove(camera);
        }
    }

    /// Everyone seen within `window_ns` of `now`.
    pub fn snapshot(&self, now: u64, window_ns: u64) -> Vec<MapEntry> {
        self.people
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.last_t) <= window_ns)
            .map(|(id, p)| MapEntry {
                global_id: *id,
                position: [p.axes[0].x as f64, p.axes[1].x as f64],
                last_seen_ns: p.last_t,
                trail: p.trail.iter().copied().collect(),
                cameras: p
                    .cameras
                    .keys()
                    .chain(p.remote.values().flat_map(|v| v.cameras.iter()))
                    .cloned()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            })
            .collect()
    }

    /// Ids from now on come from `start..end` (a block reserved for this process).
    pub fn set_id_block(&mut self, start: u64, end: u64) {
        self.next_id = start;
        self.id_end = end;
    }

    /// Ids left in the current block.
    pub fn ids_left(&self) -> u64 {
        self.id_end.saturating_sub(self.next_id)
    }

    /// What this process knows first-hand (observations at or after `since`), to share.
    pub fn local_views(&self, node: &str, since: u64) -> Vec<SharedView> {
        self.people
            .iter()
            .filter(|(_, p)| p.local_t.is_some_and(|l| l >= since))
            .map(|(id, p)| SharedView {
                global_id: *id,
                node: node.to_string(),
                position: [p.axes[0].x as f64, p.axes[1].x as f64],
                velocity: [p.axes[0].v as f64, p.axes[1].v as f64],
                t: p.local_t.unwrap_or(p.last_t),
                cameras: p.cameras.keys().cloned().collect(),
                appearance: p.appearance.clone(),
                look_version: p.look_version,
            })
            .collect()
    }

    /// Merges (gone, kept) made here since the last call, to share.
    pub fn take_merges(&mut self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.merges)
    }

    /// Takes in what the other processes share: `aliases` (gone, kept) first, then `views`,
    /// the complete current set (a person's remote cameras not in it have stopped); `now` is
    /// this process's clock.
    pub fn import(&mut self, views: Vec<SharedView>, aliases: &[(u64, u64)], now: u64) {
        self.forget(now);
        let resolve = |mut id: u64| {
            for _ in 0..16 {
                match aliases.iter().find(|(gone, _)| *gone == id) {
                    Some((_, keep)) if *keep != id => id = *keep,
                    _ => break,
                }
            }
            id
        };
        for &(gone, _) in aliases {
            let keep = resolve(gone);
            if keep == gone || !self.people.contains_key(&gone) {
                continue;
            }
            if self.people.contains_key(&keep) {
                self.merge(keep, gone);
            } else if let Some(p) = self.people.remove(&gone) {
                self.people.insert(keep, p);
                for v in self.links.values_mut() {
                    if *v == gone {
                        *v = keep;
                    }
                }
            }
        }
        for p in self.people.values_mut() {
            p.remote.clear();
        }
        let var = (self.config.slack * self.config.slack) as f32;
        let trail_ns = self.config.trail_ns;
        for mut v in views {
            v.global_id = resolve(v.global_id);
            let p = self
                .people
                .entry(v.global_id)
                .or_insert_with(|| MapPerson::new(v.position, v.velocity, var, v.t));
            if v.t > p.last_t || p.trail.is_empty() {
                p.axes[0].x = v.position[0] as f32;
                p.axes[1].x = v.position[1] as f32;
                p.axes[0].v = v.velocity[0] as f32;
                p.axes[1].v = v.velocity[1] as f32;
                p.last_t = p.last_t.max(v.t);
                p.trail.push_back((v.t, v.position));
                while p
                    .trail
                    .front()
                    .is_some_and(|(ts, _)| p.last_t.saturating_sub(*ts) > trail_ns)
                {
                    p.trail.pop_front();
                }
            }
            // Our own cameras' appearance stays; a person only others see takes theirs.
            if p.local_t.is_none() && v.appearance.is_some() {
                p.appearance = v.appearance.clone();
            }
            p.remote.insert(v.node.clone(), v);
        }
    }
}

static MAPS: LazyLock<Mutex<HashMap<String, Arc<Mutex<MapState>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The process-wide state of map `name` (shared by every reidmap and mapview naming it).
pub fn shared_map(name: &str, config: MapConfig) -> Arc<Mutex<MapState>> {
    let mut m = MAPS.lock().unwrap_or_else(|e| e.into_inner());
    m.entry(name.to_string())
        .or_insert_with(|| Arc::new(Mutex::new(MapState::new(config))))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: u64 = 1_000_000_000;

    #[test]
    fn overlapping_cameras_share_a_global_id_and_strangers_do_not() {
        let mut m = MapState::new(MapConfig::default());
        let a = vec![1.0f32, 0.0, 0.0];
        let b = vec![0.0f32, 1.0, 0.0];
        let (g1, _) = m.observe("left", 1, [5.0, 5.0], Some(&a), 0);
        // The same person seen by the right camera at (almost) the same place.
        let (g2, _) = m.observe("right", 7, [5.3, 5.1], Some(&[0.98, 0.1, 0.0]), S / 10);
        assert_eq!(g1, g2);
        // Someone else nearby, with a different appearance: another id.
        let (g3, _) = m.observe("right", 8, [5.5, 5.0], Some(&b), S / 10);
        assert_ne!(g3, g1);
        // Someone who looks like person 1 but is 50 m away 1 s later: gated out.
        let (g4, _) = m.observe("far", 1, [55.0, 5.0], Some(&a), S);
        assert_ne!(g4, g1);
    }

    #[test]
    fn two_ids_for_one_person_on_two_cameras_are_merged() {
        let mut m = MapState::new(MapConfig::default());
        let look = vec![1.0f32, 0.0];
        let (g1, _) = m.observe("left", 1, [5.0, 5.0], Some(&look), 0);
        // The right camera's track starts 3 m away (a partial box at the crop edge): new id.
        let (g2, _) = m.observe("right", 4, [8.0, 5.0], Some(&look), 0);
        assert_ne!(g1, g2);
        // The next frames agree on the position: soon one person, the older id.
        let mut g = g2;
        for f in 1..10u64 {
            m.observe(
                "left",
                1,
                [5.0 + 0.02 * f as f64, 5.0],
                Some(&look),
                f * 100_000_000,
            );
            g = m
                .observe(
                    "right",
                    4,
                    [5.1 + 0.02 * f as f64, 5.0],
                    Some(&look),
                    f * 100_000_000,
                )
                .0;
        }
        assert_eq!(g, g1);
        assert_eq!(
            m.observe("right", 4, [5.3, 5.0], None, 1_100_000_000).0,
            g1,
            "the link follows the merge"
        );
    }

    #[test]
    fn smoothing_follows_a_walk_and_keeps_a_trail() {
        let mut m = MapState::new(MapConfig::default());
        let mut last = [0.0, 0.0];
        for i in 0..50u64 {
            // 1 m/s along x with +-0.3 m of foot-point noise.
            let noise = if i % 2 == 0 { 0.3 } else { -0.3 };
            let (_, p) = m.observe("cam", 1, [i as f64 * 0.1 + noise, 2.0], None, i * S / 10);
            last = p;
        }
        assert!((last[0] - 4.9).abs() < 0.35, "{last:?}");
        assert!((last[1] - 2.0).abs() < 0.1);
        let snap = m.snapshot(5 * S, S);
        assert_eq!(snap.len(), 1);
        assert!(snap[0].trail.len() >= 40);
        m.track_ended("cam", 1);
        assert!(m.snapshot(5 * S, S)[0].cameras.is_empty());
    }

    /// Two processes, each with its own map state, exchanging views as `mapsync` does.
    fn exchange(from: &mut MapState, node: &str, to: &mut MapState, now: u64) {
        let views = from.local_views(node, 0);
        let aliases = from.take_merges();
        to.import(views, &aliases, now);
    }

    #[test]
    fn a_person_walking_from_one_process_to_another_keeps_the_id() {
        let (mut a, mut b) = (
            MapState::new(MapConfig::default()),
            MapState::new(MapConfig::default()),
        );
        // Disjoint id blocks, as reserved in Redis.
        a.set_id_block(1, 1001);
        b.set_id_block(1001, 2001);
        let look = [0.6f32, 0.8, 0.0];
        let other = [0.0f32, 0.0, 1.0];
        let (g, _) = a.observe("a/door", 3, [1.0, 1.0], Some(&look), 0);
        assert_eq!(g, 1);
        exchange(&mut a, "a", &mut b, S);
        // B sees the person as someone followed by a's camera.
        let snap = b.snapshot(S, S);
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].global_id, 1);
        assert_eq!(snap[0].cameras, vec!["a/door".to_string()]);
        // Two seconds later they enter B's camera 2 m further: same id; a stranger: a new one.
        a.track_ended("a/door", 3);
        exchange(&mut a, "a", &mut b, 2 * S);
        let (g2, _) = b.observe("b/hall", 1, [3.0, 1.0], Some(&look), 2 * S);
        assert_eq!(g2, 1);
        let (g3, _) = b.observe("b/hall", 2, [3.5, 1.0], Some(&other), 2 * S);
        assert_eq!(g3, 1001, "new ids come from b's own block");
        // A learns both, with b's camera.
        exchange(&mut b, "b", &mut a, 2 * S);
        let snap = a.snapshot(2 * S, S);
        assert_eq!(snap.len(), 2);
        let p1 = snap.iter().find(|p| p.global_id == 1).unwrap();
        assert_eq!(p1.cameras, vec!["b/hall".to_string()]);
        assert!((p1.position[0] - 3.0).abs() < 0.5, "{:?}", p1.position);
    }

    #[test]
    fn merges_travel_as_aliases() {
        let (mut a, mut b) = (
            MapState::new(MapConfig::default()),
            MapState::new(MapConfig::default()),
        );
        a.set_id_block(1, 1001);
        b.set_id_block(1001, 2001);
        let look = [1.0f32, 0.0];
        // Both processes start following the same person before they hear of each other.
        let (ga, _) = a.observe("a/1", 1, [5.0, 5.0], Some(&look), 0);
        let (gb, _) = b.observe("b/1", 1, [5.1, 5.0], Some(&look), 0);
        assert_ne!(ga, gb);
        exchange(&mut a, "a", &mut b, S / 10);
        // B's next observation finds a's person right there with the same look: merged into
        // the older (smaller) id, which a learns as an alias.
        let (g, _) = b.observe("b/1", 1, [5.1, 5.0], Some(&look), S / 10);
        assert_eq!(g, ga);
        exchange(&mut b, "b", &mut a, S / 5);
        let ids: Vec<u64> = a.snapshot(S / 5, S).iter().map(|p| p.global_id).collect();
        assert_eq!(ids, vec![ga]);
        // An alias for a person a never heard of renames nothing else.
        a.import(Vec::new(), &[(5000, 4000)], S / 5);
        assert_eq!(a.snapshot(S / 5, S).len(), 1);
    }

    #[test]
    fn people_only_others_see_are_forgotten_when_stale() {
        let mut m = MapState::new(MapConfig::default());
        let v = SharedView {
            global_id: 42,
            node: "n".into(),
            position: [1.0, 2.0],
            velocity: [0.0, 0.0],
            t: S,
            cameras: vec!["n/cam".into()],
            appearance: None,
            look_version: 0,
        };
        m.import(vec![v], &[], S);
        assert_eq!(m.snapshot(S, S).len(), 1);
        m.import(Vec::new(), &[], S + m.config.forget_ns + 1);
        assert!(m.snapshot(S + m.config.forget_ns + 1, u64::MAX).is_empty());
    }
}
