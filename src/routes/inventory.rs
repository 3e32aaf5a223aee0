use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::page::{time_cursor, Page};
use super::{parse_id, IdPath, JsonBody, QueryParams};
use crate::auth::{AdminUser, AuthUser};
use crate::domain::{InventoryStatus, LedgerKind};
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    status: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    AuthUser(identity): AuthUser,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<Json<Value>> {
    let page = Page::parse(query.limit, query.cursor)?;
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => Some(InventoryStatus::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_status",
                format!("unknown status {text:?}; expected owned, withdraw_requested, delivered or claimed"),
            )
        })?),
        None => None,
    };
    let items = state.store.inventory(identity.user_id, status, page.after_time()?, page.fetch()).await?;
    let (items, next_cursor) = page.finish(items, |entry| time_cursor(entry.won_at, entry.id));
    Ok(Json(json!({ "success": true, "items": items, "nextCursor": next_cursor })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimRequest {
    inventory_item_id: String,
}

pub async fn claim(
    State(state): State<AppState>,
    AuthUser(identity): AuthUser,
    JsonBody(body): JsonBody<ClaimRequest>,
) -> ApiResult<Json<Value>> {
    let inventory_id = parse_id("inventoryItemId", &body.inventory_item_id)?;
    state.limits.claim(identity.user_id, &state.metrics)?;
    let claimed = state.store.claim(identity.user_id, inventory_id).await?;
    state.metrics.claims.inc();
    state.metrics.record_ledger(LedgerKind::Claim, claimed.credited);
    state
        .publish([
            Event::balance(identity.user_id, claimed.account),
            Event::inventory(identity.user_id, claimed.inventory_version),
        ])
        .await;
    Ok(Json(json!({
        "success": true,
        "balance": claimed.account.balance,
        "balanceVersion": claimed.account.version,
        "credited": claimed.credited,
    })))
}

#[derive(Deserialize)]
pub struct StatusRequest {
    status: String,
}

pub async fn set_status(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<StatusRequest>,
) -> ApiResult<Json<Value>> {
    let status = InventoryStatus::parse(&body.status).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_status",
            format!("unknown status {:?}; expected owned, withdraw_requested or delivered", body.status),
        )
    })?;
    if status == InventoryStatus::Claimed {
        return Err(ApiError::conflict(
            "invalid_transition",
            "items become claimed only through POST /api/inventory/claim",
        ));
    }
    let (entry, inventory_version) = state.store.set_inventory_status(id, status).await?;
    state.publish([Event::inventory(entry.user_id, inventory_version)]).await;
    Ok(Json(json!({ "success": true, "item": entry })))
}
