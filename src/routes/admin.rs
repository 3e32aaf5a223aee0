use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::page::{version_cursor, Page};
use super::{parse_id, IdPath, JsonBody, QueryParams};
use crate::auth::AdminUser;
use crate::domain::case::validate_items;
use crate::domain::{CaseDraft, ItemDraft, LedgerKind};
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::money::Amount;
use crate::state::AppState;
use crate::store::Adjustment;

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_body", message)
}

pub async fn create_case(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    JsonBody(draft): JsonBody<CaseDraft>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    draft.validate().map_err(invalid)?;
    let case = state.store.create_case(&draft).await?;
    state.publish([Event::CasesUpdated]).await;
    Ok((StatusCode::CREATED, Json(json!({ "success": true, "case": case }))))
}

pub async fn update_case(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(id): IdPath,
    JsonBody(draft): JsonBody<CaseDraft>,
) -> ApiResult<Json<Value>> {
    draft.validate().map_err(invalid)?;
    let case = state.store.update_case(id, &draft).await?;
    state.publish([Event::CasesUpdated]).await;
    Ok(Json(json!({ "success": true, "case": case })))
}

pub async fn delete_case(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(id): IdPath,
) -> ApiResult<Json<Value>> {
    state.store.delete_case(id).await?;
    state.publish([Event::CasesUpdated]).await;
    Ok(Json(json!({ "success": true })))
}

#[derive(Deserialize)]
pub struct ItemsRequest {
    items: Vec<ItemDraft>,
}

pub async fn replace_items(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<ItemsRequest>,
) -> ApiResult<Json<Value>> {
    validate_items(&body.items).map_err(invalid)?;
    let case = state.store.replace_items(id, &body.items).await?;
    state.publish([Event::CasesUpdated]).await;
    Ok(Json(json!({ "success": true, "case": case })))
}

#[derive(Deserialize)]
pub struct PriceRequest {
    price: Amount,
}

pub async fn set_price(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<PriceRequest>,
) -> ApiResult<Json<Value>> {
    let case = state.store.set_price(id, body.price.cents()).await?;
    state.publish([Event::CasesUpdated]).await;
    Ok(Json(json!({ "success": true, "case": case })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceRequest {
    user_id: String,
    amount: Amount,
    #[serde(default)]
    reason: Option<String>,
}

pub async fn add_balance(
    state: State<AppState>,
    admin: AdminUser,
    body: JsonBody<BalanceRequest>,
) -> ApiResult<Json<Value>> {
    adjust(state, admin, body, true).await
}

pub async fn subtract_balance(
    state: State<AppState>,
    admin: AdminUser,
    body: JsonBody<BalanceRequest>,
) -> ApiResult<Json<Value>> {
    adjust(state, admin, body, false).await
}

async fn adjust(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    JsonBody(body): JsonBody<BalanceRequest>,
    credit: bool,
) -> ApiResult<Json<Value>> {
    let user_id = parse_id("userId", &body.user_id)?;
    let reason = body.reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 200) {
        return Err(invalid("reason: must be at most 200 characters".into()));
    }
    let adjustment = Adjustment { user_id, amount: body.amount.cents(), credit, reason };
    let account = state.store.adjust_balance(&adjustment).await?;
    let kind = if credit { LedgerKind::AdminAdd } else { LedgerKind::AdminSubtract };
    state.metrics.record_ledger(kind, adjustment.amount);
    tracing::info!(admin = %admin.user_id, player = %user_id, kind = kind.as_str(), cents = adjustment.amount.as_i64(), "balance adjusted");
    state.publish([Event::balance(user_id, account)]).await;
    Ok(Json(json!({ "success": true, "balance": account.balance, "balanceVersion": account.version })))
}

#[derive(Deserialize)]
pub struct TransactionsQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn transactions(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(user_id): IdPath,
    QueryParams(query): QueryParams<TransactionsQuery>,
) -> ApiResult<Json<Value>> {
    let page = Page::parse(query.limit, query.cursor)?;
    // The cursor is the ledger version to continue below (the (user, version) key is unique).
    let entries = state.store.transactions(user_id, page.after_version()?, page.fetch()).await?;
    let (entries, next_cursor) = page.finish(entries.ok_or(ApiError::NotFound("user"))?, |e| version_cursor(e.version));
    Ok(Json(json!({ "success": true, "transactions": entries, "nextCursor": next_cursor })))
}

/// `POST /api/admin/users/:id/disconnect`: every socket of the user, on every replica, gets
/// `session:ended { reason: "kicked" }` and is disconnected. The player may reconnect at once
/// (block them to keep them out). `disconnected` counts the sockets on the replica that answered;
/// the other replicas end theirs when the bus event reaches them (milliseconds).
pub async fn disconnect_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    IdPath(user_id): IdPath,
) -> ApiResult<Json<Value>> {
    state.store.account(user_id).await?.ok_or(ApiError::NotFound("user"))?;
    let disconnected = crate::sessions::count_user(&state.io, user_id);
    tracing::info!(admin = %admin.user_id, player = %user_id, local_sockets = disconnected, "user kicked");
    state.publish([Event::UserKicked { user_id }]).await;
    Ok(Json(json!({ "success": true, "disconnected": disconnected })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    blocked: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// `PUT /api/admin/users/:id/block { blocked, reason? }`: a blocked player's authenticated HTTP
/// calls answer 403 `blocked`, socket connects are refused with `blocked`, and live sockets on
/// every replica get `session:ended { reason: "blocked" }`. Payments are still credited.
pub async fn set_blocked(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    IdPath(user_id): IdPath,
    JsonBody(body): JsonBody<BlockRequest>,
) -> ApiResult<Json<Value>> {
    let reason = body.reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 200) {
        return Err(invalid("reason: must be at most 200 characters".into()));
    }
    let user = state.store.set_blocked(user_id, body.blocked, reason.as_deref()).await?;
    tracing::info!(admin = %admin.user_id, player = %user_id, blocked = body.blocked, "user block changed");
    state.publish([Event::UserBlocked { user_id, blocked: body.blocked }]).await;
    Ok(Json(json!({ "success": true, "user": user })))
}

/// `GET /api/admin/users/:id`: balance and block state.
pub async fn user(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(user_id): IdPath,
) -> ApiResult<Json<Value>> {
    let user = state.store.user(user_id).await?.ok_or(ApiError::NotFound("user"))?;
    Ok(Json(json!({ "success": true, "user": user })))
}

/// `GET /api/admin/online`: sockets and distinct users, cluster-wide and per replica (from the
/// snapshots replicas refresh in Redis every 2 s; a single node answers from its own sockets).
pub async fn online(State(state): State<AppState>, AdminUser(_): AdminUser) -> ApiResult<Json<Value>> {
    let (replicas, users) = match state.bus.online().await {
        None => {
            let (replica, users) = crate::online::local_summary(&state.io, &state.config.replica_id);
            (vec![replica], users.len() as u64)
        }
        Some(Ok(cluster)) => (cluster.replicas, cluster.users),
        Some(Err(())) => return Err(ApiError::Unavailable("cluster bus unavailable")),
    };
    let sockets: u64 = replicas.iter().map(|r| r.sockets).sum();
    Ok(Json(json!({ "success": true, "sockets": sockets, "users": users, "replicas": replicas })))
}

/// `GET /api/admin/users/:id/sessions`: the user's live sockets on every replica.
pub async fn sessions(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(user_id): IdPath,
) -> ApiResult<Json<Value>> {
    state.store.account(user_id).await?.ok_or(ApiError::NotFound("user"))?;
    let sessions = match state.bus.user_sessions(user_id).await {
        None => crate::online::local_sessions(&state.io, &state.config.replica_id, user_id),
        Some(Ok(sessions)) => sessions,
        Some(Err(())) => return Err(ApiError::Unavailable("cluster bus unavailable")),
    };
    Ok(Json(json!({ "success": true, "sessions": sessions })))
}
