//! Typed configuration read once from the environment. Every value is checked here, so a bad
//! setting stops the process at start with a message naming the variable, never a panic later.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use crate::bus::topology::RedisTopology;

#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn invalid(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { var, message: message.into() }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A database URL whose `Display`/`Debug` never show the password, so it can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let url = DatabaseUrl(raw.to_string());
        url.backend()?;
        Ok(url)
    }

    pub fn backend(&self) -> Result<Backend, ConfigError> {
        if self.0.starts_with("postgres://") || self.0.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if self.0.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(invalid("DATABASE_URL", format!("unsupported scheme in {self}; use postgres:// or sqlite://")))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://{userinfo}@{host}"),
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// A secret that never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Values that were ever shipped as examples (deploy/.env.example, deploy/local/cluster.sh):
/// public, so never a secret. Compared ignoring case; anything starting with `change-me` counts.
pub const PLACEHOLDER_SECRETS: &[&str] = &[
    "change-me-to-32-random-bytes-in-hex",
    "changeme",
    "secret",
    "local-cluster-jwt-secret-not-for-production",
    "local-cluster-webhook-secret",
];

/// The shortest `JWT_SECRET`, `PAYMENT_WEBHOOK_SECRET` and `BUS_SECRET` a cluster accepts.
pub const MIN_CLUSTER_SECRET_BYTES: usize = 32;

fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    lower.starts_with("change-me") || PLACEHOLDER_SECRETS.contains(&lower.as_str())
}

/// A shared secret as read from `var`: never a placeholder, and in a cluster (where it is the
/// only thing between the network and minted tokens, forged payments or forged events) at
/// least `MIN_CLUSTER_SECRET_BYTES` long.
fn secret(var: &'static str, value: Option<String>, cluster: bool) -> Result<Option<Secret>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    if is_placeholder(&value) {
        return Err(invalid(var, "is a published example value; generate one with: openssl rand -hex 32"));
    }
    if cluster && value.len() < MIN_CLUSTER_SECRET_BYTES {
        return Err(invalid(
            var,
            format!(
                "must be at least {MIN_CLUSTER_SECRET_BYTES} bytes in a cluster (REDIS_URL set), got {}; \
                 generate one with: openssl rand -hex 32",
                value.len()
            ),
        ));
    }
    Ok(Some(Secret::new(value)))
}

/// `count/unit` with unit `s`, `m` or `h`: `count` requests per unit, with a burst of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl Rate {
    pub fn parse(var: &'static str, text: &str) -> Result<Self, ConfigError> {
        let err = || invalid(var, format!("expected <count>/<s|m|h> such as 10/s, got {text:?}"));
        let (count, unit) = text.trim().split_once('/').ok_or_else(err)?;
        let count: NonZeroU32 = count.trim().parse().map_err(|_| err())?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(err()),
        };
        Ok(Rate { count, per })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub enabled: bool,
    /// Case opens per user.
    pub opens: Rate,
    /// Inventory claims per user.
    pub claims: Rate,
    /// Seed-pair rotations and client-seed changes per user (each writes a pair row).
    pub seeds: Rate,
    /// Requests without a bearer token, per client IP.
    pub anonymous: Rate,
    /// Engine.IO handshakes (new sessions, before any namespace) per client IP.
    pub socket_handshakes: Rate,
    /// Socket.IO connects per client IP.
    pub socket_connects: Rate,
    /// Payment callbacks per client IP.
    pub webhook: Rate,
}

/// An IP network such as `10.0.0.0/8` or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// What one Socket.IO client may make a replica hold. Caps are per replica, like rate limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketLimits {
    /// Largest incoming websocket message or frame, and polling body, in bytes.
    pub max_message_bytes: usize,
    /// Concurrent authenticated sockets of one user; 0 when caps are off.
    pub max_per_user: u32,
    /// Concurrent sockets from one client IP (a club's PCs share one); 0 when caps are off.
    pub max_per_ip: u32,
    /// Packets queued for one socket before it counts as a slow consumer and is cut.
    pub send_queue: usize,
}

/// How live sockets end: token expiry and shutdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveSessions {
    /// A socket is ended this long after its token's `exp` unless refreshed in band.
    pub token_expiry_grace: Duration,
    /// On SIGTERM, sockets are closed spread evenly over this window; 0 closes them at once.
    pub drain_window: Duration,
}

/// How long a replica waits on a client or on the database before it gives up, so a stalled
/// dependency turns into a 503 instead of a hang.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// The whole of an HTTP API request (Socket.IO transports are not affected).
    pub request: Duration,
    /// Receiving a request's headers, and a keep-alive connection's idle wait (slowloris).
    pub header_read: Duration,
    /// Waiting for a pooled database connection.
    pub db_acquire: Duration,
    /// One PostgreSQL statement.
    pub db_statement: Duration,
    /// Waiting for a row or table lock (PostgreSQL), or the write lock (SQLite).
    pub db_lock: Duration,
    /// A PostgreSQL session idle inside an open transaction.
    pub db_idle_in_transaction: Duration,
}

/// `250ms`, `5s`, `2m`.
pub fn parse_duration(var: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let err = || invalid(var, format!("expected a duration such as 500ms, 5s or 2m, got {text:?}"));
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| err())?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(err)?),
        _ => return Err(err()),
    };
    if duration.is_zero() || duration > Duration::from_secs(3600) {
        return Err(invalid(var, format!("must be more than 0 and at most 1h, got {text:?}")));
    }
    Ok(duration)
}

/// `parse_duration`, but `0` (with or without a unit) is allowed and the cap is `max`.
pub fn parse_duration_or_zero(var: &'static str, text: &str, max: Duration) -> Result<Duration, ConfigError> {
    let trimmed = text.trim();
    if matches!(trimmed, "0" | "0s" | "0ms" | "0m") {
        return Ok(Duration::ZERO);
    }
    let duration = parse_duration(var, trimmed)?;
    if duration > max {
        return Err(invalid(var, format!("must be at most {}s, got {text:?}", max.as_secs())));
    }
    Ok(duration)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub database_url: DatabaseUrl,
    pub database_max_connections: u32,
    pub redis_url: Option<Secret>,
    /// What `redis_url` points at (one server, Sentinel, Redis Cluster); set exactly when it is.
    pub redis_topology: Option<RedisTopology>,
    /// Sharded pub/sub channels the events spread over on a Redis Cluster (`BUS_SHARDS`).
    pub bus_shards: u16,
    /// TLS to Redis (`REDIS_TLS_CA_FILE`, `REDIS_TLS_CERT_FILE`, `REDIS_TLS_KEY_FILE`, checked);
    /// set exactly when `redis_url` is a `rediss` one.
    pub redis_tls: Option<crate::bus::tls::RedisTls>,
    pub jwt_secret: Option<Secret>,
    pub payment_webhook_secret: Option<Secret>,
    /// Signs and verifies every message on the cluster bus; set exactly when `redis_url` is.
    pub bus_secret: Option<Secret>,
    /// A replica not heard on the bus for this long is taken for dead and the others repair their
    /// sockets from the database; each replica heartbeats every third of it. Same on every replica.
    pub bus_publisher_timeout: Duration,
    pub replica_id: String,
    pub cors_origins: CorsOrigins,
    pub rate_limits: RateLimits,
    pub trusted_proxies: Vec<IpNet>,
    pub log_format: LogFormat,
    pub sockets: SocketLimits,
    pub timeouts: Timeouts,
    pub sessions: LiveSessions,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://cyberhub.db?mode=rwc";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads configuration through `lookup`, so tests can build one without touching the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| lookup(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());

        let port = match get("PORT") {
            Some(p) => p.parse().map_err(|_| invalid("PORT", format!("not a port number: {p:?}")))?,
            None => 3000,
        };
        let bind = match get("BIND") {
            Some(b) => b.parse().map_err(|_| invalid("BIND", format!("not an IP address: {b:?}")))?,
            None => IpAddr::from([0, 0, 0, 0]),
        };
        let database_url = DatabaseUrl::parse(&get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()))?;
        let database_max_connections = match get("DATABASE_MAX_CONNECTIONS") {
            Some(n) => n
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| invalid("DATABASE_MAX_CONNECTIONS", format!("expected 1..1000, got {n:?}")))?,
            None => 16,
        };
        let redis_url = get("REDIS_URL").map(Secret::new);
        let redis_topology = match &redis_url {
            Some(url) => Some(crate::bus::topology::parse(url.expose()).map_err(|e| invalid("REDIS_URL", e))?),
            None => None,
        };
        let redis_tls = redis_tls(&get, redis_url.as_ref().map(|url| url.expose().to_string()).as_deref())?;
        let bus_shards = match get("BUS_SHARDS") {
            Some(n) => n
                .parse::<u16>()
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .ok_or_else(|| invalid("BUS_SHARDS", format!("expected 1..1024, got {n:?}")))?,
            None => crate::bus::topology::DEFAULT_SHARDS,
        };
        let cluster = redis_url.is_some();
        let jwt_secret = secret("JWT_SECRET", get("JWT_SECRET"), cluster)?;
        if let Some(secret) = &jwt_secret {
            if secret.expose().len() < 16 {
                return Err(invalid("JWT_SECRET", "must be at least 16 characters"));
            }
        }
        let payment_webhook_secret = secret("PAYMENT_WEBHOOK_SECRET", get("PAYMENT_WEBHOOK_SECRET"), cluster)?;
        let bus_secret = secret("BUS_SECRET", get("BUS_SECRET"), cluster)?;
        if cluster {
            if database_url.backend()? != Backend::Postgres {
                return Err(invalid(
                    "DATABASE_URL",
                    "a cluster (REDIS_URL set) needs PostgreSQL: replicas cannot share an SQLite file",
                ));
            }
            if jwt_secret.is_none() {
                return Err(invalid(
                    "JWT_SECRET",
                    "required when REDIS_URL is set: every replica must verify the same tokens",
                ));
            }
            if bus_secret.is_none() {
                return Err(invalid(
                    "BUS_SECRET",
                    "required when REDIS_URL is set: every replica signs and verifies bus messages with it",
                ));
            }
        }
        let replica_id = get("REPLICA_ID").unwrap_or_else(hostname);
        // It travels in a cookie and in metric labels.
        if replica_id.len() > 64 || !replica_id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(invalid(
                "REPLICA_ID",
                format!("use 1-64 letters, digits, '.', '_' or '-', got {replica_id:?}"),
            ));
        }
        let cors_origins = match get("CORS_ORIGINS").as_deref() {
            None | Some("*") => CorsOrigins::Any,
            Some(list) => {
                let origins: Vec<String> =
                    list.split(',').map(|o| o.trim().to_string()).filter(|o| !o.is_empty()).collect();
                if let Some(bad) = origins.iter().find(|o| !(o.starts_with("http://") || o.starts_with("https://"))) {
                    return Err(invalid(
                        "CORS_ORIGINS",
                        format!("origin must start with http:// or https://: {bad:?}"),
                    ));
                }
                CorsOrigins::List(origins)
            }
        };
        let rate =
            |var: &'static str, default: &str| Rate::parse(var, &get(var).unwrap_or_else(|| default.to_string()));
        let rate_limits = RateLimits {
            enabled: match get("RATE_LIMITS").as_deref() {
                None | Some("on") => true,
                Some("off") => false,
                Some(other) => return Err(invalid("RATE_LIMITS", format!("expected on or off, got {other:?}"))),
            },
            opens: rate("RATE_LIMIT_OPENS", "10/s")?,
            claims: rate("RATE_LIMIT_CLAIMS", "10/s")?,
            seeds: rate("RATE_LIMIT_SEEDS", "5/m")?,
            anonymous: rate("RATE_LIMIT_ANONYMOUS", "30/s")?,
            socket_handshakes: rate("RATE_LIMIT_SOCKET_HANDSHAKES", "20/s")?,
            // Above the handshake rate: a refused namespace connect is final for socket.io-client,
            // a refused handshake (429) is retried with backoff.
            socket_connects: rate("RATE_LIMIT_SOCKET_CONNECTS", "40/s")?,
            webhook: rate("RATE_LIMIT_WEBHOOK", "50/s")?,
        };
        let trusted_proxies = get("TRUSTED_PROXIES")
            .unwrap_or_else(|| "127.0.0.0/8,::1".into())
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| IpNet::parse(s).ok_or_else(|| invalid("TRUSTED_PROXIES", format!("not an IP or CIDR: {s:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(invalid("LOG_FORMAT", format!("expected text or json, got {other:?}"))),
        };
        let count = |var: &'static str, default: u32, range: std::ops::RangeInclusive<u32>| match get(var) {
            Some(n) => n
                .parse::<u32>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| invalid(var, format!("expected {}..{}, got {n:?}", range.start(), range.end()))),
            None => Ok(default),
        };
        let caps_on = rate_limits.enabled;
        let sockets = SocketLimits {
            max_message_bytes: count("SOCKET_MAX_MESSAGE_BYTES", 16 * 1024, 1024..=1024 * 1024)? as usize,
            max_per_user: count("MAX_SOCKETS_PER_USER", 10, 1..=100_000)? * u32::from(caps_on),
            max_per_ip: count("MAX_SOCKETS_PER_IP", 1000, 1..=1_000_000)? * u32::from(caps_on),
            send_queue: count("SOCKET_SEND_QUEUE", 128, 8..=65_536)? as usize,
        };
        let duration =
            |var: &'static str, default: &str| parse_duration(var, &get(var).unwrap_or_else(|| default.to_string()));
        let timeouts = Timeouts {
            request: duration("REQUEST_TIMEOUT", "10s")?,
            header_read: duration("HTTP_HEADER_READ_TIMEOUT", "15s")?,
            db_acquire: duration("DATABASE_ACQUIRE_TIMEOUT", "3s")?,
            db_statement: duration("DATABASE_STATEMENT_TIMEOUT", "3s")?,
            db_lock: duration("DATABASE_LOCK_TIMEOUT", "2s")?,
            db_idle_in_transaction: duration("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", "10s")?,
        };
        let bus_publisher_timeout = duration("BUS_PUBLISHER_TIMEOUT", "1500ms")?;
        if !(Duration::from_millis(300)..=Duration::from_secs(60)).contains(&bus_publisher_timeout) {
            return Err(invalid("BUS_PUBLISHER_TIMEOUT", "must be 300ms..60s".to_string()));
        }
        let zero_or = |var: &'static str, default: &str, max: u64| {
            parse_duration_or_zero(var, &get(var).unwrap_or_else(|| default.to_string()), Duration::from_secs(max))
        };
        let sessions = LiveSessions {
            token_expiry_grace: zero_or("TOKEN_EXPIRY_GRACE", "30s", 3600)?,
            drain_window: zero_or("DRAIN_WINDOW", "10s", 600)?,
        };
        Ok(Config {
            bind,
            port,
            database_url,
            database_max_connections,
            redis_url,
            redis_topology,
            redis_tls,
            bus_shards,
            jwt_secret,
            payment_webhook_secret,
            // Only the cluster bus uses it; a single node keeps no copy it would never check.
            bus_secret: bus_secret.filter(|_| cluster),
            bus_publisher_timeout,
            replica_id,
            cors_origins,
            rate_limits,
            trusted_proxies,
            log_format,
            sockets,
            timeouts,
            sessions,
        })
    }

    pub fn is_cluster(&self) -> bool {
        self.redis_url.is_some()
    }
}

/// The TLS settings for a `rediss` REDIS_URL, read and checked now; set without one, they are a
/// mistake (the operator believes the bus is encrypted), so they stop the process.
fn redis_tls(
    get: &impl Fn(&str) -> Option<String>,
    redis_url: Option<&str>,
) -> Result<Option<crate::bus::tls::RedisTls>, ConfigError> {
    use crate::bus::tls::{url_uses_tls, RedisTls, CA_FILE, CERT_FILE, KEY_FILE};
    let (ca, cert, key) = (get(CA_FILE), get(CERT_FILE), get(KEY_FILE));
    match redis_url {
        Some(url) if url_uses_tls(url) => RedisTls::load(ca.as_deref(), cert.as_deref(), key.as_deref())
            .map(Some)
            .map_err(|(var, message)| invalid(var, message)),
        _ => match [(CA_FILE, &ca), (CERT_FILE, &cert), (KEY_FILE, &key)].into_iter().find(|(_, v)| v.is_some()) {
            Some((var, _)) => Err(invalid(
                var,
                "set, but REDIS_URL does not use TLS: use rediss://, rediss-sentinel:// or rediss-cluster://",
            )),
            None => Ok(None),
        },
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cyberhub".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_give_a_single_sqlite_node() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 3000);
        assert_eq!(c.database_url.backend().unwrap(), Backend::Sqlite);
        assert!(!c.is_cluster());
        assert!(c.rate_limits.enabled);
        assert_eq!(c.cors_origins, CorsOrigins::Any);
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert_eq!(config(&[("PORT", "http")]).unwrap_err().var, "PORT");
        assert_eq!(config(&[("DATABASE_URL", "mysql://x")]).unwrap_err().var, "DATABASE_URL");
        assert_eq!(config(&[("RATE_LIMIT_OPENS", "ten")]).unwrap_err().var, "RATE_LIMIT_OPENS");
        assert_eq!(config(&[("RATE_LIMITS", "maybe")]).unwrap_err().var, "RATE_LIMITS");
        assert_eq!(config(&[("RATE_LIMIT_SEEDS", "5/d")]).unwrap_err().var, "RATE_LIMIT_SEEDS");
        assert_eq!(config(&[("RATE_LIMIT_SEEDS", "0/m")]).unwrap_err().var, "RATE_LIMIT_SEEDS");
        assert_eq!(config(&[("TRUSTED_PROXIES", "10.0.0.0/99")]).unwrap_err().var, "TRUSTED_PROXIES");
        assert_eq!(config(&[("JWT_SECRET", "short")]).unwrap_err().var, "JWT_SECRET");
        assert_eq!(config(&[("REPLICA_ID", "a b")]).unwrap_err().var, "REPLICA_ID");
        assert_eq!(config(&[("MAX_SOCKETS_PER_USER", "0")]).unwrap_err().var, "MAX_SOCKETS_PER_USER");
        assert_eq!(config(&[("REQUEST_TIMEOUT", "10")]).unwrap_err().var, "REQUEST_TIMEOUT");
        assert_eq!(config(&[("DATABASE_LOCK_TIMEOUT", "0s")]).unwrap_err().var, "DATABASE_LOCK_TIMEOUT");
    }

    #[test]
    fn limits_and_timeouts_have_safe_defaults_and_rate_limits_off_lifts_the_caps() {
        let c = config(&[]).unwrap();
        assert_eq!(c.rate_limits.seeds, Rate { count: NonZeroU32::new(5).unwrap(), per: Duration::from_secs(60) });
        assert_eq!(config(&[("RATE_LIMIT_SEEDS", "2/h")]).unwrap().rate_limits.seeds.per, Duration::from_secs(3600));
        assert_eq!(
            c.sockets,
            SocketLimits { max_message_bytes: 16 * 1024, max_per_user: 10, max_per_ip: 1000, send_queue: 128 }
        );
        assert_eq!(c.timeouts.request, Duration::from_secs(10));
        assert_eq!(c.timeouts.db_lock, Duration::from_secs(2));
        let off = config(&[("RATE_LIMITS", "off"), ("MAX_SOCKETS_PER_USER", "3")]).unwrap();
        assert_eq!((off.sockets.max_per_user, off.sockets.max_per_ip), (0, 0));
        assert_eq!(parse_duration("X", "250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("X", "2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("X", "5h").is_err());
    }

    const KEY_A: &str = "0123456789abcdef0123456789abcdef";
    const KEY_B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn the_bus_publisher_timeout_defaults_and_validates() {
        assert_eq!(config(&[]).unwrap().bus_publisher_timeout, Duration::from_millis(1500));
        let set = config(&[("BUS_PUBLISHER_TIMEOUT", "3s")]).unwrap();
        assert_eq!(set.bus_publisher_timeout, Duration::from_secs(3));
        assert_eq!(crate::bus::sequence::heartbeat_every(set.bus_publisher_timeout), Duration::from_secs(1));
        for bad in ["100ms", "2m", "0", "soon", "1500"] {
            let err = config(&[("BUS_PUBLISHER_TIMEOUT", bad)]).unwrap_err();
            assert_eq!(err.var, "BUS_PUBLISHER_TIMEOUT", "{bad}");
        }
    }

    #[test]
    fn live_session_settings_default_and_validate() {
        let c = config(&[]).unwrap();
        assert_eq!(c.sessions.token_expiry_grace, Duration::from_secs(30));
        assert_eq!(c.sessions.drain_window, Duration::from_secs(10));
        let set = config(&[("TOKEN_EXPIRY_GRACE", "1s"), ("DRAIN_WINDOW", "0"), ("SOCKET_SEND_QUEUE", "16")]).unwrap();
        assert_eq!(
            set.sessions,
            LiveSessions { token_expiry_grace: Duration::from_secs(1), drain_window: Duration::ZERO }
        );
        assert_eq!(set.sockets.send_queue, 16);
        assert_eq!(config(&[("TOKEN_EXPIRY_GRACE", "0s")]).unwrap().sessions.token_expiry_grace, Duration::ZERO);
        assert_eq!(config(&[("DRAIN_WINDOW", "500ms")]).unwrap().sessions.drain_window, Duration::from_millis(500));
        for (var, bad) in [
            ("TOKEN_EXPIRY_GRACE", "30"),
            ("TOKEN_EXPIRY_GRACE", "2h"),
            ("TOKEN_EXPIRY_GRACE", "-1s"),
            ("DRAIN_WINDOW", "11m"),
            ("DRAIN_WINDOW", "soon"),
            ("SOCKET_SEND_QUEUE", "4"),
            ("SOCKET_SEND_QUEUE", "many"),
        ] {
            assert_eq!(config(&[(var, bad)]).unwrap_err().var, var, "{var}={bad}");
        }
    }

    #[test]
    fn a_cluster_needs_postgres_and_shared_secrets() {
        let redis = ("REDIS_URL", "redis://:pw@127.0.0.1:6379");
        assert_eq!(config(&[redis]).unwrap_err().var, "DATABASE_URL");
        let pg = ("DATABASE_URL", "postgres://u:p@h/db");
        assert_eq!(config(&[redis, pg]).unwrap_err().var, "JWT_SECRET");
        assert_eq!(config(&[redis, pg, ("JWT_SECRET", KEY_A)]).unwrap_err().var, "BUS_SECRET");
        let c = config(&[redis, pg, ("JWT_SECRET", KEY_A), ("BUS_SECRET", KEY_B)]).unwrap();
        assert!(c.is_cluster());
        assert_eq!(c.bus_secret.as_ref().map(Secret::expose), Some(KEY_B));
        assert!(!format!("{c:?}").contains(KEY_B), "secrets stay out of Debug");
        // A single node has no bus to sign.
        assert!(config(&[("BUS_SECRET", KEY_B)]).unwrap().bus_secret.is_none());
    }

    /// A throwaway CA, and a client certificate and key it signed, made by `openssl`.
    fn throwaway_pki() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cyberhub-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("client.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        for command in [
            format!("req -x509 {ec} -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem"),
            format!("req {ec} -subj /CN=client -keyout client.key -out client.csr"),
            "x509 -req -in client.csr -CA ca.pem -CAkey ca.key -days 1 -extfile client.ext -out client.pem".into(),
        ] {
            let args: Vec<&str> = command.split(' ').collect();
            let out = std::process::Command::new("openssl").args(&args).current_dir(&dir).output().unwrap();
            assert!(out.status.success(), "openssl {command}: {}", String::from_utf8_lossy(&out.stderr));
        }
        dir
    }

    #[test]
    fn redis_tls_files_are_checked_at_start_and_named_when_wrong() {
        let pki = throwaway_pki();
        let path = |name: &str| pki.join(name).to_string_lossy().into_owned();
        let (ca, cert, key) = (path("ca.pem"), path("client.pem"), path("client.key"));
        let base = [
            ("REDIS_URL", "rediss://:pw@127.0.0.1:6380"),
            ("DATABASE_URL", "postgres://u:p@h/db"),
            ("JWT_SECRET", KEY_A),
            ("BUS_SECRET", KEY_B),
        ];
        let with = |extra: &[(&str, &str)]| config(&[&base[..], extra].concat());

        // The system's roots by default; a private CA; a client certificate.
        let tls = with(&[]).unwrap().redis_tls.expect("rediss:// sets up TLS");
        assert_eq!((tls.ca_file.as_deref(), tls.client_cert), (None, false));
        let tls = with(&[("REDIS_TLS_CA_FILE", &ca)]).unwrap().redis_tls.unwrap();
        assert_eq!((tls.ca_file.as_deref(), tls.client_cert), (Some(ca.as_str()), false));
        let tls = with(&[("REDIS_TLS_CA_FILE", &ca), ("REDIS_TLS_CERT_FILE", &cert), ("REDIS_TLS_KEY_FILE", &key)])
            .unwrap()
            .redis_tls
            .unwrap();
        assert!(tls.client_cert);
        assert!(!format!("{tls:?}").contains("PRIVATE"), "{tls:?}");
        for url in ["rediss-sentinel://10.0.0.1:26379?sentinelServiceName=c", "rediss-cluster://10.0.0.1:6379"] {
            let mut vars = base.to_vec();
            vars[0].1 = url;
            assert!(config(&vars).unwrap().redis_tls.is_some(), "{url}");
        }

        for (extra, var) in [
            (vec![("REDIS_TLS_CA_FILE", path("missing.pem"))], "REDIS_TLS_CA_FILE"),
            // A key is not a certificate.
            (vec![("REDIS_TLS_CA_FILE", key.clone())], "REDIS_TLS_CA_FILE"),
            (vec![("REDIS_TLS_CA_FILE", path("client.csr"))], "REDIS_TLS_CA_FILE"),
            (vec![("REDIS_TLS_CERT_FILE", cert.clone())], "REDIS_TLS_KEY_FILE"),
            (vec![("REDIS_TLS_KEY_FILE", key.clone())], "REDIS_TLS_CERT_FILE"),
            (vec![("REDIS_TLS_CERT_FILE", cert.clone()), ("REDIS_TLS_KEY_FILE", cert.clone())], "REDIS_TLS_KEY_FILE"),
            // The CA's key does not go with the client's certificate.
            (vec![("REDIS_TLS_CERT_FILE", cert.clone()), ("REDIS_TLS_KEY_FILE", path("ca.key"))], "REDIS_TLS_KEY_FILE"),
            (
                vec![("REDIS_TLS_CERT_FILE", path("missing.pem")), ("REDIS_TLS_KEY_FILE", key.clone())],
                "REDIS_TLS_CERT_FILE",
            ),
        ] {
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let err = with(&extra).unwrap_err();
            assert_eq!(err.var, var, "{extra:?}: {}", err.message);
        }

        // Without a TLS URL the settings are a mistake, not ignored.
        let mut clear = base.to_vec();
        clear[0].1 = "redis://:pw@127.0.0.1:6380";
        assert!(config(&clear).unwrap().redis_tls.is_none());
        clear.push(("REDIS_TLS_CA_FILE", &ca));
        assert_eq!(config(&clear).unwrap_err().var, "REDIS_TLS_CA_FILE");
        assert_eq!(config(&[("REDIS_TLS_CERT_FILE", &cert)]).unwrap_err().var, "REDIS_TLS_CERT_FILE");
        std::fs::remove_dir_all(&pki).unwrap();
    }

    #[test]
    fn redis_url_takes_one_server_sentinel_or_cluster_and_names_itself_when_wrong() {
        let rest = [("DATABASE_URL", "postgres://u:p@h/db"), ("JWT_SECRET", KEY_A), ("BUS_SECRET", KEY_B)];
        let with = |url: &'static str| {
            let vars: Vec<_> = [("REDIS_URL", url)].into_iter().chain(rest).collect();
            config(&vars)
        };
        for (url, topology) in [
            ("redis://:pw@127.0.0.1:6379", RedisTopology::Single),
            (
                "redis-sentinel://10.0.0.1:26379?sentinelServiceName=cyberhub&node=10.0.0.2:26379",
                RedisTopology::Sentinel,
            ),
            ("redis-cluster://10.0.0.1:6379?node=10.0.0.2:6379&node=10.0.0.3:6379", RedisTopology::Cluster),
        ] {
            let c = with(url).unwrap();
            assert_eq!((c.redis_topology, c.bus_shards), (Some(topology), 16), "{url}");
        }
        for bad in
            ["http://:hunter2@h:6379", "redis-sentinel://:hunter2@h:26379", "redis-cluster://:hunter2@h:1?node=x"]
        {
            let err = with(bad).unwrap_err();
            assert_eq!(err.var, "REDIS_URL", "{bad}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        assert!(config(&[]).unwrap().redis_topology.is_none());
        assert_eq!(config(&[("BUS_SHARDS", "3")]).unwrap().bus_shards, 3);
        for bad in ["0", "1025", "many"] {
            assert_eq!(config(&[("BUS_SHARDS", bad)]).unwrap_err().var, "BUS_SHARDS");
        }
    }

    #[test]
    fn a_cluster_refuses_short_secrets() {
        let base = [("REDIS_URL", "redis://127.0.0.1:6379"), ("DATABASE_URL", "postgres://u:p@h/db")];
        let short = &KEY_A[..31];
        for (var, with) in [
            ("JWT_SECRET", [("JWT_SECRET", short), ("BUS_SECRET", KEY_B), ("PAYMENT_WEBHOOK_SECRET", KEY_B)]),
            ("BUS_SECRET", [("JWT_SECRET", KEY_A), ("BUS_SECRET", short), ("PAYMENT_WEBHOOK_SECRET", KEY_B)]),
            (
                "PAYMENT_WEBHOOK_SECRET",
                [("JWT_SECRET", KEY_A), ("BUS_SECRET", KEY_B), ("PAYMENT_WEBHOOK_SECRET", short)],
            ),
        ] {
            let vars: Vec<_> = base.iter().chain(with.iter()).copied().collect();
            let err = config(&vars).unwrap_err();
            assert_eq!(err.var, var);
            assert!(err.message.contains("32 bytes") && !err.message.contains(short), "{err}");
        }
        // The single node keeps its 16-character minimum and a short webhook secret.
        let single = config(&[("JWT_SECRET", "0123456789abcdef"), ("PAYMENT_WEBHOOK_SECRET", "short")]).unwrap();
        assert!(single.payment_webhook_secret.is_some());
    }

    #[test]
    fn published_placeholders_are_refused_everywhere() {
        let cluster = [("REDIS_URL", "redis://127.0.0.1:6379"), ("DATABASE_URL", "postgres://u:p@h/db")];
        let good = [("JWT_SECRET", KEY_A), ("BUS_SECRET", KEY_B), ("PAYMENT_WEBHOOK_SECRET", KEY_B)];
        let placeholders =
            ["change-me", "change-me-to-32-random-bytes-in-hex", "CHANGE-ME-please-0123456789abcdef0123"]
                .into_iter()
                .chain(PLACEHOLDER_SECRETS.iter().copied());
        for placeholder in placeholders {
            for var in ["JWT_SECRET", "BUS_SECRET", "PAYMENT_WEBHOOK_SECRET"] {
                let vars: Vec<_> = cluster
                    .iter()
                    .chain(good.iter().filter(|(k, _)| *k != var))
                    .copied()
                    .chain([(var, placeholder)])
                    .collect();
                let err = config(&vars).unwrap_err();
                assert_eq!((err.var, err.message.contains("example")), (var, true), "{placeholder} in {var}");
            }
            assert_eq!(config(&[("PAYMENT_WEBHOOK_SECRET", placeholder)]).unwrap_err().var, "PAYMENT_WEBHOOK_SECRET");
        }
    }

    #[test]
    fn database_urls_are_redacted() {
        let url = DatabaseUrl::parse("postgres://app:hunter2@db:5432/cyberhub").unwrap();
        assert_eq!(url.to_string(), "postgres://app:***@db:5432/cyberhub");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(redact_url("redis://:pw@r:6379"), "redis://:***@r:6379");
    }

    #[test]
    fn rates_and_networks_parse() {
        let r = Rate::parse("X", "5/m").unwrap();
        assert_eq!((r.count.get(), r.per), (5, Duration::from_secs(60)));
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(IpNet::parse("127.0.0.0/8").unwrap().contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(IpNet::parse("::1").unwrap().contains("::1".parse().unwrap()));
    }
}
