//! Everything a handler needs, shared behind one `Arc`.

use socketioxide::SocketIo;
use std::collections::HashSet;
use std::ops::Deref;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

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
    pub metrics: Arc<Metrics>,
    pub io: SocketIo,
    known_users: RwLock<HashSet<Uuid>>,
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

impl AppState {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        jwt: JwtKeys,
        metrics: Arc<Metrics>,
        io: SocketIo,
    ) -> Self {
        let limits = RateLimiters::new(&config.rate_limits);
        AppState(Arc::new(App {
            config,
            store,
            bus,
            jwt,
            limits,
            metrics,
            io,
            known_users: RwLock::new(HashSet::new()),
        }))
    }

    /// Creates the user on first sight (identity lives with the club, not with us).
    pub async fn remember_user(&self, user_id: Uuid) -> StoreResult<()> {
        if self.known_users.read().expect("lock").contains(&user_id) {
            return Ok(());
        }
        self.store.ensure_user(user_id).await?;
        let mut known = self.known_users.write().expect("lock");
        if known.len() >= KNOWN_USERS_CAP {
            known.clear();
        }
        known.insert(user_id);
        Ok(())
    }

    /// Publishes events after their transaction committed.
    pub async fn publish(&self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            self.metrics.events_published.with_label_values(&[event.kind()]).inc();
            self.bus.publish(event).await;
        }
    }
}
