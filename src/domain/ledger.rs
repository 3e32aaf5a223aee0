use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::money::{Balance, Cents};

/// A user's balance with the version of its latest change. Clients keep the highest version they
/// have seen, so a late `balance:updated` can never roll a screen back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    pub balance: Cents,
    pub version: i64,
}

/// What caused a balance change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    AdminAdd,
    AdminSubtract,
    CaseOpen,
    Claim,
    Payment,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::AdminAdd => "admin_add",
            LedgerKind::AdminSubtract => "admin_subtract",
            LedgerKind::CaseOpen => "case_open",
            LedgerKind::Claim => "claim",
            LedgerKind::Payment => "payment",
        }
    }

    pub const ALL: [LedgerKind; 5] = [Self::AdminAdd, Self::AdminSubtract, Self::CaseOpen, Self::Claim, Self::Payment];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// One balance change in a user's ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(examples(json!({
    "id": 1, "kind": "admin_add", "amount": 12.5, "balanceAfter": 12.5, "version": 1,
    "reference": null, "reason": "tournament prize", "createdAt": "2025-11-22T12:34:56.789Z"
})))]
pub struct LedgerEntry {
    /// The ledger row's number (increasing over all users).
    #[schema(minimum = 1)]
    pub id: i64,
    pub kind: LedgerKind,
    /// Signed change: negative for `admin_subtract` and `case_open`, positive otherwise.
    pub amount: Cents,
    #[schema(value_type = Balance)]
    pub balance_after: Cents,
    /// The user's `balanceVersion` right after this change.
    #[schema(minimum = 1)]
    pub version: i64,
    /// The related object, e.g. the payment id, case id or inventory item id; `null` when none.
    pub reference: Option<String>,
    /// The reason an admin gave; `null` when none.
    #[schema(max_length = 200)]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}
