//! The contract, served: the generated OpenAPI document and Swagger UI over it. Swagger UI's files
//! are compiled into the binary (utoipa-swagger-ui's `vendored` feature), so the page works on a
//! machine with no internet, and the build downloads nothing.

use std::sync::{Arc, LazyLock};

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use utoipa_swagger_ui::Config;

use crate::error::envelope;
use crate::openapi::Anonymous;
use crate::state::AppState;

/// Where Swagger UI lives (`/api/docs/`; without the slash it redirects there).
const DOCS_PATH: &str = "/api/docs";

static DOCUMENT: LazyLock<String> = LazyLock::new(crate::openapi::to_json);

/// This OpenAPI document
///
/// This document, generated from the code (the same bytes as `docs/openapi.json`).
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "getOpenApi",
    tag = "System",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document.", body = Object, content_type = "application/json"),
        Anonymous,
    )
)]
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str()).into_response()
}

/// `/api/docs`, `/api/docs/` and `/api/docs/{*file}`: one matched route each, so the metrics'
/// `route` label stays three values however many asset paths clients ask for.
pub fn swagger_ui() -> Router<AppState> {
    // No validator badge: Swagger UI would send the document to validator.swagger.io.
    let config = Arc::new(Config::new(["/api/openapi.json"]).validator_url("none").display_operation_id(true));
    let index_config = config.clone();
    Router::new()
        .route(DOCS_PATH, get(|| async { Redirect::permanent("/api/docs/") }))
        .route("/api/docs/", get(move || asset(String::new(), index_config)))
        .route("/api/docs/{*file}", get(move |Path(file): Path<String>| asset(file, config)))
}

async fn asset(file: String, config: Arc<Config<'static>>) -> Response {
    match utoipa_swagger_ui::serve(&file, config) {
        Ok(Some(file)) => ([(header::CONTENT_TYPE, file.content_type)], file.bytes.into_owned()).into_response(),
        Ok(None) => envelope(StatusCode::NOT_FOUND, "not_found", "no such file"),
        Err(err) => crate::error::ApiError::Internal(anyhow::anyhow!("swagger ui: {err}")).into_response(),
    }
}
