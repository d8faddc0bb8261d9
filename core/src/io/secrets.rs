//! Secrets never printed: URLs shown in logs, messages, errors, events and property
//! read-backs go through [`redact_url`], and error texts of libraries that may quote a URL go
//! through [`scrub`].
//!
//! What is hidden (parsed with `url::Url`, never by string slicing):
//! - the password of the user info (`redis://node1:***@host/`); the user name stays, it names
//!   the ACL user and is no secret;
//! - every query value (`?token=***`);
//! - path segments that carry a token: webhook URLs of Slack, Teams, Discord and most
//!   services put it in the path (`/services/T000/B000/XXXX`), Telegram as `bot<TOKEN>`. A
//!   segment is hidden when it has a digit and is at least 8 characters long, is at least
//!   20 characters long, or starts with `bot` followed by digits and `:`.
//!
//! A string that does not parse as a URL is shown as `<unparsable URL>`, never as it is.
//!
//! Secrets can be given without the command line: [`from_env_or_file`] reads
//! `NAME` or the file named by `NAME_FILE` (the Docker/Kubernetes secrets convention).

pub const MASK: &str = "***";

fn secret_segment(seg: &str) -> bool {
    // Judged on the decoded text, so that re-encoding (`%` becomes `%25`) never changes the
    // verdict; a segment that looks like credentials (`user:pw@host`) is always hidden.
    let d = decode_segment(seg);
    let digits = d.chars().any(|c| c.is_ascii_digit());
    let telegram = d.strip_prefix("bot").is_some_and(|r| {
        r.split(':')
            .next()
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            && r.contains(':')
    });
    let chars = d.chars().count();
    telegram || d.contains('@') || d.contains(':') || (digits && chars >= 8) || chars >= 20
}

/// The URL with its secrets replaced by `***` (see the module doc).
pub fn redact_url(raw: &str) -> String {
    let Ok(mut u) = url::Url::parse(raw) else {
        return "<unparsable URL>".into();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some(MASK));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, _)| (k.into_owned(), MASK.to_string()))
            .collect();
        u.set_query(None);
        if !pairs.is_empty() {
            let mut q = u.query_pairs_mut();
            for (k, v) in &pairs {
                q.append_pair(k, v);
            }
        }
    }
    u.set_fragment(None);
    if !u.cannot_be_a_base() {
        // The raw (still encoded) segments, joined again: nothing is decoded and encoded
        // again, so the result parses exactly as the original did.
        let path: Vec<String> = u
            .path_segments()
            .map(|s| {
                s.map(|seg| {
                    if secret_segment(seg) {
                        MASK.to_string()
                    } else {
                        seg.to_string()
                    }
                })
                .collect()
            })
            .unwrap_or_default();
        u.set_path(&format!("/{}", path.join("/")));
    }
    // `***` in the user info and query is percent-encoded by the setters: show it plainly.
    u.to_string().replace("%2A%2A%2A", MASK)
}

/// `text` with every URL in it (`scheme://…` up to a space, quote, `!`, `,` or `)`) shown
/// by [`redact_url`]: for pipeline descriptions, GStreamer errors and log lines that may
/// quote a camera, Redis or webhook URL with its credentials.
pub fn redact_urls_in_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(k) = rest.find("://") {
        // The scheme: letters, digits, + - . back from "://".
        let start = rest[..k]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || "+-.".contains(*c)))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let end = rest[k..]
            .find(|c: char| c.is_whitespace() || "\"'!,)<>".contains(c))
            .map_or(rest.len(), |i| k + i);
        out.push_str(&rest[..start]);
        let candidate = &rest[start..end];
        if start == k {
            // No scheme in front of "://" (text, or letters a scheme cannot have): still
            // redacted as a URL, with a stand-in scheme.
            let r = redact_url(&format!("x{candidate}"));
            out.push_str(r.strip_prefix('x').unwrap_or(&r));
        } else {
            out.push_str(&redact_url(candidate));
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The secret pieces of a URL (password, query values, token path segments), raw and
/// percent-decoded, for [`scrub`].
pub fn secrets_of_url(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(u) = url::Url::parse(raw) else {
        // Unparsable: the whole string is treated as secret.
        if !raw.is_empty() {
            out.push(raw.to_string());
        }
        return out;
    };
    if let Some(p) = u.password() {
        out.push(p.to_string());
    }
    for (_, v) in u.query_pairs() {
        out.push(v.into_owned());
    }
    if let Some(q) = u.query() {
        out.extend(
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(_, v)| v.to_string()),
        );
    }
    if !u.cannot_be_a_base()
        && let Some(segs) = u.path_segments()
    {
        out.extend(segs.filter(|s| secret_segment(s)).map(str::to_string));
    }
    let decoded: Vec<String> = out
        .iter()
        .filter_map(|s| percent_decode(s).filter(|d| d != s))
        .collect();
    out.extend(decoded);
    out.retain(|s| s.len() >= 3 && s != MASK);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// A path segment's text (percent-decoding only: `+` stays `+` in a path).
fn decode_segment(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

fn percent_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// `text` with every occurrence of each secret replaced by `***`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut t = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if t.contains(s.as_str()) {
            t = t.replace(s.as_str(), MASK);
        }
    }
    t
}

/// `text` with the secrets of `url` hidden: the URL itself shown redacted, and its secret
/// pieces scrubbed wherever else they appear (library errors sometimes quote them).
pub fn scrub_url_in(text: &str, url: &str) -> String {
    let shown = text.replace(url, &redact_url(url));
    scrub(&shown, &secrets_of_url(url))
}

/// A secret from the environment: `NAME` itself, or the contents of the file named by
/// `NAME_FILE` (trimmed). Err names the variable or file when the file cannot be read.
pub fn from_env_or_file(name: &str) -> Result<Option<String>, String> {
    if let Some(v) = std::env::var_os(name).filter(|v| !v.is_empty()) {
        return Ok(Some(v.to_string_lossy().into_owned()));
    }
    let file_var = format!("{name}_FILE");
    match std::env::var_os(&file_var).filter(|v| !v.is_empty()) {
        Some(path) => read_secret_file(std::path::Path::new(&path))
            .map(Some)
            .map_err(|e| format!("{file_var}: {e}")),
        None => Ok(None),
    }
}

/// A secret-bearing property value: `env:NAME` is the environment variable NAME, `@PATH`
/// the first line of the file PATH, anything else the value itself. Errors name the
/// variable or the file, never a value.
pub fn resolve(value: &str) -> Result<String, String> {
    if let Some(name) = value.strip_prefix("env:") {
        return match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(v),
            _ => Err(format!("environment variable {name} is not set")),
        };
    }
    if let Some(path) = value.strip_prefix('@') {
        return read_secret_file(std::path::Path::new(path));
    }
    Ok(value.to_string())
}

/// A secret kept in a file (first line, trimmed); the error names the file, not the content.
pub fn read_secret_file(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
    let v = text.lines().next().unwrap_or("").trim().to_string();
    if v.is_empty() {
        return Err(format!("secret file {} is empty", path.display()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_queries_and_path_tokens_are_hidden() {
        assert_eq!(
            redact_url("redis://node1:s3cret@10.0.0.5:6379/0"),
            "redis://node1:***@10.0.0.5:6379/0"
        );
        assert_eq!(redact_url("rediss://:pw@host/"), "rediss://:***@host/");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/"
        );
        let slack = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";
        let r = redact_url(slack);
        assert_eq!(r, "https://hooks.slack.com/services/***/***/***");
        let r = redact_url("https://alice:hunter22@alerts.example/hook?token=abc123&x=1");
        assert_eq!(r, "https://alice:***@alerts.example/hook?token=***&x=***");
        // Found by fuzzing: credentials pasted into the path; a verdict that re-encoding changed.
        let odd = "https://a/lice:pw@hooks.slack.co%m/services/pw@hooks.slack.co%m/servic";
        let r = redact_url(odd);
        assert!(!r.contains("pw@"), "{r}");
        assert_eq!(redact_url(&r), r, "stable");
        // Nothing secret: the URL comes out as it went in (no second encoding).
        let plain = "https://h.example/a%22b/c+d/e%20f";
        assert_eq!(redact_url(plain), plain);
        assert_eq!(
            redact_url("https://!/ali%22hooksseq.sl"),
            redact_url(&redact_url("https://!/ali%22hooksseq.sl"))
        );
        let tg = redact_url("https://api.telegram.org/bot123456:ABC-DEF/sendMessage");
        assert!(!tg.contains("ABC-DEF") && !tg.contains("123456"), "{tg}");
        assert_eq!(redact_url("not a url"), "<unparsable URL>");
    }

    #[test]
    fn scrub_removes_raw_and_decoded_secrets_from_any_text() {
        let url = "https://bob:p%40ss%2Fword@h.example/x/abcdef0123456789?k=v%20w";
        let secrets = secrets_of_url(url);
        let msg = format!("failed {url}: auth p@ss/word rejected (token abcdef0123456789, v w)");
        let s = scrub_url_in(&msg, url);
        for bad in ["p@ss/word", "p%40ss", "abcdef0123456789", "v w", "v%20w"] {
            assert!(!s.contains(bad), "{bad} in {s} ({secrets:?})");
        }
        assert!(s.contains("h.example"), "{s}");
    }

    #[test]
    fn urls_in_any_text_are_redacted() {
        let t = "facematch redis-url=redis://n1:pw1@10.0.0.5/ ! presence webhook-url=\"https://h/hooks/abcdef123456789\" location=rtsp://admin:cam9@cam/s1, ok";
        let r = redact_urls_in_text(t);
        for bad in ["pw1", "abcdef123456789", "cam9"] {
            assert!(!r.contains(bad), "{bad} in {r}");
        }
        assert!(
            r.contains("redis://n1:***@10.0.0.5/") && r.contains("rtsp://admin:***@cam/s1"),
            "{r}"
        );
        assert_eq!(redact_urls_in_text("no urls here"), "no urls here");
        // Found by fuzzing: a multi-byte character right before the scheme.
        let t = "name=\u{7d3}e:///x ré://u:p@h/ ://";
        let r = redact_urls_in_text(t);
        assert!(!r.contains("u:p@"), "{r}");
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file() {
        let dir = std::env::temp_dir().join(format!("sl-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("url");
        std::fs::write(&f, "redis://u:pw@h/\n").unwrap();
        assert_eq!(read_secret_file(&f).unwrap(), "redis://u:pw@h/");
        std::fs::write(&f, "\n").unwrap();
        assert!(read_secret_file(&f).unwrap_err().contains("empty"));
        std::fs::write(&f, "redis://u:pw@h/\n").unwrap();
        assert_eq!(
            resolve(&format!("@{}", f.display())).unwrap(),
            "redis://u:pw@h/"
        );
        assert_eq!(resolve("redis://h/").unwrap(), "redis://h/");
        let e = resolve("env:SL_TEST_SURELY_UNSET").unwrap_err();
        assert!(e.contains("SL_TEST_SURELY_UNSET"), "{e}");
        let e = read_secret_file(&dir.join("missing")).unwrap_err();
        assert!(e.contains("missing"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
