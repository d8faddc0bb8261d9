//! The history store against SQLite and a real PostgreSQL server (Debian's, a cluster made
//! by the test): events delivered by the publisher become rows once, even across a database
//! outage and a replayed spool; the queries answer from them; retention and erasure remove
//! what they must.

use serde_json::json;
use sightline_core::delivery::{Delivery, DeliveryConfig, Only};
use sightline_core::events::Event;
use sightline_core::history::query::{self, Place, Range};
use sightline_core::history::rows::utc_ms;
use sightline_core::history::{Db, Location, Retention, Val};
use sightline_core::sinks::Sink;
use sightline_testkit::{POSTGRES_PASSWORD, PostgresServer, wait_until};

const T0: &str = "2026-12-02T09:00:00.000Z";

fn t0() -> i64 {
    utc_ms(T0).unwrap()
}

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(t0() + ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn ev(kind: &str, camera: &str, ms: i64, data: serde_json::Value) -> Event {
    Event::new(kind, "el", camera, None, at(ms), data)
}

fn transition(ms: i64, camera: &str, who: &str, event: &str, from: &str, to: &str) -> Event {
    ev(
        "presence",
        camera,
        ms,
        json!({"group": "outlet", "event": event, "identity": who, "label": who,
               "from": from, "to": to}),
    )
}

fn sighting(ms: i64, camera: &str, track: u64, label: &str, unknown: &str) -> Event {
    ev(
        "facematch",
        camera,
        ms,
        json!({"track-id": track, "label": label,
               "identity": if unknown.is_empty() { label } else { "" },
               "unknown-id": unknown, "similarity": 0.6, "x": 10, "y": 20, "width": 40, "height": 50}),
    )
}

fn zone(ms: i64, subject: &str, event: &str) -> Event {
    ev(
        "presence",
        "till-cam",
        ms,
        json!({"group": "outlet", "event": event, "zone": "till", "subject": subject}),
    )
}

/// A trajectory of global id `gid` on camera `camera`: `n` points from (x, y) moving +0.1 in
/// x, 200 ms apart, starting at `ms`.
fn trajectory(ms: i64, camera: &str, gid: u64, x: f64, y: f64, n: usize) -> Event {
    let points: Vec<_> = (0..n)
        .map(|k| {
            json!({"running-time": 5_000_000_000u64 + k as u64 * 200_000_000,
                        "x": x + 0.1 * k as f64, "y": y})
        })
        .collect();
    ev(
        "reidmap-trajectory",
        camera,
        ms,
        json!({"map": "floor", "units": "m", "track-id": gid + 100, "global-id": gid,
               "segment": 0, "reason": "track-ended", "start-running-time": 5_000_000_000u64,
               "start-utc": at(ms), "points": points}),
    )
}

/// A unit vector of `dims` made from `seed` (deterministic), and one near it.
fn vector(seed: u64, dims: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    let v: Vec<f32> = (0..dims)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.iter().map(|a| a / n).collect()
}

fn embedding(ms: i64, camera: &str, track: u64, label: &str, unknown: &str, v: &[f32]) -> Event {
    ev(
        sightline_core::history::rows::EMBEDDING_KIND,
        camera,
        ms,
        json!({"track-id": track, "label": label,
               "identity": if unknown.is_empty() { label } else { "" },
               "unknown-id": unknown, "model": "mobilefacenet",
               "embedding": sightline_core::history::rows::encode_embedding(v)}),
    )
}

/// The outlet day: Ada arrives at the door, is seen at the till, steps out of view and comes
/// back, leaves; a stranger is seen twice; the till zone has two visitors; person 7 walks
/// across the floor map.
fn day() -> Vec<Event> {
    let min = 60_000;
    vec![
        sighting(0, "door", 1, "ada", ""),
        transition(0, "door", "ada", "arrived", "not-seen", "present"),
        zone(30_000, "ada", "zone-enter"),
        sighting(min, "till-cam", 2, "ada", ""),
        sighting(min + 500, "till-cam", 2, "ada", ""),
        ev(
            "facedetect",
            "door",
            min + 600,
            json!({"faces": [], "frame": 3}),
        ),
        sighting(2 * min, "door", 3, "unknown", "unknown-4"),
        embedding(0, "door", 1, "ada", "", &vector(1, 128)),
        embedding(2 * min, "door", 3, "unknown", "unknown-4", &vector(2, 128)),
        zone(2 * min, "unknown-4", "zone-enter"),
        transition(
            10 * min,
            "till-cam",
            "ada",
            "out-of-view",
            "present",
            "grace",
        ),
        zone(10 * min, "ada", "zone-leave"),
        transition(11 * min, "door", "ada", "back-in-view", "grace", "present"),
        sighting(11 * min, "door", 5, "ada", ""),
        zone(12 * min, "unknown-4", "zone-leave"),
        trajectory(13 * min, "cam-a", 7, 1.0, 2.0, 20),
        trajectory(13 * min + 4_000, "cam-b", 7, 3.0, 2.0, 20),
        sighting(14 * min, "till-cam", 9, "unknown", "unknown-4"),
        transition(20 * min, "door", "ada", "out-of-view", "present", "grace"),
        transition(25 * min, "door", "ada", "absent", "grace", "absent"),
        ev(
            "presence-alert",
            "door",
            25 * min,
            json!({"group": "outlet", "event": "absent", "identity": "ada", "label": "ada",
                   "absent-seconds": 300.0, "never-seen": false}),
        ),
        // In the same millisecond from the same camera: the stranger seen by two cameras.
        ev(
            "presence-alert",
            "door",
            25 * min,
            json!({"group": "outlet", "event": "unknown", "unknown-id": "unknown-4",
                   "cameras": "door,till-cam", "camera-count": 2}),
        ),
        ev(
            "presence",
            "till-cam",
            26 * min,
            json!({"group": "outlet", "event": "camera-offline"}),
        ),
    ]
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sl-history-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn count(db: &mut Db, table: &str) -> i64 {
    db.query(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .unwrap()[0][0]
        .as_i64()
        .unwrap()
}

fn config(location: &Location, spool: &std::path::Path) -> DeliveryConfig {
    DeliveryConfig {
        node: "box1-runner-test".into(),
        name: Some("box1".into()),
        spool_dir: spool.to_path_buf(),
        partial: vec![(
            Sink::History {
                location: location.clone(),
                retention: Retention::default(),
            },
            Only::Kinds(
                sightline_core::history::rows::KINDS
                    .iter()
                    .map(|k| k.to_string())
                    .collect(),
            ),
        )],
        ..Default::default()
    }
}

/// The whole story on one database: delivery, queries, idempotence, retention, erasure.
fn scenario(location: &Location, name: &str) {
    let spool = tmp(&format!("{name}-spool"));
    let d = Delivery::start(config(location, &spool)).unwrap();
    let mut events = day();
    // An operator acknowledges Ada's absence two minutes later (the API's way: the site's
    // alert list makes the alert-ack event).
    let mut site = sightline_core::control::site::Site::default();
    for e in &events {
        site.event(e, 0);
    }
    let ada = site
        .alerts(None)
        .into_iter()
        .find(|a| a.identity.as_deref() == Some("ada"))
        .unwrap();
    let (_, ack) = site.ack(&ada.id, "alice", &at(27 * 60_000)).unwrap();
    events.push(ack.unwrap());
    for e in &events {
        d.send(e).unwrap();
    }
    assert!(
        wait_until(|| d.backlog() == 0, 30),
        "{name}: delivered ({:?})",
        d.take_errors()
    );
    drop(d);
    let mut db = Db::open(location).unwrap();
    assert_eq!(count(&mut db, "sightings"), 6, "{name}");
    assert_eq!(count(&mut db, "presence"), 5, "{name}");
    assert_eq!(count(&mut db, "zone_events"), 4, "{name}");
    assert_eq!(count(&mut db, "trajectory_points"), 40, "{name}");
    assert_eq!(count(&mut db, "alerts"), 2, "{name}");
    assert_eq!(count(&mut db, "alert_acks"), 1, "{name}");
    assert_eq!(count(&mut db, "camera_events"), 1, "{name}");
    assert_eq!(count(&mut db, "embeddings"), 2, "{name}");
    let node = db
        .query("SELECT DISTINCT node, stream FROM sightings", &[])
        .unwrap();
    assert_eq!(
        node,
        [vec![
            Val::T("box1".into()),
            Val::T("box1-runner-test".into())
        ]]
    );

    // Replaying every event (a spool read again after a crash) writes nothing twice.
    let mut w = sightline_core::history::Writer::new(
        location,
        &Retention::default(),
        "box1-runner-test",
        "box1",
    );
    let items: Vec<_> = events
        .iter()
        .filter(|e| e.kind != "facedetect")
        .enumerate()
        .map(|(i, e)| sightline_core::delivery::Item {
            seq: i as u64,
            json: serde_json::to_string(e).unwrap().into(),
            alert: false,
        })
        .collect();
    use sightline_core::delivery::DeliverEvent;
    assert_eq!(w.deliver_batch(&items).0, items.len());
    assert_eq!(
        count(&mut db, "sightings"),
        6,
        "{name}: replay wrote nothing"
    );
    assert_eq!(count(&mut db, "trajectory_points"), 40, "{name}");

    let min = 60_000;
    // The alerts with their acknowledgements: Ada's by alice, the stranger's (same
    // millisecond, same camera) by nobody; replayed, the ack is still one.
    let a = query::alerts(&mut db, Some("outlet"), Range::ALL).unwrap();
    let got: Vec<_> = a
        .iter()
        .map(|a| {
            (
                a.event.as_str(),
                a.identity.as_deref().or(a.unknown_id.as_deref()),
                a.ack.as_ref().map(|k| (k.by.as_str(), k.at_ms - t0())),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("absent", Some("ada"), Some(("alice", 27 * min))),
            ("unknown", Some("unknown-4"), None)
        ],
        "{name}"
    );
    assert_eq!(a[0].t_ms - t0(), 25 * min);
    assert!(
        query::alerts(&mut db, Some("lobby"), Range::ALL)
            .unwrap()
            .is_empty()
    );
    let v = serde_json::to_value(&a[0]).unwrap();
    assert_eq!(v["ack"]["at"], at(27 * min).as_str(), "UTC out");

    // Journey of a label: the cameras in order, consecutive sightings merged.
    let j = query::journey(&mut db, "ada", Range::ALL).unwrap();
    let cams: Vec<_> = j
        .visits
        .iter()
        .map(|v| (v.camera.as_str(), v.from_ms - t0(), v.count))
        .collect();
    assert_eq!(
        cams,
        [("door", 0, 1), ("till-cam", min, 2), ("door", 11 * min, 1)],
        "{name}"
    );
    // A stranger by unknown id, and a time window.
    let j = query::journey(
        &mut db,
        "unknown-4",
        Range {
            from: t0() + 5 * min,
            to: t0() + 30 * min,
        },
    )
    .unwrap();
    assert_eq!(j.visits.len(), 1, "{name}");
    assert_eq!(j.visits[0].camera, "till-cam");
    // Journey of a global id: the map trail in time order over both cameras.
    let j = query::journey(&mut db, "7", Range::ALL).unwrap();
    assert_eq!(j.trail.len(), 40, "{name}");
    assert!(j.trail.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
    assert_eq!(
        j.visits
            .iter()
            .map(|v| v.camera.as_str())
            .collect::<Vec<_>>(),
        ["cam-a", "cam-b"]
    );
    assert_eq!(
        j.trail[1].t_ms - j.trail[0].t_ms,
        200,
        "{name}: point times"
    );

    // Presence timeline: the posted transitions as intervals.
    let p = query::presence(&mut db, "outlet", Range::ALL).unwrap();
    let got: Vec<_> = p
        .iter()
        .map(|i| {
            (
                i.state.as_str(),
                i.from_ms - t0(),
                i.to_ms.map(|t| t - t0()),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("present", 0, Some(10 * min)),
            ("grace", 10 * min, Some(11 * min)),
            ("present", 11 * min, Some(20 * min)),
            ("grace", 20 * min, Some(25 * min)),
            ("absent", 25 * min, None),
        ],
        "{name}"
    );
    // A window starting mid-interval clips it.
    let p = query::presence(
        &mut db,
        "outlet",
        Range {
            from: t0() + 15 * min,
            to: t0() + 22 * min,
        },
    )
    .unwrap();
    assert_eq!(p[0].state, "present");
    assert_eq!(p[0].from_ms - t0(), 15 * min);
    assert_eq!(p.len(), 2, "{name}: {p:?}");

    // Occupancy of the till zone per 5 minutes: Ada 0:30-10:00, the stranger 2:00-12:00.
    let occ = query::occupancy(
        &mut db,
        &Place::Zone("till".into()),
        Range {
            from: t0(),
            to: t0() + 20 * min,
        },
        5 * min,
    )
    .unwrap();
    assert_eq!(
        occ.iter().map(|s| s.people).collect::<Vec<_>>(),
        [2, 2, 1, 0],
        "{name}"
    );
    // Occupancy of a camera: the distinct faces it decided on.
    let occ = query::occupancy(
        &mut db,
        &Place::Camera("door".into()),
        Range {
            from: t0(),
            to: t0() + 15 * min,
        },
        15 * min,
    )
    .unwrap();
    assert_eq!(occ[0].people, 2, "{name}: ada and the stranger");
    // Whatever a request asks: a step wider than the window is one step; a window wider
    // than i64 is an error, not an overflow.
    let whole = Range {
        from: t0(),
        to: t0() + 20 * min,
    };
    let occ = query::occupancy(&mut db, &Place::Zone("till".into()), whole, i64::MAX).unwrap();
    assert_eq!((occ.len(), occ[0].to_ms, occ[0].people), (1, whole.to, 2));
    let e = query::occupancy(&mut db, &Place::Zone("till".into()), Range::ALL, min);
    assert!(e.unwrap_err().contains("too long"), "{name}");

    // Heat map: the hottest cell is on the walked line (y = 2).
    let heat = query::heatmap(
        &mut db,
        "floor",
        Range::ALL,
        0.5,
        Some([0.0, 0.0, 6.0, 4.0]),
    )
    .unwrap();
    assert_eq!(heat.points, 40);
    let (_, hy, _) = heat.hottest().unwrap();
    assert!((hy - 2.25).abs() < 1e-9, "{name}: hottest row at y {hy}");
    let png = tmp(&format!("{name}-heat")).join("heat.png");
    sightline_core::history::heatpng::write_png(&heat, None, &png).unwrap();
    assert!(std::fs::metadata(&png).unwrap().len() > 100);

    // Search by face: a vector near the stranger's finds that sighting only; an unrelated
    // one finds nothing above the threshold.
    let mut near = vector(2, 128);
    for (k, x) in vector(9, 128).iter().enumerate() {
        near[k] += 0.3 * x;
    }
    let hits = query::search_face(&mut db, &near, "mobilefacenet", Range::ALL, 0.5, 10).unwrap();
    assert_eq!(hits.len(), 1, "{name}: {hits:?}");
    assert_eq!(hits[0].unknown_id.as_deref(), Some("unknown-4"));
    assert_eq!(hits[0].camera, "door");
    assert!(hits[0].similarity > 0.9, "{}", hits[0].similarity);
    let none = query::search_face(
        &mut db,
        &vector(5, 128),
        "mobilefacenet",
        Range::ALL,
        0.5,
        10,
    )
    .unwrap();
    assert!(none.is_empty(), "{name}: {none:?}");

    // Retention: 40 days later the sightings (30 days) are purged, presence (90) stays.
    let later = t0() + 40 * 86_400_000;
    let purged = query::purge(&mut db, &Retention::default(), later).unwrap();
    let by: std::collections::HashMap<_, _> = purged.iter().map(|(t, n)| (t.name(), *n)).collect();
    assert_eq!(by["sightings"], 6, "{name}");
    assert_eq!(by["trajectory_points"], 40, "{name}");
    assert_eq!(by["presence"], 0, "{name}");
    assert_eq!(by["embeddings"], 2, "{name}: 7 days");
    assert_eq!(count(&mut db, "sightings"), 0);
    assert_eq!(count(&mut db, "presence"), 5);

    // Erasure: nothing about Ada remains, the audit record does.
    let e = query::erase(
        &mut db,
        "ada",
        "test-operator",
        later,
        &json!({"gallery": true}),
    )
    .unwrap();
    assert_eq!(e.rows["presence"], 5, "{name}");
    assert_eq!(e.rows["alerts"], 1, "{name}");
    assert_eq!(e.rows["alert_acks"], 1, "{name}: the ack named Ada");
    assert_eq!(count(&mut db, "alert_acks"), 0, "{name}");
    assert_eq!(e.rows["zone_events"], 2, "{name}");
    for (table, col) in [
        ("presence", "identity"),
        ("alerts", "identity"),
        ("zone_events", "subject"),
    ] {
        let left = db
            .query(
                &format!("SELECT COUNT(*) FROM {table} WHERE {col} = $1"),
                &[Val::T("ada".into())],
            )
            .unwrap()[0][0]
            .as_i64();
        assert_eq!(left, Some(0), "{name}: {table}");
    }
    let audit = query::audit(&mut db).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], "test-operator");
    assert_eq!(audit[0]["subject"], "ada");
    assert_eq!(audit[0]["detail"]["rows"]["presence"], 5);
    assert_eq!(audit[0]["detail"]["elsewhere"]["gallery"], true);
    let _ = std::fs::remove_dir_all(spool);
}

#[test]
fn sqlite_keeps_the_day_and_answers_the_questions() {
    let dir = tmp("sqlite");
    let location =
        Location::parse(&format!("sqlite:{}", dir.join("h/history.db").display())).unwrap();
    scenario(&location, "sqlite");
    // Migrations ran once: opening again finds the schema current.
    let mut db = Db::open(&location).unwrap();
    let versions = db
        .query(
            "SELECT version FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .unwrap();
    assert_eq!(versions, [1, 2, 3, 4, 5].map(|v| vec![Val::I(v)]));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn postgresql_keeps_the_day_and_answers_the_questions() {
    let pg = PostgresServer::start();
    let location = Location::parse(&pg.url()).unwrap();
    assert!(!location.display().contains(POSTGRES_PASSWORD));
    scenario(&location, "postgres");
    assert_eq!(
        pg.psql("SELECT COUNT(*) FROM audit WHERE action = 'erase'")
            .trim(),
        "1"
    );
}

#[test]
fn a_postgresql_outage_loses_nothing_and_duplicates_nothing() {
    let mut pg = PostgresServer::start();
    let location = Location::parse(&pg.url()).unwrap();
    let spool = tmp("outage-spool");
    let d = Delivery::start(config(&location, &spool)).unwrap();
    let events = day();
    let (first, rest) = events.split_at(8);
    for e in first {
        d.send(e).unwrap();
    }
    assert!(wait_until(|| d.backlog() == 0, 30), "{:?}", d.take_errors());
    // The database goes away mid-run: events wait in the spool, the error is said once,
    // without the password.
    pg.stop();
    for e in rest {
        d.send(e).unwrap();
    }
    let mut errors = Vec::new();
    assert!(
        wait_until(
            || {
                errors.extend(d.take_errors());
                !errors.is_empty()
            },
            30
        ),
        "the outage is reported"
    );
    assert!(d.backlog() > 0);
    for e in &errors {
        assert!(!e.contains(POSTGRES_PASSWORD), "{e}");
        assert!(e.contains("127.0.0.1"), "names the database: {e}");
    }
    // The process stops meanwhile and starts again: the spool replays, the database is back.
    drop(d);
    pg.restart();
    let d = Delivery::start(config(&location, &spool)).unwrap();
    assert!(wait_until(|| d.backlog() == 0, 60), "{:?}", d.take_errors());
    drop(d);
    let rows = |sql: &str| pg.psql(sql).trim().to_string();
    assert_eq!(rows("SELECT COUNT(*) FROM sightings"), "6");
    assert_eq!(rows("SELECT COUNT(*) FROM presence"), "5");
    assert_eq!(rows("SELECT COUNT(*) FROM alerts"), "2", "the alerts once");
    assert_eq!(rows("SELECT COUNT(*) FROM trajectory_points"), "40");
    assert_eq!(
        rows(
            "SELECT COUNT(*) FROM (SELECT stream, seq FROM sightings GROUP BY stream, seq HAVING COUNT(*) > 1) d"
        ),
        "0"
    );
    let _ = std::fs::remove_dir_all(spool);
}

/// Heat cells against every point: random walks over five hours (both sides of the map's
/// origin) written through the writer, replayed, a trail erased, the oldest hours purged
/// and the cells rebuilt as after an upgrade — the heat map from the cells equals the one
/// from every point each time, for windows that cut hours or not, and cells of 0.25–1.
fn heat_cells_count_every_point(location: &Location, name: &str) {
    let mut rng = 0x2545f4914f6cdd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let hour = 3_600_000i64;
    let mut events = Vec::new();
    for gid in 0..60u64 {
        let start = (next() % (5 * hour as u64)) as i64;
        let (x, y) = (
            (next() % 8000) as f64 / 1000.0 - 3.0,
            (next() % 6000) as f64 / 1000.0 - 2.0,
        );
        // 200 ms apart: a walk crosses hours and cells.
        events.push(trajectory(start, "door", gid, x + 0.0003, y + 0.0007, 50));
    }
    let mut w = sightline_core::history::Writer::new(
        location,
        &Retention::default(),
        &format!("{name}-heat"),
        "box1",
    );
    let items: Vec<_> = events
        .iter()
        .enumerate()
        .map(|(k, e)| sightline_core::delivery::Item {
            seq: k as u64 + 1,
            json: serde_json::to_string(e).unwrap().into(),
            alert: false,
        })
        .collect();
    use sightline_core::delivery::DeliverEvent;
    for chunk in items.chunks(16) {
        let (n, r) = w.deliver_batch(chunk);
        assert_eq!(n, chunk.len(), "{name}: {r:?}");
    }
    // A replay counts nothing twice.
    let (n, _) = w.deliver_batch(&items[..20]);
    assert_eq!(n, 20);
    drop(w);
    let mut db = Db::open(location).unwrap();
    let same = |db: &mut Db, what: &str| {
        let windows = [
            Range::ALL,
            Range {
                from: t0() + hour,
                to: t0() + 3 * hour,
            },
            Range {
                from: t0() + hour / 2 + 1234,
                to: t0() + 4 * hour - 999,
            },
            Range {
                from: t0() + 10 * 60_000,
                to: t0() + 40 * 60_000,
            },
            Range {
                from: t0() + 2 * hour + 5 * 60_000,
                to: t0() + 2 * hour + 50 * 60_000,
            },
            Range {
                from: t0() + 20 * 60_000,
                to: t0() + 2 * hour + 30 * 60_000 + 1,
            },
        ];
        let mut total = 0;
        for range in windows {
            for (cell, bounds) in [
                (0.25, None),
                (0.5, None),
                (1.0, Some([-4.0, -3.0, 12.0, 8.0])),
                (0.75, Some([-2.5, -1.0, 6.0, 4.0])),
            ] {
                let heat = query::heatmap(db, "floor", range, cell, bounds).unwrap();
                let reference = query::heatmap_of_points(
                    db,
                    "floor",
                    range,
                    cell,
                    Some([
                        heat.x0,
                        heat.y0,
                        heat.x0 + (heat.cols as f64 - 0.5) * cell,
                        heat.y0 + (heat.rows as f64 - 0.5) * cell,
                    ]),
                )
                .unwrap();
                assert_eq!(
                    (heat.cols, heat.rows, heat.points),
                    (reference.cols, reference.rows, reference.points),
                    "{name} {what}: {range:?} cell {cell}"
                );
                assert_eq!(
                    heat.counts, reference.counts,
                    "{name} {what}: {range:?} cell {cell}"
                );
                total += heat.points;
            }
        }
        total
    };
    let all = same(&mut db, "written");
    assert!(all > 3000, "{name}: {all} points counted");
    let whole = query::heatmap(&mut db, "floor", Range::ALL, 0.25, None).unwrap();
    assert_eq!(whole.points, 60 * 50, "{name}: every point once");
    assert_eq!(whole.x0 % 0.25, 0.0, "{name}: the grid is the cells' grid");
    // Erasing a trail takes its points out of the cells.
    query::erase(&mut db, "7", "test", t0(), &json!({})).unwrap();
    same(&mut db, "erased");
    let whole = query::heatmap(&mut db, "floor", Range::ALL, 0.25, None).unwrap();
    assert_eq!(whole.points, 59 * 50, "{name}");
    // Purging keeps whole hours: the cells of the hours kept count what is kept.
    let retention = Retention::parse("trajectories=30").unwrap();
    query::purge(&mut db, &retention, t0() + 30 * 86_400_000 + 2 * hour + 1).unwrap();
    same(&mut db, "purged");
    let left = db
        .query("SELECT MIN(t_ms) FROM trajectory_points", &[])
        .unwrap()[0][0]
        .as_i64()
        .unwrap();
    assert!(left >= t0() + 2 * hour, "{name}: whole hours purged");
    // Cells rebuilt as after the upgrade to V5 (points written before the table existed).
    db.execute("DELETE FROM heat_cells", &[]).unwrap();
    db.execute("INSERT INTO history_jobs (name) VALUES ('heat-cells')", &[])
        .unwrap();
    drop(db);
    let mut db = Db::open(location).unwrap();
    same(&mut db, "rebuilt");
    assert!(
        db.query("SELECT name FROM history_jobs", &[])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn sqlite_heat_cells_count_every_point() {
    let dir = tmp("sqlite-heat");
    let location = Location::Sqlite(dir.join("history.db"));
    heat_cells_count_every_point(&location, "sqlite");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn postgresql_heat_cells_count_every_point() {
    let pg = PostgresServer::start();
    heat_cells_count_every_point(&Location::parse(&pg.url()).unwrap(), "postgres");
}
