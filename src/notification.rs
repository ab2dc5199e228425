//! Desktop notifications for incoming messages: which ones notify, and showing them.
//!
//! [`decide`] is pure (plain data in, [`Notice`]s out) so that every rule is
//! tested without a desktop session; [`show`] hands one notice to the
//! platform through notify-rust and reports a click where the platform does:
//!
//! - Linux and the BSDs (freedesktop notifications over the D-Bus session
//!   bus, zbus on tokio): the notice carries a `default` action, which
//!   servers invoke when the notification itself is clicked; [`show`] waits
//!   for it until the notification closes, or [`CLICK_WAIT`] at most.
//! - macOS (`NSUserNotificationCenter`) and Windows (toasts): notify-rust 4
//!   shows the notification but reports no clicks, so [`show`] resolves with
//!   `None` once it is shown. On macOS the notification is attributed to the
//!   `im.tern.Tern` bundle when one is installed (else macOS's default); on
//!   Windows to notify-rust's default app id, as Tern's installer registers
//!   no AppUserModelID of its own.

use std::time::Duration;

use crate::conversation::{self, Direction, Message};
use crate::fl;

/// The name notifications are sent under.
pub const APP_NAME: &str = "Tern";
/// The icon (and, on Linux, the desktop entry) of notifications.
pub const ICON: &str = "im.tern.Tern";
/// How many characters of a message a notification shows at most.
pub const PREVIEW_CHARS: usize = 100;
/// How long handing a notification to the platform may take; past it, it is
/// taken as not shown (a bus with no notification server can stall a call).
pub const SHOW_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a click on a shown notification is waited for (Linux); the wait
/// ends sooner when the notification is closed (dismissed or expired).
pub const CLICK_WAIT: Duration = Duration::from_secs(10 * 60);

/// The action freedesktop servers invoke when the notification itself is clicked.
#[cfg(all(unix, not(target_os = "macos")))]
const DEFAULT_ACTION: &str = "default";

/// The user's choices about notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Whether incoming messages notify at all.
    pub enabled: bool,
    /// Whether a notification shows what was written (else only who wrote).
    pub show_content: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            enabled: true,
            show_content: true,
        }
    }
}

/// Which of a room's messages notify, as the user chose for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomLevel {
    /// Every message (the default for private groups).
    All,
    /// Only those that mention the user's nickname (the default for public
    /// channels, which would otherwise notify all day).
    Mentions,
    Never,
}

impl RoomLevel {
    /// Where the user chose nothing: a private group (members only) is
    /// people one knows; anything else is a channel.
    pub fn default_for(members_only: bool) -> Self {
        if members_only {
            Self::All
        } else {
            Self::Mentions
        }
    }
}

/// What the window knows when messages arrive.
pub struct Context<'a> {
    /// Whether the window has the keyboard focus.
    pub window_focused: bool,
    /// The bare JID of the chat shown, if any.
    pub open_peer: Option<&'a str>,
    /// A peer's roster name, if it has one.
    pub contact_name: &'a dyn Fn(&str) -> Option<String>,
    /// Our nickname in a room we are in: with [`RoomLevel::Mentions`],
    /// room messages notify only when they mention it.
    pub room_nick: &'a dyn Fn(&conversation::Id) -> Option<String>,
    /// Which of a room's messages notify.
    pub room_level: &'a dyn Fn(&conversation::Id) -> RoomLevel,
}

/// One notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The bare JID of the chat to open when the notification is clicked.
    pub peer: String,
    /// Who wrote: the roster name, else the bare JID.
    pub title: String,
    /// What was written (one line), or a generic text when content is hidden.
    pub body: String,
}

/// Pure: the notifications a batch of stored messages should raise. `news` is false for history (Backfill).
///
/// Only incoming news notify: not history, not our own messages nor their
/// carbons from our other devices, nothing when notifications are off, and
/// nothing from the chat the user is reading (focused window, that chat
/// open) — with the window unfocused, even the open chat notifies. Several
/// messages from one peer make one notice (the last one's preview and how
/// many there are); notices come in the order of each peer's last message,
/// so the newest conversation is shown last (on top).
pub fn decide(records: &[Message], news: bool, ctx: &Context, policy: Policy) -> Vec<Notice> {
    if !policy.enabled || !news {
        return Vec::new();
    }
    // (conversation, how many, the last message), in the order of their last message.
    let mut batches: Vec<(&conversation::Id, usize, &Message)> = Vec::new();
    for record in records {
        if !notifies(record, ctx) {
            continue;
        }
        let count = match batches
            .iter()
            .position(|(c, _, _)| **c == record.conversation)
        {
            Some(i) => batches.remove(i).1,
            None => 0,
        };
        batches.push((&record.conversation, count + 1, record));
    }
    batches
        .into_iter()
        .map(|(conversation, count, last)| {
            let peer = conversation.peer().to_string();
            let title = match (conversation.kind(), &last.sender) {
                (conversation::Kind::Room, Some(nick)) => fl!(
                    "notification-room",
                    nick = one_line(nick, PREVIEW_CHARS),
                    room = title(&peer, ctx)
                ),
                _ => title(&peer, ctx),
            };
            Notice {
                title,
                peer,
                body: body(last, count, policy),
            }
        })
        .collect()
}

/// Whether one stored message (news) may notify.
///
/// A message keeps no unread flag: the worker stores every incoming message of
/// a `Messages` event as unread (only back-fill and fetched history are not,
/// and they never arrive as news), so "incoming news" is "unread" here.
fn notifies(record: &Message, ctx: &Context) -> bool {
    let reading = ctx.window_focused
        && ctx
            .open_peer
            .is_some_and(|open| open == record.conversation.peer().to_string());
    let wanted = match record.conversation.kind() {
        conversation::Kind::Room => match (ctx.room_level)(&record.conversation) {
            RoomLevel::All => true,
            RoomLevel::Never => false,
            RoomLevel::Mentions => (ctx.room_nick)(&record.conversation)
                .is_some_and(|nick| conversation::mentions(&record.body, &nick)),
        },
        _ => true,
    };
    record.direction == Direction::In && !record.other_device && !reading && wanted
}

fn title(peer: &str, ctx: &Context) -> String {
    (ctx.contact_name)(peer)
        .map(|name| one_line(&name, PREVIEW_CHARS))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| peer.to_string())
}

fn body(last: &Message, count: usize, policy: Policy) -> String {
    let preview = if policy.show_content {
        message_preview(last)
    } else {
        String::new()
    };
    match (preview.is_empty(), count) {
        (true, 0 | 1) => fl!("notification-new-message"),
        (true, count) => fl!("notification-new-messages", count = count),
        (false, 0 | 1) => preview,
        (false, count) => {
            let more = count - 1;
            fl!("notification-more", preview = preview, more = more)
        }
    }
}

/// What a message shows in a notification: its text on one line, trimmed,
/// or a shared file by its name rather than its long link.
fn message_preview(record: &Message) -> String {
    if record.encryption.is_some() {
        return fl!("preview-encrypted");
    }
    let text = match crate::sharing::attachment_url(&record.body, record.attachment) {
        Some(url) => match shared_file_name(url) {
            Some(name) => fl!("preview-file", name = name),
            None => fl!("notification-file"),
        },
        None => record.body.clone(),
    };
    one_line(&text, PREVIEW_CHARS)
}

/// The name of the file a link shares, when its path names one.
fn shared_file_name(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let (_, path) = path.split_once('/')?;
    let last = path.rsplit('/').next().unwrap_or_default();
    last.chars()
        .any(char::is_alphanumeric)
        .then(|| crate::file_name::file_name_from_url(url))
}

/// `text` on one line of at most `max` characters: line breaks, tabs and
/// other control characters become single spaces, the ends are trimmed, and
/// a longer text is cut on a character boundary and ends with "…".
pub fn one_line(text: &str, max: usize) -> String {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let line = words.join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    if max > 0 {
        cut.push('…');
    }
    cut
}

/// Shows a notice; resolves with the peer to open if the user clicked it (where the platform reports clicks), None otherwise. Never panics; errors are logged and mean "not shown".
///
/// Needs the tokio runtime (iced's executor): outside one it shows nothing.
/// On Linux the future lives until the notification is clicked or closed,
/// [`CLICK_WAIT`] at most; elsewhere it ends once the notification is shown.
pub async fn show(notice: Notice) -> Option<String> {
    if tokio::runtime::Handle::try_current().is_err() {
        tracing::warn!("notification not shown: no tokio runtime");
        return None;
    }
    platform::show(notice).await
}

/// Body text for servers that read markup (freedesktop `body-markup`):
/// a message's `<`, `>` and `&` are text, not tags.
#[cfg_attr(not(all(unix, not(target_os = "macos"))), allow(dead_code))]
fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Waits, bounded, for a notification shown by a blocking call (macOS,
/// Windows), and logs why it was not shown.
#[cfg(any(target_os = "macos", target_os = "windows"))]
async fn report(shown: tokio::task::JoinHandle<Result<(), String>>) {
    match tokio::time::timeout(SHOW_TIMEOUT, shown).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::debug!("notification not shown: {e}"),
        Ok(Err(e)) => tracing::debug!("notification not shown: {e}"),
        Err(_) => tracing::info!("notification not shown in {SHOW_TIMEOUT:?}"),
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
mod platform {
    use notify_rust::{ActionResponse, Hint, Notification};

    use super::{APP_NAME, CLICK_WAIT, DEFAULT_ACTION, ICON, Notice, SHOW_TIMEOUT, escape_markup};
    use crate::fl;

    pub(super) async fn show(notice: Notice) -> Option<String> {
        let mut notification = Notification::new();
        notification
            .appname(APP_NAME)
            .icon(ICON)
            .summary(&notice.title)
            .body(&escape_markup(&notice.body))
            .action(DEFAULT_ACTION, &fl!("notification-open"))
            .hint(Hint::Category("im.received".to_string()))
            .hint(Hint::DesktopEntry(ICON.to_string()));
        let handle = match tokio::time::timeout(SHOW_TIMEOUT, notification.show_async()).await {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => {
                tracing::debug!("notification not shown: {e}");
                return None;
            }
            Err(_) => {
                tracing::info!(
                    "notification not shown: no answer from the notification server in {SHOW_TIMEOUT:?}"
                );
                return None;
            }
        };
        // The wait runs as its own task, so that a panic in it (notify-rust
        // unwraps D-Bus errors while it subscribes) only ends the wait; the
        // bound drops it, and its D-Bus connection, even if no server ever
        // says the notification closed.
        let waited = tokio::spawn(async move {
            let mut clicked = false;
            let wait = handle.wait_for_action_async(|response| {
                if let ActionResponse::Custom(action) = response {
                    clicked = *action == DEFAULT_ACTION;
                }
            });
            if tokio::time::timeout(CLICK_WAIT, wait).await.is_err() {
                tracing::debug!("stopped waiting for a click on a notification");
            }
            clicked
        })
        .await;
        match waited {
            Ok(true) => Some(notice.peer),
            Ok(false) => None,
            Err(e) => {
                tracing::debug!("lost track of a notification: {e}");
                None
            }
        }
    }
}

#[cfg(target_os = "macos")]
mod platform {
    use std::sync::Once;

    use notify_rust::Notification;

    use super::{ICON, Notice};

    static APPLICATION: Once = Once::new();

    /// Shows the notice; notify-rust reports no clicks on macOS.
    pub(super) async fn show(notice: Notice) -> Option<String> {
        let shown = tokio::task::spawn_blocking(move || {
            APPLICATION.call_once(|| {
                // Fails unless the Tern.app bundle is installed: then macOS's default is used.
                if let Err(e) = notify_rust::set_application(ICON) {
                    tracing::debug!("notifications not attributed to {ICON}: {e:?}");
                }
            });
            Notification::new()
                .summary(&notice.title)
                .body(&notice.body)
                .show()
                .map(drop)
                .map_err(|e| e.to_string())
        });
        super::report(shown).await;
        None
    }
}

#[cfg(target_os = "windows")]
mod platform {
    use notify_rust::Notification;

    use super::{APP_NAME, ICON, Notice};

    /// Shows the notice as a toast; notify-rust reports no clicks on Windows.
    pub(super) async fn show(notice: Notice) -> Option<String> {
        let shown = tokio::task::spawn_blocking(move || {
            Notification::new()
                .appname(APP_NAME)
                .icon(ICON)
                .summary(&notice.title)
                .body(&notice.body)
                .show()
                .map_err(|e| e.to_string())
        });
        super::report(shown).await;
        None
    }
}

#[cfg(not(any(unix, target_os = "windows")))]
mod platform {
    use super::Notice;

    pub(super) async fn show(_notice: Notice) -> Option<String> {
        tracing::debug!("notifications are not supported on this platform");
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::conversation::Delivery;

    const ME: &str = "me@example.org";
    const BOB: &str = "bob@example.org";
    const CAROL: &str = "carol@example.org";

    fn incoming(peer: &str, body: &str) -> Message {
        Message {
            conversation: conversation::Id::chat_of(ME, peer).unwrap(),
            direction: Direction::In,
            id: uuid::Uuid::new_v4().to_string(),
            body: body.to_string(),
            time: Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap(),
            state: Delivery::Received,
            error: None,
            archive_id: None,
            other_device: false,
            sender: None,
            attachment: false,
            encryption: None,
        }
    }

    fn outgoing(peer: &str, body: &str) -> Message {
        Message {
            direction: Direction::Out,
            state: Delivery::Sent,
            ..incoming(peer, body)
        }
    }

    fn no_names(_: &str) -> Option<String> {
        None
    }

    /// The window unfocused, no chat open, no roster names.
    fn away() -> Context<'static> {
        Context {
            window_focused: false,
            open_peer: None,
            contact_name: &no_names,
            room_nick: &|_| None,
            room_level: &|_| RoomLevel::Mentions,
        }
    }

    fn on() -> Policy {
        Policy::default()
    }

    #[test]
    fn default_policy_notifies_with_content() {
        assert_eq!(
            Policy::default(),
            Policy {
                enabled: true,
                show_content: true
            }
        );
    }

    #[test]
    fn an_incoming_message_notifies_with_sender_and_text() {
        let notices = decide(&[incoming(BOB, "hello there")], true, &away(), on());
        assert_eq!(
            notices,
            vec![Notice {
                peer: BOB.to_string(),
                title: BOB.to_string(),
                body: "hello there".to_string(),
            }]
        );
    }

    #[test]
    fn history_never_notifies() {
        let records = [incoming(BOB, "old"), incoming(CAROL, "older")];
        assert!(decide(&records, false, &away(), on()).is_empty());
    }

    #[test]
    fn our_own_messages_and_carbons_never_notify() {
        let mut carbon = outgoing(BOB, "typed on my phone");
        carbon.other_device = true;
        // Defensive: an incoming-looking copy flagged as another device's.
        let mut other = incoming(BOB, "odd copy");
        other.other_device = true;
        let records = [outgoing(BOB, "typed here"), carbon, other];
        assert!(decide(&records, true, &away(), on()).is_empty());
    }

    #[test]
    fn nothing_notifies_when_disabled() {
        let policy = Policy {
            enabled: false,
            show_content: true,
        };
        assert!(decide(&[incoming(BOB, "hi")], true, &away(), policy).is_empty());
    }

    #[test]
    fn the_chat_being_read_does_not_notify_but_others_do() {
        let ctx = Context {
            window_focused: true,
            open_peer: Some(BOB),
            contact_name: &no_names,
            room_nick: &|_| None,
            room_level: &|_| RoomLevel::Mentions,
        };
        let records = [
            incoming(BOB, "you see this"),
            incoming(CAROL, "and not this"),
        ];
        let notices = decide(&records, true, &ctx, on());
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].peer, CAROL);
    }

    #[test]
    fn the_open_chat_notifies_when_the_window_is_not_focused() {
        let ctx = Context {
            window_focused: false,
            open_peer: Some(BOB),
            contact_name: &no_names,
            room_nick: &|_| None,
            room_level: &|_| RoomLevel::Mentions,
        };
        let notices = decide(&[incoming(BOB, "are you there?")], true, &ctx, on());
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].peer, BOB);
    }

    #[test]
    fn a_focused_window_still_notifies_when_no_chat_is_open() {
        let ctx = Context {
            window_focused: true,
            open_peer: None,
            contact_name: &no_names,
            room_nick: &|_| None,
            room_level: &|_| RoomLevel::Mentions,
        };
        assert_eq!(decide(&[incoming(BOB, "hi")], true, &ctx, on()).len(), 1);
    }

    #[test]
    fn several_messages_from_one_peer_make_one_notice() {
        let records = [
            incoming(BOB, "one"),
            incoming(CAROL, "from carol"),
            incoming(BOB, "two"),
            incoming(BOB, "three"),
        ];
        let notices = decide(&records, true, &away(), on());
        assert_eq!(notices.len(), 2);
        // In the order of each peer's last message: Bob wrote last.
        assert_eq!(notices[0].peer, CAROL);
        assert_eq!(notices[0].body, "from carol");
        assert_eq!(notices[1].peer, BOB);
        assert_eq!(
            notices[1].body,
            fl!("notification-more", preview = "three", more = 2)
        );
        assert!(notices[1].body.contains("three"));
        assert!(!notices[1].body.contains("one"));
    }

    #[test]
    fn hidden_content_shows_a_generic_text_never_the_message() {
        let policy = Policy {
            enabled: true,
            show_content: false,
        };
        let mut file = incoming(CAROL, "https://up.example.org/a/secret-plans.pdf");
        file.attachment = true;
        let records = [
            incoming(BOB, "the secret is 42"),
            incoming(BOB, "really 42"),
            file,
        ];
        let notices = decide(&records, true, &away(), policy);
        assert_eq!(notices.len(), 2);
        assert_eq!(notices[0].peer, BOB);
        assert_eq!(
            notices[0].body,
            fl!("notification-new-messages", count = 2usize)
        );
        assert_eq!(notices[1].body, fl!("notification-new-message"));
        for notice in &notices {
            assert!(!notice.body.contains("42"), "{notice:?}");
            assert!(!notice.body.contains("secret"), "{notice:?}");
        }
        // The sender is still named.
        assert_eq!(notices[1].title, CAROL);
    }

    #[test]
    fn the_title_is_the_roster_name_else_the_jid() {
        let names = |peer: &str| match peer {
            BOB => Some("Bob\nBuilder".to_string()),
            CAROL => Some("  ".to_string()),
            _ => None,
        };
        let ctx = Context {
            window_focused: false,
            open_peer: None,
            contact_name: &names,
            room_nick: &|_| None,
            room_level: &|_| RoomLevel::Mentions,
        };
        let records = [
            incoming(BOB, "hi"),
            incoming(CAROL, "hi"),
            incoming("dave@example.org", "hi"),
        ];
        let titles: Vec<String> = decide(&records, true, &ctx, on())
            .into_iter()
            .map(|n| n.title)
            .collect();
        assert_eq!(
            titles,
            ["Bob Builder", CAROL, "dave@example.org"].map(String::from)
        );
    }

    #[test]
    fn attachments_show_the_file_name() {
        let mut file = incoming(BOB, "https://up.example.org/x/y/holiday%20photo.jpg");
        file.attachment = true;
        let notices = decide(&[file], true, &away(), on());
        assert_eq!(notices[0].body, "📎 holiday photo.jpg");
        assert_eq!(
            notices[0].body,
            fl!("preview-file", name = "holiday photo.jpg")
        );
        // A bare image link counts too, as the chat shows it.
        let bare = incoming(BOB, "https://i.example.org/cat.png");
        assert_eq!(decide(&[bare], true, &away(), on())[0].body, "📎 cat.png");
        // Text with a link in it is text.
        let text = incoming(BOB, "see https://example.org/page");
        assert_eq!(
            decide(&[text], true, &away(), on())[0].body,
            "see https://example.org/page"
        );
    }

    #[test]
    fn an_attachment_without_a_file_name_says_a_file_was_sent() {
        for url in ["https://up.example.org/", "https://up.example.org"] {
            let mut file = incoming(BOB, url);
            file.attachment = true;
            assert_eq!(
                decide(&[file], true, &away(), on())[0].body,
                fl!("notification-file"),
                "{url}"
            );
        }
    }

    #[test]
    fn an_empty_message_shows_the_generic_text() {
        let notices = decide(&[incoming(BOB, " \n\t ")], true, &away(), on());
        assert_eq!(notices[0].body, fl!("notification-new-message"));
    }

    #[test]
    fn long_and_multiline_messages_are_one_trimmed_line() {
        let long = "word ".repeat(60);
        let notices = decide(
            &[incoming(
                BOB,
                &format!("first line\r\nsecond\tline\n\n{long}"),
            )],
            true,
            &away(),
            on(),
        );
        let body = &notices[0].body;
        assert!(!body.contains(['\n', '\r', '\t']), "{body:?}");
        assert!(body.starts_with("first line second line word"), "{body:?}");
        assert!(body.chars().count() <= PREVIEW_CHARS, "{body:?}");
        assert!(body.ends_with('…'), "{body:?}");
    }

    #[test]
    fn one_line_joins_lines_and_collapses_space() {
        assert_eq!(one_line("  a\n\nb \t c\r\n", 100), "a b c");
        assert_eq!(one_line("bell\u{7}and\u{0}nul", 100), "bell and nul");
        assert_eq!(one_line("", 100), "");
        assert_eq!(one_line("\n \n", 100), "");
    }

    #[test]
    fn one_line_keeps_short_text_whole() {
        let exact = "x".repeat(PREVIEW_CHARS);
        assert_eq!(one_line(&exact, PREVIEW_CHARS), exact);
    }

    #[test]
    fn one_line_cuts_multibyte_text_on_character_boundaries() {
        let chinese = "你好世界".repeat(30); // 120 characters, 360 bytes
        let cut = one_line(&chinese, PREVIEW_CHARS);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS);
        assert!(cut.ends_with('…'));
        assert!(chinese.starts_with(cut.trim_end_matches('…')));

        let emoji = "😀🎉".repeat(60);
        let cut = one_line(&emoji, 10);
        assert_eq!(cut, format!("{}…", "😀🎉".repeat(4) + "😀"));

        // Combining marks and mixed widths: never a broken character.
        let mixed = "é".repeat(80) + "ü中😀" + &"a".repeat(50);
        for max in 0..140 {
            let cut = one_line(&mixed, max);
            assert!(cut.chars().count() <= max, "{max}: {cut}");
        }
    }

    #[test]
    fn one_line_does_not_end_a_cut_with_a_space() {
        let cut = one_line("abcd efgh", 6);
        assert_eq!(cut, "abcd…");
    }

    #[test]
    fn markup_is_escaped_for_notification_servers() {
        assert_eq!(
            escape_markup("<b>a</b> & b > c"),
            "&lt;b&gt;a&lt;/b&gt; &amp; b &gt; c"
        );
        assert_eq!(escape_markup("你好 😀"), "你好 😀");
    }

    #[test]
    fn show_is_send_for_iced_tasks() {
        fn assert_send<T: Send + 'static>(_: &T) {}
        let future = show(Notice {
            peer: BOB.to_string(),
            title: BOB.to_string(),
            body: "hi".to_string(),
        });
        assert_send(&future);
    }

    #[test]
    fn show_outside_a_runtime_shows_nothing_and_does_not_panic() {
        let notice = Notice {
            peer: BOB.to_string(),
            title: BOB.to_string(),
            body: "hi".to_string(),
        };
        assert_eq!(futures::executor::block_on(show(notice)), None);
    }

    /// Tells the copy of the test binary started by the test below to run the check.
    #[cfg(all(unix, not(target_os = "macos")))]
    const CHILD: &str = "TERN_TEST_NOTIFICATION_NO_BUS";

    /// `show` with a session bus address that leads nowhere gives up quickly.
    /// Environment variables are process-wide (and setting them needs
    /// `unsafe`), so the check runs in a child process of this test binary.
    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn show_gives_up_quickly_without_a_notification_server() {
        const NAME: &str =
            "notification::tests::show_gives_up_quickly_without_a_notification_server";
        if std::env::var_os(CHILD).is_some() {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let started = std::time::Instant::now();
            let clicked = runtime.block_on(show(Notice {
                peer: BOB.to_string(),
                title: BOB.to_string(),
                body: "hi".to_string(),
            }));
            let took = started.elapsed();
            assert_eq!(clicked, None);
            assert!(
                took < SHOW_TIMEOUT + Duration::from_secs(2),
                "took {took:?}"
            );
            println!("no-bus check done in {took:?}");
            return;
        }
        let nowhere = std::env::temp_dir().join(format!("tern-no-bus-{}", std::process::id()));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", nowhere.join("bus").display()),
            )
            .env("XDG_RUNTIME_DIR", &nowhere)
            .env_remove("DISPLAY")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A generous bound for a loaded machine; the child itself checks the real one.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the no-bus check did not finish in 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("no-bus check done") && stdout.contains("1 passed"),
            "the child did not run the check:\n{stdout}\n{stderr}"
        );
    }

    /// In a room, only what mentions our nickname notifies, titled with who
    /// wrote it and where.
    #[test]
    fn room_messages_notify_when_they_mention_us() {
        let room = conversation::Id::room(
            ME.parse().unwrap(),
            "team@conference.example.org".parse().unwrap(),
        );
        let said = |body: &str| Message {
            conversation: room.clone(),
            sender: Some("Bob".into()),
            ..incoming(BOB, body)
        };
        let nick = |id: &conversation::Id| {
            (id.kind() == conversation::Kind::Room).then(|| "Ann".to_string())
        };
        let ctx = Context {
            window_focused: false,
            open_peer: None,
            contact_name: &no_names,
            room_nick: &nick,
            room_level: &|_| RoomLevel::Mentions,
        };
        let records = [
            said("lunch at noon?"),
            said("ann, are you coming?"),
            said("a banner"),
        ];
        let notices = decide(&records, true, &ctx, Policy::default());
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].body, "ann, are you coming?");
        assert!(notices[0].title.contains("Bob"), "{}", notices[0].title);
        assert!(notices[0].title.contains("team@conference.example.org"));
        // A room set to all messages: all three, as one notice; set to
        // never: none, mention or not.
        let all = Context {
            room_level: &|_| RoomLevel::All,
            ..ctx
        };
        let notices = decide(&records, true, &all, Policy::default());
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0].body, "a banner (+2 more)");
        let never = Context {
            room_level: &|_| RoomLevel::Never,
            ..ctx
        };
        assert!(decide(&records, true, &never, Policy::default()).is_empty());
        assert_eq!(RoomLevel::default_for(true), RoomLevel::All);
        assert_eq!(RoomLevel::default_for(false), RoomLevel::Mentions);
        // A room whose nickname is unknown (not joined) says nothing.
        let ctx = Context {
            room_nick: &|_| None,
            room_level: &|_| RoomLevel::Mentions,
            ..ctx
        };
        assert!(decide(&records, true, &ctx, Policy::default()).is_empty());
    }
}
