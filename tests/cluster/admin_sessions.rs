//! Admin control of live sessions across replicas (issue 11): a kick or a block reaches the
//! user's sockets on every replica within a second and no one else's; who is online, cluster-wide.

use serde_json::json;
use std::time::{Duration, Instant};

use crate::helpers::{eventually, run_node_tests, Api, Cluster, TestSocket};

/// Waits for `session:ended` on each socket (all waited for at once) and returns each latency
/// from `since`, asserting the reason.
async fn ended_within(sockets: &[TestSocket], since: Instant, reason: &str) -> Vec<Duration> {
    let waits = sockets.iter().map(|socket| async move {
        let payload = socket.expect("session:ended").await;
        let at = since.elapsed();
        assert_eq!(payload, json!({ "reason": reason }));
        socket.expect("disconnect").await;
        at
    });
    futures::future::join_all(waits).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_reaches_the_users_sockets_on_every_replica_within_a_second() {
    let cluster = Cluster::start(3).await;
    let apis = [0, 1, 2].map(|i| Api::new(&cluster.replica_url(i)));
    let (alice, bob) = (apis[0].known_user().await, apis[0].known_user().await);
    let mut alice_sockets = Vec::new();
    let mut bob_sockets = Vec::new();
    for api in &apis {
        alice_sockets.push(TestSocket::connect(&api.base, Some(&alice.token)).await.unwrap());
        bob_sockets.push(TestSocket::connect(&api.base, Some(&bob.token)).await.unwrap());
    }
    let bob_balance = format!("balance:updated:{}", bob.id);
    for (alice_socket, bob_socket) in alice_sockets.iter().zip(&bob_sockets) {
        alice_socket.expect(&format!("balance:updated:{}", alice.id)).await;
        bob_socket.expect(&bob_balance).await;
    }

    let started = Instant::now();
    let answer = apis[0].admin_post(&format!("/api/admin/users/{}/disconnect", alice.id), json!({})).await;
    assert_eq!(answer.expect(200), &json!({ "success": true, "disconnected": 1 }));
    let latencies = ended_within(&alice_sockets, started, "kicked").await;
    eprintln!("kick: admin request start on replica-1 → session:ended at the socket on replica-1/2/3: {latencies:?}");
    assert!(latencies.iter().all(|l| *l < Duration::from_secs(1)), "within 1 s: {latencies:?}");

    // Bob's sockets were not touched. The sentinel, a credit to bob, is made on the replica that
    // published the kick, so it follows the kick on the same path to every replica: replica-1's
    // own sockets directly, the others' through its one ordered stream of bus messages.
    apis[0].fund(&bob, 1.0).await;
    for socket in &bob_sockets {
        socket.expect_none_before(&["session:ended", "disconnect"], &bob_balance).await;
    }
    for i in 0..3 {
        assert_eq!(
            cluster.metric(i, "cyberhub_socket_sessions_ended_total{reason=\"kicked\"}").await,
            1.0,
            "replica {i}"
        );
    }

    // The same with the official client, over websocket and over polling.
    let urls: Vec<String> = (0..3).map(|i| cluster.replica_url(i)).collect();
    run_node_tests(&urls[0], "tests/js/admin-sessions.mjs", &[("REPLICA_URLS", &urls.join(" "))]).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_reaches_every_replica_and_an_unblock_restores_everywhere() {
    let cluster = Cluster::start(3).await;
    let apis = [0, 1, 2].map(|i| Api::new(&cluster.replica_url(i)));
    let (alice, bob) = (apis[0].known_user().await, apis[0].known_user().await);
    let mut alice_sockets = Vec::new();
    let mut bob_sockets = Vec::new();
    for api in &apis {
        // Every replica has her cached as not blocked: the block must invalidate that.
        api.get("/api/me", Some(&alice.token)).await.expect(200);
        alice_sockets.push(TestSocket::connect(&api.base, Some(&alice.token)).await.unwrap());
        bob_sockets.push(TestSocket::connect(&api.base, Some(&bob.token)).await.unwrap());
    }
    let bob_balance = format!("balance:updated:{}", bob.id);
    for (alice_socket, bob_socket) in alice_sockets.iter().zip(&bob_sockets) {
        alice_socket.expect(&format!("balance:updated:{}", alice.id)).await;
        bob_socket.expect(&bob_balance).await;
    }

    let path = format!("/api/admin/users/{}/block", alice.id);
    let started = Instant::now();
    apis[1].put(&path, Some(&apis[1].admin.token), json!({ "blocked": true, "reason": "fraud" })).await.expect(200);
    let latencies = ended_within(&alice_sockets, started, "blocked").await;
    eprintln!("block: admin request start on replica-2 → session:ended at the socket on replica-1/2/3: {latencies:?}");
    assert!(latencies.iter().all(|l| *l < Duration::from_secs(1)), "within 1 s: {latencies:?}");
    for (i, api) in apis.iter().enumerate() {
        api.get("/api/me", Some(&alice.token)).await.expect_error(403, "blocked");
        assert!(TestSocket::connect(&api.base, Some(&alice.token)).await.is_err(), "socket refused on replica {i}");
        api.get("/api/me", Some(&bob.token)).await.expect(200);
    }
    // Bob's sockets were not touched: a credit to bob made where the block was published
    // follows it on the same path (see the kick test).
    apis[1].fund(&bob, 1.0).await;
    for socket in &bob_sockets {
        socket.expect_none_before(&["session:ended", "disconnect"], &bob_balance).await;
    }

    // Her payment, on another replica, is credited.
    let payment = json!({ "paymentId": "blocked-cluster", "userId": alice.id, "amount": 4, "status": "success" });
    apis[2].payment(&payment).await.expect(200);
    let view = apis[0].get(&format!("/api/admin/users/{}", alice.id), Some(&apis[0].admin.token)).await;
    let user = &view.expect(200)["user"];
    assert_eq!(
        (user["balance"].clone(), user["blocked"].clone(), user["blockedReason"].clone()),
        (json!(4.0), json!(true), json!("fraud"))
    );

    apis[0].put(&path, Some(&apis[0].admin.token), json!({ "blocked": false })).await.expect(200);
    for (i, api) in apis.iter().enumerate() {
        let socket = eventually(Duration::from_secs(5), &format!("alice connects to replica {i} again"), || async {
            TestSocket::connect(&api.base, Some(&alice.token)).await.map_err(|failure| format!("{failure:?}"))
        })
        .await;
        assert_eq!(api.balance(&alice).await, (4.0, 1));
        socket.expect(&format!("balance:updated:{}", alice.id)).await;
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_is_online_spans_replicas_and_drops_a_killed_one() {
    let cluster = Cluster::start(3).await;
    let apis = [0, 1, 2].map(|i| Api::new(&cluster.replica_url(i)));
    let (alice, bob) = (apis[0].known_user().await, apis[0].known_user().await);
    let mut sockets = Vec::new();
    for api in &apis {
        sockets.push(TestSocket::connect(&api.base, Some(&alice.token)).await.unwrap());
    }
    sockets.push(TestSocket::connect(&apis[2].base, Some(&bob.token)).await.unwrap());
    let admin = Some(apis[0].admin.token.as_str());
    let body = eventually(Duration::from_secs(5), "4 sockets on 3 replicas online", || async {
        let body = apis[0].get("/api/admin/online", admin).await.expect(200).clone();
        if body["sockets"] == json!(4) && body["replicas"].as_array().unwrap().len() == 3 {
            Ok(body)
        } else {
            Err(body)
        }
    })
    .await;
    assert_eq!((body["sockets"].clone(), body["users"].clone()), (json!(4), json!(2)), "{body}");
    let sessions = apis[1].get(&format!("/api/admin/users/{}/sessions", alice.id), admin).await;
    let list = sessions.expect(200)["sessions"].as_array().unwrap().clone();
    let mut replicas: Vec<String> = list.iter().map(|s| s["replica"].as_str().unwrap().to_string()).collect();
    replicas.sort();
    assert_eq!(replicas, ["replica-1", "replica-2", "replica-3"], "{list:?}");

    cluster.kill_replica(2).await;
    let killed = Instant::now();
    let body = eventually(Duration::from_secs(10), "the killed replica drops out", || async {
        let body = apis[0].get("/api/admin/online", admin).await.expect(200).clone();
        if body["replicas"].as_array().unwrap().len() == 2 {
            Ok(body)
        } else {
            Err(body)
        }
    })
    .await;
    assert_eq!((body["sockets"].clone(), body["users"].clone()), (json!(2), json!(1)), "{body}");
    eprintln!("online: a SIGKILLed replica dropped out after {:?}", killed.elapsed());
    let list =
        apis[0].get(&format!("/api/admin/users/{}/sessions", alice.id), admin).await.expect(200)["sessions"].clone();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    cluster.shutdown().await;
}
