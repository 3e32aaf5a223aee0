//! All transports modules available in engineioxide

use engineioxide_core::{OpenPacket, Sid, TransportType};

use crate::config::EngineIoConfig;

pub mod polling;
pub mod ws;

fn make_open_packet(transport: TransportType, id: Sid, config: &EngineIoConfig) -> OpenPacket {
    let upgrades = if transport == TransportType::Polling {
        smallvec::smallvec![TransportType::Websocket]
    } else {
        smallvec::smallvec![]
    };
    OpenPacket {
        sid: id,
        upgrades,
        ping_timeout: config.ping_timeout,
        ping_interval: config.ping_interval,
        max_payload: config.max_payload,
    }
}

/// A copy of the request head that owns its bytes (CyberHub patch, see `vendor/PATCHES.md`).
///
/// hyper parses header values and the URI as slices of its connection read buffer (8 KB or more).
/// Keeping the original [`Parts`] in [`Socket::req_parts`](crate::Socket::req_parts) for the life
/// of the session therefore keeps that whole buffer alive. The copy puts every header value in one
/// allocation of exactly their length, sizes the header map to what it holds, and leaves out the
/// connection's upgrade handle; name, value and order of every header are kept.
pub(crate) fn owned_head(parts: &http::request::Parts) -> http::request::Parts {
    use bytes::{BufMut, BytesMut};
    use http::{HeaderMap, HeaderValue, Request, Uri};

    let (mut head, ()) = Request::new(()).into_parts();
    head.method = parts.method.clone();
    head.version = parts.version;
    head.uri = parts
        .uri
        .to_string()
        .parse::<Uri>()
        .unwrap_or_else(|_| parts.uri.clone());

    let total = parts.headers.values().map(|v| v.len()).sum();
    let mut values = BytesMut::with_capacity(total);
    for value in parts.headers.values() {
        values.put_slice(value.as_bytes());
    }
    let values = values.freeze();
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    let mut at = 0;
    for (name, value) in &parts.headers {
        let len = value.len();
        let copy = HeaderValue::from_maybe_shared(values.slice(at..at + len))
            .map(|mut v| {
                v.set_sensitive(value.is_sensitive());
                v
            })
            .unwrap_or_else(|_| value.clone());
        at += len;
        headers.append(name.clone(), copy);
    }
    head.headers = headers;
    head.extensions = parts.extensions.clone();
    head.extensions.remove::<hyper::upgrade::OnUpgrade>();
    head
}

#[cfg(test)]
mod tests {
    #[test]
    fn owned_head_keeps_everything_but_the_upgrade_handle() {
        let req = http::Request::builder()
            .method("GET")
            .uri("/socket.io/?EIO=4&transport=websocket")
            .header("host", "example.com")
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-forwarded-for", "10.0.0.2")
            .header("cookie", "a=b")
            .extension(42u32)
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let head = super::owned_head(&parts);
        assert_eq!(head.method, parts.method);
        assert_eq!(head.uri, parts.uri);
        assert_eq!(head.uri.query(), Some("EIO=4&transport=websocket"));
        assert_eq!(head.headers, parts.headers);
        let forwarded: Vec<_> = head.headers.get_all("x-forwarded-for").iter().collect();
        assert_eq!(forwarded, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(head.extensions.get::<u32>(), Some(&42));
    }
}
