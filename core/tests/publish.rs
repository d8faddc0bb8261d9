//! One publisher, several sinks at once, against real servers started here: Debian's mosquitto
//! (with a password) read by the real `mosquitto_sub` client, redis-server, a JSONL file and a
//! local HTTP server standing in for the Telegram Bot API.

use sightline_core::delivery::{ALERT_KIND, Delivery, DeliveryConfig};
use sightline_core::events::Event;
use sightline_core::sinks::Sink;
use sightline_testkit::{MosquittoServer, RedisServer};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn event(kind: &str, i: u64) -> Event {
    Event::new(
        kind,
        "presence0",
        "door",
        Some(i),
        "2026-12-02T08:00:00.000Z".into(),
        serde_json::json!({ "n": i, "group": "outlet-7", "event": "absent", "identity": "ann",
            "label": "Ann", "absent-seconds": 600.0, "never-seen": false, "camera": "till" }),
    )
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sl-publish-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(f(), "{what} within {secs} s");
}

/// `mosquitto_sub` with a persistent session (`-c`, QoS 1): what the broker keeps for it while
/// it is away is delivered when it comes back. Prints `topic payload` per message.
fn sub(port: u16, auth: (&str, &str), id: &str, topic: &str, extra: &[&str]) -> String {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-u", auth.0, "-P", auth.1, "-i", id, "-c", "-q", "1", "-v"])
        .args(["-t", topic])
        .args(extra)
        .stderr(Stdio::inherit())
        .output()
        .expect("mosquitto_sub (Debian package mosquitto-clients): run scripts/setup");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ns_of_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<u64> {
    lines
        .filter_map(|l| {
            let json = &l[l.find('{')?..];
            serde_json::from_str::<serde_json::Value>(json).ok()?["data"]["n"].as_u64()
        })
        .collect()
}

#[test]
fn file_redis_and_mqtt_get_every_event_in_order_through_a_broker_restart() {
    let auth = ("ha", "s3cret-pw");
    let mut broker = MosquittoServer::start(Some(auth));
    let redis = RedisServer::start(&[]);
    let dir = tmp("three");
    let file = dir.join("out/events.jsonl");
    let node = "site-a";
    let topic = format!("sightline/{node}/events/#");
    // The subscriber's session exists before anything is published (-E: exit once subscribed).
    sub(broker.port, auth, "sl-test-sub", &topic, &["-E"]);
    let sinks = Sink::parse_list(&format!(
        "file://{},{}?stream=ev,{}",
        file.display(),
        redis.url(None),
        broker.url(Some(auth))
    ))
    .unwrap();
    let d = Delivery::start(DeliveryConfig {
        node: node.into(),
        spool_dir: dir.join("spool"),
        sinks,
        ..Default::default()
    })
    .unwrap();
    for i in 0..50 {
        d.send(&event("presence", i)).unwrap();
    }
    wait_until("50 delivered everywhere", 30, || d.delivered() == 50);
    // The broker goes away: the file and Redis go on, MQTT waits in the spool.
    broker.stop();
    for i in 50..100 {
        d.send(&event("presence", i)).unwrap();
    }
    wait_until("file and Redis caught up, MQTT behind", 30, || {
        let s = d.sinks();
        s[0].backlog == 0 && s[1].backlog == 0 && s[2].backlog == 50 && !s[2].up
    });
    let errors = d.take_errors();
    assert_eq!(errors.len(), 1, "once per outage: {errors:?}");
    assert!(
        errors[0].contains(&format!("mqtt://ha:***@127.0.0.1:{}", broker.port)),
        "{errors:?}"
    );
    assert!(!errors.iter().any(|e| e.contains(auth.1)), "{errors:?}");
    broker.restart();
    // The delivery thread backs off up to 5 s between tries.
    wait_until("MQTT caught up", 30, || d.sinks()[2].backlog == 0);
    assert_eq!(d.delivered(), 100);
    drop(d);
    // MQTT: every event, in order; at least once (a PUBACK lost with the connection is sent
    // again), so a repeat of the one event in flight at the stop is allowed.
    let got = sub(
        broker.port,
        auth,
        "sl-test-sub",
        &topic,
        &["-C", "100", "-W", "20"],
    );
    let mut ns = ns_of_lines(got.lines());
    assert!(
        got.lines()
            .all(|l| l.starts_with(&format!("sightline/{node}/events/presence "))),
        "{got}"
    );
    ns.dedup();
    assert_eq!(ns, (0..100).collect::<Vec<_>>());
    // The file: exactly once, in order.
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(ns_of_lines(text.lines()), (0..100).collect::<Vec<_>>());
    // Redis: exactly once (idempotent by sequence).
    let mut con = redis::Client::open(redis.url(None))
        .unwrap()
        .get_connection()
        .unwrap();
    let len: u64 = redis::cmd("XLEN").arg("ev").query(&mut con).unwrap();
    assert_eq!(len, 100);
    // Availability: retained `offline` after the clean stop.
    let avail = sub(
        broker.port,
        auth,
        "sl-test-avail",
        &format!("sightline/{node}/availability"),
        &["-C", "1", "-W", "10"],
    );
    assert_eq!(
        avail.trim(),
        format!("sightline/{node}/availability offline")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_wrong_mqtt_password_is_a_clear_error_without_the_password() {
    let broker = MosquittoServer::start(Some(("ha", "right-pw")));
    let dir = tmp("badpw");
    let d = Delivery::start(DeliveryConfig {
        node: "n".into(),
        spool_dir: dir.clone(),
        sinks: vec![Sink::parse(&broker.url(Some(("ha", "WRONG-pw")))).unwrap()],
        ..Default::default()
    })
    .unwrap();
    d.send(&event("presence", 0)).unwrap();
    let mut errors = Vec::new();
    wait_until("an error", 20, || {
        errors.extend(d.take_errors());
        !errors.is_empty()
    });
    let e = &errors[0];
    assert!(
        e.contains(&format!("mqtt://ha:***@127.0.0.1:{}", broker.port)),
        "{e}"
    );
    assert!(!e.contains("WRONG"), "{e}");
    assert_eq!(d.sinks()[0].backlog, 1, "kept for later");
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}

/// MQTT over TLS: with the broker's CA in `SIGHTLINE_MQTT_CA` (a child process, so that the
/// variable is its own), events arrive; without it, the error names the sink and the
/// certificate problem, and the event waits in the spool.
#[test]
fn mqtts_is_verified_against_the_system_roots_and_sightline_mqtt_ca() {
    let auth = ("ha", "tls-pw");
    let broker = MosquittoServer::start_tls(Some(auth));
    let dir = tmp("mqtts");
    let url = broker.url(Some(auth));
    assert!(url.starts_with("mqtts://"));
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "mqtt_publisher_child", "--nocapture"])
        .env("SL_MQTT_CHILD_URL", &url)
        .env("SL_MQTT_CHILD_DIR", dir.join("ok"))
        .env("SL_MQTT_CHILD_EXIT", "1")
        .env("SIGHTLINE_MQTT_CA", broker.ca())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("DELIVERED"),
        "delivered over TLS"
    );
    assert!(out.status.success());
    // The broker has it: mosquitto_sub over TLS with the same CA.
    let got = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .args(["-u", auth.0, "-P", auth.1, "--cafile"])
        .arg(broker.ca())
        .args(["-t", "sightline/victim/availability", "-C", "1", "-W", "10"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "offline");
    // This process has no SIGHTLINE_MQTT_CA: the test CA is not trusted.
    assert!(std::env::var_os("SIGHTLINE_MQTT_CA").is_none());
    let d = Delivery::start(DeliveryConfig {
        node: "untrusted".into(),
        spool_dir: dir.join("bad"),
        sinks: vec![Sink::parse(&url).unwrap()],
        ..Default::default()
    })
    .unwrap();
    d.send(&event("presence", 0)).unwrap();
    let mut errors = Vec::new();
    wait_until("a TLS error", 20, || {
        errors.extend(d.take_errors());
        !errors.is_empty()
    });
    let e = &errors[0];
    assert!(
        e.contains(&format!("mqtts://ha:***@127.0.0.1:{}", broker.port)),
        "{e}"
    );
    assert!(e.to_lowercase().contains("certificate"), "says why: {e}");
    assert!(!e.contains(auth.1), "{e}");
    assert_eq!(d.sinks()[0].backlog, 1, "kept for later");
    drop(d);
    let _ = std::fs::remove_dir_all(dir);
}

/// The child of `a_killed_publisher_is_offline_through_the_last_will`: connects, publishes one
/// event and waits to be killed (or returns, with `SL_MQTT_CHILD_EXIT`).
#[test]
fn mqtt_publisher_child() {
    let (Ok(url), Some(dir)) = (
        std::env::var("SL_MQTT_CHILD_URL"),
        std::env::var_os("SL_MQTT_CHILD_DIR"),
    ) else {
        return;
    };
    let d = Delivery::start(DeliveryConfig {
        node: "victim".into(),
        spool_dir: dir.into(),
        sinks: vec![Sink::parse(&url).unwrap()],
        ..Default::default()
    })
    .unwrap();
    d.send(&event("presence", 0)).unwrap();
    wait_until("delivered", 20, || d.delivered() == 1);
    println!("DELIVERED");
    if std::env::var_os("SL_MQTT_CHILD_EXIT").is_some() {
        return;
    }
    loop {
        std::thread::park();
    }
}

#[test]
fn a_killed_publisher_is_offline_through_the_last_will() {
    use std::io::BufRead;
    let auth = ("ha", "pw");
    let broker = MosquittoServer::start(Some(auth));
    let dir = tmp("will");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "mqtt_publisher_child", "--nocapture"])
        .env("SL_MQTT_CHILD_URL", broker.url(Some(auth)))
        .env("SL_MQTT_CHILD_DIR", &dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    assert!(
        out.lines()
            .map_while(Result::ok)
            .any(|l| l.contains("DELIVERED")),
        "the child delivered its event"
    );
    let topic = "sightline/victim/availability";
    let online = sub(
        broker.port,
        auth,
        "sl-will-1",
        topic,
        &["-C", "1", "-W", "10"],
    );
    assert_eq!(online.trim(), format!("{topic} online"));
    child.kill().unwrap();
    child.wait().unwrap();
    // The kernel closes the socket at once: the broker sends the will without waiting for
    // the keep-alive (5 s x 1.5) to run out; 15 s is the bound either way.
    let mut last = String::new();
    wait_until("offline by the last will", 15, || {
        last = sub(
            broker.port,
            auth,
            "sl-will-2",
            topic,
            &["-C", "1", "-W", "2"],
        );
        last.trim() == format!("{topic} offline")
    });
    let _ = std::fs::remove_dir_all(dir);
}

/// The child of `telegram_gets_one_message_per_alert_and_catches_up_after_an_outage`: it
/// runs with `SIGHTLINE_HTTP_CA` set (the test CA of a stand-in Bot API over HTTPS).
#[test]
fn telegram_child() {
    let (Ok(port), Some(dir)) = (
        std::env::var("SL_TELEGRAM_PORT"),
        std::env::var_os("SL_TELEGRAM_DIR"),
    ) else {
        return;
    };
    let port: u16 = port.parse().unwrap();
    let token = "123456:AAH-test_token";
    let d = Delivery::start(DeliveryConfig {
        node: "n".into(),
        spool_dir: dir.into(),
        sinks: vec![
            Sink::parse(&format!(
                "telegram://{token}@-1001234?api=https://127.0.0.1:{port}"
            ))
            .unwrap(),
        ],
        ..Default::default()
    })
    .unwrap();
    // The API is down: presence events are skipped, the two alerts wait.
    d.send(&event("presence", 0)).unwrap();
    d.send(&event(ALERT_KIND, 1)).unwrap();
    d.send(&event("presence", 2)).unwrap();
    d.send(&event(ALERT_KIND, 3)).unwrap();
    let mut errors = Vec::new();
    wait_until("the outage reported", 20, || {
        errors.extend(d.take_errors());
        !errors.is_empty()
    });
    assert!(
        errors[0].starts_with("telegram://***@-1001234"),
        "{errors:?}"
    );
    assert!(!errors.iter().any(|e| e.contains("AAH")), "{errors:?}");
    // The API comes up (HTTPS, its certificate signed by the test CA).
    let api = sightline_testkit::HttpsRecorder::start(port);
    wait_until("both alerts sent", 30, || d.sinks()[0].backlog == 0);
    drop(d);
    let requests = api.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for (path, body) in &requests {
        assert_eq!(path, &format!("/bot{token}/sendMessage"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["chat_id"], "-1001234");
        assert_eq!(
            v["text"],
            "Ann is absent from outlet-7: not seen for 10 min (alert at 2026-12-02T08:00:00.000Z), last seen on camera till."
        );
    }
    println!("TELEGRAM OK");
}

#[test]
fn telegram_gets_one_message_per_alert_and_catches_up_after_an_outage() {
    let port = sightline_testkit::free_port();
    let ca = sightline_testkit::HttpsRecorder::prepare(port);
    let dir = tmp("telegram");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "telegram_child", "--nocapture"])
        .env("SL_TELEGRAM_PORT", port.to_string())
        .env("SL_TELEGRAM_DIR", &dir)
        .env("SIGHTLINE_HTTP_CA", &ca)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("TELEGRAM OK"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(ca.parent().unwrap());
}
