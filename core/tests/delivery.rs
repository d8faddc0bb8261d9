//! Durable event delivery against a real Redis (Debian redis-server started here) and a local
//! HTTP server: order, no loss, no duplicates across outages and restarts.

use redis::Commands;
use sightline_core::delivery::{Delivery, DeliveryConfig};
use sightline_core::events::Event;
use sightline_core::sinks::Sink;
use sightline_testkit::{RedisServer, wait_until};
use std::time::{Duration, Instant};

fn event(i: u64) -> Event {
    Event::new(
        "presence",
        "presence0",
        "door",
        Some(i),
        format!("2026-11-21T00:00:{:02}.000Z", i % 60),
        serde_json::json!({ "n": i }),
    )
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sl-delivery-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The `n` field of every event in the stream, in stream order.
fn stream_ns(url: &str, stream: &str) -> Vec<u64> {
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| {
            let json = &fields.iter().find(|(k, _)| k == "event").unwrap().1;
            serde_json::from_str::<serde_json::Value>(json).unwrap()["data"]["n"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn redis_outage_and_process_restart_lose_nothing_and_duplicate_nothing() {
    // AOF so that the stream itself survives the Redis restart.
    let mut redis = RedisServer::start(&["--appendonly", "yes"]);
    let url = redis.url(None);
    let cfg = DeliveryConfig {
        name: None,
        node: "node-a".into(),
        spool_dir: tmp("outage"),
        sinks: vec![Sink::Redis {
            url: url.clone(),
            stream: "sightline:events".into(),
        }],
        limits: Default::default(),
        ..Default::default()
    };
    let d = Delivery::start(cfg.clone()).unwrap();
    for i in 0..20 {
        d.send(&event(i)).unwrap();
    }
    assert!(wait_until(|| d.backlog() == 0, 10), "first 20 delivered");
    // Redis goes away: events keep coming and are spooled.
    redis.kill();
    for i in 20..60 {
        d.send(&event(i)).unwrap();
    }
    assert!(
        wait_until(|| !d.take_errors().is_empty(), 10),
        "the outage is reported"
    );
    assert!(d.backlog() > 0);
    // The process stops while Redis is down, and starts again.
    drop(d);
    let d = Delivery::start(cfg.clone()).unwrap();
    assert_eq!(d.backlog(), 40, "the spool survived the restart");
    for i in 60..80 {
        d.send(&event(i)).unwrap();
    }
    redis.restart();
    assert!(
        wait_until(|| d.backlog() == 0, 20),
        "delivered after Redis returned, backlog {}",
        d.backlog()
    );
    assert_eq!(
        stream_ns(&url, "sightline:events"),
        (0..80).collect::<Vec<u64>>(),
        "every event, in order, once"
    );
    // The same sequence sent again (a reply lost with the connection) is not added twice.
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let last: u64 = con.get("sightline:events:delivered:node-a").unwrap();
    assert_eq!(last, 79);
    drop(d);
    let _ = std::fs::remove_dir_all(&cfg.spool_dir);
}

#[test]
fn webhook_down_is_retried_until_it_answers() {
    let port = sightline_testkit::free_port();
    let cfg = DeliveryConfig {
        name: None,
        node: "node-w".into(),
        spool_dir: tmp("webhook"),
        sinks: vec![Sink::Webhook(format!("http://127.0.0.1:{port}/alerts"))],
        limits: Default::default(),
        ..Default::default()
    };
    let d = Delivery::start(cfg.clone()).unwrap();
    for i in 0..3 {
        d.send(&event(i)).unwrap();
    }
    assert!(
        wait_until(|| !d.take_errors().is_empty(), 10),
        "refused connection reported"
    );
    assert_eq!(d.backlog(), 3);
    let (bodies, _server) = sightline_testkit::http_recorder(port, 40);
    assert!(
        wait_until(|| d.backlog() == 0, 20),
        "retried with backoff until delivered"
    );
    let got: Vec<u64> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["data"]["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, vec![0, 1, 2]);
    drop(d);
    let _ = std::fs::remove_dir_all(&cfg.spool_dir);
}

#[test]
fn finish_waits_for_a_slow_sink_and_gives_up_on_a_dead_one() {
    let (slow, dead) = (
        sightline_testkit::free_port(),
        sightline_testkit::free_port(),
    );
    let (bodies, _server) =
        sightline_testkit::http_recorder_slow(slow, 40, Duration::from_millis(50));
    let cfg = |name: &str, port: u16| DeliveryConfig {
        name: None,
        node: "node-f".into(),
        spool_dir: tmp(name),
        sinks: vec![Sink::Webhook(format!("http://127.0.0.1:{port}/hook"))],
        limits: Default::default(),
        ..Default::default()
    };
    // A webhook that takes 50 ms an event: 20 events are all taken before finish returns.
    let c = cfg("finish-slow", slow);
    let d = Delivery::start(c.clone()).unwrap();
    for i in 0..20 {
        d.send(&event(i)).unwrap();
    }
    assert_eq!(d.finish(Duration::from_secs(20), Duration::from_secs(5)), 0);
    assert_eq!(bodies.lock().unwrap().len(), 20);
    drop(d);
    // Nobody listening: nothing leaves the queue, finish gives up after `stalled`.
    let c2 = cfg("finish-dead", dead);
    let d = Delivery::start(c2.clone()).unwrap();
    for i in 0..3 {
        d.send(&event(i)).unwrap();
    }
    let t = Instant::now();
    assert_eq!(
        d.finish(Duration::from_secs(20), Duration::from_millis(300)),
        3
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(d);
    for dir in [c.spool_dir, c2.spool_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The child of `kill_9_then_restart_delivers_every_fsynced_event_once_in_order`: spools
/// events with its sink down, says how many an fsync has covered, and goes on until killed.
#[test]
fn spool_writer_child() {
    let Some(dir) = std::env::var_os("SL_SPOOL_CHILD") else {
        return;
    };
    let url = std::env::var("SL_SPOOL_URL").unwrap();
    let d = Delivery::start(DeliveryConfig {
        name: None,
        node: "crash".into(),
        spool_dir: dir.into(),
        sinks: vec![Sink::Redis {
            url,
            stream: "sightline:events".into(),
        }],
        limits: Default::default(),
        ..Default::default()
    })
    .unwrap();
    for i in 0..1000 {
        d.send(&event(i)).unwrap();
    }
    let f = d.fsyncs();
    assert!(
        wait_until(|| d.fsyncs() > f, 10),
        "an fsync after the 1000th"
    );
    println!("SYNCED 1000");
    let mut i = 1000;
    loop {
        d.send(&event(i)).unwrap();
        i += 1;
        if i % 100 == 0 {
            println!("SENT {i}");
        }
    }
}

#[test]
fn kill_9_then_restart_delivers_every_fsynced_event_once_in_order() {
    use std::io::BufRead;
    let mut redis = RedisServer::start(&[]);
    let url = redis.url(None);
    let dir = tmp("crash");
    // Redis is away while the child writes.
    redis.kill();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "spool_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SL_SPOOL_CHILD", &dir)
        .env("SL_SPOOL_URL", &url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut synced = false;
    for line in out.lines().map_while(Result::ok) {
        if line.contains("SYNCED 1000") {
            synced = true;
        }
        if synced && line.contains("SENT 3000") {
            break;
        }
    }
    assert!(synced, "the child reported its fsync");
    // kill -9 in the middle of writing.
    child.kill().unwrap();
    let _ = child.wait();
    // What the crash left, kept to replay a lost reply below.
    let spool = dir.join("crash.spool.jsonl");
    let left = std::fs::read(&spool).unwrap();
    redis.restart();
    let cfg = DeliveryConfig {
        name: None,
        node: "crash".into(),
        spool_dir: dir.clone(),
        sinks: vec![Sink::Redis {
            url: url.clone(),
            stream: "sightline:events".into(),
        }],
        limits: Default::default(),
        ..Default::default()
    };
    let d = Delivery::start(cfg.clone()).unwrap();
    assert!(
        wait_until(|| d.backlog() == 0, 60),
        "backlog {}",
        d.backlog()
    );
    let got = stream_ns(&url, "sightline:events");
    eprintln!(
        "after kill -9 at ~3000 sent (1000 known fsynced): {} delivered",
        got.len()
    );
    assert!(got.len() >= 1000, "every fsynced event: {}", got.len());
    assert_eq!(
        got,
        (0..got.len() as u64).collect::<Vec<u64>>(),
        "in order, once, no gap"
    );
    drop(d);
    // Replies lost with the connection: the spool and cursor say only 11 events were
    // delivered. Everything after them is sent again; Redis keeps one copy of each.
    std::fs::write(&spool, &left).unwrap();
    let key = cfg.sinks[0].key();
    std::fs::write(dir.join(format!("crash.{key}.cursor")), "10").unwrap();
    let d = Delivery::start(cfg).unwrap();
    assert!(d.backlog() + 11 >= got.len(), "resending {}", d.backlog());
    for i in 0..5 {
        d.send(&event(100_000 + i)).unwrap();
    }
    assert!(wait_until(|| d.backlog() == 0, 60));
    let again = stream_ns(&url, "sightline:events");
    assert_eq!(
        &again[..got.len()],
        &got[..],
        "nothing resent was added twice"
    );
    assert_eq!(
        &again[got.len()..],
        &[100_000, 100_001, 100_002, 100_003, 100_004]
    );
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// An outage at a high event rate (5,000 events/s, 10 s, 50,000 events of ~0.4 kB, with an
/// alert every 500): the spool file and the memory stay bounded, every alert is kept, the
/// drops are counted.
#[test]
fn the_spool_limits_hold_through_an_outage_at_a_high_rate() {
    let port = sightline_testkit::free_port();
    let max = 1u64 << 20;
    let cfg = DeliveryConfig {
        name: None,
        node: "flood".into(),
        spool_dir: tmp("flood"),
        sinks: vec![Sink::Webhook(format!("http://127.0.0.1:{port}/down"))],
        limits: sightline_core::delivery::SpoolLimits {
            max_bytes: max,
            ..Default::default()
        },
        ..Default::default()
    };
    let d = Delivery::start(cfg.clone()).unwrap();
    let rss0 = rss_kib();
    let (mut peak_file, mut peak_rss) = (0u64, 0u64);
    let t0 = Instant::now();
    let pad = "x".repeat(300);
    for i in 0..50_000u64 {
        let kind = if i % 500 == 0 {
            "presence-alert"
        } else {
            "presence"
        };
        let ev = Event::new(
            kind,
            "presence0",
            "door",
            Some(i),
            "2026-12-01T00:00:00.000Z".into(),
            serde_json::json!({ "n": i, "pad": pad }),
        );
        d.send(&ev).unwrap();
        if i % 1000 == 0 {
            peak_file = peak_file.max(d.spool_bytes());
            peak_rss = peak_rss.max(rss_kib().saturating_sub(rss0));
            // 5,000 events per second.
            let due = t0 + Duration::from_micros(200 * i);
            if let Some(w) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(w);
            }
        }
    }
    let (backlog, dropped) = (d.backlog_bytes(), d.dropped());
    eprintln!(
        "50000 events in {:.1} s: spool file peak {} KiB, backlog {} KiB, {dropped} dropped, RSS +{peak_rss} KiB",
        t0.elapsed().as_secs_f64(),
        peak_file / 1024,
        backlog / 1024
    );
    // Undelivered events within the limit (plus the alerts, which are never dropped).
    assert!(backlog <= max + 100 * 500, "{backlog}");
    // The file: at most about twice the limit, plus what arrives before a compaction.
    assert!(peak_file <= 3 * max + (2 << 20), "{peak_file}");
    assert!(dropped >= 40_000, "{dropped}");
    // Memory: the bounded backlog, not 50,000 events (~20 MB).
    assert!(peak_rss < 12 * 1024, "RSS grew {peak_rss} KiB");
    drop(d);
    // Every alert is still there after a restart.
    let d = Delivery::start(cfg.clone()).unwrap();
    assert!(d.backlog() >= 100, "{}", d.backlog());
    drop(d);
    let text = std::fs::read_to_string(cfg.spool_dir.join("flood.spool.jsonl")).unwrap();
    let alerts = text
        .lines()
        .filter(|l| l.contains("\"alert\":true"))
        .count();
    assert_eq!(alerts, 100, "every alert kept");
    let _ = std::fs::remove_dir_all(&cfg.spool_dir);
}
