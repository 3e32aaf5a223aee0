//! The OpenAPI 3.1 document, generated from the code: each route's `#[utoipa::path]`, the
//! `ToSchema` of every body, the error responses below. `docs/openapi.json` is this document
//! committed (a test fails when it is stale; `UPDATE_OPENAPI=1 cargo test --lib openapi` rewrites
//! it) and `GET /api/openapi.json` serves it. Hand-kept: the prose of `openapi/description.md`
//! and the Socket.IO part (`openapi/socketio.json`, merged as the `x-socketio` extension).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, InfoBuilder, LicenseBuilder, ObjectBuilder, OpenApi, RefOr, Response, Type};
use utoipa::{IntoResponses, ToResponse};

use crate::error::ErrorBody;

#[derive(utoipa::OpenApi)]
#[openapi(
    servers((url = "/", description = "The CyberHub instance serving this document.")),
    tags(
        (name = "System", description = "Probes, metrics and this document."),
        (name = "Cases", description = "The public catalogue and opening cases."),
        (name = "Account", description = "The authenticated user."),
        (name = "Inventory", description = "Items the user has won."),
        (name = "Provably fair", description = "Seed pairs that make every open verifiable."),
        (name = "Admin", description = "Catalogue, balance, delivery and session management. Role `admin` required."),
        (name = "Payments", description = "The webhook the payment provider calls."),
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadRequest, Unauthorized, Forbidden, Blocked, NotFound, Conflict, PayloadTooLarge,
            InsufficientBalance, RateLimited, Unavailable,
        ),
    ),
    modifiers(&Info, &Security),
)]
struct ApiDoc;

/// What the routes add their paths to.
pub fn base() -> OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}

/// The whole document.
pub fn document() -> OpenApi {
    let mut doc = crate::routes::api().into_openapi();
    for (_, item) in doc.paths.paths.iter_mut() {
        for operation in operations(item) {
            // The extension the front ends already read, on every admin-only operation.
            if operation.tags.as_ref().is_some_and(|tags| tags.iter().any(|t| t == "Admin")) {
                let role = ExtensionsBuilder::new().add("x-required-role", "admin").build();
                operation.extensions.get_or_insert_with(Default::default).merge(role);
            }
        }
    }
    doc
}

/// The document as `docs/openapi.json` holds it and `GET /api/openapi.json` serves it: the
/// generated part plus the hand-kept Socket.IO part, whose event schemas join the components and
/// whose description becomes the `x-socketio` extension. (Merged as JSON: its schemas use
/// keywords, such as `const`, that utoipa's types do not model.) Keys come out sorted, as in every
/// answer of the API.
pub fn to_json() -> String {
    let mut doc = serde_json::to_value(document()).expect("the document serializes");
    let fragment: Value =
        serde_json::from_str(include_str!("openapi/socketio.json")).expect("openapi/socketio.json is JSON");
    let Value::Object(socket_schemas) = fragment["schemas"].clone() else {
        panic!("openapi/socketio.json has no schemas object")
    };
    doc["components"]["schemas"].as_object_mut().expect("the document has schemas").extend(socket_schemas);
    doc["x-socketio"] = fragment["x-socketio"].clone();
    camel_case_links(&mut doc);
    let mut text = serde_json::to_string_pretty(&doc).expect("the document serializes");
    text.push('\n');
    text
}

/// utoipa 5 writes a Link's fields as `operation_id`, `operation_ref`, `request_body`; the
/// specification (and every tool reading links) spells them in camelCase.
fn camel_case_links(doc: &mut Value) {
    let links = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(Value::as_object_mut);
    for link in links {
        for (from, to) in
            [("operation_id", "operationId"), ("operation_ref", "operationRef"), ("request_body", "requestBody")]
        {
            if let Some(value) = link.remove(from) {
                link.insert(to.to_string(), value);
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

struct Info;

impl utoipa::Modify for Info {
    fn modify(&self, doc: &mut OpenApi) {
        doc.info = InfoBuilder::new()
            .title("CyberHub API")
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(include_str!("openapi/description.md")))
            .license(Some(LicenseBuilder::new().name("MIT").identifier(Some("MIT")).build()))
            .build();
    }
}

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 JWT. Claims: `sub` (user UUID, required), `exp` (required), `nbf` (honoured), \
                         `role` (`user` by default, or `admin`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "paymentSignature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Signature",
                "Lowercase hex HMAC-SHA256 of the exact raw request body, keyed with \
                 `PAYMENT_WEBHOOK_SECRET`. Missing or wrong: 401.",
            ))),
        );
    }
}

/// A response whose body is the error envelope, with one example per code it can carry.
fn error_response(description: &str, examples: &[(&str, &str)], retry_after: bool) -> RefOr<Response> {
    let mut content = ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Error"))));
    let examples = examples.iter().map(|(code, message)| {
        let example = utoipa::openapi::example::ExampleBuilder::new()
            .value(Some(json!({ "success": false, "error": message, "code": code })))
            .build();
        (code.to_string(), example)
    });
    content = content.examples_from_iter(examples);
    let mut response = ResponseBuilder::new().description(description).content("application/json", content.build());
    if retry_after {
        let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0));
        let header = HeaderBuilder::new().schema(seconds).description(Some("Seconds to wait before retrying.")).build();
        response = response.header("Retry-After", header);
    }
    response.build().into()
}

macro_rules! error_responses {
    ($($name:ident => $description:expr, [$(($code:expr, $message:expr)),+ $(,)?], $retry_after:expr;)+) => {
        $(
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), error_response($description, &[$(($code, $message)),+], $retry_after))
                }
            }
        )+
    };
}

error_responses! {
    BadRequest => "Bad input: `invalid_json` (the body is not JSON), `invalid_body` (a field is missing, \
        has the wrong type or is out of range; money that is not a number, not positive, over \
        100000000.00 or with more than 2 decimals), `invalid_content_type` (a JSON body without \
        `Content-Type: application/json`), `invalid_id` (a malformed UUID), `invalid_status` (an \
        unknown inventory status), `invalid_query` (a bad query string, e.g. `limit` outside 1 to \
        100), `invalid_cursor` (not a cursor of this list), `invalid_client_seed`. Nothing changed.",
        [
            ("invalid_json", "expected value at line 1 column 1"),
            ("invalid_body", "amount: must be a plain decimal number with at most 2 decimals at line 1 column 52"),
            ("invalid_id", "caseId: not a valid UUID"),
            ("invalid_cursor", "cursor: not a cursor this API returned"),
        ], false;
    Unauthorized => "A missing, malformed, wrongly signed, expired or not yet valid (`nbf`) bearer \
        token; for the payment webhook, a missing or wrong `X-Signature`.",
        [("unauthorized", "token expired")], false;
    Forbidden => "`forbidden`: the token is valid but its `role` is not `admin`; `blocked`: an admin \
        blocked the caller, and every authenticated call answers this until unblocked.",
        [("forbidden", "admin role required"), ("blocked", "account blocked")], false;
    Blocked => "`blocked`: an admin blocked the caller (`PUT /api/admin/users/{id}/block`); every \
        authenticated call answers this until unblocked.",
        [("blocked", "account blocked")], false;
    NotFound => "The object does not exist (or was deleted, or belongs to someone else).",
        [("not_found", "case not found")], false;
    Conflict => "The request conflicts with the object's current state: `not_owned` (only an owned \
        item can be claimed), `invalid_transition` (a status change the withdrawal flow does not \
        allow), `cannot_block_self` (an admin cannot block their own account). Nothing changed.",
        [
            ("not_owned", "only owned items can be claimed; this one is claimed"),
            ("invalid_transition", "cannot change status from delivered to owned"),
            ("cannot_block_self", "an admin cannot block their own account"),
        ], false;
    PayloadTooLarge => "The request body is larger than 64 KB.",
        [("payload_too_large", "request body is larger than the 64 KB limit")], false;
    InsufficientBalance => "The balance is lower than the amount to debit; nothing changed.",
        [("insufficient_balance", "insufficient balance")], false;
    RateLimited => "A rate limit was hit (case opens, claims and seed changes per user; payment \
        callbacks and requests without a valid bearer token per client IP). Retry after \
        `Retry-After` seconds.",
        [("rate_limited", "too many requests, retry in 1 s")], true;
    Unavailable => "A dependency is unavailable or stalled: the database is down, restarting or \
        locked past its timeouts, the request deadline passed, the cluster bus is down, or the \
        payment webhook secret is not configured. Nothing changed unless a commit was already under \
        way; retry after `Retry-After` seconds.",
        [("unavailable", "database unavailable")], true;
}

/// Statuses shared by groups of operations, listed in each operation's `responses(...)`.
macro_rules! response_groups {
    ($($(#[$doc:meta])* $name:ident => [$(($status:expr, $response:ident)),+ $(,)?];)+) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    BTreeMap::from([$(
                        ($status.to_string(), RefOr::Ref(utoipa::openapi::Ref::from_response_name(stringify!($response)))),
                    )+])
                }
            }
        )+
    };
}

response_groups! {
    /// Any operation open to anonymous callers: the per-IP limit and the request deadline.
    Anonymous => [(429, RateLimited), (503, Unavailable)];
    /// Operations of a player (any valid token).
    Player => [(401, Unauthorized), (403, Blocked), (429, RateLimited), (503, Unavailable)];
    /// Operations of an admin.
    Admin => [(401, Unauthorized), (403, Forbidden), (429, RateLimited), (503, Unavailable)];
    /// Operations that read a JSON body.
    JsonBodyErrors => [(400, BadRequest), (413, PayloadTooLarge)];
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// `docs/openapi.json` is the generated document, byte for byte.
    #[test]
    fn openapi_json_is_up_to_date() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
        let generated = super::to_json();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).expect("write docs/openapi.json");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is stale: the routes or schemas changed. Regenerate it with\n\n    \
             UPDATE_OPENAPI=1 cargo test --lib openapi\n\nand commit the diff."
        );
    }
}
