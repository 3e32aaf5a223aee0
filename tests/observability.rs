//! The operators' test: the alert rules and Prometheus configuration are valid, and every query of
//! the Grafana dashboard and of the alert rules works against a real cluster.
//!
//! It starts the local cluster (deploy/local/cluster.sh, through the test kit: Redis, a fresh
//! PostgreSQL database, two replicas, nginx), a real Prometheus scraping the replicas every second with
//! deploy/prometheus/alerts.yml loaded, drives traffic through nginx (admin, opens, claims,
//! payments, errors, sockets on both replicas), then evaluates every panel target of
//! deploy/grafana/dashboards/cyberhub.json and every alert expression through the Prometheus HTTP
//! API. A panel query that errors or returns no series fails the test; an alert query may be empty
//! but must not error. It prints a table of query → series count.
//!
//! Needs promtool and prometheus (`apt-get install prometheus`), redis-server, nginx, psql and a
//! PostgreSQL server where `postgres` may create databases (TEST_DATABASE_URL, as for the API
//! tests). Anything missing fails the test: it never skips.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

mod helpers;

use helpers::{eventually, free_port, repo, Api, CallCounts, Cluster, ConnectFailure, TestSocket};

const REPLICAS: usize = 2;
/// Grafana's interval variables, replaced by a window that holds many 1 s scrapes.
const WINDOW: &str = "1m";

fn alerts_file() -> PathBuf {
    repo().join("deploy/prometheus/alerts.yml")
}

/// Fails (never skips) when a program the test needs is not installed.
fn require_tool(name: &str, install: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(found, "{name} is required by the observability test and is not on PATH: {install}");
}

fn promtool(args: &[&str]) -> String {
    let output = Command::new("promtool").args(args).output().expect("promtool runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "promtool {} failed:\n{text}", args.join(" "));
    println!("$ promtool {}\n{}", args.join(" "), text.trim_end());
    text
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A Prometheus of our own scraping the cluster's replicas every second, with the project's
/// alert rules loaded; its data and log in the cluster's directory. Killed when dropped (before
/// the cluster, which stops and removes the rest), its log shown if the test failed.
struct OwnPrometheus {
    child: Mutex<Child>,
    url: String,
    log: PathBuf,
}

impl OwnPrometheus {
    async fn start(cluster: &Cluster) -> OwnPrometheus {
        let targets: Vec<String> = cluster
            .env
            .replica_urls
            .iter()
            .map(|url| format!("\"{}\"", url.trim_start_matches("http://").trim_end_matches('/')))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - \"{alerts}\"\n\
             scrape_configs:\n  - job_name: cyberhub\n    metrics_path: /metrics\n    static_configs:\n      - targets: [{targets}]\n",
            alerts = alerts_file().display(),
            targets = targets.join(", "),
        );
        let config_path = cluster.dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        promtool(&["check", "config", config_path.to_str().unwrap()]);

        let port = free_port();
        let log = cluster.dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("prometheus log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", cluster.dir.join("prometheus-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("prometheus starts");
        let prometheus = OwnPrometheus { child: Mutex::new(child), url: format!("http://127.0.0.1:{port}"), log };

        let http = reqwest::Client::new();
        let ready_url = format!("{}/-/ready", prometheus.url);
        eventually(Duration::from_secs(30), "prometheus is ready", || async {
            let exited = prometheus.child.lock().unwrap().try_wait();
            if let Ok(Some(status)) = exited {
                panic!("prometheus exited ({status}):\n{}", tail(&prometheus.log, 30));
            }
            match http.get(&ready_url).send().await {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(response.status().to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        println!("prometheus up on {}", prometheus.url);
        prometheus
    }
}

impl Drop for OwnPrometheus {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        if std::thread::panicking() {
            eprintln!("--- prometheus.log (last 15 lines)\n{}", tail(&self.log, 15));
        }
    }
}

// --- traffic ---------------------------------------------------------------------------------

/// A player or admin: a fresh user id and a token minted by `cyberhub token`.
#[derive(Clone)]
struct User {
    id: Uuid,
    token: String,
}

async fn mint(cluster: &Cluster, admin: bool) -> User {
    let id = Uuid::new_v4();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cyberhub"));
    command.args(["token", "--sub", &id.to_string()]);
    if admin {
        command.args(["--role", "admin"]);
    }
    let output = command
        .env("JWT_SECRET", &cluster.env.jwt_secret)
        .env_remove("DATABASE_URL")
        .current_dir(&cluster.dir)
        .output()
        .await
        .expect("cyberhub token runs");
    assert!(output.status.success(), "cyberhub token failed: {}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "cyberhub token printed no JWT: {token}");
    User { id, token }
}

/// One request through `api`; (status, body).
async fn call(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let response = api.request(method, path, token, body.cloned()).await;
    (response.status.as_u16(), response.body)
}

/// Everything the dashboard shows, made to happen. Returns what did not work as it should, and
/// the players' sockets, which stay connected while Prometheus scrapes.
async fn drive_traffic(cluster: &Cluster, counts: &CallCounts) -> (Vec<String>, Vec<TestSocket>) {
    use reqwest::Method;
    let mut problems = Vec::new();
    let env = &cluster.env;
    let [entry, r1, r2] = [&env.cyberhub_url, &env.replica_urls[0], &env.replica_urls[1]]
        .map(|base| Api::new(base).counting(counts.clone()));
    let admin = mint(cluster, true).await;
    let (alice, bob, carol, dave) = (
        mint(cluster, false).await,
        mint(cluster, false).await,
        mint(cluster, false).await,
        mint(cluster, false).await,
    );

    call(&entry, Method::GET, "/health", None, None).await;
    call(&entry, Method::GET, "/api/cases", None, None).await;
    for user in [&alice, &bob, &dave] {
        let (status, body) = call(&entry, Method::GET, "/api/me", Some(&user.token), None).await;
        assert_eq!(status, 200, "GET /api/me through nginx: {body}");
    }
    let items =
        json!([{ "name": "Coins", "image": "", "rarity": "common", "kind": "money", "value": 0.75, "weight": 1 }]);
    let (status, created) = call(
        &entry,
        Method::POST,
        "/api/admin/cases",
        Some(&admin.token),
        Some(&json!({ "name": "Observability", "image": "o.png", "price": 1.0, "items": items })),
    )
    .await;
    assert_eq!(status, 201, "create case: {created}");
    let case_id = created["case"]["id"].as_str().expect("case id").to_string();

    // Players on different replicas, so every event crosses the bus one way or the other.
    let alice_socket = TestSocket::connect(&r1.base, Some(&alice.token)).await.expect("alice connects to replica 1");
    let bob_socket = TestSocket::connect(&r2.base, Some(&bob.token)).await.expect("bob connects to replica 2");
    let watchers = [
        TestSocket::connect(&r1.base, None).await.expect("anonymous socket on replica 1"),
        TestSocket::connect(&r2.base, None).await.expect("anonymous socket on replica 2"),
        TestSocket::connect(&entry.base, None).await.expect("anonymous socket through nginx"),
    ];
    let (alice_balance, bob_balance) = (format!("balance:updated:{}", alice.id), format!("balance:updated:{}", bob.id));
    assert!(alice_socket.wait_for(&alice_balance).await.is_some(), "alice got no balance snapshot on connect");
    assert!(bob_socket.wait_for(&bob_balance).await.is_some(), "bob got no balance snapshot on connect");
    match TestSocket::connect(&r1.base, Some("not-a-token")).await {
        Err(ConnectFailure::Refused(message)) if message.contains("unauthorized") => {}
        Err(failure) => problems.push(format!("a bad token was refused, but not as unauthorized: {failure:?}")),
        Ok(socket) => {
            problems.push("a socket with a bad token connected".into());
            socket.close().await;
        }
    }

    // Admin money published on the other player's replica: delivered only over the bus.
    let add = |user: &User, amount: f64| json!({ "userId": user.id, "amount": amount, "reason": "observability" });
    call(&r2, Method::POST, "/api/admin/balance/add", Some(&admin.token), Some(&add(&alice, 10.0))).await;
    if alice_socket.wait_for(&alice_balance).await.is_none() {
        problems.push("alice (socket on replica 1) got no balance:updated for a top-up made on replica 2: the bus did not deliver".into());
    }
    call(&r1, Method::POST, "/api/admin/balance/add", Some(&admin.token), Some(&add(&bob, 20.0))).await;
    if bob_socket.wait_for(&bob_balance).await.is_none() {
        problems.push(
            "bob (socket on replica 2) got no balance:updated for a top-up made on replica 1: the bus did not deliver"
                .into(),
        );
    }
    call(&entry, Method::POST, "/api/admin/balance/add", Some(&admin.token), Some(&add(&alice, 5.0))).await;
    call(&entry, Method::POST, "/api/admin/balance/subtract", Some(&admin.token), Some(&add(&alice, 1.5))).await;

    // Opens and claims through nginx.
    let mut won = Vec::new();
    for user in [&alice, &alice, &alice, &bob, &bob] {
        let (status, body) =
            call(&entry, Method::POST, "/api/cases/open", Some(&user.token), Some(&json!({ "caseId": case_id }))).await;
        if status == 200 {
            won.push((user.clone(), body["inventoryItemId"].as_str().unwrap_or_default().to_string()));
        } else {
            problems.push(format!("open through nginx answered {status}: {body}"));
        }
    }
    for (user, item) in won.iter().take(2) {
        let (status, body) = call(
            &entry,
            Method::POST,
            "/api/inventory/claim",
            Some(&user.token),
            Some(&json!({ "inventoryItemId": item })),
        )
        .await;
        if status != 200 {
            problems.push(format!("claim answered {status}: {body}"));
        }
    }
    call(&entry, Method::GET, "/api/inventory", Some(&alice.token), None).await;
    // One user opening faster than RATE_LIMIT_OPENS (10/s) on one replica: some are refused.
    let open = json!({ "caseId": case_id });
    let burst = futures::future::join_all(
        (0..14).map(|_| call(&r1, Method::POST, "/api/cases/open", Some(&bob.token), Some(&open))),
    )
    .await;
    let limited = burst.iter().filter(|(status, _)| *status == 429).count();
    println!("open burst of 14 on replica 1: {limited} refused with 429");
    // RATE_LIMIT_OPENS is 10/s with a burst of 10: 14 at once cannot all pass.
    if limited == 0 {
        problems.push("an open burst of 14 at once on one replica got no 429".into());
    }

    // Payments: credited, its duplicate, a failed one, and a forged one.
    let secret = env.webhook_secret.as_str();
    let paid = json!({ "paymentId": format!("obs-{}", Uuid::new_v4()), "userId": carol.id, "amount": 7.5, "status": "success" });
    for (body, signing_secret, expected) in [
        (&paid, secret, "credited"),
        (&paid, secret, "duplicate"),
        (
            &json!({ "paymentId": format!("obs-{}", Uuid::new_v4()), "userId": carol.id, "amount": 3, "status": "failed" }),
            secret,
            "not_success",
        ),
        (
            &json!({ "paymentId": "forged", "userId": carol.id, "amount": 1000, "status": "success" }),
            "not-the-secret",
            "rejected_signature",
        ),
    ] {
        let paid = entry.payment_signed_with(body, signing_secret).await;
        let (status, answer) = (paid.status.as_u16(), paid.body);
        let ok = match expected {
            "credited" => status == 200 && answer["duplicate"] == json!(false),
            "duplicate" => status == 200 && answer["duplicate"] == json!(true),
            "not_success" => status == 200 && answer["credited"] == json!(false),
            _ => status == 401,
        };
        if !ok {
            problems.push(format!("payment meant to be {expected} answered {status}: {answer}"));
        }
    }

    // Errors: unknown route, unknown case, malformed id, no token, not enough money.
    call(&entry, Method::GET, "/api/no-such-route", None, None).await;
    call(&entry, Method::GET, &format!("/api/cases/{}", Uuid::new_v4()), None, None).await;
    call(&entry, Method::GET, "/api/cases/not-a-uuid", None, None).await;
    call(&entry, Method::GET, "/api/me", None, None).await;
    call(&entry, Method::POST, "/api/cases/open", Some(&dave.token), Some(&json!({ "caseId": case_id }))).await;

    // A case change reaches anonymous sockets on both replicas (cases:updated).
    call(
        &entry,
        Method::PUT,
        &format!("/api/admin/cases/{case_id}/price"),
        Some(&admin.token),
        Some(&json!({ "price": 1.25 })),
    )
    .await;
    for (i, watcher) in watchers.iter().enumerate() {
        if watcher.wait_for("cases:updated").await.is_none() {
            problems.push(format!("anonymous socket #{} got no cases:updated", i + 1));
        }
    }
    // Disconnects, so the disconnect series exist; alice and bob stay connected until the end.
    for watcher in watchers {
        watcher.close().await;
    }
    (problems, vec![alice_socket, bob_socket])
}

// --- Prometheus ------------------------------------------------------------------------------

struct Prometheus {
    http: reqwest::Client,
    base: String,
}

impl Prometheus {
    /// A query goes as a POST form (no URL length limit); /api/v1/rules only answers GET.
    async fn api(&self, path: &str, form: &[(&str, &str)]) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = if form.is_empty() { self.http.get(url) } else { self.http.post(url).form(form) };
        let response = request.timeout(Duration::from_secs(10)).send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let body: Value = serde_json::from_str(&text).map_err(|_| format!("HTTP {status}: {text}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"].as_str().unwrap_or("error"), body["error"].as_str().unwrap_or("?")))
        }
    }

    /// The number of series (a scalar counts as one) an instant query returns.
    async fn series(&self, query: &str) -> Result<usize, String> {
        let data = self.api("/api/v1/query", &[("query", query)]).await?;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => Ok(data["result"].as_array().map_or(0, Vec::len)),
            Some("scalar") | Some("string") => Ok(1),
            other => Err(format!("unexpected resultType {other:?}")),
        }
    }

    async fn value(&self, query: &str) -> f64 {
        let Ok(data) = self.api("/api/v1/query", &[("query", query)]).await else { return f64::NAN };
        data["result"][0]["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
    }
}

/// Grafana's variables replaced as Grafana would for "All": `$__rate_interval` and friends by a
/// window, template variables (`$name`, `${name}`, `${name:format}`, `[[name]]`) by `.*`.
fn substitute_variables(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find(['$', '[']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (name, used) = if let Some(inner) = tail.strip_prefix("${") {
            match inner.find('}') {
                Some(end) => (inner[..end].split(':').next().unwrap_or(""), end + 3),
                None => ("", 0),
            }
        } else if let Some(inner) = tail.strip_prefix("[[") {
            match inner.find("]]") {
                Some(end) => (inner[..end].split(':').next().unwrap_or(""), end + 4),
                None => ("", 0),
            }
        } else if let Some(inner) = tail.strip_prefix('$') {
            let end = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
            (&inner[..end], end + 1)
        } else {
            ("", 0)
        };
        if name.is_empty() || used == 0 {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
            continue;
        }
        out.push_str(if name.starts_with("__") { WINDOW } else { ".*" });
        rest = &tail[used..];
    }
    out.push_str(rest);
    out
}

/// Every query the dashboard runs: (where it is, PromQL), panels of collapsed rows included.
fn dashboard_queries(dashboard: &Value, problems: &mut Vec<String>) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>, problems: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            walk(&panel["panels"], out, problems);
            let title = panel["title"].as_str().unwrap_or("?");
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str() else { continue };
                let uid = target["datasource"]["uid"].as_str().or_else(|| panel["datasource"]["uid"].as_str());
                if uid != Some("prometheus") {
                    problems.push(format!(
                        "panel '{title}' target {} has datasource uid {uid:?}, not \"prometheus\"",
                        target["refId"]
                    ));
                }
                out.push((
                    format!("panel: {title} [{}]", target["refId"].as_str().unwrap_or("?")),
                    substitute_variables(expr),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out, problems);
    // A query variable `label_values(metric{…}, label)` needs its metric to exist.
    for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        let query = variable["query"]["query"].as_str().or_else(|| variable["query"].as_str()).unwrap_or("");
        if let Some(inner) = query.strip_prefix("label_values(").and_then(|q| q.strip_suffix(')')) {
            let metric = inner.rsplit_once(',').map_or(inner, |(m, _)| m).trim();
            out.push((
                format!("variable: ${}", variable["name"].as_str().unwrap_or("?")),
                substitute_variables(metric),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alert_queries_work_against_a_live_cluster() {
    for (tool, install) in [
        ("promtool", "apt-get install prometheus"),
        ("prometheus", "apt-get install prometheus"),
        ("redis-server", "apt-get install redis-server"),
        ("nginx", "apt-get install nginx"),
        ("psql", "apt-get install postgresql"),
        ("curl", "apt-get install curl"),
    ] {
        require_tool(tool, install);
    }

    // (a) The shipped rules and configuration pass promtool.
    let alerts_text = std::fs::read_to_string(alerts_file()).expect("read alerts.yml");
    let alert_count = alerts_text.lines().filter(|l| l.trim_start().starts_with("- alert:")).count();
    let checked = promtool(&["check", "rules", alerts_file().to_str().unwrap()]);
    assert!(
        checked.contains(&format!("{alert_count} rules found")),
        "promtool saw other than {alert_count} rules:\n{checked}"
    );
    promtool(&["check", "config", repo().join("deploy/prometheus/prometheus.yml").to_str().unwrap()]);

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/dashboards/cyberhub.json")).expect("read dashboard"),
    )
    .expect("the dashboard is valid JSON");
    assert!(dashboard["schemaVersion"].as_i64().unwrap_or(0) >= 38, "dashboard schemaVersion below 38");

    // (b, c) The cluster (limits on, at their defaults, so the limiter series are real; the traffic
    // stays below them except for the one burst meant to hit them) and a Prometheus scraping it.
    let cluster = Cluster::builder(REPLICAS).rate_limits().start().await;
    let own_prometheus = OwnPrometheus::start(&cluster).await;
    let prometheus = Prometheus { http: reqwest::Client::new(), base: own_prometheus.url.clone() };

    // (d) Traffic.
    let counts: CallCounts = Arc::new(Mutex::new(BTreeMap::new()));
    let (mut problems, sockets) = drive_traffic(&cluster, &counts).await;
    println!("\nrequests made (method path → status: count):");
    for (call, count) in counts.lock().unwrap().iter() {
        println!("  {call}: {count}");
    }

    // (e) Until both replicas have been scraped since the traffic, then a few more scrapes so every
    // rate() window holds several samples, and the rules have been evaluated.
    eventually(Duration::from_secs(30), "Prometheus sees the traffic", || async {
        let up = prometheus.value(r#"sum(up{job="cyberhub"})"#).await;
        let paid = prometheus.value(r#"sum(cyberhub_payments_total{outcome="credited"})"#).await;
        if up == REPLICAS as f64 && paid >= 1.0 {
            Ok(())
        } else {
            Err(format!("up={up}, credited={paid}"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    let rules = prometheus.api("/api/v1/rules?type=alert", &[]).await.expect("GET /api/v1/rules");
    let mut alert_queries = Vec::new();
    for group in rules["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            let name = rule["name"].as_str().unwrap_or("?");
            if rule["health"] != "ok" {
                problems.push(format!("alert {name}: rule health {} ({})", rule["health"], rule["lastError"]));
            }
            alert_queries.push((format!("alert: {name}"), rule["query"].as_str().unwrap_or("").to_string()));
        }
    }
    if alert_queries.len() != alert_count {
        problems.push(format!("Prometheus loaded {} alert rules, alerts.yml has {alert_count}", alert_queries.len()));
    }

    let panel_queries = dashboard_queries(&dashboard, &mut problems);
    let (count_header, source_header) = ("series", "source");
    println!("\n{count_header:>6}  {source_header:<58}  query");
    let panels = panel_queries.iter().map(|query| (query, true));
    let alerts = alert_queries.iter().map(|query| (query, false));
    for ((place, expr), must_have_series) in panels.chain(alerts) {
        let result = prometheus.series(expr).await;
        let shown = match &result {
            Ok(n) => n.to_string(),
            Err(_) => "ERROR".to_string(),
        };
        println!("{shown:>6}  {place:<58}  {expr}");
        match result {
            Err(error) => problems.push(format!("{place}: query failed: {error}\n    {expr}")),
            Ok(0) if must_have_series => problems.push(format!("{place}: no series\n    {expr}")),
            Ok(_) => {}
        }
    }
    println!();

    // The panels are not only non-empty: they show what the traffic did.
    let expected_facts = [
        (r#"count(up{job="cyberhub"} == 1)"#, "==", REPLICAS as f64),
        (r#"sum(cyberhub_connected_clients{job="cyberhub"})"#, "==", 2.0),
        (r#"sum(cyberhub_socket_connects_total{outcome="unauthorized"})"#, ">=", 1.0),
        (r#"sum(cyberhub_events_delivered_total{origin="remote"})"#, ">=", 1.0),
        ("sum(cyberhub_event_delivery_lag_seconds_count)", ">=", 1.0),
        (r#"sum(cyberhub_payments_total{outcome="credited"})"#, "==", 1.0),
        (r#"sum(cyberhub_payments_total{outcome="duplicate"})"#, "==", 1.0),
        (r#"sum(cyberhub_payments_total{outcome="not_success"})"#, "==", 1.0),
        (r#"sum(cyberhub_payments_total{outcome="rejected_signature"})"#, "==", 1.0),
        (r#"sum(cyberhub_ledger_cents_total{kind="payment"})"#, "==", 750.0),
        ("sum(cyberhub_claims_total)", "==", 2.0),
        (r#"sum(cyberhub_http_requests_total{route="unmatched", status="404"})"#, ">=", 1.0),
    ];
    for (query, op, expected) in expected_facts {
        let value = prometheus.value(query).await;
        let holds = if op == "==" { value == expected } else { value >= expected };
        println!("{:>6}  {query} {op} {expected}", if holds { "ok" } else { "WRONG" });
        if !holds {
            problems.push(format!("{query} is {value}, expected {op} {expected}"));
        }
    }
    println!();
    for socket in sockets {
        socket.close().await;
    }

    // The outage alerts' expressions match a real outage (their `for:` is not waited out).
    cluster.stop_redis().await;
    cluster.kill_replica(1).await;
    for (alert, series) in [("CyberhubReplicaDown", 1), ("CyberhubBusDown", 1)] {
        let expr = alert_queries.iter().find(|(place, _)| place.ends_with(alert)).map(|(_, q)| q.clone());
        let Some(expr) = expr else { continue };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut seen = 0;
        while tokio::time::Instant::now() < deadline {
            seen = prometheus.series(&expr).await.unwrap_or(0);
            if seen >= series {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        println!("{seen:>6}  {alert} after Redis stopped and replica 2 killed: {expr}");
        if seen < series {
            problems.push(format!("{alert}: `{expr}` matched no series within 20 s of the outage"));
        }
    }

    assert!(problems.is_empty(), "{} problem(s):\n  {}", problems.len(), problems.join("\n  "));
    drop(own_prometheus);
    cluster.shutdown().await;
}
