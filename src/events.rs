//! The one place that maps a realtime event to its room, wire name and payload.
//! Events are state hints (`cases:updated`, `inventory:updated` with the inventory's version) or
//! absolute state with a version (`balance:updated`), so delivering one twice is harmless and a missed one is repaired by the
//! resync a socket gets when it connects.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::domain::Account;
use crate::money::Cents;
use crate::sessions::EndReason;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    CasesUpdated,
    BalanceUpdated {
        user_id: Uuid,
        balance: i64,
        version: i64,
    },
    InventoryUpdated {
        user_id: Uuid,
        /// The user's inventory version after the change. `None` only in a message from a replica
        /// of an older release (rolling upgrade); it is then emitted without a payload, as before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<i64>,
    },
    /// An admin kicked the user: every socket of theirs, on every replica, ends with
    /// `session:ended { reason: "kicked" }`.
    UserKicked {
        user_id: Uuid,
    },
    /// An admin blocked or unblocked the user: every replica updates its cache, and a block ends
    /// the user's sockets with `session:ended { reason: "blocked" }`.
    UserBlocked {
        user_id: Uuid,
        blocked: bool,
    },
    /// A payment was credited: shown live to the operators' console (the `/admin` namespace on
    /// every replica), never to a player's socket.
    PaymentCredited {
        user_id: Uuid,
        payment_id: String,
        /// Cents.
        amount: i64,
        /// When the credit committed.
        at: chrono::DateTime<chrono::Utc>,
    },
}

/// Who receives an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    Room(String),
    /// The admin-only `/admin` namespace; no socket of the players' namespace.
    Admins,
}

impl Event {
    pub fn balance(user_id: Uuid, account: Account) -> Event {
        Event::BalanceUpdated { user_id, balance: account.balance.as_i64(), version: account.version }
    }

    pub fn inventory(user_id: Uuid, version: i64) -> Event {
        Event::InventoryUpdated { user_id, version: Some(version) }
    }

    pub fn audience(&self) -> Audience {
        match self {
            Event::CasesUpdated => Audience::Everyone,
            Event::BalanceUpdated { user_id, .. }
            | Event::InventoryUpdated { user_id, .. }
            | Event::UserKicked { user_id }
            | Event::UserBlocked { user_id, .. } => Audience::Room(user_room(*user_id)),
            Event::PaymentCredited { .. } => Audience::Admins,
        }
    }

    /// The Socket.IO event name the front ends listen for.
    pub fn name(&self) -> String {
        match self {
            Event::CasesUpdated => "cases:updated".into(),
            Event::BalanceUpdated { user_id, .. } => format!("balance:updated:{user_id}"),
            Event::InventoryUpdated { user_id, .. } => format!("inventory:updated:{user_id}"),
            Event::UserKicked { .. } | Event::UserBlocked { .. } => crate::sessions::SESSION_ENDED.into(),
            Event::PaymentCredited { .. } => crate::console::PAYMENT.into(),
        }
    }

    /// `None` for events that carry no payload.
    pub fn payload(&self) -> Option<Value> {
        match self {
            Event::BalanceUpdated { balance, version, .. } => {
                Some(json!({ "balance": Cents(*balance), "version": version }))
            }
            Event::InventoryUpdated { version, .. } => version.map(|version| json!({ "version": version })),
            Event::CasesUpdated => None,
            Event::UserKicked { .. } | Event::UserBlocked { .. } => {
                self.ends_sessions().map(|(_, reason)| json!({ "reason": reason.as_str() }))
            }
            Event::PaymentCredited { user_id, payment_id, amount, at } => Some(json!({
                "userId": user_id, "paymentId": payment_id, "amount": Cents(*amount), "at": at,
            })),
        }
    }

    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::CasesUpdated => "cases_updated",
            Event::BalanceUpdated { .. } => "balance_updated",
            Event::InventoryUpdated { .. } => "inventory_updated",
            Event::UserKicked { .. } => "user_kicked",
            Event::UserBlocked { .. } => "user_blocked",
            Event::PaymentCredited { .. } => "payment_credited",
        }
    }

    /// Session control (kick, block) rather than something to show: never emitted as such.
    pub fn is_control(&self) -> bool {
        matches!(self, Event::UserKicked { .. } | Event::UserBlocked { .. })
    }

    /// For the events that end a user's sessions rather than inform them: whose, and why.
    pub fn ends_sessions(&self) -> Option<(Uuid, EndReason)> {
        match self {
            Event::UserKicked { user_id } => Some((*user_id, EndReason::Kicked)),
            Event::UserBlocked { user_id, blocked: true } => Some((*user_id, EndReason::Blocked)),
            Event::UserBlocked { blocked: false, .. } => None,
            Event::CasesUpdated
            | Event::BalanceUpdated { .. }
            | Event::InventoryUpdated { .. }
            | Event::PaymentCredited { .. } => None,
        }
    }
}

/// An event ready to emit: what a replica needs to deliver it. The bus carries the `Event` itself
/// (src/bus/wire.rs), and each receiver maps it here, so the room always follows from a validated
/// user id and never from what a message claims.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub kind: String,
    pub name: String,
    /// For the `/admin` namespace (the operators' console) rather than the players' `/`.
    #[serde(default)]
    pub admins: bool,
    /// `None`: every socket of the namespace.
    pub room: Option<String>,
    pub payload: Option<Value>,
}

impl From<&Event> for Envelope {
    fn from(event: &Event) -> Self {
        Envelope {
            kind: event.kind().to_string(),
            name: event.name(),
            admins: event.audience() == Audience::Admins,
            room: match event.audience() {
                Audience::Everyone | Audience::Admins => None,
                Audience::Room(room) => Some(room),
            },
            payload: event.payload(),
        }
    }
}

pub fn user_room(user_id: Uuid) -> String {
    format!("user:{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_map_to_the_old_wire_protocol() {
        let id = Uuid::parse_str("7f1c2f9e-2a51-4d39-a7a4-53a8f1f1f1f1").unwrap();
        let balance = Event::BalanceUpdated { user_id: id, balance: 1250, version: 3 };
        assert_eq!(balance.name(), format!("balance:updated:{id}"));
        assert_eq!(balance.audience(), Audience::Room(format!("user:{id}")));
        assert_eq!(balance.payload(), Some(json!({ "balance": 12.5, "version": 3 })));
        assert_eq!(Event::CasesUpdated.audience(), Audience::Everyone);
        assert_eq!(Event::CasesUpdated.payload(), None);
        let inventory = Event::inventory(id, 7);
        assert_eq!(inventory.name(), format!("inventory:updated:{id}"));
        assert_eq!(inventory.audience(), Audience::Room(format!("user:{id}")));
        assert_eq!(inventory.payload(), Some(json!({ "version": 7 })));
        // From a replica of the previous release: no version, no payload, as before.
        let old: Event = serde_json::from_value(json!({ "type": "inventory_updated", "user_id": id })).unwrap();
        assert_eq!(old, Event::InventoryUpdated { user_id: id, version: None });
        assert_eq!(old.payload(), None);
    }

    #[test]
    fn payments_go_to_the_admin_namespace_only() {
        let event = Event::PaymentCredited {
            user_id: Uuid::new_v4(),
            payment_id: "p-1".into(),
            amount: 1250,
            at: chrono::Utc::now(),
        };
        let envelope = Envelope::from(&event);
        assert!(envelope.admins, "never the players' namespace");
        assert_eq!(envelope.room, None);
        assert_eq!(envelope.name, "payment");
        assert_eq!(envelope.payload.unwrap()["amount"], json!(12.5));
        assert!(!Envelope::from(&Event::CasesUpdated).admins);
    }
}
