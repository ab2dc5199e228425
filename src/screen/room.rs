//! Group chats in the window: the "Join a room" form, and what the window
//! knows of each room (how the join went, its subject, who is in it).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Utc;

use iced::widget::{
    Space, button, checkbox, column, container, pick_list, row, scrollable, text, text_input,
};
use iced::{Alignment, Element, Fill, Task};

use crate::conversation::{self as talk, Kind};
use crate::fl;
use crate::notification::RoomLevel;
use crate::theme;
use crate::xmpp::BareJid;
use crate::xmpp::room::{
    Affiliation, Directory, JoinError, LeftReason, Listing, Occupant, Role, RoomEvent, RoomRequest,
    RoomSettings,
};

use super::conversation::activity::{Change, Log};

mod command;
mod directory;
mod setup;

pub use command::Typed;
pub use directory::SEARCH_INPUT as DIRECTORY_SEARCH_INPUT;
pub use setup::NAME_INPUT as CREATE_NAME_INPUT;

pub const ADDRESS_INPUT: &str = "join-room-address";

/// The rooms of every account, and the join form.
#[derive(Debug, Default)]
pub struct State {
    rooms: HashMap<talk::Id, Room>,
    form: Option<Form>,
    /// Invitations not yet answered, each shown in the join form in turn.
    invitations: std::collections::VecDeque<Invitation>,
    /// Each account's room service, where rooms are made and listed.
    services: HashMap<BareJid, BareJid>,
    /// A dialog shown in the conversation's place.
    panel: Option<Panel>,
    /// The notification level the user chose for rooms, where they did.
    levels: HashMap<talk::Id, RoomLevel>,
    /// The rooms whose images load by themselves (the user trusts them).
    trusted: HashSet<talk::Id>,
}

/// The dialogs of rooms, shown in the conversation's place.
#[derive(Debug)]
enum Panel {
    Directory(directory::Directory),
    Create(setup::Create),
    Settings(setup::Settings),
}

/// How many unanswered invitations are kept (contacts only, but a bound).
const MAX_INVITATIONS: usize = 20;

#[derive(Debug, Clone, PartialEq)]
struct Invitation {
    room: talk::Id,
    by: BareJid,
    reason: Option<String>,
    password: Option<String>,
    mediated: bool,
}

/// What the window knows of one room.
#[derive(Debug, Default)]
struct Room {
    joined: bool,
    /// Our nickname there, once the room gave it.
    nick: Option<String>,
    /// Who is in it, by nickname.
    occupants: BTreeMap<String, Occupant>,
    subject: String,
    /// Why we are not in it (refused, kicked…), in the user's words.
    problem: Option<String>,
    /// What the room said to our last request or command, until the next.
    notice: Option<String>,
    /// What the room says of itself, once joined.
    info: Option<Listing>,
    /// Who came and went since we joined.
    activity: Log,
}

#[derive(Debug, Clone, Default)]
struct Form {
    account: Option<BareJid>,
    address: String,
    nick: String,
    password: String,
    error: Option<String>,
    /// The room this form asked to join, waiting for the answer.
    waiting: Option<talk::Id>,
    /// The invitation this form answers.
    invitation: Option<Invitation>,
    /// The room was not found: the form offers to create it.
    offer_create: bool,
}

#[derive(Debug, Clone)]
pub enum Message {
    /// Opens the form; the account it joins with first (the user can change it).
    Show(Option<BareJid>),
    Account(super::chat::AccountChoice),
    Address(String),
    Nick(String),
    Password(String),
    Submit,
    Cancel,
    Leave(talk::Id),
    /// A private message to an occupant (the conversation with them).
    Private(talk::Id),
    /// Opens the directory of the account's room service.
    ShowDirectory(Option<BareJid>),
    /// Opens "Create a room" (with the address the join form has, when it
    /// was not found).
    ShowCreate,
    /// Opens a room's settings (owners).
    ShowSettings(talk::Id),
    Directory(directory::Message),
    Create(setup::CreateMessage),
    Settings(setup::SettingsMessage),
    /// Which of the room's messages notify.
    Level(talk::Id, LevelChoice),
    /// Whether the room's images load by themselves.
    Images(talk::Id, bool),
}

/// A notification level in the room header's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelChoice(pub RoomLevel);

impl std::fmt::Display for LevelChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&match self.0 {
            RoomLevel::All => fl!("room-notify-all"),
            RoomLevel::Mentions => fl!("room-notify-mentions"),
            RoomLevel::Never => fl!("room-notify-never"),
        })
    }
}

pub enum Event {
    /// Join (and show) this room as `nick`.
    Join {
        room: talk::Id,
        nick: String,
        password: Option<String>,
    },
    Leave(talk::Id),
    /// Open this conversation (a private one with an occupant).
    Open(talk::Id),
    /// Decline an invitation that came through `room`, telling `inviter`.
    Decline {
        room: talk::Id,
        inviter: BareJid,
    },
    /// Create (and show) this room, set up so, joined as `nick`.
    Create {
        room: talk::Id,
        nick: String,
        settings: RoomSettings,
    },
    /// List the rooms of this account's `service`.
    Browse {
        account: BareJid,
        service: BareJid,
    },
    /// Ask this of a room (its settings, a change, its destruction).
    Request(talk::Id, RoomRequest),
    /// The user changed one of the room's own settings: keep it.
    Preference(talk::Id, Preference),
}

/// A room's own setting in Tern, kept in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    /// Which of its messages notify.
    Level(RoomLevel),
    /// Whether its occupants' images load by themselves.
    Images(bool),
}

/// A room's address as typed: bare, with a local part, `xmpp:` and `?join` allowed.
fn room_address(typed: &str) -> Option<BareJid> {
    typed
        .trim()
        .trim_start_matches("xmpp:")
        .trim_end_matches("?join")
        .parse::<BareJid>()
        .ok()
        .filter(|r| r.node().is_some())
}

/// The name the account has in rooms unless the user says otherwise.
fn default_nick(account: &BareJid) -> String {
    account
        .node()
        .map_or_else(|| account.to_string(), |n| n.as_str().to_string())
}

/// A join error as the form and the room's header say it.
pub fn join_error_text(error: &JoinError) -> String {
    match error {
        JoinError::NicknameInUse => fl!("room-error-nick"),
        JoinError::InvalidNickname => fl!("room-error-nick-invalid"),
        JoinError::Password => fl!("room-error-password"),
        JoinError::MembersOnly => fl!("room-error-members"),
        JoinError::Banned => fl!("room-error-banned"),
        JoinError::NotFound => fl!("room-error-not-found"),
        JoinError::Exists => fl!("room-error-exists"),
        JoinError::Gone(reason) => fl!(
            "room-error-gone",
            reason = reason.clone().unwrap_or_default()
        )
        .trim_end()
        .to_string(),
        JoinError::Full => fl!("room-error-full"),
        JoinError::Unreachable(why) => fl!("room-error-unreachable", reason = why.clone()),
        JoinError::Offline => fl!("room-error-offline"),
        JoinError::Other(why) => fl!("room-error-other", reason = why.clone()),
    }
}

fn left_text(reason: &LeftReason) -> Option<String> {
    let reason_or = |r: &Option<String>| r.clone().unwrap_or_default();
    // Without a reason, the sentence ends where the reason would go.
    let said = match reason {
        LeftReason::Requested => None,
        LeftReason::Kicked(r) => Some(fl!("room-left-kicked", reason = reason_or(r))),
        LeftReason::Banned(r) => Some(fl!("room-left-banned", reason = reason_or(r))),
        LeftReason::NoLongerMember => Some(fl!("room-left-member")),
        LeftReason::Shutdown | LeftReason::Unexplained => Some(fl!("room-left-shutdown")),
        LeftReason::Destroyed { reason, alternate } => Some(match alternate {
            Some(room) => fl!(
                "room-left-destroyed-moved",
                reason = reason_or(reason),
                room = room.to_string()
            ),
            None => fl!("room-left-destroyed", reason = reason_or(reason)),
        }),
    };
    said.map(|s| s.trim_end().to_string())
}

impl State {
    pub fn is_open(&self) -> bool {
        self.form.is_some()
    }

    /// What a line typed in the room asks for; a command's mistake is
    /// shown in the room's header until the next line.
    pub fn typed(&mut self, room: &talk::Id, line: &str) -> Typed {
        let Some(state) = self.rooms.get_mut(room) else {
            return Typed::Send(line.to_string());
        };
        let typed = command::typed(line, &state.occupants);
        state.notice = match &typed {
            Typed::Wrong(why) => Some(why.clone()),
            _ => None,
        };
        typed
    }

    /// Whether the account is in this room now.
    pub fn is_joined(&self, room: &talk::Id) -> bool {
        self.rooms.get(room).is_some_and(|r| r.joined)
    }

    /// Who else is in the room, for nickname completion.
    pub fn nicks(&self, room: &talk::Id) -> Vec<String> {
        self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.occupants
                .values()
                .filter(|o| !o.is_self)
                .map(|o| o.nick.clone())
                .collect()
        })
    }

    /// Our nickname in the room.
    pub fn nick(&self, room: &talk::Id) -> Option<&str> {
        self.rooms.get(room)?.nick.as_deref()
    }

    /// Forgets an account's rooms (signed out, removed).
    pub fn remove_account(&mut self, account: &BareJid) {
        self.rooms.retain(|id, _| id.account() != account);
        if self
            .form
            .as_ref()
            .is_some_and(|f| f.account.as_ref() == Some(account))
        {
            self.form = None;
        }
        let panel_account = match &self.panel {
            Some(Panel::Directory(d)) => Some(&d.account),
            Some(Panel::Create(c)) => c.account.as_ref(),
            Some(Panel::Settings(s)) => Some(s.room.account()),
            None => None,
        };
        if panel_account == Some(account) {
            self.panel = None;
        }
        self.services.remove(account);
    }

    pub fn update(
        &mut self,
        message: Message,
        accounts: &[BareJid],
    ) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Show(account) => {
                // One way into a room at a time: the join form replaces
                // the create dialog (as the dialog takes the form's place).
                if matches!(self.panel, Some(Panel::Create(_))) {
                    self.panel = None;
                }
                let account = account.or_else(|| accounts.first().cloned());
                self.form = Some(Form {
                    nick: account.as_ref().map(default_nick).unwrap_or_default(),
                    account,
                    ..Form::default()
                });
                return (iced::widget::operation::focus(ADDRESS_INPUT), None);
            }
            Message::Account(super::chat::AccountChoice(account)) => {
                if let Some(form) = &mut self.form {
                    // A nickname the user did not change follows the account.
                    if form.account.as_ref().map(default_nick).as_deref()
                        == Some(form.nick.as_str())
                    {
                        form.nick = account.as_ref().map(default_nick).unwrap_or_default();
                    }
                    form.account = account;
                }
            }
            Message::Address(v) => {
                if let Some(form) = &mut self.form {
                    form.address = v;
                    form.error = None;
                }
            }
            Message::Nick(v) => {
                if let Some(form) = &mut self.form {
                    form.nick = v;
                    form.error = None;
                }
            }
            Message::Password(v) => {
                if let Some(form) = &mut self.form {
                    form.password = v;
                }
            }
            Message::Cancel => {
                let declined = self.form.take().and_then(|f| f.invitation);
                self.next_invitation();
                if let Some(invitation) = declined
                    && invitation.mediated
                {
                    return (
                        Task::none(),
                        Some(Event::Decline {
                            room: invitation.room,
                            inviter: invitation.by,
                        }),
                    );
                }
            }
            Message::Submit => {
                let Some(form) = &mut self.form else {
                    return (Task::none(), None);
                };
                form.offer_create = false;
                let room = room_address(&form.address);
                let (Some(account), Some(room)) = (form.account.clone(), room) else {
                    form.error = Some(fl!("room-join-invalid"));
                    return (Task::none(), None);
                };
                let nick = form.nick.trim().to_string();
                if nick.is_empty() {
                    form.error = Some(fl!("room-error-nick-invalid"));
                    return (Task::none(), None);
                }
                let id = talk::Id::room(account, room);
                form.waiting = Some(id.clone());
                form.error = None;
                let password = Some(form.password.clone()).filter(|p| !p.is_empty());
                self.rooms.entry(id.clone()).or_default().problem = None;
                return (
                    Task::none(),
                    Some(Event::Join {
                        room: id,
                        nick,
                        password,
                    }),
                );
            }
            Message::Leave(id) => {
                self.rooms.remove(&id);
                return (Task::none(), Some(Event::Leave(id)));
            }
            Message::Private(id) => return (Task::none(), Some(Event::Open(id))),
            Message::ShowDirectory(account) => {
                let Some(account) = account.or_else(|| accounts.first().cloned()) else {
                    return (Task::none(), None);
                };
                let mut directory =
                    directory::Directory::new(account.clone(), self.services.get(&account));
                let load = match directory.load() {
                    Some(directory::Event::Browse { account, service }) => {
                        Some(Event::Browse { account, service })
                    }
                    _ => None,
                };
                self.panel = Some(Panel::Directory(directory));
                return (
                    iced::widget::operation::focus(directory::SEARCH_INPUT),
                    load,
                );
            }
            Message::ShowCreate => {
                let form = self.form.take();
                let account = form
                    .as_ref()
                    .and_then(|f| f.account.clone())
                    .or_else(|| accounts.first().cloned());
                // From a join that found no room: that room, that nickname.
                let asked = form
                    .as_ref()
                    .filter(|f| f.offer_create)
                    .and_then(|f| room_address(&f.address));
                let nick = form
                    .as_ref()
                    .map(|f| f.nick.clone())
                    .filter(|n| !n.trim().is_empty())
                    .or_else(|| account.as_ref().map(default_nick))
                    .unwrap_or_default();
                let service = account.as_ref().and_then(|a| self.services.get(a));
                let create = setup::Create::new(account, service, nick, asked.as_ref());
                self.panel = Some(Panel::Create(create));
                return (iced::widget::operation::focus(setup::NAME_INPUT), None);
            }
            Message::ShowSettings(id) => {
                let (settings, ask) = setup::Settings::open(id);
                self.panel = Some(Panel::Settings(settings));
                let setup::SettingsEvent::Request(room, request) = ask else {
                    return (Task::none(), None);
                };
                return (Task::none(), Some(Event::Request(room, request)));
            }
            Message::Directory(message) => {
                let Some(Panel::Directory(directory)) = &mut self.panel else {
                    return (Task::none(), None);
                };
                let (task, event) = directory.update(message);
                let task = task.map(Message::Directory);
                return match event {
                    None => (task, None),
                    Some(directory::Event::Close) => {
                        self.panel = None;
                        (task, None)
                    }
                    Some(directory::Event::Join { account, room }) => {
                        self.panel = None;
                        let (show, _) = self.update(Message::Show(Some(account)), accounts);
                        let _ = self.update(Message::Address(room.to_string()), accounts);
                        (Task::batch([task, show]), None)
                    }
                    Some(directory::Event::Browse { account, service }) => {
                        (task, Some(Event::Browse { account, service }))
                    }
                };
            }
            Message::Create(message) => {
                let Some(Panel::Create(create)) = &mut self.panel else {
                    return (Task::none(), None);
                };
                let (task, event) = create.update(message, default_nick);
                let task = task.map(Message::Create);
                return match event {
                    None => (task, None),
                    Some(setup::CreateEvent::Close) => {
                        self.panel = None;
                        (task, None)
                    }
                    Some(setup::CreateEvent::Create {
                        room,
                        nick,
                        settings,
                    }) => {
                        self.rooms.entry(room.clone()).or_default().problem = None;
                        (
                            task,
                            Some(Event::Create {
                                room,
                                nick,
                                settings,
                            }),
                        )
                    }
                };
            }
            Message::Level(id, LevelChoice(level)) => {
                self.levels.insert(id.clone(), level);
                return (
                    Task::none(),
                    Some(Event::Preference(id, Preference::Level(level))),
                );
            }
            Message::Images(id, trusted) => {
                if trusted {
                    self.trusted.insert(id.clone());
                } else {
                    self.trusted.remove(&id);
                }
                return (
                    Task::none(),
                    Some(Event::Preference(id, Preference::Images(trusted))),
                );
            }
            Message::Settings(message) => {
                let Some(Panel::Settings(settings)) = &mut self.panel else {
                    return (Task::none(), None);
                };
                let (task, event) = settings.update(message);
                let task = task.map(Message::Settings);
                return match event {
                    None => (task, None),
                    Some(setup::SettingsEvent::Close) => {
                        self.panel = None;
                        (task, None)
                    }
                    Some(setup::SettingsEvent::Request(room, request)) => {
                        (task, Some(Event::Request(room, request)))
                    }
                };
            }
        }
        (Task::none(), None)
    }

    /// The notification levels the user chose before (from the configuration).
    pub fn set_levels(&mut self, levels: impl IntoIterator<Item = (talk::Id, RoomLevel)>) {
        self.levels.extend(levels);
    }

    /// The rooms the user trusted before (from the configuration).
    pub fn set_trusted(&mut self, rooms: impl IntoIterator<Item = talk::Id>) {
        self.trusted.extend(rooms);
    }

    /// Whether images from the room's occupants load by themselves.
    pub fn is_trusted(&self, id: &talk::Id) -> bool {
        self.trusted.contains(id)
    }

    /// Which of the room's messages notify: the user's choice, else all of a
    /// private group's and the mentions in anything else.
    pub fn level(&self, id: &talk::Id) -> RoomLevel {
        if let Some(level) = self.levels.get(id) {
            return *level;
        }
        let members_only = self
            .rooms
            .get(id)
            .and_then(|r| r.info.as_ref())
            .is_some_and(|i| i.members_only);
        RoomLevel::default_for(members_only)
    }

    /// What the account's worker found of its server's rooms.
    pub fn on_directory(&mut self, account: &BareJid, found: Directory) {
        match found {
            Directory::Service(service) => {
                let Some(service) = service else {
                    self.services.remove(account);
                    return;
                };
                match &mut self.panel {
                    Some(Panel::Create(create)) if create.account.as_ref() == Some(account) => {
                        create.service_found(&service);
                    }
                    _ => {}
                }
                self.services.insert(account.clone(), service);
            }
            Directory::Rooms { service, rooms } => {
                if let Some(Panel::Directory(directory)) = &mut self.panel
                    && &directory.account == account
                {
                    directory.on_rooms(&service, rooms);
                }
            }
            Directory::Listing(listing) => {
                if let Some(Panel::Directory(directory)) = &mut self.panel
                    && &directory.account == account
                {
                    directory.on_listing(listing);
                }
            }
        }
    }

    /// The dialog shown in the conversation's place, if one is open.
    pub fn panel_view<'a>(&'a self, accounts: &[BareJid]) -> Option<Element<'a, Message>> {
        Some(match self.panel.as_ref()? {
            Panel::Directory(directory) => directory.view().map(Message::Directory),
            Panel::Create(create) => create.view(accounts).map(Message::Create),
            Panel::Settings(settings) => settings.view().map(Message::Settings),
        })
    }

    /// The room the "Create a room" dialog waits for.
    pub fn creating(&self) -> Option<&talk::Id> {
        match &self.panel {
            Some(Panel::Create(create)) => create.waiting.as_ref(),
            _ => None,
        }
    }

    /// Whether a dialog is in the conversation's place.
    pub fn has_panel(&self) -> bool {
        self.panel.is_some()
    }

    /// Closes the dialog (another conversation was opened).
    pub fn close_panel(&mut self) {
        self.panel = None;
    }

    /// Whether the account owns this room (and so may change and destroy it).
    pub fn owns(&self, id: &talk::Id) -> bool {
        self.rooms.get(id).is_some_and(|room| {
            room.joined
                && room
                    .occupants
                    .values()
                    .any(|o| o.is_self && o.affiliation == Affiliation::Owner)
        })
    }

    /// Shows the next invitation waiting, when the form is free.
    fn next_invitation(&mut self) {
        if self.form.is_some() {
            return;
        }
        if let Some(invitation) = self.invitations.pop_front() {
            self.form = Some(Form {
                account: Some(invitation.room.account().clone()),
                address: invitation.room.peer().to_string(),
                nick: default_nick(invitation.room.account()),
                password: invitation.password.clone().unwrap_or_default(),
                invitation: Some(invitation),
                ..Form::default()
            });
        }
    }

    /// Who invites into the room the form shows, and why.
    fn invitation_text(invitation: &Invitation) -> String {
        let by = invitation.by.to_string();
        match &invitation.reason {
            Some(reason) => fl!("room-invited-reason", by = by, reason = reason.clone()),
            None => fl!("room-invited", by = by),
        }
    }

    /// What the account's worker said of a room.
    pub fn on_event(&mut self, account: &BareJid, room: &BareJid, event: RoomEvent) {
        let id = talk::Id::room(account.clone(), room.clone());
        if let RoomEvent::Invited {
            by,
            reason,
            password,
            mediated,
        } = event
        {
            let invitation = Invitation {
                room: id,
                by,
                reason,
                password,
                mediated,
            };
            let shown = self
                .form
                .as_ref()
                .and_then(|f| f.invitation.as_ref())
                .is_some_and(|i| i.room == invitation.room);
            if !shown
                && !self.invitations.iter().any(|i| i.room == invitation.room)
                && self.invitations.len() < MAX_INVITATIONS
            {
                self.invitations.push_back(invitation);
            }
            self.next_invitation();
            return;
        }
        let waiting = self
            .form
            .as_ref()
            .is_some_and(|f| f.waiting.as_ref() == Some(&id));
        // The dialogs hear of their room first.
        match (&mut self.panel, &event) {
            (Some(Panel::Create(create)), RoomEvent::Joined { .. })
                if create.waiting.as_ref() == Some(&id) =>
            {
                self.panel = None;
            }
            (Some(Panel::Create(create)), RoomEvent::JoinFailed(error))
                if create.waiting.as_ref() == Some(&id) =>
            {
                create.failed(join_error_text(error));
            }
            (Some(Panel::Settings(settings)), RoomEvent::Settings(found))
                if settings.room == id =>
            {
                settings.on_settings(found.clone());
            }
            (Some(Panel::Settings(settings)), RoomEvent::Configured) if settings.room == id => {
                settings.on_configured();
            }
            (Some(Panel::Settings(settings)), RoomEvent::Refused(why)) if settings.room == id => {
                settings.on_refused(why.clone());
            }
            (Some(Panel::Settings(settings)), RoomEvent::Left(_)) if settings.room == id => {
                self.panel = None;
            }
            _ => {}
        }
        let state = self.rooms.entry(id.clone()).or_default();
        match event {
            RoomEvent::Joined { nick } => {
                state.joined = true;
                state.nick = Some(nick);
                state.problem = None;
                if waiting {
                    self.form = None;
                    self.next_invitation();
                }
            }
            RoomEvent::JoinFailed(error) => {
                let said = join_error_text(&error);
                state.joined = false;
                state.occupants.clear();
                state.problem = Some(said.clone());
                if waiting && let Some(form) = &mut self.form {
                    form.waiting = None;
                    form.error = Some(said);
                    form.offer_create = error == JoinError::NotFound;
                }
            }
            RoomEvent::Occupant(occupant) => {
                // Those in the room when we came are not news (they come
                // before our own presence, which makes us joined).
                if state.joined && !state.occupants.contains_key(&occupant.nick) {
                    state
                        .activity
                        .push(Utc::now(), Change::Joined(occupant.nick.clone()));
                }
                state.occupants.insert(occupant.nick.clone(), occupant);
            }
            RoomEvent::OccupantLeft {
                nick,
                new_nick,
                why,
            } => {
                let gone = state.occupants.remove(&nick);
                // Under the new name at once: their presence under it is
                // no arrival.
                if let (Some(to), Some(mut occupant)) = (&new_nick, gone) {
                    occupant.nick = to.clone();
                    state.occupants.insert(to.clone(), occupant);
                }
                let change = match (new_nick, why) {
                    (Some(to), _) => Change::Renamed { from: nick, to },
                    (None, LeftReason::Kicked(_)) => Change::Kicked(nick),
                    (None, LeftReason::Banned(_)) => Change::Banned(nick),
                    (None, LeftReason::NoLongerMember) => Change::NoLongerMember(nick),
                    (None, _) => Change::Left(nick),
                };
                if state.joined {
                    state.activity.push(Utc::now(), change);
                }
            }
            RoomEvent::Subject { subject, .. } => state.subject = subject,
            RoomEvent::Invited { .. } => {}
            RoomEvent::Refused(why) => state.notice = Some(fl!("room-refused", reason = why)),
            // Shown in the settings dialog.
            RoomEvent::Settings(_) | RoomEvent::Configured => {}
            RoomEvent::Info(info) => state.info = Some(info),
            RoomEvent::Rejoining => {
                state.joined = false;
                state.occupants.clear();
                state.problem = None;
            }
            RoomEvent::Left(reason) => {
                state.joined = false;
                state.occupants.clear();
                state.problem = left_text(&reason);
                if reason == LeftReason::Requested {
                    self.rooms.remove(&id);
                }
            }
        }
    }

    /// Who came and went in a room, while we were in it this session.
    pub fn activity(&self, id: &talk::Id) -> Option<&Log> {
        self.rooms.get(id).map(|r| &r.activity)
    }

    /// The room's line under its name: who is in it and its subject, or
    /// why we are not in it.
    pub fn detail(&self, id: &talk::Id) -> String {
        let Some(room) = self.rooms.get(id) else {
            return fl!("room-not-joined");
        };
        if let Some(problem) = &room.problem {
            return problem.clone();
        }
        if !room.joined {
            return fl!("room-joining");
        }
        if let Some(notice) = &room.notice {
            return notice.clone();
        }
        let people = fl!("room-people", count = room.occupants.len());
        match room.subject.lines().next() {
            Some(subject) if !subject.trim().is_empty() => format!("{people} · {subject}"),
            _ => people,
        }
    }

    /// Who is in the room, moderators first, each in their nickname's colour.
    pub fn occupants_view(&self, id: &talk::Id) -> Option<Element<'_, Message>> {
        if id.kind() != Kind::Room {
            return None;
        }
        let room = self.rooms.get(id)?;
        let mut by_role: Vec<&Occupant> = room.occupants.values().collect();
        by_role.sort_by(|a, b| a.role.cmp(&b.role).then_with(|| a.nick.cmp(&b.nick)));
        let mut list = column![].spacing(4).padding([10, 12]);
        let mut last_role = None;
        for occupant in by_role {
            if last_role != Some(occupant.role) {
                last_role = Some(occupant.role);
                let title = match occupant.role {
                    Role::Moderator => fl!("room-role-moderators"),
                    Role::Participant => fl!("room-role-participants"),
                    Role::Visitor => fl!("room-role-visitors"),
                    Role::None => fl!("room-role-others"),
                };
                list = list.push(
                    container(text(title.to_uppercase()).size(11).style(theme::muted_text))
                        .padding([6, 0]),
                );
            }
            let nick = occupant.nick.clone();
            let dot_availability = occupant.availability;
            // A click writes to them privately (not to ourselves).
            let private = (!occupant.is_self)
                .then(|| talk::Id::private_with(id.account().clone(), &id.bare(), &occupant.nick))
                .flatten();
            let line = row![
                container(Space::new().width(8).height(8)).style(move |t: &iced::Theme| {
                    theme::dot(theme::availability(t, dot_availability))(t)
                }),
                text(occupant.nick.clone())
                    .size(13)
                    .style(move |t| text::Style {
                        color: Some(theme::jid_color(t, &nick)),
                    }),
            ]
            .spacing(6)
            .align_y(Alignment::Center);
            list = list.push(
                button(line)
                    .padding([2, 4])
                    .width(Fill)
                    .style(theme::list_item(false))
                    .on_press_maybe(private.map(Message::Private)),
            );
        }
        Some(
            container(scrollable(list).height(Fill))
                .width(180)
                .height(Fill)
                .style(theme::header)
                .into(),
        )
    }

    /// "Join a room" above the list, or its form.
    pub fn join_view<'a>(&'a self, accounts: &[BareJid]) -> Element<'a, Message> {
        let Some(form) = &self.form else {
            // Narrow enough to stay on one line beside each other in the
            // sidebar with the fonts of every system.
            let link = |label: String, message: Message| {
                button(text(label).size(12))
                    .padding([2, 3])
                    .style(theme::link_button)
                    .on_press(message)
            };
            return row![
                link(fl!("room-join"), Message::Show(None)),
                link(fl!("room-browse"), Message::ShowDirectory(None)),
                link(fl!("room-create"), Message::ShowCreate),
            ]
            .spacing(2)
            .wrap()
            .into();
        };
        let mut tools = column![].spacing(6).padding([4, 4]);
        if accounts.len() > 1 {
            let choices: Vec<super::chat::AccountChoice> = accounts
                .iter()
                .map(|a| super::chat::AccountChoice(Some(a.clone())))
                .collect();
            tools = tools.push(
                pick_list(
                    choices,
                    Some(super::chat::AccountChoice(form.account.clone())),
                    Message::Account,
                )
                .text_size(13)
                .padding([4, 8])
                .width(Fill),
            );
        }
        let input = |placeholder: String, value: &str, on: fn(String) -> Message| {
            text_input(&placeholder, value)
                .on_input(on)
                .on_submit(Message::Submit)
                .size(13)
                .padding([4, 8])
                .style(theme::input)
        };
        tools = tools
            .push(
                input(fl!("room-join-address"), &form.address, Message::Address).id(ADDRESS_INPUT),
            )
            .push(input(fl!("room-join-nick"), &form.nick, Message::Nick))
            .push(input(fl!("room-join-password"), &form.password, Message::Password).secure(true));
        if let Some(invitation) = &form.invitation {
            tools = tools.push(text(Self::invitation_text(invitation)).size(13));
        }
        if let Some(error) = &form.error {
            tools = tools.push(text(error.clone()).size(12).style(|t| text::Style {
                color: Some(theme::danger_text(t)),
            }));
        }
        if form.offer_create {
            tools = tools.push(
                button(text(fl!("room-create-offer")).size(13))
                    .padding([2, 0])
                    .style(theme::link_button)
                    .on_press(Message::ShowCreate),
            );
        }
        let submit = button(
            text(if form.waiting.is_some() {
                fl!("room-joining")
            } else {
                fl!("room-join-submit")
            })
            .size(13),
        )
        .padding([4, 12])
        .style(theme::primary_button);
        tools
            .push(
                row![
                    if form.waiting.is_some() {
                        submit
                    } else {
                        submit.on_press(Message::Submit)
                    },
                    button(
                        text(if form.invitation.is_some() {
                            fl!("room-invited-decline")
                        } else {
                            fl!("contacts-add-cancel")
                        })
                        .size(13)
                    )
                    .padding([4, 8])
                    .style(theme::link_button)
                    .on_press(Message::Cancel),
                ]
                .spacing(8),
            )
            .into()
    }

    /// "Settings" (owners) and "Leave" in the room's header.
    pub fn header_buttons(&self, id: &talk::Id) -> Option<Element<'_, Message>> {
        if id.kind() != Kind::Room || !self.rooms.contains_key(id) {
            return None;
        }
        let link = |label: String, message: Message| {
            button(text(label).size(12))
                .padding(0)
                .style(theme::link_button)
                .on_press(message)
        };
        let settings = self
            .owns(id)
            .then(|| link(fl!("room-settings"), Message::ShowSettings(id.clone())));
        let room = id.clone();
        let level = pick_list(
            [RoomLevel::All, RoomLevel::Mentions, RoomLevel::Never].map(LevelChoice),
            Some(LevelChoice(self.level(id))),
            move |choice| Message::Level(room.clone(), choice),
        )
        .text_size(12)
        .padding([2, 6]);
        let room = id.clone();
        let images = iced::widget::tooltip(
            checkbox(self.is_trusted(id))
                .label(fl!("room-images"))
                .on_toggle(move |on| Message::Images(room.clone(), on))
                .text_size(12)
                .size(14)
                .spacing(6),
            container(text(fl!("room-images-tooltip")).size(12))
                .padding(6)
                .max_width(280)
                .style(container::rounded_box),
            iced::widget::tooltip::Position::Bottom,
        );
        Some(
            row![
                level,
                images,
                settings,
                link(fl!("room-leave"), Message::Leave(id.clone()))
            ]
            .spacing(12)
            .align_y(Alignment::Center)
            .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invited(by: &str, mediated: bool) -> RoomEvent {
        RoomEvent::Invited {
            by: by.parse().unwrap(),
            reason: Some("come along".into()),
            password: Some("pw".into()),
            mediated,
        }
    }

    fn someone(nick: &str, is_self: bool) -> RoomEvent {
        RoomEvent::Occupant(Occupant {
            nick: nick.into(),
            jid: None,
            role: Role::Participant,
            affiliation: Affiliation::None,
            availability: crate::xmpp::Availability::Available,
            occupant_id: None,
            is_self,
        })
    }

    /// Comings and goings are kept from our own join on: those already
    /// there are not news, a change of presence is not an arrival, and a
    /// removal is told as one.
    #[test]
    fn activity_starts_with_our_join() {
        let account: BareJid = "alice@example.org".parse().unwrap();
        let lounge: BareJid = "lounge@muc.example.org".parse().unwrap();
        let id = talk::Id::room(account.clone(), lounge.clone());
        let mut state = State::default();
        state.on_event(&account, &lounge, someone("Bob", false));
        state.on_event(&account, &lounge, someone("Alice", true));
        state.on_event(
            &account,
            &lounge,
            RoomEvent::Joined {
                nick: "Alice".into(),
            },
        );
        state.on_event(&account, &lounge, someone("Bob", false));
        state.on_event(&account, &lounge, someone("Mallory", false));
        state.on_event(
            &account,
            &lounge,
            RoomEvent::OccupantLeft {
                nick: "Mallory".into(),
                new_nick: None,
                why: LeftReason::Kicked(Some("spam".into())),
            },
        );
        let changes: Vec<Change> = state
            .activity(&id)
            .unwrap()
            .iter()
            .map(|a| a.change.clone())
            .collect();
        assert_eq!(
            changes,
            [
                Change::Joined("Mallory".into()),
                Change::Kicked("Mallory".into())
            ]
        );
    }

    /// Invitations open the join form one at a time, filled in; declining
    /// one that came through the room tells the inviter, and the next shows.
    #[test]
    fn invitations_fill_the_join_form_in_turn() {
        let account: BareJid = "alice@example.org".parse().unwrap();
        let study: BareJid = "study@muc.example.org".parse().unwrap();
        let den: BareJid = "den@muc.example.org".parse().unwrap();
        let mut state = State::default();
        state.on_event(&account, &study, invited("bob@example.org", true));
        state.on_event(&account, &den, invited("carol@example.org", false));
        // The same again is not asked twice.
        state.on_event(&account, &den, invited("carol@example.org", false));
        let form = state.form.as_ref().expect("the form opened");
        assert_eq!(form.address, "study@muc.example.org");
        assert_eq!(form.password, "pw");
        assert_eq!(form.nick, "alice");
        assert!(
            State::invitation_text(form.invitation.as_ref().unwrap()).contains("bob@example.org")
        );
        assert!(
            !state
                .rooms
                .contains_key(&talk::Id::room(account.clone(), study.clone()))
        );
        let (_, event) = state.update(Message::Cancel, std::slice::from_ref(&account));
        assert!(matches!(event, Some(Event::Decline { room, inviter })
            if room.bare() == study && inviter.as_str() == "bob@example.org"));
        let form = state.form.as_ref().expect("the next invitation");
        assert_eq!(form.address, "den@muc.example.org");
        // A direct invitation has no one to tell: declining just closes it.
        let (_, event) = state.update(Message::Cancel, std::slice::from_ref(&account));
        assert!(event.is_none());
        assert!(state.form.is_none());
    }
}
