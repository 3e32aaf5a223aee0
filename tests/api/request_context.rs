//! Request context: every log line emitted inside a request carries that request's id, route and
//! user; no token or secret is ever logged; the in-flight gauge comes down when a client aborts.
//!
//! The log test runs the real binary (`cyberhub serve`, `LOG_FORMAT=json`) as a child process on
//! PostgreSQL and reads its stdout, so it checks exactly what an operator's collector would get.

use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::helpers::*;

/// A password in the database URL: PostgreSQL here trusts local connections and ignores it, so
/// it only shows whether the URL is ever logged unredacted.
const DATABASE_PASSWORD: &str = "db-password-never-logged-7f3a";

/// `url` with a password in its user info.
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let rest = match rest.split_once('@') {
        Some((userinfo, host)) => {
            format!("{}:{DATABASE_PASSWORD}@{host}", userinfo.split(':').next().unwrap_or(userinfo))
        }
        None => format!("postgres:{DATABASE_PASSWORD}@{rest}"),
    };
    format!("{scheme}://{rest}")
}

/// `cyberhub serve` with JSON logs; its stdout lines are collected as they come.
struct Server {
    child: Child,
    base: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(database_url: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cyberhub"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND", "127.0.0.1")
            .env("PORT", "0")
            .env("REPLICA_ID", "logs-test")
            .env("DATABASE_URL", database_url)
            .env("DATABASE_MAX_CONNECTIONS", "4")
            .env("JWT_SECRET", JWT_SECRET)
            .env("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("RATE_LIMITS", "off")
            .env("DRAIN_WINDOW", "0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the cyberhub binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let collected = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                collected.lock().unwrap().push(line);
            }
        });
        // Logs go to stdout; the banner with the bound port goes to stderr.
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = stderr.next_line().await.expect("read stderr") {
                if let Some(url) = line.strip_prefix("CyberHub listening on ") {
                    return url.trim().to_string();
                }
            }
            panic!("cyberhub exited before listening; stdout: {:?}", lines.lock().unwrap());
        })
        .await
        .expect("cyberhub listens within 30 s");
        tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
        Server { child, base, lines }
    }

    /// Every line so far, parsed: each must be one JSON object naming the replica.
    fn json_lines(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|line| {
                let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                assert_eq!(value["replica"], json!("logs-test"), "{line}");
                value
            })
            .collect()
    }

    /// The first line with this message whose fields include `fields`, waiting up to 10 s for it
    /// (stdout is read by another task).
    async fn line(&self, message: &str, fields: &Value) -> Value {
        let matches = |line: &Value| {
            line["message"] == json!(message)
                && fields.as_object().unwrap().iter().all(|(key, value)| line.get(key) == Some(value))
        };
        for _ in 0..200 {
            if let Some(line) = self.json_lines().into_iter().find(matches) {
                return line;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {message:?} line with {fields}; lines:\n{}", self.lines.lock().unwrap().join("\n"));
    }
}

fn request_id(response: &Response) -> String {
    response.headers["x-request-id"].to_str().expect("x-request-id is text").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_inside_a_request_carry_its_id_route_and_user_and_no_secret() {
    let database = TestDatabase::postgres("cyberhub_test").await;
    let mut server = Server::start(&with_password(database.url())).await;
    let api = Api::new(&server.base);
    let admin = api.admin.id.to_string();
    let player = api.known_user().await;

    // A line from the handler, with the request id the client chose.
    let credit_id = format!("credit-{}", Uuid::new_v4().simple());
    let credited = api
        .http
        .post(api.url("/api/admin/balance/add"))
        .bearer_auth(&api.admin.token)
        .header("x-request-id", &credit_id)
        .json(&json!({ "userId": player.id, "amount": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(credited.status(), 200);
    assert_eq!(credited.headers()["x-request-id"], credit_id.as_str(), "the id is echoed");
    let context =
        json!({ "request_id": credit_id, "route": "/api/admin/balance/add", "method": "POST", "user": admin });
    let adjusted = server.line("balance adjusted", &context).await;
    assert_eq!(adjusted["player"], json!(player.id.to_string()), "{adjusted}");
    let request_line = server.line("request", &context).await;
    assert_eq!(request_line["status"], json!(200), "{request_line}");

    // A line from the bus publish path: the kick reaches the player's socket through the bus.
    let socket = api.socket(Some(&player.token)).await;
    let kicked = api.admin_post(&format!("/api/admin/users/{}/disconnect", player.id), json!({})).await;
    kicked.expect(200);
    let ended = server
        .line(
            "ended a user's sessions",
            &json!({ "request_id": request_id(&kicked), "route": "/api/admin/users/{id}/disconnect", "user": admin }),
        )
        .await;
    assert_eq!(ended["player"], json!(player.id.to_string()), "{ended}");
    drop(socket);

    // A 500: its "request failed" line is written inside the handler's own task.
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(database.url()).await.unwrap();
        sqlx::query("ALTER TABLE ledger RENAME TO ledger_gone").execute(&mut conn).await.unwrap();
    }
    let failed = api.admin_post("/api/admin/balance/add", json!({ "userId": player.id, "amount": 1 })).await;
    failed.expect_error(500, "internal_error");
    let failed_id = request_id(&failed);
    assert!(Uuid::parse_str(&failed_id).is_ok(), "a generated id: {failed_id}");
    let context = json!({ "request_id": failed_id, "route": "/api/admin/balance/add", "user": admin });
    let error = server.line("request failed", &context).await;
    assert_eq!(error["level"], json!("ERROR"), "{error}");
    server.line("request", &json!({ "request_id": failed_id, "status": 500, "user": admin })).await;

    // Anonymous: the request's lines have no user. Unknown paths are one route.
    let anonymous = api.get("/api/cases", None).await;
    anonymous.expect(200);
    let line = server.line("request", &json!({ "request_id": request_id(&anonymous), "route": "/api/cases" })).await;
    assert!(line.get("user").is_none(), "{line}");
    let missing = api.get(&format!("/api/no-such-thing/{}", Uuid::new_v4()), None).await;
    server.line("request", &json!({ "request_id": request_id(&missing), "route": "unmatched", "status": 404 })).await;

    // Probes log at DEBUG only: under RUST_LOG=info a probe leaves no line. The anonymous
    // request after it is logged, so its line's arrival shows the probe's would have too.
    let probe = api.get("/health", None).await;
    assert_eq!(probe.status, 200);
    let after = api.get("/api/cases", None).await;
    server.line("request", &json!({ "request_id": request_id(&after) })).await;
    let probe_id = json!(request_id(&probe));
    let lines = server.json_lines();
    assert!(lines.iter().all(|line| line["request_id"] != probe_id), "a probe was logged at INFO");

    let _ = server.child.kill().await;
    let text = server.lines.lock().unwrap().join("\n");
    for (what, secret) in [
        ("the admin token", api.admin.token.as_str()),
        ("the player's token", player.token.as_str()),
        ("JWT_SECRET", JWT_SECRET),
        ("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("the database password", DATABASE_PASSWORD),
    ] {
        assert!(!text.contains(secret), "{what} appears in the log");
    }
    assert!(text.contains("\"message\":\"starting\""), "the log was read from the start: {text}");
}

/// A client that goes away while its request waits: hyper drops the request's future, and the
/// gauge must come down with it. The request waits on a row lock this test holds, so its handler
/// is certainly still running when the client leaves (a half-sent body would not do: the
/// handler's body read fails at once and the request ends normally, guard or not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_request_does_not_stay_in_flight() {
    use sqlx::Connection;
    let app = spawn_app_with(Backend::Postgres, &[("DATABASE_LOCK_TIMEOUT", "30s"), ("REQUEST_TIMEOUT", "60s")]).await;
    let player = app.known_user().await;
    app.fund(&player, 1.0).await;
    // The scrape is itself a request in flight.
    let gauge = || app.metric("cyberhub_http_requests_in_flight", &[]);
    assert_eq!(gauge().await, 1.0);

    let mut locker = sqlx::PgConnection::connect(&app.postgres_url().unwrap()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE").bind(player.id).execute(&mut locker).await.unwrap();

    let address = app.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let body = json!({ "userId": player.id, "amount": 1 }).to_string();
    let request = format!(
        "POST /api/admin/balance/add HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        app.admin.token,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut value = 0.0;
    for _ in 0..100 {
        value = gauge().await;
        if value == 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(value, 2.0, "the waiting request is in flight");

    drop(stream);
    for _ in 0..100 {
        value = gauge().await;
        if value == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(value, 1.0, "the aborted request is counted out while its handler still waits");

    // The handler, in its own task, finishes once the lock is released: the credit commits.
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let mut balance = app.balance(&player).await;
    for _ in 0..100 {
        if balance.0 == 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        balance = app.balance(&player).await;
    }
    assert_eq!(balance.0, 2.0, "the abandoned credit still committed");
    assert_eq!(gauge().await, 1.0, "and nothing is left in flight");
    app.cleanup().await;
}

/// A socket's connect checks (rate limit, per-IP cap, the address admins see) use the client IP
/// the HTTP middleware resolved from the engine.io request, X-Forwarded-For from a trusted proxy
/// included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_sees_the_client_ip_resolved_for_its_request() {
    use rust_socketio::asynchronous::ClientBuilder;
    use rust_socketio::TransportType;
    let app = spawn_app(Backend::Sqlite).await;
    let player = app.known_user().await;
    let client = ClientBuilder::new(app.base.as_str())
        .namespace("/")
        .transport_type(TransportType::Websocket)
        .reconnect(false)
        .opening_header("x-forwarded-for", "203.0.113.9")
        .auth(json!({ "token": player.token }))
        .connect()
        .await
        .expect("the socket connects");
    let admin = Some(app.admin.token.as_str());
    let mut sessions = Vec::new();
    for _ in 0..100 {
        let answer = app.get(&format!("/api/admin/users/{}/sessions", player.id), admin).await;
        sessions = answer.expect(200)["sessions"].as_array().unwrap().clone();
        if !sessions.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["clientIp"], json!("203.0.113.9"), "{sessions:?}");
    let _ = client.disconnect().await;
    app.cleanup().await;
}
