//! The official `socket.io-client` from npm, over websocket and over polling, against the real
//! server on PostgreSQL. The suite itself is tests/js/realtime.test.mjs.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_socket_io_client_over_websocket_and_polling() {
    let app = spawn_app(Backend::Postgres).await;
    run_socket_io_client_suite(&app.base).await;
    app.cleanup().await;
}

/// Token expiry and `auth:refresh` on live sockets, with the official client (tests/js/live-sessions.mjs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_socket_io_client_sees_expiry_and_refreshes_in_band() {
    let app = spawn_app_with(Backend::Sqlite, &[("TOKEN_EXPIRY_GRACE", "1s")]).await;
    let output = run_node_tests(&app.base, "tests/js/live-sessions.mjs", &[("TOKEN_EXPIRY_GRACE_S", "1")]).await;
    assert!(output.contains("pass 6") && output.contains("fail 0"), "{output}");
    app.cleanup().await;
}
