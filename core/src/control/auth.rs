//! Access tokens of the runner's API: a JSON file of named tokens with a role each, stored as
//! Argon2id hashes (the `argon2` crate, RustCrypto), managed by `sightline auth`.
//!
//! A token is `slt_<id>_<secret>`: `id` (8 hex digits) finds its entry without trying every
//! hash, `secret` is 32 random bytes (`getrandom`, base64url). The file holds only the id, the hash, the
//! name and the role; the token is shown once, when it is made. A token verified once is
//! remembered for the life of the process by its SHA-256, so a request costs one hash, not an
//! Argon2 run; a revoked token stops working at the next request (the file is re-read when it
//! changes).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What a token may do; each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads state, streams and events.
    Viewer,
    /// Also acknowledges alerts and manages the gallery.
    Operator,
    /// Also adds and removes cameras and manages tokens.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role {s:?} (known: viewer, operator, admin)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub name: String,
    pub id: String,
    pub role: Role,
    /// Argon2id PHC string of the whole token.
    pub hash: String,
    /// UTC, RFC 3339.
    pub created: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenFile {
    pub version: u32,
    pub tokens: Vec<TokenEntry>,
}

/// Who a request is.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| format!("no random numbers from the system: {e}"))?;
    Ok(b)
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A name as tokens are listed and logged: letters, digits, `-`, `_`, `.`, `@`; 1–64.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "token name {name:?}: 1 to 64 letters, digits, '-', '_', '.', '@'"
        ))
    }
}

impl TokenFile {
    /// Reads `path`; a file that does not exist is an empty list.
    pub fn load(path: &Path) -> Result<TokenFile, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let f: TokenFile = serde_json::from_str(&text)
                    .map_err(|e| format!("token file {}: {e}", path.display()))?;
                if f.version != 1 {
                    return Err(format!(
                        "token file {}: version {} (this sightline reads 1)",
                        path.display(),
                        f.version
                    ));
                }
                Ok(f)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile {
                version: 1,
                tokens: Vec::new(),
            }),
            Err(e) => Err(format!("token file {}: {e}", path.display())),
        }
    }

    /// Writes `path` atomically, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        super::write_private(path, &text).map_err(|e| format!("token file {e}"))
    }

    /// A new token for `name` (unique) with `role`: the entry is added, the token returned
    /// (the only time it exists outside its holder).
    pub fn add(&mut self, name: &str, role: Role, now_utc: &str) -> Result<String, String> {
        check_name(name)?;
        if self.tokens.iter().any(|t| t.name == name) {
            return Err(format!("a token named {name} exists (revoke it first)"));
        }
        let id = loop {
            let b = random_bytes::<4>()?;
            let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
            if !self.tokens.iter().any(|t| t.id == id) {
                break id;
            }
        };
        let token = format!("slt_{id}_{}", b64url(&random_bytes::<32>()?));
        let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|e| e.to_string())?;
        let hash = argon2::Argon2::default()
            .hash_password(token.as_bytes(), &salt)
            .map_err(|e| e.to_string())?
            .to_string();
        self.tokens.push(TokenEntry {
            name: name.to_string(),
            id,
            role,
            hash,
            created: now_utc.to_string(),
        });
        Ok(token)
    }

    /// Removes the token `name`; false if there was none.
    pub fn revoke(&mut self, name: &str) -> bool {
        let before = self.tokens.len();
        self.tokens.retain(|t| t.name != name);
        self.tokens.len() != before
    }

    /// The entry `token` belongs to, by a full Argon2 check.
    fn check(&self, token: &str) -> Option<&TokenEntry> {
        let id = token.strip_prefix("slt_")?.split('_').next()?;
        let e = self.tokens.iter().find(|t| t.id == id)?;
        let parsed = PasswordHash::new(&e.hash).ok()?;
        argon2::Argon2::default()
            .verify_password(token.as_bytes(), &parsed)
            .ok()?;
        Some(e)
    }
}

/// The tokens of a running server: the file, re-read when it changes, and the tokens
/// verified so far.
pub struct Tokens {
    path: PathBuf,
    file: TokenFile,
    stamp: Option<(SystemTime, u64)>,
    /// SHA-256 of a verified token -> its id.
    verified: HashMap<[u8; 32], String>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Tokens {
    /// Reads the token file (an error if it is unreadable or malformed; a missing file is
    /// an error too: a server asked to check tokens must have some).
    pub fn open(path: &Path) -> Result<Tokens, String> {
        if !path.is_file() {
            return Err(format!(
                "token file {}: not found (make one: sightline auth --file {} add NAME --role admin)",
                path.display(),
                path.display()
            ));
        }
        let file = TokenFile::load(path)?;
        Ok(Tokens {
            path: path.to_path_buf(),
            stamp: stamp(path),
            file,
            verified: HashMap::new(),
        })
    }

    /// Re-reads the file if it changed; a file that became unreadable keeps the last list
    /// (returned as the error, to be said once).
    pub fn refresh(&mut self) -> Result<(), String> {
        let now = stamp(&self.path);
        if now == self.stamp {
            return Ok(());
        }
        self.stamp = now;
        let file = TokenFile::load(&self.path)?;
        let ids: Vec<&String> = file.tokens.iter().map(|t| &t.id).collect();
        self.verified.retain(|_, id| ids.contains(&&*id));
        self.file = file;
        Ok(())
    }

    /// The id of the token named `name`.
    pub fn id_of(&self, name: &str) -> Option<String> {
        let t = self.file.tokens.iter().find(|t| t.name == name)?;
        Some(t.id.clone())
    }

    /// Who the token with `id` is now (None: revoked); for sessions, which hold the id,
    /// never the token.
    pub fn by_id(&self, id: &str) -> Option<Principal> {
        let t = self.file.tokens.iter().find(|t| t.id == id)?;
        Some(Principal {
            name: t.name.clone(),
            role: t.role,
        })
    }

    /// Who `token` is if it was verified before (one SHA-256, no Argon2 run): a caller
    /// that knows a valid token is never held up by the limit on failed tries.
    pub fn known(&self, token: &str) -> Option<Principal> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_id(self.verified.get(&key)?)
    }

    /// Who `token` is, or None.
    pub fn verify(&mut self, token: &str) -> Option<Principal> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let id = match self.verified.get(&key) {
            Some(id) => id.clone(),
            None => {
                let e = self.file.check(token)?;
                let id = e.id.clone();
                self.verified.insert(key, id.clone());
                id
            }
        };
        let e = self.file.tokens.iter().find(|t| t.id == id)?;
        Some(Principal {
            name: e.name.clone(),
            role: e.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!(Role::parse("operator").unwrap(), Role::Operator);
        assert!(
            Role::parse("root")
                .unwrap_err()
                .contains("viewer, operator, admin")
        );
    }

    #[test]
    fn tokens_verify_once_revoke_and_never_store_the_secret() {
        let dir = std::env::temp_dir().join(format!("sl-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens.json");
        let mut f = TokenFile::load(&path).unwrap();
        let admin = f.add("alice", Role::Admin, "2026-12-02T00:00:00Z").unwrap();
        let viewer = f
            .add("wall-screen", Role::Viewer, "2026-12-02T00:00:00Z")
            .unwrap();
        assert!(
            f.add("alice", Role::Viewer, "x").is_err(),
            "names are unique"
        );
        assert!(f.add("a b", Role::Viewer, "x").is_err());
        assert!(admin.starts_with("slt_") && admin.len() > 50, "{admin}");
        f.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let secret = &admin[13..];
        assert!(!text.contains(secret), "only the hash is stored");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let mut t = Tokens::open(&path).unwrap();
        assert!(t.known(&admin).is_none(), "not verified yet");
        assert_eq!(t.verify(&admin).unwrap().role, Role::Admin);
        assert_eq!(t.known(&admin).unwrap().name, "alice");
        assert_eq!(t.verify(&admin).unwrap().name, "alice");
        assert_eq!(t.verify(&viewer).unwrap().role, Role::Viewer);
        // A wrong secret with a right id, garbage, and an empty token.
        let forged = format!("{}x", &admin[..admin.len() - 1]);
        assert!(t.verify(&forged).is_none());
        assert!(t.verify("nonsense").is_none());
        assert!(t.verify("").is_none());

        // Revoked in the file: refused at once although it was verified before.
        let mut f = TokenFile::load(&path).unwrap();
        assert!(f.revoke("alice"));
        assert!(!f.revoke("alice"));
        // The same length and second: the change must still be seen.
        f.save(&path).unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(2);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        t.refresh().unwrap();
        assert!(t.verify(&admin).is_none());
        assert_eq!(t.id_of("alice"), None);
        let id = t.id_of("wall-screen").unwrap();
        assert_eq!(t.by_id(&id).unwrap().role, Role::Viewer);
        assert_eq!(t.verify(&viewer).unwrap().name, "wall-screen");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_or_malformed_file_is_a_clear_error() {
        let e = Tokens::open(Path::new("/nonexistent/tokens.json"))
            .err()
            .unwrap();
        assert!(
            e.contains("/nonexistent/tokens.json") && e.contains("sightline auth"),
            "{e}"
        );
        let p = std::env::temp_dir().join(format!("sl-auth-bad-{}.json", std::process::id()));
        std::fs::write(&p, "{\"version\":1,\"tokens\":[{]}").unwrap();
        let e = Tokens::open(&p).err().unwrap();
        assert!(e.contains(&p.display().to_string()), "{e}");
        let _ = std::fs::remove_file(p);
    }
}
