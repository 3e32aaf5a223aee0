//! Test databases: a fresh PostgreSQL database or SQLite file per test, removed when the guard
//! drops, whether the test passed or panicked.

use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Where the tests find PostgreSQL: a maintenance database on a server where the tests may
/// create databases. Without one these tests fail, they never skip.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database name replaced by `name`; the query string (`?sslmode=…`) is kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (server, query) = url.split_once('?').map(|(s, q)| (s, Some(q))).unwrap_or((url, None));
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A database that exists as long as this guard does.
pub enum TestDatabase {
    Postgres {
        name: String,
        url: String,
    },
    /// A directory of its own, so the file's `-wal` and `-shm` go with it.
    Sqlite {
        dir: PathBuf,
        url: String,
    },
}

impl TestDatabase {
    /// A new PostgreSQL database named `<prefix>_<uuid>` on the `admin_url()` server.
    pub async fn postgres(prefix: &str) -> TestDatabase {
        use sqlx::Connection;
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url()).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is required for these tests ({e}); start it or set TEST_DATABASE_URL")
        });
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create a test database");
        let _ = conn.close().await;
        TestDatabase::Postgres { url: with_database(&admin_url(), &name), name }
    }

    /// A new SQLite file in a directory of its own under the temp dir.
    pub fn sqlite() -> TestDatabase {
        let dir = std::env::temp_dir().join(format!("cyberhub-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create a test database directory");
        let url = format!("sqlite://{}?mode=rwc", dir.join("cyberhub.db").display());
        TestDatabase::Sqlite { dir, url }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Postgres { url, .. } | TestDatabase::Sqlite { url, .. } => url,
        }
    }

    /// The PostgreSQL database's name.
    pub fn name(&self) -> Option<&str> {
        match self {
            TestDatabase::Postgres { name, .. } => Some(name),
            TestDatabase::Sqlite { .. } => None,
        }
    }

    /// The SQLite file's directory.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            TestDatabase::Sqlite { dir, .. } => Some(dir),
            TestDatabase::Postgres { .. } => None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match self {
            TestDatabase::Postgres { name, .. } => {
                if let Err(e) = drop_postgres_database(name) {
                    eprintln!("could not drop test database {name}: {e}");
                }
            }
            TestDatabase::Sqlite { dir, .. } => {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// Drops `name`, ending its sessions (an app still running, a test's own connection). Blocking,
/// so it works from `Drop` while a test unwinds: its own thread with its own runtime, since the
/// test's runtime may be the caller.
pub fn drop_postgres_database(name: &str) -> Result<(), String> {
    let name = name.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin_url()).await.map_err(|e| e.to_string())?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let _ = conn.close().await;
            Ok(())
        })
    })
    .join()
    .map_err(|_| "the drop thread panicked".to_string())?
}

/// Whether a database named `name` exists on the `admin_url()` server.
pub async fn postgres_database_exists(name: &str) -> bool {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&admin_url()).await.expect("PostgreSQL answers");
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .expect("query pg_database");
    found.is_some()
}
