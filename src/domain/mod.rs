//! The vocabulary of the club: cases and their items, inventories, the ledger, seed pairs.
//! Types here are validated on construction, so the store and the handlers never re-check them.

pub mod case;
pub mod inventory;
pub mod ledger;

pub use case::{Case, CaseDraft, Item, ItemDraft, ItemKind};
pub use inventory::{InventoryEntry, InventoryStatus};
pub use ledger::{Account, LedgerEntry, LedgerKind};

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

/// What a player needs to replay the pick of one open without trusting us.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FairProof {
    pub server_seed_hash: String,
    pub client_seed: String,
    pub nonce: u64,
    pub roll: f64,
    /// The case's item weights and ids in pick order, as they were at the open.
    pub weights: Vec<u32>,
    pub item_ids: Vec<uuid::Uuid>,
}
