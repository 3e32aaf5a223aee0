//! The launcher's own promise: a test that fails leaves no process and no database behind, and
//! keeps the logs for reading.

use std::path::PathBuf;
use std::sync::mpsc;

use crate::helpers::{postgres_database_exists, Cluster};

/// Whether `pid` is a live process (a zombie counts as gone: it runs nothing).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

fn pid(dir: &std::path::Path, file: &str) -> u32 {
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.trim().parse().unwrap_or_else(|_| panic!("{file}: {text:?}"))
}

#[test]
fn a_panicking_test_stops_its_cluster_and_drops_its_database() {
    let (tx, rx) = mpsc::channel::<(String, PathBuf, Vec<u32>)>();
    let body = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let cluster = Cluster::start(1).await;
            let pids: Vec<u32> =
                ["replica-1.pid", "redis.pid", "nginx/nginx.pid"].iter().map(|file| pid(&cluster.dir, file)).collect();
            assert!(pids.iter().all(|pid| alive(*pid)), "the cluster runs: {pids:?}");
            assert!(postgres_database_exists(&cluster.database_name()).await);
            tx.send((cluster.database_name(), cluster.dir.clone(), pids)).unwrap();
            panic!("a test body fails here, before any shutdown");
        })
    });
    assert!(body.join().is_err(), "the body panicked");
    let (database, dir, pids) = rx.recv().expect("the body got as far as its panic");
    let exists = tokio::runtime::Runtime::new().unwrap().block_on(postgres_database_exists(&database));
    assert!(!exists, "{database} was left behind");
    let running: Vec<u32> = pids.into_iter().filter(|pid| alive(*pid)).collect();
    assert!(running.is_empty(), "still running: {running:?}");
    let log = std::fs::read_to_string(dir.join("replica-1.log")).unwrap_or_default();
    assert!(!log.is_empty(), "the logs are kept in {}", dir.display());
    std::fs::remove_dir_all(&dir).unwrap();
}
