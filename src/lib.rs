//! CyberHub: the realtime backend of a computer club's case-opening site.

pub mod admission;
pub mod auth;
pub mod bus;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod console;
pub mod domain;
pub mod error;
pub mod events;
pub mod fair;
pub mod http;
pub mod metrics;
pub mod money;
pub mod online;
pub mod openapi;
pub mod rate_limit;
pub mod realtime;
pub mod routes;
pub mod serve;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
