//! Who is online: this replica's view, from its own sockets. In a cluster each replica also
//! publishes it to Redis with an expiry (src/bus/redis.rs), so the admin endpoints answer for
//! every live replica and a crashed one drops out within `ONLINE_TTL`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use uuid::Uuid;

use crate::events::user_room;
use crate::realtime::Session;

/// At most this many sessions of one user are listed per replica (the per-user cap,
/// `MAX_SOCKETS_PER_USER`, is normally far lower; with caps off this still bounds the answer).
pub const MAX_LISTED_PER_USER: usize = 100;

/// When and from where a socket connected; kept in its extensions.
#[derive(Clone, Copy, Debug)]
pub struct SocketInfo {
    pub connected_at: DateTime<Utc>,
    pub client_ip: IpAddr,
}

/// One live socket of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub replica: String,
    pub socket_id: String,
    pub transport: String,
    pub connected_at: DateTime<Utc>,
    pub client_ip: String,
}

/// One replica's counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaOnline {
    pub replica: String,
    pub sockets: u64,
    pub users: u64,
    pub updated_at: DateTime<Utc>,
}

fn transport(socket: &socketioxide::extract::SocketRef) -> &'static str {
    match socket.transport_type() {
        socketioxide::TransportType::Websocket => "websocket",
        socketioxide::TransportType::Polling => "polling",
    }
}

/// `user_id`'s sockets on this replica, at most `MAX_LISTED_PER_USER`, oldest first.
pub fn local_sessions(io: &SocketIo, replica: &str, user_id: Uuid) -> Vec<SessionView> {
    let Some(namespace) = io.of("/") else { return Vec::new() };
    let mut sessions: Vec<SessionView> = namespace
        .to(user_room(user_id))
        .sockets()
        .into_iter()
        .filter_map(|socket| {
            let info = socket.extensions.get::<SocketInfo>()?;
            Some(SessionView {
                replica: replica.to_string(),
                socket_id: socket.id.to_string(),
                transport: transport(&socket).to_string(),
                connected_at: info.connected_at,
                client_ip: info.client_ip.to_string(),
            })
        })
        .collect();
    sessions.sort_by_key(|s| s.connected_at);
    sessions.truncate(MAX_LISTED_PER_USER);
    sessions
}

/// This replica's sockets, and the distinct authenticated users among them.
pub fn local_users(io: &SocketIo) -> (u64, HashSet<Uuid>) {
    let sockets = crate::realtime::local_sockets(io);
    let users = sockets.iter().filter_map(|s| s.extensions.get::<Session>().and_then(|s| s.0)).map(|i| i.user_id);
    let users: HashSet<Uuid> = users.collect();
    (sockets.len() as u64, users)
}

/// This replica's counts now, and its distinct authenticated users.
pub fn local_summary(io: &SocketIo, replica: &str) -> (ReplicaOnline, HashSet<Uuid>) {
    let (sockets, users) = local_users(io);
    let summary =
        ReplicaOnline { replica: replica.to_string(), sockets, users: users.len() as u64, updated_at: Utc::now() };
    (summary, users)
}

/// Every local user's sessions, serialized, for the Redis snapshot.
pub fn local_snapshot(io: &SocketIo, replica: &str) -> (ReplicaOnline, BTreeMap<Uuid, String>) {
    let (summary, users) = local_summary(io, replica);
    let sessions = users
        .into_iter()
        .map(|user| (user, serde_json::to_string(&local_sessions(io, replica, user)).expect("serializes")))
        .collect();
    (summary, sessions)
}
