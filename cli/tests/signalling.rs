//! Browser access to a site with `--auth`: the login page's session cookie, CSRF on writes,
//! the limit on failed logins, and the WebRTC signalling WebSocket that the runner proxies to
//! webrtcsink's real signalling server (on loopback) — refused without a token or a
//! session, refused from another origin, and carrying the signalling protocol both ways
//! (the producer a real webrtcsink registered is listed through it).

mod common;

use common::{Killed, auth, runner, tmp, wait_for};
use serde_json::Value;
use sightline_testkit::free_port;

use std::process::Stdio;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    )
}

/// POST /api/v1/login: (status, Set-Cookie, Retry-After, body).
fn login(port: u16, token: &str) -> (u16, Option<String>, Option<String>, Value) {
    let mut r = agent()
        .post(format!("http://127.0.0.1:{port}/api/v1/login"))
        .header("content-type", "application/json")
        .send(serde_json::json!({ "token": token }).to_string())
        .unwrap();
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (cookie, retry) = (h("set-cookie"), h("retry-after"));
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (
        r.status().as_u16(),
        cookie,
        retry,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// Opens /api/v1/signalling with these headers: the socket, or the HTTP status it was
/// refused with.
fn open(port: u16, headers: &[(&str, &str)]) -> Result<Ws, u16> {
    let mut req = format!("ws://127.0.0.1:{port}/api/v1/signalling")
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tungstenite::connect(req) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("signalling: {e}"),
    }
}

/// The next JSON message of the signalling server (5 s at most).
fn next_json(ws: &mut Ws) -> Value {
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    loop {
        match ws.read().expect("a signalling message") {
            tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            tungstenite::Message::Close(_) => panic!("the proxy closed the socket"),
            _ => {}
        }
    }
}

/// Speaks webrtcsink's signalling protocol through the proxy: the welcome, then the list of
/// producers until `name` is in it.
fn lists_producer(ws: &mut Ws, name: &str) -> bool {
    let welcome = next_json(ws);
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert!(welcome["peerId"].is_string(), "{welcome}");
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        ws.send(tungstenite::Message::text(r#"{"type":"list"}"#))
            .unwrap();
        let list = next_json(ws);
        if list["type"] == "list"
            && list["producers"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["meta"]["name"] == name))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn a_browser_session_and_the_signalling_proxy_are_access_controlled() {
    let dir = tmp("signalling");
    let tokens = dir.join("tokens.json");
    let viewer = auth(&tokens, "wall", "viewer");
    let operator = auth(&tokens, "ops", "operator");
    let (sig, port) = (free_port(), free_port());
    // A real webrtcsink with its signalling server on loopback only.
    let pf = dir.join("live.pipeline");
    std::fs::write(
        &pf,
        format!(
            "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1 ! \
             webrtcsink meta=\"meta,name=yard\" stun-server=\"\" congestion-control=homegrown \
             run-signalling-server=true signalling-server-host=127.0.0.1 signalling-server-port={sig}\n"
        ),
    )
    .unwrap();
    let log = dir.join("runner.log");
    let _child = runner(
        &pf,
        &[],
        &["--http", &format!("127.0.0.1:{port}"), "--auth"],
    )
    .arg(&tokens)
    .arg("--state-dir")
    .arg(dir.join("state"))
    .arg("--spool-dir")
    .arg(dir.join("spool"))
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .map(|c| Killed(Some(c)))
    .unwrap();
    wait_for("the API and the signalling server", 60, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", sig)).is_ok()
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("WebRTC signalling of ws://127.0.0.1:{sig}")),
        "{text}"
    );

    // The login page.
    let mut page = agent()
        .get(format!("http://127.0.0.1:{port}/login"))
        .call()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.body_mut()
            .read_to_string()
            .unwrap()
            .contains("/api/v1/login")
    );

    // The signalling proxy: no token, a wrong one → 401, nothing proxied.
    assert_eq!(open(port, &[]).err(), Some(401));
    assert_eq!(
        open(port, &[("authorization", "Bearer slt_00000000_wrong")]).err(),
        Some(401)
    );
    // A viewer token: the real signalling server answers through it, with the producer.
    let bearer = format!("Bearer {viewer}");
    let mut ws = open(port, &[("authorization", &bearer)]).expect("proxied");
    assert!(
        lists_producer(&mut ws, "yard"),
        "the producer was not listed"
    );
    ws.close(None).ok();
    // Without the upgrade: 426.
    let r = agent()
        .get(format!("http://127.0.0.1:{port}/api/v1/signalling"))
        .header("authorization", &bearer)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 426);

    // A browser login: the cookie's flags (no TLS here: not Secure; the unit tests check
    // Secure under TLS), then the socket with the cookie from this origin only.
    let (code, cookie, _, body) = login(port, &operator);
    assert_eq!(code, 200, "{body}");
    let cookie = cookie.expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let jar = cookie.split(';').next().unwrap().to_string();
    let csrf = body["csrf"].as_str().unwrap().to_string();
    let origin = format!("http://127.0.0.1:{port}");
    let mut ws = open(port, &[("cookie", &jar), ("origin", &origin)]).expect("with the cookie");
    assert!(lists_producer(&mut ws, "yard"));
    ws.close(None).ok();
    assert_eq!(
        open(port, &[("cookie", &jar), ("origin", "http://evil.example")]).err(),
        Some(403),
        "cross-site WebSocket"
    );
    // A cookie-authenticated write without the CSRF token: 403; with it: allowed (404: no
    // such alert).
    let ack = |csrf: Option<&str>| {
        let mut r = agent()
            .post(format!("http://127.0.0.1:{port}/api/v1/alerts/1/ack"))
            .header("cookie", &jar);
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.send_empty().unwrap().status().as_u16()
    };
    assert_eq!(ack(None), 403);
    assert_eq!(ack(Some(&csrf)), 404);

    // 20 failed logins in a row: 5 answered, then each must wait (429 with Retry-After),
    // a right token never verified before too. The viewer token, verified above, still
    // works.
    let admin = auth(&tokens, "root", "admin");
    let mut codes = Vec::new();
    let mut retry = None;
    for i in 0..20 {
        let (c, _, r, _) = login(port, &format!("slt_{i:08x}_guess"));
        codes.push(c);
        retry = retry.or(r);
    }
    assert_eq!(&codes[..5], &[401; 5], "{codes:?}");
    assert!(codes[5..].iter().all(|c| *c == 429), "{codes:?}");
    let wait: u64 = retry.unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(login(port, &admin).0, 429);
    assert_eq!(login(port, &viewer).0, 200);

    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [&viewer, &operator, &admin, &csrf] {
        assert!(!text.contains(secret.as_str()), "a secret in the log");
    }
}
