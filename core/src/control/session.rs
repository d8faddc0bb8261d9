//! Browser sessions of the runner's API: a login with a token makes a session, carried by an
//! HttpOnly cookie; its CSRF token must come back in `X-CSRF-Token` on every
//! cookie-authenticated write. Failed logins are limited per client ([`LoginLimiter`]).
//!
//! Sessions are kept in a file of the state directory (owner-only), so that a restart of the
//! runner (an upgrade) does not log the wall screens out: only the SHA-256 of each session
//! id is stored, never the id, and never a token. The file is written when a session starts
//! or ends, not at each use: after a restart a session's idle time counts from the restart.
//!
//! A session holds the token's id, not the token: it is checked against the token file at
//! each request, so revoking the token ends its sessions too.

use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The cookie that carries a session id.
pub const COOKIE: &str = "sightline_session";
/// A session unused this long ends (ms).
pub const IDLE_MS: u64 = 8 * 3600 * 1000;
/// A session ends this long after the login, used or not (ms).
pub const MAX_AGE_MS: u64 = 24 * 3600 * 1000;
/// At most this many sessions; a new one beyond it ends the least recently used.
const MAX_SESSIONS: usize = 4096;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// The token's id (see [`super::auth::TokenEntry`]).
    pub token_id: String,
    pub csrf: String,
    created_ms: u64,
    #[serde(skip)]
    used_ms: u64,
}

/// The sessions of a server, by the SHA-256 of their id (the id itself is kept only by the
/// browser).
#[derive(Default)]
pub struct Sessions {
    map: HashMap<[u8; 32], Session>,
    /// Where they are kept (None: memory only).
    file: Option<std::path::PathBuf>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SessionFile {
    version: u32,
    /// hex SHA-256 of the session id -> the session.
    sessions: std::collections::BTreeMap<String, Session>,
}

fn hex(k: &[u8; 32]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(k)
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn random_b64<const N: usize>() -> Result<String, String> {
    use base64::Engine;
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| format!("no random numbers from the system: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// Equal in time whatever the content.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl Sessions {
    /// The sessions kept in `path` (none yet if it does not exist); the ones older than
    /// [`MAX_AGE_MS`] are dropped, the others count as used at `now_ms`.
    pub fn open(path: &std::path::Path, now_ms: u64) -> Result<Sessions, String> {
        let mut s = Sessions {
            map: HashMap::new(),
            file: Some(path.to_path_buf()),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let f: SessionFile = serde_json::from_str(&text)
                    .map_err(|e| format!("session file {}: {e}", path.display()))?;
                for (k, mut v) in f.sessions {
                    if let Some(k) = unhex(&k) {
                        v.used_ms = now_ms;
                        s.map.insert(k, v);
                    }
                }
                s.expire(now_ms);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("session file {}: {e}", path.display())),
        }
        Ok(s)
    }

    /// No sessions, kept in `path` from now on (the file could not be read).
    pub fn fresh(path: &std::path::Path) -> Sessions {
        Sessions {
            map: HashMap::new(),
            file: Some(path.to_path_buf()),
        }
    }

    /// Writes the file, if there is one; a failure is returned to be said (the sessions
    /// stay valid in memory).
    fn save(&self) -> Result<(), String> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let f = SessionFile {
            version: 1,
            sessions: self.map.iter().map(|(k, v)| (hex(k), v.clone())).collect(),
        };
        let text = serde_json::to_string(&f).map_err(|e| e.to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        super::write_private(path, &text).map_err(|e| format!("session file {e}"))
    }

    /// A new session for the token with `token_id`: (session id, CSRF token).
    pub fn create(&mut self, token_id: &str, now_ms: u64) -> Result<(String, String), String> {
        self.expire(now_ms);
        if self.map.len() >= MAX_SESSIONS
            && let Some(k) = self
                .map
                .iter()
                .min_by_key(|(_, s)| s.used_ms)
                .map(|(k, _)| *k)
        {
            self.map.remove(&k);
        }
        let id = random_b64::<32>()?;
        let csrf = random_b64::<24>()?;
        self.map.insert(
            key(&id),
            Session {
                token_id: token_id.to_string(),
                csrf: csrf.clone(),
                created_ms: now_ms,
                used_ms: now_ms,
            },
        );
        self.save()?;
        Ok((id, csrf))
    }

    /// The live session `id`, now used; an expired one is removed.
    pub fn get(&mut self, id: &str, now_ms: u64) -> Option<Session> {
        let k = key(id);
        let s = self.map.get_mut(&k)?;
        let idle = now_ms.saturating_sub(s.used_ms) > IDLE_MS;
        let old = now_ms.saturating_sub(s.created_ms) > MAX_AGE_MS;
        if idle || old {
            self.map.remove(&k);
            let _ = self.save();
            return None;
        }
        s.used_ms = now_ms;
        Some(s.clone())
    }

    /// Ends session `id` (a logout).
    pub fn remove(&mut self, id: &str) -> bool {
        let was = self.map.remove(&key(id)).is_some();
        if was {
            let _ = self.save();
        }
        was
    }

    /// Ends every session of the token with `token_id` (revoked).
    pub fn remove_token(&mut self, token_id: &str) {
        let before = self.map.len();
        self.map.retain(|_, s| s.token_id != token_id);
        if self.map.len() != before {
            let _ = self.save();
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn expire(&mut self, now_ms: u64) {
        self.map.retain(|_, s| {
            now_ms.saturating_sub(s.used_ms) <= IDLE_MS
                && now_ms.saturating_sub(s.created_ms) <= MAX_AGE_MS
        });
    }
}

/// The session id in a `Cookie` header.
pub fn cookie_session(header: Option<&str>) -> Option<&str> {
    header?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value of a new session (`secure`: the server speaks TLS).
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        MAX_AGE_MS / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Failed logins per client: the first [`FREE_FAILURES`] are answered at once; after that a
/// client must wait before its next try, twice as long after each further failure (1 s, 2 s,
/// 4 s, … up to [`MAX_WAIT_MS`]), whether that try is right or wrong, so guessing costs
/// time. A success clears the client; a client quiet for [`FORGET_MS`] is forgotten.
#[derive(Default)]
pub struct LoginLimiter {
    clients: HashMap<String, Failures>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: u64,
}

pub const FREE_FAILURES: u32 = 5;
pub const MAX_WAIT_MS: u64 = 60_000;
const FORGET_MS: u64 = 15 * 60 * 1000;
/// At most this many clients remembered; beyond it the quietest is forgotten.
const MAX_CLIENTS: usize = 65_536;

impl LoginLimiter {
    fn wait_after(count: u32) -> u64 {
        if count < FREE_FAILURES {
            0
        } else {
            (1000u64 << (count - FREE_FAILURES).min(16)).min(MAX_WAIT_MS)
        }
    }

    /// Whether `client` may try now: Err(ms to wait) if not.
    pub fn check(&mut self, client: &str, now_ms: u64) -> Result<(), u64> {
        let Some(f) = self.clients.get(client).copied() else {
            return Ok(());
        };
        if now_ms.saturating_sub(f.last_ms) > FORGET_MS {
            self.clients.remove(client);
            return Ok(());
        }
        let ready = f.last_ms + Self::wait_after(f.count);
        if now_ms < ready {
            Err(ready - now_ms)
        } else {
            Ok(())
        }
    }

    /// A failed try of `client`.
    pub fn failed(&mut self, client: &str, now_ms: u64) {
        if self.clients.len() >= MAX_CLIENTS && !self.clients.contains_key(client) {
            self.clients
                .retain(|_, f| now_ms.saturating_sub(f.last_ms) <= FORGET_MS);
            if self.clients.len() >= MAX_CLIENTS
                && let Some(k) = self
                    .clients
                    .iter()
                    .min_by_key(|(_, f)| f.last_ms)
                    .map(|(k, _)| k.clone())
            {
                self.clients.remove(&k);
            }
        }
        let f = self.clients.entry(client.to_string()).or_insert(Failures {
            count: 0,
            last_ms: now_ms,
        });
        f.count += 1;
        f.last_ms = now_ms;
    }

    /// A successful login of `client`.
    pub fn succeeded(&mut self, client: &str) {
        self.clients.remove(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_or_old_and_end_at_logout_or_revocation() {
        let mut s = Sessions::default();
        let (id, csrf) = s.create("alice", 0).unwrap();
        assert!(id.len() >= 43 && csrf.len() >= 32);
        let got = s.get(&id, 1000).unwrap();
        assert_eq!(got.token_id, "alice");
        assert_eq!(got.csrf, csrf);
        assert!(s.get("not-a-session", 1000).is_none());
        // Used every 7 h: alive past 8 h, but not past 24 h after the login.
        for h in 1..=3 {
            assert!(s.get(&id, h * 7 * 3600 * 1000).is_some(), "{h}");
        }
        assert!(s.get(&id, MAX_AGE_MS + 1).is_none());
        assert!(s.is_empty());

        let (a, _) = s.create("alice", 0).unwrap();
        assert!(s.get(&a, IDLE_MS + 1).is_none(), "idle");
        let (a, _) = s.create("alice", 0).unwrap();
        let (b, _) = s.create("bob", 0).unwrap();
        assert_ne!(a, b);
        s.remove_token("alice");
        assert!(s.get(&a, 1).is_none());
        assert!(s.remove(&b));
        assert!(!s.remove(&b));
    }

    #[test]
    fn sessions_outlive_a_restart_without_their_ids_on_disk() {
        let dir = std::env::temp_dir().join(format!("sl-sessions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sessions.json");
        let mut s = Sessions::open(&path, 0).unwrap();
        let (a, csrf) = s.create("tok1", 1000).unwrap();
        let (b, _) = s.create("tok2", 1000).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(&a) && !text.contains(&b),
            "ids are not stored"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(s.remove(&b));
        // The next process: a is back (with its CSRF token), b stays logged out.
        let mut s = Sessions::open(&path, 2000).unwrap();
        assert_eq!(s.get(&a, 3000).unwrap().csrf, csrf);
        assert!(s.get(&b, 3000).is_none());
        // Past the maximum age: gone at the next start.
        let s = Sessions::open(&path, MAX_AGE_MS + 2000).unwrap();
        assert!(s.is_empty());
        std::fs::write(&path, "{").unwrap();
        assert!(
            Sessions::open(&path, 0)
                .err()
                .unwrap()
                .contains("sessions.json")
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn cookies_carry_the_session_with_the_flags() {
        assert_eq!(
            cookie_session(Some("a=1; sightline_session=xyz; b=2")),
            Some("xyz")
        );
        assert_eq!(cookie_session(Some("sightline_sessionx=1")), None);
        assert_eq!(cookie_session(Some("sightline_session=")), None);
        assert_eq!(cookie_session(None), None);
        let c = set_cookie("xyz", true);
        for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(c.contains(flag), "{c}");
        }
        assert!(!set_cookie("xyz", false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn failed_logins_are_slowed_down_per_client() {
        let mut l = LoginLimiter::default();
        let mut t = 0;
        for _ in 0..FREE_FAILURES {
            assert!(l.check("10.0.0.1", t).is_ok());
            l.failed("10.0.0.1", t);
            t += 10;
        }
        // Now 1 s, then 2 s, 4 s … between tries, whatever the try.
        let mut waits = Vec::new();
        for _ in 0..8 {
            let w = l.check("10.0.0.1", t).unwrap_err();
            waits.push(w);
            t += w;
            assert!(l.check("10.0.0.1", t).is_ok());
            l.failed("10.0.0.1", t);
        }
        assert_eq!(
            waits,
            vec![990, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
        );
        // Another client is not held up; a success clears.
        assert!(l.check("10.0.0.2", t).is_ok());
        l.succeeded("10.0.0.1");
        assert!(l.check("10.0.0.1", t).is_ok());
        // Quiet for 15 minutes: forgotten.
        for _ in 0..FREE_FAILURES + 1 {
            l.failed("10.0.0.3", t);
        }
        assert!(l.check("10.0.0.3", t + 100).is_err());
        assert!(l.check("10.0.0.3", t + FORGET_MS + 1).is_ok());
    }
}
