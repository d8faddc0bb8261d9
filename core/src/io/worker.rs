//! Background threads the elements start (Redis links, delivery, map sharing): a panic is
//! reported through a callback instead of ending the thread silently, and stopping waits a
//! bounded time, so a worker stuck on the network can never hang a pipeline's state change.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A running worker thread.
pub struct Worker {
    name: String,
    handle: Option<JoinHandle<()>>,
    /// Mutex: a worker handle may live in shared (Sync) state.
    done: std::sync::Mutex<mpsc::Receiver<()>>,
}

/// Sends on `done` when the thread ends, normally or by a panic.
struct DoneGuard(mpsc::Sender<()>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// The text of a panic payload.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

impl Worker {
    /// Starts `f` on a thread named `name`; a panic in it calls `on_panic` with a message
    /// naming the thread (the elements turn it into an element error).
    pub fn spawn(
        name: &str,
        on_panic: impl FnOnce(String) + Send + 'static,
        f: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Worker> {
        let (tx, done) = mpsc::channel();
        let thread_name = name.to_string();
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _guard = DoneGuard(tx);
                if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                    on_panic(format!(
                        "worker thread {thread_name} failed: {}",
                        panic_text(&*p)
                    ));
                }
            })?;
        Ok(Worker {
            name: name.to_string(),
            handle: Some(handle),
            done: std::sync::Mutex::new(done),
        })
    }

    /// Waits up to `timeout` for the thread to end (the caller has already asked it to
    /// stop); a thread still busy then is left to finish on its own. True if it ended.
    pub fn finish_within(mut self, timeout: Duration) -> bool {
        self.finish(timeout)
    }

    /// [`Worker::finish_within`] with a deadline shared by several workers.
    pub fn finish_by(self, deadline: std::time::Instant) -> bool {
        self.finish_within(deadline.saturating_duration_since(std::time::Instant::now()))
    }

    fn finish(&mut self, timeout: Duration) -> bool {
        let Some(h) = self.handle.take() else {
            return true;
        };
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        match done.recv_timeout(timeout) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = h.join();
                true
            }
            Err(mpsc::RecvTimeoutError::Timeout) => false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How long dropping a worker waits for it by default.
pub const STOP_WAIT: Duration = Duration::from_millis(1000);

impl Drop for Worker {
    fn drop(&mut self) {
        self.finish(STOP_WAIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_panic_is_reported_with_the_thread_name() {
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        let w = Worker::spawn(
            "sl-test-panics",
            move |m| *s.lock().unwrap() = Some(m),
            || panic!("boom"),
        )
        .unwrap();
        assert!(w.finish_within(Duration::from_secs(5)));
        let m = seen.lock().unwrap().clone().unwrap();
        assert!(m.contains("sl-test-panics") && m.contains("boom"), "{m}");
    }

    #[test]
    fn a_stuck_worker_does_not_hold_up_the_caller() {
        let (tx, rx) = mpsc::channel::<()>();
        let w = Worker::spawn(
            "sl-test-stuck",
            |_| {},
            move || {
                let _ = rx.recv_timeout(Duration::from_secs(30));
            },
        )
        .unwrap();
        let t = std::time::Instant::now();
        assert!(!w.finish_within(Duration::from_millis(100)));
        assert!(t.elapsed() < Duration::from_secs(2));
        drop(tx);
    }
}
