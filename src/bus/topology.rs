//! Which Redis the bus talks to, read from `REDIS_URL` in the fred crate's URL format, and how the
//! events are spread over a Redis Cluster's masters.
//!
//! - `redis://` / `rediss://`: one server (or a managed endpoint that fails over behind one name).
//! - `redis-sentinel://` / `rediss-sentinel://`: a master found through Sentinel; the URL names the
//!   sentinels (`host:port` and `node=host:port` for the others) and `sentinelServiceName`.
//! - `redis-cluster://` / `rediss-cluster://`: a Redis Cluster; the URL names seed nodes.
//!
//! On one server and on Sentinel the events travel on one pub/sub channel. On a Redis Cluster a
//! plain PUBLISH is copied to every node of the cluster, so it would cost every node the whole
//! load however many masters there are; the bus uses sharded pub/sub (SPUBLISH/SSUBSCRIBE,
//! Redis 7) instead, over `BUS_SHARDS` channels whose hash slots are spread evenly over the slot
//! space, so each master carries its part of the load.

use fred::types::config::Config as RedisConfig;
use uuid::Uuid;

use crate::events::Event;

/// The channel on one server or behind Sentinel (the name single-Redis deployments always used).
pub const CHANNEL: &str = "cyberhub:events";
/// The default `BUS_SHARDS`.
pub const DEFAULT_SHARDS: u16 = 16;
const SLOTS: u32 = 16_384;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisTopology {
    Single,
    Sentinel,
    Cluster,
}

impl RedisTopology {
    pub fn as_str(self) -> &'static str {
        match self {
            RedisTopology::Single => "single",
            RedisTopology::Sentinel => "sentinel",
            RedisTopology::Cluster => "cluster",
        }
    }
}

/// Checks `url` the way the bus will use it; the error says what is wrong without repeating the
/// URL (it carries the password).
pub fn parse(url: &str) -> Result<RedisTopology, String> {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme).unwrap_or_default();
    let topology = match scheme {
        "redis" | "rediss" => RedisTopology::Single,
        "redis-sentinel" | "rediss-sentinel" => RedisTopology::Sentinel,
        "redis-cluster" | "rediss-cluster" => RedisTopology::Cluster,
        _ => {
            return Err("must start with redis://, rediss://, redis-sentinel://, rediss-sentinel://, \
                 redis-cluster:// or rediss-cluster://"
                .into())
        }
    };
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if parsed.host_str().unwrap_or_default().is_empty() {
        return Err("has no host".into());
    }
    let pairs: Vec<(String, String)> = parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    for (key, value) in &pairs {
        let known = match topology {
            RedisTopology::Single => false,
            RedisTopology::Sentinel => {
                ["node", "sentinelServiceName", "sentinelUsername", "sentinelPassword"].contains(&key.as_str())
            }
            RedisTopology::Cluster => key == "node",
        };
        if !known {
            return Err(format!("unknown parameter {key:?} for a {} URL", topology.as_str()));
        }
        if key == "node" && !is_host_port(value) {
            return Err(format!("node={value:?} is not host:port"));
        }
    }
    if topology == RedisTopology::Sentinel {
        if !pairs.iter().any(|(k, v)| k == "sentinelServiceName" && !v.is_empty()) {
            return Err("a redis-sentinel:// URL needs ?sentinelServiceName=<the master's name in Sentinel>".into());
        }
        if parsed.port().is_none() {
            return Err("a redis-sentinel:// URL needs the sentinel's port (usually 26379)".into());
        }
    }
    if topology == RedisTopology::Cluster && !parsed.path().trim_matches('/').is_empty() {
        return Err("a Redis Cluster has only database 0: remove the /<db> path".into());
    }
    // Whatever fred would refuse at start is refused here, so it stops the process at once. The
    // TLS setup is checked apart (REDIS_TLS_*), so fred need not load the system's roots here.
    RedisConfig::from_url(&super::tls::without_tls(url))
        .map_err(|e| format!("not understood by the Redis client: {}", e.details()))?;
    Ok(topology)
}

fn is_host_port(value: &str) -> bool {
    value.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// The `n` shard channels, `cyberhub:events:{<tag>}`: shard `i`'s tag is the first one whose hash
/// slot falls in the `i`-th of `n` equal parts of the slot space, so consecutive shards land on
/// the masters in turn whatever `n` is (a cluster created by `redis-cli --cluster create` gives
/// each master one contiguous part). Every replica computes the same names.
pub fn shard_channels(n: u16) -> Vec<String> {
    let n = u32::from(n.max(1));
    (0..n)
        .map(|i| {
            let (low, high) = (i * SLOTS / n, (i + 1) * SLOTS / n);
            (0u32..)
                .map(|k| format!("cyberhub:events:{{{i}-{k}}}"))
                .find(|name| (low..high).contains(&u32::from(fred::util::redis_keyslot(name.as_bytes()))))
                .expect("some tag lands in every part of the slot space")
        })
        .collect()
}

/// The shard an event travels on: a user's events on one shard (so they keep their order; a
/// payment's console notice included), the events for everyone on the first.
pub fn shard_of(event: &Event, shards: usize) -> usize {
    let user: Option<Uuid> = match event {
        Event::CasesUpdated => None,
        Event::BalanceUpdated { user_id, .. }
        | Event::InventoryUpdated { user_id, .. }
        | Event::UserKicked { user_id }
        | Event::UserBlocked { user_id, .. }
        | Event::PaymentCredited { user_id, .. } => Some(*user_id),
    };
    match user {
        Some(user) if shards > 1 => (user.as_u64_pair().1 % shards as u64) as usize,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_form_is_accepted() {
        for (url, topology) in [
            ("redis://127.0.0.1:6379", RedisTopology::Single),
            ("redis://:pw@10.0.0.1:6379/2", RedisTopology::Single),
            ("redis://user:pw@redis.example.com", RedisTopology::Single),
            (
                "redis-sentinel://10.0.0.1:26379?sentinelServiceName=cyberhub&node=10.0.0.2:26379",
                RedisTopology::Sentinel,
            ),
            (
                "redis-sentinel://:pw@10.0.0.1:26379/0?sentinelServiceName=cyberhub&node=10.0.0.2:26379&node=10.0.0.3:26379&sentinelPassword=spw",
                RedisTopology::Sentinel,
            ),
            ("redis-cluster://10.0.0.1:6379?node=10.0.0.2:6379&node=10.0.0.3:6379", RedisTopology::Cluster),
            ("redis-cluster://:pw@10.0.0.1:6379", RedisTopology::Cluster),
            ("rediss://:pw@redis.example.com:6380", RedisTopology::Single),
            (
                "rediss-sentinel://10.0.0.1:26379?sentinelServiceName=cyberhub&node=10.0.0.2:26379",
                RedisTopology::Sentinel,
            ),
            ("rediss-cluster://:pw@10.0.0.1:6379?node=10.0.0.2:6379", RedisTopology::Cluster),
        ] {
            assert_eq!(parse(url), Ok(topology), "{url}");
        }
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_the_password() {
        for url in [
            "http://:secretpw@10.0.0.1:6379",
            "10.0.0.1:6379",
            "redis-sentinel://:secretpw@10.0.0.1:26379",
            "redis-sentinel://:secretpw@10.0.0.1?sentinelServiceName=x",
            "redis-cluster://:secretpw@10.0.0.1:6379?node=10.0.0.2",
            "redis-cluster://:secretpw@10.0.0.1:6379/3",
            "redis-cluster://:secretpw@10.0.0.1:6379?sentinelServiceName=x",
            "redis://:secretpw@10.0.0.1:notaport",
            "redis://:secretpw@/0",
            "rediss://:secretpw@10.0.0.1:notaport",
            "rediss-cluster://:secretpw@10.0.0.1:6379/3",
        ] {
            let err = parse(url).expect_err(url);
            assert!(!err.contains("secretpw"), "{url}: {err}");
        }
    }

    #[test]
    fn shard_channels_spread_evenly_over_the_slot_space() {
        let channels = shard_channels(16);
        assert_eq!(channels.len(), 16);
        assert_eq!(channels, shard_channels(16), "every replica computes the same names");
        // Three masters with the slots split as `redis-cli --cluster create` splits them.
        let masters = [0..5461u16, 5461..10923, 10923..16384];
        let per_master: Vec<usize> = masters
            .iter()
            .map(|range| channels.iter().filter(|c| range.contains(&fred::util::redis_keyslot(c.as_bytes()))).count())
            .collect();
        assert!(per_master.iter().all(|&n| (5..=6).contains(&n)), "{per_master:?}");
        assert_eq!(shard_channels(1).len(), 1);
    }

    #[test]
    fn a_users_events_share_a_shard() {
        let user = Uuid::new_v4();
        let balance = Event::BalanceUpdated { user_id: user, balance: 1, version: 1 };
        let inventory = Event::InventoryUpdated { user_id: user, version: Some(1) };
        assert_eq!(shard_of(&balance, 16), shard_of(&inventory, 16));
        assert!(shard_of(&balance, 16) < 16);
        assert_eq!(shard_of(&Event::CasesUpdated, 16), 0);
        assert_eq!(shard_of(&balance, 1), 0);
    }
}
