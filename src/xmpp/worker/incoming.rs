//! The one path from a received chat message (live, carbon) to the history: conversion, order, de-duplication, receipts after the flush.

use super::*;
use crate::conversation::Id as ConversationId;

/// How far after the newest stored message from the same peer a message is
/// put when its own stamp would put it before (see `in_order`).
pub(super) const LIVE_STEP: chrono::Duration = chrono::Duration::milliseconds(1);

pub(super) const ARCHIVED_STEP: chrono::Duration = chrono::Duration::microseconds(1);

/// What may only happen once the messages received so far are on disk: a
/// receipt tells the sender the message is safe with us, and the archive
/// position tells the next catch-up it need not fetch them again.
#[derive(Default)]
pub(super) struct AfterFlush {
    pub(super) receipts: Vec<Message>,
    pub(super) cursor: Option<String>,
}

/// The receipt (XEP-0184) a message asks for, addressed to its sender.
pub(super) fn receipt_for(message: &mut Message) -> Option<Stanza> {
    let wants = matches!(message.extract_payload::<ReceiptRequest>(), Ok(Some(_)));
    let (from, id) = (message.from.clone()?, message.id.clone()?);
    if !wants {
        return None;
    }
    let mut receipt = Message::new(Some(from));
    receipt.type_ = message.type_.clone();
    receipt.id = Some(Id(uuid::Uuid::new_v4().to_string()));
    receipt.payloads.push(Receipt { id: id.0 }.into());
    Some(receipt.into())
}

/// When a message was sent: its delay stamp (offline storage, archives), never in the future.
pub(super) fn message_time(message: &mut Message) -> chrono::DateTime<Utc> {
    match message.extract_payload::<Delay>() {
        Ok(Some(delay)) => stamp_time(&delay.stamp),
        _ => Utc::now(),
    }
}

/// A delay stamp as a storage time, never in the future (a server clock ahead
/// of ours would otherwise pin the message below everything that comes later).
/// Servers stamp whole seconds (Prosody does), so several messages share one
/// time: the store keeps those in the order they are stored, and `in_order`
/// keeps them after what the same peer sent before.
pub(super) fn stamp_time(stamp: &tokio_xmpp::parsers::date::DateTime) -> chrono::DateTime<Utc> {
    stamp.0.with_timezone(&Utc).min(Utc::now())
}

/// A message's text, and the end-to-end encryption it came in if Tern cannot
/// read it (the text is then the sender's fallback for such clients, or empty);
/// `None` for what says nothing (chat states, receipts, OMEMO key transport).
pub(super) fn content(message: &Message) -> Option<(String, Option<Encryption>)> {
    let encrypted = message.payloads.iter().find_map(|p| {
        let kind = if p.is("encrypted", "eu.siacs.conversations.axolotl") {
            Encryption::Omemo
        } else if p.is("encrypted", "urn:xmpp:omemo:2") {
            Encryption::Omemo2
        } else if p.is("openpgp", "urn:xmpp:openpgp:0") {
            Encryption::Openpgp
        } else if p.is("x", "jabber:x:encrypted") {
            Encryption::LegacyPgp
        } else {
            return None;
        };
        // OMEMO sends keys in messages with no payload: nothing to show.
        let says_something = !matches!(kind, Encryption::Omemo | Encryption::Omemo2)
            || p.children().any(|c| c.name() == "payload");
        Some((kind, says_something))
    });
    match (message.get_best_body_cloned(vec![]), encrypted) {
        (Some((_, body)), Some((kind, _))) => Some((body, Some(kind))),
        (Some((_, body)), None) => Some((body, None)),
        (None, Some((kind, true))) => Some((String::new(), Some(kind))),
        (None, _) => None,
    }
}

/// Whether a message shares a file: its body is the link that its XEP-0066
/// out-of-band data names too (what Conversations, Gajim and Dino send).
pub(super) fn is_attachment(message: &mut Message, body: &str) -> bool {
    matches!(message.extract_payload::<Oob>(), Ok(Some(oob)) if oob.url == body.trim())
}

/// What the UI is told of stored records: the messages they hold (a damaged
/// record, which cannot name its conversation, is left out and logged).
pub(super) fn reported(
    records: impl IntoIterator<Item = Record>,
) -> Vec<crate::conversation::Message> {
    records
        .into_iter()
        .filter_map(|record| {
            let (account, peer) = (record.account.clone(), record.peer.clone());
            let message = record.into_message();
            if message.is_none() {
                tracing::warn!("a stored message names no conversation: {account:?} {peer:?}");
            }
            message
        })
        .collect()
}

/// Who wrote a private message from a room's occupant (their nickname and
/// occupant-id); no one special for anything else.
pub(super) fn private_sender(
    conversation: &ConversationId,
    message: &Message,
) -> crate::store::Sender {
    let Some(nick) = conversation
        .peer()
        .resource()
        .filter(|_| conversation.kind() == Kind::Private)
    else {
        return crate::store::Sender::default();
    };
    crate::store::Sender {
        jid: None,
        nick: Some(nick.as_str().to_string()),
        occupant_id: message
            .payloads
            .iter()
            .find_map(|p| tokio_xmpp::parsers::occupant_id::OccupantId::try_from(p.clone()).ok())
            .map(|o| o.id),
    }
}

/// The one conversion of a received message (live, a carbon, from the
/// archive) to what the store keeps; `sent_by_us` for what another of our
/// devices sent. Its archive id and encryption are the caller's to set: only
/// the caller knows whom to believe for the first, and has read the second.
pub(super) fn stored_form(
    conversation: &crate::conversation::Id,
    message: &mut Message,
    body: String,
    time: chrono::DateTime<Utc>,
    sent_by_us: bool,
) -> NewMessage {
    let (id, stanza_id, origin_id) = message_ids(message);
    let attachment = is_attachment(message, &body);
    let mut new = if sent_by_us {
        let mut new = NewMessage::outgoing(conversation, id, body, time);
        new.state = Delivery::Sent;
        new.other_device = true;
        new
    } else {
        NewMessage::incoming(conversation, id, body, time)
    };
    new.stanza_id = stanza_id;
    new.origin_id = origin_id;
    new.attachment = attachment;
    new
}

/// The id that identifies a message across copies (its origin-id, else its
/// stanza id), then the stanza id and the origin-id as they came. An empty id
/// names nothing: such a message gets an id of its own.
pub(super) fn message_ids(message: &mut Message) -> (String, Option<String>, Option<String>) {
    let origin = match message.extract_payload::<OriginId>() {
        Ok(Some(origin)) => Some(origin.id).filter(|id| !id.trim().is_empty()),
        _ => None,
    };
    let stanza = message
        .id
        .as_ref()
        .map(|id| id.0.clone())
        .filter(|id| !id.trim().is_empty());
    let id = origin
        .clone()
        .or_else(|| stanza.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    (id, stanza, origin)
}

impl Worker {
    /// Handles a message stanza; returns whether the app is still there, and replies to send.
    pub(super) fn on_message(&mut self, mut message: Message) -> (bool, Vec<Stanza>) {
        if let Ok(Some(result)) = message.extract_payload::<ArchiveResult>() {
            return self.on_archive_result(message.from.as_ref(), result);
        }
        // PEP notifications (our bookmarks changed elsewhere) come from our
        // own account, which a server may leave unsaid.
        if let Ok(Some(event)) = message.extract_payload::<tokio_xmpp::parsers::pubsub::Event>() {
            return (true, self.on_pep_event(message.from.as_ref(), event));
        }
        let Some(from) = message.from.clone() else {
            return (true, vec![]);
        };
        // XEP-0280 carbons: copies of what our other devices sent or received.
        let carbon = match (
            message.extract_payload::<CarbonReceived>(),
            message.extract_payload::<CarbonSent>(),
        ) {
            (Ok(Some(received)), _) => Some((received.forwarded.message, false)),
            (_, Ok(Some(sent))) => Some((sent.forwarded.message, true)),
            _ => None,
        };
        if let Some((inner, sent_by_us)) = carbon {
            // Only our own account may send carbons (XEP-0280 §11): anything else
            // is someone trying to put words in our contacts' mouths.
            if from.as_str() != self.account.as_str() {
                tracing::warn!("ignoring a forged carbon from {from}");
                return (true, vec![]);
            }
            return (self.on_carbon(inner, sent_by_us), vec![]);
        }
        let peer = from.to_bare();
        match message.type_ {
            MessageType::Chat | MessageType::Normal => {}
            MessageType::Error => return (self.on_error_reply(&peer, &message), vec![]),
            MessageType::Groupchat => return (self.on_room_message(message), vec![]),
            MessageType::Headline => return (true, vec![]),
        }
        if peer == self.account {
            return (true, vec![]);
        }
        if let Some(alive) = self.on_invitation(&from, &mut message) {
            return (alive, vec![]);
        }
        // From an occupant of a room we are in: a private message (XEP-0045 §7.5).
        if self.rooms.contains_key(&peer)
            && let Ok(occupant) = from.clone().try_into_full()
        {
            return (self.on_private_message(occupant, message), vec![]);
        }
        if let Ok(Some(receipt)) = message.extract_payload::<Receipt>() {
            self.update_state(&self.chat(&peer), &receipt.id, Delivery::Delivered, None);
        }
        let receipt = receipt_for(&mut message);
        let Some((body, encryption)) = content(&message) else {
            return (true, vec![]); // chat states, receipts and other bodiless traffic
        };
        let archive_id = self.archive_id(&mut message);
        let stamp = message_time(&mut message);
        let mut new = stored_form(&self.chat(&peer), &mut message, body, stamp, false);
        new.encryption = encryption;
        new.archive_id = archive_id;
        // Receipts go to contacts only: they tell the sender we are online (XEP-0184 §8).
        let receipt = receipt.filter(|_| self.contacts.contains(&peer));
        // While the archive catches up, what it has not yet brought of the same
        // moments would land after this message; it waits for the catch-up.
        if self.waits_for_catch_up() {
            tracing::trace!("live message {} from {peer} waits for the catch-up", new.id);
            self.deferred.push((new, receipt));
            return (true, vec![]);
        }
        let (alive, stored) = self.store_live(new, true);
        match (stored, receipt) {
            (true, Some(receipt)) => (alive, vec![receipt]),
            _ => (alive, vec![]),
        }
    }

    /// Whether live messages wait: from a new session's start until its
    /// catch-up from the archive ends (see `on_message`).
    pub(super) fn waits_for_catch_up(&self) -> bool {
        self.defer_live
            || matches!(&self.catch_up, Some(c) if c.holds_live && matches!(c.direction, Paging::Forward))
    }

    /// Stores a live message after the newest from its sender and shows it;
    /// whether the app is there, and whether the message is safe (stored now
    /// or before: only then may a receipt go).
    pub(super) fn store_live(&mut self, mut new: NewMessage, advance: bool) -> (bool, bool) {
        let peer = new.conversation.bare();
        new.time = self.in_order(&peer, new.time, false);
        tracing::trace!("live message {} from {peer} at {}", new.id, new.time);
        let archive_id = new.archive_id.clone();
        match self.store.insert(new) {
            Ok(Some(record)) => {
                if advance {
                    self.advance_cursor(archive_id.as_deref());
                }
                (self.emit(Event::Messages(reported([record]))), true)
            }
            Ok(None) => {
                tracing::debug!("dropped a copy of a stored message from {peer}");
                (true, true)
            }
            Err(e) => {
                // Not stored: no receipt, so the sender does not believe it arrived.
                tracing::error!("could not store a message from {peer}: {e}");
                (true, false)
            }
        }
    }

    /// Stores the live messages that waited for the catch-up: most are copies
    /// of what it brought; the rest go after it. Their receipts follow once on disk.
    pub(super) fn store_deferred(&mut self) {
        self.defer_live = false;
        for (new, receipt) in std::mem::take(&mut self.deferred) {
            // The catch-up's position is past them: the cursor stays.
            let (_, stored) = self.store_live(new, false);
            if let (true, Some(Stanza::Message(receipt))) = (stored, receipt) {
                self.after_flush.receipts.push(receipt);
            }
        }
    }

    /// The conversation a one-to-one message with `other` belongs to: a
    /// private one with a room's occupant (to or from `room/nick`, of a room
    /// we are in, or marked as a room's private message, XEP-0045 §7.5),
    /// else the chat with the contact.
    pub(super) fn conversation_with(&self, other: &Jid, message: &Message) -> ConversationId {
        if let Ok(occupant) = other.clone().try_into_full() {
            // An empty muc#user payload marks it; one with an invitation in
            // it is no private message.
            let marked = message.payloads.iter().any(|p| {
                p.is("x", tokio_xmpp::parsers::ns::MUC_USER) && p.children().next().is_none()
            });
            if marked || self.rooms.contains_key(&occupant.to_bare()) {
                return ConversationId::private(self.account.clone(), occupant);
            }
        }
        self.chat(&other.to_bare())
    }

    /// A carbon copy from our own server: a message another of our devices sent or got.
    pub(super) fn on_carbon(&mut self, mut inner: Message, sent_by_us: bool) -> bool {
        if !matches!(inner.type_, MessageType::Chat | MessageType::Normal) {
            return true;
        }
        let other = match (sent_by_us, &inner.to, &inner.from) {
            (true, Some(to), _) => to.clone(),
            (false, _, Some(from)) => from.clone(),
            _ => return true,
        };
        let peer = other.to_bare();
        let conversation = self.conversation_with(&other, &inner);
        if !sent_by_us && let Ok(Some(receipt)) = inner.extract_payload::<Receipt>() {
            self.update_state(&self.chat(&peer), &receipt.id, Delivery::Delivered, None);
        }
        let Some((body, encryption)) = content(&inner) else {
            return true;
        };
        let archive_id = self.archive_id(&mut inner);
        let time = message_time(&mut inner);
        let mut new = stored_form(&conversation, &mut inner, body, time, sent_by_us);
        new.encryption = encryption;
        new.archive_id = archive_id;
        if !sent_by_us {
            new.sender = private_sender(&conversation, &inner);
            // What another of our sessions received (one the server still
            // thinks alive after a reconnection, say): it keeps the order of
            // what we receive ourselves, waiting for a catch-up like them.
            tracing::trace!("carbon of {} from {peer}", new.id);
            if self.waits_for_catch_up() {
                self.deferred.push((new, None));
                return true;
            }
            return self.store_live(new, true).0;
        }
        let archive_id = new.archive_id.clone();
        match self.store.insert(new) {
            Ok(Some(record)) => {
                self.advance_cursor(archive_id.as_deref());
                self.emit(Event::Messages(reported([record])))
            }
            Ok(None) => true,
            Err(e) => {
                tracing::error!("could not store a carbon copy: {e}");
                true
            }
        }
    }

    /// The time to store a message from `peer` under, so that the peer's
    /// messages keep the order the server delivered them in.
    ///
    /// A stream delivers one sender's messages in the order they were sent, but
    /// their times do not always say so: a delay stamp (offline delivery, a
    /// peer's resend of what it typed offline) has whole seconds only, and our
    /// clock may step back. So a message that arrives live never goes before
    /// the newest one already stored from that peer, whatever its stamp. What
    /// the archive brings (`archived`) arrives beside the live stream in no
    /// useful order with it, so it is only kept after what was stored before
    /// this session began, and its stamps order it.
    pub(super) fn in_order(
        &self,
        peer: &BareJid,
        time: chrono::DateTime<Utc>,
        archived: bool,
    ) -> chrono::DateTime<Utc> {
        let mark = self.session.filter(|_| archived);
        let last = match mark {
            // Fixed for the session (see `Store::last_incoming_time`): asked once per peer.
            Some(mark) => match self.floors.borrow().get(peer) {
                Some(floor) => Ok(*floor),
                None => self.store.last_incoming_time(&self.chat(peer), Some(mark)),
            },
            None => self.store.last_incoming_time(&self.chat(peer), None),
        };
        if let (Some(_), Ok(floor)) = (mark, &last) {
            self.floors.borrow_mut().insert(peer.clone(), *floor);
        }
        match last {
            // A live message leaves a gap after what it follows, so that what
            // the archive brings of the same moment (sent before it, never
            // received live: it is not a copy) can still go before it.
            Ok(Some(last)) if last >= time => {
                last + if archived { ARCHIVED_STEP } else { LIVE_STEP }
            }
            Ok(_) => time,
            Err(e) => {
                tracing::warn!("cannot read the last message from {peer}: {e}");
                time
            }
        }
    }

    /// A live message was stored with its archive id: once this session's
    /// catch-up has brought everything up to the present, and while no other
    /// runs, the archive and the stream agree on order, so catch-up can resume
    /// after it. Before that (a catch-up cut short, or not yet done), moving the
    /// position past a live message would skip what the archive still holds.
    pub(super) fn advance_cursor(&mut self, archive_id: Option<&str>) {
        if !self.synced {
            return;
        }
        if let (None, Some(id)) = (&self.catch_up, archive_id) {
            self.after_flush.cursor = Some(id.to_owned());
        }
    }

    /// Flushes what was received to disk, then sends the receipts and moves
    /// the archive position that were waiting for it.
    ///
    /// tokio-xmpp acknowledges stanzas (XEP-0198) as soon as it reads them, which
    /// we cannot delay; a crash before our flush would lose such a message but
    /// for this: the archive position only moves past messages that are on
    /// disk, so the next catch-up fetches them from the server's archive again.
    pub(super) async fn settle(&mut self) {
        if self.after_flush.receipts.is_empty() && self.after_flush.cursor.is_none() {
            return;
        }
        let AfterFlush { receipts, cursor } = std::mem::take(&mut self.after_flush);
        if let Err(e) = self.store.flush_async().await {
            // Not safely stored: no receipt, no new position; the archive has them.
            tracing::error!("cannot write received messages to disk: {e}");
            return;
        }
        if let Some(cursor) = cursor
            && let Err(e) = self
                .store
                .set_archive_cursor(self.account.as_str(), &cursor)
        {
            tracing::warn!("cannot store the archive position: {e}");
        }
        for receipt in receipts {
            // Kept until the server has it (see `Unconfirmed`).
            self.unconfirmed.receipts.push(receipt.clone());
            self.outq.push_back(Box::new(receipt.into()));
        }
    }

    /// The archive id our own server stamped on a message (XEP-0359); ids
    /// claimed by anyone else are ignored, as the XEP requires.
    pub(super) fn archive_id(&self, message: &mut Message) -> Option<String> {
        if !self.stanza_ids {
            return None;
        }
        let own = Jid::from(self.account.clone());
        while let Ok(Some(stanza_id)) = message.extract_payload::<StanzaId>() {
            if stanza_id.by == own {
                return Some(stanza_id.id);
            }
        }
        None
    }
}
