//! The operators' console: its files served from the binary under a strict CSP, the admin-only
//! `/admin` namespace (only admin tokens; nothing of it on a player's socket), the admin lists it
//! reads (withdrawal queue, a player's inventory and seed pairs), and the page itself in a real
//! browser (tests/js/console.mjs, Debian's chromium driven by puppeteer-core).

use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;
use crate::on_both_backends;
use cyberhub::domain::Role;

/// Only the page's import map is inline, allowed by its hash (checked in `routes::console`'s unit test).
const CSP: &str = "default-src 'none'; script-src 'self' 'sha256-4/iN3DHKWjT9TPqJ0hcmY4fWLldw5riQlZI0hT+dYR0='; \
                   style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_from_the_binary_under_a_strict_csp() {
    let app = &spawn_app(Backend::Sqlite).await;
    let page = app.http.get(app.url("/console")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-security-policy"], CSP);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "the page loads nothing from elsewhere");
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline code or style (the CSP forbids it)");
    assert!(html.contains("data-testid=\"online-sockets\""));

    // Every file the page and its script load, from the binary, with the same headers.
    let script = app.http.get(app.url("/console/console.js")).send().await.unwrap().text().await.unwrap();
    assert!(!script.contains("innerHTML"), "text from the API is never parsed as HTML");
    assert!(
        !script.contains("fetch(") && !script.contains("socket.io") && !script.contains("io("),
        "the console has no socket or HTTP code of its own: it uses cyberhub-client"
    );
    let mut files: Vec<&str> = html.split('"').filter(|part| part.starts_with("/console/")).collect();
    files.extend(script.split('\'').filter(|part| part.starts_with("/console/") && part.ends_with(".js")));
    assert_eq!(
        files,
        [
            "/console/console.css",
            "/console/socket.io.esm.min.js",
            "/console/console.js",
            "/console/cyberhub-client/admin.js",
            "/console/cyberhub-client/http.js"
        ]
    );
    for file in files {
        let answer = app.http.get(app.url(file)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{file}");
        assert_eq!(answer.headers()["content-security-policy"], CSP, "{file}");
        let content_type = answer.headers()["content-type"].to_str().unwrap().to_string();
        let expected = if file.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(content_type.starts_with(expected), "{file}: {content_type}");
        assert!(!answer.bytes().await.unwrap().is_empty(), "{file}");
    }
    assert_eq!(app.http.get(app.url("/console/")).send().await.unwrap().status(), 200);

    // The vendored client is the npm package the tests pin, byte for byte.
    let vendored = app.http.get(app.url("/console/socket.io.esm.min.js")).send().await.unwrap().bytes().await.unwrap();
    let npm = repo().join("tests/js/node_modules/socket.io-client/dist/socket.io.esm.min.js");
    let npm = std::fs::read(&npm).unwrap_or_else(|e| panic!("{} (run `npm ci` in tests/js): {e}", npm.display()));
    assert!(
        vendored == npm,
        "src/console/vendor/socket.io.esm.min.js differs from tests/js/node_modules: copy it again"
    );

    // cyberhub-client, as a fresh `npm run build` of clients/js makes it (.ci/services.sh builds it
    // before the tests), byte for byte; and every module those files import is vendored too.
    let dist = repo().join("clients/js/dist");
    let vendored = repo().join("src/console/vendor/cyberhub-client");
    let mut names: Vec<String> =
        std::fs::read_dir(&vendored).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["admin.js", "connection.js", "http.js", "store.js", "token.js"]);
    for name in &names {
        let served = app.http.get(app.url(&format!("/console/cyberhub-client/{name}"))).send().await.unwrap();
        assert_eq!(served.status(), 200, "{name}");
        assert_eq!(served.headers()["content-security-policy"], CSP, "{name}");
        let served = served.bytes().await.unwrap();
        let built = std::fs::read(dist.join(name))
            .unwrap_or_else(|e| panic!("clients/js/dist/{name} (run `npm ci && npm run build` in clients/js): {e}"));
        assert!(
            served == built,
            "src/console/vendor/cyberhub-client/{name} differs from clients/js/dist: \
             `npm run build` in clients/js, then copy it (see README, the console section)"
        );
        let text = String::from_utf8(built).unwrap();
        for line in
            text.lines().filter(|l| l.starts_with("import ") || (l.starts_with("export ") && l.contains(" from ")))
        {
            let module = line.rsplit(['"', '\'']).nth(1).unwrap_or_default();
            match module.strip_prefix("./") {
                Some(file) => {
                    assert!(names.iter().any(|n| n == file), "{name} imports {module}, which is not vendored")
                }
                None => assert_eq!(module, "socket.io-client", "{name}: only socket.io-client is in the import map"),
            }
        }
    }

    for missing in [
        "/console/nothing.js",
        "/console/cyberhub-client/fair.js",
        "/console/cyberhub-client/admin.js.map",
        "/console/..%2FCargo.toml",
        "/console/index.html.bak",
    ] {
        app.get(missing, None).await.expect_error(404, "not_found");
    }
    app.cleanup().await;
}

fn refusal(result: Result<TestSocket, ConnectFailure>) -> String {
    match result {
        Err(ConnectFailure::Refused(message)) => message,
        Err(other) => panic!("not refused by the server: {other:?}"),
        Ok(_) => panic!("connected, but must be refused"),
    }
}

async fn console_socket(app: &TestApp, token: Option<&str>) -> Result<TestSocket, ConnectFailure> {
    TestSocket::connect_namespace(&app.base, "/admin", token.map(|t| json!({ "token": t }))).await
}

on_both_backends! {
    async fn the_admin_namespace_takes_only_admin_tokens(app) {
        let player = app.known_user().await;
        assert!(refusal(console_socket(app, Some(&player.token)).await).contains("forbidden"));
        assert!(refusal(console_socket(app, None).await).contains("unauthorized"));
        assert!(refusal(console_socket(app, Some("garbage")).await).contains("unauthorized"));
        let expired = cyberhub::auth::JwtKeys::new(JWT_SECRET).issue(app.admin.id, Role::Admin, Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(refusal(console_socket(app, Some(&expired)).await).contains("token_expired"));
        assert_eq!(app.metric("cyberhub_console_connects_total", &["forbidden"]).await, 1.0);

        let console = console_socket(app, Some(&app.admin.token)).await.expect("an admin token connects");
        let first = console.expect("online").await;
        assert_eq!(first["sockets"], 0, "the console's own socket is not a player's: {first}");
        assert_eq!(first["bus"], "disabled");
        assert_eq!(first["replicas"][0]["replica"], "test");
        assert!(first["eventsPerSecond"]["delivered"].is_number() && first["lag"]["samples"].is_number(), "{first}");
        let player_socket = app.socket(Some(&player.token)).await;
        let snapshot = eventually(Duration::from_secs(5), "the player counted", || async {
            let s = console.expect("online").await;
            if s["sockets"] == 1 && s["users"] == 1 { Ok(s) } else { Err(s) }
        })
        .await;
        assert_eq!(snapshot["replicas"][0]["sockets"], 1);
        assert_eq!(app.metric("cyberhub_console_sockets", &[]).await, 1.0);
        player_socket.close().await;
        console.close().await;
    }

    async fn nothing_admin_only_reaches_a_player_socket(app) {
        let player = app.known_user().await;
        let console = console_socket(app, Some(&app.admin.token)).await.expect("admin connects");
        let socket = app.socket(Some(&player.token)).await;
        socket.expect(&format!("balance:updated:{}", player.id)).await;
        // Snapshots flow while the player is connected.
        console.expect("online").await;
        console.expect("online").await;

        let payment = json!({ "paymentId": "pay-console-1", "userId": player.id, "amount": 12.5, "status": "success" });
        app.payment(&payment).await.expect(200);
        let seen = console.expect("payment").await;
        assert_eq!((seen["paymentId"].as_str(), seen["userId"].as_str(), seen["amount"].as_f64()), (Some("pay-console-1"), Some(player.id.to_string().as_str()), Some(12.5)));
        assert!(seen["at"].is_string());
        // A duplicate credits nothing and shows nothing.
        app.payment(&payment).await.expect(200);

        socket.expect(&format!("balance:updated:{}", player.id)).await;
        let case = app.simple_case(1.0, 0.5).await;
        app.reprice(&case, 2.0).await;
        socket.expect_none_before(&["online", "payment"], "cases:updated").await;
        socket.expect_none_before(&["online", "payment"], "cases:updated").await;
        // And `/admin` carries only its own events, not the players' catalogue hints.
        let on_console: Vec<String> = console.drain().await.into_iter().map(|(name, _)| name).collect();
        assert!(on_console.iter().all(|name| name == "online"), "{on_console:?}");
        socket.close().await;
        console.close().await;
    }

    async fn the_withdrawal_queue_pages_oldest_request_first(app) {
        let (alice, bob) = (app.known_user().await, app.known_user().await);
        let case = app.simple_case(0.01, 5.0).await;
        let mut requested = Vec::new();
        for user in [&alice, &bob, &alice, &bob, &alice] {
            app.fund(user, 0.01).await;
            let opened = app.post("/api/cases/open", Some(&user.token), json!({ "caseId": case["id"] })).await;
            let id = opened.expect(200)["inventoryItemId"].as_str().unwrap().to_string();
            app.put(&format!("/api/inventory/{id}/status"), Some(&app.admin.token), json!({ "status": "withdraw_requested" })).await.expect(200);
            requested.push((id, user.id));
        }
        // One that was never asked for stays out.
        app.fund(&alice, 0.01).await;
        app.post("/api/cases/open", Some(&alice.token), json!({ "caseId": case["id"] })).await.expect(200);

        let admin = Some(app.admin.token.as_str());
        let mut pages = Vec::new();
        let mut next = app.get("/api/admin/withdrawals?limit=2", admin).await;
        loop {
            let body = next.expect(200).clone();
            pages.push(body["withdrawals"].as_array().unwrap().clone());
            let Some(cursor) = body["nextCursor"].as_str() else { break };
            next = app.get(&format!("/api/admin/withdrawals?limit=2&cursor={cursor}"), admin).await;
        }
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
        let listed: Vec<(String, String)> = pages.concat().iter()
            .map(|w| (w["item"]["id"].as_str().unwrap().to_string(), w["userId"].as_str().unwrap().to_string()))
            .collect();
        let expected: Vec<(String, String)> = requested.iter().map(|(id, user)| (id.clone(), user.to_string())).collect();
        assert_eq!(listed, expected, "oldest request first, with the owner");
        let first = &pages[0][0];
        assert_eq!(first["item"]["status"], "withdraw_requested");
        assert_eq!(first["item"]["item"]["value"], 5.0);
        assert!(first["requestedAt"].is_string());

        // Settled items leave the queue: one delivered, one back to owned.
        for (i, status) in [(0, "delivered"), (1, "owned")] {
            let id = &requested[i].0;
            app.put(&format!("/api/inventory/{id}/status"), admin, json!({ "status": status })).await.expect(200);
        }
        let left = app.get("/api/admin/withdrawals", admin).await;
        let left: Vec<&str> = left.expect(200)["withdrawals"].as_array().unwrap().iter().map(|w| w["item"]["id"].as_str().unwrap()).collect();
        assert_eq!(left, requested[2..].iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>());

        for limit in ["0", "101", "x"] {
            app.get(&format!("/api/admin/withdrawals?limit={limit}"), admin).await.expect_error(400, "invalid_query");
        }
        app.get("/api/admin/withdrawals?cursor=garbage", admin).await.expect_error(400, "invalid_cursor");
        app.get("/api/admin/withdrawals?cursor=763a35", admin).await.expect_error(400, "invalid_cursor");
        app.get("/api/admin/withdrawals", Some(&alice.token)).await.expect_error(403, "forbidden");
        app.get("/api/admin/withdrawals", None).await.expect_error(401, "unauthorized");
    }

    async fn an_admin_reads_a_players_inventory_and_seed_pairs(app) {
        let player = app.known_user().await;
        let case = app.simple_case(0.01, 1.0).await;
        app.fund(&player, 0.03).await;
        let mut won = Vec::new();
        for _ in 0..3 {
            let opened = app.post("/api/cases/open", Some(&player.token), json!({ "caseId": case["id"] })).await;
            won.push(opened.expect(200)["inventoryItemId"].as_str().unwrap().to_string());
        }
        won.reverse();
        let admin = Some(app.admin.token.as_str());
        app.put(&format!("/api/inventory/{}/status", won[0]), admin, json!({ "status": "withdraw_requested" })).await.expect(200);
        let path = format!("/api/admin/users/{}/inventory", player.id);
        let first = app.get(&format!("{path}?limit=2"), admin).await.expect(200).clone();
        let cursor = first["nextCursor"].as_str().expect("a second page").to_string();
        let second = app.get(&format!("{path}?limit=2&cursor={cursor}"), admin).await.expect(200).clone();
        assert_eq!(second["nextCursor"], Value::Null);
        let all: Vec<String> = [first["items"].as_array().unwrap().clone(), second["items"].as_array().unwrap().clone()].concat()
            .iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(all, won, "what the player sees, newest first");
        let own = app.get("/api/inventory", Some(&player.token)).await.expect(200).clone();
        assert_eq!(app.get(&path, admin).await.expect(200)["items"], own["items"], "the same items as the player's own view");
        let requested = app.get(&format!("{path}?status=withdraw_requested"), admin).await.expect(200).clone();
        assert_eq!(requested["items"].as_array().unwrap().len(), 1);
        app.get(&format!("{path}?status=lost"), admin).await.expect_error(400, "invalid_status");
        app.get(&format!("{path}?cursor=zz"), admin).await.expect_error(400, "invalid_cursor");
        app.get(&format!("{path}?limit=101"), admin).await.expect_error(400, "invalid_query");

        let fair = app.get(&format!("/api/admin/users/{}/fair/history", player.id), admin).await.expect(200).clone();
        let pairs = fair["pairs"].as_array().unwrap();
        assert_eq!(pairs.len(), 1, "{fair}");
        assert_eq!(pairs[0]["nonce"], 3);
        assert_eq!(pairs[0]["serverSeed"], Value::Null, "the active pair's seed stays secret, to admins too");
        let own = app.get("/api/fair/history", Some(&player.token)).await.expect(200).clone();
        assert_eq!(fair["pairs"], own["pairs"]);

        let stranger = uuid::Uuid::new_v4();
        for path in [format!("/api/admin/users/{stranger}/inventory"), format!("/api/admin/users/{stranger}/fair/history")] {
            app.get(&path, admin).await.expect_error(404, "not_found");
        }
        for path in ["/api/admin/users/nope/inventory", "/api/admin/users/nope/fair/history"] {
            app.get(path, admin).await.expect_error(400, "invalid_id");
        }
        app.get(&path, Some(&player.token)).await.expect_error(403, "forbidden");
    }
}

/// The console in Debian's chromium (headless, puppeteer-core): sign in, the socket count
/// following test sockets, a case created and edited, a withdrawal approved, a player kicked.
/// `CONSOLE_SCREENSHOTS=$PWD/docs/console` also refreshes the screenshots in docs/console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let app = spawn_app(Backend::Postgres).await;
    let shots = std::env::var("CONSOLE_SCREENSHOTS").unwrap_or_default();
    let env: Vec<(&str, &str)> = if shots.is_empty() { vec![] } else { vec![("CONSOLE_SCREENSHOTS", shots.as_str())] };
    let output = run_node_test_file(&app.base, "tests/js/console.mjs", &env).await;
    assert!(output.contains("pass 6") && output.contains("fail 0"), "{output}");
    app.cleanup().await;
}

/// Console sockets are bounded like a player's: each takes a place under `MAX_SOCKETS_PER_USER`
/// (and `MAX_SOCKETS_PER_IP`), and gives it back when it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sockets_count_against_the_socket_caps() {
    let app = &spawn_app_with(Backend::Sqlite, &[("RATE_LIMITS", "on"), ("MAX_SOCKETS_PER_USER", "2")]).await;
    let admin = Some(app.admin.token.as_str());
    let first = console_socket(app, admin).await.expect("first");
    let second = console_socket(app, admin).await.expect("second");
    assert!(refusal(console_socket(app, admin).await).contains("too_many_connections"));
    assert_eq!(app.metric("cyberhub_console_connects_total", &["too_many_connections"]).await, 1.0);
    assert_eq!(app.metric("cyberhub_console_sockets", &[]).await, 2.0);
    first.close().await;
    let third = eventually(Duration::from_secs(5), "the place given back", || async {
        console_socket(app, admin).await.map_err(|e| format!("{e:?}"))
    })
    .await;
    third.close().await;
    second.close().await;
    app.cleanup().await;
}

/// A console socket ends when its admin token does (plus `TOKEN_EXPIRY_GRACE`), like a player's:
/// the page then asks for a fresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_socket_ends_with_its_token() {
    let app = &spawn_app_with(Backend::Sqlite, &[("TOKEN_EXPIRY_GRACE", "1s")]).await;
    let short = app.token_with_ttl(app.admin.id, Role::Admin, Duration::from_secs(1));
    let console = console_socket(app, Some(&short)).await.expect("a valid admin token connects");
    assert_eq!(console.expect("session:ended").await, json!({ "reason": "token_expired" }));
    console.expect("disconnect").await;
    eventually(Duration::from_secs(5), "the console socket counted out", || async {
        let sockets = app.metric("cyberhub_console_sockets", &[]).await;
        if sockets == 0.0 {
            Ok(())
        } else {
            Err(sockets)
        }
    })
    .await;
    app.cleanup().await;
}

/// `auth:refresh` on `/admin` (what cyberhub-client's `connectAdmin` sends before `exp`): another
/// admin token of the same admin moves the deadline; a player's token of that user, another
/// admin's token or garbage is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_refreshes_its_token_in_band() {
    let app = &spawn_app_with(Backend::Sqlite, &[("TOKEN_EXPIRY_GRACE", "1s")]).await;
    let short = app.token_with_ttl(app.admin.id, Role::Admin, Duration::from_secs(2));
    let console = console_socket(app, Some(&short)).await.expect("a valid admin token connects");
    console.expect("online").await;

    let as_player = app.token_with_ttl(app.admin.id, Role::User, Duration::from_secs(600));
    let other_admin = app.token_with_ttl(uuid::Uuid::new_v4(), Role::Admin, Duration::from_secs(600));
    for (token, error) in [
        (json!(as_player), "forbidden"),
        (json!(other_admin), "forbidden"),
        (json!("garbage"), "unauthorized"),
        (Value::Null, "unauthorized"),
    ] {
        let ack = console.emit_with_ack("auth:refresh", json!({ "token": token })).await;
        assert_eq!(ack, json!({ "ok": false, "error": error }));
    }
    let fresh = app.token_with_ttl(app.admin.id, Role::Admin, Duration::from_secs(600));
    let ack = console.emit_with_ack("auth:refresh", json!({ "token": fresh })).await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    assert!(ack["exp"].as_u64().unwrap() > chrono::Utc::now().timestamp() as u64 + 590, "{ack}");
    assert_eq!(app.metric("cyberhub_socket_token_refreshes_total", &["\"ok\""]).await, 1.0);
    assert_eq!(app.metric("cyberhub_socket_token_refreshes_total", &["\"forbidden\""]).await, 2.0);

    // Past the old exp plus grace, the console is still there and its snapshots keep coming.
    tokio::time::sleep(Duration::from_secs(4)).await;
    console.drain().await;
    console.expect_none_before(&["session:ended", "disconnect"], "online").await;
    assert_eq!(app.metric("cyberhub_console_sockets", &[]).await, 1.0);
    console.close().await;
    app.cleanup().await;
}
