//! The runner's HTTP(S) endpoint: the JSON API under `/api/v1/` (docs/openapi.json,
//! docs/operations.md), `/metrics` (Prometheus text), `/health` (JSON, 503 while a camera is
//! down), `/health/live`, `/health/ready`, and the dashboard (web/: `/`, `/live`, `/map`,
//! `/gallery`). warp +
//! hyper serve it on a one-thread tokio runtime; with a certificate and key it is HTTPS
//! (tokio-rustls), and a failed handshake (a port scan, a browser that distrusts the
//! certificate) drops only that connection. Who may call what is
//! [`sightline_core::control::api`]'s table; tokens are checked against the `--auth` file.

use sightline_core::control::api::{Access, HistoryRoute, NoRoute, Route, bearer, route};
use sightline_core::control::auth::{Principal, Role, Tokens};
use sightline_core::control::journal::Journal;
use sightline_core::control::session::{
    LoginLimiter, Sessions, clear_cookie, cookie_session, same, set_cookie,
};
use sightline_core::control::site::{Site, check_since};
use sightline_core::events::utc_now;
use sightline_core::runner::{Metrics, check_tls_pair};
use sightline_core::secrets::redact_url;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;

pub struct HttpConfig {
    pub addr: String,
    /// Directory of the dashboard's pages (web/); None: only the API, /metrics and /health.
    pub web_dir: Option<PathBuf>,
    pub tls: Option<(String, String)>,
}

/// Why a posted photo cannot be used (enrolment, search by photo): 422 for what the caller
/// can fix (no image, no face, several faces without `face=X,Y`), 500 for the rest.
fn photo_refused(e: sightline_core::enroll::EnrollError) -> Response {
    use sightline_core::enroll::EnrollError;
    let fixable = match e {
        EnrollError::NoFace(_) => "no face".to_string(),
        EnrollError::NoFaceAt { x, y, count, .. } => {
            format!("no face at ({x:.0}, {y:.0}): {count} face(s) elsewhere")
        }
        EnrollError::SeveralFaces { count, .. } => {
            format!(
                "several faces ({count}): send a photo of one person, or say which with face=X,Y"
            )
        }
        EnrollError::Decode(e) => format!("not an image ({e})"),
        e => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    error(StatusCode::UNPROCESSABLE_ENTITY, &fixable)
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
    /// Browser sessions (the login page) and the limit on failed logins.
    pub sessions: Mutex<Sessions>,
    pub limiter: Mutex<LoginLimiter>,
    /// The server speaks TLS: session cookies are `Secure`.
    pub tls: bool,
    /// The WebRTC signalling server `/api/v1/signalling` proxies to (`ws://host:port`).
    pub signalling: Option<String>,
    /// The runner's history store (`/api/v1/history/…`); None: `--history ""`.
    pub history: Option<sightline_core::history::Location>,
    /// Its connection, opened at the first question.
    pub history_db: Mutex<Option<sightline_core::history::Db>>,
    /// The shared Redis state of the facematch elements, as (URL, gallery key): where an
    /// erasure removes the person too. The URL is None where the element's has a secret
    /// the runner does not know (it reads the URL back redacted).
    pub shared_state: Vec<(Option<String>, String)>,
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
        /// Also the cameras' state (`cameras` events) every this many seconds.
        cameras_every: Option<u64>,
    },
}

/// One request as the API sees it: the parts of it that decide the answer.
#[derive(Default, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// `Authorization`.
    pub auth: Option<&'a str>,
    /// `Cookie`.
    pub cookie: Option<&'a str>,
    /// `X-CSRF-Token`.
    pub csrf: Option<&'a str>,
    /// `Origin` and `Host`: a cookie-authenticated request from another origin is refused.
    pub origin: Option<&'a str>,
    pub host: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// `Last-Event-ID` (the event stream).
    pub last_event_id: Option<&'a str>,
    /// The client's address (the failed-login limit is per address).
    pub client: &'a str,
    pub body: &'a [u8],
}

/// The API description, served at /api/v1/openapi.json.
const OPENAPI: &str = include_str!("../../docs/openapi.json");
/// The login page, served at /login.
const LOGIN_PAGE: &str = include_str!("../../web/login.html");

type Response = warp::reply::Response;

/// How long a snapshot waits for the camera's next frame (and for its encoding).
const SNAPSHOT_WAIT: Duration = Duration::from_secs(3);

/// The frame's size and the faces the enrolment detector finds on it (in the frame itself,
/// not in a decoded copy of its JPEG: they have the same size).
fn faces_on(
    sample: &gst::Sample,
    det: &mut sightline_core::detect::FaceDetector,
) -> Result<(u32, u32, Vec<sightline_core::postprocess::Detection>), String> {
    let caps = sample.caps().ok_or("no caps")?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| e.to_string())?;
    let buf = sample.buffer().ok_or("no buffer")?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &info)
        .map_err(|e| e.to_string())?;
    let view = sightline_core::video::image_view(&frame).map_err(|e| e.to_string())?;
    let faces = det
        .detect(&view, &sightline_core::enroll::enrol_params())
        .map_err(|e| e.to_string())?;
    Ok((info.width(), info.height(), faces))
}

/// `X,Y` (numbers) → the point.
fn parse_point(v: &str) -> Option<(f32, f32)> {
    let (x, y) = v.split_once(',')?;
    let (x, y) = (x.trim().parse::<f32>().ok()?, y.trim().parse::<f32>().ok()?);
    (x.is_finite() && y.is_finite()).then_some((x, y))
}

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

fn too_many(wait_ms: u64) -> Response {
    let secs = wait_ms.div_ceil(1000).max(1);
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("too many failed logins from this address: try again in {secs} s"),
    );
    if let Ok(v) = warp::http::HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

fn no_signalling() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "this site has no WebRTC signalling server (a webrtcsink with run-signalling-server=true, or sightline run --signalling)",
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whether an `Origin` header names the `Host` the request came to.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    url::Url::parse(origin).is_ok_and(|u| {
        let o = match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return false,
        };
        o.eq_ignore_ascii_case(host)
    })
}

/// Who is calling, and how.
pub struct Caller {
    pub who: Principal,
    /// The CSRF token of the browser session the call came with (None: a bearer token, or
    /// no checks).
    pub csrf: Option<String>,
}

fn is_write(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

impl Api {
    fn tokens(&self) -> Option<std::sync::MutexGuard<'_, Tokens>> {
        let mut t = self
            .tokens
            .as_ref()?
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Err(e) = t.refresh() {
            eprintln!(
                "{}",
                serde_json::json!({"utc": utc_now(), "level": "warning", "unit": "api",
                    "msg": format!("{e}; the tokens read before stay in force")})
            );
        }
        Some(t)
    }

    /// `token`'s holder; a token never verified before costs an Argon2 run and counts
    /// against the client's failed tries when wrong. While the client must wait, a token
    /// is not checked: a login gets 429, an API call 401 (it did not authenticate), both
    /// with `Retry-After`.
    fn check_token(
        &self,
        token: &str,
        client: &str,
        login: bool,
    ) -> Result<Principal, Box<Response>> {
        let Some(mut tokens) = self.tokens() else {
            return Err(Box::new(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no token file",
            )));
        };
        if let Some(p) = tokens.known(token) {
            return Ok(p);
        }
        let mut limiter = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        if let Err(wait) = limiter.check(client, now) {
            let mut r = too_many(wait);
            if !login {
                *r.status_mut() = StatusCode::UNAUTHORIZED;
                r.headers_mut().insert(
                    "www-authenticate",
                    warp::http::HeaderValue::from_static("Bearer realm=\"sightline\""),
                );
            }
            return Err(Box::new(r));
        }
        match tokens.verify(token) {
            Some(p) => {
                limiter.succeeded(client);
                Ok(p)
            }
            None => {
                limiter.failed(client, now);
                Err(Box::new(error(
                    StatusCode::UNAUTHORIZED,
                    "unknown or revoked token",
                )))
            }
        }
    }

    /// Who is calling, if they may call a route of `access`: the response to send if not.
    fn authorize(&self, access: Access, req: &Request) -> Result<Caller, Box<Response>> {
        let local = Caller {
            who: Principal {
                name: "local".into(),
                role: Role::Admin,
            },
            csrf: None,
        };
        let need = match access {
            Access::Open => return Ok(local),
            Access::Metrics if self.loopback => return Ok(local),
            Access::Metrics => {
                if let (Some(want), Some(got)) = (&self.metrics_token, bearer(req.auth))
                    && same(want, got)
                {
                    return Ok(local);
                }
                Role::Viewer
            }
            Access::Role(r) => r,
        };
        if self.tokens.is_none() {
            return Ok(local);
        }
        let caller = if let Some(token) = bearer(req.auth) {
            Caller {
                who: self.check_token(token, req.client, false)?,
                csrf: None,
            }
        } else if let Some(sid) = cookie_session(req.cookie) {
            self.session_caller(sid, req)?
        } else {
            return Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "authentication required: Authorization: Bearer TOKEN, or log in at /login",
            )));
        };
        if caller.who.role < need {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                &format!(
                    "token {} has role {}; this needs {}",
                    caller.who.name,
                    caller.who.role.name(),
                    need.name()
                ),
            )));
        }
        Ok(caller)
    }

    /// The holder of browser session `sid`; a write must carry the session's CSRF token,
    /// and a request from another origin is refused.
    fn session_caller(&self, sid: &str, req: &Request) -> Result<Caller, Box<Response>> {
        let ended = || {
            Box::new(error(
                StatusCode::UNAUTHORIZED,
                "no such session (logged out, expired or the runner restarted): log in at /login",
            ))
        };
        let s = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sid, now_ms())
            .ok_or_else(ended)?;
        let who = self.tokens().and_then(|t| t.by_id(&s.token_id));
        let Some(who) = who else {
            self.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove_token(&s.token_id);
            return Err(ended());
        };
        if let Some(o) = req.origin
            && !same_origin(o, req.host)
        {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "a request from another origin with the session cookie is refused",
            )));
        }
        if is_write(req.method) && !req.csrf.is_some_and(|c| same(c, &s.csrf)) {
            return Err(Box::new(error(
                StatusCode::FORBIDDEN,
                "CSRF token missing or wrong: send the session's X-CSRF-Token (GET /api/v1/session)",
            )));
        }
        Ok(Caller {
            who,
            csrf: Some(s.csrf),
        })
    }

    /// POST /api/v1/login `{"token": "…"}`: a session cookie and its CSRF token.
    fn login(&self, req: &Request) -> Response {
        if self.tokens.is_none() {
            return json(
                StatusCode::OK,
                &serde_json::json!({"name": "local", "role": "admin", "csrf": null, "auth": false}),
            );
        }
        let is_json = req
            .content_type
            .and_then(|c| c.split(';').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send {\"token\": \"…\"} as application/json",
            );
        }
        #[derive(serde::Deserialize)]
        struct Login {
            token: String,
        }
        let Ok(l) = serde_json::from_slice::<Login>(req.body) else {
            return error(StatusCode::BAD_REQUEST, "body: expected {\"token\": \"…\"}");
        };
        let who = match self.check_token(l.token.trim(), req.client, true) {
            Ok(p) => p,
            Err(r) => return *r,
        };
        let Some(id) = self.tokens().and_then(|t| t.id_of(&who.name)) else {
            return error(StatusCode::UNAUTHORIZED, "unknown or revoked token");
        };
        let made = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .create(&id, now_ms());
        let (sid, csrf) = match made {
            Ok(m) => m,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        };
        let mut r = json(
            StatusCode::OK,
            &serde_json::json!({"name": who.name, "role": who.role.name(), "csrf": csrf, "auth": true}),
        );
        if let Ok(v) = warp::http::HeaderValue::from_str(&set_cookie(&sid, self.tls)) {
            r.headers_mut().insert("set-cookie", v);
        }
        r.headers_mut().insert(
            "cache-control",
            warp::http::HeaderValue::from_static("no-store"),
        );
        r
    }

    /// POST /api/v1/logout: ends the session of the cookie (a write: with its CSRF token).
    fn logout(&self, req: &Request) -> Response {
        if let Some(sid) = cookie_session(req.cookie)
            && self.tokens.is_some()
        {
            match self.session_caller(sid, req) {
                Err(r) if r.status() == StatusCode::FORBIDDEN => return *r,
                Err(_) => {}
                Ok(_) => {
                    self.sessions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(sid);
                }
            }
        }
        let mut r = json(StatusCode::OK, &serde_json::json!({"status": "logged out"}));
        if let Ok(v) = warp::http::HeaderValue::from_str(&clear_cookie(self.tls)) {
            r.headers_mut().insert("set-cookie", v);
        }
        r
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

    /// Where the signalling WebSocket of `req` goes, if it may open one (the response to
    /// send if not).
    pub fn signalling(&self, req: &Request) -> Result<String, Box<Response>> {
        self.authorize(Access::Role(Role::Viewer), req)?;
        self.signalling
            .clone()
            .ok_or_else(|| Box::new(no_signalling()))
    }

    /// What an API request gets; None for paths that are not the API's.
    pub fn handle(&self, req: &Request) -> Option<Handled> {
        let done = |r: Response| Some(Handled::Reply(r));
        let method = req.method;
        if req.path == "/login" && (method == "GET" || method == "HEAD") {
            let mut r = warp::reply::html(LOGIN_PAGE).into_response();
            r.headers_mut().insert(
                "content-security-policy",
                warp::http::HeaderValue::from_static(
                    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                ),
            );
            return done(r);
        }
        let r = match route(method, req.path)? {
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
        let caller = match self.authorize(r.access(), req) {
            Ok(p) => p,
            Err(resp) => return done(*resp),
        };
        let who = caller.who;
        let params: Vec<(String, String)> = url::form_urlencoded::parse(req.query.as_bytes())
            .into_owned()
            .collect();
        if r == Route::Events {
            let j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
            let after = req
                .last_event_id
                .and_then(|id| j.parse_id(id))
                .map_or(j.last(), |n| n.min(j.last()));
            let kinds = params.iter().find(|(k, _)| k == "kinds").map(|(_, v)| {
                v.split(',')
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect()
            });
            let cameras_every = match params.iter().find(|(k, _)| k == "cameras") {
                None => None,
                Some((_, v)) => match v.parse::<u64>() {
                    Ok(n @ 1..=60) => Some(n),
                    _ => {
                        return done(error(
                            StatusCode::BAD_REQUEST,
                            "cameras: seconds between camera reports, 1 to 60",
                        ));
                    }
                },
            };
            return Some(Handled::Events {
                after,
                kinds,
                cameras_every,
            });
        }
        done(match r {
            Route::OpenApi => {
                warp::reply::with_header(self.openapi(), "content-type", "application/json")
                    .into_response()
            }
            Route::Login => self.login(req),
            Route::Logout => self.logout(req),
            Route::Session => json(
                StatusCode::OK,
                &serde_json::json!({"name": who.name, "role": who.role.name(),
                    "csrf": caller.csrf, "auth": self.tokens.is_some()}),
            ),
            // Here only without an upgrade (the WebSocket is served before).
            Route::Signalling => match self.signalling {
                Some(_) => error(
                    StatusCode::UPGRADE_REQUIRED,
                    "the signalling endpoint is a WebSocket (Upgrade: websocket)",
                ),
                None => no_signalling(),
            },
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
                Some((a, published)) => {
                    // The first acknowledgement is an event like the others (the event
                    // stream, the history, the published sinks), sent by the main loop.
                    if let (Some(ev), Some(c)) = (published, self.cameras.as_ref())
                        && let Ok(tx) = c.commands.lock()
                    {
                        let _ = tx.send(crate::run::Command::Publish(ev));
                    }
                    json(StatusCode::OK, &serde_json::json!(a))
                }
                None => error(StatusCode::NOT_FOUND, &format!("no alert {id}")),
            },
            Route::Map => json(
                StatusCode::OK,
                &serde_json::json!({ "maps": self.site().maps(now_ms()) }),
            ),
            Route::FloorPlan(map) => self.floor_plan(&map),
            Route::Events => error(StatusCode::INTERNAL_SERVER_ERROR, "unreachable"),
            Route::Gallery => self.gallery_list(),
            Route::AddPhoto(label) => {
                let face = match params.iter().find(|(k, _)| k == "face") {
                    None => None,
                    Some((_, v)) => match parse_point(v) {
                        Some(p) => Some(p),
                        None => {
                            return done(error(
                                StatusCode::BAD_REQUEST,
                                "face: the point X,Y (photo pixels) of the face to enrol",
                            ));
                        }
                    },
                };
                self.add_photo(&label, req.body, face)
            }
            Route::Snapshot(name) => self.snapshot(&name),
            Route::History(h) => self.history(h, &params, req.body, &who.name),
            Route::RemoveIdentity(label) => self.remove_identity(&label),
            Route::AddCamera => self.add_camera(req.body),
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
    fn add_photo(&self, label: &str, body: &[u8], face: Option<(f32, f32)>) -> Response {
        use sightline_core::enroll::{FacePolicy, embed_bytes, review_consistency};
        let policy = face.map_or(FacePolicy::Single, |(x, y)| FacePolicy::At(x, y));
        let Some(path) = self.gallery.as_deref() else {
            return Self::no_gallery();
        };
        // The model of the gallery, read without the lock (the photo is embedded first;
        // only the change of the file is one at a time).
        let (model, before) = match sightline_core::gallery::Gallery::load(path) {
            Ok(g) => {
                let before: Vec<Vec<f32>> = g
                    .identities()
                    .iter()
                    .position(|i| i.name == label)
                    .map(|k| g.embeddings_of(k).map(|v| v.to_vec()).collect())
                    .unwrap_or_default();
                (g.model().to_string(), before)
            }
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        let threshold = match crate::gallery_cmd::match_threshold(&model) {
            Ok(t) => t,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        };
        let (mut det, emb) = match crate::gallery_cmd::models_for(&model) {
            Ok(m) => m,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        };
        let mut enrolled = match embed_bytes(&mut det, &emb, body, policy, "the photo") {
            Ok(e) => e,
            Err(e) => return photo_refused(e),
        };
        let others: Vec<&[f32]> = before.iter().map(|v| v.as_slice()).collect();
        review_consistency(
            &mut enrolled.review,
            &enrolled.embedding,
            &others,
            threshold,
        );
        if enrolled.review.refused() {
            return json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &serde_json::json!({
                    "error": format!("poor reference photo: {}", enrolled.review.summary()),
                    "review": enrolled.review,
                }),
            );
        }
        let v = enrolled.embedding;
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
                "review": enrolled.review,
            }),
        )
    }

    /// The next frame of camera `name` as JPEG (base64, in memory only: never written) with
    /// the faces the enrolment detector finds on it, for enrolling from a live camera: the
    /// page posts the frame back with `?face=X,Y`.
    fn snapshot(&self, name: &str) -> Response {
        use base64::Engine;
        use sightline_core::video::encode_jpeg;
        let Some(path) = self.gallery.as_deref() else {
            return Self::no_gallery();
        };
        let Some(cc) = &self.cameras else {
            return error(
                StatusCode::NOT_IMPLEMENTED,
                "this server does not run cameras",
            );
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let sent = cc.commands.lock().unwrap_or_else(|e| e.into_inner()).send(
            crate::run::Command::Snapshot {
                name: name.to_string(),
                reply: tx,
            },
        );
        if sent.is_err() {
            return error(StatusCode::SERVICE_UNAVAILABLE, "the runner is stopping");
        }
        let sample = match rx.recv_timeout(SNAPSHOT_WAIT) {
            Ok(Ok(s)) => s,
            Ok(Err((code, msg))) => {
                return error(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    &msg,
                );
            }
            // The site's state (a camera that is down), like the other refusals: 409.
            Err(_) => {
                return error(
                    StatusCode::CONFLICT,
                    &format!(
                        "no frame from camera {name} within {} s (is it down?)",
                        SNAPSHOT_WAIT.as_secs()
                    ),
                );
            }
        };
        let jpeg = match encode_jpeg(&sample, 90, SNAPSHOT_WAIT) {
            Ok(j) => j,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        };
        let model = match sightline_core::gallery::Gallery::load(path) {
            Ok(g) => g.model().to_string(),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
        let (mut det, _) = match crate::gallery_cmd::models_for(&model) {
            Ok(m) => m,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        };
        let faces = faces_on(&sample, &mut det);
        let (width, height, faces) = match faces {
            Ok(f) => f,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        };
        let mut r = json(
            StatusCode::OK,
            &serde_json::json!({
                "camera": name,
                "utc": utc_now(),
                "width": width,
                "height": height,
                "jpeg": base64::engine::general_purpose::STANDARD.encode(&jpeg),
                "faces": faces.iter().map(|f| serde_json::json!({
                    "x": f.x1.round(), "y": f.y1.round(),
                    "width": (f.x2 - f.x1).round(), "height": (f.y2 - f.y1).round(),
                    "confidence": (f.score * 1000.0).round() / 1000.0,
                })).collect::<Vec<_>>(),
            }),
        );
        r.headers_mut().insert(
            "cache-control",
            warp::http::HeaderValue::from_static("no-store"),
        );
        r
    }

    /// The floor-plan image of `map` (the site's configuration, read at each request).
    fn floor_plan(&self, map: &str) -> Response {
        let Some(path) = self.site().floor_plan(map) else {
            return error(
                StatusCode::NOT_FOUND,
                &format!("map {map} has no floor plan (mapview floor-plan=FILE)"),
            );
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("the floor plan {}: {e}", path.display()),
                );
            }
        };
        let kind = if bytes.starts_with(b"\x89PNG") {
            "image/png"
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            "image/jpeg"
        } else {
            "application/octet-stream"
        };
        let mut r = warp::reply::Response::new(bytes.into());
        r.headers_mut()
            .insert("content-type", warp::http::HeaderValue::from_static(kind));
        r
    }

    /// `f` on the history's connection (opened at the first question, kept between
    /// requests, dropped after an error so the next request connects again); a database
    /// that cannot be reached is 503.
    fn with_history<T>(
        &self,
        f: impl FnOnce(&mut sightline_core::history::Db) -> Result<T, String>,
    ) -> Result<T, Box<Response>> {
        let Some(location) = self.history.as_ref() else {
            return Err(Box::new(error(
                StatusCode::NOT_FOUND,
                "this runner keeps no history (--history \"\")",
            )));
        };
        let mut slot = self.history_db.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(
                sightline_core::history::Db::open(location)
                    .map_err(|e| Box::new(error(StatusCode::SERVICE_UNAVAILABLE, &e)))?,
            );
        }
        let r = f(slot.as_mut().expect("opened above"));
        if r.is_err() {
            *slot = None;
        }
        r.map_err(|e| Box::new(error(StatusCode::SERVICE_UNAVAILABLE, &e)))
    }

    /// `POST /api/v1/history/search-face`: the photo's face against the kept embeddings of
    /// each model that made them in the window, best first.
    fn search_face(
        &self,
        params: &[(String, String)],
        range: sightline_core::history::query::Range,
        photo: &[u8],
    ) -> Response {
        use sightline_core::enroll::{FacePolicy, embed_bytes};
        use sightline_core::history::{Val, query};
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let top = match param("top").map(str::parse::<usize>) {
            None => 20,
            Some(Ok(n @ 1..=1000)) => n,
            Some(_) => return error(StatusCode::BAD_REQUEST, "top: a count from 1 to 1000"),
        };
        let threshold = match param("threshold").map(str::parse::<f32>) {
            None => None,
            Some(Ok(t)) if (-1.0..=1.0).contains(&t) => Some(t),
            Some(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "threshold: a cosine similarity from -1 to 1",
                );
            }
        };
        let policy = match param("face").map(parse_point) {
            None => FacePolicy::Single,
            Some(Some((x, y))) => FacePolicy::At(x, y),
            Some(None) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "face: the point X,Y (photo pixels) of the face to look for",
                );
            }
        };
        // Refused before the database is asked (whatever it holds, this is no photo).
        if !photo.starts_with(&[0xFF, 0xD8, 0xFF]) && !photo.starts_with(b"\x89PNG\r\n\x1a\n") {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the request body is not a JPEG or PNG photo",
            );
        }
        // The models first; the photo is embedded without holding the connection.
        let models = match self.with_history(|db| {
            db.query(
                "SELECT DISTINCT model FROM embeddings WHERE t_ms >= $1 AND t_ms < $2",
                &[Val::I(range.from), Val::I(range.to)],
            )
        }) {
            Ok(m) => m,
            Err(r) => return *r,
        };
        let mut hits = Vec::new();
        for model in models.iter().filter_map(|m| m[0].as_str()) {
            let prepared = crate::gallery_cmd::models_for(model).and_then(|m| {
                let t = match threshold {
                    Some(t) => t,
                    None => crate::gallery_cmd::match_threshold(model)?,
                };
                Ok((m, t))
            });
            let ((mut det, emb), t) = match prepared {
                Ok(p) => p,
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
            };
            let face = match embed_bytes(&mut det, &emb, photo, policy, "the photo") {
                Ok(f) => f,
                Err(e) => return photo_refused(e),
            };
            match self
                .with_history(|db| query::search_face(db, &face.embedding, model, range, t, top))
            {
                Ok(h) => hits.extend(h),
                Err(r) => return *r,
            }
        }
        hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        hits.truncate(top);
        json(
            StatusCode::OK,
            &serde_json::json!({"hits": hits, "embeddings_kept": !models.is_empty()}),
        )
    }

    /// `DELETE /api/v1/history/subjects/{subject}`: the person out of the history, the
    /// runner's gallery and the shared Redis state, with an audit record of what went.
    fn erase(&self, subject: &str, actor: &str) -> Response {
        use serde_json::json;
        let mut elsewhere = serde_json::Map::new();
        if let Some(path) = self.gallery.as_deref() {
            let _one = self.gallery_lock.lock().unwrap_or_else(|e| e.into_inner());
            let removed = sightline_core::gallery::Gallery::load(path).and_then(|mut g| {
                let removed = g.remove(subject);
                if removed {
                    g.save(path)?;
                }
                Ok(removed)
            });
            match removed {
                Ok(r) => {
                    elsewhere.insert(
                        "gallery_file".into(),
                        json!({"path": path.display().to_string(), "removed": r}),
                    );
                }
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        let mut redis = Vec::new();
        for (url, key) in &self.shared_state {
            redis.push(match url {
                Some(url) => {
                    match sightline_core::redis_store::erase_person(url, key, subject) {
                        Ok((entries, unknowns)) => json!({
                            "url": sightline_core::secrets::redact_url(url), "key": key,
                            "gallery_entries": entries, "unknown_ids": unknowns}),
                        // Not erased there: said in the answer and in the audit record.
                        Err(e) => json!({"key": key, "error": e}),
                    }
                }
                None => json!({"key": key, "error":
                    "the facematch element's redis-url has a secret the runner cannot read \
                     back; erase there with sightline history erase --redis-url"}),
            });
        }
        if !redis.is_empty() {
            elsewhere.insert("redis".into(), redis.into());
        }
        // The runner's live view (recent alerts, presence, map places) forgets them too.
        let (alerts, people, places) = self.site().forget(subject);
        elsewhere.insert(
            "runner".into(),
            json!({"alerts": alerts, "presence": people, "map_places": places}),
        );
        let elsewhere = serde_json::Value::Object(elsewhere);
        let now = sightline_core::history::now_ms();
        match self.with_history(|db| {
            sightline_core::history::query::erase(db, subject, actor, now, &elsewhere)
        }) {
            Ok(e) => json(
                StatusCode::OK,
                &json!({"erased": e.subject, "rows": e.rows, "elsewhere": elsewhere,
                        "actor": actor, "at": sightline_core::history::utc_of_ms(now)}),
            ),
            Err(r) => *r,
        }
    }

    /// A question to the history store, as `sightline history` asks it. Times are RFC 3339
    /// (`from` inclusive, `to` exclusive); an impossible window or step is 422.
    fn history(
        &self,
        h: HistoryRoute,
        params: &[(String, String)],
        body: &[u8],
        who: &str,
    ) -> Response {
        use sightline_core::history::query::{self, Place, Range};
        if self.history.is_none() {
            return error(
                StatusCode::NOT_FOUND,
                "this runner keeps no history (--history \"\")",
            );
        }
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let time = |k: &str, default: i64| -> Result<i64, String> {
            match param(k) {
                None => Ok(default),
                Some(v) => sightline_core::history::rows::utc_ms(v)
                    .ok_or_else(|| format!("{k}: not an RFC 3339 time (2026-12-02T14:00:00Z)")),
            }
        };
        let range = match (time("from", i64::MIN), time("to", i64::MAX)) {
            (Ok(from), Ok(to)) => Range { from, to },
            (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, &e),
        };
        let answer = |r: Result<serde_json::Value, Box<Response>>| match r {
            Ok(v) => json(StatusCode::OK, &v),
            Err(r) => *r,
        };
        match h {
            HistoryRoute::SearchFace => self.search_face(params, range, body),
            HistoryRoute::Erase(subject) => self.erase(&subject, who),
            HistoryRoute::Alerts if param("group").is_some_and(str::is_empty) => {
                error(StatusCode::BAD_REQUEST, "group: a presence group's name")
            }
            HistoryRoute::Alerts => answer(self.with_history(|db| {
                query::alerts(db, param("group"), range).map(|a| serde_json::json!({"alerts": a}))
            })),
            HistoryRoute::Journey(subject) => answer(self.with_history(|db| {
                query::journey(db, &subject, range).map(|j| {
                    serde_json::json!({"subject": subject, "visits": j.visits, "trail": j.trail})
                })
            })),
            HistoryRoute::Presence(group) => answer(self.with_history(|db| {
                query::presence(db, &group, range)
                    .map(|iv| serde_json::json!({"group": group, "intervals": iv}))
            })),
            HistoryRoute::Occupancy => {
                let place = match (param("zone"), param("camera")) {
                    (Some(z), None) => Place::Zone(z.to_string()),
                    (None, Some(c)) => Place::Camera(c.to_string()),
                    _ => {
                        return error(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "occupancy needs zone or camera (one of them)",
                        );
                    }
                };
                let step = match param("step_seconds").map(str::parse::<f64>) {
                    None => 900_000,
                    Some(Ok(s)) if s.is_finite() && s > 0.0 => (s * 1000.0) as i64,
                    Some(_) => {
                        return error(StatusCode::BAD_REQUEST, "step_seconds: a positive number");
                    }
                };
                if param("from").is_none() || param("to").is_none() {
                    return error(StatusCode::BAD_REQUEST, "occupancy needs from and to");
                }
                // The window or the step cannot make steps (from >= to, too many): 422; the
                // database failing: 503.
                match self.with_history(|db| match query::occupancy(db, &place, range, step) {
                    Err(e) if e.starts_with("history database") => Err(e),
                    r => Ok(r),
                }) {
                    Ok(Ok(steps)) => json(StatusCode::OK, &serde_json::json!({ "steps": steps })),
                    Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, &e),
                    Err(r) => *r,
                }
            }
            HistoryRoute::Heatmap(map) => {
                let cell = match param("cell").map(str::parse::<f64>) {
                    None => 0.25,
                    Some(Ok(c)) if c.is_finite() && c > 0.0 => c,
                    Some(_) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "cell: a positive size in map units",
                        );
                    }
                };
                let png = self.with_history(|db| {
                    query::heatmap(db, &map, range, cell, None)
                        .and_then(|heat| sightline_core::history::heatpng::encode_png(&heat, None))
                });
                match png {
                    Ok((bytes, _, _)) => {
                        let mut r = warp::reply::Response::new(bytes.into());
                        r.headers_mut().insert(
                            "content-type",
                            warp::http::HeaderValue::from_static("image/png"),
                        );
                        r
                    }
                    Err(r) => *r,
                }
            }
        }
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
/// that asked for events no longer kept gets a `missed` event with their number first. With
/// `cameras_every`, a `cameras` event (the body of GET /api/v1/cameras) comes first and then
/// every that many seconds.
fn event_stream(
    api: Arc<Api>,
    after: u64,
    kinds: Option<Vec<String>>,
    cameras_every: Option<u64>,
) -> impl futures_util::Stream<Item = Result<warp::sse::Event, std::convert::Infallible>> {
    use futures_util::StreamExt;
    let first = tokio::time::Instant::now();
    futures_util::stream::unfold((api, after, first), move |(api, mut after, mut tick)| {
        let kinds = kinds.clone();
        async move {
            loop {
                if let Some(every) = cameras_every
                    && tokio::time::Instant::now() >= tick
                {
                    tick += Duration::from_secs(every);
                    let body = serde_json::json!({ "cameras": api.site().cameras() });
                    let ev = warp::sse::Event::default()
                        .event("cameras")
                        .data(body.to_string());
                    return Some((futures_util::stream::iter(vec![Ok(ev)]), (api, after, tick)));
                }
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
                        futures_util::stream::iter(out.into_iter().map(Ok).collect::<Vec<_>>()),
                        (api, after, tick),
                    ));
                }
                if cameras_every.is_some() {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(tick) => {}
                    }
                } else {
                    notified.await;
                }
            }
        }
    })
    .flatten()
}

/// The client's address, put on each request by the server.
#[derive(Clone, Copy)]
struct Peer(std::net::SocketAddr);

fn header<'a>(h: &'a warp::http::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The API's view of a request with `headers`.
fn request<'a>(
    headers: &'a warp::http::HeaderMap,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    client: &'a str,
    body: &'a [u8],
) -> Request<'a> {
    Request {
        method,
        path,
        query,
        auth: header(headers, "authorization"),
        cookie: header(headers, "cookie"),
        csrf: header(headers, "x-csrf-token"),
        origin: header(headers, "origin"),
        host: header(headers, "host"),
        content_type: header(headers, "content-type"),
        last_event_id: header(headers, "last-event-id"),
        client,
        body,
    }
}

/// Carries messages both ways between a browser and the signalling server until either
/// side closes.
async fn proxy(
    client: warp::ws::WebSocket,
    upstream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as Up;
    let (mut to_client, mut from_client) = client.split();
    let (mut to_up, mut from_up) = upstream.split();
    let up = async {
        while let Some(Ok(m)) = from_client.next().await {
            let m = if m.is_close() {
                break;
            } else if let Ok(t) = m.to_str() {
                Up::text(t)
            } else if m.is_binary() {
                Up::binary(m.into_bytes())
            } else {
                continue;
            };
            if to_up.send(m).await.is_err() {
                break;
            }
        }
        let _ = to_up.close().await;
    };
    let down = async {
        while let Some(Ok(m)) = from_up.next().await {
            let m = match m {
                Up::Text(t) => warp::ws::Message::text(t.as_str()),
                Up::Binary(b) => warp::ws::Message::binary(b),
                Up::Close(_) => break,
                _ => continue,
            };
            if to_client.send(m).await.is_err() {
                break;
            }
        }
        let _ = to_client.close().await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
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
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>())
        .and(warp::body::bytes())
        .and_then({
            let api = api.clone();
            move |method: warp::http::Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: warp::http::HeaderMap,
                  peer: Option<Peer>,
                  body: warp::hyper::body::Bytes| {
                let api = api.clone();
                async move {
                    let length = header(&headers, "content-length")
                        .and_then(|l| l.parse::<u64>().ok())
                        .unwrap_or(0);
                    if length > MAX_BODY || headers.contains_key("transfer-encoding") {
                        return Ok(error(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "a request body is at most 16 MiB, with Content-Length",
                        ));
                    }
                    // Token checks may run Argon2 (once per token): off the reactor.
                    let a = api.clone();
                    let handled = tokio::task::spawn_blocking(move || {
                        let client = peer.map(|p| p.0.ip().to_string()).unwrap_or_default();
                        a.handle(&request(
                            &headers,
                            method.as_str(),
                            path.as_str(),
                            &query,
                            &client,
                            &body,
                        ))
                    })
                    .await;
                    // A handler that panicked is a bug, answered as one (500), not as a
                    // missing page.
                    let handled = match handled {
                        Ok(h) => h,
                        Err(_) => Some(Handled::Reply(error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "internal error (see the runner's log)",
                        ))),
                    };
                    match handled {
                        Some(Handled::Reply(r)) => Ok(r),
                        Some(Handled::Events {
                            after,
                            kinds,
                            cameras_every,
                        }) => Ok(warp::sse::reply(
                            warp::sse::keep_alive()
                                .interval(Duration::from_secs(15))
                                .stream(event_stream(api, after, kinds, cameras_every)),
                        )
                        .into_response()),
                        None => Err(warp::reject::not_found()),
                    }
                }
            }
        });
    let ws_route = warp::path!("api" / "v1" / "signalling")
        .and(warp::ws())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>())
        .and_then({
            let api = api.clone();
            move |ws: warp::ws::Ws, headers: warp::http::HeaderMap, peer: Option<Peer>| {
                let api = api.clone();
                async move {
                    let allowed = tokio::task::spawn_blocking(move || {
                        let client = peer.map(|p| p.0.ip().to_string()).unwrap_or_default();
                        api.signalling(&request(
                            &headers,
                            "GET",
                            "/api/v1/signalling",
                            "",
                            &client,
                            &[],
                        ))
                    })
                    .await;
                    let upstream = match allowed {
                        Ok(Ok(u)) => u,
                        Ok(Err(r)) => return Ok::<Response, warp::Rejection>(*r),
                        Err(_) => {
                            return Ok(error(StatusCode::INTERNAL_SERVER_ERROR, "worker failed"));
                        }
                    };
                    // Connected before the upgrade: a signalling server that is not there
                    // is a 502 the browser sees, not a socket that closes.
                    let up = tokio::time::timeout(
                        Duration::from_secs(5),
                        tokio_tungstenite::connect_async(upstream.as_str()),
                    )
                    .await;
                    let up = match up {
                        Ok(Ok((up, _))) => up,
                        Ok(Err(e)) => {
                            return Ok(error(
                                StatusCode::BAD_GATEWAY,
                                &format!("the signalling server {}: {e}", redact_url(&upstream)),
                            ));
                        }
                        Err(_) => {
                            return Ok(error(
                                StatusCode::GATEWAY_TIMEOUT,
                                &format!(
                                    "the signalling server {} did not answer in 5 s",
                                    redact_url(&upstream)
                                ),
                            ));
                        }
                    };
                    Ok(ws
                        .max_message_size(1 << 20)
                        .on_upgrade(move |client| proxy(client, up))
                        .into_response())
                }
            }
        });
    let web_route: BoxedFilter<(warp::filters::fs::File,)> = match cfg.web_dir.clone() {
        // The dashboard's pages by their names, the rest (index.html at /, the scripts) as
        // files.
        Some(dir) => {
            let page = |name: &'static str| {
                warp::get()
                    .and(warp::path(name))
                    .and(warp::path::end())
                    .and(warp::fs::file(dir.join(format!("{name}.html"))))
            };
            page("live")
                .or(page("map"))
                .unify()
                .or(page("gallery"))
                .unify()
                .or(warp::get().and(warp::fs::dir(dir)))
                .unify()
                .boxed()
        }
        None => warp::any()
            .and_then(|| async { Err(warp::reject::not_found()) })
            .boxed(),
    };
    let routes = ws_route.or(api_route).or(web_route);

    std::thread::Builder::new()
        .name("runner-http".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    let Ok((stream, peer)) = listener.accept().await else {
                        continue;
                    };
                    let warp_service = warp::service(routes.clone());
                    // The client's address travels with each request (the failed-login
                    // limit is per address).
                    let service = warp::hyper::service::service_fn(
                        move |mut req: warp::http::Request<warp::hyper::body::Incoming>| {
                            req.extensions_mut().insert(Peer(peer));
                            let mut s = warp_service.clone();
                            async move { tower_service::Service::call(&mut s, req).await }
                        },
                    );
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let builder = hyper_util::server::conn::auto::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        );
                        match acceptor {
                            Some(a) => {
                                let handshake =
                                    tokio::time::timeout(Duration::from_secs(10), a.accept(stream));
                                if let Ok(Ok(tls)) = handshake.await {
                                    let io = hyper_util::rt::TokioIo::new(tls);
                                    let _ =
                                        builder.serve_connection_with_upgrades(io, service).await;
                                }
                            }
                            None => {
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = builder.serve_connection_with_upgrades(io, service).await;
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
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "sl-http-{}-{n}-{loopback}-{with_tokens}.json",
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
                sessions: Mutex::default(),
                limiter: Mutex::default(),
                tls: true,
                signalling: None,
                history: None,
                history_db: Mutex::default(),
                shared_state: Vec::new(),
            },
            t,
            TempFile(path),
        )
    }

    /// A client address of its own for each request: the limit on failed tries is not
    /// what the access matrix is about.
    fn fresh_client() -> String {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255)
    }

    fn answer(api: &Api, req: &Request) -> Option<Response> {
        api.handle(req).map(|h| match h {
            Handled::Reply(r) => r,
            Handled::Events { .. } => json(StatusCode::OK, &serde_json::json!({})),
        })
    }

    /// The response (the event stream stands for 200).
    fn reply(
        api: &Api,
        method: &str,
        path: &str,
        query: &str,
        auth: Option<&str>,
    ) -> Option<Response> {
        let client = fresh_client();
        answer(
            api,
            &Request {
                method,
                path,
                query,
                auth,
                client: &client,
                ..Request::default()
            },
        )
    }

    fn body(r: Response) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(http_body_util::BodyExt::collect(r.into_body()))
            .unwrap()
            .to_bytes();
        serde_json::from_slice(&bytes).unwrap()
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
            (
                "GET",
                "/api/v1/map/site/floor-plan",
                [401, 401, 404, 404, 404],
            ),
            ("GET", "/api/v1/events", [401, 401, 200, 200, 200]),
            // 409: these routes alone have no gallery.
            ("GET", "/api/v1/gallery", [401, 401, 409, 409, 409]),
            (
                "POST",
                "/api/v1/gallery/Ann/photos",
                [401, 401, 403, 409, 409],
            ),
            ("DELETE", "/api/v1/gallery/Ann", [401, 401, 403, 409, 409]),
            (
                "GET",
                "/api/v1/cameras/door/snapshot",
                [401, 401, 403, 409, 409],
            ),
            ("POST", "/api/v1/alerts/1/ack", [401, 401, 403, 404, 404]),
            // 501: these routes alone run no cameras (the runner test adds and removes).
            ("POST", "/api/v1/cameras", [401, 401, 403, 403, 501]),
            ("DELETE", "/api/v1/cameras/door", [401, 401, 403, 403, 501]),
            ("GET", "/api/v1/session", [401, 401, 200, 200, 200]),
            // 404: these routes alone have no signalling server, and no history.
            ("GET", "/api/v1/signalling", [401, 401, 404, 404, 404]),
            (
                "GET",
                "/api/v1/history/journey/Ann",
                [401, 401, 404, 404, 404],
            ),
            (
                "GET",
                "/api/v1/history/presence/outlet",
                [401, 401, 404, 404, 404],
            ),
            (
                "GET",
                "/api/v1/history/occupancy",
                [401, 401, 404, 404, 404],
            ),
            (
                "GET",
                "/api/v1/history/heatmap/floor",
                [401, 401, 404, 404, 404],
            ),
            ("GET", "/api/v1/history/alerts", [401, 401, 404, 404, 404]),
            (
                "POST",
                "/api/v1/history/search-face",
                [401, 401, 403, 404, 404],
            ),
            (
                "DELETE",
                "/api/v1/history/subjects/Ann",
                [401, 401, 403, 403, 404],
            ),
            // 415: a login is JSON; tokens in the header play no part.
            ("POST", "/api/v1/login", [415, 415, 415, 415, 415]),
            ("POST", "/api/v1/logout", [200, 200, 200, 200, 200]),
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
        for q in ["cameras=0", "cameras=61", "cameras=soon"] {
            let bad = reply(
                &api,
                "GET",
                "/api/v1/events",
                q,
                admin.map(|t| format!("Bearer {t}")).as_deref(),
            )
            .unwrap();
            assert_eq!(bad.status().as_u16(), 400, "{q}");
        }
        assert_eq!(parse_point("12.5, 40"), Some((12.5, 40.0)));
        assert_eq!(parse_point("12"), None);
        assert_eq!(parse_point("NaN,1"), None);
    }

    /// What a fuzzer sends (schemathesis found it): a step far wider than any window and
    /// times centuries apart are answered (one step), not a panic.
    #[test]
    fn history_questions_with_extreme_numbers_are_answered() {
        let (mut api, _t, f) = make(true, false);
        let db = f.0.with_extension("history.db");
        let location = sightline_core::history::Location::Sqlite(db.clone());
        sightline_core::history::Db::open(&location).unwrap();
        api.history = Some(location);
        let get = |q: &str| reply(&api, "GET", "/api/v1/history/occupancy", q, None).unwrap();
        let r =
            get("zone=till&from=1488-01-22T08:40:14Z&to=1661-04-16T06:17:32Z&step_seconds=3e16");
        assert_eq!(r.status(), 200);
        assert_eq!(body(r)["steps"].as_array().unwrap().len(), 1);
        let r =
            get("zone=till&from=2026-12-02T00:00:00Z&to=2026-12-02T01:00:00Z&step_seconds=1e-9");
        assert_eq!(r.status(), 422, "a step under a millisecond makes no steps");
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
    }

    /// Search by photo and erasure through the API, on a history holding a stranger's kept
    /// embedding (a real face through the real models, as `--history-embeddings` keeps it).
    #[test]
    fn a_stranger_is_found_by_photo_and_erased_through_the_api() {
        use sightline_core::delivery::{DeliverEvent, Item};
        use sightline_core::enroll::{FacePolicy, embed_file};
        gst::init().unwrap();
        let face = |f: &str| {
            sightline_testkit::shared_data(&format!("faces/face_recognition_examples/{f}"))
        };
        let (mut api, t, f) = make(false, true);
        let (viewer, operator, admin) = (&t[0], &t[1], &t[2]);
        let db = f.0.with_extension("search.db");
        let location = sightline_core::history::Location::Sqlite(db.clone());
        let (mut det, emb) = crate::gallery_cmd::models_for("mobilefacenet").unwrap();
        let biden = embed_file(&mut det, &emb, &face("biden/biden.jpg"), FacePolicy::Single)
            .unwrap()
            .embedding;
        let kept = sightline_core::events::Event::new(
            sightline_core::history::rows::EMBEDDING_KIND,
            "facematch0",
            "door",
            None,
            "2026-12-02T10:00:00.000Z".into(),
            serde_json::json!({"track-id": 3, "label": "unknown", "identity": "",
                "unknown-id": "unknown-9", "model": "mobilefacenet",
                "embedding": sightline_core::history::rows::encode_embedding(&biden)}),
        );
        let mut w = sightline_core::history::Writer::new(
            &location,
            &sightline_core::history::Retention::default(),
            "n-runner-1",
            "n",
        );
        let item = Item {
            seq: 1,
            json: serde_json::to_string(&kept).unwrap().into(),
            alert: false,
        };
        let (n, r) = w.deliver_batch(&[item]);
        assert_eq!(n, 1, "{r:?}");
        api.history = Some(location);
        // The runner's live view has the stranger's alert.
        api.site().event(
            &sightline_core::events::Event::new(
                "presence-alert",
                "alert0",
                "door",
                None,
                "2026-12-02T10:00:01.000Z".into(),
                serde_json::json!({"group": "shop", "event": "unknown", "identity": "",
                    "unknown-id": "unknown-9", "cameras": ["door", "till"]}),
            ),
            0,
        );
        assert_eq!(api.site().alerts(None).len(), 1);
        let post = |token: &str, path: &str, body: &[u8]| {
            let auth = format!("Bearer {token}");
            let client = fresh_client();
            answer(
                &api,
                &Request {
                    method: if path.contains("subjects") {
                        "DELETE"
                    } else {
                        "POST"
                    },
                    path,
                    auth: Some(&auth),
                    client: &client,
                    body,
                    ..Request::default()
                },
            )
            .unwrap()
        };
        let search = "/api/v1/history/search-face";
        let other_photo = std::fs::read(face("biden/biden2.jpg")).unwrap();
        assert_eq!(post(viewer, search, &other_photo).status(), 403);
        let r = post(operator, search, &other_photo);
        assert_eq!(r.status(), 200);
        let found = body(r);
        assert_eq!(found["embeddings_kept"], true);
        assert_eq!(found["hits"][0]["unknown_id"], "unknown-9", "{found}");
        assert_eq!(found["hits"][0]["camera"], "door");
        let obama = std::fs::read(face("obama/obama2.jpg")).unwrap();
        let none = body(post(operator, search, &obama));
        assert_eq!(none["hits"].as_array().unwrap().len(), 0, "{none}");
        assert_eq!(post(operator, search, b"not a photo").status(), 422);
        // Erased: gone from the search; the answer says what went.
        let erase = "/api/v1/history/subjects/unknown-9";
        assert_eq!(post(operator, erase, b"").status(), 403);
        let r = post(admin, erase, b"");
        assert_eq!(r.status(), 200);
        let gone = body(r);
        assert_eq!(gone["rows"]["embeddings"], 1, "{gone}");
        assert_eq!(gone["actor"], "admin");
        assert_eq!(gone["elsewhere"]["runner"]["alerts"], 1, "{gone}");
        assert!(api.site().alerts(None).is_empty(), "the live alert is gone");
        let after = body(post(operator, search, &other_photo));
        assert_eq!(after["hits"].as_array().unwrap().len(), 0, "{after}");
        drop(api);
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
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
            "/api/v1/cameras/{name}/snapshot",
            "/api/v1/presence",
            "/api/v1/alerts",
            "/api/v1/alerts/{id}/ack",
            "/api/v1/map",
            "/api/v1/map/{map}/floor-plan",
            "/api/v1/events",
            "/api/v1/gallery",
            "/api/v1/gallery/{label}/photos",
            "/api/v1/gallery/{label}",
            "/health",
            "/health/live",
            "/health/ready",
            "/metrics",
            "/api/v1/login",
            "/api/v1/logout",
            "/api/v1/session",
            "/api/v1/signalling",
            "/api/v1/history/journey/{subject}",
            "/api/v1/history/presence/{group}",
            "/api/v1/history/occupancy",
            "/api/v1/history/heatmap/{map}",
            "/api/v1/history/alerts",
            "/api/v1/history/search-face",
            "/api/v1/history/subjects/{subject}",
        ] {
            assert!(
                paths.iter().any(|q| *q == p),
                "{p} missing from docs/openapi.json"
            );
            let concrete = p
                .replace("{id}", "1")
                .replace("{name}", "door")
                .replace("{map}", "site")
                .replace("{label}", "Ann")
                .replace("{subject}", "Ann");
            let method = if p.ends_with("/ack")
                || p.ends_with("/photos")
                || p.ends_with("/search-face")
                || p.ends_with("/login")
                || p.ends_with("/logout")
            {
                "POST"
            } else if p.ends_with("{name}")
                || p.ends_with("{label}")
                || p.ends_with("subjects/{subject}")
            {
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
            28,
            "a route documented but not served: {paths:?}"
        );
    }

    fn login(api: &Api, token: &str, client: &str) -> Response {
        let body = serde_json::json!({ "token": token }).to_string();
        answer(
            api,
            &Request {
                method: "POST",
                path: "/api/v1/login",
                content_type: Some("application/json"),
                client,
                body: body.as_bytes(),
                ..Request::default()
            },
        )
        .unwrap()
    }

    /// A browser session: the cookie's flags, reads with the cookie, writes only with the
    /// CSRF token and from this origin, logout and revocation end it.
    #[test]
    fn a_login_makes_a_session_cookie_and_writes_need_its_csrf_token() {
        let (api, t, f) = make(false, true);
        let r = login(&api, &t[1], "192.0.2.1");
        assert_eq!(r.status(), 200);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(cookie.contains(flag), "{cookie}");
        }
        assert!(!cookie.contains(&t[1]), "the token is not the cookie");
        let b = body(r);
        assert_eq!(b["name"], "operator");
        assert_eq!(b["role"], "operator");
        let csrf = b["csrf"].as_str().unwrap().to_string();
        let sid = cookie
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("sightline_session=")
            .to_string();
        let jar = format!("theme=dark; sightline_session={sid}");
        let call = |method: &str, path: &str, csrf: Option<&str>, origin: Option<&str>| {
            answer(
                &api,
                &Request {
                    method,
                    path,
                    cookie: Some(&jar),
                    csrf,
                    origin,
                    host: Some("site.example:9108"),
                    client: "192.0.2.1",
                    ..Request::default()
                },
            )
            .unwrap()
        };
        assert_eq!(call("GET", "/api/v1/presence", None, None).status(), 200);
        let s = body(call("GET", "/api/v1/session", None, None));
        assert_eq!(
            (s["name"].as_str(), s["csrf"].as_str()),
            (Some("operator"), Some(&*csrf))
        );
        // A cookie-authenticated write: 403 without the CSRF token or with a wrong one;
        // with it the request goes through (404: there is no alert 1).
        let ack = "/api/v1/alerts/1/ack";
        assert_eq!(call("POST", ack, None, None).status(), 403);
        let wrong = format!("{}x", &csrf[1..]);
        assert_eq!(call("POST", ack, Some(&wrong), None).status(), 403);
        assert_eq!(call("POST", ack, Some(&csrf), None).status(), 404);
        let same = Some("https://site.example:9108");
        assert_eq!(call("POST", ack, Some(&csrf), same).status(), 404);
        // From another origin (a page elsewhere that the browser lets send the cookie).
        let other = Some("https://evil.example");
        assert_eq!(call("POST", ack, Some(&csrf), other).status(), 403);
        assert_eq!(call("GET", "/api/v1/signalling", None, other).status(), 403);
        // The role still holds: an operator may not add cameras.
        assert_eq!(
            call("POST", "/api/v1/cameras", Some(&csrf), None).status(),
            403
        );
        // Logout (a write: with the CSRF token) ends the session.
        assert_eq!(call("POST", "/api/v1/logout", None, None).status(), 403);
        let out = call("POST", "/api/v1/logout", Some(&csrf), None);
        assert_eq!(out.status(), 200);
        assert!(
            out.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        assert_eq!(call("GET", "/api/v1/presence", None, None).status(), 401);

        // Revoking the token ends its sessions.
        let r = login(&api, &t[0], "192.0.2.1");
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        let jar = cookie.split(';').next().unwrap().to_string();
        let read = || {
            answer(
                &api,
                &Request {
                    method: "GET",
                    path: "/api/v1/presence",
                    cookie: Some(&jar),
                    client: "192.0.2.1",
                    ..Request::default()
                },
            )
            .unwrap()
            .status()
        };
        assert_eq!(read(), 200);
        let mut file = TokenFile::load(&f.0).unwrap();
        assert!(file.revoke("viewer"));
        file.save(&f.0).unwrap();
        let later = std::time::SystemTime::now() + Duration::from_secs(2);
        std::fs::File::options()
            .write(true)
            .open(&f.0)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(read(), 401);
        // Without the TLS the cookie is not Secure (a browser would drop a Secure cookie
        // from http://).
        let (plain, t2, _g) = make(true, true);
        let plain = Api {
            tls: false,
            ..plain
        };
        let c = login(&plain, &t2[0], "127.0.0.1");
        assert!(
            !c.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }

    /// 20 failed logins from one address: the first five are answered, the rest must wait
    /// (429, Retry-After) — also a right token, unless it was verified before; other
    /// addresses are not held up.
    #[test]
    fn failed_logins_are_slowed_down() {
        let (api, t, _f) = make(false, true);
        let codes: Vec<u16> = (0..20)
            .map(|i| {
                login(
                    &api,
                    &format!("slt_0000000{}_guess", i % 10),
                    "198.51.100.7",
                )
                .status()
                .as_u16()
            })
            .collect();
        assert_eq!(&codes[..5], &[401; 5]);
        assert!(codes[5..].iter().all(|c| *c == 429), "{codes:?}");
        let r = login(&api, &t[2], "198.51.100.7");
        assert_eq!(r.status(), 429, "a token never verified waits too");
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(body(r)["error"].as_str().unwrap().contains("try again"));
        // Bearer guesses count the same (401: not authenticated, and not checked).
        assert_eq!(
            answer(
                &api,
                &Request {
                    method: "GET",
                    path: "/api/v1/presence",
                    auth: Some("Bearer slt_00000000_guess"),
                    client: "198.51.100.7",
                    ..Request::default()
                },
            )
            .unwrap()
            .status(),
            401
        );
        assert_eq!(login(&api, &t[2], "198.51.100.8").status(), 200);
        // Verified before (from the other address): known without an Argon2 run.
        assert_eq!(login(&api, &t[2], "198.51.100.7").status(), 200);
        // Not JSON, or not a token object.
        let r = answer(
            &api,
            &Request {
                method: "POST",
                path: "/api/v1/login",
                content_type: Some("application/x-www-form-urlencoded"),
                client: "198.51.100.9",
                body: b"token=x",
                ..Request::default()
            },
        )
        .unwrap();
        assert_eq!(r.status(), 415);
    }

    #[test]
    fn the_login_page_is_served() {
        let (api, _, _f) = make(false, true);
        let r = reply(&api, "GET", "/login", "", None).unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
}
