// The case catalogue. Items are never deleted: an edit retires a case's item rows and inserts new
// ones, so inventories keep what was won. Every edit bumps the case's `version`, which
// PostgreSQL's one-round-trip open checks its cached copy against.

use chrono::Utc;
use sqlx::{Pool, Row};
use uuid::Uuid;

use super::rows::{decode_item, DbConn, ITEM_COLUMNS};
use super::{begin_write, Db};
use crate::domain::{Case, CaseDraft, Item, ItemDraft};
use crate::money::Cents;
use crate::store::{Entity, StoreError, StoreResult};

/// One round trip: a case always has at least one active item (drafts are validated), so no row
/// means no such active case.
pub(super) async fn load_case(conn: &mut DbConn, case_id: Uuid) -> StoreResult<Option<Case>> {
    Ok(load_case_version(conn, case_id).await?.map(|(case, _)| case))
}

/// The case with its `version`, which every edit bumps.
pub(super) async fn load_case_version(conn: &mut DbConn, case_id: Uuid) -> StoreResult<Option<(Case, i64)>> {
    let rows = sqlx::query(&format!(
        "SELECT c.name, c.image, c.price, c.version, {ITEM_COLUMNS} FROM cases c \
         JOIN items i ON i.case_id = c.id AND i.active WHERE c.id = $1 AND c.active ORDER BY i.position"
    ))
    .bind(case_id)
    .fetch_all(&mut *conn)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let items = rows.iter().map(decode_item).collect::<StoreResult<Vec<_>>>()?;
    let case =
        Case::new(case_id, first.try_get("name")?, first.try_get("image")?, Cents(first.try_get("price")?), items);
    Ok(Some((case, first.try_get("version")?)))
}

async fn insert_items(conn: &mut DbConn, case_id: Uuid, items: &[ItemDraft]) -> StoreResult<()> {
    for (position, item) in items.iter().enumerate() {
        sqlx::query(
            "INSERT INTO items (id, case_id, position, name, image, rarity, kind, value, weight, active) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, TRUE)",
        )
        .bind(Uuid::new_v4())
        .bind(case_id)
        .bind(position as i32)
        .bind(item.name.trim())
        .bind(&item.image)
        .bind(item.rarity.trim())
        .bind(item.kind.as_str())
        .bind(item.value.cents().as_i64())
        .bind(i64::from(item.weight))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn retire_items(conn: &mut DbConn, case_id: Uuid) -> StoreResult<()> {
    sqlx::query("UPDATE items SET active = FALSE WHERE case_id = $1 AND active")
        .bind(case_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn cases(pool: &Pool<Db>) -> StoreResult<Vec<Case>> {
    let rows = sqlx::query(&format!(
        "SELECT c.id, c.name, c.image, c.price, {ITEM_COLUMNS} \
         FROM cases c JOIN items i ON i.case_id = c.id AND i.active \
         WHERE c.active ORDER BY c.created_at, c.id, i.position"
    ))
    .fetch_all(pool)
    .await?;
    let mut cases: Vec<Case> = Vec::new();
    let mut items: Vec<Item> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        items.push(decode_item(row)?);
        let id: Uuid = row.try_get("id")?;
        let last_of_case = match rows.get(i + 1) {
            Some(next) => next.try_get::<Uuid, _>("id")? != id,
            None => true,
        };
        if last_of_case {
            let (name, image, price) = (row.try_get("name")?, row.try_get("image")?, Cents(row.try_get("price")?));
            cases.push(Case::new(id, name, image, price, std::mem::take(&mut items)));
        }
    }
    Ok(cases)
}

pub(super) async fn case(pool: &Pool<Db>, case_id: Uuid) -> StoreResult<Option<Case>> {
    let mut conn = pool.acquire().await?;
    load_case(&mut conn, case_id).await
}

pub(super) async fn create_case(pool: &Pool<Db>, draft: &CaseDraft) -> StoreResult<Case> {
    let mut tx = begin_write(pool).await?;
    let id = Uuid::new_v4();
    let now = Utc::now();
    sqlx::query(
        "INSERT INTO cases (id, name, image, price, active, created_at, updated_at) VALUES ($1, $2, $3, $4, TRUE, $5, $5)",
    )
    .bind(id)
    .bind(draft.name.trim())
    .bind(&draft.image)
    .bind(draft.price.cents().as_i64())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    insert_items(&mut tx, id, &draft.items).await?;
    let case = load_case(&mut tx, id).await?.ok_or(StoreError::NotFound(Entity::Case))?;
    tx.commit().await?;
    Ok(case)
}

pub(super) async fn update_case(pool: &Pool<Db>, case_id: Uuid, draft: &CaseDraft) -> StoreResult<Case> {
    let mut tx = begin_write(pool).await?;
    let updated = sqlx::query(
        "UPDATE cases SET name = $2, image = $3, price = $4, updated_at = $5, version = version + 1 \
         WHERE id = $1 AND active",
    )
    .bind(case_id)
    .bind(draft.name.trim())
    .bind(&draft.image)
    .bind(draft.price.cents().as_i64())
    .bind(Utc::now())
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound(Entity::Case));
    }
    retire_items(&mut tx, case_id).await?;
    insert_items(&mut tx, case_id, &draft.items).await?;
    let case = load_case(&mut tx, case_id).await?.ok_or(StoreError::NotFound(Entity::Case))?;
    tx.commit().await?;
    Ok(case)
}

pub(super) async fn replace_items(pool: &Pool<Db>, case_id: Uuid, items: &[ItemDraft]) -> StoreResult<Case> {
    let mut tx = begin_write(pool).await?;
    let touched = sqlx::query("UPDATE cases SET updated_at = $2, version = version + 1 WHERE id = $1 AND active")
        .bind(case_id)
        .bind(Utc::now())
        .execute(&mut *tx)
        .await?;
    if touched.rows_affected() == 0 {
        return Err(StoreError::NotFound(Entity::Case));
    }
    retire_items(&mut tx, case_id).await?;
    insert_items(&mut tx, case_id, items).await?;
    let case = load_case(&mut tx, case_id).await?.ok_or(StoreError::NotFound(Entity::Case))?;
    tx.commit().await?;
    Ok(case)
}

pub(super) async fn set_price(pool: &Pool<Db>, case_id: Uuid, price: Cents) -> StoreResult<Case> {
    let mut tx = begin_write(pool).await?;
    let updated =
        sqlx::query("UPDATE cases SET price = $2, updated_at = $3, version = version + 1 WHERE id = $1 AND active")
            .bind(case_id)
            .bind(price.as_i64())
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound(Entity::Case));
    }
    let case = load_case(&mut tx, case_id).await?.ok_or(StoreError::NotFound(Entity::Case))?;
    tx.commit().await?;
    Ok(case)
}

pub(super) async fn delete_case(pool: &Pool<Db>, case_id: Uuid) -> StoreResult<()> {
    let deleted =
        sqlx::query("UPDATE cases SET active = FALSE, updated_at = $2, version = version + 1 WHERE id = $1 AND active")
            .bind(case_id)
            .bind(Utc::now())
            .execute(pool)
            .await?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NotFound(Entity::Case));
    }
    Ok(())
}
