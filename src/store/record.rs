//! The records stored in the history, and their encoding (JSON, versioned by the layout).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

/// Where a message stands on its way to the peer.
///
/// Outgoing: `Pending` (stored, not yet acknowledged by our server) → `Sent`
/// (XEP-0198 ack) → `Delivered` (XEP-0184 receipt), or `Failed` (error reply).
/// Incoming and other-device messages are `Received`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    Pending,
    #[default]
    Sent,
    Delivered,
    Failed,
    Received,
}

impl Delivery {
    /// Whether a message in state `self` may move to `next` (states never go backwards,
    /// except a failed message retried by the user).
    pub fn may_become(self, next: Delivery) -> bool {
        use Delivery::*;
        match (self, next) {
            (a, b) if a == b => false,
            (Received, _) | (_, Received) => false,
            (Delivered, _) => false,
            (_, Delivered) => true,
            (Pending, Sent | Failed) => true,
            (Sent, Failed) => true,
            (Failed, Pending | Sent) => true,
            _ => false,
        }
    }
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub account: String,
    pub peer: String,
    pub direction: Direction,
    /// The stanza's origin-id (XEP-0359) or id; generated for messages that had none.
    pub id: String,
    pub body: String,
    pub time: DateTime<Utc>,
    /// Added in layout 2; layout-1 records are migrated on open.
    #[serde(default)]
    pub state: Delivery,
    /// Why sending failed (an error reply's condition and text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The id our server's archive gave the message (XEP-0359 stanza-id, XEP-0313).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_id: Option<String>,
    /// Sent or received by another of the user's devices (XEP-0280 carbons, MAM).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub other_device: bool,
    /// The body is the link to a shared file (XEP-0363), sent with the same
    /// link as XEP-0066 out-of-band data so that clients show it inline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attachment: bool,
    /// The message came end-to-end encrypted in a way Tern cannot read yet;
    /// `body` is the sender's fallback text for such clients. Added within
    /// layout 2 (older builds ignore it and show the fallback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
}

/// End-to-end encryption a message used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encryption {
    /// OMEMO as Conversations, Gajim and Dino use it (`eu.siacs.conversations.axolotl`).
    Omemo,
    /// OMEMO 0.8+ (`urn:xmpp:omemo:2`).
    Omemo2,
    /// OpenPGP for XMPP (XEP-0373).
    Openpgp,
    /// Legacy OpenPGP (XEP-0027).
    LegacyPgp,
    /// A name written by a newer Tern.
    #[serde(other)]
    Other,
}

/// What the conversation list shows of one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conversation {
    pub peer: String,
    pub last_time: Option<DateTime<Utc>>,
    pub last_body: String,
    pub last_direction: Option<Direction>,
    pub unread: u32,
    /// The last message is one Tern cannot read (see [`Record::encryption`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub last_encrypted: bool,
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain strings and a timestamp cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(raw: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(raw)
    }
}

impl Conversation {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(raw: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records written by layout 1 must keep decoding in every later build.
    #[test]
    fn layout_1_fixtures_decode() {
        let record = Record::decode(include_bytes!("../../tests/fixtures/record-v1.json")).unwrap();
        assert_eq!(record.account, "alice@example.org");
        assert_eq!(record.peer, "bob@example.org");
        assert_eq!(record.direction, Direction::In);
        assert_eq!(record.body, "hello, 世界\nsecond line");
        assert_eq!(record.time.to_rfc3339(), "2026-11-22T01:02:03.456789+00:00");
        assert_eq!(record.archive_id, None);
        assert_eq!(Record::decode(&record.encode()).unwrap(), record);

        let conv =
            Conversation::decode(include_bytes!("../../tests/fixtures/conversation-v1.json"))
                .unwrap();
        assert_eq!(conv.peer, "bob@example.org");
        assert_eq!(conv.unread, 3);
        assert_eq!(conv.last_direction, Some(Direction::Out));
    }

    #[test]
    fn layout_2_fixture_decodes() {
        let record = Record::decode(include_bytes!("../../tests/fixtures/record-v2.json")).unwrap();
        assert_eq!(record.state, Delivery::Failed);
        assert_eq!(record.error.as_deref(), Some("service-unavailable"));
        assert_eq!(record.archive_id.as_deref(), Some("5fa1c"));
        assert!(record.other_device);
        assert_eq!(Record::decode(&record.encode()).unwrap(), record);
    }

    /// Encrypted messages (added within layout 2), and a record a newer Tern
    /// wrote: an encryption it knows and we do not, a field we do not know.
    #[test]
    fn encrypted_records_decode_and_newer_ones_too() {
        let record = Record::decode(include_bytes!(
            "../../tests/fixtures/record-v2-encrypted.json"
        ))
        .unwrap();
        assert_eq!(record.encryption, Some(Encryption::Omemo));
        assert!(record.body.contains("OMEMO"), "the fallback is kept");
        assert_eq!(Record::decode(&record.encode()).unwrap(), record);
        let newer = Record::decode(include_bytes!(
            "../../tests/fixtures/record-from-a-newer-tern.json"
        ))
        .unwrap();
        assert_eq!(newer.encryption, Some(Encryption::Other));
        // Older records have none, and write none.
        let old = Record::decode(include_bytes!("../../tests/fixtures/record-v2.json")).unwrap();
        assert_eq!(old.encryption, None);
        assert!(
            !String::from_utf8(old.encode())
                .unwrap()
                .contains("encryption")
        );
    }

    #[test]
    fn delivery_never_goes_backwards() {
        use Delivery::*;
        assert!(Pending.may_become(Sent));
        assert!(Sent.may_become(Delivered));
        assert!(Pending.may_become(Delivered), "a receipt can beat the ack");
        assert!(!Delivered.may_become(Sent));
        assert!(!Delivered.may_become(Failed));
        assert!(!Sent.may_become(Pending));
        assert!(Failed.may_become(Pending), "retry");
        assert!(!Received.may_become(Delivered));
        assert!(!Sent.may_become(Sent));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Record::decode(b"\xff\x00garbage").is_err());
        assert!(Record::decode(b"{}").is_err());
    }
}
