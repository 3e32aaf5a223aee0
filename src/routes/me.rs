use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Success;
use crate::auth::AuthUser;
use crate::domain::Role;
use crate::error::{ApiError, ApiResult};
use crate::money::{Balance, Cents};
use crate::openapi::Player;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[schema(as = MeResponse)]
pub struct MeBody {
    user: Me,
}

/// The caller, as its token and the ledger know it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = User)]
pub struct Me {
    /// The token's `sub`.
    id: Uuid,
    role: Role,
    #[schema(value_type = Balance)]
    balance: Cents,
    /// Goes up by exactly 1 with every balance change (`0` before the first). Of two balance
    /// snapshots, the one with the higher version is the newer.
    #[schema(minimum = 0)]
    balance_version: i64,
    /// Goes up by exactly 1 with every inventory change (open, claim, admin status change): the
    /// client's inventory position, sent back in the Socket.IO handshake (`auth.positions.inventory`).
    #[schema(minimum = 0)]
    inventory_version: i64,
}

/// The caller's balance and versions
///
/// A user seen for the first time in a valid token is created with balance 0.
#[utoipa::path(
    get,
    path = "/api/me",
    operation_id = "getMe",
    tag = "Account",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "The caller.", body = Success<MeBody>), Player)
)]
pub async fn me(State(state): State<AppState>, AuthUser(identity): AuthUser) -> ApiResult<Success<MeBody>> {
    let (_, now) =
        state.store.positions(&[identity.user_id]).await?.into_iter().next().ok_or(ApiError::NotFound("user"))?;
    Ok(Success::new(MeBody {
        user: Me {
            id: identity.user_id,
            role: identity.role,
            balance: now.account.balance,
            balance_version: now.account.version,
            inventory_version: now.inventory_version,
        },
    }))
}
