//! The main window: own account and presence, conversations and contacts on
//! the left, the open conversation on the right.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{Local, Utc};
use iced::widget::{
    Space, button, column, container, pick_list, row, scrollable, text, text_input,
};
use iced::{Alignment, Element, Fill, Length, Task};

use super::{conversation, sharing};
use crate::conversation::Direction;
use crate::fl;
use crate::link::Target;
use crate::roster::Roster;
use crate::store::{Conversation, Store};
use crate::theme;
use crate::xmpp::{
    Availability, BareJid, Command, ConnectionState, Contact, Failure, OwnPresence, SaslCondition,
};

pub struct State {
    account: BareJid,
    store: Store,
    connection: ConnectionState,
    roster: Roster,
    conversations: Vec<Conversation>,
    own: OwnPresence,
    status_draft: String,
    tab: Tab,
    open: Option<conversation::State>,
    window_focused: bool,
    /// People asking to see our presence, oldest first.
    requests: Vec<BareJid>,
    add_contact: Option<AddContact>,
    sharing: sharing::State,
    /// Something that went wrong outside the chat (the password not kept…), until dismissed.
    notice: Option<String>,
    /// Text typed but not sent, by peer (the open chat's as of its last edit).
    drafts: BTreeMap<String, String>,
    /// Peers whose draft changed since it was last written to the store.
    drafts_unsaved: BTreeSet<String>,
    /// A write of drafts is under way: the next waits for it, so they land in order.
    drafts_saving: bool,
    /// Where the list pane is scrolled to and how tall it is: only the
    /// conversation rows in sight are built.
    list_viewport: ListViewport,
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
    Open(BareJid),
    Availability(AvailabilityChoice),
    StatusDraft(String),
    StatusSubmit,
    RetryNow,
    SignOut,
    OpenSettings,
    DismissNotice,
    ConversationsLoaded(Result<Vec<Conversation>, String>),
    DraftsLoaded(Result<Vec<(String, String)>, String>),
    DraftsSaved,
    MarkedRead,
    ShowAddContact,
    AddContactJid(String),
    AddContactName(String),
    AddContactSubmit,
    AddContactCancel,
    Answer(BareJid, bool),
    Conversation(conversation::Message),
    Sharing(sharing::Message),
    /// Files dragged over the window (or no longer: `None`).
    FilesHovered(bool),
    FileDropped(std::path::PathBuf),
    /// Ctrl+V: the clipboard may hold files or an image to send.
    Paste,
    /// The list pane scrolled or changed size.
    ListScrolled(scrollable::Viewport),
}

pub enum Event {
    /// Something for the account's worker to do (send, presence, contacts, retry).
    Worker(Command),
    SignOut,
    OpenSettings,
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
    pub fn new(account: BareJid, store: Store, sharing: sharing::Context) -> (Self, Task<Message>) {
        let state = Self {
            account,
            store,
            connection: ConnectionState::Connecting,
            roster: Roster::default(),
            conversations: Vec::new(),
            own: OwnPresence::default(),
            status_draft: String::new(),
            tab: Tab::Chats,
            open: None,
            window_focused: true,
            requests: Vec::new(),
            add_contact: None,
            sharing: sharing::State::new(sharing),
            notice: None,
            drafts: BTreeMap::new(),
            drafts_unsaved: BTreeSet::new(),
            drafts_saving: false,
            list_viewport: ListViewport::default(),
        };
        let task = Task::batch([state.load_conversations(), state.load_drafts()]);
        (state, task)
    }

    /// Shows a problem the user should know about above the lists.
    pub fn set_notice(&mut self, notice: String) {
        self.notice = Some(notice);
    }

    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    pub fn account(&self) -> &BareJid {
        &self.account
    }

    pub fn connection(&self) -> &ConnectionState {
        &self.connection
    }

    pub fn open_peer(&self) -> Option<&BareJid> {
        self.open.as_ref().map(|c| c.peer())
    }

    pub fn conversation(&self) -> Option<&conversation::State> {
        self.open.as_ref()
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Total unread messages, for the window title.
    pub fn unread(&self) -> u32 {
        self.conversations.iter().map(|c| c.unread).sum()
    }

    pub fn set_connection(&mut self, state: ConnectionState) {
        if !matches!(state, ConnectionState::Online { .. }) {
            self.roster.clear_presence();
        }
        self.connection = state;
    }

    pub fn set_roster(&mut self, contacts: Vec<Contact>) {
        self.roster.replace(contacts);
    }

    pub fn roster_push(&mut self, contact: Contact) {
        self.roster.push(contact);
    }

    pub fn presence(&mut self, from: &crate::xmpp::Jid, a: Availability, status: Option<String>) {
        self.roster.presence(from, a, status);
    }

    /// Someone asks to see our presence; contacts we already share presence with are
    /// answered by the server, so what arrives here needs the user.
    pub fn subscription_request(&mut self, from: BareJid) {
        if !self.requests.contains(&from) {
            self.requests.push(from);
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

    /// Messages stored by the worker: update the list and the open conversation;
    /// incoming `news` not being read counts as unread (history does not).
    pub fn messages(
        &mut self,
        records: Vec<crate::conversation::Message>,
        news: bool,
    ) -> Task<Message> {
        let mut read_open = false;
        // History arriving in an empty open chat (a first sign-in): show its end.
        let was_empty = self.open.as_ref().is_some_and(|o| o.records().is_empty());
        for record in records {
            // One account's chats for now: the list is by peer.
            let peer = record.conversation.peer().to_string();
            let reading =
                self.window_focused && self.open_peer().is_some_and(|p| p.as_str() == peer);
            let conv = match self.conversations.iter_mut().position(|c| c.peer == peer) {
                Some(i) => {
                    let c = self.conversations.remove(i);
                    self.conversations.insert(0, c);
                    &mut self.conversations[0]
                }
                None => {
                    self.conversations.insert(
                        0,
                        Conversation {
                            peer,
                            ..Conversation::default()
                        },
                    );
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

    /// Older history fetched from the archive: only the open conversation shows it.
    pub fn history(
        &mut self,
        peer: &BareJid,
        records: Vec<crate::conversation::Message>,
        more: bool,
    ) -> Task<Message> {
        if let Some(open) = &mut self.open
            && open.peer() == peer
        {
            open.history(records.into_iter().map(Into::into).collect(), more);
        }
        self.previews()
    }

    /// What the worker found out about the server's file sharing service.
    pub fn upload_service(&mut self, service: Option<crate::xmpp::UploadService>) {
        self.sharing.set_service(service);
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
        let roster = &self.roster;
        let trusted = |peer: &BareJid| roster.get(peer).is_some();
        self.sharing
            .request_previews(open.records(), trusted)
            .map(Message::Sharing)
    }

    fn on_sharing(&mut self, message: sharing::Message) -> (Task<Message>, Option<Event>) {
        let (task, event) = self.sharing.update(message);
        let task = task.map(Message::Sharing);
        match event {
            Some(sharing::Event::Worker(command)) => (task, Some(Event::Worker(command))),
            None => (task, None),
        }
    }

    /// A stored message changed (delivery state): show the new state.
    pub fn updated(&mut self, record: crate::conversation::Message) {
        if let Some(open) = &mut self.open {
            open.replace(record.into());
        }
    }

    /// Opens (or focuses) the chat with `peer`, with an optional draft.
    pub fn open_chat(&mut self, peer: BareJid, draft: Option<String>) -> Task<Message> {
        if self.open_peer() == Some(&peer) && draft.is_none() {
            return iced::widget::operation::focus(conversation::COMPOSER);
        }
        // A link's text goes after the chat's draft, never in its place: a
        // click must not throw away what the user typed.
        let draft = merge_draft(self.drafts.get(peer.as_str()).map(String::as_str), draft);
        let (state, task) = conversation::State::open(&self.store, &self.account, peer, draft);
        self.open = Some(state);
        self.tab = Tab::Chats;
        let save = self.note_draft();
        Task::batch([task.map(Message::Conversation), self.mark_open_read(), save])
    }

    /// Takes note of the open composer's text as its chat's draft, and writes
    /// what changed to the store (one write at a time, off the UI thread).
    fn note_draft(&mut self) -> Task<Message> {
        if let Some(open) = &self.open {
            let peer = open.peer().to_string();
            let text = open.draft();
            let known = self.drafts.get(&peer).map_or("", String::as_str);
            if text != known {
                if text.trim().is_empty() {
                    self.drafts.remove(&peer);
                } else {
                    self.drafts.insert(peer.clone(), text);
                }
                self.drafts_unsaved.insert(peer);
            }
        }
        self.save_drafts()
    }

    fn save_drafts(&mut self) -> Task<Message> {
        if self.drafts_saving || self.drafts_unsaved.is_empty() {
            return Task::none();
        }
        let changed: Vec<(String, String)> = std::mem::take(&mut self.drafts_unsaved)
            .into_iter()
            .map(|peer| {
                let text = self.drafts.get(&peer).cloned().unwrap_or_default();
                (peer, text)
            })
            .collect();
        self.drafts_saving = true;
        self.write_store(
            move |store, account| {
                for (peer, text) in changed {
                    let Ok(peer) = BareJid::new(&peer) else {
                        continue;
                    };
                    let conversation = crate::conversation::Id::chat(account.clone(), peer);
                    if let Err(e) = store.set_draft(&conversation, &text) {
                        tracing::warn!("cannot keep a draft: {e}");
                    }
                }
            },
            Message::DraftsSaved,
        )
    }

    /// Writes to the account's history on tokio's blocking pool, then says `done`.
    fn write_store(
        &self,
        write: impl FnOnce(&Store, &BareJid) + Send + 'static,
        done: Message,
    ) -> Task<Message> {
        let (store, account) = (self.store.clone(), self.account.clone());
        Task::perform(
            async move {
                let _ = tokio::task::spawn_blocking(move || write(&store, &account)).await;
            },
            move |_| done,
        )
    }

    fn load_drafts(&self) -> Task<Message> {
        self.read_store(
            |store, account| {
                // One account's chats for now: the conversation list is by peer.
                Ok(store
                    .drafts(account.as_str())?
                    .into_iter()
                    .map(|(id, text)| (id.peer().to_string(), text))
                    .collect())
            },
            Message::DraftsLoaded,
        )
    }

    /// Reads from the account's history on tokio's blocking pool: the UI never waits on disk.
    fn read_store<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Store, &BareJid) -> Result<T, crate::store::Error> + Send + 'static,
        done: fn(Result<T, String>) -> Message,
    ) -> Task<Message> {
        let (store, account) = (self.store.clone(), self.account.clone());
        Task::perform(
            async move {
                tokio::task::spawn_blocking(move || {
                    read(&store, &account).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
            },
            done,
        )
    }

    fn mark_open_read(&mut self) -> Task<Message> {
        let Some(peer) = self.open_peer().cloned() else {
            return Task::none();
        };
        let Some(conv) = self
            .conversations
            .iter_mut()
            .find(|c| c.peer == peer.as_str())
        else {
            return Task::none();
        };
        if conv.unread == 0 {
            return Task::none();
        }
        conv.unread = 0;
        self.write_store(
            move |store, account| {
                let conversation = crate::conversation::Id::chat(account.clone(), peer);
                if let Err(e) = store.mark_read(&conversation) {
                    tracing::warn!("cannot mark the conversation read: {e}");
                }
            },
            Message::MarkedRead,
        )
    }

    fn load_conversations(&self) -> Task<Message> {
        self.read_store(
            |store, account| store.conversations(account.as_str()),
            Message::ConversationsLoaded,
        )
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
            Message::Open(peer) => return (self.open_chat(peer, None), None),
            Message::Availability(AvailabilityChoice(a)) => {
                self.own.availability = a;
                return (
                    Task::none(),
                    Some(Event::Worker(Command::SetPresence(self.own.clone()))),
                );
            }
            Message::StatusDraft(s) => self.status_draft = s,
            Message::StatusSubmit => {
                self.own.status = self.status_draft.trim().to_string();
                return (
                    Task::none(),
                    Some(Event::Worker(Command::SetPresence(self.own.clone()))),
                );
            }
            Message::RetryNow => return (Task::none(), Some(Event::Worker(Command::RetryNow))),
            Message::SignOut => return (Task::none(), Some(Event::SignOut)),
            Message::OpenSettings => return (Task::none(), Some(Event::OpenSettings)),
            Message::DismissNotice => self.notice = None,
            Message::ConversationsLoaded(Ok(mut list)) => {
                // Keep what arrived while loading (it is newer than the list).
                for c in self.conversations.drain(..).rev() {
                    list.retain(|l| l.peer != c.peer);
                    list.insert(0, c);
                }
                self.conversations = list;
            }
            Message::ConversationsLoaded(Err(e)) => {
                tracing::error!("cannot load conversations: {e}");
            }
            Message::DraftsLoaded(Ok(drafts)) => {
                // What was typed meanwhile is newer than what was stored.
                for (peer, text) in drafts {
                    if !self.drafts_unsaved.contains(&peer) {
                        self.drafts.entry(peer).or_insert(text);
                    }
                }
                // The chat opened before the drafts came (an xmpp: link at start).
                if let Some(open) = &mut self.open
                    && open.draft().is_empty()
                    && let Some(text) = self.drafts.get(open.peer().as_str())
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
            Message::ShowAddContact => {
                self.tab = Tab::Contacts;
                self.add_contact = Some(AddContact::default());
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
            Message::AddContactCancel => self.add_contact = None,
            Message::AddContactSubmit => {
                let Some(form) = &mut self.add_contact else {
                    return (Task::none(), None);
                };
                let jid = BareJid::from_str(form.jid.trim())
                    .ok()
                    .filter(|j| *j != self.account);
                let Some(jid) = jid else {
                    form.error = Some(fl!("contacts-add-error"));
                    return (Task::none(), None);
                };
                let name = Some(form.name.trim().to_string()).filter(|n| !n.is_empty());
                self.add_contact = None;
                return (
                    Task::none(),
                    Some(Event::Worker(Command::AddContact { jid, name })),
                );
            }
            Message::Answer(from, accept) => {
                self.requests.retain(|r| *r != from);
                return (
                    Task::none(),
                    Some(Event::Worker(Command::AnswerSubscription { from, accept })),
                );
            }
            Message::Sharing(message) => return self.on_sharing(message),
            Message::FilesHovered(hovering) => {
                // Only a chat can take files.
                let hovering = hovering && self.open.is_some();
                return self.on_sharing(sharing::Message::Hover(hovering));
            }
            Message::FileDropped(path) => {
                let Some(peer) = self.open_peer().cloned() else {
                    tracing::info!("a file was dropped with no chat open");
                    return self.on_sharing(sharing::Message::Hover(false));
                };
                return self.on_sharing(sharing::Message::Share(peer, vec![path]));
            }
            Message::Paste => {
                let Some(peer) = self.open_peer().cloned() else {
                    return (Task::none(), None);
                };
                return self.on_sharing(sharing::Message::Paste(peer));
            }
            Message::Conversation(message) => {
                let Some(open) = &mut self.open else {
                    return (Task::none(), None);
                };
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
                        let peer = open.peer().clone();
                        let (pick, event) = self.on_sharing(sharing::Message::Pick(peer));
                        (Task::batch([task, pick]), event)
                    }
                    Some(conversation::Event::Sharing(message)) => {
                        let (more, event) = self.on_sharing(message);
                        (Task::batch([task, more]), event)
                    }
                    Some(conversation::Event::Send(body)) => (
                        task,
                        Some(Event::Worker(Command::SendMessage {
                            to: open.peer().clone(),
                            body,
                        })),
                    ),
                    Some(conversation::Event::OpenLink(Target::Chat(uri))) => {
                        let open = self.open_chat(uri.jid, uri.body);
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
                        Some(Event::Worker(Command::Retry {
                            peer: open.peer().clone(),
                            id,
                        })),
                    ),
                    Some(conversation::Event::FetchOlder(before)) => (
                        task,
                        Some(Event::Worker(Command::FetchOlder {
                            peer: open.peer().clone(),
                            before,
                        })),
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
                .push(self.tabs())
                .push(self.list())
                .spacing(8)
                .height(Fill),
        )
        .width(Length::Fixed(290.0))
        .height(Fill)
        .padding([12, 10])
        .style(theme::sidebar);

        let main: Element<'_, Message> = match &self.open {
            Some(open) => {
                let peer = open.peer();
                let page: Element<'_, Message> = column![
                    self.chat_header(peer),
                    open.view(self.peer_name(peer), self.own_name(), &self.sharing)
                        .map(Message::Conversation)
                ]
                .into();
                if self.sharing.is_hovering() {
                    iced::widget::stack![page, sharing::drop_zone(self.peer_name(peer))].into()
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

    fn own_name(&self) -> &str {
        self.account
            .node()
            .map(|n| n.as_str())
            .unwrap_or(self.account.as_str())
    }

    fn peer_name<'a>(&'a self, peer: &'a BareJid) -> &'a str {
        self.roster
            .get(peer)
            .and_then(|c| c.name.as_deref())
            .or_else(|| peer.node().map(|n| n.as_str()))
            .unwrap_or(peer.as_str())
    }

    fn account_header(&self) -> Element<'_, Message> {
        let (dot_color, line): (fn(&iced::Theme) -> iced::Color, String) = match &self.connection {
            ConnectionState::Online { .. } => (
                |t| theme::availability(t, Availability::Available),
                fl!("conn-online"),
            ),
            ConnectionState::Connecting => (
                |t| theme::availability(t, Availability::Away),
                fl!("conn-connecting"),
            ),
            ConnectionState::Retrying { reason, retry_in } => (
                |t| theme::availability(t, Availability::Away),
                fl!(
                    "conn-retrying",
                    reason = failure_text(reason),
                    seconds = retry_in.as_secs()
                ),
            ),
            ConnectionState::Offline(None) => (
                |t| theme::availability(t, Availability::Offline),
                fl!("conn-offline"),
            ),
            ConnectionState::Offline(Some(f)) => (
                theme::danger_text,
                fl!("conn-offline-reason", reason = failure_text(f)),
            ),
        };
        let mut state_line = row![
            container(Space::new().width(8).height(8))
                .style(move |t: &iced::Theme| { theme::dot(dot_color(t))(t) }),
            text(line).size(12).width(Fill).style(theme::muted_text),
        ]
        .spacing(6)
        .align_y(Alignment::Center);
        if matches!(
            self.connection,
            ConnectionState::Retrying { .. } | ConnectionState::Offline(_)
        ) {
            state_line = state_line.push(
                button(text(fl!("conn-retry")).size(12))
                    .padding(0)
                    .style(theme::link_button)
                    .on_press(Message::RetryNow),
            );
        }

        let presence = pick_list(
            AvailabilityChoice::ALL,
            Some(AvailabilityChoice(self.own.availability)),
            Message::Availability,
        )
        .text_size(13)
        .padding([4, 8]);
        let status = text_input(&fl!("status-placeholder"), &self.status_draft)
            .on_input(Message::StatusDraft)
            .on_submit(Message::StatusSubmit)
            .size(13)
            .padding([4, 8])
            .style(theme::input);

        column![
            row![
                text(self.account.to_string()).size(15).width(Fill),
                button(text(fl!("settings")).size(12))
                    .padding(0)
                    .style(theme::link_button)
                    .on_press(Message::OpenSettings),
                button(text(fl!("sign-out")).size(12))
                    .padding(0)
                    .style(theme::link_button)
                    .on_press(Message::SignOut),
            ]
            .spacing(10)
            .align_y(Alignment::Center),
            state_line,
            row![presence, status].spacing(6).align_y(Alignment::Center),
        ]
        .spacing(6)
        .padding([0, 4])
        .into()
    }

    fn tabs(&self) -> Element<'_, Message> {
        let unread = self.unread();
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
            tab(
                fl!("tab-contacts", count = self.roster.len()),
                Tab::Contacts
            )
        ]
        .spacing(4)
        .into()
    }

    fn list(&self) -> Element<'_, Message> {
        let content: Element<'_, Message> = match self.tab {
            Tab::Chats if self.conversations.is_empty() && self.drafts.is_empty() => {
                empty(fl!("chats-empty"))
            }
            Tab::Chats => {
                // Chats with nothing but a draft (opened from a link, say) come first.
                let draft_only = self
                    .drafts
                    .keys()
                    .filter(|peer| !self.conversations.iter().any(|c| &c.peer == *peer))
                    .map(|peer| Conversation {
                        peer: peer.clone(),
                        ..Conversation::default()
                    })
                    .collect::<Vec<_>>();
                // Thousands of chats (a flood from strangers, years of them)
                // would be thousands of rows built at every frame: only those
                // in sight are, between spaces as tall as the rest.
                let total = draft_only.len() + self.conversations.len();
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
                    .chain(&self.conversations)
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
                if self.roster.is_empty() {
                    list = list.push(empty(fl!("contacts-empty")));
                }
                for (group, contacts) in self.roster.groups() {
                    let title = group.unwrap_or_else(|| fl!("contacts-ungrouped"));
                    list = list.push(
                        container(text(title.to_uppercase()).size(11).style(theme::muted_text))
                            .padding([8, 8]),
                    );
                    for contact in contacts {
                        list = list.push(self.contact_row(contact));
                    }
                }
                list.into()
            }
        };
        scrollable(content)
            .height(Fill)
            // Beside the rows, not over their times and unread counts.
            .spacing(4)
            .on_scroll(Message::ListScrolled)
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
        for from in &self.requests {
            tools = tools.push(
                container(
                    column![
                        text(fl!("contacts-request", jid = from.to_string())).size(13),
                        row![
                            button(text(fl!("contacts-accept")).size(12))
                                .padding([3, 10])
                                .style(theme::primary_button)
                                .on_press(Message::Answer(from.clone(), true)),
                            button(text(fl!("contacts-decline")).size(12))
                                .padding([3, 8])
                                .style(theme::link_button)
                                .on_press(Message::Answer(from.clone(), false)),
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

    fn conversation_row(&self, c: &Conversation) -> Element<'_, Message> {
        let Ok(jid) = BareJid::from_str(&c.peer) else {
            return Space::new().into();
        };
        let (availability, _) = self.roster.availability(&jid);
        let selected = self.open_peer() == Some(&jid);
        let name = self.roster.display_name(&jid);
        let time = c.last_time.map(format_list_time).unwrap_or_default();
        let draft = self.drafts.get(&c.peer).filter(|_| !selected);
        let preview = match (draft, c.last_direction) {
            (Some(draft), _) => fl!("preview-draft", text = first_line(draft)),
            (None, _) if c.last_encrypted => fl!("preview-encrypted"),
            (None, Some(Direction::Out)) => fl!("preview-you", text = last_line(&c.last_body)),
            (None, _) => last_line(&c.last_body),
        };
        let mut top = row![
            presence_dot(availability),
            text(name).size(14).width(Fill),
            text(time).size(11).style(theme::muted_text),
        ]
        .spacing(8)
        .align_y(Alignment::Center);
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
            .on_press(Message::Open(jid))
            .into()
    }

    fn contact_row<'a>(&'a self, contact: &'a Contact) -> Element<'a, Message> {
        let (availability, status) = self.roster.availability(&contact.jid);
        let selected = self.open_peer() == Some(&contact.jid);
        let mut info = column![text(self.roster.display_name(&contact.jid)).size(14)];
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
        .on_press(Message::Open(contact.jid.clone()))
        .into()
    }

    fn chat_header<'a>(&'a self, peer: &'a BareJid) -> Element<'a, Message> {
        let (availability, status) = self.roster.availability(peer);
        let mut detail = availability_label(availability);
        if let Some(status) = status {
            detail = format!("{detail} — {status}");
        }
        container(
            row![
                presence_dot(availability),
                column![
                    text(self.peer_name(peer)).size(17),
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

    /// What a flood of messages from strangers (each a new conversation)
    /// costs the chat list: time to take them in, memory, time to draw it.
    #[test]
    #[ignore = "measurement: ICED_TEST_BACKEND=tiny-skia cargo test --release --lib many_strangers_cost -- --ignored --nocapture"]
    fn many_strangers_cost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let context = sharing::Context {
            http: None,
            cache: crate::thumbnail::Cache::new(dir.path().join("cache")),
            pasted_dir: dir.path().join("pasted"),
            files: crate::config::FilesConfig::default(),
        };
        let (mut state, _) = State::new(BareJid::new("alice@example.org").unwrap(), store, context);
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
