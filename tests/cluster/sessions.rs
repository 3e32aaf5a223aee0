//! Live sessions across the cluster: a rolling deploy's SIGTERM drains a replica's sockets over
//! `DRAIN_WINDOW` instead of all in one instant, and the official client lands on the others.
//!
//! Measure with more sockets, or against an all-at-once drain (`DRAIN_WINDOW=0`):
//! `DRAIN_SOCKETS=3000 [DRAIN_ALL_AT_ONCE=1] cargo test --test cluster drains -- --nocapture`.

use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{repo, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigtermed_replica_drains_over_its_window_and_every_socket_reconnects_elsewhere() {
    let sockets: usize = std::env::var("DRAIN_SOCKETS").ok().and_then(|n| n.parse().ok()).unwrap_or(300);
    let all_at_once = std::env::var("DRAIN_ALL_AT_ONCE").is_ok();
    let window = if all_at_once { "0" } else { "10s" };
    let cluster = Cluster::start_with(3, &[("DRAIN_WINDOW", window)]).await;
    let root = repo();
    assert!(
        root.join("tests/js/node_modules/socket.io-client").exists(),
        "socket.io-client is required: (cd tests/js && npm ci)"
    );
    let mut crowd = tokio::process::Command::new("node")
        .arg("tests/js/drain.mjs")
        .current_dir(&root)
        .env("CYBERHUB_URL", cluster.nginx_url())
        .env("SOCKETS", sockets.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(crowd.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("the crowd reports within 120 s")
            .unwrap()
            .expect("the crowd prints a line")
    };
    let ready = next_line().await;
    assert_eq!(ready, format!("READY {sockets}"));
    let on_drained = cluster.health(0).await["clients"].as_i64().unwrap();
    assert!(on_drained >= sockets as i64 / 6, "nginx spread the sockets: {on_drained} on the first replica");

    // cluster.sh stop-replica: SIGTERM, then it waits for the exit (SIGKILL after 20 s).
    let started = Instant::now();
    let stop = async {
        let code = cluster.stop_replica(0).await;
        (code, started.elapsed())
    };
    let meanwhile = async {
        if !all_at_once {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let ready = cluster.http.get(format!("{}/ready", cluster.replica_url(0))).send().await.unwrap();
            assert_eq!(ready.status(), 503, "a draining replica is not ready");
        }
    };
    let ((code, exited_after), ()) = tokio::join!(stop, meanwhile);
    assert_eq!(code, Some(0), "the drained replica exits cleanly");

    let summary: Value = serde_json::from_str(&next_line().await).unwrap();

    let survivors =
        cluster.health(1).await["clients"].as_i64().unwrap() + cluster.health(2).await["clients"].as_i64().unwrap();
    eprintln!(
        "drain of {on_drained} of {sockets} sockets ({}): exited after {exited_after:?}; {summary}; survivors hold {survivors}",
        if all_at_once { "DRAIN_WINDOW=0, all at once" } else { "DRAIN_WINDOW=10s" }
    );
    assert_eq!(summary["ended"].as_i64(), Some(on_drained), "every socket of the replica was told");
    assert_eq!(summary["reasons"]["draining"].as_i64(), Some(on_drained));
    assert_eq!(summary["reconnected"], summary["ended"], "every drained socket reconnected");
    assert_eq!(summary["connectErrors"], 0, "no failed connect");
    assert_eq!(summary["allConnected"], true);
    assert_eq!(survivors, sockets as i64, "the other replicas hold every socket");
    if !all_at_once {
        let spread = summary["spreadMs"].as_f64().unwrap();
        assert!(spread >= 5_000.0, "closes spread over at least half the 10 s window: {spread} ms");
        assert!(exited_after < Duration::from_secs(15), "{exited_after:?}");
    }
    // The crowd holds its sockets until told to go (its stdin closes).
    drop(crowd.stdin.take());
    let _ = crowd.wait().await;
    cluster.shutdown().await;
}

/// Expiry and in-band refresh through nginx on three replicas, with the official client: the
/// same suite as on one node (tests/js/live-sessions.mjs), events crossing replicas included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sockets_expire_and_refresh_in_band_across_the_cluster() {
    let cluster = Cluster::start_with(3, &[("TOKEN_EXPIRY_GRACE", "1s")]).await;
    let output = crate::helpers::run_node_tests(
        &cluster.nginx_url(),
        "tests/js/live-sessions.mjs",
        &[("TOKEN_EXPIRY_GRACE_S", "1")],
    )
    .await;
    assert!(output.contains("pass 6") && output.contains("fail 0"), "{output}");
    cluster.shutdown().await;
}
