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

/// The URL with its password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn client(url: &str) -> Result<redis::Client, String> {
    install_crypto();
    let bad = |e: &dyn std::fmt::Display| format!("Redis {}: {e}", redact(url));
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

pub fn connect(url: &str) -> Result<redis::Connection, String> {
    client(url)?
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .map_err(|e| format!("Redis {} unreachable: {e}", redact(url)))
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

/// Stops the subscriber thread when dropped.
pub struct Subscription {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
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
    mut on_error: impl FnMut(String) + Send + 'static,
) -> Subscription {
    let (stop, stopped) = mpsc::channel::<()>();
    let (url, channel) = (url.to_string(), updates_channel(key));
    let handle = std::thread::Builder::new()
        .name("sl-redis-sub".into())
        .spawn(move || {
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
                            on_error(e);
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
        })
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
}
