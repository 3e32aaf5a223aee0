use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::page::{time_cursor, Page, PageQuery};
use super::{JsonBody, QueryParams, Success};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::fair::validate_client_seed;
use crate::openapi::{BadRequest, JsonBodyErrors, Player};
use crate::state::AppState;
use crate::store::{ActivePair, PairRecord, RevealedPair};

/// The active seed pair. Its server seed stays secret until the pair is rotated.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ActiveSeedPair, examples(json!({
    "serverSeedHash": "3f1a9c0b7e2d4f6a8c1e3b5d7f9a0c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d0f2a",
    "nextServerSeedHash": "c0ffee0000000000000000000000000000000000000000000000000000000000",
    "clientSeed": "my-lucky-seed", "nonce": 5
})))]
pub struct Active {
    /// Lowercase hex SHA-256 of the server seed.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    server_seed_hash: String,
    /// Lowercase hex SHA-256 of the server seed the next client-seed change or rotation activates,
    /// committed before the player picks that client seed: the new pair's `serverSeedHash`.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    next_server_seed_hash: String,
    #[schema(min_length = 1, max_length = 64)]
    client_seed: String,
    /// The nonce of the next open; each open advances it by one.
    nonce: u64,
}

impl From<ActivePair> for Active {
    fn from(pair: ActivePair) -> Self {
        Active {
            server_seed_hash: pair.server_seed_hash,
            next_server_seed_hash: pair.next_server_seed_hash,
            client_seed: pair.client_seed,
            nonce: pair.nonce,
        }
    }
}

/// The caller's active seed pair
#[utoipa::path(
    get,
    path = "/api/fair",
    operation_id = "getFairState",
    tag = "Provably fair",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "The active pair.", body = Success<Active>), Player)
)]
pub async fn current(State(state): State<AppState>, AuthUser(identity): AuthUser) -> ApiResult<Success<Active>> {
    let pair = state.store.fair_pair(identity.user_id).await?;
    Ok(Success::new(pair.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(examples(json!({ "clientSeed": "my-lucky-seed" })))]
pub struct ClientSeedRequest {
    /// 1 to 64 printable ASCII characters (U+0020 to U+007E).
    #[schema(min_length = 1, max_length = 64, pattern = "^[\\x20-\\x7E]+$")]
    client_seed: String,
}

/// A seed pair after its rotation, with its server seed revealed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RevealedSeedPair)]
pub struct Revealed {
    /// The revealed server seed; its SHA-256 is `serverSeedHash`.
    server_seed: String,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    server_seed_hash: String,
    #[schema(min_length = 1, max_length = 64)]
    client_seed: String,
    /// The nonce the pair had reached when it was retired.
    nonce: u64,
}

impl From<RevealedPair> for Revealed {
    fn from(pair: RevealedPair) -> Self {
        Revealed {
            server_seed: pair.server_seed,
            server_seed_hash: pair.server_seed_hash,
            client_seed: pair.client_seed,
            nonce: pair.nonce,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = FairRotationResponse)]
pub struct Rotation {
    /// The retired pair, its server seed revealed.
    previous: Revealed,
    /// The new active pair.
    current: Active,
}

/// Choose a new client seed
///
/// Retires the active pair (revealing its server seed) and activates the committed next seed
/// with this client seed and nonce 0. Shares a per-user rate limit with `POST /api/fair/rotate`.
#[utoipa::path(
    put,
    path = "/api/fair/client-seed",
    operation_id = "setClientSeed",
    tag = "Provably fair",
    security(("bearerAuth" = [])),
    request_body = ClientSeedRequest,
    responses(
        (status = 200, description = "The pair was rotated with the new client seed.", body = Success<Rotation>),
        JsonBodyErrors,
        Player,
    )
)]
pub async fn set_client_seed(
    State(state): State<AppState>,
    AuthUser(identity): AuthUser,
    JsonBody(body): JsonBody<ClientSeedRequest>,
) -> ApiResult<Success<Rotation>> {
    validate_client_seed(&body.client_seed).map_err(|e| ApiError::bad_request("invalid_client_seed", e.to_string()))?;
    state.limits.seed(identity.user_id, &state.metrics)?;
    rotated(&state, identity.user_id, Some(body.client_seed)).await
}

/// Reveal the server seed and start a new pair
///
/// Retires the active pair (revealing its server seed) and activates the committed next seed
/// with the same client seed and nonce 0. Rate limited per user.
#[utoipa::path(
    post,
    path = "/api/fair/rotate",
    operation_id = "rotateServerSeed",
    tag = "Provably fair",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "The pair was rotated.", body = Success<Rotation>), Player)
)]
pub async fn rotate(State(state): State<AppState>, AuthUser(identity): AuthUser) -> ApiResult<Success<Rotation>> {
    state.limits.seed(identity.user_id, &state.metrics)?;
    rotated(&state, identity.user_id, None).await
}

async fn rotated(state: &AppState, user_id: uuid::Uuid, client_seed: Option<String>) -> ApiResult<Success<Rotation>> {
    let (previous, current) = state.store.rotate_pair(user_id, client_seed).await?;
    Ok(Success::new(Rotation { previous: previous.into(), current: current.into() }))
}

/// One seed pair of the caller, active or retired.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SeedPairHistoryEntry)]
pub struct HistoryEntry {
    /// The revealed server seed; `null` while the pair is active.
    server_seed: Option<String>,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    server_seed_hash: String,
    #[schema(min_length = 1, max_length = 64)]
    client_seed: String,
    nonce: u64,
    created_at: DateTime<Utc>,
    /// `null` while the pair is active.
    revealed_at: Option<DateTime<Utc>>,
}

impl From<PairRecord> for HistoryEntry {
    fn from(pair: PairRecord) -> Self {
        HistoryEntry {
            server_seed: pair.server_seed,
            server_seed_hash: pair.server_seed_hash,
            client_seed: pair.client_seed,
            nonce: pair.nonce,
            created_at: pair.created_at,
            revealed_at: pair.revealed_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = FairHistoryResponse)]
pub struct History {
    /// Newest first (the active pair leads the first page); one page.
    pub pairs: Vec<HistoryEntry>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The caller's seed pairs, newest first
#[utoipa::path(
    get,
    path = "/api/fair/history",
    operation_id = "getFairHistory",
    tag = "Provably fair",
    security(("bearerAuth" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page of seed pairs.", body = Success<History>,
            links(("nextPage" = (operation_id = "getFairHistory", parameters(("cursor" = "$response.body#/nextCursor"), ("limit" = "$request.query.limit")))))
        ),
        (status = 400, response = BadRequest),
        Player,
    )
)]
pub async fn history(
    State(state): State<AppState>,
    AuthUser(identity): AuthUser,
    QueryParams(query): QueryParams<PageQuery>,
) -> ApiResult<Success<History>> {
    let page = Page::parse(query.limit, query.cursor)?;
    let pairs = state.store.fair_history(identity.user_id, page.after_time()?, page.fetch()).await?;
    let (pairs, next_cursor) = page.finish(pairs, |pair| time_cursor(pair.created_at, pair.id));
    Ok(Success::new(History { pairs: pairs.into_iter().map(HistoryEntry::from).collect(), next_cursor }))
}
