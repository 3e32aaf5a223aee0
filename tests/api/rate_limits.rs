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
