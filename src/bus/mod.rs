//! How an event committed on one replica reaches sockets on every replica.
//!
//! The origin replica always delivers to its own sockets directly, so local delivery never
//! waits on a network hop; a cluster bus then also forwards the event to the other replicas.

mod local;
mod redis;
pub mod sequence;
pub mod tls;
pub mod topology;
pub mod wire;

pub use local::LocalBus;
pub use redis::{BusSettings, RedisBus};
pub use sequence::GapCause;
pub use wire::Rejection;

use async_trait::async_trait;
use serde::Serialize;

use crate::events::Event;
use crate::online::{ReplicaOnline, SessionView};

/// Who is online on every live replica, from Redis.
pub struct ClusterOnline {
    pub replicas: Vec<ReplicaOnline>,
    /// Distinct users over all replicas (a player on two replicas counts once).
    pub users: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BusHealth {
    /// Single node: there is nothing to be connected to.
    Disabled,
    Up,
    Down,
}

#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Delivers `event` to the local sockets and forwards it to the other replicas. Never blocks
    /// on a dependency: callers publish right after their transaction committed.
    async fn publish(&self, event: Event);
    fn health(&self) -> BusHealth;

    /// Sockets on all live replicas, when the bus knows them.
    fn cluster_clients(&self) -> Option<i64> {
        None
    }

    /// Every live replica's counts; `None` on a single node (answer from the local sockets),
    /// `Some(Err)` when Redis cannot be read.
    async fn online(&self) -> Option<Result<ClusterOnline, ()>> {
        None
    }

    /// A user's sessions on every live replica; `None` on a single node.
    async fn user_sessions(&self, _user_id: uuid::Uuid) -> Option<Result<Vec<SessionView>, ()>> {
        None
    }

    /// Leaves the bus on shutdown.
    async fn close(&self) {}
}
