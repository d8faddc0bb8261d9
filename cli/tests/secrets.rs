//! No secret in any output: every element and the runner run with secret-bearing URLs — a
//! Redis ACL password, a webhook path token, basic-auth webhook credentials, a query token —
//! against endpoints that refuse (a closed port), reject (a Redis that requires another
//! password) and fail (a webhook answering 500), with `GST_DEBUG=*:4`, `gst-launch -m -v`
//! (messages and property notifications), the runner's JSON log and `--dry-run`. None of
//! the secret strings appears anywhere.

mod common;

use common::{pipeline, runner, tmp, uri};
use gst::prelude::*;
use sightline_testkit::{RedisServer, free_port, shared_data};
use std::io::{Read, Write};
use std::process::Command;

const REDIS_PW: &str = "S3cretRedisPw";
const HOOK_TOKEN: &str = "S3cretHookTok3n9";
const BASIC_PW: &str = "S3cretBasicPw";
const QUERY_TOKEN: &str = "S3cretQueryTok";

fn secrets() -> [&'static str; 4] {
    [REDIS_PW, HOOK_TOKEN, BASIC_PW, QUERY_TOKEN]
}

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(s)).collect();
        assert!(
            lines.is_empty(),
            "{what} shows the secret {s} in:\n{}",
            lines.join("\n")
        );
    }
}

/// An HTTP server on 127.0.0.1 that answers 500 to everything (a failing webhook).
fn failing_webhook() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut c = c;
            let _ = c.set_read_timeout(Some(std::time::Duration::from_millis(500)));
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    port
}

struct Urls {
    /// A Redis that requires another password: our password is rejected.
    redis_rejecting: String,
    /// A closed port.
    redis_refused: String,
    webhook: String,
}

fn urls(redis: &RedisServer) -> Urls {
    let hook = failing_webhook();
    Urls {
        redis_rejecting: format!("redis://node1:{REDIS_PW}@127.0.0.1:{}/", redis.port),
        redis_refused: format!("redis://node1:{REDIS_PW}@127.0.0.1:{}/", free_port()),
        webhook: format!(
            "http://alice:{BASIC_PW}@127.0.0.1:{hook}/services/T0001/{HOOK_TOKEN}?token={QUERY_TOKEN}"
        ),
    }
}

fn plugin_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_sightline"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn elements_never_print_a_secret() {
    let redis = RedisServer::start(&["--requirepass", "the-right-one"]);
    let u = urls(&redis);
    let dir = tmp("secrets-elements");
    let cal = dir.join("pets.json");
    sightline_testkit::pets_calibration(0.0, &cal);
    let face = shared_data("faces/face_recognition_examples/obama/obama.jpg");
    // The secrets off the command line, as documented: env:NAME and @FILE.
    let hook_file = dir.join("webhook-url");
    std::fs::write(&hook_file, format!("{}\n", u.webhook)).unwrap();
    for (redis_url, literal) in [
        ("env:SL_TEST_REDIS_URL".to_string(), false),
        (u.redis_refused.clone(), true),
    ] {
        let hook = if literal {
            u.webhook.clone()
        } else {
            format!("@{}", hook_file.display())
        };
        let desc = format!(
            "filesrc location={face} ! decodebin ! videoconvert ! videoscale ! \
             video/x-raw,format=BGRx,width=320,height=240 ! imagefreeze num-buffers=20 ! \
             tee name=t t. ! queue ! sightlinefacedetect ! facematch redis-url={redis_url} ! \
             presence redis-url={redis_url} webhook-url={hook} unknown-alert-cameras=1 \
               absent-seconds=0.2 grace-seconds=0.1 roster=Ann spool-dir={spool} ! fakesink \
             t. ! queue ! persondetect ! reidmap calibration={cal} redis-url={redis_url} \
               spool-dir={spool} ! fakesink",
            face = face.display(),
            spool = dir.join("spool").display(),
            cal = cal.display(),
        );
        let o = Command::new("gst-launch-1.0")
            .args(["-m", "-v"])
            .args(desc.split_whitespace())
            .env("GST_PLUGIN_PATH", plugin_dir())
            .env("GST_DEBUG", "*:4")
            .env("GST_DEBUG_NO_COLOR", "1")
            .env("SL_TEST_REDIS_URL", &u.redis_rejecting)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        // It ran, and it said why Redis and the webhook did not work (redacted).
        assert!(o.status.success(), "{text}");
        assert!(text.contains("redis://node1:***@"), "{text}");
        assert!(text.contains("webhook http://alice:***@"), "{text}");
        // Given literally on a gst-launch command line, the secret is in that command line:
        // `ps` shows it, and GStreamer's own parser logs it (INFO, gst_parse_launch_full).
        // Nothing of ours does.
        let ours: String = text
            .lines()
            .filter(|l| !(literal && l.contains("gst_parse_launch_full")))
            .collect::<Vec<_>>()
            .join("\n");
        assert_clean("gst-launch -m -v with GST_DEBUG=*:4", &ours);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn properties_read_back_without_secrets() {
    gst::init().unwrap();
    let registry = gst::Registry::get();
    registry.scan_path(plugin_dir());
    let u = urls(&RedisServer::start(&[]));
    for (factory, prop, value) in [
        ("facematch", "redis-url", &u.redis_refused),
        ("presence", "redis-url", &u.redis_refused),
        ("presence", "webhook-url", &u.webhook),
        ("reidmap", "redis-url", &u.redis_refused),
        ("mapview", "redis-url", &u.redis_refused),
    ] {
        let e = gst::ElementFactory::make(factory).build().unwrap();
        e.set_property(prop, value.as_str());
        let back: String = e.property(prop);
        assert_clean(&format!("{factory} {prop} read back"), &back);
        assert!(back.contains("***"), "{back}");
    }
}

#[test]
fn the_runner_never_prints_a_secret() {
    let redis = RedisServer::start(&["--requirepass", "the-right-one"]);
    let u = urls(&redis);
    let dir = tmp("secrets-runner");
    let g = common::gallery(&dir);
    let face = uri(&shared_data(
        "video/intel_sample_videos/derived/head-pose-face-detection-male.mjpeg.avi",
    ));
    let sets = [
        ("CAM1", face),
        ("GALLERY", g.display().to_string()),
        ("REDIS", u.redis_rejecting.clone()),
        ("NODE", "n1".to_string()),
    ];
    let file = pipeline("unknown-consensus.pipeline");
    // --dry-run prints the substituted description.
    let o = runner(&file, &sets, &["--dry-run"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("redis-url=redis://node1:***@"),
        "{out}"
    );
    assert_clean("--dry-run", &out);
    // A run: the events Redis from a file (not the command line), the JSON log on stderr.
    let url_file = dir.join("redis-url");
    std::fs::write(&url_file, format!("{}\n", u.redis_refused)).unwrap();
    let o = runner(&file, &sets, &["--http", "", "--duration", "4"])
        .arg("--redis-url-file")
        .arg(&url_file)
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .arg("--events")
        .arg(dir.join("events.jsonl"))
        .env("GST_DEBUG", "*:4")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("***"),
        "the outage is reported, redacted: {err}"
    );
    assert_clean("the runner's log", &err);
    assert_clean("stdout", &String::from_utf8_lossy(&o.stdout));
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
    assert_clean("the event log", &events);
    // --help never shows an environment value.
    let o = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["run", "--help"])
        .env("SIGHTLINE_REDIS_URL", &u.redis_refused)
        .output()
        .unwrap();
    assert_clean("run --help", &String::from_utf8_lossy(&o.stdout));
    let _ = std::fs::remove_dir_all(dir);
}
