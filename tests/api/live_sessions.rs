//! Live sessions (issue 11, the socket-local part): a socket ends at its token's exp + grace,
//! `auth:refresh` moves that deadline in band, a slow consumer is cut and counted, and a drain
//! spreads its closes over DRAIN_WINDOW.

use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cyberhub::auth::JwtKeys;
use cyberhub::domain::Role;

use crate::helpers::*;

const GRACE: &[(&str, &str)] = &[("TOKEN_EXPIRY_GRACE", "1s")];

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A user known to the server whose token expires `ttl` from now, and that token's `exp`.
async fn short_lived_user(app: &TestApp, ttl: u64) -> (TestUser, u64) {
    let user = app.known_user().await;
    let exp = unix_now() as u64 + ttl;
    let token = app.token_with_ttl(user.id, Role::User, Duration::from_secs(ttl));
    (TestUser { id: user.id, token }, exp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_is_ended_at_its_tokens_exp_plus_grace() {
    let app = spawn_app_with(Backend::Sqlite, GRACE).await;
    let anonymous = app.socket(None).await;
    let (user, exp) = short_lived_user(&app, 2).await;
    let socket = app.socket(Some(&user.token)).await;
    socket.expect(&format!("balance:updated:{}", user.id)).await;

    let ended = socket.expect("session:ended").await;
    let at = unix_now();
    assert_eq!(ended, json!({ "reason": "token_expired" }));
    let deadline = (exp + 1) as f64;
    assert!(at >= deadline - 0.05, "ended {:.3} s before exp + grace", deadline - at);
    assert!(at < deadline + 1.0, "ended {:.3} s after exp + grace", at - deadline);
    socket.expect("disconnect").await;

    // Gone from the server (only the anonymous socket is counted), and nothing more reaches it:
    // the player's next event goes to a new socket of theirs, and the ended one got nothing.
    assert_eq!(app.metric("cyberhub_socket_sessions_ended_total", &["token_expired"]).await, 1.0);
    eventually(Duration::from_secs(5), "only the anonymous socket is connected", || async {
        let clients = app.metric("cyberhub_connected_clients", &[]).await;
        if clients == 1.0 {
            Ok(())
        } else {
            Err(clients)
        }
    })
    .await;
    let balance = format!("balance:updated:{}", user.id);
    let again = app.socket(Some(&app.token(user.id, Role::User))).await;
    assert_eq!(again.expect(&balance).await["version"], json!(0), "the snapshot");
    app.fund(&user, 1.0).await;
    assert_eq!(again.expect(&balance).await["version"], json!(1), "the live event");
    assert_eq!(socket.drain().await, vec![], "the ended socket received nothing after its disconnect");
    // The anonymous socket is untouched: a case change reaches it with nothing before it.
    app.simple_case(1.0, 0.5).await;
    anonymous.expect_none_before(&["session:ended", "disconnect"], "cases:updated").await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_keeps_the_socket_and_its_events_past_the_old_deadline() {
    let app = spawn_app_with(Backend::Sqlite, GRACE).await;
    let (user, exp) = short_lived_user(&app, 2).await;
    let socket = app.socket(Some(&user.token)).await;
    let balance_event = format!("balance:updated:{}", user.id);
    socket.expect(&balance_event).await;

    // A later token of the same player, with a new role: accepted in band.
    let fresh = app.token_with_ttl(user.id, Role::Admin, Duration::from_secs(600));
    let ack = socket.emit_with_ack("auth:refresh", json!({ "token": fresh })).await;
    assert_eq!(ack["ok"], json!(true), "ack: {ack}");
    let new_exp = ack["exp"].as_u64().expect("exp in the ack");
    assert!(new_exp >= exp + 590, "exp moved: {ack}");

    // Past the old exp + grace, the socket is still there and still gets its events.
    let wait = (exp + 1) as f64 - unix_now() + 0.7;
    tokio::time::sleep(Duration::from_secs_f64(wait.max(0.0))).await;
    app.fund(&user, 2.5).await;
    let event = socket.expect_none_before(&["session:ended", "disconnect"], &balance_event).await;
    assert_eq!(event["balance"], json!(2.5));
    assert_eq!(app.metric("cyberhub_socket_sessions_ended_total", &[]).await, 0.0);
    assert_eq!(app.metric("cyberhub_socket_token_refreshes_total", &["\"ok\""]).await, 1.0);
    socket.close().await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_leaks_nothing_and_keeps_the_old_deadline() {
    let app = spawn_app_with(Backend::Sqlite, GRACE).await;
    let (alice, exp) = short_lived_user(&app, 3).await;
    let bob = app.known_user().await;
    let socket = app.socket(Some(&alice.token)).await;
    socket.expect(&format!("balance:updated:{}", alice.id)).await;

    let forged = JwtKeys::new("another-secret-0123456789").issue(alice.id, Role::Admin, Duration::from_secs(600));
    let refusals = [
        (json!({ "token": bob.token }), "forbidden"),
        (json!({ "token": forged }), "unauthorized"),
        (json!({ "token": "not.a.token" }), "unauthorized"),
        (json!({ "token": "" }), "unauthorized"),
        (json!({}), "unauthorized"),
        (json!("just a string"), "unauthorized"),
    ];
    for (payload, error) in refusals {
        let ack = socket.emit_with_ack("auth:refresh", payload.clone()).await;
        assert_eq!(ack, json!({ "ok": false, "error": error }), "payload {payload}");
    }

    // Still Alice: Bob's events do not reach the socket, Alice's do.
    app.fund(&bob, 1.0).await;
    app.fund(&alice, 3.0).await;
    let bob_events = [format!("balance:updated:{}", bob.id), format!("inventory:updated:{}", bob.id)];
    let bob_events: Vec<&str> = bob_events.iter().map(String::as_str).collect();
    socket.expect_none_before(&bob_events, &format!("balance:updated:{}", alice.id)).await;

    // An anonymous socket cannot log in in band.
    let anonymous = app.socket(None).await;
    let ack = anonymous.emit_with_ack("auth:refresh", json!({ "token": bob.token })).await;
    assert_eq!(ack, json!({ "ok": false, "error": "forbidden" }));
    app.fund(&bob, 1.0).await;
    app.simple_case(1.0, 0.5).await;
    anonymous.expect_none_before(&[&format!("balance:updated:{}", bob.id)], "cases:updated").await;

    // And the old deadline still holds.
    assert_eq!(socket.expect("session:ended").await, json!({ "reason": "token_expired" }));
    assert!(unix_now() >= (exp + 1) as f64 - 0.05);
    assert_eq!(app.metric("cyberhub_socket_token_refreshes_total", &["forbidden"]).await, 2.0);
    assert_eq!(app.metric("cyberhub_socket_token_refreshes_total", &["unauthorized"]).await, 5.0);
    anonymous.close().await;
    app.cleanup().await;
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A raw websocket Socket.IO client connected as `token`, on a TCP socket with a 4 KB receive
/// buffer, that reads nothing after its connect and snapshot unless asked.
async fn non_reading_socket(app: &TestApp, token: &str) -> Ws {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(addr).await.unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.expect("websocket upgrade");
    let open = ws.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with('0'), "engine.io open: {open:?}");
    ws.send(Message::text(format!("40{}", json!({ "token": token })))).await.unwrap();
    loop {
        let packet = ws.next().await.unwrap().unwrap();
        match packet.to_text().unwrap() {
            // The first heartbeat comes at once; answered, as a client must.
            "2" => ws.send(Message::text("3")).await.unwrap(),
            connected => {
                assert!(connected.starts_with("40"), "namespace connect: {connected:?}");
                return ws;
            }
        }
    }
}

/// Reads what the server queued until its namespace disconnect (`41`), a close or EOF; true if
/// one came within 10 s.
async fn read_until_disconnected(ws: &mut Ws) -> bool {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "41" => return true,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_and_counted_and_others_keep_their_events() {
    use cyberhub::events::Event;
    let app = spawn_app_with(Backend::Sqlite, &[("SOCKET_SEND_QUEUE", "32")]).await;
    let slow_user = app.known_user().await;
    let other = app.known_user().await;
    let mut slow = non_reading_socket(&app, &slow_user.token).await;
    let healthy = app.socket(Some(&other.token)).await;
    healthy.expect(&format!("balance:updated:{}", other.id)).await;
    assert_eq!(app.metric("cyberhub_connected_clients", &[]).await, 2.0);

    // Events to both players, paced so a reading client keeps up, until the slow player's TCP
    // buffers and then its 32-packet queue are full.
    let mut sent = 0i64;
    while app.state.metrics.slow_consumers.get() == 0 {
        assert!(sent < 400_000, "no slow consumer after {sent} events");
        sent += 1;
        app.state.publish([Event::BalanceUpdated { user_id: slow_user.id, balance: sent, version: sent }]).await;
        if sent % 8 == 0 {
            // The reading client gets one event per millisecond: it is never 32 behind.
            app.state.publish([Event::BalanceUpdated { user_id: other.id, balance: sent, version: sent }]).await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    println!("slow consumer cut after {sent} events");
    assert!(sent > 100, "cut after only {sent} events: the TCP buffers were not even full");
    // Cut once, however many more events come for it.
    for i in 0..1000 {
        app.state.publish([Event::BalanceUpdated { user_id: slow_user.id, balance: i, version: sent + i }]).await;
    }
    assert_eq!(app.metric("cyberhub_socket_slow_consumers_total", &[]).await, 1.0);

    // Once it reads, what was queued ends with the disconnect, and the server lets it go.
    assert!(read_until_disconnected(&mut slow).await, "the slow consumer was not disconnected");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.metric("cyberhub_connected_clients", &[]).await != 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "the slow socket is still counted as connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The other player's socket, which read its own stream meanwhile, is untouched and still gets its events.
    app.fund(&other, 1.5).await;
    let other_event = format!("balance:updated:{}", other.id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while healthy.expect(&other_event).await["balance"] != json!(1.5) {
        assert!(tokio::time::Instant::now() < deadline, "the funded balance did not arrive");
    }
    assert_eq!(app.metric("cyberhub_socket_slow_consumers_total", &[]).await, 1.0);

    // It reconnects and gets the true balance snapshot.
    let back = app.socket(Some(&slow_user.token)).await;
    assert_eq!(back.expect(&format!("balance:updated:{}", slow_user.id)).await["balance"], json!(0.0));
    healthy.close().await;
    back.close().await;
    app.cleanup().await;
}

/// An anonymous raw websocket socket of `url` that, in its own task, answers pings and reports
/// when the server closed it and whether `session:ended { reason: "draining" }` came first.
async fn watched_socket(url: String) -> tokio::task::JoinHandle<(tokio::time::Instant, bool)> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("websocket upgrade");
    ws.next().await.unwrap().unwrap();
    ws.send(Message::text("40")).await.unwrap();
    loop {
        let packet = ws.next().await.unwrap().unwrap();
        match packet.to_text().unwrap() {
            "2" => ws.send(Message::text("3")).await.unwrap(),
            other if other.starts_with("40") => break,
            other => panic!("namespace connect: {other:?}"),
        }
    }
    tokio::spawn(async move {
        let mut told = false;
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return (tokio::time::Instant::now(), told),
                Some(Ok(Message::Text(text))) => match text.as_str() {
                    "2" => {
                        let _ = ws.send(Message::text("3")).await;
                    }
                    "41" => return (tokio::time::Instant::now(), told),
                    t if t.starts_with("42[\"session:ended\"") => told = t.contains("\"reason\":\"draining\""),
                    _ => {}
                },
                Some(Ok(_)) => {}
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_drains_sockets_spread_over_the_window_and_exits_0() {
    const SOCKETS: usize = 300;
    let window = Duration::from_secs(4);
    let mut server = ServerProcess::start(&[("DRAIN_WINDOW", "4s"), ("RATE_LIMITS", "off")]).await;
    let mut watchers = Vec::new();
    for _ in 0..SOCKETS {
        watchers.push(watched_socket(server.ws_url()).await);
    }
    assert_eq!(server.api.metric("cyberhub_connected_clients", &[]).await, SOCKETS as f64);
    assert_eq!(server.api.get("/ready", None).await.status.as_u16(), 200);

    let signalled = tokio::time::Instant::now();
    server.sigterm();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Out of rotation at once, while HTTP still serves; new sessions go elsewhere.
    let ready = server.api.get("/ready", None).await;
    assert_eq!((ready.status.as_u16(), ready.body["status"].clone()), (503, json!("draining")));
    let handshake = server.api.get("/socket.io/?EIO=4&transport=polling", None).await;
    assert_eq!(handshake.status.as_u16(), 503);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(server.api.get("/ready", None).await.status.as_u16(), 503, "still draining half way");

    let mut closes = Vec::new();
    for watcher in watchers {
        let (at, told) = tokio::time::timeout(window + Duration::from_secs(5), watcher)
            .await
            .expect("every socket closed within the window")
            .unwrap();
        assert!(told, "a socket was closed without session:ended draining");
        closes.push(at - signalled);
    }
    let status = tokio::time::timeout(window + Duration::from_secs(5), server.child.wait())
        .await
        .expect("exited within DRAIN_WINDOW + 5 s")
        .unwrap();
    let exited = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    closes.sort();
    let (first, last) = (closes[0], closes[SOCKETS - 1]);
    let per_second = closes.iter().fold(std::collections::BTreeMap::<u64, u32>::new(), |mut m, at| {
        *m.entry((at.as_millis() / 1000) as u64).or_default() += 1;
        m
    });
    println!(
        "drain of {SOCKETS} sockets over {window:?}: first close {first:?}, last {last:?}, spread {:?}, \
         closes per second {per_second:?}, exit after {exited:?}",
        last - first
    );
    assert!(last - first >= window / 2, "closes spread over only {:?}", last - first);
    assert!(last <= window + Duration::from_secs(1), "last close at {last:?}");
    let peak = per_second.values().max().copied().unwrap_or(0);
    assert!(peak as usize <= SOCKETS / 2, "{peak} closes in one second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_or_a_zero_window_closes_at_once() {
    const SOCKETS: usize = 50;
    for (window, twice) in [("60s", true), ("0", false)] {
        let mut server = ServerProcess::start(&[("DRAIN_WINDOW", window), ("RATE_LIMITS", "off")]).await;
        let mut watchers = Vec::new();
        for _ in 0..SOCKETS {
            watchers.push(watched_socket(server.ws_url()).await);
        }
        let signalled = tokio::time::Instant::now();
        server.sigterm();
        if twice {
            tokio::time::sleep(Duration::from_millis(300)).await;
            server.sigterm();
        }
        for watcher in watchers {
            let (at, _) = tokio::time::timeout(Duration::from_secs(5), watcher).await.expect("closed at once").unwrap();
            assert!(
                at - signalled < Duration::from_secs(2),
                "DRAIN_WINDOW={window}: closed after {:?}",
                at - signalled
            );
        }
        let status = tokio::time::timeout(Duration::from_secs(5), server.child.wait())
            .await
            .expect("exited within 5 s")
            .unwrap();
        assert!(status.success(), "DRAIN_WINDOW={window}: exit status {status:?}");
    }
}
