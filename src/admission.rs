//! Caps on concurrent sockets per user and per client IP, so one player (or one address) cannot
//! hold a replica's sockets. A club's PCs share one NAT address, hence the generous per-IP cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

use crate::config::SocketLimits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PerUser,
    PerIp,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::PerUser => "per_user",
            Refusal::PerIp => "per_ip",
        }
    }
}

pub struct SocketAdmission {
    max_per_user: u32,
    max_per_ip: u32,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    by_user: HashMap<Uuid, u32>,
    by_ip: HashMap<IpAddr, u32>,
}

/// One admitted socket; dropping it (the socket's extensions go with the socket) frees its place.
#[derive(Clone)]
pub struct SocketSlot {
    _held: Arc<Held>,
}

struct Held {
    admission: Arc<SocketAdmission>,
    ip: IpAddr,
    user: Option<Uuid>,
}

impl SocketAdmission {
    /// A cap of 0 is no cap; with both off nothing is counted at all.
    pub fn new(limits: &SocketLimits) -> Arc<Self> {
        Arc::new(SocketAdmission {
            max_per_user: limits.max_per_user,
            max_per_ip: limits.max_per_ip,
            counts: Mutex::new(Counts::default()),
        })
    }

    pub fn admit(self: &Arc<Self>, ip: IpAddr, user: Option<Uuid>) -> Result<Option<SocketSlot>, Refusal> {
        let count_ip = self.max_per_ip > 0;
        let count_user = self.max_per_user > 0 && user.is_some();
        if !count_ip && !count_user {
            return Ok(None);
        }
        let mut counts = self.counts.lock().expect("lock");
        if count_ip && counts.by_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        if let (true, Some(user)) = (count_user, user) {
            if counts.by_user.get(&user).copied().unwrap_or(0) >= self.max_per_user {
                return Err(Refusal::PerUser);
            }
            *counts.by_user.entry(user).or_default() += 1;
        }
        if count_ip {
            *counts.by_ip.entry(ip).or_default() += 1;
        }
        let held = Held { admission: self.clone(), ip, user: user.filter(|_| count_user) };
        Ok(Some(SocketSlot { _held: Arc::new(held) }))
    }

    /// Addresses and users currently holding sockets here (what the counts cost in memory).
    pub fn tracked(&self) -> (usize, usize) {
        let counts = self.counts.lock().expect("lock");
        (counts.by_ip.len(), counts.by_user.len())
    }

    fn release(&self, ip: IpAddr, user: Option<Uuid>) {
        let mut counts = self.counts.lock().expect("lock");
        if self.max_per_ip > 0 {
            decrement(&mut counts.by_ip, ip);
        }
        if let Some(user) = user {
            decrement(&mut counts.by_user, user);
        }
    }
}

/// Removes keys that reach zero, so memory follows connected sockets only.
fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: K) {
    if let std::collections::hash_map::Entry::Occupied(mut entry) = map.entry(key) {
        *entry.get_mut() -= 1;
        if *entry.get() == 0 {
            entry.remove();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.admission.release(self.ip, self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limits(per_user: u32, per_ip: u32) -> SocketLimits {
        SocketLimits { max_message_bytes: 16 * 1024, max_per_user: per_user, max_per_ip: per_ip, send_queue: 128 }
    }

    #[test]
    fn caps_per_user_and_per_ip_and_frees_places() {
        let admission = SocketAdmission::new(&limits(2, 3));
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let a1 = admission.admit(ip, Some(alice)).unwrap();
        let _a2 = admission.admit(ip, Some(alice)).unwrap();
        assert_eq!(admission.admit(ip, Some(alice)).err(), Some(Refusal::PerUser));
        let _b1 = admission.admit(ip, Some(bob)).unwrap();
        assert_eq!(admission.admit(ip, None).err(), Some(Refusal::PerIp));
        assert!(admission.admit(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), None).unwrap().is_some());
        drop(a1);
        assert!(admission.admit(ip, Some(alice)).is_ok(), "a closed socket frees its place");
        assert_eq!(admission.tracked(), (1, 2));
    }

    #[test]
    fn zero_caps_count_nothing() {
        let admission = SocketAdmission::new(&limits(0, 0));
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for _ in 0..100 {
            assert!(admission.admit(ip, Some(Uuid::nil())).unwrap().is_none());
        }
        assert_eq!(admission.tracked(), (0, 0));
    }
}
