//! The cluster with real processes on loopback: Redis, PostgreSQL, three replicas, nginx.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
mod support;

mod admin_sessions;
mod delivery;
mod failures;
mod hostile;
mod money;
mod sessions;
mod stale;
