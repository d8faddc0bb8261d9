//! `sightline bench history`: the history writer's rows/s on SQLite and on a real PostgreSQL
//! (a cluster made here, as the tests do), fed the way the runner feeds it (event JSON in
//! batches of 256 events through the history sink), against plain JSONL appends of the same
//! events measured in the same run; then, at that size: `journey` p50/p95 (labels and global
//! ids), a one-day `heatmap`, the database's size per million rows, and peak RSS.

use sightline_core::delivery::{DeliverEvent, Item};
use sightline_core::events::{Event, JsonlSink};
use sightline_core::history::query::{self, Range};
use sightline_core::history::{Db, Location, Retention, Writer};
use std::time::Instant;

const DAY_MS: i64 = 86_400_000;
/// Events per batch, as the publisher hands them to a sink.
const BATCH: usize = 256;
/// Points per trajectory event.
const POINTS: usize = 100;

fn utc(ms: i64) -> String {
    sightline_core::history::utc_of_ms(ms)
}

/// Deterministic pseudo-random numbers (xorshift), so every backend gets the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The synthetic site: `sightings` decisions of 1000 people and strangers on 16 cameras and
/// `points` map points (trajectories of 100 points, one global id per 5 trajectories),
/// spread over `days` days ending at `end_ms`.
fn events(sightings: u64, points: u64, days: i64, end_ms: i64) -> Vec<Event> {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let start = end_ms - days * DAY_MS;
    let span = (days * DAY_MS) as u64;
    let mut out = Vec::new();
    for i in 0..sightings {
        let who = rng.below(1200);
        let (label, identity, unknown) = if who < 1000 {
            let p = format!("person-{who}");
            (p.clone(), p, String::new())
        } else {
            ("unknown".into(), String::new(), format!("unknown-{who}"))
        };
        out.push(Event::new(
            "facematch",
            "facematch0",
            &format!("cam{}", rng.below(16)),
            Some(i),
            utc(start + rng.below(span) as i64),
            serde_json::json!({"track-id": i, "label": label, "identity": identity,
                "unknown-id": unknown, "similarity": 0.55, "x": 100, "y": 80,
                "width": 60, "height": 70}),
        ));
    }
    let trajectories = points / POINTS as u64;
    for i in 0..trajectories {
        let t0 = start + rng.below(span) as i64;
        let (x0, y0) = (rng.below(40) as f64, rng.below(20) as f64);
        let pts: Vec<_> = (0..POINTS)
            .map(|k| {
                serde_json::json!({"running-time": k as u64 * 200_000_000,
                    "x": x0 + 0.05 * k as f64, "y": y0 + 0.02 * k as f64})
            })
            .collect();
        out.push(Event::new(
            "reidmap-trajectory",
            "reidmap0",
            &format!("cam{}", rng.below(16)),
            Some(0),
            utc(t0 + 20_000),
            serde_json::json!({"map": "floor", "units": "m", "track-id": i,
                "global-id": i / 5, "segment": 0, "reason": "track-ended",
                "start-running-time": 0, "start-utc": utc(t0), "points": pts}),
        ));
    }
    // Interleaved, as a site produces them.
    let mut order: Vec<usize> = (0..out.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut slots: Vec<Option<Event>> = out.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Result {
    name: String,
    rows_per_s: f64,
    journey_label: (f64, f64),
    journey_gid: (f64, f64),
    heatmap_ms: f64,
    bytes_per_million: f64,
}

fn measure(
    name: &str,
    location: &Location,
    items: &[Item],
    rows: u64,
    gids: u64,
    end_ms: i64,
) -> std::result::Result<Result, String> {
    let mut w = Writer::new(location, &Retention::default(), "bench-runner-1", "bench");
    // Default retention: the data spans days ending now, nothing is purged.
    let t = Instant::now();
    for chunk in items.chunks(BATCH) {
        let (n, r) = w.deliver_batch(chunk);
        r?;
        assert_eq!(n, chunk.len());
    }
    let secs = t.elapsed().as_secs_f64();
    let mut db = Db::open(location)?;
    let counted: i64 = ["sightings", "trajectory_points"]
        .iter()
        .map(|t| {
            db.query(&format!("SELECT COUNT(*) FROM {t}"), &[])
                .ok()
                .and_then(|r| r[0][0].as_i64())
                .unwrap_or(0)
        })
        .sum();
    if counted as u64 != rows {
        return Err(format!("{name}: {counted} rows stored of {rows}"));
    }
    let mut rng = Rng(7);
    let time = |db: &mut Db, subject: String| -> std::result::Result<f64, String> {
        let t = Instant::now();
        let j = query::journey(
            db,
            &subject,
            Range {
                from: end_ms - DAY_MS,
                to: end_ms,
            },
        )?;
        std::hint::black_box(j);
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    let mut labels = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..200 {
        labels.push(time(&mut db, format!("person-{}", rng.below(1000)))?);
        ids.push(time(&mut db, rng.below(gids.max(1)).to_string())?);
    }
    let t = Instant::now();
    let heat = query::heatmap(
        &mut db,
        "floor",
        Range {
            from: end_ms - DAY_MS,
            to: end_ms,
        },
        0.25,
        None,
    )?;
    let heatmap_ms = t.elapsed().as_secs_f64() * 1e3;
    let png = std::env::temp_dir().join(format!("sl-bench-heat-{}.png", std::process::id()));
    sightline_core::history::heatpng::write_png(&heat, None, &png)?;
    let _ = std::fs::remove_file(png);
    let size = db.size_bytes()?;
    Ok(Result {
        name: name.to_string(),
        rows_per_s: rows as f64 / secs,
        journey_label: (percentile(&mut labels, 0.5), percentile(&mut labels, 0.95)),
        journey_gid: (percentile(&mut ids, 0.5), percentile(&mut ids, 0.95)),
        heatmap_ms,
        bytes_per_million: size as f64 / (rows as f64 / 1e6),
    })
}

pub fn bench_history(
    sightings: u64,
    points: u64,
    days: i64,
    postgres: bool,
) -> std::result::Result<(), String> {
    let end_ms = sightline_core::history::now_ms();
    println!(
        "history: {sightings} sightings + {points} map points over {days} days (batches of {BATCH} events)"
    );
    let evs = events(sightings, points, days, end_ms);
    let items: Vec<Item> = evs
        .iter()
        .enumerate()
        .map(|(i, e)| Item {
            seq: i as u64,
            json: serde_json::to_string(e).expect("json").into(),
            alert: false,
        })
        .collect();
    let rows = sightings + (points / POINTS as u64) * POINTS as u64;
    let gids = points / POINTS as u64 / 5;
    let dir = std::env::temp_dir().join(format!("sl-bench-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    // Baseline: the same events appended to a JSONL file.
    let t = Instant::now();
    {
        let mut sink = JsonlSink::open(&dir.join("events.jsonl")).map_err(|e| e.to_string())?;
        for e in &evs {
            sink.write(e).map_err(|e| e.to_string())?;
        }
    }
    let jsonl_rows_s = rows as f64 / t.elapsed().as_secs_f64();
    println!("  baseline JSONL appends: {jsonl_rows_s:.0} rows/s (points counted as rows)");

    let mut results = vec![measure(
        "sqlite",
        &Location::Sqlite(dir.join("history.db")),
        &items,
        rows,
        gids,
        end_ms,
    )?];
    if postgres {
        let pg = sightline_testkit::PostgresServer::start_durable();
        results.push(measure(
            "postgresql",
            &Location::Postgres(pg.url()),
            &items,
            rows,
            gids,
            end_ms,
        )?);
    }
    for r in &results {
        println!(
            "  {:<10} {:>9.0} rows/s ({:.2}x JSONL) | journey label p50 {:.2} ms p95 {:.2} ms | journey global id p50 {:.2} ms p95 {:.2} ms | one-day heatmap {:.0} ms | {:.0} MB per million rows",
            r.name,
            r.rows_per_s,
            r.rows_per_s / jsonl_rows_s,
            r.journey_label.0,
            r.journey_label.1,
            r.journey_gid.0,
            r.journey_gid.1,
            r.heatmap_ms,
            r.bytes_per_million / 1e6
        );
    }
    println!(
        "  peak RSS {} MiB",
        crate::bench::peak_rss_kb().unwrap_or(0) / 1024
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
