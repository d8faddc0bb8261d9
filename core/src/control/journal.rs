//! The recent events of a runner, numbered, for `GET /api/v1/events` (Server-Sent Events): a
//! client that reconnects with `Last-Event-ID` gets every event after that one, once, as long
//! as it is still in the journal (the last [`JOURNAL_EVENTS`] events); if it is not, the
//! client is told how many it missed.

use std::collections::VecDeque;
use std::sync::Arc;

pub const JOURNAL_EVENTS: usize = 20_000;

#[derive(Debug)]
pub struct Journal {
    node: String,
    /// (sequence, kind, event JSON), in order.
    events: VecDeque<(u64, String, Arc<str>)>,
    next: u64,
    cap: usize,
}

/// What a client gets after a given event.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Events no longer in the journal between the client's last and the first one here.
    pub missed: u64,
    pub events: Vec<(u64, Arc<str>)>,
    /// The sequence to ask after next time.
    pub last: Option<u64>,
}

impl Journal {
    pub fn new(node: &str, cap: usize) -> Journal {
        Journal {
            node: node.to_string(),
            events: VecDeque::new(),
            next: 1,
            cap: cap.max(1),
        }
    }

    /// Adds an event; returns its sequence (from 1).
    pub fn push(&mut self, kind: &str, json: Arc<str>) -> u64 {
        let seq = self.next;
        self.next += 1;
        self.events.push_back((seq, kind.to_string(), json));
        while self.events.len() > self.cap {
            self.events.pop_front();
        }
        seq
    }

    /// The SSE id of event `seq`: `<node>:<seq>`.
    pub fn id(&self, seq: u64) -> String {
        format!("{}:{seq}", self.node)
    }

    /// The sequence in a `Last-Event-ID` (what follows the last `:`); None for an id this
    /// journal did not give (another node's, garbage): such a client starts from now.
    pub fn parse_id(&self, id: &str) -> Option<u64> {
        let (node, seq) = id.trim().rsplit_once(':')?;
        (node == self.node).then_some(())?;
        seq.parse().ok()
    }

    /// The sequence of the last event so far (0: none yet).
    pub fn last(&self) -> u64 {
        self.next - 1
    }

    /// Events after `after` whose kind `wanted` accepts, at most `max`.
    pub fn after(&self, after: u64, wanted: impl Fn(&str) -> bool, max: usize) -> Batch {
        let first = self.events.front().map_or(self.next, |e| e.0);
        let missed = first.saturating_sub(after + 1);
        let start = self.events.partition_point(|e| e.0 <= after);
        let mut events = Vec::new();
        let mut last = None;
        for (seq, kind, json) in self.events.range(start..) {
            if events.len() >= max {
                break;
            }
            last = Some(*seq);
            if wanted(kind) {
                events.push((*seq, json.clone()));
            }
        }
        Batch {
            missed,
            events,
            last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(n: u64, cap: usize) -> Journal {
        let mut j = Journal::new("node-a", cap);
        for k in 0..n {
            let kind = if k % 2 == 0 { "presence" } else { "facedetect" };
            j.push(kind, format!("{{\"n\":{k}}}").into());
        }
        j
    }

    #[test]
    fn a_client_resumes_after_its_last_event_once_and_in_order() {
        let j = j(10, 100);
        let b = j.after(4, |_| true, 100);
        assert_eq!(b.missed, 0);
        assert_eq!(
            b.events.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![5, 6, 7, 8, 9, 10]
        );
        assert_eq!(b.last, Some(10));
        assert!(j.after(10, |_| true, 100).events.is_empty());
        // In pieces: nothing twice, nothing left out.
        let a = j.after(0, |_| true, 3);
        let b = j.after(a.last.unwrap(), |_| true, 100);
        assert_eq!(a.events.len() + b.events.len(), 10);
        assert_eq!(b.events[0].0, 4);
    }

    #[test]
    fn kinds_are_filtered_and_the_cursor_still_moves() {
        let j = j(10, 100);
        let b = j.after(0, |k| k == "presence", 100);
        assert_eq!(
            b.events.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![1, 3, 5, 7, 9]
        );
        assert_eq!(b.last, Some(10));
    }

    #[test]
    fn events_gone_from_the_journal_are_counted_as_missed() {
        let j = j(100, 10);
        let b = j.after(50, |_| true, 100);
        assert_eq!(b.missed, 40);
        assert_eq!(b.events[0].0, 91);
    }

    #[test]
    fn ids_name_the_node_and_the_sequence() {
        let j = j(3, 10);
        assert_eq!(j.id(3), "node-a:3");
        assert_eq!(j.parse_id("node-a:3"), Some(3));
        assert_eq!(j.parse_id(" node-a:3 "), Some(3));
        assert_eq!(j.parse_id("node-b:3"), None);
        assert_eq!(j.parse_id("3"), None);
        assert_eq!(j.parse_id("node-a:x"), None);
    }
}
