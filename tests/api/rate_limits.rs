use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_are_limited_per_user_with_retry_after() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMITS", "on"), ("RATE_LIMIT_OPENS", "2/m")]).await;
    let case = app.simple_case(1.0, 1.0).await;
    let (alice, bob) = (app.known_user().await, app.known_user().await);
    app.fund(&alice, 10.0).await;
    app.fund(&bob, 10.0).await;
    let body = json!({ "caseId": case["id"] });
    let open = |token: String| {
        let body = body.clone();
        let app = &app;
        async move { app.post("/api/cases/open", Some(&token), body).await }
    };
    open(alice.token.clone()).await.expect(200);
    open(alice.token.clone()).await.expect(200);
    let limited = open(alice.token.clone()).await;
    limited.expect_error(429, "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(app.balance(&alice).await, (8.0, 3), "a refused open costs nothing");
    open(bob.token.clone()).await.expect(200);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_are_limited_per_client_ip() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMITS", "on"), ("RATE_LIMIT_ANONYMOUS", "3/m")]).await;
    let from = |ip: &'static str| app.http.get(app.url("/api/cases")).header("x-forwarded-for", ip).send();
    for _ in 0..3 {
        assert_eq!(from("203.0.113.1").await.unwrap().status(), 200);
    }
    let limited = from("203.0.113.1").await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(from("203.0.113.2").await.unwrap().status(), 200, "another client behind the proxy has its own bucket");
    assert_eq!(app.get("/health", None).await.status, 200, "probes are never limited");
    let user = app.known_user().await;
    assert_eq!(app.get("/api/cases", Some(&user.token)).await.status, 200, "authenticated requests are not anonymous");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_connects_and_webhooks_are_limited_per_ip() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("RATE_LIMITS", "on"), ("RATE_LIMIT_SOCKET_CONNECTS", "2/m"), ("RATE_LIMIT_WEBHOOK", "1/m")],
    )
    .await;
    let first = app.socket(None).await;
    let second = app.socket(None).await;
    match TestSocket::connect(&app.base, None).await {
        Err(ConnectFailure::Refused(message)) => assert!(message.contains("rate_limited"), "{message}"),
        other => panic!("expected a refused connect, got {:?}", other.map(|_| "connected")),
    }
    first.close().await;
    second.close().await;

    let user = app.known_user().await;
    let body = json!({ "paymentId": "rl-1", "userId": user.id, "amount": 1, "status": "success" });
    app.payment(&body).await.expect(200);
    app.payment(&body).await.expect_error(429, "rate_limited");
    app.cleanup().await;
}

/// Seed rotations and client-seed changes share one per-player budget (RATE_LIMIT_SEEDS): a burst
/// of 150 gets the budget through and the rest 429 with Retry-After, and writes nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_rotations_are_limited_per_player() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMITS", "on"), ("RATE_LIMIT_SEEDS", "5/m")]).await;
    let (alice, bob) = (app.known_user().await, app.known_user().await);
    let token = Some(alice.token.as_str());
    let burst = futures::future::join_all((0..150).map(|_| app.post("/api/fair/rotate", token, json!({})))).await;
    let ok = burst.iter().filter(|r| r.status == 200).count();
    let limited: Vec<_> = burst.iter().filter(|r| r.status == 429).collect();
    assert_eq!((ok, limited.len()), (5, 145), "{:?}", burst.iter().map(|r| r.status).collect::<Vec<_>>());
    for response in &limited {
        response.expect_error(429, "rate_limited");
        let retry_after: u64 = response.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
    }
    let change = app.put("/api/fair/client-seed", token, json!({ "clientSeed": "one more" })).await;
    change.expect_error(429, "rate_limited");
    let history = app.get("/api/fair/history", token).await;
    assert_eq!(history.expect(200)["pairs"].as_array().unwrap().len(), 6, "the first pair and 5 rotations");
    assert_ne!(app.get("/api/fair", token).await.body["clientSeed"], "one more", "a refused change changes nothing");
    app.put("/api/fair/client-seed", Some(&bob.token), json!({ "clientSeed": "bob" })).await.expect(200);
    let metrics = app.get("/metrics", None).await.body.as_str().unwrap().to_string();
    assert!(metrics.contains("cyberhub_rate_limited_total{limiter=\"seed\"} 146"), "{metrics}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_off_lifts_the_seed_limit() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMITS", "off"), ("RATE_LIMIT_SEEDS", "1/h")]).await;
    let user = app.known_user().await;
    for _ in 0..3 {
        app.post("/api/fair/rotate", Some(&user.token), json!({})).await.expect(200);
    }
    app.cleanup().await;
}
