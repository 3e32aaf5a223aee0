//! A Rust Socket.IO client that records what it receives, in order.
//!
//! There is deliberately no "nothing arrives within N ms": a quiet window passes vacuously when
//! delivery is slow. To show an event did not come, cause one the socket must get after it (a
//! credit to its own player, a `cases:updated`) and use `expect_none_before`: a socket receives
//! its events in the order they were emitted to it, so whatever the action emitted is queued
//! ahead of the sentinel.

use futures::FutureExt;
use rust_socketio::asynchronous::{Client as SocketClient, ClientBuilder};
use rust_socketio::{Event as SocketEvent, Payload, TransportType};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Mutex};

/// A Rust Socket.IO client (rust_socketio, websocket transport) that records what it receives.
pub struct TestSocket {
    pub client: SocketClient,
    events: Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
}

#[derive(Debug)]
pub enum ConnectFailure {
    Refused(String),
    #[allow(dead_code)]
    Other(String),
}

impl TestSocket {
    pub async fn connect(base: &str, token: Option<&str>) -> Result<TestSocket, ConnectFailure> {
        TestSocket::connect_with_auth(base, token.map(|token| json!({ "token": token }))).await
    }

    /// With `auth` as the handshake's auth object, e.g. `{ token, positions: { balance } }`.
    pub async fn connect_with_auth(base: &str, auth: Option<Value>) -> Result<TestSocket, ConnectFailure> {
        TestSocket::connect_namespace(base, "/", auth).await
    }

    /// To `namespace` (`/admin`, the operators' console) with `auth` as the handshake's auth object.
    pub async fn connect_namespace(
        base: &str,
        namespace: &str,
        auth: Option<Value>,
    ) -> Result<TestSocket, ConnectFailure> {
        let (tx, rx) = mpsc::unbounded_channel::<(String, Value)>();
        let (status_tx, mut status_rx) = mpsc::unbounded_channel::<Result<(), String>>();
        let any_tx = tx.clone();
        let close_tx = tx.clone();
        let connected = status_tx.clone();
        let mut builder = ClientBuilder::new(base)
            .namespace(namespace)
            .transport_type(TransportType::Websocket)
            .reconnect(false)
            .on_any(move |event: SocketEvent, payload: Payload, _| {
                let tx = any_tx.clone();
                async move {
                    let (name, value) = match (event, payload) {
                        // rust_socketio reads an event without arguments, `["cases:updated"]`,
                        // as a "message" whose payload is the event name.
                        (SocketEvent::Message, Payload::Text(values)) if values.len() == 1 && values[0].is_string() => {
                            (values[0].as_str().unwrap_or_default().to_string(), Value::Null)
                        }
                        (event, Payload::Text(mut values)) if values.len() == 1 => {
                            (event.to_string(), values.remove(0))
                        }
                        (event, Payload::Text(values)) => (event.to_string(), Value::Array(values)),
                        (event, _) => (event.to_string(), Value::Null),
                    };
                    let _ = tx.send((name, value));
                }
                .boxed()
            })
            // The server's namespace disconnect, recorded as an event named "disconnect".
            .on(SocketEvent::Close, move |_, _| {
                let _ = close_tx.send(("disconnect".to_string(), Value::Null));
                async {}.boxed()
            })
            .on(SocketEvent::Connect, move |_, _| {
                let _ = connected.send(Ok(()));
                async {}.boxed()
            })
            .on(SocketEvent::Error, move |payload, _| {
                let text = format!("{payload:?}");
                let _ = status_tx.send(Err(text));
                async {}.boxed()
            });
        if let Some(auth) = auth {
            builder = builder.auth(auth);
        }
        let client = builder.connect().await.map_err(|e| ConnectFailure::Other(e.to_string()))?;
        match tokio::time::timeout(Duration::from_secs(5), status_rx.recv()).await {
            Ok(Some(Ok(()))) => Ok(TestSocket { client, events: Mutex::new(rx) }),
            Ok(Some(Err(error))) => Err(ConnectFailure::Refused(error)),
            Ok(None) | Err(_) => Err(ConnectFailure::Other("no connect or error within 5 s".into())),
        }
    }

    /// Waits for `event` and returns its payload, skipping other events.
    pub async fn expect(&self, event: &str) -> Value {
        self.wait_for(event).await.unwrap_or_else(|| panic!("{event} did not arrive within 5 s"))
    }

    /// Waits up to 5 s for `event`, skipping other events; `None` if it did not come.
    pub async fn wait_for(&self, event: &str) -> Option<Value> {
        let mut events = self.events.lock().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some((name, payload))) if name == event => return Some(payload),
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Everything received up to and including `event` (waiting up to 5 s for it), in order.
    pub async fn until(&self, event: &str) -> Vec<(String, Value)> {
        let mut events = self.events.lock().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some((name, payload))) => {
                    let last = name == event;
                    seen.push((name, payload));
                    if last {
                        return seen;
                    }
                }
                Ok(None) | Err(_) => panic!("{event} did not arrive within 5 s; received {seen:?}"),
            }
        }
    }

    /// Waits for `sentinel` and returns its payload, asserting that nothing named in `unwanted`
    /// came before it (an entry `name` also covers `name:…`, so `balance:updated` is every
    /// player's). Events received before the action count too: consume what you expect first.
    #[track_caller]
    pub fn expect_none_before<'a>(
        &'a self,
        unwanted: &'a [&'a str],
        sentinel: &'a str,
    ) -> impl std::future::Future<Output = Value> + 'a {
        let caller = std::panic::Location::caller();
        async move {
            let mut seen = self.until(sentinel).await;
            let (_, payload) = seen.pop().expect("until ends with the sentinel");
            let matches = |name: &str| {
                unwanted
                    .iter()
                    .any(|u| name.strip_prefix(u).is_some_and(|rest| rest.is_empty() || rest.starts_with(':')))
            };
            let arrived: Vec<_> = seen.iter().filter(|(name, _)| matches(name)).collect();
            assert!(
                arrived.is_empty(),
                "{caller}: {arrived:?} arrived before {sentinel}; everything before it: {seen:?}"
            );
            payload
        }
    }

    /// Everything received so far.
    pub async fn drain(&self) -> Vec<(String, Value)> {
        let mut events = self.events.lock().await;
        let mut all = Vec::new();
        while let Ok((name, payload)) = events.try_recv() {
            all.push((name, payload));
        }
        all
    }

    pub async fn emit_with_ack(&self, event: &str, data: Value) -> Value {
        let (tx, rx) = oneshot::channel::<Value>();
        let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
        self.client
            .emit_with_ack(event, data, Duration::from_secs(5), move |payload: Payload, _| {
                // rust_socketio hands ack arguments over as one JSON array.
                let value = match payload {
                    Payload::Text(mut values) if !values.is_empty() => match values.remove(0) {
                        Value::Array(mut args) if args.len() == 1 => args.remove(0),
                        other => other,
                    },
                    _ => Value::Null,
                };
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(value);
                }
                async {}.boxed()
            })
            .await
            .expect("emit");
        tokio::time::timeout(Duration::from_secs(5), rx).await.expect("ack within 5 s").expect("ack")
    }

    pub async fn close(self) {
        let _ = self.client.disconnect().await;
    }
}
