//! The bus on Redis as production runs it (issue 17): a Sentinel set (master, replica, three
//! sentinels) and a Redis Cluster (three masters with a replica each, sharded pub/sub), all real
//! `redis-server` processes started by deploy/local/cluster.sh. Cross-replica delivery works on
//! both; killing the master (Sentinel) or a shard master (Cluster) stops cross-replica delivery
//! for no longer than the failover plus a few seconds, and every player's screen ends true.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::delivery::events_cross_replicas;
use crate::helpers::{eventually, Api, Cluster, RedisMode, TestSocket, TestUser, REDIS_NODE_TIMEOUT_MS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_replicas_on_a_sentinel_set() {
    let cluster = Cluster::builder(3).redis(RedisMode::Sentinel).start().await;
    assert!(cluster.env.redis_url.starts_with("redis-sentinel://"), "cluster.sh hands out a Sentinel URL");
    events_cross_replicas(&cluster).await;
    cluster.shutdown().await;
}

/// The same over TLS only (`rediss-sentinel://`, `rediss-cluster://`): every node and sentinel
/// speaks only TLS and asks for client certificates, replication, the cluster bus and Sentinel's
/// links included (cluster.sh REDIS_TLS=1); the replicas verify each node against the private CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_replicas_on_a_tls_sentinel_set_and_a_tls_redis_cluster() {
    for (mode, scheme) in [(RedisMode::Sentinel, "rediss-sentinel://"), (RedisMode::Cluster, "rediss-cluster://")] {
        let cluster = Cluster::builder(3).redis(mode).redis_tls().start().await;
        assert!(cluster.env.redis_url.starts_with(scheme), "{}", cluster.env.redis_url);
        for port in &cluster.redis_ports {
            assert_ne!(redis_cli(*port, &["PING"]).trim(), "PONG", "no clear-text port on {port}");
        }
        events_cross_replicas(&cluster).await;
        cluster.shutdown().await;
    }
}

/// Redis over TLS only (no clear-text port), with a private CA and client certificates
/// (`tls-auth-clients yes`): the replicas given `rediss://`, the CA and their certificate deliver
/// across replicas; one given a CA that did not sign the server's certificate stays off the bus,
/// says why in its log and `down` in /health, and never reaches Redis in clear text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_replicas_over_tls_and_a_wrong_ca_is_refused() {
    let cluster = Cluster::builder(3).redis_tls().start().await;
    assert!(cluster.env.redis_url.starts_with("rediss://"), "cluster.sh hands out a TLS URL");
    let tls = cluster.tls_dir();
    let file = |name: &str| tls.join(name).to_string_lossy().into_owned();
    let tls_cli = ["--tls", "--cacert", &file("ca.pem"), "--cert", &file("client.pem"), "--key", &file("client.key")];
    assert_eq!(redis_cli(cluster.redis_port, &[&tls_cli[..], &["PING"]].concat()).trim(), "PONG");
    assert_ne!(redis_cli(cluster.redis_port, &["PING"]).trim(), "PONG", "Redis has no clear-text port");
    events_cross_replicas(&cluster).await;
    let connected = redis_cli(cluster.redis_port, &[&tls_cli[..], &["CLIENT", "LIST"]].concat());
    assert!(connected.lines().count() >= 6, "two TLS clients per replica: {connected}");

    // Another CA, which did not sign the server's certificate.
    let wrong = cluster.dir.join("wrong-ca");
    std::fs::create_dir_all(&wrong).unwrap();
    let openssl = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=another-ca", "-keyout", "ca.key", "-out", "ca.pem"])
        .current_dir(&wrong)
        .output()
        .expect("openssl runs");
    assert!(openssl.status.success(), "{}", String::from_utf8_lossy(&openssl.stderr));
    let port = crate::helpers::free_port();
    let log_path = cluster.dir.join("wrong-ca.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut replica = tokio::process::Command::new(env!("CARGO_BIN_EXE_cyberhub"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs([
            ("BIND", "127.0.0.1"),
            ("PORT", &port.to_string()),
            ("REPLICA_ID", "wrong-ca"),
            ("DATABASE_URL", &cluster.env.database_url),
            ("REDIS_URL", &cluster.env.redis_url),
            ("REDIS_TLS_CA_FILE", &wrong.join("ca.pem").to_string_lossy()),
            ("REDIS_TLS_CERT_FILE", &file("client.pem")),
            ("REDIS_TLS_KEY_FILE", &file("client.key")),
            ("JWT_SECRET", &cluster.env.jwt_secret),
            ("PAYMENT_WEBHOOK_SECRET", &cluster.env.webhook_secret),
            ("BUS_SECRET", crate::helpers::BUS_SECRET),
            ("RATE_LIMITS", "off"),
            ("LOG_FORMAT", "json"),
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start cyberhub");
    let api = Api::new(&format!("http://127.0.0.1:{port}"));
    let says_why = eventually(Duration::from_secs(20), "the replica logs why it cannot reach Redis", || async {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        text.lines().find(|l| l.contains("cannot reach Redis")).map(str::to_string).ok_or(text)
    })
    .await;
    assert!(says_why.contains("UnknownIssuer") || says_why.contains("certificate"), "{says_why}");
    assert!(!says_why.contains(crate::helpers::REDIS_PASSWORD), "no password in the log: {says_why}");
    // Still down after several reconnects: no fallback, nothing else lets it on the bus.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(replica.try_wait().unwrap().is_none(), "it keeps serving (HTTP, local sockets) without the bus");
    let health = api.get("/health", None).await;
    assert_eq!(health.body["redis"], "down", "{:?}", health.body);
    assert_eq!(health.body["clusterClients"], serde_json::Value::Null, "{:?}", health.body);
    let clients = redis_cli(cluster.redis_port, &[&tls_cli[..], &["CLIENT", "LIST"]].concat());
    assert_eq!(clients.lines().count(), connected.lines().count(), "no new client: {clients}");
    replica.kill().await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_replicas_on_a_redis_cluster() {
    let cluster = Cluster::builder(3).redis(RedisMode::Cluster).start().await;
    assert!(cluster.env.redis_url.starts_with("redis-cluster://"), "cluster.sh hands out a cluster URL");
    events_cross_replicas(&cluster).await;
    // The events went over sharded channels spread over all three masters, not one channel.
    let mut per_master = Vec::new();
    for port in &cluster.redis_ports {
        if redis_cli(*port, &["ROLE"]).lines().next() == Some("master") {
            per_master.push(redis_cli(*port, &["PUBSUB", "SHARDCHANNELS", "cyberhub:events:*"]).lines().count());
        }
    }
    assert_eq!(per_master.len(), 3, "three masters: {per_master:?}");
    assert!(per_master.iter().all(|&n| n >= 5), "16 shard channels spread over the masters: {per_master:?}");
    assert_eq!(per_master.iter().sum::<usize>(), 16, "{per_master:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_is_followed_and_every_screen_ends_true() {
    disruption_keeps_every_screen_true(RedisMode::Sentinel, Disruption::KillMaster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_master_failover_is_followed_and_every_screen_ends_true() {
    disruption_keeps_every_screen_true(RedisMode::Cluster, Disruption::KillMaster).await;
}

/// Slots move to another master under the running bus (`redis-cli --cluster reshard`): Redis
/// unsubscribes the shard's subscribers on the old owner without an error reaching the client,
/// and fred does not follow; the replicas notice their own heartbeats missing on that shard and
/// subscribe again, on the new owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resharded_shard_is_subscribed_again_on_its_new_master() {
    disruption_keeps_every_screen_true(RedisMode::Cluster, Disruption::Reshard).await;
}

#[derive(Clone, Copy, Debug)]
enum Disruption {
    /// SIGKILL the master (Sentinel's, or the cluster's master of slot 0).
    KillMaster,
    /// Move slots 0..1100 (shard 0's channel and maybe shard 1's) to another master.
    Reshard,
}

/// Moves the first 1,100 slots from the master of slot 0 to another master; returns shard 0's
/// channel and the port of its new master.
fn reshard(cluster: &Cluster) -> (String, u16) {
    let first = cluster.redis_ports[0];
    let channel = redis_cli(first, &["PUBSUB", "SHARDCHANNELS", "cyberhub:events:{0-*"]).trim().to_string();
    assert!(!channel.is_empty(), "shard 0's channel is on the master of slot 0 (redis-1)");
    let masters: Vec<u16> = cluster
        .redis_ports
        .iter()
        .copied()
        .filter(|port| redis_cli(*port, &["ROLE"]).lines().next() == Some("master"))
        .collect();
    let (from, to) = (first, *masters.iter().find(|&&port| port != first).expect("another master"));
    let id = |port: u16| redis_cli(port, &["CLUSTER", "MYID"]).trim().to_string();
    let output = std::process::Command::new("redis-cli")
        .args(["--no-auth-warning", "--cluster", "reshard", &format!("127.0.0.1:{from}")])
        .args(["--cluster-from", &id(from), "--cluster-to", &id(to), "--cluster-slots", "1100", "--cluster-yes"])
        .env("REDISCLI_AUTH", crate::helpers::REDIS_PASSWORD)
        .output()
        .expect("redis-cli runs");
    assert!(output.status.success(), "reshard: {}", String::from_utf8_lossy(&output.stderr));
    (channel, to)
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--no-auth-warning"])
        .args(args)
        .env("REDISCLI_AUTH", crate::helpers::REDIS_PASSWORD)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const PLAYERS: usize = 24;
/// A balance change is committed on replica A every this often, for the players in turn.
const FUND_EVERY: Duration = Duration::from_millis(25);

/// A player's socket on replica B and what it has shown.
struct Screen {
    user: TestUser,
    socket: TestSocket,
    version: i64,
    changed_at: Instant,
    /// The longest time the screen stood still while changes were being committed.
    longest_still: Duration,
}

impl Screen {
    async fn read(&mut self) {
        let event = format!("balance:updated:{}", self.user.id);
        for (name, payload) in self.socket.drain().await {
            let version = payload["version"].as_i64().unwrap_or(-1);
            if name == event && version > self.version {
                let now = Instant::now();
                self.longest_still = self.longest_still.max(now - self.changed_at);
                (self.version, self.changed_at) = (version, now);
            }
        }
    }
}

async fn watch(screens: &mut [Screen], until: Instant) {
    while Instant::now() < until {
        for screen in screens.iter_mut() {
            screen.read().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Players on replica B watch their balances while replica A commits changes for them nonstop;
/// the master is SIGKILLed in the middle. Reports (and bounds) the longest time a screen stood
/// still, and checks that every screen shows the database's balance afterwards.
async fn disruption_keeps_every_screen_true(mode: RedisMode, disruption: Disruption) {
    let cluster = Cluster::builder(2).redis(mode).start().await;
    let (a, b) = (Api::new(&cluster.replica_url(0)), Api::new(&cluster.replica_url(1)));
    let mut screens = Vec::new();
    for _ in 0..PLAYERS {
        let user = a.known_user().await;
        let socket = TestSocket::connect(&b.base, Some(&user.token)).await.unwrap();
        socket.expect(&format!("balance:updated:{}", user.id)).await;
        screens.push(Screen { user, socket, version: 0, changed_at: Instant::now(), longest_still: Duration::ZERO });
    }

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicUsize::new(0));
    let funder = {
        let (stop, committed, a) = (stop.clone(), committed.clone(), Api::new(&a.base));
        let players: Vec<TestUser> = screens.iter().map(|s| s.user.clone()).collect();
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                // HTTP never waits on Redis: every change commits, failover or not.
                a.fund(&players[i % players.len()], 0.01).await;
                committed.fetch_add(1, Ordering::Relaxed);
                i += 1;
                tokio::time::sleep(FUND_EVERY).await;
            }
        })
    };

    // Before the failover: every screen moves.
    watch(&mut screens, Instant::now() + Duration::from_secs(4)).await;
    let still: Vec<i64> = screens.iter().map(|s| s.version).filter(|&v| v == 0).collect();
    assert!(still.is_empty(), "{} screens never moved before the failover", still.len());
    let before = screens.iter().map(|s| s.longest_still).max().unwrap();
    for screen in &mut screens {
        screen.longest_still = Duration::ZERO;
    }

    let killed_at = Instant::now();
    let moved = match disruption {
        Disruption::KillMaster => {
            cluster.kill_redis().await;
            None
        }
        Disruption::Reshard => Some(reshard(&cluster)),
    };
    let window = Duration::from_millis(REDIS_NODE_TIMEOUT_MS) + Duration::from_secs(13);
    watch(&mut screens, killed_at + window).await;
    stop.store(true, Ordering::Relaxed);
    let stopped_at = Instant::now();
    funder.await.expect("every balance change committed while Redis failed over");

    // Afterwards: every screen shows the database's balance.
    let mut truth = Vec::new();
    for screen in &screens {
        truth.push(a.balance(&screen.user).await.1);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let settled = loop {
        for screen in screens.iter_mut() {
            screen.read().await;
        }
        let behind = screens.iter().zip(&truth).filter(|(s, &v)| s.version != v).count();
        if behind == 0 {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "{behind} of {PLAYERS} screens still behind the database 10 s after");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let mut still: Vec<Duration> = screens.iter().map(|s| s.longest_still).collect();
    still.sort();
    let longest = *still.last().unwrap();
    let affected = still.iter().filter(|d| **d > before * 2).count();
    println!(
        "{mode:?} {disruption:?} (node timeout {REDIS_NODE_TIMEOUT_MS} ms), {PLAYERS} players on replica B, a change \
         committed on replica A every {FUND_EVERY:?} ({} in all): longest time a screen stood still {longest:?} \
         (median player {:?}; before it {before:?}); screens that stood still longer than twice that: \
         {affected}; every screen true {:?} after the last change",
        committed.load(Ordering::Relaxed),
        still[still.len() / 2],
        settled - stopped_at,
    );
    let bound = Duration::from_millis(REDIS_NODE_TIMEOUT_MS) + Duration::from_secs(8);
    assert!(longest < bound, "cross-replica delivery stopped for {longest:?} (bound {bound:?})");
    for i in 0..2 {
        assert_eq!(cluster.health(i).await["redis"], "up", "replica {i} is back on the bus");
    }
    if let Some((channel, master)) = moved {
        let subscribers = redis_cli(master, &["PUBSUB", "SHARDNUMSUB", &channel]);
        assert_eq!(subscribers.lines().nth(1), Some("2"), "both replicas on {channel} at its new master {master}");
    }
    // The cluster-wide socket count is read from wherever Redis keeps it now.
    eventually(Duration::from_secs(15), "clusterClients counts every socket", || async {
        let total = cluster.health(0).await["clusterClients"].clone();
        if total == PLAYERS {
            Ok(())
        } else {
            Err(total)
        }
    })
    .await;
    cluster.shutdown().await;
}
