//! The runner's API routes and who may call them: one table, used by the server to decide
//! and by docs/operations.md and the tests to check (the OpenAPI document lists the same
//! routes).

use super::auth::Role;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (probes, the API description).
    Open,
    /// Anyone on a loopback server; else a token of at least `viewer` (or the metrics
    /// token).
    Metrics,
    /// A token of at least this role.
    Role(Role),
}

/// A route the server knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    OpenApi,
    Cameras,
    /// Add a camera from the template.
    AddCamera,
    /// Drain and remove this camera.
    RemoveCamera(String),
    /// The camera's current frame (JPEG, in memory) with the faces found on it: enrolment
    /// from a live camera.
    Snapshot(String),
    Presence,
    Alerts,
    /// Acknowledge the alert with this id.
    AckAlert(String),
    Map,
    /// The floor-plan image of this map (its mapview element's `floor-plan`).
    FloorPlan(String),
    /// The live event stream (Server-Sent Events).
    Events,
    /// The gallery's identities.
    Gallery,
    /// Enrol a photo for this label (percent-decoded).
    AddPhoto(String),
    /// Forget this label.
    RemoveIdentity(String),
    /// Exchange a token for a browser session (cookie).
    Login,
    /// End the browser session.
    Logout,
    /// Who the caller is, and the session's CSRF token.
    Session,
    /// The WebRTC signalling WebSocket, proxied to webrtcsink's signalling server.
    Signalling,
    /// A question to the history store.
    History(HistoryRoute),
    Health,
    Live,
    Ready,
    Metrics,
}

impl Route {
    pub fn access(&self) -> Access {
        match self {
            Route::OpenApi
            | Route::Health
            | Route::Live
            | Route::Ready
            | Route::Login
            | Route::Logout => Access::Open,
            Route::Metrics => Access::Metrics,
            Route::Cameras
            | Route::Presence
            | Route::Alerts
            | Route::Map
            | Route::FloorPlan(_)
            | Route::Events
            | Route::Gallery
            | Route::Session
            | Route::Signalling => Access::Role(Role::Viewer),
            Route::History(h) => match h {
                // Finding a face again by photo is as strong as enrolling one.
                HistoryRoute::SearchFace => Access::Role(Role::Operator),
                HistoryRoute::Erase(_) => Access::Role(Role::Admin),
                _ => Access::Role(Role::Viewer),
            },
            Route::AckAlert(_)
            | Route::AddPhoto(_)
            | Route::RemoveIdentity(_)
            | Route::Snapshot(_) => Access::Role(Role::Operator),
            Route::AddCamera | Route::RemoveCamera(_) => Access::Role(Role::Admin),
        }
    }
}

/// The history's questions (docs/history.md), as `sightline history` asks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryRoute {
    /// A label, identity, unknown id or global id (percent-decoded).
    Journey(String),
    /// A presence group.
    Presence(String),
    Occupancy,
    /// A floor map: a PNG.
    Heatmap(String),
    /// The alerts with their acknowledgements.
    Alerts,
    /// Sightings whose kept embedding matches the face of the posted photo.
    SearchFace,
    /// Remove a person (label, identity, unknown id, global id) from the history, the
    /// gallery and the shared Redis state.
    Erase(String),
}

/// Why a request has no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// Nothing at this path (404).
    NotFound,
    /// The path exists with other methods (405, `Allow`).
    Method(&'static str),
}

/// The route of `method` `path`; paths outside `/api/`, `/health*` and `/metrics` are not
/// the API's (the viewer page serves them).
pub fn route(method: &str, path: &str) -> Option<Result<Route, NoRoute>> {
    let p = path.trim_end_matches('/');
    let get = |r: Route| {
        if method == "GET" || method == "HEAD" {
            Ok(r)
        } else {
            Err(NoRoute::Method("GET, HEAD"))
        }
    };
    let post = |r: Route| {
        if method == "POST" {
            Ok(r)
        } else {
            Err(NoRoute::Method("POST"))
        }
    };
    let found = match p {
        "/health" => get(Route::Health),
        "/health/live" => get(Route::Live),
        "/health/ready" => get(Route::Ready),
        "/metrics" => get(Route::Metrics),
        "/api/v1/openapi.json" => get(Route::OpenApi),
        "/api/v1/cameras" => match method {
            "POST" => Ok(Route::AddCamera),
            "GET" | "HEAD" => Ok(Route::Cameras),
            _ => Err(NoRoute::Method("GET, HEAD, POST")),
        },
        "/api/v1/presence" => get(Route::Presence),
        "/api/v1/alerts" => get(Route::Alerts),
        "/api/v1/map" => get(Route::Map),
        "/api/v1/events" => get(Route::Events),
        "/api/v1/gallery" => get(Route::Gallery),
        "/api/v1/session" => get(Route::Session),
        "/api/v1/signalling" => get(Route::Signalling),
        "/api/v1/login" => post(Route::Login),
        "/api/v1/logout" => post(Route::Logout),
        "/api/v1/history/occupancy" => get(Route::History(HistoryRoute::Occupancy)),
        "/api/v1/history/alerts" => get(Route::History(HistoryRoute::Alerts)),
        "/api/v1/history/search-face" => post(Route::History(HistoryRoute::SearchFace)),
        _ => {
            let decoded = |l: &str| {
                percent_encoding::percent_decode_str(l)
                    .decode_utf8()
                    .ok()
                    .map(|l| l.into_owned())
                    .filter(|l| !l.trim().is_empty() && !l.contains('/'))
            };
            if let Some((kind, arg)) = p
                .strip_prefix("/api/v1/history/")
                .and_then(|r| r.split_once('/'))
            {
                let route = match (kind, decoded(arg)) {
                    ("journey", Some(a)) => Some(HistoryRoute::Journey(a)),
                    ("presence", Some(a)) => Some(HistoryRoute::Presence(a)),
                    ("heatmap", Some(a)) => Some(HistoryRoute::Heatmap(a)),
                    ("subjects", Some(a)) => {
                        return Some(if method == "DELETE" {
                            Ok(Route::History(HistoryRoute::Erase(a)))
                        } else {
                            Err(NoRoute::Method("DELETE"))
                        });
                    }
                    _ => None,
                };
                return route
                    .map(|r| get(Route::History(r)))
                    .or(Some(Err(NoRoute::NotFound)));
            }
            if let Some(id) = p
                .strip_prefix("/api/v1/alerts/")
                .and_then(|r| r.strip_suffix("/ack"))
                .filter(|id| !id.is_empty() && !id.contains('/'))
            {
                if method == "POST" {
                    Ok(Route::AckAlert(id.to_string()))
                } else {
                    Err(NoRoute::Method("POST"))
                }
            } else if let Some(name) = p
                .strip_prefix("/api/v1/map/")
                .and_then(|r| r.strip_suffix("/floor-plan"))
                .filter(|n| !n.is_empty() && !n.contains('/'))
            {
                get(Route::FloorPlan(name.to_string()))
            } else if let Some(name) = p
                .strip_prefix("/api/v1/cameras/")
                .and_then(|r| r.strip_suffix("/snapshot"))
                .filter(|n| !n.is_empty() && !n.contains('/'))
            {
                if method == "GET" || method == "HEAD" {
                    Ok(Route::Snapshot(name.to_string()))
                } else {
                    Err(NoRoute::Method("GET, HEAD"))
                }
            } else if let Some(name) = p
                .strip_prefix("/api/v1/cameras/")
                .filter(|n| !n.is_empty() && !n.contains('/'))
            {
                if method == "DELETE" {
                    Ok(Route::RemoveCamera(name.to_string()))
                } else {
                    Err(NoRoute::Method("DELETE"))
                }
            } else if let Some(rest) = p.strip_prefix("/api/v1/gallery/") {
                let decode = |l: &str| {
                    percent_encoding::percent_decode_str(l)
                        .decode_utf8()
                        .ok()
                        .map(|l| l.into_owned())
                        .filter(|l| !l.trim().is_empty())
                };
                match rest.split_once('/') {
                    Some((label, "photos")) => match (method, decode(label)) {
                        ("POST", Some(l)) => Ok(Route::AddPhoto(l)),
                        (_, None) => Err(NoRoute::NotFound),
                        _ => Err(NoRoute::Method("POST")),
                    },
                    None => match (method, decode(rest)) {
                        ("DELETE", Some(l)) => Ok(Route::RemoveIdentity(l)),
                        (_, None) => Err(NoRoute::NotFound),
                        _ => Err(NoRoute::Method("DELETE")),
                    },
                    Some(_) => Err(NoRoute::NotFound),
                }
            } else if p.starts_with("/api/") || p.starts_with("/health/") {
                Err(NoRoute::NotFound)
            } else {
                return None;
            }
        }
    };
    Some(found)
}

/// `Authorization: Bearer TOKEN` → TOKEN.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether `addr` (`host:port`, `[v6]:port`) is a loopback address only this machine can
/// reach; names other than `localhost` are not.
pub fn is_loopback(addr: &str) -> bool {
    let host = match addr.rsplit_once(':') {
        Some((h, _)) => h,
        None => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_its_access() {
        let ok = |m: &str, p: &str| route(m, p).unwrap().unwrap();
        assert_eq!(
            ok("GET", "/api/v1/cameras").access(),
            Access::Role(Role::Viewer)
        );
        assert_eq!(
            ok("GET", "/api/v1/presence/").access(),
            Access::Role(Role::Viewer)
        );
        assert_eq!(
            ok("POST", "/api/v1/alerts/17/ack"),
            Route::AckAlert("17".into())
        );
        assert_eq!(
            ok("POST", "/api/v1/alerts/17/ack").access(),
            Access::Role(Role::Operator)
        );
        assert_eq!(
            ok("GET", "/api/v1/events").access(),
            Access::Role(Role::Viewer)
        );
        assert_eq!(ok("GET", "/api/v1/openapi.json").access(), Access::Open);
        // The history: questions are the viewer's, search by photo the operator's, erasure
        // the admin's.
        assert_eq!(
            ok("GET", "/api/v1/history/alerts").access(),
            Access::Role(Role::Viewer)
        );
        assert_eq!(
            ok("POST", "/api/v1/history/search-face").access(),
            Access::Role(Role::Operator)
        );
        assert_eq!(
            ok("DELETE", "/api/v1/history/subjects/unknown%2D4"),
            Route::History(HistoryRoute::Erase("unknown-4".into()))
        );
        assert_eq!(
            ok("DELETE", "/api/v1/history/subjects/ada").access(),
            Access::Role(Role::Admin)
        );
        assert_eq!(
            route("GET", "/api/v1/history/subjects/ada"),
            Some(Err(NoRoute::Method("DELETE")))
        );
        assert_eq!(
            route("GET", "/api/v1/history/search-face"),
            Some(Err(NoRoute::Method("POST")))
        );
        assert_eq!(ok("GET", "/health/ready").access(), Access::Open);
        assert_eq!(ok("GET", "/metrics").access(), Access::Metrics);
        assert_eq!(
            ok("POST", "/api/v1/cameras").access(),
            Access::Role(Role::Admin)
        );
        assert_eq!(
            ok("DELETE", "/api/v1/cameras/door"),
            Route::RemoveCamera("door".into())
        );
        assert_eq!(
            route("PUT", "/api/v1/cameras"),
            Some(Err(NoRoute::Method("GET, HEAD, POST")))
        );
        assert_eq!(
            route("DELETE", "/api/v1/presence"),
            Some(Err(NoRoute::Method("GET, HEAD")))
        );
        assert_eq!(
            route("GET", "/api/v1/alerts/17/ack"),
            Some(Err(NoRoute::Method("POST")))
        );
        assert_eq!(
            route("GET", "/api/v1/nothing"),
            Some(Err(NoRoute::NotFound))
        );
        assert_eq!(
            route("POST", "/api/v1/alerts//ack"),
            Some(Err(NoRoute::NotFound))
        );
        assert_eq!(ok("POST", "/api/v1/login").access(), Access::Open);
        assert_eq!(
            route("GET", "/api/v1/login"),
            Some(Err(NoRoute::Method("POST")))
        );
        assert_eq!(
            ok("GET", "/api/v1/signalling").access(),
            Access::Role(Role::Viewer)
        );
        assert_eq!(
            ok("GET", "/api/v1/cameras/door/snapshot"),
            Route::Snapshot("door".into())
        );
        assert_eq!(
            ok("GET", "/api/v1/cameras/door/snapshot").access(),
            Access::Role(Role::Operator)
        );
        assert_eq!(
            route("DELETE", "/api/v1/cameras/door/snapshot"),
            Some(Err(NoRoute::Method("GET, HEAD")))
        );
        assert_eq!(
            ok("GET", "/api/v1/map/site/floor-plan"),
            Route::FloorPlan("site".into())
        );
        assert_eq!(
            ok("GET", "/api/v1/map/site/floor-plan").access(),
            Access::Role(Role::Viewer)
        );
        assert_eq!(route("GET", "/index.html"), None);
        assert_eq!(route("GET", "/"), None);
    }

    #[test]
    fn bearer_tokens_and_loopback_addresses() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
        for a in [
            "127.0.0.1:9108",
            "[::1]:9108",
            "localhost:80",
            "127.1.2.3:1",
        ] {
            assert!(is_loopback(a), "{a}");
        }
        for a in [
            "0.0.0.0:9108",
            "[::]:9108",
            "192.168.1.5:9108",
            "example.com:80",
            ":9108",
        ] {
            assert!(!is_loopback(a), "{a}");
        }
    }
}
