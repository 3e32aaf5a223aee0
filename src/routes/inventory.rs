use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::page::{time_cursor, Page, PageQuery};
use super::{parse_id, IdPath, JsonBody, QueryParams, Success};
use crate::auth::{AdminUser, AuthUser};
use crate::domain::{InventoryEntry, InventoryStatus, LedgerKind};
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::money::{Balance, Cents, NonNegative};
use crate::openapi::{Admin, BadRequest, Conflict, JsonBodyErrors, NotFound, Player};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusFilter {
    /// Only items in this status; empty or left out: every status.
    #[param(inline, value_type = Option<StatusFilterValue>)]
    status: Option<String>,
}

impl StatusFilter {
    /// The status asked for; an unknown one is a 400 `invalid_status`.
    pub fn parse(&self) -> Result<Option<InventoryStatus>, ApiError> {
        match self.status.as_deref().filter(|s| !s.is_empty()) {
            Some(text) => Some(InventoryStatus::parse(text).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_status",
                    format!("unknown status {text:?}; expected owned, withdraw_requested, delivered or claimed"),
                )
            }))
            .transpose(),
            None => Ok(None),
        }
    }
}

/// An inventory status, or the empty string for all of them.
struct StatusFilterValue;

impl utoipa::PartialSchema for StatusFilterValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(["owned", "withdraw_requested", "delivered", "claimed", ""]))
            .into()
    }
}

impl ToSchema for StatusFilterValue {
    fn name() -> std::borrow::Cow<'static, str> {
        "InventoryStatusFilter".into()
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = InventoryResponse)]
pub struct InventoryPage {
    /// Newest first; one page.
    pub items: Vec<InventoryEntry>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The caller's inventory, newest first
#[utoipa::path(
    get,
    path = "/api/inventory",
    operation_id = "listInventory",
    tag = "Inventory",
    security(("bearerAuth" = [])),
    params(PageQuery, StatusFilter),
    responses(
        (status = 200, description = "One page of the caller's items.", body = Success<InventoryPage>,
            links(("nextPage" = (operation_id = "listInventory", parameters(
                ("cursor" = "$response.body#/nextCursor"), ("limit" = "$request.query.limit"), ("status" = "$request.query.status")
            ))))
        ),
        (status = 400, response = BadRequest),
        Player,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(identity): AuthUser,
    QueryParams(query): QueryParams<PageQuery>,
    QueryParams(filter): QueryParams<StatusFilter>,
) -> ApiResult<Success<InventoryPage>> {
    let page = Page::parse(query.limit, query.cursor)?;
    let status = filter.parse()?;
    let items = state.store.inventory(identity.user_id, status, page.after_time()?, page.fetch()).await?;
    let (items, next_cursor) = page.finish(items, |entry| time_cursor(entry.won_at, entry.id));
    Ok(Success::new(InventoryPage { items, next_cursor }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(examples(json!({ "inventoryItemId": "a4b3c2d1-e0f9-4a8b-9c7d-6e5f4a3b2c1d" })))]
pub struct ClaimRequest {
    #[schema(value_type = Uuid)]
    inventory_item_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ClaimResponse)]
pub struct Claimed {
    /// The balance after the credit.
    #[schema(value_type = Balance)]
    balance: Cents,
    #[schema(minimum = 1)]
    balance_version: i64,
    /// The amount credited: the item's value.
    #[schema(value_type = NonNegative)]
    credited: Cents,
}

/// Turn an owned item into balance
///
/// Credits the item's value to the caller's balance and marks the item `claimed`, in one
/// transaction. Only an `owned` item of the caller can be claimed (else 409 `not_owned`); someone
/// else's item is 404. Emits `balance:updated:<userId>` and `inventory:updated:<userId>`. Rate
/// limited per user.
#[utoipa::path(
    post,
    path = "/api/inventory/claim",
    operation_id = "claimItem",
    tag = "Inventory",
    security(("bearerAuth" = [])),
    request_body = ClaimRequest,
    responses(
        (status = 200, description = "The item was claimed.", body = Success<Claimed>),
        JsonBodyErrors,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        Player,
    )
)]
pub async fn claim(
    State(state): State<AppState>,
    AuthUser(identity): AuthUser,
    JsonBody(body): JsonBody<ClaimRequest>,
) -> ApiResult<Success<Claimed>> {
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
    Ok(Success::new(Claimed {
        balance: claimed.account.balance,
        balance_version: claimed.account.version,
        credited: claimed.credited,
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = InventoryStatusRequest, examples(json!({ "status": "withdraw_requested" })))]
pub struct StatusRequest {
    /// `owned`, `withdraw_requested` or `delivered`; `claimed` is 409 (only a claim makes it).
    #[schema(value_type = InventoryStatus)]
    status: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = InventoryEntryResponse)]
pub struct EntryBody {
    item: InventoryEntry,
}

/// Change an inventory item's status
///
/// Moves an item along the withdrawal flow: `owned` → `withdraw_requested` → `delivered`, or
/// `withdraw_requested` → `owned`. Any other move is 409 `invalid_transition`. Emits
/// `inventory:updated:<userId>` to the owner.
#[utoipa::path(
    put,
    path = "/api/inventory/{id}/status",
    operation_id = "setInventoryStatus",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The inventory item id.")),
    request_body = StatusRequest,
    responses(
        (status = 200, description = "The item after the change.", body = Success<EntryBody>),
        JsonBodyErrors,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        Admin,
    )
)]
pub async fn set_status(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<StatusRequest>,
) -> ApiResult<Success<EntryBody>> {
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
    Ok(Success::new(EntryBody { item: entry }))
}
