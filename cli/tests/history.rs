//! `sightline run --history` and `sightline history` on real video: the reid-map run's
//! trails come back from `journey` and `heatmap` exactly as the reidmap element posted
//! them; the outlet run keeps its presence timeline and sightings in a real PostgreSQL
//! that goes away mid-run, nothing lost and nothing twice.

mod common;

use common::{gallery, pipeline, reid_map_vars, runner, tmp, uri, wait_for};
use serde_json::Value;
use sightline_core::events::{Event, read_jsonl};
use sightline_testkit::{POSTGRES_PASSWORD, PostgresServer, free_port, shared_data};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};

/// `sightline history --db DB ARGS…`: its JSON lines (it must succeed).
fn history(db: &str, args: &[&str]) -> Vec<Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["history", "--db", db])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "history {args:?}: {err}");
    assert!(!err.contains(POSTGRES_PASSWORD), "{err}");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn utc_ms(s: &str) -> i64 {
    sightline_core::history::rows::utc_ms(s).unwrap()
}

#[test]
fn the_reid_map_run_keeps_the_trails_that_journey_and_heatmap_return() {
    let dir = tmp("history-map");
    let db = format!("sqlite:{}", dir.join("history.db").display());
    let ev = dir.join("events.jsonl");
    let vars = reid_map_vars(&dir, &[("SIGNALLING_PORT", free_port().to_string())]);
    let o = runner(&pipeline("reid-map.pipeline"), &vars, &["--history", &db])
        .args(["--http", "", "--duration", "6", "--events"])
        .arg(&ev)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("keeping history in sqlite:"), "{err}");

    // What the reidmap elements posted: points per global id.
    let trajectories: Vec<Event> = read_jsonl(&ev)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "reidmap-trajectory")
        .collect();
    assert!(!trajectories.is_empty(), "no trajectories\n{err}");
    let map = trajectories[0].data["map"].as_str().unwrap().to_string();
    let mut posted: BTreeMap<u64, Vec<(String, f64, f64)>> = BTreeMap::new();
    for t in &trajectories {
        let gid = t.data["global-id"].as_u64().unwrap();
        for p in t.data["points"].as_array().unwrap() {
            posted.entry(gid).or_default().push((
                t.camera.clone(),
                p["x"].as_f64().unwrap(),
                p["y"].as_f64().unwrap(),
            ));
        }
    }
    // Every global id's journey returns its points, no more, no fewer.
    for (gid, want) in &posted {
        let got = history(&db, &["journey", &gid.to_string()]);
        let mut got_pts: Vec<(String, f64, f64)> = got
            .iter()
            .filter(|l| l["kind"] == "point")
            .map(|l| {
                assert_eq!(l["map"], map.as_str());
                (
                    l["camera"].as_str().unwrap().to_string(),
                    l["x"].as_f64().unwrap(),
                    l["y"].as_f64().unwrap(),
                )
            })
            .collect();
        let mut want = want.clone();
        let key = |a: &(String, f64, f64)| (a.0.clone(), a.1.to_bits(), a.2.to_bits());
        got_pts.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(got_pts, want, "global id {gid}");
        // The visits name the cameras that placed the person.
        let cams: Vec<&str> = got
            .iter()
            .filter(|l| l["kind"] == "visit")
            .map(|l| l["camera"].as_str().unwrap())
            .collect();
        assert!(!cams.is_empty() && cams.iter().all(|c| *c == "cam1" || *c == "cam2"));
    }

    // The heat map's hottest cell is the cell with the most posted points.
    let (x0, y0, cell) = (-25.0, -20.0, 1.0);
    let mut cells: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for (_, x, y) in posted.values().flatten() {
        *cells
            .entry((
                ((x - x0) / cell).floor() as i64,
                ((y - y0) / cell).floor() as i64,
            ))
            .or_default() += 1;
    }
    let most = *cells.values().max().unwrap();
    let png = dir.join("heat.png");
    let out = history(
        &db,
        &[
            "heatmap",
            &map,
            "--cell",
            "1",
            "--bounds",
            "-25,-20,5,17",
            "--out",
            png.to_str().unwrap(),
        ],
    );
    let h = &out[0]["hottest"];
    let hot = (
        ((h["x"].as_f64().unwrap() - x0) / cell).floor() as i64,
        ((h["y"].as_f64().unwrap() - y0) / cell).floor() as i64,
    );
    assert_eq!(h["points"].as_u64(), Some(most), "{out:?}");
    assert_eq!(cells.get(&hot), Some(&most), "hottest {hot:?}");
    assert_eq!(
        out[0]["points"].as_u64().unwrap(),
        posted.values().map(|v| v.len() as u64).sum::<u64>()
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_outlet_run_keeps_its_timeline_in_postgresql_through_an_outage() {
    let dir = tmp("history-outlet");
    let g = gallery(&dir);
    let mut pg = PostgresServer::start();
    let db = pg.url();
    // The face videos: the man is enrolled from his first frame, the woman stays a stranger.
    let male =
        shared_data("video/intel_sample_videos/derived/head-pose-face-detection-male.mjpeg.avi");
    let female =
        shared_data("video/intel_sample_videos/derived/head-pose-face-detection-female.mjpeg.avi");
    let frame = dir.join("male.png");
    let o = Command::new("gst-launch-1.0")
        .args(["-q", "filesrc"])
        .arg(format!("location={}", male.display()))
        .args([
            "!",
            "decodebin",
            "!",
            "videoconvert",
            "!",
            "pngenc",
            "snapshot=true",
            "!",
            "filesink",
        ])
        .arg(format!("location={}", frame.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["gallery", "--file"])
        .arg(&g)
        .args(["enroll", "--name", "Sam", "--largest"])
        .arg(&frame)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The database is down when the runner starts and comes back mid-run.
    pg.stop();
    let ev = dir.join("events.jsonl");
    let log = dir.join("runner.log");
    // Looped (the clips are 1.9 s): the run outlives the outage by several seconds, so the
    // backlog is written while it runs (retries back off to at most 5 s).
    let mut child = runner(
        &pipeline("outlet-presence.pipeline"),
        &[
            ("CAM1", uri(&male)),
            ("CAM2", uri(&female)),
            ("GALLERY", g.display().to_string()),
            ("EVENTS", dir.join("outlet.jsonl").display().to_string()),
        ],
        &["--loop", "--history", &db, "--spool-dir"],
    )
    .arg(dir.join("spool"))
    .args(["--http", "", "--duration", "12", "--events"])
    .arg(&ev)
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    wait_for("presence events while the database is down", 60, || {
        read_jsonl(&ev).is_ok_and(|e| e.iter().any(|e| e.kind == "presence"))
    });
    pg.restart();
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{err}");
    assert!(!err.contains(POSTGRES_PASSWORD), "{err}");
    assert!(err.contains("127.0.0.1"), "the outage is said: {err}");

    let events = read_jsonl(&ev).unwrap();
    let of = |k: &str| events.iter().filter(|e| e.kind == k).count();
    let sql = |q: &str| pg.psql(q).trim().to_string();
    assert_eq!(
        sql("SELECT COUNT(*) FROM sightings"),
        of("facematch").to_string(),
        "every decision once\n{err}"
    );
    assert_eq!(
        sql("SELECT COUNT(*) FROM alerts"),
        of("presence-alert").to_string()
    );
    // The timeline equals the transitions the presence elements posted.
    let transitions: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == "presence" && e.data.get("to").is_some())
        .collect();
    assert!(!transitions.is_empty(), "no presence transitions\n{err}");
    let group = transitions[0].data["group"].as_str().unwrap();
    let timeline = history(&db, &["presence", group]);
    let mut want: Vec<(String, String, i64)> = transitions
        .iter()
        .map(|e| {
            (
                e.data["identity"].as_str().unwrap().to_string(),
                e.data["to"].as_str().unwrap().to_string(),
                utc_ms(&e.utc),
            )
        })
        .collect();
    let mut got: Vec<(String, String, i64)> = timeline
        .iter()
        .map(|i| {
            (
                i["identity"].as_str().unwrap().to_string(),
                i["state"].as_str().unwrap().to_string(),
                utc_ms(i["from"].as_str().unwrap()),
            )
        })
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    // Sam's journey: the cameras whose decisions named him, in time order.
    let decided: Vec<(i64, String)> = {
        let mut d: Vec<(i64, String)> = events
            .iter()
            .filter(|e| e.kind == "facematch" && e.data["label"] == "Sam")
            .map(|e| (utc_ms(&e.utc), e.camera.clone()))
            .collect();
        d.sort();
        d
    };
    assert!(!decided.is_empty(), "Sam was recognised\n{err}");
    let journey = history(&db, &["journey", "Sam"]);
    let visits: Vec<&str> = journey
        .iter()
        .map(|v| v["camera"].as_str().unwrap())
        .collect();
    let mut runs: Vec<&str> = Vec::new();
    for (_, c) in &decided {
        if runs.last() != Some(&c.as_str()) {
            runs.push(c);
        }
    }
    assert_eq!(visits, runs);

    // Erase Sam and the stranger: from history, the gallery file, the shared Redis gallery
    // (pushed with the real command) and the stranger registry; audited.
    let stranger = events
        .iter()
        .find_map(|e| {
            e.data["unknown-id"]
                .as_str()
                .filter(|u| e.kind == "facematch" && !u.is_empty())
                .map(str::to_string)
        })
        .expect("the woman is a stranger");
    let redis = sightline_testkit::RedisServer::start(&[]);
    let url = redis.url(None);
    let o = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["gallery", "--file"])
        .arg(&g)
        .args(["push", "--redis-url", &url])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cli = |args: &[&str]| {
        let o = Command::new("redis-cli")
            .args(["-p", &redis.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    // The registry entries a facematch with redis-url writes for a stranger.
    cli(&["HSET", "sightline:gallery:unknowns", &stranger, "vector"]);
    cli(&["ZADD", "sightline:gallery:unknowns:seen", "1", &stranger]);
    assert_eq!(cli(&["HLEN", "sightline:gallery"]), "2", "Obama and Sam");
    for who in ["Sam", stranger.as_str()] {
        let out = history(
            &db,
            &[
                "erase",
                who,
                "--actor",
                "dpo@site",
                "--gallery",
                g.to_str().unwrap(),
                "--redis-url",
                &url,
            ],
        );
        assert!(!out[0].to_string().contains(POSTGRES_PASSWORD));
    }
    for (table, col) in [
        ("sightings", "label"),
        ("sightings", "unknown_id"),
        ("presence", "label"),
        ("alerts", "unknown_id"),
        ("zone_events", "subject"),
    ] {
        for who in ["Sam", stranger.as_str()] {
            assert_eq!(
                sql(&format!(
                    "SELECT COUNT(*) FROM {table} WHERE {col} = '{who}'"
                )),
                "0",
                "{table}.{col} = {who}"
            );
        }
    }
    assert_eq!(cli(&["HLEN", "sightline:gallery"]), "1", "only Obama left");
    assert!(!cli(&["HKEYS", "sightline:gallery"]).contains("sam"));
    assert_eq!(
        cli(&["HEXISTS", "sightline:gallery:unknowns", &stranger]),
        "0"
    );
    assert_eq!(
        cli(&["ZSCORE", "sightline:gallery:unknowns:seen", &stranger]),
        ""
    );
    let list = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["gallery", "--file"])
        .arg(&g)
        .arg("list")
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("1 identities") && !list.contains("Sam"),
        "{list}"
    );
    let audit = history(&db, &["audit"]);
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["actor"], "dpo@site");
    assert_eq!(audit[0]["subject"], "Sam");
    assert_eq!(
        audit[0]["detail"]["elsewhere"]["gallery_file"]["removed"],
        true
    );
    assert_eq!(
        audit[0]["detail"]["elsewhere"]["redis"]["gallery_entries"],
        1
    );
    assert_eq!(audit[1]["detail"]["elsewhere"]["redis"]["unknown_ids"], 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_stranger_seen_on_video_is_found_again_by_another_photo_and_only_with_embeddings_on() {
    let dir = tmp("history-search");
    let g = gallery(&dir);
    let faces = |f: &str| shared_data(&format!("faces/face_recognition_examples/{f}"));
    // A camera clip of Biden (not enrolled: a stranger) made from one photo.
    let clip = dir.join("biden.avi");
    let o = Command::new("gst-launch-1.0")
        .args(["-q", "filesrc"])
        .arg(format!("location={}", faces("biden/biden.jpg").display()))
        .args([
            "!",
            "jpegdec",
            "!",
            "videoconvert",
            "!",
            "imagefreeze",
            "num-buffers=20",
            "!",
            "video/x-raw,framerate=10/1",
            "!",
            "jpegenc",
            "!",
            "avimux",
            "!",
            "filesink",
        ])
        .arg(format!("location={}", clip.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = |db: &str, ev: &std::path::Path, embeddings: bool| {
        let mut extra = vec!["--history", db];
        if embeddings {
            extra.push("--history-embeddings");
        }
        let o = runner(
            &pipeline("enrolment.pipeline"),
            &[("CAM1", uri(&clip)), ("GALLERY", g.display().to_string())],
            &extra,
        )
        .args(["--http", "", "--duration", "10", "--events"])
        .arg(ev)
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "{err}");
        err
    };

    // Default: no embedding is kept.
    let plain = format!("sqlite:{}", dir.join("plain.db").display());
    run(&plain, &dir.join("plain.jsonl"), false);
    let hits = history(
        &plain,
        &["search-face", faces("biden/biden2.jpg").to_str().unwrap()],
    );
    assert!(hits.is_empty(), "{hits:?}");
    let o = Command::new("sqlite3")
        .arg(dir.join("plain.db"))
        .arg("SELECT COUNT(*) FROM embeddings")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "0");

    // With --history-embeddings: Biden's other photo finds the stranger's sightings.
    let db = format!("sqlite:{}", dir.join("history.db").display());
    let ev = dir.join("events.jsonl");
    let err = run(&db, &ev, true);
    assert!(
        !err.contains("embedding="),
        "the runner's log shows decisions without their embedding"
    );
    let events = read_jsonl(&ev).unwrap();
    let stranger = events
        .iter()
        .find(|e| e.kind == "facematch")
        .and_then(|e| e.data["unknown-id"].as_str())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| panic!("Biden is a stranger\n{err}"))
        .to_string();
    // The embeddings went to the history alone: not in any published event.
    let text = std::fs::read_to_string(&ev).unwrap();
    assert!(
        !text.contains("embedding"),
        "published events carry no embedding"
    );
    let hits = history(
        &db,
        &["search-face", faces("biden/biden2.jpg").to_str().unwrap()],
    );
    assert!(!hits.is_empty(), "found again\n{err}");
    for h in &hits {
        assert_eq!(h["unknown_id"], stranger.as_str());
        assert_eq!(h["camera"], "enrol");
        assert!(h["similarity"].as_f64().unwrap() > 0.3, "{h}");
    }
    // Another person's photo finds nobody above the threshold.
    let others = history(
        &db,
        &["search-face", faces("obama/obama2.jpg").to_str().unwrap()],
    );
    assert!(others.is_empty(), "{others:?}");
    // Erased: the embeddings go with the rest.
    let erased = history(&db, &["erase", &stranger, "--actor", "test"]);
    assert!(
        erased[0]["rows"]["embeddings"].as_u64() >= Some(1),
        "{erased:?}"
    );
    let hits = history(
        &db,
        &["search-face", faces("biden/biden2.jpg").to_str().unwrap()],
    );
    assert!(hits.is_empty(), "{hits:?}");
    std::fs::remove_dir_all(dir).unwrap();
}
