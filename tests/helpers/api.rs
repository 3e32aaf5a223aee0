//! One HTTP client of a CyberHub base URL (an in-process app, a replica, nginx), with tokens
//! signed by the test secret.

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

use cyberhub::auth::JwtKeys;
use cyberhub::domain::Role;

use super::TestSocket;

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef";
pub const WEBHOOK_SECRET: &str = "test-webhook-secret-0123456789abcdef";

/// Answers counted by "METHOD path → status", shared by the clients of one test.
pub type CallCounts = Arc<Mutex<BTreeMap<String, usize>>>;

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub admin: TestUser,
    keys: JwtKeys,
    counts: Option<CallCounts>,
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

pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

impl Api {
    pub fn new(base: &str) -> Api {
        let keys = JwtKeys::new(JWT_SECRET);
        let admin_id = Uuid::new_v4();
        let admin = TestUser { id: admin_id, token: keys.issue(admin_id, Role::Admin, Duration::from_secs(3600)) };
        Api { base: base.to_string(), http: reqwest::Client::new(), admin, keys, counts: None }
    }

    /// Counts every answer of this client into `counts`.
    pub fn counting(mut self, counts: CallCounts) -> Api {
        self.counts = Some(counts);
        self
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
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(&method, path, request).await
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        let mut request =
            self.http.request(method.clone(), self.url(path)).header("content-type", content_type).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(&method, path, request).await
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

    /// Sets a case's price: `cases:updated` to every socket, and nothing else changes for any
    /// player. The sentinel that an anonymous socket, or one whose balance must stay, can wait for.
    pub async fn reprice(&self, case: &Value, price: f64) {
        let path = format!("/api/admin/cases/{}/price", case["id"].as_str().expect("a case id"));
        self.put(&path, Some(&self.admin.token), json!({ "price": price })).await.expect(200);
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

    /// A payment callback signed with the test secret.
    pub async fn payment(&self, body: &Value) -> Response {
        self.payment_signed_with(body, WEBHOOK_SECRET).await
    }

    pub async fn payment_signed_with(&self, body: &Value, secret: &str) -> Response {
        let raw = serde_json::to_vec(body).unwrap();
        let signature = sign(secret.as_bytes(), &raw);
        self.signed_raw("/api/payment/callback", raw, &signature).await
    }

    pub async fn signed_raw(&self, path: &str, raw: Vec<u8>, signature: &str) -> Response {
        let request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("x-signature", signature)
            .body(raw);
        self.send(&Method::POST, path, request).await
    }

    pub async fn socket(&self, token: Option<&str>) -> TestSocket {
        TestSocket::connect(&self.base, token).await.expect("socket connects")
    }

    async fn send(&self, method: &Method, path: &str, request: reqwest::RequestBuilder) -> Response {
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {}: {e}", self.url(path)));
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body read");
        let body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        if let Some(counts) = &self.counts {
            *counts.lock().unwrap().entry(format!("{method} {path} → {}", status.as_u16())).or_default() += 1;
        }
        Response { status, headers, body }
    }
}
