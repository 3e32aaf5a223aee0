//! The test kit's own promise: a test that fails leaves no database and no file behind.

use std::sync::mpsc;

use crate::helpers::*;

/// A test body that panics with an app on each backend running: both databases are gone once
/// the panic has unwound, with no cleanup call reached.
#[test]
fn a_panicking_test_leaves_no_database_and_no_file() {
    let (tx, rx) = mpsc::channel();
    let body = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let on_postgres = spawn_app(Backend::Postgres).await;
            let on_sqlite = spawn_app(Backend::Sqlite).await;
            for app in [&on_postgres, &on_sqlite] {
                let user = app.known_user().await;
                app.fund(&user, 1.0).await;
            }
            let name = on_postgres.postgres_database().expect("a database of its own");
            let dir = on_sqlite.sqlite_dir().expect("a directory of its own");
            assert!(postgres_database_exists(&name).await, "{name} exists while the test runs");
            let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert!(files.iter().any(|f| f == "cyberhub.db"), "the SQLite file is in {}: {files:?}", dir.display());
            tx.send((name, dir)).unwrap();
            panic!("a test body fails here, before any cleanup");
        })
    });
    assert!(body.join().is_err(), "the body panicked");
    let (name, dir) = rx.recv().expect("the body got as far as its panic");
    let exists = tokio::runtime::Runtime::new().unwrap().block_on(postgres_database_exists(&name));
    assert!(!exists, "{name} was left behind");
    assert!(!dir.exists(), "{} was left behind", dir.display());
}
