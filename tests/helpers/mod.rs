//! The test kit every test binary shares (`mod helpers;`, or `#[path = "../helpers/mod.rs"]` from
//! a directory suite): real servers on free ports, databases that are dropped when their test
//! ends (panics included), one HTTP client, one Socket.IO client, one cluster launcher
//! (deploy/local/cluster.sh) and one poller. Logs of in-process apps are shown with TEST_LOG=1.

// Each binary uses its own part of the kit; the rest is unused there, not a mistake.
#![allow(dead_code, unused_imports)]

mod api;
mod app;
mod cluster;
mod db;
mod net;
mod node;
mod socket;

pub use api::*;
pub use app::*;
pub use cluster::*;
pub use db::*;
pub use net::*;
pub use node::*;
pub use socket::*;
