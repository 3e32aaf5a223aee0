//! What the operators' console reads besides the player's own endpoints: the withdrawal queue, and
//! a player's inventory and seed-pair history as an admin sees them. Each is one keyset page.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::fair::{History, HistoryEntry};
use super::inventory::{InventoryPage, StatusFilter};
use super::page::{time_cursor, Page, PageQuery};
use super::{IdPath, QueryParams, Success};
use crate::auth::AdminUser;
use crate::domain::InventoryEntry;
use crate::error::{ApiError, ApiResult};
use crate::openapi::{Admin, BadRequest, NotFound};
use crate::state::AppState;
use crate::store::Withdrawal;

/// An item waiting to be handed over.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WithdrawalRequest)]
pub struct WithdrawalView {
    /// The owner (a token's `sub`).
    user_id: Uuid,
    /// When the item entered `withdraw_requested`.
    requested_at: DateTime<Utc>,
    /// The inventory item; its `id` is what `PUT /api/inventory/{id}/status` takes.
    item: InventoryEntry,
}

impl From<Withdrawal> for WithdrawalView {
    fn from(w: Withdrawal) -> Self {
        WithdrawalView { user_id: w.entry.user_id, requested_at: w.requested_at, item: w.entry }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WithdrawalsResponse)]
pub struct Withdrawals {
    /// Oldest request first; one page.
    withdrawals: Vec<WithdrawalView>,
    /// Pass as `cursor` for the next (newer) page; `null` on the last page.
    next_cursor: Option<String>,
}

/// The withdrawal queue
///
/// Every player's items in `withdraw_requested`, oldest request first. Settle each with `PUT
/// /api/inventory/{id}/status`: `delivered` once handed over, or `owned` to give it back.
#[utoipa::path(
    get,
    path = "/api/admin/withdrawals",
    operation_id = "listWithdrawals",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the queue.", body = Success<Withdrawals>,
            links(("nextPage" = (operation_id = "listWithdrawals", parameters(
                ("cursor" = "$response.body#/nextCursor"), ("limit" = "$request.query.limit")
            ))))
        ),
        (status = 400, response = BadRequest),
        Admin,
    )
)]
pub async fn withdrawals(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    QueryParams(query): QueryParams<PageQuery>,
) -> ApiResult<Success<Withdrawals>> {
    let page = Page::parse(query.limit, query.cursor)?;
    let rows = state.store.withdrawals(page.after_time()?, page.fetch()).await?;
    let (rows, next_cursor) = page.finish(rows, |w| time_cursor(w.requested_at, w.entry.id));
    Ok(Success::new(Withdrawals { withdrawals: rows.into_iter().map(WithdrawalView::from).collect(), next_cursor }))
}

async fn known(state: &AppState, user_id: Uuid) -> ApiResult<()> {
    state.store.account(user_id).await?.ok_or(ApiError::NotFound("user"))?;
    Ok(())
}

/// A user's inventory
///
/// The user's items, newest first, as `GET /api/inventory` shows them to the user.
#[utoipa::path(
    get,
    path = "/api/admin/users/{id}/inventory",
    operation_id = "listUserInventory",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The user id (a token's `sub`)."), PageQuery, StatusFilter),
    responses(
        (status = 200, description = "One page of the user's items.", body = Success<InventoryPage>,
            links(("nextPage" = (operation_id = "listUserInventory", parameters(
                ("cursor" = "$response.body#/nextCursor"), ("limit" = "$request.query.limit"),
                ("status" = "$request.query.status"), ("id" = "$request.path.id")
            ))))
        ),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Admin,
    )
)]
pub async fn user_inventory(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(user_id): IdPath,
    QueryParams(query): QueryParams<PageQuery>,
    QueryParams(filter): QueryParams<StatusFilter>,
) -> ApiResult<Success<InventoryPage>> {
    let page = Page::parse(query.limit, query.cursor)?;
    let status = filter.parse()?;
    let after = page.after_time()?;
    known(&state, user_id).await?;
    let items = state.store.inventory(user_id, status, after, page.fetch()).await?;
    let (items, next_cursor) = page.finish(items, |entry| time_cursor(entry.won_at, entry.id));
    Ok(Success::new(InventoryPage { items, next_cursor }))
}

/// A user's seed pairs
///
/// The user's provably fair history, newest first, as `GET /api/fair/history` shows it to the
/// user: retired pairs with their revealed server seed, the active one with its hash only.
#[utoipa::path(
    get,
    path = "/api/admin/users/{id}/fair/history",
    operation_id = "getUserFairHistory",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The user id (a token's `sub`)."), PageQuery),
    responses(
        (status = 200, description = "One page of seed pairs.", body = Success<History>,
            links(("nextPage" = (operation_id = "getUserFairHistory", parameters(
                ("cursor" = "$response.body#/nextCursor"), ("limit" = "$request.query.limit"), ("id" = "$request.path.id")
            ))))
        ),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Admin,
    )
)]
pub async fn user_fair_history(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(user_id): IdPath,
    QueryParams(query): QueryParams<PageQuery>,
) -> ApiResult<Success<History>> {
    let page = Page::parse(query.limit, query.cursor)?;
    let after = page.after_time()?;
    known(&state, user_id).await?;
    let pairs = state.store.fair_history(user_id, after, page.fetch()).await?;
    let (pairs, next_cursor) = page.finish(pairs, |pair| time_cursor(pair.created_at, pair.id));
    Ok(Success::new(History { pairs: pairs.into_iter().map(HistoryEntry::from).collect(), next_cursor }))
}
