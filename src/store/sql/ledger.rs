// Money that is not a case open or a claim: admin adjustments and payment callbacks, and the
// ledger every balance change writes a row to.

use chrono::{DateTime, Utc};
use sqlx::Pool;
use uuid::Uuid;

use super::rows::{decode_ledger, LEDGER_COLUMNS};
use super::writes::{credit, debit, insert_ledger, insert_user, user_exists, LedgerRow};
use super::{begin_write, Db};
use crate::domain::{Account, LedgerEntry, LedgerKind};
use crate::store::{Adjustment, Entity, PaymentNotice, PaymentOutcome, StoreError, StoreResult};

pub(super) async fn adjust_balance(pool: &Pool<Db>, adjustment: &Adjustment) -> StoreResult<Account> {
    let mut tx = begin_write(pool).await?;
    let user_id = adjustment.user_id;
    let (account, kind, signed) = if adjustment.credit {
        let account = credit(&mut tx, user_id, adjustment.amount).await?.ok_or(StoreError::NotFound(Entity::User))?;
        (account, LedgerKind::AdminAdd, adjustment.amount)
    } else {
        let Some(account) = debit(&mut tx, user_id, adjustment.amount).await? else {
            return Err(if user_exists(&mut tx, user_id).await? {
                StoreError::InsufficientBalance
            } else {
                StoreError::NotFound(Entity::User)
            });
        };
        (account, LedgerKind::AdminSubtract, -adjustment.amount)
    };
    let row = LedgerRow {
        user_id,
        kind,
        amount: signed,
        after: account,
        reference: None,
        reason: adjustment.reason.as_deref(),
    };
    insert_ledger(&mut tx, row).await?;
    tx.commit().await?;
    Ok(account)
}

pub(super) async fn record_payment(pool: &Pool<Db>, notice: &PaymentNotice) -> StoreResult<PaymentOutcome> {
    let mut tx = begin_write(pool).await?;
    let now: DateTime<Utc> = Utc::now();
    sqlx::query(
        "INSERT INTO payment_events (payment_id, user_id, amount, status, received_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&notice.payment_id)
    .bind(notice.user_id)
    .bind(notice.amount.as_i64())
    .bind(&notice.status)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if notice.status != "success" {
        tx.commit().await?;
        return Ok(PaymentOutcome::Recorded);
    }
    // Money that arrived is never refused: a user never seen is created here.
    insert_user(&mut tx, notice.user_id).await?;
    let first = sqlx::query(
        "INSERT INTO payments (payment_id, user_id, amount, credited_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING RETURNING payment_id",
    )
    .bind(&notice.payment_id)
    .bind(notice.user_id)
    .bind(notice.amount.as_i64())
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    if first.is_none() {
        tx.commit().await?;
        return Ok(PaymentOutcome::Duplicate);
    }
    let account = credit(&mut tx, notice.user_id, notice.amount).await?.ok_or(StoreError::NotFound(Entity::User))?;
    let row = LedgerRow {
        user_id: notice.user_id,
        kind: LedgerKind::Payment,
        amount: notice.amount,
        after: account,
        reference: Some(&notice.payment_id),
        reason: None,
    };
    insert_ledger(&mut tx, row).await?;
    tx.commit().await?;
    Ok(PaymentOutcome::Credited(account))
}

/// A user's ledger, newest first, strictly before `before_version` when given; `None` when the
/// user was never seen.
pub(super) async fn transactions(
    pool: &Pool<Db>,
    user_id: Uuid,
    before_version: Option<i64>,
    limit: u32,
) -> StoreResult<Option<Vec<LedgerEntry>>> {
    let mut conn = pool.acquire().await?;
    if !user_exists(&mut conn, user_id).await? {
        return Ok(None);
    }
    let rows = sqlx::query(&format!(
        "SELECT {LEDGER_COLUMNS} FROM ledger \
         WHERE user_id = $1 AND ($2 IS NULL OR version < $2) ORDER BY version DESC LIMIT $3"
    ))
    .bind(user_id)
    .bind(before_version)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(rows.iter().map(decode_ledger).collect::<StoreResult<Vec<_>>>()?))
}
