//! The Telegram sink: one human-readable message per alert (`presence-alert`) through the Bot
//! API's `sendMessage` (`<api>/bot<TOKEN>/sendMessage`, JSON `{chat_id, text}`); every other
//! event is skipped. The token is part of the request path only: it is in no message, error
//! or log (errors are scrubbed of it).

use crate::delivery::{ALERT_KIND, DeliverEvent};
use crate::events::Event;

pub struct Telegram {
    token: String,
    chat: String,
    api: String,
    http: ureq::Agent,
}

impl Telegram {
    pub fn new(token: &str, chat: &str, api: &str, http: ureq::Agent) -> Self {
        Telegram {
            token: token.to_string(),
            chat: chat.to_string(),
            api: api.to_string(),
            http,
        }
    }
}

fn text_field<'a>(ev: &'a Event, name: &str) -> Option<&'a str> {
    ev.data
        .get(name)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

/// The message for an alert; None for an event that is not one.
pub fn alert_text(ev: &Event) -> Option<String> {
    if ev.kind != ALERT_KIND {
        return None;
    }
    let group = text_field(ev, "group").unwrap_or("?");
    let when = text_field(ev, "utc-time").unwrap_or(&ev.utc);
    match text_field(ev, "event") {
        Some("unknown") => {
            let cameras = text_field(ev, "cameras").unwrap_or("?");
            let n = ev
                .data
                .get("camera-count")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            Some(format!(
                "Unknown person at {group}: the same stranger was confirmed by {n} cameras ({cameras}) at {when}."
            ))
        }
        _ => {
            let who = text_field(ev, "label")
                .or(text_field(ev, "identity"))
                .unwrap_or("someone");
            let never = ev
                .data
                .get("never-seen")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if never {
                return Some(format!(
                    "{who} is absent from {group}: expected and not seen at all (alert at {when})."
                ));
            }
            let secs = ev
                .data
                .get("absent-seconds")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            let camera = text_field(ev, "camera").unwrap_or(&ev.camera);
            Some(format!(
                "{who} is absent from {group}: not seen for {} (alert at {when}), last seen on camera {camera}.",
                duration_text(secs)
            ))
        }
    }
}

fn duration_text(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

impl DeliverEvent for Telegram {
    fn deliver(&mut self, _seq: u64, json: &str, alert: bool) -> Result<(), String> {
        if !alert {
            return Ok(());
        }
        let Some(text) = serde_json::from_str::<Event>(json)
            .ok()
            .as_ref()
            .and_then(alert_text)
        else {
            return Ok(());
        };
        let url = format!("{}/bot{}/sendMessage", self.api, self.token);
        let body = serde_json::json!({ "chat_id": self.chat, "text": text }).to_string();
        self.http
            .post(&url)
            .header("Content-Type", "application/json")
            .send(&body)
            .map(|_| ())
            .map_err(|e| {
                let secrets = [self.token.clone()];
                format!(
                    "telegram://***@{}: {}",
                    self.chat,
                    crate::secrets::scrub(&e.to_string(), &secrets)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(data: serde_json::Value) -> Event {
        Event::new(
            ALERT_KIND,
            "presence",
            "door",
            None,
            "2026-12-02T08:00:00.000Z".into(),
            data,
        )
    }

    #[test]
    fn alerts_read_as_sentences() {
        let t = alert_text(&alert(serde_json::json!({
            "group": "outlet-7", "event": "absent", "identity": "ann", "label": "Ann",
            "absent-seconds": 930.0, "never-seen": false, "camera": "till",
            "utc-time": "2026-12-02T08:00:00.000Z"})))
        .unwrap();
        assert_eq!(
            t,
            "Ann is absent from outlet-7: not seen for 15 min (alert at 2026-12-02T08:00:00.000Z), last seen on camera till."
        );
        let t = alert_text(&alert(serde_json::json!({
            "group": "outlet-7", "event": "absent", "identity": "bob", "never-seen": true,
            "absent-seconds": -1.0})))
        .unwrap();
        assert!(
            t.starts_with("bob is absent from outlet-7: expected and not seen"),
            "{t}"
        );
        let t = alert_text(&alert(serde_json::json!({
            "group": "lobby", "event": "unknown", "unknown-id": "unknown-3",
            "cameras": "door,hall", "camera-count": 2})))
        .unwrap();
        assert!(t.contains("confirmed by 2 cameras (door,hall)"), "{t}");
        let mut other = alert(serde_json::json!({}));
        other.kind = "presence".into();
        assert_eq!(alert_text(&other), None);
    }
}
