//! Everything a handler needs, shared behind one `Arc`.

use socketioxide::SocketIo;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

use crate::admission::SocketAdmission;
use crate::auth::JwtKeys;
use crate::bus::EventBus;
use crate::config::Config;
use crate::events::Event;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiters;
use crate::store::{Store, StoreResult};

pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub jwt: JwtKeys,
    pub limits: RateLimiters,
    pub sockets: Arc<SocketAdmission>,
    pub metrics: Arc<Metrics>,
    pub io: SocketIo,
    /// Set on SIGTERM: `/ready` answers 503 and new Engine.IO sessions are refused while the
    /// sockets are closed over `DRAIN_WINDOW`.
    pub draining: AtomicBool,
    pub known_users: Arc<KnownUsers>,
    /// Token deadlines of this replica's sockets, one task for all (`sessions::ExpiryTimers`).
    pub expiry: Arc<crate::sessions::ExpiryTimers>,
    database_probe: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

#[derive(Clone)]
pub struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

/// Users are never deleted, so "this id exists" can be cached for the life of the process; the
/// cap bounds memory when many players pass through one replica.
const KNOWN_USERS_CAP: usize = 200_000;

/// The users this replica has seen, each with whether it is blocked. A block or unblock anywhere
/// updates every replica's entry over the bus (`Event::UserBlocked`); after a gap in the bus the
/// whole cache is dropped (`Delivery::resync`), so a missed update lasts no longer than the gap.
/// Bounded: past `KNOWN_USERS_CAP` entries it starts over.
#[derive(Default)]
pub struct KnownUsers(RwLock<HashMap<Uuid, bool>>);

impl KnownUsers {
    /// `Some(blocked)` when the user is cached.
    pub fn blocked(&self, user_id: Uuid) -> Option<bool> {
        self.0.read().expect("lock").get(&user_id).copied()
    }

    pub fn set(&self, user_id: Uuid, blocked: bool) {
        let mut known = self.0.write().expect("lock");
        if known.len() >= KNOWN_USERS_CAP {
            known.clear();
        }
        known.insert(user_id, blocked);
    }

    pub fn forget_all(&self) {
        self.0.write().expect("lock").clear();
    }
}

/// How long one database ping answers `/ready`: well under a probe period, so a failure still
/// shows on the next probe.
const DATABASE_PROBE_TTL: Duration = Duration::from_secs(1);

impl AppState {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        jwt: JwtKeys,
        metrics: Arc<Metrics>,
        io: SocketIo,
        known_users: Arc<KnownUsers>,
    ) -> Self {
        let limits = RateLimiters::new(&config.rate_limits);
        let sockets = SocketAdmission::new(&config.sockets);
        let expiry = crate::sessions::ExpiryTimers::start(config.sessions.token_expiry_grace, metrics.clone());
        AppState(Arc::new(App {
            config,
            store,
            bus,
            jwt,
            limits,
            sockets,
            metrics,
            io,
            draining: AtomicBool::new(false),
            known_users,
            expiry,
            database_probe: tokio::sync::Mutex::new(None),
        }))
    }

    /// Creates the user on first sight (identity lives with the club, not with us) and answers
    /// whether the user is blocked, from the cache when it can.
    pub async fn remember_user(&self, user_id: Uuid) -> StoreResult<bool> {
        if let Some(blocked) = self.known_users.blocked(user_id) {
            return Ok(blocked);
        }
        let blocked = self.store.ensure_user(user_id).await?;
        self.known_users.set(user_id, blocked);
        Ok(blocked)
    }

    /// Whether the database answers, asked at most once per `DATABASE_PROBE_TTL` however often
    /// `/ready` is called: concurrent callers wait for the one ping in flight and share its answer,
    /// so the probe cannot be used to load the database.
    pub async fn database_up(&self) -> bool {
        let mut probe = self.database_probe.lock().await;
        if let Some((at, up)) = *probe {
            if at.elapsed() < DATABASE_PROBE_TTL {
                return up;
            }
        }
        self.metrics.ready_pings.inc();
        let up = self.store.ping().await.is_ok();
        *probe = Some((Instant::now(), up));
        up
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Publishes events after their transaction committed.
    pub async fn publish(&self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            self.metrics.events_published.with_label_values(&[event.kind()]).inc();
            self.bus.publish(event).await;
        }
    }
}
