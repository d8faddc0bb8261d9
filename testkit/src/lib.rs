//! Helpers for Sightline's tests: a real `redis-server` (Debian package) on a free port of
//! 127.0.0.1, started by the test and killed when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `f` until it is true or `secs` seconds have passed (a real process or thread being
/// waited for); its last answer.
pub fn wait_until(mut f: impl FnMut() -> bool, secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::yield_now();
    }
    f()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A throw-away CA (`ca.pem`) and a certificate for 127.0.0.1 signed by it (`server.pem`,
/// `server.key`) in `dir`, made with the openssl command line tool.
pub fn test_certificates(dir: &std::path::Path) {
    let ssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl {args:?} failed");
    };
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=sightline-test-ca",
    ]);
    ssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").expect("ext.cnf");
    ssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ]);
}

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    extra: Vec<String>,
    /// The CA certificate (PEM) of a TLS server.
    pub ca: Option<PathBuf>,
}

impl RedisServer {
    /// Starts redis-server with `extra` arguments (e.g. ACL users) and waits until it answers.
    pub fn start(extra: &[&str]) -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sl-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut s = RedisServer {
            port,
            child: None,
            dir,
            extra: extra.iter().map(|x| x.to_string()).collect(),
            ca: None,
        };
        s.spawn();
        s
    }

    /// Starts a TLS-only redis-server with a throw-away CA and a certificate for 127.0.0.1
    /// (made with the openssl command line tool).
    pub fn start_tls() -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sl-redis-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        test_certificates(&dir);
        let d = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let extra = vec![
            "--port".to_string(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            d("server.pem"),
            "--tls-key-file".into(),
            d("server.key"),
            "--tls-ca-cert-file".into(),
            d("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        let mut s = RedisServer {
            port,
            child: None,
            ca: Some(dir.join("ca.pem")),
            dir,
            extra,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server (Debian package redis-server) must be installed: run scripts/setup",
            );
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::yield_now();
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// True when the server answers PING (with or without auth required).
    pub fn ping(&self) -> bool {
        let Ok(mut c) = TcpStream::connect_timeout(
            &format!("127.0.0.1:{}", self.port).parse().expect("addr"),
            Duration::from_millis(200),
        ) else {
            return false;
        };
        if self.ca.is_some() {
            // TLS port: accepting the connection is enough.
            return true;
        }
        let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
        if c.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(c.read(&mut buf), Ok(n) if n > 0)
    }

    /// `redis://127.0.0.1:PORT/` (`rediss://` for TLS), optionally with `user:password@`.
    pub fn url(&self, auth: Option<(&str, &str)>) -> String {
        let scheme = if self.ca.is_some() { "rediss" } else { "redis" };
        match auth {
            Some((u, p)) => format!("{scheme}://{u}:{p}@127.0.0.1:{}/", self.port),
            None => format!("{scheme}://127.0.0.1:{}/", self.port),
        }
    }

    /// Kills the server (simulating an outage); `restart` brings it back on the same port.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Stops the server with SIGSTOP: connections stay open and nothing answers (a hung
    /// server); [`RedisServer::resume`] continues it.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {sig} redis-server");
        }
    }
}

/// A TCP listener on 127.0.0.1 that accepts every connection and never reads or answers
/// (a server that hangs after accepting), until dropped.
pub struct SilentServer {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => held.push(c),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SilentServer {
            port,
            stop,
            handle: Some(handle),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian's mosquitto broker on 127.0.0.1 (a free port, its own config and directory), with
/// persistence on so retained messages survive a [`MosquittoServer::restart`], optionally
/// with one user and password (anonymous access then refused).
pub struct MosquittoServer {
    pub port: u16,
    child: Option<Child>,
    dir: std::path::PathBuf,
    tls: bool,
}

impl MosquittoServer {
    pub fn start(user: Option<(&str, &str)>) -> MosquittoServer {
        MosquittoServer::start_with(user, false)
    }

    /// A TLS listener (MQTT over TLS) with a certificate for 127.0.0.1 signed by a test CA:
    /// [`MosquittoServer::ca`]; URLs are `mqtts://`.
    pub fn start_tls(user: Option<(&str, &str)>) -> MosquittoServer {
        MosquittoServer::start_with(user, true)
    }

    /// The test CA of a TLS broker (PEM).
    pub fn ca(&self) -> std::path::PathBuf {
        self.dir.join("ca.pem")
    }

    fn start_with(user: Option<(&str, &str)>, tls: bool) -> MosquittoServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sl-mqtt-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mosquitto dir");
        // Started as root, mosquitto drops to its own user: that user must be able to save
        // its database here.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                .expect("chmod mosquitto dir");
        }
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence true\npersistence_location {}/\nautosave_interval 1\n",
            dir.display()
        );
        if tls {
            test_certificates(&dir);
            // mosquitto reads its key as its own user.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.join("server.key"),
                std::fs::Permissions::from_mode(0o644),
            )
            .expect("chmod server.key");
            conf += &format!(
                "certfile {}\nkeyfile {}\n",
                dir.join("server.pem").display(),
                dir.join("server.key").display()
            );
        }
        match user {
            Some((u, p)) => {
                let pw = dir.join("passwd");
                std::fs::write(&pw, "").expect("passwd");
                let ok = Command::new("mosquitto_passwd")
                    .arg("-b")
                    .arg(&pw)
                    .args([u, p])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "mosquitto_passwd failed");
                conf += &format!("allow_anonymous false\npassword_file {}\n", pw.display());
            }
            None => conf += "allow_anonymous true\n",
        }
        std::fs::write(dir.join("mosquitto.conf"), conf).expect("mosquitto.conf");
        let mut s = MosquittoServer {
            port,
            child: None,
            dir,
            tls,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto (Debian package mosquitto) must be installed: run scripts/setup");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("mosquitto on port {} did not start", self.port);
    }

    /// `mqtt[s]://[user:password@]127.0.0.1:PORT`.
    pub fn url(&self, auth: Option<(&str, &str)>) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        match auth {
            Some((u, p)) => format!("{scheme}://{u}:{p}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// Stops the broker the way an operator does (SIGTERM: it saves its retained messages).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for MosquittoServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Debian's PostgreSQL server, its own cluster in a temporary directory (initdb), on a free
/// port of 127.0.0.1 and a socket in that directory: user `sightline` with a password
/// (SCRAM over TCP). As root, the server runs as the `postgres` user (it refuses root).
pub struct PostgresServer {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    running: bool,
    /// fsync on (a benchmark's honest setting); tests run with it off.
    durable: bool,
}

/// The test cluster's password (URLs in tests carry it; it must never be shown).
pub const POSTGRES_PASSWORD: &str = "pg-s3cret-pw";

impl PostgresServer {
    /// A cluster for tests: fsync off (nothing here must survive a power cut).
    pub fn start() -> PostgresServer {
        PostgresServer::start_with(false)
    }

    /// A cluster with PostgreSQL's default durability (fsync on), for benchmarks.
    pub fn start_durable() -> PostgresServer {
        PostgresServer::start_with(true)
    }

    fn start_with(durable: bool) -> PostgresServer {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (/usr/lib/postgresql: Debian's postgresql package)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max_by_key(|b| {
                b.parent()
                    .and_then(|v| v.file_name())
                    .and_then(|v| v.to_str())
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(0)
            })
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sl-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("postgres dir");
        std::fs::write(dir.join("pw"), POSTGRES_PASSWORD).expect("password file");
        let s = PostgresServer {
            port,
            dir,
            bin,
            running: false,
            durable,
        };
        s.chown();
        let data = s.dir.join("data");
        let pw = s.dir.join("pw");
        s.run(
            "initdb",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-U",
                "sightline",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                pw.to_str().expect("utf-8 path"),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let mut s = s;
        s.restart();
        s
    }

    fn as_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    }

    fn chown(&self) {
        if PostgresServer::as_root() {
            let ok = Command::new("chown")
                .args([
                    "-R",
                    "postgres:postgres",
                    self.dir.to_str().expect("utf-8 path"),
                ])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the PostgreSQL test directory to postgres");
        }
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if PostgresServer::as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// Runs a PostgreSQL program (as `postgres` when root); panics with its output on failure.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .command(program)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `postgres://sightline:PASSWORD@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!(
            "postgres://sightline:{POSTGRES_PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// Runs SQL with psql over the socket; the rows unaligned, `|`-separated.
    pub fn psql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let host = self.dir.to_str().expect("utf-8 path").to_string();
        self.run(
            "psql",
            &[
                "-h",
                &host,
                "-p",
                &port,
                "-U",
                "sightline",
                "-d",
                "postgres",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        )
    }

    /// Stops the server (fast shutdown: connections are cut), as in an outage.
    pub fn stop(&mut self) {
        if self.running {
            let out = self.pg_ctl_stop("fast");
            assert!(
                out.as_ref().is_ok_and(|o| o.status.success()),
                "pg_ctl stop failed: {out:?}"
            );
            self.running = false;
        }
    }

    fn pg_ctl_stop(&self, mode: &str) -> std::io::Result<std::process::Output> {
        let data = self.dir.join("data");
        self.command("pg_ctl")
            .args(["-D", data.to_str().unwrap_or(""), "-m", mode, "-w", "stop"])
            .output()
    }

    /// Starts it again (or first) on the same port and data; returns when it accepts.
    pub fn restart(&mut self) {
        self.stop();
        let data = self.dir.join("data");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1{}",
            self.port,
            self.dir.display(),
            if self.durable { "" } else { " -c fsync=off" }
        );
        let log = self.dir.join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-o",
                &opts,
                "-l",
                log.to_str().expect("utf-8 path"),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        self.running = true;
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_ctl_stop("immediate");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A minimal HTTP server on 127.0.0.1:`port` that answers 200 to every request and records
/// the bodies of the first `max` requests (for webhook tests).
pub fn http_recorder(
    port: u16,
    max: usize,
) -> (
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    std::thread::JoinHandle<()>,
) {
    http_recorder_slow(port, max, std::time::Duration::ZERO)
}

/// [`http_recorder`] that takes `delay` to answer each request (a slow webhook): the body is
/// recorded when the answer is sent.
pub fn http_recorder_slow(
    port: u16,
    max: usize,
    delay: std::time::Duration,
) -> (
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    std::thread::JoinHandle<()>,
) {
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let b = bodies.clone();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind http recorder");
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut s) = stream else { continue };
            let Ok(clone) = s.try_clone() else { continue };
            let mut r = BufReader::new(clone);
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            std::thread::sleep(delay);
            if let Ok(mut v) = b.lock() {
                v.push(String::from_utf8_lossy(&body).into_owned());
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (bodies, handle)
}

/// A test HTTPS server on 127.0.0.1 (`scripts/https_recorder.py`, Python's standard library)
/// with a throw-away CA: answers every POST with 200 and records (path, body); killed when
/// dropped.
pub struct HttpsRecorder {
    pub port: u16,
    /// The CA certificate (PEM) that signed the server's certificate.
    pub ca: PathBuf,
    child: Child,
    requests: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    dir: PathBuf,
}

impl HttpsRecorder {
    /// Starts on `port` (a port chosen before, so a client can be pointed at it while the
    /// server is still down) and waits until it listens.
    pub fn start(port: u16) -> HttpsRecorder {
        let dir = HttpsRecorder::prepare(port)
            .parent()
            .expect("dir")
            .to_path_buf();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/https_recorder.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir.join("server.pem"))
            .arg(dir.join("server.key"))
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        match lines.next() {
            Some(Ok(l)) if l == "READY" => {}
            other => panic!("https recorder did not start: {other:?}"),
        }
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let r = requests.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&l)
                    && let Ok(mut r) = r.lock()
                {
                    r.push((
                        v["path"].as_str().unwrap_or("").to_string(),
                        v["body"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        });
        HttpsRecorder {
            port,
            ca: dir.join("ca.pem"),
            child,
            requests,
            dir,
        }
    }

    /// Makes the certificates of the server on `port` (once; `start` uses them) and returns
    /// its CA's path, for a client configured before the server runs.
    pub fn prepare(port: u16) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sl-https-{port}"));
        if !dir.join("server.key").exists() {
            std::fs::create_dir_all(&dir).expect("https dir");
            test_certificates(&dir);
        }
        dir.join("ca.pem")
    }

    /// (path, body) of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for HttpsRecorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A test RTSP camera (Debian gst-rtsp-server through PyGObject, `scripts/rtsp_server.py`) on
/// 127.0.0.1: a live 320x240 10 fps pattern, H.264 or JPEG; killed when dropped.
pub struct RtspServer {
    pub port: u16,
    mount: String,
    codec: String,
    video: Option<PathBuf>,
    fps: Option<u32>,
    child: Option<Child>,
}

impl RtspServer {
    /// A live test pattern.
    pub fn start(mount: &str, codec: &str) -> RtspServer {
        Self::start_with(mount, codec, None)
    }

    /// `video` looped as a live camera (320x240, 10 fps).
    pub fn start_video(mount: &str, codec: &str, video: &std::path::Path) -> RtspServer {
        Self::start_with(mount, codec, Some(video.to_path_buf()))
    }

    /// An H.264 byte stream (`.h264`, starting with a key frame) served as it is at `fps`,
    /// looped: a camera of the stream's own resolution, GOP and bitrate, nothing re-encoded.
    /// Every client of the mount gets the same stream.
    pub fn start_h264_stream(mount: &str, stream: &std::path::Path, fps: u32) -> RtspServer {
        let mut s = RtspServer {
            port: free_port(),
            mount: mount.to_string(),
            codec: "h264-file".into(),
            video: Some(stream.to_path_buf()),
            fps: Some(fps),
            child: None,
        };
        s.spawn();
        s
    }

    fn start_with(mount: &str, codec: &str, video: Option<PathBuf>) -> RtspServer {
        let mut s = RtspServer {
            port: free_port(),
            mount: mount.to_string(),
            codec: codec.to_string(),
            video,
            fps: None,
            child: None,
        };
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/{}", self.port, self.mount)
    }

    /// The server process (for its CPU use), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn spawn(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/rtsp_server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(self.port.to_string())
            .arg(&self.mount)
            .arg(&self.codec)
            .args(self.video.iter())
            .args(self.fps.iter().map(|f| f.to_string()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("/usr/bin/python3 with gir1.2-gst-rtsp-server-1.0: run scripts/setup");
        let mut line = String::new();
        let out = child.stdout.take().expect("piped stdout");
        BufReader::new(out)
            .read_line(&mut line)
            .expect("the RTSP server's ready line");
        assert_eq!(line.trim(), "ready", "RTSP server on port {}", self.port);
        self.child = Some(child);
    }

    /// Stops the camera (as a camera that drops off the network).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        // The port may linger for a moment after the kill.
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpListener::bind(("127.0.0.1", self.port)).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn();
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A file of the shared test data (`$SIGHTLINE_SHARED/data`, else `../shared/data`).
pub fn shared_data(rel: &str) -> PathBuf {
    std::env::var_os("SIGHTLINE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("data")
        .join(rel)
}

/// Writes the calibration of a crop of vtest.avi starting at x = `left` (0: the whole frame):
/// ground (m) = S * H * T(left) * pixel, with the PETS 2009 ground homography H (mm).
pub fn pets_calibration(left: f64, path: &std::path::Path) {
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared_data(
            "multicam/pets2009/pets2009_view001_ground_homography.json",
        ))
        .expect("the PETS 2009 ground homography"),
    )
    .expect("valid JSON");
    let h = &doc["View_001"]["H_undistorted_px_to_ground_mm"];
    let m: [[f64; 3]; 3] =
        std::array::from_fn(|r| std::array::from_fn(|c| h[r][c].as_f64().expect("a number")));
    let scaled: Vec<Vec<f64>> = (0..3)
        .map(|r| {
            let s = if r < 2 { 0.001 } else { 1.0 };
            vec![s * m[r][0], s * m[r][1], s * (m[r][0] * left + m[r][2])]
        })
        .collect();
    std::fs::write(
        path,
        serde_json::json!({"map": "pets", "units": "m", "homography": scaled}).to_string(),
    )
    .expect("a writable calibration path");
}
