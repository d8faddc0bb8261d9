//! The pure parts of `sightline run`: pipeline files with variables, reconnect back-off, and
//! Prometheus text metrics.
//!
//! A pipeline file is a `gst-launch-1.0` description with `#` comment lines. Header lines
//! `# @var NAME=DEFAULT  what it is` declare variables (no `=`: required); `${NAME}` in the
//! description is replaced by `--set NAME=VALUE`, else the environment, else the default.

use std::collections::BTreeMap;
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
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if let Some(c) = t.strip_prefix('#') {
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
            if !t.is_empty() {
                body.push(t.trim_end_matches('\\').trim().to_string());
            }
        }
        if body.is_empty() {
            return Err(format!("{origin}: no pipeline description"));
        }
        Ok(PipelineFile {
            description: body.join(" "),
            vars,
        })
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
        let mut out = String::new();
        let mut rest = self.description.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unterminated ${{ in \"{}\"", &rest[start..]))?;
            let name = &after[..end];
            let decl =
                self.vars.iter().find(|v| v.name == name).ok_or_else(|| {
                    format!("${{{name}}} is used but not declared (# @var {name}=…)")
                })?;
            let value = set
                .get(name)
                .cloned()
                .or_else(|| env(name))
                .or_else(|| decl.default.clone())
                .ok_or_else(|| {
                    format!(
                        "variable {name} is required ({}): --set {name}=VALUE",
                        decl.help
                    )
                })?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
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

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn family(&mut self, name: &str, help: &str, kind: &'static str) -> &mut Family {
        self.families
            .entry(name.to_string())
            .or_insert_with(|| Family {
                help: help.to_string(),
                kind,
                values: BTreeMap::new(),
            })
    }

    fn key(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Adds `by` to counter `name{labels}`.
    pub fn inc(&mut self, name: &str, help: &str, labels: &[(&str, &str)], by: f64) {
        *self
            .family(name, help, "counter")
            .values
            .entry(Self::key(labels))
            .or_insert(0.0) += by;
    }

    /// Sets gauge `name{labels}`.
    pub fn set(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.family(name, help, "gauge")
            .values
            .insert(Self::key(labels), v);
    }

    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.families
            .get(name)?
            .values
            .get(&Self::key(labels))
            .copied()
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
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let d: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, vec![500, 1000, 2000, 4000, 4000, 4000]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 500);
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
    }
}
