//! Every k6 scenario, tiny, against a real local cluster, so the load-test scripts cannot rot.
//! The figures come from full-size runs (docs/benchmarks.md); this only proves the scripts, their
//! thresholds and the database check still work.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Stops the cluster and drops its database, whether the test passed or not.
struct Cleanup {
    repo: PathBuf,
    dir: PathBuf,
    database: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.repo.join("deploy/local/cluster.sh"))
            .arg("down")
            .env("CLUSTER_DIR", &self.dir)
            .status();
        let _ = Command::new("psql")
            .arg(admin_url())
            .args(["-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database)])
            .status();
    }
}

#[test]
fn every_k6_scenario_passes_its_thresholds_at_smoke_size() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    let dir = std::env::temp_dir().join(format!("cyberhub-loadtest-{}", std::process::id()));
    let database = format!("cyberhub_loadtest_{}", std::process::id());
    let created = Command::new("psql")
        .arg(admin_url())
        .args(["-qc", &format!("CREATE DATABASE {database}")])
        .status()
        .expect("psql is installed (PostgreSQL is required for this test)");
    assert!(created.success(), "could not create the test database");
    let base = admin_url();
    let database_url = format!("{}/{database}", base.rsplit_once('/').map(|(b, _)| b).unwrap_or(&base));
    let _cleanup = Cleanup { repo: repo.clone(), dir: dir.clone(), database };

    let replica_base = free_port();
    let status = Command::new("bash")
        .arg(repo.join("loadtest/run.sh"))
        .arg("smoke")
        .current_dir(&repo)
        .env("CLUSTER_DIR", &dir)
        .env("CLUSTER_DATABASE_URL", &database_url)
        .env("CYBERHUB_BIN", env!("CARGO_BIN_EXE_cyberhub"))
        .env("REPLICAS", "2")
        .env("NGINX_PORT", free_port().to_string())
        .env("REDIS_PORT", free_port().to_string())
        .env("REPLICA_BASE_PORT", replica_base.to_string())
        .env_remove("CYBERHUB_URL")
        .status()
        .expect("bash runs loadtest/run.sh");
    assert!(status.success(), "loadtest/run.sh smoke failed; logs in {}", dir.display());
}

/// The database-only benchmark (loadtest/pgbench/run.sh), tiny: both open shapes run against the
/// real migrations, and every one-call transaction must have written its open.
#[test]
fn the_pgbench_open_comparison_runs_and_every_call_opens() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("bash")
        .arg(repo.join("loadtest/pgbench/run.sh"))
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
