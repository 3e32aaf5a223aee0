//! The cluster under attack by someone on its network, or let down by a replica: forged bus
//! messages, a write whose replica dies before answering, and Socket.IO on `/socket.io` without
//! the trailing slash.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::process::Command;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Api, Cluster, TestSocket, TestUser, REDIS_PASSWORD};

const CHANNEL: &str = "cyberhub:events";

/// PUBLISH as anyone who reached Redis and knows its password would; returns how many
/// subscribers Redis handed the message to.
fn publish(cluster: &Cluster, message: &str) -> i64 {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &cluster.redis_port.to_string(), "PUBLISH", CHANNEL, message])
        .env("REDISCLI_AUTH", REDIS_PASSWORD)
        .output()
        .expect("redis-cli is installed (apt-get install redis-server)");
    let reply = String::from_utf8_lossy(&output.stdout).trim().to_string();
    reply.parse().unwrap_or_else(|_| panic!("PUBLISH answered {reply:?} {}", String::from_utf8_lossy(&output.stderr)))
}

fn rejected(reason: &str) -> String {
    format!("cyberhub_bus_messages_rejected_total{{reason=\"{reason}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_bus_messages_reach_no_screen_and_are_counted_on_every_replica() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (Api::new(&cluster.replica_url(0)), Api::new(&cluster.replica_url(1)));
    let player = a.known_user().await;
    let event = format!("balance:updated:{}", player.id);
    let on_a = TestSocket::connect(&a.base, Some(&player.token)).await.unwrap();
    let on_b = TestSocket::connect(&b.base, Some(&player.token)).await.unwrap();
    // The balance every socket gets on connect.
    on_a.expect(&event).await;
    on_b.expect(&event).await;
    let before = [
        [cluster.metric(0, &rejected("unsigned")).await, cluster.metric(0, &rejected("bad_signature")).await],
        [cluster.metric(1, &rejected("unsigned")).await, cluster.metric(1, &rejected("bad_signature")).await],
    ];

    let id = player.id;
    let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64;
    // The format the bus used before it was signed: delivered as it came, until now.
    let legacy = json!({
        "v": 1, "origin": "attacker", "ts": ts, "kind": "balance_updated", "name": event,
        "room": format!("user:{id}"), "payload": { "balance": 1_000_000, "version": 999_999_999 },
    })
    .to_string();
    let body = json!({
        "origin": "attacker", "ts": ts,
        "event": { "type": "balance_updated", "user_id": id, "balance": 100_000_000, "version": 999_999_999 },
    })
    .to_string();
    // The current format, signed with a key that is not BUS_SECRET.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"guessed-bus-secret-0123456789abcdef").unwrap();
    mac.update(b"v2.");
    mac.update(body.as_bytes());
    let wrong_key = format!("v2.{}.{body}", hex::encode(mac.finalize().into_bytes()));
    let no_signature = format!("v2.{body}");
    for forged in [&legacy, &wrong_key, &no_signature] {
        assert_eq!(publish(&cluster, forged), 2, "both replicas are subscribed and were handed {forged}");
    }

    // The sentinels travel the forgeries' path: Redis hands each replica's subscriber its
    // messages in the order they were published, and a replica acts on them one at a time. A
    // credit made on A reaches B's socket through Redis after the forgeries, and one made on B
    // reaches A's; the bus still carries what a replica signs. Forged or not, these events share
    // a name: a forgery shows as a version other than 1 or 2.
    a.fund(&player, 5.0).await;
    b.fund(&player, 5.0).await;
    for (socket, replica) in [(&on_a, "A"), (&on_b, "B")] {
        // Until both credits came: the one through Redis may come after the local one.
        let mut versions = Vec::new();
        while !(versions.contains(&1) && versions.contains(&2)) {
            let payload = socket.expect(&event).await;
            versions.push(payload["version"].as_i64().unwrap_or(-1));
        }
        versions.sort();
        versions.dedup();
        assert_eq!(versions, [1, 2], "the balances the socket on {replica} was shown");
    }
    for (i, [unsigned, bad_signature]) in before.into_iter().enumerate() {
        assert_eq!(cluster.metric(i, &rejected("unsigned")).await, unsigned + 2.0, "replica {i}: unsigned");
        assert_eq!(cluster.metric(i, &rejected("bad_signature")).await, bad_signature + 1.0, "replica {i}");
    }
    assert_eq!(a.balance(&player).await, (10.0, 2), "nothing but the two credits changed it");
    let log = cluster.replica_log(0);
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("dropped a bus message")).collect();
    assert_eq!(warnings.len(), 1, "one warning for the burst (rate-limited): {warnings:?}");
    assert!(warnings[0].contains(r#""reason":"unsigned""#), "{}", warnings[0]);
    // (Not the whole log for the numbers: request latencies such as 1.0055699999999999 match.)
    assert!(!log.contains("attacker") && !warnings[0].contains("999999999"), "the forged content is not logged");
    on_a.close().await;
    on_b.close().await;
    cluster.shutdown().await;
}

/// A replica that runs each request it gets (it hands it to a real replica) and then dies
/// before answering: from nginx's side, a request that was sent and whose answer never came.
struct DiesBeforeAnswering {
    port: u16,
    /// The real replica it hands requests to; 0 until the cluster is up.
    replica_port: Arc<AtomicU16>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DiesBeforeAnswering {
    /// Listening before the cluster starts, so nginx is started with it among its servers.
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let replica_port = Arc::new(AtomicU16::new(0));
        let (counter, forward) = (requests.clone(), replica_port.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut from_nginx, _)) = listener.accept().await {
                let (counter, forward) = (counter.clone(), forward.clone());
                tokio::spawn(async move {
                    let Some(request) = read_http_message(&mut from_nginx).await else { return };
                    let real_replica_port = forward.load(Ordering::SeqCst);
                    if real_replica_port == 0 {
                        // cluster.sh's readiness probe through nginx, before the test begins:
                        // answered, so nginx does not take this server for failed.
                        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                        let _ = from_nginx.write_all(ok.as_bytes()).await;
                        return;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let mut to_replica = TcpStream::connect(("127.0.0.1", real_replica_port)).await.unwrap();
                    to_replica.write_all(&request).await.unwrap();
                    // The replica has run it once it answers; the answer is lost with us.
                    read_http_message(&mut to_replica).await.expect("the real replica answers");
                    drop(from_nginx);
                });
            }
        });
        DiesBeforeAnswering { port, replica_port, requests, task }
    }

    fn forward_to(&self, replica_port: u16) {
        self.replica_port.store(replica_port, Ordering::SeqCst);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// One HTTP/1.1 message with a Content-Length body (or none), as nginx sends requests and the
/// replicas send short answers.
async fn read_http_message(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while data.len() < head_end + length {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await.ok()?.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..n]);
    }
    Some(data)
}

async fn pairs_revealed(replica: &Api, player: &TestUser) -> usize {
    let history = replica.get("/api/fair/history", Some(&player.token)).await;
    history.expect(200)["pairs"].as_array().unwrap().len()
}

/// Sends `write` through nginx for new players until one's request lands on the dying replica
/// (nginx hashes the API by token), then checks it ran exactly once and the client got an error.
async fn write_is_not_replayed(
    cluster: &Cluster,
    dying: &DiesBeforeAnswering,
    write: reqwest::Method,
    path: &str,
    body: Option<Value>,
) {
    let (nginx, replica) = (Api::new(&cluster.nginx_url()), Api::new(&cluster.replica_url(0)));
    for _ in 0..60 {
        let player = replica.known_user().await;
        let before = (pairs_revealed(&replica, &player).await, dying.requests());
        let response = nginx.request(write.clone(), path, Some(&player.token), body.clone()).await;
        if dying.requests() == before.1 {
            // A healthy replica took it.
            response.expect(200);
            continue;
        }
        assert_eq!(dying.requests(), before.1 + 1, "nginx sent the {write} to the dying replica once");
        // If nginx had passed it on to the next replica, the client would see its 200 and the
        // player would have two rotations.
        response.expect_error(503, "unavailable");
        assert_eq!(pairs_revealed(&replica, &player).await, before.0 + 1, "{write} {path} ran exactly once");
        return;
    }
    panic!("no player's {write} landed on the dying replica in 60 tries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_never_replays_a_write_whose_replica_died_before_answering() {
    let dying = DiesBeforeAnswering::start().await;
    let cluster = Cluster::builder(2).extra_upstream("replica-dying", dying.port).start().await;
    dying.forward_to(cluster.replica_ports[0]);

    // PUT is what nginx would count idempotent and resend by default.
    write_is_not_replayed(
        &cluster,
        &dying,
        reqwest::Method::PUT,
        "/api/fair/client-seed",
        Some(json!({ "clientSeed": "my-own-seed" })),
    )
    .await;
    // nginx skips a failed server for fail_timeout (5 s); then it is tried again.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    write_is_not_replayed(&cluster, &dying, reqwest::Method::POST, "/api/fair/rotate", None).await;

    // Reads are still retried: the dying replica's GETs are answered by a healthy one.
    let nginx = Api::new(&cluster.nginx_url());
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let before = dying.requests();
    for _ in 0..60 {
        let player = Api::new(&cluster.replica_url(1)).known_user().await;
        nginx.get("/api/fair", Some(&player.token)).await.expect(200);
        if dying.requests() > before {
            break;
        }
    }
    assert!(dying.requests() > before, "a GET landed on the dying replica, and was answered 200 by another");
    dying.task.abort();
    cluster.shutdown().await;
}

/// A polling session through nginx: handshake, namespace connect, then reads with the sid. Every
/// request must reach the replica that holds the session, or it answers "Session ID unknown".
async fn polling_session(http: &reqwest::Client, base: &str, path: &str) -> Result<(), String> {
    let url = |query: &str| format!("{base}{path}?EIO=4&transport=polling{query}");
    let handshake = http.get(url("")).send().await.unwrap();
    let cookie = handshake
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("cyberhub_replica="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .ok_or_else(|| format!("{path}: no replica cookie on the handshake"))?;
    let text = handshake.text().await.unwrap();
    let open: Value = serde_json::from_str(text.strip_prefix('0').ok_or(format!("{path}: handshake {text}"))?).unwrap();
    let sid = format!("&sid={}", open["sid"].as_str().unwrap());
    let connect = http.post(url(&sid)).header("cookie", &cookie).body("40").send().await.unwrap();
    let (status, text) = (connect.status(), connect.text().await.unwrap());
    if status != 200 {
        return Err(format!("{path}: namespace connect answered {status} {text}"));
    }
    // The connect reply may queue behind the first heartbeat ping: answer it and poll again.
    let mut connected = false;
    for _ in 0..3 {
        let poll = http.get(url(&sid)).header("cookie", &cookie).send().await.unwrap();
        let (status, text) = (poll.status(), poll.text().await.unwrap());
        if status != 200 {
            return Err(format!("{path}: poll answered {status} {text}"));
        }
        if text.split('\u{1e}').any(|packet| packet.starts_with("40")) {
            connected = true;
            break;
        }
        if text.split('\u{1e}').any(|packet| packet == "2") {
            http.post(url(&sid)).header("cookie", &cookie).body("3").send().await.unwrap();
        }
    }
    if !connected {
        return Err(format!("{path}: no namespace connect reply in 3 polls"));
    }
    // Posts answer at once (a poll with nothing queued waits for the 25 s ping).
    for _ in 0..4 {
        let post = http.post(url(&sid)).header("cookie", &cookie).body(r#"42["noop"]"#).send().await.unwrap();
        let (status, text) = (post.status(), post.text().await.unwrap());
        if status != 200 {
            return Err(format!("{path}: post answered {status} {text}"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_without_the_trailing_slash_is_routed_like_with_it() {
    let cluster = Cluster::start(3).await;
    let http = reqwest::Client::new();
    for path in ["/socket.io/", "/socket.io"] {
        for _ in 0..6 {
            polling_session(&http, &cluster.nginx_url(), path).await.unwrap();
        }
    }
    // And a websocket on it connects through nginx like any other.
    let url = format!("ws://127.0.0.1:{}/socket.io?EIO=4&transport=websocket", cluster.nginx_port);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket on /socket.io");
    use futures::StreamExt;
    let open = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with("0{"), "{open:?}");
    cluster.shutdown().await;
}

/// A TCP hop between the replicas and PostgreSQL that a test can take down and bring back, as a
/// database restart or failover looks from a replica: live connections cut, new ones refused.
struct DatabaseHop {
    port: u16,
    upstream: String,
    accept: Option<tokio::task::JoinHandle<()>>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl DatabaseHop {
    async fn start() -> DatabaseHop {
        let upstream = Cluster::database_server();
        let mut hop = DatabaseHop { port: 0, upstream, accept: None, connections: Arc::default() };
        hop.up().await;
        hop
    }

    /// Listens again on its port (a port of its own the first time).
    async fn up(&mut self) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(([127, 0, 0, 1], self.port).into()).unwrap();
        let listener = socket.listen(128).unwrap();
        self.port = listener.local_addr().unwrap().port();
        let (upstream, connections) = (self.upstream.clone(), self.connections.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections.lock().unwrap().push(relay);
            }
        }));
    }

    /// Refuses new connections and cuts every live one.
    fn down(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for relay in self.connections.lock().unwrap().drain(..) {
            relay.abort();
        }
    }
}

async fn unavailable_total(cluster: &Cluster, i: usize) -> f64 {
    let mut total = 0.0;
    for cause in ["pool_timeout", "statement_timeout", "lock_timeout", "connection", "conflict"] {
        total += cluster.metric(i, &format!("cyberhub_db_unavailable_total{{cause=\"{cause}\"}}")).await;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_or_restarting_database_is_a_prompt_503_never_a_hang_or_a_500() {
    let mut hop = DatabaseHop::start().await;
    let cluster = Cluster::builder(2).database_through(hop.port).start().await;
    let api = Api::new(&cluster.nginx_url());
    let player = api.known_user().await;
    api.fund(&player, 10.0).await;
    let credit = json!({ "userId": player.id, "amount": 5 });

    // A locked ledger: the lock timeout (2 s) answers, not the client's patience.
    let mut locker = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&cluster.database_url()).await.unwrap()
    };
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE ledger IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();
    let started = std::time::Instant::now();
    let stalled = api.admin_post("/api/admin/balance/add", credit.clone()).await;
    let took = started.elapsed();
    stalled.expect_error(503, "unavailable");
    assert!(stalled.headers.contains_key("retry-after"));
    eprintln!("admin credit against a locked ledger, through nginx: 503 after {took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    // The database goes away: live connections cut, new ones refused.
    hop.down();
    let started = std::time::Instant::now();
    for n in 0..6 {
        let response = if n % 2 == 0 {
            api.get("/api/me", Some(&player.token)).await
        } else {
            api.admin_post("/api/admin/balance/add", credit.clone()).await
        };
        response.expect_error(503, "unavailable");
        assert!(response.headers.contains_key("retry-after"));
    }
    let per_request = started.elapsed() / 6;
    eprintln!("database down: 6 requests, each 503 in {per_request:?} on average");
    assert!(per_request < Duration::from_secs(15), "{per_request:?}");
    let ready = cluster.http.get(format!("{}/ready", cluster.replica_url(0))).send().await.unwrap();
    assert_eq!(ready.status(), 503, "/ready tells the balancer");
    assert!(unavailable_total(&cluster, 0).await + unavailable_total(&cluster, 1).await >= 6.0);

    // It comes back: service resumes without restarting anything, and nothing was half-done.
    hop.up().await;
    let started = std::time::Instant::now();
    loop {
        let me = api.get("/api/me", Some(&player.token)).await;
        if me.status == 200 {
            break;
        }
        me.expect_error(503, "unavailable");
        assert!(started.elapsed() < Duration::from_secs(20), "still 503 20 s after the database came back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(api.balance(&player).await.0, 10.0, "no refused credit landed");
    api.admin_post("/api/admin/balance/add", credit).await.expect(200);
    assert_eq!(api.balance(&player).await.0, 15.0);
    hop.down();
    cluster.shutdown().await;
}
