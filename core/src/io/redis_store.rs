//! The gallery shared by several nodes over Redis.
//!
//! Layout: a hash `<key>` with one field per identity (field = identity id, value = a
//! one-identity gallery in the gallery file format, so model and dimensions travel with every
//! entry); every change is announced by `PUBLISH <key>:updates <n>`. Each node connects with
//! its own URL (`redis://user:password@host:port/db` for an ACL user, `rediss://` for TLS;
//! `SIGHTLINE_REDIS_CA` names a PEM file of extra root certificates). Passwords never appear
//! in messages.

use crate::gallery::Gallery;
use redis::Commands;
use std::sync::mpsc;
use std::time::Duration;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Read and write timeout of every connection: redis-rs clears the connect timeout after the
/// handshake, so without these a server that stops answering blocks the caller for good.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// The URL with its secrets hidden, for messages (see [`crate::secrets::redact_url`]).
pub fn redact(url: &str) -> String {
    crate::secrets::redact_url(url)
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn client(url: &str) -> Result<redis::Client, String> {
    install_crypto();
    let bad = |e: &dyn std::fmt::Display| format!("Redis {}: {}", redact(url), scrub(url, e));
    match std::env::var_os("SIGHTLINE_REDIS_CA").filter(|_| url.starts_with("rediss://")) {
        Some(ca) => {
            let pem = std::fs::read(&ca).map_err(|e| {
                bad(&format!(
                    "cannot read SIGHTLINE_REDIS_CA {}: {e}",
                    ca.to_string_lossy()
                ))
            })?;
            redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
            .map_err(|e| bad(&e))
        }
        None => redis::Client::open(url).map_err(|e| bad(&e)),
    }
}

/// A connection with connect, read and write timeouts ([`CONNECT_TIMEOUT`], [`IO_TIMEOUT`]).
pub fn connect(url: &str) -> Result<redis::Connection, String> {
    connect_with(url, IO_TIMEOUT)
}

/// [`connect`] with another read/write timeout.
pub fn connect_with(url: &str, io_timeout: Duration) -> Result<redis::Connection, String> {
    let con = client(url)?
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .map_err(|e| format!("Redis {} unreachable: {}", redact(url), scrub(url, &e)))?;
    con.set_read_timeout(Some(io_timeout))
        .and_then(|_| con.set_write_timeout(Some(io_timeout)))
        .map_err(|e| {
            format!(
                "Redis {}: cannot set timeouts: {}",
                redact(url),
                scrub(url, &e)
            )
        })?;
    Ok(con)
}

/// What [`Reconnecting`] has to say about the link.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkNews {
    /// An outage starts (once per outage), with the reason, redacted.
    Down(String),
    /// The first connection after an outage.
    Back,
}

/// A Redis connection for a worker thread: connects when asked (with [`connect_with`]'s
/// timeouts), backs off 0.2 s doubling to `max_backoff` after a failure, and reports each
/// outage and its end once.
pub struct Reconnecting {
    url: String,
    io_timeout: Duration,
    max_backoff: Duration,
    con: Option<redis::Connection>,
    retry_at: Option<std::time::Instant>,
    backoff: Duration,
    outage: bool,
}

impl Reconnecting {
    pub fn new(url: &str, io_timeout: Duration, max_backoff: Duration) -> Self {
        Reconnecting {
            url: url.to_string(),
            io_timeout,
            max_backoff,
            con: None,
            retry_at: None,
            backoff: Duration::from_millis(200),
            outage: false,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The connection (None while Redis is away or the back-off runs), and news if this
    /// call started or ended an outage.
    pub fn get(&mut self) -> (Option<&mut redis::Connection>, Option<LinkNews>) {
        let mut news = None;
        if self.con.is_none() && self.retry_at.is_none_or(|t| std::time::Instant::now() >= t) {
            match connect_with(&self.url, self.io_timeout) {
                Ok(c) => {
                    self.con = Some(c);
                    self.backoff = Duration::from_millis(200);
                    if std::mem::take(&mut self.outage) {
                        news = Some(LinkNews::Back);
                    }
                }
                Err(e) => news = self.down(e),
            }
        }
        (self.con.as_mut(), news)
    }

    /// A command failed: the connection is dropped; news if this starts an outage.
    pub fn failed(&mut self, e: &redis::RedisError) -> Option<LinkNews> {
        self.down(format!(
            "Redis {}: {}",
            redact(&self.url),
            scrub(&self.url, e)
        ))
    }

    fn down(&mut self, why: String) -> Option<LinkNews> {
        self.con = None;
        self.retry_at = Some(std::time::Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        (!std::mem::replace(&mut self.outage, true)).then_some(LinkNews::Down(why))
    }
}

/// A Redis error's text with the secrets of `url` hidden.
pub fn scrub(url: &str, e: &dyn std::fmt::Display) -> String {
    crate::secrets::scrub_url_in(&e.to_string(), url)
}

pub fn updates_channel(key: &str) -> String {
    format!("{key}:updates")
}

/// Writes every identity of `g` into the hash (and, with `replace`, removes the others);
/// announces the change. Returns the number of identities written.
pub fn push_gallery(url: &str, key: &str, g: &Gallery, replace: bool) -> Result<usize, String> {
    let mut con = connect(url)?;
    let err = |e: redis::RedisError| format!("Redis {}: {e}", redact(url));
    if replace {
        let fields: Vec<String> = con.hkeys(key).map_err(err)?;
        let keep: Vec<&str> = g.identities().iter().map(|i| i.id.as_str()).collect();
        for f in fields.iter().filter(|f| !keep.contains(&f.as_str())) {
            let _: i64 = con.hdel(key, f).map_err(err)?;
        }
    }
    for (k, ident) in g.identities().iter().enumerate() {
        let mut one = Gallery::new(g.model(), g.dims());
        for v in g.embeddings_of(k) {
            one.add(&ident.name, v).map_err(|e| e.to_string())?;
        }
        let _: i64 = con.hset(key, &ident.id, one.to_bytes()).map_err(err)?;
    }
    let _: i64 = con.publish(updates_channel(key), g.len()).map_err(err)?;
    Ok(g.len())
}

/// Reads the shared gallery; every entry must be of `model` (`dims`-d).
pub fn pull_gallery(url: &str, key: &str, model: &str, dims: usize) -> Result<Gallery, String> {
    let mut con = connect(url)?;
    let entries: Vec<(String, Vec<u8>)> = con
        .hgetall(key)
        .map_err(|e| format!("Redis {}: {e}", redact(url)))?;
    let mut g = Gallery::new(model, dims);
    for (field, bytes) in entries {
        let one = Gallery::from_bytes(&bytes, &format!("{}#{key}/{field}", redact(url)))
            .map_err(|e| e.to_string())?;
        one.expect_model(model, dims)
            .map_err(|e| format!("Redis {key}/{field}: {e}"))?;
        g.merge(&one).map_err(|e| e.to_string())?;
    }
    Ok(g)
}

/// Removes a person from the shared state under `key` (a facematch `gallery-key`): the
/// shared gallery's entries whose identity id or name is `subject`, and the unknown id
/// `subject` from the stranger registry (`<key>:unknowns`, `<key>:unknowns:seen`); followers
/// are told the gallery changed. Returns (gallery entries, unknown ids) removed.
pub fn erase_person(url: &str, key: &str, subject: &str) -> Result<(usize, usize), String> {
    let mut con = connect(url)?;
    let err = |e: redis::RedisError| format!("Redis {}: {e}", redact(url));
    let entries: Vec<(String, Vec<u8>)> = con.hgetall(key).map_err(err)?;
    let mut gallery = 0;
    for (field, bytes) in entries {
        let named = Gallery::from_bytes(&bytes, key).is_ok_and(|g| {
            g.identities()
                .iter()
                .any(|i| i.id == subject || i.name == subject)
        });
        if field == subject || named {
            gallery += con.hdel::<_, _, usize>(key, &field).map_err(err)?;
        }
    }
    if gallery > 0 {
        let _: i64 = con.publish(updates_channel(key), 0).map_err(err)?;
    }
    let unknowns: usize = con.hdel(format!("{key}:unknowns"), subject).map_err(err)?;
    let _: usize = con
        .zrem(format!("{key}:unknowns:seen"), subject)
        .map_err(err)?;
    Ok((gallery, unknowns))
}

/// Stops the subscriber thread when dropped.
pub struct Subscription {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<crate::worker::Worker>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stop.take();
        // Bounded: a connection attempt in progress ends by its own timeouts.
        if let Some(h) = self.handle.take() {
            h.finish_within(Duration::from_millis(500));
        }
    }
}

/// Subscribes to `<key>:updates` on a thread; `on_update` runs after each announcement and
/// after every (re)connection (to catch what was missed while disconnected); `on_error`
/// reports a lost or refused connection (once per outage). Reconnects with backoff up to 5 s.
pub fn subscribe_updates(
    url: &str,
    key: &str,
    mut on_update: impl FnMut() + Send + 'static,
    on_error: impl FnMut(String) + Send + 'static,
) -> Subscription {
    let (stop, stopped) = mpsc::channel::<()>();
    let (url, channel) = (url.to_string(), updates_channel(key));
    let on_error = std::sync::Arc::new(std::sync::Mutex::new(on_error));
    let on_panic = on_error.clone();
    let handle = crate::worker::Worker::spawn(
        "sl-redis-sub",
        move |why| {
            if let Ok(mut f) = on_panic.lock() {
                f(why)
            }
        },
        move || {
            let mut backoff = Duration::from_millis(200);
            let mut reported = false;
            let mut first = true;
            loop {
                match connect(&url).and_then(|mut con| {
                    let _ = con.set_read_timeout(Some(Duration::from_millis(300)));
                    let mut ps = con.as_pubsub();
                    ps.subscribe(&channel)
                        .map_err(|e| format!("Redis {}: {e}", redact(&url)))?;
                    backoff = Duration::from_millis(200);
                    reported = false;
                    if !first {
                        on_update();
                    }
                    first = false;
                    loop {
                        if !matches!(stopped.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                            return Ok(());
                        }
                        match ps.get_message() {
                            Ok(_) => on_update(),
                            Err(e) if e.is_timeout() => {}
                            Err(e) => {
                                return Err(format!("Redis {} connection lost: {e}", redact(&url)));
                            }
                        }
                    }
                }) {
                    Ok(()) => return,
                    Err(e) => {
                        first = false;
                        if !reported {
                            if let Ok(mut f) = on_error.lock() {
                                f(e);
                            }
                            reported = true;
                        }
                        match stopped.recv_timeout(backoff) {
                            Err(mpsc::RecvTimeoutError::Timeout) => {
                                backoff = (backoff * 2).min(Duration::from_secs(5))
                            }
                            _ => return,
                        }
                    }
                }
            }
        },
    )
    .ok();
    Subscription {
        stop: Some(stop),
        handle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://node1:s3cret@10.0.0.5:6379/0"),
            "redis://node1:***@10.0.0.5:6379/0"
        );
        assert_eq!(redact("rediss://:pw@host/"), "rediss://:***@host/");
        assert_eq!(redact("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        // A listener that accepts and never reads or writes.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("redis://127.0.0.1:{}/", l.local_addr().unwrap().port());
        let t = std::time::Instant::now();
        let r = connect_with(&url, Duration::from_millis(300)).and_then(|mut c| {
            redis::cmd("PING")
                .query::<String>(&mut c)
                .map_err(|e| e.to_string())
        });
        assert!(r.is_err(), "{r:?}");
        // redis-rs waits once in the handshake (connect timeout) and once in the command.
        assert!(
            t.elapsed() < 2 * CONNECT_TIMEOUT + Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
    }
}
