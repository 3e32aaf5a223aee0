//! The operators' console (`/console`): a few static files compiled into the binary, so it works
//! on a network with no internet, served under a Content-Security-Policy that lets the page load
//! nothing but its own files and talk to nothing but this origin. It signs in with an admin token
//! kept in the browser's sessionStorage, calls the admin API and listens on the `/admin` namespace
//! (`crate::console`).

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::envelope;
use crate::state::AppState;

/// Only this origin's scripts, styles and connections (fetch and the websocket); no inline code,
/// no frames, no forms, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The files, by the name the page asks for.
const FILES: &[(&str, &str, &[u8])] = &[
    ("index.html", "text/html; charset=utf-8", include_bytes!("../console/index.html")),
    ("console.js", "text/javascript; charset=utf-8", include_bytes!("../console/console.js")),
    ("console.css", "text/css; charset=utf-8", include_bytes!("../console/console.css")),
    // socket.io-client's browser ESM build, copied unchanged from tests/js/node_modules (a test
    // holds the two equal, so it follows the version the tests pin).
    (
        "socket.io.esm.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/vendor/socket.io.esm.min.js"),
    ),
];

/// `/console`, `/console/` and `/console/{file}`: three matched routes, whatever is asked for.
pub fn console() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { serve("index.html") }))
        .route("/console/", get(|| async { serve("index.html") }))
        .route("/console/{file}", get(|Path(file): Path<String>| async move { serve(&file) }))
}

fn serve(name: &str) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(file, _, _)| *file == name) else {
        return envelope(StatusCode::NOT_FOUND, "not_found", "no such file");
    };
    let mut response = (StatusCode::OK, *bytes).into_response();
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_TYPE, content_type);
    set(headers, header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // Revalidated on every load, so an upgraded binary's console is never mixed with old files.
    set(headers, header::CACHE_CONTROL, "no-cache");
    response
}
