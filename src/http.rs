//! The layers around every HTTP route, in the order a request meets them (outermost first; see
//! `startup.rs`):
//!
//! 1. `client_ip`: resolves the client IP once into the request extensions.
//! 2. `socket_requests`: drain refusal, handshake limit and replica cookie for `/socket.io`, which
//!    socketioxide then serves; nothing below sees Socket.IO requests.
//! 3. `in_flight`: the in-flight gauge, held by a drop guard.
//! 4. tower-http's request id: `X-Request-Id` taken from the request or generated, and echoed.
//! 5. `request_span`: the span every log line of the request carries (`request_id`, `method`,
//!    `route`, later `user`).
//! 6. `track_metrics`: request count and latency by matched route, and the one `request` line.
//! 7. `authenticate`: verifies the bearer token once and names its user on the span.
//! 8. `limit_anonymous`: the per-IP limit for requests with no valid token.
//! 9. `deadline`: runs the handler in its own task, under the request deadline.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tracing::Instrument;

use crate::auth::VerifiedToken;
use crate::client_ip::{self, ClientIp};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::UnavailableCause;

/// Probes and scrapes come from the same few addresses all the time: never refused, and logged
/// at DEBUG only, so they do not flood the logs.
fn is_probe(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// The payment provider's callback has its own per-IP limit.
fn exempt_from_anonymous_limit(path: &str) -> bool {
    is_probe(path) || path == "/api/payment/callback"
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

/// The route template (`/api/admin/users/{id}`), never the raw path, so ids stay out of labels.
fn route_of(request: &Request) -> &str {
    request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str())
}

/// Resolves the client IP once and keeps it as `ClientIp` in the request extensions.
pub async fn client_ip(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer = client_ip::peer_from_extensions(request.extensions());
    let ip = client_ip::resolve(peer, request.headers(), &state.config.trusted_proxies);
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

/// Counts the request in, and out again when the response is ready or when the client went away
/// and hyper dropped the future.
pub async fn in_flight(State(state): State<AppState>, request: Request, next: Next) -> Response {
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

/// Opens the request span. Every log line emitted while the request is handled (the handler's,
/// the store's, the bus publish path's, an `ApiError`'s) carries its fields. `user` stays empty
/// until `authenticate` has verified a token. Probes get a DEBUG span.
pub async fn request_span(request: Request, next: Next) -> Response {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    let (method, route) = (method_label(request.method()), route_of(&request));
    let span = if is_probe(request.uri().path()) {
        tracing::debug_span!("request", request_id, method, route, user = tracing::field::Empty)
    } else {
        tracing::info_span!("request", request_id, method, route, user = tracing::field::Empty)
    };
    next.run(request).instrument(span).await
}

/// Request count and latency by method, matched route and status, outages by cause, and the one
/// `request` log line. Outside the limit, so a refused request is counted and logged too.
pub async fn track_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let (method, route) = (method_label(request.method()), route_of(&request).to_string());
    let probe = is_probe(request.uri().path());
    let response = next.run(request).await;

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    if let Some(cause) = response.extensions().get::<UnavailableCause>() {
        state.metrics.db_unavailable.with_label_values(&[cause.as_str()]).inc();
    }
    state.metrics.http_requests.with_label_values(&[method, &route, &status.to_string()]).inc();
    state.metrics.http_duration.with_label_values(&[method, &route]).observe(elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if probe {
        tracing::debug!(status, latency_ms, "request");
    } else {
        tracing::info!(status, latency_ms, "request");
    }
    response
}

/// Verifies the bearer token once; the extractors reuse the result.
pub async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if let Some(verified) = VerifiedToken::from_headers(request.headers(), &state.jwt) {
        request.extensions_mut().insert(verified);
    }
    next.run(request).await
}

/// The per-IP limit for every request without a *valid* token (a made-up `Authorization` header
/// does not lift it).
pub async fn limit_anonymous(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let authenticated = matches!(request.extensions().get::<VerifiedToken>(), Some(VerifiedToken(Ok(_))));
    if !authenticated && !exempt_from_anonymous_limit(request.uri().path()) {
        if let Err(limited) = state.limits.anonymous(ClientIp::of(request.extensions()), &state.metrics) {
            return ApiError::from(limited).into_response();
        }
    }
    next.run(request).await
}

/// Runs the handler in its own task, so a client that goes away does not cancel it half-way: a
/// change that commits still publishes its events (a one-statement open PostgreSQL finishes after
/// the client left would otherwise leave the player's sockets stale). The deadline lives inside
/// that task, so it holds whether or not anyone still waits: once it passes the handler is
/// dropped (an open transaction rolls back; only a commit already sent can still land, and the
/// balance pushed on every (re)connect brings the client to the true state) and the answer is 503.
/// The database timeouts are shorter, so this is the backstop for anything else that stalls.
/// The task carries the request span: a spawned task would otherwise log without it.
pub async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (deadline, metrics) = (state.config.timeouts.request, state.metrics.clone());
    let handler = tokio::spawn(
        async move {
            let answered = tokio::time::timeout(deadline, next.run(request)).await;
            if answered.is_err() {
                metrics.http_timeouts.inc();
                tracing::warn!(timeout_ms = deadline.as_millis() as u64, "request deadline passed, answered 503");
            }
            answered
        }
        .instrument(tracing::Span::current()),
    );
    match handler.await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => ApiError::Unavailable("request timed out, retry later").into_response(),
        Err(failed) => ApiError::Internal(anyhow::anyhow!("request handler failed: {failed}")).into_response(),
    }
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
        return ApiError::Unavailable("draining, connect to another replica").into_response();
    }
    if handshake {
        if let Err(limited) = state.limits.socket_handshake(ClientIp::of(request.extensions()), &state.metrics) {
            state.metrics.handshakes.with_label_values(&["rate_limited"]).inc();
            return ApiError::from(limited).into_response();
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
