//! The HTTP API. Handlers are thin: parse, call one store operation, publish its events after
//! commit, answer.

mod admin;
mod cases;
mod fair;
mod health;
mod inventory;
mod me;
mod page;
mod payment;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::Router;
use uuid::Uuid;

use crate::error::{envelope, ApiError};
use crate::state::AppState;

/// JSON bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/api/cases", get(cases::list))
        .route("/api/cases/open", post(cases::open))
        .route("/api/cases/{id}", get(cases::get))
        .route("/api/me", get(me::me))
        .route("/api/inventory", get(inventory::list))
        .route("/api/inventory/claim", post(inventory::claim))
        .route("/api/inventory/{id}/status", put(inventory::set_status))
        .route("/api/admin/cases", post(admin::create_case))
        .route("/api/admin/cases/{id}", put(admin::update_case).delete(admin::delete_case))
        .route("/api/admin/cases/{id}/items", patch(admin::replace_items))
        .route("/api/admin/cases/{id}/price", put(admin::set_price))
        .route("/api/admin/balance/add", post(admin::add_balance))
        .route("/api/admin/balance/subtract", post(admin::subtract_balance))
        .route("/api/admin/users/{id}/transactions", get(admin::transactions))
        .route("/api/admin/users/{id}", get(admin::user))
        .route("/api/admin/users/{id}/disconnect", post(admin::disconnect_user))
        .route("/api/admin/users/{id}/block", put(admin::set_blocked))
        .route("/api/admin/users/{id}/sessions", get(admin::sessions))
        .route("/api/admin/online", get(admin::online))
        .route("/api/payment/callback", post(payment::callback))
        .route("/api/fair", get(fair::current))
        .route("/api/fair/client-seed", put(fair::set_client_seed))
        .route("/api/fair/rotate", post(fair::rotate))
        .route("/api/fair/history", get(fair::history))
        .fallback(|| async { envelope(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            envelope(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn openapi() -> Response {
    ([("content-type", "application/json")], include_str!("../../docs/openapi.json")).into_response()
}

/// `axum::Json`, but every rejection (syntax, types, size, content type) answers in the envelope.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// A UUID path segment; a malformed one is a 400 `invalid_id`.
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await?;
        parse_id("id", &raw).map(IdPath)
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryParams<T>(pub T);

/// Ids arrive as strings in bodies; a malformed one is a 400 naming the field.
pub fn parse_id(field: &str, text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text.trim()).map_err(|_| ApiError::bad_request("invalid_id", format!("{field}: not a valid UUID")))
}
