use reqwest::Method;
use serde_json::json;

use crate::on_both_backends;
use cyberhub::domain::Role;

on_both_backends! {
    async fn health_ready_and_metrics(app) {
        let health = app.get("/health", None).await;
        assert_eq!(health.status, 200);
        assert_eq!(health.body["status"], "ok");
        assert_eq!(health.body["websocket"], "idle");
        assert_eq!(health.body["clients"], 0);
        assert_eq!(health.body["redis"], "disabled");
        assert_eq!(health.body["replica"], "test");
        assert!(health.body["timestamp"].as_str().is_some());

        let ready = app.get("/ready", None).await;
        assert_eq!(ready.status, 200);
        assert_eq!(ready.body["database"], "up");

        let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("cyberhub_connected_clients 0"), "{metrics}");
        assert!(metrics.contains("cyberhub_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"), "{metrics}");
    }

    async fn openapi_document_lists_every_route(app) {
        let doc = app.get("/api/openapi.json", None).await;
        assert_eq!(doc.status, 200);
        assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc.body["paths"].as_object().unwrap();
        for path in [
            "/health", "/ready", "/metrics", "/api/cases", "/api/cases/{id}", "/api/cases/open", "/api/me",
            "/api/inventory", "/api/inventory/claim", "/api/inventory/{id}/status", "/api/admin/cases",
            "/api/admin/cases/{id}", "/api/admin/cases/{id}/items", "/api/admin/cases/{id}/price",
            "/api/admin/balance/add", "/api/admin/balance/subtract", "/api/admin/users/{id}/transactions",
            "/api/admin/users/{id}/disconnect", "/api/admin/users/{id}", "/api/admin/users/{id}/block",
            "/api/admin/users/{id}/sessions", "/api/admin/online",
            "/api/payment/callback", "/api/fair", "/api/fair/client-seed", "/api/fair/rotate", "/api/fair/history",
        ] {
            assert!(paths.contains_key(path), "openapi.json lacks {path}");
        }
    }

    async fn unknown_routes_and_methods_use_the_envelope(app) {
        app.get("/api/nothing", None).await.expect_error(404, "not_found");
        app.request(Method::DELETE, "/api/cases", None, None).await.expect_error(405, "method_not_allowed");
    }

    async fn authentication_errors(app) {
        app.get("/api/me", None).await.expect_error(401, "unauthorized");
        app.get("/api/me", Some("garbage")).await.expect_error(401, "unauthorized");
        let wrong_key = cyberhub::auth::JwtKeys::new("some-other-secret-value").issue(uuid::Uuid::new_v4(), Role::Admin, std::time::Duration::from_secs(60));
        app.get("/api/me", Some(&wrong_key)).await.expect_error(401, "unauthorized");
        let user = app.new_user();
        app.admin_post("/api/admin/cases", json!({})).await.expect_error(400, "invalid_body");
        app.post("/api/admin/cases", Some(&user.token), json!({})).await.expect_error(403, "forbidden");
    }

    async fn expired_tokens_are_refused(app) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let claims = json!({ "sub": uuid::Uuid::new_v4().to_string(), "exp": now - 5 });
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes())).unwrap();
        let response = app.get("/api/me", Some(&token)).await;
        response.expect_error(401, "unauthorized");
        assert_eq!(response.body["error"], "token expired");
    }

    async fn a_new_user_is_created_on_first_sight(app) {
        let user = app.new_user();
        let me = app.get("/api/me", Some(&user.token)).await;
        let body = me.expect(200);
        assert_eq!(body["user"], json!({ "id": user.id, "role": "user", "balance": 0.0, "balanceVersion": 0, "inventoryVersion": 0 }));
        let admin = app.get("/api/me", Some(&app.admin.token)).await;
        assert_eq!(admin.expect(200)["user"]["role"], "admin");
    }

    async fn malformed_bodies_are_400_and_change_nothing(app) {
        let user = app.known_user().await;
        let token = Some(app.admin.token.as_str());
        let add = "/api/admin/balance/add";
        app.raw(Method::POST, add, token, "application/json", b"{not json".to_vec()).await.expect_error(400, "invalid_json");
        app.raw(Method::POST, add, token, "text/plain", b"{}".to_vec()).await.expect_error(400, "invalid_content_type");
        for (amount, why) in [
            (json!("10"), "a string"),
            (json!(null), "null"),
            (json!(-5), "negative"),
            (json!(0), "zero"),
            (json!(10.001), "three decimals"),
            (json!(100000000.01), "too large"),
            (json!(true), "a boolean"),
        ] {
            let response = app.admin_post(add, json!({ "userId": user.id, "amount": amount })).await;
            assert_eq!(response.status, 400, "{why}: {}", response.body);
            assert_eq!(response.body["code"], "invalid_body", "{why}");
        }
        app.admin_post(add, json!({ "userId": "not-a-uuid", "amount": 1 })).await.expect_error(400, "invalid_id");
        app.admin_post(add, json!({ "amount": 1 })).await.expect_error(400, "invalid_body");
        assert_eq!(app.balance(&user).await, (0.0, 0));
    }

    async fn bodies_over_64_kb_are_413(app) {
        let big = format!("{{\"userId\":\"{}\",\"amount\":1,\"reason\":\"{}\"}}", uuid::Uuid::new_v4(), "x".repeat(70 * 1024));
        let response = app.raw(Method::POST, "/api/admin/balance/add", Some(&app.admin.token), "application/json", big.into_bytes()).await;
        response.expect_error(413, "payload_too_large");
    }
}
