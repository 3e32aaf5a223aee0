//! The cluster with real processes on loopback: Redis, PostgreSQL, three replicas, nginx.

#[path = "../helpers/mod.rs"]
mod helpers;

mod admin_sessions;
mod delivery;
mod failures;
mod hostile;
mod kit;
mod money;
mod sessions;
mod stale;
