//! The per-account worker: one task owning an unsplit `StanzaStream`.
//!
//! tokio-xmpp 6's `Client` (and `StanzaStream::split`) can lose a wake-up when
//! a send and a receive collide on their internal mutex, after which nothing
//! more arrives. An unsplit `StanzaStream` is plain channels both ways, so this
//! worker owns one and `select!`s over its events, our commands and the
//! connector's reports; `tests/worker.rs` stress-tests exactly that.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::{
    delay::Delay,
    disco::{DiscoInfoQuery, DiscoInfoResult, Identity},
    iq::Iq,
    message::{Id, Lang, Message, MessageType},
    ns,
    presence::{Presence, Show, Type as PresenceType},
    roster::{Item as RosterItem, Roster, Subscription as RosterSubscription},
    stanza_error::{DefinedCondition, ErrorType, StanzaError},
    stanza_id::OriginId,
};
use tokio_xmpp::stanzastream::{Connection, Event as StreamEvent, StanzaStream, StreamEvent as Ev};

use super::connector;
use super::{
    Availability, Command, ConnectionState, Contact, Event, Failure, Handle, OwnPresence, Settings,
    Subscription,
};
use crate::store::{Direction, NewMessage, Store};

/// Stanzas buffered each way inside `StanzaStream`.
const QUEUE_DEPTH: usize = 256;
/// Backoff between reconnection attempts after a connection was lost.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// How long a polite close may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Starts the worker for `account`. Must be called inside a tokio runtime.
///
/// The worker idles until it receives [`Command::Connect`]. It stops when the
/// event receiver is dropped or every [`Handle`] is gone.
pub fn spawn(account: BareJid, store: Store) -> (Handle, mpsc::UnboundedReceiver<Event>) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let handle = Handle::new(cmd_tx);
    let _ = ev_tx.send(Event::Ready(handle.clone()));
    tokio::spawn(
        Worker {
            account,
            store,
            events: ev_tx,
            commands: cmd_rx,
            presence: OwnPresence::default(),
            unsent: Vec::new(),
            next_id: 0,
        }
        .run(),
    );
    (handle, ev_rx)
}

struct Worker {
    account: BareJid,
    store: Store,
    events: mpsc::UnboundedSender<Event>,
    commands: mpsc::UnboundedReceiver<Command>,
    presence: OwnPresence,
    /// Messages accepted while no session existed; sent on the next sign-in.
    unsent: Vec<Message>,
    /// Counter for the ids of our IQs.
    next_id: u64,
}

/// How a session ended.
enum End {
    /// The app is gone: stop the worker.
    Stop,
    /// Wait for the user; connect again with these settings if given.
    Idle(Option<(Settings, bool)>),
}

/// What the connector tells the session about its attempts.
enum Report {
    Retrying(Failure, Duration),
    Fatal(Failure),
}

/// What an IQ we sent was for.
enum Pending {
    Roster,
}

impl Worker {
    async fn run(mut self) {
        let mut next: Option<(Settings, bool)> = None;
        let mut last: Option<Settings> = None;
        loop {
            let (settings, interactive) = match next.take() {
                Some(s) => s,
                None => match self.idle(&mut last).await {
                    Some(s) => s,
                    None => return,
                },
            };
            last = Some(settings.clone());
            match self.session(settings, interactive).await {
                End::Stop => return,
                End::Idle(again) => next = again,
            }
        }
    }

    /// Offline and not trying: wait for a command that starts a session.
    async fn idle(&mut self, last: &mut Option<Settings>) -> Option<(Settings, bool)> {
        loop {
            let command = self.commands.recv().await?;
            match command {
                Command::Connect {
                    settings,
                    interactive,
                } => return Some((*settings, interactive)),
                Command::RetryNow => {
                    if let Some(settings) = last.clone() {
                        return Some((settings, true));
                    }
                }
                Command::Disconnect => {}
                Command::AddContact { .. } | Command::AnswerSubscription { .. } => {
                    tracing::info!("contact change ignored while offline");
                }
                Command::SetPresence(p) => self.presence = p,
                Command::SendMessage { to, body } => {
                    if let Some(message) = self.accept_message(to, body) {
                        self.unsent.push(message);
                    }
                }
            }
        }
    }

    fn emit(&self, event: Event) -> bool {
        self.events.send(event).is_ok()
    }

    async fn session(&mut self, settings: Settings, interactive: bool) -> End {
        let started = Instant::now();
        let online_once = Arc::new(AtomicBool::new(!interactive));
        let (report_tx, mut reports) = mpsc::unbounded_channel();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let retry = Arc::new(tokio::sync::Notify::new());
        let mut stream = StanzaStream::new(
            reconnector(
                settings,
                report_tx,
                online_once.clone(),
                cancel_rx,
                retry.clone(),
            ),
            QUEUE_DEPTH,
        );
        self.emit(Event::Connection(ConnectionState::Connecting));
        let mut pending: HashMap<String, Pending> = HashMap::new();
        let mut bound: Option<Jid> = None;

        let end = loop {
            tokio::select! {
                event = stream.next() => match event {
                    None => {
                        // The stream ends after a fatal report was queued.
                        let failure = match reports.try_recv() {
                            Ok(Report::Fatal(f)) | Ok(Report::Retrying(f, _)) => Some(f),
                            Err(_) => Some(Failure::Lost("the connection ended".into())),
                        };
                        self.emit(Event::Connection(ConnectionState::Offline(failure)));
                        break End::Idle(None);
                    }
                    Some(StreamEvent::Stream(Ev::Reset { bound_jid, .. })) => {
                        online_once.store(true, Ordering::SeqCst);
                        tracing::info!(
                            "signed in as {bound_jid} after {:.0} ms",
                            started.elapsed().as_secs_f64() * 1e3
                        );
                        pending.clear();
                        bound = Some(bound_jid.clone());
                        self.emit(Event::Connection(ConnectionState::Online { jid: bound_jid, resumed: false }));
                        // RFC 6121 §2.2: fetch the roster before announcing presence.
                        pending.insert("roster-1".into(), Pending::Roster);
                        stream.send(Box::new(Iq::from_get("roster-1", Roster { ver: None, items: vec![] }).into())).await;
                        for message in std::mem::take(&mut self.unsent) {
                            stream.send(Box::new(message.into())).await;
                        }
                    }
                    Some(StreamEvent::Stream(Ev::Resumed)) => {
                        if let Some(jid) = bound.clone() {
                            self.emit(Event::Connection(ConnectionState::Online { jid, resumed: true }));
                        }
                    }
                    Some(StreamEvent::Stream(Ev::Suspended)) => {
                        self.emit(Event::Connection(ConnectionState::Connecting));
                    }
                    Some(StreamEvent::Stanza(stanza)) => {
                        if !self.on_stanza(stanza, &stream, &mut pending).await {
                            break End::Stop;
                        }
                    }
                },
                report = reports.recv() => match report {
                    Some(Report::Retrying(reason, retry_in)) => {
                        self.emit(Event::Connection(ConnectionState::Retrying { reason, retry_in }));
                    }
                    Some(Report::Fatal(failure)) => {
                        self.emit(Event::Connection(ConnectionState::Offline(Some(failure))));
                        break End::Idle(None);
                    }
                    None => {}
                },
                command = self.commands.recv() => match command {
                    None => break End::Stop,
                    Some(Command::Connect { settings, interactive }) => break End::Idle(Some((*settings, interactive))),
                    Some(Command::RetryNow) => retry.notify_one(),
                    Some(Command::Disconnect) => {
                        if bound.is_some() {
                            stream.send(Box::new(Presence::unavailable().into())).await;
                        }
                        self.emit(Event::Connection(ConnectionState::Offline(None)));
                        break End::Idle(None);
                    }
                    Some(Command::SetPresence(presence)) => {
                        self.presence = presence;
                        if bound.is_some() {
                            stream.send(Box::new(self.own_presence().into())).await;
                        }
                    }
                    Some(Command::SendMessage { to, body }) => {
                        if let Some(message) = self.accept_message(to, body) {
                            stream.send(Box::new(message.into())).await;
                        }
                    }
                    Some(command @ (Command::AddContact { .. } | Command::AnswerSubscription { .. })) => {
                        for stanza in contact_stanzas(command, &mut self.next_id) {
                            stream.send(Box::new(stanza)).await;
                        }
                    }
                },
            }
        };
        // Stop the connector first: while it is connecting, the stream cannot close.
        let _ = cancel_tx.send(true);
        if bound.is_some() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.close()).await;
        }
        end
    }

    /// Stores an outgoing message, shows it, and returns the stanza to send.
    fn accept_message(&mut self, to: BareJid, body: String) -> Option<Message> {
        let id = uuid::Uuid::new_v4().to_string();
        let record = self.store.insert(NewMessage {
            account: self.account.to_string(),
            peer: to.to_string(),
            direction: Direction::Out,
            id: id.clone(),
            body: body.clone(),
            time: Utc::now(),
        });
        match record {
            Ok(record) => {
                self.emit(Event::Messages(vec![record]));
            }
            Err(e) => {
                // Never send what we could not record: the user would lose it on restart.
                tracing::error!("could not store an outgoing message: {e}");
                return None;
            }
        }
        let mut message = Message::chat(Some(Jid::from(to))).with_body(Lang::new(), body);
        message.id = Some(Id(id.clone()));
        message.payloads.push(OriginId { id }.into());
        Some(message)
    }

    fn own_presence(&self) -> Presence {
        let show = match self.presence.availability {
            Availability::Chat => Some(Show::Chat),
            Availability::Away => Some(Show::Away),
            Availability::ExtendedAway => Some(Show::Xa),
            Availability::DoNotDisturb => Some(Show::Dnd),
            Availability::Available | Availability::Offline => None,
        };
        let mut presence = if self.presence.availability == Availability::Offline {
            Presence::unavailable()
        } else {
            Presence::available()
        };
        presence.show = show;
        if !self.presence.status.is_empty() {
            presence.set_status(Lang::new(), self.presence.status.clone());
        }
        presence
    }

    /// Handles one inbound stanza; `false` when the app is gone.
    async fn on_stanza(
        &mut self,
        stanza: Stanza,
        stream: &StanzaStream,
        pending: &mut HashMap<String, Pending>,
    ) -> bool {
        match stanza {
            Stanza::Message(message) => self.on_message(message),
            Stanza::Presence(presence) => self.on_presence(presence),
            Stanza::Iq(iq) => {
                let (alive, reply) = self.on_iq(iq, pending);
                for stanza in reply {
                    stream.send(Box::new(stanza)).await;
                }
                alive
            }
        }
    }

    fn on_message(&mut self, mut message: Message) -> bool {
        let Some(from) = message.from.clone() else {
            return true;
        };
        match message.type_ {
            MessageType::Chat | MessageType::Normal => {}
            MessageType::Error => {
                tracing::warn!("error reply to a message from {from}");
                return true;
            }
            MessageType::Groupchat | MessageType::Headline => return true,
        }
        let peer = from.to_bare();
        if peer == self.account {
            // Copies of our own messages (carbons) are not handled yet.
            return true;
        }
        let Some((_, body)) = message.get_best_body_cloned(vec![]) else {
            return true; // chat states, receipts and other bodiless traffic
        };
        let now = Utc::now();
        let time = match message.extract_payload::<Delay>() {
            // A sender cannot move a message into the future (and pin it to the bottom).
            Ok(Some(delay)) => delay.stamp.0.with_timezone(&Utc).min(now),
            _ => now,
        };
        let id = match message.extract_payload::<OriginId>() {
            Ok(Some(origin)) => origin.id,
            _ => message
                .id
                .as_ref()
                .map(|id| id.0.clone())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        };
        match self.store.insert(NewMessage {
            account: self.account.to_string(),
            peer: peer.to_string(),
            direction: Direction::In,
            id,
            body,
            time,
        }) {
            Ok(record) => self.emit(Event::Messages(vec![record])),
            Err(e) => {
                tracing::error!("could not store a message from {peer}: {e}");
                true
            }
        }
    }

    fn on_presence(&mut self, presence: Presence) -> bool {
        let Some(from) = presence.from.clone() else {
            return true;
        };
        let availability = match presence.type_ {
            PresenceType::None => match presence.show {
                None => Availability::Available,
                Some(Show::Chat) => Availability::Chat,
                Some(Show::Away) => Availability::Away,
                Some(Show::Xa) => Availability::ExtendedAway,
                Some(Show::Dnd) => Availability::DoNotDisturb,
            },
            PresenceType::Unavailable => Availability::Offline,
            PresenceType::Subscribe => {
                let from = from.to_bare();
                if from == self.account {
                    return true;
                }
                return self.emit(Event::SubscriptionRequest(from));
            }
            other => {
                tracing::debug!("presence of type {other:?} from {from} not handled yet");
                return true;
            }
        };
        let status = presence.statuses.values().next().cloned();
        self.emit(Event::Presence {
            from,
            availability,
            status,
        })
    }

    /// Returns whether the app is still there, and the stanzas to send back.
    fn on_iq(&mut self, iq: Iq, pending: &mut HashMap<String, Pending>) -> (bool, Vec<Stanza>) {
        match iq {
            Iq::Result {
                id, payload, from, ..
            } => {
                if !self.is_own_server(from.as_ref()) {
                    return (true, vec![]);
                }
                match (pending.remove(&id), payload) {
                    (Some(Pending::Roster), Some(payload)) => {
                        let alive = match Roster::try_from(payload) {
                            Ok(roster) => self.emit(Event::Roster(
                                roster.items.into_iter().map(contact).collect(),
                            )),
                            Err(e) => {
                                tracing::warn!("unreadable roster: {e}");
                                true
                            }
                        };
                        (alive, vec![self.own_presence().into()])
                    }
                    (Some(Pending::Roster), None) => (true, vec![self.own_presence().into()]),
                    (None, _) => (true, vec![]),
                }
            }
            Iq::Error { id, error, .. } => {
                if let Some(Pending::Roster) = pending.remove(&id) {
                    tracing::warn!(
                        "the server refused the roster: {:?}",
                        error.defined_condition
                    );
                    return (true, vec![self.own_presence().into()]);
                }
                (true, vec![])
            }
            Iq::Set {
                from, id, payload, ..
            } => {
                if payload.is("query", ns::ROSTER) {
                    // RFC 6121 §2.1.6: only our own server may push roster changes.
                    if !self.is_own_account(from.as_ref()) {
                        tracing::warn!("ignoring a roster push from {from:?}");
                        return (
                            true,
                            vec![error_reply(from, id, DefinedCondition::Forbidden)],
                        );
                    }
                    let mut alive = true;
                    if let Ok(roster) = Roster::try_from(payload) {
                        for item in roster.items {
                            alive &= self.emit(Event::RosterPush(contact(item)));
                        }
                    }
                    let reply = Iq::Result {
                        from: None,
                        to: from,
                        id,
                        payload: None,
                    };
                    return (alive, vec![reply.into()]);
                }
                (
                    true,
                    vec![error_reply(from, id, DefinedCondition::ServiceUnavailable)],
                )
            }
            Iq::Get {
                from, id, payload, ..
            } => {
                if payload.is("ping", ns::PING) {
                    let reply = Iq::Result {
                        from: None,
                        to: from,
                        id,
                        payload: None,
                    };
                    return (true, vec![reply.into()]);
                }
                if payload.is("query", ns::DISCO_INFO)
                    && DiscoInfoQuery::try_from(payload.clone()).is_ok_and(|q| q.node.is_none())
                {
                    let reply = Iq::from_result(id, Some(disco_info()));
                    return (true, vec![with_to(reply, from).into()]);
                }
                (
                    true,
                    vec![error_reply(from, id, DefinedCondition::ServiceUnavailable)],
                )
            }
        }
    }

    fn is_own_account(&self, from: Option<&Jid>) -> bool {
        from.is_none_or(|j| j.to_bare() == self.account)
    }

    fn is_own_server(&self, from: Option<&Jid>) -> bool {
        from.is_none_or(|j| {
            j.to_bare() == self.account || j.as_str() == self.account.domain().as_str()
        })
    }
}

/// The stanzas for a contact-list command (RFC 6121 §2.3, §3.1, §3.4).
fn contact_stanzas(command: Command, next_id: &mut u64) -> Vec<Stanza> {
    let mut roster_set = |item: RosterItem| -> Stanza {
        *next_id += 1;
        Iq::from_set(
            format!("contact-{next_id}"),
            Roster {
                ver: None,
                items: vec![item],
            },
        )
        .into()
    };
    let presence = |type_: PresenceType, to: &BareJid| -> Stanza {
        let mut p = Presence::new(type_);
        p.to = Some(Jid::from(to.clone()));
        p.into()
    };
    match command {
        Command::AddContact { jid, name } => vec![
            roster_set(RosterItem {
                jid: jid.clone(),
                name,
                subscription: RosterSubscription::None,
                ask: Default::default(),
                groups: vec![],
                approved: None,
            }),
            presence(PresenceType::Subscribe, &jid),
            // Pre-approve their request for ours, so both see each other at once.
            presence(PresenceType::Subscribed, &jid),
        ],
        Command::AnswerSubscription { from, accept: true } => vec![
            presence(PresenceType::Subscribed, &from),
            // And ask for theirs, as people expect a mutual contact.
            presence(PresenceType::Subscribe, &from),
        ],
        Command::AnswerSubscription {
            from,
            accept: false,
        } => {
            vec![presence(PresenceType::Unsubscribed, &from)]
        }
        _ => vec![],
    }
}

fn with_to(iq: Iq, to: Option<Jid>) -> Iq {
    match to {
        Some(to) => iq.with_to(to),
        None => iq,
    }
}

fn error_reply(to: Option<Jid>, id: String, condition: DefinedCondition) -> Stanza {
    let error = StanzaError::new(ErrorType::Cancel, condition, "en", "");
    with_to(Iq::from_error(id, error), to).into()
}

fn disco_info() -> DiscoInfoResult {
    DiscoInfoResult {
        node: None,
        identities: vec![Identity::new("client", "pc", "en", "Tern")],
        features: [ns::DISCO_INFO, ns::PING]
            .into_iter()
            .map(String::from)
            .collect(),
        extensions: vec![],
    }
}

fn contact(item: RosterItem) -> Contact {
    Contact {
        jid: item.jid,
        name: item.name.filter(|n| !n.trim().is_empty()),
        groups: item.groups.into_iter().map(|g| g.0).collect(),
        subscription: match item.subscription {
            RosterSubscription::None => Subscription::None,
            RosterSubscription::To => Subscription::To,
            RosterSubscription::From => Subscription::From,
            RosterSubscription::Both => Subscription::Both,
            RosterSubscription::Remove => Subscription::Removed,
        },
    }
}

/// Builds the callback `StanzaStream` calls for every (re)connection.
///
/// A failure that needs the user, or any failure before the first successful
/// sign-in of an interactive login, is reported as fatal and the slot is
/// dropped. tokio-xmpp 6 then panics inside its own background task
/// ("Backend was unable to handle reconnect request."); with unwinding that
/// panic stays in that task and the stream simply ends, which is what we want
/// (so Tern must not be built with `panic = "abort"`). `tests/worker.rs`
/// checks that a wrong password ends the session cleanly and is not retried.
fn reconnector(
    settings: Settings,
    reports: mpsc::UnboundedSender<Report>,
    online_once: Arc<AtomicBool>,
    cancel: watch::Receiver<bool>,
    retry: Arc<tokio::sync::Notify>,
) -> Box<dyn FnMut(Option<String>, oneshot::Sender<Connection>) + Send + 'static> {
    Box::new(move |_location, slot| {
        let settings = settings.clone();
        let reports = reports.clone();
        let online_once = online_once.clone();
        let mut cancel = cancel.clone();
        let retry = retry.clone();
        let mut slot = slot;
        tokio::spawn(async move {
            let mut delay = FIRST_RETRY;
            loop {
                let attempt = tokio::select! {
                    a = connector::connect(&settings) => a,
                    _ = cancel.wait_for(|c| *c) => return,
                };
                match attempt {
                    Ok(connection) => {
                        if let Err(mut connection) = slot.send(connection) {
                            let _ = tokio::time::timeout(
                                CLOSE_TIMEOUT,
                                futures::SinkExt::<&Stanza>::close(&mut connection.stream),
                            )
                            .await;
                        }
                        return;
                    }
                    Err(failure) if failure.needs_user() || !online_once.load(Ordering::SeqCst) => {
                        tracing::warn!("sign-in failed: {failure}");
                        let _ = reports.send(Report::Fatal(failure));
                        return;
                    }
                    Err(failure) => {
                        tracing::info!(
                            "connection attempt failed: {failure}; retrying in {delay:?}"
                        );
                        let _ = reports.send(Report::Retrying(failure, delay));
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = retry.notified() => {}
                            _ = cancel.wait_for(|c| *c) => return,
                            _ = slot.closed() => return,
                        }
                        delay = (delay * 2).min(MAX_RETRY);
                    }
                }
            }
        });
    })
}
