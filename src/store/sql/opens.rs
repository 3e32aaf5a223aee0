// Case opens: the provably fair draw, and the open as one locking transaction (every open on
// SQLite, PostgreSQL's fallback). PostgreSQL's usual open is in postgres/open.rs and must commit
// exactly what `open_case_in_transaction` commits.

use chrono::Utc;
use sqlx::Pool;
use uuid::Uuid;

use super::cases::load_case;
use super::fair::take_nonce;
use super::rows::{corrupt, SeedPair};
use super::writes::{bump_inventory_version, debit, insert_ledger, LedgerRow};
use super::{begin_write, Db};
use crate::domain::{Case, FairProof, Item, LedgerKind};
use crate::fair;
use crate::store::{Entity, OpenRetries, Opened, StoreError, StoreResult};

/// The roll of `pair`'s nonce and the item of `case` it picks, with the proof a player checks.
pub(super) fn draw(case: &Case, pair: &SeedPair) -> StoreResult<(Item, FairProof)> {
    let nonce = pair.nonce;
    let seed = fair::ServerSeed::from_hex(&pair.server_seed).map_err(|e| corrupt(format!("server seed: {e}")))?;
    let weights: Vec<u32> = case.items.iter().map(|i| i.weight).collect();
    let roll = fair::roll(&seed, &pair.client_seed, nonce);
    let index = fair::pick(&weights, &roll).ok_or_else(|| corrupt(format!("case {} has no items", case.id)))?;
    let proof = FairProof {
        server_seed_hash: pair.server_seed_hash.clone(),
        client_seed: pair.client_seed.clone(),
        nonce,
        roll: roll.value,
        weights,
        item_ids: case.items.iter().map(|i| i.id).collect(),
    };
    Ok((case.items[index].clone(), proof))
}

/// Debit, nonce and inventory under row locks in one transaction: eight round trips, BEGIN and
/// COMMIT included.
pub(super) async fn open_case_in_transaction(pool: &Pool<Db>, user_id: Uuid, case_id: Uuid) -> StoreResult<Opened> {
    let mut tx = begin_write(pool).await?;
    let case = load_case(&mut tx, case_id).await?.ok_or(StoreError::NotFound(Entity::Case))?;
    let account = debit(&mut tx, user_id, case.price).await?.ok_or(StoreError::InsufficientBalance)?;
    let pair = take_nonce(&mut tx, user_id).await?;
    let (item, proof) = draw(&case, &pair)?;
    let inventory_item_id = Uuid::new_v4();
    let now = Utc::now();
    sqlx::query(
        "INSERT INTO inventory (id, user_id, item_id, case_id, status, fair_proof, won_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'owned', $5, $6, $6)",
    )
    .bind(inventory_item_id)
    .bind(user_id)
    .bind(item.id)
    .bind(case_id)
    .bind(serde_json::to_string(&proof).map_err(|e| corrupt(e.to_string()))?)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let inventory_version = bump_inventory_version(&mut tx, user_id).await?;
    let reference = inventory_item_id.to_string();
    insert_ledger(
        &mut tx,
        LedgerRow {
            user_id,
            kind: LedgerKind::CaseOpen,
            amount: -case.price,
            after: account,
            reference: Some(&reference),
            reason: Some(&case.name),
        },
    )
    .await?;
    tx.commit().await?;
    let retries = OpenRetries::default();
    Ok(Opened { item, price: case.price, inventory_item_id, account, inventory_version, fair: proof, retries })
}
