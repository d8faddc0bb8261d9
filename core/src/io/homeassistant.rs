//! Home Assistant MQTT discovery from Sightline events (pure: events in, MQTT messages out).
//!
//! One device per node (`sightline_<node>`), available while the node's MQTT link is up (its
//! availability topic, `online`/`offline` by the last will). Entities:
//! - per presence group and roster person, a `binary_sensor` (device class `presence`):
//!   `ON` while present (grace counts as present), `OFF` when absent or not seen yet;
//! - per camera, a `binary_sensor` (device class `connectivity`) and a `sensor` with the
//!   people (faces or persons) in view in its last analysed frame;
//! - one `event` entity for alerts, event types `absent` and `unknown`.
//!
//! Discovery configs and states are retained; [`HomeAssistant::on_connect`] gives all of them
//! again for every (re)connection, so no entity is left at a stale value. A Frigate-shaped face
//! update (`type: face`) is sent per recognition decision for tools written for Frigate.

use crate::events::Event;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One MQTT message to publish (QoS 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Person {
    label: String,
    present: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Camera {
    online: bool,
    people: Option<u64>,
}

pub struct HomeAssistant {
    /// `<topic prefix>/<node>`.
    base: String,
    discovery: String,
    node: String,
    /// (group, identity) → person.
    people: BTreeMap<(String, String), Person>,
    cameras: BTreeMap<String, Camera>,
}

/// An id for Home Assistant's topics and unique ids: `[A-Za-z0-9_-]` only.
pub fn object_id(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

fn str_field<'a>(ev: &'a Event, name: &str) -> Option<&'a str> {
    ev.data.get(name).and_then(Value::as_str)
}

impl HomeAssistant {
    /// `topic_prefix/node/…` for states, `discovery_prefix/…` for configs.
    pub fn new(topic_prefix: &str, discovery_prefix: &str, node: &str) -> Self {
        HomeAssistant {
            base: format!("{topic_prefix}/{}", crate::mqtt::topic_level(node)),
            discovery: discovery_prefix.to_string(),
            node: node.to_string(),
            people: BTreeMap::new(),
            cameras: BTreeMap::new(),
        }
    }

    fn device_id(&self) -> String {
        format!("sightline_{}", object_id(&self.node))
    }

    fn common(&self, name: &str, unique: &str) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), json!(name));
        m.insert(
            "unique_id".into(),
            json!(format!("{}_{}", self.device_id(), unique)),
        );
        m.insert(
            "availability_topic".into(),
            json!(format!("{}/availability", self.base)),
        );
        m.insert("payload_available".into(), json!("online"));
        m.insert("payload_not_available".into(), json!("offline"));
        m.insert(
            "device".into(),
            json!({
                "identifiers": [self.device_id()],
                "name": format!("Sightline {}", self.node),
                "manufacturer": "Sightline",
                "model": "Sightline node",
            }),
        );
        m
    }

    fn config(
        &self,
        component: &str,
        object: &str,
        body: serde_json::Map<String, Value>,
    ) -> Message {
        Message {
            topic: format!(
                "{}/{component}/{}/{}/config",
                self.discovery,
                self.device_id(),
                object
            ),
            payload: Value::Object(body).to_string(),
            retain: true,
        }
    }

    fn person_state_topic(&self, group: &str, identity: &str) -> String {
        format!(
            "{}/presence/{}/{}",
            self.base,
            object_id(group),
            object_id(identity)
        )
    }

    fn person_messages(&self, group: &str, identity: &str, p: &Person) -> Vec<Message> {
        let object = format!("{}_{}", object_id(group), object_id(identity));
        let state = self.person_state_topic(group, identity);
        let mut c = self.common(
            &format!("{} at {group}", p.label),
            &format!("presence_{object}"),
        );
        c.insert("device_class".into(), json!("presence"));
        c.insert("state_topic".into(), json!(state));
        c.insert("payload_on".into(), json!("ON"));
        c.insert("payload_off".into(), json!("OFF"));
        vec![
            self.config("binary_sensor", &format!("presence_{object}"), c),
            Message {
                topic: state,
                payload: if p.present { "ON" } else { "OFF" }.into(),
                retain: true,
            },
        ]
    }

    fn camera_messages(&self, name: &str, cam: &Camera) -> Vec<Message> {
        let object = object_id(name);
        let link = format!("{}/camera/{object}/connectivity", self.base);
        let people = format!("{}/camera/{object}/people", self.base);
        let mut c = self.common(&format!("Camera {name}"), &format!("camera_{object}"));
        c.insert("device_class".into(), json!("connectivity"));
        c.insert("state_topic".into(), json!(link));
        c.insert("payload_on".into(), json!("ON"));
        c.insert("payload_off".into(), json!("OFF"));
        let mut s = self.common(
            &format!("People in view of {name}"),
            &format!("people_{object}"),
        );
        s.insert("state_topic".into(), json!(people));
        s.insert("state_class".into(), json!("measurement"));
        s.insert("unit_of_measurement".into(), json!("people"));
        let mut out = vec![
            self.config("binary_sensor", &format!("camera_{object}"), c),
            self.config("sensor", &format!("people_{object}"), s),
            Message {
                topic: link,
                payload: if cam.online { "ON" } else { "OFF" }.into(),
                retain: true,
            },
        ];
        if let Some(n) = cam.people {
            out.push(Message {
                topic: people,
                payload: n.to_string(),
                retain: true,
            });
        }
        out
    }

    fn alerts_topic(&self) -> String {
        format!("{}/alerts", self.base)
    }

    fn alerts_config(&self) -> Message {
        let mut c = self.common("Alert", "alerts");
        c.insert("state_topic".into(), json!(self.alerts_topic()));
        c.insert("event_types".into(), json!(["absent", "unknown"]));
        self.config("event", "alerts", c)
    }

    /// Everything retained, for a new connection: every config and state.
    pub fn on_connect(&self) -> Vec<Message> {
        let mut out = vec![self.alerts_config()];
        for ((g, i), p) in &self.people {
            out.extend(self.person_messages(g, i, p));
        }
        for (name, cam) in &self.cameras {
            out.extend(self.camera_messages(name, cam));
        }
        out
    }

    /// What `ev` changes (configs of new entities, states, the alert event).
    pub fn on_event(&mut self, ev: &Event) -> Vec<Message> {
        let mut out = Vec::new();
        if !ev.camera.is_empty() {
            out.extend(self.camera_seen(ev));
        }
        match ev.kind.as_str() {
            "presence" => out.extend(self.presence(ev)),
            "presence-alert" => {
                let mut payload = ev.data.clone();
                if let Some(m) = payload.as_object_mut() {
                    let kind = m
                        .get("event")
                        .and_then(Value::as_str)
                        .unwrap_or("absent")
                        .to_string();
                    m.insert("event_type".into(), json!(kind));
                }
                out.push(Message {
                    topic: self.alerts_topic(),
                    payload: payload.to_string(),
                    retain: false,
                });
            }
            "facematch" => {
                let label = str_field(ev, "label").unwrap_or("unknown");
                let name = if label == "unknown" || label.is_empty() {
                    Value::Null
                } else {
                    json!(label)
                };
                out.push(Message {
                    topic: format!("{}/tracked_object_update", self.base),
                    payload: json!({
                        "type": "face",
                        "camera": ev.camera,
                        "id": ev.data.get("track-id").cloned().unwrap_or(Value::Null),
                        "name": name,
                        "score": ev.data.get("similarity").cloned().unwrap_or(Value::Null),
                        "timestamp": ev.utc,
                    })
                    .to_string(),
                    retain: false,
                });
            }
            _ => {}
        }
        out
    }

    fn camera_seen(&mut self, ev: &Event) -> Vec<Message> {
        let offline = ev.kind == "presence" && str_field(ev, "event") == Some("camera-offline");
        // Camera health events name the camera concerned in `data.camera`.
        let name = match str_field(ev, "event") {
            Some("camera-offline" | "camera-online") => {
                str_field(ev, "camera").unwrap_or(&ev.camera).to_string()
            }
            _ => ev.camera.clone(),
        };
        let people = match ev.kind.as_str() {
            "facedetect" => ev
                .data
                .get("faces")
                .and_then(Value::as_array)
                .map(|a| a.len() as u64),
            "persondetect" => ev
                .data
                .get("persons")
                .and_then(Value::as_array)
                .map(|a| a.len() as u64),
            _ => None,
        };
        let new = !self.cameras.contains_key(&name);
        let cam = self.cameras.entry(name.clone()).or_default();
        let before = cam.clone();
        cam.online = !offline;
        if people.is_some() {
            cam.people = people;
        }
        let after = cam.clone();
        if new {
            return self.camera_messages(&name, &after);
        }
        let object = object_id(&name);
        let mut out = Vec::new();
        if before.online != after.online {
            out.push(Message {
                topic: format!("{}/camera/{object}/connectivity", self.base),
                payload: if after.online { "ON" } else { "OFF" }.into(),
                retain: true,
            });
        }
        if before.people != after.people
            && let Some(n) = after.people
        {
            out.push(Message {
                topic: format!("{}/camera/{object}/people", self.base),
                payload: n.to_string(),
                retain: true,
            });
        }
        out
    }

    fn presence(&mut self, ev: &Event) -> Vec<Message> {
        let group = str_field(ev, "group").unwrap_or("").to_string();
        // (identity, label, present) the event tells.
        let mut told: Vec<(String, String, bool)> = Vec::new();
        match str_field(ev, "event") {
            // The roster at start: every expected person, with the state the group holds.
            Some("roster") => {
                let ids = ev.data.get("identities").and_then(Value::as_array);
                let labels = ev.data.get("labels").and_then(Value::as_array);
                let states = ev.data.get("states").and_then(Value::as_array);
                for (k, id) in ids.into_iter().flatten().enumerate() {
                    let Some(id) = id.as_str() else { continue };
                    let label = labels
                        .and_then(|l| l.get(k))
                        .and_then(Value::as_str)
                        .unwrap_or(id);
                    let state = states.and_then(|s| s.get(k)).and_then(Value::as_str);
                    told.push((
                        id.to_string(),
                        label.to_string(),
                        matches!(state, Some("present" | "grace")),
                    ));
                }
            }
            Some(_) => {
                if let (Some(id), Some(to)) = (str_field(ev, "identity"), str_field(ev, "to")) {
                    let label = str_field(ev, "label").unwrap_or(id);
                    told.push((
                        id.to_string(),
                        label.to_string(),
                        matches!(to, "present" | "grace"),
                    ));
                }
            }
            None => {}
        }
        let mut out = Vec::new();
        for (id, label, present) in told {
            let key = (group.clone(), id);
            let p = Person { label, present };
            let old = self.people.insert(key.clone(), p.clone());
            // Messages only for a change (most events repeat a state).
            match old {
                Some(o) if o == p => {}
                // Same entity: only its state.
                Some(o) if o.label == p.label => out.extend(
                    self.person_messages(&key.0, &key.1, &p)
                        .into_iter()
                        .filter(|m| !m.topic.ends_with("/config")),
                ),
                // New, or renamed: its config too.
                _ => out.extend(self.person_messages(&key.0, &key.1, &p)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, camera: &str, data: Value) -> Event {
        Event::new(
            kind,
            "presence0",
            camera,
            None,
            "2026-12-02T08:00:00.000Z".into(),
            data,
        )
    }

    fn by_topic(m: &[Message], t: &str) -> Option<Message> {
        m.iter().find(|m| m.topic == t).cloned()
    }

    #[test]
    fn roster_then_arrival_grace_and_absence() {
        let mut ha = HomeAssistant::new("sightline", "homeassistant", "site-a");
        let out = ha.on_event(&ev(
            "presence",
            "door",
            json!({"group": "outlet 7", "event": "roster", "identities": ["ann", "bob"],
                   "labels": ["Ann", "Bob"], "states": ["not-seen", "present"]}),
        ));
        let cfg = by_topic(
            &out,
            "homeassistant/binary_sensor/sightline_site-a/presence_outlet_7_ann/config",
        )
        .expect("ann's config");
        assert!(cfg.retain);
        let c: Value = serde_json::from_str(&cfg.payload).unwrap();
        assert_eq!(c["device_class"], "presence");
        assert_eq!(c["name"], "Ann at outlet 7");
        assert_eq!(c["state_topic"], "sightline/site-a/presence/outlet_7/ann");
        assert_eq!(c["availability_topic"], "sightline/site-a/availability");
        assert_eq!(c["device"]["identifiers"][0], "sightline_site-a");
        let state = |out: &[Message], who: &str| {
            by_topic(out, &format!("sightline/site-a/presence/outlet_7/{who}")).map(|m| m.payload)
        };
        assert_eq!(state(&out, "ann").as_deref(), Some("OFF"));
        assert_eq!(state(&out, "bob").as_deref(), Some("ON"));
        // The camera of the event got its entities too.
        assert!(
            by_topic(
                &out,
                "homeassistant/binary_sensor/sightline_site-a/camera_door/config"
            )
            .is_some()
        );
        let step = |ha: &mut HomeAssistant, to: &str| {
            ha.on_event(&ev(
                "presence",
                "door",
                json!({"group": "outlet 7", "event": "x", "identity": "ann", "label": "Ann", "to": to}),
            ))
        };
        let out = step(&mut ha, "present");
        assert_eq!(state(&out, "ann").as_deref(), Some("ON"));
        assert!(out.iter().all(|m| !m.topic.ends_with("/config")), "{out:?}");
        // Grace is present: nothing to send.
        assert!(step(&mut ha, "grace").is_empty());
        assert_eq!(
            state(&step(&mut ha, "absent"), "ann").as_deref(),
            Some("OFF")
        );
        // A reconnection gives every config and state again.
        let all = ha.on_connect();
        assert_eq!(state(&all, "ann").as_deref(), Some("OFF"));
        assert_eq!(state(&all, "bob").as_deref(), Some("ON"));
        assert!(all.iter().filter(|m| m.topic.ends_with("/config")).count() >= 5);
        assert!(all.iter().all(|m| m.retain));
    }

    #[test]
    fn cameras_alerts_and_frigate_face_updates() {
        let mut ha = HomeAssistant::new("sightline", "homeassistant", "n");
        ha.on_event(&ev("facedetect", "door", json!({"faces": [{}, {}]})));
        let out = ha.on_event(&ev("facedetect", "door", json!({"faces": [{}]})));
        assert_eq!(
            out,
            vec![Message {
                topic: "sightline/n/camera/door/people".into(),
                payload: "1".into(),
                retain: true
            }]
        );
        assert!(
            ha.on_event(&ev("facedetect", "door", json!({"faces": [{}]})))
                .is_empty()
        );
        let out = ha.on_event(&ev(
            "presence",
            "hall",
            json!({"group": "g", "event": "camera-offline", "camera": "door"}),
        ));
        assert_eq!(
            by_topic(&out, "sightline/n/camera/door/connectivity")
                .map(|m| m.payload)
                .as_deref(),
            Some("OFF")
        );
        let out = ha.on_event(&ev(
            "presence-alert",
            "door",
            json!({"group": "g", "event": "unknown", "cameras": "door,hall", "camera-count": 2}),
        ));
        let alert = by_topic(&out, "sightline/n/alerts").unwrap();
        assert!(!alert.retain);
        let a: Value = serde_json::from_str(&alert.payload).unwrap();
        assert_eq!(a["event_type"], "unknown");
        let out = ha.on_event(&ev(
            "facematch",
            "door",
            json!({"track-id": 4, "label": "unknown", "similarity": 0.2}),
        ));
        let f: Value = serde_json::from_str(
            &by_topic(&out, "sightline/n/tracked_object_update")
                .unwrap()
                .payload,
        )
        .unwrap();
        assert_eq!(
            (f["type"].clone(), f["name"].clone(), f["id"].clone()),
            (json!("face"), Value::Null, json!(4))
        );
    }
}
