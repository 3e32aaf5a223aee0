//! Persistence as whole operations. Each method is one transaction that leaves the ledger, the
//! balances and the inventories consistent; callers publish events only after it returns.
//!
//! PostgreSQL and SQLite share one SQL implementation (`sql_ops.rs`, compiled once per backend
//! with its own `Db` type), because their dialects agree on everything we use: `$n` parameters,
//! `RETURNING`, `ON CONFLICT`, partial unique indexes.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

use crate::config::{Backend, DatabaseUrl};
use crate::domain::{
    Account, Case, CaseDraft, FairProof, InventoryEntry, InventoryStatus, Item, ItemDraft, LedgerEntry,
};
use crate::money::Cents;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("insufficient balance")]
    InsufficientBalance,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => StoreError::Unavailable(err),
            other => StoreError::Database(other),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The result of a successful case open.
#[derive(Clone, Debug)]
pub struct Opened {
    pub item: Item,
    pub price: Cents,
    pub inventory_item_id: Uuid,
    pub account: Account,
    pub fair: FairProof,
    pub retries: OpenRetries,
}

/// What a PostgreSQL open met on its way: round trips that found the replica's cached case or seed
/// pair stale, and whether it gave up and took the locking transaction. Zero on SQLite. Many of
/// them mean a player's requests hop between replicas (see nginx/README.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenRetries {
    pub case_changed: u32,
    pub pair_changed: u32,
    pub fell_back: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct Claimed {
    pub account: Account,
    pub credited: Cents,
}

/// A payment provider's notification, after its signature was checked.
#[derive(Clone, Debug)]
pub struct PaymentNotice {
    pub payment_id: String,
    pub user_id: Uuid,
    pub amount: Cents,
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// The first success for this payment id: the balance was credited.
    Credited(Account),
    /// A success for a payment id that was already credited: nothing changed.
    Duplicate,
    /// A status other than success: recorded, not credited.
    Recorded,
}

/// A direct balance change by an admin; `amount` is positive, the direction is the kind.
#[derive(Clone, Debug)]
pub struct Adjustment {
    pub user_id: Uuid,
    pub amount: Cents,
    pub credit: bool,
    pub reason: Option<String>,
}

/// A user's seed pair as the player may see it while it is active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivePair {
    pub server_seed_hash: String,
    pub client_seed: String,
    pub nonce: u64,
}

/// A seed pair after its rotation: the server seed is revealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevealedPair {
    pub server_seed: String,
    pub server_seed_hash: String,
    pub client_seed: String,
    pub nonce: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairRecord {
    /// `None` while the pair is active.
    pub server_seed: Option<String>,
    pub server_seed_hash: String,
    pub client_seed: String,
    pub nonce: u64,
    pub created_at: DateTime<Utc>,
    pub revealed_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    async fn ping(&self) -> StoreResult<()>;
    fn pool_stats(&self) -> PoolStats;
    async fn close(&self);

    /// Returns the stored value for `key`, inserting `value` first when there is none, so
    /// concurrent callers agree on one value.
    async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String>;

    /// Creates the user with balance 0 if it was never seen.
    async fn ensure_user(&self, user_id: Uuid) -> StoreResult<()>;
    async fn account(&self, user_id: Uuid) -> StoreResult<Option<Account>>;

    async fn cases(&self) -> StoreResult<Vec<Case>>;
    async fn case(&self, case_id: Uuid) -> StoreResult<Option<Case>>;
    async fn create_case(&self, draft: &CaseDraft) -> StoreResult<Case>;
    async fn update_case(&self, case_id: Uuid, draft: &CaseDraft) -> StoreResult<Case>;
    async fn replace_items(&self, case_id: Uuid, items: &[ItemDraft]) -> StoreResult<Case>;
    async fn set_price(&self, case_id: Uuid, price: Cents) -> StoreResult<Case>;
    async fn delete_case(&self, case_id: Uuid) -> StoreResult<()>;

    /// Debits the case price, takes the next nonce of the user's seed pair, picks the item from
    /// the provably fair roll and puts it in the inventory: all or nothing.
    async fn open_case(&self, user_id: Uuid, case_id: Uuid) -> StoreResult<Opened>;
    async fn inventory(&self, user_id: Uuid) -> StoreResult<Vec<InventoryEntry>>;
    async fn claim(&self, user_id: Uuid, inventory_id: Uuid) -> StoreResult<Claimed>;
    async fn set_inventory_status(&self, inventory_id: Uuid, status: InventoryStatus) -> StoreResult<InventoryEntry>;

    async fn adjust_balance(&self, adjustment: &Adjustment) -> StoreResult<Account>;
    async fn record_payment(&self, notice: &PaymentNotice) -> StoreResult<PaymentOutcome>;
    /// A user's ledger, newest first, strictly before `before_version` when given.
    /// `None` when the user was never seen.
    async fn transactions(
        &self,
        user_id: Uuid,
        before_version: Option<i64>,
        limit: u32,
    ) -> StoreResult<Option<Vec<LedgerEntry>>>;

    async fn fair_pair(&self, user_id: Uuid) -> StoreResult<ActivePair>;
    /// Reveals the active pair and starts a new one at nonce 0, with `client_seed` or, when
    /// `None`, the old pair's client seed.
    async fn rotate_pair(&self, user_id: Uuid, client_seed: Option<String>) -> StoreResult<(RevealedPair, ActivePair)>;
    async fn fair_history(&self, user_id: Uuid) -> StoreResult<Vec<PairRecord>>;
}

/// Connects to the database the URL names and brings its schema up to date.
pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match url.backend()? {
        Backend::Postgres => Arc::new(postgres::SqlStore::connect(url.expose(), max_connections).await?),
        Backend::Sqlite => Arc::new(sqlite::SqlStore::connect(url.expose(), max_connections).await?),
    })
}
