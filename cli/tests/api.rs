//! The runner's API on a real pipeline: a known face (a real photo) appears for 3 s and
//! leaves; the API follows the arrival and the absence, lists the alert, and records an
//! operator's acknowledgement. Tokens come from the real `sightline auth` command; a
//! schemathesis run (PyPI, installed by scripts/setup) checks the server against its OpenAPI
//! document; a non-loopback address without --auth is refused.

mod common;

use common::{gallery, runner, stop, tmp, wait_for};
use serde_json::Value;
use sightline_testkit::{free_port, shared_data};
use std::path::Path;
use std::process::{Command, Stdio};

fn auth(file: &Path, name: &str, role: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["auth", "--file"])
        .arg(file)
        .args(["add", name, "--role", role])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The token alone on the last line of stdout.
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

/// (status, body) of one request, with a bearer token.
fn call(method: &str, port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(10)))
            .build(),
    );
    let url = format!("http://127.0.0.1:{port}{path}");
    let res = match method {
        "POST" => {
            let mut r = agent.post(&url);
            if let Some(t) = token {
                r = r.header("Authorization", format!("Bearer {t}"));
            }
            r.send_empty()
        }
        _ => {
            let mut r = agent.get(&url);
            if let Some(t) = token {
                r = r.header("Authorization", format!("Bearer {t}"));
            }
            r.call()
        }
    };
    match res {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

fn get_json(port: u16, path: &str, token: &str) -> Value {
    let (code, body) = call("GET", port, path, Some(token));
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn person_state(port: u16, token: &str) -> Option<String> {
    let v = get_json(port, "/api/v1/presence", token);
    v["groups"]
        .as_array()?
        .iter()
        .find(|g| g["group"] == "shop")?["people"]
        .as_array()?
        .iter()
        .find(|p| p["identity"] == "barack-obama")?["state"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn the_api_follows_an_arrival_and_an_absence_with_access_control() {
    let dir = tmp("api");
    let g = gallery(&dir);
    let tokens = dir.join("tokens.json");
    let viewer = auth(&tokens, "wall", "viewer");
    let operator = auth(&tokens, "ops", "operator");
    let admin = auth(&tokens, "root", "admin");
    // 3 s of a known face (4 frames/s), then 60 s of an empty scene, played in real time.
    let photo = shared_data("faces/face_recognition_examples/obama/obama2.jpg");
    let pf = dir.join("shop.pipeline");
    std::fs::write(
        &pf,
        format!(
            "concat name=c ! videoconvert ! video/x-raw,format=BGRx ! facedetect camera=door ! \
             facematch camera=door gallery={} ! presence group=shop camera=door grace-seconds=1 \
             absent-seconds=3 roster=\"Barack Obama\" ! fakesink sync=true\n\
             multifilesrc location={} loop=true caps=image/jpeg,framerate=4/1 ! jpegdec ! videoconvert ! \
             videoscale ! video/x-raw,format=I420,width=314,height=600,framerate=4/1 ! identity eos-after=12 ! c.\n\
             videotestsrc pattern=black num-buffers=240 ! video/x-raw,format=I420,width=314,height=600,framerate=4/1 ! c.\n",
            g.display(),
            photo.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let http = format!("127.0.0.1:{port}");
    let child = runner(&pf, &[], &["--http", &http, "--auth"])
        .arg(&tokens)
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the API", 30, || {
        call("GET", port, "/health/live", None).0 == 200
    });
    // No token, a wrong token: 401; the probes and the description are open.
    assert_eq!(call("GET", port, "/api/v1/presence", None).0, 401);
    assert_eq!(
        call("GET", port, "/api/v1/presence", Some("slt_1_x")).0,
        401
    );
    assert_eq!(call("GET", port, "/api/v1/openapi.json", None).0, 200);
    // The roster is known before anyone is seen; then the arrival, the grace, the absence.
    wait_for("Obama present", 30, || {
        person_state(port, &viewer).as_deref() == Some("present")
    });
    // The camera is up once it processed frames; frames/s from two counts a second apart.
    let mut door = Value::Null;
    wait_for("door up with a frame rate", 10, || {
        door = get_json(port, "/api/v1/cameras", &viewer)["cameras"][0].clone();
        door["state"] == "up" && door["fps"].as_f64().unwrap_or(0.0) > 0.0
    });
    assert_eq!(door["name"], "door");
    assert!(door["frames_processed"].as_u64().unwrap() > 0, "{door}");
    // 4 frames/s played in real time (the analytics keep up at this rate).
    let fps = door["fps"].as_f64().unwrap();
    assert!((1.0..=6.0).contains(&fps), "{door}");
    wait_for("Obama absent", 30, || {
        person_state(port, &viewer).as_deref() == Some("absent")
    });
    let alerts = get_json(port, "/api/v1/alerts", &viewer);
    let list = alerts["alerts"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{alerts}");
    let a = &list[0];
    assert_eq!(a["event"], "absent");
    assert_eq!(a["identity"], "barack-obama");
    assert!(a["ack"].is_null());
    let id = a["id"].as_str().unwrap();
    let ack = format!("/api/v1/alerts/{id}/ack");
    // A viewer may not acknowledge; an operator may, and is recorded.
    assert_eq!(call("POST", port, &ack, Some(&viewer)).0, 403);
    let (code, body) = call("POST", port, &ack, Some(&operator));
    assert_eq!(code, 200, "{body}");
    let acked: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(acked["ack"]["by"], "ops");
    let listed = get_json(port, "/api/v1/alerts", &viewer);
    assert_eq!(listed["alerts"][0]["ack"]["by"], "ops");
    // since: after the alert, nothing.
    let since = format!("/api/v1/alerts?since={}", a["utc"].as_str().unwrap());
    assert_eq!(
        get_json(port, &since, &viewer)["alerts"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        call("GET", port, "/api/v1/alerts?since=soon", Some(&viewer)).0,
        400
    );
    // The server against its own description, with an admin token (schemathesis, bounded).
    let st = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.deps/schemathesis/bin/st");
    assert!(st.is_file(), "{} (run scripts/setup)", st.display());
    let out = Command::new(&st)
        .args([
            "run",
            &format!("http://127.0.0.1:{port}/api/v1/openapi.json"),
        ])
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .args(["--checks", "all", "--max-examples", "25", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        // Its cache and reports go to the test's directory, removed at the end.
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(&admin), "the token is not echoed");
    let o = stop(child);
    let log = String::from_utf8_lossy(&o.stderr);
    for t in [&viewer, &operator, &admin] {
        assert!(!log.contains(t.as_str()), "a token in the runner's log");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_non_loopback_address_without_auth_is_refused() {
    let dir = tmp("noauth");
    let pf = dir.join("p.pipeline");
    std::fs::write(&pf, "videotestsrc num-buffers=10 ! fakesink\n").unwrap();
    let o = runner(&pf, &[], &["--http", "0.0.0.0:1"]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("refusing to serve --http 0.0.0.0:1 without --auth")
            && err.contains("--insecure-no-auth"),
        "{err}"
    );
    // A token file that does not exist is named.
    let o = runner(
        &pf,
        &[],
        &["--http", "127.0.0.1:1", "--auth", "/nonexistent/t.json"],
    )
    .output()
    .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/nonexistent/t.json"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}
