//! The cluster bus: every event is published on Redis pub/sub, and every replica's subscriber
//! emits what other replicas published to its own sockets. On one Redis and behind Sentinel that
//! is one channel; on a Redis Cluster it is `BUS_SHARDS` sharded channels spread over the masters
//! (src/bus/topology.rs), each with its own numbering, heartbeats and publishing task, so a slow
//! master backs up only its own shards' outboxes. (While a master is unreachable fred 10.1 takes
//! its whole cluster client down until the failover is over, so today every shard waits then.)
//!
//! Redis is a messenger here, never the truth, so nothing waits on it: publishing goes through a
//! bounded outbox drained by one task (requests never block on Redis), commands time out, the
//! clients reconnect forever, and after any gap in the subscription (Redis restarted, or it cut a
//! slow subscriber off at its output-buffer limit) the replica resubscribes and resyncs its
//! sockets from the database.
//!
//! Messages that vanish without any outage are noticed too (src/bus/sequence.rs): each replica
//! numbers what it publishes and sends a heartbeat every 500 ms; a receiver that sees a number
//! skipped, or a publisher that went quiet (SIGKILLed with events still in its outbox), repairs its
//! sockets from the database. One repair runs at a time; requests meanwhile coalesce into one more.
//!
//! On a Redis Cluster a shard subscription can also go quiet without any error reaching the client
//! (the master died and a replica took over its slots, a slot moved, the server sent SUNSUBSCRIBE),
//! so the replica checks each shard end to end: it must hear its own heartbeats come back on it.
//! A shard that stays silent past `echo_timeout` is subscribed again (and the sockets repaired).

use async_trait::async_trait;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::config::{Config as RedisConfig, PerformanceConfig, ReconnectPolicy};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast::error::RecvError, mpsc, Notify, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::sequence::{self, GapCause, Publishers};
use super::tls::{url_uses_tls, RedisTls};
use super::topology::{self, RedisTopology, CHANNEL};
use super::wire::{self, Key, Message, Rejection};
use super::{BusHealth, ClusterOnline, EventBus};
use crate::events::Event;
use crate::metrics::Metrics;
use crate::online::{self, ReplicaOnline, SessionView};
use crate::realtime::{Delivery, Origin};
use crate::store::Store;

/// Shared by the shards' outboxes (each gets its part, at least `MIN_SHARD_OUTBOX`).
const OUTBOX_CAPACITY: usize = 65_536;
const MIN_SHARD_OUTBOX: usize = 1_024;
/// At most this many queued messages go out in one pipeline (~300 bytes each).
const PUBLISH_BATCH: usize = 256;
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
const CLIENT_COUNTS: &str = "cyberhub:clients";
const CLIENT_COUNT_TTL: Duration = Duration::from_secs(10);
const CLIENT_COUNT_EVERY: Duration = Duration::from_secs(2);
/// Field = replica, value = `<expires-at-ms> <ReplicaOnline JSON>`.
const ONLINE: &str = "cyberhub:online";
/// Per replica: `cyberhub:sessions:<replica>`, field = user id, value = that user's sessions there
/// (a JSON list, at most `MAX_LISTED_PER_USER`). Written as a diff every 2 s, expiring as a whole.
const SESSIONS_PREFIX: &str = "cyberhub:sessions:";
/// A replica that stopped refreshing (crashed) drops out of the online answers after this.
const ONLINE_TTL: Duration = Duration::from_secs(6);
/// Fields per HSET when a replica writes many users at once.
const SESSIONS_CHUNK: usize = 1_000;

/// At most one warning per this interval about rejected messages, so a flood of forgeries
/// cannot flood the logs too; the metric counts every one.
const REJECTION_LOG_EVERY_MS: u64 = 10_000;
/// The same for gap warnings (a dead replica is noticed by every survivor at once).
const GAP_LOG_EVERY_MS: u64 = 5_000;
/// At most one warning per this many ms about failing connections to Redis (refused, timed out,
/// a certificate that does not verify), with the count since the last one.
const CONNECT_LOG_EVERY_MS: u64 = 10_000;

/// Lets one warning through per interval and says how many occurrences it stands for, so what a
/// network peer can trigger cannot flood the logs (the metrics count every occurrence).
struct LogThrottle {
    every_ms: u64,
    /// Milliseconds since the epoch of the last warning, and occurrences not yet reported.
    logged_at: AtomicU64,
    unlogged: AtomicU64,
}

impl LogThrottle {
    const fn new(every_ms: u64) -> Self {
        LogThrottle { every_ms, logged_at: AtomicU64::new(0), unlogged: AtomicU64::new(0) }
    }

    /// Records one occurrence; `Some(occurrences since the last warning)` when this one is to be
    /// logged.
    fn occurred(&self) -> Option<u64> {
        let unlogged = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let now_ms = now_micros() / 1000;
        let last = self.logged_at.load(Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= self.every_ms
            && self.logged_at.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok();
        due.then(|| {
            self.unlogged.fetch_sub(unlogged, Ordering::Relaxed);
            unlogged
        })
    }
}
/// How often the receiver looks for publishers gone quiet.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// Added to DATABASE_STATEMENT_TIMEOUT before the second repair after a publisher is lost.
/// A dead client can no longer send COMMIT, so what still commits after its death is a statement
/// it had sent (a one-statement open, a COMMIT in flight): done within DATABASE_STATEMENT_TIMEOUT.
const LATE_COMMIT_MARGIN: Duration = Duration::from_millis(250);

/// One sharded channel's subscription (Redis Cluster).
struct Shard {
    subscribed: AtomicBool,
    /// When this replica last heard its own message on the shard (ms since the epoch).
    echo_at: AtomicU64,
}

struct Shared {
    replica: String,
    /// Sharded pub/sub (Redis Cluster) or one channel.
    sharded: bool,
    /// The channels: `[CHANNEL]`, or the shard channels.
    channels: Vec<String>,
    channel_index: HashMap<String, usize>,
    shards: Vec<Shard>,
    /// A shard whose own heartbeats have not come back for this long is subscribed again.
    echo_timeout: Duration,
    delivery: Delivery,
    metrics: Arc<Metrics>,
    store: Arc<dyn Store>,
    publisher: Client,
    subscriber: SubscriberClient,
    subscribed: AtomicBool,
    cluster_clients: AtomicI64,
    key: Key,
    rejection_log: LogThrottle,
    /// This process's epoch, and per channel the last sequence number it gave a message. The
    /// lock is held across numbering and queueing, so each outbox holds numbers in order.
    epoch: u64,
    seq: Mutex<Vec<u64>>,
    /// One per channel, each drained by its own task.
    outboxes: Vec<mpsc::Sender<Message>>,
    /// What this replica has heard from each publisher.
    publishers: Mutex<Publishers>,
    /// Wakes the repair task; a wake-up while it runs is kept (one follow-up, however many).
    repair: Notify,
    /// DATABASE_STATEMENT_TIMEOUT: how long after a replica's death its statements may commit.
    late_commit: Duration,
    gap_log: LogThrottle,
    /// Set on close: no more heartbeats after the goodbye.
    closing: AtomicBool,
    /// A permit per channel whose goodbye went out.
    bye_sent: Semaphore,
}

pub struct RedisBus {
    shared: Arc<Shared>,
}

/// Which Redis, how the bus tells a lost publisher, and when it repairs again after one.
#[derive(Clone, Debug)]
pub struct BusSettings {
    /// What REDIS_URL points at.
    pub topology: RedisTopology,
    /// BUS_SHARDS: the shard channels on a Redis Cluster (ignored otherwise).
    pub shards: u16,
    /// DATABASE_STATEMENT_TIMEOUT: a statement a dead replica left running can commit this late.
    pub late_commit: Duration,
    /// BUS_PUBLISHER_TIMEOUT.
    pub publisher_timeout: Duration,
    /// How to verify the server (and present a client certificate); set exactly when REDIS_URL
    /// is a `rediss` one.
    pub tls: Option<RedisTls>,
}

impl RedisBus {
    /// Starts the clients and the background tasks. Does not wait for Redis: a replica that
    /// starts while Redis is down serves HTTP and local sockets, and joins the bus when it can.
    /// `secret` signs what this replica publishes and verifies what it receives (`BUS_SECRET`).
    pub async fn start(
        url: &str,
        secret: &[u8],
        replica: &str,
        delivery: Delivery,
        metrics: Arc<Metrics>,
        store: Arc<dyn Store>,
        settings: BusSettings,
    ) -> anyhow::Result<Self> {
        let BusSettings { topology, shards, late_commit, publisher_timeout, tls } = settings;
        let sharded = topology == RedisTopology::Cluster;
        let channels = if sharded { topology::shard_channels(shards) } else { vec![CHANNEL.to_string()] };
        // fred would build its own TLS setup for a `rediss` URL (the system's roots, loaded
        // again); ours is the one checked at start, with REDIS_TLS_* applied. Never clear text
        // for a TLS URL: without a TLS setup it does not start.
        let config = match (url_uses_tls(url), tls) {
            (false, None) => RedisConfig::from_url(url)?,
            (true, Some(tls)) => {
                let mut config = RedisConfig::from_url(&super::tls::without_tls(url))?;
                config.tls = Some(tls.fred_config());
                config
            }
            (true, None) => anyhow::bail!("REDIS_URL uses TLS but no TLS settings were given"),
            (false, Some(_)) => anyhow::bail!("REDIS_TLS_* settings given but REDIS_URL does not use TLS"),
        };
        let mut builder = Builder::from_config(config);
        builder
            // Forever, backing off from 50 ms to 2 s.
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
            .set_performance_config(PerformanceConfig {
                default_command_timeout: COMMAND_TIMEOUT,
                // fred's default of 32 silently drops bursts, and falling behind is detected
                // below (it resyncs). Every one of fred's broadcast channels preallocates this
                // many slots: 65,536 cost ~75 MB of RSS per replica.
                broadcast_channel_capacity: 4_096,
                ..Default::default()
            })
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = COMMAND_TIMEOUT;
                c.max_command_attempts = 1;
            });
        let publisher = builder.build()?;
        let subscriber = builder.build_subscriber_client()?;
        publisher.connect();
        subscriber.connect();
        let capacity = (OUTBOX_CAPACITY / channels.len()).max(MIN_SHARD_OUTBOX);
        let (outboxes, receivers): (Vec<_>, Vec<_>) = channels.iter().map(|_| mpsc::channel(capacity)).unzip();
        let shared = Arc::new(Shared {
            replica: replica.to_string(),
            sharded,
            channel_index: channels.iter().enumerate().map(|(i, c)| (c.clone(), i)).collect(),
            shards: channels
                .iter()
                .map(|_| Shard { subscribed: AtomicBool::new(false), echo_at: AtomicU64::new(0) })
                .collect(),
            seq: Mutex::new(vec![0; channels.len()]),
            channels,
            echo_timeout: publisher_timeout * 2,
            delivery,
            metrics,
            store,
            publisher,
            subscriber,
            subscribed: AtomicBool::new(false),
            cluster_clients: AtomicI64::new(-1),
            key: Key::new(secret),
            rejection_log: LogThrottle::new(REJECTION_LOG_EVERY_MS),
            epoch: Uuid::new_v4().as_u64_pair().0,
            outboxes,
            publishers: Mutex::new(Publishers::new(publisher_timeout)),
            repair: Notify::new(),
            late_commit,
            gap_log: LogThrottle::new(GAP_LOG_EVERY_MS),
            closing: AtomicBool::new(false),
            bye_sent: Semaphore::new(0),
        });
        for (channel, rx) in receivers.into_iter().enumerate() {
            tokio::spawn(publish_loop(shared.clone(), channel, rx));
        }
        tokio::spawn(heartbeat_loop(shared.clone(), sequence::heartbeat_every(publisher_timeout)));
        tokio::spawn(sweep_loop(shared.clone()));
        tokio::spawn(repair_loop(shared.clone()));
        if sharded {
            tokio::spawn(shard_subscription_loop(shared.clone()));
        } else {
            tokio::spawn(subscription_loop(shared.clone()));
        }
        tokio::spawn(receive_loop(shared.clone()));
        tokio::spawn(client_count_loop(shared.clone()));
        tokio::spawn(connection_error_log_loop(shared.clone()));
        if tokio::time::timeout(Duration::from_secs(2), shared.subscriber.wait_for_connect()).await.is_err() {
            tracing::warn!("Redis is not answering yet; serving without the cluster bus until it does");
        }
        Ok(RedisBus { shared })
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, event: Event) {
        self.shared.delivery.dispatch(&event, Origin::Local).await;
        if !self.shared.enqueue_event(event) {
            // Redis has been unreachable for a long burst. The number this message took is
            // skipped, so the other replicas notice the gap and repair their sockets.
            self.shared.metrics.bus_errors.with_label_values(&["publish"]).inc();
        }
    }

    fn health(&self) -> BusHealth {
        self.shared.health()
    }

    fn cluster_clients(&self) -> Option<i64> {
        match self.shared.cluster_clients.load(Ordering::Relaxed) {
            n if n >= 0 && self.shared.health() == BusHealth::Up => Some(n),
            _ => None,
        }
    }

    async fn online(&self) -> Option<Result<ClusterOnline, ()>> {
        Some(self.shared.online().await.map_err(|err| tracing::warn!(error = %err, "could not read who is online")))
    }

    async fn user_sessions(&self, user_id: uuid::Uuid) -> Option<Result<Vec<SessionView>, ()>> {
        let shared = &self.shared;
        let sessions = async {
            let mut all = Vec::new();
            for replica in shared.live_replicas().await? {
                let value: Option<String> =
                    shared.publisher.hget(sessions_key(&replica.replica), user_id.to_string()).await?;
                if let Some(list) = value.and_then(|v| serde_json::from_str::<Vec<SessionView>>(&v).ok()) {
                    all.extend(list);
                }
            }
            Ok::<_, fred::error::Error>(all)
        };
        Some(sessions.await.map_err(|err| tracing::warn!(error = %err, "could not read a user's sessions")))
    }

    async fn close(&self) {
        // Let the events of the last requests reach the other replicas, then say goodbye after
        // them, so the others do not take this drain for a crash and repair for nothing.
        self.shared.closing.store(true, Ordering::Relaxed);
        let byes = self.shared.enqueue_heartbeats(true);
        if byes > 0 {
            let all_sent = self.shared.bye_sent.acquire_many(byes as u32);
            let _ = tokio::time::timeout(Duration::from_secs(1), all_sent).await;
        }
        let _: Result<i64, _> = self.shared.publisher.hdel(CLIENT_COUNTS, self.shared.replica.as_str()).await;
        let _: Result<i64, _> = self.shared.publisher.hdel(ONLINE, self.shared.replica.as_str()).await;
        let _: Result<i64, _> = self.shared.publisher.del(sessions_key(&self.shared.replica)).await;
        let _ = self.shared.subscriber.quit().await;
        let _ = self.shared.publisher.quit().await;
    }
}

fn sessions_key(replica: &str) -> String {
    format!("{SESSIONS_PREFIX}{replica}")
}

impl Shared {
    /// Numbers and queues an event on its channel. False when the outbox is full; never waits.
    fn enqueue_event(&self, event: Event) -> bool {
        let channel = if self.sharded { topology::shard_of(&event, self.channels.len()) } else { 0 };
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        seq[channel] += 1;
        let message = Message {
            origin: self.replica.clone(),
            epoch: self.epoch,
            seq: seq[channel],
            ts: now_micros(),
            event: Some(event),
            bye: false,
        };
        self.outboxes[channel].try_send(message).is_ok()
    }

    /// Queues a heartbeat on every channel, numbered with the last number used there (`bye`: the
    /// last ones, on a clean shutdown). How many were queued; never waits.
    fn enqueue_heartbeats(&self, bye: bool) -> usize {
        let seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        let ts = now_micros();
        let mut queued = 0;
        for (channel, outbox) in self.outboxes.iter().enumerate() {
            let message =
                Message { origin: self.replica.clone(), epoch: self.epoch, seq: seq[channel], ts, event: None, bye };
            queued += usize::from(outbox.try_send(message).is_ok());
        }
        queued
    }

    /// Counts a possible loss and asks for a repair; warns at most once per interval.
    fn gap(&self, cause: GapCause, origin: Option<&str>) {
        self.metrics.bus_gaps.with_label_values(&[cause.as_str()]).inc();
        self.repair.notify_one();
        if let Some(unlogged) = self.gap_log.occurred() {
            tracing::warn!(
                cause = cause.as_str(),
                publisher = origin.unwrap_or("-"),
                gaps_since_last_warning = unlogged,
                "bus events may have been missed; repairing local sockets from the database"
            );
        }
    }

    /// The unexpired entries of `cyberhub:online`.
    async fn live_replicas(&self) -> Result<Vec<ReplicaOnline>, fred::error::Error> {
        let entries: HashMap<String, String> = self.publisher.hgetall(ONLINE).await?;
        let now_ms = now_micros() / 1000;
        let mut live: Vec<ReplicaOnline> = entries
            .values()
            .filter_map(|value| {
                let (expires, json) = value.split_once(' ')?;
                (expires.parse::<u64>().ok()? > now_ms).then(|| serde_json::from_str(json).ok())?
            })
            .collect();
        live.sort_by(|a, b| a.replica.cmp(&b.replica));
        Ok(live)
    }

    async fn online(&self) -> Result<ClusterOnline, fred::error::Error> {
        let replicas = self.live_replicas().await?;
        let mut users = std::collections::HashSet::new();
        for replica in &replicas {
            let keys: Vec<String> = self.publisher.hkeys(sessions_key(&replica.replica)).await?;
            users.extend(keys);
        }
        Ok(ClusterOnline { users: users.len() as u64, replicas })
    }

    /// Counts every dropped message; warns at most once per interval, with how many were dropped
    /// since the last warning. The message itself is never logged: it is untrusted input.
    fn rejected(&self, rejection: Rejection, bytes: usize) {
        self.metrics.bus_rejected.with_label_values(&[rejection.as_str()]).inc();
        if let Some(unlogged) = self.rejection_log.occurred() {
            tracing::warn!(
                reason = rejection.as_str(),
                bytes,
                rejected_since_last_warning = unlogged,
                "dropped a bus message that is not a valid signed event (is BUS_SECRET the same on every replica?)"
            );
        }
    }

    fn health(&self) -> BusHealth {
        let subscribed = if self.sharded {
            self.shards.iter().all(|shard| shard.subscribed.load(Ordering::Relaxed))
        } else {
            self.subscribed.load(Ordering::Relaxed)
        };
        if self.publisher.is_connected() && self.subscriber.is_connected() && subscribed {
            BusHealth::Up
        } else {
            BusHealth::Down
        }
    }
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64
}

/// Publishes what one channel's outbox holds: one PUBLISH (SPUBLISH on a shard) when a single
/// message waits, otherwise every waiting message (up to `PUBLISH_BATCH`) in one pipeline, one
/// round trip for the lot, so a burst does not queue behind one round trip per event. Order is
/// kept (one connection per node, FIFO).
async fn publish_loop(shared: Arc<Shared>, channel: usize, mut outbox: mpsc::Receiver<Message>) {
    let name = shared.channels[channel].clone();
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while outbox.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        if let [message] = batch.as_slice() {
            let text = wire::encode(&shared.key, message);
            let sent: Result<i64, _> = if shared.sharded {
                shared.publisher.spublish(name.as_str(), text).await
            } else {
                shared.publisher.publish(name.as_str(), text).await
            };
            if let Err(err) = sent {
                shared.metrics.bus_errors.with_label_values(&["publish"]).inc();
                tracing::debug!(error = %err, channel = %name, "publish to Redis failed");
            }
        } else {
            let pipeline = shared.publisher.pipeline();
            let mut failed = 0;
            for message in &batch {
                let text = wire::encode(&shared.key, message);
                let queued: Result<(), _> = if shared.sharded {
                    pipeline.spublish(name.as_str(), text).await
                } else {
                    pipeline.publish(name.as_str(), text).await
                };
                failed += u64::from(queued.is_err());
            }
            let results = pipeline.try_all::<fred::types::Value>().await;
            failed += results.iter().filter(|r| r.is_err()).count() as u64;
            if results.is_empty() && !batch.is_empty() {
                failed = batch.len() as u64;
            }
            if failed > 0 {
                shared.metrics.bus_errors.with_label_values(&["publish"]).inc_by(failed);
                tracing::debug!(failed, batch = batch.len(), channel = %name, "pipelined publish to Redis failed");
            }
        }
        if batch.iter().any(|m| m.bye) {
            shared.bye_sent.add_permits(1);
        }
        batch.clear();
    }
}

/// Keeps the subscription alive: subscribes whenever the subscriber (re)connected or was cut off,
/// and resyncs the local sockets after every gap, since events may have been missed in it.
async fn subscription_loop(shared: Arc<Shared>) {
    let mut errors = shared.subscriber.error_rx();
    let mut reconnects = shared.subscriber.reconnect_rx();
    let mut first = true;
    loop {
        if !shared.subscribed.load(Ordering::Relaxed) && shared.subscriber.is_connected() {
            match shared.subscriber.subscribe(CHANNEL).await {
                Ok(()) => {
                    // Whatever errors and reconnects queued up during the outage are history now.
                    errors = errors.resubscribe();
                    reconnects = reconnects.resubscribe();
                    // Before `subscribed`, so the sweep never takes the outage for deaths.
                    shared.publishers.lock().unwrap_or_else(|e| e.into_inner()).heard_all(Instant::now());
                    shared.subscribed.store(true, Ordering::Relaxed);
                    shared.metrics.bus_connected.set(1);
                    shared.metrics.bus_shards_subscribed.set(1);
                    if first {
                        tracing::info!(channel = CHANNEL, "subscribed to the cluster bus");
                    } else {
                        shared.metrics.bus_resubscribes.inc();
                        tracing::info!(channel = CHANNEL, "resubscribed to the cluster bus");
                        shared.gap(GapCause::Resubscribed, None);
                    }
                    first = false;
                }
                Err(err) => {
                    shared.metrics.bus_errors.with_label_values(&["subscribe"]).inc();
                    tracing::debug!(error = %err, "subscribe failed");
                }
            }
        }
        tokio::select! {
            error = errors.recv() => {
                if !matches!(error, Err(RecvError::Lagged(_))) {
                    lost(&shared, "connection error");
                }
            }
            _ = reconnects.recv() => lost(&shared, "reconnected"),
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                if !shared.subscriber.is_connected() {
                    lost(&shared, "disconnected");
                }
            }
        }
    }
}

/// Says why Redis cannot be reached (a wrong CA, a refused connection), throttled: the clients
/// retry forever and `/health` only says `down`.
async fn connection_error_log_loop(shared: Arc<Shared>) {
    let throttle = LogThrottle::new(CONNECT_LOG_EVERY_MS);
    let mut publisher = shared.publisher.error_rx();
    let mut subscriber = shared.subscriber.error_rx();
    loop {
        let error = tokio::select! {
            error = publisher.recv() => error,
            error = subscriber.recv() => error,
        };
        match error {
            Ok((error, server)) => {
                if shared.closing.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(count) = throttle.occurred() {
                    let server = server.map(|s| format!("{}:{}", s.host, s.port));
                    tracing::warn!(error = %error, server = server.as_deref(), count, "cannot reach Redis; retrying");
                }
            }
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

fn lost(shared: &Shared, why: &str) {
    if shared.subscribed.swap(false, Ordering::Relaxed) {
        shared.metrics.bus_connected.set(0);
        shared.metrics.bus_shards_subscribed.set(0);
        tracing::warn!(reason = why, "lost the cluster bus; HTTP and local sockets keep working");
    }
}

/// The Redis Cluster counterpart of `subscription_loop`: every shard channel is subscribed on its
/// own (SSUBSCRIBE takes channels of one slot), concurrently, so a shard whose master is down does
/// not hold up the others. A shard counts as lost when the client reconnected or reported a
/// connection error (all of them: fred may have rebuilt every connection), or when this replica
/// stopped hearing its own heartbeats on it (the subscription went quiet: failover, resharding).
async fn shard_subscription_loop(shared: Arc<Shared>) {
    let mut errors = shared.subscriber.error_rx();
    let mut reconnects = shared.subscriber.reconnect_rx();
    let mut ever_subscribed = vec![false; shared.shards.len()];
    let mut announced = false;
    loop {
        let missing: Vec<usize> =
            (0..shared.shards.len()).filter(|&i| !shared.shards[i].subscribed.load(Ordering::Relaxed)).collect();
        if !missing.is_empty() && shared.subscriber.is_connected() {
            let mut attempts = JoinSet::new();
            for i in missing {
                let (subscriber, channel) = (shared.subscriber.clone(), shared.channels[i].clone());
                attempts.spawn(async move { (i, subscriber.ssubscribe(channel).await) });
            }
            let mut again = false;
            while let Some(Ok((i, result))) = attempts.join_next().await {
                match result {
                    Ok(()) => {
                        // Before `subscribed`, so the sweep never takes the outage for deaths.
                        shared.publishers.lock().unwrap_or_else(|e| e.into_inner()).heard_all(Instant::now());
                        // Until its first echo: a full timeout for the heartbeats to come back.
                        shared.shards[i].echo_at.store(now_micros() / 1000, Ordering::Relaxed);
                        shared.shards[i].subscribed.store(true, Ordering::Relaxed);
                        again |= std::mem::replace(&mut ever_subscribed[i], true);
                    }
                    Err(err) => {
                        shared.metrics.bus_errors.with_label_values(&["subscribe"]).inc();
                        tracing::debug!(error = %err, channel = %shared.channels[i], "ssubscribe failed");
                    }
                }
            }
            if again {
                shared.metrics.bus_resubscribes.inc();
                shared.gap(GapCause::Resubscribed, None);
            }
        }
        let subscribed = shared.shards.iter().filter(|s| s.subscribed.load(Ordering::Relaxed)).count();
        shared.metrics.bus_shards_subscribed.set(subscribed as i64);
        let all = subscribed == shared.shards.len();
        shared.metrics.bus_connected.set(i64::from(all));
        if all != shared.subscribed.swap(all, Ordering::Relaxed) {
            if all {
                let shards = shared.shards.len();
                if announced {
                    tracing::info!(shards, "resubscribed to every shard of the cluster bus");
                } else {
                    tracing::info!(shards, "subscribed to every shard of the cluster bus (Redis Cluster)");
                }
                announced = true;
            } else {
                tracing::warn!(
                    subscribed,
                    shards = shared.shards.len(),
                    "lost shards of the cluster bus; HTTP and local sockets keep working"
                );
            }
        }
        tokio::select! {
            error = errors.recv() => {
                if !matches!(error, Err(RecvError::Lagged(_))) {
                    shards_lost(&shared, None, "connection error");
                }
            }
            _ = reconnects.recv() => shards_lost(&shared, None, "reconnected"),
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                if !shared.subscriber.is_connected() {
                    shards_lost(&shared, None, "disconnected");
                }
                let stale_before = (now_micros() / 1000).saturating_sub(shared.echo_timeout.as_millis() as u64);
                for (i, shard) in shared.shards.iter().enumerate() {
                    if shard.subscribed.load(Ordering::Relaxed) && shard.echo_at.load(Ordering::Relaxed) < stale_before {
                        shards_lost(&shared, Some(i), "own heartbeats stopped coming back");
                    }
                }
            }
        }
    }
}

/// Marks shard `which` (or all) for subscribing again.
fn shards_lost(shared: &Shared, which: Option<usize>, why: &str) {
    let mut lost = Vec::new();
    for (i, shard) in shared.shards.iter().enumerate() {
        if which.is_none_or(|w| w == i) && shard.subscribed.swap(false, Ordering::Relaxed) {
            lost.push(i);
        }
    }
    if !lost.is_empty() {
        tracing::warn!(reason = why, shards = ?lost, "subscribing to bus shards again");
    }
}

async fn receive_loop(shared: Arc<Shared>) {
    let mut messages = shared.subscriber.message_rx();
    loop {
        match messages.recv().await {
            Ok(message) => {
                let Some(&channel) = shared.channel_index.get(&*message.channel) else {
                    // Not ours (a subscription left over from an older configuration).
                    continue;
                };
                let raw = message.value.as_bytes().unwrap_or_default();
                match wire::decode(&shared.key, raw) {
                    Ok(message) if message.origin == shared.replica => {
                        if shared.sharded && message.epoch == shared.epoch {
                            shared.shards[channel].echo_at.store(now_micros() / 1000, Ordering::Relaxed);
                        }
                    }
                    Ok(message) => {
                        // Each shard is numbered on its own.
                        let publisher = if shared.sharded {
                            std::borrow::Cow::Owned(format!("{}#{channel}", message.origin))
                        } else {
                            std::borrow::Cow::Borrowed(message.origin.as_str())
                        };
                        let gap = shared.publishers.lock().unwrap_or_else(|e| e.into_inner()).observe(
                            &publisher,
                            message.epoch,
                            message.seq,
                            message.event.is_none(),
                            Instant::now(),
                        );
                        if let Some(event) = &message.event {
                            shared.delivery.dispatch(event, Origin::Remote).await;
                            shared.delivery.observe_lag(event.kind(), UNIX_EPOCH + Duration::from_micros(message.ts));
                        }
                        if let Some(cause) = gap {
                            shared.gap(cause, Some(&message.origin));
                        }
                        if message.bye {
                            shared.publishers.lock().unwrap_or_else(|e| e.into_inner()).depart(&publisher);
                            if channel == 0 {
                                tracing::info!(publisher = %message.origin, "a replica left the bus cleanly");
                            }
                        }
                    }
                    Err(rejection) => shared.rejected(rejection, raw.len()),
                }
            }
            Err(RecvError::Lagged(missed)) => {
                shared.metrics.bus_errors.with_label_values(&["lagged"]).inc_by(missed);
                tracing::warn!(missed, "fell behind the bus; resyncing");
                shared.gap(GapCause::Lagged, None);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Tells the other replicas every `every` which number this replica used last, so the loss of
/// its last messages shows, and so does its silence if it dies.
async fn heartbeat_loop(shared: Arc<Shared>, every: Duration) {
    let mut every = tokio::time::interval(every);
    loop {
        every.tick().await;
        if !shared.closing.load(Ordering::Relaxed) {
            shared.enqueue_heartbeats(false);
        }
    }
}

/// Looks for publishers gone quiet. A lost publisher is repaired twice: at once, and again once
/// every statement it left running has finished (PostgreSQL commits those after it died).
async fn sweep_loop(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        every.tick().await;
        if !shared.subscribed.load(Ordering::Relaxed) {
            // Everyone is quiet when we hear nothing; the resubscription repairs instead.
            continue;
        }
        let lost = shared.publishers.lock().unwrap_or_else(|e| e.into_inner()).sweep(Instant::now());
        if lost > 0 {
            shared.gap(GapCause::PublisherLost, None);
            let later = shared.clone();
            tokio::spawn(async move {
                tokio::time::sleep(later.late_commit + LATE_COMMIT_MARGIN).await;
                later.repair.notify_one();
            });
        }
    }
}

/// Runs the repairs one at a time: a request made while one runs is kept as one follow-up.
async fn repair_loop(shared: Arc<Shared>) {
    loop {
        shared.repair.notified().await;
        let started = Instant::now();
        let users = shared.delivery.resync(shared.store.as_ref()).await;
        tracing::info!(
            users,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "repaired local sockets from the database"
        );
    }
}

/// Each replica keeps `<count> <expires-at-ms>` under its id in one hash, so `/health` can report
/// the sockets on all live replicas with a single HGETALL; a dead replica's entry stops counting
/// when it expires (replica clocks are assumed NTP-synced, as for the lag metric).
async fn client_count_loop(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(CLIENT_COUNT_EVERY);
    let mut written = BTreeMap::new();
    loop {
        every.tick().await;
        let now_ms = now_micros() / 1000;
        let own =
            format!("{} {}", shared.metrics.connected_clients.get(), now_ms + CLIENT_COUNT_TTL.as_millis() as u64);
        let set: Result<i64, _> = shared.publisher.hset(CLIENT_COUNTS, (shared.replica.as_str(), own)).await;
        if set.is_err() {
            continue;
        }
        let entries: Result<HashMap<String, String>, _> = shared.publisher.hgetall(CLIENT_COUNTS).await;
        let Ok(entries) = entries else { continue };
        let mut total = 0;
        for (replica, value) in entries {
            let mut parts = value.split(' ').map(|p| p.parse::<u64>().ok());
            match (parts.next().flatten(), parts.next().flatten()) {
                (Some(count), Some(expires)) if expires > now_ms => total += count as i64,
                _ => {
                    let _: Result<i64, _> = shared.publisher.hdel(CLIENT_COUNTS, replica).await;
                }
            }
        }
        shared.cluster_clients.store(total, Ordering::Relaxed);
        shared.metrics.cluster_clients.set(total);
        if publish_online(&shared, &mut written).await.is_err() {
            // Redis lost or restarted: write everything again next time.
            written.clear();
        }
    }
}

/// Writes this replica's counts, and the sessions of the users whose sessions changed since the
/// last write (a diff: 20,000 idle sockets cost one small HSET and a PEXPIRE every 2 s).
async fn publish_online(shared: &Shared, written: &mut BTreeMap<Uuid, String>) -> Result<(), fred::error::Error> {
    let (summary, sessions) = online::local_snapshot(shared.delivery.io(), &shared.replica);
    shared.metrics.online_users.set(summary.users as i64);
    let expires = now_micros() / 1000 + ONLINE_TTL.as_millis() as u64;
    let value = format!("{expires} {}", serde_json::to_string(&summary).expect("serializes"));
    let key = sessions_key(&shared.replica);
    let changed: Vec<(String, String)> = sessions
        .iter()
        .filter(|(user, list)| written.get(user) != Some(list))
        .map(|(user, list)| (user.to_string(), list.clone()))
        .collect();
    let gone: Vec<String> = written.keys().filter(|user| !sessions.contains_key(user)).map(Uuid::to_string).collect();
    for chunk in changed.chunks(SESSIONS_CHUNK) {
        let _: i64 = shared.publisher.hset(&key, chunk.to_vec()).await?;
    }
    for chunk in gone.chunks(SESSIONS_CHUNK) {
        let _: i64 = shared.publisher.hdel(&key, chunk.to_vec()).await?;
    }
    *written = sessions;
    if !written.is_empty() {
        let kept: bool = shared.publisher.pexpire(&key, ONLINE_TTL.as_millis() as i64, None).await?;
        if !kept {
            // The hash vanished (Redis restarted): rewrite it whole next time.
            written.clear();
        }
    }
    // Last: the replica is listed only once its sessions are there.
    let _: i64 = shared.publisher.hset(ONLINE, (shared.replica.as_str(), value)).await?;
    Ok(())
}
