use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse_id, IdPath, JsonBody};
use crate::auth::AuthUser;
use crate::domain::LedgerKind;
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::state::AppState;

pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let cases = state.store.cases().await?;
    Ok(Json(json!({ "success": true, "cases": cases })))
}

pub async fn get(State(state): State<AppState>, IdPath(id): IdPath) -> ApiResult<Json<Value>> {
    let case = state.store.case(id).await?.ok_or(ApiError::NotFound("case"))?;
    Ok(Json(json!({ "success": true, "case": case })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenRequest {
    case_id: String,
}

pub async fn open(
    State(state): State<AppState>,
    AuthUser(identity): AuthUser,
    JsonBody(body): JsonBody<OpenRequest>,
) -> ApiResult<Json<Value>> {
    let case_id = parse_id("caseId", &body.case_id)?;
    state.limits.open(identity.user_id, &state.metrics)?;
    let opened = state.store.open_case(identity.user_id, case_id).await?;
    state.metrics.case_opens.with_label_values(&[&case_id.to_string()]).inc();
    state.metrics.record_ledger(LedgerKind::CaseOpen, opened.price);
    state.metrics.record_open_retries(opened.retries);
    state
        .publish([
            Event::balance(identity.user_id, opened.account),
            Event::inventory(identity.user_id, opened.inventory_version),
        ])
        .await;
    Ok(Json(json!({
        "success": true,
        "item": opened.item,
        "inventoryItemId": opened.inventory_item_id,
        "balance": opened.account.balance,
        "balanceVersion": opened.account.version,
        "fair": opened.fair,
    })))
}
