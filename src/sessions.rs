//! How a live socket ends without the client asking: its token expired (unless refreshed in band
//! with `auth:refresh`), or the replica drains for shutdown. Either way the client first gets
//! `session:ended { reason }`, then the namespace disconnect.

use serde_json::json;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::Metrics;

pub const SESSION_ENDED: &str = "session:ended";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    TokenExpired,
    Draining,
    /// An admin disconnected the user (`POST /api/admin/users/:id/disconnect`).
    Kicked,
    /// An admin blocked the user (`PUT /api/admin/users/:id/block`).
    Blocked,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::TokenExpired => "token_expired",
            EndReason::Draining => "draining",
            EndReason::Kicked => "kicked",
            EndReason::Blocked => "blocked",
        }
    }
}

/// Sends `session:ended` and disconnects the socket. The two packets go through the socket's
/// queue in order, so the client reads the reason before the disconnect.
pub fn end(socket: &SocketRef, reason: EndReason, metrics: &Metrics) {
    if !socket.connected() {
        return;
    }
    metrics.sessions_ended.with_label_values(&[reason.as_str()]).inc();
    tracing::debug!(sid = %socket.id, reason = reason.as_str(), "ending session");
    let sent = socket.emit(SESSION_ENDED, &json!({ "reason": reason.as_str() }));
    if let Err(SendError::Socket(SocketError::InternalChannelFull)) = sent {
        cut_slow_consumer(socket.clone(), metrics);
    } else if let Err(SocketError::InternalChannelFull) = socket.clone().disconnect() {
        cut_slow_consumer(socket.clone(), metrics);
    }
}

/// How many sockets `user_id` has on this replica.
pub fn count_user(io: &socketioxide::SocketIo, user_id: uuid::Uuid) -> usize {
    io.of("/").map_or(0, |ns| ns.to(crate::events::user_room(user_id)).sockets().len())
}

/// Ends every socket of `user_id` on this replica; returns how many there were.
pub fn end_user(io: &socketioxide::SocketIo, user_id: uuid::Uuid, reason: EndReason, metrics: &Metrics) -> usize {
    let Some(namespace) = io.of("/") else { return 0 };
    let sockets = namespace.to(crate::events::user_room(user_id)).sockets();
    for socket in &sockets {
        end(socket, reason, metrics);
    }
    if !sockets.is_empty() {
        tracing::info!(player = %user_id, sockets = sockets.len(), reason = reason.as_str(), "ended a user's sessions");
    }
    sockets.len()
}

/// Marks a socket cut for being a slow consumer: it gets no more events.
#[derive(Clone, Copy, Debug)]
pub struct SlowConsumer;

/// How often a cut socket's disconnect is retried while its queue is still full.
const CUT_RETRY: Duration = Duration::from_millis(100);

/// A socket whose send queue (`SOCKET_SEND_QUEUE` packets) is full is cut: counted, taken out
/// of every room and skipped by every later delivery, then disconnected; it reconnects and gets
/// the balance snapshot. The disconnect packet itself needs a free slot in that queue, so while it
/// is full the disconnect is retried; a client that reads nothing at all is closed by the next
/// heartbeat at the latest (the ping does not fit either).
pub fn cut_slow_consumer(socket: SocketRef, metrics: &Metrics) {
    if socket.extensions.get::<SlowConsumer>().is_some() {
        return;
    }
    socket.extensions.insert(SlowConsumer);
    metrics.slow_consumers.inc();
    tracing::warn!(sid = %socket.id, transport = ?socket.transport_type(), "slow consumer: send queue full, disconnecting");
    socket.leave_all();
    if socket.clone().disconnect().is_ok() {
        return;
    }
    tokio::spawn(async move {
        // Bounded: the heartbeat (25 s + 20 s) closes a socket that never drains well before this.
        for _ in 0..600 {
            tokio::time::sleep(CUT_RETRY).await;
            if !socket.connected() || socket.clone().disconnect().is_ok() {
                return;
            }
        }
    });
}

/// The socket's token deadline: the `exp` (Unix seconds) of its current token. Held in the
/// socket's extensions; removing it (on disconnect) ends the socket's expiry task.
#[derive(Clone)]
pub struct Expiry(watch::Sender<u64>);

impl Expiry {
    /// Moves the deadline to a refreshed token's `exp`.
    pub fn extend(&self, expires_at: u64) {
        self.0.send_replace(expires_at);
    }
}

/// Starts the socket's expiry timer: one sleeping task per authenticated socket, which ends when
/// the socket's `Expiry` is dropped (the disconnect handler removes it) or when it fires.
pub fn watch_expiry(socket: &SocketRef, expires_at: u64, grace: Duration, metrics: Arc<Metrics>) {
    let (sender, mut deadline) = watch::channel(expires_at);
    socket.extensions.insert(Expiry(sender));
    let socket = socket.clone();
    tokio::spawn(async move {
        loop {
            let at = instant_of(*deadline.borrow_and_update()) + grace;
            tokio::select! {
                () = tokio::time::sleep_until(at) => {
                    end(&socket, EndReason::TokenExpired, &metrics);
                    return;
                }
                changed = deadline.changed() => if changed.is_err() {
                    return;
                },
            }
        }
    });
}

/// The monotonic instant of a Unix time in seconds (now, if it has passed).
fn instant_of(unix_secs: u64) -> Instant {
    let at = UNIX_EPOCH + Duration::from_secs(unix_secs);
    Instant::now() + at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO)
}

/// Ends every socket of this replica with `session:ended { reason: "draining" }`, spread evenly
/// over `window` so their clients do not all reconnect to the other replicas in the same instant.
/// A zero window ends them all at once.
pub async fn drain(io: &socketioxide::SocketIo, window: Duration, metrics: &Metrics) {
    let sockets = crate::realtime::local_sockets(io);
    let count = sockets.len();
    tracing::info!(sockets = count, window_ms = window.as_millis() as u64, "draining sockets");
    let start = Instant::now();
    for (i, socket) in sockets.into_iter().enumerate() {
        if !window.is_zero() {
            tokio::time::sleep_until(start + window.mul_f64(i as f64 / count as f64)).await;
        }
        end(&socket, EndReason::Draining, metrics);
    }
}
