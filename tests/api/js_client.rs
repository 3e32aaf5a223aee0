//! The official `socket.io-client` from npm, over websocket and over polling, against the real
//! server on PostgreSQL. The suite itself is tests/js/realtime.test.mjs.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_socket_io_client_over_websocket_and_polling() {
    let app = spawn_app(Backend::Postgres).await;
    run_socket_io_client_suite(&app.base).await;
    app.cleanup().await;
}
