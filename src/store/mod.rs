//! Persistence as whole operations. Each method is one transaction that leaves the ledger, the
//! balances and the inventories consistent; callers publish events only after it returns.
//!
//! PostgreSQL and SQLite share one SQL implementation (`sql/*.rs`, one file per area, compiled
//! once per backend with its own `Db` type), because their dialects agree on everything we use:
//! `$n` parameters, `RETURNING`, `ON CONFLICT`, partial unique indexes. What differs lives in the
//! backend modules behind a few hooks (`begin_write`, `lock_player`, `open_case`): PostgreSQL's
//! one-round-trip open and its cache are in `postgres/open.rs`, and the SQLite store compiles none
//! of it.

mod error;
mod postgres;
mod sqlite;

pub use error::{Entity, StoreError, UnavailableCause};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use crate::config::{Backend, Config, DatabaseUrl};
use crate::domain::{
    Account, Case, CaseDraft, FairProof, InventoryEntry, InventoryStatus, Item, ItemDraft, LedgerEntry,
};
use crate::money::Cents;

pub type StoreResult<T> = Result<T, StoreError>;

/// Ids per `Store::positions` query: one bound parameter each, far below either backend's limit.
pub const MAX_ACCOUNTS_PER_QUERY: usize = 1_000;

/// The result of a successful case open.
#[derive(Clone, Debug)]
pub struct Opened {
    pub item: Item,
    pub price: Cents,
    pub inventory_item_id: Uuid,
    pub account: Account,
    /// The user's `inventory_version` after this open added the item.
    pub inventory_version: i64,
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
    /// The user's `inventory_version` after the claim.
    pub inventory_version: i64,
}

/// Where a user's state stands: the balance with its version, and the inventory version that
/// every inventory change (open, claim, admin status change) bumps by one in its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserPositions {
    pub account: Account,
    pub inventory_version: i64,
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

/// A user as an admin sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub id: Uuid,
    pub balance: Cents,
    pub balance_version: i64,
    pub blocked: bool,
    pub blocked_reason: Option<String>,
    pub blocked_at: Option<DateTime<Utc>>,
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
    /// The hash of the seed the next client-seed change or rotation activates, committed before
    /// the player picks that client seed.
    pub next_server_seed_hash: String,
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
    /// For the page cursor only.
    #[serde(skip)]
    pub id: Uuid,
    /// `None` while the pair is active.
    pub server_seed: Option<String>,
    pub server_seed_hash: String,
    pub client_seed: String,
    pub nonce: u64,
    pub created_at: DateTime<Utc>,
    pub revealed_at: Option<DateTime<Utc>>,
}

/// Where a page continues: strictly past this (time, id) position (before it for newest-first
/// lists, after it for the oldest-first withdrawal queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyset {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

/// An item in the withdrawal queue, with when the withdrawal was asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Withdrawal {
    pub entry: InventoryEntry,
    pub requested_at: DateTime<Utc>,
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

    /// Creates the user with balance 0 if it was never seen; returns whether the user is blocked.
    async fn ensure_user(&self, user_id: Uuid) -> StoreResult<bool>;
    /// The admin view of a user, `None` when never seen.
    async fn user(&self, user_id: Uuid) -> StoreResult<Option<UserRecord>>;
    /// Blocks (with an optional reason) or unblocks a known user.
    async fn set_blocked(&self, user_id: Uuid, blocked: bool, reason: Option<&str>) -> StoreResult<UserRecord>;
    async fn account(&self, user_id: Uuid) -> StoreResult<Option<Account>>;
    /// The balance and inventory version of the known users among `user_ids`, in one query
    /// (callers chunk: at most `MAX_ACCOUNTS_PER_QUERY` ids). Users never seen are left out.
    async fn positions(&self, user_ids: &[Uuid]) -> StoreResult<Vec<(Uuid, UserPositions)>>;

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
    /// Up to `limit` of a user's items, newest won first, strictly before `after` when given,
    /// only those in `status` when given.
    async fn inventory(
        &self,
        user_id: Uuid,
        status: Option<InventoryStatus>,
        after: Option<Keyset>,
        limit: u32,
    ) -> StoreResult<Vec<InventoryEntry>>;
    /// Up to `limit` items of every user in `withdraw_requested`, oldest request first, strictly
    /// after `after` (the request time and inventory id) when given.
    async fn withdrawals(&self, after: Option<Keyset>, limit: u32) -> StoreResult<Vec<Withdrawal>>;
    async fn claim(&self, user_id: Uuid, inventory_id: Uuid) -> StoreResult<Claimed>;
    /// The item after the change, and its owner's `inventory_version` after it.
    async fn set_inventory_status(
        &self,
        inventory_id: Uuid,
        status: InventoryStatus,
    ) -> StoreResult<(InventoryEntry, i64)>;

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
    /// Reveals the active pair and starts a new one at nonce 0 with the old pair's pre-committed
    /// next server seed (whose hash `fair_pair` showed before), `client_seed` or, when `None`, the
    /// old pair's client seed, and a freshly committed next seed.
    async fn rotate_pair(&self, user_id: Uuid, client_seed: Option<String>) -> StoreResult<(RevealedPair, ActivePair)>;
    /// Up to `limit` of a user's seed pairs, newest first (the active one leads the first page),
    /// strictly before `after` when given.
    async fn fair_history(&self, user_id: Uuid, after: Option<Keyset>, limit: u32) -> StoreResult<Vec<PairRecord>>;
}

/// How the pool connects and how long anything may wait on the database.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub idle_in_transaction_timeout: Duration,
}

impl PoolSettings {
    pub fn from_config(config: &Config) -> Self {
        PoolSettings {
            max_connections: config.database_max_connections,
            acquire_timeout: config.timeouts.db_acquire,
            statement_timeout: config.timeouts.db_statement,
            lock_timeout: config.timeouts.db_lock,
            idle_in_transaction_timeout: config.timeouts.db_idle_in_transaction,
        }
    }
}

/// Connects to the database the URL names and brings its schema up to date.
pub async fn connect(url: &DatabaseUrl, settings: PoolSettings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match url.backend()? {
        Backend::Postgres => Arc::new(postgres::SqlStore::connect(url.expose(), settings).await?),
        Backend::Sqlite => Arc::new(sqlite::SqlStore::connect(url.expose(), settings).await?),
    })
}
