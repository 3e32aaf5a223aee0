//! Every k6 scenario, tiny, against a real local cluster, so the load-test scripts cannot rot.
//! The figures come from full-size runs (docs/benchmarks.md); this only proves the scripts, their
//! thresholds and the database check still work.

use std::process::Command;

mod helpers;

use helpers::{admin_url, repo, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_k6_scenario_passes_its_thresholds_at_smoke_size() {
    // The test kit starts the cluster (free ports, a fresh database, torn down whatever happens);
    // run.sh finds it up in CLUSTER_DIR and reads its env file.
    let cluster = Cluster::start(2).await;
    let status = tokio::process::Command::new("bash")
        .arg(repo().join("loadtest/run.sh"))
        .arg("smoke")
        .current_dir(repo())
        .env("CLUSTER_DIR", &cluster.dir)
        .env_remove("CYBERHUB_URL")
        .status()
        .await
        .expect("bash runs loadtest/run.sh");
    assert!(status.success(), "loadtest/run.sh smoke failed");
    cluster.shutdown().await;
}

/// The database-only benchmark (loadtest/pgbench/run.sh), tiny: both open shapes run against the
/// real migrations, and every one-call transaction must have written its open.
#[test]
fn the_pgbench_open_comparison_runs_and_every_call_opens() {
    let output = Command::new("bash")
        .arg(repo().join("loadtest/pgbench/run.sh"))
        .args(["2", "1", "1"])
        .env("TEST_DATABASE_URL", admin_url())
        .output()
        .expect("bash runs loadtest/pgbench/run.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    for shape in ["locking-open", "one-call-open"] {
        assert!(
            stdout.lines().any(|line| line.contains(&format!(" {shape} ")) && line.contains(" opens)")),
            "{stdout}"
        );
    }
}
