use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::json;

use crate::bus::BusHealth;
use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let clients = state.metrics.connected_clients.get();
    let cluster_clients = match state.bus.health() {
        BusHealth::Disabled => Some(clients),
        _ => state.bus.cluster_clients(),
    };
    Json(json!({
        "status": "ok",
        "websocket": if clients > 0 { "active" } else { "idle" },
        "clients": clients,
        "clusterClients": cluster_clients,
        "replica": state.config.replica_id,
        "redis": state.bus.health(),
        "timestamp": Utc::now(),
    }))
}

/// 200 when this replica can serve: the database answers and, in a cluster, Redis is connected
/// (without it, events would reach only this replica's sockets). The database answer is cached
/// for a second (`AppState::database_up`).
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.is_draining() {
        // Out of the load balancer at once, before the database is even asked.
        let body = json!({ "status": "draining" });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let database_up = state.database_up().await;
    let redis = state.bus.health();
    let ready = database_up && redis != BusHealth::Down;
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": if database_up { "up" } else { "down" },
        "redis": redis,
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let pool = state.store.pool_stats();
    state.metrics.db_pool_size.set(i64::from(pool.size));
    state.metrics.db_pool_idle.set(i64::from(pool.idle));
    ([("content-type", "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
