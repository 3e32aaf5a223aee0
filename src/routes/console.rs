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

/// Only this origin's scripts, styles and connections (fetch and the websocket); no inline code but
/// the page's one import map, allowed by its hash (`IMPORT_MAP_HASH`: browsers load no import map
/// from a file); no frames, no forms, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = concat!(
    "default-src 'none'; script-src 'self' '",
    import_map_hash!(),
    "'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'"
);

/// The SHA-256 of the import map in index.html (`{"imports":{"socket.io-client":
/// "/console/socket.io.esm.min.js"}}`, which points cyberhub-client's bare `socket.io-client`
/// import at the vendored build), as the CSP names it. A unit test holds the two together.
macro_rules! import_map_hash {
    () => {
        "sha256-4/iN3DHKWjT9TPqJ0hcmY4fWLldw5riQlZI0hT+dYR0="
    };
}
use import_map_hash;

macro_rules! client_file {
    ($name:literal) => {
        (
            concat!("cyberhub-client/", $name),
            "text/javascript; charset=utf-8",
            include_bytes!(concat!("../console/vendor/cyberhub-client/", $name)),
        )
    };
}

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
    // cyberhub-client's `connectAdmin` and what it imports: clients/js/dist as `npm run build`
    // makes it, copied unchanged (tests/api/console.rs holds them equal), so building the crate
    // needs no Node toolchain.
    client_file!("admin.js"),
    client_file!("connection.js"),
    client_file!("http.js"),
    client_file!("store.js"),
    client_file!("token.js"),
];

/// `/console`, `/console/` and `/console/{file}`: three matched routes, whatever is asked for.
pub fn console() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { serve("index.html") }))
        .route("/console/", get(|| async { serve("index.html") }))
        .route("/console/{file}", get(|Path(file): Path<String>| async move { serve(&file) }))
        .route(
            "/console/cyberhub-client/{file}",
            get(|Path(file): Path<String>| async move { serve(&format!("cyberhub-client/{file}")) }),
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..4 {
                out.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
            }
        }
        out
    }

    #[test]
    fn the_csp_allows_exactly_the_pages_import_map() {
        let page = std::str::from_utf8(FILES[0].2).unwrap();
        assert_eq!(page.matches("<script").count(), 2, "the import map and console.js, nothing else");
        let (_, rest) = page.split_once(r#"<script type="importmap">"#).expect("index.html has an import map");
        let (map, _) = rest.split_once("</script>").unwrap();
        let hash = format!("sha256-{}", base64(&Sha256::digest(map.as_bytes())));
        assert_eq!(import_map_hash!(), hash, "the import map changed: put its new hash in import_map_hash!");
        assert!(CONTENT_SECURITY_POLICY.contains(&format!("script-src 'self' '{hash}';")), "{CONTENT_SECURITY_POLICY}");
    }
}
