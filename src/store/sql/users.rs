// Users (created on first sight, blocked by admins), their balances and versions, and settings.

use chrono::Utc;
use sqlx::{Pool, Row};
use uuid::Uuid;

use super::rows::{decode_account, decode_user, USER_COLUMNS};
use super::writes::insert_user;
use super::Db;
use crate::domain::Account;
use crate::store::{Entity, StoreError, StoreResult, UserPositions, UserRecord, MAX_ACCOUNTS_PER_QUERY};

pub(super) async fn setting_or_insert(pool: &Pool<Db>, key: &str, value: &str) -> StoreResult<String> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(pool)
        .await?;
    let row = sqlx::query("SELECT value FROM settings WHERE key = $1").bind(key).fetch_one(pool).await?;
    Ok(row.try_get("value")?)
}

pub(super) async fn ensure_user(pool: &Pool<Db>, user_id: Uuid) -> StoreResult<bool> {
    let mut conn = pool.acquire().await?;
    insert_user(&mut conn, user_id).await?;
    let row = sqlx::query("SELECT blocked FROM users WHERE id = $1").bind(user_id).fetch_one(&mut *conn).await?;
    Ok(row.try_get("blocked")?)
}

pub(super) async fn user(pool: &Pool<Db>, user_id: Uuid) -> StoreResult<Option<UserRecord>> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(decode_user).transpose()
}

pub(super) async fn set_blocked(
    pool: &Pool<Db>,
    user_id: Uuid,
    blocked: bool,
    reason: Option<&str>,
) -> StoreResult<UserRecord> {
    // One statement: the flag, its reason and its time change together (cleared on unblock).
    let row = sqlx::query(&format!(
        "UPDATE users SET blocked = $2, blocked_reason = $3, blocked_at = $4 WHERE id = $1 RETURNING {USER_COLUMNS}"
    ))
    .bind(user_id)
    .bind(blocked)
    .bind(reason.filter(|_| blocked))
    .bind(blocked.then(Utc::now))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(decode_user).transpose()?.ok_or(StoreError::NotFound(Entity::User))
}

pub(super) async fn account(pool: &Pool<Db>, user_id: Uuid) -> StoreResult<Option<Account>> {
    let row = sqlx::query("SELECT balance, balance_version FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(decode_account).transpose()
}

pub(super) async fn positions(pool: &Pool<Db>, user_ids: &[Uuid]) -> StoreResult<Vec<(Uuid, UserPositions)>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    assert!(user_ids.len() <= MAX_ACCOUNTS_PER_QUERY, "callers chunk the ids");
    // `IN ($1, …, $n)` with one bound parameter per id: the same statement on both backends
    // (SQLite has no arrays), and nothing but placeholders is ever spliced into the text.
    let placeholders: Vec<String> = (1..=user_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id, balance, balance_version, inventory_version FROM users WHERE id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in user_ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            let positions =
                UserPositions { account: decode_account(row)?, inventory_version: row.try_get("inventory_version")? };
            Ok((row.try_get("id")?, positions))
        })
        .collect()
}
