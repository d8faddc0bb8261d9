//! A real browser for the page tests: headless Chromium driven over the DevTools protocol
//! (tungstenite), inside a network namespace of the test's own (`unshare --net`, a veth pair
//! on 198.18.0.0/24, the benchmarking range: ICE ignores loopback, and nothing here can reach
//! or be reached from any other address), and runner processes killed when a test fails.

use serde_json::{Value, json};
use sightline_core::video::{DecodedImage, decode_image};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const INNER: &str = "SIGHTLINE_TEST_IN_NETNS";
pub const HOST: &str = "198.18.0.1";

/// Outside the namespace: runs `test` again in a fresh one and returns false (the caller
/// returns). Inside: brings up the veth pair and returns true.
pub fn in_network_namespace(test: &str) -> bool {
    if std::env::var_os(INNER).is_some() {
        for cmd in [
            "ip link set lo up",
            "ip link add sl0 type veth peer name sl1",
            "ip addr add 198.18.0.1/24 dev sl0",
            "ip addr add 198.18.0.2/24 dev sl1",
            "ip link set sl0 up",
            "ip link set sl1 up",
        ] {
            let args: Vec<&str> = cmd.split(' ').collect();
            let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
            assert!(st.success(), "{cmd}");
        }
        return true;
    }
    let mut c = Command::new("unshare");
    if !is_root() {
        c.arg("--map-root-user");
    }
    let out = c
        .arg("--net")
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .output()
        .expect("unshare (util-linux)");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("{stdout}{stderr}");
    // The inner panic message last, where a truncated CI log still shows it.
    let why: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .take_while(|l| !l.starts_with("stack backtrace") && !l.starts_with("note:"))
        .take(40)
        .collect();
    assert!(
        out.status.success(),
        "{test} failed inside its network namespace:\n{}",
        why.join("\n")
    );
    false
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|u| u.split_whitespace().next() == Some("0"))
}

/// A minimal Chrome DevTools Protocol client over the browser's WebSocket (tungstenite).
pub struct Browser {
    child: Child,
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next_id: u64,
    profile: PathBuf,
    /// Console messages and exceptions of the pages, for failure reports.
    pub console: Vec<String>,
}

impl Browser {
    pub fn start(profile: PathBuf, extra: &[&str]) -> Browser {
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium (Debian package chromium)");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("chromium exited before its DevTools line")
                .unwrap();
            if let Some(u) = line.strip_prefix("DevTools listening on ") {
                break u.trim().to_string();
            }
        };
        // Keep draining stderr so chromium never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let (ws, _) = tungstenite::connect(url.as_str()).expect("CDP websocket");
        Browser {
            child,
            ws,
            next_id: 0,
            profile,
            console: Vec::new(),
        }
    }

    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_call(session, method, params) {
            Ok(v) => v,
            Err(e) => panic!("{method}: {e}"),
        }
    }

    /// [`Self::call`], the browser's error returned rather than a panic.
    pub fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let mut msg = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        loop {
            let m = self.ws.read().expect("CDP read");
            let Ok(text) = m.to_text() else { continue };
            let v: Value = serde_json::from_str(text).unwrap();
            if v["id"] == json!(self.next_id) {
                return match v.get("error") {
                    Some(_) => Err(v),
                    None => Ok(v["result"].clone()),
                };
            }
            match v["method"].as_str() {
                Some("Runtime.consoleAPICalled") => {
                    let args: Vec<String> = v["params"]["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| a["value"].to_string())
                        .collect();
                    self.console.push(args.join(" "));
                }
                Some("Runtime.exceptionThrown") => {
                    self.console
                        .push(v["params"]["exceptionDetails"].to_string());
                }
                _ => {}
            }
        }
    }

    /// Opens `url` in a new tab; returns the tab's session id.
    pub fn open(&mut self, url: &str) -> String {
        let t = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let a = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": t["targetId"], "flatten": true}),
        );
        let session = a["sessionId"].as_str().unwrap().to_string();
        self.call(Some(&session), "Runtime.enable", json!({}));
        self.call(Some(&session), "Page.navigate", json!({"url": url}));
        session
    }

    /// [`Self::eval`] that may meet a page being replaced (a navigation, a redirect): then
    /// `None`, for a caller that polls to ask again.
    pub fn try_eval(&mut self, session: &str, expr: &str) -> Option<Value> {
        match self.try_call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        ) {
            Ok(r) => Some(r["result"]["value"].clone()),
            Err(e) if e.to_string().contains("navigated or closed") => None,
            Err(e) => panic!("Runtime.evaluate: {e}"),
        }
    }

    pub fn eval(&mut self, session: &str, expr: &str) -> Value {
        let r = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        r["result"]["value"].clone()
    }

    /// Clicks the centre of the first element matching `selector` with the mouse (real input
    /// events, as a person would); panics if there is none.
    pub fn click(&mut self, session: &str, selector: &str) {
        let sel = serde_json::to_string(selector).unwrap();
        let r = self.eval(
            session,
            &format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
            ),
        );
        let (x, y) = match (r[0].as_f64(), r[1].as_f64()) {
            (Some(x), Some(y)) => (x, y),
            _ => panic!("nothing to click: {selector}"),
        };
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                Some(session),
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Puts `files` in the file input `selector` (as a person choosing them would).
    pub fn set_files(&mut self, session: &str, selector: &str, files: &[&Path]) {
        let doc = self.call(Some(session), "DOM.getDocument", json!({"depth": 0}));
        let node = self.call(
            Some(session),
            "DOM.querySelector",
            json!({"nodeId": doc["root"]["nodeId"], "selector": selector}),
        );
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        self.call(
            Some(session),
            "DOM.setFileInputFiles",
            json!({"nodeId": node["nodeId"], "files": files}),
        );
    }

    /// Goes to `url` in the tab.
    pub fn navigate(&mut self, session: &str, url: &str) {
        self.call(Some(session), "Page.navigate", json!({"url": url}));
    }

    pub fn screenshot(&mut self, session: &str, path: &Path) {
        use base64::Engine;
        let r = self.call(
            Some(session),
            "Page.captureScreenshot",
            json!({"format": "png"}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The RGB pixel at (x, y) of a screenshot decoded by core's decode_image (packed BGR).
pub fn rgb_at(img: &DecodedImage, x: usize, y: usize) -> [u8; 3] {
    let p = &img.data[y * img.stride + x * 3..y * img.stride + x * 3 + 3];
    [p[2], p[1], p[0]]
}

pub fn screenshot_pixels(path: &Path) -> DecodedImage {
    gst::init().unwrap();
    decode_image(path).unwrap()
}

/// A runner process, killed when dropped; on a failure its log is printed.
pub struct Running {
    child: Option<Child>,
    log: PathBuf,
}

impl Running {
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> Running {
        let f = std::fs::File::create(&log).unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(f).spawn().unwrap();
        Running {
            child: Some(child),
            log,
        }
    }

    /// Sends `sig` (STOP, CONT, …) to the runner.
    pub fn signal(&self, sig: &str) {
        super::signal(self.child.as_ref().unwrap().id(), sig);
    }

    /// SIGTERM, then the exit status and the log.
    pub fn stop(mut self) -> (bool, String) {
        let out = super::stop(self.child.take().unwrap());
        (
            out.status.success(),
            std::fs::read_to_string(&self.log).unwrap_or_default(),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if std::thread::panicking() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("--- {} (last lines)", self.log.display());
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

pub fn artifacts() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}
