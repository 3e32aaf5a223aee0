//! Middleware around every HTTP route: request ids, metrics by matched route, one log line per
//! request, and the per-IP limit for requests that carry no token.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

use crate::client_ip;
use crate::state::AppState;

/// Probes and scrapes come from the same few addresses all the time and must never be refused.
fn exempt_from_anonymous_limit(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics" | "/api/payment/callback")
}

pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();

    if !request.headers().contains_key(header::AUTHORIZATION) && !exempt_from_anonymous_limit(request.uri().path()) {
        let (parts, body) = request.into_parts();
        let ip = client_ip::resolve(client_ip::peer_of(&parts), &parts.headers, &state.config.trusted_proxies);
        if let Err(limited) = state.limits.anonymous(ip, &state.metrics) {
            record(&state, &method, &route, &request_id, limited.status().as_u16(), started);
            return limited.into_response();
        }
        let request = Request::from_parts(parts, body);
        return finish(&state, next.run(request).await, &method, &route, &request_id, started);
    }
    finish(&state, next.run(request).await, &method, &route, &request_id, started)
}

fn finish(
    state: &AppState,
    response: Response,
    method: &axum::http::Method,
    route: &str,
    request_id: &str,
    started: Instant,
) -> Response {
    record(state, method, route, request_id, response.status().as_u16(), started);
    response
}

fn record(state: &AppState, method: &axum::http::Method, route: &str, request_id: &str, status: u16, started: Instant) {
    let elapsed = started.elapsed();
    state.metrics.http_requests.with_label_values(&[method.as_str(), route, &status.to_string()]).inc();
    state.metrics.http_duration.with_label_values(&[method.as_str(), route]).observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "cyberhub::http",
        request_id,
        method = %method,
        route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
}

pub async fn in_flight(State(state): State<AppState>, request: Request, next: Next) -> Response {
    state.metrics.http_in_flight.inc();
    let response = next.run(request).await;
    state.metrics.http_in_flight.dec();
    response
}

pub const REPLICA_COOKIE: &str = "cyberhub_replica";

/// Prepares a Socket.IO request before socketioxide sees it; other requests pass untouched.
///
/// - Its request head is copied. hyper parses headers and URI zero-copy out of the connection's
///   8–16 KB read buffer, and socketioxide keeps the head for the socket's lifetime, which pinned
///   that whole buffer: measured, half of an idle socket's memory.
/// - An Engine.IO handshake (no `sid` yet) answers with a cookie naming this replica, so nginx can
///   keep the rest of a polling session on it without hashing client IPs (a club's PCs share
///   one). See nginx/README.md.
pub async fn socket_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // engineioxide also answers `/socket.io` without the slash: it gets the same treatment.
    let path = request.uri().path();
    if !(path.starts_with("/socket.io/") || path == "/socket.io") {
        return next.run(request).await;
    }
    let handshake = !request.uri().query().unwrap_or("").split('&').any(|pair| pair.starts_with("sid="));
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
