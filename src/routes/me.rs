use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn me(State(state): State<AppState>, AuthUser(identity): AuthUser) -> ApiResult<Json<Value>> {
    let (_, now) =
        state.store.positions(&[identity.user_id]).await?.into_iter().next().ok_or(ApiError::NotFound("user"))?;
    let account = now.account;
    Ok(Json(json!({
        "success": true,
        "user": {
            "id": identity.user_id,
            "role": identity.role,
            "balance": account.balance,
            "balanceVersion": account.version,
            "inventoryVersion": now.inventory_version,
        }
    })))
}
