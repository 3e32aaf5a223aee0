use serde_json::json;
use std::time::Duration;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends! {
    async fn a_socket_gets_its_balance_on_connect(app) {
        let user = app.known_user().await;
        app.fund(&user, 4.5).await;
        let socket = app.socket(Some(&user.token)).await;
        let snapshot = socket.expect(&format!("balance:updated:{}", user.id)).await;
        assert_eq!(snapshot, json!({ "balance": 4.5, "version": 1 }));
        socket.close().await;

        let fresh = app.new_user();
        let socket = app.socket(Some(&fresh.token)).await;
        assert_eq!(socket.expect(&format!("balance:updated:{}", fresh.id)).await, json!({ "balance": 0.0, "version": 0 }));
        assert_eq!(app.balance(&fresh).await, (0.0, 0), "connecting created the user");
        socket.close().await;
    }

    async fn a_client_with_current_positions_gets_no_snapshot(app) {
        let user = app.known_user().await;
        app.fund(&user, 4.5).await;
        app.fund(&user, 0.5).await;
        let balance = format!("balance:updated:{}", user.id);
        let connect = |positions: serde_json::Value| {
            TestSocket::connect_with_auth(&app.base, Some(json!({ "token": user.token, "positions": positions })))
        };

        // Current: told so, and nothing else (no snapshot before it, nor after: see the live event below).
        let current = connect(json!({ "balance": 2, "inventory": 0 })).await.unwrap();
        assert_eq!(current.until("sync").await, vec![("sync".to_string(), json!({ "recovered": true }))]);
        // Behind: the current balance, then told it was not current.
        let behind = connect(json!({ "balance": 1, "inventory": 7 })).await.unwrap();
        assert_eq!(behind.expect(&balance).await, json!({ "balance": 5.0, "version": 2 }));
        assert_eq!(behind.expect("sync").await, json!({ "recovered": false }));
        // Positions without a balance: the snapshot, not current.
        let empty = connect(json!({})).await.unwrap();
        assert_eq!(empty.expect(&balance).await, json!({ "balance": 5.0, "version": 2 }));
        assert_eq!(empty.expect("sync").await, json!({ "recovered": false }));
        // No positions: today's behaviour, the snapshot and no sync.
        let old = app.socket(Some(&user.token)).await;
        assert_eq!(old.expect(&balance).await, json!({ "balance": 5.0, "version": 2 }));
        // Live events still flow to the recovered socket, and are the first balance it gets; the
        // socket without positions got no sync before this event either.
        app.fund(&user, 1.0).await;
        assert_eq!(current.until(&balance).await, vec![(balance.clone(), json!({ "balance": 6.0, "version": 3 }))]);
        assert_eq!(old.expect_none_before(&["sync"], &balance).await, json!({ "balance": 6.0, "version": 3 }));
        for s in [current, behind, empty, old] {
            s.close().await;
        }
    }

    async fn every_inventory_change_moves_the_inventory_version_by_one(app) {
        let case = app.simple_case(1.0, 0.5).await;
        let user = app.known_user().await;
        app.fund(&user, 1.5).await;
        let me = || async { app.get("/api/me", Some(&user.token)).await.expect(200)["user"].clone() };
        assert_eq!(me().await["inventoryVersion"], 0);
        let socket = app.socket(Some(&user.token)).await;
        let inventory = format!("inventory:updated:{}", user.id);
        let admin = Some(app.admin.token.as_str());

        let opened = app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case["id"] })).await.expect(200).clone();
        assert_eq!(socket.expect(&inventory).await, json!({ "version": 1 }));
        let path = format!("/api/inventory/{}/status", opened["inventoryItemId"].as_str().unwrap());
        app.put(&path, admin, json!({ "status": "withdraw_requested" })).await.expect(200);
        assert_eq!(socket.expect(&inventory).await, json!({ "version": 2 }));
        app.put(&path, admin, json!({ "status": "owned" })).await.expect(200);
        assert_eq!(socket.expect(&inventory).await, json!({ "version": 3 }));
        let claim = json!({ "inventoryItemId": opened["inventoryItemId"] });
        app.post("/api/inventory/claim", Some(&user.token), claim.clone()).await.expect(200);
        assert_eq!(socket.expect(&inventory).await, json!({ "version": 4 }));
        assert_eq!(me().await["inventoryVersion"], 4);

        // Refused changes change nothing: no bump, no event.
        app.post("/api/inventory/claim", Some(&user.token), claim).await.expect_error(409, "not_owned");
        app.put(&path, admin, json!({ "status": "delivered" })).await.expect_error(409, "invalid_transition");
        app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case["id"] })).await.expect(200);
        assert_eq!(socket.expect(&inventory).await, json!({ "version": 5 }));
        // 1.5 + 0.5 - 1 - 1 = 0: the next open is refused, and no inventory event precedes the
        // case change that follows it.
        app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case["id"] })).await.expect_error(422, "insufficient_balance");
        app.reprice(&case, 1.0).await;
        socket.expect_none_before(&[&inventory], "cases:updated").await;
        let me = me().await;
        assert_eq!((me["inventoryVersion"].clone(), me["balance"].clone(), me["balanceVersion"].clone()), (json!(5), json!(0.0), json!(4)));
        socket.close().await;
    }

    async fn a_client_gets_exactly_the_positions_it_lacks(app) {
        let case = app.simple_case(1.0, 0.5).await;
        let user = app.known_user().await;
        app.fund(&user, 2.0).await;
        for _ in 0..2 {
            app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case["id"] })).await.expect(200);
        }
        // Now balance 0.0 at version 3, inventory at version 2.
        let balance = format!("balance:updated:{}", user.id);
        let inventory = format!("inventory:updated:{}", user.id);
        let (token, base, late, sentinel_case) = (&user.token, &app.base, &balance, &case);
        // Everything up to sync, and no balance after it: a case change is the sentinel.
        let arrived = move |positions: serde_json::Value| async move {
            let auth = json!({ "token": token, "positions": positions });
            let socket = TestSocket::connect_with_auth(base, Some(auth)).await.unwrap();
            let events = socket.until("sync").await;
            app.reprice(sentinel_case, 1.0).await;
            socket.expect_none_before(&[late], "cases:updated").await;
            socket.close().await;
            events
        };
        let sync = |recovered: bool| ("sync".to_string(), json!({ "recovered": recovered }));
        let balance_snapshot = (balance.clone(), json!({ "balance": 0.0, "version": 3 }));
        let inventory_hint = (inventory.clone(), json!({ "version": 2 }));

        // Both current: nothing but the word that it is current.
        assert_eq!(arrived(json!({ "balance": 3, "inventory": 2 })).await, vec![sync(true)]);
        // An old inventory position only: the inventory's version, no balance snapshot.
        assert_eq!(arrived(json!({ "balance": 3, "inventory": 1 })).await, vec![inventory_hint.clone(), sync(false)]);
        // No inventory position counts as behind.
        assert_eq!(arrived(json!({ "balance": 3 })).await, vec![inventory_hint.clone(), sync(false)]);
        // An old balance only: the snapshot, no inventory hint.
        assert_eq!(arrived(json!({ "balance": 2, "inventory": 2 })).await, vec![balance_snapshot.clone(), sync(false)]);
        // Both behind: both, then sync.
        assert_eq!(arrived(json!({ "balance": 0, "inventory": 0 })).await, vec![balance_snapshot, inventory_hint, sync(false)]);

        // No positions: today's behaviour, the balance snapshot only and no sync.
        let old = app.socket(Some(&user.token)).await;
        assert_eq!(old.until(&balance).await, vec![(balance.clone(), json!({ "balance": 0.0, "version": 3 }))]);
        app.reprice(&case, 1.0).await;
        old.expect_none_before(&["sync", &inventory], "cases:updated").await;
        old.close().await;
    }

    async fn events_reach_their_user_and_nobody_else(app) {
        let (alice, bob) = (app.known_user().await, app.known_user().await);
        let alice_socket = app.socket(Some(&alice.token)).await;
        let bob_socket = app.socket(Some(&bob.token)).await;
        let anonymous = app.socket(None).await;
        let alice_balance = format!("balance:updated:{}", alice.id);
        let alice_inventory = format!("inventory:updated:{}", alice.id);
        let bob_balance = format!("balance:updated:{}", bob.id);
        alice_socket.expect(&alice_balance).await;
        bob_socket.expect(&bob_balance).await;

        app.fund(&alice, 3.0).await;
        assert_eq!(alice_socket.expect(&alice_balance).await, json!({ "balance": 3.0, "version": 1 }));

        let case = app.simple_case(1.0, 0.75).await;
        let cases_updated = || ("cases:updated".to_string(), serde_json::Value::Null);
        assert_eq!(anonymous.until("cases:updated").await, vec![cases_updated()], "the anonymous socket's first event");
        let opened = app.post("/api/cases/open", Some(&alice.token), json!({ "caseId": case["id"] })).await.expect(200).clone();
        assert_eq!(alice_socket.expect(&alice_balance).await, json!({ "balance": 2.0, "version": 2 }));
        assert_eq!(alice_socket.expect(&alice_inventory).await, json!({ "version": 1 }));

        app.post("/api/inventory/claim", Some(&alice.token), json!({ "inventoryItemId": opened["inventoryItemId"] })).await.expect(200);
        assert_eq!(alice_socket.expect(&alice_balance).await, json!({ "balance": 2.75, "version": 3 }));
        assert_eq!(alice_socket.expect(&alice_inventory).await, json!({ "version": 2 }));

        app.payment(&json!({ "paymentId": "rt-1", "userId": alice.id, "amount": 1, "status": "success" })).await.expect(200);
        assert_eq!(alice_socket.expect(&alice_balance).await, json!({ "balance": 3.75, "version": 4 }));

        // The sentinels: a case change reaches every socket, a credit to bob reaches bob.
        app.reprice(&case, 1.0).await;
        app.fund(&bob, 1.0).await;
        bob_socket.expect_none_before(&[&alice_balance, &alice_inventory], &bob_balance).await;
        assert_eq!(anonymous.until("cases:updated").await, vec![cases_updated()], "nothing but case changes");
        for s in [alice_socket, bob_socket, anonymous] {
            s.close().await;
        }
    }

    async fn spoofed_identify_is_refused(app) {
        let (alice, mallory) = (app.known_user().await, app.known_user().await);
        let socket = app.socket(Some(&mallory.token)).await;
        let (alice_balance, mallory_balance) = (format!("balance:updated:{}", alice.id), format!("balance:updated:{}", mallory.id));
        socket.expect(&mallory_balance).await;
        let ack = socket.emit_with_ack("user:identify", json!({ "userId": alice.id })).await;
        assert_eq!(ack, json!({ "ok": false, "error": "forbidden" }));
        let ack = socket.emit_with_ack("user:identify", json!({ "userId": mallory.id })).await;
        assert_eq!(ack, json!({ "ok": true }));
        app.fund(&alice, 1.0).await;
        app.fund(&mallory, 1.0).await;
        socket.expect_none_before(&[&alice_balance], &mallory_balance).await;

        let anonymous = app.socket(None).await;
        let ack = anonymous.emit_with_ack("user:identify", json!({ "userId": alice.id })).await;
        assert_eq!(ack, json!({ "ok": false, "error": "forbidden" }));
        app.fund(&alice, 1.0).await;
        app.simple_case(1.0, 0.5).await;
        anonymous.expect_none_before(&[&alice_balance], "cases:updated").await;
        socket.close().await;
        anonymous.close().await;
    }

    async fn identify_right_after_connect_is_always_answered(app) {
        // Old clients emit user:identify the moment they read the connect packet. A raw websocket
        // does exactly that, with no client library in between to slow it down.
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let url = format!("{}/socket.io/?EIO=4&transport=websocket", app.base.replace("http://", "ws://"));
        for _ in 0..40 {
            let user = app.new_user();
            let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("websocket connects");
            let (mut tx, mut rx) = ws.split();
            let mut next_text = async || loop {
                match tokio::time::timeout(Duration::from_secs(5), rx.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) => return text.to_string(),
                    Ok(Some(Ok(_))) => continue,
                    other => panic!("no frame within 5 s: {other:?}"),
                }
            };
            assert!(next_text().await.starts_with('0'), "engine.io open packet");
            tx.send(Message::text(format!("40{}", json!({ "token": user.token })))).await.unwrap();
            while !next_text().await.starts_with("40") {}
            tx.send(Message::text(format!("421{}", json!(["user:identify", { "userId": user.id }])))).await.unwrap();
            loop {
                let frame = next_text().await;
                if let Some(ack) = frame.strip_prefix("431") {
                    assert_eq!(serde_json::from_str::<serde_json::Value>(ack).unwrap(), json!([{ "ok": true }]));
                    break;
                }
            }
            let _ = tx.close().await;
        }
    }

    async fn bad_tokens_are_refused_at_connect(app) {
        for token in ["garbage", &cyberhub::auth::JwtKeys::new("another-secret-0123456").issue(uuid::Uuid::new_v4(), cyberhub::domain::Role::User, Duration::from_secs(60))] {
            match TestSocket::connect(&app.base, Some(token)).await {
                Err(ConnectFailure::Refused(message)) => assert!(message.contains("unauthorized"), "{message}"),
                Err(other) => panic!("expected connect_error unauthorized, got {other:?}"),
                Ok(_) => panic!("a bad token connected"),
            }
        }
        let health = app.get("/health", None).await;
        assert_eq!(health.body["clients"], 0);
    }

    async fn health_counts_connected_sockets(app) {
        let user = app.known_user().await;
        let a = app.socket(Some(&user.token)).await;
        let b = app.socket(None).await;
        // The client hears its connect before the server's connect handler has counted it (the
        // handler runs after socketioxide sends the connect packet): poll, don't read once.
        let health = eventually(Duration::from_secs(5), "/health counts both sockets", || async {
            let health = app.get("/health", None).await;
            if health.body["clients"] == 2 { Ok(health) } else { Err(health.body) }
        })
        .await;
        assert_eq!(health.body["websocket"], "active");
        let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("cyberhub_connected_clients_by_auth{auth=\"anonymous\"} 1"), "{metrics}");
        a.close().await;
        b.close().await;
        let mut clients = 2;
        for _ in 0..50 {
            clients = app.get("/health", None).await.body["clients"].as_i64().unwrap();
            if clients == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(clients, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sockets_and_exits_cleanly() {
    let app = spawn_app(Backend::Sqlite).await;
    let user = app.known_user().await;
    let socket = app.socket(Some(&user.token)).await;
    socket.expect(&format!("balance:updated:{}", user.id)).await;
    app.stop().await;
    assert!(app.http.get(app.url("/health")).send().await.is_err(), "the listener is closed");
    app.cleanup().await;
}
