//! The store's error: typed outcomes a caller acts on, and the classification of database
//! failures into "unavailable" (retry later, 503) and everything else.

use crate::domain::InventoryStatus;

/// What went wrong, in the store's terms. The store never picks what a client sees: `error.rs`
/// maps each variant to a status, a wire `code` and a message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0:?} not found")]
    NotFound(Entity),
    /// The balance is lower than the amount to debit.
    #[error("insufficient balance")]
    InsufficientBalance,
    /// A claim of an item that is no longer `owned` (claimed, or in the withdrawal flow).
    #[error("only owned items can be claimed; this one is {}", status.as_str())]
    NotOwned { status: InventoryStatus },
    /// An inventory status change the withdrawal flow does not allow.
    #[error("an item cannot go from {} to {}", from.as_str(), to.as_str())]
    InvalidTransition { from: InventoryStatus, to: InventoryStatus },
    /// The inventory item's status changed between this transaction's read and its conditional
    /// write; the caller may reload and retry.
    #[error("the item's status changed concurrently")]
    ConcurrentChange,
    /// A stored value no code writes (an unknown enum text, a negative weight, a broken seed): a
    /// bug or a hand edit, never the caller's fault and never worth retrying.
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
    /// The database is down, overloaded or stalled: worth retrying, never the caller's fault.
    #[error("database unavailable ({}): {source}", cause.as_str())]
    Unavailable { cause: UnavailableCause, source: sqlx::Error },
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

/// What a `StoreError::NotFound` did not find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    User,
    Case,
    InventoryItem,
}

/// Why the database was unavailable: a bounded metric label and what an operator looks at first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnavailableCause {
    /// No pooled connection within DATABASE_ACQUIRE_TIMEOUT.
    PoolTimeout,
    /// A statement ran past DATABASE_STATEMENT_TIMEOUT (or was cancelled).
    StatementTimeout,
    /// A lock was not granted within DATABASE_LOCK_TIMEOUT (SQLite: the database stayed locked).
    LockTimeout,
    /// The connection failed, or the server is shutting down, starting or out of connections.
    Connection,
    /// A serialization failure or deadlock: the transaction was rolled back and may be retried.
    Conflict,
}

impl UnavailableCause {
    pub const ALL: [UnavailableCause; 5] = [
        UnavailableCause::PoolTimeout,
        UnavailableCause::StatementTimeout,
        UnavailableCause::LockTimeout,
        UnavailableCause::Connection,
        UnavailableCause::Conflict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnavailableCause::PoolTimeout => "pool_timeout",
            UnavailableCause::StatementTimeout => "statement_timeout",
            UnavailableCause::LockTimeout => "lock_timeout",
            UnavailableCause::Connection => "connection",
            UnavailableCause::Conflict => "conflict",
        }
    }

    /// The cause of a transient failure, or `None` for an error a retry would not fix.
    fn of(err: &sqlx::Error) -> Option<Self> {
        match err {
            sqlx::Error::PoolTimedOut => Some(UnavailableCause::PoolTimeout),
            sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => Some(UnavailableCause::Connection),
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    Self::of_sqlite_code(&code)
                } else {
                    Self::of_sqlstate(&code)
                }
            }
            _ => None,
        }
    }

    /// PostgreSQL: class 08 (connection), 53 (resources), 57 (operator intervention: shutdown,
    /// restart, statement timeout), lock timeouts, and serialization failures or deadlocks.
    fn of_sqlstate(code: &str) -> Option<Self> {
        match code {
            "57014" => Some(UnavailableCause::StatementTimeout),
            "55P03" => Some(UnavailableCause::LockTimeout),
            "40001" | "40P01" => Some(UnavailableCause::Conflict),
            c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57") => {
                Some(UnavailableCause::Connection)
            }
            _ => None,
        }
    }

    /// SQLite: the primary result code (the low byte of an extended one) 5 BUSY or 6 LOCKED.
    fn of_sqlite_code(code: &str) -> Option<Self> {
        match code.parse::<u32>().map(|n| n & 0xff) {
            Ok(5) | Ok(6) => Some(UnavailableCause::LockTimeout),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match UnavailableCause::of(&err) {
            Some(cause) => StoreError::Unavailable { cause, source: err },
            None => StoreError::Database(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UnavailableCause as Cause;

    #[test]
    fn transient_database_codes_are_unavailable_and_the_rest_are_not() {
        assert_eq!(Cause::of_sqlstate("57014"), Some(Cause::StatementTimeout));
        assert_eq!(Cause::of_sqlstate("55P03"), Some(Cause::LockTimeout));
        assert_eq!(Cause::of_sqlstate("57P01"), Some(Cause::Connection), "admin shutdown during a restart");
        assert_eq!(Cause::of_sqlstate("57P03"), Some(Cause::Connection), "cannot connect now");
        assert_eq!(Cause::of_sqlstate("53300"), Some(Cause::Connection), "too many connections");
        assert_eq!(Cause::of_sqlstate("08006"), Some(Cause::Connection));
        assert_eq!(Cause::of_sqlstate("40P01"), Some(Cause::Conflict));
        assert_eq!(Cause::of_sqlstate("23505"), None, "a unique violation is a bug or a conflict, not an outage");
        assert_eq!(Cause::of_sqlstate("42501"), None);
        assert_eq!(Cause::of_sqlite_code("5"), Some(Cause::LockTimeout), "SQLITE_BUSY");
        assert_eq!(Cause::of_sqlite_code("517"), Some(Cause::LockTimeout), "SQLITE_BUSY_SNAPSHOT");
        assert_eq!(Cause::of_sqlite_code("2067"), None, "SQLITE_CONSTRAINT_UNIQUE");
        assert!(Cause::of(&sqlx::Error::PoolTimedOut).is_some());
        assert!(Cause::of(&sqlx::Error::RowNotFound).is_none());
    }
}
