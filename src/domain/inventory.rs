use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{FairProof, Item};

/// Where a won item is in its life. `claimed` (turned into balance) happens only through the
/// claim operation; `delivered` and `claimed` are final.
///
/// | from | to | how |
/// |---|---|---|
/// | `owned` | `claimed` | `POST /api/inventory/claim` by the owner (credits the item's value) |
/// | `owned` | `withdraw_requested` | `PUT /api/inventory/{id}/status` (admin) |
/// | `withdraw_requested` | `delivered` | `PUT /api/inventory/{id}/status` (admin) |
/// | `withdraw_requested` | `owned` | `PUT /api/inventory/{id}/status` (admin) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InventoryStatus {
    Owned,
    WithdrawRequested,
    Delivered,
    Claimed,
}

impl InventoryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InventoryStatus::Owned => "owned",
            InventoryStatus::WithdrawRequested => "withdraw_requested",
            InventoryStatus::Delivered => "delivered",
            InventoryStatus::Claimed => "claimed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "owned" => Some(InventoryStatus::Owned),
            "withdraw_requested" => Some(InventoryStatus::WithdrawRequested),
            "delivered" => Some(InventoryStatus::Delivered),
            "claimed" => Some(InventoryStatus::Claimed),
            _ => None,
        }
    }

    /// Transitions an admin may make by `PUT /api/inventory/:id/status`.
    pub fn admin_can_move(self, to: InventoryStatus) -> bool {
        use InventoryStatus::*;
        matches!((self, to), (Owned, WithdrawRequested) | (WithdrawRequested, Delivered) | (WithdrawRequested, Owned))
    }
}

/// An item the user won.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(examples(json!({
    "id": "a4b3c2d1-e0f9-4a8b-9c7d-6e5f4a3b2c1d",
    "item": { "id": "0c9d7e1a-3b2f-4c5d-8e6f-7a8b9c0d1e2f", "name": "Half a coin",
              "image": "https://cdn.example.com/items/coin.png", "rarity": "common", "kind": "money",
              "value": 0.5, "weight": 3, "chance": 75.0 },
    "caseId": "5b0f2a9e-8c1d-4f3e-9a77-2d6c1e0b4a10", "status": "owned",
    "wonAt": "2025-11-22T12:34:56.789Z",
    "fair": { "serverSeedHash": "3f1a9c0b7e2d4f6a8c1e3b5d7f9a0c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d0f2a",
              "clientSeed": "my-lucky-seed", "nonce": 4, "roll": 0.41337, "weights": [3, 1],
              "itemIds": ["0c9d7e1a-3b2f-4c5d-8e6f-7a8b9c0d1e2f", "1d0e8f2b-4c3a-4d6e-9f70-8b9c0d1e2f3a"] }
})))]
pub struct InventoryEntry {
    /// The inventory item id (what `inventoryItemId` refers to).
    pub id: Uuid,
    /// The item as it was when won.
    pub item: Item,
    /// The case it was won from (which may since have been deleted).
    pub case_id: Uuid,
    pub status: InventoryStatus,
    pub won_at: DateTime<Utc>,
    /// The provably fair record of the open, or `null` when none is stored.
    pub fair: Option<FairProof>,
    #[serde(skip)]
    pub user_id: Uuid,
}

#[cfg(test)]
mod tests {
    use super::InventoryStatus::{self, *};

    #[test]
    fn only_the_documented_transitions_are_allowed() {
        let all = [Owned, WithdrawRequested, Delivered, Claimed];
        let allowed: Vec<(InventoryStatus, InventoryStatus)> = all
            .iter()
            .flat_map(|&from| all.iter().map(move |&to| (from, to)))
            .filter(|&(from, to)| from.admin_can_move(to))
            .collect();
        assert_eq!(
            allowed,
            vec![(Owned, WithdrawRequested), (WithdrawRequested, Owned), (WithdrawRequested, Delivered)]
        );
    }

    #[test]
    fn statuses_round_trip_their_names() {
        for s in [Owned, WithdrawRequested, Delivered, Claimed] {
            assert_eq!(InventoryStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(InventoryStatus::parse("lost"), None);
    }
}
