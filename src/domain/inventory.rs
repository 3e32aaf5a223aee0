use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{FairProof, Item};

/// Where a won item is in its life. `claimed` (turned into balance) happens only through the
/// claim operation; `delivered` and `claimed` are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryEntry {
    pub id: Uuid,
    pub item: Item,
    pub case_id: Uuid,
    pub status: InventoryStatus,
    pub won_at: DateTime<Utc>,
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
