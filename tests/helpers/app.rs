//! The application under test: in process (`spawn_app`, with its state at hand) or as the real
//! binary (`ServerProcess`, for signals and memory), each on its own fresh database.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Once;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Mutex};

use cyberhub::config::Config;
use cyberhub::startup::Application;

use super::{free_port, Api, TestDatabase, JWT_SECRET, WEBHOOK_SECRET};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub async fn fresh_database(self) -> TestDatabase {
        match self {
            Backend::Sqlite => TestDatabase::sqlite(),
            Backend::Postgres => TestDatabase::postgres("cyberhub_test").await,
        }
    }
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            cyberhub::telemetry::init(cyberhub::config::LogFormat::Text, "test");
        }
    });
}

/// The application running in this process on a random port. Dropping it (a test that
/// panicked) aborts the server and drops its database; `cleanup` stops it gracefully first and
/// asserts it exits cleanly.
pub struct TestApp {
    api: Api,
    /// The running application's state, for tests that drive it from inside (event floods).
    pub state: cyberhub::state::AppState,
    database_url: String,
    /// `None` when the app runs on another app's database (a second replica).
    database: std::sync::Mutex<Option<TestDatabase>>,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    server: Mutex<Option<tokio::task::JoinHandle<anyhow::Result<()>>>>,
}

impl std::ops::Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// `overrides` are environment variables layered over the test defaults.
pub async fn spawn_app_with(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
    let database = backend.fresh_database().await;
    let url = database.url().to_string();
    start(url, Some(database), overrides).await
}

/// A second app on `database_url` (another app's database): a second replica.
pub async fn spawn_app_on(database_url: &str, overrides: &[(&str, &str)]) -> TestApp {
    start(database_url.to_string(), None, overrides).await
}

async fn start(database_url: String, database: Option<TestDatabase>, overrides: &[(&str, &str)]) -> TestApp {
    init_logs();
    let mut env: HashMap<String, String> = [
        ("BIND", "127.0.0.1"),
        ("PORT", "0"),
        ("JWT_SECRET", JWT_SECRET),
        ("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("RATE_LIMITS", "off"),
        ("REPLICA_ID", "test"),
        ("DATABASE_MAX_CONNECTIONS", "10"),
        // Test apps stop at once; the drain tests set their own window.
        ("DRAIN_WINDOW", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("DATABASE_URL".into(), database_url.clone());
    for (k, v) in overrides {
        env.insert(k.to_string(), v.to_string());
    }
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test config is valid");
    let app = Application::build(config).await.expect("application starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        api: Api::new(&base),
        state,
        database_url,
        database: std::sync::Mutex::new(database),
        shutdown: Mutex::new(Some(tx)),
        server: Mutex::new(Some(server)),
    }
}

impl TestApp {
    /// The URL of this app's PostgreSQL database, for a second app or a direct connection.
    pub fn postgres_url(&self) -> Option<String> {
        self.database_url.starts_with("postgres").then(|| self.database_url.clone())
    }

    /// The name of this app's own PostgreSQL database.
    pub fn postgres_database(&self) -> Option<String> {
        self.database.lock().unwrap().as_ref().and_then(|d| d.name().map(str::to_string))
    }

    /// The directory of this app's own SQLite file.
    pub fn sqlite_dir(&self) -> Option<std::path::PathBuf> {
        self.database.lock().unwrap().as_ref().and_then(|d| d.dir().map(|p| p.to_path_buf()))
    }

    /// Stops the server gracefully (asserting it exits cleanly) and drops its database now.
    pub async fn cleanup(&self) {
        self.stop().await;
        drop(self.database.lock().unwrap().take());
    }

    pub async fn stop(&self) {
        if let Some(tx) = self.shutdown.lock().await.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.lock().await.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), server).await;
            let result = result.expect("server stops within 10 s").expect("server task");
            result.expect("server exits cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Reached without `cleanup` when the test panicked: no graceful stop, just nothing left.
        if let Some(server) = self.server.get_mut().take() {
            server.abort();
        }
        drop(self.database.get_mut().unwrap_or_else(|e| e.into_inner()).take());
    }
}

/// Runs each test body once on SQLite and once on PostgreSQL, each on its own fresh app.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[allow(unused_imports)]
                use $crate::helpers::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let $app = &$crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await;
                    $body
                    $app.cleanup().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let $app = &$crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await;
                    $body
                    $app.cleanup().await;
                }
            }
        )*
    };
}

/// The real `cyberhub` binary as a process of its own (signals, /proc memory), on a fresh
/// SQLite file, with the test secrets. Killed and its file removed when dropped.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub api: Api,
    _database: TestDatabase,
}

impl ServerProcess {
    pub async fn start(env: &[(&str, &str)]) -> ServerProcess {
        let database = TestDatabase::sqlite();
        let port = free_port();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cyberhub"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("DATABASE_URL", database.url())
            .env("JWT_SECRET", JWT_SECRET)
            .env("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start cyberhub");
        let api = Api::new(&format!("http://127.0.0.1:{port}"));
        let started = Instant::now();
        while api.http.get(api.url("/health")).send().await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("cyberhub exited at start ({status}); port {port} may have been taken meanwhile");
            }
            assert!(started.elapsed() < Duration::from_secs(30), "cyberhub did not start within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ServerProcess { child, api, _database: database }
    }

    /// (current, peak) resident memory in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id().unwrap())).unwrap();
        let field = |name: &str| -> u64 {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in status"));
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub fn ws_url(&self) -> String {
        format!("{}/socket.io/?EIO=4&transport=websocket", self.api.base.replace("http://", "ws://"))
    }

    pub fn sigterm(&self) {
        let pid = self.child.id().expect("still running").to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }
}
