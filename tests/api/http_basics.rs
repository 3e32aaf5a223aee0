use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, TestApp};
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

/// Calls every operation of the served document, without a body, anonymously and as an admin,
/// and asserts that each is routed and answers a status the document lists for it, in the
/// envelope when it is an error. The router and the document come from the same declarations
/// (`routes!` in `src/routes/mod.rs`); this checks what the declarations promise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_answers_a_documented_status() {
    let app = &spawn_app(Backend::Sqlite).await;
    let served = app.get("/api/openapi.json", None).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.headers["content-type"], "application/json");
    let generated: Value = serde_json::from_str(&cyberhub::openapi::to_json()).unwrap();
    assert_eq!(served.body, generated, "the served document is the generated one");
    assert_eq!(served.body["openapi"], "3.1.0");
    let case = app.simple_case(1.0, 0.5).await;

    let mut calls = 0;
    for (path, item) in served.body["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let documented: Vec<&String> = operation["responses"].as_object().unwrap().keys().collect();
            // A real case for the case routes, so the sweep also reaches their 2xx answers.
            let url = path.replace("{id}", case["id"].as_str().unwrap());
            for token in [None, Some(app.admin.token.as_str())] {
                let answer = app.request(method.clone(), &url, token, None).await;
                let status = answer.status.as_u16().to_string();
                let who = if token.is_some() { "an admin" } else { "anonymous" };
                assert!(
                    documented.contains(&&status),
                    "{method} {path} from {who} answered {status}, documented: {documented:?}; body: {}",
                    answer.body
                );
                assert_envelope(&answer, &format!("{method} {path}"));
                calls += 1;
            }
        }
    }
    assert_eq!(calls, 2 * 32, "every operation of the document was called");
    app.cleanup().await;
}

/// Errors are the envelope with a snake_case code; a 2xx of `/api/*` (but the document) says
/// `success: true`.
fn assert_envelope(answer: &crate::helpers::Response, what: &str) {
    if answer.status.as_u16() >= 400 {
        assert_eq!(answer.body["success"], json!(false), "{what}: {}", answer.body);
        let code = answer.body["code"].as_str().unwrap_or_default();
        assert!(
            !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{what}: {}",
            answer.body
        );
        assert_ne!(answer.body["error"], json!("no such route"), "{what} is not routed");
    } else if what.contains(" /api/") && !what.ends_with("/api/openapi.json") {
        assert_eq!(answer.body["success"], json!(true), "{what}: {}", answer.body);
    }
}

/// Swagger UI comes out of the binary: the page, every file it loads, and a configuration that
/// points at this document and at no validator on the internet. Its paths count as three routes
/// in the metrics however many files are asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_is_served_from_the_binary() {
    let app: &TestApp = &spawn_app(Backend::Sqlite).await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let bare = no_redirects.get(app.url("/api/docs")).send().await.unwrap();
    assert!(bare.status().is_redirection(), "{}", bare.status());
    assert_eq!(bare.headers()["location"], "/api/docs/");

    let page = app.http.get(app.url("/api/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter_map(|part| part.strip_prefix("./"))
        .filter(|file| file.ends_with(".css") || file.ends_with(".js") || file.ends_with(".png"))
        .collect();
    assert!(assets.len() >= 5, "the page loads its files from beside it: {assets:?}");
    for file in &assets {
        let answer = app.http.get(app.url(&format!("/api/docs/{file}"))).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{file}");
        let content_type = answer.headers()["content-type"].to_str().unwrap().to_string();
        let expected = match file.rsplit('.').next() {
            Some("css") => "text/css",
            Some("js") => "javascript",
            _ => "image/png",
        };
        assert!(content_type.contains(expected), "{file}: {content_type}");
        assert!(!answer.bytes().await.unwrap().is_empty(), "{file}");
    }
    let initializer = app.http.get(app.url("/api/docs/swagger-initializer.js")).send().await.unwrap();
    let initializer = initializer.text().await.unwrap();
    assert!(initializer.contains("\"/api/openapi.json\""), "{initializer}");
    assert!(initializer.contains("\"validatorUrl\": \"none\""), "{initializer}");
    assert!(!html.contains("http://") && !html.contains("https://"), "the page loads nothing from elsewhere");

    app.get("/api/docs/no-such-file.js", None).await.expect_error(404, "not_found");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let docs_routes: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("cyberhub_http_requests_total{"))
        .filter_map(|line| line.split("route=\"").nth(1)?.split('"').next())
        .filter(|route| route.starts_with("/api/docs"))
        .collect();
    assert_eq!(docs_routes, ["/api/docs", "/api/docs/", "/api/docs/{*file}"].into(), "{metrics}");
    app.cleanup().await;
}
