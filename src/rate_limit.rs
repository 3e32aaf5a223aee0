//! Per-replica rate limits (governor). Behind a load balancer the effective limit is
//! `rate × replicas`, which is documented in the README.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;
use uuid::Uuid;

use crate::config::{Rate, RateLimits};
use crate::metrics::Metrics;

/// A refusal: the caller may try again after `retry_after`. HTTP answers it as a 429 with
/// `Retry-After` (`From<Limited> for ApiError`); the Socket.IO connect refuses with `rate_limited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

struct Keyed<K: Hash + Eq + Clone> {
    name: &'static str,
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(name: &'static str, rate: Rate) -> Self {
        let period = rate.per / rate.count.get();
        let quota =
            Quota::with_period(period.max(Duration::from_nanos(1))).expect("non-zero period").allow_burst(rate.count);
        Keyed { name, limiter: RateLimiter::keyed(quota) }
    }

    fn check(&self, key: &K, metrics: &Metrics) -> Result<(), Limited> {
        self.limiter.check_key(key).map_err(|not_until| {
            metrics.rate_limited.with_label_values(&[self.name]).inc();
            Limited { retry_after: not_until.wait_time_from(DefaultClock::default().now()) }
        })
    }
}

pub struct RateLimiters {
    enabled: bool,
    opens: Keyed<Uuid>,
    claims: Keyed<Uuid>,
    seeds: Keyed<Uuid>,
    anonymous: Keyed<IpAddr>,
    socket_handshakes: Keyed<IpAddr>,
    socket_connects: Keyed<IpAddr>,
    webhook: Keyed<IpAddr>,
}

impl RateLimiters {
    pub fn new(config: &RateLimits) -> Self {
        RateLimiters {
            enabled: config.enabled,
            opens: Keyed::new("case_open", config.opens),
            claims: Keyed::new("claim", config.claims),
            seeds: Keyed::new("seed", config.seeds),
            anonymous: Keyed::new("anonymous", config.anonymous),
            socket_handshakes: Keyed::new("socket_handshake", config.socket_handshakes),
            socket_connects: Keyed::new("socket_connect", config.socket_connects),
            webhook: Keyed::new("webhook", config.webhook),
        }
    }

    pub fn open(&self, user: Uuid, m: &Metrics) -> Result<(), Limited> {
        self.gate(|| self.opens.check(&user, m))
    }
    pub fn claim(&self, user: Uuid, m: &Metrics) -> Result<(), Limited> {
        self.gate(|| self.claims.check(&user, m))
    }
    /// Seed-pair rotations and client-seed changes.
    pub fn seed(&self, user: Uuid, m: &Metrics) -> Result<(), Limited> {
        self.gate(|| self.seeds.check(&user, m))
    }
    pub fn anonymous(&self, ip: IpAddr, m: &Metrics) -> Result<(), Limited> {
        self.gate(|| self.anonymous.check(&ip, m))
    }
    pub fn socket_handshake(&self, ip: IpAddr, m: &Metrics) -> Result<(), Limited> {
        self.gate(|| self.socket_handshakes.check(&ip, m))
    }
    pub fn socket_connect(&self, ip: IpAddr, m: &Metrics) -> Result<(), Limited> {
        self.gate(|| self.socket_connects.check(&ip, m))
    }
    pub fn webhook(&self, ip: IpAddr, m: &Metrics) -> Result<(), Limited> {
        self.gate(|| self.webhook.check(&ip, m))
    }

    fn gate(&self, check: impl FnOnce() -> Result<(), Limited>) -> Result<(), Limited> {
        if self.enabled {
            check()
        } else {
            Ok(())
        }
    }

    /// Forgets keys whose buckets are full again, so memory follows active clients only.
    pub fn shrink(&self) {
        self.opens.limiter.retain_recent();
        self.claims.limiter.retain_recent();
        self.seeds.limiter.retain_recent();
        self.anonymous.limiter.retain_recent();
        self.socket_handshakes.limiter.retain_recent();
        self.socket_connects.limiter.retain_recent();
        self.webhook.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn refuses_past_the_burst_with_a_retry_after() {
        let metrics = Metrics::new("test");
        let limiter = Keyed::<u8>::new("t", Rate { count: NonZeroU32::new(3).unwrap(), per: Duration::from_secs(60) });
        for _ in 0..3 {
            assert!(limiter.check(&1, &metrics).is_ok());
        }
        match limiter.check(&1, &metrics) {
            Err(Limited { retry_after }) => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(20), "{retry_after:?}")
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(limiter.check(&2, &metrics).is_ok(), "keys are limited separately");
    }

    #[test]
    fn a_refusal_asks_for_whole_seconds_never_zero() {
        use crate::error::ApiError;
        let secs = |retry_after: Duration| match ApiError::from(Limited { retry_after }) {
            ApiError::RateLimited { retry_after_secs } => retry_after_secs,
            other => panic!("expected a rate limit, got {other:?}"),
        };
        assert_eq!(secs(Duration::ZERO), 1);
        assert_eq!(secs(Duration::from_millis(1)), 1);
        assert_eq!(secs(Duration::from_secs(3)), 3);
        assert_eq!(secs(Duration::from_millis(3001)), 4);
    }
}
