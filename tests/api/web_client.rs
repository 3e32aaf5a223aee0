//! The front ends' client, `cyberhub-client` (clients/js), against a real single node: node's test
//! runner (clients/js/test/*.test.mjs) and the same client in headless Chromium
//! (clients/js/test/browser/).

use crate::helpers::*;

/// Live balance through in-band refreshes, resume, kick and block, paging, typed errors, fairness;
/// `connectAdmin` and the admin calls the console makes (test/admin.test.mjs);
/// the generated types checked against docs/openapi.json; and the browser test (Chromium).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cyberhub_client_on_a_single_node() {
    let app = spawn_app_with(Backend::Sqlite, &[("TOKEN_EXPIRY_GRACE", "1s")]).await;
    let suites =
        ["test/generated.test.mjs", "test/live.test.mjs", "test/admin.test.mjs", "test/browser/browser.test.mjs"];
    run_web_client_tests(&app.base, &suites, 15, &[]).await;
    app.cleanup().await;
}
