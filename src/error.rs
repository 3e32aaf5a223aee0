//! One error type for every HTTP answer, rendered as the envelope the front ends already parse:
//! `{ "success": false, "error": "<message>", "code": "<snake_case>" }`.
//! 5xx details are logged, never returned.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::{Entity, StoreError, UnavailableCause};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("admin role required")]
    Forbidden,
    #[error("account blocked")]
    Blocked,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body is larger than the 64 KB limit")]
    PayloadTooLarge,
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("too many requests, retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("database unavailable")]
    DatabaseUnavailable(UnavailableCause),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict { code, message: message.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Blocked => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unprocessable { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::Blocked => "blocked",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) | ApiError::DatabaseUnavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

/// The envelope of every error answer.
#[derive(Serialize, ToSchema)]
#[schema(as = Error, examples(json!({ "success": false, "error": "insufficient balance", "code": "insufficient_balance" })))]
pub struct ErrorBody<'a> {
    #[schema(inline)]
    success: crate::routes::False,
    /// A message for logs and developers; branch on `code`, not on this.
    error: &'a str,
    /// A stable snake_case code, listed per status in this document.
    #[schema(pattern = "^[a-z][a-z0-9_]*$")]
    code: &'a str,
}

/// The envelope for a status that has no richer error (the fallback 404, 405).
pub fn envelope(status: StatusCode, code: &'static str, message: &str) -> Response {
    let body = ErrorBody { success: crate::routes::False, error: message, code };
    crate::routes::json_response(status, &body)
}

/// What a 503 asks clients to wait: long enough for a restart or failover to make progress,
/// short enough that nobody stares at an error.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = ?err, "request failed");
        }
        let mut response = envelope(self.status(), self.code(), &self.to_string());
        let retry_after = match self {
            ApiError::RateLimited { retry_after_secs } => Some(retry_after_secs),
            ApiError::Unavailable(_) | ApiError::DatabaseUnavailable(_) => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // For the metrics middleware, which counts outages by cause.
        if let ApiError::DatabaseUnavailable(cause) = self {
            response.extensions_mut().insert(cause);
        }
        response
    }
}

/// The one place a store outcome becomes a wire status, `code` and message.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(entity) => ApiError::NotFound(match entity {
                Entity::User => "user",
                Entity::Case => "case",
                Entity::InventoryItem => "inventory item",
            }),
            StoreError::InsufficientBalance => {
                ApiError::Unprocessable { code: "insufficient_balance", message: "insufficient balance".into() }
            }
            StoreError::NotOwned { status } => ApiError::conflict(
                "not_owned",
                format!("only owned items can be claimed; this one is {}", status.as_str()),
            ),
            StoreError::InvalidTransition { from, to } => ApiError::conflict(
                "invalid_transition",
                format!("an item cannot go from {} to {}", from.as_str(), to.as_str()),
            ),
            StoreError::ConcurrentChange => {
                ApiError::conflict("invalid_transition", "the item's status changed concurrently; reload and retry")
            }
            StoreError::Unavailable { cause, source } => {
                tracing::warn!(cause = cause.as_str(), error = %source, "database unavailable");
                ApiError::DatabaseUnavailable(cause)
            }
            err @ StoreError::Corrupt(_) => ApiError::Internal(err.into()),
            StoreError::Database(err) => ApiError::Internal(err.into()),
        }
    }
}

/// A rate limit's wait in whole seconds, rounded up: `Retry-After` takes seconds, and a client
/// told 0 would retry at once.
impl From<crate::rate_limit::Limited> for ApiError {
    fn from(limited: crate::rate_limit::Limited) -> Self {
        let wait = limited.retry_after;
        let retry_after_secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
        ApiError::RateLimited { retry_after_secs }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(err) => {
                ApiError::bad_request("invalid_body", strip_axum_prefix(&err.body_text()))
            }
            JsonRejection::JsonSyntaxError(err) => {
                ApiError::bad_request("invalid_json", strip_axum_prefix(&err.body_text()))
            }
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::bad_request("invalid_content_type", "expected Content-Type: application/json")
            }
            JsonRejection::BytesRejection(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::bad_request("invalid_body", other.body_text()),
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::bad_request("invalid_body", rejection.body_text())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(
            "invalid_id",
            format!("malformed id in path: {}", strip_axum_prefix(&rejection.body_text())),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", strip_axum_prefix(&rejection.body_text()))
    }
}

/// axum prefixes its messages with which extractor failed; the envelope's reader wants the reason.
fn strip_axum_prefix(text: &str) -> String {
    const PREFIXES: [&str; 4] = [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to parse the request body as JSON: ",
        "Failed to deserialize query string: ",
        "Invalid URL: ",
    ];
    PREFIXES.iter().find_map(|p| text.strip_prefix(p)).unwrap_or(text).to_string()
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod store_error_tests {
    use super::ApiError;
    use crate::domain::InventoryStatus;
    use crate::store::{Entity, StoreError, UnavailableCause};

    fn wire(err: StoreError) -> (u16, &'static str, String) {
        let api = ApiError::from(err);
        (api.status().as_u16(), api.code(), api.to_string())
    }

    /// Clients branch on these codes and show these messages: a store refactor must not move them.
    #[test]
    fn store_outcomes_keep_their_wire_status_code_and_message() {
        let owned = InventoryStatus::Owned;
        let delivered = InventoryStatus::Delivered;
        let cases = [
            (StoreError::NotFound(Entity::User), 404, "not_found", "user not found"),
            (StoreError::NotFound(Entity::Case), 404, "not_found", "case not found"),
            (StoreError::NotFound(Entity::InventoryItem), 404, "not_found", "inventory item not found"),
            (StoreError::InsufficientBalance, 422, "insufficient_balance", "insufficient balance"),
            (
                StoreError::NotOwned { status: InventoryStatus::WithdrawRequested },
                409,
                "not_owned",
                "only owned items can be claimed; this one is withdraw_requested",
            ),
            (
                StoreError::InvalidTransition { from: delivered, to: owned },
                409,
                "invalid_transition",
                "an item cannot go from delivered to owned",
            ),
            (
                StoreError::ConcurrentChange,
                409,
                "invalid_transition",
                "the item's status changed concurrently; reload and retry",
            ),
            (StoreError::Corrupt("item kind \"x\"".into()), 500, "internal_error", "internal error"),
            (StoreError::Database(sqlx::Error::RowNotFound), 500, "internal_error", "internal error"),
            (
                StoreError::Unavailable { cause: UnavailableCause::PoolTimeout, source: sqlx::Error::PoolTimedOut },
                503,
                "unavailable",
                "database unavailable",
            ),
        ];
        for (err, status, code, message) in cases {
            let shown = format!("{err:?}");
            assert_eq!(wire(err), (status, code, message.to_string()), "{shown}");
        }
    }
}
