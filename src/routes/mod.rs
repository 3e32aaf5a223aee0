//! The HTTP API. Handlers are thin: parse, call one store operation, publish its events after
//! commit, answer with a typed body. Every route is declared once, with its `#[utoipa::path]`
//! documentation, through `routes!`: the router and the OpenAPI document (`crate::openapi`) are
//! built from the same declarations, so neither can have a route the other lacks.

mod admin;
mod admin_views;
mod cases;
mod console;
mod docs;
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
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{envelope, ApiError};
use crate::state::AppState;

/// JSON bodies above this are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every documented route, with its documentation. Needs no state: `crate::openapi` builds the
/// document from it without a running application.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .routes(routes!(docs::openapi_json))
        .routes(routes!(cases::list))
        .routes(routes!(cases::open))
        .routes(routes!(cases::get))
        .routes(routes!(me::me))
        .routes(routes!(inventory::list))
        .routes(routes!(inventory::claim))
        .routes(routes!(inventory::set_status))
        .routes(routes!(admin::create_case))
        .routes(routes!(admin::update_case, admin::delete_case))
        .routes(routes!(admin::replace_items))
        .routes(routes!(admin::set_price))
        .routes(routes!(admin::add_balance))
        .routes(routes!(admin::subtract_balance))
        .routes(routes!(admin::transactions))
        .routes(routes!(admin::user))
        .routes(routes!(admin::disconnect_user))
        .routes(routes!(admin::set_blocked))
        .routes(routes!(admin::sessions))
        .routes(routes!(admin::online))
        .routes(routes!(admin_views::withdrawals))
        .routes(routes!(admin_views::user_inventory))
        .routes(routes!(admin_views::user_fair_history))
        .routes(routes!(payment::callback))
        .routes(routes!(fair::current))
        .routes(routes!(fair::set_client_seed))
        .routes(routes!(fair::rotate))
        .routes(routes!(fair::history))
}

pub fn router(state: AppState) -> Router {
    let (api, _) = api().split_for_parts();
    api.merge(docs::swagger_ui())
        .merge(console::console())
        .fallback(|| async { envelope(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            envelope(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// A 2xx answer: `{ "success": true, ...body }`.
#[derive(Serialize, ToSchema)]
pub struct Success<T> {
    /// Always `true` on a 2xx answer.
    #[schema(inline)]
    success: True,
    #[serde(flatten)]
    body: T,
}

impl<T> Success<T> {
    pub fn new(body: T) -> Self {
        Success { success: True, body }
    }
}

/// A field that is always `true` (a type, so no handler can answer 2xx with `success: false`).
pub struct True;
/// A field that is always `false`.
pub struct False;

macro_rules! constant_bool {
    ($name:ident, $value:expr) => {
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bool($value)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::Boolean)
                    .enum_values(Some([$value]))
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

constant_bool!(True, true);
constant_bool!(False, false);

impl<T: Serialize> IntoResponse for Success<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, &self)
    }
}

/// `201 Created` with the same body shape.
pub struct Created<T>(pub Success<T>);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        json_response(StatusCode::CREATED, &self.0)
    }
}

/// Renders through `serde_json::Value`, whose map keeps keys sorted: the bytes are exactly those
/// the API sent before its bodies were typed (clients that hash or diff answers see no change).
pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_value(body) {
        Ok(value) => (status, axum::Json(value)).into_response(),
        Err(err) => ApiError::Internal(anyhow::anyhow!("response did not serialize: {err}")).into_response(),
    }
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
