//! The pure parts of `sightline run`: pipeline files with variables, splitting a description
//! into independently supervised units, hardware-decoder fallback, reconnect back-off, and
//! Prometheus text metrics.
//!
//! A pipeline file is a `gst-launch-1.0` description with `#` comment lines. Header lines
//! `# @var NAME=DEFAULT  what it is` declare variables (no `=`: required); `${NAME}` in the
//! description is replaced by `--set NAME=VALUE`, else the environment, else the default.
//!
//! A `# @camera-template` block (comment lines up to `# @end`) is the description of one more
//! camera, added through the API (`POST /api/v1/cameras`): `${CAMERA}` is its name, `${URI}`
//! its source (a whole property value, e.g. `uri=${URI}`), the file's variables as above, and
//! the request's `vars` override them for that camera. Request values are checked and quoted
//! so that they are only ever one property value ([`PipelineFile::camera`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct VarDecl {
    pub name: String,
    pub default: Option<String>,
    pub help: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineFile {
    /// The description without comments, lines joined by spaces.
    pub description: String,
    pub vars: Vec<VarDecl>,
    /// The `# @camera-template` block, lines joined by spaces.
    pub template: Option<String>,
}

/// The error of [`PipelineFile::camera`] for a file without a template.
pub const NO_TEMPLATE: &str = "the pipeline file has no # @camera-template block";

/// A camera name from a request: letters, digits, `-`, `_`; 1 to 64.
pub fn check_camera_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?}: 1 to 64 letters, digits, '-' or '_'"
        ))
    }
}

/// A value from a request, to be one property value: no spaces, quotes, backslashes, `!`,
/// control characters or `${`; at most 2048 bytes.
fn check_value(what: &str, v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 2048 {
        return Err(format!("{what}: 1 to 2048 characters"));
    }
    if let Some(c) = v
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | '!'))
    {
        return Err(format!(
            "{what}: {c:?} is not allowed (a value is one property value)"
        ));
    }
    if v.contains("${") {
        return Err(format!("{what}: \"${{\" is not allowed"));
    }
    Ok(())
}

/// A camera's source from a request: an rtsp, rtsps, file, http or https URI.
pub fn check_uri(uri: &str) -> Result<(), String> {
    check_value("uri", uri)?;
    let u = url::Url::parse(uri).map_err(|e| format!("uri: not a URI ({e})"))?;
    if !matches!(u.scheme(), "rtsp" | "rtsps" | "file" | "http" | "https") {
        return Err(format!(
            "uri: scheme {} is not a camera source (rtsp, rtsps, file, http, https)",
            u.scheme()
        ));
    }
    Ok(())
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

impl PipelineFile {
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let mut vars: Vec<VarDecl> = Vec::new();
        let mut body = Vec::new();
        let mut template: Option<Vec<String>> = None;
        let mut in_template: Option<usize> = None;
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if let Some(c) = t.strip_prefix('#') {
                let c = c.trim();
                if in_template.is_some() {
                    if c == "@end" {
                        in_template = None;
                    } else if !c.is_empty() {
                        template
                            .get_or_insert_with(Vec::new)
                            .push(c.trim_end_matches('\\').trim().to_string());
                    }
                    continue;
                }
                if c == "@camera-template" {
                    if template.is_some() {
                        return Err(format!(
                            "{origin}:{}: a second @camera-template (one per file)",
                            i + 1
                        ));
                    }
                    in_template = Some(i + 1);
                    template = Some(Vec::new());
                    continue;
                }
                if let Some(decl) = c.trim().strip_prefix("@var") {
                    let decl = decl.trim();
                    let (head, help) = decl
                        .split_once(char::is_whitespace)
                        .map_or((decl, ""), |(h, r)| (h, r.trim()));
                    let (name, default) = match head.split_once('=') {
                        Some((n, d)) => (n, Some(d.to_string())),
                        None => (head, None),
                    };
                    if !valid_name(name) {
                        return Err(format!(
                            "{origin}:{}: bad variable name \"{name}\" (A-Z, 0-9, _)",
                            i + 1
                        ));
                    }
                    vars.push(VarDecl {
                        name: name.to_string(),
                        default,
                        help: help.to_string(),
                    });
                }
                continue;
            }
            if let Some(n) = in_template {
                if !t.is_empty() {
                    return Err(format!(
                        "{origin}:{n}: @camera-template is not closed by \"# @end\" before line {}",
                        i + 1
                    ));
                }
                continue;
            }
            if !t.is_empty() {
                body.push((i + 1, t.trim_end_matches('\\').trim().to_string()));
            }
        }
        if let Some(n) = in_template {
            return Err(format!(
                "{origin}:{n}: @camera-template is not closed by \"# @end\""
            ));
        }
        let template = match template {
            Some(lines) if lines.is_empty() => {
                return Err(format!("{origin}: the @camera-template block is empty"));
            }
            t => t.map(|l| l.join(" ")),
        };
        // A quote left open would swallow the rest of the description into one value.
        let mut open: Option<usize> = None;
        for (n, l) in &body {
            let mut escaped = false;
            for c in l.chars() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => open = if open.is_some() { None } else { Some(*n) },
                    _ => escaped = false,
                }
                if c != '\\' {
                    escaped = false;
                }
            }
        }
        if let Some(n) = open {
            return Err(format!(
                "{origin}:{n}: unbalanced quote (\" opened here is never closed)"
            ));
        }
        let body: Vec<String> = body.into_iter().map(|(_, l)| l).collect();
        if body.is_empty() && template.is_none() {
            return Err(format!("{origin}: no pipeline description"));
        }
        Ok(PipelineFile {
            description: body.join(" "),
            vars,
            template,
        })
    }

    /// The description of camera `name` with source `uri` from the template, the request's
    /// `vars` (declared variables only) over `set`, the environment and the defaults. Every
    /// request value is checked and substituted quoted, so that it stays one property value.
    pub fn camera(
        &self,
        name: &str,
        uri: &str,
        vars: &BTreeMap<String, String>,
        set: &BTreeMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<String, String> {
        let template = self.template.as_ref().ok_or(NO_TEMPLATE)?;
        check_camera_name(name)?;
        check_uri(uri)?;
        let mut all = set.clone();
        for (k, v) in vars {
            if k == "CAMERA" || k == "URI" || !self.vars.iter().any(|d| &d.name == k) {
                return Err(format!("vars: the file declares no variable {k}"));
            }
            check_value(&format!("vars.{k}"), v)?;
            all.insert(k.clone(), format!("\"{v}\""));
        }
        all.insert("CAMERA".into(), name.to_string());
        all.insert("URI".into(), format!("\"{uri}\""));
        let mut with = self.clone();
        for n in ["CAMERA", "URI"] {
            with.vars.push(VarDecl {
                name: n.into(),
                default: None,
                help: String::new(),
            });
        }
        with.expand(template, &all, &env)
    }

    /// The description with every `${NAME}` replaced: `set` first, then `env`, then the
    /// declared default; an undeclared or unset variable is an error naming it.
    pub fn substitute(
        &self,
        set: &BTreeMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<String, String> {
        for k in set.keys() {
            if !self.vars.iter().any(|v| &v.name == k) {
                return Err(format!("--set {k}: the file declares no variable {k}"));
            }
        }
        self.expand(&self.description, set, &env)
    }

    /// Substitutes `${NAME}` and `${NAME:+WORD}` (WORD, itself expanded, when NAME is set and
    /// not empty — the shell's meaning, so optional properties need no second file).
    fn expand(
        &self,
        text: &str,
        set: &BTreeMap<String, String>,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = closing_brace(after)
                .ok_or_else(|| format!("unterminated ${{ in \"{}\"", &rest[start..]))?;
            let inner = &after[..end];
            let (name, word) = match inner.split_once(":+") {
                Some((name, word)) => (name, Some(word)),
                None => (inner, None),
            };
            let value = self.value(name, set, env)?;
            match word {
                Some(word) if !value.is_empty() => out.push_str(&self.expand(word, set, env)?),
                Some(_) => {}
                None => out.push_str(&value),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn value(
        &self,
        name: &str,
        set: &BTreeMap<String, String>,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<String, String> {
        let decl = self
            .vars
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| format!("${{{name}}} is used but not declared (# @var {name}=…)"))?;
        set.get(name)
            .cloned()
            .or_else(|| env(name))
            .or_else(|| decl.default.clone())
            .ok_or_else(|| {
                format!(
                    "variable {name} is required ({}): --set {name}=VALUE",
                    decl.help
                )
            })
    }
}

/// Index of the `}` closing a `${` whose text starts `s`, skipping nested `${…}`.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Checks a TLS certificate/key pair given to a server (`what` names the element and the
/// properties in the message): both or neither, readable PEM, at least one certificate, one
/// private key. Servers that would otherwise fall back to plain text or die on their first
/// connection get a clear refusal before anything starts.
pub fn check_tls_pair(what: &str, cert: Option<&str>, key: Option<&str>) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = match (
        cert.filter(|c| !c.is_empty()),
        key.filter(|k| !k.is_empty()),
    ) {
        (None, None) => return Ok(()),
        (Some(c), Some(k)) => (c, k),
        (Some(c), None) => return Err(format!("{what}: certificate {c} given without its key")),
        (None, Some(k)) => return Err(format!("{what}: key {k} given without its certificate")),
    };
    let certs: Vec<_> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{what}: cannot read certificate {cert}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: certificate {cert} is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{what}: {cert} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{what}: {key} is not a readable PEM private key: {e}"))?;
    Ok(())
}

/// Splits a gst-launch description into units: chains not linked by `!` or by a name
/// (`name=t` … `t.`) to each other. Quotes are kept.
pub fn split_units(desc: &str) -> Vec<String> {
    let tokens = tokenize(desc);
    // Chains: a token that is an element (not `!`, not a property) and does not follow `!`
    // starts a new chain.
    let mut chains: Vec<Vec<String>> = vec![Vec::new()];
    let mut after_bang = false;
    for t in tokens {
        if t == "!" {
            after_bang = true;
        } else if !is_property(&t) {
            let current = chains.last().map_or(0, Vec::len);
            if !after_bang && current > 0 {
                chains.push(Vec::new());
            }
            after_bang = false;
        }
        chains.last_mut().expect("a chain").push(t);
    }
    // Union of chains that name / reference the same element.
    let n = chains.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], i: usize) -> usize {
        let mut r = i;
        while p[r] != r {
            r = p[r];
        }
        p[i] = r;
        r
    }
    let mut defined: HashMap<String, usize> = HashMap::new();
    for (i, c) in chains.iter().enumerate() {
        for t in c {
            if let Some(name) = t.strip_prefix("name=") {
                defined.insert(name.trim_matches('"').to_string(), i);
            }
        }
    }
    for (i, c) in chains.iter().enumerate() {
        for t in c {
            if let Some(name) = reference(t)
                && let Some(&j) = defined.get(name)
            {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (i, c) in chains.into_iter().enumerate() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(c.join(" "));
    }
    let mut units: Vec<(usize, String)> = groups
        .into_iter()
        .map(|(root, cs)| (root, cs.join(" ")))
        .collect();
    units.sort();
    units.into_iter().map(|(_, u)| u).collect()
}

fn tokenize(desc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = false;
    for ch in desc.chars() {
        match ch {
            '"' => {
                quote = !quote;
                cur.push(ch);
            }
            c if c.is_whitespace() && !quote => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '!' if !quote => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push("!".into());
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `key=value` (a property), not caps like `video/x-raw,width=640`.
fn is_property(t: &str) -> bool {
    match t.split_once('=') {
        Some((k, _)) => {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':')
        }
        None => false,
    }
}

/// `t.` or `t.src_0`: a reference to element `t`.
fn reference(t: &str) -> Option<&str> {
    if is_property(t) || t.contains('/') {
        return None;
    }
    let (name, _) = t.split_once('.')?;
    (!name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    .then_some(name)
}

/// Hardware decoders and their software stand-ins.
pub const DECODER_FALLBACKS: [(&str, &str); 4] = [
    ("nvh264dec", "avdec_h264"),
    ("nvh265dec", "avdec_h265"),
    ("vah264dec", "avdec_h264"),
    ("vah265dec", "avdec_h265"),
];

/// Replaces each hardware decoder of `desc` that `available` says is missing with its software
/// stand-in. Returns the description and, per hardware decoder met, the stand-in used (None:
/// the hardware one is kept).
pub fn substitute_decoders(
    desc: &str,
    available: impl Fn(&str) -> bool,
) -> (String, Vec<(&'static str, Option<&'static str>)>) {
    let mut choices = Vec::new();
    let tokens: Vec<String> = tokenize(desc)
        .into_iter()
        .map(
            |t| match DECODER_FALLBACKS.iter().find(|(hw, _)| t == *hw) {
                Some(&(hw, sw)) if !available(hw) => {
                    choices.push((hw, Some(sw)));
                    sw.to_string()
                }
                Some(&(hw, _)) => {
                    choices.push((hw, None));
                    t
                }
                None => t,
            },
        )
        .collect();
    (tokens.join(" "), choices)
}

/// Reconnect delays: 0.5 s doubling to `max`, back to the start after a stable run.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// The stream ran fine: start again from the initial delay.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Counters and gauges with labels, rendered in the Prometheus text format (0.0.4).
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    families: BTreeMap<String, Family>,
}

#[derive(Debug, Clone)]
struct Family {
    help: String,
    kind: &'static str,
    values: BTreeMap<Vec<(String, String)>, f64>,
}

fn same_labels(key: &[(String, String)], labels: &[(&str, &str)]) -> bool {
    key.len() == labels.len()
        && key
            .iter()
            .zip(labels)
            .all(|((a, b), (c, d))| a == c && b == d)
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// The value of `name{labels}`, created at 0 with its family when new. Updating an existing
    /// series allocates nothing (it runs for every frame).
    fn slot(
        &mut self,
        name: &str,
        help: &str,
        kind: &'static str,
        labels: &[(&str, &str)],
    ) -> &mut f64 {
        if !self.families.contains_key(name) {
            self.families.insert(
                name.to_string(),
                Family {
                    help: help.to_string(),
                    kind,
                    values: BTreeMap::new(),
                },
            );
        }
        let values = &mut self.families.get_mut(name).expect("inserted above").values;
        if values.keys().any(|k| same_labels(k, labels)) {
            return values
                .iter_mut()
                .find(|(k, _)| same_labels(k, labels))
                .map(|(_, v)| v)
                .expect("found above");
        }
        let key = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        values.entry(key).or_insert(0.0)
    }

    /// Adds `by` to counter `name{labels}`.
    pub fn inc(&mut self, name: &str, help: &str, labels: &[(&str, &str)], by: f64) {
        *self.slot(name, help, "counter", labels) += by;
    }

    /// Sets gauge `name{labels}`.
    pub fn set(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        *self.slot(name, help, "gauge", labels) = v;
    }

    /// Forgets every series of `name` that has label `key`=`value` (a removed camera).
    pub fn remove_with(&mut self, name: &str, key: &str, value: &str) {
        if let Some(f) = self.families.get_mut(name) {
            f.values
                .retain(|labels, _| !labels.iter().any(|(k, v)| k == key && v == value));
        }
    }

    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.series(name)
            .find(|(k, _)| same_labels(k, labels))
            .map(|(_, v)| v)
    }

    /// Every series of `name`: its labels and value.
    pub fn series(&self, name: &str) -> impl Iterator<Item = (&[(String, String)], f64)> {
        self.families
            .get(name)
            .into_iter()
            .flat_map(|f| f.values.iter().map(|(k, v)| (k.as_slice(), *v)))
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, f) in &self.families {
            let _ = writeln!(out, "# HELP {name} {}", f.help.replace('\n', " "));
            let _ = writeln!(out, "# TYPE {name} {}", f.kind);
            for (labels, v) in &f.values {
                let l: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                let l = if l.is_empty() {
                    String::new()
                } else {
                    format!("{{{}}}", l.join(","))
                };
                let _ = writeln!(out, "{name}{l} {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = "# @var GALLERY=staff.slg  the gallery\n\
        # @var GRACE=10  grace\n\
        # @camera-template\n\
        #   uridecodebin3 uri=${URI} ! videoconvert ! facedetect camera=${CAMERA} !\n\
        #   presence camera=${CAMERA} grace-seconds=${GRACE} gallery=${GALLERY} ! fakesink\n\
        # @end\n\
        videotestsrc ! fakesink\n";

    #[test]
    fn a_camera_from_the_template_takes_request_values_quoted() {
        let f = PipelineFile::parse(SITE, "site").unwrap();
        assert_eq!(f.description, "videotestsrc ! fakesink");
        let mut vars = BTreeMap::new();
        vars.insert("GRACE".to_string(), "3".to_string());
        let d = f
            .camera(
                "door-2",
                "rtsp://u:p@cam/s?x=1",
                &vars,
                &BTreeMap::new(),
                |_| None,
            )
            .unwrap();
        assert_eq!(
            d,
            "uridecodebin3 uri=\"rtsp://u:p@cam/s?x=1\" ! videoconvert ! facedetect camera=door-2 ! presence camera=door-2 grace-seconds=\"3\" gallery=staff.slg ! fakesink"
        );
        // A file with only a template is a site whose cameras all come through the API.
        let only = PipelineFile::parse(
            "# @camera-template\n# videotestsrc ! fakesink\n# @end\n",
            "t",
        )
        .unwrap();
        assert_eq!(only.description, "");
    }

    #[test]
    fn request_values_can_never_add_elements_or_properties() {
        let f = PipelineFile::parse(SITE, "site").unwrap();
        let none = BTreeMap::new();
        let cam = |name: &str, uri: &str, vars: &BTreeMap<String, String>| {
            f.camera(name, uri, vars, &none, |_| None)
        };
        for uri in [
            "x ! filesink location=/etc/passwd",
            "rtsp://cam\" ! filesink location=\"/etc/x",
            "rtsp://cam/a!b",
            "rtsp://cam/a\nb",
            "rtsp://cam/${GALLERY}",
            "javascript:alert(1)",
            "fdsrc://0",
            "",
        ] {
            assert!(cam("c", uri, &none).is_err(), "{uri:?} accepted");
        }
        for name in ["a b", "a!b", "", "x\"", &"n".repeat(65)] {
            assert!(
                cam(name, "rtsp://cam/1", &none).is_err(),
                "{name:?} accepted"
            );
        }
        let mut vars = BTreeMap::new();
        vars.insert(
            "GRACE".to_string(),
            "1 ! filesink location=/tmp/x".to_string(),
        );
        assert!(
            cam("c", "rtsp://cam/1", &vars)
                .unwrap_err()
                .contains("vars.GRACE")
        );
        let mut vars = BTreeMap::new();
        vars.insert("NOT_DECLARED".to_string(), "1".to_string());
        assert!(
            cam("c", "rtsp://cam/1", &vars)
                .unwrap_err()
                .contains("no variable NOT_DECLARED")
        );
        let mut vars = BTreeMap::new();
        vars.insert("URI".to_string(), "rtsp://x".to_string());
        assert!(cam("c", "rtsp://cam/1", &vars).is_err());
        let none_file = PipelineFile::parse("videotestsrc ! fakesink", "f").unwrap();
        assert!(
            none_file
                .camera(
                    "c",
                    "rtsp://cam/1",
                    &BTreeMap::new(),
                    &BTreeMap::new(),
                    |_| None
                )
                .unwrap_err()
                .contains("no # @camera-template")
        );
    }

    #[test]
    fn template_blocks_must_be_closed_and_single() {
        let e = PipelineFile::parse(
            "# @camera-template\n# a ! b\nvideotestsrc ! fakesink\n",
            "f",
        )
        .unwrap_err();
        assert!(e.contains("f:1") && e.contains("# @end"), "{e}");
        let e = PipelineFile::parse("# @camera-template\n# a ! b\n", "f").unwrap_err();
        assert!(e.contains("not closed"), "{e}");
        let e = PipelineFile::parse(
            "# @camera-template\n# a\n# @end\n# @camera-template\n# b\n# @end\nx ! y\n",
            "f",
        )
        .unwrap_err();
        assert!(e.contains("second"), "{e}");
    }

    /// A throw-away self-signed certificate and its key, for tests only (fixtures/).
    const TEST_CERT: &str = include_str!("../tests/fixtures/test-cert.pem");
    const TEST_KEY: &str = include_str!("../tests/fixtures/test-key.pem");

    const FILE: &str = "# One camera.\n# @var CAM1  RTSP URL of the camera\n# @var WIDTH=640  analysis width\n\nrtspsrc location=${CAM1} ! decodebin3 ! \\\n  videoscale ! video/x-raw,width=${WIDTH} ! fakesink\n";

    #[test]
    fn variables_come_from_set_env_or_default() {
        let f = PipelineFile::parse(FILE, "one.pipeline").unwrap();
        assert_eq!(f.vars.len(), 2);
        assert_eq!(f.vars[1].default.as_deref(), Some("640"));
        let mut set = BTreeMap::new();
        set.insert("CAM1".to_string(), "rtsp://a/1".to_string());
        let d = f.substitute(&set, |_| None).unwrap();
        assert_eq!(
            d,
            "rtspsrc location=rtsp://a/1 ! decodebin3 ! videoscale ! video/x-raw,width=640 ! fakesink"
        );
        let d = f
            .substitute(&BTreeMap::new(), |n| {
                (n == "CAM1").then(|| "rtsp://env".to_string())
            })
            .unwrap();
        assert!(d.contains("location=rtsp://env"));
    }

    #[test]
    fn missing_and_unknown_variables_are_named() {
        let f = PipelineFile::parse(FILE, "one.pipeline").unwrap();
        let e = f.substitute(&BTreeMap::new(), |_| None).unwrap_err();
        assert!(e.contains("CAM1") && e.contains("RTSP URL"), "{e}");
        let mut set = BTreeMap::new();
        set.insert("CAM9".to_string(), "x".to_string());
        assert!(f.substitute(&set, |_| None).unwrap_err().contains("CAM9"));
        let g = PipelineFile::parse("fakesrc location=${NOPE} ! fakesink", "g").unwrap();
        assert!(
            g.substitute(&BTreeMap::new(), |_| Some("x".into()))
                .unwrap_err()
                .contains("not declared")
        );
        assert!(PipelineFile::parse("# @var bad-name=1\nfakesrc ! fakesink", "h").is_err());
        assert!(PipelineFile::parse("# only comments\n", "i").is_err());
    }

    #[test]
    fn optional_words_appear_only_when_their_variable_is_set() {
        let text = "# @var CERT=  PEM certificate\n# @var KEY=k.pem  key\n\
                    webrtcsink ${CERT:+cert=${CERT} key=${KEY}} ! fakesink";
        let f = PipelineFile::parse(text, "tls.pipeline").unwrap();
        let plain = f.substitute(&BTreeMap::new(), |_| None).unwrap();
        assert_eq!(plain, "webrtcsink  ! fakesink");
        let mut set = BTreeMap::new();
        set.insert("CERT".to_string(), "/etc/c.pem".to_string());
        let tls = f.substitute(&set, |_| None).unwrap();
        assert_eq!(tls, "webrtcsink cert=/etc/c.pem key=k.pem ! fakesink");
        let bad = PipelineFile::parse("# @var A=1\nx ${A:+${B}} ! y", "b").unwrap();
        assert!(
            bad.substitute(&BTreeMap::new(), |_| None)
                .unwrap_err()
                .contains("B")
        );
        let open = PipelineFile::parse("# @var A=1\nx ${A:+y ! z", "o").unwrap();
        assert!(
            open.substitute(&BTreeMap::new(), |_| None)
                .unwrap_err()
                .contains("unterminated")
        );
    }

    #[test]
    fn tls_pairs_are_checked_before_anything_starts() {
        let dir = std::env::temp_dir().join(format!("sl-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key, junk) = (dir.join("c.pem"), dir.join("k.pem"), dir.join("j.pem"));
        // A throw-away self-signed pair (P-256), as openssl writes it.
        std::fs::write(&cert, TEST_CERT).unwrap();
        std::fs::write(&key, TEST_KEY).unwrap();
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let p = |p: &std::path::Path| p.display().to_string();
        assert!(check_tls_pair("w", None, None).is_ok());
        assert!(check_tls_pair("w", Some(""), Some("")).is_ok());
        assert!(check_tls_pair("w", Some(&p(&cert)), Some(&p(&key))).is_ok());
        let e = check_tls_pair("web: signalling", Some(&p(&cert)), None).unwrap_err();
        assert!(
            e.contains("web: signalling") && e.contains("without its key"),
            "{e}"
        );
        let e = check_tls_pair("w", Some(&p(&junk)), Some(&p(&key))).unwrap_err();
        assert!(
            e.contains("j.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = check_tls_pair("w", Some(&p(&cert)), Some(&p(&cert))).unwrap_err();
        assert!(e.contains("c.pem") && e.contains("private key"), "{e}");
        let e = check_tls_pair("w", Some("/nonexistent/c.pem"), Some(&p(&key))).unwrap_err();
        assert!(e.contains("/nonexistent/c.pem"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn chains_split_into_units_and_named_branches_stay_together() {
        let u = split_units(
            "rtspsrc location=\"rtsp://a b\" ! decodebin3 ! video/x-raw,format=BGRx ! facedetect camera=a ! fakesink \
             filesrc location=/x.avi ! decodebin ! tee name=t  t. ! queue ! fakesink  t. ! queue ! appsink \
             mapview map=m ! videoconvert ! fakesink",
        );
        assert_eq!(u.len(), 3, "{u:?}");
        assert!(u[0].starts_with("rtspsrc location=\"rtsp://a b\" ! decodebin3"));
        assert!(u[1].contains("tee name=t") && u[1].contains("appsink"));
        assert!(u[2].starts_with("mapview"));
    }

    #[test]
    fn missing_hardware_decoders_get_their_software_stand_in() {
        let desc = "rtspsrc location=\"rtsp://x\" ! rtph264depay ! nvh264dec ! queue ! vah265dec ! fakesink";
        let (out, choices) = substitute_decoders(desc, |f| f == "vah265dec");
        assert_eq!(
            out,
            "rtspsrc location=\"rtsp://x\" ! rtph264depay ! avdec_h264 ! queue ! vah265dec ! fakesink"
        );
        assert_eq!(
            choices,
            vec![("nvh264dec", Some("avdec_h264")), ("vah265dec", None)]
        );
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let d: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, vec![500, 1000, 2000, 4000, 4000, 4000]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 500);
    }

    #[test]
    fn a_removed_cameras_series_are_forgotten() {
        let mut m = Metrics::default();
        m.set("up", "h", &[("camera", "a")], 1.0);
        m.set("up", "h", &[("camera", "b")], 0.0);
        m.remove_with("up", "camera", "b");
        assert_eq!(m.series("up").count(), 1);
        assert_eq!(m.get("up", &[("camera", "a")]), Some(1.0));
    }

    #[test]
    fn metrics_render_as_prometheus_text() {
        let mut m = Metrics::default();
        m.inc("frames_total", "Frames", &[("camera", "door")], 2.0);
        m.inc("frames_total", "Frames", &[("camera", "door")], 1.0);
        m.set("up", "Camera up", &[("camera", "a\"b")], 1.0);
        let t = m.render();
        assert!(t.contains("# TYPE frames_total counter\nframes_total{camera=\"door\"} 3\n"));
        assert!(t.contains("up{camera=\"a\\\"b\"} 1"));
        assert_eq!(m.get("frames_total", &[("camera", "door")]), Some(3.0));
        m.set("up", "Camera up", &[("camera", "b")], 0.0);
        m.set("up", "Camera up", &[("camera", "b")], 0.0);
        let down: Vec<_> = m.series("up").filter(|(_, v)| *v == 0.0).collect();
        assert_eq!(down.len(), 1, "{down:?}");
        assert_eq!(m.series("up").count(), 2);
    }
}
