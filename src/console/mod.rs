//! The operators' console's live half: the admin-only Socket.IO namespace `/admin`. Only a valid
//! admin token connects (checked in its connect middleware); every second each replica pushes its
//! `online` snapshot there (who is online cluster-wide and per replica, the bus, events per second
//! and delivery lag from this replica's metrics), and `payment` as each payment is credited
//! (`Event::PaymentCredited`, through the bus, so every replica's console sockets see it). Nothing
//! here is ever emitted on the players' namespace `/`. A console refreshes its token in band with
//! `auth:refresh`, as a player's socket does. The page itself is `routes/console.rs`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::SocketIo;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::admission::SocketSlot;
use crate::auth::TokenError;
use crate::bus::BusHealth;
use crate::client_ip::ClientIp;
use crate::domain::Role;
use crate::metrics::Metrics;
use crate::online::ReplicaOnline;
use crate::state::AppState;

/// The admin-only namespace.
pub const NAMESPACE: &str = "/admin";
/// The snapshot pushed every `TICK`.
pub const ONLINE: &str = "online";
/// A credited payment, as it arrives.
pub const PAYMENT: &str = "payment";

const TICK: Duration = Duration::from_secs(1);
/// The cluster's counts change in Redis every 2 s: read them every other tick.
const CLUSTER_EVERY: u64 = 2;
/// Delivery lag is summed over this many ticks, so a quiet second does not blank it.
const LAG_WINDOW: usize = 10;

#[derive(Debug, Default, Deserialize)]
struct Handshake {
    #[serde(default)]
    token: Option<String>,
}

/// `auth:refresh`'s only argument: `{ token }`.
#[derive(Debug, Deserialize)]
struct RefreshRequest {
    token: Option<String>,
}

/// Who a console socket is for, to check a refreshed token against.
#[derive(Clone, Copy, Debug)]
struct Admin(uuid::Uuid, u64);

#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("unauthorized")]
    Unauthorized,
    #[error("token_expired")]
    TokenExpired,
    /// A valid token without the admin role.
    #[error("forbidden")]
    Forbidden,
    #[error("rate_limited")]
    RateLimited,
    #[error("too_many_connections")]
    TooManyConnections,
}

impl Refused {
    fn label(&self) -> &'static str {
        match self {
            Refused::Unauthorized => "unauthorized",
            Refused::TokenExpired => "token_expired",
            Refused::Forbidden => "forbidden",
            Refused::RateLimited => "rate_limited",
            Refused::TooManyConnections => "too_many_connections",
        }
    }
}

pub fn register(io: &SocketIo, state: AppState) {
    let middleware_state = state.clone();
    let authenticate = move |socket: SocketRef, TryData(handshake): TryData<Handshake>| {
        let state = middleware_state.clone();
        async move {
            let outcome = authenticate(&socket, handshake.unwrap_or_default(), &state);
            if let Err(refused) = &outcome {
                state.metrics.admin_connects.with_label_values(&[refused.label()]).inc();
            }
            outcome
        }
    };
    let connect_state = state.clone();
    let on_connect = move |socket: SocketRef| {
        let state = connect_state.clone();
        async move { on_connect(socket, state) }
    };
    io.ns(NAMESPACE, on_connect.with(authenticate));
    tokio::spawn(push_snapshots(state));
}

fn authenticate(socket: &SocketRef, handshake: Handshake, state: &AppState) -> Result<(), Refused> {
    let ip = ClientIp::of(&socket.req_parts().extensions);
    if state.limits.socket_connect(ip, &state.metrics).is_err() {
        return Err(Refused::RateLimited);
    }
    let token = handshake.token.as_deref().map(str::trim).filter(|t| !t.is_empty()).ok_or(Refused::Unauthorized)?;
    let identity = state.jwt.verify(token).map_err(|err| match err {
        TokenError::Expired => Refused::TokenExpired,
        _ => Refused::Unauthorized,
    })?;
    if identity.role != Role::Admin {
        tracing::warn!(user = %identity.user_id, "console socket refused: not an admin token");
        return Err(Refused::Forbidden);
    }
    // The same per-IP and per-user caps as a player's sockets.
    let slot = state.sockets.admit(ip, Some(identity.user_id)).map_err(|_| Refused::TooManyConnections)?;
    if let Some(slot) = slot {
        socket.extensions.insert(slot);
    }
    // The token's deadline is watched from the connect handler on (as on `/`), so that a socket
    // gone before it leaves no timer behind.
    socket.extensions.insert(Admin(identity.user_id, identity.expires_at));
    // Listening before the connect packet goes out (see `crate::realtime`).
    let refresh_state = state.clone();
    socket.on("auth:refresh", move |socket: SocketRef, TryData(body): TryData<RefreshRequest>, ack: AckSender| {
        let state = refresh_state.clone();
        async move {
            let _ = ack.send(&refresh(&socket, &state, body.ok()));
        }
    });
    tracing::info!(admin = %identity.user_id, "console connected");
    Ok(())
}

/// `auth:refresh { token }` on `/admin`: another valid admin token of the same user moves the
/// socket's expiry deadline, as on `/` (`crate::realtime`); anything else changes nothing:
/// `unauthorized` (missing, malformed, wrongly signed or expired), `forbidden` (another user's
/// token, or one without the admin role).
fn refresh(socket: &SocketRef, state: &AppState, body: Option<RefreshRequest>) -> Value {
    let checked = (|| {
        let Some(Admin(current, _)) = socket.extensions.get::<Admin>() else { return Err("forbidden") };
        let token = body.and_then(|b| b.token).filter(|t| !t.trim().is_empty()).ok_or("unauthorized")?;
        let identity = state.jwt.verify(token.trim()).map_err(|_| "unauthorized")?;
        if identity.user_id != current || identity.role != Role::Admin {
            return Err("forbidden");
        }
        Ok(identity)
    })();
    let (outcome, answer) = match checked {
        Ok(identity) => {
            state.expiry.extend(socket, identity.expires_at);
            ("ok", json!({ "ok": true, "exp": identity.expires_at }))
        }
        Err(error) => (error, json!({ "ok": false, "error": error })),
    };
    state.metrics.token_refreshes.with_label_values(&[outcome]).inc();
    answer
}

fn on_connect(socket: SocketRef, state: AppState) {
    state.metrics.admin_connects.with_label_values(&["accepted"]).inc();
    state.metrics.admin_sockets.inc();
    // Counted out exactly once, also when the client left before this handler ran (then the
    // disconnect handler registered here is never called).
    let counted = Arc::new(AtomicBool::new(true));
    let (metrics, still_counted) = (state.metrics.clone(), counted.clone());
    // Before the disconnect handler, so that handler always finds (and stops) the timer.
    if let Some(Admin(_, expires_at)) = socket.extensions.get::<Admin>() {
        state.expiry.watch(&socket, expires_at);
    }
    let expiry = state.expiry.clone();
    socket.on_disconnect(move |socket: SocketRef| async move {
        socket.extensions.remove::<SocketSlot>();
        expiry.cancel(&socket);
        if still_counted.swap(false, Ordering::SeqCst) {
            metrics.admin_sockets.dec();
        }
    });
    if !socket.connected() && counted.swap(false, Ordering::SeqCst) {
        socket.extensions.remove::<SocketSlot>();
        state.expiry.cancel(&socket);
        state.metrics.admin_sockets.dec();
    }
}

/// One replica's counts in the snapshot.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplicaCounts {
    replica: String,
    sockets: u64,
    users: u64,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<ReplicaOnline> for ReplicaCounts {
    fn from(r: ReplicaOnline) -> Self {
        ReplicaCounts { replica: r.replica, sockets: r.sockets, users: r.users, updated_at: r.updated_at }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rates {
    published: f64,
    delivered: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Lag {
    /// Remote deliveries measured over the window.
    samples: u64,
    mean_ms: Option<f64>,
    /// The upper bound of the histogram bucket holding the 99th percentile.
    p99_ms: Option<f64>,
    window_seconds: u64,
}

/// What `online` carries.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Snapshot {
    /// The replica that sent it (events per second and lag are this replica's).
    replica: String,
    at: chrono::DateTime<chrono::Utc>,
    /// Sockets on every live replica.
    sockets: u64,
    /// Distinct authenticated users across the cluster.
    users: u64,
    replicas: Vec<ReplicaCounts>,
    /// False when Redis could not be read: the counts are then this replica's alone.
    cluster_known: bool,
    bus: BusHealth,
    events_per_second: Rates,
    lag: Lag,
    draining: bool,
}

/// The counters the rates and the lag are differences of.
#[derive(Clone)]
struct Reading {
    at: Instant,
    published: u64,
    delivered: u64,
    lag_count: u64,
    lag_sum: f64,
    /// Cumulative counts per bucket upper bound, summed over event kinds.
    lag_buckets: Vec<(f64, u64)>,
}

fn sum_counters(families: Vec<prometheus::proto::MetricFamily>) -> u64 {
    families.iter().flat_map(|f| f.get_metric()).map(|m| m.get_counter().value() as u64).sum()
}

fn read(metrics: &Metrics) -> Reading {
    use prometheus::core::Collector;
    let mut reading = Reading {
        at: Instant::now(),
        published: sum_counters(metrics.events_published.collect()),
        delivered: sum_counters(metrics.events_delivered.collect()),
        lag_count: 0,
        lag_sum: 0.0,
        lag_buckets: Vec::new(),
    };
    for family in metrics.event_lag.collect() {
        for metric in family.get_metric() {
            let histogram = metric.get_histogram();
            reading.lag_count += histogram.sample_count();
            reading.lag_sum += histogram.sample_sum();
            for (i, bucket) in histogram.get_bucket().iter().enumerate() {
                match reading.lag_buckets.get_mut(i) {
                    Some(slot) => slot.1 += bucket.cumulative_count(),
                    None => reading.lag_buckets.push((bucket.upper_bound(), bucket.cumulative_count())),
                }
            }
        }
    }
    reading
}

fn rates(now: &Reading, before: &Reading) -> Rates {
    let seconds = now.at.duration_since(before.at).as_secs_f64().max(0.001);
    let per_second = |a: u64, b: u64| ((a.saturating_sub(b)) as f64 / seconds * 10.0).round() / 10.0;
    Rates {
        published: per_second(now.published, before.published),
        delivered: per_second(now.delivered, before.delivered),
    }
}

fn lag(now: &Reading, oldest: &Reading) -> Lag {
    let samples = now.lag_count.saturating_sub(oldest.lag_count);
    let window_seconds = now.at.duration_since(oldest.at).as_secs_f64().round() as u64;
    if samples == 0 {
        return Lag { samples, mean_ms: None, p99_ms: None, window_seconds };
    }
    let mean_ms = ((now.lag_sum - oldest.lag_sum) / samples as f64 * 1000.0 * 10.0).round() / 10.0;
    let wanted = (samples as f64 * 0.99).ceil() as u64;
    let p99 = now.lag_buckets.iter().enumerate().find_map(|(i, (bound, count))| {
        let before = oldest.lag_buckets.get(i).map_or(0, |b| b.1);
        (count.saturating_sub(before) >= wanted).then_some(*bound * 1000.0)
    });
    Lag { samples, mean_ms: Some(mean_ms), p99_ms: p99, window_seconds }
}

/// Every `TICK`, while this replica has console sockets: the snapshot to each of them. Ends when
/// the replica drains.
async fn push_snapshots(state: AppState) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut history: VecDeque<Reading> = VecDeque::with_capacity(LAG_WINDOW + 1);
    let mut cluster: Option<(Vec<ReplicaOnline>, u64)> = None;
    let mut ticks: u64 = 0;
    loop {
        every.tick().await;
        if state.is_draining() {
            return;
        }
        let reading = read(&state.metrics);
        let previous = history.back().cloned().unwrap_or_else(|| reading.clone());
        let oldest = history.front().cloned().unwrap_or_else(|| reading.clone());
        history.push_back(reading.clone());
        if history.len() > LAG_WINDOW {
            history.pop_front();
        }
        let Some(namespace) = state.io.of(NAMESPACE) else { continue };
        let sockets = namespace.sockets();
        if sockets.is_empty() {
            cluster = None;
            continue;
        }
        ticks += 1;
        let (local, local_users) = crate::online::local_summary(&state.io, &state.config.replica_id);
        let mut cluster_known = true;
        let (replicas, users) = if state.config.is_cluster() {
            if cluster.is_none() || ticks % CLUSTER_EVERY == 0 {
                cluster = match state.bus.online().await {
                    Some(Ok(online)) => Some((online.replicas, online.users)),
                    Some(Err(())) | None => None,
                };
            }
            match &cluster {
                Some((replicas, users)) => (replicas.clone(), *users),
                None => {
                    cluster_known = false;
                    (vec![local], local_users.len() as u64)
                }
            }
        } else {
            (vec![local], local_users.len() as u64)
        };
        let snapshot = Snapshot {
            replica: state.config.replica_id.clone(),
            at: chrono::Utc::now(),
            sockets: replicas.iter().map(|r| r.sockets).sum(),
            users,
            replicas: replicas.into_iter().map(ReplicaCounts::from).collect(),
            cluster_known,
            bus: state.bus.health(),
            events_per_second: rates(&reading, &previous),
            lag: lag(&reading, &oldest),
            draining: state.is_draining(),
        };
        for socket in sockets {
            // A console that does not read is not worth cutting anyone for: it just misses ticks.
            let _ = socket.emit(ONLINE, &snapshot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_lag_are_differences_over_the_window() {
        let metrics = Metrics::new("t");
        let before = read(&metrics);
        metrics.events_published.with_label_values(&["cases_updated"]).inc_by(10);
        metrics.events_delivered.with_label_values(&["cases_updated", "local"]).inc_by(4);
        metrics.events_delivered.with_label_values(&["balance_updated", "remote"]).inc_by(6);
        for _ in 0..99 {
            metrics.event_lag.with_label_values(&["balance_updated"]).observe(0.004);
        }
        metrics.event_lag.with_label_values(&["cases_updated"]).observe(0.2);
        let mut now = read(&metrics);
        now.at = before.at + Duration::from_secs(2);
        let r = rates(&now, &before);
        assert_eq!((r.published, r.delivered), (5.0, 5.0));
        let l = lag(&now, &before);
        assert_eq!(l.samples, 100);
        assert_eq!(l.p99_ms, Some(5.0), "99 of 100 in the 5 ms bucket");
        assert!((l.mean_ms.unwrap() - 5.96).abs() < 0.1, "{:?}", l.mean_ms);
        assert!(lag(&now, &now).mean_ms.is_none(), "no samples, no lag");
    }
}
