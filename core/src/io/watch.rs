//! Polling watcher for hot reload: calls back when a file's or directory's fingerprint
//! (names, sizes, mtimes) changes. Polling keeps it dependency-free and works on every file
//! system; the default period (500 ms) bounds reload latency well under 2 s.

use crate::enroll::fingerprint;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

pub const DEFAULT_POLL: Duration = Duration::from_millis(500);

/// Stops the watcher thread when dropped.
pub struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<crate::worker::Worker>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread at once.
        self.stop.take();
        // A reload in progress (a directory gallery is enrolled again) is not waited for
        // longer than the worker's bound.
        if let Some(h) = self.handle.take() {
            h.finish_within(crate::worker::STOP_WAIT);
        }
    }
}

/// Watches `path`; `on_change` runs on the watcher thread after each change; a panic in it
/// ends the watching and is reported through `on_panic`.
pub fn watch(
    path: PathBuf,
    poll: Duration,
    mut on_change: impl FnMut() + Send + 'static,
    on_panic: impl FnOnce(String) + Send + 'static,
) -> Watcher {
    let (stop, stopped) = mpsc::channel::<()>();
    let mut last = fingerprint(&path);
    let handle = crate::worker::Worker::spawn("sl-gallery-watch", on_panic, move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(poll) {
            let now = fingerprint(&path);
            if now != last {
                last = now;
                on_change();
            }
        }
    })
    .ok();
    Watcher {
        stop: Some(stop),
        handle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn change_is_noticed_within_a_poll_period() {
        let dir = std::env::temp_dir().join(format!("sl-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("g.slg");
        std::fs::write(&f, b"one").unwrap();
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let w = watch(
            f.clone(),
            Duration::from_millis(50),
            move || {
                n2.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(());
            },
            |_| {},
        );
        std::fs::write(&f, b"two, longer").unwrap();
        rx.recv_timeout(Duration::from_secs(5))
            .expect("change noticed");
        drop(w);
        assert_eq!(n.load(Ordering::SeqCst), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
