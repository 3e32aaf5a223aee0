//! The official `socket.io-client` from npm, over websocket and over polling, against the real
//! server on PostgreSQL. The suite itself is tests/js/realtime.test.mjs.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;

fn ensure_node_modules(dir: &Path) {
    if dir.join("node_modules/socket.io-client").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm is installed (Node.js is required for this test)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_socket_io_client_over_websocket_and_polling() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    ensure_node_modules(&root.join("tests/js"));
    let app = spawn_app(Backend::Postgres).await;
    let base = app.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=spec", "tests/js/"])
            .current_dir(root)
            .env("CYBERHUB_URL", base)
            .env("JWT_SECRET", JWT_SECRET)
            .env("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the socket.io-client suite failed");
    assert!(stdout.contains("websocket") && stdout.contains("polling"), "both transports ran");
    app.cleanup().await;
}
