use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::money::Cents;

/// A user's balance with the version of its latest change. Clients keep the highest version they
/// have seen, so a late `balance:updated` can never roll a screen back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    pub balance: Cents,
    pub version: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    pub id: i64,
    pub kind: LedgerKind,
    pub amount: Cents,
    pub balance_after: Cents,
    pub version: i64,
    pub reference: Option<String>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}
