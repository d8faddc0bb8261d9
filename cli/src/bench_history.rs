//! `sightline bench history`: the history writer's rows/s on SQLite and on a real PostgreSQL
//! (a cluster made here, as the tests do), fed the way the runner feeds it (event JSON in
//! batches of 256 events through the history sink), against plain JSONL appends of the same
//! events measured in the same run; then, at that size: `journey` p50/p95 (labels and global
//! ids), a one-day `heatmap`, the database's size per million rows, and peak RSS.

use sightline_core::delivery::{DeliverEvent, Item};
use sightline_core::events::{Event, JsonlSink};
use sightline_core::history::query::{self, Range};
use sightline_core::history::{self, Db, Location, Retention, Writer};
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

/// The synthetic site, made as it is consumed (10M sightings and 50M points do not fit in
/// memory as events): `sightings` decisions of 1000 people and strangers on 16 cameras and
/// `points` map points (trajectories of 100 points, one global id per 5 trajectories),
/// spread over `days` days ending at `end_ms`, the kinds interleaved at random, in time
/// order as a site produces them (each event up to a second from its place; a trajectory is
/// published 20 s after it began). The same seed gives every backend the same events.
struct Site {
    rng: Rng,
    start: i64,
    span: u64,
    sightings: u64,
    trajectories: u64,
    made_sightings: u64,
    made_trajectories: u64,
    seq: u64,
}

impl Site {
    fn new(sightings: u64, points: u64, days: i64, end_ms: i64) -> Site {
        Site {
            rng: Rng(0x9e3779b97f4a7c15),
            start: end_ms - days * DAY_MS,
            span: (days * DAY_MS) as u64,
            sightings,
            trajectories: points / POINTS as u64,
            made_sightings: 0,
            made_trajectories: 0,
            seq: 0,
        }
    }

    /// The time of the next event: the site's clock, as far along the span as the events
    /// made so far, give or take a second.
    fn clock(&mut self) -> i64 {
        let made = self.made_sightings + self.made_trajectories;
        let all = (self.sightings + self.trajectories).max(1);
        let along = (made as f64 / all as f64 * self.span as f64) as i64;
        self.start + along + self.rng.below(2000) as i64 - 1000
    }

    fn sighting(&mut self) -> Event {
        let i = self.made_sightings;
        self.made_sightings += 1;
        let who = self.rng.below(1200);
        let (label, identity, unknown) = if who < 1000 {
            let p = format!("person-{who}");
            (p.clone(), p, String::new())
        } else {
            ("unknown".into(), String::new(), format!("unknown-{who}"))
        };
        Event::new(
            "facematch",
            "facematch0",
            &format!("cam{}", self.rng.below(16)),
            Some(i),
            utc(self.clock()),
            serde_json::json!({"track-id": i, "label": label, "identity": identity,
                "unknown-id": unknown, "similarity": 0.55, "x": 100, "y": 80,
                "width": 60, "height": 70}),
        )
    }

    fn trajectory(&mut self) -> Event {
        let i = self.made_trajectories;
        self.made_trajectories += 1;
        let t0 = self.clock() - 20_000;
        let (x0, y0) = (self.rng.below(40) as f64, self.rng.below(20) as f64);
        let pts: Vec<_> = (0..POINTS)
            .map(|k| {
                serde_json::json!({"running-time": k as u64 * 200_000_000,
                    "x": x0 + 0.05 * k as f64, "y": y0 + 0.02 * k as f64})
            })
            .collect();
        Event::new(
            "reidmap-trajectory",
            "reidmap0",
            &format!("cam{}", self.rng.below(16)),
            Some(0),
            utc(t0 + 20_000),
            serde_json::json!({"map": "floor", "units": "m", "track-id": i,
                "global-id": i / 5, "segment": 0, "reason": "track-ended",
                "start-running-time": 0, "start-utc": utc(t0), "points": pts}),
        )
    }

    /// Up to `n` more events (none at the end), each kind drawn in proportion to what is
    /// left of it.
    fn next_events(&mut self, n: usize) -> Vec<Event> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let (s, t) = (
                self.sightings - self.made_sightings,
                self.trajectories - self.made_trajectories,
            );
            if s + t == 0 {
                break;
            }
            out.push(if self.rng.below(s + t) < s {
                self.sighting()
            } else {
                self.trajectory()
            });
        }
        out
    }

    /// The next events as the publisher hands them to a sink (sequence-numbered JSON).
    fn next_items(&mut self, n: usize) -> Vec<Item> {
        self.next_events(n)
            .into_iter()
            .map(|e| {
                self.seq += 1;
                Item {
                    seq: self.seq,
                    json: serde_json::to_string(&e).expect("json").into(),
                    alert: false,
                }
            })
            .collect()
    }
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

/// Events made per round (their making is not timed).
const ROUND: usize = BATCH * 64;

fn measure(
    name: &str,
    location: &Location,
    site: Site,
    rows: u64,
    gids: u64,
    end_ms: i64,
) -> std::result::Result<Result, String> {
    let mut site = site;
    let days = site.span / DAY_MS as u64;
    let mut w = Writer::new(location, &Retention::default(), "bench-runner-1", "bench");
    // Default retention: the data spans days ending now, nothing is purged.
    let mut secs = 0.0;
    let mut done = 0u64;
    loop {
        let items = site.next_items(ROUND);
        if items.is_empty() {
            break;
        }
        let t = Instant::now();
        for chunk in items.chunks(BATCH) {
            let (n, r) = w.deliver_batch(chunk);
            r?;
            assert_eq!(n, chunk.len());
        }
        secs += t.elapsed().as_secs_f64();
        done += items.len() as u64;
        if done.is_multiple_of(ROUND as u64 * 100) {
            eprintln!("  {name}: {done} events in {secs:.0} s");
        }
    }
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
        // Global ids are given in time order: those of the last day, as for the labels.
        let gids = gids.max(1);
        let last_day = (gids / days.max(1)).max(1);
        ids.push(time(
            &mut db,
            (gids - 1 - rng.below(last_day).min(gids - 1)).to_string(),
        )?);
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

/// Frames/s of a camera pipeline (decode + scale + face detection of `video`, as fast as it
/// goes) in this process; with `writer`, while a history writer inserts into `location` at
/// full rate on its own thread (the runner's history sink, fed batches as the publisher
/// feeds it): (frames/s, rows/s the writer made meanwhile).
fn camera_fps(
    video: &std::path::Path,
    writer: Option<&Location>,
) -> std::result::Result<(f64, f64), String> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let handle = writer.map(|location| {
        let (stop, location) = (stop.clone(), location.clone());
        std::thread::spawn(move || -> std::result::Result<(u64, f64), String> {
            let mut site = Site::new(u64::MAX / 4, u64::MAX / 4, 7, history::now_ms());
            let mut w = Writer::new(&location, &Retention::default(), "bench-runner-2", "bench");
            let (mut rows, t) = (0u64, Instant::now());
            while !stop.load(Ordering::Relaxed) {
                let items = site.next_items(BATCH);
                let (n, r) = w.deliver_batch(&items);
                r?;
                rows += items[..n]
                    .iter()
                    .map(|i| {
                        if i.json.contains("\"points\"") {
                            POINTS as u64
                        } else {
                            1
                        }
                    })
                    .sum::<u64>();
            }
            Ok((rows, t.elapsed().as_secs_f64()))
        })
    });
    let run = crate::bench::detect_run(video, 640);
    stop.store(true, Ordering::Relaxed);
    let written = match handle {
        Some(h) => {
            let (rows, s) = h.join().map_err(|_| "the writer thread panicked")??;
            rows as f64 / s
        }
        None => 0.0,
    };
    let (frames, secs) = run?;
    Ok((frames as f64 / secs, written))
}

pub fn bench_history(
    sightings: u64,
    points: u64,
    days: i64,
    postgres: bool,
    video: Option<&std::path::Path>,
) -> std::result::Result<(), String> {
    let end_ms = sightline_core::history::now_ms();
    let dir = std::env::temp_dir().join(format!("sl-bench-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if let Some(video) = video {
        // The video path while the history writes at full rate: the camera's frames/s
        // without, with, and again without the writer (the machine's drift shows).
        gst::init().map_err(|e| e.to_string())?;
        println!(
            "history: a camera (decode + detect of {}) with and without the history writer at full rate",
            video.display()
        );
        // Alternated, five rounds each, medians (the first pass warms the caches).
        let db = Location::Sqlite(dir.join("video.db"));
        camera_fps(video, None)?;
        let (mut alone, mut with, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            alone.push(camera_fps(video, None)?.0);
            let (f, r) = camera_fps(video, Some(&db))?;
            with.push(f);
            rows.push(r);
        }
        let (a, w, r) = (
            percentile(&mut alone, 0.5),
            percentile(&mut with, 0.5),
            percentile(&mut rows, 0.5),
        );
        println!(
            "  camera alone {a:.1} frames/s, with the writer {w:.1} frames/s ({:.1} % of alone; medians of 5 alternated runs, alone {:.1}-{:.1}) while it wrote {r:.0} rows/s (SQLite)",
            100.0 * w / a,
            alone[0],
            alone[alone.len() - 1]
        );
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    println!(
        "history: {sightings} sightings + {points} map points over {days} days (batches of {BATCH} events)"
    );
    let rows = sightings + (points / POINTS as u64) * POINTS as u64;
    let gids = points / POINTS as u64 / 5;

    // Baseline: the same events appended to a JSONL file (their making not timed).
    let mut secs = 0.0;
    {
        let mut site = Site::new(sightings, points, days, end_ms);
        let mut sink = JsonlSink::open(&dir.join("events.jsonl")).map_err(|e| e.to_string())?;
        loop {
            let evs = site.next_events(ROUND);
            if evs.is_empty() {
                break;
            }
            let t = Instant::now();
            for e in &evs {
                sink.write(e).map_err(|e| e.to_string())?;
            }
            secs += t.elapsed().as_secs_f64();
        }
    }
    let _ = std::fs::remove_file(dir.join("events.jsonl"));
    let jsonl_rows_s = rows as f64 / secs;
    println!("  baseline JSONL appends: {jsonl_rows_s:.0} rows/s (points counted as rows)");

    let sqlite = dir.join("history.db");
    let mut results = vec![measure(
        "sqlite",
        &Location::Sqlite(sqlite.clone()),
        Site::new(sightings, points, days, end_ms),
        rows,
        gids,
        end_ms,
    )?];
    // Its disk back before the next one fills it.
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", sqlite.display()));
    }
    if postgres {
        let pg = sightline_testkit::PostgresServer::start_durable();
        results.push(measure(
            "postgresql",
            &Location::Postgres(pg.url()),
            Site::new(sightings, points, days, end_ms),
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
