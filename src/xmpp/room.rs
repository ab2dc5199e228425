//! Group chats (XEP-0045) as the rest of Tern knows them: what a worker
//! reports of the rooms it is in, in Tern's own types (no protocol types
//! reach the UI).

use super::{Availability, BareJid};

/// What changed in one room the account is in (or tried to join).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// In the room as `nick` (which the service may have changed from the
    /// one asked for); the occupants came before this.
    Joined { nick: String },
    /// The join was refused: the room is not joined.
    JoinFailed(JoinError),
    /// Someone is in the room, or changed (presence, role, affiliation).
    Occupant(Occupant),
    /// Someone left; `new_nick` when it was a change of nickname, `why`
    /// when they did not leave of their own accord (kicked, banned…;
    /// otherwise [`LeftReason::Unexplained`]).
    OccupantLeft {
        nick: String,
        new_nick: Option<String>,
        why: LeftReason,
    },
    /// The room's subject (empty: none), and who set it if known.
    Subject { subject: String, by: Option<String> },
    /// The account is no longer in the room.
    Left(LeftReason),
    /// Someone in the roster invites us into the room (XEP-0249 directly, or
    /// through the room: `mediated`, which can be declined to the inviter).
    Invited {
        by: BareJid,
        reason: Option<String>,
        password: Option<String>,
        mediated: bool,
    },
    /// The room refused what we asked of it (see [`RoomRequest`]), and why.
    Refused(String),
    /// The room forgot us without a word (its service restarted, say: found
    /// by asking, XEP-0410); we join it again, and what was said meanwhile
    /// comes from its archive.
    Rejoining,
    /// The room's configuration, as asked with [`RoomRequest::Settings`].
    Settings(RoomSettings),
    /// The room took the configuration sent.
    Configured,
    /// What the room says of itself (its name, whether it is for members
    /// only…), asked once joined.
    Info(Listing),
}

/// Someone in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occupant {
    pub nick: String,
    /// Their address, when the room lets us see it.
    pub jid: Option<BareJid>,
    pub role: Role,
    pub affiliation: Affiliation,
    pub availability: Availability,
    /// Who they are across nickname changes (XEP-0421), when the room says.
    pub occupant_id: Option<String>,
    /// This is the account itself.
    pub is_self: bool,
}

/// What an occupant may do now (XEP-0045 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Moderator,
    Participant,
    Visitor,
    None,
}

/// What an occupant is to the room, lastingly (XEP-0045 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Affiliation {
    Owner,
    Admin,
    Member,
    Outcast,
    None,
}

/// Why a room could not be joined, in terms the user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("the nickname is taken in this room")]
    NicknameInUse,
    #[error("the nickname is not allowed")]
    InvalidNickname,
    #[error("the room needs a password, or the password is wrong")]
    Password,
    #[error("the room is for its members only")]
    MembersOnly,
    #[error("you are banned from this room")]
    Banned,
    #[error("the room does not exist")]
    NotFound,
    #[error("a room with this address exists already")]
    Exists,
    /// Destroyed by its owner (the reason they gave, if any).
    #[error("the room was destroyed")]
    Gone(Option<String>),
    #[error("the room is full")]
    Full,
    #[error("the room's service cannot be reached: {0}")]
    Unreachable(String),
    #[error("not connected")]
    Offline,
    #[error("the room refused: {0}")]
    Other(String),
}

/// Why the account is no longer in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftReason {
    /// The user left.
    Requested,
    /// A moderator removed us (for now), with their reason.
    Kicked(Option<String>),
    /// Banned, with the reason.
    Banned(Option<String>),
    /// Removed when the room became members-only, or our membership was revoked.
    NoLongerMember,
    /// The service is shutting down, or had a technical problem.
    Shutdown,
    /// The room said we left without saying why.
    Unexplained,
    /// The room was destroyed by its owner, with their reason and the room
    /// that replaces it, if any.
    Destroyed {
        reason: Option<String>,
        alternate: Option<BareJid>,
    },
}

/// What the user asks of a room they are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomRequest {
    /// A new role for an occupant: `Role::None` removes them (a kick),
    /// `Role::Visitor` takes their voice, `Role::Participant` gives it.
    Role {
        nick: String,
        role: Role,
        reason: Option<String>,
    },
    /// A lasting standing for an account: `Affiliation::Outcast` bans it.
    Affiliation {
        jid: BareJid,
        affiliation: Affiliation,
        reason: Option<String>,
    },
    /// The room's subject (empty: none).
    Subject(String),
    /// Our nickname in the room.
    Nick(String),
    /// Invites someone into the room (XEP-0249).
    Invite {
        jid: BareJid,
        reason: Option<String>,
    },
    /// The room's configuration, for its owner to change: answered with
    /// [`RoomEvent::Settings`].
    Settings,
    /// Changes the room's configuration (owners); answered with
    /// [`RoomEvent::Configured`].
    Configure(RoomSettings),
    /// Destroys the room (owners): everyone in it is told, with the reason.
    Destroy { reason: Option<String> },
}

/// A room's configuration as the user sees it (XEP-0045 §10.2). Each is
/// `None` when the room's form does not offer it (read from a room), or
/// when it is to be left as the room has it (sent to a room).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomSettings {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Only members may enter.
    pub members_only: Option<bool>,
    /// The room stays when the last occupant leaves.
    pub persistent: Option<bool>,
    /// Listed in the service's directory.
    pub public: Option<bool>,
    /// Only occupants with a voice may speak.
    pub moderated: Option<bool>,
    /// Every occupant sees the others' real addresses (else moderators only).
    pub addresses_visible: Option<bool>,
    /// Occupants may invite others.
    pub invites: Option<bool>,
    /// The password to enter: `Some("")` is none.
    pub password: Option<String>,
}

impl RoomSettings {
    /// A private group: invited members only, who see each other's addresses
    /// (as end-to-end encryption between them needs).
    pub fn private_group(name: &str) -> Self {
        Self {
            name: Some(name.to_string()),
            description: None,
            members_only: Some(true),
            persistent: Some(true),
            public: Some(false),
            moderated: Some(false),
            addresses_visible: Some(true),
            invites: Some(true),
            password: Some(String::new()),
        }
    }

    /// A public channel: listed, open to anyone, addresses kept from all
    /// but moderators.
    pub fn public_channel(name: &str) -> Self {
        Self {
            name: Some(name.to_string()),
            description: None,
            members_only: Some(false),
            persistent: Some(true),
            public: Some(true),
            moderated: Some(false),
            addresses_visible: Some(false),
            invites: Some(true),
            password: Some(String::new()),
        }
    }
}

/// A room as a service's directory shows it (XEP-0045 §6.3, §6.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub room: BareJid,
    pub name: Option<String>,
    pub description: Option<String>,
    pub occupants: Option<u32>,
    /// Asks for a password to enter.
    pub password: bool,
    /// For members only.
    pub members_only: bool,
}

/// What the account's worker found of its server's rooms.
#[derive(Debug, Clone, PartialEq)]
pub enum Directory {
    /// The server's room service, found when signing in (`None`: it has none).
    Service(Option<BareJid>),
    /// The rooms a service lists, by address and name; the rest of each
    /// follows as [`Directory::Listing`].
    Rooms {
        service: BareJid,
        rooms: Result<Vec<Listing>, String>,
    },
    /// One listed room's details.
    Listing(Listing),
}
