//! Which conversation a message belongs to: the one id the store, the workers and the UI share.

use std::fmt;

use chrono::{DateTime, Utc};
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

    /// A private conversation with the occupant `nick` of `room`; `None`
    /// for a nickname that cannot be an address's resource.
    pub fn private_with(account: BareJid, room: &BareJid, nick: &str) -> Option<Self> {
        let resource = jid::ResourcePart::new(nick).ok()?;
        Some(Self::private(account, room.with_resource(&resource)))
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

/// A message of a conversation, as workers report it and the store gives it
/// back: stored already, so every field is what the history holds. Not the
/// store's record (the disk's format can change without this) nor what the UI
/// draws (see `screen::conversation::Entry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub conversation: Id,
    /// The id copies of it are known by; what state updates and retries name.
    pub id: String,
    pub direction: Direction,
    pub body: String,
    pub time: DateTime<Utc>,
    pub state: Delivery,
    /// Why sending failed.
    pub error: Option<String>,
    /// Where it is in the archive: older history is fetched from before it.
    pub archive_id: Option<String>,
    /// Sent or received by another of the user's devices.
    pub other_device: bool,
    /// Who wrote it, in a room: their nickname (`None` in a chat, where the
    /// direction says it).
    pub sender: Option<String>,
    /// The body is the link to a shared file.
    pub attachment: bool,
    /// Came end-to-end encrypted in a way Tern cannot read: the body is the
    /// sender's fallback text.
    pub encryption: Option<Encryption>,
}

/// Whether a message came in or went out.
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
}

/// Whether `body` names `nick` (a room message mentioning the user): the
/// nickname as a word of its own, whatever its case, so that "ann" is not
/// found in "banner" and "Ann," is.
pub fn mentions(body: &str, nick: &str) -> bool {
    let nick = nick.trim();
    if nick.is_empty() {
        return false;
    }
    let (body, nick) = (body.to_lowercase(), nick.to_lowercase());
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    body.match_indices(&nick).any(|(at, found)| {
        !is_word(body[..at].chars().next_back())
            && !is_word(body[at + found.len()..].chars().next())
    })
}

#[cfg(test)]
mod mention_tests {
    use super::mentions;

    #[test]
    fn a_mention_is_the_nickname_as_a_word() {
        assert!(mentions("Ann, are you there?", "ann"));
        assert!(mentions("ping @Ann", "Ann"));
        assert!(mentions(
            "thanks alice in wonderland!",
            "Alice in Wonderland"
        ));
        assert!(mentions("ÉLODIE: lunch?", "élodie"));
        assert!(!mentions("a banner", "ann"));
        assert!(!mentions("annotation", "ann"));
        assert!(!mentions("anything", ""));
        assert!(mentions("ann ann_2", "ann_2"));
    }
}
