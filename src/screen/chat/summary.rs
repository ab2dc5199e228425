//! What the conversation list shows of one conversation: the UI's own type,
//! made from the store's once, off the UI thread, so that the disk's layout
//! never reaches the list and drawing a row parses nothing.

use chrono::{DateTime, Utc};

use crate::conversation::{self as talk, Direction};
use crate::store;
use crate::xmpp::BareJid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub id: talk::Id,
    /// The contact's or room's bare JID, which the roster is asked about.
    pub bare: BareJid,
    pub last_time: Option<DateTime<Utc>>,
    /// The first line of the last message (see `preview_line`).
    pub last_body: String,
    pub last_direction: Option<Direction>,
    /// The last message is one Tern cannot read.
    pub last_encrypted: bool,
    pub unread: u32,
}

impl Summary {
    /// A conversation with nothing in it yet (a draft, a chat just opened).
    pub fn empty(id: &talk::Id) -> Self {
        Self {
            id: id.clone(),
            bare: id.bare(),
            last_time: None,
            last_body: String::new(),
            last_direction: None,
            last_encrypted: false,
            unread: 0,
        }
    }

    /// The store's entry; `None` for a damaged one that names no conversation.
    pub fn from_stored(stored: store::Conversation) -> Option<Self> {
        let id = stored.id()?;
        Some(Self {
            bare: id.bare(),
            id,
            last_time: stored.last_time,
            last_body: stored.last_body,
            last_direction: stored.last_direction,
            last_encrypted: stored.last_encrypted,
            unread: stored.unread,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Kind;

    #[test]
    fn a_stored_entry_becomes_a_summary_and_a_damaged_one_is_left_out() {
        let stored = store::Conversation {
            account: "me@example.org".into(),
            peer: "bob@example.org".into(),
            kind: Kind::Chat,
            last_time: DateTime::from_timestamp(1_700_000_000, 0),
            last_body: "see you".into(),
            last_direction: Some(Direction::Out),
            unread: 2,
            last_encrypted: false,
        };
        let summary = Summary::from_stored(stored.clone()).unwrap();
        assert_eq!(
            summary.id,
            talk::Id::chat_of("me@example.org", "bob@example.org").unwrap()
        );
        assert_eq!(summary.bare.as_str(), "bob@example.org");
        assert_eq!((summary.last_body.as_str(), summary.unread), ("see you", 2));
        let damaged = store::Conversation {
            peer: "not a jid@@".into(),
            ..stored
        };
        assert_eq!(Summary::from_stored(damaged), None);
    }
}
