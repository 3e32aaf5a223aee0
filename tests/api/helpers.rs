//! Starts the real application on a random port against a fresh database (an SQLite file or a new
//! PostgreSQL database), and talks to it over real HTTP and a real Socket.IO client.
//! Logs are shown only with TEST_LOG=1.

use futures::FutureExt;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use rust_socketio::asynchronous::{Client as SocketClient, ClientBuilder};
use rust_socketio::{Event as SocketEvent, Payload, TransportType};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Once};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use cyberhub::auth::JwtKeys;
use cyberhub::config::Config;
use cyberhub::domain::Role;
use cyberhub::startup::Application;

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef";
pub const WEBHOOK_SECRET: &str = "test-webhook-secret-0123456789abcdef";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the tests find PostgreSQL: a maintenance database on a server the tests may create
/// databases on. CI installs and starts one; without it these tests fail, they never skip.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            cyberhub::telemetry::init(cyberhub::config::LogFormat::Text, "test");
        }
    });
}

/// A client of one CyberHub base URL (a replica, nginx, or a test app), with tokens signed by
/// the test secret.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub admin: TestUser,
    keys: JwtKeys,
}

pub struct TestApp {
    api: Api,
    /// The running application's state, for tests that drive it from inside (event floods).
    #[allow(dead_code)]
    pub state: cyberhub::state::AppState,
    database: Option<String>,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    server: Mutex<Option<tokio::task::JoinHandle<anyhow::Result<()>>>>,
}

impl std::ops::Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: Uuid,
    pub token: String,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Response {
    /// Asserts the status and, for errors, the documented envelope and code.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        if status >= 400 {
            assert_eq!(self.body["success"], json!(false), "envelope: {}", self.body);
            assert!(self.body["error"].as_str().is_some_and(|e| !e.is_empty()), "envelope: {}", self.body);
        } else {
            assert_eq!(self.body["success"], json!(true), "body: {}", self.body);
        }
        &self.body
    }

    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        self.expect(status);
        assert_eq!(self.body["code"], json!(code), "body: {}", self.body);
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// `overrides` are environment variables layered over the test defaults.
pub async fn spawn_app_with(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
    init_logs();
    let (database_url, database) = match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!("cyberhub-test-{}.db", Uuid::new_v4().simple()));
            (format!("sqlite://{}?mode=rwc", path.display()), None)
        }
        Backend::Postgres => {
            let name = format!("cyberhub_test_{}", Uuid::new_v4().simple());
            create_postgres_database(&name).await;
            (with_database(&postgres_admin_url(), &name), Some(name))
        }
    };
    let mut env: HashMap<String, String> = [
        ("BIND", "127.0.0.1"),
        ("PORT", "0"),
        ("JWT_SECRET", JWT_SECRET),
        ("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("RATE_LIMITS", "off"),
        ("REPLICA_ID", "test"),
        ("DATABASE_MAX_CONNECTIONS", "10"),
        // Test apps stop at once; the drain tests set their own window.
        ("DRAIN_WINDOW", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("DATABASE_URL".into(), database_url);
    for (k, v) in overrides {
        env.insert(k.to_string(), v.to_string());
    }
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test config is valid");
    let app = Application::build(config).await.expect("application starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp { api: Api::new(&base), state, database, shutdown: Mutex::new(Some(tx)), server: Mutex::new(Some(server)) }
}

/// `admin_url` with its database name replaced by `name`.
pub fn with_database(admin_url: &str, name: &str) -> String {
    let (server, query) = admin_url.split_once('?').map(|(s, q)| (s, Some(q))).unwrap_or((admin_url, None));
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

async fn create_postgres_database(name: &str) {
    use sqlx::Connection;
    let url = postgres_admin_url();
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required for these tests ({e}); start it or set TEST_DATABASE_URL"));
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
}

async fn drop_postgres_database(name: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
    }
}

impl TestApp {
    /// The URL of this app's PostgreSQL database, for a second app on the same one.
    pub fn postgres_url(&self) -> Option<String> {
        self.database.as_ref().map(|name| with_database(&postgres_admin_url(), name))
    }

    /// Stops the server gracefully and removes the test database.
    pub async fn cleanup(&self) {
        self.stop().await;
        if let Some(name) = &self.database {
            drop_postgres_database(name).await;
        }
    }

    pub async fn stop(&self) {
        if let Some(tx) = self.shutdown.lock().await.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.lock().await.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), server).await;
            let result = result.expect("server stops within 10 s").expect("server task");
            result.expect("server exits cleanly");
        }
    }
}

impl Api {
    pub fn new(base: &str) -> Api {
        let keys = JwtKeys::new(JWT_SECRET);
        let admin_id = Uuid::new_v4();
        let admin = TestUser { id: admin_id, token: keys.issue(admin_id, Role::Admin, Duration::from_secs(3600)) };
        Api { base: base.to_string(), http: reqwest::Client::new(), admin, keys }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn token(&self, user_id: Uuid, role: Role) -> String {
        self.keys.issue(user_id, role, Duration::from_secs(3600))
    }

    /// A token that expires `ttl` (whole seconds) from now.
    pub fn token_with_ttl(&self, user_id: Uuid, role: Role, ttl: Duration) -> String {
        self.keys.issue(user_id, role, ttl)
    }

    /// The sum of a metric's samples on this server whose line contains every one of `labels`.
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let text = self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
            .filter(|line| labels.iter().all(|label| line.contains(label)))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// A user with a valid token who has not been seen by the server yet.
    pub fn new_user(&self) -> TestUser {
        let id = Uuid::new_v4();
        TestUser { id, token: self.token(id, Role::User) }
    }

    /// A user the server has seen (created by an authenticated request).
    pub async fn known_user(&self) -> TestUser {
        let user = self.new_user();
        self.get("/api/me", Some(&user.token)).await.expect(200);
        user
    }

    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        into_response(request.send().await.expect("request sent")).await
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        let mut request = self.http.request(method, self.url(path)).header("content-type", content_type).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        into_response(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    /// Every element under `key` of a paged list, walking `nextCursor` 100 at a time.
    pub async fn all_pages(&self, path: &str, token: Option<&str>, key: &str) -> Vec<Value> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{separator}limit=100&cursor={c}"),
                None => format!("{path}{separator}limit=100"),
            };
            let page = self.get(&url, token).await;
            all.extend(page.expect(200)[key].as_array().expect("a list").iter().cloned());
            match page.body["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return all,
            }
        }
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Response {
        self.post(path, Some(&self.admin.token), body).await
    }

    /// Creates a case and returns its JSON.
    pub async fn create_case(&self, price: f64, items: Value) -> Value {
        let body = json!({ "name": "Test case", "image": "case.png", "price": price, "items": items });
        self.admin_post("/api/admin/cases", body).await.expect(201)["case"].clone()
    }

    /// A case with one money item worth `value`, so every open is predictable.
    pub async fn simple_case(&self, price: f64, value: f64) -> Value {
        self.create_case(
            price,
            json!([{ "name": "Coins", "image": "", "rarity": "common", "kind": "money", "value": value, "weight": 1 }]),
        )
        .await
    }

    pub async fn fund(&self, user: &TestUser, amount: f64) -> Value {
        self.admin_post("/api/admin/balance/add", json!({ "userId": user.id, "amount": amount }))
            .await
            .expect(200)
            .clone()
    }

    pub async fn balance(&self, user: &TestUser) -> (f64, i64) {
        let me = self.get("/api/me", Some(&user.token)).await;
        let user = &me.expect(200)["user"];
        (user["balance"].as_f64().unwrap(), user["balanceVersion"].as_i64().unwrap())
    }

    pub async fn payment(&self, body: &Value) -> Response {
        let raw = serde_json::to_vec(body).unwrap();
        let signature = sign(WEBHOOK_SECRET.as_bytes(), &raw);
        self.signed_raw("/api/payment/callback", raw, &signature).await
    }

    pub async fn signed_raw(&self, path: &str, raw: Vec<u8>, signature: &str) -> Response {
        let request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("x-signature", signature)
            .body(raw);
        into_response(request.send().await.expect("request sent")).await
    }

    pub async fn socket(&self, token: Option<&str>) -> TestSocket {
        TestSocket::connect(&self.base, token).await.expect("socket connects")
    }
}

pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn into_response(response: reqwest::Response) -> Response {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body read");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Response { status, headers, body }
}

/// A Rust Socket.IO client (rust_socketio, websocket transport) that records what it receives.
pub struct TestSocket {
    pub client: SocketClient,
    events: Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
}

#[derive(Debug)]
pub enum ConnectFailure {
    Refused(String),
    #[allow(dead_code)]
    Other(String),
}

impl TestSocket {
    pub async fn connect(base: &str, token: Option<&str>) -> Result<TestSocket, ConnectFailure> {
        TestSocket::connect_with_auth(base, token.map(|token| json!({ "token": token }))).await
    }

    /// With `auth` as the handshake's auth object, e.g. `{ token, positions: { balance } }`.
    pub async fn connect_with_auth(base: &str, auth: Option<Value>) -> Result<TestSocket, ConnectFailure> {
        let (tx, rx) = mpsc::unbounded_channel::<(String, Value)>();
        let (status_tx, mut status_rx) = mpsc::unbounded_channel::<Result<(), String>>();
        let any_tx = tx.clone();
        let close_tx = tx.clone();
        let connected = status_tx.clone();
        let mut builder = ClientBuilder::new(base)
            .namespace("/")
            .transport_type(TransportType::Websocket)
            .reconnect(false)
            .on_any(move |event: SocketEvent, payload: Payload, _| {
                let tx = any_tx.clone();
                async move {
                    let (name, value) = match (event, payload) {
                        // rust_socketio reads an event without arguments, `["cases:updated"]`,
                        // as a "message" whose payload is the event name.
                        (SocketEvent::Message, Payload::Text(values)) if values.len() == 1 && values[0].is_string() => {
                            (values[0].as_str().unwrap_or_default().to_string(), Value::Null)
                        }
                        (event, Payload::Text(mut values)) if values.len() == 1 => {
                            (event.to_string(), values.remove(0))
                        }
                        (event, Payload::Text(values)) => (event.to_string(), Value::Array(values)),
                        (event, _) => (event.to_string(), Value::Null),
                    };
                    let _ = tx.send((name, value));
                }
                .boxed()
            })
            // The server's namespace disconnect, recorded as an event named "disconnect".
            .on(SocketEvent::Close, move |_, _| {
                let _ = close_tx.send(("disconnect".to_string(), Value::Null));
                async {}.boxed()
            })
            .on(SocketEvent::Connect, move |_, _| {
                let _ = connected.send(Ok(()));
                async {}.boxed()
            })
            .on(SocketEvent::Error, move |payload, _| {
                let text = format!("{payload:?}");
                let _ = status_tx.send(Err(text));
                async {}.boxed()
            });
        if let Some(auth) = auth {
            builder = builder.auth(auth);
        }
        let client = builder.connect().await.map_err(|e| ConnectFailure::Other(e.to_string()))?;
        match tokio::time::timeout(Duration::from_secs(5), status_rx.recv()).await {
            Ok(Some(Ok(()))) => Ok(TestSocket { client, events: Mutex::new(rx) }),
            Ok(Some(Err(error))) => Err(ConnectFailure::Refused(error)),
            Ok(None) | Err(_) => Err(ConnectFailure::Other("no connect or error within 5 s".into())),
        }
    }

    /// Waits for `event` and returns its payload, skipping other events.
    pub async fn expect(&self, event: &str) -> Value {
        self.wait_for(event).await.unwrap_or_else(|| panic!("{event} did not arrive within 5 s"))
    }

    /// Waits up to 5 s for `event`, skipping other events; `None` if it did not come.
    pub async fn wait_for(&self, event: &str) -> Option<Value> {
        let mut events = self.events.lock().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some((name, payload))) if name == event => return Some(payload),
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Everything received up to and including `event` (waiting up to 5 s for it), in order.
    pub async fn until(&self, event: &str) -> Vec<(String, Value)> {
        let mut events = self.events.lock().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some((name, payload))) => {
                    let last = name == event;
                    seen.push((name, payload));
                    if last {
                        return seen;
                    }
                }
                Ok(None) | Err(_) => panic!("{event} did not arrive within 5 s; received {seen:?}"),
            }
        }
    }

    /// Asserts that no event named `event` arrives within `window`.
    pub async fn expect_none(&self, event: &str, window: Duration) {
        let mut events = self.events.lock().await;
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some((name, payload))) = tokio::time::timeout_at(deadline, events.recv()).await {
            assert_ne!(name, event, "unexpected {event}: {payload}");
        }
    }

    /// Everything received so far.
    pub async fn drain(&self) -> Vec<(String, Value)> {
        let mut events = self.events.lock().await;
        let mut all = Vec::new();
        while let Ok((name, payload)) = events.try_recv() {
            all.push((name, payload));
        }
        all
    }

    pub async fn emit_with_ack(&self, event: &str, data: Value) -> Value {
        let (tx, rx) = oneshot::channel::<Value>();
        let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
        self.client
            .emit_with_ack(event, data, Duration::from_secs(5), move |payload: Payload, _| {
                // rust_socketio hands ack arguments over as one JSON array.
                let value = match payload {
                    Payload::Text(mut values) if !values.is_empty() => match values.remove(0) {
                        Value::Array(mut args) if args.len() == 1 => args.remove(0),
                        other => other,
                    },
                    _ => Value::Null,
                };
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(value);
                }
                async {}.boxed()
            })
            .await
            .expect("emit");
        tokio::time::timeout(Duration::from_secs(5), rx).await.expect("ack within 5 s").expect("ack")
    }

    pub async fn close(self) {
        let _ = self.client.disconnect().await;
    }
}

/// Runs each test body once on SQLite and once on PostgreSQL, each on its own fresh app.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[allow(unused_imports)]
                use $crate::helpers::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let $app = &$crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await;
                    $body
                    $app.cleanup().await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let $app = &$crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await;
                    $body
                    $app.cleanup().await;
                }
            }
        )*
    };
}

/// Runs the npm `socket.io-client` suite (tests/js) against `base`, over websocket and polling,
/// installing its node_modules on first use. Returns its output; fails the test if it failed.
pub async fn run_socket_io_client_suite(base: &str) -> String {
    run_node_tests(base, "tests/js/", &[]).await
}

/// Runs `node --test <target>` with the test secrets, `CYBERHUB_URL=base` and `env`.
pub async fn run_node_tests(base: &str, target: &str, env: &[(&str, &str)]) -> String {
    use std::path::Path;
    use std::process::Command;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let js = root.join("tests/js");
    if !js.join("node_modules/socket.io-client").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&js)
            .status()
            .expect("npm is installed (Node.js is required for this test)");
        assert!(status.success(), "npm ci failed in {}", js.display());
    }
    let base = base.to_string();
    let target = target.to_string();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=spec", &target])
            .current_dir(root)
            .envs(env)
            .env("CYBERHUB_URL", base)
            .env("JWT_SECRET", JWT_SECRET)
            .env("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the socket.io-client suite failed");
    assert!(stdout.contains("websocket") && stdout.contains("polling"), "both transports ran");
    assert!(!stdout.contains("Session ID unknown"));
    stdout
}
