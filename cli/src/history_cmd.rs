//! `sightline history`: ask the history store (docs/history.md). Answers are JSON lines on
//! stdout; times in and out are UTC.

use clap::{Args, Subcommand};
use serde_json::json;
use sightline_core::history::query::{self, Place, Range};
use sightline_core::history::{
    Db, Location, Retention, heatpng, parse_duration_ms, parse_time_ms, utc_of_ms as utc,
};
use std::path::PathBuf;

#[derive(Args)]
pub struct HistoryArgs {
    /// The database: sqlite:PATH or postgres://… (default: the runner's,
    /// sqlite:STATE_DIR/history.db). Better kept off the command line when it has a
    /// password: SIGHTLINE_HISTORY.
    #[arg(long, env = "SIGHTLINE_HISTORY", hide_env_values = true)]
    pub db: Option<String>,
    /// The node whose default database is meant (default: the host name).
    #[arg(long)]
    pub node: Option<String>,
    /// The runner's state directory (as `sightline run --state-dir`).
    #[arg(long, env = "SIGHTLINE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: HistoryCmd,
}

/// A time window: RFC 3339 (`2026-12-02T14:00:00Z`), a date (`2026-12-02`, midnight UTC),
/// `now`, or an age (`-24h`, `-90m`, `-7d`).
#[derive(Args, Clone)]
pub struct Window {
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
}

#[derive(Subcommand)]
pub enum HistoryCmd {
    /// Where a person went: a label, identity or unknown id (the cameras in order), or a
    /// floor-map global id (digits: the cameras and the map trail).
    Journey {
        subject: String,
        #[command(flatten)]
        window: Window,
    },
    /// A group's presence timeline: each person's present / grace / absent intervals.
    Presence {
        group: String,
        #[command(flatten)]
        window: Window,
    },
    /// The alerts (absences, strangers), oldest first, each with who acknowledged it and
    /// when.
    Alerts {
        /// Only this presence group's.
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        window: Window,
    },
    /// People per interval in a zone (from its enter/leave events) or seen by a camera.
    Occupancy {
        #[arg(long, conflicts_with = "camera", required_unless_present = "camera")]
        zone: Option<String>,
        #[arg(long)]
        camera: Option<String>,
        #[command(flatten)]
        window: Window,
        /// Interval length: 30s, 15m, 1h, 1d.
        #[arg(long, default_value = "15m")]
        step: String,
    },
    /// A PNG of where people stood on a floor map.
    Heatmap {
        map: String,
        #[command(flatten)]
        window: Window,
        #[arg(long)]
        out: PathBuf,
        /// Cell size in map units.
        #[arg(long, default_value_t = 0.25)]
        cell: f64,
        /// The area drawn: X0,Y0,X1,Y1 in map units (default: where the points are).
        #[arg(long, allow_hyphen_values = true, value_name = "X0,Y0,X1,Y1")]
        bounds: Option<String>,
        /// A floor-plan PNG of --bounds, drawn underneath.
        #[arg(long, requires = "bounds")]
        plan: Option<PathBuf>,
    },
    /// Sightings whose kept embedding (sightline run --history-embeddings) matches the face
    /// in a photo: finds a stranger again without enrolling them. Best first.
    SearchFace {
        photo: PathBuf,
        #[command(flatten)]
        window: Window,
        /// At most this many hits.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Cosine similarity of a hit (default: the model's match threshold, the one
        /// facematch decides with).
        #[arg(long)]
        threshold: Option<f32>,
        /// The photo has several faces: take the largest.
        #[arg(long)]
        largest: bool,
    },
    /// Delete rows past their retention now (the runner does it hourly).
    Purge {
        /// KIND=DAYS,… (embeddings, sightings, trajectories, presence, zones, cameras, alerts).
        #[arg(long, default_value = "")]
        retention: String,
    },
    /// Remove a person (label, identity, unknown id or global id) from history, and from a
    /// gallery file and the shared Redis state when given; writes an audit record.
    Erase {
        subject: String,
        /// Who asks (kept in the audit record; default: $USER).
        #[arg(long)]
        actor: Option<String>,
        /// A gallery file to remove the person from.
        #[arg(long)]
        gallery: Option<PathBuf>,
        /// The shared Redis (gallery and unknown ids); SIGHTLINE_REDIS_URL.
        #[arg(long, env = "SIGHTLINE_REDIS_URL", hide_env_values = true)]
        redis_url: Option<String>,
        #[arg(long, default_value = "sightline:gallery")]
        gallery_key: String,
    },
    /// The audit records (erasures), oldest first.
    Audit,
}

fn range(w: &Window, now_ms: i64) -> Result<Range, String> {
    Ok(Range {
        from: match &w.from {
            Some(t) => parse_time_ms(t, now_ms)?,
            None => i64::MIN,
        },
        to: match &w.to {
            Some(t) => parse_time_ms(t, now_ms)?,
            None => i64::MAX,
        },
    })
}

/// `item` as JSON with `"kind": kind` first (journey lines).
fn kind(kind: &str, item: &impl serde::Serialize) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("kind".into(), kind.into());
    if let Ok(serde_json::Value::Object(o)) = serde_json::to_value(item) {
        m.extend(o);
    }
    serde_json::Value::Object(m)
}

/// The runner's default database for `node` in `state_dir`.
pub fn default_location(state_dir: &std::path::Path) -> String {
    format!("sqlite:{}", state_dir.join("history.db").display())
}

pub fn run(a: HistoryArgs) -> Result<(), String> {
    let raw = match &a.db {
        Some(u) => u.clone(),
        None => {
            let node = a
                .node
                .clone()
                .unwrap_or_else(sightline_core::delivery::default_node_id);
            let dir = a
                .state_dir
                .clone()
                .unwrap_or_else(|| crate::run::default_state_dir(&node));
            default_location(&dir)
        }
    };
    let location = Location::parse(&raw)?;
    if let Location::Sqlite(p) = &location
        && !p.exists()
    {
        return Err(format!(
            "no history database at {} (the runner keeps it in --state-dir; --db names another)",
            p.display()
        ));
    }
    let mut db = Db::open(&location)?;
    let now = sightline_core::history::now_ms();
    let line = |v: serde_json::Value| println!("{v}");
    match a.cmd {
        HistoryCmd::Journey { subject, window } => {
            let j = query::journey(&mut db, &subject, range(&window, now)?)?;
            for v in &j.visits {
                line(kind("visit", v));
            }
            for p in &j.trail {
                line(kind("point", p));
            }
        }
        HistoryCmd::Presence { group, window } => {
            for i in query::presence(&mut db, &group, range(&window, now)?)? {
                line(json!(i));
            }
        }
        HistoryCmd::Alerts { group, window } => {
            for a in query::alerts(&mut db, group.as_deref(), range(&window, now)?)? {
                line(json!(a));
            }
        }
        HistoryCmd::Occupancy {
            zone,
            camera,
            window,
            step,
        } => {
            let r = range(&window, now)?;
            if r.from == i64::MIN || r.to == i64::MAX {
                return Err("occupancy needs --from and --to".into());
            }
            let place = match (zone, camera) {
                (Some(z), _) => Place::Zone(z),
                (None, Some(c)) => Place::Camera(c),
                (None, None) => return Err("occupancy needs --zone or --camera".into()),
            };
            for s in query::occupancy(&mut db, &place, r, parse_duration_ms(&step)?)? {
                line(json!(s));
            }
        }
        HistoryCmd::Heatmap {
            map,
            window,
            out,
            cell,
            bounds,
            plan,
        } => {
            let b = match bounds {
                None => None,
                Some(b) => {
                    let v: Vec<f64> = b
                        .split(',')
                        .map(|x| x.trim().parse::<f64>())
                        .collect::<Result<_, _>>()
                        .map_err(|_| format!("--bounds {b:?}: four numbers X0,Y0,X1,Y1"))?;
                    match v[..] {
                        [x0, y0, x1, y1] if x1 > x0 && y1 > y0 => Some([x0, y0, x1, y1]),
                        _ => {
                            return Err(format!(
                                "--bounds {b:?}: four numbers X0,Y0,X1,Y1 with X1 > X0, Y1 > Y0"
                            ));
                        }
                    }
                }
            };
            let heat = query::heatmap(&mut db, &map, range(&window, now)?, cell, b)?;
            let (w, h) = heatpng::write_png(&heat, plan.as_deref(), &out)?;
            let hottest = heat
                .hottest()
                .map(|(x, y, n)| json!({"x": x, "y": y, "points": n}));
            line(
                json!({"out": out.display().to_string(), "width": w, "height": h,
                        "points": heat.points, "cells": [heat.cols, heat.rows],
                        "origin": [heat.x0, heat.y0], "cell": heat.cell, "hottest": hottest}),
            );
        }
        HistoryCmd::SearchFace {
            photo,
            window,
            top,
            threshold,
            largest,
        } => {
            let r = range(&window, now)?;
            let models = db.query(
                "SELECT DISTINCT model FROM embeddings WHERE t_ms >= $1 AND t_ms < $2",
                &[
                    sightline_core::history::Val::I(r.from),
                    sightline_core::history::Val::I(r.to),
                ],
            )?;
            if models.is_empty() {
                eprintln!(
                    "no embeddings in this window (the runner keeps them only with --history-embeddings)"
                );
                return Ok(());
            }
            // Photos are decoded with GStreamer.
            gst::init().map_err(|e| format!("GStreamer init failed: {e}"))?;
            for m in models.iter().filter_map(|m| m[0].as_str()) {
                let (mut det, emb) = crate::gallery_cmd::models_for(m)?;
                let policy = if largest {
                    sightline_core::enroll::FacePolicy::Largest
                } else {
                    sightline_core::enroll::FacePolicy::Single
                };
                let face = sightline_core::enroll::embed_file(&mut det, &emb, &photo, policy)
                    .map_err(|e| e.to_string())?;
                let t = match threshold {
                    Some(t) => t,
                    None => crate::gallery_cmd::match_threshold(m)?,
                };
                for h in query::search_face(&mut db, &face.embedding, m, r, t, top)? {
                    line(json!(h));
                }
            }
        }
        HistoryCmd::Purge { retention } => {
            let r = Retention::parse(&retention)?;
            for (t, n) in query::purge(&mut db, &r, now)? {
                line(json!({"table": t.name(), "deleted": n}));
            }
        }
        HistoryCmd::Erase {
            subject,
            actor,
            gallery,
            redis_url,
            gallery_key,
        } => {
            let actor = actor
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".into());
            let mut elsewhere = serde_json::Map::new();
            if let Some(g) = &gallery {
                let mut gal = sightline_core::gallery::Gallery::load(g)
                    .map_err(|e| format!("{}: {e}", g.display()))?;
                let removed = gal.remove(&subject);
                if removed {
                    gal.save(g).map_err(|e| format!("{}: {e}", g.display()))?;
                }
                elsewhere.insert(
                    "gallery_file".into(),
                    json!({"path": g.display().to_string(), "removed": removed}),
                );
            }
            if let Some(url) = &redis_url {
                let (entries, unknowns) =
                    sightline_core::redis_store::erase_person(url, &gallery_key, &subject)?;
                elsewhere.insert(
                    "redis".into(),
                    json!({"url": sightline_core::secrets::redact_url(url), "key": gallery_key,
                           "gallery_entries": entries, "unknown_ids": unknowns}),
                );
            }
            let elsewhere = serde_json::Value::Object(elsewhere);
            let e = query::erase(&mut db, &subject, &actor, now, &elsewhere)?;
            line(
                json!({"erased": e.subject, "rows": e.rows, "elsewhere": elsewhere,
                        "actor": actor, "at": utc(now)}),
            );
        }
        HistoryCmd::Audit => {
            for mut r in query::audit(&mut db)? {
                if let Some(t) = r["t_ms"].as_i64() {
                    r["at"] = utc(t).into();
                }
                line(r);
            }
        }
    }
    Ok(())
}
