//! PostgreSQL's case open in one round trip, and the per-replica cache it rolls against.
//!
//! Invariant: a case open is written down in three places that must agree, committing the same
//! rows (debit, nonce, inventory row, ledger row, inventory version) and taking row locks in the
//! same order (the player, then the pair):
//! - the locking transaction in Rust, `open_case_in_transaction` in `store/sql/opens.rs` (every
//!   SQLite open, and the fallback below);
//! - the PL/pgSQL function `open_case()` this module calls, created by
//!   `migrations/postgres/20261122000002_open_case_function.sql` and replaced by
//!   `20261226000001_inventory_version.sql`;
//! - `loadtest/pgbench/{locking-open,one-call-open}.sql`, which replay both shapes for the
//!   benchmark (`locking-open.sql` predates the inventory version and leaves its bump out).
//!
//! Change one, change the others: the function through a new migration (applied ones are
//! checksummed, which is also why their comments still name the old `store::sql_ops`). The API
//! tests run the Rust paths on both stores, the pgbench smoke runs the SQL files, and the
//! two-replica race (`cargo test --test cluster money`) drives the function and the fallback
//! against each other.

use chrono::Utc;
use sqlx::{Pool, Row};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

use super::cases::load_case_version;
use super::fair::active_pair;
use super::opens::{draw, open_case_in_transaction};
use super::rows::{corrupt, decode_account, SeedPair};
use super::Db;
use crate::domain::Case;
use crate::store::{Entity, OpenRetries, Opened, StoreError, StoreResult};

struct VersionedCase {
    case: Case,
    version: i64,
}

/// PostgreSQL's open rolls before it writes, with the case and the player's seed pair as this
/// replica last saw them, and the database function `open_case` commits the open only if both are
/// still current. Opens of one player on one replica queue on that player's lock rather than race
/// each other for a nonce; only other replicas (or an admin's edit) can make an expectation stale.
#[derive(Default)]
pub(super) struct OpenCache {
    cases: Mutex<HashMap<Uuid, Arc<VersionedCase>>>,
    players: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Option<SeedPair>>>>>,
}

/// Players whose pair stays cached; past this, idle players are dropped (and reloaded on use).
const CACHED_PLAYERS: usize = 50_000;
/// Round trips that may find the expectation stale before an open falls back to taking locks.
const OPTIMISTIC_ATTEMPTS: usize = 4;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl OpenCache {
    /// The store's `open_case` hook.
    pub(super) async fn open_case(&self, pool: &Pool<Db>, user_id: Uuid, case_id: Uuid) -> StoreResult<Opened> {
        open_case_in_one_round_trip(self, pool, user_id, case_id).await
    }

    fn case(&self, case_id: Uuid) -> Option<Arc<VersionedCase>> {
        lock(&self.cases).get(&case_id).cloned()
    }

    fn remember_case(&self, case: VersionedCase) -> Arc<VersionedCase> {
        let case = Arc::new(case);
        lock(&self.cases).insert(case.case.id, case.clone());
        case
    }

    fn forget_case(&self, case_id: Uuid) {
        lock(&self.cases).remove(&case_id);
    }

    fn player(&self, user_id: Uuid) -> Arc<tokio::sync::Mutex<Option<SeedPair>>> {
        let mut players = lock(&self.players);
        if players.len() >= CACHED_PLAYERS && !players.contains_key(&user_id) {
            players.retain(|_, player| Arc::strong_count(player) > 1);
        }
        players.entry(user_id).or_default().clone()
    }
}

/// One statement, one round trip and one commit per open in the usual case, where the locking
/// transaction needs eight (docs/benchmarks.md measured it at seven, before the inventory version
/// added a statement). A stale case or pair costs a reload and another try.
async fn open_case_in_one_round_trip(
    cache: &OpenCache,
    pool: &Pool<Db>,
    user_id: Uuid,
    case_id: Uuid,
) -> StoreResult<Opened> {
    let player = cache.player(user_id);
    let mut cached_pair = player.lock().await;
    let mut retries = OpenRetries::default();
    for _ in 0..OPTIMISTIC_ATTEMPTS {
        let case = match cache.case(case_id) {
            Some(case) => case,
            None => {
                let mut conn = pool.acquire().await?;
                let (case, version) =
                    load_case_version(&mut conn, case_id).await?.ok_or(StoreError::NotFound(Entity::Case))?;
                cache.remember_case(VersionedCase { case, version })
            }
        };
        let pair = match cached_pair.as_mut() {
            Some(pair) => pair,
            None => cached_pair.insert(active_pair(&mut *pool.acquire().await?, user_id).await?),
        };
        let (item, proof) = draw(&case.case, pair)?;
        let inventory_item_id = Uuid::new_v4();
        let row = sqlx::query(
            "SELECT outcome, balance, balance_version, inventory_version FROM open_case($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(user_id)
        .bind(case_id)
        .bind(case.version)
        .bind(case.case.price.as_i64())
        .bind(pair.id)
        .bind(&pair.client_seed)
        .bind(i64::try_from(pair.nonce).map_err(|_| corrupt(format!("nonce {}", pair.nonce)))?)
        .bind(item.id)
        .bind(inventory_item_id)
        .bind(serde_json::to_string(&proof).map_err(|e| corrupt(e.to_string()))?)
        .bind(Utc::now())
        .fetch_one(pool)
        .await?;
        let outcome: String = row.try_get("outcome")?;
        match outcome.as_str() {
            "opened" => {
                pair.nonce += 1;
                let account = decode_account(&row)?;
                let inventory_version: i64 = row.try_get("inventory_version")?;
                let price = case.case.price;
                return Ok(Opened { item, price, inventory_item_id, account, inventory_version, fair: proof, retries });
            }
            "insufficient_balance" => return Err(StoreError::InsufficientBalance),
            "case_changed" => {
                retries.case_changed += 1;
                cache.forget_case(case_id);
            }
            "pair_changed" => {
                retries.pair_changed += 1;
                *cached_pair = None;
            }
            other => return Err(corrupt(format!("open_case outcome {other:?}"))),
        }
        tracing::debug!(%user_id, %case_id, outcome, "open raced a change; retrying with fresh state");
    }
    // Other replicas kept moving this player's pair (or admins the case): take the locks.
    *cached_pair = None;
    let opened = open_case_in_transaction(pool, user_id, case_id).await?;
    Ok(Opened { retries: OpenRetries { fell_back: true, ..retries }, ..opened })
}
