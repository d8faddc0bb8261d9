//! Durable event delivery against a real Redis (Debian redis-server started here) and a local
//! HTTP server: order, no loss, no duplicates across outages and restarts.

use redis::Commands;
use sightline_core::delivery::{Delivery, DeliveryConfig};
use sightline_core::events::Event;
use sightline_testkit::RedisServer;
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

fn wait_until(mut f: impl FnMut() -> bool, secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::yield_now();
    }
    f()
}

#[test]
fn redis_outage_and_process_restart_lose_nothing_and_duplicate_nothing() {
    // AOF so that the stream itself survives the Redis restart.
    let mut redis = RedisServer::start(&["--appendonly", "yes"]);
    let url = redis.url(None);
    let cfg = DeliveryConfig {
        node: "node-a".into(),
        spool_dir: tmp("outage"),
        redis_url: Some(url.clone()),
        stream: "sightline:events".into(),
        webhook_url: None,
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
        node: "node-w".into(),
        spool_dir: tmp("webhook"),
        redis_url: None,
        stream: String::new(),
        webhook_url: Some(format!("http://127.0.0.1:{port}/alerts")),
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
