//! The runner's HTTP(S) endpoint: `/metrics` (Prometheus text), `/health` (JSON, 503 while a
//! camera is down) and the WebRTC viewer page (web/) at `/`. warp + hyper serve it on a
//! one-thread tokio runtime; with a certificate and key it is HTTPS (tokio-rustls), and a
//! failed handshake (a port scan, a browser that distrusts the certificate) drops only that
//! connection.

use sightline_core::runner::{Metrics, check_tls_pair};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use warp::Filter;
use warp::filters::BoxedFilter;

pub struct HttpConfig {
    pub addr: String,
    /// Directory served at `/` (the viewer page); None: only /metrics and /health.
    pub web_dir: Option<PathBuf>,
    pub tls: Option<(String, String)>,
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
pub fn serve(cfg: HttpConfig, metrics: Arc<Mutex<Metrics>>) -> Result<(), String> {
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

    let m = metrics.clone();
    let metrics_route = warp::path!("metrics").and(warp::get()).map(move || {
        let body = m.lock().map(|m| m.render()).unwrap_or_default();
        warp::reply::with_header(body, "content-type", "text/plain; version=0.0.4")
    });
    let health_route = warp::path!("health").and(warp::get()).map(move || {
        let down = metrics.lock().map_or(0, |m| {
            m.series("sightline_camera_up")
                .filter(|(_, up)| *up == 0.0)
                .count()
        });
        let status = if down == 0 { "ok" } else { "degraded" };
        let code = if down == 0 {
            warp::http::StatusCode::OK
        } else {
            warp::http::StatusCode::SERVICE_UNAVAILABLE
        };
        warp::reply::with_status(
            warp::reply::json(&serde_json::json!({"status": status, "cameras_down": down})),
            code,
        )
    });
    let web_route: BoxedFilter<(warp::filters::fs::File,)> = match cfg.web_dir.clone() {
        Some(dir) => warp::get().and(warp::fs::dir(dir)).boxed(),
        None => warp::any()
            .and_then(|| async { Err(warp::reject::not_found()) })
            .boxed(),
    };
    let routes = metrics_route.or(health_route).or(web_route);

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
