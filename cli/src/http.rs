//! The runner's HTTP(S) endpoint: the JSON API under `/api/v1/` (docs/openapi.json,
//! docs/operations.md), `/metrics` (Prometheus text), `/health` (JSON, 503 while a camera is
//! down), `/health/live`, `/health/ready`, and the WebRTC viewer page (web/) at `/`. warp +
//! hyper serve it on a one-thread tokio runtime; with a certificate and key it is HTTPS
//! (tokio-rustls), and a failed handshake (a port scan, a browser that distrusts the
//! certificate) drops only that connection. Who may call what is
//! [`sightline_core::control::api`]'s table; tokens are checked against the `--auth` file.

use sightline_core::control::api::{Access, NoRoute, Route, bearer, route};
use sightline_core::control::auth::{Principal, Role, Tokens};
use sightline_core::control::journal::Journal;
use sightline_core::control::site::{Site, check_since};
use sightline_core::events::utc_now;
use sightline_core::runner::{Metrics, check_tls_pair};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;

pub struct HttpConfig {
    pub addr: String,
    /// Directory served at `/` (the viewer page); None: only /metrics and /health.
    pub web_dir: Option<PathBuf>,
    pub tls: Option<(String, String)>,
}

/// What the API serves and checks.
pub struct Api {
    pub metrics: Arc<Mutex<Metrics>>,
    pub site: Arc<Mutex<Site>>,
    /// The `--auth` tokens; None: every caller may do everything (a loopback server, or
    /// `--insecure-no-auth`).
    pub tokens: Option<Mutex<Tokens>>,
    /// The server listens on loopback only: `/metrics` is open.
    pub loopback: bool,
    /// A token that may read `/metrics` (`--metrics-token`), besides viewer tokens.
    pub metrics_token: Option<String>,
    /// The recent events, for `/api/v1/events`; `notify` wakes the streams when one comes.
    pub journal: Arc<Mutex<Journal>>,
    pub notify: Arc<tokio::sync::Notify>,
    /// None: cameras cannot be added or removed (tests of the routes alone).
    pub cameras: Option<CameraControl>,
    /// The gallery file the running facematch elements follow (they reload it when it
    /// changes); changes through the API are one at a time.
    pub gallery: Option<PathBuf>,
    pub gallery_lock: Mutex<()>,
}

/// Adding and removing cameras: the pipeline file (its template), the runner's `--set`
/// values, and the way to the main loop, which owns the pipelines.
pub struct CameraControl {
    pub file: sightline_core::runner::PipelineFile,
    pub set: std::collections::BTreeMap<String, String>,
    pub commands: Mutex<std::sync::mpsc::Sender<crate::run::Command>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AddCamera {
    name: String,
    uri: String,
    #[serde(default)]
    vars: std::collections::BTreeMap<String, String>,
}

/// What a request gets: a response, or the event stream from after an event.
pub enum Handled {
    Reply(Response),
    Events {
        after: u64,
        kinds: Option<Vec<String>>,
    },
}

/// The API description, served at /api/v1/openapi.json.
const OPENAPI: &str = include_str!("../../docs/openapi.json");

type Response = warp::reply::Response;

/// The largest request body (a photo to enrol).
const MAX_BODY: u64 = 16 << 20;

fn json(code: StatusCode, v: &serde_json::Value) -> Response {
    warp::reply::with_status(warp::reply::json(v), code).into_response()
}

fn error(code: StatusCode, msg: &str) -> Response {
    let mut r = json(code, &serde_json::json!({ "error": msg }));
    if code == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            "www-authenticate",
            warp::http::HeaderValue::from_static("Bearer realm=\"sightline\""),
        );
    }
    r
}

/// Equal in time whatever the content (for the metrics token).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl Api {
    /// Who is calling, if they may call a route of `access`: the response to send if not.
    fn authorize(&self, access: Access, auth: Option<&str>) -> Result<Principal, Box<Response>> {
        let local = Principal {
            name: "local".into(),
            role: Role::Admin,
        };
        let need = match access {
            Access::Open => return Ok(local),
            Access::Metrics if self.loopback => return Ok(local),
            Access::Metrics => {
                if let (Some(want), Some(got)) = (&self.metrics_token, bearer(auth))
                    && same(want, got)
                {
                    return Ok(local);
                }
                Role::Viewer
            }
            Access::Role(r) => r,
        };
        let Some(tokens) = &self.tokens else {
            return Ok(local);
        };
        let Some(token) = bearer(auth) else {
            return Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "authentication required: Authorization: Bearer TOKEN",
            )));
        };
        let who = {
            let mut t = tokens.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = t.refresh() {
                eprintln!(
                    "{}",
                    serde_json::json!({"utc": utc_now(), "level": "warning", "unit": "api",
                        "msg": format!("{e}; the tokens read before stay in force")})
                );
            }
            t.verify(token)
        };
        match who {
            None => Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "unknown or revoked token",
            ))),
            Some(p) if p.role < need => Err(Box::new(error(
                StatusCode::FORBIDDEN,
                &format!(
                    "token {} has role {}; this needs {}",
                    p.name,
                    p.role.name(),
                    need.name()
                ),
            ))),
            Some(p) => Ok(p),
        }
    }

    /// The API description of this site: the camera `vars` are the pipeline file's declared
    /// variables.
    fn openapi(&self) -> String {
        let Some(cc) = &self.cameras else {
            return OPENAPI.to_string();
        };
        let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(OPENAPI) else {
            return OPENAPI.to_string();
        };
        let vars = &mut doc["paths"]["/api/v1/cameras"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["vars"]["properties"];
        for v in &cc.file.vars {
            vars[&v.name] = serde_json::json!({
                "type": "string",
                "minLength": 1,
                "maxLength": 2048,
                "pattern": "^[^\\s\"'\\\\!$\\x00-\\x1f\\x7f-\\x9f]+$",
                "description": v.help,
            });
        }
        doc.to_string()
    }

    fn site(&self) -> std::sync::MutexGuard<'_, Site> {
        self.site.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What an API request gets (`last_event_id`: the SSE header); None for paths that are
    /// not the API's.
    pub fn handle(
        &self,
        method: &str,
        path: &str,
        query: &str,
        auth: Option<&str>,
        last_event_id: Option<&str>,
        body: &[u8],
    ) -> Option<Handled> {
        let done = |r: Response| Some(Handled::Reply(r));
        let r = match route(method, path)? {
            Ok(r) => r,
            Err(NoRoute::NotFound) => {
                return done(error(StatusCode::NOT_FOUND, "no such endpoint"));
            }
            Err(NoRoute::Method(allow)) => {
                let mut r = error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &format!("method {method} not allowed here (allowed: {allow})"),
                );
                r.headers_mut()
                    .insert("allow", warp::http::HeaderValue::from_static(allow));
                return done(r);
            }
        };
        let who = match self.authorize(r.access(), auth) {
            Ok(p) => p,
            Err(resp) => return done(*resp),
        };
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if r == Route::Events {
            let j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
            let after = last_event_id
                .and_then(|id| j.parse_id(id))
                .map_or(j.last(), |n| n.min(j.last()));
            let kinds = params.iter().find(|(k, _)| k == "kinds").map(|(_, v)| {
                v.split(',')
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect()
            });
            return Some(Handled::Events { after, kinds });
        }
        done(match r {
            Route::OpenApi => {
                warp::reply::with_header(self.openapi(), "content-type", "application/json")
                    .into_response()
            }
            Route::Health => self.health(),
            Route::Live => json(StatusCode::OK, &serde_json::json!({"status": "alive"})),
            Route::Ready => match self.site().ready() {
                Ok(()) => json(StatusCode::OK, &serde_json::json!({"status": "ready"})),
                Err(why) => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({"status": "starting", "detail": why}),
                ),
            },
            Route::Metrics => {
                let body = self.metrics.lock().map(|m| m.render()).unwrap_or_default();
                warp::reply::with_header(body, "content-type", "text/plain; version=0.0.4")
                    .into_response()
            }
            Route::Cameras => json(
                StatusCode::OK,
                &serde_json::json!({ "cameras": self.site().cameras() }),
            ),
            Route::Presence => json(
                StatusCode::OK,
                &serde_json::json!({ "groups": self.site().presence_groups() }),
            ),
            Route::Alerts => {
                let since = params.iter().find(|(k, _)| k == "since").map(|(_, v)| v);
                if let Some(s) = since
                    && let Err(e) = check_since(s)
                {
                    return done(error(StatusCode::BAD_REQUEST, &e));
                }
                json(
                    StatusCode::OK,
                    &serde_json::json!({ "alerts": self.site().alerts(since.map(String::as_str)) }),
                )
            }
            Route::AckAlert(id) => match self.site().ack(&id, &who.name, &utc_now()) {
                Some(a) => json(StatusCode::OK, &serde_json::json!(a)),
                None => error(StatusCode::NOT_FOUND, &format!("no alert {id}")),
            },
            Route::Map => json(
                StatusCode::OK,
                &serde_json::json!({ "maps": self.site().maps(now_ms) }),
            ),
            Route::Events => error(StatusCode::INTERNAL_SERVER_ERROR, "unreachable"),
            Route::Gallery => self.gallery_list(),
            Route::AddPhoto(label) => self.add_photo(&label, body),
            Route::RemoveIdentity(label) => self.remove_identity(&label),
            Route::AddCamera => self.add_camera(body),
            Route::RemoveCamera(name) => self.remove_camera(&name),
        })
    }

    /// Asks the main loop and waits for its answer (it looks at its queue every 100 ms).
    fn ask(
        &self,
        make: impl FnOnce(std::sync::mpsc::Sender<(u16, String)>) -> crate::run::Command,
    ) -> Result<(u16, String), Box<Response>> {
        let Some(cc) = &self.cameras else {
            return Err(Box::new(error(
                StatusCode::NOT_IMPLEMENTED,
                "this server does not run cameras",
            )));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let sent = cc
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(make(tx));
        if sent.is_err() {
            return Err(Box::new(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the runner is stopping",
            )));
        }
        rx.recv_timeout(Duration::from_secs(15)).map_err(|_| {
            Box::new(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the runner did not answer within 15 s",
            ))
        })
    }

    fn add_camera(&self, body: &[u8]) -> Response {
        let Some(cc) = &self.cameras else {
            return error(
                StatusCode::NOT_IMPLEMENTED,
                "this server does not run cameras",
            );
        };
        let req: AddCamera = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("body: {e} (expected {{\"name\", \"uri\", \"vars\": {{…}}}})"),
                );
            }
        };
        let desc = match cc
            .file
            .camera(&req.name, &req.uri, &req.vars, &cc.set, |n| {
                std::env::var(n).ok()
            }) {
            Ok(d) => d,
            // The site's configuration, not the request: 409.
            Err(e) if e == sightline_core::runner::NO_TEMPLATE => {
                return error(StatusCode::CONFLICT, &e);
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, &e),
        };
        let name = req.name.clone();
        match self.ask(|reply| crate::run::Command::Add {
            name: req.name,
            uri: req.uri,
            vars: req.vars,
            desc,
            reply,
        }) {
            Ok((201, _)) => json(
                StatusCode::CREATED,
                &serde_json::json!({"name": name, "state": "starting"}),
            ),
            Ok((code, msg)) => error(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &msg,
            ),
            Err(r) => *r,
        }
    }

    fn remove_camera(&self, name: &str) -> Response {
        match self.ask(|reply| crate::run::Command::Remove {
            name: name.to_string(),
            reply,
        }) {
            Ok((202, _)) => {
                // Drained (EOS) within 10 s: 200; still draining: 202.
                let end = std::time::Instant::now() + Duration::from_secs(10);
                while std::time::Instant::now() < end {
                    if !self.site().cameras().iter().any(|c| c.name == name) {
                        return json(StatusCode::OK, &serde_json::json!({"removed": name}));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                json(StatusCode::ACCEPTED, &serde_json::json!({"removing": name}))
            }
            Ok((code, msg)) => error(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &msg,
            ),
            Err(r) => *r,
        }
    }

    fn no_gallery() -> Response {
        error(
            StatusCode::CONFLICT,
            "this site has no gallery (give sightline run --gallery FILE)",
        )
    }

    fn gallery_list(&self) -> Response {
        let Some(path) = self.gallery.as_deref() else {
            return Self::no_gallery();
        };
        match sightline_core::gallery::Gallery::load(path) {
            Ok(g) => json(
                StatusCode::OK,
                &serde_json::json!({
                    "model": g.model(),
                    "identities": g.identities().iter().map(|i| serde_json::json!({
                        "id": i.id, "name": i.name, "embeddings": i.count,
                    })).collect::<Vec<_>>(),
                }),
            ),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    }

    /// Enrols the photo in `body` for `label`: 201 with the identity's number of
    /// embeddings, or 422 (`not an image`, `no face`, `several faces`). The photo itself is
    /// never written anywhere; only its embedding goes into the gallery.
    fn add_photo(&self, label: &str, body: &[u8]) -> Response {
        use sightline_core::enroll::{EnrollError, FacePolicy, embed_bytes};
        let Some(path) = self.gallery.as_deref() else {
            return Self::no_gallery();
        };
        // The model of the gallery, read without the lock (the photo is embedded first;
        // only the change of the file is one at a time).
        let model = match sightline_core::gallery::Gallery::load(path) {
            Ok(g) => g.model().to_string(),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        let (mut det, emb) = match crate::gallery_cmd::models_for(&model) {
            Ok(m) => m,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        };
        let v = match embed_bytes(&mut det, &emb, body, FacePolicy::Single, "the photo") {
            Ok((v, _)) => v,
            Err(EnrollError::NoFace(_)) => {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "no face");
            }
            Err(EnrollError::SeveralFaces { count, .. }) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("several faces ({count}): send a photo of one person"),
                );
            }
            Err(EnrollError::Decode(e)) => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("not an image ({e})"),
                );
            }
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        let _one = self.gallery_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut g = match sightline_core::gallery::Gallery::load(path) {
            Ok(g) => g,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        if let Err(e) = g.add(label, &v) {
            return error(StatusCode::BAD_REQUEST, &e.to_string());
        }
        if let Err(e) = g.save(path) {
            return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
        }
        let ident = g.identities().iter().find(|i| i.name == label);
        json(
            StatusCode::CREATED,
            &serde_json::json!({
                "label": label,
                "id": ident.as_ref().map(|i| i.id.clone()),
                "embeddings": ident.map_or(0, |i| i.count),
            }),
        )
    }

    fn remove_identity(&self, label: &str) -> Response {
        let Some(path) = self.gallery.as_deref() else {
            return Self::no_gallery();
        };
        let _one = self.gallery_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut g = match sightline_core::gallery::Gallery::load(path) {
            Ok(g) => g,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        if !g.remove(label) {
            return error(StatusCode::NOT_FOUND, &format!("no identity {label}"));
        }
        match g.save(path) {
            Ok(()) => json(StatusCode::OK, &serde_json::json!({"removed": label})),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    }

    fn health(&self) -> Response {
        let down = self.metrics.lock().map_or(0, |m| {
            m.series("sightline_camera_up")
                .filter(|(_, up)| *up == 0.0)
                .count()
        });
        let status = if down == 0 { "ok" } else { "degraded" };
        let code = if down == 0 {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json(
            code,
            &serde_json::json!({"status": status, "cameras_down": down}),
        )
    }
}

fn tls_acceptor(cert: &str, key: &str) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    check_tls_pair("--tls-cert/--tls-key", Some(cert), Some(key))?;
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {cert}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--tls-key {key}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Why `dir` cannot serve the viewer page (None: it can): it needs index.html and the
/// gstwebrtc-api library that scripts/setup puts beside it.
pub fn viewer_dir_problem(dir: &Path) -> Option<String> {
    if !dir.join("index.html").is_file() {
        return Some(format!("{}: no index.html there", dir.display()));
    }
    let has_api = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|f| {
            let n = f.file_name().to_string_lossy().to_string();
            n.starts_with("gstwebrtc-api-") && n.ends_with(".min.js")
        });
    (!has_api).then(|| {
        format!(
            "{}: no gstwebrtc-api-*.min.js beside index.html (run scripts/setup)",
            dir.display()
        )
    })
}

/// The events after `after` (of `kinds`, or all), then each new one as it comes; a client
/// that asked for events no longer kept gets a `missed` event with their number first.
fn event_stream(
    api: Arc<Api>,
    after: u64,
    kinds: Option<Vec<String>>,
) -> impl futures_util::Stream<Item = Result<warp::sse::Event, std::convert::Infallible>> {
    use futures_util::StreamExt;
    futures_util::stream::unfold((api, after), move |(api, mut after)| {
        let kinds = kinds.clone();
        async move {
            loop {
                // Registered before looking, so that an event pushed in between wakes us.
                let notify = api.notify.clone();
                let notified = notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let out: Vec<warp::sse::Event> = {
                    let j = api.journal.lock().unwrap_or_else(|e| e.into_inner());
                    let wanted =
                        |k: &str| kinds.as_ref().is_none_or(|ks| ks.iter().any(|x| x == k));
                    let b = j.after(after, wanted, 256);
                    let mut out = Vec::new();
                    if b.missed > 0 {
                        out.push(
                            warp::sse::Event::default()
                                .event("missed")
                                .data(format!("{{\"missed\":{}}}", b.missed)),
                        );
                    }
                    out.extend(b.events.iter().map(|(seq, json)| {
                        warp::sse::Event::default().id(j.id(*seq)).data(&**json)
                    }));
                    if let Some(l) = b.last {
                        after = l;
                    }
                    out
                };
                if !out.is_empty() {
                    return Some((
                        futures_util::stream::iter(out.into_iter().map(Ok)),
                        (api, after),
                    ));
                }
                notified.await;
            }
        }
    })
    .flatten()
}

/// Binds `cfg.addr` (an error at once if it cannot) and serves from a background thread.
pub fn serve(cfg: HttpConfig, api: Api) -> Result<(), String> {
    let acceptor = match &cfg.tls {
        Some((c, k)) => Some(tls_acceptor(c, k)?),
        None => None,
    };
    if let Some(problem) = cfg.web_dir.as_deref().and_then(viewer_dir_problem) {
        return Err(format!("--web {problem}"));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("runner-http")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(&cfg.addr))
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.addr))?;

    let api = Arc::new(api);
    let api_route = warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("last-event-id"))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::header::optional::<String>("transfer-encoding"))
        .and(warp::body::bytes())
        .and_then(
            move |method: warp::http::Method,
                  path: warp::path::FullPath,
                  query: String,
                  auth: Option<String>,
                  last: Option<String>,
                  length: Option<u64>,
                  chunked: Option<String>,
                  body: warp::hyper::body::Bytes| {
                let api = api.clone();
                async move {
                    if length.unwrap_or(0) > MAX_BODY || chunked.is_some() {
                        return Ok(error(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "a request body is at most 16 MiB, with Content-Length",
                        ));
                    }
                    // Token checks may run Argon2 (once per token): off the reactor.
                    let a = api.clone();
                    let handled = tokio::task::spawn_blocking(move || {
                        a.handle(
                            method.as_str(),
                            path.as_str(),
                            &query,
                            auth.as_deref(),
                            last.as_deref(),
                            &body,
                        )
                    })
                    .await
                    .ok()
                    .flatten();
                    match handled {
                        Some(Handled::Reply(r)) => Ok(r),
                        Some(Handled::Events { after, kinds }) => Ok(warp::sse::reply(
                            warp::sse::keep_alive()
                                .interval(Duration::from_secs(15))
                                .stream(event_stream(api, after, kinds)),
                        )
                        .into_response()),
                        None => Err(warp::reject::not_found()),
                    }
                }
            },
        );
    let web_route: BoxedFilter<(warp::filters::fs::File,)> = match cfg.web_dir.clone() {
        Some(dir) => warp::get().and(warp::fs::dir(dir)).boxed(),
        None => warp::any()
            .and_then(|| async { Err(warp::reject::not_found()) })
            .boxed(),
    };
    let routes = api_route.or(web_route);

    std::thread::Builder::new()
        .name("runner-http".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let service = warp::service(routes.clone());
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let service = hyper_util::service::TowerToHyperService::new(service);
                        let builder = hyper_util::server::conn::auto::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        );
                        match acceptor {
                            Some(a) => {
                                let handshake =
                                    tokio::time::timeout(Duration::from_secs(10), a.accept(stream));
                                if let Ok(Ok(tls)) = handshake.await {
                                    let io = hyper_util::rt::TokioIo::new(tls);
                                    let _ = builder.serve_connection(io, service).await;
                                }
                            }
                            None => {
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = builder.serve_connection(io, service).await;
                            }
                        }
                    });
                }
            })
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_core::control::auth::TokenFile;

    /// Removed at the end of the test (the server re-reads it on every change).
    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn make(loopback: bool, with_tokens: bool) -> (Api, Vec<String>, TempFile) {
        let path = std::env::temp_dir().join(format!(
            "sl-http-{}-{loopback}-{with_tokens}.json",
            std::process::id()
        ));
        let mut f = TokenFile::load(&path).unwrap();
        f.tokens.clear();
        let t: Vec<String> = [Role::Viewer, Role::Operator, Role::Admin]
            .iter()
            .map(|r| f.add(r.name(), *r, "2026-12-02T00:00:00Z").unwrap())
            .collect();
        f.save(&path).unwrap();
        let tokens = with_tokens.then(|| Mutex::new(Tokens::open(&path).unwrap()));
        (
            Api {
                metrics: Arc::default(),
                site: Arc::default(),
                tokens,
                loopback,
                metrics_token: Some("prom-secret".into()),
                journal: Arc::new(Mutex::new(Journal::new("n", 10))),
                notify: Arc::default(),
                cameras: None,
                gallery: None,
                gallery_lock: Mutex::new(()),
            },
            t,
            TempFile(path),
        )
    }

    /// The response (the event stream stands for 200).
    fn reply(
        api: &Api,
        method: &str,
        path: &str,
        query: &str,
        auth: Option<&str>,
    ) -> Option<Response> {
        api.handle(method, path, query, auth, None, b"")
            .map(|h| match h {
                Handled::Reply(r) => r,
                Handled::Events { .. } => json(StatusCode::OK, &serde_json::json!({})),
            })
    }

    fn status(api: &Api, method: &str, path: &str, token: Option<&str>) -> u16 {
        let auth = token.map(|t| format!("Bearer {t}"));
        reply(api, method, path, "", auth.as_deref())
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Every route with no token, a wrong one and each role: exactly the documented table.
    #[test]
    fn the_access_matrix() {
        let (api, t, _f) = make(false, true);
        let (viewer, operator, admin) = (
            Some(t[0].as_str()),
            Some(t[1].as_str()),
            Some(t[2].as_str()),
        );
        let wrong = Some("slt_00000000_nope");
        // (method, path, none, wrong, viewer, operator, admin); 404: the ack of an alert that
        // does not exist, once allowed.
        let table: &[(&str, &str, [u16; 5])] = &[
            ("GET", "/api/v1/openapi.json", [200, 200, 200, 200, 200]),
            ("GET", "/health", [200, 200, 200, 200, 200]),
            ("GET", "/health/live", [200, 200, 200, 200, 200]),
            ("GET", "/health/ready", [200, 200, 200, 200, 200]),
            ("GET", "/metrics", [401, 401, 200, 200, 200]),
            ("GET", "/api/v1/cameras", [401, 401, 200, 200, 200]),
            ("GET", "/api/v1/presence", [401, 401, 200, 200, 200]),
            ("GET", "/api/v1/alerts", [401, 401, 200, 200, 200]),
            ("GET", "/api/v1/map", [401, 401, 200, 200, 200]),
            ("GET", "/api/v1/events", [401, 401, 200, 200, 200]),
            // 409: these routes alone have no gallery.
            ("GET", "/api/v1/gallery", [401, 401, 409, 409, 409]),
            (
                "POST",
                "/api/v1/gallery/Ann/photos",
                [401, 401, 403, 409, 409],
            ),
            ("DELETE", "/api/v1/gallery/Ann", [401, 401, 403, 409, 409]),
            ("POST", "/api/v1/alerts/1/ack", [401, 401, 403, 404, 404]),
            // 501: these routes alone run no cameras (the runner test adds and removes).
            ("POST", "/api/v1/cameras", [401, 401, 403, 403, 501]),
            ("DELETE", "/api/v1/cameras/door", [401, 401, 403, 403, 501]),
        ];
        for (m, p, want) in table {
            let got = [None, wrong, viewer, operator, admin].map(|tok| status(&api, m, p, tok));
            assert_eq!(&got, want, "{m} {p}");
        }
        // The metrics token reads /metrics and nothing else.
        assert_eq!(status(&api, "GET", "/metrics", Some("prom-secret")), 200);
        assert_eq!(
            status(&api, "GET", "/api/v1/cameras", Some("prom-secret")),
            401
        );
        assert_eq!(status(&api, "GET", "/metrics", Some("prom-secreT")), 401);
        // Errors are JSON, 401 says how to authenticate, 405 what is allowed.
        let r = reply(&api, "GET", "/api/v1/cameras", "", None).unwrap();
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"sightline\""
        );
        assert_eq!(r.headers()["content-type"], "application/json");
        let r = reply(
            &api,
            "DELETE",
            "/api/v1/cameras",
            "",
            admin.map(|t| format!("Bearer {t}")).as_deref(),
        )
        .unwrap();
        assert_eq!(r.status().as_u16(), 405);
        assert_eq!(r.headers()["allow"], "GET, HEAD, POST");
        assert_eq!(status(&api, "GET", "/api/v1/nothing", admin), 404);
        assert!(
            reply(&api, "GET", "/index.html", "", None).is_none(),
            "the page's"
        );
        let bad = reply(
            &api,
            "GET",
            "/api/v1/alerts",
            "since=yesterday",
            admin.map(|t| format!("Bearer {t}")).as_deref(),
        )
        .unwrap();
        assert_eq!(bad.status().as_u16(), 400);
    }

    #[test]
    fn without_tokens_everyone_is_admin_and_loopback_metrics_are_open() {
        let (api, _, _f) = make(true, false);
        assert_eq!(status(&api, "GET", "/metrics", None), 200);
        assert_eq!(status(&api, "GET", "/api/v1/presence", None), 200);
        assert_eq!(status(&api, "POST", "/api/v1/alerts/1/ack", None), 404);
        let (api, t, _g) = make(true, true);
        assert_eq!(status(&api, "GET", "/metrics", None), 200, "loopback");
        assert_eq!(status(&api, "GET", "/api/v1/presence", None), 401);
        assert_eq!(status(&api, "GET", "/api/v1/presence", Some(&t[0])), 200);
    }

    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        for p in [
            "/api/v1/openapi.json",
            "/api/v1/cameras",
            "/api/v1/cameras/{name}",
            "/api/v1/presence",
            "/api/v1/alerts",
            "/api/v1/alerts/{id}/ack",
            "/api/v1/map",
            "/api/v1/events",
            "/api/v1/gallery",
            "/api/v1/gallery/{label}/photos",
            "/api/v1/gallery/{label}",
            "/health",
            "/health/live",
            "/health/ready",
            "/metrics",
        ] {
            assert!(
                paths.iter().any(|q| *q == p),
                "{p} missing from docs/openapi.json"
            );
            let concrete = p
                .replace("{id}", "1")
                .replace("{name}", "door")
                .replace("{label}", "Ann");
            let method = if p.ends_with("/ack") || p.ends_with("/photos") {
                "POST"
            } else if p.ends_with("{name}") || p.ends_with("{label}") {
                "DELETE"
            } else {
                "GET"
            };
            assert!(
                route(method, &concrete).is_some_and(|r| r.is_ok()),
                "{p} not served"
            );
        }
        assert_eq!(
            paths.len(),
            15,
            "a route documented but not served: {paths:?}"
        );
    }
}
