//! Which conversation a message belongs to: the one id the store, the workers and the UI share.

use std::fmt;

use jid::{BareJid, FullJid, Jid};
use serde::{Deserialize, Serialize};

/// The kinds of conversation XMPP has.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One to one with a contact (or a stranger), by bare JID.
    #[default]
    Chat,
    /// A group chat (XEP-0045), by the room's bare JID.
    Room,
    /// A private message with one occupant of a room, by `room@service/nick`:
    /// the nickname is all that names them.
    Private,
}

/// One conversation of one account.
///
/// The peer is a bare JID for chats and rooms and a full JID (room/nick) for
/// private messages, which the constructors enforce; the kind is kept beside
/// it because a bare JID alone does not say whether it is a person or a room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    account: BareJid,
    kind: Kind,
    peer: Jid,
}

impl Id {
    pub fn chat(account: BareJid, peer: BareJid) -> Self {
        Self {
            account,
            kind: Kind::Chat,
            peer: peer.into(),
        }
    }

    pub fn room(account: BareJid, room: BareJid) -> Self {
        Self {
            account,
            kind: Kind::Room,
            peer: room.into(),
        }
    }

    pub fn private(account: BareJid, occupant: FullJid) -> Self {
        Self {
            account,
            kind: Kind::Private,
            peer: occupant.into(),
        }
    }

    /// The id named by stored strings; `None` when they do not make one (a
    /// damaged record, or a full JID where a bare one belongs).
    pub fn parse(account: &str, kind: Kind, peer: &str) -> Option<Self> {
        let account = BareJid::new(account).ok()?;
        Some(match kind {
            Kind::Chat => Self::chat(account, BareJid::new(peer).ok()?),
            Kind::Room => Self::room(account, BareJid::new(peer).ok()?),
            Kind::Private => Self::private(account, FullJid::new(peer).ok()?),
        })
    }

    /// A chat named by strings (tests, the command line).
    pub fn chat_of(account: &str, peer: &str) -> Option<Self> {
        Self::parse(account, Kind::Chat, peer)
    }

    pub fn account(&self) -> &BareJid {
        &self.account
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whom messages go to: the contact, the room, or the occupant.
    pub fn peer(&self) -> &Jid {
        &self.peer
    }

    /// The contact's or the room's bare JID (for a private message, the room's).
    pub fn bare(&self) -> BareJid {
        self.peer.to_bare()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {} ({:?})", self.account, self.peer, self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_stored_strings_and_refuse_mixed_kinds() {
        let account: BareJid = "alice@example.org".parse().unwrap();
        let pm = Id::private(
            account.clone(),
            "den@rooms.example.org/Bob".parse().unwrap(),
        );
        assert_eq!(
            Id::parse("alice@example.org", Kind::Private, &pm.peer().to_string()),
            Some(pm.clone())
        );
        assert_eq!(pm.bare().as_str(), "den@rooms.example.org");
        let chat = Id::chat(account.clone(), "bob@example.org".parse().unwrap());
        assert_eq!(
            Id::parse("alice@example.org", Kind::Chat, "bob@example.org"),
            Some(chat.clone())
        );
        // The same JID as a room is another conversation.
        let room = Id::parse("alice@example.org", Kind::Room, "bob@example.org").unwrap();
        assert_ne!(room, chat);
        assert_eq!(
            Id::parse("alice@example.org", Kind::Chat, "den@x/Bob"),
            None
        );
        assert_eq!(Id::parse("alice@example.org", Kind::Private, "den@x"), None);
        assert_eq!(
            Id::parse("not a jid@@", Kind::Chat, "bob@example.org"),
            None
        );
    }
}
