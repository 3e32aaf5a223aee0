//! Prometheus metrics. Labels stay bounded: matched routes (never raw paths), event kinds,
//! outcomes, limiter names; never user ids.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub connected_clients: IntGauge,
    pub connected_clients_by_auth: IntGaugeVec,
    pub cluster_clients: IntGauge,
    pub online_users: IntGauge,
    pub connects: IntCounterVec,
    pub handshakes: IntCounterVec,
    pub disconnects: IntCounterVec,
    pub sessions_ended: IntCounterVec,
    pub token_refreshes: IntCounterVec,
    pub slow_consumers: IntCounter,
    pub admin_sockets: IntGauge,
    pub admin_connects: IntCounterVec,
    pub draining: IntGauge,
    pub events_published: IntCounterVec,
    pub events_delivered: IntCounterVec,
    pub event_lag: HistogramVec,
    pub bus_errors: IntCounterVec,
    pub bus_rejected: IntCounterVec,
    pub bus_connected: IntGauge,
    pub bus_resubscribes: IntCounter,
    pub bus_shards_subscribed: IntGauge,
    pub bus_gaps: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub http_in_flight: IntGauge,
    pub http_timeouts: IntCounter,
    pub header_timeouts: IntCounter,
    pub ready_pings: IntCounter,
    pub db_unavailable: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub case_opens: IntCounterVec,
    pub case_open_retries: IntCounterVec,
    pub claims: IntCounter,
    pub payments: IntCounterVec,
    pub ledger_cents: IntCounterVec,
    pub db_pool_size: IntGauge,
    pub db_pool_idle: IntGauge,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(metric.clone())).expect("unique metric");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect("valid metric");
    registry.register(Box::new(metric.clone())).expect("unique metric");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("valid metric");
    registry.register(Box::new(metric.clone())).expect("unique metric");
    metric
}

fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let metric = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).expect("valid metric");
    registry.register(Box::new(metric.clone())).expect("unique metric");
    metric
}

impl Metrics {
    pub fn new(replica: &str) -> Self {
        let registry = Registry::new();
        let latency_buckets = vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

        let build_info = IntGaugeVec::new(
            Opts::new("cyberhub_build_info", "Build of the running binary; always 1"),
            &["version", "git_sha", "replica"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("CYBERHUB_GIT_SHA").unwrap_or("unknown"),
                replica,
            ])
            .set(1);
        registry.register(Box::new(build_info)).expect("unique metric");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("unique metric");

        let connected_clients_by_auth = IntGaugeVec::new(
            Opts::new(
                "cyberhub_connected_clients_by_auth",
                "Socket.IO clients connected to this replica, by authentication",
            ),
            &["auth"],
        )
        .expect("valid metric");
        registry.register(Box::new(connected_clients_by_auth.clone())).expect("unique metric");

        Metrics {
            connected_clients: gauge(
                &registry,
                "cyberhub_connected_clients",
                "Socket.IO clients connected to this replica",
            ),
            connected_clients_by_auth,
            cluster_clients: gauge(
                &registry,
                "cyberhub_cluster_clients",
                "Socket.IO clients on all live replicas (from Redis)",
            ),
            online_users: gauge(
                &registry,
                "cyberhub_online_users",
                "Distinct authenticated users with a socket on this replica (refreshed every 2 s)",
            ),
            connects: counter_vec(
                &registry,
                "cyberhub_socket_connects_total",
                "Socket.IO connect attempts by outcome",
                &["outcome"],
            ),
            handshakes: counter_vec(
                &registry,
                "cyberhub_socket_handshakes_total",
                "Engine.IO handshakes (new sessions) by outcome",
                &["outcome"],
            ),
            disconnects: counter_vec(
                &registry,
                "cyberhub_socket_disconnects_total",
                "Socket.IO disconnects by reason",
                &["reason"],
            ),
            sessions_ended: counter_vec(
                &registry,
                "cyberhub_socket_sessions_ended_total",
                "Sockets the server ended with session:ended, by reason (token_expired, draining, kicked, blocked)",
                &["reason"],
            ),
            token_refreshes: counter_vec(
                &registry,
                "cyberhub_socket_token_refreshes_total",
                "In-band auth:refresh requests by outcome",
                &["outcome"],
            ),
            slow_consumers: counter(
                &registry,
                "cyberhub_socket_slow_consumers_total",
                "Sockets cut because their send queue (SOCKET_SEND_QUEUE) was full",
            ),
            admin_sockets: gauge(
                &registry,
                "cyberhub_console_sockets",
                "Operators' console sockets (the admin-only /admin namespace) on this replica",
            ),
            admin_connects: counter_vec(
                &registry,
                "cyberhub_console_connects_total",
                "Connect attempts on the admin-only /admin namespace by outcome",
                &["outcome"],
            ),
            draining: gauge(&registry, "cyberhub_draining", "1 while this replica drains its sockets for shutdown"),
            events_published: counter_vec(
                &registry,
                "cyberhub_events_published_total",
                "Realtime events published by this replica",
                &["event"],
            ),
            events_delivered: counter_vec(
                &registry,
                "cyberhub_events_delivered_total",
                "Realtime events emitted to this replica's sockets, by origin",
                &["event", "origin"],
            ),
            event_lag: histogram_vec(
                &registry,
                "cyberhub_event_delivery_lag_seconds",
                "Time from publish on the origin replica to emit on this replica",
                &["event"],
                latency_buckets.clone(),
            ),
            bus_errors: counter_vec(&registry, "cyberhub_bus_errors_total", "Event bus errors by operation", &["op"]),
            bus_rejected: counter_vec(
                &registry,
                "cyberhub_bus_messages_rejected_total",
                "Messages on the Redis bus dropped unread: unsigned, bad signature, malformed or oversized",
                &["reason"],
            ),
            bus_connected: gauge(
                &registry,
                "cyberhub_bus_connected",
                "1 when the cluster event bus (Redis) is connected",
            ),
            bus_resubscribes: counter(
                &registry,
                "cyberhub_bus_resubscribes_total",
                "Times the bus subscribed again after losing Redis",
            ),
            bus_shards_subscribed: gauge(
                &registry,
                "cyberhub_bus_shards_subscribed",
                "On Redis Cluster: the shard channels this replica is subscribed to and hears its own \
                 heartbeats on (BUS_SHARDS when all is well); on one Redis or Sentinel: 1 when subscribed",
            ),
            bus_gaps: counter_vec(
                &registry,
                "cyberhub_bus_gaps_total",
                "Times this replica may have missed bus events and repaired its sockets from the database, \
                 by cause: gap (a publisher's sequence skipped), publisher_lost (a publisher went quiet or \
                 restarted), lagged (own receive buffer overflowed), resubscribed (own subscription lost)",
                &["cause"],
            ),
            http_requests: counter_vec(
                &registry,
                "cyberhub_http_requests_total",
                "HTTP requests by method, matched route and status",
                &["method", "route", "status"],
            ),
            http_duration: histogram_vec(
                &registry,
                "cyberhub_http_request_duration_seconds",
                "HTTP request latency by method and matched route",
                &["method", "route"],
                latency_buckets,
            ),
            http_in_flight: gauge(&registry, "cyberhub_http_requests_in_flight", "HTTP requests being served"),
            header_timeouts: counter(
                &registry,
                "cyberhub_http_header_timeouts_total",
                "Connections closed because no complete request head arrived within HTTP_HEADER_READ_TIMEOUT (a slow client, or a keep-alive connection idle that long)",
            ),
            http_timeouts: counter(
                &registry,
                "cyberhub_http_request_timeouts_total",
                "API requests cut off at REQUEST_TIMEOUT and answered 503",
            ),
            ready_pings: counter(
                &registry,
                "cyberhub_ready_database_pings_total",
                "Database pings made to answer /ready (at most one a second, however often it is called)",
            ),
            db_unavailable: counter_vec(
                &registry,
                "cyberhub_db_unavailable_total",
                "Database operations that failed as unavailable (answered 503), by cause",
                &["cause"],
            ),
            rate_limited: counter_vec(
                &registry,
                "cyberhub_rate_limited_total",
                "Requests refused by a rate limiter",
                &["limiter"],
            ),
            case_opens: counter_vec(&registry, "cyberhub_case_opens_total", "Case opens by case", &["case"]),
            case_open_retries: counter_vec(
                &registry,
                "cyberhub_case_open_retries_total",
                "Successful opens that found the replica's cached case or seed pair stale (case_changed, \
                 pair_changed: one more round trip each) or fell back to the locking transaction (fallback)",
                &["reason"],
            ),
            claims: counter(&registry, "cyberhub_claims_total", "Inventory items claimed into balance"),
            payments: counter_vec(&registry, "cyberhub_payments_total", "Payment callbacks by outcome", &["outcome"]),
            ledger_cents: counter_vec(
                &registry,
                "cyberhub_ledger_cents_total",
                "Absolute ledger volume in cents by kind",
                &["kind"],
            ),
            db_pool_size: gauge(&registry, "cyberhub_db_pool_connections", "Database pool connections open"),
            db_pool_idle: gauge(&registry, "cyberhub_db_pool_idle_connections", "Database pool connections idle"),
            registry,
        }
        .with_known_series()
    }

    /// Series with a fixed label set exist from the start at 0, so dashboards and alerts see a
    /// zero rather than no data.
    fn with_known_series(self) -> Self {
        for limiter in ["case_open", "claim", "seed", "anonymous", "socket_handshake", "socket_connect", "webhook"] {
            self.rate_limited.with_label_values(&[limiter]);
        }
        for reason in ["case_changed", "pair_changed", "fallback"] {
            self.case_open_retries.with_label_values(&[reason]);
        }
        for outcome in ["credited", "duplicate", "rejected_signature", "not_success"] {
            self.payments.with_label_values(&[outcome]);
        }
        for kind in crate::domain::LedgerKind::ALL {
            self.ledger_cents.with_label_values(&[kind.as_str()]);
        }
        for op in ["publish", "subscribe", "lagged"] {
            self.bus_errors.with_label_values(&[op]);
        }
        for cause in crate::bus::GapCause::ALL {
            self.bus_gaps.with_label_values(&[cause.as_str()]);
        }
        for rejection in crate::bus::Rejection::ALL {
            self.bus_rejected.with_label_values(&[rejection.as_str()]);
        }
        for outcome in ["accepted", "unauthorized", "rate_limited", "unavailable", "too_many_connections", "blocked"] {
            self.connects.with_label_values(&[outcome]);
        }
        for reason in ["token_expired", "draining", "kicked", "blocked"] {
            self.sessions_ended.with_label_values(&[reason]);
        }
        for outcome in ["ok", "unauthorized", "forbidden"] {
            self.token_refreshes.with_label_values(&[outcome]);
        }
        for outcome in ["accepted", "rate_limited", "draining"] {
            self.handshakes.with_label_values(&[outcome]);
        }
        for cause in crate::store::UnavailableCause::ALL {
            self.db_unavailable.with_label_values(&[cause.as_str()]);
        }
        for auth in ["authenticated", "anonymous"] {
            self.connected_clients_by_auth.with_label_values(&[auth]);
        }
        for event in ["cases_updated", "balance_updated", "inventory_updated", "user_kicked", "user_blocked"] {
            self.events_published.with_label_values(&[event]);
        }
        self
    }

    pub fn client_connected(&self, authenticated: bool) {
        self.connected_clients.inc();
        self.connected_clients_by_auth.with_label_values(&[auth_label(authenticated)]).inc();
    }

    pub fn client_disconnected(&self, authenticated: bool, reason: &str) {
        self.connected_clients.dec();
        self.connected_clients_by_auth.with_label_values(&[auth_label(authenticated)]).dec();
        self.disconnects.with_label_values(&[reason]).inc();
    }

    pub fn record_ledger(&self, kind: crate::domain::LedgerKind, amount: crate::money::Cents) {
        self.ledger_cents.with_label_values(&[kind.as_str()]).inc_by(amount.as_i64().unsigned_abs());
    }

    pub fn record_open_retries(&self, retries: crate::store::OpenRetries) {
        let counts = [
            ("case_changed", u64::from(retries.case_changed)),
            ("pair_changed", u64::from(retries.pair_changed)),
            ("fallback", u64::from(retries.fell_back)),
        ];
        for (reason, count) in counts {
            if count > 0 {
                self.case_open_retries.with_label_values(&[reason]).inc_by(count);
            }
        }
    }

    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        encoder.encode(&self.registry.gather(), &mut buffer).expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("prometheus text is UTF-8")
    }
}

fn auth_label(authenticated: bool) -> &'static str {
    if authenticated {
        "authenticated"
    } else {
        "anonymous"
    }
}
