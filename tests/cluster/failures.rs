use futures::future::join_all;
use serde_json::json;
use std::time::Duration;

use crate::helpers::{eventually, Api, Cluster, TestSocket, TestUser};

async fn wait_for_redis(cluster: &Cluster, replica: usize, state: &str) {
    eventually(Duration::from_secs(15), &format!("replica {replica} reports redis {state}"), || async {
        let health = cluster.health(replica).await;
        if health["redis"] == state {
            Ok(())
        } else {
            Err(health)
        }
    })
    .await;
}

/// Waits for the balance event carrying `version`, skipping older ones.
async fn expect_version(socket: &TestSocket, user: &TestUser, version: i64) -> serde_json::Value {
    let event = format!("balance:updated:{}", user.id);
    loop {
        let payload = socket.expect(&event).await;
        if payload["version"].as_i64().unwrap() >= version {
            return payload;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_heals_itself_and_clients_end_true() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (Api::new(&cluster.replica_url(0)), Api::new(&cluster.replica_url(1)));
    let user = a.known_user().await;
    let on_a = TestSocket::connect(&a.base, Some(&user.token)).await.unwrap();
    let on_b = TestSocket::connect(&b.base, Some(&user.token)).await.unwrap();
    a.fund(&user, 1.0).await;
    expect_version(&on_b, &user, 1).await;

    cluster.kill_redis().await;
    wait_for_redis(&cluster, 0, "down").await;
    assert_eq!(a.get("/ready", None).await.status, 503, "not ready without the bus");
    // HTTP keeps working while Redis is down, and no emit hangs: each request answers promptly.
    for _ in 0..3 {
        let response = tokio::time::timeout(Duration::from_secs(3), a.fund(&user, 1.0)).await;
        response.expect("a balance change completes while Redis is down");
    }
    assert_eq!(
        expect_version(&on_a, &user, 4).await,
        json!({ "balance": 4.0, "version": 4 }),
        "local sockets still hear"
    );

    cluster.start_redis().await;
    wait_for_redis(&cluster, 0, "up").await;
    wait_for_redis(&cluster, 1, "up").await;
    // The replica that missed the events resynced its socket: refetch hints, then the true balance.
    on_b.expect("cases:updated").await;
    on_b.expect(&format!("inventory:updated:{}", user.id)).await;
    assert_eq!(expect_version(&on_b, &user, 4).await, json!({ "balance": 4.0, "version": 4 }));
    // And the bus carries events again.
    a.fund(&user, 1.0).await;
    assert_eq!(expect_version(&on_b, &user, 5).await, json!({ "balance": 5.0, "version": 5 }));
    let metrics = b.http.get(b.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("cyberhub_bus_resubscribes_total 1"), "{metrics}");
    cluster.shutdown().await;
}

async fn count_opens(api: &Api, user: &TestUser) -> usize {
    let path = format!("/api/admin/users/{}/transactions", user.id);
    let rows = api.all_pages(&path, Some(&api.admin.token), "transactions").await;
    rows.iter().filter(|r| r["kind"] == "case_open").count()
}

/// An open is one statement on PostgreSQL, and PostgreSQL finishes (and commits) a statement
/// whose client has died: opens sent by a killed replica can land a moment after the kill. Waits
/// until the balance has stopped moving, so the checks below read one settled state.
async fn wait_until_settled(api: &Api, user: &TestUser) {
    let mut last = api.balance(user).await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = api.balance(user).await;
        if now == last {
            return;
        }
        last = now;
    }
    panic!("the balance kept changing for 5 s after the kill: {last:?}");
}

/// The ledger and inventory of a user agree with the balance: nothing was half-done.
async fn assert_consistent(api: &Api, user: &TestUser) {
    let (balance, version) = api.balance(user).await;
    let path = format!("/api/admin/users/{}/transactions", user.id);
    let rows = api.all_pages(&path, Some(&api.admin.token), "transactions").await;
    let cents: i64 = rows.iter().map(|r| (r["amount"].as_f64().unwrap() * 100.0).round() as i64).sum();
    assert_eq!(cents, (balance * 100.0).round() as i64, "the ledger sums to the balance");
    assert_eq!(rows.len() as i64, version, "one ledger row per version");
    let opens = rows.iter().filter(|r| r["kind"] == "case_open").count();
    let inventory = api.all_pages("/api/inventory", Some(&user.token), "items").await.len();
    assert_eq!(opens, inventory, "every paid open has its item");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_drained_replicas_lose_nothing() {
    let cluster = Cluster::start(3).await;
    let nginx = Api::new(&cluster.nginx_url());
    let direct = Api::new(&cluster.replica_url(1));
    let user = nginx.known_user().await;
    let case = nginx.simple_case(0.5, 0.25).await;
    nginx.fund(&user, 100.0).await;

    // SIGKILL replica 2 while opens are in flight on it.
    // Requests cut off by the kill fail on the client; what matters is what the database holds.
    let opens = join_all((0..20).map(|_| {
        direct
            .http
            .post(direct.url("/api/cases/open"))
            .bearer_auth(&user.token)
            .json(&json!({ "caseId": case["id"] }))
            .send()
    }));
    // cluster.sh itself takes some tens of milliseconds to start and find the pid: the opens
    // are on their way by the time the SIGKILL lands.
    let kill = cluster.kill_replica(1);
    let (_, ()) = tokio::join!(opens, kill);
    wait_until_settled(&nginx, &user).await;
    assert_consistent(&nginx, &user).await;

    // Its players reconnect through nginx and keep receiving events.
    let socket = TestSocket::connect(&nginx.base, Some(&user.token)).await.unwrap();
    let (_, version) = nginx.balance(&user).await;
    expect_version(&socket, &user, version).await;
    nginx.fund(&user, 1.0).await;
    expect_version(&socket, &user, version + 1).await;

    // SIGTERM replica 3 with requests in flight. Requests it had not accepted fail on the client;
    // every request it accepted must be answered: each committed open has its 200.
    let third = Api::new(&cluster.replica_url(2));
    let on_third = TestSocket::connect(&third.base, Some(&user.token)).await.unwrap();
    let opens_before = count_opens(&nginx, &user).await;
    let requests = join_all((0..20).map(|_| async {
        third
            .http
            .post(third.url("/api/cases/open"))
            .bearer_auth(&user.token)
            .json(&json!({ "caseId": case["id"] }))
            .send()
            .await
    }));
    let drain = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        cluster.stop_replica(2).await
    };
    let (results, code) = tokio::join!(requests, drain);
    assert_eq!(code, Some(0), "a drained replica exits 0");
    let answered = results.iter().filter(|r| r.as_ref().is_ok_and(|r| r.status() == 200)).count();
    let failed = results.iter().filter(|r| r.is_err()).count();
    println!("drain: {answered} opens answered 200, {failed} never reached the replica");
    assert_eq!(count_opens(&nginx, &user).await - opens_before, answered, "no committed open lost its answer");
    drop(on_third);
    assert_consistent(&nginx, &user).await;
    let (_, version) = nginx.balance(&user).await;
    nginx.fund(&user, 1.0).await;
    expect_version(&socket, &user, version + 1).await;

    cluster.start_replica(1).await;
    assert_eq!(cluster.health(1).await["redis"], "up");
    cluster.shutdown().await;
}

/// Redis drops a subscriber that falls past its output-buffer limit: the replica must treat that
/// like an outage (reconnect, resubscribe, resync), never stay deaf.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_cut_off_by_redis_comes_back() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (Api::new(&cluster.replica_url(0)), Api::new(&cluster.replica_url(1)));
    let user = a.known_user().await;
    let on_b = TestSocket::connect(&b.base, Some(&user.token)).await.unwrap();
    expect_version(&on_b, &user, 0).await;
    let killed = std::process::Command::new("redis-cli")
        .args(["-p", &cluster.redis_port.to_string(), "CLIENT", "KILL", "TYPE", "pubsub"])
        .env("REDISCLI_AUTH", crate::helpers::REDIS_PASSWORD)
        .output()
        .expect("redis-cli runs");
    assert!(
        String::from_utf8_lossy(&killed.stdout).trim().parse::<u32>().unwrap_or(0) >= 2,
        "both subscribers cut off"
    );
    on_b.expect("cases:updated").await; // the resync after resubscribing
    a.fund(&user, 2.0).await;
    assert_eq!(expect_version(&on_b, &user, 1).await, json!({ "balance": 2.0, "version": 1 }));
    let metrics = b.http.get(b.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("cyberhub_bus_resubscribes_total 1"), "{metrics}");
    cluster.shutdown().await;
}
