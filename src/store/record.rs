//! The records stored in the history, and their encoding (JSON, versioned by the layout).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub account: String,
    pub peer: String,
    pub direction: Direction,
    /// The stanza's id (or origin-id); generated for messages that had none.
    pub id: String,
    pub body: String,
    pub time: DateTime<Utc>,
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
        assert_eq!(Record::decode(&record.encode()).unwrap(), record);

        let conv =
            Conversation::decode(include_bytes!("../../tests/fixtures/conversation-v1.json"))
                .unwrap();
        assert_eq!(conv.peer, "bob@example.org");
        assert_eq!(conv.unread, 3);
        assert_eq!(conv.last_direction, Some(Direction::Out));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Record::decode(b"\xff\x00garbage").is_err());
        assert!(Record::decode(b"{}").is_err());
    }
}
