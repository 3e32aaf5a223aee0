//! Builds the application from a `Config` and reports the port it bound, so tests can start it
//! on port 0 and `main` can start it on the configured one.

use axum::middleware;
use axum::Router;
use socketioxide::{ParserConfig, SocketIo};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::auth::JwtKeys;
use crate::bus::{EventBus, LocalBus, RedisBus};
use crate::config::{Config, CorsOrigins};
use crate::domain::Role;
use crate::http;
use crate::metrics::Metrics;
use crate::realtime::{self, Delivery};
use crate::routes;
use crate::sessions;
use crate::state::AppState;
use crate::store::{self, Store};

/// Lifetime of the admin token a zero-configuration node prints.
pub const DEV_ADMIN_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    dev_admin_token: Option<String>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        tracing::info!(database = %config.database_url, replica = %config.replica_id, cluster = config.is_cluster(), "starting");
        let store = store::connect(&config.database_url, store::PoolSettings::from_config(&config)).await?;
        let (secret, generated) = jwt_secret(&config, store.as_ref()).await?;
        let jwt = JwtKeys::new(&secret);
        let metrics = Arc::new(Metrics::new(&config.replica_id));

        let max_message = config.sockets.max_message_bytes;
        let (socket_layer, io) = SocketIo::builder()
            .ping_interval(Duration::from_secs(25))
            .ping_timeout(Duration::from_secs(20))
            // Clients send only tiny messages (pong, user:identify). socketioxide's own limits
            // (16 MiB frames, 64 MiB messages) let 8 sockets grow a replica by ~550 MB; a client
            // over these is disconnected.
            .max_payload(max_message as u64)
            .ws_max_message_size(max_message)
            .ws_max_frame_size(max_message)
            // Clients send only tiny frames (a pong is 1 byte); tungstenite reads a larger one in
            // several reads and grows the buffer for it. Every byte of it is resident for every
            // socket (it is zero-filled before each read): the 4 KB default was ~3 KB of every
            // idle socket, 1 KB still ~0.8 KB; it grows by doubling, so 128 ends near 256.
            .ws_read_buffer_size(128)
            // Packets queued for one socket; a socket whose queue is full is cut as a slow consumer.
            .max_buffer_size(config.sockets.send_queue)
            // A session that never connects to a namespace is closed instead of held.
            .connect_timeout(Duration::from_secs(5))
            // No client event takes binary attachments; a packet announcing one is a parse error
            // and closes the socket before anything is buffered.
            .with_parser(ParserConfig::common().max_incoming_binaries(0).max_incoming_binary_buf_size(0))
            .build_layer();
        let known_users = Arc::new(crate::state::KnownUsers::default());
        let delivery = Delivery::new(io.clone(), metrics.clone(), known_users.clone());
        let bus: Arc<dyn EventBus> = match &config.redis_url {
            None => {
                tokio::spawn(online_gauge_loop(io.clone(), metrics.clone()));
                Arc::new(LocalBus::new(delivery))
            }
            Some(url) => {
                let secret =
                    config.bus_secret.as_ref().ok_or_else(|| anyhow::anyhow!("BUS_SECRET is required in a cluster"))?;
                let bus = RedisBus::start(
                    url.expose(),
                    secret.expose().as_bytes(),
                    &config.replica_id,
                    delivery,
                    metrics.clone(),
                    store.clone(),
                    crate::bus::BusSettings {
                        topology: config.redis_topology.unwrap_or(crate::bus::topology::RedisTopology::Single),
                        shards: config.bus_shards,
                        late_commit: config.timeouts.db_statement,
                        publisher_timeout: config.bus_publisher_timeout,
                        tls: config.redis_tls.clone(),
                    },
                )
                .await?;
                Arc::new(bus)
            }
        };

        let dev_admin_token = if generated {
            let admin_id = dev_admin_id(store.as_ref()).await?;
            Some(jwt.issue(admin_id, Role::Admin, DEV_ADMIN_TOKEN_TTL))
        } else {
            None
        };

        let listener = listen(SocketAddr::new(config.bind, config.port))?;
        let cors = cors_layer(&config.cors_origins);
        let state = AppState::new(config, store, bus, jwt, metrics, io.clone(), known_users);
        realtime::register(&io, state.clone());
        crate::console::register(&io, state.clone());
        tokio::spawn(shrink_rate_limiters(state.clone()));

        // Outermost last; src/http.rs lists the layers in the order a request meets them.
        let router = routes::router(state.clone())
            .layer(middleware::from_fn_with_state(state.clone(), http::deadline))
            .layer(middleware::from_fn_with_state(state.clone(), http::limit_anonymous))
            .layer(middleware::from_fn_with_state(state.clone(), http::authenticate))
            .layer(middleware::from_fn_with_state(state.clone(), http::track_metrics))
            .layer(middleware::from_fn(http::request_span))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(middleware::from_fn_with_state(state.clone(), http::in_flight))
            .layer(socket_layer)
            .layer(middleware::from_fn_with_state(state.clone(), http::socket_requests))
            .layer(middleware::from_fn_with_state(state.clone(), http::client_ip))
            .layer(cors);
        Ok(Application { listener, router, state, dev_admin_token })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// An admin token, when this start generated the secret of a zero-configuration single node.
    pub fn dev_admin_token(&self) -> Option<&str> {
        self.dev_admin_token.as_deref()
    }

    /// Serves until `shutdown` resolves, then drains (see `run_until_with`) with no way to hurry.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.run_until_with(shutdown, std::future::pending()).await
    }

    /// Serves until `shutdown` resolves, then drains: `/ready` answers 503 at once, new sessions
    /// are refused, and the sockets are ended spread over `DRAIN_WINDOW` while HTTP keeps
    /// serving; `hurry` (a second SIGTERM) closes the rest at once. Then it stops accepting and
    /// lets requests in flight finish.
    pub async fn run_until_with(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        hurry: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let drain = async move {
            shutdown.await;
            state.draining.store(true, std::sync::atomic::Ordering::SeqCst);
            state.metrics.draining.set(1);
            tracing::info!(clients = state.metrics.connected_clients.get(), "shutting down: draining sockets");
            tokio::select! {
                () = sessions::drain(&state.io, state.config.sessions.drain_window, &state.metrics) => {}
                () = hurry => tracing::info!("shutting down: closing the remaining sockets at once"),
            }
            state.io.close().await;
        };
        let header_read = self.state.config.timeouts.header_read;
        crate::serve::serve(self.listener, self.router, header_read, self.state.metrics.clone(), drain).await?;
        self.state.bus.close().await;
        self.state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The configured secret, or for a zero-configuration single node one generated once and kept in
/// the database, so tokens survive restarts and `cyberhub token` can sign with it too. The flag
/// is true only on the start that generated it: the admin token is printed then, not at every
/// start into logs that outlive it (`cyberhub token` prints a fresh one on demand).
pub async fn jwt_secret(config: &Config, store: &dyn Store) -> anyhow::Result<(String, bool)> {
    if let Some(secret) = &config.jwt_secret {
        return Ok((secret.expose().to_string(), false));
    }
    anyhow::ensure!(!config.is_cluster(), "JWT_SECRET is required in a cluster");
    let candidate = hex::encode(rand::random::<[u8; 32]>());
    let stored = store.setting_or_insert("jwt_secret", &candidate).await?;
    let generated = stored == candidate;
    Ok((stored, generated))
}

/// The user id of the zero-configuration node's admin, created with it.
pub async fn dev_admin_id(store: &dyn Store) -> anyhow::Result<uuid::Uuid> {
    Ok(uuid::Uuid::parse_str(&store.setting_or_insert("dev_admin_id", &uuid::Uuid::new_v4().to_string()).await?)?)
}

fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let layer = CorsLayer::new().allow_methods(Any).allow_headers(Any).max_age(Duration::from_secs(600));
    match origins {
        CorsOrigins::Any => layer.allow_origin(Any),
        CorsOrigins::List(list) => layer.allow_origin(AllowOrigin::list(list.iter().filter_map(|o| o.parse().ok()))),
    }
}

async fn shrink_rate_limiters(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        state.limits.shrink();
    }
}

/// Two futures: the first resolves on SIGTERM or Ctrl-C, the second on the next one after it.
/// One signal listener serves both, so a second signal is never missed.
pub fn shutdown_signals() -> (impl Future<Output = ()> + Send, impl Future<Output = ()> + Send) {
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        for tx in [first_tx, second_tx] {
            #[cfg(unix)]
            let term = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let term = std::future::pending::<()>();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                () = term => {},
            }
            let _ = tx.send(());
        }
    });
    let wait = |rx: tokio::sync::oneshot::Receiver<()>| async move {
        if rx.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    (wait(first_rx), wait(second_rx))
}

/// Connections the kernel may hold for us before `accept`. `TcpListener::bind` asks for 128; when
/// a club's PCs (or a load test) connect in a burst, the queue overflowed, the kernel dropped
/// handshakes and clients waited a second for their SYN retry (measured: 361 listen drops and a
/// connect p99 of 860 ms during a 20,000-socket ramp). The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Single node: keeps `cyberhub_online_users` current (in a cluster the bus's snapshot loop does).
async fn online_gauge_loop(io: socketioxide::SocketIo, metrics: Arc<crate::metrics::Metrics>) {
    let mut every = tokio::time::interval(Duration::from_secs(2));
    loop {
        every.tick().await;
        metrics.online_users.set(crate::online::local_users(&io).1.len() as i64);
    }
}
