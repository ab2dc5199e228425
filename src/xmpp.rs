//! The XMPP side of Tern: a worker per account that owns the connection.
//!
//! The UI talks to a worker only through [`Command`]s sent with a [`Handle`]
//! and [`Event`]s it receives; nothing here knows about iced.

pub mod connector;
mod features;
pub mod invitation;
mod login;
pub mod muc_admin;
pub mod muc_owner;
mod requests;
pub mod room;
mod room_config;
pub mod stanza_limit;
mod supervisor;
pub mod uri;
mod worker;

use std::fmt;
use std::time::Duration;

use tokio::sync::mpsc;

pub use tokio_xmpp::jid::{BareJid, Jid};
/// For the fuzz targets and their corpus replay; not an API.
#[doc(hidden)]
pub use worker::inbound::Inbound;
pub use worker::spawn;

use crate::conversation::Message;

/// How to reach and sign in to one account.
#[derive(Clone)]
pub struct Settings {
    pub jid: BareJid,
    pub password: Password,
    /// Host name or address; `None` means DNS SRV lookup of the JID's domain.
    pub host: Option<String>,
    pub port: Option<u16>,
    /// XEP-0368 direct TLS instead of STARTTLS.
    pub direct_tls: bool,
    /// The certificate roots TLS trusts.
    pub trust: connector::Trust,
    /// How much history a first sign-in fetches from the server's archive.
    pub catch_up: CatchUp,
    /// How quickly a dead link is noticed.
    pub liveness: Liveness,
    /// Whether a software version query (XEP-0092) is told the system's name.
    pub share_os: bool,
}

/// When a silent connection is declared dead.
///
/// After `probe_after` without a byte from the server, the stream asks it for
/// an acknowledgement (XEP-0198 `<r/>`, or a ping); without an answer within
/// `answer_within` the link is dead and the stream reconnects. The defaults
/// notice a dead link (a Wi-Fi change, a NAT that forgot us) within 45 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub probe_after: Duration,
    pub answer_within: Duration,
    /// A room silent this long is asked whether we are still in it
    /// (XEP-0410 self-ping): a room service that restarted, or dropped us,
    /// says nothing, and the room would stay silent for ever.
    pub room_silence: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            probe_after: Duration::from_secs(30),
            answer_within: Duration::from_secs(15),
            room_silence: Duration::from_secs(10 * 60),
        }
    }
}

/// The bounded window of history a first sign-in fetches (XEP-0313).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    pub days: u32,
    pub max_messages: usize,
}

impl Default for CatchUp {
    fn default() -> Self {
        Self {
            days: 30,
            max_messages: 1000,
        }
    }
}

pub use connector::Trust;

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("jid", &self.jid)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("direct_tls", &self.direct_tls)
            .finish_non_exhaustive()
    }
}

/// A password that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

/// What the UI asks a worker to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Sign in with (new) settings; the worker drops any current connection first.
    ///
    /// An interactive sign-in (the user pressed "Sign in") stops at the first
    /// failure and reports it; an automatic one (start-up) keeps retrying
    /// network failures, visibly. Both stop on failures only the user can fix.
    Connect {
        settings: Box<Settings>,
        interactive: bool,
    },
    /// Skip the wait before the next reconnection attempt.
    RetryNow,
    /// Go offline politely (unavailable presence, stream close).
    Disconnect,
    /// Writes a message to the outbox and sends it: to a contact, or to a
    /// room once joined.
    SendMessage {
        to: crate::conversation::Id,
        body: String,
    },
    SetPresence(OwnPresence),
    /// Adds (or renames) a contact and asks to see their presence.
    AddContact {
        jid: BareJid,
        name: Option<String>,
    },
    /// Answers someone's request to see our presence.
    AnswerSubscription {
        from: BareJid,
        accept: bool,
    },
    /// Sends a failed message again.
    Retry {
        conversation: crate::conversation::Id,
        id: String,
    },
    /// Fetches the page of a conversation's history that precedes `before`
    /// (the oldest message shown) from its archive (the account's for a chat,
    /// the room's own for a room); answered with [`Event::History`].
    FetchOlder {
        conversation: crate::conversation::Id,
        before: Option<Oldest>,
    },
    /// Sends the link to a file uploaded to a slot's `get` URL (stored in the
    /// outbox like any message; shown inline by other clients).
    ShareFile {
        to: crate::conversation::Id,
        url: String,
    },
    /// Joins a group chat as `nick` (XEP-0045), and again after every new
    /// session until [`Command::LeaveRoom`]; answered with [`Event::Room`].
    JoinRoom {
        room: BareJid,
        nick: String,
        password: Option<String>,
    },
    LeaveRoom {
        room: BareJid,
    },
    /// Asks something of a room we are in: a moderator's or admin's change,
    /// a new subject or nickname, an invitation for someone. What the room
    /// refuses comes back as [`room::RoomEvent::Refused`].
    RoomRequest {
        room: BareJid,
        request: room::RoomRequest,
    },
    /// Creates a room and joins it as its owner, set up with `settings`
    /// (XEP-0045 §10.1); answered as [`Command::JoinRoom`] is, with
    /// [`room::JoinError::Exists`] when the address is taken.
    CreateRoom {
        room: BareJid,
        nick: String,
        settings: room::RoomSettings,
    },
    /// Lists the rooms of a service (XEP-0045 §6.3); answered with
    /// [`Event::Directory`].
    BrowseRooms {
        service: BareJid,
    },
    /// Declines an invitation that came through the room, telling the inviter.
    DeclineInvitation {
        room: BareJid,
        inviter: BareJid,
    },
    /// Asks the server's file sharing service for a place to upload a file
    /// to (XEP-0363); answered with [`Event::Slot`] carrying the same `id`.
    RequestSlot {
        id: String,
        name: String,
        size: u64,
        content_type: String,
    },
}

/// The server's file sharing service (XEP-0363).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadService {
    pub jid: Jid,
    /// The largest file it takes, in bytes, if it says.
    pub max_size: Option<u64>,
}

/// Where and how to upload one file: what the upload service's slot says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub put: String,
    pub get: String,
    /// Headers the PUT must carry (XEP-0363 §5: Authorization, Cookie, Expires).
    pub headers: Vec<(String, String)>,
}

/// Why no upload slot was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("not connected")]
    Offline,
    #[error("the server offers no file sharing")]
    NoService,
    #[error("the file is larger than the server's limit of {max} bytes")]
    TooLarge { max: u64 },
    #[error("the server refused: {0}")]
    Refused(String),
}

/// The oldest message a conversation holds, where older history starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oldest {
    pub time: chrono::DateTime<chrono::Utc>,
    /// Its id in our archive, when known: the exact place to page back from.
    pub archive_id: Option<String>,
}

/// The user's own presence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnPresence {
    pub availability: Availability,
    pub status: String,
}

/// Presence as people understand it (RFC 6121 `show`, plus offline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Availability {
    Chat,
    #[default]
    Available,
    Away,
    ExtendedAway,
    DoNotDisturb,
    Offline,
}

/// What a worker reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// The first event: how to send commands to this worker.
    Ready(Handle),
    Connection(ConnectionState),
    /// The full roster after sign-in.
    Roster(Vec<Contact>),
    /// One roster item changed (added, renamed, regrouped, removed).
    RosterPush(Contact),
    /// A contact's resource changed presence.
    Presence {
        from: Jid,
        availability: Availability,
        status: Option<String>,
    },
    /// Messages already written to the history, in arrival order.
    Messages(Vec<Message>),
    /// History a first sign-in fetched from the archive, oldest first: shown
    /// in the conversations but not news (nothing unread).
    Backfill(Vec<Message>),
    /// A stored message changed (delivery state, archive id).
    Updated(Box<Message>),
    /// Older history of a conversation fetched from its archive and stored
    /// (see [`Command::FetchOlder`]); `more` unless the archive holds nothing
    /// older. Empty with `more` when it could not be fetched (offline, refused).
    History {
        conversation: crate::conversation::Id,
        records: Vec<Message>,
        more: bool,
    },
    /// Someone asks to see our presence (RFC 6121 §3.1).
    SubscriptionRequest(BareJid),
    /// What file sharing the server offers; after every new session.
    UploadService(Option<UploadService>),
    /// The answer to [`Command::RequestSlot`].
    Slot {
        id: String,
        result: Result<Slot, SlotError>,
    },
    /// Something happened in a room the account is in, or tried to join.
    Room {
        room: BareJid,
        event: room::RoomEvent,
    },
    /// What was found of the server's rooms: its room service, a directory.
    Directory(room::Directory),
    /// The worker stopped on a bug. `restarting`: a new one has taken its
    /// place and waits for [`Command::Connect`]; otherwise the account stays
    /// offline (it crashed too often).
    Crashed {
        restarting: bool,
    },
}

/// A roster item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub jid: BareJid,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub subscription: Subscription,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    None,
    To,
    From,
    Both,
    /// The item was removed from the roster.
    Removed,
}

/// The connection as the user should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    Online {
        jid: Jid,
        /// `true` when XEP-0198 resumed the previous session (nothing was lost).
        resumed: bool,
    },
    /// Lost the connection; trying again after `retry_in`.
    Retrying {
        reason: Failure,
        retry_in: Duration,
    },
    /// Stopped: needs the user (wrong password, untrusted certificate…) or was asked to.
    Offline(Option<Failure>),
}

/// Why a connection attempt failed, in terms the user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The server refused the sign-in (RFC 6120 §6.5), with its own words
    /// when it gave some.
    #[error("the server refused the sign-in: {condition:?}")]
    Refused {
        condition: SaslCondition,
        text: Option<String>,
    },
    /// The server let us in without proving that it knows the password
    /// (SCRAM's server signature was missing or wrong): not the account's server.
    #[error("the server could not prove that it knows the password")]
    ServerUnproven,
    #[error("the server offers no sign-in method Tern accepts")]
    NoMechanism,
    #[error("server not found: {0}")]
    UnknownHost(String),
    #[error("server unreachable: {0}")]
    Unreachable(String),
    #[error("timed out")]
    Timeout,
    #[error("the server's certificate is not trusted: {0}")]
    Certificate(String),
    #[error("the server does not offer TLS")]
    NoTls,
    #[error("the connection was lost: {0}")]
    Lost(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl Failure {
    /// Failures that retrying cannot fix: the user must change something.
    pub fn needs_user(&self) -> bool {
        matches!(
            self,
            Self::NoMechanism | Self::Certificate(_) | Self::NoTls | Self::ServerUnproven
        ) || matches!(self, Self::Refused { condition, .. } if *condition != SaslCondition::Temporary)
    }

    /// The server said the password (or address) is wrong: the only refusal
    /// after which the user is asked for the password again.
    pub fn is_wrong_password(&self) -> bool {
        matches!(
            self,
            Self::Refused {
                condition: SaslCondition::NotAuthorized,
                ..
            }
        )
    }
}

/// Why a server refused a sign-in, in the terms of RFC 6120 §6.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslCondition {
    /// Wrong address or password.
    NotAuthorized,
    AccountDisabled,
    CredentialsExpired,
    /// The server cannot check now: worth trying again later.
    Temporary,
    /// Any other condition, by its name (the method or request was refused).
    Method(String),
}

/// Sends commands to one worker.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Command>,
    /// Whose worker it is: the chats its shortcuts name are this account's.
    account: BareJid,
}

impl Handle {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Command>, account: BareJid) -> Self {
        Self { tx, account }
    }

    fn chat(&self, peer: BareJid) -> crate::conversation::Id {
        crate::conversation::Id::chat(self.account.clone(), peer)
    }

    /// Queues a command; `false` when the worker has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.tx.send(command).is_ok()
    }

    pub fn connect(&self, settings: Settings, interactive: bool) -> bool {
        self.send(Command::Connect {
            settings: Box::new(settings),
            interactive,
        })
    }

    /// Sends `body` to a contact.
    pub fn send_message(&self, to: BareJid, body: String) -> bool {
        self.send(Command::SendMessage {
            to: self.chat(to),
            body,
        })
    }

    pub fn set_presence(&self, presence: OwnPresence) -> bool {
        self.send(Command::SetPresence(presence))
    }

    pub fn add_contact(&self, jid: BareJid, name: Option<String>) -> bool {
        self.send(Command::AddContact { jid, name })
    }

    pub fn answer_subscription(&self, from: BareJid, accept: bool) -> bool {
        self.send(Command::AnswerSubscription { from, accept })
    }

    pub fn retry(&self, peer: BareJid, id: String) -> bool {
        self.send(Command::Retry {
            conversation: self.chat(peer),
            id,
        })
    }

    pub fn fetch_older(
        &self,
        conversation: crate::conversation::Id,
        before: Option<Oldest>,
    ) -> bool {
        self.send(Command::FetchOlder {
            conversation,
            before,
        })
    }

    pub fn share_file(&self, to: BareJid, url: String) -> bool {
        self.send(Command::ShareFile {
            to: self.chat(to),
            url,
        })
    }

    pub fn join_room(&self, room: BareJid, nick: String, password: Option<String>) -> bool {
        self.send(Command::JoinRoom {
            room,
            nick,
            password,
        })
    }

    /// Creates `room` and joins it as its owner (see [`Command::CreateRoom`]).
    pub fn create_room(&self, room: BareJid, nick: String, settings: room::RoomSettings) -> bool {
        self.send(Command::CreateRoom {
            room,
            nick,
            settings,
        })
    }

    /// Asks something of a room we are in (see [`Command::RoomRequest`]).
    pub fn room_request(&self, room: BareJid, request: room::RoomRequest) -> bool {
        self.send(Command::RoomRequest { room, request })
    }

    /// Lists the rooms of `service` (see [`Command::BrowseRooms`]).
    pub fn browse_rooms(&self, service: BareJid) -> bool {
        self.send(Command::BrowseRooms { service })
    }

    pub fn leave_room(&self, room: BareJid) -> bool {
        self.send(Command::LeaveRoom { room })
    }

    /// Sends `body` to a room the account is in (or joins).
    pub fn send_to_room(&self, room: BareJid, body: String) -> bool {
        self.send(Command::SendMessage {
            to: crate::conversation::Id::room(self.account.clone(), room),
            body,
        })
    }

    pub fn request_slot(&self, id: String, name: String, size: u64, content_type: String) -> bool {
        self.send(Command::RequestSlot {
            id,
            name,
            size,
            content_type,
        })
    }

    pub fn disconnect(&self) -> bool {
        self.send(Command::Disconnect)
    }
}
