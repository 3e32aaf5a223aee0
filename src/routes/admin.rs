use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::cases::CaseBody;
use super::page::{version_cursor, Page, VersionPageQuery};
use super::{parse_id, Created, IdPath, JsonBody, QueryParams, Success};
use crate::auth::AdminUser;
use crate::domain::case::validate_items;
use crate::domain::{CaseDraft, ItemDraft, LedgerEntry, LedgerKind};
use crate::error::{ApiError, ApiResult};
use crate::events::Event;
use crate::money::{Amount, Balance, Cents};
use crate::online::{ReplicaOnline, SessionView};
use crate::openapi::{Admin, BadRequest, Conflict, InsufficientBalance, JsonBodyErrors, NotFound};
use crate::state::AppState;
use crate::store::{Adjustment, UserRecord};

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_body", message)
}

/// The longest `reason` an admin may give, in characters as sent (before trimming).
const MAX_REASON_CHARS: usize = 200;

/// An optional free-text reason: blank is none; over the limit is a 400.
fn reason(text: Option<String>) -> Result<Option<String>, ApiError> {
    if text.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(invalid(format!("reason: must be at most {MAX_REASON_CHARS} characters")));
    }
    Ok(text.map(|r| r.trim().to_string()).filter(|r| !r.is_empty()))
}

/// Create a case
///
/// Emits `cases:updated` to every socket.
#[utoipa::path(
    post,
    path = "/api/admin/cases",
    operation_id = "createCase",
    tag = "Admin",
    security(("bearerAuth" = [])),
    request_body = CaseDraft,
    responses(
        (status = 201, description = "The case was created.", body = Success<CaseBody>),
        JsonBodyErrors,
        Admin,
    )
)]
pub async fn create_case(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    JsonBody(draft): JsonBody<CaseDraft>,
) -> ApiResult<Created<CaseBody>> {
    draft.validate().map_err(invalid)?;
    let case = state.store.create_case(&draft).await?;
    state.publish([Event::CasesUpdated]).await;
    Ok(Created(Success::new(CaseBody::new(case))))
}

/// Replace a case
///
/// Replaces the name, image, price and items. Inventories keep the items already won, and each
/// open's fair record keeps the case as it was. Emits `cases:updated`.
#[utoipa::path(
    put,
    path = "/api/admin/cases/{id}",
    operation_id = "replaceCase",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The case id.")),
    request_body = CaseDraft,
    responses(
        (status = 200, description = "The case after the change.", body = Success<CaseBody>),
        JsonBodyErrors,
        (status = 404, response = NotFound),
        Admin,
    )
)]
pub async fn update_case(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(id): IdPath,
    JsonBody(draft): JsonBody<CaseDraft>,
) -> ApiResult<Success<CaseBody>> {
    draft.validate().map_err(invalid)?;
    let case = state.store.update_case(id, &draft).await?;
    state.publish([Event::CasesUpdated]).await;
    Ok(Success::new(CaseBody::new(case)))
}

/// Nothing but `success`.
#[derive(Serialize, ToSchema)]
#[schema(as = SuccessResponse)]
pub struct Done {}

/// Delete a case
///
/// Soft delete: the case leaves the catalogue, inventories keep their items. Emits `cases:updated`.
#[utoipa::path(
    delete,
    path = "/api/admin/cases/{id}",
    operation_id = "deleteCase",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The case id.")),
    responses(
        (status = 200, description = "The case was deleted.", body = Success<Done>),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Admin,
    )
)]
pub async fn delete_case(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(id): IdPath,
) -> ApiResult<Success<Done>> {
    state.store.delete_case(id).await?;
    state.publish([Event::CasesUpdated]).await;
    Ok(Success::new(Done {}))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CaseItemsInput)]
pub struct ItemsRequest {
    /// 1 to 100 items; their order is the pick order.
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<ItemDraft>,
}

/// Replace a case's items
///
/// Emits `cases:updated`.
#[utoipa::path(
    patch,
    path = "/api/admin/cases/{id}/items",
    operation_id = "replaceCaseItems",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The case id.")),
    request_body = ItemsRequest,
    responses(
        (status = 200, description = "The case after the change.", body = Success<CaseBody>),
        JsonBodyErrors,
        (status = 404, response = NotFound),
        Admin,
    )
)]
pub async fn replace_items(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<ItemsRequest>,
) -> ApiResult<Success<CaseBody>> {
    validate_items(&body.items).map_err(invalid)?;
    let case = state.store.replace_items(id, &body.items).await?;
    state.publish([Event::CasesUpdated]).await;
    Ok(Success::new(CaseBody::new(case)))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CasePriceInput, examples(json!({ "price": 2.5 })))]
pub struct PriceRequest {
    price: Amount,
}

/// Change a case's price
///
/// Emits `cases:updated`.
#[utoipa::path(
    put,
    path = "/api/admin/cases/{id}/price",
    operation_id = "setCasePrice",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The case id.")),
    request_body = PriceRequest,
    responses(
        (status = 200, description = "The case after the change.", body = Success<CaseBody>),
        JsonBodyErrors,
        (status = 404, response = NotFound),
        Admin,
    )
)]
pub async fn set_price(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<PriceRequest>,
) -> ApiResult<Success<CaseBody>> {
    let case = state.store.set_price(id, body.price.cents()).await?;
    state.publish([Event::CasesUpdated]).await;
    Ok(Success::new(CaseBody::new(case)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BalanceChangeRequest, examples(json!({
    "userId": "7f3c2e1d-9a8b-4c6d-8e5f-4a3b2c1d0e9f", "amount": 12.5, "reason": "tournament prize"
})))]
pub struct BalanceRequest {
    #[schema(value_type = Uuid)]
    user_id: String,
    amount: Amount,
    /// A note kept in the ledger; blank or `null` is none.
    #[serde(default)]
    #[schema(max_length = 200)]
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BalanceResponse, examples(json!({ "success": true, "balance": 12.5, "balanceVersion": 1 })))]
pub struct BalanceBody {
    /// The balance after the change.
    #[schema(value_type = Balance)]
    balance: Cents,
    #[schema(minimum = 1)]
    balance_version: i64,
}

/// Credit a user's balance
///
/// Credits a known user (404 for one never seen) with a ledger row of kind `admin_add`. Emits
/// `balance:updated:<userId>`.
#[utoipa::path(
    post,
    path = "/api/admin/balance/add",
    operation_id = "addBalance",
    tag = "Admin",
    security(("bearerAuth" = [])),
    request_body = BalanceRequest,
    responses(
        (status = 200, description = "The balance after the credit.", body = Success<BalanceBody>),
        JsonBodyErrors,
        (status = 404, response = NotFound),
        Admin,
    )
)]
pub async fn add_balance(
    state: State<AppState>,
    admin: AdminUser,
    body: JsonBody<BalanceRequest>,
) -> ApiResult<Success<BalanceBody>> {
    adjust(state, admin, body, true).await
}

/// Debit a user's balance
///
/// Debits a known user with a ledger row of kind `admin_subtract`; never below 0 (422, nothing
/// changes). Emits `balance:updated:<userId>`.
#[utoipa::path(
    post,
    path = "/api/admin/balance/subtract",
    operation_id = "subtractBalance",
    tag = "Admin",
    security(("bearerAuth" = [])),
    request_body = BalanceRequest,
    responses(
        (status = 200, description = "The balance after the debit.", body = Success<BalanceBody>),
        JsonBodyErrors,
        (status = 404, response = NotFound),
        (status = 422, response = InsufficientBalance),
        Admin,
    )
)]
pub async fn subtract_balance(
    state: State<AppState>,
    admin: AdminUser,
    body: JsonBody<BalanceRequest>,
) -> ApiResult<Success<BalanceBody>> {
    adjust(state, admin, body, false).await
}

async fn adjust(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    JsonBody(body): JsonBody<BalanceRequest>,
    credit: bool,
) -> ApiResult<Success<BalanceBody>> {
    let user_id = parse_id("userId", &body.user_id)?;
    let reason = reason(body.reason)?;
    let adjustment = Adjustment { user_id, amount: body.amount.cents(), credit, reason };
    let account = state.store.adjust_balance(&adjustment).await?;
    let kind = if credit { LedgerKind::AdminAdd } else { LedgerKind::AdminSubtract };
    state.metrics.record_ledger(kind, adjustment.amount);
    tracing::info!(admin = %admin.user_id, player = %user_id, kind = kind.as_str(), cents = adjustment.amount.as_i64(), "balance adjusted");
    state.publish([Event::balance(user_id, account)]).await;
    Ok(Success::new(BalanceBody { balance: account.balance, balance_version: account.version }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TransactionsResponse)]
pub struct Transactions {
    /// Newest first; one page.
    transactions: Vec<LedgerEntry>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next_cursor: Option<String>,
}

/// A user's ledger
///
/// The user's ledger, newest first.
#[utoipa::path(
    get,
    path = "/api/admin/users/{id}/transactions",
    operation_id = "listUserTransactions",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The user id (a token's `sub`)."), VersionPageQuery),
    responses(
        (status = 200, description = "One page of the ledger.", body = Success<Transactions>,
            links(("nextPage" = (operation_id = "listUserTransactions", parameters(
                ("cursor" = "$response.body#/nextCursor"), ("limit" = "$request.query.limit"), ("id" = "$request.path.id")
            ))))
        ),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Admin,
    )
)]
pub async fn transactions(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(user_id): IdPath,
    QueryParams(query): QueryParams<VersionPageQuery>,
) -> ApiResult<Success<Transactions>> {
    let page = Page::parse(query.limit, query.cursor)?;
    // The cursor is the ledger version to continue below (the (user, version) key is unique).
    let entries = state.store.transactions(user_id, page.after_version()?, page.fetch()).await?;
    let (entries, next_cursor) = page.finish(entries.ok_or(ApiError::NotFound("user"))?, |e| version_cursor(e.version));
    Ok(Success::new(Transactions { transactions: entries, next_cursor }))
}

#[derive(Serialize, ToSchema)]
#[schema(as = DisconnectResponse)]
pub struct Disconnected {
    /// The user's sockets on the replica that answered. Those on other replicas end too, when the
    /// bus event reaches them (milliseconds); they are not counted here.
    disconnected: usize,
}

/// Kick a user's sockets
///
/// Every socket of the user, on every replica, gets `session:ended { reason: "kicked" }` and is
/// disconnected. The player may reconnect at once (block them to keep them out).
#[utoipa::path(
    post,
    path = "/api/admin/users/{id}/disconnect",
    operation_id = "disconnectUser",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The user id (a token's `sub`).")),
    responses(
        (status = 200, description = "The sockets are being disconnected.", body = Success<Disconnected>),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Admin,
    )
)]
pub async fn disconnect_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    IdPath(user_id): IdPath,
) -> ApiResult<Success<Disconnected>> {
    state.store.account(user_id).await?.ok_or(ApiError::NotFound("user"))?;
    let disconnected = crate::sessions::count_user(&state.io, user_id);
    tracing::info!(admin = %admin.user_id, player = %user_id, local_sockets = disconnected, "user kicked");
    state.publish([Event::UserKicked { user_id }]).await;
    Ok(Success::new(Disconnected { disconnected }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BlockRequest, examples(json!({ "blocked": true, "reason": "chargeback" })))]
pub struct BlockRequest {
    /// `true` blocks the user, `false` restores access.
    blocked: bool,
    /// Why, kept while the block lasts; blank or `null` is none.
    #[serde(default)]
    #[schema(max_length = 200)]
    reason: Option<String>,
}

/// A user as an admin sees it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AdminUser)]
pub struct UserView {
    id: Uuid,
    #[schema(value_type = Balance)]
    balance: Cents,
    #[schema(minimum = 0)]
    balance_version: i64,
    blocked: bool,
    /// The current block's reason (cleared on unblock).
    blocked_reason: Option<String>,
    /// When the current block was set (cleared on unblock).
    blocked_at: Option<DateTime<Utc>>,
}

impl From<UserRecord> for UserView {
    fn from(user: UserRecord) -> Self {
        UserView {
            id: user.id,
            balance: user.balance,
            balance_version: user.balance_version,
            blocked: user.blocked,
            blocked_reason: user.blocked_reason,
            blocked_at: user.blocked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = AdminUserResponse)]
pub struct UserBody {
    user: UserView,
}

/// Block or unblock a user
///
/// A blocked player's authenticated HTTP calls answer 403 `blocked`, socket connects are refused
/// with `blocked`, and live sockets on every replica get `session:ended { reason: "blocked" }`.
/// Payments are still credited. An admin cannot block their own account (409 `cannot_block_self`):
/// they could not unblock it.
#[utoipa::path(
    put,
    path = "/api/admin/users/{id}/block",
    operation_id = "blockUser",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The user id (a token's `sub`).")),
    request_body = BlockRequest,
    responses(
        (status = 200, description = "The user after the change.", body = Success<UserBody>),
        JsonBodyErrors,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        Admin,
    )
)]
pub async fn set_blocked(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    IdPath(user_id): IdPath,
    JsonBody(body): JsonBody<BlockRequest>,
) -> ApiResult<Success<UserBody>> {
    let reason = reason(body.reason)?;
    if body.blocked && user_id == admin.user_id {
        return Err(ApiError::conflict("cannot_block_self", "an admin cannot block their own account"));
    }
    let user = state.store.set_blocked(user_id, body.blocked, reason.as_deref()).await?;
    tracing::info!(admin = %admin.user_id, player = %user_id, blocked = body.blocked, "user block changed");
    state.publish([Event::UserBlocked { user_id, blocked: body.blocked }]).await;
    Ok(Success::new(UserBody { user: user.into() }))
}

/// A user's balance and block state
///
/// Balance and block state.
#[utoipa::path(
    get,
    path = "/api/admin/users/{id}",
    operation_id = "getUser",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The user id (a token's `sub`).")),
    responses(
        (status = 200, description = "The user.", body = Success<UserBody>),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Admin,
    )
)]
pub async fn user(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(user_id): IdPath,
) -> ApiResult<Success<UserBody>> {
    let user = state.store.user(user_id).await?.ok_or(ApiError::NotFound("user"))?;
    Ok(Success::new(UserBody { user: user.into() }))
}

/// One replica's counts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replica {
    /// Its `REPLICA_ID`.
    replica: String,
    sockets: u64,
    /// Distinct authenticated users on this replica.
    users: u64,
    /// When the replica last published its counts (every 2 s).
    updated_at: DateTime<Utc>,
}

impl From<ReplicaOnline> for Replica {
    fn from(r: ReplicaOnline) -> Self {
        Replica { replica: r.replica, sockets: r.sockets, users: r.users, updated_at: r.updated_at }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = OnlineResponse)]
pub struct Online {
    /// Sockets on every live replica.
    sockets: u64,
    /// Distinct authenticated users across the cluster.
    users: u64,
    replicas: Vec<Replica>,
}

/// Who is online
///
/// Sockets and distinct users, cluster-wide and per replica (from the snapshots replicas refresh
/// in Redis every 2 s; a single node answers from its own sockets).
#[utoipa::path(
    get,
    path = "/api/admin/online",
    operation_id = "whoIsOnline",
    tag = "Admin",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "The counts.", body = Success<Online>), Admin)
)]
pub async fn online(State(state): State<AppState>, AdminUser(_): AdminUser) -> ApiResult<Success<Online>> {
    let (replicas, users) = match state.bus.online().await {
        None => {
            let (replica, users) = crate::online::local_summary(&state.io, &state.config.replica_id);
            (vec![replica], users.len() as u64)
        }
        Some(Ok(cluster)) => (cluster.replicas, cluster.users),
        Some(Err(())) => return Err(ApiError::Unavailable("cluster bus unavailable")),
    };
    let sockets: u64 = replicas.iter().map(|r| r.sockets).sum();
    Ok(Success::new(Online { sockets, users, replicas: replicas.into_iter().map(Replica::from).collect() }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Transport {
    Websocket,
    Polling,
}

/// One live socket of the user.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The replica holding the socket.
    replica: String,
    socket_id: String,
    transport: Transport,
    connected_at: DateTime<Utc>,
    client_ip: String,
}

impl From<SessionView> for Session {
    fn from(s: SessionView) -> Self {
        let transport = if s.transport == "polling" { Transport::Polling } else { Transport::Websocket };
        Session {
            replica: s.replica,
            socket_id: s.socket_id,
            transport,
            connected_at: s.connected_at,
            client_ip: s.client_ip,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = SessionsResponse)]
pub struct Sessions {
    /// Oldest first, at most 100 per replica.
    sessions: Vec<Session>,
}

/// A user's live sockets
///
/// The user's live sockets on every replica.
#[utoipa::path(
    get,
    path = "/api/admin/users/{id}/sessions",
    operation_id = "userSessions",
    tag = "Admin",
    security(("bearerAuth" = [])),
    params(("id" = Uuid, Path, description = "The user id (a token's `sub`).")),
    responses(
        (status = 200, description = "The sockets.", body = Success<Sessions>),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Admin,
    )
)]
pub async fn sessions(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    IdPath(user_id): IdPath,
) -> ApiResult<Success<Sessions>> {
    state.store.account(user_id).await?.ok_or(ApiError::NotFound("user"))?;
    let sessions = match state.bus.user_sessions(user_id).await {
        None => crate::online::local_sessions(&state.io, &state.config.replica_id, user_id),
        Some(Ok(sessions)) => sessions,
        Some(Err(())) => return Err(ApiError::Unavailable("cluster bus unavailable")),
    };
    Ok(Success::new(Sessions { sessions: sessions.into_iter().map(Session::from).collect() }))
}
