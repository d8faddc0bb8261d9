//! The history's questions: a person's journey, a group's presence timeline, occupancy per
//! interval, a heat map of a floor map, retention purges and erasure. Everything reads
//! through [`Db`] with portable SQL; the shaping (runs, intervals, bins) is done here.

use super::db::{Db, Val};
use super::heat;
use super::rows::Table;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Unix ms as the answers show them: RFC 3339 UTC with milliseconds.
fn utc<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::utc_of_ms(*ms))
}

fn utc_or_null<S: serde::Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => utc(ms, s),
        None => s.serialize_none(),
    }
}

/// A time range, Unix ms, `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub from: i64,
    pub to: i64,
}

impl Range {
    pub const ALL: Range = Range {
        from: i64::MIN,
        to: i64::MAX,
    };
}

/// A stay at one camera: consecutive sightings (or map points) there. Serialised as the CLI
/// and the API answer it (times in UTC), as are the other answers here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Visit {
    pub camera: String,
    #[serde(rename = "from", serialize_with = "utc")]
    pub from_ms: i64,
    #[serde(rename = "to", serialize_with = "utc")]
    pub to_ms: i64,
    /// Sightings (face decisions) or map points in the stay.
    pub count: u64,
}

/// A point of a floor-map trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrailPoint {
    #[serde(rename = "t", serialize_with = "utc")]
    pub t_ms: i64,
    pub camera: String,
    pub map: String,
    pub x: f64,
    pub y: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Journey {
    pub visits: Vec<Visit>,
    pub trail: Vec<TrailPoint>,
}

/// Consecutive entries at one camera as one visit.
fn visits(seen: impl IntoIterator<Item = (i64, String)>) -> Vec<Visit> {
    let mut out: Vec<Visit> = Vec::new();
    for (t, camera) in seen {
        match out.last_mut() {
            Some(v) if v.camera == camera => {
                v.to_ms = t;
                v.count += 1;
            }
            _ => out.push(Visit {
                camera,
                from_ms: t,
                to_ms: t,
                count: 1,
            }),
        }
    }
    out
}

/// Where a person went: `subject` is a global id of the floor map (digits: its trail and
/// the cameras that placed it), else an enrolled label, identity or unknown id (the cameras
/// whose face decisions named it, in time order).
pub fn journey(db: &mut Db, subject: &str, range: Range) -> Result<Journey, String> {
    if let Ok(gid) = subject.parse::<i64>() {
        let rows = db.query(
            "SELECT t_ms, camera, map, x, y FROM trajectory_points \
             WHERE global_id = $1 AND t_ms >= $2 AND t_ms < $3 ORDER BY t_ms, seq, k",
            &[Val::I(gid), Val::I(range.from), Val::I(range.to)],
        )?;
        let trail: Vec<TrailPoint> = rows
            .into_iter()
            .map(|r| TrailPoint {
                t_ms: r[0].as_i64().unwrap_or(0),
                camera: r[1].as_str().unwrap_or("").to_string(),
                map: r[2].as_str().unwrap_or("").to_string(),
                x: r[3].as_f64().unwrap_or(0.0),
                y: r[4].as_f64().unwrap_or(0.0),
            })
            .collect();
        let v = visits(trail.iter().map(|p| (p.t_ms, p.camera.clone())));
        return Ok(Journey { visits: v, trail });
    }
    let rows = db.query(
        "SELECT t_ms, camera FROM sightings \
         WHERE (label = $1 OR identity = $1 OR unknown_id = $1) AND t_ms >= $2 AND t_ms < $3 \
         ORDER BY t_ms, seq",
        &[Val::T(subject.into()), Val::I(range.from), Val::I(range.to)],
    )?;
    Ok(Journey {
        visits: visits(rows.into_iter().map(|r| {
            (
                r[0].as_i64().unwrap_or(0),
                r[1].as_str().unwrap_or("").to_string(),
            )
        })),
        trail: Vec::new(),
    })
}

/// An alert as kept, with its acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAlert {
    #[serde(rename = "t", serialize_with = "utc")]
    pub t_ms: i64,
    pub node: String,
    pub group: String,
    /// `absent` or `unknown`.
    pub event: String,
    pub identity: Option<String>,
    pub label: Option<String>,
    pub unknown_id: Option<String>,
    pub camera: String,
    pub cameras: Option<String>,
    pub absent_seconds: Option<f64>,
    /// None: nobody acknowledged it.
    pub ack: Option<StoredAck>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredAck {
    pub by: String,
    #[serde(rename = "at", serialize_with = "utc")]
    pub at_ms: i64,
}

/// The alerts of `range` (of `group`, or every group), oldest first, each with its first
/// acknowledgement (an `alert-ack` of the same node, alert time, group and camera).
pub fn alerts(db: &mut Db, group: Option<&str>, range: Range) -> Result<Vec<StoredAlert>, String> {
    let mut params = vec![Val::I(range.from), Val::I(range.to)];
    let mut sql = "SELECT a.t_ms, a.node, a.grp, a.event, a.identity, a.label, a.unknown_id, \
                   a.camera, a.cameras, a.absent_seconds, k.by_name, k.t_ms, a.stream, a.seq \
                   FROM alerts a LEFT JOIN alert_acks k ON k.node = a.node \
                   AND k.alert_t_ms = a.t_ms AND k.grp = a.grp AND k.camera = a.camera \
                   AND k.event = a.event AND k.subject = COALESCE(a.identity, a.unknown_id, '') \
                   WHERE a.t_ms >= $1 AND a.t_ms < $2"
        .to_string();
    if let Some(g) = group {
        sql.push_str(" AND a.grp = $3");
        params.push(Val::T(g.to_string()));
    }
    sql.push_str(" ORDER BY a.t_ms, a.stream, a.seq, k.t_ms");
    let text = |v: &Val| v.as_str().map(str::to_string);
    let mut out: Vec<StoredAlert> = Vec::new();
    let mut last_key = None;
    for r in db.query(&sql, &params)? {
        let ack = match (text(&r[10]), r[11].as_i64()) {
            (Some(by), Some(at_ms)) => Some(StoredAck { by, at_ms }),
            _ => None,
        };
        let key = (text(&r[12]), r[13].as_i64());
        // Acknowledged twice (two runs of the runner): the first acknowledgement stays.
        if last_key.as_ref() == Some(&key) {
            continue;
        }
        last_key = Some(key);
        out.push(StoredAlert {
            t_ms: r[0].as_i64().unwrap_or(0),
            node: text(&r[1]).unwrap_or_default(),
            group: text(&r[2]).unwrap_or_default(),
            event: text(&r[3]).unwrap_or_default(),
            identity: text(&r[4]),
            label: text(&r[5]),
            unknown_id: text(&r[6]),
            camera: text(&r[7]).unwrap_or_default(),
            cameras: text(&r[8]),
            absent_seconds: r[9].as_f64(),
            ack,
        });
    }
    Ok(out)
}

/// A person's state over an interval of a group's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    pub identity: String,
    pub label: String,
    /// `present`, `grace` (out of view, not yet absent) or `absent`.
    pub state: String,
    #[serde(rename = "from", serialize_with = "utc")]
    pub from_ms: i64,
    /// None: still so at the end of the range (or now).
    #[serde(rename = "to", serialize_with = "utc_or_null")]
    pub to_ms: Option<i64>,
    /// The camera of the change that began it.
    pub camera: String,
}

/// Each person's intervals in `group` within `range`, from the state changes the presence
/// element posted (the state in force at `range.from` included, clipped to it).
pub fn presence(db: &mut Db, group: &str, range: Range) -> Result<Vec<Interval>, String> {
    let rows = db.query(
        "SELECT t_ms, identity, label, to_state, camera FROM presence \
         WHERE grp = $1 AND t_ms < $2 ORDER BY t_ms, seq",
        &[Val::T(group.into()), Val::I(range.to)],
    )?;
    let mut open: HashMap<String, Interval> = HashMap::new();
    let mut out = Vec::new();
    for r in rows {
        let t = r[0].as_i64().unwrap_or(0);
        let identity = r[1].as_str().unwrap_or("").to_string();
        let next = Interval {
            identity: identity.clone(),
            label: r[2].as_str().unwrap_or("").to_string(),
            state: r[3].as_str().unwrap_or("").to_string(),
            from_ms: t,
            to_ms: None,
            camera: r[4].as_str().unwrap_or("").to_string(),
        };
        if let Some(mut prev) = open.insert(identity, next) {
            prev.to_ms = Some(t);
            if t > range.from {
                prev.from_ms = prev.from_ms.max(range.from);
                out.push(prev);
            }
        }
    }
    let mut still: Vec<Interval> = open
        .into_values()
        .map(|mut i| {
            i.from_ms = i.from_ms.max(range.from);
            i
        })
        .collect();
    still.sort_by(|a, b| (a.from_ms, &a.identity).cmp(&(b.from_ms, &b.identity)));
    out.extend(still);
    out.sort_by(|a, b| (&a.identity, a.from_ms).cmp(&(&b.identity, b.from_ms)));
    Ok(out)
}

/// What occupancy counts.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    /// People inside a zone: from zone-enter to zone-leave.
    Zone(String),
    /// People a camera saw: distinct global ids of its map points, or, for a camera without
    /// a floor map, distinct faces (identity, unknown id, else track) of its decisions.
    Camera(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    #[serde(rename = "from", serialize_with = "utc")]
    pub from_ms: i64,
    #[serde(rename = "to", serialize_with = "utc")]
    pub to_ms: i64,
    pub people: u64,
}

/// People per `step_ms` interval of `range`: those present at any moment of the interval.
pub fn occupancy(
    db: &mut Db,
    place: &Place,
    range: Range,
    step_ms: i64,
) -> Result<Vec<Step>, String> {
    if step_ms <= 0 || range.to <= range.from {
        return Err("occupancy needs --from < --to and a positive --step".into());
    }
    // Any two times and any step: a window wider than i64 or a step wider than the window
    // must not overflow (both come straight from a request).
    let span = range
        .to
        .checked_sub(range.from)
        .ok_or("occupancy: the window is too long")?;
    let n = span / step_ms + i64::from(span % step_ms != 0);
    if n > 100_000 {
        return Err(format!("occupancy: {n} steps; use a larger --step"));
    }
    let mut sets: Vec<BTreeSet<String>> = vec![BTreeSet::new(); n as usize];
    let bin = |t: i64| ((t - range.from) / step_ms) as usize;
    match place {
        Place::Zone(zone) => {
            let rows = db.query(
                "SELECT t_ms, subject, event FROM zone_events \
                 WHERE zone = $1 AND t_ms < $2 ORDER BY t_ms, seq",
                &[Val::T(zone.clone()), Val::I(range.to)],
            )?;
            // Each subject's stays [enter, leave); a stay still open lasts to the end.
            let mut inside: HashMap<String, i64> = HashMap::new();
            let mut stays: Vec<(String, i64, i64)> = Vec::new();
            for r in rows {
                let t = r[0].as_i64().unwrap_or(0);
                let subject = r[1].as_str().unwrap_or("").to_string();
                match r[2].as_str() {
                    Some("zone-enter") => {
                        inside.entry(subject).or_insert(t);
                    }
                    Some("zone-leave") => {
                        if let Some(since) = inside.remove(&subject) {
                            stays.push((subject, since, t));
                        }
                    }
                    _ => {}
                }
            }
            stays.extend(inside.into_iter().map(|(s, t)| (s, t, range.to)));
            for (subject, a, b) in stays {
                if b < range.from || a >= range.to {
                    continue;
                }
                // [enter, leave): someone who left at a step's first instant is not in it.
                let first = bin(a.max(range.from));
                let last = bin((b - 1).min(range.to - 1).max(range.from)).max(first);
                for s in &mut sets[first..=last.min(n as usize - 1)] {
                    s.insert(subject.clone());
                }
            }
        }
        Place::Camera(camera) => {
            let p = [Val::T(camera.clone()), Val::I(range.from), Val::I(range.to)];
            let points = db.query(
                "SELECT t_ms, global_id FROM trajectory_points \
                 WHERE camera = $1 AND t_ms >= $2 AND t_ms < $3",
                &p,
            )?;
            let rows = if points.is_empty() {
                db.query(
                    "SELECT t_ms, COALESCE(identity, unknown_id, CAST(track AS TEXT)) FROM sightings \
                     WHERE camera = $1 AND t_ms >= $2 AND t_ms < $3",
                    &p,
                )?
            } else {
                points
            };
            for r in rows {
                let t = r[0].as_i64().unwrap_or(0);
                let who = match &r[1] {
                    Val::I(g) => g.to_string(),
                    v => v.as_str().unwrap_or("").to_string(),
                };
                sets[bin(t)].insert(who);
            }
        }
    }
    Ok(sets
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let from_ms = range.from + i as i64 * step_ms;
            Step {
                from_ms,
                to_ms: from_ms.saturating_add(step_ms).min(range.to),
                people: s.len() as u64,
            }
        })
        .collect())
}

/// Map points counted on a grid of `cell`-sized squares (map units).
#[derive(Debug, Clone, PartialEq)]
pub struct Heat {
    pub x0: f64,
    pub y0: f64,
    pub cell: f64,
    pub cols: usize,
    pub rows: usize,
    /// Row-major, `rows` × `cols`; row 0 is `y0`.
    pub counts: Vec<u64>,
    pub points: u64,
}

impl Heat {
    /// The hottest cell's centre (map units) and count.
    pub fn hottest(&self) -> Option<(f64, f64, u64)> {
        let (i, &c) = self.counts.iter().enumerate().max_by_key(|(_, c)| **c)?;
        (c > 0).then(|| {
            (
                self.x0 + (i % self.cols) as f64 * self.cell + self.cell / 2.0,
                self.y0 + (i / self.cols) as f64 * self.cell + self.cell / 2.0,
                c,
            )
        })
    }
}

/// Where people stood on `map` within `range`: the map points counted on a grid of
/// `cell`-sized squares. `bounds` (x0, y0, x1, y1) fixes the area (the floor plan's); else
/// the points' extent.
///
/// A cell that is a multiple of [`heat::HEAT_CELL`], over bounds on that grid (or none), is
/// summed from the heat cells as [`heat::split_window`] divides the window (the hours it
/// covers from `heat_cells`, at most half an hour of points at each end) — the same counts
/// as from every point. The grid then starts on a line of that grid (the extent's lowest
/// cell). Any other cell or bounds read every point.
pub fn heatmap(
    db: &mut Db,
    map: &str,
    range: Range,
    cell: f64,
    bounds: Option<[f64; 4]>,
) -> Result<Heat, String> {
    if cell <= 0.0 || !cell.is_finite() {
        return Err("heatmap: --cell must be a positive size in map units".into());
    }
    let on_grid = |v: f64| {
        let k = v / heat::HEAT_CELL;
        k.is_finite() && (k - k.round()).abs() < 1e-9
    };
    let per_cell = (cell / heat::HEAT_CELL).round();
    if !on_grid(cell) || per_cell < 1.0 || !bounds.is_none_or(|b| on_grid(b[0]) && on_grid(b[1])) {
        return heatmap_of_points(db, map, range, cell, bounds);
    }
    // The heat cells' counts in the window: the hours it covers from the table; an hour it
    // cuts from the points of the part it covers, or, when that is more than half the hour,
    // from the hour's cells less the points of the part it leaves out (at most half an hour
    // of points read at each end).
    let mut base: HashMap<(i64, i64), i64> = HashMap::new();
    let (plus, minus, hours) = heat::split_window(range.from, range.to);
    if let Some((lo, hi)) = hours {
        let rows = db.query(
            "SELECT cx, cy, CAST(SUM(n) AS BIGINT) FROM heat_cells WHERE map = $1 AND hour_ms >= $2 AND hour_ms < $3 \
             GROUP BY cx, cy",
            &[Val::T(map.into()), Val::I(lo), Val::I(hi)],
        )?;
        for r in &rows {
            if let (Some(cx), Some(cy), Some(n)) = (r[0].as_i64(), r[1].as_i64(), r[2].as_i64()) {
                *base.entry((cx, cy)).or_insert(0) += n;
            }
        }
    }
    for (ranges, sign) in [(plus, 1), (minus, -1)] {
        for (from, to) in ranges {
            for (x, y) in points_of(db, map, Range { from, to })? {
                if let Some(c) = heat::cell_of(x, y) {
                    *base.entry(c).or_insert(0) += sign;
                }
            }
        }
    }
    let base: HashMap<(i64, i64), u64> = base
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| (c, n as u64))
        .collect();
    let k = per_cell as i64;
    // The grid's origin and size, in heat cells.
    let (ox, oy, cols, rows_n) = match bounds {
        Some([x0, y0, x1, y1]) => (
            (x0 / heat::HEAT_CELL).round() as i64,
            (y0 / heat::HEAT_CELL).round() as i64,
            (((x1 - x0) / cell).floor() as usize).saturating_add(1),
            (((y1 - y0) / cell).floor() as usize).saturating_add(1),
        ),
        None if base.is_empty() => (0, 0, 1, 1),
        None => {
            let (mut lo, mut hi) = ((i64::MAX, i64::MAX), (i64::MIN, i64::MIN));
            for &(cx, cy) in base.keys() {
                lo = (lo.0.min(cx), lo.1.min(cy));
                hi = (hi.0.max(cx), hi.1.max(cy));
            }
            let span = |a: i64, b: i64| (i128::from(b) - i128::from(a)) / i128::from(k) + 1;
            (
                lo.0,
                lo.1,
                span(lo.0, hi.0).min(1024) as usize,
                span(lo.1, hi.1).min(1024) as usize,
            )
        }
    };
    let (cols, rows_n) = (cols.clamp(1, 1024), rows_n.clamp(1, 1024));
    let mut counts = vec![0u64; cols * rows_n];
    let mut points = 0;
    for (&(cx, cy), &n) in &base {
        let qx = (i128::from(cx) - i128::from(ox)).div_euclid(i128::from(k));
        let qy = (i128::from(cy) - i128::from(oy)).div_euclid(i128::from(k));
        if qx < 0 || qy < 0 || qx >= cols as i128 || qy >= rows_n as i128 {
            continue;
        }
        counts[qy as usize * cols + qx as usize] += n;
        points += n;
    }
    Ok(Heat {
        x0: ox as f64 * heat::HEAT_CELL,
        y0: oy as f64 * heat::HEAT_CELL,
        cell,
        cols,
        rows: rows_n,
        counts,
        points,
    })
}

/// The map points of `map` in `range`.
fn points_of(db: &mut Db, map: &str, range: Range) -> Result<Vec<(f64, f64)>, String> {
    let rows = db.query(
        "SELECT x, y FROM trajectory_points WHERE map = $1 AND t_ms >= $2 AND t_ms < $3",
        &[Val::T(map.into()), Val::I(range.from), Val::I(range.to)],
    )?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r[0].as_f64()?, r[1].as_f64()?)))
        .collect())
}

/// [`heatmap`] from every point of the window (a grid off the heat cells' grid; and the
/// reference the heat cells are tested against).
pub fn heatmap_of_points(
    db: &mut Db,
    map: &str,
    range: Range,
    cell: f64,
    bounds: Option<[f64; 4]>,
) -> Result<Heat, String> {
    let pts = points_of(db, map, range)?;
    let [x0, y0, x1, y1] = match bounds {
        Some(b) => b,
        None if pts.is_empty() => [0.0, 0.0, cell, cell],
        None => pts.iter().fold(
            [f64::MAX, f64::MAX, f64::MIN, f64::MIN],
            |[a, b, c, d], &(x, y)| [a.min(x), b.min(y), c.max(x), d.max(y)],
        ),
    };
    let cols = (((x1 - x0) / cell).floor() as usize)
        .saturating_add(1)
        .clamp(1, 1024);
    let rows_n = (((y1 - y0) / cell).floor() as usize)
        .saturating_add(1)
        .clamp(1, 1024);
    let mut counts = vec![0u64; cols * rows_n];
    let mut points = 0;
    for (x, y) in pts {
        let (cx, cy) = ((x - x0) / cell, (y - y0) / cell);
        if cx < 0.0 || cy < 0.0 || cx >= cols as f64 || cy >= rows_n as f64 {
            continue;
        }
        counts[cy as usize * cols + cx as usize] += 1;
        points += 1;
    }
    Ok(Heat {
        x0,
        y0,
        cell,
        cols,
        rows: rows_n,
        counts,
        points,
    })
}

/// Retention per kind of row, days (`KIND=DAYS`; 0 keeps forever).
#[derive(Debug, Clone, PartialEq)]
pub struct Retention(pub BTreeMap<String, f64>);

/// The defaults: embeddings (when kept at all) 7 days, decisions and trails 30 days,
/// presence, zones and cameras 90, alerts a year.
pub const DEFAULT_RETENTION: [(&str, f64); 7] = [
    ("embeddings", 7.0),
    ("sightings", 30.0),
    ("trajectories", 30.0),
    ("presence", 90.0),
    ("zones", 90.0),
    ("cameras", 90.0),
    ("alerts", 365.0),
];

impl Default for Retention {
    fn default() -> Self {
        Retention(
            DEFAULT_RETENTION
                .iter()
                .map(|(k, d)| (k.to_string(), *d))
                .collect(),
        )
    }
}

impl Retention {
    /// The defaults changed by `KIND=DAYS,…`; an unknown kind or a bad number is an error
    /// naming it.
    pub fn parse(spec: &str) -> Result<Retention, String> {
        let mut r = Retention::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, d) = part
                .split_once('=')
                .ok_or_else(|| format!("history retention {part:?}: expected KIND=DAYS"))?;
            let k = k.trim();
            if !r.0.contains_key(k) {
                return Err(format!(
                    "history retention: unknown kind {k:?} (known: {})",
                    r.0.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            let d: f64 = d
                .trim()
                .parse()
                .ok()
                .filter(|d: &f64| d.is_finite() && *d >= 0.0)
                .ok_or_else(|| format!("history retention {k}: {d:?} is not a number of days"))?;
            r.0.insert(k.to_string(), d);
        }
        Ok(r)
    }
}

/// Deletes rows older than their retention at `now_ms`; rows deleted per table.
pub fn purge(db: &mut Db, retention: &Retention, now_ms: i64) -> Result<Vec<(Table, u64)>, String> {
    let mut out = Vec::new();
    for t in Table::ALL {
        let days = retention.0.get(t.kind()).copied().unwrap_or(0.0);
        if days <= 0.0 {
            continue;
        }
        let cutoff = now_ms - (days * 86_400_000.0) as i64;
        let n = if t == Table::TrajectoryPoints {
            // Whole hours, with their heat cells, so the cells count the points kept.
            let cutoff = heat::hour_of(cutoff);
            // Map by map, through the (map, t_ms) index (points have no t_ms index).
            // The maps by a loose index scan (one index probe per map, not a scan of every
            // point; portable: both databases run recursive CTEs).
            let maps = db.query(
                "WITH RECURSIVE m(map) AS (SELECT MIN(map) FROM trajectory_points \
                 UNION ALL SELECT (SELECT MIN(t.map) FROM trajectory_points t WHERE t.map > m.map) \
                 FROM m WHERE m.map IS NOT NULL) SELECT map FROM m WHERE map IS NOT NULL",
                &[],
            )?;
            let mut n = 0;
            for m in maps.iter().filter_map(|r| r[0].as_str()) {
                let key = || vec![Val::T(m.to_string()), Val::I(cutoff)];
                n += db.transaction(&[
                    (
                        "DELETE FROM trajectory_points WHERE map = $1 AND t_ms < $2",
                        key(),
                    ),
                    (
                        "DELETE FROM heat_cells WHERE map = $1 AND hour_ms < $2",
                        key(),
                    ),
                ])?[0];
            }
            n
        } else {
            db.execute(
                &format!("DELETE FROM {} WHERE t_ms < $1", t.name()),
                &[Val::I(cutoff)],
            )?
        };
        out.push((t, n));
    }
    Ok(out)
}

/// What an erasure removed from the history, per table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Erased {
    pub subject: String,
    pub rows: BTreeMap<String, u64>,
}

/// Removes every row about `subject` (label, identity or unknown id; digits: a global id's
/// trail) and writes the audit record (`actor`, `now_ms`, the counts, and `extra`: what was
/// removed elsewhere, e.g. the gallery and Redis), in one transaction.
pub fn erase(
    db: &mut Db,
    subject: &str,
    actor: &str,
    now_ms: i64,
    extra: &serde_json::Value,
) -> Result<Erased, String> {
    let s = || vec![Val::T(subject.to_string())];
    let mut statements: Vec<(&str, Vec<Val>)> = vec![
        (
            "DELETE FROM sightings WHERE label = $1 OR identity = $1 OR unknown_id = $1",
            s(),
        ),
        (
            "DELETE FROM presence WHERE identity = $1 OR label = $1",
            s(),
        ),
        // The acknowledgements name their alert's identity: gone before the alerts.
        (
            "DELETE FROM alert_acks WHERE subject = $1 OR subject IN (SELECT \
             COALESCE(identity, unknown_id) FROM alerts WHERE identity = $1 OR label = $1)",
            s(),
        ),
        (
            "DELETE FROM alerts WHERE identity = $1 OR label = $1 OR unknown_id = $1",
            s(),
        ),
        ("DELETE FROM zone_events WHERE subject = $1", s()),
        (
            "DELETE FROM embeddings WHERE label = $1 OR identity = $1 OR unknown_id = $1",
            s(),
        ),
    ];
    let names = [
        "sightings",
        "presence",
        "alert_acks",
        "alerts",
        "zone_events",
        "embeddings",
        "trajectory_points",
    ];
    if let Ok(gid) = subject.parse::<i64>() {
        statements.push((
            "DELETE FROM trajectory_points WHERE global_id = $1",
            vec![Val::I(gid)],
        ));
        // The heat cells no longer count the trail's points.
        let mut cells = heat::Cells::default();
        for p in db.query(
            "SELECT map, t_ms, x, y FROM trajectory_points WHERE global_id = $1",
            &[Val::I(gid)],
        )? {
            if let (Some(map), Some(t), Some(x), Some(y)) =
                (p[0].as_str(), p[1].as_i64(), p[2].as_f64(), p[3].as_f64())
            {
                cells.add(map, t, x, y, -1);
            }
        }
        for ((map, hour, cx, cy), n) in cells.0 {
            let key = vec![Val::T(map), Val::I(hour), Val::I(cx), Val::I(cy)];
            let mut add = key.clone();
            add.push(Val::I(n));
            statements.push((
                "UPDATE heat_cells SET n = n + $5 WHERE map = $1 AND hour_ms = $2 AND cx = $3 AND cy = $4",
                add,
            ));
            statements.push((
                "DELETE FROM heat_cells WHERE map = $1 AND hour_ms = $2 AND cx = $3 AND cy = $4 AND n <= 0",
                key,
            ));
        }
    }
    // The audit record says how many rows went; it is written in the same transaction, so
    // the counts are those of a first pass (the statements are idempotent).
    let counts = db.transaction(&statements)?;
    let rows: BTreeMap<String, u64> = names
        .iter()
        .zip(counts)
        .map(|(n, c)| (n.to_string(), c))
        .collect();
    let detail = serde_json::json!({"rows": rows, "elsewhere": extra});
    db.execute(
        "INSERT INTO audit (t_ms, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
        &[
            Val::I(now_ms),
            Val::T(actor.to_string()),
            Val::T("erase".into()),
            Val::T(subject.to_string()),
            Val::T(detail.to_string()),
        ],
    )?;
    Ok(Erased {
        subject: subject.to_string(),
        rows,
    })
}

/// A sighting whose stored embedding matches a photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceHit {
    #[serde(rename = "t", serialize_with = "utc")]
    pub t_ms: i64,
    pub node: String,
    pub camera: String,
    pub track: i64,
    pub label: String,
    pub identity: Option<String>,
    pub unknown_id: Option<String>,
    pub similarity: f32,
    pub model: String,
}

/// The sightings within `range` whose embedding (of `model`) has a cosine similarity of at
/// least `threshold` with `query` (L2-normalised), best first, at most `top`.
pub fn search_face(
    db: &mut Db,
    query: &[f32],
    model: &str,
    range: Range,
    threshold: f32,
    top: usize,
) -> Result<Vec<FaceHit>, String> {
    let rows = db.query(
        "SELECT t_ms, node, camera, track, label, identity, unknown_id, vector FROM embeddings \
         WHERE model = $1 AND t_ms >= $2 AND t_ms < $3",
        &[Val::T(model.into()), Val::I(range.from), Val::I(range.to)],
    )?;
    let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let query: Vec<f32> = query.iter().map(|x| x / norm).collect();
    let text = |v: &Val| v.as_str().map(str::to_string);
    let mut hits: Vec<FaceHit> = rows
        .iter()
        .filter_map(|r| {
            let v = super::rows::decode_embedding(r[7].as_str()?)?;
            if v.len() != query.len() {
                return None;
            }
            let similarity: f32 = v.iter().zip(&query).map(|(a, b)| a * b).sum();
            (similarity >= threshold).then(|| FaceHit {
                t_ms: r[0].as_i64().unwrap_or(0),
                node: text(&r[1]).unwrap_or_default(),
                camera: text(&r[2]).unwrap_or_default(),
                track: r[3].as_i64().unwrap_or(0),
                label: text(&r[4]).unwrap_or_default(),
                identity: text(&r[5]),
                unknown_id: text(&r[6]),
                similarity,
                model: model.to_string(),
            })
        })
        .collect();
    hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    hits.truncate(top);
    Ok(hits)
}

/// The audit records, oldest first.
pub fn audit(db: &mut Db) -> Result<Vec<serde_json::Value>, String> {
    let rows = db.query(
        "SELECT t_ms, actor, action, subject, detail FROM audit ORDER BY t_ms",
        &[],
    )?;
    Ok(rows
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "t_ms": r[0].json(), "actor": r[1].json(), "action": r[2].json(),
                "subject": r[3].json(),
                "detail": r[4].as_str().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_entries_at_a_camera_are_one_visit() {
        let v = visits([
            (1, "a".to_string()),
            (2, "a".to_string()),
            (5, "b".to_string()),
            (9, "a".to_string()),
        ]);
        assert_eq!(
            v.iter()
                .map(|v| (v.camera.as_str(), v.from_ms, v.to_ms, v.count))
                .collect::<Vec<_>>(),
            [("a", 1, 2, 2), ("b", 5, 5, 1), ("a", 9, 9, 1)]
        );
    }

    #[test]
    fn answers_serialise_with_utc_times() {
        let v = serde_json::to_value(Interval {
            identity: "ada".into(),
            label: "Ada".into(),
            state: "present".into(),
            from_ms: 1_764_669_600_000,
            to_ms: None,
            camera: "door".into(),
        })
        .unwrap();
        assert_eq!(v["from"], "2025-12-02T10:00:00.000Z");
        assert!(v["to"].is_null());
        assert!(v.get("from_ms").is_none());
    }

    #[test]
    fn retention_takes_kind_equals_days_and_names_mistakes() {
        let r = Retention::parse("sightings=7, alerts=0").unwrap();
        assert_eq!(r.0["sightings"], 7.0);
        assert_eq!(r.0["alerts"], 0.0);
        assert_eq!(r.0["presence"], 90.0);
        assert!(Retention::parse("faces=3").unwrap_err().contains("faces"));
        assert!(
            Retention::parse("alerts=-1")
                .unwrap_err()
                .contains("alerts")
        );
        assert!(Retention::parse("alerts").is_err());
    }
}
