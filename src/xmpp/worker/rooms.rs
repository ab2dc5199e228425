//! Group chats (XEP-0045): joining and leaving, occupants, the room's
//! messages (our own recognised by their reflection), and rejoining after a
//! new session.

use tokio_xmpp::jid::FullJid;
use tokio_xmpp::parsers::muc::Muc;
use tokio_xmpp::parsers::muc::muc::History;
use tokio_xmpp::parsers::muc::user::{
    Affiliation as MucAffiliation, MucUser, Role as MucRole, Status,
};
use tokio_xmpp::parsers::occupant_id::OccupantId;
use tokio_xmpp::parsers::stanza_error::DefinedCondition;

use super::incoming::{content, is_attachment, message_time, reported, stamp_time};
use super::room_config::{FormPurpose, RoomAsk};
use super::*;
use crate::conversation::Id as ConversationId;
use crate::xmpp::invitation::DirectInvite;
use crate::xmpp::muc_admin::AdminQuery;
use crate::xmpp::room::{
    Affiliation, JoinError, LeftReason, Occupant, Role, RoomEvent, RoomRequest,
};

/// How much of a room's subject is kept (a subject is a line, not an essay).
pub(super) const MAX_SUBJECT_CHARS: usize = 4096;

/// How many occupants of one room are reported: far above any real room,
/// and a bound on what a hostile service can make the window hold.
pub(super) const MAX_OCCUPANTS: usize = 20_000;

/// How often, and after how long, a room joined by itself (after a new
/// session, from a bookmark) is tried again when it is not there: after a
/// server restart, whoever comes back first makes the room anew, and it is
/// locked to everyone else until its maker has set it up.
pub(super) const REJOIN_DELAYS: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(30),
];

/// The room history asked for on a join when the room has none of ours yet.
pub(super) const JOIN_HISTORY: u32 = 50;

/// A room the account is in or joining.
pub(super) struct Room {
    /// The nickname asked for, then the one the room gave.
    pub(super) nick: String,
    pub(super) password: Option<String>,
    /// The room sent our own presence (status 110) in this session.
    pub(super) joined: bool,
    /// A join went and is not answered yet: only then is an error presence
    /// the room's refusal (one at other times says nothing of our place).
    pub(super) joining: bool,
    /// The user joined it here: bookmark it for autojoin once in.
    pub(super) bookmark: bool,
    /// The nicknames in it, to bound how many are reported (`MAX_OCCUPANTS`).
    pub(super) occupants: HashSet<String>,
    /// Joined by itself (not by the user just now): a room not there yet is
    /// tried again (see `REJOIN_DELAYS`); how many times so far, and when next.
    pub(super) automatic: bool,
    pub(super) retries: usize,
    pub(super) retry_at: Option<Instant>,
    /// Our own occupant-id (XEP-0421), which tells our messages from others'
    /// in the room's archive whatever nickname we had then.
    pub(super) occupant_id: Option<String>,
    /// This join resumes from the room's archive (we have a position in it):
    /// the room is asked for no history, and the catch-up starts once in.
    pub(super) catch_up: bool,
    /// Everything the room said since our position came live, in order: each
    /// message moves the position (see `on_room_message`).
    pub(super) synced: bool,
    /// When the room last said anything to us (see `due_self_pings`).
    pub(super) heard: Instant,
    /// A self-ping is out (XEP-0410).
    pub(super) pinging: bool,
    /// A change of our nickname is asked and not answered yet: an error
    /// presence is its refusal.
    pub(super) renaming: bool,
    /// The user asked to create this room, set up so: a join that finds the
    /// room already there is refused (it is someone else's).
    pub(super) create: Option<crate::xmpp::room::RoomSettings>,
}

impl Room {
    pub(super) fn new(nick: String, password: Option<String>) -> Self {
        Self {
            nick,
            password,
            joined: false,
            joining: false,
            bookmark: false,
            occupants: HashSet::new(),
            automatic: false,
            retries: 0,
            retry_at: None,
            occupant_id: None,
            catch_up: false,
            synced: false,
            heard: Instant::now(),
            pinging: false,
            renaming: false,
            create: None,
        }
    }
}

fn role(role: &MucRole) -> Role {
    match role {
        MucRole::Moderator => Role::Moderator,
        MucRole::Participant => Role::Participant,
        MucRole::Visitor => Role::Visitor,
        MucRole::None => Role::None,
    }
}

fn affiliation(affiliation: &MucAffiliation) -> Affiliation {
    match affiliation {
        MucAffiliation::Owner => Affiliation::Owner,
        MucAffiliation::Admin => Affiliation::Admin,
        MucAffiliation::Member => Affiliation::Member,
        MucAffiliation::Outcast => Affiliation::Outcast,
        MucAffiliation::None => Affiliation::None,
    }
}

/// Why a join was refused, from the error the room answered with (XEP-0045 §7.2).
pub(super) fn join_error(presence: &Presence) -> JoinError {
    let Some(error) = presence
        .payloads
        .iter()
        .find_map(|p| StanzaError::try_from(p.clone()).ok())
    else {
        return JoinError::Other("no reason given".into());
    };
    match error.defined_condition {
        DefinedCondition::Conflict => JoinError::NicknameInUse,
        DefinedCondition::NotAuthorized => JoinError::Password,
        DefinedCondition::RegistrationRequired => JoinError::MembersOnly,
        DefinedCondition::Forbidden => JoinError::Banned,
        DefinedCondition::ItemNotFound => JoinError::NotFound,
        // Prosody keeps a destroyed room's place for a while ("tombstone").
        DefinedCondition::Gone { .. } => JoinError::Gone(
            error
                .texts
                .values()
                .next()
                .map(|t| t.trim().chars().take(MAX_SUBJECT_CHARS).collect::<String>())
                .filter(|t| !t.is_empty()),
        ),
        DefinedCondition::ServiceUnavailable => JoinError::Full,
        DefinedCondition::NotAcceptable | DefinedCondition::JidMalformed => {
            JoinError::InvalidNickname
        }
        DefinedCondition::RemoteServerNotFound | DefinedCondition::RemoteServerTimeout => {
            JoinError::Unreachable(format!("{:?}", error.defined_condition))
        }
        other => {
            let text = error.texts.values().next().cloned().unwrap_or_default();
            JoinError::Other(format!("{other:?} {text}").trim().to_string())
        }
    }
}

/// Why the room says we are out, from our own unavailable presence.
fn left_reason(statuses: &[Status], reason: Option<String>) -> LeftReason {
    if statuses.contains(&Status::Banned) {
        LeftReason::Banned(reason)
    } else if statuses.contains(&Status::Kicked) {
        LeftReason::Kicked(reason)
    } else if statuses.contains(&Status::RemovalFromRoom)
        || statuses.contains(&Status::ConfigMembersOnly)
    {
        LeftReason::NoLongerMember
    } else if statuses.contains(&Status::ServiceShutdown)
        || statuses.contains(&Status::ServiceErrorKick)
    {
        LeftReason::Shutdown
    } else {
        LeftReason::Unexplained
    }
}

impl Worker {
    fn room_id(&self, room: &BareJid) -> ConversationId {
        ConversationId::room(self.account.clone(), room.clone())
    }

    pub(super) fn emit_room(&self, room: &BareJid, event: RoomEvent) -> bool {
        self.emit(Event::Room {
            room: room.clone(),
            event,
        })
    }

    /// Our presence in `room` under `nick`: what we announce elsewhere, with
    /// the join's password and history request when `joining`.
    fn room_presence(&self, room: &BareJid, joining: bool) -> Option<Presence> {
        let state = self.rooms.get(room)?;
        let to = FullJid::from_parts(
            room.node(),
            room.domain(),
            &tokio_xmpp::jid::ResourcePart::new(&state.nick).ok()?,
        );
        let mut presence = self.own_presence();
        presence.to = Some(Jid::from(to));
        if joining {
            // With a position in the room's archive, the archive brings what
            // we lack, in order and complete; the room's own join history is
            // bounded (Prosody sends 20) and would only repeat part of it.
            let last = self
                .store
                .page(&self.room_id(room), None, 1)
                .ok()
                .and_then(|page| page.records.last().map(|r| r.time));
            let history = match last {
                _ if state.catch_up => History::new().with_maxstanzas(0),
                Some(time) => History::new().with_since(tokio_xmpp::parsers::date::DateTime(
                    (time + chrono::Duration::seconds(1)).fixed_offset(),
                )),
                None => History::new().with_maxstanzas(JOIN_HISTORY),
            };
            let mut muc = Muc::new().with_history(history);
            muc.password = state.password.clone();
            presence.payloads.push(muc.into());
        }
        Some(presence)
    }

    /// The presence that joins `room`: it resumes from the room's archive
    /// when we have a position there (see `Room::catch_up`).
    pub(super) fn join_presence(&mut self, room: &BareJid) -> Option<Presence> {
        let cursor = match self.store.room_cursor(&self.room_id(room)) {
            Ok(cursor) => cursor,
            Err(e) => {
                tracing::warn!("cannot read {room}'s archive position: {e}");
                None
            }
        };
        let state = self.rooms.get_mut(room)?;
        state.joining = true;
        state.synced = false;
        state.catch_up = cursor.is_some();
        self.room_presence(room, true)
    }

    /// Joins (or changes the nickname or password for) a room; the join goes
    /// now when `bound`, else with the next session.
    pub(super) fn join_room(
        &mut self,
        room: BareJid,
        nick: String,
        password: Option<String>,
        bound: bool,
    ) -> Vec<Stanza> {
        let nick = nick.trim().to_string();
        if nick.is_empty() || tokio_xmpp::jid::ResourcePart::new(&nick).is_err() {
            self.emit_room(&room, RoomEvent::JoinFailed(JoinError::InvalidNickname));
            return vec![];
        }
        tracing::debug!("joining {room} as {nick} (connected: {bound})");
        self.rooms.insert(room.clone(), Room::new(nick, password));
        // A room we made by mistake a moment ago is joined once it is gone.
        if !bound || self.room_discards.contains(&room) {
            return vec![];
        }
        self.join_presence(&room)
            .map(|p| vec![p.into()])
            .unwrap_or_default()
    }

    /// Leaves a room: it is not joined again.
    pub(super) fn leave_room(&mut self, room: &BareJid, bound: bool) -> Vec<Stanza> {
        let mut out = vec![];
        if bound && let Some(mut presence) = self.room_presence(room, false) {
            presence.type_ = PresenceType::Unavailable;
            presence.show = None;
            out.push(presence.into());
        }
        if self.rooms.remove(room).is_some() {
            self.emit_room(room, RoomEvent::Left(LeftReason::Requested));
        }
        out
    }

    /// A new session: the server forgot every room; join them all again.
    pub(super) fn rejoin_rooms(&mut self) -> Vec<Stanza> {
        let rooms: Vec<BareJid> = self.rooms.keys().cloned().collect();
        if !rooms.is_empty() {
            tracing::info!("joining {} rooms again", rooms.len());
        }
        rooms
            .into_iter()
            .filter_map(|room| {
                if let Some(state) = self.rooms.get_mut(&room) {
                    state.joined = false;
                    state.occupants.clear();
                    state.automatic = true;
                    state.retries = 0;
                    state.retry_at = None;
                }
                self.join_presence(&room).map(Stanza::from)
            })
            .collect()
    }

    /// The joins whose time to try again has come.
    pub(super) fn due_rejoins(&mut self, now: Instant) -> Vec<Stanza> {
        let due: Vec<BareJid> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.retry_at.is_some_and(|at| at <= now))
            .map(|(room, _)| room.clone())
            .collect();
        due.into_iter()
            .filter_map(|room| {
                if let Some(state) = self.rooms.get_mut(&room) {
                    state.retry_at = None;
                }
                self.join_presence(&room).map(Stanza::from)
            })
            .collect()
    }

    /// The rooms silent for longer than `room_silence`: each is asked
    /// whether we are still in it, by a ping to our own nickname there
    /// (XEP-0410), which the room answers itself.
    pub(super) fn due_self_pings(
        &mut self,
        now: Instant,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let silence = self.room_silence;
        let mut out = Vec::new();
        for (room, state) in &mut self.rooms {
            if !state.joined || state.pinging || now.duration_since(state.heard) < silence {
                continue;
            }
            let Ok(nick) = tokio_xmpp::jid::ResourcePart::new(&state.nick) else {
                continue;
            };
            let to = Jid::from(FullJid::from_parts(room.node(), room.domain(), &nick));
            tracing::debug!("{room} has been silent for {silence:?}: are we still in it?");
            state.pinging = true;
            let id = pending.add(
                Some(to.clone()),
                Pending::SelfPing(room.clone()),
                Some(REPLY_TIMEOUT),
                now,
            );
            out.push(
                Iq::from_get(id, tokio_xmpp::parsers::ping::Ping)
                    .with_to(to)
                    .into(),
            );
        }
        out
    }

    /// The room's answer to a self-ping: `Ok` we are in; an error says
    /// whether we are (XEP-0410 §3.2); `Err(None)`: no answer in time.
    pub(super) fn on_self_ping(
        &mut self,
        room: &BareJid,
        answer: Result<(), Option<DefinedCondition>>,
    ) -> bool {
        let Some(state) = self.rooms.get_mut(room) else {
            return true;
        };
        state.pinging = false;
        state.heard = Instant::now();
        let joined = match &answer {
            Ok(()) => true,
            // The room passed it on to our client, which did not understand:
            // we are in.
            Err(Some(
                DefinedCondition::ServiceUnavailable | DefinedCondition::FeatureNotImplemented,
            )) => true,
            // The room's service cannot be reached, or did not answer: we
            // cannot tell; asked again after the next silence.
            Err(
                None
                | Some(
                    DefinedCondition::RemoteServerNotFound | DefinedCondition::RemoteServerTimeout,
                ),
            ) => {
                tracing::info!("{room} did not answer whether we are in it");
                true
            }
            // not-acceptable (not an occupant), item-not-found, anything else.
            Err(Some(_)) => false,
        };
        if joined || !state.joined {
            return true;
        }
        tracing::info!("{room} forgot us ({answer:?}); joining it again");
        state.joined = false;
        state.occupants.clear();
        let Some(presence) = self.join_presence(room) else {
            return true;
        };
        self.outq.push_back(Box::new(presence.into()));
        self.emit_room(room, RoomEvent::Rejoining)
    }

    /// What the user asks of a room they are in.
    pub(super) fn room_request(
        &mut self,
        room: &BareJid,
        request: RoomRequest,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        if !self.rooms.get(room).is_some_and(|r| r.joined) {
            self.emit_room(room, RoomEvent::Refused("not in the room".into()));
            return vec![];
        }
        let to = Jid::from(room.clone());
        let admin = match request {
            RoomRequest::Settings | RoomRequest::Configure(_) | RoomRequest::Destroy { .. } => {
                return self.owner_request(room, request, pending);
            }
            RoomRequest::Role { nick, role, reason } => AdminQuery::role(&nick, role, reason),
            RoomRequest::Affiliation {
                jid,
                affiliation,
                reason,
            } => AdminQuery::affiliation(jid, affiliation, reason),
            RoomRequest::Subject(subject) => {
                // §8.1: a groupchat message with a subject and no body.
                let mut message = Message::groupchat(Some(to));
                message.subjects.insert(Lang::new(), subject);
                return vec![message.into()];
            }
            RoomRequest::Nick(nick) => {
                let Ok(part) = tokio_xmpp::jid::ResourcePart::new(nick.trim()) else {
                    self.emit_room(
                        room,
                        RoomEvent::Refused("that nickname is not allowed".into()),
                    );
                    return vec![];
                };
                // §7.6: our presence under the new nickname; the room answers
                // with our old one gone (303) and the new one ours (110).
                let mut presence = self.own_presence();
                presence.to = Some(Jid::from(FullJid::from_parts(
                    room.node(),
                    room.domain(),
                    &part,
                )));
                if let Some(state) = self.rooms.get_mut(room) {
                    state.renaming = true;
                }
                return vec![presence.into()];
            }
            RoomRequest::Invite { jid, reason } => {
                let password = self.rooms.get(room).and_then(|r| r.password.clone());
                let invite = crate::xmpp::invitation::DirectInvite {
                    jid: room.clone(),
                    reason,
                    password,
                    thread: None,
                };
                let message = Message::new(Some(Jid::from(jid))).with_payload(invite);
                return vec![message.into()];
            }
        };
        let id = pending.add(
            Some(to.clone()),
            Pending::RoomAdmin(room.clone()),
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        vec![Iq::from_set(id, admin).with_to(to).into()]
    }

    /// An invitation into a room (`None`: the message is none); whether the
    /// app is there. Only people in the roster are heard: from anyone else
    /// an invitation is a way to put windows on the screen, and is dropped.
    pub(super) fn on_invitation(&mut self, from: &Jid, message: &mut Message) -> Option<bool> {
        let (room, by, reason, password, mediated) =
            if let Ok(Some(direct)) = message.extract_payload::<DirectInvite>() {
                let reason = direct
                    .reason
                    .or_else(|| message.get_best_body(vec![]).map(|(_, b)| b.clone()));
                (direct.jid, from.to_bare(), reason, direct.password, false)
            } else {
                let user = message
                    .payloads
                    .iter()
                    .find_map(|p| MucUser::try_from(p.clone()).ok())?;
                let invite = user.invite?;
                // Through a room: the room says who invites.
                let by = invite.from?.to_bare();
                let password = message
                    .payloads
                    .iter()
                    .find(|p| p.is("password", "http://jabber.org/protocol/muc#user"))
                    .map(|p| p.text());
                (from.to_bare(), by, invite.reason, password, true)
            };
        if room.node().is_none() || !self.contacts.contains(&by) {
            tracing::info!("ignoring an invitation into {room} from {by}, not a contact");
            return Some(true);
        }
        if self.rooms.get(&room).is_some_and(|r| r.joined) {
            return Some(true);
        }
        let reason = reason
            .map(|r| r.chars().take(MAX_SUBJECT_CHARS).collect::<String>())
            .filter(|r| !r.trim().is_empty());
        tracing::debug!("{by} invites us into {room}");
        Some(self.emit_room(
            &room,
            RoomEvent::Invited {
                by,
                reason,
                password,
                mediated,
            },
        ))
    }

    /// Our presence changed: the rooms we are in hear it too.
    pub(super) fn room_presences(&self) -> Vec<Stanza> {
        self.rooms
            .iter()
            .filter(|(_, r)| r.joined)
            .filter_map(|(room, _)| self.room_presence(room, false).map(Stanza::from))
            .collect()
    }

    /// Whether a message to a room must wait for the join: it stays in the
    /// outbox, and goes once the room has us (see `on_room_presence`).
    pub(super) fn waits_for_join(&self, record: &Record) -> bool {
        let Some(conversation) = record.conversation() else {
            return false;
        };
        matches!(conversation.kind(), Kind::Room | Kind::Private)
            && !self
                .rooms
                .get(&conversation.bare())
                .is_some_and(|room| room.joined)
    }

    /// A presence from a room we are in or joining; whether the app is there.
    pub(super) fn on_room_presence(&mut self, mut presence: Presence) -> bool {
        let Some(from) = presence.from.clone().and_then(|f| f.try_into_full().ok()) else {
            return true;
        };
        let room = from.to_bare();
        let nick = from.resource().as_str().to_string();
        tracing::debug!("{:?} presence of {from}", presence.type_);
        if let Some(state) = self.rooms.get_mut(&room) {
            state.heard = Instant::now();
        }
        if presence.type_ == PresenceType::Error {
            let joining = self.rooms.get(&room).is_some_and(|r| r.joining);
            if let Some(state) = self.rooms.get_mut(&room)
                && !joining
                && state.renaming
            {
                state.renaming = false;
                let why = join_error(&presence).to_string();
                return self.emit_room(&room, RoomEvent::Refused(why));
            }
            if !joining {
                tracing::info!("an error presence from {from}, not answering a join");
                return true;
            }
            let error = join_error(&presence);
            if matches!(error, JoinError::NotFound | JoinError::Unreachable(_))
                && let Some(state) = self.rooms.get_mut(&room)
                && state.automatic
                && let Some(delay) = REJOIN_DELAYS.get(state.retries)
            {
                tracing::info!("{room} is not there yet ({error}); trying again in {delay:?}");
                state.joining = false;
                state.retries += 1;
                state.retry_at = Some(Instant::now() + *delay);
                return true;
            }
            self.rooms.remove(&room);
            return self.emit_room(&room, RoomEvent::JoinFailed(error));
        }
        let destroyed = presence
            .payloads
            .iter_mut()
            .find_map(crate::xmpp::muc_owner::take_user_destroy);
        let user = presence
            .payloads
            .iter()
            .find_map(|p| MucUser::try_from(p.clone()).ok())
            .unwrap_or_default();
        let is_self = user.status.contains(&Status::SelfPresence);
        let item = user.items.first();
        if presence.type_ == PresenceType::Unavailable {
            // The room's last word goes to everyone under their own
            // nickname, whether or not the service marks it as ours (110).
            let ours = is_self || self.rooms.get(&room).is_some_and(|r| r.nick == nick);
            if ours && destroyed.is_some() && self.room_discards.contains(&room) {
                tracing::debug!("{room}, made by mistake, let us go");
                return true;
            }
            if ours && let Some(destroyed) = destroyed {
                // The room is gone for good: so is its bookmark, which
                // would make it again on the next sign-in.
                tracing::info!("{room} was destroyed");
                let unbookmark = self.conference(&room, false);
                self.room_asks
                    .push(RoomAsk::Bookmark(room.clone(), unbookmark));
                self.rooms.remove(&room);
                let why = LeftReason::Destroyed {
                    reason: destroyed.reason.filter(|r| !r.trim().is_empty()),
                    alternate: destroyed.jid,
                };
                return self.emit_room(&room, RoomEvent::Left(why));
            }
            if is_self {
                // Our nickname changed by us is a 303 on our own presence: still in.
                if user.status.contains(&Status::NewNick) {
                    if let (Some(new), Some(state)) =
                        (item.and_then(|i| i.nick.clone()), self.rooms.get_mut(&room))
                    {
                        state.nick = new.clone();
                        state.renaming = false;
                        return self.emit_room(&room, RoomEvent::Joined { nick: new });
                    }
                    return true;
                }
                let reason = item.and_then(|i| i.reason.as_ref()).map(|r| r.0.clone());
                let why = left_reason(&user.status, reason);
                if matches!(why, LeftReason::Shutdown | LeftReason::Unexplained) {
                    // Not our doing, nor a moderator's (Prosody going down
                    // says nothing more): joined again with the next session.
                    if let Some(state) = self.rooms.get_mut(&room) {
                        state.joined = false;
                        state.occupants.clear();
                    }
                } else {
                    self.rooms.remove(&room);
                }
                return self.emit_room(&room, RoomEvent::Left(why));
            }
            if let Some(state) = self.rooms.get_mut(&room) {
                state.occupants.remove(&nick);
            }
            let new_nick = user
                .status
                .contains(&Status::NewNick)
                .then(|| item.and_then(|i| i.nick.clone()))
                .flatten();
            let reason = item.and_then(|i| i.reason.as_ref()).map(|r| r.0.clone());
            let why = left_reason(&user.status, reason);
            return self.emit_room(
                &room,
                RoomEvent::OccupantLeft {
                    nick,
                    new_nick,
                    why,
                },
            );
        }
        if presence.type_ != PresenceType::None {
            return true;
        }
        let availability = match presence.show {
            None => Availability::Available,
            Some(Show::Chat) => Availability::Chat,
            Some(Show::Away) => Availability::Away,
            Some(Show::Xa) => Availability::ExtendedAway,
            Some(Show::Dnd) => Availability::DoNotDisturb,
        };
        if let Some(state) = self.rooms.get_mut(&room)
            && !state.occupants.contains(&nick)
        {
            if state.occupants.len() >= MAX_OCCUPANTS && !is_self {
                tracing::warn!("{room} has over {MAX_OCCUPANTS} occupants; {nick} is not shown");
                return true;
            }
            state.occupants.insert(nick.clone());
        }
        let occupant_id = presence
            .payloads
            .iter()
            .find_map(|p| OccupantId::try_from(p.clone()).ok())
            .map(|o| o.id);
        let occupant = Occupant {
            nick: nick.clone(),
            jid: item.and_then(|i| i.jid.as_ref()).map(|j| j.to_bare()),
            role: item.map_or(Role::None, |i| role(&i.role)),
            affiliation: item.map_or(Affiliation::None, |i| affiliation(&i.affiliation)),
            availability,
            occupant_id,
            is_self,
        };
        if !self.emit_room(&room, RoomEvent::Occupant(occupant.clone())) {
            return false;
        }
        if is_self && let Some(state) = self.rooms.get_mut(&room) {
            // Our nickname changed, as asked: still in, under the new one.
            if state.joined && state.nick != nick {
                state.nick = nick.clone();
                state.renaming = false;
                return self.emit_room(&room, RoomEvent::Joined { nick });
            }
            // The service may give another nickname than the one asked (210).
            state.nick = nick.clone();
            state.joining = false;
            if occupant.occupant_id.is_some() {
                state.occupant_id = occupant.occupant_id.clone();
            }
            if !state.joined {
                let created = user.status.contains(&Status::RoomHasBeenCreated);
                let creating = state.create.is_some();
                // Asked to join, the user typed an address that was free:
                // the room we made is taken away again (it is locked, no one
                // else is in it), and the user is offered to create it.
                // Rooms joined by themselves (after a restart of the service,
                // rooms that did not persist) are made again as they were.
                if created && !creating && !state.automatic {
                    tracing::info!("{room} did not exist: not creating it unasked");
                    self.rooms.remove(&room);
                    self.room_asks.push(RoomAsk::Discard(room.clone()));
                    return self.emit_room(&room, RoomEvent::JoinFailed(JoinError::NotFound));
                }
                // Asked to create it, we found someone else's room: out again.
                if creating && !created {
                    tracing::info!("{room} exists already: not ours to set up");
                    if let Some(mut presence) = self.room_presence(&room, false) {
                        presence.type_ = PresenceType::Unavailable;
                        presence.show = None;
                        self.outq.push_back(Box::new(presence.into()));
                    }
                    self.rooms.remove(&room);
                    return self.emit_room(&room, RoomEvent::JoinFailed(JoinError::Exists));
                }
                let Some(state) = self.rooms.get_mut(&room) else {
                    return true;
                };
                state.joined = true;
                let create = state.create.take();
                // What the room said while we were away: from its archive,
                // after our position; without one, the join's history is
                // what there is, and from now on all comes live.
                if state.catch_up {
                    self.room_catch_ups_due.push(room.clone());
                } else {
                    state.synced = true;
                }
                let bookmark = std::mem::take(&mut state.bookmark);
                // What the user wrote before the join goes now, in order.
                let conversation = self.room_id(&room);
                match self.store.outbox(self.account.as_str()) {
                    Ok(waiting) => self.room_ready.extend(
                        waiting
                            .into_iter()
                            .filter(|r| r.conversation().as_ref() == Some(&conversation)),
                    ),
                    Err(e) => tracing::error!("cannot read the outbox: {e}"),
                }
                if bookmark {
                    let conference = self.conference(&room, true);
                    self.room_asks
                        .push(RoomAsk::Bookmark(room.clone(), conference));
                }
                // We created the room (201): it stays locked to others
                // until its configuration is accepted. Take the defaults (an
                // instant room, §10.1.2); joined once the room says so.
                if created {
                    let ask = match create {
                        Some(settings) => {
                            tracing::info!("created {room}: setting it up");
                            RoomAsk::Form(room.clone(), FormPurpose::Create(settings))
                        }
                        None => {
                            tracing::debug!("created {room}: accepting its default configuration");
                            RoomAsk::Unlock(room.clone())
                        }
                    };
                    // What it is, asked once it is set up (`on_room_unlocked`).
                    self.room_asks.push(ask);
                    return true;
                }
                self.room_asks.push(RoomAsk::Info(room.clone()));
                return self.emit_room(&room, RoomEvent::Joined { nick });
            }
        }
        true
    }

    /// The room we created took (or refused, or ignored) its default
    /// configuration: we are in it either way.
    pub(super) fn on_room_unlocked(&mut self, room: &BareJid, outcome: Result<(), String>) -> bool {
        tracing::debug!("{room} unlocked: {outcome:?}");
        if let Err(why) = outcome {
            tracing::warn!("the new room {room} kept its lock ({why}): others cannot join it yet");
        }
        match self.rooms.get(room) {
            Some(state) if state.joined => {
                let nick = state.nick.clone();
                self.room_asks.push(RoomAsk::Info(room.clone()));
                self.emit_room(room, RoomEvent::Joined { nick })
            }
            _ => true,
        }
    }

    /// A private message from an occupant of a room we are in, in a
    /// conversation of its own; whether the app is there.
    pub(super) fn on_private_message(&mut self, occupant: FullJid, mut message: Message) -> bool {
        let Some((body, encryption)) = content(&message) else {
            return true;
        };
        let conversation = ConversationId::private(self.account.clone(), occupant.clone());
        let time = message_time(&mut message);
        let mut new = super::incoming::stored_form(&conversation, &mut message, body, time, false);
        new.encryption = encryption;
        new.sender = super::incoming::private_sender(&conversation, &message);
        match self.store.insert(new) {
            Ok(Some(record)) => self.emit(Event::Messages(reported([record]))),
            Ok(None) => true,
            Err(e) => {
                tracing::error!("could not store a private message from {occupant}: {e}");
                true
            }
        }
    }

    /// A live groupchat message; whether the app is there.
    pub(super) fn on_room_message(&mut self, mut message: Message) -> bool {
        let Some(from) = message.from.clone() else {
            return true;
        };
        let room = from.to_bare();
        let Some(state) = self.rooms.get(&room) else {
            tracing::debug!("ignoring a groupchat message from {from}: not in that room");
            return true;
        };
        let synced = state.synced;
        if let Some(state) = self.rooms.get_mut(&room) {
            state.heard = Instant::now();
        }
        // The room's own id for it (XEP-0359, `by` the room): what its
        // archive knows it by, and what copies are told apart by.
        let room_jid = Jid::from(room.clone());
        let mut room_stanza_id = None;
        while let Ok(Some(stanza_id)) = message.extract_payload::<StanzaId>() {
            if stanza_id.by == room_jid {
                room_stanza_id = Some(stanza_id.id);
            }
        }
        if content(&message).is_none() {
            // The subject: a message with a subject and no body (XEP-0045 §8.1).
            if let Some((_, subject)) = message.get_best_subject(vec![]) {
                let subject = subject.chars().take(MAX_SUBJECT_CHARS).collect();
                let by = from.resource().map(|r| r.as_str().to_string());
                return self.emit_room(&room, RoomEvent::Subject { subject, by });
            }
            return true;
        }
        let delayed = message
            .payloads
            .iter()
            .any(|p| p.is("delay", "urn:xmpp:delay"));
        let time = message_time(&mut message);
        // History the room sends on joining is not news.
        let Some(new) = self.room_message(&room, message, room_stanza_id.clone(), time, !delayed)
        else {
            return true;
        };
        let stored = self.store.insert(new);
        // Everything since the join came live, in order: the room's archive
        // has nothing before this that we lack (see `Room::synced`).
        if synced
            && stored.is_ok()
            && let Some(id) = &room_stanza_id
            && let Err(e) = self.store.set_room_cursor(&self.room_id(&room), id)
        {
            tracing::warn!("cannot store {room}'s archive position: {e}");
        }
        match stored {
            Ok(Some(record)) => {
                let reported = reported([record]);
                if delayed {
                    self.emit(Event::Backfill(reported))
                } else {
                    self.emit(Event::Messages(reported))
                }
            }
            Ok(None) => true,
            Err(e) => {
                tracing::error!("could not store a message from {from}: {e}");
                true
            }
        }
    }

    /// A message from a room's own archive (XEP-0313 in a MUC), in the form
    /// it is stored in; `None` for what says nothing or is not the room's.
    pub(super) fn archived_room_message(
        &mut self,
        room: &BareJid,
        forwarded: tokio_xmpp::parsers::forwarding::Forwarded,
        archive_id: String,
        news: bool,
    ) -> Option<NewMessage> {
        let mut inner = forwarded.message;
        if inner.type_ != MessageType::Groupchat
            || inner.from.as_ref().is_none_or(|f| f.to_bare() != *room)
        {
            tracing::debug!("ignoring a message in {room}'s archive that is not the room's");
            return None;
        }
        // The archive's own stamp; a stanza-id inside is the same id or
        // someone else's (only the result's id is the room's word).
        let time = match &forwarded.delay {
            Some(delay) => stamp_time(&delay.stamp),
            None => message_time(&mut inner),
        };
        while let Ok(Some(_)) = inner.extract_payload::<StanzaId>() {}
        self.room_message(room, inner, Some(archive_id), time, news)
    }

    /// What a groupchat message with text is, to store: ours (reflected, from
    /// another device, or from the archive) or someone else's. A reflection
    /// of a message in the outbox marks it delivered on the way.
    fn room_message(
        &mut self,
        room: &BareJid,
        mut message: Message,
        room_stanza_id: Option<String>,
        time: chrono::DateTime<Utc>,
        news: bool,
    ) -> Option<NewMessage> {
        let state = self.rooms.get(room);
        let own_nick = state.map(|s| s.nick.clone());
        let own_occupant = state.and_then(|s| s.occupant_id.clone());
        let (body, encryption) = content(&message)?;
        let nick = message
            .from
            .as_ref()
            .and_then(|f| f.resource())
            .map(|r| r.as_str().to_string());
        let conversation = self.room_id(room);
        let origin_id = match message.extract_payload::<OriginId>() {
            Ok(Some(origin)) => Some(origin.id).filter(|id| !id.trim().is_empty()),
            _ => None,
        };
        let occupant_id = message
            .payloads
            .iter()
            .find_map(|p| OccupantId::try_from(p.clone()).ok())
            .map(|o| o.id);
        // Who said it: the room's occupant-id where both sides have one
        // (stable across nickname changes), else the nickname.
        let ours = match (&occupant_id, &own_occupant) {
            (Some(theirs), Some(own)) => theirs == own,
            _ => nick.is_some() && nick == own_nick,
        };
        // Our own message, reflected: it reached the room.
        if ours && let Some(origin) = &origin_id {
            self.update_state(&conversation, origin, Delivery::Delivered, None);
        }
        let stanza_id = message.id.as_ref().map(|id| id.0.clone());
        // Ours go by their origin-id, as this Tern stores what it sends;
        // others' by the room's id, which no occupant can forge. A copy of
        // ours (the reflection) brings the room's id to the stored one.
        let id = if ours {
            origin_id.clone().or_else(|| room_stanza_id.clone())
        } else {
            room_stanza_id.clone().or_else(|| origin_id.clone())
        }
        .or_else(|| stanza_id.clone())
        .filter(|id| !id.trim().is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let attachment = is_attachment(&mut message, &body);
        let mut new = if ours {
            // Ours from another device (or from before a restart).
            let mut new = NewMessage::outgoing(&conversation, id, body, time);
            new.state = Delivery::Delivered;
            new.other_device = true;
            new
        } else {
            NewMessage::incoming(&conversation, id, body, time)
        };
        new.sender = crate::store::Sender {
            jid: None,
            nick,
            occupant_id,
        };
        new.stanza_id = stanza_id;
        new.origin_id = origin_id;
        new.archive_id = room_stanza_id;
        new.attachment = attachment;
        new.encryption = encryption;
        new.unread = !ours && news;
        Some(new)
    }
}
