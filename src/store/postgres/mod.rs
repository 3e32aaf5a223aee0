//! PostgreSQL: the truth of a cluster. Row locks taken by the conditional updates serialize
//! concurrent changes to one balance; migrations take sqlx's advisory lock, so replicas that
//! start together migrate once. A case open is one call of a database function, rolled against a
//! per-replica cache (`open.rs`).

mod open;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Pool, Postgres as Db, Transaction};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

use crate::config::Backend;
use crate::store::{PoolSettings, StoreResult};

include!("../sql/areas.rs");

const BACKEND: Backend = Backend::Postgres;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl SqlStore {
    pub async fn connect(url: &str, settings: PoolSettings) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)?
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        // Migrations may build indexes on big tables: they run on a connection of their own,
        // without the request-sized timeouts every pooled session gets.
        let mut migrating = options.connect().await?;
        MIGRATOR.run(&mut migrating).await?;
        migrating.close().await?;
        let ms = |d: Duration| d.as_millis().to_string();
        let options = options.options([
            ("statement_timeout", ms(settings.statement_timeout)),
            ("lock_timeout", ms(settings.lock_timeout)),
            ("idle_in_transaction_session_timeout", ms(settings.idle_in_transaction_timeout)),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(SqlStore::new(pool))
    }
}

// The hooks the shared SQL calls (sql/store.rs lists them).

async fn begin_write(pool: &Pool<Db>) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

/// Makes concurrent rotations of one player's pair wait for each other (two found the same active
/// pair, and the later one then had none left to retire), taking the locks in the order opens do:
/// the player, then the pair.
async fn lock_player(conn: &mut rows::DbConn, user_id: Uuid) -> StoreResult<()> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE").bind(user_id).execute(&mut *conn).await?;
    Ok(())
}

/// Opens in one round trip, rolled against this replica's cache of cases and seed pairs.
type CaseOpener = open::OpenCache;
