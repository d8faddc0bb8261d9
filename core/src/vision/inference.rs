//! The shared inference engine: ONNX Runtime through `ort`, loaded dynamically.
//!
//! One [`Engine`] (one ONNX Runtime session and one worker thread) exists per
//! (model file, execution provider, device) in the process; every element that names the same
//! model gets a handle to it. Requests arriving from several streaming threads within
//! `batch-timeout` are run as one batch when the model has a dynamic batch dimension. All
//! sessions share one environment-level thread pool, so several models in one process do not
//! fight over the cores.

use crate::models::ResolvedModel;
use ort::session::Session;
use ort::value::TensorRef;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, OnceLock, Weak, mpsc};
use std::time::{Duration, Instant};

/// Execution providers. Only `Cpu` is always available; the others need the cargo feature of
/// the same name and an ONNX Runtime library built with that provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Provider {
    #[default]
    Cpu,
    Cuda,
    TensorRt,
    OpenVino,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::TensorRt => "tensorrt",
            Provider::OpenVino => "openvino",
        }
    }
}

impl std::str::FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "cpu" => Provider::Cpu,
            "cuda" => Provider::Cuda,
            "tensorrt" | "trt" => Provider::TensorRt,
            "openvino" => Provider::OpenVino,
            other => {
                return Err(format!(
                    "unknown execution provider '{other}' (cpu, cuda, tensorrt, openvino)"
                ));
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineOptions {
    pub provider: Provider,
    pub device_id: i32,
    /// Largest batch the engine forms from concurrent requests (1 = never batch; 0 = auto:
    /// 1 on CPU, where one image already keeps every core busy and batches cost activation
    /// memory, [`GPU_AUTO_BATCH`] on GPU providers).
    pub max_batch: usize,
    /// How long the engine waits for more requests to fill a batch.
    pub batch_timeout: Duration,
}

/// Batch size chosen by `max_batch = 0` on GPU providers.
pub const GPU_AUTO_BATCH: usize = 8;

impl EngineOptions {
    /// `max_batch` with 0 (auto) resolved for the provider.
    pub fn effective_max_batch(&self) -> usize {
        match (self.max_batch, self.provider) {
            (0, Provider::Cpu) => 1,
            (0, _) => GPU_AUTO_BATCH,
            (n, _) => n,
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            provider: Provider::Cpu,
            device_id: 0,
            max_batch: 0,
            batch_timeout: Duration::from_millis(5),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum InferenceError {
    #[error(
        "cannot load the ONNX Runtime library {path}: {err}. Run scripts/setup (it installs the library from the PyPI onnxruntime wheel) or set ORT_DYLIB_PATH to a libonnxruntime.so (>= 1.24)"
    )]
    Runtime { path: String, err: String },
    #[error("cannot load model {path} into ONNX Runtime ({provider}): {err}")]
    Session {
        path: PathBuf,
        provider: &'static str,
        err: String,
    },
    #[error(
        "execution provider '{0}' is not compiled in: rebuild with `cargo build --features {0}` and use an ONNX Runtime library with that provider (e.g. the onnxruntime-gpu wheel for cuda)"
    )]
    ProviderNotBuilt(&'static str),
    #[error("inference on {model} failed: {err}")]
    Run { model: String, err: String },
    #[error("inference engine for {0} has stopped")]
    Stopped(String),
}

/// Path of the ONNX Runtime shared library: `ORT_DYLIB_PATH`, else the dynamic loader's search.
pub fn runtime_library_path() -> String {
    std::env::var("ORT_DYLIB_PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| option_env!("SIGHTLINE_ORT_LIB").map(str::to_string))
        .unwrap_or_else(|| "libonnxruntime.so".to_string())
}

static RUNTIME: OnceLock<Result<ort::environment::Environment, InferenceError>> = OnceLock::new();

/// Number of intra-op threads of the shared pool: `SIGHTLINE_THREADS` when set, else the
/// process's default ([`prefer_live_pool`]): every core unless changed.
pub fn pool_threads() -> usize {
    std::env::var("SIGHTLINE_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| match THREADS_DEFAULT.load(Ordering::Relaxed) {
            0 => cores(),
            n => n,
        })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most sessions of one model on CPU: one per core, whatever the pool's size. With a
/// pool of one thread each run is sequential on its caller's thread, and as many cameras as
/// there are cores still run the model side by side.
pub fn max_cpu_sessions() -> usize {
    cores()
}

/// Whether pool threads spin between parallel sections: `SIGHTLINE_ORT_SPIN` (`0` off, else
/// on) when set, else the process's default ([`prefer_live_pool`]), on unless changed.
///
/// On suits one stream analysed as fast as it goes: every session of the process shares one
/// pool, so spinning threads cannot steal cores from another model's pool, and waking
/// sleeping threads for each of a small model's many operators costs more than it saves
/// (measured: facedetect ! facematch 128 -> 154 frames/s on 2 cores). Off suits live cameras
/// analysed at a set rate: between frames the pool would spin for nothing (measured with
/// `sightline bench capacity`, 720p25 at 5 frames/s: 0.36 cores for one camera spinning,
/// 0.15 not).
pub fn pool_spinning() -> bool {
    match std::env::var("SIGHTLINE_ORT_SPIN") {
        Ok(v) => v != "0",
        Err(_) => SPIN_DEFAULT.load(Ordering::Relaxed),
    }
}

static SPIN_DEFAULT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
/// 0: every core.
static THREADS_DEFAULT: AtomicUsize = AtomicUsize::new(0);

/// The pool for live cameras analysed at a set rate (`sightline run`), unless
/// `SIGHTLINE_THREADS` / `SIGHTLINE_ORT_SPIN` say otherwise: one thread, so every run is
/// sequential on its camera's streaming thread (cameras run side by side on up to one
/// session per core, [`max_cpu_sessions`]) and nothing spins or is woken between a model's
/// operators. What matters there is the CPU per analysed frame, not one frame's latency:
/// measured with `sightline bench capacity --cameras N` (paired, 720p25 × 8 and 1080p30 × 4
/// at 5 frames/s), 8–30 % less CPU for the analysis than a pool of every core
/// (docs/benchmarks.md). Takes effect only before the first model
/// is loaded (the pool is made once); false if that was too late.
pub fn prefer_live_pool() -> bool {
    SPIN_DEFAULT.store(false, Ordering::Relaxed);
    THREADS_DEFAULT.store(1, Ordering::Relaxed);
    RUNTIME.get().is_none()
}

/// The process-wide ONNX Runtime environment, created on first use.
pub fn runtime() -> Result<&'static ort::environment::Environment, InferenceError> {
    RUNTIME
        .get_or_init(|| {
            let path = runtime_library_path();
            let err = |e: &dyn std::fmt::Display| InferenceError::Runtime {
                path: path.clone(),
                err: e.to_string(),
            };
            let builder = ort::init_from(&path).map_err(|e| err(&e))?;
            let pool = ort::environment::GlobalThreadPoolOptions::default()
                .with_intra_threads(pool_threads())
                .and_then(|p| p.with_inter_threads(1))
                .and_then(|p| p.with_spin_control(pool_spinning()))
                .map_err(|e| err(&e))?;
            builder
                .with_name("sightline")
                .with_telemetry(false)
                .with_global_thread_pool(pool)
                .build()
                .map_err(|e| err(&e))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// One output tensor of one request (the batch dimension is 1).
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}

/// The result of one batched request: outputs in the order of [`Engine::output_names`], and the
/// input buffer handed back so the client can reuse its allocation.
#[derive(Debug)]
struct Response {
    pub outputs: Vec<Output>,
    pub input: Vec<f32>,
}

struct Request {
    client: u64,
    input: Vec<f32>,
    shape: [i64; 4],
    reply: mpsc::SyncSender<Result<Response, InferenceError>>,
}

/// Counters, for tests, benchmarks and metrics.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub requests: AtomicU64,
    pub runs: AtomicU64,
    pub largest_batch: AtomicUsize,
    /// Total time spent inside `Session::run`, nanoseconds.
    pub run_nanos: AtomicU64,
    /// Sessions loaded for this model, and the most runs that were under way at once.
    pub sessions: AtomicUsize,
    pub most_at_once: AtomicUsize,
    /// Why no further session could be loaded, if that happened and was not yet reported
    /// (runs then share the sessions there are); see [`Engine::take_refusal`].
    refused: Mutex<Option<String>>,
    in_use: AtomicUsize,
}

impl EngineStats {
    fn record(&self, batch: usize, started: Instant) {
        self.run_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.largest_batch.fetch_max(batch, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EngineKey {
    path: PathBuf,
    provider: Provider,
    device_id: i32,
}

/// A shared model session with its batching worker.
pub struct Engine {
    pub model: ResolvedModel,
    pub provider: Provider,
    input_name: String,
    output_names: Vec<String>,
    tx: Mutex<mpsc::Sender<Request>>,
    shared: Arc<Shared>,
    sessions: Arc<Sessions>,
}

/// The sessions of one model. One is loaded with the engine; on CPU more are made when a run
/// finds them all busy, up to one per core ([`max_cpu_sessions`]), so that the
/// cameras' streaming threads run the model side by side instead of queueing behind one
/// session (measured with `sightline bench capacity`: under load the queue, not the cores,
/// was what stopped the next camera). GPU providers keep one session: batching serves them.
struct Sessions {
    free: Mutex<Vec<Session>>,
    returned: Condvar,
    /// Sessions made so far (free or in use), and the most there may be.
    made: AtomicUsize,
    max: AtomicUsize,
    path: PathBuf,
    opts: EngineOptions,
    shared: Arc<Shared>,
}

impl Sessions {
    fn guard(&self, session: Session) -> SessionGuard<'_> {
        let stats = &self.shared.stats;
        let now = stats.in_use.fetch_add(1, Ordering::SeqCst) + 1;
        stats.most_at_once.fetch_max(now, Ordering::SeqCst);
        SessionGuard {
            pool: self,
            session: Some(session),
        }
    }

    /// A free session, a new one while fewer than `max` exist, else the next one returned.
    /// A session that cannot be made (memory) ends the growth: runs then wait for a free one.
    fn take(&self) -> Result<SessionGuard<'_>, String> {
        let poisoned = |_| "session pool poisoned".to_string();
        let mut free = self.free.lock().map_err(poisoned)?;
        loop {
            if let Some(s) = free.pop() {
                return Ok(self.guard(s));
            }
            if self.made.load(Ordering::SeqCst) < self.max.load(Ordering::SeqCst) {
                self.made.fetch_add(1, Ordering::SeqCst);
                drop(free);
                match new_session(&self.path, &self.opts) {
                    Ok(s) => {
                        self.shared.stats.sessions.fetch_add(1, Ordering::SeqCst);
                        return Ok(self.guard(s));
                    }
                    Err(e) => {
                        let made = self.made.fetch_sub(1, Ordering::SeqCst) - 1;
                        self.max.store(made, Ordering::SeqCst);
                        if let Ok(mut r) = self.shared.stats.refused.lock() {
                            *r = Some(e);
                        }
                    }
                }
                free = self.free.lock().map_err(poisoned)?;
                continue;
            }
            free = self.returned.wait(free).map_err(poisoned)?;
        }
    }
}

/// A session taken from [`Sessions`], given back when dropped.
struct SessionGuard<'a> {
    pool: &'a Sessions,
    session: Option<Session>,
}

impl std::ops::Deref for SessionGuard<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.session.as_ref().expect("held until drop")
    }
}

impl std::ops::DerefMut for SessionGuard<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        self.session.as_mut().expect("held until drop")
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.pool.shared.stats.in_use.fetch_sub(1, Ordering::SeqCst);
        if let (Some(s), Ok(mut free)) = (self.session.take(), self.pool.free.lock()) {
            free.push(s);
            self.pool.returned.notify_one();
        }
    }
}

/// Loads `path` into a new session for `opts`'s provider (errors as text: the caller names
/// the model).
fn new_session(path: &std::path::Path, opts: &EngineOptions) -> Result<Session, String> {
    let env = runtime().map_err(|e| e.to_string())?;
    let mut builder = Session::builder(env).map_err(|e| e.to_string())?;
    if let Some(ep) = execution_provider(opts).map_err(|e| e.to_string())? {
        builder = builder
            .with_execution_providers([ep])
            .map_err(|e| e.to_string())?;
    }
    builder.commit_from_file(path).map_err(|e| e.to_string())
}

/// State shared by an engine and its worker thread: batching knobs and counters.
#[derive(Default)]
struct Shared {
    max_batch: AtomicUsize,
    batch_timeout_us: AtomicU64,
    clients: AtomicUsize,
    /// When each live client last submitted, for the batching wait.
    last_seen: Mutex<HashMap<u64, Instant>>,
    stats: EngineStats,
}

static ENGINES: LazyLock<Mutex<HashMap<EngineKey, Weak<Engine>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Number of live engines in the process (sessions loaded), for tests and metrics.
pub fn live_engines() -> usize {
    ENGINES
        .lock()
        .map(|m| m.values().filter(|w| w.strong_count() > 0).count())
        .unwrap_or(0)
}

/// A client's handle to a shared engine. Dropping the last handle stops the engine.
pub struct EngineHandle {
    engine: Arc<Engine>,
    id: u64,
    /// This client's input tensor: filled outside any engine lock, then run inline or sent
    /// to the batching worker (which hands it back).
    input: Mutex<Vec<f32>>,
}

static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

impl EngineHandle {
    /// Runs `shape[0]` images through the model: `fill` writes the `[N, C, H, W]` input tensor
    /// (`shape`) straight into the buffer that is run. Blocks until the (possibly batched with
    /// other clients') run is done; returns the outputs in the order of
    /// [`Engine::output_names`], each with this request's N items.
    pub fn run_with(
        &self,
        shape: [i64; 4],
        fill: impl FnOnce(&mut [f32]),
    ) -> Result<Vec<Output>, InferenceError> {
        self.engine.submit(self, shape, fill)
    }
}

impl std::ops::Deref for EngineHandle {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        let shared = &self.engine.shared;
        shared.clients.fetch_sub(1, Ordering::SeqCst);
        if let Ok(mut m) = shared.last_seen.lock() {
            m.remove(&self.id);
        }
    }
}

impl Engine {
    /// The engine for this model, provider and device: the existing one if any element in the
    /// process already loaded it, else a new session. Batching options are widened to the
    /// largest any client asked for.
    pub fn shared(
        model: &ResolvedModel,
        opts: &EngineOptions,
    ) -> Result<EngineHandle, InferenceError> {
        let key = EngineKey {
            path: std::fs::canonicalize(&model.path).unwrap_or_else(|_| model.path.clone()),
            provider: opts.provider,
            device_id: opts.device_id,
        };
        let mut engines = ENGINES.lock().unwrap_or_else(|e| e.into_inner());
        let engine = match engines.get(&key).and_then(Weak::upgrade) {
            Some(e) => e,
            None => {
                let e = Arc::new(Engine::load(model, opts)?);
                engines.retain(|_, w| w.strong_count() > 0);
                engines.insert(key, Arc::downgrade(&e));
                e
            }
        };
        let s = &engine.shared;
        s.max_batch
            .fetch_max(opts.effective_max_batch(), Ordering::SeqCst);
        s.batch_timeout_us
            .fetch_max(opts.batch_timeout.as_micros() as u64, Ordering::SeqCst);
        s.clients.fetch_add(1, Ordering::SeqCst);
        Ok(EngineHandle {
            engine,
            id: NEXT_CLIENT.fetch_add(1, Ordering::Relaxed),
            input: Mutex::new(Vec::new()),
        })
    }

    fn load(model: &ResolvedModel, opts: &EngineOptions) -> Result<Engine, InferenceError> {
        runtime()?;
        execution_provider(opts)?;
        let session_err = |e: &dyn std::fmt::Display| InferenceError::Session {
            path: model.path.clone(),
            provider: opts.provider.name(),
            err: e.to_string(),
        };
        let session = new_session(&model.path, opts).map_err(|e| session_err(&e))?;
        let input_name = session
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .ok_or_else(|| session_err(&"the model has no input"))?;
        if input_name != model.spec.input.name {
            return Err(session_err(&format!(
                "input is named '{input_name}', models.toml says '{}' for '{}'",
                model.spec.input.name, model.spec.name
            )));
        }
        let output_names: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let shared = Arc::new(Shared::default());
        let sessions = Arc::new(Sessions {
            free: Mutex::new(vec![session]),
            returned: Condvar::new(),
            made: AtomicUsize::new(1),
            max: AtomicUsize::new(match opts.provider {
                Provider::Cpu => max_cpu_sessions(),
                _ => 1,
            }),
            path: model.path.clone(),
            opts: *opts,
            shared: shared.clone(),
        });
        shared.stats.sessions.store(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel::<Request>();
        let worker = Worker {
            sessions: sessions.clone(),
            rx,
            input_name: input_name.clone(),
            output_names: output_names.clone(),
            dynamic_batch: model.spec.input.dynamic_batch(),
            model_name: model.spec.name.clone(),
            shared: shared.clone(),
            batch_buf: Vec::new(),
        };
        std::thread::Builder::new()
            .name(format!("sl-infer-{}", model.spec.name))
            .spawn(move || worker.run())
            .map_err(|e| session_err(&e))?;
        Ok(Engine {
            model: model.clone(),
            provider: opts.provider,
            input_name,
            output_names,
            tx: Mutex::new(tx),
            shared,
            sessions,
        })
    }

    pub fn input_name(&self) -> &str {
        &self.input_name
    }

    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    pub fn output_index(&self, name: &str) -> Option<usize> {
        self.output_names.iter().position(|n| n == name)
    }

    /// Number of element instances holding this engine.
    pub fn clients(&self) -> usize {
        self.shared.clients.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> &EngineStats {
        &self.shared.stats
    }

    /// Why a further session could not be loaded (the model's runs then share the ones
    /// there are), once: the first caller gets it, to say so.
    pub fn take_refusal(&self) -> Option<String> {
        self.shared.stats.refused.lock().ok()?.take()
    }

    fn submit(
        &self,
        client: &EngineHandle,
        shape: [i64; 4],
        fill: impl FnOnce(&mut [f32]),
    ) -> Result<Vec<Output>, InferenceError> {
        let stopped = || InferenceError::Stopped(self.model.spec.name.clone());
        let len = shape.iter().product::<i64>().max(0) as usize;
        self.shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        // The client's own buffer is filled first, holding no engine lock: preparing one
        // camera's image never waits for another camera's run.
        let mut input = std::mem::take(&mut *client.input.lock().map_err(|_| stopped())?);
        input.resize(len, 0.0);
        fill(&mut input);
        // Nothing to batch with (batching off, or no other client active): run in this
        // thread on a free session, skipping the worker's two thread hops.
        let max = self.shared.max_batch.load(Ordering::Relaxed);
        let active = self.shared.note_active(client.id, Instant::now());
        if max <= 1 || active <= 1 || !self.model.spec.input.dynamic_batch() {
            let run_err = |err| InferenceError::Run {
                model: self.model.spec.name.clone(),
                err,
            };
            let items = shape[0].max(1) as usize;
            let res = self
                .sessions
                .take()
                .map_err(run_err)
                .and_then(|mut session| {
                    let started = Instant::now();
                    let res = run_session(
                        &mut session,
                        &self.input_name,
                        &self.output_names,
                        shape,
                        &input,
                        &[items],
                    );
                    drop(session);
                    self.shared.stats.record(items, started);
                    res.map_err(run_err)
                });
            if let Ok(mut b) = client.input.lock() {
                *b = input;
            }
            return res.map(|mut v| v.pop().unwrap_or_default());
        }
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx
            .lock()
            .map_err(|_| stopped())?
            .send(Request {
                client: client.id,
                input,
                shape,
                reply,
            })
            .map_err(|_| stopped())?;
        let resp = rx.recv().map_err(|_| stopped())??;
        if let Ok(mut b) = client.input.lock() {
            *b = resp.input;
        }
        Ok(resp.outputs)
    }
}

#[allow(unused_variables)]
fn execution_provider(
    opts: &EngineOptions,
) -> Result<Option<ort::ep::ExecutionProviderDispatch>, InferenceError> {
    match opts.provider {
        Provider::Cpu => Ok(None),
        #[cfg(feature = "cuda")]
        Provider::Cuda => Ok(Some(
            ort::ep::CUDA::default()
                .with_device_id(opts.device_id)
                .build()
                .error_on_failure(),
        )),
        #[cfg(feature = "tensorrt")]
        Provider::TensorRt => Ok(Some(
            ort::ep::TensorRT::default()
                .with_device_id(opts.device_id)
                .build()
                .error_on_failure(),
        )),
        #[cfg(feature = "openvino")]
        Provider::OpenVino => Ok(Some(
            ort::ep::OpenVINO::default().build().error_on_failure(),
        )),
        #[allow(unreachable_patterns)]
        p => Err(InferenceError::ProviderNotBuilt(p.name())),
    }
}

struct Worker {
    sessions: Arc<Sessions>,
    rx: mpsc::Receiver<Request>,
    input_name: String,
    output_names: Vec<String>,
    dynamic_batch: bool,
    model_name: String,
    shared: Arc<Shared>,
    batch_buf: Vec<f32>,
}

impl Shared {
    /// Records that `client` submitted at `now`; returns how many live clients submitted
    /// within [`ACTIVE_WINDOW`] (the largest batch worth waiting for).
    fn note_active(&self, client: u64, now: Instant) -> usize {
        let Ok(mut m) = self.last_seen.lock() else {
            return 1;
        };
        m.insert(client, now);
        m.retain(|_, t| now.duration_since(*t) < ACTIVE_WINDOW);
        m.len()
    }
}

fn batch_items(batch: &[Request]) -> usize {
    batch.iter().map(|r| r.shape[0].max(1) as usize).sum()
}

/// A client that submitted within this window is expected to submit again soon.
const ACTIVE_WINDOW: Duration = Duration::from_secs(1);

impl Worker {
    fn run(mut self) {
        let mut pending: Option<Request> = None;
        loop {
            let first = match pending.take() {
                Some(r) => r,
                None => match self.rx.recv() {
                    Ok(r) => r,
                    Err(_) => return,
                },
            };
            let mut batch = vec![first];
            let max = self.shared.max_batch.load(Ordering::Relaxed).max(1);
            if self.dynamic_batch && max > 1 {
                // Take what is queued already, then wait (at most batch-timeout) only for
                // clients that have been submitting recently: an element that is idle, skips
                // frames or only holds the model never delays the others for long.
                let now = Instant::now();
                let want = self.shared.note_active(batch[0].client, now).min(max);
                let timeout =
                    Duration::from_micros(self.shared.batch_timeout_us.load(Ordering::Relaxed));
                let deadline = now + timeout;
                while batch_items(&batch) < max {
                    let r = match self.rx.try_recv() {
                        Ok(r) => Ok(r),
                        Err(_) if batch.len() >= want => break,
                        Err(_) => {
                            let now = Instant::now();
                            if now >= deadline {
                                break;
                            }
                            self.rx.recv_timeout(deadline - now).map_err(|_| ())
                        }
                    };
                    match r {
                        Ok(r)
                            if r.shape[1..] == batch[0].shape[1..]
                                && batch_items(&batch) + r.shape[0] as usize <= max =>
                        {
                            self.shared.note_active(r.client, Instant::now());
                            batch.push(r)
                        }
                        Ok(r) => {
                            pending = Some(r);
                            break;
                        }
                        Err(()) => break,
                    }
                }
            }
            self.run_batch(batch);
        }
    }

    fn run_batch(&mut self, batch: Vec<Request>) {
        let splits: Vec<usize> = batch.iter().map(|r| r.shape[0].max(1) as usize).collect();
        let n: usize = splits.iter().sum();
        let mut shape = batch[0].shape;
        shape[0] = n as i64;
        let started = Instant::now();
        let mut session = match self.sessions.take() {
            Ok(s) => s,
            Err(err) => {
                for r in batch {
                    let _ = r.reply.send(Err(InferenceError::Run {
                        model: self.model_name.clone(),
                        err: err.clone(),
                    }));
                }
                return;
            }
        };
        let result = if batch.len() == 1 {
            run_session(
                &mut session,
                &self.input_name,
                &self.output_names,
                shape,
                &batch[0].input,
                &splits,
            )
        } else {
            self.batch_buf.clear();
            for r in &batch {
                self.batch_buf.extend_from_slice(&r.input);
            }
            run_session(
                &mut session,
                &self.input_name,
                &self.output_names,
                shape,
                &self.batch_buf,
                &splits,
            )
        };
        drop(session);
        self.shared.stats.record(n, started);
        match result {
            Ok(mut per_item) => {
                for (r, outputs) in batch.into_iter().zip(per_item.drain(..)) {
                    let _ = r.reply.send(Ok(Response {
                        outputs,
                        input: r.input,
                    }));
                }
            }
            Err(err) => {
                for r in batch {
                    let _ = r.reply.send(Err(InferenceError::Run {
                        model: self.model_name.clone(),
                        err: err.clone(),
                    }));
                }
            }
        }
    }
}

/// Runs the session on `data` shaped `shape` and splits every output along the batch
/// dimension into consecutive parts of `splits[i]` items (one part per request).
fn run_session(
    session: &mut Session,
    input_name: &str,
    output_names: &[String],
    shape: [i64; 4],
    data: &[f32],
    splits: &[usize],
) -> Result<Vec<Vec<Output>>, String> {
    let total: usize = splits.iter().sum();
    let tensor = TensorRef::from_array_view((shape, data)).map_err(|e| e.to_string())?;
    let outputs = session
        .run(ort::inputs![input_name => tensor])
        .map_err(|e| e.to_string())?;
    let mut parts: Vec<Vec<Output>> = splits
        .iter()
        .map(|_| Vec::with_capacity(output_names.len()))
        .collect();
    for name in output_names {
        let value = outputs
            .get(name.as_str())
            .ok_or_else(|| format!("output '{name}' missing"))?;
        let (oshape, odata) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        let dims: Vec<i64> = oshape.iter().copied().collect();
        if dims.first().copied() != Some(total as i64) {
            return Err(format!(
                "output '{name}' has shape {dims:?}, expected batch {total} first"
            ));
        }
        let per = odata.len() / total.max(1);
        let mut start = 0;
        for (part, &items) in parts.iter_mut().zip(splits) {
            let mut s = dims.clone();
            s[0] = items as i64;
            part.push(Output {
                shape: s,
                data: odata[start..start + items * per].to_vec(),
            });
            start += items * per;
        }
    }
    Ok(parts)
}
