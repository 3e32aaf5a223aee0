//! Middleware around every HTTP route: request ids, metrics by matched route, one log line per
//! request, the per-IP limit for requests that carry no valid token, the request deadline, and
//! admission of Socket.IO handshakes.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

use crate::auth::{self, VerifiedToken};
use crate::client_ip;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::UnavailableCause;

/// Probes and scrapes come from the same few addresses all the time and must never be refused.
fn exempt_from_anonymous_limit(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics" | "/api/payment/callback")
}

/// The `method` label: anything else a client makes up shares `other`, so it cannot grow the
/// number of series.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Verifies the bearer token once, applies the anonymous per-IP limit to every request that has
/// no *valid* token (a made-up `Authorization` header does not lift it), runs the request under
/// the overall deadline, and records it.
pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();

    let verified = auth::bearer_from_headers(request.headers()).map(|token| state.jwt.verify(token));
    let authenticated = matches!(verified, Some(Ok(_)));
    if let Some(verified) = verified {
        request.extensions_mut().insert(VerifiedToken(verified));
    }
    let response = if !authenticated && !exempt_from_anonymous_limit(request.uri().path()) {
        let ip = client_ip::resolve(
            client_ip::peer_from_extensions(request.extensions()),
            request.headers(),
            &state.config.trusted_proxies,
        );
        match state.limits.anonymous(ip, &state.metrics) {
            Ok(()) => within_deadline(&state, next, request).await,
            Err(limited) => limited.into_response(),
        }
    } else {
        within_deadline(&state, next, request).await
    };

    if let Some(cause) = response.extensions().get::<UnavailableCause>() {
        state.metrics.db_unavailable.with_label_values(&[cause.as_str()]).inc();
    }
    record(&state, method, &route, &request_id, response.status().as_u16(), started);
    response
}

/// Runs the handler in its own task, so a client that goes away does not cancel it half-way: a
/// change that commits still publishes its events (a one-statement open PostgreSQL finishes after
/// the client left would otherwise leave the player's sockets stale). The deadline lives inside
/// that task, so it holds whether or not anyone still waits: once it passes the handler is
/// dropped (an open transaction rolls back; only a commit already sent can still land, and the
/// balance pushed on every (re)connect brings the client to the true state) and the answer is 503.
/// The database timeouts are shorter, so this is the backstop for anything else that stalls.
async fn within_deadline(state: &AppState, next: Next, request: Request) -> Response {
    let (deadline, metrics) = (state.config.timeouts.request, state.metrics.clone());
    let handler = tokio::spawn(async move {
        let answered = tokio::time::timeout(deadline, next.run(request)).await;
        if answered.is_err() {
            metrics.http_timeouts.inc();
            tracing::warn!(timeout_ms = deadline.as_millis() as u64, "request deadline passed, answered 503");
        }
        answered
    });
    match handler.await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => ApiError::Unavailable("request timed out, retry later").into_response(),
        Err(failed) => ApiError::Internal(anyhow::anyhow!("request handler failed: {failed}")).into_response(),
    }
}

fn record(state: &AppState, method: &'static str, route: &str, request_id: &str, status: u16, started: Instant) {
    let elapsed = started.elapsed();
    state.metrics.http_requests.with_label_values(&[method, route, &status.to_string()]).inc();
    state.metrics.http_duration.with_label_values(&[method, route]).observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "cyberhub::http",
        request_id,
        method,
        route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
}

pub async fn in_flight(State(state): State<AppState>, request: Request, next: Next) -> Response {
    /// Counts the request out also when the client goes away and the future is dropped.
    struct InFlight(AppState);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.metrics.http_in_flight.dec();
        }
    }
    state.metrics.http_in_flight.inc();
    let _in_flight = InFlight(state);
    next.run(request).await
}

/// `/socket.io` and everything under it; socketioxide serves both.
pub fn is_socket_path(path: &str) -> bool {
    path.strip_prefix("/socket.io").is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub const REPLICA_COOKIE: &str = "cyberhub_replica";

/// Prepares a Socket.IO request before socketioxide sees it; other requests pass untouched.
///
/// - An Engine.IO handshake (no `sid` yet) is rate limited per client IP before any session
///   exists: a refused one is a 429 in the envelope, which socket.io-client retries with backoff.
/// - Its request head is copied. hyper parses headers and URI zero-copy out of the connection's
///   8–16 KB read buffer, and socketioxide keeps the head for the socket's lifetime, which pinned
///   that whole buffer: measured, half of an idle socket's memory.
/// - An Engine.IO handshake (no `sid` yet) answers with a cookie naming this replica, so nginx can
///   keep the rest of a polling session on it without hashing client IPs (a club's PCs share
///   one). See nginx/README.md.
pub async fn socket_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !is_socket_path(request.uri().path()) {
        return next.run(request).await;
    }
    let handshake = !request.uri().query().unwrap_or("").split('&').any(|pair| pair.starts_with("sid="));
    if handshake && state.is_draining() {
        // A client cut by the drain retries its handshake (with backoff) and lands elsewhere.
        state.metrics.handshakes.with_label_values(&["draining"]).inc();
        return crate::error::ApiError::Unavailable("draining, connect to another replica").into_response();
    }
    if handshake {
        let ip = client_ip::resolve(
            client_ip::peer_from_extensions(request.extensions()),
            request.headers(),
            &state.config.trusted_proxies,
        );
        if let Err(limited) = state.limits.socket_handshake(ip, &state.metrics) {
            state.metrics.handshakes.with_label_values(&["rate_limited"]).inc();
            return limited.into_response();
        }
        state.metrics.handshakes.with_label_values(&["accepted"]).inc();
    }
    let (mut parts, body) = request.into_parts();
    let mut headers = header::HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in parts.headers.iter() {
        if let Ok(copy) = header::HeaderValue::from_bytes(value.as_bytes()) {
            headers.append(name.clone(), copy);
        }
    }
    parts.headers = headers;
    if let Ok(uri) = parts.uri.to_string().parse::<axum::http::Uri>() {
        // The router also keeps a copy of the URI in the extensions.
        parts.extensions.insert(axum::extract::OriginalUri(uri.clone()));
        parts.uri = uri;
    }
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if handshake {
        let cookie = format!("{REPLICA_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax", state.config.replica_id);
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}
