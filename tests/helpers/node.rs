//! The official npm `socket.io-client` (tests/js), run by node against a server.

use super::{repo, JWT_SECRET, WEBHOOK_SECRET};

/// Runs the npm `socket.io-client` suite (tests/js) against `base`, over websocket and polling,
/// installing its node_modules on first use. Returns its output; fails the test if it failed.
pub async fn run_socket_io_client_suite(base: &str) -> String {
    run_node_tests(base, "tests/js/", &[]).await
}

/// Runs `node --test <target>` with the test secrets, `CYBERHUB_URL=base` and `env`; the npm
/// packages are installed with `npm ci` on first use. Fails the test if the suite failed, and
/// checks that it ran over both transports.
pub async fn run_node_tests(base: &str, target: &str, env: &[(&str, &str)]) -> String {
    let stdout = run_node_test_file(base, target, env).await;
    assert!(stdout.contains("websocket") && stdout.contains("polling"), "both transports ran");
    assert!(!stdout.contains("Session ID unknown"));
    stdout
}

/// `node --test <target>` as `run_node_tests` runs it, without the transport checks (the
/// browser test, tests/js/console.mjs). Returns its output; fails the test if it failed.
pub async fn run_node_test_file(base: &str, target: &str, env: &[(&str, &str)]) -> String {
    use std::process::Command;
    let root = repo();
    let js = root.join("tests/js");
    if !js.join("node_modules/.package-lock.json").exists()
        || modified(&js.join("package-lock.json")) > modified(&js.join("node_modules/.package-lock.json"))
    {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&js)
            .status()
            .expect("npm is installed (Node.js is required for this test)");
        assert!(status.success(), "npm ci failed in {}", js.display());
    }
    let base = base.to_string();
    let target = target.to_string();
    let suite = target.clone();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=spec", &target])
            .current_dir(root)
            .envs(env)
            .env("CYBERHUB_URL", base)
            .env("JWT_SECRET", JWT_SECRET)
            .env("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the node suite {suite} failed");
    stdout
}

fn modified(path: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// clients/js (the `cyberhub-client` package): `npm ci` when its node_modules are missing, then
/// built (tsc) once per test binary, so the tests always run the current sources.
pub fn web_client_dir() -> std::path::PathBuf {
    use std::process::Command;
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let dir = repo().join("clients/js");
    BUILT.get_or_init(|| {
        if !dir.join("node_modules/socket.io-client").exists() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("npm is installed (Node.js is required for this test)");
            assert!(status.success(), "npm ci failed in {}", dir.display());
        }
        let status = Command::new("node").arg("scripts/build.mjs").current_dir(&dir).status().expect("node runs");
        assert!(status.success(), "building clients/js failed");
    });
    dir
}

/// Runs `node --test <targets>` (files under clients/js) against `base` with the test secrets and
/// `env`; fails the test unless exactly `expected` tests ran and all passed (none skipped).
pub async fn run_web_client_tests(base: &str, targets: &[&str], expected: usize, env: &[(&str, &str)]) -> String {
    let dir = tokio::task::spawn_blocking(web_client_dir).await.unwrap();
    let mut command = tokio::process::Command::new("node");
    command
        .args(["--test", "--test-reporter=spec"])
        .args(targets)
        .current_dir(dir)
        .env("CYBERHUB_URL", base)
        .env("JWT_SECRET", JWT_SECRET)
        .env("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().await.expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the cyberhub-client tests failed ({targets:?})");
    for line in [format!("pass {expected}"), "fail 0".into(), "skipped 0".into(), "todo 0".into()] {
        assert!(stdout.lines().any(|l| l.trim_start_matches(['ℹ', ' ']) == line), "expected `{line}` in the summary");
    }
    stdout
}
