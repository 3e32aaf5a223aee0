use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::json_response;
use crate::bus::BusHealth;
use crate::state::AppState;

/// Whether this replica is connected to Redis; `disabled` on a single node, which has no Redis.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Redis {
    Up,
    Down,
    Disabled,
}

impl From<BusHealth> for Redis {
    fn from(health: BusHealth) -> Self {
        match health {
            BusHealth::Up => Redis::Up,
            BusHealth::Down => Redis::Down,
            BusHealth::Disabled => Redis::Disabled,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum HealthStatus {
    Ok,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum WebsocketActivity {
    Active,
    Idle,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(examples(json!({
    "status": "ok", "websocket": "active", "clients": 3, "clusterClients": 11, "replica": "cyberhub-1",
    "redis": "up", "timestamp": "2025-11-22T12:34:56.789Z"
})))]
pub struct Health {
    status: HealthStatus,
    /// `active` when this replica has at least one connected socket.
    websocket: WebsocketActivity,
    /// Sockets connected to this replica.
    #[schema(minimum = 0)]
    clients: i64,
    /// Sockets connected across the cluster; `null` when not known (Redis down).
    #[schema(minimum = 0)]
    cluster_clients: Option<i64>,
    /// The replica that answered (`REPLICA_ID`, by default the hostname).
    replica: String,
    redis: Redis,
    timestamp: DateTime<Utc>,
}

/// Liveness and connection counts
///
/// Liveness: answers whenever the process serves HTTP, whatever its dependencies do.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "getHealth",
    tag = "System",
    responses((status = 200, description = "The process is alive.", body = Health))
)]
pub async fn health(State(state): State<AppState>) -> Response {
    let clients = state.metrics.connected_clients.get();
    let cluster_clients = match state.bus.health() {
        BusHealth::Disabled => Some(clients),
        _ => state.bus.cluster_clients(),
    };
    let health = Health {
        status: HealthStatus::Ok,
        websocket: if clients > 0 { WebsocketActivity::Active } else { WebsocketActivity::Idle },
        clients,
        cluster_clients,
        replica: state.config.replica_id.clone(),
        redis: state.bus.health().into(),
        timestamp: Utc::now(),
    };
    json_response(StatusCode::OK, &health)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Readiness {
    Ready,
    Unavailable,
    Draining,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Database {
    Up,
    Down,
}

/// `ready` with 200; `unavailable` or `draining` (SIGTERM received: only `status`) with 503.
#[derive(Serialize, ToSchema)]
#[schema(examples(json!({ "status": "ready", "database": "up", "redis": "disabled" })))]
pub struct Ready {
    status: Readiness,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<Database>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<Redis>,
}

/// Readiness for the load balancer
///
/// 200 when this replica can serve: the database answers and, in a cluster, Redis is connected
/// (without it, events would reach only this replica's sockets). The database answer is cached
/// for a second.
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "getReady",
    tag = "System",
    responses(
        (status = 200, description = "Ready to serve.", body = Ready),
        (status = 503, description = "Not ready: the database does not answer, Redis is down in a cluster, or the replica is draining.", body = Ready,
            example = json!({ "status": "unavailable", "database": "down", "redis": "up" })),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.is_draining() {
        // Out of the load balancer at once, before the database is even asked.
        let body = Ready { status: Readiness::Draining, database: None, redis: None };
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
    }
    let database_up = state.database_up().await;
    let redis = state.bus.health();
    let ready = database_up && redis != BusHealth::Down;
    let body = Ready {
        status: if ready { Readiness::Ready } else { Readiness::Unavailable },
        database: Some(if database_up { Database::Up } else { Database::Down }),
        redis: Some(redis.into()),
    };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json_response(status, &body)
}

/// Prometheus metrics
///
/// Prometheus text format. Keep it inside: the nginx configuration does not expose it.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "getMetrics",
    tag = "System",
    responses((status = 200, description = "Every metric of this replica.", body = String, content_type = "text/plain; version=0.0.4"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let pool = state.store.pool_stats();
    state.metrics.db_pool_size.set(i64::from(pool.size));
    state.metrics.db_pool_idle.set(i64::from(pool.idle));
    ([("content-type", "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
