//! The outbox: messages written before they are sent, sent in order, and their delivery states (XEP-0198 acks, XEP-0184 receipts, error replies).

use super::incoming::reported;
use super::*;

/// Our messages handed to the stream per turn of the worker's loop.
pub(super) const SEND_BATCH: usize = 16;

/// How long the worker waits before offering stanzas again to a full queue.
pub(super) const FULL_QUEUE_PAUSE: Duration = Duration::from_millis(10);

/// Stanzas written but not yet known to have reached our server.
#[derive(Default)]
pub(super) struct Unconfirmed {
    /// Our messages (conversation, id): the outbox resends them if the session is lost.
    pub(super) messages: Vec<(crate::conversation::Id, String)>,
    /// Receipts we owe: sent again after a lost session, or the sender never
    /// learns its message arrived.
    pub(super) receipts: Vec<Message>,
}

impl Unconfirmed {
    pub(super) fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.receipts.is_empty()
    }
}

/// A copy of a stanza to offer the stream (`Stanza` is not `Clone`; its kinds are).
pub(super) fn copy(stanza: &Stanza) -> Stanza {
    match stanza {
        Stanza::Message(m) => Stanza::Message(m.clone()),
        Stanza::Presence(p) => Stanza::Presence(p.clone()),
        Stanza::Iq(i) => Stanza::Iq(i.clone()),
    }
}

impl Worker {
    /// Stores an outgoing message as pending (in the outbox) and shows it.
    /// Nothing is sent that could not be stored: it would be lost on restart.
    pub(super) fn accept_message(
        &mut self,
        to: &crate::conversation::Id,
        body: String,
        attachment: bool,
    ) -> Option<Record> {
        if to.account() != &self.account {
            tracing::warn!("a message for {to} reached the worker of {}", self.account);
            return None;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let mut message = NewMessage::outgoing(to, id.clone(), body, Utc::now());
        // Sent with both ids the same (see `send_tracked`).
        message.stanza_id = Some(id.clone());
        message.origin_id = Some(id);
        message.attachment = attachment;
        match self.store.insert(message) {
            Ok(Some(record)) => {
                self.emit(Event::Messages(reported([record.clone()])));
                Some(record)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!("could not store an outgoing message: {e}");
                None
            }
        }
    }

    /// Puts a failed message back in the outbox.
    pub(super) fn retry(
        &mut self,
        conversation: &crate::conversation::Id,
        id: &str,
    ) -> Option<Record> {
        if conversation.account() != &self.account {
            return None;
        }
        self.update_state(conversation, id, Delivery::Pending, None)
    }

    /// Stores a state change and tells the UI; the updated record if there was one.
    pub(super) fn update_state(
        &mut self,
        conversation: &crate::conversation::Id,
        id: &str,
        state: Delivery,
        error: Option<String>,
    ) -> Option<Record> {
        match self.store.set_state(conversation, id, state, error) {
            Ok(Some(record)) => {
                self.emit_updated(record.clone());
                Some(record)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!("could not store a delivery state: {e}");
                None
            }
        }
    }

    /// Offers a stored outgoing message to the stream, asking for a receipt;
    /// `confirm_sent` marks it sent. `false` if the stream's queue is full.
    pub(super) fn send_tracked(&mut self, stream: &StanzaStream, record: &Record) -> bool {
        let Some(conversation) = record.conversation() else {
            tracing::warn!("outbox: invalid address {:?}", record.peer);
            return true;
        };
        let to = conversation.bare();
        let mut message = match conversation.kind() {
            // No receipt asked: the room's reflection says it went out (XEP-0045 §7.4).
            Kind::Room => Message::groupchat(Some(Jid::from(to.clone()))),
            // To one occupant, through the room: marked as such (XEP-0045 §7.5).
            Kind::Private => {
                let mut message = Message::chat(Some(conversation.peer().clone()));
                message
                    .payloads
                    .push(tokio_xmpp::parsers::muc::user::MucUser::new().into());
                message
            }
            Kind::Chat => {
                let mut message = Message::chat(Some(conversation.peer().clone()));
                message.payloads.push(ReceiptRequest.into());
                message
            }
        }
        .with_body(Lang::new(), record.body.clone());
        message.id = Some(Id(record.id.clone()));
        message.payloads.push(
            OriginId {
                id: record.id.clone(),
            }
            .into(),
        );
        if record.attachment {
            // As Conversations does: the same link as body and as OOB data.
            message.payloads.push(
                Oob {
                    url: record.body.clone(),
                    desc: None,
                }
                .into(),
            );
        }
        // Sent later than written (offline, resent after a lost session): the
        // original time lets the peer put it in its place (XEP-0203).
        if Utc::now() - record.time > chrono::Duration::seconds(2) {
            message.payloads.push(
                Delay {
                    from: Some(Jid::from(self.account.clone())),
                    stamp: tokio_xmpp::parsers::date::DateTime(record.time.fixed_offset()),
                    data: None,
                }
                .into(),
            );
        }
        let Some(token) = stream.send(Box::new(message.into())).now_or_never() else {
            return false;
        };
        self.in_crate
            .retain(|t| matches!(t.state(), StanzaState::Queued));
        self.in_crate.push(token);
        self.unconfirmed
            .messages
            .push((conversation, record.id.clone()));
        true
    }

    /// Hands what waits to the stream, as far as its queue takes it: first
    /// `outq`, then (when the link is up) a few of our messages. Returns
    /// whether the queue was full.
    ///
    /// Never waits: `StanzaStream::send` waits for room in the crate's queue,
    /// and the crate, while it waits for room in ours (events we have not
    /// read) with its connection down, drains nothing (tokio-xmpp 6,
    /// `send_or_break!` in `stanzastream/worker.rs`). A worker waiting in
    /// `send` then would wait on the crate while the crate waits on it, which
    /// a reconnection with a long outbox on both sides could bring about. An
    /// mpsc send is cancel-safe: one not ready at once is dropped and offered
    /// again on a later turn, after the worker has read what came in.
    pub(super) fn pump(
        &mut self,
        stream: &StanzaStream,
        linked: bool,
        sendq: &mut std::collections::VecDeque<Record>,
    ) -> bool {
        while let Some(stanza) = self.outq.front() {
            if stream.send(Box::new(copy(stanza))).now_or_never().is_none() {
                return true;
            }
            self.outq.pop_front();
        }
        if linked {
            for _ in 0..SEND_BATCH {
                let Some(record) = sendq.pop_front() else {
                    break;
                };
                // Sent once the room has us; meanwhile it stays in the outbox.
                if self.waits_for_join(&record) {
                    continue;
                }
                if !self.send_tracked(stream, &record) {
                    sendq.push_front(record);
                    return true;
                }
            }
        }
        false
    }

    /// Follows messages just written with a ping to our server: its answer
    /// proves the server has everything sent before it, so they become `Sent`.
    ///
    /// Works around tokio-xmpp 6, whose `StanzaStream` asks for XEP-0198 acks
    /// only after a read timeout (60 s with `Timeouts::tight`), which would
    /// leave the "sent" mark a minute late; `tests/worker.rs` checks the mark
    /// comes within seconds for a contact who is offline (no receipt possible).
    pub(super) fn confirm_sent(&mut self, pending: &mut Requests<Pending>) {
        if self.unconfirmed.is_empty() {
            return;
        }
        let id = pending.add(
            None,
            Pending::Barrier(std::mem::take(&mut self.unconfirmed)),
            None,
            Instant::now(),
        );
        // No `to`: the server answers for our own account.
        let ping = Iq::from_get(id, tokio_xmpp::parsers::ping::Ping);
        self.outq.push_back(Box::new(ping.into()));
    }

    /// An error reply to one of our messages: mark it failed, with the reason.
    pub(super) fn on_error_reply(&mut self, peer: &BareJid, message: &Message) -> bool {
        let Some(id) = &message.id else {
            tracing::warn!("an error reply from {peer} without an id");
            return true;
        };
        let reason = message
            .payloads
            .iter()
            .find_map(|p| StanzaError::try_from(p.clone()).ok())
            .map(|e| {
                let condition = format!("{:?}", e.defined_condition);
                match e.texts.values().next() {
                    Some(text) if !text.is_empty() => format!("{condition}: {text}"),
                    _ => condition,
                }
            })
            .unwrap_or_else(|| "error".into());
        tracing::info!("message {} to {peer} failed: {reason}", id.0);
        self.update_state(&self.chat(peer), &id.0, Delivery::Failed, Some(reason));
        true
    }
}
