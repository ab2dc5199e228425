//! Room bookmarks (XEP-0402, in PEP): every room joined is bookmarked for
//! autojoin, leaving clears its autojoin, the user's other clients see both,
//! and their changes apply here live. Fetched after each new session.

use tokio_xmpp::parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use tokio_xmpp::parsers::pubsub::event::Payload as EventPayload;
use tokio_xmpp::parsers::pubsub::pubsub::{Item, Items, Publish, PublishOptions};
use tokio_xmpp::parsers::pubsub::{Event as PubSubEvent, ItemId, NodeName, PubSub};

use super::*;

/// How many bookmarks are taken from the server (a list of rooms, not a flood).
pub(super) const MAX_BOOKMARKS: usize = 500;

/// How many of our own bookmark changes per room are remembered until their
/// notification comes back (see `Worker::bookmark_echoes`).
const MAX_ECHOES: usize = 8;

/// The publish options XEP-0402 §3 requires: kept, as many as there are,
/// and readable by no one but the account. Not `full`: only the two that
/// keep them and keep them private (those of XEP-0223), for a server that
/// refuses the others in publish options: ejabberd 23.01 knows neither
/// `max_items` nor `send_last_published_item` there (its nodes then keep
/// their default number of items, hundreds).
fn publish_options(full: bool) -> PublishOptions {
    let field = |var: &str, value: &str| Field::new(var, FieldType::TextSingle).with_value(value);
    let mut fields = vec![field("pubsub#persist_items", "true")];
    if full {
        fields.push(field("pubsub#max_items", "max"));
        fields.push(field("pubsub#send_last_published_item", "never"));
    }
    fields.push(field("pubsub#access_model", "whitelist"));
    PublishOptions {
        form: Some(DataForm::new(
            DataFormType::Submit,
            "http://jabber.org/protocol/pubsub#publish-options",
            fields,
        )),
    }
}

/// A bookmark as the worker acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Bookmark {
    pub(super) room: BareJid,
    pub(super) autojoin: bool,
    pub(super) nick: Option<String>,
    pub(super) password: Option<String>,
}

/// The bookmark an item holds; `None` for an item that is not one (its id
/// must be the room's address, its payload a conference).
fn bookmark(
    id: Option<&ItemId>,
    payload: Option<&tokio_xmpp::minidom::Element>,
) -> Option<Bookmark> {
    let room: BareJid = id?.0.parse().ok()?;
    room.node()?;
    let conference = Conference::try_from(payload?.clone()).ok()?;
    Some(Bookmark {
        room,
        autojoin: conference.autojoin,
        nick: conference.nick.map(|n| n.to_string()),
        password: conference.password,
    })
}

impl Worker {
    /// Asks for the account's bookmarks (after the roster, with the rest of
    /// `announce`), once the rooms left while offline have lost their
    /// autojoin: the server answers in order, so they are not joined again.
    pub(super) fn fetch_bookmarks(&mut self, pending: &mut Requests<Pending>) -> Vec<Stanza> {
        let mut out: Vec<Stanza> = std::mem::take(&mut self.left_offline)
            .into_iter()
            .map(|(room, conference)| self.publish_conference(room, conference, pending))
            .collect();
        let id = pending.add(
            None,
            Pending::Bookmarks,
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        out.push(Iq::from_get(id, PubSub::Items(Items::new(ns::BOOKMARKS2))).into());
        out
    }

    /// A room's bookmark as it stands (our nickname and its password while
    /// we know them): autojoin while we are in it.
    pub(super) fn conference(&self, room: &BareJid, autojoin: bool) -> Conference {
        let state = self.rooms.get(room);
        Conference {
            autojoin,
            name: None,
            nick: state.and_then(|r| r.nick.parse::<tokio_xmpp::jid::ResourcePart>().ok()),
            password: state.and_then(|r| r.password.clone()),
            extensions: None,
        }
    }

    /// Publishes (or updates) a room's bookmark.
    pub(super) fn publish_conference(
        &mut self,
        room: BareJid,
        conference: Conference,
        pending: &mut Requests<Pending>,
    ) -> Stanza {
        let echoes = self.bookmark_echoes.entry(room.clone()).or_default();
        // A server that sends no notifications never returns them: a bound.
        if echoes.len() >= MAX_ECHOES {
            echoes.pop_front();
        }
        echoes.push_back(conference.autojoin);
        let full = self.bookmark_full_options;
        let publish = PubSub::Publish {
            publish: Publish {
                node: NodeName(ns::BOOKMARKS2.to_string()),
                items: vec![Item {
                    id: Some(ItemId(room.to_string())),
                    publisher: None,
                    payload: Some(conference.clone().into()),
                }],
            },
            publish_options: Some(publish_options(full)),
        };
        let id = pending.add(
            None,
            Pending::Bookmark {
                room,
                conference,
                full,
            },
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        Iq::from_set(id, publish).into()
    }

    /// The answer to a bookmark published (`refused`: why not). Refused
    /// with XEP-0402's full options, it goes again with the essential ones
    /// (and so do later ones once that works); refused again, the bookmark
    /// stays as it was.
    pub(super) fn on_bookmark_published(
        &mut self,
        room: BareJid,
        conference: Conference,
        full: bool,
        refused: Option<&StanzaError>,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let Some(error) = refused else {
            if !full && self.bookmark_full_options {
                tracing::info!("bookmarks are published with the essential options from now on");
                self.bookmark_full_options = false;
            }
            return vec![];
        };
        self.forget_echo(&room, conference.autojoin);
        let said = error.texts.values().next().cloned().unwrap_or_default();
        if full && self.bookmark_full_options {
            tracing::info!(
                "the server refused {room}'s bookmark with XEP-0402's publish options ({:?} {said}); \
                 again with only persist_items and access_model",
                error.defined_condition
            );
            self.bookmark_full_options = false;
            let again = self.publish_conference(room, conference, pending);
            // Back to asking for it if this one fails too: the field was not why.
            self.bookmark_full_options = true;
            return vec![again];
        }
        tracing::warn!(
            "{room}'s bookmark was not saved: {:?} {said}",
            error.defined_condition
        );
        vec![]
    }

    /// The bookmarks the server holds: join those marked autojoin that we
    /// are not in.
    pub(super) fn on_bookmarks(
        &mut self,
        payload: Option<tokio_xmpp::minidom::Element>,
    ) -> Vec<Stanza> {
        let Some(PubSub::Items(items)) = payload.and_then(|p| PubSub::try_from(p).ok()) else {
            return vec![];
        };
        let bookmarks: Vec<Bookmark> = items
            .items
            .iter()
            .take(MAX_BOOKMARKS)
            .filter_map(|item| bookmark(item.id.as_ref(), item.payload.as_ref()))
            .collect();
        tracing::debug!("{} bookmarks", bookmarks.len());
        bookmarks
            .into_iter()
            .flat_map(|b| self.apply_bookmark(b))
            .collect()
    }

    /// One bookmark, from the server or another client: in the room if it
    /// says autojoin, out of it if it no longer does.
    fn apply_bookmark(&mut self, bookmark: Bookmark) -> Vec<Stanza> {
        let joined = self.rooms.contains_key(&bookmark.room);
        match (bookmark.autojoin, joined) {
            (true, false) => {
                let nick = bookmark.nick.unwrap_or_else(|| {
                    self.account
                        .node()
                        .map_or_else(|| self.account.to_string(), |n| n.as_str().to_string())
                });
                // From the bookmark itself: nothing to publish back.
                let room = bookmark.room.clone();
                let join = self.join_room(bookmark.room, nick, bookmark.password, true);
                if let Some(state) = self.rooms.get_mut(&room) {
                    state.automatic = true;
                }
                join
            }
            (false, true) => self.leave_room(&bookmark.room, true),
            _ => vec![],
        }
    }

    /// A publish that failed sends no notification: not an echo to wait for.
    pub(super) fn forget_echo(&mut self, room: &BareJid, autojoin: bool) {
        if let Some(echoes) = self.bookmark_echoes.get_mut(room)
            && let Some(at) = echoes.iter().rposition(|a| *a == autojoin)
        {
            echoes.remove(at);
            if echoes.is_empty() {
                self.bookmark_echoes.remove(room);
            }
        }
    }

    /// Whether a notified bookmark is our own last change coming back.
    fn is_echo(&mut self, bookmark: &Bookmark) -> bool {
        let Some(echoes) = self.bookmark_echoes.get_mut(&bookmark.room) else {
            return false;
        };
        if echoes.front() == Some(&bookmark.autojoin) {
            echoes.pop_front();
            if echoes.is_empty() {
                self.bookmark_echoes.remove(&bookmark.room);
            }
            tracing::debug!("{}'s bookmark: our own change", bookmark.room);
            return true;
        }
        // Another client's change: ours before it are moot.
        self.bookmark_echoes.remove(&bookmark.room);
        false
    }

    /// A PEP notification (XEP-0163) from our own account: another client
    /// changed the bookmarks. Anyone else's is not ours to act on.
    pub(super) fn on_pep_event(&mut self, from: Option<&Jid>, event: PubSubEvent) -> Vec<Stanza> {
        if from.is_some_and(|f| f.as_str() != self.account.as_str()) {
            tracing::warn!("ignoring bookmarks from {from:?}, not our account");
            return vec![];
        }
        let EventPayload::Items {
            node,
            published,
            retracted,
        } = event.payload
        else {
            return vec![];
        };
        if node.0 != ns::BOOKMARKS2 {
            return vec![];
        }
        let notified: Vec<Bookmark> = published
            .iter()
            .take(MAX_BOOKMARKS)
            .filter_map(|item| bookmark(item.id.as_ref(), item.payload.as_ref()))
            .collect();
        let mut out = Vec::new();
        for bookmark in notified {
            if !self.is_echo(&bookmark) {
                out.extend(self.apply_bookmark(bookmark));
            }
        }
        for id in retracted.iter().take(MAX_BOOKMARKS) {
            if let Ok(room) = id.0.parse::<BareJid>()
                && self.rooms.contains_key(&room)
            {
                out.extend(self.leave_room(&room, true));
            }
        }
        out
    }
}
