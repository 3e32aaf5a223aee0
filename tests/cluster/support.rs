//! A real cluster on loopback for the tests: redis-server, a fresh PostgreSQL database, N
//! `cyberhub` replica processes and nginx rendered from the project's own template, each on a
//! free port, each killable and restartable.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use uuid::Uuid;

use crate::helpers::{postgres_admin_url, JWT_SECRET, WEBHOOK_SECRET};

/// What every replica of the test cluster signs bus messages with.
pub const BUS_SECRET: &str = "test-bus-secret-0123456789abcdef-0123";
/// Redis runs with `requirepass`, as in compose: the replicas and the tests authenticate.
pub const REDIS_PASSWORD: &str = "test-redis-password-0123456789";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub struct Replica {
    pub id: String,
    pub port: u16,
    child: Option<Child>,
}

impl Replica {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

pub struct Cluster {
    pub dir: PathBuf,
    pub redis_port: u16,
    pub nginx_port: u16,
    pub replicas: Vec<Replica>,
    database: String,
    database_url: String,
    redis: Option<Child>,
    nginx: Option<Child>,
    /// Servers nginx balances over besides the replicas (fake replicas some tests stand up).
    extra_upstreams: Vec<(String, u16)>,
    /// Environment every replica gets on top of the defaults.
    replica_env: Vec<(String, String)>,
    pub http: reqwest::Client,
}

impl Cluster {
    pub async fn start(replicas: usize) -> Cluster {
        Cluster::start_with(replicas, &[]).await
    }

    /// `replica_env` is set on every replica on top of the defaults.
    pub async fn start_with(replicas: usize, replica_env: &[(&str, &str)]) -> Cluster {
        let dir = std::env::temp_dir().join(format!("cyberhub-cluster-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("nginx")).unwrap();
        let database = format!("cyberhub_cluster_{}", Uuid::new_v4().simple());
        create_database(&database).await;
        let admin = postgres_admin_url();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin).to_string();
        let mut cluster = Cluster {
            redis_port: free_port(),
            nginx_port: free_port(),
            replicas: (1..=replicas)
                .map(|i| Replica { id: format!("replica-{i}"), port: free_port(), child: None })
                .collect(),
            database_url: format!("{base}/{database}"),
            database,
            redis: None,
            nginx: None,
            extra_upstreams: Vec::new(),
            replica_env: replica_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            dir,
            http: reqwest::Client::new(),
        };
        cluster.start_redis().await;
        for i in 0..replicas {
            cluster.start_replica(i).await;
        }
        cluster.start_nginx().await;
        cluster
    }

    /// With the password, as the replicas (and an attacker who learnt it) connect.
    pub fn redis_url(&self) -> String {
        format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}", self.redis_port)
    }

    pub fn nginx_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.nginx_port)
    }

    /// The cluster's database, reached directly (not through any proxy a test put in between).
    pub fn database_url(&self) -> String {
        let admin = postgres_admin_url();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin).to_string();
        format!("{base}/{}", self.database)
    }

    /// Replicas started from now on reach PostgreSQL at `127.0.0.1:port` instead (a test's proxy).
    pub fn route_database_through(&mut self, port: u16) {
        let direct = self.database_url();
        let (scheme_and_auth, rest) = direct.split_once('@').expect("a database URL with a host");
        let path = rest.split_once('/').map(|(_, p)| p).unwrap_or_default();
        self.database_url = format!("{scheme_and_auth}@127.0.0.1:{port}/{path}");
    }

    pub fn replica_url(&self, i: usize) -> String {
        self.replicas[i].url()
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(format!("{name}.log"))).unwrap()
    }

    pub async fn start_redis(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.redis_port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--requirepass", REDIS_PASSWORD])
            .stdout(self.log("redis"))
            .stderr(self.log("redis"))
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        self.redis = Some(child);
        wait_for_port(self.redis_port).await;
    }

    pub fn kill_redis(&mut self) {
        if let Some(mut child) = self.redis.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn start_replica(&mut self, i: usize) {
        let (id, port) = (self.replicas[i].id.clone(), self.replicas[i].port);
        let child = Command::new(env!("CARGO_BIN_EXE_cyberhub"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .env("REPLICA_ID", &id)
            .env("DATABASE_URL", &self.database_url)
            .env("DATABASE_MAX_CONNECTIONS", "8")
            .env("REDIS_URL", self.redis_url())
            .env("JWT_SECRET", JWT_SECRET)
            .env("BUS_SECRET", BUS_SECRET)
            .env("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("RATE_LIMITS", "off")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(self.replica_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(self.log(&id))
            .stderr(self.log(&id))
            .spawn()
            .expect("the cyberhub binary starts");
        self.replicas[i].child = Some(child);
        let url = format!("http://127.0.0.1:{port}/ready");
        for _ in 0..100 {
            if let Ok(r) = self.http.get(&url).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{id} did not become ready; see {}", self.dir.join(format!("{id}.log")).display());
    }

    /// SIGKILL: the replica dies mid-whatever, as a crashed process or a lost machine would.
    pub fn kill_replica(&mut self, i: usize) {
        if let Some(mut child) = self.replicas[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`TERM`, `KILL`, …) to replica `i` and returns at once.
    pub fn signal_replica(&self, i: usize, signal: &str) {
        if let Some(child) = &self.replicas[i].child {
            Command::new("kill").args([format!("-{signal}"), child.id().to_string()]).status().unwrap();
        }
    }

    /// Waits up to `within` for replica `i` to exit by itself; its exit code.
    pub async fn wait_replica_exit(&mut self, i: usize, within: Duration) -> Option<i32> {
        let mut child = self.replicas[i].child.take()?;
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        panic!("replica {i} did not exit within {within:?}");
    }

    /// SIGTERM: the graceful drain of a rolling deploy. Returns the exit code.
    pub async fn stop_replica(&mut self, i: usize) -> Option<i32> {
        let mut child = self.replicas[i].child.take()?;
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        for _ in 0..150 {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        panic!("replica {i} did not exit within 15 s of SIGTERM");
    }

    async fn start_nginx(&mut self) {
        let prefix = self.dir.join("nginx");
        let mut args = vec![
            "--listen".to_string(),
            format!("127.0.0.1:{}", self.nginx_port),
            "--prefix".to_string(),
            prefix.display().to_string(),
            "--mode".to_string(),
            "local".to_string(),
        ];
        args.extend(self.replicas.iter().map(|r| format!("{}=127.0.0.1:{}", r.id, r.port)));
        args.extend(self.extra_upstreams.iter().map(|(id, port)| format!("{id}=127.0.0.1:{port}")));
        let rendered =
            Command::new("bash").arg(repo().join("nginx/render.sh")).args(&args).output().expect("render.sh runs");
        assert!(rendered.status.success(), "render.sh: {}", String::from_utf8_lossy(&rendered.stderr));
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, rendered.stdout).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(self.log("nginx"))
            .spawn()
            .expect("nginx is installed (apt-get install nginx)");
        self.nginx = Some(child);
        wait_for_port(self.nginx_port).await;
    }

    /// Restarts nginx with one more server, `id` on `port`, in every upstream group beside the
    /// replicas: a fake replica that misbehaves in a way a real one cannot on demand.
    pub async fn restart_nginx_with(&mut self, id: &str, port: u16) {
        self.stop_nginx();
        self.extra_upstreams.push((id.to_string(), port));
        self.start_nginx().await;
    }

    fn stop_nginx(&mut self) {
        // nginx's master stops its workers on SIGTERM; a SIGKILL would orphan them, still listening.
        if let Some(mut nginx) = self.nginx.take() {
            let _ = Command::new("kill").args(["-TERM", &nginx.id().to_string()]).status();
            let _ = nginx.wait();
        }
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

    pub async fn health(&self, i: usize) -> serde_json::Value {
        self.http.get(format!("{}/health", self.replica_url(i))).send().await.unwrap().json().await.unwrap()
    }

    pub async fn shutdown(mut self) {
        self.kill_all();
        drop_database(&self.database).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn kill_all(&mut self) {
        self.stop_nginx();
        for child in self.replicas.iter_mut().filter_map(|r| r.child.as_mut()).chain(self.redis.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A failing test still leaves no process behind; its logs stay in `dir` for reading.
        self.kill_all();
    }
}

async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port} after 5 s");
}

async fn create_database(name: &str) {
    use sqlx::Connection;
    let mut conn =
        sqlx::PgConnection::connect(&postgres_admin_url()).await.expect("PostgreSQL is required for the cluster tests");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
}

async fn drop_database(name: &str) {
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
    }
}
