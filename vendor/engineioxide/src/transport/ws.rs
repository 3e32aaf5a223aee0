//! The ws transport module is responsible for handling websocket connections
//! The only public function is [`new_req`] which is used to upgrade a http request to a websocket connection
//!
//! Other functions are used internally to handle the websocket connection through tasks and channels
//! and to handle upgrade from polling to ws

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, request::Parts};
use smallvec::smallvec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};
use tokio_util::future::FutureExt as _;

use engineioxide_core::{Packet, PacketBuf, ProtocolVersion, Sid, Str, TransportType};
use tokio::sync::mpsc::error::TrySendError;

use crate::{
    DisconnectReason, Socket, body::ResponseBody, config::EngineIoConfig, engine::EngineIo,
    errors::Error, handler::EngineIoHandler, outbox::Recv, socket::Heartbeat,
    transport::make_open_packet,
};

/// Create a response for websocket upgrade
fn ws_response<B>(ws_key: &HeaderValue) -> Response<ResponseBody<B>> {
    let derived = derive_accept_key(ws_key.as_bytes());
    let sec = derived.parse::<HeaderValue>().unwrap();
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::UPGRADE, HeaderValue::from_static("websocket"))
        .header(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        )
        .header(http::header::SEC_WEBSOCKET_ACCEPT, sec)
        .body(ResponseBody::empty_response())
        .unwrap() // we are only using constants
}

/// Upgrade a websocket request to create a websocket connection.
///
/// If a sid is provided in the query it means that is is upgraded from an existing HTTP polling request.
/// In this case the http polling request is closed and the SID is kept for the websocket
pub fn new_req<R: Send + 'static, B, H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req: Request<R>,
) -> Result<Response<ResponseBody<B>>, Error> {
    let (parts, body) = req.into_parts();
    // The session keeps an owned copy of the head; the original (which holds hyper's read buffer)
    // goes with the upgrade request and is dropped once the upgrade is done.
    let head = crate::transport::owned_head(&parts);
    let req = Request::from_parts(parts, body);

    let ws_key = head
        .headers
        .get("Sec-WebSocket-Key")
        .ok_or(Error::InvalidWebSocketKey)?
        .clone();

    tokio::spawn(async move {
        let conn = hyper::upgrade::on(req)
            .await
            .map(hyper_util::rt::TokioIo::new);

        let res = match conn {
            Ok(conn) => on_init(engine.clone(), conn, protocol, sid, head).await,
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!("ws upgrade error: {}", _e);
                return;
            }
        };

        match res {
            Ok(_) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed")
            }
            Err(Error::MultipleWebsocketRequests) => {}
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed with error: {_e}");
                if let Some(sid) = sid {
                    engine.close_session(sid, DisconnectReason::TransportError);
                }
            }
        }
    });

    Ok(ws_response(&ws_key))
}

/// Handle a websocket connection upgrade
///
/// Sends an open packet if it is not an upgrade from a polling request
///
/// Read packets from the websocket and handle them, it will block until the connection is closed
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", name = "init_websocket", skip(engine, conn, req_data))
)]
pub async fn on_init<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(engine.config.ws_read_buffer_size)
        .max_message_size(Some(engine.config.ws_max_message_size))
        .max_frame_size(Some(engine.config.ws_max_frame_size));

    let ws_init = move || WebSocketStream::from_raw_socket(conn, Role::Server, Some(ws_config));
    let (socket, ws, heartbeat) = if let Some(sid) = sid {
        match engine.get_socket(sid) {
            None => return Err(Error::UnknownSessionID(sid)),
            Some(socket) if socket.is_ws() => return Err(Error::MultipleWebsocketRequests),
            Some(socket) => {
                let mut ws = ws_init().await;

                let upgrade_fut = upgrade_handshake::<H, S>(&socket, &mut ws);
                match tokio::time::timeout(engine.config.upgrade_timeout, upgrade_fut)
                    .with_cancellation_token(&socket.cancellation_token)
                    .await
                {
                    Some(Ok(res)) => res?,
                    Some(Err(_)) => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "ws upgrade timed out, closing session");
                        engine.close_session(socket.id, DisconnectReason::TransportError);
                        return Err(Error::Upgrade);
                    }
                    None => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "socket is being closed");
                        return Err(Error::Upgrade);
                    }
                }
                (socket, ws, None)
            }
        }
    } else {
        let socket = engine.create_session(protocol, TransportType::Websocket, req_data, false);

        #[cfg(feature = "tracing")]
        tracing::debug!("new websocket connection");

        let mut ws = ws_init().await;
        init_handshake(socket.id, &mut ws, &engine.config).await?;
        // The heartbeat of a session opened here runs in this task; an upgraded polling session
        // keeps the heartbeat job it started with.
        let heartbeat = Heartbeat::new(
            &socket,
            engine.config.ping_interval,
            engine.config.ping_timeout,
        );
        (socket, ws, Some(heartbeat))
    };
    // The connection lives on in a task of its own, sized for the loop alone: this one (the
    // upgrade and the handshakes, 3 KB of future state) ends here and gives its memory back.
    tokio::spawn(connection::<H, S>(engine, socket, ws, heartbeat));
    Ok(())
}

/// The connection's task: owns what [`run`] works on (references only, so nothing is held twice
/// in the task's state). Not an `async fn`: its by-value parameters and the locals they move into
/// would both be part of the state.
#[allow(clippy::manual_async_fn)]
fn connection<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    socket: Arc<Socket<H::Data>>,
    mut ws: WebSocketStream<S>,
    mut heartbeat: Option<Heartbeat>,
) -> impl Future<Output = ()> + Send + 'static
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async move { run::<H, S>(&engine, &socket, &mut ws, &mut heartbeat).await }
}

/// What made the connection loop stop.
enum Exit {
    /// The session was closed by the server (cancellation token) or the queue was closed.
    Closing,
    /// The client closed the connection or sent a close packet.
    TransportClose,
    Error(Error),
}

/// The whole life of a websocket connection in one task (CyberHub patch, see `vendor/PATCHES.md`):
/// reads client frames, writes the queued packets and, for a session opened on this websocket,
/// drives the heartbeat. Upstream spawns a writer task and a heartbeat task next to the reading
/// one; three futures and their channels per idle socket.
///
/// The outgoing queue is polled first, so packets queued before a close (e.g. the close packet) are
/// written before the cancellation is seen.
async fn run<H: EngineIoHandler, S>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    ws: &mut WebSocketStream<S>,
    heartbeat: &mut Option<Heartbeat>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A polling request that was in progress during the upgrade may still hold the lock.
    let lock = socket.internal_rx.lock();
    let Some(_internal_rx) = lock
        .with_cancellation_token(&socket.cancellation_token)
        .await
    else {
        #[cfg(feature = "tracing")]
        tracing::debug!(sid = %socket.id, "session closed before starting the ws writer");
        return;
    };

    let exit = serve(engine, socket, ws, heartbeat).await;

    match exit {
        Exit::Closing => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = %socket.id, "socket is closing");
        }
        Exit::TransportClose => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = %socket.id, "ws transport was closed");
            engine.close_session(socket.id, DisconnectReason::TransportClose);
        }
        Exit::Error(e) => {
            let reason =
                Option::<DisconnectReason>::from(&e).unwrap_or(DisconnectReason::TransportError);
            #[cfg(feature = "tracing")]
            tracing::debug!("error when handling packet: {:?}", e);
            engine.close_session(socket.id, reason);
        }
    }

    // Write what is still queued (a close packet among others) and close the websocket. A client
    // that does not read any more cannot hold the task: this is bounded by the ping timeout.
    // Boxed, like the writes: only a closing connection needs this state.
    Box::pin(async {
        let closing = async {
            while let Recv::Packets(packets) = socket.outbox.try_recv() {
                write_packets(socket, ws, packets).await;
            }
            #[cfg(feature = "tracing")]
            tracing::trace!(sid = %socket.id, "ws closing flush");
            ws.flush().await.ok();
            ws.close(None).await.ok();
        };
        tokio::time::timeout(engine.config.ping_timeout, closing)
            .await
            .ok();
    })
    .await;
}

/// The connection loop of [`run`]; returns why it stopped.
async fn serve<H: EngineIoHandler, S>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    ws: &mut WebSocketStream<S>,
    heartbeat: &mut Option<Heartbeat>,
) -> Exit
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let sleep = tokio::time::sleep_until(
        heartbeat
            .as_ref()
            .map(Heartbeat::deadline)
            .unwrap_or_else(tokio::time::Instant::now),
    );
    tokio::pin!(sleep);

    loop {
        tokio::select! {
            biased;
            // Queued packets first, then the cancellation (one waiter for both, see `Outbox::readable_until_cancelled`).
            readable = socket.outbox.readable_until_cancelled() => {
                // Boxed: the write state (~0.7 KB) exists only while writing, not in every idle
                // connection's task.
                if !readable || !Box::pin(write_all(socket, ws)).await {
                    break Exit::Closing;
                }
            }
            msg = ws.next() => match msg {
                None => break Exit::TransportClose,
                Some(Err(e)) => break Exit::Error(e.into()),
                Some(Ok(msg)) => match on_message(engine, socket, msg) {
                    Ok(true) => {}
                    Ok(false) => break Exit::TransportClose,
                    Err(e) => break Exit::Error(e),
                },
            },
            () = &mut sleep, if heartbeat.is_some() => {
                let hb = heartbeat.as_mut().expect("guarded by the branch condition");
                if let Err(e) = hb.on_deadline(socket) {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(id = ?socket.id, "heartbeat error: {e}");
                    // As upstream's `Socket::close`: a close packet (written below), then the
                    // session is closed with `HeartbeatTimeout`.
                    socket.send(Packet::Close).ok();
                    break Exit::Error(e);
                }
                sleep.as_mut().reset(hb.deadline());
            }
        }
    }
}

/// Writes everything queued, then flushes. `false` once the outbox is closed and drained.
async fn write_all<D, S>(socket: &Socket<D>, ws: &mut WebSocketStream<S>) -> bool
where
    D: Default + Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let open = loop {
        match socket.outbox.try_recv() {
            Recv::Packets(packets) => write_packets(socket, ws, packets).await,
            Recv::Empty => break true,
            Recv::Closed => break false,
        }
    };
    #[cfg(feature = "tracing")]
    tracing::trace!(sid = %socket.id, "ws flush");
    ws.flush().await.ok();
    open
}

/// Handles one frame from the client. `Ok(false)` means the client closed the session.
fn on_message<H: EngineIoHandler>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    msg: Message,
) -> Result<bool, Error> {
    match msg {
        Message::Text(msg) => match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
            Packet::Close => {
                #[cfg(feature = "tracing")]
                tracing::debug!("[sid={}] closing session", socket.id);
                return Ok(false);
            }
            Packet::Pong | Packet::Ping => socket.on_heartbeat(),
            Packet::Message(msg) => engine.handler.on_message(msg, socket.clone()),
            p => return Err(Error::BadPacket(p)),
        },
        Message::Binary(mut data) => {
            if socket.protocol == ProtocolVersion::V3 && !data.is_empty() {
                // The first byte is the message type, which we don't need.
                data = data.split_off(1);
            }
            engine.handler.on_binary(data, socket.clone());
        }
        Message::Close(_) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("websocket closed, closing session");
            return Ok(false);
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = ?socket.id, "unexpected ws message");
        }
    }
    Ok(true)
}

/// Maps packets to websocket messages and feeds them (the caller flushes).
async fn write_packets<D, S>(socket: &Socket<D>, ws: &mut WebSocketStream<S>, packets: PacketBuf)
where
    D: Default + Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    for item in packets {
        let res = match item {
            Packet::Binary(bin) | Packet::BinaryV3(bin) => {
                if socket.protocol == ProtocolVersion::V3 {
                    // v3 protocol requires packet type as the first byte.
                    // This requires a new buffer. This is OK as it is only for the V3 protocol.
                    let mut buff = Vec::with_capacity(bin.len() + 1);
                    buff.push(0x04);
                    buff.extend(bin);
                    ws.feed(Message::Binary(buff.into())).await
                } else {
                    ws.feed(Message::Binary(bin)).await
                }
            }
            // A Noop Packet maybe sent by the server to upgrade from a polling connection
            // In the case that the packet was not poll in time it will remain in the buffer and therefore
            // it should be discarded here
            Packet::Noop => Ok(()),
            item => {
                let packet = String::from(item);
                ws.feed(Message::Text(packet.into())).await
            }
        };
        if let Err(_e) = res {
            #[cfg(feature = "tracing")]
            tracing::debug!("[sid={}] error sending packet: {}", socket.id, _e);
        }
    }
}

/// Send a Engine.IO [`OpenPacket`] to initiate a websocket connection
async fn init_handshake<S>(
    sid: Sid,
    ws: &mut WebSocketStream<S>,
    config: &EngineIoConfig,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let packet = Packet::Open(make_open_packet(TransportType::Websocket, sid, config));
    let packet: String = packet.into();
    ws.send(Message::Text(packet.into())).await?;
    Ok(())
}

/// Upgrade a session from a polling request to a websocket request.
///
/// Before upgrading the session the server should send a NOOP packet to any pending polling request.
///
/// ## Handshake :
/// ```text
/// CLIENT                                                 SERVER
///│                                                      │
///│   GET /engine.io/?EIO=4&transport=websocket&sid=...  │
///│ ───────────────────────────────────────────────────► │
///│  ◄─────────────────────────────────────────────────┘ │
///│            HTTP 101 (WebSocket handshake)            │
///│                                                      │
///│            -----  WebSocket frames -----             │
///│  ─────────────────────────────────────────────────►  │
///│                         2probe                       │ (ping packet)
///│  ◄─────────────────────────────────────────────────  │
///│                         3probe                       │ (pong packet)
///│  ─────────────────────────────────────────────────►  │
///│                         5                            │ (upgrade packet)
///│                                                      │
///│            -----  WebSocket frames -----             │
/// ```
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", skip(socket, ws))
)]
async fn upgrade_handshake<H: EngineIoHandler, S>(
    socket: &Arc<Socket<H::Data>>,
    ws: &mut WebSocketStream<S>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tracing")]
    tracing::debug!("starting websocket connection upgrade");

    // The socket is upgrading, from now on all polling
    // request will return a `Packet::Noop`
    socket.start_upgrade();

    // We send a last Noop request to close a potential waiting polling request.
    // (A full queue needs no Noop: the waiting request returns with what is queued.)
    if let Err(TrySendError::Closed(_)) = socket.outbox.try_send(smallvec![Packet::Noop]) {
        return Err(Error::Upgrade);
    }

    // wait for any current polling connection to finish by waiting for the socket to be unlocked
    // All other polling connection will be immediately closed with a NOOP packet.
    let _lock = socket.internal_rx.lock().await;

    // Fetch the next packet from the ws stream, it should be a PingUpgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        _ => Err(Error::Upgrade)?,
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::PingUpgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("received first ping upgrade");
            // Respond with a PongUpgrade packet
            ws.send(Message::Text(String::from(Packet::PongUpgrade).into()))
                .await?;
        }
        p => Err(Error::BadPacket(p))?,
    };

    // Fetch the next packet from the ws stream, it should be an Upgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        Some(Ok(Message::Close(_))) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws stream closed before upgrade");
            Err(Error::Upgrade)?
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!("unexpected ws message before upgrade");
            Err(Error::Upgrade)?
        }
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::Upgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws upgraded successfully")
        }
        p => Err(Error::BadPacket(p))?,
    };

    socket.upgrade_to_websocket();
    Ok(())
}

fn ws_bytes_to_str(bytes: tungstenite::Utf8Bytes) -> Str {
    // SAFETY: the bytes are guaranteed to be valid UTF-8 by the tungstenite parser
    unsafe { Str::from_bytes_unchecked(bytes.into()) }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use http::Request;
    use tokio::io::DuplexStream;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[derive(Debug)]
    struct StubHandler;
    impl EngineIoHandler for StubHandler {
        type Data = ();
        fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
        fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
        fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
        fn on_binary(self: &Arc<Self>, _: Bytes, _: Arc<Socket<()>>) {}
    }

    fn socket() -> Arc<Socket<()>> {
        Arc::new(Socket::new(
            ProtocolVersion::V4,
            TransportType::Websocket,
            &EngineIoConfig::default(),
            Request::<()>::default().into_parts().0,
            Box::new(|_, _| ()),
            false,
        ))
    }

    async fn ws_pair() -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(1024);
        (
            WebSocketStream::from_raw_socket(server, Role::Server, None).await,
            WebSocketStream::from_raw_socket(client, Role::Client, None).await,
        )
    }

    fn engine() -> Arc<EngineIo<StubHandler>> {
        Arc::new(EngineIo::new(
            Arc::new(StubHandler),
            EngineIoConfig::default(),
        ))
    }

    /// A polling request can still hold the lock at the end of an upgrade.
    #[tokio::test]
    async fn writer_waits_for_the_lock_of_a_polling_request() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;

        let polling = socket.internal_rx.lock().await;
        let writer = {
            let socket = socket.clone();
            tokio::spawn(connection::<StubHandler, _>(engine(), socket, server, None))
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!writer.is_finished(), "the writer should wait for the lock");

        drop(polling);
        socket.emit(Str::from("hello")).unwrap();
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .expect("the writer should send the packet")
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("4hello"));
    }

    #[tokio::test]
    async fn writer_waiting_for_the_lock_stops_with_the_session() {
        let socket = socket();
        let (server, _client) = ws_pair().await;

        let _polling = socket.internal_rx.lock().await;
        let writer = {
            let socket = socket.clone();
            tokio::spawn(connection::<StubHandler, _>(engine(), socket, server, None))
        };
        tokio::time::sleep(Duration::from_millis(20)).await;

        socket.cancel();
        tokio::time::timeout(TIMEOUT, writer)
            .await
            .expect("the writer should stop")
            .unwrap();
    }

    /// One task reads, writes and pings: a ping goes out at once, a pong keeps the session, the
    /// client's messages reach the handler while packets are written.
    #[tokio::test]
    async fn one_task_reads_writes_and_pings() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;
        let hb = Heartbeat::new(
            &socket,
            Duration::from_millis(50),
            Duration::from_millis(40),
        );
        let task = {
            let socket = socket.clone();
            tokio::spawn(connection::<StubHandler, _>(
                engine(),
                socket,
                server,
                Some(hb),
            ))
        };
        for _ in 0..3 {
            let msg = tokio::time::timeout(TIMEOUT, client.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(msg, Message::text("2"));
            client.send(Message::text("3")).await.unwrap();
        }
        socket.emit(Str::from("x")).unwrap();
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("4x"));
        assert!(!task.is_finished());
        // No pong: the session is closed by the heartbeat.
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("2"));
        tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("heartbeat timeout ends the task")
            .unwrap();
    }
}
