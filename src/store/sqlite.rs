//! SQLite: the zero-configuration single node. Writers take the database lock up front
//! (`BEGIN IMMEDIATE`) so two transactions never deadlock upgrading a read lock, and WAL keeps
//! readers going while one writes. `synchronous=FULL`: a commit is on disk before we answer, so a
//! payment provider that got its 200 never needs to send again (WAL with NORMAL can lose the last
//! commits on a power cut).

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite as Db, Transaction};
use std::str::FromStr;
use uuid::Uuid;

use crate::config::Backend;
use crate::store::{Opened, PoolSettings, StoreResult};

include!("sql/areas.rs");

const BACKEND: Backend = Backend::Sqlite;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqlStore {
    pub async fn connect(url: &str, settings: PoolSettings) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Every write queues for the one database lock, so the wait is a statement's worth,
            // not PostgreSQL's row-lock wait.
            .busy_timeout(settings.statement_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.min(8))
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqlStore::new(pool))
    }
}

// The hooks the shared SQL calls (sql/store.rs lists them).

async fn begin_write(pool: &Pool<Db>) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Nothing to take: `BEGIN IMMEDIATE` already holds the database's one write lock, so every
/// writer is serialized behind it.
async fn lock_player(_conn: &mut rows::DbConn, _user_id: Uuid) -> StoreResult<()> {
    Ok(())
}

/// Every open is the locking transaction; with one writer at a time there is nothing to gain from
/// rolling ahead of it.
#[derive(Default)]
struct CaseOpener;

impl CaseOpener {
    async fn open_case(&self, pool: &Pool<Db>, user_id: Uuid, case_id: Uuid) -> StoreResult<Opened> {
        opens::open_case_in_transaction(pool, user_id, case_id).await
    }
}
