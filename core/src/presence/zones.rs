//! Named zones (polygons) per camera: enter, leave and dwell events for the people in them.
//!
//! Zone file (JSON):
//!
//! ```json
//! {"units": "normalized",
//!  "cameras": {"door": [{"name": "entrance", "polygon": [[0.1,0.2],[0.5,0.2],[0.5,0.9],[0.1,0.9]],
//!                        "dwell-seconds": 30}]}}
//! ```
//!
//! `units` is `normalized` (0–1 of the frame, the default) or `pixels`. A person is in a zone
//! when the centre of their box is inside its polygon; they leave it when they are seen
//! outside it or not seen for `leave-after-seconds` (default 2); `dwell` is reported once per
//! stay, when it exceeds the zone's `dwell-seconds`.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: String,
    /// Vertices, normalised to the frame (0–1).
    pub polygon: Vec<[f64; 2]>,
    pub dwell_ns: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ZoneFile {
    #[serde(default)]
    units: Option<String>,
    #[serde(default, rename = "frame-size")]
    frame_size: Option<[f64; 2]>,
    #[serde(rename = "leave-after-seconds")]
    leave_after_seconds: Option<f64>,
    cameras: BTreeMap<String, Vec<ZoneEntry>>,
}

#[derive(Debug, Deserialize)]
struct ZoneEntry {
    name: String,
    polygon: Vec<[f64; 2]>,
    #[serde(rename = "dwell-seconds")]
    dwell_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZoneConfig {
    pub cameras: BTreeMap<String, Vec<Zone>>,
    pub leave_after_ns: u64,
}

/// Parses a zone file; every problem names the camera, zone and field.
pub fn parse(text: &str, origin: &str) -> Result<ZoneConfig, String> {
    let f: ZoneFile = serde_json::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
    let pixels = match f.units.as_deref().unwrap_or("normalized") {
        "normalized" | "normalised" => false,
        "pixels" => true,
        other => {
            return Err(format!(
                "{origin}: units must be \"normalized\" or \"pixels\", not \"{other}\""
            ));
        }
    };
    let size = match (pixels, f.frame_size) {
        (true, Some([w, h])) if w > 0.0 && h > 0.0 => [w, h],
        (true, _) => {
            return Err(format!(
                "{origin}: units \"pixels\" needs \"frame-size\": [width, height]"
            ));
        }
        (false, _) => [1.0, 1.0],
    };
    let mut cameras = BTreeMap::new();
    for (cam, entries) in f.cameras {
        let mut zones = Vec::new();
        for z in entries {
            let at = format!("{origin}: camera \"{cam}\", zone \"{}\"", z.name);
            if z.polygon.len() < 3 {
                return Err(format!(
                    "{at}: polygon needs at least 3 points, has {}",
                    z.polygon.len()
                ));
            }
            let poly: Vec<[f64; 2]> = z
                .polygon
                .iter()
                .map(|p| [p[0] / size[0], p[1] / size[1]])
                .collect();
            if poly
                .iter()
                .flatten()
                .any(|v| !v.is_finite() || *v < -0.001 || *v > 1.001)
            {
                return Err(format!("{at}: polygon points must lie inside the frame"));
            }
            if polygon_area(&poly).abs() < 1e-9 {
                return Err(format!("{at}: polygon has no area (collinear points)"));
            }
            if let Some(d) = z.dwell_seconds
                && !(d > 0.0 && d.is_finite())
            {
                return Err(format!("{at}: dwell-seconds must be positive"));
            }
            zones.push(Zone {
                name: z.name,
                polygon: poly,
                dwell_ns: z.dwell_seconds.map(|d| (d * 1e9) as u64),
            });
        }
        cameras.insert(cam, zones);
    }
    Ok(ZoneConfig {
        cameras,
        leave_after_ns: (f.leave_after_seconds.unwrap_or(2.0).max(0.0) * 1e9) as u64,
    })
}

fn polygon_area(p: &[[f64; 2]]) -> f64 {
    let n = p.len();
    (0..n)
        .map(|i| p[i][0] * p[(i + 1) % n][1] - p[(i + 1) % n][0] * p[i][1])
        .sum::<f64>()
        / 2.0
}

/// Point in polygon (even-odd rule).
pub fn contains(poly: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut inside = false;
    let n = poly.len();
    let mut j = n - 1;
    for i in 0..n {
        let (xi, yi) = (poly[i][0], poly[i][1]);
        let (xj, yj) = (poly[j][0], poly[j][1]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[derive(Debug, Clone, PartialEq)]
pub enum ZoneEvent {
    Enter {
        zone: String,
        subject: String,
        at_ns: u64,
    },
    Leave {
        zone: String,
        subject: String,
        at_ns: u64,
        stayed_ns: u64,
    },
    Dwell {
        zone: String,
        subject: String,
        at_ns: u64,
        stayed_ns: u64,
    },
}

#[derive(Debug, Clone)]
struct Stay {
    since: u64,
    last_inside: u64,
    dwell_reported: bool,
}

/// Who is in which zone of one camera.
#[derive(Debug, Clone)]
pub struct ZoneTracker {
    zones: Vec<Zone>,
    leave_after_ns: u64,
    stays: BTreeMap<(usize, String), Stay>,
}

impl ZoneTracker {
    pub fn new(zones: Vec<Zone>, leave_after_ns: u64) -> Self {
        ZoneTracker {
            zones,
            leave_after_ns,
            stays: BTreeMap::new(),
        }
    }

    /// One frame: the subjects seen and their (normalised) positions.
    pub fn update(&mut self, now: u64, seen: &[(String, f64, f64)]) -> Vec<ZoneEvent> {
        let mut ev = Vec::new();
        for (zi, z) in self.zones.iter().enumerate() {
            for (subject, x, y) in seen {
                let inside = contains(&z.polygon, *x, *y);
                let key = (zi, subject.clone());
                match (inside, self.stays.get_mut(&key)) {
                    (true, Some(s)) => s.last_inside = now,
                    (true, None) => {
                        self.stays.insert(
                            key,
                            Stay {
                                since: now,
                                last_inside: now,
                                dwell_reported: false,
                            },
                        );
                        ev.push(ZoneEvent::Enter {
                            zone: z.name.clone(),
                            subject: subject.clone(),
                            at_ns: now,
                        });
                    }
                    (false, Some(s)) => {
                        let stayed = now.saturating_sub(s.since);
                        self.stays.remove(&key);
                        ev.push(ZoneEvent::Leave {
                            zone: z.name.clone(),
                            subject: subject.clone(),
                            at_ns: now,
                            stayed_ns: stayed,
                        });
                    }
                    (false, None) => {}
                }
            }
        }
        // Not seen for a while: gone from the zone. Long stays: dwell.
        let zones = &self.zones;
        let leave_after = self.leave_after_ns;
        self.stays.retain(|(zi, subject), s| {
            let z = &zones[*zi];
            if now.saturating_sub(s.last_inside) >= leave_after
                && !seen.iter().any(|(su, _, _)| su == subject)
            {
                ev.push(ZoneEvent::Leave {
                    zone: z.name.clone(),
                    subject: subject.clone(),
                    at_ns: now,
                    stayed_ns: s.last_inside.saturating_sub(s.since),
                });
                return false;
            }
            if let Some(d) = z.dwell_ns
                && !s.dwell_reported
                && now.saturating_sub(s.since) >= d
            {
                s.dwell_reported = true;
                ev.push(ZoneEvent::Dwell {
                    zone: z.name.clone(),
                    subject: subject.clone(),
                    at_ns: now,
                    stayed_ns: now.saturating_sub(s.since),
                });
            }
            true
        });
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: u64 = 1_000_000_000;

    const FILE: &str = r#"{"cameras": {"door": [
        {"name": "entrance", "polygon": [[0.0,0.0],[0.5,0.0],[0.5,1.0],[0.0,1.0]], "dwell-seconds": 10},
        {"name": "till", "polygon": [[0.6,0.2],[0.9,0.2],[0.75,0.8]]}]}}"#;

    #[test]
    fn parses_and_validates_with_clear_messages() {
        let c = parse(FILE, "zones.json").unwrap();
        assert_eq!(c.cameras["door"].len(), 2);
        assert_eq!(c.cameras["door"][0].dwell_ns, Some(10 * S));
        let px = parse(r#"{"units":"pixels","frame-size":[640,480],"cameras":{"c":[{"name":"z","polygon":[[0,0],[320,0],[320,240]]}]}}"#, "p.json").unwrap();
        assert_eq!(px.cameras["c"][0].polygon[2], [0.5, 0.5]);
        let err = |t: &str| parse(t, "z.json").unwrap_err();
        assert!(
            err(r#"{"cameras":{"c":[{"name":"a","polygon":[[0,0],[1,1]]}]}}"#)
                .contains("camera \"c\", zone \"a\": polygon needs at least 3 points")
        );
        assert!(
            err(r#"{"cameras":{"c":[{"name":"a","polygon":[[0,0],[0.5,0.5],[1,1]]}]}}"#)
                .contains("no area")
        );
        assert!(
            err(r#"{"cameras":{"c":[{"name":"a","polygon":[[0,0],[2,0],[2,2]]}]}}"#)
                .contains("inside the frame")
        );
        assert!(err(r#"{"units":"pixels","cameras":{}}"#).contains("frame-size"));
        assert!(err(r#"{"cameras":{"c":[{"name":"a","polygon":[[0,0],[1,0],[1,1]],"dwell-seconds":-1}]}}"#).contains("dwell-seconds"));
        assert!(err("{not json").starts_with("z.json:"));
    }

    #[test]
    fn point_in_polygon() {
        let tri = [[0.6, 0.2], [0.9, 0.2], [0.75, 0.8]];
        assert!(contains(&tri, 0.75, 0.4));
        assert!(!contains(&tri, 0.62, 0.7));
    }

    #[test]
    fn scripted_path_enter_dwell_move_leave() {
        let c = parse(FILE, "zones.json").unwrap();
        let mut t = ZoneTracker::new(c.cameras["door"].clone(), c.leave_after_ns);
        let p = |x: f64| vec![("ann".to_string(), x, 0.5)];
        // Walks into the entrance at 0 s, stays 12 s (dwell at 10 s), walks to the till.
        assert_eq!(
            t.update(0, &p(0.2)),
            vec![ZoneEvent::Enter {
                zone: "entrance".into(),
                subject: "ann".into(),
                at_ns: 0
            }]
        );
        for s in 1..10 {
            assert!(t.update(s * S, &p(0.25)).is_empty());
        }
        assert_eq!(
            t.update(10 * S, &p(0.3)),
            vec![ZoneEvent::Dwell {
                zone: "entrance".into(),
                subject: "ann".into(),
                at_ns: 10 * S,
                stayed_ns: 10 * S
            }]
        );
        assert!(t.update(11 * S, &p(0.3)).is_empty(), "dwell once per stay");
        let ev = t.update(12 * S, &p(0.75));
        assert_eq!(
            ev,
            vec![
                ZoneEvent::Leave {
                    zone: "entrance".into(),
                    subject: "ann".into(),
                    at_ns: 12 * S,
                    stayed_ns: 12 * S
                },
                ZoneEvent::Enter {
                    zone: "till".into(),
                    subject: "ann".into(),
                    at_ns: 12 * S
                },
            ]
        );
        // Out of view: leaves the till after leave-after-seconds (2 s).
        assert!(t.update(13 * S, &[]).is_empty());
        assert_eq!(
            t.update(14 * S, &[]),
            vec![ZoneEvent::Leave {
                zone: "till".into(),
                subject: "ann".into(),
                at_ns: 14 * S,
                stayed_ns: 0
            }]
        );
    }
}
