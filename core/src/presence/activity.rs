//! Scene activity from a coarse luma grid: motion (for the idle mode) and sustained darkness
//! (for the dark-scene warning). Time comes from the caller (buffer running time, ns).

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivityConfig {
    /// Mean luma (0..255) below which the scene counts as dark.
    pub dark_threshold: f32,
    /// How long the scene must stay dark before it is reported, seconds.
    pub dark_seconds: f64,
    /// Seconds without motion and without faces before detection slows down; 0 = never.
    pub idle_seconds: f64,
    /// A grid cell whose luma changes by more than this counts as changed.
    pub cell_threshold: u8,
    /// Fraction of changed cells that counts as motion (at least 2 cells).
    pub motion_fraction: f32,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        ActivityConfig {
            dark_threshold: 25.0,
            dark_seconds: 10.0,
            idle_seconds: 30.0,
            cell_threshold: 10,
            motion_fraction: 0.005,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActivityEvent {
    /// The scene has been darker than the threshold since `since_ns`.
    DarkStarted { mean_luma: f32, since_ns: u64 },
    /// The scene is bright enough again.
    DarkEnded { mean_luma: f32 },
    /// No motion and no face for `idle_seconds`: detection slows down.
    IdleEntered,
    /// Motion or a face: back to full rate.
    IdleLeft,
}

#[derive(Debug, Clone, Default)]
pub struct ActivityMonitor {
    pub config: ActivityConfig,
    prev: Vec<u8>,
    last_activity_ns: Option<u64>,
    dark_since_ns: Option<u64>,
    dark_reported: bool,
    idle: bool,
}

/// Hysteresis above the dark threshold before darkness counts as over.
const DARK_HYSTERESIS: f32 = 5.0;

impl ActivityMonitor {
    pub fn new(config: ActivityConfig) -> Self {
        ActivityMonitor {
            config,
            ..Default::default()
        }
    }

    pub fn is_idle(&self) -> bool {
        self.idle
    }

    pub fn is_dark(&self) -> bool {
        self.dark_reported
    }

    /// True when `grid` differs from the previous grid enough to count as motion.
    pub fn motion(&self, grid: &[u8]) -> bool {
        if self.prev.len() != grid.len() || grid.is_empty() {
            return !grid.is_empty();
        }
        let t = self.config.cell_threshold;
        let changed = grid
            .iter()
            .zip(&self.prev)
            .filter(|(a, b)| a.abs_diff(**b) > t)
            .count();
        let needed = ((grid.len() as f32 * self.config.motion_fraction).ceil() as usize).max(2);
        changed >= needed
    }

    /// Feeds one frame's luma grid at time `ts_ns`; returns whether it moved and any events.
    pub fn observe(&mut self, ts_ns: u64, grid: &[u8]) -> (bool, Vec<ActivityEvent>) {
        let mut events = Vec::new();
        let moved = self.motion(grid);
        self.prev.clear();
        self.prev.extend_from_slice(grid);
        if moved {
            self.mark_active(ts_ns, &mut events);
        } else {
            self.last_activity_ns.get_or_insert(ts_ns);
            self.check_idle(ts_ns, &mut events);
        }
        let mean = if grid.is_empty() {
            255.0
        } else {
            grid.iter().map(|&v| v as f32).sum::<f32>() / grid.len() as f32
        };
        if mean < self.config.dark_threshold {
            let since = *self.dark_since_ns.get_or_insert(ts_ns);
            let dark_for = ts_ns.saturating_sub(since) as f64 / 1e9;
            if !self.dark_reported && dark_for >= self.config.dark_seconds {
                self.dark_reported = true;
                events.push(ActivityEvent::DarkStarted {
                    mean_luma: mean,
                    since_ns: since,
                });
            }
        } else if mean >= self.config.dark_threshold + DARK_HYSTERESIS || !self.dark_reported {
            self.dark_since_ns = None;
            if self.dark_reported {
                self.dark_reported = false;
                events.push(ActivityEvent::DarkEnded { mean_luma: mean });
            }
        }
        (moved, events)
    }

    /// Faces were found at `ts_ns`: counts as activity.
    pub fn faces_seen(&mut self, ts_ns: u64) -> Vec<ActivityEvent> {
        let mut events = Vec::new();
        self.mark_active(ts_ns, &mut events);
        events
    }

    fn mark_active(&mut self, ts_ns: u64, events: &mut Vec<ActivityEvent>) {
        self.last_activity_ns = Some(ts_ns);
        if self.idle {
            self.idle = false;
            events.push(ActivityEvent::IdleLeft);
        }
    }

    fn check_idle(&mut self, ts_ns: u64, events: &mut Vec<ActivityEvent>) {
        if self.config.idle_seconds <= 0.0 || self.idle {
            return;
        }
        let last = self.last_activity_ns.unwrap_or(ts_ns);
        if ts_ns.saturating_sub(last) as f64 / 1e9 >= self.config.idle_seconds {
            self.idle = true;
            events.push(ActivityEvent::IdleEntered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: u64 = 1_000_000_000;

    fn cfg() -> ActivityConfig {
        ActivityConfig {
            dark_seconds: 2.0,
            idle_seconds: 5.0,
            ..Default::default()
        }
    }

    #[test]
    fn dark_is_reported_once_after_the_delay_and_ends_with_hysteresis() {
        let mut m = ActivityMonitor::new(cfg());
        let dark = vec![10u8; 64];
        assert!(m.observe(0, &dark).1.is_empty());
        assert!(m.observe(S, &dark).1.is_empty());
        let (_, ev) = m.observe(2 * S, &dark);
        assert_eq!(
            ev,
            vec![ActivityEvent::DarkStarted {
                mean_luma: 10.0,
                since_ns: 0
            }]
        );
        assert!(m.observe(3 * S, &dark).1.is_empty(), "reported once");
        // Just above the threshold but inside the hysteresis band: still dark.
        let dim = vec![27u8; 64];
        let (_, ev) = m.observe(4 * S, &dim);
        assert!(
            !ev.iter()
                .any(|e| matches!(e, ActivityEvent::DarkEnded { .. }))
        );
        let bright = vec![120u8; 64];
        let (_, ev) = m.observe(5 * S, &bright);
        assert!(ev.contains(&ActivityEvent::DarkEnded { mean_luma: 120.0 }));
    }

    #[test]
    fn short_darkness_is_not_reported() {
        let mut m = ActivityMonitor::new(cfg());
        let dark = vec![10u8; 64];
        let bright = vec![120u8; 64];
        m.observe(0, &dark);
        m.observe(S, &bright);
        m.observe(2 * S, &dark);
        let (_, ev) = m.observe(3 * S, &dark);
        assert!(
            !ev.iter()
                .any(|e| matches!(e, ActivityEvent::DarkStarted { .. }))
        );
    }

    #[test]
    fn idle_after_stillness_and_back_on_motion_or_face() {
        let mut m = ActivityMonitor::new(cfg());
        let still = vec![100u8; 64];
        m.observe(0, &still);
        for t in 1..5 {
            assert!(m.observe(t * S, &still).1.is_empty());
        }
        let (_, ev) = m.observe(5 * S, &still);
        assert_eq!(ev, vec![ActivityEvent::IdleEntered]);
        assert!(m.is_idle());
        let mut moved = still.clone();
        for v in moved.iter_mut().take(8) {
            *v = 200;
        }
        let (motion, ev) = m.observe(6 * S, &moved);
        assert!(motion);
        assert_eq!(ev, vec![ActivityEvent::IdleLeft]);
        // Still again for 5 s -> idle; a face brings it back.
        for t in 7..12 {
            m.observe(t * S, &moved);
        }
        assert!(m.is_idle());
        assert_eq!(m.faces_seen(12 * S), vec![ActivityEvent::IdleLeft]);
    }

    #[test]
    fn noise_below_threshold_is_not_motion() {
        let mut m = ActivityMonitor::new(cfg());
        let a = vec![100u8; 64];
        m.observe(0, &a);
        let b: Vec<u8> = (0..64).map(|i| if i % 2 == 0 { 108 } else { 93 }).collect();
        assert!(!m.motion(&b));
        let mut c = a.clone();
        c[0] = 200;
        assert!(!m.motion(&c), "a single changed cell is not motion");
        c[1] = 200;
        assert!(m.motion(&c));
    }

    #[test]
    fn idle_disabled_with_zero() {
        let mut m = ActivityMonitor::new(ActivityConfig {
            idle_seconds: 0.0,
            ..cfg()
        });
        let still = vec![100u8; 64];
        for t in 0..100 {
            m.observe(t * S, &still);
        }
        assert!(!m.is_idle());
    }
}
