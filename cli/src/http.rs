//! The runner's HTTP(S) endpoint: the JSON API under `/api/v1/` (docs/openapi.json,
//! docs/operations.md), `/metrics` (Prometheus text), `/health` (JSON, 503 while a camera is
//! down), `/health/live`, `/health/ready`, and the WebRTC viewer page (web/) at `/`. warp +
//! hyper serve it on a one-thread tokio runtime; with a certificate and key it is HTTPS
//! (tokio-rustls), and a failed handshake (a port scan, a browser that distrusts the
//! certificate) drops only that connection. Who may call what is
//! [`sightline_core::control::api`]'s table; tokens are checked against the `--auth` file.

use sightline_core::control::api::{Access, NoRoute, Route, bearer, route};
use sightline_core::control::auth::{Principal, Role, Tokens};
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
}

/// The API description, served at /api/v1/openapi.json.
const OPENAPI: &str = include_str!("../../docs/openapi.json");

type Response = warp::reply::Response;

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

    fn site(&self) -> std::sync::MutexGuard<'_, Site> {
        self.site.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The response to an API request; None for paths that are not the API's.
    pub fn handle(
        &self,
        method: &str,
        path: &str,
        query: &str,
        auth: Option<&str>,
    ) -> Option<Response> {
        let r = match route(method, path)? {
            Ok(r) => r,
            Err(NoRoute::NotFound) => {
                return Some(error(StatusCode::NOT_FOUND, "no such endpoint"));
            }
            Err(NoRoute::Method(allow)) => {
                let mut r = error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &format!("method {method} not allowed here (allowed: {allow})"),
                );
                r.headers_mut()
                    .insert("allow", warp::http::HeaderValue::from_static(allow));
                return Some(r);
            }
        };
        let who = match self.authorize(r.access(), auth) {
            Ok(p) => p,
            Err(resp) => return Some(*resp),
        };
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Some(match r {
            Route::OpenApi => warp::reply::with_header(OPENAPI, "content-type", "application/json")
                .into_response(),
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
                    return Some(error(StatusCode::BAD_REQUEST, &e));
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
        })
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
        .and_then(
            move |method: warp::http::Method,
                  path: warp::path::FullPath,
                  query: String,
                  auth: Option<String>| {
                let api = api.clone();
                async move {
                    // Token checks may run Argon2 (once per token): off the reactor.
                    let reply = tokio::task::spawn_blocking(move || {
                        api.handle(method.as_str(), path.as_str(), &query, auth.as_deref())
                    })
                    .await
                    .ok()
                    .flatten();
                    reply.ok_or_else(warp::reject::not_found)
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
            },
            t,
            TempFile(path),
        )
    }

    fn status(api: &Api, method: &str, path: &str, token: Option<&str>) -> u16 {
        let auth = token.map(|t| format!("Bearer {t}"));
        api.handle(method, path, "", auth.as_deref())
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
            ("POST", "/api/v1/alerts/1/ack", [401, 401, 403, 404, 404]),
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
        let r = api.handle("GET", "/api/v1/cameras", "", None).unwrap();
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"sightline\""
        );
        assert_eq!(r.headers()["content-type"], "application/json");
        let r = api
            .handle(
                "DELETE",
                "/api/v1/cameras",
                "",
                admin.map(|t| format!("Bearer {t}")).as_deref(),
            )
            .unwrap();
        assert_eq!(r.status().as_u16(), 405);
        assert_eq!(r.headers()["allow"], "GET, HEAD");
        assert_eq!(status(&api, "GET", "/api/v1/nothing", admin), 404);
        assert!(
            api.handle("GET", "/index.html", "", None).is_none(),
            "the page's"
        );
        let bad = api
            .handle(
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
            "/api/v1/presence",
            "/api/v1/alerts",
            "/api/v1/alerts/{id}/ack",
            "/api/v1/map",
            "/health",
            "/health/live",
            "/health/ready",
            "/metrics",
        ] {
            assert!(
                paths.iter().any(|q| *q == p),
                "{p} missing from docs/openapi.json"
            );
            let concrete = p.replace("{id}", "1");
            let method = if p.ends_with("/ack") { "POST" } else { "GET" };
            assert!(
                route(method, &concrete).is_some_and(|r| r.is_ok()),
                "{p} not served"
            );
        }
        assert_eq!(
            paths.len(),
            10,
            "a route documented but not served: {paths:?}"
        );
    }
}
