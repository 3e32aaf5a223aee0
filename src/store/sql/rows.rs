// Column lists and row decoders shared by the areas, and the row and connection types of the
// including backend's `Db`.

use sqlx::Row;

use super::Db;
use crate::domain::case::chance_percent;
use crate::domain::{Account, FairProof, InventoryEntry, InventoryStatus, Item, ItemKind, LedgerEntry, LedgerKind};
use crate::money::Cents;
use crate::store::{StoreError, StoreResult, UserRecord};

pub(super) type DbRow = <Db as sqlx::Database>::Row;
pub(super) type DbConn = <Db as sqlx::Database>::Connection;

pub(super) fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(what)
}

pub(super) const ITEM_COLUMNS: &str = "i.id AS item_id, i.name AS item_name, i.image AS item_image, \
     i.rarity AS item_rarity, i.kind AS item_kind, i.value AS item_value, i.weight AS item_weight";

pub(super) fn decode_item(row: &DbRow) -> StoreResult<Item> {
    let kind: String = row.try_get("item_kind")?;
    let weight: i64 = row.try_get("item_weight")?;
    Ok(Item {
        id: row.try_get("item_id")?,
        name: row.try_get("item_name")?,
        image: row.try_get("item_image")?,
        rarity: row.try_get("item_rarity")?,
        kind: ItemKind::parse(&kind).ok_or_else(|| corrupt(format!("item kind {kind:?}")))?,
        value: Cents(row.try_get("item_value")?),
        weight: u32::try_from(weight).map_err(|_| corrupt(format!("item weight {weight}")))?,
        chance: 0.0,
    })
}

pub(super) fn decode_account(row: &DbRow) -> StoreResult<Account> {
    Ok(Account { balance: Cents(row.try_get("balance")?), version: row.try_get("balance_version")? })
}

pub(super) const INVENTORY_COLUMNS: &str = "inv.id, inv.user_id, inv.case_id, inv.status, inv.fair_proof, inv.won_at";

/// A row of `INVENTORY_COLUMNS` and `ITEM_COLUMNS`.
pub(super) fn decode_inventory(row: &DbRow) -> StoreResult<InventoryEntry> {
    let status: String = row.try_get("status")?;
    let proof: Option<String> = row.try_get("fair_proof")?;
    let fair: Option<FairProof> = match proof {
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| corrupt(format!("fair proof: {e}")))?),
        None => None,
    };
    let mut item = decode_item(row)?;
    if let Some(proof) = &fair {
        item.chance = chance_percent(item.weight, proof.weights.iter().map(|&w| u64::from(w)).sum());
    }
    Ok(InventoryEntry {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        case_id: row.try_get("case_id")?,
        status: decode_status(&status)?,
        won_at: row.try_get("won_at")?,
        item,
        fair,
    })
}

pub(super) fn decode_status(status: &str) -> StoreResult<InventoryStatus> {
    InventoryStatus::parse(status).ok_or_else(|| corrupt(format!("inventory status {status:?}")))
}

pub(super) const USER_COLUMNS: &str = "id, balance, balance_version, blocked, blocked_reason, blocked_at";

pub(super) fn decode_user(row: &DbRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        balance: Cents(row.try_get("balance")?),
        balance_version: row.try_get("balance_version")?,
        blocked: row.try_get("blocked")?,
        blocked_reason: row.try_get("blocked_reason")?,
        blocked_at: row.try_get("blocked_at")?,
    })
}

pub(super) const LEDGER_COLUMNS: &str = "id, kind, amount, balance_after, version, reference, reason, created_at";

pub(super) fn decode_ledger(row: &DbRow) -> StoreResult<LedgerEntry> {
    let kind: String = row.try_get("kind")?;
    Ok(LedgerEntry {
        id: row.try_get("id")?,
        kind: LedgerKind::parse(&kind).ok_or_else(|| corrupt(format!("ledger kind {kind:?}")))?,
        amount: Cents(row.try_get("amount")?),
        balance_after: Cents(row.try_get("balance_after")?),
        version: row.try_get("version")?,
        reference: row.try_get("reference")?,
        reason: row.try_get("reason")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A player's seed pair. `nonce` is the next one to use: as stored, or as a PostgreSQL replica
/// last saw it.
pub(super) struct SeedPair {
    pub(super) id: uuid::Uuid,
    pub(super) server_seed: String,
    pub(super) server_seed_hash: String,
    pub(super) client_seed: String,
    pub(super) nonce: u64,
    /// The pre-committed seed the next client-seed change or rotation activates: (seed, hash).
    /// `None` only on a pair from before migration 20261215000001 that nobody has read since.
    pub(super) next: Option<(String, String)>,
}

pub(super) const PAIR_COLUMNS: &str =
    "id, server_seed, server_seed_hash, client_seed, nonce, next_server_seed, next_server_seed_hash";

pub(super) fn decode_pair(row: &DbRow) -> StoreResult<SeedPair> {
    let nonce: i64 = row.try_get("nonce")?;
    Ok(SeedPair {
        id: row.try_get("id")?,
        server_seed: row.try_get("server_seed")?,
        server_seed_hash: row.try_get("server_seed_hash")?,
        client_seed: row.try_get("client_seed")?,
        nonce: u64::try_from(nonce).map_err(|_| corrupt(format!("nonce {nonce}")))?,
        next: match (row.try_get("next_server_seed")?, row.try_get("next_server_seed_hash")?) {
            (Some(seed), Some(hash)) => Some((seed, hash)),
            _ => None,
        },
    })
}
