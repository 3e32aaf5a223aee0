use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::page::{time_cursor, Page};
use super::{JsonBody, QueryParams};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::fair::validate_client_seed;
use crate::state::AppState;

pub async fn current(State(state): State<AppState>, AuthUser(identity): AuthUser) -> ApiResult<Json<Value>> {
    let pair = state.store.fair_pair(identity.user_id).await?;
    Ok(Json(json!({
        "success": true,
        "serverSeedHash": pair.server_seed_hash,
        "nextServerSeedHash": pair.next_server_seed_hash,
        "clientSeed": pair.client_seed,
        "nonce": pair.nonce,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSeedRequest {
    client_seed: String,
}

pub async fn set_client_seed(
    State(state): State<AppState>,
    AuthUser(identity): AuthUser,
    JsonBody(body): JsonBody<ClientSeedRequest>,
) -> ApiResult<Json<Value>> {
    validate_client_seed(&body.client_seed).map_err(|e| ApiError::bad_request("invalid_client_seed", e.to_string()))?;
    state.limits.seed(identity.user_id, &state.metrics)?;
    rotated(&state, identity.user_id, Some(body.client_seed)).await
}

pub async fn rotate(State(state): State<AppState>, AuthUser(identity): AuthUser) -> ApiResult<Json<Value>> {
    state.limits.seed(identity.user_id, &state.metrics)?;
    rotated(&state, identity.user_id, None).await
}

async fn rotated(state: &AppState, user_id: uuid::Uuid, client_seed: Option<String>) -> ApiResult<Json<Value>> {
    let (previous, current) = state.store.rotate_pair(user_id, client_seed).await?;
    Ok(Json(json!({ "success": true, "previous": previous, "current": current })))
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn history(
    State(state): State<AppState>,
    AuthUser(identity): AuthUser,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    let page = Page::parse(query.limit, query.cursor)?;
    let pairs = state.store.fair_history(identity.user_id, page.after_time()?, page.fetch()).await?;
    let (pairs, next_cursor) = page.finish(pairs, |pair| time_cursor(pair.created_at, pair.id));
    Ok(Json(json!({ "success": true, "pairs": pairs, "nextCursor": next_cursor })))
}
