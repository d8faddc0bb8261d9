//! The MQTT sink (rumqttc, MQTT 3.1.1, QoS 1).
//!
//! Topics, with `<p>` the sink's topic prefix (default `sightline`) and `<node>` the
//! publisher's node:
//! - `<p>/<node>/events/<kind>`: every event, its JSON (the documented event schema);
//! - `<p>/<node>/availability`: `online` (retained) once connected, `offline` (retained) as the
//!   broker's last will when the connection dies without a goodbye, and on a clean stop.
//!
//! An event counts as delivered when the broker acknowledged it (PUBACK); until then it stays
//! in the spool, so a broker that goes away loses nothing (at least once: a PUBACK lost with
//! the connection means the event is sent again).

use crate::events::Event;
use crate::homeassistant::HomeAssistant;
use crate::sinks::MqttSpec;
use rumqttc::{Client, Connection, LastWill, MqttOptions, Outgoing, Packet, QoS};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a publish waits for its PUBACK, and a connection for its CONNACK.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes in flight at once, and the capacity of the client's request channel.
const INFLIGHT: u16 = 512;

/// What the connection thread saw.
enum Note {
    Connected,
    Sent(u16),
    Acked(u16),
    Failed(String),
}

struct Link {
    client: Client,
    notes: mpsc::Receiver<Note>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
        // The thread ends with the connection (disconnect, or its own error) on its own; it
        // is not waited for here, the delivery thread must not hang on a dead broker.
        drop(self.thread.take());
    }
}

pub struct MqttDeliver {
    spec: MqttSpec,
    node: String,
    link: Option<Link>,
    /// Home Assistant discovery (None: `discovery-prefix=` empty).
    ha: Option<HomeAssistant>,
}

/// `<prefix>/<node>/availability`.
pub fn availability_topic(spec: &MqttSpec, node: &str) -> String {
    format!("{}/{}/availability", spec.topic_prefix, topic_level(node))
}

/// `<prefix>/<node>/events/<kind>`.
pub fn event_topic(spec: &MqttSpec, node: &str, kind: &str) -> String {
    format!(
        "{}/{}/events/{}",
        spec.topic_prefix,
        topic_level(node),
        topic_level(kind)
    )
}

/// A name made safe as one topic level: no `/`, `+`, `#` or NUL.
pub fn topic_level(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| match c {
            '/' | '+' | '#' | '\0' => '_',
            c => c,
        })
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

fn tls_config() -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let system = std::env::var_os("SSL_CERT_FILE")
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    let mut files = vec![(system, false)];
    if let Some(ca) = std::env::var_os("SIGHTLINE_MQTT_CA") {
        files.push((ca, true));
    }
    for (f, required) in files {
        match std::fs::read(&f) {
            Ok(pem) => {
                for c in CertificateDer::pem_slice_iter(&pem).flatten() {
                    let _ = roots.add(c);
                }
            }
            Err(e) if required => {
                return Err(format!(
                    "cannot read SIGHTLINE_MQTT_CA {}: {e}",
                    f.to_string_lossy()
                ));
            }
            Err(_) => {}
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl MqttDeliver {
    pub fn new(spec: &MqttSpec, node: &str) -> Self {
        MqttDeliver {
            spec: spec.clone(),
            node: node.to_string(),
            link: None,
            ha: spec
                .discovery_prefix
                .as_deref()
                .map(|d| HomeAssistant::new(&spec.topic_prefix, d, node)),
        }
    }

    fn shown(&self) -> String {
        crate::sinks::Sink::Mqtt(self.spec.clone()).display()
    }

    /// A library error's text without the password.
    fn scrub(&self, e: &dyn std::fmt::Display) -> String {
        let secrets: Vec<String> = self.spec.password.iter().cloned().collect();
        crate::secrets::scrub(&e.to_string(), &secrets)
    }

    fn connect(&mut self) -> Result<(), String> {
        // Unique per connection: two publishers of one node (an element and the runner)
        // with one client id would take the broker's session from each other in turn.
        static CONNECTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = format!(
            "sightline-{}-{}-{}",
            topic_level(&self.node),
            std::process::id(),
            CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut o = MqttOptions::new(id, self.spec.host.clone(), self.spec.port);
        o.set_keep_alive(Duration::from_secs(5));
        // A batch of the spool in flight at once (the broker acknowledges each).
        o.set_inflight(INFLIGHT);
        o.set_clean_session(true);
        o.set_last_will(LastWill::new(
            availability_topic(&self.spec, &self.node),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(user) = &self.spec.user {
            o.set_credentials(user.clone(), self.spec.password.clone().unwrap_or_default());
        }
        if self.spec.tls {
            let cfg = tls_config().map_err(|e| format!("MQTT {}: {e}", self.shown()))?;
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(std::sync::Arc::new(cfg)),
            ));
        }
        let (client, mut connection) = Client::new(o, INFLIGHT as usize);
        // Each message is flushed on its own: without TCP_NODELAY, Nagle holds the next one
        // until the previous is acknowledged.
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(ACK_TIMEOUT.as_secs());
        connection.eventloop.set_network_options(net);
        let (tx, notes) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sl-mqtt".into())
            .spawn(move || pump(connection, tx))
            .map_err(|e| format!("MQTT {}: {e}", self.shown()))?;
        let mut link = Link {
            client,
            notes,
            thread: Some(thread),
        };
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            match link
                .notes
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(Note::Connected) => break,
                Ok(Note::Failed(e)) => {
                    return Err(format!("MQTT {}: {}", self.shown(), self.scrub(&e)));
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(format!(
                        "MQTT {}: no answer within {} s",
                        self.shown(),
                        ACK_TIMEOUT.as_secs()
                    ));
                }
            }
        }
        publish_acked(
            &mut link,
            &availability_topic(&self.spec, &self.node),
            b"online",
            true,
        )
        .map_err(|e| format!("MQTT {}: {}", self.shown(), self.scrub(&e)))?;
        // Every retained config and state again: nothing stays stale after an outage.
        for m in self.ha.iter().flat_map(HomeAssistant::on_connect) {
            publish_acked(&mut link, &m.topic, m.payload.as_bytes(), m.retain)
                .map_err(|e| format!("MQTT {}: {}", self.shown(), self.scrub(&e)))?;
        }
        self.link = Some(link);
        Ok(())
    }

    /// Publishes one message with QoS 1 and waits for the broker's acknowledgement.
    pub fn publish(&mut self, topic: &str, payload: &[u8], retain: bool) -> Result<(), String> {
        if self.link.is_none() {
            self.connect()?;
        }
        let Some(link) = self.link.as_mut() else {
            return Err(format!("MQTT {}: not connected", self.shown()));
        };
        let r = publish_acked(link, topic, payload, retain);
        r.map_err(|e| {
            self.link = None;
            format!("MQTT {}: {}", self.shown(), self.scrub(&e))
        })
    }
}

impl Drop for MqttDeliver {
    fn drop(&mut self) {
        // A clean stop: Home Assistant shows the node unavailable (the broker does not send
        // the last will after a DISCONNECT).
        if self.link.is_some() {
            let topic = availability_topic(&self.spec, &self.node);
            let _ = self.publish(&topic, b"offline", true);
        }
    }
}

fn publish_acked(link: &mut Link, topic: &str, payload: &[u8], retain: bool) -> Result<(), String> {
    link.client
        .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + ACK_TIMEOUT;
    let mut pkid = None;
    loop {
        match link
            .notes
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            // One publish in flight at a time: the next one sent is ours.
            Ok(Note::Sent(id)) if pkid.is_none() => pkid = Some(id),
            Ok(Note::Acked(id)) if Some(id) == pkid => return Ok(()),
            Ok(Note::Failed(e)) => return Err(e),
            Ok(_) => {}
            Err(_) => {
                return Err(format!(
                    "no acknowledgement within {} s",
                    ACK_TIMEOUT.as_secs()
                ));
            }
        }
    }
}

/// Runs the connection and forwards what matters; ends at the first error (the delivery
/// thread connects again with back-off).
fn pump(mut connection: Connection, tx: mpsc::Sender<Note>) {
    for ev in connection.iter() {
        let note = match ev {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => Note::Connected,
            Ok(rumqttc::Event::Incoming(Packet::PubAck(a))) => Note::Acked(a.pkid),
            Ok(rumqttc::Event::Outgoing(Outgoing::Publish(id))) => Note::Sent(id),
            Ok(_) => continue,
            Err(e) => {
                let _ = tx.send(Note::Failed(e.to_string()));
                return;
            }
        };
        if tx.send(note).is_err() {
            return;
        }
    }
}

/// One message to publish.
struct Out {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
}

/// Publishes `msgs` with QoS 1, many in flight at once; returns how many (a prefix) the
/// broker acknowledged, and the error that stopped it. The client's request channel is never
/// waited on (try_publish): a broker that stops answering ends it after [`ACK_TIMEOUT`].
fn publish_all(link: &mut Link, msgs: &[Out]) -> (usize, Result<(), String>) {
    use std::collections::{HashMap, VecDeque};
    let mut deadline = Instant::now() + ACK_TIMEOUT;
    let (mut next, mut done) = (0, 0);
    // Published, waiting for the packet id the event loop gives them (in publish order).
    let mut unnumbered: VecDeque<usize> = VecDeque::new();
    // Packet id -> message (an id is reused only after its acknowledgement).
    let mut inflight: HashMap<u16, usize> = HashMap::new();
    let mut acked = vec![false; msgs.len()];
    loop {
        while next < msgs.len() {
            let m = &msgs[next];
            match link.client.try_publish(
                m.topic.clone(),
                QoS::AtLeastOnce,
                m.retain,
                m.payload.clone(),
            ) {
                Ok(()) => {
                    unnumbered.push_back(next);
                    next += 1;
                }
                // The channel is full: acknowledgements first.
                Err(rumqttc::ClientError::TryRequest(_)) => break,
                Err(e) => return (done, Err(e.to_string())),
            }
        }
        while done < msgs.len() && acked[done] {
            done += 1;
        }
        if done == msgs.len() {
            return (done, Ok(()));
        }
        match link
            .notes
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(Note::Sent(id)) => {
                if let Some(k) = unnumbered.pop_front() {
                    inflight.insert(id, k);
                }
            }
            Ok(Note::Acked(id)) => {
                if let Some(k) = inflight.remove(&id) {
                    acked[k] = true;
                    deadline = Instant::now() + ACK_TIMEOUT;
                }
            }
            Ok(Note::Failed(e)) => return (done, Err(e)),
            Ok(Note::Connected) => {}
            Err(_) => {
                return (
                    done,
                    Err(format!(
                        "no acknowledgement within {} s",
                        ACK_TIMEOUT.as_secs()
                    )),
                );
            }
        }
    }
}

impl crate::delivery::DeliverEvent for MqttDeliver {
    /// Every event of the batch and what it changes for Home Assistant, in flight at once.
    fn deliver_batch(&mut self, items: &[crate::delivery::Item]) -> (usize, Result<(), String>) {
        if self.link.is_none()
            && let Err(e) = self.connect()
        {
            return (0, Err(e));
        }
        let mut msgs = Vec::new();
        // Index one past each item's last message.
        let mut ends = Vec::with_capacity(items.len());
        for it in items {
            let ev: Option<Event> = serde_json::from_str(&it.json).ok();
            let kind = ev.as_ref().map_or("event", |e| e.kind.as_str());
            msgs.push(Out {
                topic: event_topic(&self.spec, &self.node, kind),
                payload: it.json.as_bytes().to_vec(),
                retain: false,
            });
            // The model changes first: if a publish fails, the reconnection sends every state.
            if let (Some(ha), Some(ev)) = (&mut self.ha, &ev) {
                msgs.extend(ha.on_event(ev).into_iter().map(|m| Out {
                    topic: m.topic,
                    payload: m.payload.into_bytes(),
                    retain: m.retain,
                }));
            }
            ends.push(msgs.len());
        }
        let Some(link) = self.link.as_mut() else {
            return (0, Err(format!("MQTT {}: not connected", self.shown())));
        };
        let (acked, result) = publish_all(link, &msgs);
        let delivered = ends.iter().take_while(|&&e| e <= acked).count();
        match result {
            Ok(()) => (delivered, Ok(())),
            Err(e) => {
                self.link = None;
                (
                    delivered,
                    Err(format!("MQTT {}: {}", self.shown(), self.scrub(&e))),
                )
            }
        }
    }

    /// One event: a batch of one (one code path for both).
    fn deliver(&mut self, seq: u64, json: &str, alert: bool) -> Result<(), String> {
        let item = crate::delivery::Item {
            seq,
            json: json.into(),
            alert,
        };
        self.deliver_batch(std::slice::from_ref(&item)).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_one_level_per_name() {
        let spec = match crate::sinks::Sink::parse("mqtt://h?topic-prefix=site/a").unwrap() {
            crate::sinks::Sink::Mqtt(m) => m,
            _ => unreachable!(),
        };
        assert_eq!(
            event_topic(&spec, "n/1", "presence-alert"),
            "site/a/n_1/events/presence-alert"
        );
        assert_eq!(availability_topic(&spec, "n+#"), "site/a/n__/availability");
        assert_eq!(topic_level(""), "_");
    }
}
