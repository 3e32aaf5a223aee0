//! How a live socket ends without the client asking: its token expired (unless refreshed in band
//! with `auth:refresh`), or the replica drains for shutdown. Either way the client first gets
//! `session:ended { reason }`, then the namespace disconnect.

use serde_json::json;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
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

/// Marks a socket cut for being a slow consumer, so that it is cut (and counted) once.
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

/// The socket's token deadline (its `exp` plus the grace, as an instant), held in the socket's
/// extensions so that the deadline can be moved or dropped from [`ExpiryTimers`].
#[derive(Clone, Copy, Debug)]
pub struct Expiry(Instant);

type TimerKey = (Instant, socketioxide::socket::Sid);

/// The token deadlines of every authenticated socket of this replica, fired by ONE task: a map
/// ordered by deadline and a sleep until the earliest. A socket used to have its own sleeping
/// task and watch channel for this, about 1 KB of every idle socket (docs/architecture.md, "Memory
/// per idle socket"); an entry here is a few dozen bytes.
pub struct ExpiryTimers {
    timers: Mutex<BTreeMap<TimerKey, SocketRef>>,
    /// Wakes the task when a deadline earlier than the one it sleeps until is added (and when
    /// this is dropped, so that the task ends).
    earlier: Arc<Notify>,
    grace: Duration,
}

impl ExpiryTimers {
    /// Starts the replica's expiry task; it runs until the returned value is dropped.
    pub fn start(grace: Duration, metrics: Arc<Metrics>) -> Arc<Self> {
        let earlier = Arc::new(Notify::new());
        let timers = Arc::new(ExpiryTimers { timers: Mutex::default(), earlier: earlier.clone(), grace });
        let weak = Arc::downgrade(&timers);
        tokio::spawn(async move {
            loop {
                let notified = earlier.notified();
                tokio::pin!(notified);
                // Registered before looking: a deadline added from here on wakes the sleep below.
                notified.as_mut().enable();
                let Some(timers) = weak.upgrade() else { return };
                let next = timers.fire_due(&metrics);
                drop(timers);
                let until = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                tokio::select! {
                    () = tokio::time::sleep_until(until) => {}
                    () = &mut notified => {}
                }
            }
        });
        timers
    }

    /// Ends the sockets whose deadline has passed; returns the next deadline.
    fn fire_due(&self, metrics: &Metrics) -> Option<Instant> {
        let now = Instant::now();
        let due: Vec<SocketRef> = {
            let mut timers = self.timers.lock().expect("lock");
            let later = timers.split_off(&(now, socketioxide::socket::Sid::ZERO));
            let due = std::mem::replace(&mut *timers, later);
            due.into_values().collect()
        };
        for socket in due {
            socket.extensions.remove::<Expiry>();
            end(&socket, EndReason::TokenExpired, metrics);
        }
        self.timers.lock().expect("lock").keys().next().map(|(at, _)| *at)
    }

    /// Ends `socket` with `token_expired` at `expires_at` (Unix seconds) plus the grace, unless it
    /// is moved ([`ExpiryTimers::extend`]) or dropped ([`ExpiryTimers::cancel`]) first.
    pub fn watch(&self, socket: &SocketRef, expires_at: u64) {
        let at = instant_of(expires_at) + self.grace;
        socket.extensions.insert(Expiry(at));
        let earliest = {
            let mut timers = self.timers.lock().expect("lock");
            timers.insert((at, socket.id), socket.clone());
            timers.keys().next() == Some(&(at, socket.id))
        };
        if earliest {
            self.earlier.notify_one();
        }
    }

    /// Moves the socket's deadline to a refreshed token's `exp`.
    pub fn extend(&self, socket: &SocketRef, expires_at: u64) {
        if self.cancel(socket) {
            self.watch(socket, expires_at);
        }
    }

    /// Drops the socket's deadline (it disconnected). Returns whether it had one.
    pub fn cancel(&self, socket: &SocketRef) -> bool {
        let Some(Expiry(at)) = socket.extensions.remove::<Expiry>() else { return false };
        self.timers.lock().expect("lock").remove(&(at, socket.id));
        true
    }

    /// Sockets with a deadline (for tests and metrics).
    pub fn len(&self) -> usize {
        self.timers.lock().expect("lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for ExpiryTimers {
    fn drop(&mut self) {
        self.earlier.notify_one();
    }
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
