use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn me(State(state): State<AppState>, AuthUser(identity): AuthUser) -> ApiResult<Json<Value>> {
    let account = state.store.account(identity.user_id).await?.ok_or(ApiError::NotFound("user"))?;
    Ok(Json(json!({
        "success": true,
        "user": {
            "id": identity.user_id,
            "role": identity.role,
            "balance": account.balance,
            "balanceVersion": account.version,
        }
    })))
}
