//! PostgreSQL: the truth of a cluster. Row locks taken by the conditional updates serialize
//! concurrent changes to one balance; migrations take sqlx's advisory lock, so replicas that
//! start together migrate once.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Postgres as Db, Transaction};
use std::str::FromStr;
use std::time::Duration;

const BACKEND: Backend = Backend::Postgres;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl SqlStore {
    pub async fn connect(url: &str, settings: crate::store::PoolSettings) -> anyhow::Result<Self> {
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

async fn begin_write(pool: &Pool<Db>) -> Result<Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

include!("sql_ops.rs");
