//! The records stored in the history, and their encoding (JSON, versioned by the layout).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::conversation::{self, Kind};
pub use crate::conversation::{Delivery, Direction, Encryption};

/// One stored message (layout 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub account: String,
    pub peer: String,
    /// Added in layout 3; everything before it was a chat.
    #[serde(default)]
    pub kind: Kind,
    pub direction: Direction,
    /// Who wrote it. Added in layout 3 (migrated records name the peer or the account).
    #[serde(default)]
    pub sender: Sender,
    /// The id copies of the message are known by: its origin-id (XEP-0359),
    /// else its stanza id; generated for messages that had neither.
    pub id: String,
    /// The stanza's `id` attribute, as sent (what corrections and receipts
    /// in chats refer to). Added in layout 3; unknown for older incoming records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stanza_id: Option<String>,
    /// The sender's XEP-0359 origin-id (what a room's reflection of our own
    /// message is matched by). Added in layout 3, like `stanza_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_id: Option<String>,
    pub body: String,
    pub time: DateTime<Utc>,
    /// Added in layout 2; layout-1 records are migrated on open.
    #[serde(default)]
    pub state: Delivery,
    /// Why sending failed (an error reply's condition and text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The id the archive that holds the message gave it (XEP-0359 stanza-id,
    /// XEP-0313): our server's for chats, the room's for rooms.
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
    /// The earlier message this one changes or answers. Added in layout 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
}

/// Who wrote a message. In a chat, a bare JID (the contact's, or the
/// account's for what the user sent); in a room, a nickname, with the
/// occupant id (XEP-0421) that survives nickname changes and the real JID
/// where the room shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Sender {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occupant_id: Option<String>,
}

impl Sender {
    pub fn jid(jid: &str) -> Self {
        Self {
            jid: Some(jid.to_string()),
            ..Self::default()
        }
    }
}

/// How a message relates to an earlier one of the same conversation, named by
/// the id the protocol uses for it (the stanza id in chats, the room's
/// archive id in rooms).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Relation {
    /// XEP-0308: replaces the text of `id`.
    Corrects { id: String },
    /// XEP-0424 / XEP-0425: withdraws `id`.
    Retracts { id: String },
    /// XEP-0444: the sender's reactions to `id` are now `emojis`.
    Reacts { id: String, emojis: Vec<String> },
    /// XEP-0461: answers `id`, written by `to` (a JID, or a nickname in a room).
    Replies {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// A relation a newer Tern knows.
    #[serde(other)]
    Other,
}

/// What the conversation list shows of one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conversation {
    /// Added in layout 3 (the key names the account, but entries were read alone).
    pub account: String,
    pub peer: String,
    /// Added in layout 3.
    pub kind: Kind,
    pub last_time: Option<DateTime<Utc>>,
    pub last_body: String,
    pub last_direction: Option<Direction>,
    pub unread: u32,
    /// The last message is one Tern cannot read (see [`Record::encryption`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub last_encrypted: bool,
}

impl Record {
    /// The conversation it belongs to; `None` for a damaged record.
    pub fn conversation(&self) -> Option<conversation::Id> {
        conversation::Id::parse(&self.account, self.kind, &self.peer)
    }

    /// The message as the rest of Tern knows it; `None` for a damaged record.
    pub fn into_message(self) -> Option<conversation::Message> {
        Some(conversation::Message {
            conversation: self.conversation()?,
            id: self.id,
            direction: self.direction,
            body: self.body,
            time: self.time,
            state: self.state,
            error: self.error,
            archive_id: self.archive_id,
            other_device: self.other_device,
            sender: match self.kind {
                Kind::Chat => None,
                Kind::Room | Kind::Private => self.sender.nick,
            },
            attachment: self.attachment,
            encryption: self.encryption,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain strings and a timestamp cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(raw: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(raw)
    }
}

impl Conversation {
    pub fn id(&self) -> Option<conversation::Id> {
        conversation::Id::parse(&self.account, self.kind, &self.peer)
    }

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

    /// Layout 3: a room message from an occupant, correcting an earlier one;
    /// and a relation and sender field only a newer Tern knows.
    #[test]
    fn layout_3_fixtures_decode() {
        let record =
            Record::decode(include_bytes!("../../tests/fixtures/record-v3-room.json")).unwrap();
        assert_eq!(record.kind, Kind::Room);
        assert_eq!(record.sender.nick.as_deref(), Some("Bob"));
        assert_eq!(record.sender.occupant_id.as_deref(), Some("b0b+occ"));
        assert_eq!(record.sender.jid, None);
        assert_eq!(
            record.relation,
            Some(Relation::Corrects { id: "c1".into() })
        );
        assert_eq!(
            record.conversation().unwrap(),
            conversation::Id::room(
                "alice@example.org".parse().unwrap(),
                "den@rooms.example.org".parse().unwrap()
            )
        );
        assert_eq!(Record::decode(&record.encode()).unwrap(), record);
        let newer = Record::decode(include_bytes!(
            "../../tests/fixtures/record-v3-newer-relation.json"
        ))
        .unwrap();
        assert_eq!(newer.relation, Some(Relation::Other));
        assert_eq!(newer.sender, Sender::jid("bob@example.org"));
        // Layout 2's records read with the defaults the migration then fills in.
        let v2 = Record::decode(include_bytes!("../../tests/fixtures/record-v2.json")).unwrap();
        assert_eq!(
            (v2.kind, v2.relation, v2.sender),
            (Kind::Chat, None, Sender::default())
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Record::decode(b"\xff\x00garbage").is_err());
        assert!(Record::decode(b"{}").is_err());
    }
}
