// Inventories: paging a player's items, claiming one for its value, and the admin's withdrawal
// flow. Every change bumps the owner's `inventory_version` in its transaction.

use chrono::Utc;
use sqlx::{Pool, Row};
use uuid::Uuid;

use super::rows::{decode_account, decode_inventory, decode_status, DbConn, INVENTORY_COLUMNS, ITEM_COLUMNS};
use super::writes::{bump_inventory_version, credit, insert_ledger, LedgerRow};
use super::{begin_write, Db};
use crate::domain::{InventoryEntry, InventoryStatus, LedgerKind};
use crate::money::Cents;
use crate::store::{Claimed, Entity, Keyset, StoreError, StoreResult, Withdrawal};

async fn inventory_entry(conn: &mut DbConn, inventory_id: Uuid) -> StoreResult<Option<InventoryEntry>> {
    let row = sqlx::query(&format!(
        "SELECT {INVENTORY_COLUMNS}, {ITEM_COLUMNS} FROM inventory inv JOIN items i ON i.id = inv.item_id WHERE inv.id = $1"
    ))
    .bind(inventory_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(decode_inventory).transpose()
}

pub(super) async fn inventory(
    pool: &Pool<Db>,
    user_id: Uuid,
    status: Option<InventoryStatus>,
    after: Option<Keyset>,
    limit: u32,
) -> StoreResult<Vec<InventoryEntry>> {
    // Only the predicates in use, so each variant is an index range scan with its own plan
    // (inventory_by_user, or inventory_by_user_status with a status).
    let (status_filter, after_filter) = match status {
        Some(_) => ("AND inv.status = $3", "AND (inv.won_at, inv.id) < ($4, $5)"),
        None => ("", "AND (inv.won_at, inv.id) < ($3, $4)"),
    };
    let after_filter = if after.is_some() { after_filter } else { "" };
    let sql = format!(
        "SELECT {INVENTORY_COLUMNS}, {ITEM_COLUMNS} FROM inventory inv JOIN items i ON i.id = inv.item_id \
         WHERE inv.user_id = $1 {status_filter} {after_filter} ORDER BY inv.won_at DESC, inv.id DESC LIMIT $2"
    );
    let query = sqlx::query(&sql).bind(user_id).bind(i64::from(limit));
    let query = match status {
        Some(status) => query.bind(status.as_str()),
        None => query,
    };
    let query = match after {
        Some(k) => query.bind(k.at).bind(k.id),
        None => query,
    };
    query.fetch_all(pool).await?.iter().map(decode_inventory).collect()
}

/// The withdrawal queue, oldest request first: a range scan of the partial index
/// `inventory_withdraw_queue`. An item's `updated_at` is when it entered `withdraw_requested`
/// (nothing else changes an item while it is there).
pub(super) async fn withdrawals(pool: &Pool<Db>, after: Option<Keyset>, limit: u32) -> StoreResult<Vec<Withdrawal>> {
    let after_filter = if after.is_some() { "AND (inv.updated_at, inv.id) > ($2, $3)" } else { "" };
    let sql = format!(
        "SELECT {INVENTORY_COLUMNS}, inv.updated_at, {ITEM_COLUMNS} FROM inventory inv JOIN items i ON i.id = inv.item_id \
         WHERE inv.status = 'withdraw_requested' {after_filter} ORDER BY inv.updated_at, inv.id LIMIT $1"
    );
    let query = sqlx::query(&sql).bind(i64::from(limit));
    let query = match after {
        Some(k) => query.bind(k.at).bind(k.id),
        None => query,
    };
    query
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| Ok(Withdrawal { entry: decode_inventory(row)?, requested_at: row.try_get("updated_at")? }))
        .collect()
}

pub(super) async fn claim(pool: &Pool<Db>, user_id: Uuid, inventory_id: Uuid) -> StoreResult<Claimed> {
    let mut tx = begin_write(pool).await?;
    let claimed = sqlx::query(
        "UPDATE inventory SET status = 'claimed', updated_at = $3 \
         WHERE id = $1 AND user_id = $2 AND status = 'owned' RETURNING item_id",
    )
    .bind(inventory_id)
    .bind(user_id)
    .bind(Utc::now())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(claimed) = claimed else {
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM inventory WHERE id = $1 AND user_id = $2")
            .bind(inventory_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        return Err(match status {
            None => StoreError::NotFound(Entity::InventoryItem),
            Some(status) => StoreError::NotOwned { status: decode_status(&status)? },
        });
    };
    let item_id: Uuid = claimed.try_get("item_id")?;
    let value: i64 =
        sqlx::query_scalar("SELECT value FROM items WHERE id = $1").bind(item_id).fetch_one(&mut *tx).await?;
    let credited = Cents(value);
    let account = if credited > Cents::ZERO {
        let account = credit(&mut tx, user_id, credited).await?.ok_or(StoreError::NotFound(Entity::User))?;
        let reference = inventory_id.to_string();
        let row = LedgerRow {
            user_id,
            kind: LedgerKind::Claim,
            amount: credited,
            after: account,
            reference: Some(&reference),
            reason: None,
        };
        insert_ledger(&mut tx, row).await?;
        account
    } else {
        // A worthless item changes no balance, so it writes no ledger row and keeps the version.
        let row = sqlx::query("SELECT balance, balance_version FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
        decode_account(&row)?
    };
    let inventory_version = bump_inventory_version(&mut tx, user_id).await?;
    tx.commit().await?;
    Ok(Claimed { account, credited, inventory_version })
}

/// The item after the change, and its owner's `inventory_version` after it.
pub(super) async fn set_inventory_status(
    pool: &Pool<Db>,
    inventory_id: Uuid,
    status: InventoryStatus,
) -> StoreResult<(InventoryEntry, i64)> {
    let mut tx = begin_write(pool).await?;
    let missing = || StoreError::NotFound(Entity::InventoryItem);
    let current = inventory_entry(&mut tx, inventory_id).await?.ok_or_else(missing)?;
    if !current.status.admin_can_move(status) {
        return Err(StoreError::InvalidTransition { from: current.status, to: status });
    }
    let updated = sqlx::query("UPDATE inventory SET status = $2, updated_at = $4 WHERE id = $1 AND status = $3")
        .bind(inventory_id)
        .bind(status.as_str())
        .bind(current.status.as_str())
        .bind(Utc::now())
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::ConcurrentChange);
    }
    let entry = inventory_entry(&mut tx, inventory_id).await?.ok_or_else(missing)?;
    let inventory_version = bump_inventory_version(&mut tx, entry.user_id).await?;
    tx.commit().await?;
    Ok((entry, inventory_version))
}
