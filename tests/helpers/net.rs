//! Ports, paths and waiting.

use std::fmt::Debug;
use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A port nothing listens on right now. Another process may take it before the caller binds it:
/// whoever starts a server on it must handle "address in use" (the cluster launcher retries).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct free ports: all are held at once while they are picked, so none repeats.
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")).collect();
    held.iter().map(|l| l.local_addr().expect("a bound address").port()).collect()
}

/// Polls `probe` every 100 ms until it answers `Ok`, for at most `within`; panics naming `what`
/// and the last `Err` (the state that was not yet right) when time runs out.
pub async fn eventually<T, E, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    E: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("{what}: not within {within:?}; last seen: {last:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
