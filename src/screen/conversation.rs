//! One open conversation: its messages (paged from the history) and the composer.

use chrono::{DateTime, Local, NaiveDate, Utc};
use iced::keyboard::{self, key};
use iced::widget::text_editor::{self, Binding, KeyPress};
use iced::widget::{Space, button, column, container, row, scrollable, text};
use iced::{Alignment, Element, Fill, Task};

pub mod activity;
mod completion;

use super::sharing;
use crate::conversation::{self as talk, Delivery, Direction, Encryption};
use crate::fl;
use crate::link::{self, Segment, Target};
use crate::store::{Cursor, PAGE_SIZE, Page, Store};
use crate::theme;
use crate::xmpp::{BareJid, Oldest};

pub const COMPOSER: &str = "composer";
pub const MESSAGES: &str = "messages";

/// Messages closer than this to each other (same sender) share one name line.
const GROUP_WINDOW_SECS: i64 = 5 * 60;
/// Load older messages when the view is this close to the top.
const LOAD_MARGIN: f32 = 200.0;

/// A message as this screen shows it: what it says, and what drawing it
/// needs worked out once when it arrives instead of on every frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub conversation: talk::Id,
    pub id: String,
    pub direction: Direction,
    pub body: String,
    pub time: DateTime<Utc>,
    pub state: Delivery,
    pub error: Option<String>,
    pub archive_id: Option<String>,
    pub attachment: bool,
    pub encryption: Option<Encryption>,
    /// Who wrote it, in a room (their nickname).
    pub sender: Option<String>,
    /// How many bytes of `body` are drawn (see [`MAX_SHOWN_CHARS`]).
    shown: usize,
    /// The body's length in characters, when it is shown shortened.
    shortened_from: Option<usize>,
}

impl From<talk::Message> for Entry {
    fn from(message: talk::Message) -> Self {
        let shown = shown(&message.body).len();
        let shortened_from = (shown < message.body.len()).then(|| message.body.chars().count());
        Self {
            conversation: message.conversation,
            id: message.id,
            direction: message.direction,
            body: message.body,
            time: message.time,
            state: message.state,
            error: message.error,
            archive_id: message.archive_id,
            attachment: message.attachment,
            encryption: message.encryption,
            sender: message.sender,
            shown,
            shortened_from,
        }
    }
}

impl Entry {
    /// The part of the body that is drawn.
    pub fn shown(&self) -> &str {
        self.body.get(..self.shown).unwrap_or(&self.body)
    }
}

/// A page of the history as this screen shows it.
#[derive(Debug, Clone, Default)]
pub struct Paged {
    entries: Vec<Entry>,
    older: Option<Cursor>,
}

impl From<Page> for Paged {
    fn from(page: Page) -> Self {
        Self {
            // A damaged record, which names no conversation, is left out.
            entries: page
                .records
                .into_iter()
                .filter_map(|record| record.into_message().map(Entry::from))
                .collect(),
            older: page.older,
        }
    }
}

pub struct State {
    account: String,
    conversation: talk::Id,
    peer: BareJid,
    records: Vec<Entry>,
    older: Option<Cursor>,
    /// Whether the first page has arrived.
    loaded: bool,
    /// Messages stored or changed while the first page was being read, in
    /// the order they came (and whether each is new): the page may have been
    /// read before they were written, so they are applied on top of it.
    early: Vec<(Entry, bool)>,
    loading_older: bool,
    /// What the server's archive may hold before the oldest local message.
    archive: Archive,
    composer: text_editor::Content,
    /// Who else is in the room, for Tab completion (empty in a chat).
    nicks: Vec<String>,
    completion: Option<completion::Completion>,
    /// How many incoming messages were unread when it opened: the first of
    /// them is where "New messages" goes, once the page is there.
    unread: u32,
    /// The first message that was unread when it opened.
    unread_from: Option<String>,
}

/// Older history on the server, asked for once the local history runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archive {
    /// It may hold older messages.
    Unknown,
    /// A page was asked for and has not come yet.
    Fetching,
    /// It holds nothing older: this is the start of the conversation.
    Exhausted,
}

#[derive(Debug, Clone)]
pub enum Message {
    Edit(text_editor::Action),
    /// Tab: complete the nickname before the cursor.
    Complete,
    Send,
    Loaded(Result<Paged, String>),
    OlderLoaded(Result<Paged, String>),
    Scrolled(scrollable::Viewport),
    LoadOlder,
    Link(Target),
    Retry(String),
    /// Put the whole body of this message (by id) on the clipboard: for one
    /// too long to show in full.
    CopyBody(String),
    /// Open the file picker.
    Attach,
    /// Something to do with a shared file (see `sharing`).
    Sharing(sharing::Message),
}

pub enum Event {
    Send(String),
    Error(String),
    OpenLink(Target),
    /// Send the failed message with this id again.
    Retry(String),
    /// The local history is exhausted: fetch what precedes this from the archive.
    FetchOlder(Option<Oldest>),
    Attach,
    Sharing(sharing::Message),
}

impl State {
    /// Opens a conversation and starts loading its newest page.
    /// Opens a conversation whose newest `unread` incoming messages were
    /// not read yet.
    pub fn open(
        store: &Store,
        conversation: talk::Id,
        draft: Option<String>,
        unread: u32,
    ) -> (Self, Task<Message>) {
        let mut state = Self {
            account: conversation.account().to_string(),
            peer: conversation.bare(),
            conversation: conversation.clone(),
            records: Vec::new(),
            older: None,
            loaded: false,
            early: Vec::new(),
            loading_older: false,
            // The account's archive holds chats, a room's own archive the
            // room's; private messages in a room are in neither.
            archive: if conversation.kind() != talk::Kind::Private {
                Archive::Unknown
            } else {
                Archive::Exhausted
            },
            composer: text_editor::Content::new(),
            nicks: Vec::new(),
            completion: None,
            unread,
            unread_from: None,
        };
        if let Some(draft) = draft {
            state.set_draft(&draft);
        }
        let task = load_page(store, conversation, None).map(Message::Loaded);
        // (A text editor's cursor lives in its content, where `set_draft` puts it.)
        let focus = iced::widget::operation::focus(COMPOSER);
        (state, Task::batch([task, focus]))
    }

    pub fn peer(&self) -> &BareJid {
        &self.peer
    }

    /// The composer's text.
    pub fn draft(&self) -> String {
        self.composer.text()
    }

    /// Puts a draft in the composer, the cursor after it.
    pub fn set_draft(&mut self, draft: &str) {
        self.composer = text_editor::Content::with_text(draft);
        self.composer
            .perform(text_editor::Action::Move(text_editor::Motion::DocumentEnd));
    }

    /// The conversation this is.
    pub fn id(&self) -> &talk::Id {
        &self.conversation
    }

    pub fn records(&self) -> &[Entry] {
        &self.records
    }

    /// A shown message changed (delivery state): replace it.
    pub fn replace(&mut self, record: Entry) {
        if record.conversation != self.conversation {
            return;
        }
        if !self.loaded {
            self.early.push((record, false));
            return;
        }
        self.apply(record, false);
    }

    /// Shows the newest form of a record in its place; one not shown is
    /// put where its time puts it when it is `new`, else left out (a
    /// change to a message outside the loaded pages).
    fn apply(&mut self, record: Entry, new: bool) {
        if let Some(at) = self.records.iter().rposition(|r| r.id == record.id) {
            if self.records[at].time == record.time {
                self.records[at] = record;
            } else {
                // Moved (the archive's order): take its new place.
                self.records.remove(at);
                let at = self.records.partition_point(|r| r.time <= record.time);
                self.records.insert(at, record);
            }
        } else if new {
            let at = self.records.partition_point(|r| r.time <= record.time);
            self.records.insert(at, record);
        }
    }

    /// The first page arrived (or could not be read): show it, with what
    /// changed while it was read.
    fn first_page(&mut self, page: Option<Paged>) {
        if let Some(page) = page {
            self.records = page.entries;
            self.older = page.older;
        }
        self.loaded = true;
        self.unread_from = first_unread(&self.records, self.unread);
        for (record, new) in std::mem::take(&mut self.early) {
            self.apply(record, new);
        }
    }

    /// Who else is in the room now, for Tab completion.
    pub fn set_nicks(&mut self, nicks: Vec<String>) {
        self.nicks = nicks;
    }

    /// Tab in the composer: the word before the cursor (at the end of the
    /// text) becomes a nickname, or the next one.
    fn complete(&mut self) {
        let cursor = self.composer.cursor();
        let last = self.composer.line_count().saturating_sub(1);
        let at_end = cursor.selection.is_none()
            && cursor.position.line == last
            && self.composer.line(last).is_some_and(|line| {
                cursor.position.column == line.text.len()
                    || cursor.position.column == line.text.chars().count()
            });
        if !at_end {
            return;
        }
        let before = self.composer.text();
        let Some((replace, running)) =
            completion::complete(&before, &self.nicks, self.completion.take())
        else {
            return;
        };
        for _ in 0..replace.delete {
            self.composer
                .perform(text_editor::Action::Edit(text_editor::Edit::Backspace));
        }
        self.composer
            .perform(text_editor::Action::Edit(text_editor::Edit::Paste(
                std::sync::Arc::new(replace.insert),
            )));
        self.completion = Some(running);
    }

    /// Older history fetched from the archive (see [`Event::FetchOlder`]).
    pub fn history(&mut self, records: Vec<Entry>, more: bool) {
        self.archive = if more {
            Archive::Unknown
        } else {
            Archive::Exhausted
        };
        for record in records {
            if record.conversation == self.conversation {
                let at = self.records.partition_point(|r| r.time <= record.time);
                self.records.insert(at, record);
            }
        }
    }

    /// Whether anything older can be loaded, from here or from the archive.
    fn has_older(&self) -> bool {
        self.older.is_some() || (self.loaded && self.archive != Archive::Exhausted)
    }

    fn is_loading_older(&self) -> bool {
        self.loading_older || self.archive == Archive::Fetching
    }

    /// A message of this conversation was stored: show it.
    pub fn push(&mut self, record: Entry) {
        if record.conversation != self.conversation {
            return;
        }
        if !self.loaded {
            self.early.push((record, true));
            return;
        }
        let at = self.records.partition_point(|r| r.time <= record.time);
        self.records.insert(at, record);
    }

    pub fn update(&mut self, message: Message, store: &Store) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Edit(action) => {
                self.completion = None;
                self.composer.perform(action);
            }
            Message::Complete => self.complete(),
            Message::Send => {
                let body = self.composer.text();
                let body = body.trim_end_matches(['\n', '\r']);
                if body.trim().is_empty() {
                    return (Task::none(), None);
                }
                let body = body.to_string();
                self.composer = text_editor::Content::new();
                return (scroll_to_end(), Some(Event::Send(body)));
            }
            Message::Loaded(Ok(page)) => {
                self.first_page(Some(page));
                return (scroll_to_end(), None);
            }
            Message::OlderLoaded(Ok(page)) => {
                self.loading_older = false;
                self.older = page.older;
                let mut records = page.entries;
                records.append(&mut self.records);
                self.records = records;
            }
            Message::Loaded(Err(e)) => {
                self.first_page(None);
                return (Task::none(), Some(Event::Error(e)));
            }
            Message::OlderLoaded(Err(e)) => {
                self.loading_older = false;
                return (Task::none(), Some(Event::Error(e)));
            }
            Message::Scrolled(viewport) => {
                // The list is anchored to the bottom: the reversed offset is the distance to the top.
                if viewport.absolute_offset_reversed().y < LOAD_MARGIN {
                    return self.load_older(store);
                }
            }
            Message::LoadOlder => return self.load_older(store),
            Message::Link(target) => return (Task::none(), Some(Event::OpenLink(target))),
            Message::Retry(id) => return (Task::none(), Some(Event::Retry(id))),
            Message::CopyBody(id) => {
                if let Some(record) = self.records.iter().find(|r| r.id == id) {
                    return (iced::clipboard::write(record.body.clone()), None);
                }
            }
            Message::Attach => return (Task::none(), Some(Event::Attach)),
            Message::Sharing(message) => return (Task::none(), Some(Event::Sharing(message))),
        }
        (Task::none(), None)
    }

    /// The next older page: from the local history while it lasts, then from
    /// the server's archive.
    fn load_older(&mut self, store: &Store) -> (Task<Message>, Option<Event>) {
        if self.is_loading_older() || !self.loaded {
            return (Task::none(), None);
        }
        if let Some(cursor) = &self.older {
            self.loading_older = true;
            let task = load_page(store, self.conversation.clone(), Some(cursor.clone()));
            return (task.map(Message::OlderLoaded), None);
        }
        if self.archive != Archive::Unknown {
            return (Task::none(), None);
        }
        self.archive = Archive::Fetching;
        let oldest = self.records.first().map(|r| Oldest {
            time: r.time,
            archive_id: r.archive_id.clone(),
        });
        (Task::none(), Some(Event::FetchOlder(oldest)))
    }

    pub fn view<'a>(
        &'a self,
        peer_name: &'a str,
        own_name: &'a str,
        sharing: &'a sharing::State,
        activity: Option<&'a activity::Log>,
    ) -> Element<'a, Message> {
        let mut list = column![].spacing(2).padding([12, 16]);
        // A room's comings and goings go between the messages by time, one
        // line for each stretch between two messages.
        let mut changes = activity.into_iter().flat_map(|log| log.iter()).peekable();
        let mut stretch = |until: Option<DateTime<Utc>>| {
            let mut taken = Vec::new();
            while let Some(next) = changes.next_if(|a| until.is_none_or(|t| a.time <= t)) {
                taken.push(&next.change);
            }
            activity::summary(taken).map(activity_line)
        };
        if self.has_older() {
            list = list.push(
                container(
                    button(
                        text(if self.is_loading_older() {
                            fl!("chat-loading-older")
                        } else {
                            fl!("chat-load-older")
                        })
                        .size(12),
                    )
                    .style(theme::link_button)
                    .on_press(Message::LoadOlder),
                )
                .center_x(Fill),
            );
        }
        if self.loaded && self.records.is_empty() {
            list = list.push(
                container(text(fl!("chat-empty", name = peer_name)).style(theme::muted_text))
                    .center_x(Fill)
                    .padding(24),
            );
        }
        let mut previous: Option<&Entry> = None;
        for record in &self.records {
            // What follows such a line names its writer again.
            let interrupted = match stretch(Some(record.time)) {
                Some(line) => {
                    list = list.push(line);
                    true
                }
                None => false,
            };
            let day = local_day(record.time);
            if previous.is_none_or(|p| local_day(p.time) != day) {
                list = list.push(day_separator(day));
            }
            if self.unread_from.as_deref() == Some(record.id.as_str()) {
                list = list.push(unread_marker());
            }
            let grouped = !interrupted
                && previous.is_some_and(|p| {
                    p.direction == record.direction
                        && p.sender == record.sender
                        && local_day(p.time) == day
                        && (record.time - p.time).num_seconds() < GROUP_WINDOW_SECS
                });
            // In a room, each message names its writer by nickname, in the
            // nickname's own colour (XEP-0392 keys it on the nickname there).
            let (name, sender_key) = match (&record.sender, record.direction) {
                (Some(nick), _) => (nick.as_str(), nick.as_str()),
                (None, Direction::In) => (peer_name, self.peer.as_str()),
                // Ours in a room: our nickname's colour, as the occupants see it.
                (None, Direction::Out) if self.conversation.kind() == talk::Kind::Room => {
                    (own_name, own_name)
                }
                (None, Direction::Out) => (own_name, self.account.as_str()),
            };
            let view = message_view(record, (!grouped).then_some((name, sender_key)), sharing);
            // Someone in the room names us: the message stands out.
            let mentioned = record.sender.is_some()
                && record.direction == Direction::In
                && talk::mentions(&record.body, own_name);
            list = list.push(if mentioned {
                container(view).padding([2, 6]).style(theme::mention).into()
            } else {
                view
            });
            previous = Some(record);
        }
        if let Some(line) = stretch(None) {
            list = list.push(line);
        }

        let messages = scrollable(list)
            .id(MESSAGES)
            .anchor_bottom()
            .on_scroll(Message::Scrolled)
            .height(Fill)
            .width(Fill);

        let composer = text_editor(&self.composer)
            .id(COMPOSER)
            .placeholder(fl!("chat-composer-placeholder", name = peer_name))
            .on_action(Message::Edit)
            .key_binding(composer_binding)
            .padding(10)
            .min_height(40)
            .max_height(160)
            .style(theme::composer);
        let send = button(text(fl!("chat-send")))
            .padding([10, 16])
            .style(theme::primary_button)
            .on_press_maybe((!self.composer.text().trim().is_empty()).then_some(Message::Send));
        let attach = iced::widget::tooltip(
            button(text("+").size(20))
                .padding([4, 12])
                .style(theme::link_button)
                .on_press(Message::Attach),
            container(text(fl!("attach-tooltip")).size(12))
                .padding(6)
                .style(container::rounded_box),
            iced::widget::tooltip::Position::Top,
        );
        let bottom = row![attach, composer, send]
            .spacing(8)
            .padding([10, 16])
            .align_y(Alignment::End);

        let mut page = column![messages].height(Fill);
        if let Some(uploads) = sharing.uploads_view(&self.conversation) {
            page = page.push(uploads.map(Message::Sharing));
        }
        page.push(bottom).into()
    }
}

fn text_editor<'a>(
    content: &'a text_editor::Content,
) -> iced::widget::TextEditor<'a, iced::advanced::text::highlighter::PlainText, Message> {
    iced::widget::text_editor(content)
}

/// Enter sends; Shift+Enter starts a new line; Tab completes a nickname;
/// everything else as usual.
fn composer_binding(press: KeyPress) -> Option<Binding<Message>> {
    if let keyboard::Key::Named(key::Named::Tab) = press.key
        && press.modifiers.is_empty()
        && matches!(press.status, text_editor::Status::Focused { .. })
    {
        return Some(Binding::Custom(Message::Complete));
    }
    if let keyboard::Key::Named(key::Named::Enter) = press.key {
        if !matches!(press.status, text_editor::Status::Focused { .. }) {
            return None;
        }
        return Some(if press.modifiers.shift() {
            Binding::Enter
        } else {
            Binding::Custom(Message::Send)
        });
    }
    // Ctrl+<key> is a shortcut (Ctrl+, opens the settings), not text to
    // type; iced's default binding would insert its character. Ctrl+Alt is
    // left alone: Windows reports AltGr (@, € on many layouts) as Ctrl+Alt.
    if let keyboard::Key::Character(c) = &press.key
        && press.modifiers.command()
        && !press.modifiers.alt()
        && !matches!(c.as_str(), "a" | "c" | "x" | "v" | "A" | "C" | "X" | "V")
    {
        return None;
    }
    Binding::from_key_press(press)
}

/// Shows the newest message.
///
/// The list is anchored to the bottom, where iced measures offsets from: the
/// newest message is at offset 0 (`snap_to_end` would show the oldest).
pub fn scroll_to_end() -> Task<Message> {
    iced::widget::operation::snap_to(MESSAGES, scrollable::RelativeOffset::START)
}

fn load_page(
    store: &Store,
    conversation: crate::conversation::Id,
    before: Option<Cursor>,
) -> Task<Result<Paged, String>> {
    let store = store.clone();
    Task::perform(
        async move {
            tokio::task::spawn_blocking(move || {
                store
                    .page(&conversation, before.as_ref(), PAGE_SIZE)
                    .map(Paged::from)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
        },
        |r| r,
    )
}

/// The first of the newest `unread` incoming messages (of a page that may
/// hold fewer: then the page's first incoming one).
fn first_unread(records: &[Entry], unread: u32) -> Option<String> {
    if unread == 0 {
        return None;
    }
    let mut left = unread;
    let mut first = None;
    for record in records.iter().rev() {
        if record.direction == Direction::In {
            first = Some(record.id.clone());
            left -= 1;
            if left == 0 {
                break;
            }
        }
    }
    first
}

/// "New messages": where what was unread when the conversation opened starts.
fn unread_marker<'a>() -> Element<'a, Message> {
    let line = || {
        container(Space::new().height(1))
            .width(Fill)
            .style(|t: &iced::Theme| container::Style {
                background: Some(theme::danger_text(t).into()),
                ..container::Style::default()
            })
    };
    row![
        line(),
        text(fl!("chat-unread-marker"))
            .size(12)
            .style(|t| text::Style {
                color: Some(theme::danger_text(t)),
            }),
        line(),
    ]
    .spacing(8)
    .align_y(Alignment::Center)
    .padding([6, 0])
    .into()
}

fn local_day(time: DateTime<Utc>) -> NaiveDate {
    time.with_timezone(&Local).date_naive()
}

/// Who came and went, quietly between the messages.
fn activity_line<'a>(summary: String) -> Element<'a, Message> {
    container(text(summary).size(12).style(theme::muted_text))
        .center_x(Fill)
        .padding([4, 0])
        .into()
}

fn day_separator<'a>(day: NaiveDate) -> Element<'a, Message> {
    let today = Local::now().date_naive();
    let label = if day == today {
        fl!("chat-today")
    } else if today.pred_opt() == Some(day) {
        fl!("chat-yesterday")
    } else {
        day.format("%Y-%m-%d").to_string()
    };
    container(text(label).size(12).style(theme::muted_text))
        .center_x(Fill)
        .padding([10, 0])
        .into()
}

fn message_view<'a>(
    record: &'a Entry,
    header: Option<(&'a str, &'a str)>,
    sharing: &'a sharing::State,
) -> Element<'a, Message> {
    let time = record
        .time
        .with_timezone(&Local)
        .format("%H:%M")
        .to_string();
    let mut block = column![].spacing(2);
    let mut meta = row![].spacing(6).align_y(Alignment::Center);
    if let Some((name, jid)) = header {
        let jid = jid.to_string();
        block = block.push(Space::new().height(6));
        block = block.push(
            row![
                text(name).size(14).style(move |t| text::Style {
                    color: Some(theme::jid_color(t, &jid))
                }),
                text(time).size(11).style(theme::muted_text),
            ]
            .spacing(8)
            .align_y(Alignment::Center),
        );
    } else {
        meta = meta.push(text(time).size(11).style(theme::muted_text));
    }
    if let Some(mark) = delivery_mark(record) {
        meta = meta.push(mark);
    }
    let visible = record.shown();
    let body = match (record.encryption, sharing.attachment(record)) {
        // Not the contact's words: the fallback their client sends to ours.
        (Some(encryption), _) => encrypted_view(encryption),
        (None, Some(card)) => row![card.map(Message::Sharing), Space::new().width(Fill)].into(),
        (None, None) => body_view(visible),
    };
    block = block.push(row![body, meta].spacing(8));
    if record.encryption.is_none()
        && let Some(total) = record.shortened_from
    {
        block = block.push(note_with_action(
            text(fl!("message-shortened", total = total)).style(theme::muted_text),
            fl!("message-copy-whole"),
            Message::CopyBody(record.id.clone()),
        ));
    }
    if record.state == Delivery::Failed {
        let reason = record.error.clone().unwrap_or_default();
        block = block.push(note_with_action(
            text(fl!("message-failed", reason = reason)).style(|t| text::Style {
                color: Some(theme::danger_text(t)),
            }),
            fl!("message-retry"),
            Message::Retry(record.id.clone()),
        ));
    }
    block.into()
}

/// A small line under a message with a link-like action after it.
fn note_with_action<'a>(
    note: iced::widget::Text<'a>,
    action: String,
    on_press: Message,
) -> Element<'a, Message> {
    row![
        note.size(12),
        button(text(action).size(12))
            .padding(0)
            .style(theme::link_button)
            .on_press(on_press),
    ]
    .spacing(8)
    .align_y(Alignment::Center)
    .into()
}

/// The quiet state mark of an outgoing message: ○ pending, ✓ sent, ✓✓ delivered, ! failed.
fn delivery_mark<'a>(record: &Entry) -> Option<Element<'a, Message>> {
    if record.direction != Direction::Out {
        return None;
    }
    let (glyph, tip) = match record.state {
        Delivery::Pending => ("○", fl!("state-pending")),
        Delivery::Sent => ("✓", fl!("state-sent")),
        Delivery::Delivered => ("✓✓", fl!("state-delivered")),
        Delivery::Failed => ("!", fl!("state-failed")),
        Delivery::Received => return None,
    };
    let failed = record.state == Delivery::Failed;
    let mark = text(glyph).size(11).style(move |t| text::Style {
        color: Some(if failed {
            theme::danger_text(t)
        } else {
            theme::muted(t)
        }),
    });
    Some(
        iced::widget::tooltip(
            mark,
            container(text(tip).size(12))
                .padding(6)
                .style(container::rounded_box),
            iced::widget::tooltip::Position::Top,
        )
        .into(),
    )
}

/// A message Tern cannot read: said in Tern's words, set apart from what
/// people write.
fn encrypted_view<'a>(encryption: Encryption) -> Element<'a, Message> {
    let kind = match encryption {
        Encryption::Omemo | Encryption::Omemo2 => "OMEMO",
        Encryption::Openpgp | Encryption::LegacyPgp => "OpenPGP",
        Encryption::Other => "?",
    };
    text(fl!("message-encrypted", kind = kind))
        .size(14)
        .width(Fill)
        .font(iced::Font {
            style: iced::font::Style::Italic,
            ..iced::Font::DEFAULT
        })
        .style(theme::muted_text)
        .into()
}

/// Characters of one message shown in the chat. Laying text out is linear
/// in its length and runs on the UI thread: a message of a million characters
/// took 4.8 s (debug build) at every resize; 10,000 take 60 ms.
const MAX_SHOWN_CHARS: usize = 10_000;

/// The part of a body the chat shows: all of it, or its first
/// [`MAX_SHOWN_CHARS`] characters (the rest can be copied).
fn shown(body: &str) -> &str {
    match body.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((end, _)) => &body[..end],
        None => body,
    }
}

/// A message body, with its web and xmpp: links clickable.
fn body_view(body: &str) -> Element<'_, Message> {
    let segments = link::segments(body);
    if let [Segment::Text(plain)] = segments.as_slice() {
        return text(*plain).size(15).width(Fill).into();
    }
    let spans: Vec<iced::widget::text::Span<'_, Target>> = segments
        .into_iter()
        .map(|segment| match segment {
            Segment::Text(t) => iced::widget::span(t),
            Segment::Link(t, target) => iced::widget::span(t)
                .link(target)
                .underline(true)
                .color(theme::LINK),
        })
        .collect();
    iced::widget::rich_text(spans)
        .on_link_click(Message::Link)
        .size(15)
        .width(Fill)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced::keyboard::Modifiers;

    /// How long a body of each size takes to lay out and draw: what a huge
    /// message from a contact costs the UI thread.
    #[test]
    #[ignore = "measurement: ICED_TEST_BACKEND=tiny-skia cargo test --lib long_bodies_cost -- --ignored --nocapture"]
    fn long_bodies_cost() {
        for chars in [1_000usize, 10_000, 100_000, 1_000_000] {
            let body: String = "lorem ipsum dolor sit amet "
                .chars()
                .cycle()
                .take(chars)
                .collect();
            let t0 = std::time::Instant::now();
            let mut ui = iced_test::simulator(iced::widget::scrollable(body_view(&body)));
            let laid_out = t0.elapsed();
            let t1 = std::time::Instant::now();
            let _ = ui.snapshot(&iced::Theme::Light);
            println!(
                "{chars} characters: layout {laid_out:?}, draw {:?}",
                t1.elapsed()
            );
        }
    }

    #[test]
    fn only_the_start_of_a_huge_body_is_shown() {
        assert_eq!(shown("short"), "short");
        let exact = "é".repeat(MAX_SHOWN_CHARS);
        assert_eq!(shown(&exact), exact);
        let huge = "é".repeat(MAX_SHOWN_CHARS * 100);
        assert_eq!(shown(&huge).chars().count(), MAX_SHOWN_CHARS);
        assert!(huge.starts_with(shown(&huge)));
    }

    fn message(id: &talk::Id, key: &str, secs: i64, state: Delivery) -> Entry {
        Entry::from(talk::Message {
            conversation: id.clone(),
            id: key.to_string(),
            direction: Direction::In,
            body: format!("body of {key}"),
            time: DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap(),
            state,
            error: None,
            archive_id: None,
            other_device: false,
            sender: None,
            attachment: false,
            encryption: None,
        })
    }

    /// "New messages" goes before the first of the newest unread incoming
    /// messages, our own in between not counted; none when nothing was unread.
    #[test]
    fn the_unread_marker_goes_where_unread_starts() {
        let id = talk::Id::chat(
            "me@example.org".parse().unwrap(),
            "bob@example.org".parse().unwrap(),
        );
        let mut records: Vec<Entry> = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(n, key)| message(&id, key, i64::try_from(n).unwrap(), Delivery::Received))
            .collect();
        records[2].direction = Direction::Out;
        assert_eq!(first_unread(&records, 0), None);
        assert_eq!(first_unread(&records, 1).as_deref(), Some("d"));
        assert_eq!(first_unread(&records, 2).as_deref(), Some("b"));
        // More unread than the page holds: from its first incoming one.
        assert_eq!(first_unread(&records, 9).as_deref(), Some("a"));
    }

    /// A message stored while the chat's first page is being read is shown
    /// once the page comes, whether the page was read before it was written
    /// or after; a change to a message the page does not hold adds nothing.
    #[test]
    fn messages_arriving_while_the_first_page_loads_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = talk::Id::chat(
            "me@example.org".parse().unwrap(),
            "carol@example.org".parse().unwrap(),
        );
        let (mut state, _) = State::open(&store, id.clone(), None, 0);
        // Read before anything was written: the page holds only "old".
        let page = Paged {
            entries: vec![
                message(&id, "old", 0, Delivery::Sent),
                message(&id, "both", 5, Delivery::Sent),
            ],
            older: None,
        };
        state.push(message(&id, "new", 10, Delivery::Received));
        state.push(message(&id, "both", 5, Delivery::Received));
        state.replace(message(&id, "old", 0, Delivery::Delivered));
        state.replace(message(&id, "elsewhere", 1, Delivery::Delivered));
        let _ = state.update(Message::Loaded(Ok(page)), &store);
        let shown: Vec<(&str, Delivery)> = state
            .records()
            .iter()
            .map(|r| (r.id.as_str(), r.state))
            .collect();
        assert_eq!(
            shown,
            [
                ("old", Delivery::Delivered),
                ("both", Delivery::Received),
                ("new", Delivery::Received),
            ]
        );
        // After the page, new messages are added as they come.
        state.push(message(&id, "later", 20, Delivery::Received));
        assert_eq!(state.records().len(), 4);
    }

    /// Typing into a chat opened with a draft goes after the draft, not before it.
    #[test]
    fn typing_continues_a_restored_draft() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let peer = BareJid::new("bob@example.org").unwrap();
        let draft = Some("see you at\nthe harbour".to_string());
        let (mut state, _) = State::open(
            &store,
            talk::Id::chat("me@example.org".parse().unwrap(), peer),
            draft,
            0,
        );
        for c in " at 7".chars() {
            let insert = text_editor::Action::Edit(text_editor::Edit::Insert(c));
            let _ = state.update(Message::Edit(insert), &store);
        }
        assert_eq!(state.draft(), "see you at\nthe harbour at 7");
    }

    fn press(c: &str, modifiers: Modifiers) -> KeyPress {
        KeyPress {
            key: keyboard::Key::Character(c.into()),
            modified_key: keyboard::Key::Character(c.into()),
            physical_key: keyboard::key::Physical::Code(keyboard::key::Code::Comma),
            modifiers,
            text: Some(c.into()),
            status: text_editor::Status::Focused { is_hovered: false },
        }
    }

    #[test]
    fn shortcuts_do_not_type_their_character() {
        assert!(composer_binding(press(",", Modifiers::CTRL)).is_none());
        assert!(matches!(
            composer_binding(press(",", Modifiers::default())),
            Some(Binding::Insert(','))
        ));
        // AltGr on Windows arrives as Ctrl+Alt and must still type.
        assert!(matches!(
            composer_binding(press("@", Modifiers::CTRL | Modifiers::ALT)),
            Some(Binding::Insert('@'))
        ));
        assert!(matches!(
            composer_binding(press("c", Modifiers::CTRL)),
            Some(Binding::Copy)
        ));
    }
}
