//! Admin control of live sessions (issue 11): kick, block, who is online, on one node. The
//! cross-replica half is in tests/cluster/sessions.rs.

use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

use crate::helpers::*;
use crate::on_both_backends;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_ends_every_socket_of_the_user_and_no_other() {
    let app = spawn_app(Backend::Sqlite).await;
    let (alice, bob) = (app.known_user().await, app.known_user().await);
    let alice_sockets = [app.socket(Some(&alice.token)).await, app.socket(Some(&alice.token)).await];
    let bob_socket = app.socket(Some(&bob.token)).await;
    let anonymous = app.socket(None).await;

    let answer = app.admin_post(&format!("/api/admin/users/{}/disconnect", alice.id), json!({})).await;
    assert_eq!(answer.expect(200), &json!({ "success": true, "disconnected": 2 }));
    for socket in &alice_sockets {
        assert_eq!(socket.expect("session:ended").await, json!({ "reason": "kicked" }));
        socket.expect("disconnect").await;
    }
    for socket in [&bob_socket, &anonymous] {
        socket.expect_none("session:ended", Duration::from_millis(300)).await;
    }
    app.fund(&bob, 1.0).await;
    bob_socket.expect(&format!("balance:updated:{}", bob.id)).await;
    assert_eq!(app.metric("cyberhub_socket_sessions_ended_total", &["kicked"]).await, 2.0);
    assert_eq!(app.metric("cyberhub_connected_clients", &[]).await, 2.0);

    // A kicked player may come straight back (a block keeps them out).
    let back = app.socket(Some(&alice.token)).await;
    back.expect(&format!("balance:updated:{}", alice.id)).await;
    // Kicking a known user with no socket is fine; nothing else is touched.
    let carol = app.known_user().await;
    let answer = app.admin_post(&format!("/api/admin/users/{}/disconnect", carol.id), json!({})).await;
    assert_eq!(answer.expect(200)["disconnected"], json!(0));
    back.expect_none("session:ended", Duration::from_millis(200)).await;
    app.cleanup().await;
}

on_both_backends! {
    async fn kick_refuses_unknown_users_and_non_admins(app) {
        let alice = app.known_user().await;
        let socket = app.socket(Some(&alice.token)).await;
        app.admin_post(&format!("/api/admin/users/{}/disconnect", Uuid::new_v4()), json!({}))
            .await
            .expect_error(404, "not_found");
        app.admin_post("/api/admin/users/not-a-uuid/disconnect", json!({})).await.expect_error(400, "invalid_id");
        let path = format!("/api/admin/users/{}/disconnect", alice.id);
        app.post(&path, Some(&alice.token), json!({})).await.expect_error(403, "forbidden");
        app.post(&path, None, json!({})).await.expect_error(401, "unauthorized");
        socket.expect_none("session:ended", Duration::from_millis(300)).await;
        assert_eq!(app.metric("cyberhub_socket_sessions_ended_total", &["kicked"]).await, 0.0);
    }
}
