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
    let (alice_balance, bob_balance) = (format!("balance:updated:{}", alice.id), format!("balance:updated:{}", bob.id));
    bob_socket.expect(&bob_balance).await;
    let case = app.simple_case(1.0, 0.5).await;
    anonymous.expect("cases:updated").await;

    let answer = app.admin_post(&format!("/api/admin/users/{}/disconnect", alice.id), json!({})).await;
    assert_eq!(answer.expect(200), &json!({ "success": true, "disconnected": 2 }));
    for socket in &alice_sockets {
        assert_eq!(socket.expect("session:ended").await, json!({ "reason": "kicked" }));
        socket.expect("disconnect").await;
    }
    // Nobody else's session ended: a credit to bob, and a case change, come with nothing before them.
    app.fund(&bob, 1.0).await;
    bob_socket.expect_none_before(&["session:ended", "disconnect"], &bob_balance).await;
    app.reprice(&case, 2.0).await;
    anonymous.expect_none_before(&["session:ended", "disconnect"], "cases:updated").await;
    assert_eq!(app.metric("cyberhub_socket_sessions_ended_total", &["kicked"]).await, 2.0);
    assert_eq!(app.metric("cyberhub_connected_clients", &[]).await, 2.0);

    // A kicked player may come straight back (a block keeps them out).
    let back = app.socket(Some(&alice.token)).await;
    back.expect(&alice_balance).await;
    // Kicking a known user with no socket is fine; nothing else is touched.
    let carol = app.known_user().await;
    let answer = app.admin_post(&format!("/api/admin/users/{}/disconnect", carol.id), json!({})).await;
    assert_eq!(answer.expect(200)["disconnected"], json!(0));
    app.fund(&alice, 1.0).await;
    back.expect_none_before(&["session:ended", "disconnect"], &alice_balance).await;
    app.cleanup().await;
}

on_both_backends! {
    async fn kick_refuses_unknown_users_and_non_admins(app) {
        let alice = app.known_user().await;
        let socket = app.socket(Some(&alice.token)).await;
        let balance = format!("balance:updated:{}", alice.id);
        socket.expect(&balance).await;
        app.admin_post(&format!("/api/admin/users/{}/disconnect", Uuid::new_v4()), json!({}))
            .await
            .expect_error(404, "not_found");
        app.admin_post("/api/admin/users/not-a-uuid/disconnect", json!({})).await.expect_error(400, "invalid_id");
        let path = format!("/api/admin/users/{}/disconnect", alice.id);
        app.post(&path, Some(&alice.token), json!({})).await.expect_error(403, "forbidden");
        app.post(&path, None, json!({})).await.expect_error(401, "unauthorized");
        app.fund(&alice, 1.0).await;
        socket.expect_none_before(&["session:ended", "disconnect"], &balance).await;
        assert_eq!(app.metric("cyberhub_socket_sessions_ended_total", &["kicked"]).await, 0.0);
    }
}

on_both_backends! {
    async fn a_block_cuts_http_and_sockets_keeps_payments_and_unblock_restores(app) {
        let (alice, bob) = (app.known_user().await, app.known_user().await);
        let alice_socket = app.socket(Some(&alice.token)).await;
        let bob_socket = app.socket(Some(&bob.token)).await;
        let bob_balance = format!("balance:updated:{}", bob.id);
        bob_socket.expect(&bob_balance).await;
        let path = format!("/api/admin/users/{}/block", alice.id);

        let answer = app.put(&path, Some(&app.admin.token), json!({ "blocked": true, "reason": "  chargeback  " })).await;
        let user = &answer.expect(200)["user"];
        assert_eq!(user["id"], json!(alice.id));
        assert_eq!((user["blocked"].clone(), user["blockedReason"].clone()), (json!(true), json!("chargeback")));
        assert!(user["blockedAt"].is_string(), "{user}");
        assert_eq!((user["balance"].clone(), user["balanceVersion"].clone()), (json!(0.0), json!(0)));
        assert_eq!(alice_socket.expect("session:ended").await, json!({ "reason": "blocked" }));
        alice_socket.expect("disconnect").await;
        app.fund(&bob, 1.0).await;
        bob_socket.expect_none_before(&["session:ended", "disconnect"], &bob_balance).await;

        // Every authenticated call of hers answers 403 blocked; her sockets are refused.
        app.get("/api/me", Some(&alice.token)).await.expect_error(403, "blocked");
        app.get("/api/inventory", Some(&alice.token)).await.expect_error(403, "blocked");
        match TestSocket::connect(&app.base, Some(&alice.token)).await {
            Err(ConnectFailure::Refused(message)) => assert!(message.contains("blocked"), "{message}"),
            Err(other) => panic!("refused for another reason: {other:?}"),
            Ok(_) => panic!("a blocked player's socket connected"),
        }
        assert_eq!(app.metric("cyberhub_socket_connects_total", &["blocked"]).await, 1.0);
        app.get("/api/me", Some(&bob.token)).await.expect(200);

        // Money is never lost: her payment is recorded and credited, and admins still act on her.
        let payment = json!({ "paymentId": format!("blocked-{}", alice.id), "userId": alice.id, "amount": 2.5, "status": "success" });
        app.payment(&payment).await.expect(200);
        app.fund(&alice, 1.0).await;
        let view = app.get(&format!("/api/admin/users/{}", alice.id), Some(&app.admin.token)).await;
        let user = &view.expect(200)["user"];
        assert_eq!((user["balance"].clone(), user["balanceVersion"].clone(), user["blocked"].clone()), (json!(3.5), json!(2), json!(true)));
        let ledger = app.get(&format!("/api/admin/users/{}/transactions", alice.id), Some(&app.admin.token)).await;
        assert_eq!(ledger.expect(200)["transactions"].as_array().unwrap().len(), 2);

        // Unblocked: everything is back.
        let answer = app.put(&path, Some(&app.admin.token), json!({ "blocked": false })).await;
        let user = &answer.expect(200)["user"];
        assert_eq!((user["blocked"].clone(), user["blockedReason"].clone(), user["blockedAt"].clone()), (json!(false), json!(null), json!(null)));
        assert_eq!(app.balance(&alice).await, (3.5, 2));
        let back = app.socket(Some(&alice.token)).await;
        assert_eq!(back.expect(&format!("balance:updated:{}", alice.id)).await, json!({ "balance": 3.5, "version": 2 }));
        assert_eq!(app.metric("cyberhub_socket_sessions_ended_total", &["blocked"]).await, 1.0);
    }

    async fn block_refuses_bad_input_unknown_users_and_non_admins(app) {
        let alice = app.known_user().await;
        let path = format!("/api/admin/users/{}/block", alice.id);
        let admin = Some(app.admin.token.as_str());
        app.put(&format!("/api/admin/users/{}/block", Uuid::new_v4()), admin, json!({ "blocked": true })).await.expect_error(404, "not_found");
        app.get(&format!("/api/admin/users/{}", Uuid::new_v4()), admin).await.expect_error(404, "not_found");
        for body in [json!({}), json!({ "blocked": "yes" }), json!({ "blocked": true, "reason": "x".repeat(201) }), json!({ "blocked": true, "extra": 1 })] {
            app.put(&path, admin, body).await.expect_error(400, "invalid_body");
        }
        app.put(&path, Some(&alice.token), json!({ "blocked": true })).await.expect_error(403, "forbidden");
        app.get(&format!("/api/admin/users/{}", alice.id), Some(&alice.token)).await.expect_error(403, "forbidden");
        // Nothing changed.
        app.get("/api/me", Some(&alice.token)).await.expect(200);
        let view = app.get(&format!("/api/admin/users/{}", alice.id), admin).await;
        assert_eq!(view.expect(200)["user"]["blocked"], json!(false));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_is_online_on_a_single_node() {
    let app = spawn_app(Backend::Sqlite).await;
    let (alice, bob) = (app.known_user().await, app.known_user().await);
    let _sockets = [
        app.socket(Some(&alice.token)).await,
        app.socket(Some(&alice.token)).await,
        app.socket(Some(&bob.token)).await,
        app.socket(None).await,
    ];
    let admin = Some(app.admin.token.as_str());
    let online = app.get("/api/admin/online", admin).await;
    let body = online.expect(200);
    assert_eq!((body["sockets"].clone(), body["users"].clone()), (json!(4), json!(2)), "{body}");
    assert_eq!(body["replicas"].as_array().unwrap().len(), 1);
    let sessions = app.get(&format!("/api/admin/users/{}/sessions", alice.id), admin).await;
    let list = sessions.expect(200)["sessions"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["transport"], json!("websocket"));
    assert_eq!(list[0]["clientIp"], json!("127.0.0.1"));
    assert!(list[0]["socketId"].is_string() && list[0]["connectedAt"].is_string());
    app.get(&format!("/api/admin/users/{}/sessions", Uuid::new_v4()), admin).await.expect_error(404, "not_found");
    app.get("/api/admin/online", Some(&alice.token)).await.expect_error(403, "forbidden");
    // The gauge is refreshed every 2 s.
    eventually(Duration::from_secs(5), "cyberhub_online_users is 2", || async {
        let users = app.metric("cyberhub_online_users", &[]).await;
        if users == 2.0 {
            Ok(())
        } else {
            Err(users)
        }
    })
    .await;
    app.cleanup().await;
}

/// An admin who blocked their own account could not unblock it (every call of theirs would answer
/// 403 `blocked`), so the block is refused; a `reason` counts the characters sent, as the
/// contract's `maxLength` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cannot_block_themselves() {
    let app = &crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    let admin = Some(app.admin.token.as_str());
    app.get("/api/me", admin).await.expect(200);
    let own = format!("/api/admin/users/{}/block", app.admin.id);
    app.put(&own, admin, json!({ "blocked": true })).await.expect_error(409, "cannot_block_self");
    assert_eq!(app.put(&own, admin, json!({ "blocked": false })).await.expect(200)["user"]["blocked"], json!(false));
    app.get("/api/me", admin).await.expect(200);

    let alice = app.known_user().await;
    let path = format!("/api/admin/users/{}/block", alice.id);
    let padded = format!("{}  ", "x".repeat(199));
    app.put(&path, admin, json!({ "blocked": true, "reason": padded })).await.expect_error(400, "invalid_body");
    let answer = app.put(&path, admin, json!({ "blocked": true, "reason": null })).await;
    assert_eq!(answer.expect(200)["user"]["blockedReason"], json!(null));
    app.cleanup().await;
}
