//! `sightline run --publish` against real servers started here (mosquitto read by the real
//! `mosquitto_sub`, redis-server, a JSONL file): one event path, and a runner killed with
//! SIGKILL is shown offline by the broker's last will.

mod common;

use common::{gallery, metrics, runner, stop, tmp, wait_for};
use sightline_testkit::{MosquittoServer, RedisServer, shared_data};
use std::process::{Command, Stdio};

const AUTH: (&str, &str) = ("ha", "pw");

fn mqtt_sub(port: u16, id: Option<&str>, topic: &str, extra: &[&str]) -> Vec<String> {
    let mut c = Command::new("mosquitto_sub");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-u", AUTH.0, "-P", AUTH.1, "-q", "1", "-v", "-t", topic])
        .args(extra);
    if let Some(id) = id {
        c.args(["-i", id, "-c"]);
    }
    let out = c.output().expect("mosquitto_sub: run scripts/setup");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// (kind, event, running time, data) of an event's JSON: what makes one event one event (the
/// `utc` is left out: it is the posting time, the same in every copy anyway).
fn key(json: &str) -> (String, String, u64, String) {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    (
        v["kind"].as_str().unwrap().to_string(),
        v["data"]["event"].as_str().unwrap_or("").to_string(),
        v["running_time_ns"].as_u64().unwrap_or(0),
        v["data"].to_string(),
    )
}

#[test]
fn an_element_that_publishes_is_not_published_again_by_the_runner() {
    let dir = tmp("one-path");
    let g = gallery(&dir);
    let broker = MosquittoServer::start(Some(AUTH));
    let redis = RedisServer::start(&[]);
    let file = dir.join("events.jsonl");
    let sinks = format!(
        "file://{},{}?stream=ev,{}",
        file.display(),
        redis.url(None),
        broker.url(Some(AUTH))
    );
    let all = "sightline/+/events/#";
    mqtt_sub(broker.port, Some("count"), all, &["-E"]);
    // One camera: Obama's photo for 3 s at 10 fps, then the end of the file.
    let pf = dir.join("outlet.pipeline");
    std::fs::write(
        &pf,
        format!(
            "# one camera whose presence element publishes itself\n# @var PUB  sinks\n\
             filesrc location={} ! decodebin ! videoconvert ! imagefreeze num-buffers=30 ! \
             video/x-raw,format=BGRx,framerate=10/1 ! facedetect camera=door ! \
             facematch camera=door gallery={} ! presence group=o1 camera=door node-id=n1 \
             roster=\"Barack Obama\" publish=${{PUB}} spool-dir={} ! fakesink\n",
            shared_data("faces/face_recognition_examples/obama/obama2.jpg").display(),
            g.display(),
            dir.join("spool-presence").display()
        ),
    )
    .unwrap();
    let child = runner(
        &pf,
        &[("PUB", sinks.clone())],
        &[
            "--publish",
            &sinks,
            "--node",
            "r1",
            "--http",
            "",
            "--spool-dir",
            &dir.join("spool-runner").display().to_string(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains(AUTH.1), "{log}");
    // The file: presence's events (roster, arrived) from the element, facedetect's and
    // facematch's from the runner; each once.
    let lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let keys: Vec<_> = lines.iter().map(|l| key(l)).collect();
    let presence: Vec<_> = keys.iter().filter(|k| k.0 == "presence").collect();
    assert!(
        presence.iter().any(|k| k.1 == "roster") && presence.iter().any(|k| k.1 == "arrived"),
        "{presence:?}"
    );
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    let facedetect = keys.iter().filter(|k| k.0 == "facedetect").count();
    assert!(facedetect >= 20, "{facedetect} facedetect events");
    assert_eq!(unique.len(), keys.len(), "an event twice in the file");
    // Redis: the same events, once.
    let mut con = redis::Client::open(redis.url(None))
        .unwrap()
        .get_connection()
        .unwrap();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("ev")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap();
    let mut in_redis: Vec<_> = entries
        .iter()
        .map(|(_, f)| key(&f.iter().find(|(k, _)| k == "event").unwrap().1))
        .collect();
    let mut in_file = keys.clone();
    in_redis.sort();
    in_file.sort();
    assert_eq!(in_redis, in_file);
    // MQTT: the same events, presence's under the element's node, the rest under the runner's.
    let got = mqtt_sub(broker.port, Some("count"), all, &["-W", "3"]);
    let mut on_mqtt: Vec<_> = got
        .iter()
        .map(|l| {
            let (topic, json) = l.split_once(' ').unwrap();
            let k = key(json);
            let node = if k.0 == "presence" { "n1" } else { "r1" };
            assert_eq!(topic, format!("sightline/{node}/events/{}", k.0));
            k
        })
        .collect();
    on_mqtt.sort();
    assert_eq!(on_mqtt, in_file);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_runner_killed_with_sigkill_is_offline_through_the_last_will() {
    let dir = tmp("will");
    let mut broker = MosquittoServer::start(Some(AUTH));
    let pf = dir.join("live.pipeline");
    std::fs::write(
        &pf,
        "# a live camera\nvideotestsrc is-live=true ! video/x-raw,format=BGRx,width=320,height=240,framerate=5/1 ! facedetect camera=cam ! fakesink\n",
    )
    .unwrap();
    let mut child = runner(&pf, &[], &["--node", "k1", "--http", ""])
        .env("SIGHTLINE_PUBLISH", broker.url(Some(AUTH)))
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let topic = "sightline/k1/availability";
    let retained = |port: u16| {
        mqtt_sub(
            port,
            None,
            topic,
            &["-C", "1", "-W", "2", "--retained-only"],
        )
    };
    wait_for("online", 30, || {
        retained(broker.port) == [format!("{topic} online")]
    });
    // Home Assistant's discovery: the camera's entities.
    let cfg = mqtt_sub(
        broker.port,
        None,
        "homeassistant/binary_sensor/sightline_k1/camera_cam/config",
        &["-C", "1", "-W", "5"],
    );
    assert_eq!(cfg.len(), 1, "{cfg:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("offline by the last will", 15, || {
        retained(broker.port) == [format!("{topic} offline")]
    });
    // A runner stopped cleanly says offline itself. Its metrics show a broker outage.
    let port = sightline_testkit::free_port();
    let http = format!("127.0.0.1:{port}");
    let child = runner(&pf, &[], &["--node", "k1", "--http", &http])
        .env("SIGHTLINE_PUBLISH", broker.url(Some(AUTH)))
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("online again", 30, || {
        retained(broker.port) == [format!("{topic} online")]
    });
    // The sink as the metrics name it: without its password.
    let sink = format!("mqtt://ha:***@127.0.0.1:{}", broker.port);
    let value = |name: &str| -> Option<f64> {
        let m = metrics(port)?;
        assert!(!m.contains(AUTH.1), "a secret in the metrics: {m}");
        m.lines()
            .find(|l| l.starts_with(&format!("{name}{{sink=\"{sink}\"}}")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    wait_for("publish up", 15, || {
        value("sightline_publish_up") == Some(1.0)
    });
    broker.stop();
    wait_for("publish down in the metrics", 30, || {
        value("sightline_publish_up") == Some(0.0)
            && value("sightline_publish_errors_total").unwrap_or(0.0) >= 1.0
    });
    broker.restart();
    wait_for("publish up again, caught up", 30, || {
        value("sightline_publish_up") == Some(1.0)
            && value("sightline_publish_backlog") == Some(0.0)
    });
    assert!(stop(child).status.success());
    wait_for("offline after SIGTERM", 15, || {
        retained(broker.port) == [format!("{topic} offline")]
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_stopping_runner_lets_a_slow_sink_take_what_waits() {
    let dir = tmp("slow-sink");
    let g = gallery(&dir);
    // A webhook that takes 100 ms per event: the camera's events outrun it, so most still
    // wait when the file ends (the runner used to give its sinks 0.4 s, the rest stayed in
    // the spool for the next start).
    let port = sightline_testkit::free_port();
    let (hooks, _server) =
        sightline_testkit::http_recorder_slow(port, 1000, std::time::Duration::from_millis(100));
    let file = dir.join("events.jsonl");
    let sinks = format!("file://{},http://127.0.0.1:{port}/hook", file.display());
    let pf = dir.join("door.pipeline");
    std::fs::write(
        &pf,
        format!(
            "# one camera\nfilesrc location={} ! decodebin ! videoconvert ! imagefreeze num-buffers=30 ! \
             video/x-raw,format=BGRx,framerate=10/1 ! facedetect camera=door ! \
             facematch camera=door gallery={} ! fakesink\n",
            shared_data("faces/face_recognition_examples/obama/obama2.jpg").display(),
            g.display(),
        ),
    )
    .unwrap();
    let out = runner(
        &pf,
        &[],
        &[
            "--publish",
            &sinks,
            "--http",
            "",
            "--spool-dir",
            &dir.join("spool").display().to_string(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .output()
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let in_file = std::fs::read_to_string(&file).unwrap().lines().count();
    assert!(in_file >= 30, "{in_file} events in the file\n{log}");
    // Every event reached the slow webhook before the runner stopped, and the wait is said.
    let hooked = hooks.lock().unwrap().len();
    assert_eq!(hooked, in_file, "events at the webhook, in the file");
    assert!(
        log.contains("waiting event(s) before stopping"),
        "the wait is said: {log}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
