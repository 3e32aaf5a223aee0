use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{parse_id, IdPath, JsonBody, Success};
use crate::auth::AuthUser;
use crate::domain::{Case, FairProof, Item, LedgerKind};
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::money::{Balance, Cents};
use crate::openapi::{Anonymous, BadRequest, InsufficientBalance, JsonBodyErrors, NotFound, Player};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[schema(as = CaseListResponse)]
pub struct CaseList {
    /// Every active case, with its items.
    cases: Vec<Case>,
}

/// List the active cases
///
/// The public catalogue. Not paged: only admins add to it.
#[utoipa::path(
    get,
    path = "/api/cases",
    operation_id = "listCases",
    tag = "Cases",
    responses((status = 200, description = "The catalogue.", body = Success<CaseList>), Anonymous)
)]
pub async fn list(State(state): State<AppState>) -> ApiResult<Success<CaseList>> {
    let cases = state.store.cases().await?;
    Ok(Success::new(CaseList { cases }))
}

#[derive(Serialize, ToSchema)]
#[schema(as = CaseResponse)]
pub struct CaseBody {
    case: Case,
}

impl CaseBody {
    pub fn new(case: Case) -> Self {
        CaseBody { case }
    }
}

/// One active case
#[utoipa::path(
    get,
    path = "/api/cases/{id}",
    operation_id = "getCase",
    tag = "Cases",
    params(("id" = Uuid, Path, description = "The case id.")),
    responses(
        (status = 200, description = "The case.", body = Success<CaseBody>),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Anonymous,
    )
)]
pub async fn get(State(state): State<AppState>, IdPath(id): IdPath) -> ApiResult<Success<CaseBody>> {
    let case = state.store.case(id).await?.ok_or(ApiError::NotFound("case"))?;
    Ok(Success::new(CaseBody { case }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OpenCaseRequest, examples(json!({ "caseId": "5b0f2a9e-8c1d-4f3e-9a77-2d6c1e0b4a10" })))]
pub struct OpenRequest {
    #[schema(value_type = Uuid)]
    case_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OpenCaseResponse)]
pub struct Opened {
    /// The item won.
    item: Item,
    /// The new inventory entry.
    inventory_item_id: Uuid,
    /// The balance after the debit.
    #[schema(value_type = Balance)]
    balance: Cents,
    #[schema(minimum = 1)]
    balance_version: i64,
    fair: FairProof,
}

/// Open a case
///
/// Debits the case price, draws an item with the caller's provably fair seed pair (advancing its
/// nonce) and adds the item to the caller's inventory with status `owned`, in one transaction.
/// Emits `balance:updated:<userId>` and `inventory:updated:<userId>`. Rate limited per user.
#[utoipa::path(
    post,
    path = "/api/cases/open",
    operation_id = "openCase",
    tag = "Cases",
    security(("bearerAuth" = [])),
    request_body = OpenRequest,
    responses(
        (status = 200, description = "The case was opened.", body = Success<Opened>),
        JsonBodyErrors,
        (status = 404, response = NotFound),
        (status = 422, response = InsufficientBalance),
        Player,
    )
)]
pub async fn open(
    State(state): State<AppState>,
    AuthUser(identity): AuthUser,
    JsonBody(body): JsonBody<OpenRequest>,
) -> ApiResult<Success<Opened>> {
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
    Ok(Success::new(Opened {
        item: opened.item,
        inventory_item_id: opened.inventory_item_id,
        balance: opened.account.balance,
        balance_version: opened.account.version,
        fair: opened.fair,
    }))
}
