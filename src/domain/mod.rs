//! The vocabulary of the club: cases and their items, inventories, the ledger, seed pairs.
//! Types here are validated on construction, so the store and the handlers never re-check them.

pub mod case;
pub mod inventory;
pub mod ledger;

pub use case::{Case, CaseDraft, Item, ItemDraft, ItemKind};
pub use inventory::{InventoryEntry, InventoryStatus};
pub use ledger::{Account, LedgerEntry, LedgerKind};

use serde::Serialize;
use utoipa::ToSchema;

/// Taken from the token's `role` claim; `user` when the claim is absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn parse(text: Option<&str>) -> Option<Role> {
        match text {
            None | Some("user") => Some(Role::User),
            Some("admin") => Some(Role::Admin),
            Some(_) => None,
        }
    }
}

/// What a player needs to replay the pick of one open without trusting us. It snapshots the case
/// at the open, so it stays verifiable after an admin edits or deletes the case. Once the seed
/// pair is revealed (`POST /api/fair/rotate`, `GET /api/fair/history`) anyone can recompute
/// `roll` and the winning item.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Fair, examples(json!({
    "serverSeedHash": "3f1a9c0b7e2d4f6a8c1e3b5d7f9a0c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d0f2a",
    "clientSeed": "my-lucky-seed", "nonce": 4, "roll": 0.41337, "weights": [3, 1],
    "itemIds": ["0c9d7e1a-3b2f-4c5d-8e6f-7a8b9c0d1e2f", "1d0e8f2b-4c3a-4d6e-9f70-8b9c0d1e2f3a"]
})))]
pub struct FairProof {
    /// The commitment to the server seed used (lowercase hex SHA-256), published before the open.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub server_seed_hash: String,
    #[schema(min_length = 1, max_length = 64)]
    pub client_seed: String,
    /// The nonce of this open within its seed pair.
    pub nonce: u64,
    /// The number in [0, 1) derived from the server seed, the client seed and the nonce.
    #[schema(minimum = 0, exclusive_maximum = 1)]
    pub roll: f64,
    /// The case's item weights in pick order, as they were at the open.
    #[schema(inline)]
    pub weights: Vec<u32>,
    /// The case's item ids, in the same order as `weights`, as they were at the open.
    pub item_ids: Vec<uuid::Uuid>,
}
