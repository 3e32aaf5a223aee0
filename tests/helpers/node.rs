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
