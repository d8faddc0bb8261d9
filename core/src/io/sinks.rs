//! Where events go: one URL per destination ("sink"), parsed and checked once, shown only
//! redacted.
//!
//! | URL | sink |
//! |---|---|
//! | `file:///var/log/sightline/events.jsonl` | JSON lines appended to the file |
//! | `redis://[user:pw@]host[:port][/db][?stream=NAME]`, `rediss://…` | a Redis Stream (default `sightline:events`) |
//! | `http://…`, `https://…` | a webhook: one POST per event, body = the event JSON |
//! | `mqtt://[user:pw@]host[:port][?topic-prefix=sightline&discovery-prefix=homeassistant]`, `mqtts://…` | an MQTT broker (QoS 1), Home Assistant discovery |
//! | `telegram://BOT_TOKEN@CHAT_ID[?api=https://api.telegram.org]` | one Telegram message per alert |
//! | `sqlite:PATH`, `postgres://[user:pw@]host[:port]/db[?sslmode=require&sslrootcert=ca.pem]` | the history store (docs/history.md) |
//!
//! A list is comma-separated (`publish` property) or given one URL per flag (`--publish`).
//! Every error names the sink as [`Sink::display`] shows it: without its secrets.

use crate::secrets::redact_url;
use std::path::PathBuf;

pub const DEFAULT_STREAM: &str = "sightline:events";
pub const DEFAULT_TOPIC_PREFIX: &str = "sightline";
pub const DEFAULT_DISCOVERY_PREFIX: &str = "homeassistant";
pub const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";

/// An MQTT broker and how events are laid out on it.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttSpec {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Topics are `<topic_prefix>/<node>/…`.
    pub topic_prefix: String,
    /// Home Assistant discovery prefix; None: no discovery (`discovery-prefix=` empty).
    pub discovery_prefix: Option<String>,
}

/// 8 hex digits of FNV-1a: stable across Rust versions and runs (unlike `DefaultHasher`), for
/// file names.
pub fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    format!("{:08x}", h as u32)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    File(PathBuf),
    Redis {
        url: String,
        stream: String,
    },
    Webhook(String),
    Mqtt(MqttSpec),
    Telegram {
        token: String,
        chat: String,
        api: String,
    },
    /// The history database (SQLite or PostgreSQL) and its retention.
    History {
        location: crate::history::Location,
        retention: crate::history::Retention,
    },
}

fn bad(raw: &str, why: &str) -> String {
    format!("event sink {}: {why}", shown(raw))
}

/// A sink URL as it may be shown: `telegram://` hides its whole user part (the bot token),
/// every other scheme goes through [`redact_url`].
fn shown(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(u) if u.scheme() == "telegram" => {
            let chat = u.host_str().unwrap_or("");
            format!("telegram://***@{chat}")
        }
        _ => redact_url(raw),
    }
}

impl Sink {
    /// The file sink of an element's older `event-log` property: `path` (relative to the
    /// working directory) is opened now, so that a path that cannot be written fails the
    /// start with its name.
    pub fn event_log(path: &str) -> Result<Sink, String> {
        let path = std::path::Path::new(path);
        let fail = |e: std::io::Error| format!("Cannot open event log {}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(fail)?;
        Ok(Sink::File(std::path::absolute(path).map_err(fail)?))
    }

    /// Parses one sink URL; the error names the sink (redacted) and what is wrong.
    pub fn parse(raw: &str) -> Result<Sink, String> {
        let raw = raw.trim();
        if raw.starts_with("sqlite:")
            || raw.starts_with("postgres://")
            || raw.starts_with("postgresql://")
        {
            return Ok(Sink::History {
                location: crate::history::Location::parse(raw)?,
                retention: crate::history::Retention::default(),
            });
        }
        let u = url::Url::parse(raw).map_err(|e| match e {
            url::ParseError::EmptyHost if raw.starts_with("telegram:") => {
                bad(raw, "no chat id (telegram://BOT_TOKEN@CHAT_ID)")
            }
            url::ParseError::EmptyHost => bad(raw, "no host"),
            e => bad(raw, &format!("not a URL ({e})")),
        })?;
        let query = |name: &str| {
            u.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let known = |names: &[&str]| -> Result<(), String> {
            match u.query_pairs().find(|(k, _)| !names.contains(&k.as_ref())) {
                Some((k, _)) => Err(bad(
                    raw,
                    &format!(
                        "unknown parameter {k:?} (known: {})",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                )),
                None => Ok(()),
            }
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        match u.scheme() {
            "file" => {
                known(&[])?;
                let path = u
                    .to_file_path()
                    .map_err(|_| bad(raw, "not a local file path (file:///absolute/path)"))?;
                if path.file_name().is_none() || raw.ends_with('/') {
                    return Err(bad(raw, "names a directory, not a file"));
                }
                Ok(Sink::File(path))
            }
            "redis" | "rediss" => {
                known(&["stream"])?;
                if u.host_str().is_none_or(str::is_empty) {
                    return Err(bad(raw, "no host"));
                }
                let stream = query("stream").unwrap_or_else(|| DEFAULT_STREAM.into());
                if stream.is_empty() {
                    return Err(bad(raw, "empty stream name"));
                }
                let mut plain = u.clone();
                plain.set_query(None);
                Ok(Sink::Redis {
                    url: plain.to_string(),
                    stream,
                })
            }
            "http" | "https" => {
                if u.host_str().is_none_or(str::is_empty) {
                    return Err(bad(raw, "no host"));
                }
                Ok(Sink::Webhook(raw.to_string()))
            }
            "mqtt" | "mqtts" => {
                known(&["topic-prefix", "discovery-prefix"])?;
                let host = u
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| bad(raw, "no broker host"))?
                    .trim_matches(['[', ']'])
                    .to_string();
                if u.path() != "" && u.path() != "/" {
                    return Err(bad(
                        raw,
                        "a broker URL has no path (topics come from the node)",
                    ));
                }
                let tls = u.scheme() == "mqtts";
                let topic_prefix =
                    query("topic-prefix").unwrap_or_else(|| DEFAULT_TOPIC_PREFIX.into());
                let valid_topic = |t: &str| {
                    !t.is_empty()
                        && !t.contains(['+', '#', '\0'])
                        && !t.starts_with('/')
                        && !t.ends_with('/')
                };
                if !valid_topic(&topic_prefix) {
                    return Err(bad(
                        raw,
                        "topic-prefix must be a topic without wildcards (+, #) or leading/trailing /",
                    ));
                }
                let discovery_prefix = match query("discovery-prefix") {
                    None => Some(DEFAULT_DISCOVERY_PREFIX.to_string()),
                    Some(p) if p.is_empty() => None,
                    Some(p) if valid_topic(&p) => Some(p),
                    Some(_) => {
                        return Err(bad(
                            raw,
                            "discovery-prefix must be a topic without wildcards, or empty (no discovery)",
                        ));
                    }
                };
                Ok(Sink::Mqtt(MqttSpec {
                    tls,
                    host,
                    port: u.port().unwrap_or(if tls { 8883 } else { 1883 }),
                    user: Some(decode(u.username())).filter(|s| !s.is_empty()),
                    password: u.password().map(decode),
                    topic_prefix,
                    discovery_prefix,
                }))
            }
            "telegram" => {
                known(&["api"])?;
                // telegram://123456:ABC@CHAT: the token's `:` splits it into user and password.
                let token = match u.password() {
                    Some(p) => format!("{}:{}", decode(u.username()), decode(p)),
                    None => decode(u.username()),
                };
                if token.is_empty() {
                    return Err(bad(raw, "no bot token (telegram://BOT_TOKEN@CHAT_ID)"));
                }
                let chat = u.host_str().map(decode).unwrap_or_default();
                if chat.is_empty() {
                    return Err(bad(raw, "no chat id (telegram://BOT_TOKEN@CHAT_ID)"));
                }
                let api = query("api").unwrap_or_else(|| DEFAULT_TELEGRAM_API.into());
                match url::Url::parse(&api) {
                    Ok(a) if matches!(a.scheme(), "http" | "https") => {}
                    _ => return Err(bad(raw, "api must be an http(s) URL")),
                }
                Ok(Sink::Telegram {
                    token,
                    chat,
                    api: api.trim_end_matches('/').to_string(),
                })
            }
            other => Err(bad(
                raw,
                &format!(
                    "unknown scheme {other:?} (file, redis, rediss, http, https, mqtt, mqtts, telegram)"
                ),
            )),
        }
    }

    /// A comma-separated list (`publish` property); empty entries are skipped.
    pub fn parse_list(list: &str) -> Result<Vec<Sink>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Sink::parse)
            .collect()
    }

    /// A comma-separated list as it may be shown (a property read-back, a settings
    /// conflict): each sink's [`Sink::display`], `<unparsable>` for an entry that is not one.
    pub fn shown_list(list: &str) -> String {
        list.split(',')
            .filter(|u| !u.trim().is_empty())
            .map(|u| Sink::parse(u).map_or_else(|_| "<unparsable>".into(), |k| k.display()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The sink for messages and metric labels: its URL without secrets.
    pub fn display(&self) -> String {
        match self {
            // A path, not a URL: the log redactor would take its segments for tokens.
            Sink::File(p) => format!("file {}", p.display()),
            Sink::Redis { url, stream } => format!("{} stream {stream}", redact_url(url)),
            Sink::Webhook(u) => redact_url(u),
            Sink::Mqtt(m) => format!(
                "{}://{}{}:{}",
                if m.tls { "mqtts" } else { "mqtt" },
                match (&m.user, &m.password) {
                    (Some(u), Some(_)) => format!("{u}:***@"),
                    (Some(u), None) => format!("{u}@"),
                    _ => String::new(),
                },
                m.host,
                m.port
            ),
            Sink::Telegram { chat, .. } => format!("telegram://***@{chat}"),
            Sink::History { location, .. } => format!("history {}", location.display()),
        }
    }

    /// A short name, stable across restarts, for the sink's cursor file: the kind and a
    /// hash of the full URL (two brokers, or two chats, get two cursors).
    pub fn key(&self) -> String {
        let (kind, identity) = match self {
            Sink::File(p) => ("file", p.display().to_string()),
            Sink::Redis { url, stream } => ("redis", format!("{url} {stream}")),
            Sink::Webhook(u) => ("webhook", u.clone()),
            Sink::Mqtt(m) => (
                "mqtt",
                format!("{}:{}:{}:{:?}", m.host, m.port, m.tls, m.user),
            ),
            Sink::Telegram { chat, api, .. } => ("telegram", format!("{api} {chat}")),
            Sink::History { location, .. } => ("history", format!("{location:?}")),
        };
        format!("{kind}-{}", short_hash(&identity))
    }

    /// Every secret of the sink, for scrubbing library error texts.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Sink::Redis { url, .. } | Sink::Webhook(url) => crate::secrets::secrets_of_url(url),
            Sink::Mqtt(m) => m.password.iter().cloned().collect(),
            Sink::Telegram { token, .. } => vec![token.clone()],
            Sink::History { location, .. } => location
                .url()
                .map(crate::secrets::secrets_of_url)
                .unwrap_or_default(),
            Sink::File(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_parses() {
        assert_eq!(
            Sink::parse("file:///var/log/sl/events.jsonl").unwrap(),
            Sink::File("/var/log/sl/events.jsonl".into())
        );
        assert_eq!(
            Sink::parse("redis://:pw@127.0.0.1:6380/2?stream=site:ev").unwrap(),
            Sink::Redis {
                url: "redis://:pw@127.0.0.1:6380/2".into(),
                stream: "site:ev".into()
            }
        );
        assert_eq!(
            Sink::parse("rediss://host/").unwrap(),
            Sink::Redis {
                url: "rediss://host/".into(),
                stream: DEFAULT_STREAM.into()
            }
        );
        assert_eq!(
            Sink::parse("https://hooks.example/x").unwrap(),
            Sink::Webhook("https://hooks.example/x".into())
        );
        let Sink::Mqtt(m) =
            Sink::parse("mqtts://ha:s%40cret@broker.lan?topic-prefix=site/a").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (
                m.tls,
                m.host.as_str(),
                m.port,
                m.user.as_deref(),
                m.password.as_deref()
            ),
            (true, "broker.lan", 8883, Some("ha"), Some("s@cret"))
        );
        assert_eq!(m.topic_prefix, "site/a");
        assert_eq!(m.discovery_prefix.as_deref(), Some("homeassistant"));
        let Sink::Mqtt(m) = Sink::parse("mqtt://127.0.0.1:1884?discovery-prefix=").unwrap() else {
            panic!()
        };
        assert_eq!((m.port, m.discovery_prefix, m.user), (1884, None, None));
        assert_eq!(
            Sink::parse("telegram://123456:AAH-x_y@-100200300?api=http://127.0.0.1:9/").unwrap(),
            Sink::Telegram {
                token: "123456:AAH-x_y".into(),
                chat: "-100200300".into(),
                api: "http://127.0.0.1:9".into()
            }
        );
    }

    #[test]
    fn bad_urls_are_clear_errors_without_secrets() {
        for (url, says) in [
            ("ftp://x/y", "unknown scheme \"ftp\""),
            ("telegram://123456:SECRETTOKEN@", "no chat id"),
            ("telegram://@12345", "no bot token"),
            ("telegram://1:SECRETTOKEN@1?api=ftp://x", "api must be"),
            ("mqtt://u:SECRETPW@/", "no "),
            ("mqtt://u:SECRETPW@h?topic-prefix=a/%23", "wildcards"),
            ("mqtt://u:SECRETPW@h/topic", "no path"),
            ("mqtt://u:SECRETPW@h?qos=2", "unknown parameter \"qos\""),
            ("redis://:SECRETPW@h?stream=", "empty stream"),
            ("file:///var/log/", "directory"),
            ("not a url SECRETPW", "not a URL"),
        ] {
            let e = Sink::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("SECRET"), "{url}: {e}");
            assert!(e.starts_with("event sink "), "{e}");
        }
    }

    #[test]
    fn display_and_keys_hide_secrets_and_tell_sinks_apart() {
        let sinks = Sink::parse_list(
            "mqtt://ha:pw1@b:1883, telegram://42:TOKEN@7, redis://:pw2@r/?stream=a,,redis://:pw2@r/?stream=b",
        )
        .unwrap();
        assert_eq!(sinks.len(), 4);
        let shown: Vec<String> = sinks.iter().map(Sink::display).collect();
        assert_eq!(shown[0], "mqtt://ha:***@b:1883");
        assert_eq!(shown[1], "telegram://***@7");
        for s in &shown {
            assert!(!s.contains("pw") && !s.contains("TOKEN"), "{s}");
        }
        let keys: std::collections::BTreeSet<String> = sinks.iter().map(Sink::key).collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert_eq!(
            sinks[2].key(),
            Sink::parse("redis://:pw2@r/?stream=a").unwrap().key()
        );
        assert_eq!(sinks[1].secrets(), ["42:TOKEN"]);
        assert_eq!(
            Sink::shown_list("mqtt://ha:pw1@b:1883,, ftp://u:pw3@x"),
            "mqtt://ha:***@b:1883,<unparsable>"
        );
    }
}
