//! The main window: the accounts and the user's presence, every account's
//! conversations and contacts on the left, the open conversation on the right.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{Local, Utc};
use iced::widget::{
    Space, button, column, container, pick_list, row, scrollable, text, text_input,
};
use iced::{Alignment, Element, Fill, Length, Task};

mod summary;

use self::summary::Summary;
use super::{conversation, room, sharing};
use crate::conversation::{self as talk, Direction, Kind};
use crate::fl;
use crate::link::Target;
use crate::roster::Roster;
use crate::store::Store;
use crate::theme;
use crate::xmpp::room::RoomEvent;
use crate::xmpp::{
    Availability, BareJid, Command, ConnectionState, Contact, Failure, OwnPresence, SaslCondition,
};

pub struct State {
    store: Store,
    /// The accounts shown, in the order they were added.
    accounts: Vec<Account>,
    /// Every account's conversations, most recent first.
    conversations: Vec<Summary>,
    /// The user's presence as chosen for every account (as Gajim and Dino
    /// do), which accounts added later take; each account can differ from
    /// it (see [`Account::presence`]).
    own: OwnPresence,
    status_draft: String,
    tab: Tab,
    open: Option<conversation::State>,
    window_focused: bool,
    add_contact: Option<AddContact>,
    /// Every account's rooms, and the join form.
    rooms: room::State,
    sharing: sharing::State,
    /// Something that went wrong outside the chat (the password not kept…), until dismissed.
    notice: Option<String>,
    /// Text typed but not sent, by conversation (the open one's as of its last edit).
    drafts: BTreeMap<talk::Id, String>,
    /// Conversations whose draft changed since it was last written to the store.
    drafts_unsaved: BTreeSet<talk::Id>,
    /// A write of drafts is under way: the next waits for it, so they land in order.
    drafts_saving: bool,
    /// Where the list pane is scrolled to and how tall it is: only the
    /// conversation rows in sight are built.
    list_viewport: ListViewport,
    /// The list shows only this account's chats and contacts (`None`: all).
    filter: Option<BareJid>,
    /// The account whose removal waits for the user's answer.
    removing: Option<BareJid>,
    /// A link's chat (and text) waiting for the user to choose an account.
    choosing: Option<(BareJid, Option<String>)>,
}

/// One signed-in (or signing-in) account, as the window shows it.
struct Account {
    jid: BareJid,
    /// Where it comes in the configuration: accounts are shown in that
    /// order, however their sign-ins finish.
    rank: usize,
    /// What it announces: the choice for every account, or its own.
    presence: OwnPresence,
    connection: ConnectionState,
    roster: Roster,
    /// People asking to see our presence, oldest first.
    requests: Vec<BareJid>,
}

/// The visible part of the list pane, from its scrollable.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ListViewport {
    offset: f32,
    height: f32,
}

impl Default for ListViewport {
    /// Before the first report: the top, and taller than any screen.
    fn default() -> Self {
        Self {
            offset: 0.0,
            height: 2160.0,
        }
    }
}

/// The height of one conversation row; fixed, so that rows out of sight can
/// be left out and replaced by space of the same height.
const ROW_HEIGHT: f32 = 52.0;
/// Space between rows.
const ROW_SPACING: f32 = 2.0;
/// Rows built beyond each edge of the pane, so that scrolling shows no gap.
const ROWS_BEYOND: usize = 10;

/// The rows of a list of `total` that a pane scrolled to `viewport` shows.
fn rows_in_sight(viewport: ListViewport, total: usize) -> std::ops::Range<usize> {
    let pitch = ROW_HEIGHT + ROW_SPACING;
    // Float to index: the values are pixels, far below usize's range; NaN becomes 0.
    let first = (viewport.offset.max(0.0) / pitch).floor() as usize;
    let shown = (viewport.height.max(0.0) / pitch).ceil() as usize + 1;
    // The scrollable says nothing while its content fits: a position left
    // from a longer list or a smaller window must not hide rows then.
    let first = first.min(total.saturating_sub(shown));
    let start = first.saturating_sub(ROWS_BEYOND).min(total);
    let end = first
        .saturating_add(shown)
        .saturating_add(ROWS_BEYOND)
        .min(total);
    start..end
}

/// The "add contact" form of the contact list.
#[derive(Debug, Clone, Default)]
struct AddContact {
    /// The account the contact is added to (asked when there are several).
    account: Option<BareJid>,
    jid: String,
    name: String,
    error: Option<String>,
}

pub const ADD_CONTACT_JID: &str = "add-contact-jid";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Chats,
    Contacts,
}

#[derive(Debug, Clone)]
pub enum Message {
    Tab(Tab),
    Open(talk::Id),
    Availability(AvailabilityChoice),
    /// One account's own availability, apart from the others'.
    AccountAvailability(BareJid, AvailabilityChoice),
    StatusDraft(String),
    StatusSubmit,
    RetryNow(BareJid),
    SignOut(BareJid),
    /// Asks whether to remove an account from Tern.
    Remove(BareJid),
    /// The answer: remove it (and its history on this computer, or not), or not.
    ConfirmRemove(BareJid, bool),
    CancelRemove,
    /// Open the chat a link named with this account.
    ChooseAccount(BareJid),
    CancelChoose,
    AddAccount,
    /// Show one account's chats and contacts only (`None`: all).
    Filter(Option<BareJid>),
    OpenSettings,
    DismissNotice,
    ConversationsLoaded(Result<Vec<Summary>, String>),
    DraftsLoaded(Result<Vec<(talk::Id, String)>, String>),
    DraftsSaved,
    MarkedRead,
    ShowAddContact,
    AddContactJid(String),
    AddContactName(String),
    AddContactAccount(AccountChoice),
    AddContactSubmit,
    AddContactCancel,
    /// An account's answer to someone asking to see its presence.
    Answer(BareJid, BareJid, bool),
    Conversation(conversation::Message),
    Sharing(sharing::Message),
    /// Files dragged over the window (or no longer: `None`).
    FilesHovered(bool),
    FileDropped(std::path::PathBuf),
    /// Ctrl+V: the clipboard may hold files or an image to send.
    Paste,
    /// The list pane scrolled or changed size.
    ListScrolled(scrollable::Viewport),
    Room(room::Message),
}

pub enum Event {
    /// Something for this account's worker to do (send, contacts, retry).
    Worker(BareJid, Command),
    /// The user's presence changed: what the accounts that changed now
    /// announce, and what accounts added later announce.
    Presence {
        changed: Vec<(BareJid, OwnPresence)>,
        default: OwnPresence,
    },
    SignOut(BareJid),
    /// Remove the account from Tern (signed out, forgotten), and its history
    /// on this computer when `delete_history`.
    Remove {
        account: BareJid,
        delete_history: bool,
    },
    /// The user asks to add an account (the sign-in form).
    AddAccount,
    OpenSettings,
    /// The user changed one of a room's own settings: keep it.
    RoomPreference {
        room: talk::Id,
        preference: room::Preference,
    },
}

/// An account in a pick list (its JID; "All accounts" for `None` in the filter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChoice(pub Option<BareJid>);

impl std::fmt::Display for AccountChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(jid) => f.write_str(jid.as_str()),
            None => f.write_str(&fl!("accounts-all")),
        }
    }
}

/// The own-presence choices, with their labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvailabilityChoice(pub Availability);

impl AvailabilityChoice {
    const ALL: [AvailabilityChoice; 5] = [
        Self(Availability::Available),
        Self(Availability::Chat),
        Self(Availability::Away),
        Self(Availability::ExtendedAway),
        Self(Availability::DoNotDisturb),
    ];
}

impl std::fmt::Display for AvailabilityChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&availability_label(self.0))
    }
}

pub fn availability_label(a: Availability) -> String {
    match a {
        Availability::Available => fl!("presence-available"),
        Availability::Chat => fl!("presence-chat"),
        Availability::Away => fl!("presence-away"),
        Availability::ExtendedAway => fl!("presence-xa"),
        Availability::DoNotDisturb => fl!("presence-dnd"),
        Availability::Offline => fl!("presence-offline"),
    }
}

impl State {
    /// The window with no account yet (see [`State::add_account`]).
    pub fn new(store: Store, sharing: sharing::Context) -> Self {
        Self {
            store,
            accounts: Vec::new(),
            conversations: Vec::new(),
            own: OwnPresence::default(),
            status_draft: String::new(),
            tab: Tab::Chats,
            open: None,
            window_focused: true,
            add_contact: None,
            rooms: room::State::default(),
            sharing: sharing::State::new(sharing),
            notice: None,
            drafts: BTreeMap::new(),
            drafts_unsaved: BTreeSet::new(),
            drafts_saving: false,
            list_viewport: ListViewport::default(),
            filter: None,
            removing: None,
            choosing: None,
        }
    }

    /// The presence chosen for every account (the window made again, after
    /// signing in anew): accounts added from now on announce it.
    pub fn set_default_presence(&mut self, own: OwnPresence) {
        self.status_draft.clone_from(&own.status);
        self.own = own;
    }

    /// Shows an account (signing in) and loads its conversations and drafts.
    pub fn add_account(&mut self, jid: BareJid, rank: usize) -> Task<Message> {
        if self.has_account(&jid) {
            return Task::none();
        }
        let at = self.accounts.partition_point(|a| a.rank <= rank);
        self.accounts.insert(
            at,
            Account {
                jid: jid.clone(),
                rank,
                presence: self.own.clone(),
                connection: ConnectionState::Connecting,
                roster: Roster::default(),
                requests: Vec::new(),
            },
        );
        Task::batch([self.load_conversations(&jid), self.load_drafts(&jid)])
    }

    /// Our nickname in a room the window knows.
    pub fn room_nick(&self, room: &talk::Id) -> Option<&str> {
        self.rooms.nick(room)
    }

    /// What an account's worker said of one of its rooms.
    pub fn room_event(
        &mut self,
        account: &BareJid,
        room: &BareJid,
        event: RoomEvent,
    ) -> Task<Message> {
        if !self.has_account(account) {
            return Task::none();
        }
        let id = talk::Id::room(account.clone(), room.clone());
        let mut open = false;
        // A room joined (from a bookmark, say) is in the list before anyone speaks.
        if matches!(event, RoomEvent::Joined { .. }) {
            if !self.conversations.iter().any(|c| c.id == id) {
                self.conversations.push(Summary::empty(&id));
            }
            // The room the user just created opens in the dialog's place.
            open = self.rooms.creating() == Some(&id);
        }
        self.rooms.on_event(account, room, event);
        if open {
            return self.open_chat(id, None);
        }
        Task::none()
    }

    /// Which of a room's messages notify.
    pub fn room_level(&self, room: &talk::Id) -> crate::notification::RoomLevel {
        self.rooms.level(room)
    }

    /// The rooms trusted before, whose images load by themselves.
    pub fn set_trusted_rooms(&mut self, rooms: impl IntoIterator<Item = talk::Id>) {
        self.rooms.set_trusted(rooms);
    }

    /// The notification levels chosen for rooms before.
    pub fn set_room_levels(
        &mut self,
        levels: impl IntoIterator<Item = (talk::Id, crate::notification::RoomLevel)>,
    ) {
        self.rooms.set_levels(levels);
    }

    /// What an account's worker found of its server's rooms.
    pub fn directory_event(&mut self, account: &BareJid, found: crate::xmpp::room::Directory) {
        if self.has_account(account) {
            self.rooms.on_directory(account, found);
        }
    }

    /// No longer shows an account (signed out or removed): its chats and
    /// contacts leave the window, its history stays on disk.
    pub fn remove_account(&mut self, jid: &BareJid) {
        self.rooms.remove_account(jid);
        self.accounts.retain(|a| &a.jid != jid);
        self.conversations.retain(|c| c.id.account() != jid);
        self.drafts.retain(|id, _| id.account() != jid);
        if self.open.as_ref().is_some_and(|o| o.id().account() == jid) {
            self.open = None;
        }
        if self.filter.as_ref() == Some(jid) {
            self.filter = None;
        }
    }

    pub fn has_account(&self, jid: &BareJid) -> bool {
        self.accounts.iter().any(|a| &a.jid == jid)
    }

    /// The accounts shown, in order.
    pub fn accounts(&self) -> impl Iterator<Item = &BareJid> {
        self.accounts.iter().map(|a| &a.jid)
    }

    fn account_mut(&mut self, jid: &BareJid) -> Option<&mut Account> {
        self.accounts.iter_mut().find(|a| &a.jid == jid)
    }

    fn account(&self, jid: &BareJid) -> Option<&Account> {
        self.accounts.iter().find(|a| &a.jid == jid)
    }

    /// Shows a problem the user should know about above the lists.
    pub fn set_notice(&mut self, notice: String) {
        self.notice = Some(notice);
    }

    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    pub fn connection(&self, account: &BareJid) -> Option<&ConnectionState> {
        self.account(account).map(|a| &a.connection)
    }

    pub fn open_peer(&self) -> Option<&BareJid> {
        self.open.as_ref().map(|c| c.peer())
    }

    /// The open conversation's id.
    pub fn open_id(&self) -> Option<&talk::Id> {
        self.open.as_ref().map(|c| c.id())
    }

    pub fn conversation(&self) -> Option<&conversation::State> {
        self.open.as_ref()
    }

    pub fn roster(&self, account: &BareJid) -> Option<&Roster> {
        self.account(account).map(|a| &a.roster)
    }

    /// The name the user gave a contact of this account, if any.
    pub fn contact_name(&self, account: &BareJid, peer: &BareJid) -> Option<String> {
        self.roster(account)?.get(peer)?.name.clone()
    }

    /// Total unread messages of every account, for the window title.
    pub fn unread(&self) -> u32 {
        self.conversations.iter().map(|c| c.unread).sum()
    }

    pub fn set_connection(&mut self, account: &BareJid, state: ConnectionState) {
        let Some(account) = self.account_mut(account) else {
            return;
        };
        if !matches!(state, ConnectionState::Online { .. }) {
            account.roster.clear_presence();
        }
        account.connection = state;
    }

    pub fn set_roster(&mut self, account: &BareJid, contacts: Vec<Contact>) {
        if let Some(account) = self.account_mut(account) {
            account.roster.replace(contacts);
        }
    }

    pub fn roster_push(&mut self, account: &BareJid, contact: Contact) {
        if let Some(account) = self.account_mut(account) {
            account.roster.push(contact);
        }
    }

    pub fn presence(
        &mut self,
        account: &BareJid,
        from: &crate::xmpp::Jid,
        a: Availability,
        status: Option<String>,
    ) {
        if let Some(account) = self.account_mut(account) {
            account.roster.presence(from, a, status);
        }
    }

    /// Someone asks to see our presence; contacts we already share presence with are
    /// answered by the server, so what arrives here needs the user.
    pub fn subscription_request(&mut self, account: &BareJid, from: BareJid) {
        if let Some(account) = self.account_mut(account)
            && !account.requests.contains(&from)
        {
            account.requests.push(from);
        }
    }

    pub fn set_window_focused(&mut self, focused: bool) -> Task<Message> {
        self.window_focused = focused;
        if focused {
            self.mark_open_read()
        } else {
            Task::none()
        }
    }

    /// Messages stored by a worker: update the list and the open conversation;
    /// incoming `news` not being read counts as unread (history does not).
    pub fn messages(&mut self, records: Vec<talk::Message>, news: bool) -> Task<Message> {
        let mut read_open = false;
        // History arriving in an empty open chat (a first sign-in): show its end.
        let was_empty = self.open.as_ref().is_some_and(|o| o.records().is_empty());
        for record in records {
            if !self.has_account(record.conversation.account()) {
                continue;
            }
            let reading = self.window_focused && self.open_id() == Some(&record.conversation);
            let conv = match self
                .conversations
                .iter()
                .position(|c| c.id == record.conversation)
            {
                Some(i) => {
                    let c = self.conversations.remove(i);
                    self.conversations.insert(0, c);
                    &mut self.conversations[0]
                }
                None => {
                    self.conversations
                        .insert(0, Summary::empty(&record.conversation));
                    &mut self.conversations[0]
                }
            };
            conv.last_time = Some(record.time);
            conv.last_body = preview_line(&record.body);
            conv.last_direction = Some(record.direction);
            conv.last_encrypted = record.encryption.is_some();
            if record.direction == Direction::In && news {
                if reading {
                    read_open = true;
                } else {
                    conv.unread = conv.unread.saturating_add(1);
                }
            }
            if let Some(open) = &mut self.open {
                open.push(record.into());
            }
        }
        let read = if read_open {
            self.mark_open_read()
        } else {
            Task::none()
        };
        let previews = self.previews();
        if was_empty && self.open.as_ref().is_some_and(|o| !o.records().is_empty()) {
            let end = conversation::scroll_to_end().map(Message::Conversation);
            return Task::batch([read, end, previews]);
        }
        Task::batch([read, previews])
    }

    /// Older history fetched from an account's archive: only the open
    /// conversation shows it.
    pub fn history(
        &mut self,
        conversation: &talk::Id,
        records: Vec<talk::Message>,
        more: bool,
    ) -> Task<Message> {
        if let Some(open) = &mut self.open
            && open.id() == conversation
        {
            open.history(records.into_iter().map(Into::into).collect(), more);
        }
        self.previews()
    }

    /// What an account's worker found out about its server's file sharing service.
    pub fn upload_service(
        &mut self,
        account: &BareJid,
        service: Option<crate::xmpp::UploadService>,
    ) {
        self.sharing.set_service(account, service);
    }

    /// The server's answer to an upload slot request.
    pub fn slot(
        &mut self,
        id: &str,
        result: Result<crate::xmpp::Slot, crate::xmpp::SlotError>,
    ) -> Task<Message> {
        self.sharing.slot(id, result).map(Message::Sharing)
    }

    /// File sharing, for tests and automation.
    pub fn sharing(&self) -> &sharing::State {
        &self.sharing
    }

    /// New file settings: the download folder, which images load by themselves.
    pub fn set_files(&mut self, files: crate::config::FilesConfig) -> Task<Message> {
        self.sharing.set_files(files);
        // Images the new limits allow start loading now.
        self.previews()
    }

    /// Starts loading the previews the open conversation shows.
    fn previews(&mut self) -> Task<Message> {
        let Some(open) = &self.open else {
            return Task::none();
        };
        let id = open.id();
        let account = id.account();
        let roster = self
            .accounts
            .iter()
            .find(|a| &a.jid == account)
            .map(|a| &a.roster);
        // A room's occupants (and their private messages) are strangers
        // unless the user trusts the room; a chat's peer, when a contact.
        let room_trusted = id.kind() != talk::Kind::Chat
            && self
                .rooms
                .is_trusted(&talk::Id::room(account.clone(), id.bare()));
        let chat = id.kind() == talk::Kind::Chat;
        let trusted = |peer: &BareJid| {
            room_trusted || (chat && roster.is_some_and(|r| r.get(peer).is_some()))
        };
        self.sharing
            .request_previews(open.records(), trusted)
            .map(Message::Sharing)
    }

    fn on_sharing(&mut self, message: sharing::Message) -> (Task<Message>, Option<Event>) {
        let (task, event) = self.sharing.update(message);
        let task = task.map(Message::Sharing);
        match event {
            Some(sharing::Event::Worker(account, command)) => {
                (task, Some(Event::Worker(account, command)))
            }
            None => (task, None),
        }
    }

    /// A stored message changed (delivery state): show the new state.
    pub fn updated(&mut self, record: talk::Message) {
        if let Some(open) = &mut self.open {
            open.replace(record.into());
        }
    }

    /// Opens (or focuses) a conversation, with an optional draft.
    pub fn open_chat(&mut self, id: talk::Id, draft: Option<String>) -> Task<Message> {
        self.rooms.close_panel();
        if self.open_id() == Some(&id) && draft.is_none() {
            return iced::widget::operation::focus(conversation::COMPOSER);
        }
        // A link's text goes after the chat's draft, never in its place: a
        // click must not throw away what the user typed.
        let draft = merge_draft(self.drafts.get(&id).map(String::as_str), draft);
        let unread = self
            .conversations
            .iter()
            .find(|c| c.id == id)
            .map_or(0, |c| c.unread);
        let (state, task) = conversation::State::open(&self.store, id, draft, unread);
        self.open = Some(state);
        self.tab = Tab::Chats;
        let save = self.note_draft();
        Task::batch([task.map(Message::Conversation), self.mark_open_read(), save])
    }

    /// Opens the chat an `xmpp:` link names, with the account that has
    /// that contact; when none or several do (and there is more than one
    /// account), the window asks which account to use.
    pub fn open_link(&mut self, peer: BareJid, body: Option<String>) -> Task<Message> {
        let with_contact: Vec<&BareJid> = self
            .accounts
            .iter()
            .filter(|a| a.roster.get(&peer).is_some())
            .map(|a| &a.jid)
            .collect();
        let account = match (with_contact.as_slice(), self.accounts.as_slice()) {
            ([one], _) => (*one).clone(),
            (_, [only]) => only.jid.clone(),
            ([], []) => return Task::none(),
            _ => {
                self.choosing = Some((peer, body));
                return Task::none();
            }
        };
        self.open_chat(talk::Id::chat(account, peer), body)
    }

    /// An `xmpp:…?join` link: the join form, filled in with the room (the
    /// user chooses the nickname and account, and presses Join).
    pub fn open_join(&mut self, room: &BareJid) -> Task<Message> {
        let accounts: Vec<BareJid> = self.accounts.iter().map(|a| a.jid.clone()).collect();
        // Already in it: the link opens it.
        if let Some(id) = accounts
            .iter()
            .map(|a| talk::Id::room(a.clone(), room.clone()))
            .find(|id| self.rooms.is_joined(id))
        {
            return self.open_chat(id, None);
        }
        self.tab = Tab::Chats;
        let (show, _) = self.rooms.update(room::Message::Show(None), &accounts);
        let _ = self
            .rooms
            .update(room::Message::Address(room.to_string()), &accounts);
        show.map(Message::Room)
    }

    /// The link waiting for the user to choose an account, for tests and automation.
    pub fn choosing_account_for(&self) -> Option<&BareJid> {
        self.choosing.as_ref().map(|(peer, _)| peer)
    }

    /// Takes note of the open composer's text as its chat's draft, and writes
    /// what changed to the store (one write at a time, off the UI thread).
    fn note_draft(&mut self) -> Task<Message> {
        if let Some(open) = &self.open {
            let id = open.id().clone();
            let text = open.draft();
            let known = self.drafts.get(&id).map_or("", String::as_str);
            if text != known {
                if text.trim().is_empty() {
                    self.drafts.remove(&id);
                } else {
                    self.drafts.insert(id.clone(), text);
                }
                self.drafts_unsaved.insert(id);
            }
        }
        self.save_drafts()
    }

    fn save_drafts(&mut self) -> Task<Message> {
        if self.drafts_saving || self.drafts_unsaved.is_empty() {
            return Task::none();
        }
        let changed: Vec<(talk::Id, String)> = std::mem::take(&mut self.drafts_unsaved)
            .into_iter()
            .map(|id| {
                let text = self.drafts.get(&id).cloned().unwrap_or_default();
                (id, text)
            })
            .collect();
        self.drafts_saving = true;
        self.write_store(
            move |store| {
                for (id, text) in changed {
                    if let Err(e) = store.set_draft(&id, &text) {
                        tracing::warn!("cannot keep a draft: {e}");
                    }
                }
            },
            Message::DraftsSaved,
        )
    }

    /// Writes to the history on tokio's blocking pool, then says `done`.
    fn write_store(
        &self,
        write: impl FnOnce(&Store) + Send + 'static,
        done: Message,
    ) -> Task<Message> {
        let store = self.store.clone();
        Task::perform(
            async move {
                let _ = tokio::task::spawn_blocking(move || write(&store)).await;
            },
            move |_| done,
        )
    }

    fn load_drafts(&self, account: &BareJid) -> Task<Message> {
        let account = account.to_string();
        self.read_store(move |store| store.drafts(&account), Message::DraftsLoaded)
    }

    /// Reads from the history on tokio's blocking pool: the UI never waits on disk.
    fn read_store<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Store) -> Result<T, crate::store::Error> + Send + 'static,
        done: fn(Result<T, String>) -> Message,
    ) -> Task<Message> {
        let store = self.store.clone();
        Task::perform(
            async move {
                tokio::task::spawn_blocking(move || read(&store).map_err(|e| e.to_string()))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r)
            },
            done,
        )
    }

    fn mark_open_read(&mut self) -> Task<Message> {
        let Some(id) = self.open_id().cloned() else {
            return Task::none();
        };
        let Some(conv) = self.conversations.iter_mut().find(|c| c.id == id) else {
            return Task::none();
        };
        if conv.unread == 0 {
            return Task::none();
        }
        conv.unread = 0;
        self.write_store(
            move |store| {
                if let Err(e) = store.mark_read(&id) {
                    tracing::warn!("cannot mark the conversation read: {e}");
                }
            },
            Message::MarkedRead,
        )
    }

    fn load_conversations(&self, account: &BareJid) -> Task<Message> {
        let account = account.to_string();
        self.read_store(
            // Made into the list's own type here, off the UI thread.
            move |store| {
                store.conversations(&account).map(|stored| {
                    stored
                        .into_iter()
                        .filter_map(Summary::from_stored)
                        .collect()
                })
            },
            Message::ConversationsLoaded,
        )
    }

    /// Changes what `account` (or every account) announces; the event says
    /// which accounts now announce something else.
    fn set_presence(
        &mut self,
        account: Option<&BareJid>,
        change: impl Fn(&mut OwnPresence),
    ) -> Option<Event> {
        let mut changed = Vec::new();
        for a in &mut self.accounts {
            if account.is_some_and(|only| only != &a.jid) {
                continue;
            }
            let before = a.presence.clone();
            change(&mut a.presence);
            if a.presence != before {
                changed.push((a.jid.clone(), a.presence.clone()));
            }
        }
        Some(Event::Presence {
            changed,
            default: self.own.clone(),
        })
    }

    /// The availability every account announces; `None` when they differ
    /// (then the common choice shows none).
    fn common_availability(&self) -> Option<Availability> {
        self.accounts
            .iter()
            .all(|a| a.presence.availability == self.own.availability)
            .then_some(self.own.availability)
    }

    /// What `account` announces (the choice for every account unless it has its own).
    pub fn presence_of(&self, account: &BareJid) -> Option<&OwnPresence> {
        self.accounts
            .iter()
            .find(|a| &a.jid == account)
            .map(|a| &a.presence)
    }

    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Tab(tab) => self.tab = tab,
            Message::ListScrolled(viewport) => {
                self.list_viewport = ListViewport {
                    offset: viewport.absolute_offset().y,
                    height: viewport.bounds().height,
                };
            }
            Message::Open(id) => return (self.open_chat(id, None), None),
            Message::Availability(AvailabilityChoice(a)) => {
                self.own.availability = a;
                return (
                    Task::none(),
                    self.set_presence(None, |p| p.availability = a),
                );
            }
            Message::AccountAvailability(account, AvailabilityChoice(a)) => {
                return (
                    Task::none(),
                    self.set_presence(Some(&account), |p| p.availability = a),
                );
            }
            Message::StatusDraft(s) => self.status_draft = s,
            Message::StatusSubmit => {
                let status = self.status_draft.trim().to_string();
                self.own.status.clone_from(&status);
                // The status is the same on every account; each keeps its availability.
                return (
                    Task::none(),
                    self.set_presence(None, |p| p.status.clone_from(&status)),
                );
            }
            Message::RetryNow(account) => {
                return (
                    Task::none(),
                    Some(Event::Worker(account, Command::RetryNow)),
                );
            }
            Message::SignOut(account) => return (Task::none(), Some(Event::SignOut(account))),
            Message::Remove(account) => self.removing = Some(account),
            Message::CancelRemove => self.removing = None,
            Message::ChooseAccount(account) => {
                if let Some((peer, body)) = self.choosing.take()
                    && self.has_account(&account)
                {
                    return (self.open_chat(talk::Id::chat(account, peer), body), None);
                }
            }
            Message::CancelChoose => self.choosing = None,
            Message::ConfirmRemove(account, delete_history) => {
                self.removing = None;
                return (
                    Task::none(),
                    Some(Event::Remove {
                        account,
                        delete_history,
                    }),
                );
            }
            Message::AddAccount => return (Task::none(), Some(Event::AddAccount)),
            Message::Filter(filter) => {
                self.filter = filter.filter(|jid| self.has_account(jid));
                self.list_viewport = ListViewport::default();
            }
            Message::OpenSettings => return (Task::none(), Some(Event::OpenSettings)),
            Message::DismissNotice => self.notice = None,
            Message::ConversationsLoaded(Ok(list)) => {
                // What arrived while loading is newer than the stored list;
                // an account signed out meanwhile is not shown.
                let mut merged = std::mem::take(&mut self.conversations);
                let known = |c: &Summary| self.has_account(c.id.account());
                for c in list {
                    if !known(&c) {
                        continue;
                    }
                    match merged.iter_mut().find(|m| m.id == c.id) {
                        // Only a place held for it (a room joined): the stored one says more.
                        Some(m) if m.last_time.is_none() => *m = c,
                        Some(_) => {}
                        None => merged.push(c),
                    }
                }
                merged.sort_by_key(|c| std::cmp::Reverse(c.last_time));
                self.conversations = merged;
            }
            Message::ConversationsLoaded(Err(e)) => {
                tracing::error!("cannot load conversations: {e}");
            }
            Message::DraftsLoaded(Ok(drafts)) => {
                // What was typed meanwhile is newer than what was stored.
                for (id, text) in drafts {
                    if !self.drafts_unsaved.contains(&id) && self.has_account(id.account()) {
                        self.drafts.entry(id).or_insert(text);
                    }
                }
                // The chat opened before the drafts came (an xmpp: link at start).
                if let Some(open) = &mut self.open
                    && open.draft().is_empty()
                    && let Some(text) = self.drafts.get(open.id())
                {
                    open.set_draft(text);
                }
            }
            Message::DraftsLoaded(Err(e)) => tracing::error!("cannot load drafts: {e}"),
            Message::DraftsSaved => {
                self.drafts_saving = false;
                return (self.save_drafts(), None);
            }
            Message::MarkedRead => {}
            Message::Room(message) => {
                let accounts: Vec<BareJid> = self.accounts.iter().map(|a| a.jid.clone()).collect();
                let (task, event) = self.rooms.update(message, &accounts);
                let task = task.map(Message::Room);
                return match event {
                    None => (task, None),
                    Some(room::Event::Join {
                        room,
                        nick,
                        password,
                    }) => {
                        let account = room.account().clone();
                        let command = Command::JoinRoom {
                            room: room.bare(),
                            nick,
                            password,
                        };
                        let open = self.open_chat(room, None);
                        (
                            Task::batch([task, open]),
                            Some(Event::Worker(account, command)),
                        )
                    }
                    Some(room::Event::Open(id)) => {
                        let open = self.open_chat(id, None);
                        (Task::batch([task, open]), None)
                    }
                    Some(room::Event::Leave(room)) => (
                        task,
                        Some(Event::Worker(
                            room.account().clone(),
                            Command::LeaveRoom { room: room.bare() },
                        )),
                    ),
                    Some(room::Event::Create {
                        room,
                        nick,
                        settings,
                    }) => {
                        let account = room.account().clone();
                        let command = Command::CreateRoom {
                            room: room.bare(),
                            nick,
                            settings,
                        };
                        (task, Some(Event::Worker(account, command)))
                    }
                    Some(room::Event::Browse { account, service }) => (
                        task,
                        Some(Event::Worker(account, Command::BrowseRooms { service })),
                    ),
                    Some(room::Event::Preference(room, preference)) => {
                        // Trusted now: what the room shows loads at once.
                        let task = match preference {
                            room::Preference::Images(true) => Task::batch([task, self.previews()]),
                            _ => task,
                        };
                        (task, Some(Event::RoomPreference { room, preference }))
                    }
                    Some(room::Event::Request(room, request)) => (
                        task,
                        Some(Event::Worker(
                            room.account().clone(),
                            Command::RoomRequest {
                                room: room.bare(),
                                request,
                            },
                        )),
                    ),
                    Some(room::Event::Decline { room, inviter }) => (
                        task,
                        Some(Event::Worker(
                            room.account().clone(),
                            Command::DeclineInvitation {
                                room: room.bare(),
                                inviter,
                            },
                        )),
                    ),
                };
            }
            Message::ShowAddContact => {
                self.tab = Tab::Contacts;
                self.add_contact = Some(AddContact {
                    account: self
                        .filter
                        .clone()
                        .or_else(|| self.accounts.first().map(|a| a.jid.clone())),
                    ..AddContact::default()
                });
                return (iced::widget::operation::focus(ADD_CONTACT_JID), None);
            }
            Message::AddContactJid(v) => {
                if let Some(form) = &mut self.add_contact {
                    form.jid = v;
                }
            }
            Message::AddContactName(v) => {
                if let Some(form) = &mut self.add_contact {
                    form.name = v;
                }
            }
            Message::AddContactAccount(AccountChoice(account)) => {
                if let Some(form) = &mut self.add_contact {
                    form.account = account;
                }
            }
            Message::AddContactCancel => self.add_contact = None,
            Message::AddContactSubmit => {
                let Some(form) = &mut self.add_contact else {
                    return (Task::none(), None);
                };
                let Some(account) = form
                    .account
                    .clone()
                    .filter(|a| self.accounts.iter().any(|known| &known.jid == a))
                else {
                    form.error = Some(fl!("contacts-add-error"));
                    return (Task::none(), None);
                };
                let jid = BareJid::from_str(form.jid.trim())
                    .ok()
                    .filter(|j| *j != account);
                let Some(jid) = jid else {
                    form.error = Some(fl!("contacts-add-error"));
                    return (Task::none(), None);
                };
                let name = Some(form.name.trim().to_string()).filter(|n| !n.is_empty());
                self.add_contact = None;
                return (
                    Task::none(),
                    Some(Event::Worker(account, Command::AddContact { jid, name })),
                );
            }
            Message::Answer(account, from, accept) => {
                if let Some(known) = self.account_mut(&account) {
                    known.requests.retain(|r| *r != from);
                }
                return (
                    Task::none(),
                    Some(Event::Worker(
                        account,
                        Command::AnswerSubscription { from, accept },
                    )),
                );
            }
            Message::Sharing(message) => return self.on_sharing(message),
            Message::FilesHovered(hovering) => {
                // Only a chat can take files.
                let hovering = hovering && self.open.is_some();
                return self.on_sharing(sharing::Message::Hover(hovering));
            }
            Message::FileDropped(path) => {
                let Some(id) = self.open_id().cloned() else {
                    tracing::info!("a file was dropped with no chat open");
                    return self.on_sharing(sharing::Message::Hover(false));
                };
                return self.on_sharing(sharing::Message::Share(id, vec![path]));
            }
            Message::Paste => {
                let Some(id) = self.open_id().cloned() else {
                    return (Task::none(), None);
                };
                return self.on_sharing(sharing::Message::Paste(id));
            }
            Message::Conversation(message) => {
                let Some(open) = &mut self.open else {
                    return (Task::none(), None);
                };
                // Who is in the room, read when Tab asks (not on every
                // occupant's presence: a join of hundreds would copy them all
                // hundreds of times).
                if matches!(message, conversation::Message::Complete) {
                    open.set_nicks(self.rooms.nicks(open.id()));
                }
                // Only typing and sending change the draft: scrolling and loading
                // must not copy a long draft on every event.
                let edits = match &message {
                    conversation::Message::Edit(action) => action.is_edit(),
                    conversation::Message::Send => true,
                    _ => false,
                };
                let (task, event) = open.update(message, &self.store);
                let draft = if edits {
                    self.note_draft()
                } else {
                    Task::none()
                };
                let task = Task::batch([task.map(Message::Conversation), self.previews(), draft]);
                let Some(open) = &self.open else {
                    return (task, None);
                };
                return match event {
                    Some(conversation::Event::Attach) => {
                        let id = open.id().clone();
                        let (pick, event) = self.on_sharing(sharing::Message::Pick(id));
                        (Task::batch([task, pick]), event)
                    }
                    Some(conversation::Event::Sharing(message)) => {
                        let (more, event) = self.on_sharing(message);
                        (Task::batch([task, more]), event)
                    }
                    Some(conversation::Event::Send(body)) => {
                        let id = open.id().clone();
                        let account = id.account().clone();
                        let typed = if id.kind() == talk::Kind::Room {
                            self.rooms.typed(&id, &body)
                        } else {
                            room::Typed::Send(body)
                        };
                        let command = match typed {
                            room::Typed::Send(body) => Command::SendMessage { to: id, body },
                            room::Typed::Request(request) => Command::RoomRequest {
                                room: id.bare(),
                                request,
                            },
                            room::Typed::Wrong(_) => return (task, None),
                        };
                        (task, Some(Event::Worker(account, command)))
                    }
                    // A link in a chat opens with the same account.
                    Some(conversation::Event::OpenLink(Target::Chat(uri))) => {
                        let id = talk::Id::chat(open.id().account().clone(), uri.jid);
                        let open = self.open_chat(id, uri.body);
                        (Task::batch([task, open]), None)
                    }
                    Some(conversation::Event::OpenLink(Target::Web(url))) => {
                        let open = Task::future(async move {
                            // Only http(s) reaches here (see `link`); the browser decides the rest.
                            if let Err(e) = open::that_detached(&url) {
                                tracing::warn!("cannot open a link: {e}");
                            }
                        });
                        (Task::batch([task, open.discard()]), None)
                    }
                    Some(conversation::Event::Retry(id)) => (
                        task,
                        Some(Event::Worker(
                            open.id().account().clone(),
                            Command::Retry {
                                conversation: open.id().clone(),
                                id,
                            },
                        )),
                    ),
                    Some(conversation::Event::FetchOlder(before)) => (
                        task,
                        Some(Event::Worker(
                            open.id().account().clone(),
                            Command::FetchOlder {
                                conversation: open.id().clone(),
                                before,
                            },
                        )),
                    ),
                    Some(conversation::Event::Error(e)) => {
                        tracing::error!("history: {e}");
                        (task, None)
                    }
                    None => (task, None),
                };
            }
        }
        (Task::none(), None)
    }

    pub fn view(&self) -> Element<'_, Message> {
        let sidebar = container(
            column![self.account_header()]
                .push(self.notice.as_ref().map(|notice| {
                    container(
                        column![
                            text(notice.clone()).size(12),
                            button(text(fl!("dismiss")).size(12))
                                .padding(0)
                                .style(theme::link_button)
                                .on_press(Message::DismissNotice),
                        ]
                        .spacing(4),
                    )
                    .padding(8)
                    .width(Fill)
                    .style(theme::error_banner)
                }))
                .push(self.account_choice())
                .push(self.tabs())
                .push(self.list())
                .spacing(8)
                .height(Fill),
        )
        .width(Length::Fixed(290.0))
        .height(Fill)
        .padding([12, 10])
        .style(theme::sidebar);

        let accounts: Vec<BareJid> = self.accounts.iter().map(|a| a.jid.clone()).collect();
        let panel = self
            .rooms
            .panel_view(&accounts)
            .map(|p| p.map(Message::Room));
        let main: Element<'_, Message> = match &self.open {
            _ if panel.is_some() => panel.unwrap_or_else(|| Space::new().into()),
            Some(open) => {
                let id = open.id();
                // In a room we go by our nickname there.
                let own = self
                    .rooms
                    .nick(id)
                    .unwrap_or_else(|| own_name(id.account()));
                let talk = open
                    .view(
                        self.peer_name(id),
                        own,
                        &self.sharing,
                        self.rooms.activity(id),
                    )
                    .map(Message::Conversation);
                let body: Element<'_, Message> = match self.rooms.occupants_view(id) {
                    Some(occupants) => row![talk, occupants.map(Message::Room)].into(),
                    None => talk,
                };
                let page: Element<'_, Message> = column![self.chat_header(id), body].into();
                if self.sharing.is_hovering() {
                    iced::widget::stack![page, sharing::drop_zone(self.peer_name(id))].into()
                } else {
                    page
                }
            }
            None => container(
                column![
                    text(fl!("chat-none-title")).size(20),
                    text(fl!("chat-none-hint"))
                        .size(14)
                        .style(theme::muted_text),
                ]
                .spacing(8)
                .align_x(Alignment::Center),
            )
            .center(Fill)
            .into(),
        };
        row![sidebar, main].height(Fill).into()
    }

    /// What a conversation is called: the contact's name, else the local
    /// part of the address; an occupant's nickname for a private message.
    fn peer_name<'a>(&'a self, id: &'a talk::Id) -> &'a str {
        if let Some(resource) = id.peer().resource() {
            return resource.as_str();
        }
        self.roster(id.account())
            .and_then(|r| r.get(&id.bare()))
            .and_then(|c| c.name.as_deref())
            .or_else(|| id.peer().node().map(|n| n.as_str()))
            .unwrap_or(id.peer().as_str())
    }

    /// Whether rows say which account they belong to.
    fn several_accounts(&self) -> bool {
        self.accounts.len() > 1
    }

    fn account_header(&self) -> Element<'_, Message> {
        let mut header = column![
            row![
                text(fl!("accounts-title"))
                    .size(12)
                    .width(Fill)
                    .style(theme::muted_text),
                button(text(fl!("accounts-add")).size(12))
                    .padding(0)
                    .style(theme::link_button)
                    .on_press(Message::AddAccount),
                button(text(fl!("settings")).size(12))
                    .padding(0)
                    .style(theme::link_button)
                    .on_press(Message::OpenSettings),
            ]
            .spacing(10)
            .align_y(Alignment::Center)
        ]
        .spacing(6)
        .padding([0, 4]);
        for account in &self.accounts {
            header = header.push(self.account_line(account));
        }
        let common = self.common_availability().map(AvailabilityChoice);
        let presence = pick_list(AvailabilityChoice::ALL, common, Message::Availability)
            .placeholder(fl!("presence-several"))
            .text_size(13)
            .padding([4, 8]);
        let status = text_input(&fl!("status-placeholder"), &self.status_draft)
            .on_input(Message::StatusDraft)
            .on_submit(Message::StatusSubmit)
            .size(13)
            .padding([4, 8])
            .style(theme::input);
        if self.several_accounts() {
            header = header.push(
                text(fl!("presence-every-account"))
                    .size(12)
                    .style(theme::muted_text),
            );
        }
        header
            .push(row![presence, status].spacing(6).align_y(Alignment::Center))
            .into()
    }

    /// One account: its address (in its colour when there are several), its
    /// connection, and what can be done about it.
    fn account_line<'a>(&'a self, account: &'a Account) -> Element<'a, Message> {
        // The dot: once online, what the account announces; a failure in red.
        let (dot, line) = match &account.connection {
            ConnectionState::Online { .. } => {
                (Some(account.presence.availability), fl!("conn-online"))
            }
            ConnectionState::Connecting => (Some(Availability::Away), fl!("conn-connecting")),
            ConnectionState::Retrying { reason, retry_in } => (
                Some(Availability::Away),
                fl!(
                    "conn-retrying",
                    reason = failure_text(reason),
                    seconds = retry_in.as_secs()
                ),
            ),
            ConnectionState::Offline(None) => (Some(Availability::Offline), fl!("conn-offline")),
            ConnectionState::Offline(Some(f)) => {
                (None, fl!("conn-offline-reason", reason = failure_text(f)))
            }
        };
        let dot_color = move |t: &iced::Theme| match dot {
            Some(a) => theme::availability(t, a),
            None => theme::danger_text(t),
        };
        let jid = account.jid.to_string();
        let several = self.several_accounts();
        // A long address is cut at the links beside it, not run under them.
        let name = container(
            text(jid.clone())
                .size(15)
                .wrapping(text::Wrapping::None)
                .style(move |t| text::Style {
                    color: several.then(|| theme::jid_color(t, &jid)),
                }),
        )
        .width(Fill)
        .clip(true);
        let mut state_line = row![
            container(Space::new().width(8).height(8))
                .style(move |t: &iced::Theme| { theme::dot(dot_color(t))(t) }),
            text(line).size(12).width(Fill).style(theme::muted_text),
        ]
        .spacing(6)
        .align_y(Alignment::Center);
        if several {
            // Each account can be set apart: busy at work, available at home.
            let jid = account.jid.clone();
            state_line = state_line.push(
                pick_list(
                    AvailabilityChoice::ALL,
                    Some(AvailabilityChoice(account.presence.availability)),
                    move |choice| Message::AccountAvailability(jid.clone(), choice),
                )
                .text_size(12)
                .padding([2, 6]),
            );
        }
        if matches!(
            account.connection,
            ConnectionState::Retrying { .. } | ConnectionState::Offline(_)
        ) {
            state_line = state_line.push(
                button(text(fl!("conn-retry")).size(12))
                    .padding(0)
                    .style(theme::link_button)
                    .on_press(Message::RetryNow(account.jid.clone())),
            );
        }
        let mut block = column![
            row![
                name,
                button(text(fl!("sign-out")).size(12))
                    .padding(0)
                    .style(theme::link_button)
                    .on_press(Message::SignOut(account.jid.clone())),
                button(text(fl!("accounts-remove")).size(12))
                    .padding(0)
                    .style(theme::link_button)
                    .on_press(Message::Remove(account.jid.clone())),
            ]
            .spacing(10)
            .align_y(Alignment::Center),
            state_line,
        ]
        .spacing(4);
        if self.removing.as_ref() == Some(&account.jid) {
            let jid = account.jid.clone();
            block = block.push(
                container(
                    column![
                        text(fl!("accounts-remove-ask", account = jid.to_string())).size(13),
                        row![
                            button(text(fl!("accounts-remove-keep")).size(12))
                                .padding([3, 10])
                                .style(theme::primary_button)
                                .on_press(Message::ConfirmRemove(jid.clone(), false)),
                            button(text(fl!("accounts-remove-delete")).size(12))
                                .padding([3, 10])
                                .style(theme::danger_button)
                                .on_press(Message::ConfirmRemove(jid, true)),
                            button(text(fl!("accounts-add-cancel")).size(12))
                                .padding([3, 8])
                                .style(theme::link_button)
                                .on_press(Message::CancelRemove),
                        ]
                        .spacing(8),
                    ]
                    .spacing(6),
                )
                .padding(8)
                .width(Fill)
                .style(theme::card),
            );
        }
        block.into()
    }

    /// Which account opens the chat a link named, when that is not clear.
    fn account_choice(&self) -> Option<Element<'_, Message>> {
        let (peer, _) = self.choosing.as_ref()?;
        let mut buttons = column![].spacing(4);
        for account in &self.accounts {
            buttons = buttons.push(
                button(
                    text(fl!(
                        "accounts-choose-with",
                        account = account.jid.to_string()
                    ))
                    .size(12),
                )
                .padding([3, 10])
                .width(Fill)
                .style(theme::secondary_button)
                .on_press(Message::ChooseAccount(account.jid.clone())),
            );
        }
        Some(
            container(
                column![
                    text(fl!("accounts-choose", peer = peer.to_string())).size(13),
                    buttons,
                    button(text(fl!("accounts-add-cancel")).size(12))
                        .padding(0)
                        .style(theme::link_button)
                        .on_press(Message::CancelChoose),
                ]
                .spacing(6),
            )
            .padding(8)
            .width(Fill)
            .style(theme::card)
            .into(),
        )
    }

    /// The chats the list shows: every account's, or the filter's.
    fn shown_conversations(&self) -> impl Iterator<Item = &Summary> {
        self.conversations
            .iter()
            .filter(|c| self.filter.as_ref().is_none_or(|f| f == c.id.account()))
    }

    /// Above the list when there are several accounts: show one, or all.
    fn filter_choice(&self) -> Option<Element<'_, Message>> {
        if !self.several_accounts() {
            return None;
        }
        let choices: Vec<AccountChoice> = std::iter::once(AccountChoice(None))
            .chain(
                self.accounts
                    .iter()
                    .map(|a| AccountChoice(Some(a.jid.clone()))),
            )
            .collect();
        Some(
            pick_list(choices, Some(AccountChoice(self.filter.clone())), |c| {
                Message::Filter(c.0)
            })
            .text_size(12)
            .padding([3, 8])
            .width(Fill)
            .into(),
        )
    }

    fn tabs(&self) -> Element<'_, Message> {
        let unread: u32 = self.shown_conversations().map(|c| c.unread).sum();
        let contacts: usize = self
            .accounts
            .iter()
            .filter(|a| self.filter.as_ref().is_none_or(|f| *f == a.jid))
            .map(|a| a.roster.len())
            .sum();
        let chats = if unread > 0 {
            fl!("tab-chats-unread", count = unread)
        } else {
            fl!("tab-chats")
        };
        let tab = |label: String, t: Tab| {
            button(container(text(label).size(13)).center_x(Fill))
                .width(Fill)
                .padding([6, 8])
                .style(theme::tab(self.tab == t))
                .on_press(Message::Tab(t))
        };
        row![
            tab(chats, Tab::Chats),
            tab(fl!("tab-contacts", count = contacts), Tab::Contacts)
        ]
        .spacing(4)
        .into()
    }

    fn list(&self) -> Element<'_, Message> {
        let shown: Vec<&Summary> = self.shown_conversations().collect();
        let drafts: Vec<&talk::Id> = self
            .drafts
            .keys()
            .filter(|id| self.filter.as_ref().is_none_or(|f| f == id.account()))
            .collect();
        let content: Element<'_, Message> = match self.tab {
            Tab::Chats if shown.is_empty() && drafts.is_empty() => empty(fl!("chats-empty")),
            Tab::Chats => {
                // Chats with nothing but a draft (opened from a link, say) come first.
                let draft_only = drafts
                    .into_iter()
                    .filter(|id| !shown.iter().any(|c| &c.id == *id))
                    .map(Summary::empty)
                    .collect::<Vec<_>>();
                // Thousands of chats (a flood from strangers, years of them)
                // would be thousands of rows built at every frame: only those
                // in sight are, between spaces as tall as the rest.
                let total = draft_only.len() + shown.len();
                let sight = rows_in_sight(self.list_viewport, total);
                // Row counts to pixels: exact for any list that fits in memory.
                // A space stands for its rows and the gaps between them (the
                // column adds the one after it).
                let space = |rows: usize| {
                    (rows > 0).then(|| {
                        Space::new().height(rows as f32 * (ROW_HEIGHT + ROW_SPACING) - ROW_SPACING)
                    })
                };
                let rows = draft_only
                    .iter()
                    .chain(shown.iter().copied())
                    .skip(sight.start)
                    .take(sight.len())
                    .map(|c| self.conversation_row(c));
                column![]
                    .push(space(sight.start))
                    .extend(rows)
                    .push(space(total - sight.end))
                    .spacing(ROW_SPACING)
                    .into()
            }
            Tab::Contacts => {
                let mut list = column![self.contact_tools()].spacing(2);
                let accounts: Vec<&Account> = self
                    .accounts
                    .iter()
                    .filter(|a| self.filter.as_ref().is_none_or(|f| *f == a.jid))
                    .collect();
                if accounts.iter().all(|a| a.roster.is_empty()) {
                    list = list.push(empty(fl!("contacts-empty")));
                }
                for account in accounts {
                    if self.several_accounts() && !account.roster.is_empty() {
                        let jid = account.jid.to_string();
                        list = list.push(
                            container(text(jid.clone()).size(12).style(move |t| text::Style {
                                color: Some(theme::jid_color(t, &jid)),
                            }))
                            .padding([8, 8]),
                        );
                    }
                    for (group, contacts) in account.roster.groups() {
                        let title = group.unwrap_or_else(|| fl!("contacts-ungrouped"));
                        list = list.push(
                            container(text(title.to_uppercase()).size(11).style(theme::muted_text))
                                .padding([8, 8]),
                        );
                        for contact in contacts {
                            list = list.push(self.contact_row(account, contact));
                        }
                    }
                }
                list.into()
            }
        };
        let list = scrollable(content)
            .height(Fill)
            // Beside the rows, not over their times and unread counts.
            .spacing(4)
            .on_scroll(Message::ListScrolled);
        let accounts: Vec<BareJid> = self.accounts.iter().map(|a| a.jid.clone()).collect();
        // Outside the list, whose rows are counted in fixed heights.
        let join =
            (self.tab == Tab::Chats).then(|| self.rooms.join_view(&accounts).map(Message::Room));
        column![]
            .push(self.filter_choice())
            .push(join)
            .push(list)
            .spacing(6)
            .into()
    }

    /// "Add contact", its form, and pending requests, above the contact groups.
    fn contact_tools(&self) -> Element<'_, Message> {
        let mut tools = column![].spacing(6).padding([4, 4]);
        match &self.add_contact {
            None => {
                tools = tools.push(
                    button(text(fl!("contacts-add")).size(13))
                        .padding([2, 4])
                        .style(theme::link_button)
                        .on_press(Message::ShowAddContact),
                );
            }
            Some(form) => {
                if self.several_accounts() {
                    let choices: Vec<AccountChoice> = self
                        .accounts
                        .iter()
                        .map(|a| AccountChoice(Some(a.jid.clone())))
                        .collect();
                    tools = tools.push(
                        pick_list(
                            choices,
                            Some(AccountChoice(form.account.clone())),
                            Message::AddContactAccount,
                        )
                        .text_size(13)
                        .padding([4, 8])
                        .width(Fill),
                    );
                }
                tools = tools.push(
                    text_input(&fl!("contacts-add-jid"), &form.jid)
                        .id(ADD_CONTACT_JID)
                        .on_input(Message::AddContactJid)
                        .on_submit(Message::AddContactSubmit)
                        .size(13)
                        .padding([4, 8])
                        .style(theme::input),
                );
                tools = tools.push(
                    text_input(&fl!("contacts-add-name"), &form.name)
                        .on_input(Message::AddContactName)
                        .on_submit(Message::AddContactSubmit)
                        .size(13)
                        .padding([4, 8])
                        .style(theme::input),
                );
                if let Some(error) = &form.error {
                    tools = tools.push(text(error.clone()).size(12).style(|t| text::Style {
                        color: Some(theme::danger_text(t)),
                    }));
                }
                tools = tools.push(
                    row![
                        button(text(fl!("contacts-add-submit")).size(13))
                            .padding([4, 12])
                            .style(theme::primary_button)
                            .on_press(Message::AddContactSubmit),
                        button(text(fl!("contacts-add-cancel")).size(13))
                            .padding([4, 8])
                            .style(theme::link_button)
                            .on_press(Message::AddContactCancel),
                    ]
                    .spacing(8),
                );
            }
        }
        for (account, from) in self
            .accounts
            .iter()
            .flat_map(|a| a.requests.iter().map(move |r| (&a.jid, r)))
        {
            let asks = if self.several_accounts() {
                fl!(
                    "contacts-request-to",
                    jid = from.to_string(),
                    account = account.to_string()
                )
            } else {
                fl!("contacts-request", jid = from.to_string())
            };
            tools = tools.push(
                container(
                    column![
                        text(asks).size(13),
                        row![
                            button(text(fl!("contacts-accept")).size(12))
                                .padding([3, 10])
                                .style(theme::primary_button)
                                .on_press(Message::Answer(account.clone(), from.clone(), true)),
                            button(text(fl!("contacts-decline")).size(12))
                                .padding([3, 8])
                                .style(theme::link_button)
                                .on_press(Message::Answer(account.clone(), from.clone(), false)),
                        ]
                        .spacing(8),
                    ]
                    .spacing(6),
                )
                .padding(8)
                .width(Fill)
                .style(theme::card),
            );
        }
        tools.into()
    }

    fn conversation_row(&self, c: &Summary) -> Element<'_, Message> {
        let id = &c.id;
        let roster = self.roster(id.account());
        let bare = &c.bare;
        // A room's dot says whether we are in it.
        let availability = match id.kind() {
            Kind::Room if self.rooms.is_joined(id) => Availability::Available,
            Kind::Room => Availability::Offline,
            _ => roster.map_or(Availability::Offline, |r| r.availability(bare).0),
        };
        let selected = self.open_id() == Some(id);
        let name = roster.map_or_else(|| bare.to_string(), |r| r.display_name(bare));
        let time = c.last_time.map(format_list_time).unwrap_or_default();
        let draft = self.drafts.get(id).filter(|_| !selected);
        let preview = match (draft, c.last_direction) {
            (Some(draft), _) => fl!("preview-draft", text = first_line(draft)),
            (None, _) if c.last_encrypted => fl!("preview-encrypted"),
            (None, Some(Direction::Out)) => fl!("preview-you", text = last_line(&c.last_body)),
            (None, _) => last_line(&c.last_body),
        };
        let mut top = row![presence_dot(availability), text(name).size(14).width(Fill),]
            .spacing(8)
            .align_y(Alignment::Center);
        if self.several_accounts() {
            top = top.push(account_mark(id.account()));
        }
        top = top.push(text(time).size(11).style(theme::muted_text));
        let mut bottom = row![
            Space::new().width(10),
            // One line, cut at the pane's edge (iced has no ellipsis): clip, don't overflow.
            container(text(preview).size(12).wrapping(text::Wrapping::None).style(
                if draft.is_some() {
                    theme::draft_text
                } else {
                    theme::muted_text
                }
            ),)
            .width(Fill)
            .clip(true),
        ]
        .spacing(8)
        .align_y(Alignment::Center);
        if c.unread > 0 {
            bottom = bottom.push(
                container(text(c.unread.to_string()).size(11))
                    .padding([1, 6])
                    .style(theme::badge),
            );
        }
        top = top.height(Length::Shrink);
        button(column![top, bottom].spacing(2))
            .width(Fill)
            .height(ROW_HEIGHT)
            .padding([6, 8])
            .style(theme::list_item(selected))
            .on_press(Message::Open(id.clone()))
            .into()
    }

    fn contact_row<'a>(
        &'a self,
        account: &'a Account,
        contact: &'a Contact,
    ) -> Element<'a, Message> {
        let (availability, status) = account.roster.availability(&contact.jid);
        let id = talk::Id::chat(account.jid.clone(), contact.jid.clone());
        let selected = self.open_id() == Some(&id);
        let mut info = column![text(account.roster.display_name(&contact.jid)).size(14)];
        let detail = status
            .map(str::to_string)
            .unwrap_or_else(|| contact.jid.to_string());
        info = info.push(
            container(
                text(detail)
                    .size(11)
                    .wrapping(text::Wrapping::None)
                    .style(theme::muted_text),
            )
            .width(Fill)
            .clip(true),
        );
        button(
            row![presence_dot(availability), info.width(Fill)]
                .spacing(8)
                .align_y(Alignment::Center),
        )
        .width(Fill)
        .padding([6, 8])
        .style(theme::list_item(selected))
        .on_press(Message::Open(id))
        .into()
    }

    fn chat_header<'a>(&'a self, id: &'a talk::Id) -> Element<'a, Message> {
        if id.kind() == Kind::Room {
            return self.room_header(id);
        }
        let peer = id.bare();
        // Someone in a room, written to privately: where they are, not a roster presence.
        if id.kind() == Kind::Private {
            return container(column![
                text(self.peer_name(id)).size(17),
                text(fl!("room-private", room = peer.to_string()))
                    .size(12)
                    .style(theme::muted_text),
            ])
            .width(Fill)
            .padding([10, 16])
            .style(theme::header)
            .into();
        }
        let (availability, status) = self
            .roster(id.account())
            .map_or((Availability::Offline, None), |r| r.availability(&peer));
        let mut detail = availability_label(availability);
        if let Some(status) = status {
            detail = format!("{detail} — {status}");
        }
        if self.several_accounts() {
            detail = fl!(
                "chat-via",
                detail = detail,
                account = id.account().to_string()
            );
        }
        container(
            row![
                presence_dot(availability),
                column![
                    text(self.peer_name(id)).size(17),
                    text(format!("{peer} · {detail}"))
                        .size(12)
                        .style(theme::muted_text),
                ]
                .spacing(2),
            ]
            .spacing(10)
            .align_y(Alignment::Center),
        )
        .width(Fill)
        .padding([10, 16])
        .style(theme::header)
        .into()
    }

    /// A room's header: its address, who is in it and its subject (or why
    /// we are not in it), and "Leave".
    fn room_header<'a>(&'a self, id: &'a talk::Id) -> Element<'a, Message> {
        let mut detail = self.rooms.detail(id);
        if self.several_accounts() {
            detail = fl!(
                "chat-via",
                detail = detail,
                account = id.account().to_string()
            );
        }
        let mut line = row![
            column![
                text(id.bare().to_string()).size(17),
                container(
                    text(detail)
                        .size(12)
                        .wrapping(text::Wrapping::None)
                        .style(theme::muted_text)
                )
                .clip(true),
            ]
            .spacing(2)
            .width(Fill),
        ]
        .spacing(10)
        .align_y(Alignment::Center);
        if let Some(buttons) = self.rooms.header_buttons(id) {
            line = line.push(buttons.map(Message::Room));
        }
        container(line)
            .width(Fill)
            .padding([10, 16])
            .style(theme::header)
            .into()
    }
}

/// The name the user goes by on an account: its local part.
fn own_name(account: &BareJid) -> &str {
    account
        .node()
        .map(|n| n.as_str())
        .unwrap_or(account.as_str())
}

/// Which account a row belongs to: a short label in the account's colour
/// (as Dino marks accounts), when there are several.
fn account_mark<'a>(account: &BareJid) -> Element<'a, Message> {
    let jid = account.to_string();
    let label: String = own_name(account).chars().take(12).collect();
    container(text(label).size(10).style(move |t| text::Style {
        color: Some(theme::jid_color(t, &jid)),
    }))
    .padding([0, 4])
    .into()
}

fn presence_dot<'a>(a: Availability) -> Element<'a, Message> {
    container(Space::new().width(10).height(10))
        .style(move |t: &iced::Theme| theme::dot(theme::availability(t, a))(t))
        .into()
}

fn empty<'a>(label: String) -> Element<'a, Message> {
    container(text(label).size(13).style(theme::muted_text))
        .padding(16)
        .center_x(Fill)
        .into()
}

/// "14:05" today, else the date.
fn format_list_time(time: chrono::DateTime<Utc>) -> String {
    let local = time.with_timezone(&Local);
    if local.date_naive() == Local::now().date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%m-%d").to_string()
    }
}

/// A failure in the user's language.
pub fn failure_text(f: &Failure) -> String {
    match f {
        Failure::Refused { condition, text } => {
            let reason = match condition {
                SaslCondition::NotAuthorized => fl!("failure-not-authorized"),
                SaslCondition::AccountDisabled => fl!("failure-account-disabled"),
                SaslCondition::CredentialsExpired => fl!("failure-credentials-expired"),
                SaslCondition::Temporary => fl!("failure-temporary"),
                SaslCondition::Method(name) => fl!("failure-refused", condition = name.clone()),
            };
            match text {
                Some(text) => fl!("failure-server-said", reason = reason, text = text.clone()),
                None => reason,
            }
        }
        Failure::ServerUnproven => fl!("failure-server-unproven"),
        Failure::NoMechanism => fl!("failure-no-mechanism"),
        Failure::UnknownHost(host) => fl!("failure-unknown-host", host = host.clone()),
        Failure::Unreachable(detail) => fl!("failure-unreachable", detail = detail.clone()),
        Failure::Timeout => fl!("failure-timeout"),
        Failure::Certificate(detail) => fl!("failure-certificate", detail = detail.clone()),
        Failure::NoTls => fl!("failure-no-tls"),
        Failure::Lost(detail) => fl!("failure-lost", detail = detail.clone()),
        Failure::Protocol(detail) => fl!("failure-protocol", detail = detail.clone()),
    }
}

/// A conversation's last message as its list entry shows it: a shared file
/// by its name rather than its long link.
/// The composer's text when a chat opens with `draft` kept and perhaps a link's text.
fn merge_draft(draft: Option<&str>, link: Option<String>) -> Option<String> {
    let draft = draft.filter(|d| !d.trim().is_empty());
    match (draft, link) {
        (Some(draft), Some(link)) if !draft.contains(link.trim()) => {
            Some(format!("{}\n{link}", draft.trim_end()))
        }
        (Some(draft), _) => Some(draft.to_owned()),
        (None, link) => link,
    }
}

/// Characters the chat list keeps of a message for its one-line preview (as
/// many as the store keeps): a huge one-line message would otherwise be laid
/// out whole in the list at every frame.
const PREVIEW_CHARS: usize = 120;

/// A message's first line, as the chat list shows it.
fn preview_line(body: &str) -> String {
    body.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(PREVIEW_CHARS)
        .collect()
}

/// A draft's first line that has something on it.
fn first_line(draft: &str) -> String {
    draft
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .chars()
        .take(PREVIEW_CHARS)
        .collect()
}

fn last_line(body: &str) -> String {
    match crate::sharing::attachment_url(body, true) {
        Some(url) => fl!(
            "preview-file",
            name = crate::file_name::file_name_from_url(url)
        ),
        None => body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0)
    }

    /// The window on a history in `dir`, with no account yet.
    fn window(dir: &std::path::Path) -> State {
        let store = Store::open(&dir.join("store")).unwrap();
        let context = sharing::Context {
            http: None,
            cache: crate::thumbnail::Cache::new(dir.join("cache")),
            pasted_dir: dir.join("pasted"),
            files: crate::config::FilesConfig::default(),
        };
        State::new(store, context)
    }

    /// Accounts are listed in the configuration's order, whichever signs
    /// in first (passwords from the credential store come back in any order).
    #[test]
    fn accounts_keep_the_configuration_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = window(dir.path());
        let jid = |s: &str| BareJid::new(s).unwrap();
        let _ = state.add_account(jid("c@example.org"), 2);
        let _ = state.add_account(jid("a@example.org"), 0);
        let _ = state.add_account(jid("new@example.org"), 3);
        let _ = state.add_account(jid("b@example.org"), 1);
        let _ = state.add_account(jid("a@example.org"), 0);
        let order: Vec<&str> = state.accounts().map(|a| a.as_str()).collect();
        assert_eq!(
            order,
            [
                "a@example.org",
                "b@example.org",
                "c@example.org",
                "new@example.org"
            ]
        );
    }

    /// The choice for every account reaches every account; one account's
    /// own choice only that one, and the status message changes on all
    /// without touching their availabilities; an account added later takes
    /// the choice for every account.
    #[test]
    fn presence_for_every_account_and_for_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = window(dir.path());
        let jid = |s: &str| BareJid::new(s).unwrap();
        let (home, work) = (jid("me@home.example"), jid("me@work.example"));
        let _ = state.add_account(home.clone(), 0);
        let _ = state.add_account(work.clone(), 1);
        let changed = |state: &mut State, message| match state.update(message).1 {
            Some(Event::Presence { changed, default }) => (changed, default),
            _ => panic!("no presence event"),
        };
        let presence = |availability, status: &str| OwnPresence {
            availability,
            status: status.into(),
        };

        let (list, default) = changed(
            &mut state,
            Message::Availability(AvailabilityChoice(Availability::Away)),
        );
        assert_eq!(
            list,
            [
                (home.clone(), presence(Availability::Away, "")),
                (work.clone(), presence(Availability::Away, "")),
            ]
        );
        assert_eq!(default.availability, Availability::Away);
        assert_eq!(state.common_availability(), Some(Availability::Away));

        let (list, _) = changed(
            &mut state,
            Message::AccountAvailability(
                work.clone(),
                AvailabilityChoice(Availability::DoNotDisturb),
            ),
        );
        assert_eq!(
            list,
            [(work.clone(), presence(Availability::DoNotDisturb, ""))]
        );
        assert_eq!(state.common_availability(), None);

        let _ = state.update(Message::StatusDraft("  at the harbour ".into()));
        let (list, default) = changed(&mut state, Message::StatusSubmit);
        assert_eq!(
            list,
            [
                (home.clone(), presence(Availability::Away, "at the harbour")),
                (
                    work.clone(),
                    presence(Availability::DoNotDisturb, "at the harbour")
                ),
            ]
        );
        assert_eq!(default, presence(Availability::Away, "at the harbour"));

        // Choosing what one account has already changes nothing.
        let (list, _) = changed(
            &mut state,
            Message::AccountAvailability(home.clone(), AvailabilityChoice(Availability::Away)),
        );
        assert!(list.is_empty());

        let later = jid("me@club.example");
        let _ = state.add_account(later.clone(), 2);
        assert_eq!(
            state.presence_of(&later),
            Some(&presence(Availability::Away, "at the harbour"))
        );
    }

    /// A room joined from a bookmark is listed before anyone speaks; its
    /// stored summary, coming later, takes the place held for it.
    #[test]
    fn a_joined_room_is_listed_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = window(dir.path());
        let me = BareJid::new("me@example.org").unwrap();
        let room = BareJid::new("team@conference.example.org").unwrap();
        let _ = state.add_account(me.clone(), 0);
        let _ = state.room_event(&me, &room, RoomEvent::Joined { nick: "me".into() });
        let id = talk::Id::room(me.clone(), room.clone());
        assert_eq!(state.conversations.len(), 1);
        assert_eq!(state.conversations[0].id, id);
        let mut stored = Summary::empty(&id);
        stored.last_body = "see you there".into();
        stored.last_time = chrono::DateTime::from_timestamp(1_700_000_000, 0);
        let _ = state.update(Message::ConversationsLoaded(Ok(vec![stored])));
        assert_eq!(state.conversations.len(), 1);
        assert_eq!(state.conversations[0].last_body, "see you there");
        // Another account's room is not this window's to list.
        let other = BareJid::new("eve@example.org").unwrap();
        let _ = state.room_event(&other, &room, RoomEvent::Joined { nick: "eve".into() });
        assert_eq!(state.conversations.len(), 1);
    }

    /// A `?join` link fills the join form in; for a room we are in, it opens it.
    #[test]
    fn a_join_link_fills_the_form_or_opens_the_room() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = window(dir.path());
        let me = BareJid::new("me@example.org").unwrap();
        let room = BareJid::new("team@conference.example.org").unwrap();
        let _ = state.add_account(me.clone(), 0);
        let _ = state.open_join(&room);
        assert!(state.rooms.is_open());
        let mut ui = iced_test::simulator(state.view());
        assert!(ui.find("team@conference.example.org").is_ok());
        drop(ui);
        let _ = state.update(Message::Room(room::Message::Cancel));
        let _ = state.room_event(&me, &room, RoomEvent::Joined { nick: "me".into() });
        let _ = state.open_join(&room);
        assert!(!state.rooms.is_open());
        assert_eq!(state.open_id(), Some(&talk::Id::room(me, room)));
    }

    /// What a flood of messages from strangers (each a new conversation)
    /// costs the chat list: time to take them in, memory, time to draw it.
    #[test]
    #[ignore = "measurement: ICED_TEST_BACKEND=tiny-skia cargo test --release --lib many_strangers_cost -- --ignored --nocapture"]
    fn many_strangers_cost() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = window(dir.path());
        let _ = state.add_account(BareJid::new("alice@example.org").unwrap(), 0);
        let before = rss_kib();
        let t0 = std::time::Instant::now();
        let strangers = 10_000;
        for batch in 0..strangers / 100 {
            let records = (0..100)
                .map(|i| crate::conversation::Message {
                    conversation: crate::conversation::Id::chat_of(
                        "alice@example.org",
                        &format!("stranger{}@spam.example", batch * 100 + i),
                    )
                    .unwrap(),
                    direction: Direction::In,
                    id: format!("s{batch}-{i}"),
                    body: "buy cheap followers now at a very reasonable price".repeat(10),
                    time: Utc::now(),
                    state: crate::conversation::Delivery::Received,
                    error: None,
                    archive_id: None,
                    other_device: false,
                    sender: None,
                    attachment: false,
                    encryption: None,
                })
                .collect();
            let _ = state.messages(records, true);
        }
        let taken = t0.elapsed();
        let grown = rss_kib().saturating_sub(before);
        let t1 = std::time::Instant::now();
        let mut ui = iced_test::simulator(state.view());
        let _ = ui.snapshot(&iced::Theme::Light);
        println!(
            "{strangers} strangers: taken in {taken:?}, +{grown} KiB, view and draw {:?}",
            t1.elapsed()
        );
    }

    #[test]
    fn only_rows_in_sight_are_built() {
        let pitch = ROW_HEIGHT + ROW_SPACING;
        let top = ListViewport {
            offset: 0.0,
            height: 10.0 * pitch,
        };
        assert_eq!(rows_in_sight(top, 5), 0..5);
        assert_eq!(rows_in_sight(top, 10_000), 0..21);
        let middle = ListViewport {
            offset: 5_000.0 * pitch + 10.0,
            height: 10.0 * pitch,
        };
        assert_eq!(rows_in_sight(middle, 10_000), 4_990..5_021);
        let end = ListViewport {
            offset: 9_995.0 * pitch,
            height: 10.0 * pitch,
        };
        assert_eq!(rows_in_sight(end, 10_000), 9_979..10_000);
        // Nonsense from a viewport (negative, not a number) is the top.
        let odd = ListViewport {
            offset: f32::NAN,
            height: -3.0,
        };
        assert_eq!(rows_in_sight(odd, 100), 0..11);
        assert_eq!(rows_in_sight(ListViewport::default(), 0), 0..0);
        // A position past the end (left from before) shows the end.
        let stale = ListViewport {
            offset: 100_000.0 * pitch,
            height: 10.0 * pitch,
        };
        assert_eq!(rows_in_sight(stale, 30), 9..30);
        assert_eq!(rows_in_sight(stale, 8), 0..8);
    }

    #[test]
    fn previews_keep_a_short_first_line() {
        assert_eq!(preview_line("hello\nworld"), "hello");
        assert_eq!(
            preview_line(&"ä".repeat(5_000_000)).chars().count(),
            PREVIEW_CHARS
        );
        assert_eq!(
            first_line(&format!("\n  {}", "d".repeat(1_000))).len(),
            PREVIEW_CHARS
        );
    }
}
