//! A hostile client against a real server: each attack from issue 10 is tried and its bounded
//! outcome asserted. The bus and database-in-a-cluster ones live in tests/cluster/hostile.rs.

use futures::{SinkExt, StreamExt};
use rand::Rng;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

async fn series(api: &Api) -> std::collections::BTreeSet<String> {
    let text = api.http.get(api.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| Some(line.rsplit_once(' ')?.0.to_string()))
        .collect()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// An Engine.IO websocket session connected to the `/` namespace, as a raw client would hold it.
async fn raw_socket(url: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket upgrade");
    let open = ws.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'), "engine.io open: {open:?}");
    ws.send(Message::text("40")).await.unwrap();
    let connected = next_packet(&mut ws).await;
    assert!(connected.starts_with("40"), "namespace connect: {connected:?}");
    ws
}

/// The next packet other than a heartbeat ping (answered, as a client must).
async fn next_packet(ws: &mut Ws) -> String {
    loop {
        let packet = ws.next().await.unwrap().unwrap();
        match packet.to_text().unwrap() {
            "2" => ws.send(Message::text("3")).await.unwrap(),
            other => return other.to_string(),
        }
    }
}

/// True once the server has closed the session (a close frame, EOF or a reset), within 10 s.
async fn closed_by_server(ws: &mut Ws) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline.into(), ws.next()).await {
            Err(_) => return false,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
            // Pings and anything else queued before the close.
            Ok(Some(Ok(_))) => continue,
        }
    }
}

const FOURTEEN_MB: usize = 14 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_socket_messages_are_cut_off_and_memory_stays_bounded() {
    let server = ServerProcess::start(&[]).await;
    // Warm up what a first socket allocates, so the baseline is a server that has served one.
    let mut warm = raw_socket(&server.ws_url()).await;
    warm.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss_before, _) = server.memory_kib();

    let padding = "a".repeat(FOURTEEN_MB);
    let attacks = (0..8).map(|i| {
        let url = server.ws_url();
        let padding = padding.clone();
        async move {
            let mut ws = raw_socket(&url).await;
            let message = format!(r#"42["user:identify",{{"userId":"{padding}"}}]"#);
            // Half send it as one frame, half as 8 KB fragments of one message.
            let sent = if i % 2 == 0 {
                ws.send(Message::text(message)).await
            } else {
                let bytes = message.into_bytes();
                let mut result = Ok(());
                for (n, chunk) in bytes.chunks(8 * 1024).enumerate() {
                    let opcode = if n == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
                    let last = (n + 1) * 8 * 1024 >= bytes.len();
                    result = ws.send(Message::Frame(Frame::message(chunk.to_vec(), opcode, last))).await;
                    if result.is_err() {
                        break;
                    }
                }
                result
            };
            // The server may close while the message is still being written.
            let _ = sent;
            closed_by_server(&mut ws).await
        }
    });
    let closed = futures::future::join_all(attacks).await;
    assert!(closed.iter().all(|c| *c), "every oversized sender is disconnected: {closed:?}");

    let (_, peak) = server.memory_kib();
    let growth_mb = peak.saturating_sub(rss_before) as f64 / 1024.0;
    eprintln!("8 × 14 MB messages: RSS before {rss_before} KiB, peak {peak} KiB, growth {growth_mb:.1} MB");
    assert!(growth_mb < 40.0, "peak RSS grew by {growth_mb:.1} MB");
    let cut_off = server.api.metric("cyberhub_socket_disconnects_total", &[r#"reason="transport_error""#]).await;
    assert!(cut_off >= 8.0, "{cut_off} oversized senders counted as transport errors");

    // The replica still serves.
    let mut ws = raw_socket(&server.ws_url()).await;
    ws.send(Message::text(r#"421["user:identify",{"userId":"x"}]"#)).await.unwrap();
    let ack = next_packet(&mut ws).await;
    assert!(ack.starts_with("431[") && ack.contains("forbidden"), "{ack}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_never_joins_a_namespace_is_closed() {
    let app = spawn_app(Backend::Sqlite).await;
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", app.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket upgrade");
    let open = ws.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'), "engine.io open: {open:?}");
    // No "40": the session holds a socket without ever becoming a client. Pings are answered, so
    // only the connect timeout (5 s) can end it.
    let started = Instant::now();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Err(_) => break false,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break true,
            Ok(Some(Ok(packet))) if packet.to_text().ok() == Some("2") => ws.send(Message::text("3")).await.unwrap(),
            Ok(Some(Ok(_))) => {}
        }
    };
    assert!(closed, "the session was still open after 10 s");
    assert!(started.elapsed() < Duration::from_secs(8), "closed after {:?}", started.elapsed());
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_attachments_and_oversized_polling_bodies_are_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", app.base.replace("http://", "ws://"));
    let mut ws = raw_socket(&url).await;
    ws.send(Message::text(r#"451-["user:identify",{"_placeholder":true,"num":0}]"#)).await.unwrap();
    let _ = ws.send(Message::binary(vec![0u8; 1024])).await;
    assert!(closed_by_server(&mut ws).await, "a binary attachment closes the socket");

    // Polling: a session, then a body over the 16 KB cap.
    let open = app.http.get(app.url("/socket.io/?EIO=4&transport=polling")).send().await.unwrap();
    let text = open.text().await.unwrap();
    let sid = serde_json::from_str::<serde_json::Value>(&text[1..]).unwrap()["sid"].as_str().unwrap().to_string();
    let big = format!(r#"42["user:identify",{{"userId":"{}"}}]"#, "a".repeat(64 * 1024));
    let post = app
        .http
        .post(app.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}")))
        .body(big)
        .send()
        .await
        .unwrap();
    assert!(post.status().is_client_error(), "oversized polling body: {}", post.status());
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_do_not_grow_the_metric_series() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut rng = rand::thread_rng();
    let random_method = |rng: &mut rand::rngs::ThreadRng| {
        let len = rng.gen_range(3..12);
        let name: String = (0..len).map(|_| rng.gen_range(b'A'..=b'Z') as char).collect();
        Method::from_bytes(name.as_bytes()).unwrap()
    };
    let paths = |rng: &mut rand::rngs::ThreadRng| -> String {
        match rng.gen_range(0..3) {
            0 => format!("/{:x}/{:x}", rng.gen::<u64>(), rng.gen::<u32>()),
            1 => format!("/api/cases/{:x}", rng.gen::<u64>()),
            _ => format!("/api/{:x}", rng.gen::<u32>()),
        }
    };
    let send = |method: Method, path: String| app.http.request(method, app.url(&path)).send();
    // Every kind of request the random ones below can be, once each.
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "BREW"] {
        for path in ["/x/1", "/api/cases/1", "/api/x"] {
            send(Method::from_bytes(method.as_bytes()).unwrap(), path.into()).await.unwrap();
        }
    }
    // The scrape itself is a request too: the first one adds its own series.
    series(&app).await;
    let before = series(&app).await;
    for _ in 0..1000 {
        let method = random_method(&mut rng);
        let path = paths(&mut rng);
        let status = send(method, path).await.unwrap().status();
        assert!(matches!(status.as_u16(), 404 | 405), "{status}");
    }
    let after = series(&app).await;
    eprintln!("metric series: {} before, {} after 1,000 made-up methods and paths", before.len(), after.len());
    let added: Vec<_> = after.difference(&before).collect();
    assert!(added.is_empty(), "made-up methods and paths added series: {added:#?}");
    assert!(app.metric("cyberhub_http_requests_total", &[r#"method="other""#]).await >= 1000.0);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_made_up_authorization_header_does_not_lift_the_anonymous_limit() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMITS", "on"), ("RATE_LIMIT_ANONYMOUS", "5/m")]).await;
    let mut statuses = Vec::new();
    for n in 0..30 {
        let header = if n % 2 == 0 { "x".to_string() } else { format!("Bearer forged.{n}.token") };
        let response = app.http.get(app.url("/api/cases")).header("authorization", header).send().await.unwrap();
        statuses.push(response.status().as_u16());
    }
    let answered = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((answered, limited), (5, 25), "{statuses:?}");
    // Invalid tokens on an authenticated route are refused (and counted) before any work.
    let user = app.known_user().await;
    assert_eq!(app.get("/api/me", Some(&user.token)).await.status, 200, "a valid token is not anonymous");
    let bad = app.get("/api/me", Some("not-a-token")).await;
    assert_eq!(bad.status, 429, "the anonymous budget is spent, whatever the token says");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_io_handshakes_are_rate_limited_per_ip() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMITS", "on"), ("RATE_LIMIT_SOCKET_HANDSHAKES", "20/m")]).await;
    let handshakes = (0..200).map(|n| {
        // Both spellings of the path are admitted the same way.
        let path =
            if n % 2 == 0 { "/socket.io/?EIO=4&transport=polling" } else { "/socket.io?EIO=4&transport=polling" };
        let request = app.http.get(app.url(path)).header("x-forwarded-for", "198.51.100.7");
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            (status, body)
        }
    });
    let results = futures::future::join_all(handshakes).await;
    let opened = results.iter().filter(|(s, b)| *s == 200 && b.starts_with('0')).count();
    let limited: Vec<_> = results.iter().filter(|(s, _)| *s == 429).collect();
    // The burst of 20, and at most one more refilled while the 200 were in flight.
    assert!((20..=21).contains(&opened), "{opened} sessions opened");
    assert_eq!(limited.len(), 200 - opened);
    let envelope: serde_json::Value = serde_json::from_str(&limited[0].1).unwrap();
    assert_eq!(envelope["code"], json!("rate_limited"));
    assert_eq!(
        app.metric("cyberhub_socket_handshakes_total", &[r#"outcome="rate_limited""#]).await,
        limited.len() as f64
    );
    // Another client IP has its own budget.
    let other = app.http.get(app.url("/socket.io/?EIO=4&transport=polling")).header("x-forwarded-for", "198.51.100.8");
    assert_eq!(other.send().await.unwrap().status(), 200);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sockets_are_capped_per_user_and_per_ip() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("RATE_LIMITS", "on"),
            ("RATE_LIMIT_SOCKET_HANDSHAKES", "1000/s"),
            ("RATE_LIMIT_SOCKET_CONNECTS", "1000/s"),
            ("MAX_SOCKETS_PER_IP", "14"),
        ],
    )
    .await;
    let player = app.known_user().await;
    let mut sockets = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..12 {
        match TestSocket::connect(&app.base, Some(&player.token)).await {
            Ok(socket) => sockets.push(socket),
            Err(ConnectFailure::Refused(message)) => refused.push(message),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(sockets.len(), 10, "MAX_SOCKETS_PER_USER defaults to 10");
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|m| m.contains("too_many_connections")), "{refused:?}");

    // The same IP still has room below its own cap, for other players and anonymous sockets.
    let other = app.known_user().await;
    let mut more = vec![app.socket(Some(&other.token)).await];
    for _ in 0..3 {
        more.push(app.socket(None).await);
    }
    match TestSocket::connect(&app.base, None).await {
        Err(ConnectFailure::Refused(message)) => assert!(message.contains("too_many_connections"), "{message}"),
        other => panic!("the 15th socket from one IP connected: {:?}", other.map(|_| ())),
    }
    assert_eq!(app.metric("cyberhub_socket_connects_total", &[r#"outcome="too_many_connections""#]).await, 3.0);

    // A closed socket frees its place.
    sockets.pop().unwrap().close().await;
    let started = Instant::now();
    let replacement = loop {
        match TestSocket::connect(&app.base, Some(&player.token)).await {
            Ok(socket) => break socket,
            Err(_) if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(err) => panic!("the freed place was not given back: {err:?}"),
        }
    };
    replacement.close().await;
    for socket in sockets.into_iter().chain(more) {
        socket.close().await;
    }
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_off_lifts_the_socket_caps() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMITS", "off"), ("MAX_SOCKETS_PER_USER", "2")]).await;
    let player = app.known_user().await;
    let mut sockets = Vec::new();
    for _ in 0..5 {
        sockets.push(app.socket(Some(&player.token)).await);
    }
    for socket in sockets {
        socket.close().await;
    }
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_request_head_is_cut_off() {
    let app = spawn_app_with(Backend::Sqlite, &[("HTTP_HEADER_READ_TIMEOUT", "1s")]).await;
    let address = app.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    // One header byte every 200 ms: the connection never completes a head.
    let closed_after = loop {
        if stream.write_all(b"X").await.is_err() {
            break started.elapsed();
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break started.elapsed(),
            // hyper answers 408 before closing.
            Ok(Ok(_)) => continue,
            Err(_) => {}
        }
        assert!(started.elapsed() < Duration::from_secs(10), "slowloris connection still open after 10 s");
    };
    assert!(closed_after < Duration::from_secs(3), "closed after {closed_after:?}");
    assert_eq!(app.get("/health", None).await.status, 200);
    assert!(app.metric("cyberhub_http_header_timeouts_total", &[]).await >= 1.0, "the cut is counted");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_ledger_is_a_503_with_retry_after_not_a_hang() {
    let app = spawn_app(Backend::Postgres).await;
    let player = app.known_user().await;
    app.fund(&player, 10.0).await;
    let mut locker = sqlx_connect(&app.postgres_url().unwrap()).await;
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE ledger IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();

    let started = Instant::now();
    let credit = app.admin_post("/api/admin/balance/add", json!({ "userId": player.id, "amount": 5 })).await;
    let took = started.elapsed();
    credit.expect_error(503, "unavailable");
    assert!(credit.headers.contains_key("retry-after"), "{:?}", credit.headers);
    eprintln!("admin credit against a locked ledger answered 503 after {took:?}");
    assert!(took < Duration::from_secs(6), "took {took:?} (lock timeout 2 s)");
    assert!(app.metric("cyberhub_db_unavailable_total", &[r#"cause="lock_timeout""#]).await >= 1.0);

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    assert_eq!(app.balance(&player).await.0, 10.0, "the refused credit changed nothing");
    app.admin_post("/api/admin/balance/add", json!({ "userId": player.id, "amount": 5 })).await.expect(200);
    assert_eq!(app.balance(&player).await.0, 15.0);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_deadline_answers_503_when_anything_else_stalls() {
    let app = spawn_app_with(Backend::Postgres, &[("REQUEST_TIMEOUT", "1s"), ("DATABASE_LOCK_TIMEOUT", "30s")]).await;
    let player = app.known_user().await;
    let mut locker = sqlx_connect(&app.postgres_url().unwrap()).await;
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE ledger IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();
    let started = Instant::now();
    let credit = app.admin_post("/api/admin/balance/add", json!({ "userId": player.id, "amount": 5 })).await;
    credit.expect_error(503, "unavailable");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert_eq!(app.metric("cyberhub_http_request_timeouts_total", &[]).await, 1.0);
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    // The abandoned transaction rolled back: nothing was credited.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.balance(&player).await.0, 0.0);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_cannot_be_used_to_hammer_the_database() {
    let app = spawn_app(Backend::Postgres).await;
    let pings = || app.metric("cyberhub_ready_database_pings_total", &[]);
    let before = pings().await;
    let started = Instant::now();
    let mut answered = 0;
    // Two rounds of 250 at once, a little over a second apart.
    for round in 0..2 {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        let probes = (0..250).map(|_| app.http.get(app.url("/ready")).send());
        for response in futures::future::join_all(probes).await {
            assert_eq!(response.unwrap().status(), 200);
            answered += 1;
        }
    }
    let elapsed = started.elapsed();
    let made = pings().await - before;
    eprintln!("{answered} /ready answered in {elapsed:?} with {made} database pings");
    assert!(made >= 1.0, "/ready must still ask the database");
    assert!(made <= elapsed.as_secs_f64().ceil() + 1.0, "{made} pings for {answered} probes");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_request_still_gets_its_events() {
    let app = spawn_app(Backend::Postgres).await;
    let case = app.simple_case(1.0, 0.5).await;
    let player = app.known_user().await;
    app.fund(&player, 10.0).await;
    let event = format!("balance:updated:{}", player.id);
    let socket = app.socket(Some(&player.token)).await;
    assert_eq!(socket.expect(&event).await, json!({ "balance": 10.0, "version": 1 }));

    // The open's statement waits on the lock while the client gives up.
    let mut locker = sqlx_connect(&app.postgres_url().unwrap()).await;
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE ledger IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();
    let gave_up = app
        .http
        .post(app.url("/api/cases/open"))
        .bearer_auth(&player.token)
        .json(&json!({ "caseId": case["id"] }))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client went away before the answer");
    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    // The open committed after the client left; its balance still reaches the player's screen.
    assert_eq!(socket.expect(&event).await, json!({ "balance": 9.0, "version": 2 }));
    assert_eq!(app.balance(&player).await, (9.0, 2));
    socket.close().await;
    app.cleanup().await;
}

async fn sqlx_connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.expect("connect to PostgreSQL")
}
