// The statements every money- or inventory-changing operation is built from. Each runs in the
// caller's transaction.

use chrono::Utc;
use uuid::Uuid;

use super::rows::{decode_account, DbConn};
use crate::domain::{Account, LedgerKind};
use crate::money::Cents;
use crate::store::{Entity, StoreError, StoreResult};

/// The one way money leaves a balance: conditional, so concurrent debits can never overdraw.
pub(super) async fn debit(conn: &mut DbConn, user_id: Uuid, amount: Cents) -> StoreResult<Option<Account>> {
    let row = sqlx::query(
        "UPDATE users SET balance = balance - $2, balance_version = balance_version + 1 \
         WHERE id = $1 AND balance >= $2 RETURNING balance, balance_version",
    )
    .bind(user_id)
    .bind(amount.as_i64())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(decode_account).transpose()
}

pub(super) async fn credit(conn: &mut DbConn, user_id: Uuid, amount: Cents) -> StoreResult<Option<Account>> {
    let row = sqlx::query(
        "UPDATE users SET balance = balance + $2, balance_version = balance_version + 1 \
         WHERE id = $1 RETURNING balance, balance_version",
    )
    .bind(user_id)
    .bind(amount.as_i64())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(decode_account).transpose()
}

/// Every inventory change calls this in its own transaction, so the version moves exactly when
/// the inventory does.
pub(super) async fn bump_inventory_version(conn: &mut DbConn, user_id: Uuid) -> StoreResult<i64> {
    let version: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET inventory_version = inventory_version + 1 WHERE id = $1 RETURNING inventory_version",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    version.ok_or(StoreError::NotFound(Entity::User))
}

/// The ledger row of a balance change, with the balance and version the change produced.
pub(super) struct LedgerRow<'a> {
    pub(super) user_id: Uuid,
    pub(super) kind: LedgerKind,
    pub(super) amount: Cents,
    pub(super) after: Account,
    pub(super) reference: Option<&'a str>,
    pub(super) reason: Option<&'a str>,
}

pub(super) async fn insert_ledger(conn: &mut DbConn, row: LedgerRow<'_>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO ledger (user_id, kind, amount, balance_after, version, reference, reason, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(row.user_id)
    .bind(row.kind.as_str())
    .bind(row.amount.as_i64())
    .bind(row.after.balance.as_i64())
    .bind(row.after.version)
    .bind(row.reference)
    .bind(row.reason)
    .bind(Utc::now())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn user_exists(conn: &mut DbConn, user_id: Uuid) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT 1 FROM users WHERE id = $1").bind(user_id).fetch_optional(&mut *conn).await?.is_some())
}

pub(super) async fn insert_user(conn: &mut DbConn, user_id: Uuid) -> StoreResult<()> {
    sqlx::query("INSERT INTO users (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(user_id)
        .bind(Utc::now())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
