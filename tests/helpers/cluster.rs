//! A real cluster on loopback, started by the one launcher the project has:
//! deploy/local/cluster.sh (Redis, N `cyberhub` replicas, nginx from nginx/render.sh) on a fresh
//! PostgreSQL database and free ports. Every failure a test causes goes through the script's own
//! commands (`kill-replica`, `stop-replica`, `kill-redis`, …), so the tests exercise it too.
//!
//! Clusters are heavy (2 cores run three replicas, nginx and Redis): in one test binary they run
//! one at a time, whatever the harness's thread count; a test waits for the previous cluster to
//! be down before its own starts.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, LazyLock};
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

use super::{admin_url, free_ports, repo, TestDatabase, JWT_SECRET, WEBHOOK_SECRET};

/// What every replica of a test cluster signs bus messages with.
pub const BUS_SECRET: &str = "test-bus-secret-0123456789abcdef-0123";
/// Redis runs with `requirepass`, as in compose: the replicas and the tests authenticate.
pub const REDIS_PASSWORD: &str = "test-redis-password-0123456789";

/// Replica settings every test cluster gets unless the test sets its own.
const REPLICA_DEFAULTS: &[(&str, &str)] = &[
    ("DATABASE_MAX_CONNECTIONS", "8"),
    // A test's teardown stops at once; the drain tests set their own window.
    ("DRAIN_WINDOW", "0"),
    ("RUST_LOG", "info"),
];

/// How many times `up` is tried with fresh ports when one was taken by another process between
/// picking it and binding it (cluster.sh exits 3 then).
const PORT_ATTEMPTS: usize = 4;

static ONE_AT_A_TIME: LazyLock<Arc<Mutex<()>>> = LazyLock::new(Arc::default);

/// What `cluster.sh up` wrote to `$CLUSTER_DIR/env`, for other tools.
#[derive(Clone, Debug, Default)]
pub struct ClusterEnv {
    pub cyberhub_url: String,
    pub replica_urls: Vec<String>,
    pub redis_url: String,
    pub database_url: String,
    pub jwt_secret: String,
    pub webhook_secret: String,
}

/// Which Redis the cluster's bus runs on (cluster.sh's REDIS_MODE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisMode {
    /// One redis-server.
    Single,
    /// A master, a replica and three sentinels.
    Sentinel,
    /// A Redis Cluster: three masters with a replica each.
    Cluster,
}

impl RedisMode {
    fn as_str(self) -> &'static str {
        match self {
            RedisMode::Single => "single",
            RedisMode::Sentinel => "sentinel",
            RedisMode::Cluster => "cluster",
        }
    }

    /// Ports beyond REDIS_PORT.
    fn ports(self) -> usize {
        match self {
            RedisMode::Single => 0,
            RedisMode::Sentinel => 5,
            // Six nodes and their cluster-bus ports (free ports are often above 55535, where
            // the default, port + 10000, does not exist).
            RedisMode::Cluster => 12,
        }
    }
}

/// Sentinel's down-after-milliseconds and cluster-node-timeout in the tests: failovers take seconds.
pub const REDIS_NODE_TIMEOUT_MS: u64 = 2_000;

pub struct ClusterBuilder {
    replicas: usize,
    redis_mode: RedisMode,
    replica_env: BTreeMap<String, String>,
    extra_upstreams: Vec<(String, u16)>,
    database_port: Option<u16>,
    rate_limits: bool,
    redis_tls: bool,
}

impl ClusterBuilder {
    /// An environment variable every replica gets, over the defaults.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        assert!(!value.contains(char::is_whitespace), "cluster.sh REPLICA_ENV values have no spaces: {name}={value}");
        self.replica_env.insert(name.into(), value.into());
        self
    }

    /// nginx also balances over `id` on `port` (a fake replica the test runs), beside the replicas.
    pub fn extra_upstream(mut self, id: &str, port: u16) -> Self {
        self.extra_upstreams.push((id.into(), port));
        self
    }

    /// The replicas reach PostgreSQL at `127.0.0.1:port` (a test's proxy in front of the server).
    pub fn database_through(mut self, port: u16) -> Self {
        self.database_port = Some(port);
        self
    }

    /// The bus on a Sentinel set or a Redis Cluster instead of one Redis.
    pub fn redis(mut self, mode: RedisMode) -> Self {
        self.redis_mode = mode;
        self
    }

    /// Redis speaks only TLS and asks for client certificates (cluster.sh REDIS_TLS=1, one
    /// Redis); the replicas get `rediss://` and the files under `Cluster::tls_dir`.
    pub fn redis_tls(mut self) -> Self {
        self.redis_tls = true;
        self
    }

    /// The rate limits on, at their defaults (off otherwise, as for the API tests).
    pub fn rate_limits(mut self) -> Self {
        self.rate_limits = true;
        self
    }

    pub async fn start(self) -> Cluster {
        let serial = ONE_AT_A_TIME.clone().lock_owned().await;
        let database = TestDatabase::postgres("cyberhub_cluster").await;
        let database_url = match self.database_port {
            Some(port) => through_port(database.url(), port),
            None => database.url().to_string(),
        };
        let dir = std::env::temp_dir().join(format!("cyberhub-cluster-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let mut replica_env: BTreeMap<String, String> =
            REPLICA_DEFAULTS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        replica_env.extend(self.replica_env);
        let replica_env: Vec<String> = replica_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let extra_upstreams: Vec<String> =
            self.extra_upstreams.iter().map(|(id, port)| format!("{id}=127.0.0.1:{port}")).collect();

        // Built before `up`, so a failing start is torn down like a failing test.
        let mut cluster = Cluster {
            dir,
            redis_port: 0,
            redis_ports: Vec::new(),
            redis_mode: self.redis_mode,
            nginx_port: 0,
            replica_ports: Vec::new(),
            env: ClusterEnv::default(),
            http: reqwest::Client::new(),
            is_down: false,
            database,
            _one_at_a_time: serial,
        };
        for attempt in 1..=PORT_ATTEMPTS {
            let extra = self.redis_mode.ports();
            let ports = free_ports(self.replicas + 2 + extra);
            (cluster.redis_port, cluster.nginx_port) = (ports[0], ports[1]);
            cluster.replica_ports = ports[2..2 + self.replicas].to_vec();
            cluster.redis_ports = ports[2 + self.replicas..].to_vec();
            let redis_ports: Vec<String> = cluster.redis_ports.iter().map(u16::to_string).collect();
            let (redis_ports, bus_ports) = match self.redis_mode {
                RedisMode::Cluster => (redis_ports[..6].to_vec(), redis_ports[6..].to_vec()),
                _ => (redis_ports, Vec::new()),
            };
            cluster.redis_ports.truncate(redis_ports.len());
            let replica_ports: Vec<String> = cluster.replica_ports.iter().map(u16::to_string).collect();
            let settings = [
                ("REPLICAS", self.replicas.to_string()),
                ("REDIS_PORT", cluster.redis_port.to_string()),
                ("REDIS_MODE", self.redis_mode.as_str().to_string()),
                ("REDIS_PORTS", redis_ports.join(" ")),
                ("REDIS_CLUSTER_BUS_PORTS", bus_ports.join(" ")),
                ("REDIS_NODE_TIMEOUT", REDIS_NODE_TIMEOUT_MS.to_string()),
                ("REDIS_TLS", u8::from(self.redis_tls).to_string()),
                ("NGINX_PORT", cluster.nginx_port.to_string()),
                ("NGINX_WORKERS", "1".to_string()),
                ("REPLICA_PORTS", replica_ports.join(" ")),
                ("CYBERHUB_BIN", env!("CARGO_BIN_EXE_cyberhub").to_string()),
                ("CLUSTER_DATABASE_URL", database_url.clone()),
                ("RATE_LIMITS", if self.rate_limits { "on" } else { "off" }.to_string()),
                ("JWT_SECRET", JWT_SECRET.to_string()),
                ("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET.to_string()),
                ("BUS_SECRET", BUS_SECRET.to_string()),
                ("REDIS_PASSWORD", REDIS_PASSWORD.to_string()),
                ("REPLICA_ENV", replica_env.join(" ")),
                ("EXTRA_UPSTREAMS", extra_upstreams.join(" ")),
            ];
            let output = cluster.script(&["up"]).envs(settings).output().await.expect("bash runs cluster.sh");
            let text = output_text(&output);
            match output.status.code() {
                Some(0) => break,
                Some(3) if attempt < PORT_ATTEMPTS => {
                    eprintln!("cluster.sh up, attempt {attempt}: a port was taken; again with others\n{text}");
                    let down = cluster.script(&["down"]).output().await.expect("bash runs cluster.sh");
                    assert!(down.status.success(), "cluster.sh down failed:\n{}", output_text(&down));
                }
                _ => panic!("deploy/local/cluster.sh up failed:\n{text}"),
            }
        }
        cluster.env = read_env_file(&cluster.dir.join("env"));
        assert_eq!(cluster.env.cyberhub_url, cluster.nginx_url(), "CYBERHUB_URL in the env file");
        let urls: Vec<String> = (0..self.replicas).map(|i| cluster.replica_url(i)).collect();
        assert_eq!(cluster.env.replica_urls, urls, "REPLICA_URLS in the env file");
        cluster
    }
}

/// `url` with its host and port replaced by `127.0.0.1:port`.
fn through_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a database URL with a scheme");
    let (authority, path) = rest.split_once('/').expect("a database URL with a database name");
    let user = authority.rsplit_once('@').map(|(user, _)| format!("{user}@")).unwrap_or_default();
    format!("{scheme}://{user}127.0.0.1:{port}/{path}")
}

fn output_text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The env file is shell (`KEY='value'` lines): bash reads it.
fn read_env_file(path: &Path) -> ClusterEnv {
    let names = ["CYBERHUB_URL", "REPLICA_URLS", "REDIS_URL", "DATABASE_URL", "JWT_SECRET", "PAYMENT_WEBHOOK_SECRET"];
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#". "$1"; shift; for v in "$@"; do printf '%s=%s\n' "$v" "${!v}"; done"#)
        .arg("read-env")
        .arg(path)
        .args(names)
        .output()
        .expect("bash reads the env file");
    assert!(output.status.success(), "reading {}: {}", path.display(), String::from_utf8_lossy(&output.stderr));
    let values: BTreeMap<String, String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let get = |name: &str| {
        let value = values.get(name).cloned().unwrap_or_default();
        assert!(!value.is_empty(), "{name} is missing from {}", path.display());
        value
    };
    ClusterEnv {
        cyberhub_url: get("CYBERHUB_URL"),
        replica_urls: get("REPLICA_URLS").split_whitespace().map(str::to_string).collect(),
        redis_url: get("REDIS_URL"),
        database_url: get("DATABASE_URL"),
        jwt_secret: get("JWT_SECRET"),
        webhook_secret: get("PAYMENT_WEBHOOK_SECRET"),
    }
}

/// A running cluster. Dropping it (also when the test panics) runs `cluster.sh down` and drops
/// its database; its directory with every log is removed, or kept and named after a failure.
pub struct Cluster {
    pub dir: PathBuf,
    /// One Redis: its port. A Sentinel set or a Redis Cluster: `redis_ports`.
    pub redis_port: u16,
    /// A Sentinel set: master, replica, three sentinels; a Redis Cluster: six nodes.
    pub redis_ports: Vec<u16>,
    pub redis_mode: RedisMode,
    pub nginx_port: u16,
    pub replica_ports: Vec<u16>,
    pub env: ClusterEnv,
    pub http: reqwest::Client,
    is_down: bool,
    database: TestDatabase,
    _one_at_a_time: OwnedMutexGuard<()>,
}

impl Cluster {
    pub fn builder(replicas: usize) -> ClusterBuilder {
        ClusterBuilder {
            replicas,
            redis_mode: RedisMode::Single,
            replica_env: BTreeMap::new(),
            extra_upstreams: Vec::new(),
            database_port: None,
            rate_limits: false,
            redis_tls: false,
        }
    }

    pub async fn start(replicas: usize) -> Cluster {
        Cluster::builder(replicas).start().await
    }

    /// `replica_env` is set on every replica on top of the defaults.
    pub async fn start_with(replicas: usize, replica_env: &[(&str, &str)]) -> Cluster {
        replica_env.iter().fold(Cluster::builder(replicas), |builder, (k, v)| builder.env(k, v)).start().await
    }

    /// cluster.sh with nothing from the test's environment but PATH and HOME: the cluster's
    /// settings are the ones `up` saved, whatever the caller's shell exports.
    fn script(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("bash");
        command
            .arg(repo().join("deploy/local/cluster.sh"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CLUSTER_DIR", &self.dir)
            .stdin(Stdio::null());
        if let Some(home) = std::env::var_os("HOME") {
            command.env("HOME", home);
        }
        command
    }

    /// Runs a cluster.sh command on this cluster; panics with its output if it fails.
    pub async fn run(&self, args: &[&str]) -> String {
        let output = self.script(args).output().await.expect("bash runs cluster.sh");
        let text = output_text(&output);
        assert!(output.status.success(), "cluster.sh {} failed:\n{text}", args.join(" "));
        text
    }

    pub fn replica_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.replica_ports[i])
    }

    pub fn nginx_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.nginx_port)
    }

    /// With the password, as the replicas (and an attacker who learnt it) connect.
    pub fn redis_url(&self) -> String {
        format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}", self.redis_port)
    }

    /// The cluster's database, reached directly (not through any proxy in front of it).
    pub fn database_url(&self) -> String {
        self.database.url().to_string()
    }

    /// The name of the cluster's own database.
    pub fn database_name(&self) -> String {
        self.database.name().expect("a PostgreSQL database").to_string()
    }

    /// The PostgreSQL server the cluster's database is on, as `host:port`.
    pub fn database_server() -> String {
        let admin = admin_url();
        let host_port = admin.split_once('@').map_or(admin.as_str(), |(_, rest)| rest);
        let host_port = host_port.trim_start_matches("postgres://").trim_start_matches("postgresql://");
        host_port.split(['/', '?']).next().unwrap().to_string()
    }

    /// A replica's log (JSON lines); `i` counts from 0.
    /// With `redis_tls`: the throwaway CA (ca.pem), the client's certificate and key (client.pem,
    /// client.key) cluster.sh made.
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    pub fn replica_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("replica-{}.log", i + 1))).unwrap_or_default()
    }

    /// SIGKILL: the replica dies mid-whatever, as a crashed process or a lost machine would.
    pub async fn kill_replica(&self, i: usize) {
        self.run(&["kill-replica", &(i + 1).to_string()]).await;
    }

    /// SIGTERM, the graceful drain of a rolling deploy; returns once it exited, with its exit code.
    pub async fn stop_replica(&self, i: usize) -> Option<i32> {
        self.run(&["stop-replica", &(i + 1).to_string()]).await;
        let file = self.dir.join(format!("replica-{}.exit", i + 1));
        std::fs::read_to_string(&file).ok().and_then(|code| code.trim().parse().ok())
    }

    /// Starts replica `i` again (after a kill or stop) and waits until it is ready.
    pub async fn start_replica(&self, i: usize) {
        self.run(&["start-replica", &(i + 1).to_string()]).await;
    }

    /// SIGKILL Redis; on a Sentinel set its master, on a Redis Cluster the master of slot 0.
    pub async fn kill_redis(&self) {
        self.run(&["kill-redis"]).await;
    }

    pub async fn stop_redis(&self) {
        self.run(&["stop-redis"]).await;
    }

    pub async fn start_redis(&self) {
        self.run(&["start-redis"]).await;
    }

    /// The value of one series in replica `i`'s /metrics, e.g. `name{label="x"}`; 0 if absent.
    pub async fn metric(&self, i: usize, series: &str) -> f64 {
        let text =
            self.http.get(format!("{}/metrics", self.replica_url(i))).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map(|value| value.trim().parse().unwrap())
            .unwrap_or(0.0)
    }

    pub async fn health(&self, i: usize) -> Value {
        self.http.get(format!("{}/health", self.replica_url(i))).send().await.unwrap().json().await.unwrap()
    }

    /// Stops the cluster (`cluster.sh down`, asserted to succeed) and drops its database.
    pub async fn shutdown(mut self) {
        self.run(&["down"]).await;
        self.is_down = true;
    }

    fn tail(&self, name: &str, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.is_down {
            let down = std::process::Command::new("bash")
                .arg(repo().join("deploy/local/cluster.sh"))
                .arg("down")
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("CLUSTER_DIR", &self.dir)
                .stdin(Stdio::null())
                .output();
            match down {
                Ok(output) if output.status.success() => {}
                Ok(output) => eprintln!("cluster.sh down failed:\n{}", output_text(&output)),
                Err(e) => eprintln!("cluster.sh down did not run: {e}"),
            }
        }
        if std::thread::panicking() {
            eprintln!("\nthe cluster's logs are kept in {}", self.dir.display());
            for i in 1..=self.replica_ports.len() {
                eprintln!("--- replica-{i}.log (last 15 lines)\n{}", self.tail(&format!("replica-{i}.log"), 15));
            }
            eprintln!("--- nginx/error.log (last 10 lines)\n{}", self.tail("nginx/error.log", 10));
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        // Then the database (a field, dropped after this), then the next cluster may start.
    }
}
