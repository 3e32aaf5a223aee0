//! The cluster with real processes on loopback: Redis, PostgreSQL, three replicas, nginx, each
//! test's started by deploy/local/cluster.sh through the test kit. The kit runs one cluster at a
//! time (two at once on two cores turn timing assertions into flakes), so `cargo test --test
//! cluster` needs no `--test-threads`.

#[path = "../helpers/mod.rs"]
mod helpers;

mod admin_sessions;
mod console;
pub mod delivery;
mod failures;
mod hostile;
mod kit;
mod money;
mod sessions;
mod stale;
mod topologies;
mod web_client;
