//! Socket.IO: authentication at connect, the per-user room, the balance snapshot that repairs
//! any missed event, and delivery of bus events to this replica's sockets.

use serde::Deserialize;
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use socketioxide::SocketIo;
use socketioxide::{SendError, SocketError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use uuid::Uuid;

use crate::admission::SocketSlot;
use crate::auth::Identity;
use crate::client_ip::ClientIp;
use crate::events::{user_room, Envelope, Event};
use crate::metrics::Metrics;
use crate::sessions;
use crate::state::{AppState, KnownUsers};
use crate::store::Store;

const NO_ARGUMENTS: [u8; 0] = [];
/// Sent after connect to a client that sent `positions`: `{ recovered }`.
pub const SYNC: &str = "sync";

/// Where a delivered event came from, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Published on this replica.
    Local,
    /// Received from another replica over the bus.
    Remote,
    /// Re-sent to bring clients back to the true state after the bus recovered.
    Resync,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Remote => "remote",
            Origin::Resync => "resync",
        }
    }
}

/// This replica's sockets. `io.sockets()` panics while the `/` namespace is not registered yet,
/// and the bus's background tasks start before it is: one of them died that way at startup, and
/// with it the replica's "who is online" entry.
pub fn local_sockets(io: &SocketIo) -> Vec<SocketRef> {
    io.of("/").map(|namespace| namespace.sockets()).unwrap_or_default()
}

/// Emits events to the sockets of this replica.
#[derive(Clone)]
pub struct Delivery {
    io: SocketIo,
    metrics: Arc<Metrics>,
    known_users: Arc<KnownUsers>,
}

impl Delivery {
    pub fn new(io: SocketIo, metrics: Arc<Metrics>, known_users: Arc<KnownUsers>) -> Self {
        Delivery { io, metrics, known_users }
    }

    pub async fn deliver(&self, envelope: &Envelope, origin: Origin) {
        // `io.of` rather than `io.to`: once shutdown has closed the namespace, requests still
        // finishing must not panic on an emit; their events still reach the other replicas.
        let namespace = if envelope.admins { crate::console::NAMESPACE } else { "/" };
        let Some(namespace) = self.io.of(namespace) else { return };
        let targets = match &envelope.room {
            None => namespace.sockets(),
            Some(room) => namespace.to(room.clone()).sockets(),
        };
        // One emit per socket rather than a broadcast: a broadcast's error does not say which
        // socket's queue was full, and that socket must be cut, not silently skipped. A socket
        // already being cut is not looked up first (an extensions lookup per socket per event):
        // it left its rooms, and `cut_slow_consumer` does nothing the second time.
        for socket in targets {
            let sent = match &envelope.payload {
                Some(payload) => socket.emit(&envelope.name, payload),
                // An empty tuple spreads into no arguments: `42["cases:updated"]`, as the old backend sent.
                None => socket.emit(&envelope.name, &NO_ARGUMENTS),
            };
            if let Err(SendError::Socket(SocketError::InternalChannelFull)) = sent {
                sessions::cut_slow_consumer(socket, &self.metrics);
            }
        }
        self.metrics.events_delivered.with_label_values(&[&envelope.kind, origin.label()]).inc();
    }

    /// Acts on an event: ends the sessions it ends, or emits it to the sockets it is for.
    pub async fn dispatch(&self, event: &Event, origin: Origin) {
        // The cache first, so a socket connecting meanwhile is refused (it re-checks after
        // joining its room, see `authenticate`).
        if let Event::UserBlocked { user_id, blocked } = event {
            self.known_users.set(*user_id, *blocked);
        }
        if !event.is_control() {
            return self.deliver(&Envelope::from(event), origin).await;
        }
        if let Some((user_id, reason)) = event.ends_sessions() {
            sessions::end_user(&self.io, user_id, reason, &self.metrics);
        }
        self.metrics.events_delivered.with_label_values(&[event.kind(), origin.label()]).inc();
    }

    pub fn io(&self) -> &SocketIo {
        &self.io
    }

    pub fn observe_lag(&self, kind: &str, published_at: SystemTime) {
        let lag = SystemTime::now().duration_since(published_at).unwrap_or(Duration::ZERO);
        self.metrics.event_lag.with_label_values(&[kind]).observe(lag.as_secs_f64());
    }

    /// Brings every local socket back to the true state after events may have been missed: the
    /// current balance to each authenticated socket, and refetch hints for cases and inventory.
    /// The balances come in one query per `MAX_ACCOUNTS_PER_QUERY` users, not one per user, and
    /// are absolute and versioned, so a repair that races a live event is harmless (clients keep
    /// the higher version). Returns how many users were repaired.
    pub async fn resync(&self, store: &dyn Store) -> usize {
        let users: Vec<Uuid> = local_sockets(&self.io)
            .iter()
            .filter_map(|socket| socket.extensions.get::<Session>().and_then(|s| s.0).map(|i| i.user_id))
            .collect::<HashSet<Uuid>>()
            .into_iter()
            .collect();
        // A block or unblock may have been missed in the gap: ask the database again.
        self.known_users.forget_all();
        self.deliver(&Envelope::from(&Event::CasesUpdated), Origin::Resync).await;
        let mut repaired = 0;
        for chunk in users.chunks(crate::store::MAX_ACCOUNTS_PER_QUERY) {
            match store.positions(chunk).await {
                Ok(positions) => {
                    for (user_id, now) in positions {
                        let inventory = Event::inventory(user_id, now.inventory_version);
                        self.deliver(&Envelope::from(&inventory), Origin::Resync).await;
                        self.deliver(&Envelope::from(&Event::balance(user_id, now.account)), Origin::Resync).await;
                        repaired += 1;
                    }
                }
                Err(err) => tracing::warn!(error = %err, users = chunk.len(), "resync could not load balances"),
            }
        }
        repaired
    }
}

#[derive(Debug, Default, Deserialize)]
struct Handshake {
    #[serde(default)]
    token: Option<String>,
    /// What a reconnecting client already shows: `{ balance: <version>, inventory: <version> }`.
    #[serde(default)]
    positions: Option<Positions>,
}

/// The positions a client sent in its handshake. Unknown keys are ignored.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct Positions {
    #[serde(default)]
    pub balance: Option<i64>,
    #[serde(default)]
    pub inventory: Option<i64>,
}

/// The socket's verified identity, `None` for an anonymous socket. `auth:refresh` replaces it
/// (same user, new role and expiry).
#[derive(Clone, Copy, Debug)]
pub struct Session(pub Option<Identity>);

#[derive(Debug, thiserror::Error)]
enum ConnectRefused {
    #[error("unauthorized")]
    Unauthorized,
    #[error("rate_limited")]
    RateLimited,
    #[error("unavailable")]
    Unavailable,
    #[error("too_many_connections")]
    TooManyConnections,
    #[error("blocked")]
    Blocked,
}

/// `user:identify`'s only argument. Parsed into this, not into a `serde_json::Value`, so a
/// client cannot make the server build an arbitrary tree (the whole message is capped too).
#[derive(Debug, Deserialize)]
struct IdentifyRequest {
    #[serde(rename = "userId")]
    user_id: Option<String>,
}

/// `auth:refresh`'s only argument: `{ token }`.
#[derive(Debug, Deserialize)]
struct RefreshRequest {
    token: Option<String>,
}

pub fn register(io: &SocketIo, state: AppState) {
    let middleware_state = state.clone();
    let authenticate = move |socket: SocketRef, TryData(handshake): TryData<Handshake>| {
        let state = middleware_state.clone();
        async move { authenticate(socket, handshake.unwrap_or_default(), state).await }
    };
    let on_connect = move |socket: SocketRef| {
        let state = state.clone();
        async move { on_connect(socket, state).await }
    };
    io.ns("/", on_connect.with(authenticate));
}

async fn authenticate(socket: SocketRef, handshake: Handshake, state: AppState) -> Result<(), ConnectRefused> {
    // Resolved by the HTTP middleware on the engine.io request this socket came from.
    let ip = ClientIp::of(&socket.req_parts().extensions);
    if state.limits.socket_connect(ip, &state.metrics).is_err() {
        state.metrics.connects.with_label_values(&["rate_limited"]).inc();
        return Err(ConnectRefused::RateLimited);
    }
    let identity = match handshake.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => match state.jwt.verify(token) {
            Ok(identity) => Some(identity),
            Err(_) => {
                state.metrics.connects.with_label_values(&["unauthorized"]).inc();
                return Err(ConnectRefused::Unauthorized);
            }
        },
    };
    let slot = match state.sockets.admit(ip, identity.map(|i| i.user_id)) {
        Ok(slot) => slot,
        Err(refusal) => {
            tracing::debug!(cap = refusal.as_str(), "socket connect refused: too many connections");
            state.metrics.connects.with_label_values(&["too_many_connections"]).inc();
            return Err(ConnectRefused::TooManyConnections);
        }
    };
    if let Some(identity) = identity {
        match state.remember_user(identity.user_id).await {
            Ok(false) => {}
            Ok(true) => return Err(refuse_blocked(&state)),
            Err(err) => {
                tracing::warn!(error = %err, "socket connect refused: database unavailable");
                state.metrics.connects.with_label_values(&["unavailable"]).inc();
                if let crate::store::StoreError::Unavailable { cause, .. } = &err {
                    state.metrics.db_unavailable.with_label_values(&[cause.as_str()]).inc();
                }
                return Err(ConnectRefused::Unavailable);
            }
        }
    }
    // Held in the socket's extensions: its place is freed when the socket goes, whichever way.
    if let Some(slot) = slot {
        socket.extensions.insert(slot);
    }
    socket.extensions.insert(Session(identity));
    if let Some(positions) = handshake.positions {
        socket.extensions.insert(positions);
    }
    socket.extensions.insert(crate::online::SocketInfo { connected_at: chrono::Utc::now(), client_ip: ip });
    // Listening and in its room before the connect packet goes out: socketioxide sends it as soon
    // as the middleware returns and runs the connect handler a moment later, and old clients emit
    // user:identify the moment they read it.
    socket.on(
        "user:identify",
        move |socket: SocketRef, TryData(body): TryData<IdentifyRequest>, ack: AckSender| async move {
            let _ = ack.send(&identify(&socket, identity, body.ok()));
        },
    );
    let refresh_state = state.clone();
    socket.on("auth:refresh", move |socket: SocketRef, TryData(body): TryData<RefreshRequest>, ack: AckSender| {
        let state = refresh_state.clone();
        async move {
            let _ = ack.send(&refresh(&socket, &state, body.ok()));
        }
    });
    if let Some(identity) = identity {
        socket.join(user_room(identity.user_id));
        // A block that landed since the check above found no socket in the room to end: look again.
        if state.known_users.blocked(identity.user_id) == Some(true) {
            socket.leave_all();
            return Err(refuse_blocked(&state));
        }
    }
    Ok(())
}

fn refuse_blocked(state: &AppState) -> ConnectRefused {
    state.metrics.connects.with_label_values(&["blocked"]).inc();
    ConnectRefused::Blocked
}

async fn on_connect(socket: SocketRef, state: AppState) {
    let session = socket.extensions.get::<Session>().unwrap_or(Session(None));
    let authenticated = session.0.is_some();
    state.metrics.connects.with_label_values(&["accepted"]).inc();
    state.metrics.client_connected(authenticated);

    // Counted out exactly once, also when the client left before this handler ran (then the
    // disconnect handler registered here is never called).
    let counted = Arc::new(AtomicBool::new(true));
    let (metrics, still_counted) = (state.metrics.clone(), counted.clone());
    // Before the disconnect handler, so that handler always finds (and stops) the timer.
    if let Some(identity) = session.0 {
        state.expiry.watch(&socket, identity.expires_at);
    }
    let expiry = state.expiry.clone();
    socket.on_disconnect(move |socket: SocketRef, reason: DisconnectReason| async move {
        socket.extensions.remove::<SocketSlot>();
        expiry.cancel(&socket);
        if still_counted.swap(false, Ordering::SeqCst) {
            metrics.client_disconnected(authenticated, disconnect_label(reason));
        }
    });
    if !socket.connected() && counted.swap(false, Ordering::SeqCst) {
        state.expiry.cancel(&socket);
        state.metrics.client_disconnected(authenticated, "before_connect_handler");
        return;
    }
    if let Some(identity) = session.0 {
        let positions = socket.extensions.get::<Positions>();
        send_snapshot(&socket, identity.user_id, positions, &state).await;
    }
}

/// `user:identify` survives for old clients, but can only confirm the token's own user.
fn identify(socket: &SocketRef, identity: Option<Identity>, body: Option<IdentifyRequest>) -> Value {
    let requested = body.and_then(|b| b.user_id).and_then(|s| Uuid::parse_str(&s).ok());
    match (identity, requested) {
        (Some(identity), Some(requested)) if identity.user_id == requested => {
            socket.join(user_room(identity.user_id));
            json!({ "ok": true })
        }
        _ => json!({ "ok": false, "error": "forbidden" }),
    }
}

/// `auth:refresh { token }`: a valid token for the socket's own user replaces its identity (a new
/// role takes effect) and moves its expiry deadline, with no reconnect. Anything else leaves the
/// socket as it was. An anonymous socket cannot become authenticated in band: it must reconnect
/// with `auth: { token }` (it has no room, no snapshot and no per-user cap yet).
fn refresh(socket: &SocketRef, state: &AppState, body: Option<RefreshRequest>) -> Value {
    let (outcome, answer) = match refreshed_identity(socket, state, body) {
        Ok(identity) => {
            socket.extensions.insert(Session(Some(identity)));
            state.expiry.extend(socket, identity.expires_at);
            ("ok", json!({ "ok": true, "exp": identity.expires_at }))
        }
        Err(error) => (error, json!({ "ok": false, "error": error })),
    };
    state.metrics.token_refreshes.with_label_values(&[outcome]).inc();
    answer
}

fn refreshed_identity(
    socket: &SocketRef,
    state: &AppState,
    body: Option<RefreshRequest>,
) -> Result<Identity, &'static str> {
    let Some(Session(Some(current))) = socket.extensions.get::<Session>() else { return Err("forbidden") };
    let token = body.and_then(|b| b.token).filter(|t| !t.trim().is_empty()).ok_or("unauthorized")?;
    let identity = state.jwt.verify(token.trim()).map_err(|_| "unauthorized")?;
    if identity.user_id != current.user_id {
        return Err("forbidden");
    }
    Ok(identity)
}

/// The current balance, pushed on connect so a client that missed events while away is brought
/// back to the true state. A client that sent its positions gets only what it lacks: the balance
/// snapshot when its balance version is not the current one, `inventory:updated { version }` when
/// its inventory version is not; then `sync { recovered }`, true when it lacked nothing.
pub async fn send_snapshot(socket: &SocketRef, user_id: Uuid, positions: Option<Positions>, state: &AppState) {
    match state.store.positions(&[user_id]).await {
        Ok(found) => {
            let Some((_, now)) = found.into_iter().next() else {
                return;
            };
            let balance_current = positions.and_then(|p| p.balance) == Some(now.account.version);
            let inventory_current = positions.and_then(|p| p.inventory) == Some(now.inventory_version);
            let mut lacking = Vec::with_capacity(2);
            if !balance_current {
                lacking.push(Event::balance(user_id, now.account));
            }
            // Clients that send no positions get today's snapshot: the balance only.
            if positions.is_some() && !inventory_current {
                lacking.push(Event::inventory(user_id, now.inventory_version));
            }
            let mut sent = Ok(());
            for event in &lacking {
                if let (true, Some(payload)) = (sent.is_ok(), event.payload()) {
                    sent = socket.emit(event.name(), &payload);
                }
            }
            if sent.is_ok() && positions.is_some() {
                sent = socket.emit(SYNC, &json!({ "recovered": lacking.is_empty() }));
            }
            if let Err(SendError::Socket(SocketError::InternalChannelFull)) = sent {
                sessions::cut_slow_consumer(socket.clone(), &state.metrics);
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not load the balance snapshot"),
    }
}

fn disconnect_label(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport_close",
        DisconnectReason::MultipleHttpPollingError => "polling_error",
        DisconnectReason::PacketParsingError => "parse_error",
        DisconnectReason::TransportError => "transport_error",
        DisconnectReason::HeartbeatTimeout => "heartbeat_timeout",
        DisconnectReason::ClientNSDisconnect => "client_disconnect",
        DisconnectReason::ServerNSDisconnect => "server_disconnect",
        DisconnectReason::ClosingServer => "closing_server",
    }
}
