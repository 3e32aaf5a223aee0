//! Integration tests: the real application over real HTTP and Socket.IO, on SQLite and on
//! PostgreSQL.

#[path = "../helpers/mod.rs"]
mod helpers;

mod admin_sessions;
mod cases;
mod concurrency;
mod console;
mod fair;
mod first_start;
mod hostile;
mod http_basics;
mod inventory;
mod js_client;
mod kit;
mod live_sessions;
mod money;
mod paging;
mod rate_limits;
mod realtime;
mod request_context;
mod web_client;
