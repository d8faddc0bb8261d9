//! Events as history rows: which table an event goes to and with what values. Pure: no
//! database here. Events of other kinds (per-frame detections, rosters, …) have no rows.

use super::db::Val;
use crate::events::Event;
use serde_json::Value;

/// A history table and its columns, in the order of a row's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Sightings,
    Presence,
    Alerts,
    AlertAcks,
    ZoneEvents,
    TrajectoryPoints,
    CameraEvents,
    Embeddings,
}

impl Table {
    pub const ALL: [Table; 8] = [
        Table::Sightings,
        Table::Presence,
        Table::Alerts,
        Table::AlertAcks,
        Table::ZoneEvents,
        Table::TrajectoryPoints,
        Table::CameraEvents,
        Table::Embeddings,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Sightings => "sightings",
            Table::Presence => "presence",
            Table::Alerts => "alerts",
            Table::AlertAcks => "alert_acks",
            Table::ZoneEvents => "zone_events",
            Table::TrajectoryPoints => "trajectory_points",
            Table::CameraEvents => "camera_events",
            Table::Embeddings => "embeddings",
        }
    }

    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Sightings => &[
                "stream",
                "seq",
                "t_ms",
                "node",
                "camera",
                "track",
                "label",
                "identity",
                "unknown_id",
                "similarity",
                "x",
                "y",
                "width",
                "height",
            ],
            Table::Presence => &[
                "stream",
                "seq",
                "t_ms",
                "node",
                "grp",
                "event",
                "identity",
                "label",
                "from_state",
                "to_state",
                "camera",
            ],
            Table::Alerts => &[
                "stream",
                "seq",
                "t_ms",
                "node",
                "grp",
                "event",
                "identity",
                "label",
                "unknown_id",
                "camera",
                "cameras",
                "absent_seconds",
            ],
            Table::AlertAcks => &[
                "stream",
                "seq",
                "t_ms",
                "node",
                "alert_t_ms",
                "grp",
                "camera",
                "event",
                "subject",
                "by_name",
            ],
            Table::ZoneEvents => &[
                "stream",
                "seq",
                "t_ms",
                "node",
                "camera",
                "grp",
                "zone",
                "subject",
                "event",
                "stayed_seconds",
            ],
            Table::TrajectoryPoints => &[
                "stream",
                "seq",
                "k",
                "t_ms",
                "node",
                "camera",
                "map",
                "track",
                "global_id",
                "x",
                "y",
            ],
            Table::CameraEvents => &["stream", "seq", "t_ms", "node", "camera", "grp", "event"],
            Table::Embeddings => &[
                "stream",
                "seq",
                "t_ms",
                "node",
                "camera",
                "track",
                "label",
                "identity",
                "unknown_id",
                "model",
                "vector",
            ],
        }
    }

    /// The retention kind of the table (`--history-retention KIND=DAYS`).
    pub fn kind(self) -> &'static str {
        match self {
            Table::Sightings => "sightings",
            Table::Presence => "presence",
            Table::Alerts | Table::AlertAcks => "alerts",
            Table::ZoneEvents => "zones",
            Table::TrajectoryPoints => "trajectories",
            Table::CameraEvents => "cameras",
            Table::Embeddings => "embeddings",
        }
    }
}

/// One row to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub table: Table,
    pub vals: Vec<Val>,
}

/// The event kinds that have history rows (what the runner sends to the history sink).
pub const KINDS: [&str; 6] = [
    "facematch",
    "presence",
    "presence-alert",
    "alert-ack",
    "reidmap-trajectory",
    EMBEDDING_KIND,
];

/// The runner's event that carries a decision's embedding to the history only (with
/// `--history-embeddings`); never published anywhere else.
pub const EMBEDDING_KIND: &str = "facematch-embedding";

/// An embedding as stored and posted: the L2-normalised vector quantised to int8
/// (round(v·127)), base64 (standard alphabet, padded).
pub fn encode_embedding(v: &[f32]) -> String {
    use base64::Engine;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let q: Vec<u8> = v
        .iter()
        .map(|x| ((x / norm) * 127.0).round().clamp(-127.0, 127.0) as i8 as u8)
        .collect();
    base64::engine::general_purpose::STANDARD.encode(q)
}

/// Takes the `embedding` out of a facematch event (which then goes on without it) and
/// returns it as the history's own [`EMBEDDING_KIND`] event: the decision's track, label,
/// identity, unknown id and model, and the embedding. None for other events.
pub fn take_embedding(ev: &mut Event) -> Option<Event> {
    if ev.kind != "facematch" {
        return None;
    }
    let e = ev.data.as_object_mut()?.remove("embedding")?;
    let mut data = serde_json::Map::new();
    for k in ["track-id", "label", "identity", "unknown-id", "model"] {
        if let Some(v) = ev.data.get(k) {
            data.insert(k.into(), v.clone());
        }
    }
    data.insert("embedding".into(), e);
    Some(Event::new(
        EMBEDDING_KIND,
        &ev.source,
        &ev.camera,
        ev.running_time_ns,
        ev.utc.clone(),
        Value::Object(data),
    ))
}

/// The vector of [`encode_embedding`], L2-normalised again; None if it is not base64.
pub fn decode_embedding(s: &str) -> Option<Vec<f32>> {
    use base64::Engine;
    let q = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    let v: Vec<f32> = q.iter().map(|b| *b as i8 as f32).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm > 0.0).then(|| v.iter().map(|x| x / norm).collect())
}

/// RFC 3339 to Unix milliseconds.
pub fn utc_ms(utc: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(utc)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn text(d: &Value, k: &str) -> Val {
    match d.get(k).and_then(Value::as_str) {
        Some(s) => Val::T(s.to_string()),
        None => Val::Null,
    }
}

/// A string field that is empty when absent ("" means none in the bus messages).
fn nonempty(d: &Value, k: &str) -> Val {
    match d.get(k).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Val::T(s.to_string()),
        _ => Val::Null,
    }
}

fn req_text(d: &Value, k: &str) -> Val {
    Val::T(d.get(k).and_then(Value::as_str).unwrap_or("").to_string())
}

fn float(d: &Value, k: &str) -> Val {
    d.get(k).and_then(Value::as_f64).map_or(Val::Null, Val::F)
}

fn int(d: &Value, k: &str) -> Option<i64> {
    d.get(k)
        .and_then(|v| v.as_i64().or_else(|| v.as_u64().map(|u| u as i64)))
}

/// The rows of one event delivered as `seq` of `stream` by node `node`. An event without a
/// readable time, or with fields missing, has no rows (Err says why, for a warning).
pub fn rows_of(stream: &str, seq: u64, node: &str, ev: &Event) -> Result<Vec<Row>, String> {
    let d = &ev.data;
    let t_ms = utc_ms(&ev.utc).ok_or_else(|| format!("{} event: bad utc {:?}", ev.kind, ev.utc))?;
    let head = || {
        vec![
            Val::T(stream.to_string()),
            Val::I(seq as i64),
            Val::I(t_ms),
            Val::T(node.to_string()),
        ]
    };
    let camera = Val::T(ev.camera.clone());
    let event = d.get("event").and_then(Value::as_str).unwrap_or("");
    let row = |table: Table, more: Vec<Val>| {
        let mut vals = head();
        vals.extend(more);
        Row { table, vals }
    };
    Ok(match ev.kind.as_str() {
        "facematch" => {
            let track = int(d, "track-id").ok_or("facematch event without track-id")?;
            vec![row(
                Table::Sightings,
                vec![
                    camera,
                    Val::I(track),
                    req_text(d, "label"),
                    nonempty(d, "identity"),
                    nonempty(d, "unknown-id"),
                    float(d, "similarity"),
                    float(d, "x"),
                    float(d, "y"),
                    float(d, "width"),
                    float(d, "height"),
                ],
            )]
        }
        "presence" => match event {
            "arrived" | "out-of-view" | "back-in-view" | "absent" | "re-entered" | "changed" => {
                vec![row(
                    Table::Presence,
                    vec![
                        req_text(d, "group"),
                        Val::T(event.to_string()),
                        req_text(d, "identity"),
                        req_text(d, "label"),
                        req_text(d, "from"),
                        req_text(d, "to"),
                        camera,
                    ],
                )]
            }
            "zone-enter" | "zone-leave" | "zone-dwell" => vec![row(
                Table::ZoneEvents,
                vec![
                    camera,
                    text(d, "group"),
                    req_text(d, "zone"),
                    req_text(d, "subject"),
                    Val::T(event.to_string()),
                    float(d, "stayed-seconds"),
                ],
            )],
            "camera-offline" | "camera-online" | "group-offline" | "group-online" => vec![row(
                Table::CameraEvents,
                vec![camera, text(d, "group"), Val::T(event.to_string())],
            )],
            _ => Vec::new(),
        },
        EMBEDDING_KIND => {
            let track = int(d, "track-id").ok_or("embedding without track-id")?;
            let vector = d
                .get("embedding")
                .and_then(Value::as_str)
                .filter(|e| decode_embedding(e).is_some())
                .ok_or("embedding event without a base64 embedding")?;
            vec![row(
                Table::Embeddings,
                vec![
                    camera,
                    Val::I(track),
                    req_text(d, "label"),
                    nonempty(d, "identity"),
                    nonempty(d, "unknown-id"),
                    req_text(d, "model"),
                    Val::T(vector.to_string()),
                ],
            )]
        }
        "presence-alert" => vec![row(
            Table::Alerts,
            vec![
                req_text(d, "group"),
                Val::T(event.to_string()),
                nonempty(d, "identity"),
                nonempty(d, "label"),
                nonempty(d, "unknown-id"),
                camera,
                nonempty(d, "cameras"),
                float(d, "absent-seconds"),
            ],
        )],
        "alert-ack" => {
            let alert_ms = d
                .get("alert-utc")
                .and_then(Value::as_str)
                .and_then(utc_ms)
                .ok_or("alert-ack without alert-utc")?;
            vec![row(
                Table::AlertAcks,
                vec![
                    Val::I(alert_ms),
                    req_text(d, "group"),
                    camera,
                    Val::T(event.to_string()),
                    match (nonempty(d, "identity"), nonempty(d, "unknown-id")) {
                        (Val::T(s), _) | (Val::Null, Val::T(s)) => Val::T(s),
                        _ => Val::T(String::new()),
                    },
                    req_text(d, "by"),
                ],
            )]
        }
        "reidmap-trajectory" => {
            let start_rt = int(d, "start-running-time").ok_or("trajectory without start time")?;
            let start_ms = d
                .get("start-utc")
                .and_then(Value::as_str)
                .and_then(utc_ms)
                .ok_or("trajectory without start-utc")?;
            let track = int(d, "track-id").ok_or("trajectory without track-id")?;
            let gid = int(d, "global-id").ok_or("trajectory without global-id")?;
            let map = req_text(d, "map");
            let points = d.get("points").and_then(Value::as_array);
            points
                .into_iter()
                .flatten()
                .enumerate()
                .filter_map(|(k, p)| {
                    let rt = int(p, "running-time")?;
                    let (x, y) = (p.get("x")?.as_f64()?, p.get("y")?.as_f64()?);
                    let t = start_ms + (rt - start_rt).div_euclid(1_000_000);
                    Some(Row {
                        table: Table::TrajectoryPoints,
                        vals: vec![
                            Val::T(stream.to_string()),
                            Val::I(seq as i64),
                            Val::I(k as i64),
                            Val::I(t),
                            Val::T(node.to_string()),
                            camera.clone(),
                            map.clone(),
                            Val::I(track),
                            Val::I(gid),
                            Val::F(x),
                            Val::F(y),
                        ],
                    })
                })
                .collect()
        }
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(kind: &str, camera: &str, data: Value) -> Event {
        Event::new(
            kind,
            "el",
            camera,
            None,
            "2026-12-03T10:00:00.250Z".into(),
            data,
        )
    }

    #[test]
    fn every_row_has_a_value_per_column() {
        let evs = [
            ev(
                "facematch",
                "c1",
                json!({"track-id": 3, "label": "Ada", "identity": "ada", "similarity": 0.61,
                       "unknown-id": "", "x": 10, "y": 20, "width": 30, "height": 40}),
            ),
            ev(
                "presence",
                "c1",
                json!({"group": "g", "event": "arrived", "identity": "ada", "label": "Ada",
                       "from": "not-seen", "to": "present"}),
            ),
            ev(
                "presence",
                "c1",
                json!({"group": "g", "event": "zone-leave", "zone": "till", "subject": "ada",
                       "stayed-seconds": 4.5}),
            ),
            ev(
                "presence",
                "c2",
                json!({"group": "g", "event": "camera-offline"}),
            ),
            ev(
                "presence-alert",
                "c1",
                json!({"group": "g", "event": "unknown", "unknown-id": "u-1", "cameras": "c1,c2"}),
            ),
            ev(
                "alert-ack",
                "c1",
                json!({"alert-id": "4", "alert-utc": "2026-12-03T09:59:00.000Z", "group": "g",
                       "event": "unknown", "by": "alice"}),
            ),
            ev(
                "reidmap-trajectory",
                "c1",
                json!({"map": "floor", "track-id": 2, "global-id": 7,
                       "start-running-time": 1_000_000_000u64, "start-utc": "2026-12-03T10:00:00.000Z",
                       "points": [{"running-time": 1_000_000_000u64, "x": 1.0, "y": 2.0},
                                  {"running-time": 1_500_000_000u64, "x": 1.5, "y": 2.5}]}),
            ),
        ];
        let mut tables = Vec::new();
        for (i, e) in evs.iter().enumerate() {
            for r in rows_of("n-runner-1", i as u64, "n", e).unwrap() {
                assert_eq!(r.vals.len(), r.table.columns().len(), "{:?}", r.table);
                tables.push(r.table);
            }
        }
        assert_eq!(
            tables,
            [
                Table::Sightings,
                Table::Presence,
                Table::ZoneEvents,
                Table::CameraEvents,
                Table::Alerts,
                Table::AlertAcks,
                Table::TrajectoryPoints,
                Table::TrajectoryPoints
            ]
        );
    }

    #[test]
    fn trajectory_points_are_timed_from_the_start_utc_and_running_times() {
        let e = ev(
            "reidmap-trajectory",
            "c1",
            json!({"map": "floor", "track-id": 2, "global-id": 7,
                   "start-running-time": 2_000_000_000u64, "start-utc": "2026-12-03T10:00:00.000Z",
                   "points": [{"running-time": 2_000_000_000u64, "x": 1.0, "y": 2.0},
                              {"running-time": 2_250_000_000u64, "x": 1.5, "y": 2.5}]}),
        );
        let rows = rows_of("s", 5, "n", &e).unwrap();
        let t0 = utc_ms("2026-12-03T10:00:00.000Z").unwrap();
        assert_eq!(rows[0].vals[3], Val::I(t0));
        assert_eq!(rows[1].vals[3], Val::I(t0 + 250));
        assert_eq!(rows[1].vals[2], Val::I(1));
    }

    #[test]
    fn embeddings_round_trip_through_int8_within_quantisation() {
        let v: Vec<f32> = (0..128)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let s = encode_embedding(&v);
        assert_eq!(s.len(), 172, "128 bytes in base64");
        let back = decode_embedding(&s).unwrap();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cos: f32 = v.iter().zip(&back).map(|(a, b)| a / norm * b).sum();
        assert!(cos > 0.9995, "cosine to the original {cos}");
        assert!(decode_embedding("not base64!").is_none());
        let e = ev(
            EMBEDDING_KIND,
            "c1",
            json!({"track-id": 4, "label": "unknown", "unknown-id": "u-2", "model": "m",
                   "embedding": s}),
        );
        let r = &rows_of("s", 1, "n", &e).unwrap()[0];
        assert_eq!(r.table, Table::Embeddings);
        assert_eq!(r.vals.len(), Table::Embeddings.columns().len());
    }

    #[test]
    fn the_embedding_leaves_the_facematch_event_for_an_event_of_its_own() {
        let mut fm = ev(
            "facematch",
            "c1",
            json!({"track-id": 4, "label": "unknown", "identity": "", "unknown-id": "u-2",
                   "similarity": 0.3, "model": "m", "x": 1, "embedding": "AAE="}),
        );
        let e = take_embedding(&mut fm).unwrap();
        assert!(fm.data.get("embedding").is_none());
        assert_eq!(fm.data["x"], 1);
        assert_eq!(e.kind, EMBEDDING_KIND);
        assert_eq!(e.utc, fm.utc);
        assert_eq!(
            e.data,
            json!({"track-id": 4, "label": "unknown", "identity": "", "unknown-id": "u-2",
                   "model": "m", "embedding": "AAE="})
        );
        assert!(take_embedding(&mut fm).is_none(), "taken once");
        let mut other = ev("presence", "c1", json!({"embedding": "AAE="}));
        assert!(take_embedding(&mut other).is_none());
        assert!(
            other.data.get("embedding").is_some(),
            "other kinds untouched"
        );
    }

    #[test]
    fn strangers_have_no_identity_and_other_kinds_no_rows() {
        let e = ev(
            "facematch",
            "c1",
            json!({"track-id": 3, "label": "unknown", "identity": "", "similarity": 0.2,
                   "unknown-id": "u-9"}),
        );
        let r = &rows_of("s", 1, "n", &e).unwrap()[0];
        assert_eq!(r.vals[7], Val::Null);
        assert_eq!(r.vals[8], Val::T("u-9".into()));
        assert_eq!(r.vals[10], Val::Null, "no box in older events");
        let roster = ev("presence", "c1", json!({"group": "g", "event": "roster"}));
        assert!(rows_of("s", 2, "n", &roster).unwrap().is_empty());
        let det = ev("facedetect", "c1", json!({"faces": []}));
        assert!(rows_of("s", 3, "n", &det).unwrap().is_empty());
        let mut bad = det.clone();
        bad.kind = "facematch".into();
        bad.utc = "yesterday".into();
        assert!(rows_of("s", 4, "n", &bad).unwrap_err().contains("utc"));
    }
}
