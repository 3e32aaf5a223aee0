// The one `impl Store`, forwarding each operation to its area. What differs between the databases
// comes from the including backend module, which defines:
//   `Db`           the sqlx database type;
//   `BACKEND`      which `Backend` this is (only ever reported by `Store::backend`);
//   `begin_write`  how a write transaction starts;
//   `lock_player`  how a transaction serializes against the player's other writes;
//   `CaseOpener`   how a case is opened, with whatever that keeps between opens (`Default`).

use async_trait::async_trait;
use sqlx::Pool;
use uuid::Uuid;

use super::{cases, fair, inventory, ledger, users};
use super::{CaseOpener, Db, BACKEND};
use crate::config::Backend;
use crate::domain::{Account, Case, CaseDraft, InventoryEntry, InventoryStatus, ItemDraft, LedgerEntry};
use crate::money::Cents;
use crate::store::{
    ActivePair, Adjustment, Claimed, Keyset, Opened, PairRecord, PaymentNotice, PaymentOutcome, PoolStats,
    RevealedPair, Store, StoreResult, UserPositions, UserRecord, Withdrawal,
};

pub struct SqlStore {
    pool: Pool<Db>,
    opener: CaseOpener,
}

impl SqlStore {
    pub(super) fn new(pool: Pool<Db>) -> Self {
        SqlStore { pool, opener: Default::default() }
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        BACKEND
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats { size: self.pool.size(), idle: self.pool.num_idle() as u32 }
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> StoreResult<String> {
        users::setting_or_insert(&self.pool, key, value).await
    }

    async fn ensure_user(&self, user_id: Uuid) -> StoreResult<bool> {
        users::ensure_user(&self.pool, user_id).await
    }

    async fn user(&self, user_id: Uuid) -> StoreResult<Option<UserRecord>> {
        users::user(&self.pool, user_id).await
    }

    async fn set_blocked(&self, user_id: Uuid, blocked: bool, reason: Option<&str>) -> StoreResult<UserRecord> {
        users::set_blocked(&self.pool, user_id, blocked, reason).await
    }

    async fn account(&self, user_id: Uuid) -> StoreResult<Option<Account>> {
        users::account(&self.pool, user_id).await
    }

    async fn positions(&self, user_ids: &[Uuid]) -> StoreResult<Vec<(Uuid, UserPositions)>> {
        users::positions(&self.pool, user_ids).await
    }

    async fn cases(&self) -> StoreResult<Vec<Case>> {
        cases::cases(&self.pool).await
    }

    async fn case(&self, case_id: Uuid) -> StoreResult<Option<Case>> {
        cases::case(&self.pool, case_id).await
    }

    async fn create_case(&self, draft: &CaseDraft) -> StoreResult<Case> {
        cases::create_case(&self.pool, draft).await
    }

    async fn update_case(&self, case_id: Uuid, draft: &CaseDraft) -> StoreResult<Case> {
        cases::update_case(&self.pool, case_id, draft).await
    }

    async fn replace_items(&self, case_id: Uuid, items: &[ItemDraft]) -> StoreResult<Case> {
        cases::replace_items(&self.pool, case_id, items).await
    }

    async fn set_price(&self, case_id: Uuid, price: Cents) -> StoreResult<Case> {
        cases::set_price(&self.pool, case_id, price).await
    }

    async fn delete_case(&self, case_id: Uuid) -> StoreResult<()> {
        cases::delete_case(&self.pool, case_id).await
    }

    async fn open_case(&self, user_id: Uuid, case_id: Uuid) -> StoreResult<Opened> {
        self.opener.open_case(&self.pool, user_id, case_id).await
    }

    async fn inventory(
        &self,
        user_id: Uuid,
        status: Option<InventoryStatus>,
        after: Option<Keyset>,
        limit: u32,
    ) -> StoreResult<Vec<InventoryEntry>> {
        inventory::inventory(&self.pool, user_id, status, after, limit).await
    }

    async fn withdrawals(&self, after: Option<Keyset>, limit: u32) -> StoreResult<Vec<Withdrawal>> {
        inventory::withdrawals(&self.pool, after, limit).await
    }

    async fn claim(&self, user_id: Uuid, inventory_id: Uuid) -> StoreResult<Claimed> {
        inventory::claim(&self.pool, user_id, inventory_id).await
    }

    async fn set_inventory_status(
        &self,
        inventory_id: Uuid,
        status: InventoryStatus,
    ) -> StoreResult<(InventoryEntry, i64)> {
        inventory::set_inventory_status(&self.pool, inventory_id, status).await
    }

    async fn adjust_balance(&self, adjustment: &Adjustment) -> StoreResult<Account> {
        ledger::adjust_balance(&self.pool, adjustment).await
    }

    async fn record_payment(&self, notice: &PaymentNotice) -> StoreResult<PaymentOutcome> {
        ledger::record_payment(&self.pool, notice).await
    }

    async fn transactions(
        &self,
        user_id: Uuid,
        before_version: Option<i64>,
        limit: u32,
    ) -> StoreResult<Option<Vec<LedgerEntry>>> {
        ledger::transactions(&self.pool, user_id, before_version, limit).await
    }

    async fn fair_pair(&self, user_id: Uuid) -> StoreResult<ActivePair> {
        fair::fair_pair(&self.pool, user_id).await
    }

    async fn rotate_pair(&self, user_id: Uuid, client_seed: Option<String>) -> StoreResult<(RevealedPair, ActivePair)> {
        fair::rotate_pair(&self.pool, user_id, client_seed).await
    }

    async fn fair_history(&self, user_id: Uuid, after: Option<Keyset>, limit: u32) -> StoreResult<Vec<PairRecord>> {
        fair::fair_history(&self.pool, user_id, after, limit).await
    }
}
