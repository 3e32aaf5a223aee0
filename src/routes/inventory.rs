use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse_id, IdPath, JsonBody};
use crate::auth::{AdminUser, AuthUser};
use crate::domain::{InventoryStatus, LedgerKind};
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>, AuthUser(identity): AuthUser) -> ApiResult<Json<Value>> {
    let items = state.store.inventory(identity.user_id).await?;
    Ok(Json(json!({ "success": true, "items": items })))
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
            Event::InventoryUpdated { user_id: identity.user_id },
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
    let entry = state.store.set_inventory_status(id, status).await?;
    state.publish([Event::InventoryUpdated { user_id: entry.user_id }]).await;
    Ok(Json(json!({ "success": true, "item": entry })))
}
