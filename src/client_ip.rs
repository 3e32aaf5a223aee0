//! The client's IP for rate limits: the peer address, or the address a trusted proxy (nginx)
//! reports in X-Forwarded-For. Untrusted peers cannot spoof it.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{request::Parts, Extensions, HeaderMap};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::config::IpNet;

pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    // Walk from the nearest hop outwards: the first address not ours is the client.
    forwarded.iter().rev().copied().find(|ip| !is_trusted(*ip)).or(forwarded.first().copied()).unwrap_or(peer)
}

pub fn peer_from_extensions(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The resolved client IP. The `http::client_ip` middleware computes it once per request and keeps it
/// in the request extensions; the extractor, the anonymous limit and the Socket.IO handshake and
/// connect checks (socketioxide keeps the engine.io request's extensions) all read that value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The value the middleware stored. Without it (a request that bypassed the middleware) the peer
    /// address, which no client can spoof; forwarded headers are never read here.
    pub fn of(extensions: &Extensions) -> IpAddr {
        extensions.get::<ClientIp>().map_or_else(|| peer_from_extensions(extensions), |ClientIp(ip)| *ip)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(ClientIp::of(&parts.extensions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn only_trusted_proxies_may_forward() {
        let trusted = vec![IpNet::parse("127.0.0.0/8").unwrap(), IpNet::parse("10.0.0.0/8").unwrap()];
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(resolve("127.0.0.1".parse().unwrap(), &headers("203.0.113.7"), &trusted), client);
        assert_eq!(resolve("127.0.0.1".parse().unwrap(), &headers("1.2.3.4, 203.0.113.7, 10.0.0.2"), &trusted), client);
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(resolve(stranger, &headers("203.0.113.7"), &trusted), stranger);
        assert_eq!(
            resolve("127.0.0.1".parse().unwrap(), &HeaderMap::new(), &trusted),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
