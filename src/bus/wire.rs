//! The bytes that cross Redis, and the only door into a replica's sockets from the network.
//!
//! Anything that can reach Redis can publish on the channel, so a replica delivers nothing it
//! cannot verify: every message is `v2.<hex HMAC-SHA256>.<json>`, signed with `BUS_SECRET` over
//! `v2.` and the JSON. The receiver checks the size and the signature (constant time) before it
//! parses a byte of the JSON, then parses into the typed `Event`, so the room and the event name
//! are derived here from a validated user id, never taken from the message.
//!
//! A replayed message is harmless: events are state hints, or absolute state with a version that
//! clients only ever move forward.
//!
//! Every message carries its publisher's `epoch` (random per process) and `seq` (1, 2, … per
//! process); a heartbeat is a message without an event whose `seq` is the last one used, so a
//! receiver can tell when it missed something (src/bus/sequence.rs).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::events::Event;

const PREFIX: &[u8] = b"v2.";
const SIGNATURE_HEX: usize = 64;
/// Our own messages are about 250 bytes; anything far larger is not ours.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Why a message was dropped: the `reason` label of `cyberhub_bus_messages_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not in the signed format at all (an older replica, or a hand-made PUBLISH).
    Unsigned,
    /// Signed format, but not with our key.
    BadSignature,
    /// Correctly signed but not a valid event: a bug or a version skew between replicas.
    Malformed,
    Oversized,
}

impl Rejection {
    pub const ALL: [Rejection; 4] =
        [Rejection::Unsigned, Rejection::BadSignature, Rejection::Malformed, Rejection::Oversized];

    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Unsigned => "unsigned",
            Rejection::BadSignature => "bad_signature",
            Rejection::Malformed => "malformed",
            Rejection::Oversized => "oversized",
        }
    }
}

/// One event, or a heartbeat, as published by a replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// The publishing replica's id: it skips its own messages (it delivered them locally).
    pub origin: String,
    /// Random per publishing process: a new epoch under the same origin is a restart.
    pub epoch: u64,
    /// This event's number in its publisher's epoch; a heartbeat's is the last number used.
    pub seq: u64,
    /// Publish time on the origin, microseconds since the Unix epoch (for the lag metric).
    pub ts: u64,
    /// `None`: a heartbeat.
    pub event: Option<Event>,
    /// On a heartbeat: the publisher is shutting down cleanly, with everything published, so its
    /// silence from now on is no loss (a drain is not a crash).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bye: bool,
}

/// The HMAC key, ready to clone per message.
#[derive(Clone)]
pub struct Key(Hmac<Sha256>);

impl Key {
    pub fn new(secret: &[u8]) -> Key {
        Key(Hmac::new_from_slice(secret).expect("HMAC takes a key of any length"))
    }

    fn mac(&self, json: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(PREFIX);
        mac.update(json);
        mac
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(***)")
    }
}

pub fn encode(key: &Key, message: &Message) -> String {
    let json = serde_json::to_string(message).expect("an event always serializes");
    let signature = hex::encode(key.mac(json.as_bytes()).finalize().into_bytes());
    let mut text = String::with_capacity(PREFIX.len() + SIGNATURE_HEX + 1 + json.len());
    text.push_str("v2.");
    text.push_str(&signature);
    text.push('.');
    text.push_str(&json);
    text
}

pub fn decode(key: &Key, raw: &[u8]) -> Result<Message, Rejection> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(Rejection::Oversized);
    }
    let rest = raw.strip_prefix(PREFIX).ok_or(Rejection::Unsigned)?;
    if rest.len() <= SIGNATURE_HEX || rest[SIGNATURE_HEX] != b'.' {
        return Err(Rejection::Unsigned);
    }
    let (signature, json) = (&rest[..SIGNATURE_HEX], &rest[SIGNATURE_HEX + 1..]);
    let signature = hex::decode(signature).map_err(|_| Rejection::BadSignature)?;
    key.mac(json).verify_slice(&signature).map_err(|_| Rejection::BadSignature)?;
    let message: Message = serde_json::from_slice(json).map_err(|_| Rejection::Malformed)?;
    if valid(&message) {
        Ok(message)
    } else {
        Err(Rejection::Malformed)
    }
}

fn valid(message: &Message) -> bool {
    let origin = &message.origin;
    let origin_ok = !origin.is_empty()
        && origin.len() <= 64
        && origin.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    let event_ok = match &message.event {
        Some(Event::BalanceUpdated { balance, version, .. }) => *balance >= 0 && *version >= 0,
        Some(Event::InventoryUpdated { version, .. }) => version.is_none_or(|v| v >= 0),
        Some(Event::PaymentCredited { payment_id, amount, .. }) => {
            *amount > 0 && !payment_id.is_empty() && payment_id.chars().count() <= 128
        }
        Some(Event::CasesUpdated | Event::UserKicked { .. } | Event::UserBlocked { .. }) | None => true,
    };
    origin_ok && event_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;

    fn key() -> Key {
        Key::new(b"0123456789abcdef0123456789abcdef")
    }

    fn balance() -> Message {
        Message {
            origin: "replica-1".into(),
            epoch: u64::MAX - 1,
            seq: 42,
            ts: 1_700_000_000_000_000,
            event: Some(Event::BalanceUpdated { user_id: Uuid::new_v4(), balance: 1250, version: 3 }),
            bye: false,
        }
    }

    /// Signs `json` as a replica with `key` would, to craft messages the encoder never makes.
    fn signed(key: &Key, json: &str) -> Vec<u8> {
        let signature = hex::encode(key.mac(json.as_bytes()).finalize().into_bytes());
        format!("v2.{signature}.{json}").into_bytes()
    }

    #[test]
    fn a_signed_message_round_trips() {
        for event in [
            Event::CasesUpdated,
            Event::inventory(Uuid::new_v4(), 7),
            Event::InventoryUpdated { user_id: Uuid::new_v4(), version: None },
            balance().event.unwrap(),
            Event::UserKicked { user_id: Uuid::new_v4() },
            Event::UserBlocked { user_id: Uuid::new_v4(), blocked: true },
            Event::PaymentCredited { user_id: Uuid::new_v4(), payment_id: "p-1".into(), amount: 1250, at: Utc::now() },
        ]
        .map(Some)
        .into_iter()
        .chain([None])
        {
            let message = Message { event, ..balance() };
            let text = encode(&key(), &message);
            assert!(text.len() < 400, "{text}");
            assert!(!text.contains("bye"), "only a goodbye says bye: {text}");
            assert_eq!(decode(&key(), text.as_bytes()), Ok(message));
        }
        let bye = Message { event: None, bye: true, ..balance() };
        assert_eq!(decode(&key(), encode(&key(), &bye).as_bytes()), Ok(bye));
    }

    /// A signed payment that no credit could have made (nothing, or over the 128 characters a
    /// payment id may have) is malformed: it never reaches a console.
    #[test]
    fn impossible_payments_are_malformed() {
        let user = Uuid::new_v4();
        for (payment_id, amount) in
            [("p".to_string(), 0), ("p".to_string(), -5), (String::new(), 100), ("p".repeat(129), 100)]
        {
            let message = Message {
                event: Some(Event::PaymentCredited { user_id: user, payment_id, amount, at: Utc::now() }),
                ..balance()
            };
            assert_eq!(decode(&key(), encode(&key(), &message).as_bytes()), Err(Rejection::Malformed));
        }
    }

    #[test]
    fn unsigned_messages_are_rejected() {
        let v1 = r#"{"v":1,"origin":"x","ts":0,"kind":"balance_updated","name":"balance:updated:1","room":null,"payload":{"balance":999999,"version":999999999}}"#;
        for raw in [v1, "", "v2.", "v2.abc", "hello", &format!("v2.{}", "0".repeat(64))] {
            assert_eq!(decode(&key(), raw.as_bytes()), Err(Rejection::Unsigned), "{raw:?}");
        }
    }

    #[test]
    fn a_wrong_key_or_a_changed_byte_is_a_bad_signature() {
        let text = encode(&key(), &balance());
        assert_eq!(
            decode(&Key::new(b"another-secret-another-secret-12"), text.as_bytes()),
            Err(Rejection::BadSignature)
        );
        let tampered = text.replace("1250", "9999");
        assert_eq!(decode(&key(), tampered.as_bytes()), Err(Rejection::BadSignature));
        let not_hex = format!("v2.{}.{}", "z".repeat(64), &text[68..]);
        assert_eq!(decode(&key(), not_hex.as_bytes()), Err(Rejection::BadSignature));
        let truncated = &text.as_bytes()[..text.len() - 1];
        assert_eq!(decode(&key(), truncated), Err(Rejection::BadSignature));
    }

    #[test]
    fn oversized_messages_are_rejected_before_anything_else() {
        let big = format!(
            r#"{{"origin":"r","epoch":1,"seq":1,"ts":0,"event":{{"type":"cases_updated"}},"pad":"{}"}}"#,
            "x".repeat(5000)
        );
        assert_eq!(decode(&key(), &signed(&key(), &big)), Err(Rejection::Oversized));
    }

    #[test]
    fn signed_but_invalid_envelopes_are_malformed() {
        let id = Uuid::new_v4();
        for json in [
            "not json",
            r#"{"origin":"r","epoch":1,"seq":1,"ts":0,"event":{"type":"wallet_drained"}}"#,
            r#"{"origin":"r","epoch":1,"seq":1,"ts":0,"event":{"type":"inventory_updated","user_id":"user:1"}}"#,
            &format!(
                r#"{{"origin":"r","epoch":1,"seq":1,"ts":0,"event":{{"type":"balance_updated","user_id":"{id}","balance":-1,"version":1}}}}"#
            ),
            &format!(
                r#"{{"origin":"r","epoch":1,"seq":1,"ts":0,"event":{{"type":"balance_updated","user_id":"{id}","balance":"1","version":1}}}}"#
            ),
            r#"{"origin":"r","epoch":1,"seq":1,"ts":0,"event":{"type":"cases_updated"},"room":"user:x"}"#,
            r#"{"origin":"a b","epoch":1,"seq":1,"ts":0,"event":{"type":"cases_updated"}}"#,
            r#"{"origin":"","epoch":1,"seq":1,"ts":0,"event":{"type":"cases_updated"}}"#,
            r#"{"origin":"r","epoch":1,"seq":1,"ts":0,"event":{"type":"user_kicked","user_id":"user:1"}}"#,
            r#"{"origin":"r","epoch":1,"seq":1,"ts":0,"event":{"type":"user_kicked"}}"#,
            // From a replica older than sequence numbers: refused, so run one version at a time.
            r#"{"origin":"r","ts":0,"event":{"type":"cases_updated"}}"#,
            &format!(
                r#"{{"origin":"r","epoch":1,"seq":1,"ts":0,"event":{{"type":"user_blocked","user_id":"{id}","blocked":"yes"}}}}"#
            ),
            &format!(r#"{{"origin":"r","epoch":1,"seq":1,"ts":0,"event":{{"type":"user_blocked","user_id":"{id}"}}}}"#),
        ] {
            assert_eq!(decode(&key(), &signed(&key(), json)), Err(Rejection::Malformed), "{json}");
        }
    }
}
