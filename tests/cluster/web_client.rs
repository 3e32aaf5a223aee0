//! `cyberhub-client` (clients/js) through nginx on the local cluster: clients/js/test/cluster.mjs
//! asks for the faults (`FAULT stop-replica replica-N`, `FAULT restart-redis`) on its stdout and
//! this test does them with the cluster kit, then answers `DONE`.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::{web_client_dir, Cluster, JWT_SECRET, WEBHOOK_SECRET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cyberhub_client_keeps_a_live_balance_through_a_drain_and_a_redis_restart() {
    let cluster = Cluster::builder(3).env("TOKEN_EXPIRY_GRACE", "1s").start().await;
    let dir = tokio::task::spawn_blocking(web_client_dir).await.unwrap();
    let mut node = tokio::process::Command::new("node")
        .args(["--test-reporter=spec", "test/cluster.mjs"])
        .current_dir(dir)
        .env("CYBERHUB_URL", cluster.nginx_url())
        .env("JWT_SECRET", JWT_SECRET)
        .env("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stdin = node.stdin.take().unwrap();
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut output = String::new();
    let mut faults = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(150), lines.next_line())
            .await
            .expect("the client test reports within 150 s")
            .unwrap();
        let Some(line) = line else { break };
        println!("{line}");
        output.push_str(&line);
        output.push('\n');
        let Some(fault) = line.strip_prefix("FAULT ") else { continue };
        match fault.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["stop-replica", replica] => {
                let n: usize = replica.strip_prefix("replica-").and_then(|n| n.parse().ok()).expect("replica-N");
                assert_eq!(cluster.stop_replica(n - 1).await, Some(0), "the drained replica exits 0");
            }
            ["restart-redis"] => {
                cluster.kill_redis().await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                cluster.start_redis().await;
            }
            other => panic!("unknown fault {other:?}"),
        }
        faults.push(fault.to_string());
        stdin.write_all(b"DONE\n").await.unwrap();
    }
    let status = node.wait().await.unwrap();
    assert!(status.success(), "clients/js/test/cluster.mjs failed");
    assert_eq!(faults.len(), 2, "both faults were done: {faults:?}");
    for line in ["pass 1", "fail 0", "skipped 0"] {
        assert!(output.lines().any(|l| l.trim_start_matches(['ℹ', ' ']) == line), "expected `{line}` in the summary");
    }
    cluster.shutdown().await;
}
