//! The per-account worker: one task owning an unsplit `StanzaStream`.
//!
//! tokio-xmpp 6's `Client` (and `StanzaStream::split`) can lose a wake-up when
//! a send and a receive collide on their internal mutex, after which nothing
//! more arrives. An unsplit `StanzaStream` is plain channels both ways, so this
//! worker owns one and `select!`s over its events, our commands and the
//! connector's reports; `tests/worker.rs` stress-tests exactly that.
//!
//! This module is the session and its transport: connecting, the event
//! loop, reconnection, suspend and resume, and handing each stanza to the
//! module for its concern, whose handlers return the stanzas to send:
//! - `commands`: the UI's commands, one path offline and in a session;
//! - `outbox`: our messages, stored before they are sent, and their delivery states;
//! - `incoming`: the one path from a received message to the history (live, carbons);
//! - `archive`: catch-up from the server's archive and older pages (XEP-0313);
//! - `contacts`: roster and presence (RFC 6121);
//! - `rooms`: group chats (XEP-0045): joins, occupants, the room's messages;
//! - `bookmarks`: the rooms to join, kept in PEP and shared with our other clients (XEP-0402);
//! - `upload`: the file sharing service and its slots (XEP-0363);
//! - `iq`: answers to our requests (tracked in `xmpp::requests`) and requests to us;
//! - `inbound`: the inbound path driven by raw bytes, for the fuzz targets.

mod archive;
mod bookmarks;
mod commands;
mod contacts;
mod directory;
pub mod inbound;
mod incoming;
mod iq;
mod outbox;
mod room_archive;
mod room_config;
mod rooms;
mod upload;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::bookmarks2::Conference;
use tokio_xmpp::parsers::{
    carbons::{Enable as CarbonsEnable, Received as CarbonReceived, Sent as CarbonSent},
    data_forms::{DataForm, DataFormType, Field, FieldType},
    delay::Delay,
    disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult},
    http_upload::{SlotRequest, SlotResult},
    iq::Iq,
    mam::{Fin, Query as ArchiveQuery, QueryId, Result_ as ArchiveResult},
    message::{Id, Lang, Message, MessageType},
    ns,
    oob::Oob,
    presence::{Presence, Show, Type as PresenceType},
    receipts::{Received as Receipt, Request as ReceiptRequest},
    roster::{Item as RosterItem, Roster, Subscription as RosterSubscription},
    rsm::SetQuery,
    stanza_error::{DefinedCondition, ErrorType, StanzaError},
    stanza_id::{OriginId, StanzaId},
};
use tokio_xmpp::stanzastream::{
    Connection, Event as StreamEvent, StanzaState, StanzaStream, StanzaToken, StreamEvent as Ev,
};

use super::connector;
use super::features;
use super::requests::{self, Reply, Requests};
use super::supervisor::{self, Commands};
use super::{
    Availability, Command, ConnectionState, Contact, Event, Failure, Handle, Oldest, OwnPresence,
    Settings, SlotError, Subscription, UploadService,
};
use crate::conversation::Kind;
use crate::store::{ArchivePosition, Delivery, Encryption, NewMessage, Record, Store};
use archive::{CatchUp, CatchUpRetry, OlderFetch, Paging};
use commands::{Flow, InSession};
use contacts::{contact, contact_stanzas};
use incoming::AfterFlush;
use outbox::{FULL_QUEUE_PAUSE, Unconfirmed};

/// Stanzas buffered each way inside `StanzaStream`.
const QUEUE_DEPTH: usize = 256;
/// How long a reconnection slot we gave up on is kept for tokio-xmpp's task
/// to let go of it (see `reconnector`).
const SLOT_HOLD: Duration = Duration::from_secs(60);

/// Backoff between reconnection attempts after a connection was lost.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// How long a polite close may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the worker looks for a suspend and resume of the computer.
const WAKE_CHECK: Duration = Duration::from_secs(5);
/// How long the server may take to answer the probe sent after a wake-up.
const WAKE_PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a signed-in connection may take to resume or bind the session.
///
/// tokio-xmpp waits for the server's answer with the stream's read timeouts
/// (`Liveness`, 45 s); a server that is shutting down may accept and
/// authenticate, then never answer.
const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the worker for `account`. Must be called inside a tokio runtime.
///
/// The worker idles until it receives [`Command::Connect`]. It stops when the
/// event receiver is dropped or every [`Handle`] is gone; after a panic it is
/// started again (see [`supervisor`]).
pub fn spawn(account: BareJid, store: Store) -> (Handle, mpsc::UnboundedReceiver<Event>) {
    let who = account.clone();
    supervisor::spawn(who, move |events, commands| {
        Worker::new(account.clone(), store.clone(), events, commands).run()
    })
}

impl Worker {
    fn new(
        account: BareJid,
        store: Store,
        events: mpsc::UnboundedSender<Event>,
        commands: Commands,
    ) -> Self {
        Worker {
            account,
            store,
            events,
            commands,
            presence: OwnPresence::default(),
            contacts: HashSet::new(),
            askers: HashSet::new(),
            catch_up: None,
            window: Default::default(),
            unconfirmed: Unconfirmed::default(),
            in_crate: Vec::new(),
            session: None,
            after_flush: AfterFlush::default(),
            older: HashMap::new(),
            deferred: Vec::new(),
            defer_live: false,
            floors: Default::default(),
            outq: std::collections::VecDeque::new(),
            upload: None,
            discovering: 0,
            stanza_ids: false,
            share_os: false,
            synced: false,
            catch_up_retry: None,
            rooms: HashMap::new(),
            room_ready: Vec::new(),
            room_asks: Vec::new(),
            room_discards: HashSet::new(),
            room_service: None,
            room_catch_ups: HashMap::new(),
            room_catch_ups_due: Vec::new(),
            room_silence: crate::xmpp::Liveness::default().room_silence,
            left_offline: HashMap::new(),
            bookmark_full_options: true,
            bookmark_echoes: HashMap::new(),
        }
    }
}

struct Worker {
    account: BareJid,
    store: Store,
    events: mpsc::UnboundedSender<Event>,
    commands: Commands,
    presence: OwnPresence,
    /// The roster's JIDs: who gets delivery receipts from us (XEP-0184 §8).
    contacts: HashSet<BareJid>,
    /// Who asked to see our presence this session (see `on_presence`).
    askers: HashSet<BareJid>,
    /// The archive query running, if any.
    catch_up: Option<CatchUp>,
    /// The first sign-in's history window.
    window: crate::xmpp::CatchUp,
    /// What was written to the stream since the last ack barrier (see `confirm_sent`).
    unconfirmed: Unconfirmed,
    /// Our messages handed to the crate and perhaps still in its queue (see
    /// the `Ev::Suspended` arm).
    in_crate: Vec<StanzaToken>,
    /// The store's mark when the current session began (see `in_order`).
    session: Option<u64>,
    /// What must wait until received messages are on disk (see `settle`).
    after_flush: AfterFlush,
    /// Fetches of older history running, by query id (see `fetch_older`).
    older: HashMap<String, OlderFetch>,
    /// Live messages received while the archive catches up, with their
    /// receipts (see `on_message`).
    deferred: Vec<(NewMessage, Option<Stanza>)>,
    /// Per peer, the newest incoming message stored before this session began
    /// (see `in_order`); forgotten when a new session begins.
    floors: std::cell::RefCell<HashMap<BareJid, Option<chrono::DateTime<Utc>>>>,
    /// From a new session's start until its catch-up from the archive ends,
    /// live messages wait (the catch-up starts only after the roster).
    defer_live: bool,
    /// Stanzas (not our messages) waiting to be handed to the stream, in
    /// order; see `pump`.
    outq: std::collections::VecDeque<Box<Stanza>>,
    /// The server's file sharing service, once discovered in this session.
    upload: Option<UploadService>,
    /// Service discovery answers still awaited while looking for it.
    discovering: usize,
    /// Whether our server announced that it stamps stanza-ids (XEP-0359 §4,
    /// `urn:xmpp:sid:0` on our account); until it does, none is believed.
    stanza_ids: bool,
    /// Whether software version answers name the system (see `Settings`).
    share_os: bool,
    /// Whether this session's catch-up reached the archive's end: only then
    /// may live messages move the archive position (see `advance_cursor`).
    synced: bool,
    /// When to try a catch-up again that was cut short.
    catch_up_retry: Option<CatchUpRetry>,
    /// The rooms joined or joining, joined again after every new session.
    rooms: HashMap<BareJid, rooms::Room>,
    /// Our messages to rooms just joined, for the session to send.
    room_ready: Vec<Record>,
    /// What handlers left to ask of rooms' owner interfaces (a room just
    /// created to set up, one made by mistake to destroy).
    room_asks: Vec<room_config::RoomAsk>,
    /// Rooms made by mistake whose destruction is not answered yet: their
    /// last word is not news, and a join of one waits for it to be gone.
    room_discards: HashSet<BareJid>,
    /// Our server's room service (XEP-0045 §6.1), found with its upload
    /// service when the session starts.
    room_service: Option<BareJid>,
    /// Catch-ups from rooms' own archives running, by query id.
    room_catch_ups: HashMap<String, room_archive::RoomCatchUp>,
    /// Rooms just joined whose archive is to be caught up with.
    room_catch_ups_due: Vec<BareJid>,
    /// How long a room may be silent before we ask whether we are in it.
    room_silence: Duration,
    /// Rooms left while offline: their bookmarks lose autojoin with the next
    /// session, before the bookmarks are read (which would join them again).
    /// Each with its bookmark as it is to be published (nickname and
    /// password kept for when the user comes back).
    left_offline: HashMap<BareJid, Conference>,
    /// Whether bookmarks are published with all the options XEP-0402
    /// asks for: ejabberd 23.01 refuses some of them, and once a publish
    /// with only the essential ones succeeds, later ones go so.
    bookmark_full_options: bool,
    /// The autojoin of each bookmark we published whose notification has
    /// not come back yet, oldest first: our own change coming back is not
    /// another client's (it would undo a join made since).
    bookmark_echoes: HashMap<BareJid, VecDeque<bool>>,
}

/// How a session ended.
enum End {
    /// The app is gone: stop the worker.
    Stop,
    /// Wait for the user; connect again with these settings if given.
    Idle(Option<(Settings, bool)>),
    /// Start a fresh session at once, abandoning this stream: it must send
    /// nothing more (what it still queued goes again from our outbox, in order).
    Fresh(Settings),
}

/// What the connector tells the session about its attempts.
enum Report {
    /// A signed-in connection was handed to the `StanzaStream`.
    Connected,
    Retrying(Failure, Duration),
    Fatal(Failure),
}

/// Connections handed over without the stream coming up (reset or resumed)
/// before the session is started afresh; see the `Report::Connected` arm.
const STUCK_NEGOTIATIONS: u32 = 3;

/// What an IQ we sent was for.
enum Pending {
    Roster,
    Archive,
    /// A ping whose answer proves the server has these stanzas (see `confirm_sent`).
    Barrier(Unconfirmed),
    /// A ping asking whether the link survived a suspend (see `Wake`).
    Probe,
    /// A page of older history (the query id of an `OlderFetch`).
    Older(String),
    /// Our server's items (looking for its upload service).
    DiscoItems,
    /// One item's features (looking for its upload service).
    DiscoInfo(Jid),
    /// An upload slot, for the transfer with this id.
    Slot(String),
    /// Our own account's features (does the server stamp stanza-ids?).
    OwnFeatures,
    /// The default configuration of a room we created (see `on_room_unlocked`).
    RoomUnlock(BareJid),
    /// Our room bookmarks (XEP-0402).
    Bookmarks,
    /// A page of a room's catch-up (the query id of a `RoomCatchUp`).
    RoomArchive(String),
    /// Are we still in this room (XEP-0410)?
    SelfPing(BareJid),
    /// A moderator's or admin's change asked of a room (`muc#admin`), or
    /// its destruction.
    RoomAdmin(BareJid),
    /// A room's configuration form, and what it is for.
    RoomForm(BareJid, room_config::FormPurpose),
    /// A room's configuration sent (`creating`: its first, as it was made).
    RoomConfigure {
        room: BareJid,
        creating: bool,
    },
    /// A room made by mistake, destroyed again.
    RoomDiscard(BareJid),
    /// The rooms a service lists (disco#items).
    RoomDirectory(BareJid),
    /// One listed room's details (disco#info).
    RoomListing(BareJid),
    /// What a room just joined says of itself (disco#info).
    RoomInfo(BareJid),
    /// A room's bookmark published (XEP-0402), and whether with all the
    /// publish options.
    Bookmark {
        room: BareJid,
        conference: Conference,
        full: bool,
    },
}

/// How long an answer to a question that the session waits on (roster,
/// archive pages, service discovery, upload slots) may take. A server that
/// never answers must not stall the catch-up, the upload or the sign-in.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Notices that the computer slept: the wall clock moved on while the
/// monotonic clock (which stops during suspend on Linux and macOS) did not.
///
/// After a wake-up the connection is often dead (the server or a NAT gave up
/// on it), but the stream's own read timeout, counted on the monotonic clock,
/// would take up to `Liveness` to notice. A prompt ping tells at once.
struct Wake {
    monotonic: Instant,
    wall: std::time::SystemTime,
}

impl Wake {
    /// Wall time running ahead of monotonic time by more than this is a suspend
    /// (or the clock set forward, for which one spare ping is harmless).
    const SLACK: Duration = Duration::from_secs(10);

    fn new(monotonic: Instant, wall: std::time::SystemTime) -> Self {
        Self { monotonic, wall }
    }

    /// Whether the computer slept since the last check.
    fn woke(&mut self, monotonic: Instant, wall: std::time::SystemTime) -> bool {
        let ran = monotonic.saturating_duration_since(self.monotonic);
        // A clock set backwards gives an error here: not a suspend.
        let passed = wall.duration_since(self.wall).unwrap_or_default();
        self.monotonic = monotonic;
        self.wall = wall;
        passed > ran + Self::SLACK
    }
}

impl Worker {
    /// The account's one-to-one conversation with `peer`.
    fn chat(&self, peer: &BareJid) -> crate::conversation::Id {
        crate::conversation::Id::chat(self.account.clone(), peer.clone())
    }

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
                End::Fresh(settings) => next = Some((settings, false)),
            }
        }
    }

    /// Offline and not trying: wait for a command that starts a session.
    async fn idle(&mut self, last: &mut Option<Settings>) -> Option<(Settings, bool)> {
        loop {
            let command = self.commands.recv().await?;
            match self.on_command(command, None) {
                Flow::Connect(settings, interactive) => return Some((*settings, interactive)),
                Flow::RetryNow => {
                    if let Some(settings) = last.clone() {
                        return Some((settings, true));
                    }
                }
                // Already offline; said again so that a quitting app need not wait.
                Flow::Disconnect => {
                    self.emit(Event::Connection(ConnectionState::Offline(None)));
                }
                Flow::Stay => {}
            }
        }
    }

    /// Tells the UI that a stored message changed; whether it is still there.
    fn emit_updated(&self, record: Record) -> bool {
        match record.into_message() {
            Some(message) => self.emit(Event::Updated(Box::new(message))),
            None => true,
        }
    }

    fn emit(&self, event: Event) -> bool {
        self.events.send(event).is_ok()
    }

    async fn session(&mut self, settings: Settings, interactive: bool) -> End {
        let started = Instant::now();
        self.window = settings.catch_up;
        self.share_os = settings.share_os;
        self.room_silence = settings.liveness.room_silence;
        self.in_crate.clear();
        let online_once = Arc::new(AtomicBool::new(!interactive));
        let (report_tx, mut reports) = mpsc::unbounded_channel();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let retry = Arc::new(tokio::sync::Notify::new());
        let fresh = settings.clone();
        let mut handed_over = 0u32;
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
        let mut pending: Requests<Pending> = Requests::new(self.account.clone());
        let mut bound: Option<Jid> = None;
        // Whether the stream is up now. While it is suspended, new messages wait
        // in the outbox instead of the crate's queue: should resumption fail,
        // tokio-xmpp drops what it had sent but not seen acknowledged and sends
        // what it had queued first, so newer messages would overtake older ones
        // that only our outbox resends. `tests/faults.rs` checks the order.
        let mut linked = false;
        // Our messages waiting to be handed to the stream, oldest first (see `SEND_BATCH`).
        let mut sendq: std::collections::VecDeque<Record> = Default::default();
        // Whether the stream's queue was full at the last `pump`.
        let mut full = false;
        let mut wake = Wake::new(Instant::now(), std::time::SystemTime::now());
        let mut wake_check = tokio::time::interval(WAKE_CHECK);
        wake_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The ping sent after a wake-up, and when it must have been answered.
        let mut probe: Option<(String, Instant)> = None;
        // Since when a connection handed to the stream has been negotiating.
        let mut negotiating: Option<Instant> = None;
        // The user signed off (see the `Command::Disconnect` arm).
        let mut signed_off = false;

        let end = 'session: loop {
            tokio::select! {
                // Another turn to hand what waits to the stream (see `pump`).
                _ = async { if full { tokio::time::sleep(FULL_QUEUE_PAUSE).await } },
                    if !self.outq.is_empty() || (linked && !sendq.is_empty()) => {}
                event = stream.next() => match event {
                    None => {
                        // The stream ends after a fatal report was queued: find it.
                        let mut failure = Failure::Lost("the connection ended".into());
                        while let Ok(report) = reports.try_recv() {
                            if let Report::Fatal(f) | Report::Retrying(f, _) = report {
                                failure = f;
                            }
                        }
                        let failure = Some(failure);
                        self.emit(Event::Connection(ConnectionState::Offline(failure)));
                        break End::Idle(None);
                    }
                    Some(StreamEvent::Stream(Ev::Reset { bound_jid, .. })) => {
                        // The old session could not be resumed: the crate dropped
                        // what it had written, and sends what it still queued
                        // first, before our outbox resends the older ones. Start a
                        // fresh stream instead, whose queue is empty.
                        if self.in_crate.iter().any(|t| matches!(t.state(), StanzaState::Queued)) {
                            tracing::info!("messages were queued when the session was lost; starting a fresh stream");
                            break End::Fresh(fresh.clone());
                        }
                        online_once.store(true, Ordering::SeqCst);
                        handed_over = 0;
                        negotiating = None;
                        linked = true;
                        sendq.clear(); // the outbox below has them
                        self.floors.borrow_mut().clear();
                        self.session = match self.store.mark() {
                            Ok(mark) => Some(mark),
                            Err(e) => {
                                tracing::warn!("cannot mark the store: {e}");
                                None
                            }
                        };
                        tracing::info!(
                            "signed in as {bound_jid} after {:.0} ms",
                            started.elapsed().as_secs_f64() * 1e3
                        );
                        // Receipts the old session may have lost go again (peers ignore repeats).
                        let mut owed = std::mem::take(&mut self.unconfirmed.receipts);
                        for waiting in pending.drain() {
                            if let Pending::Barrier(unconfirmed) = waiting {
                                owed.extend(unconfirmed.receipts);
                            }
                        }
                        self.unconfirmed = Unconfirmed::default();
                        bound = Some(bound_jid.clone());
                        self.emit(Event::Connection(ConnectionState::Online { jid: bound_jid, resumed: false }));
                        // RFC 6121 §2.2: fetch the roster before announcing presence.
                        self.outq.clear(); // what the old session had not handed over is moot or redone below
                        // Whether our server stamps stanza-ids we may trust (XEP-0359 §4): asked
                        // before the roster, so answered before the catch-up and live messages.
                        self.stanza_ids = false;
                        let id = pending.add(None, Pending::OwnFeatures, Some(REPLY_TIMEOUT), Instant::now());
                        self.outq.push_back(Box::new(Iq::from_get(id, DiscoInfoQuery { node: None }).into()));
                        let id = pending.add(None, Pending::Roster, Some(REPLY_TIMEOUT), Instant::now());
                        self.outq.push_back(Box::new(Iq::from_get(id, Roster { ver: None, items: vec![] }).into()));
                        // A new session: the server forgot our carbons subscription.
                        let enable = Iq::from_set(requests::new_id(), CarbonsEnable);
                        self.outq.push_back(Box::new(enable.into()));
                        self.catch_up = None;
                        self.catch_up_retry = None;
                        self.synced = false;
                        self.askers.clear();
                        // A catch-up follows the roster when we have a position;
                        // what waited for one cut short waits for this one.
                        self.defer_live = matches!(self.store.archive_position(self.account.as_str()), Ok(Some(_)));
                        if !self.defer_live {
                            self.store_deferred();
                        }
                        self.upload = None;
                        self.room_service = None;
                        self.discovering = 0;
                        // Everything not acknowledged before goes again; receivers drop copies by id.
                        match self.store.outbox(self.account.as_str()) {
                            Ok(pending) => {
                                if !pending.is_empty() {
                                    tracing::info!("sending {} queued messages", pending.len());
                                }
                                sendq.extend(pending);
                            }
                            Err(e) => tracing::error!("cannot read the outbox: {e}"),
                        }
                        for receipt in owed {
                            self.unconfirmed.receipts.push(receipt.clone());
                            self.outq.push_back(Box::new(receipt.into()));
                        }
                        // The server forgot our rooms with the old session.
                        for join in self.rejoin_rooms() {
                            self.outq.push_back(Box::new(join));
                        }
                    }
                    Some(StreamEvent::Stream(Ev::Resumed)) => {
                        handed_over = 0;
                        negotiating = None;
                        linked = true;
                        if let Some(jid) = bound.clone() {
                            self.emit(Event::Connection(ConnectionState::Online { jid, resumed: true }));
                        }
                    }
                    Some(StreamEvent::Stream(Ev::Suspended)) => {
                        linked = false;
                        // A message still in the crate's queue goes out first on
                        // the next connection, and if the session cannot be
                        // resumed, before older ones the crate dropped and our
                        // outbox resends: out of order. Rare (the link died
                        // between our send and the crate's write), so start a
                        // fresh stream instead, whose outbox resend keeps order.
                        if self.in_crate.iter().any(|t| matches!(t.state(), StanzaState::Queued)) {
                            tracing::info!("messages were queued when the link went down; starting a new session");
                            break End::Fresh(fresh.clone());
                        }
                        self.emit(Event::Connection(ConnectionState::Connecting));
                    }
                    Some(StreamEvent::Stanza(stanza)) => {
                        if !self.on_stanza(stanza, &mut pending).await {
                            break End::Stop;
                        }
                    }
                },
                report = reports.recv() => match report {
                    // tokio-xmpp 6 cannot parse the `<failed/>` Prosody sends without
                    // `h` when a session can no longer be resumed; it then reconnects
                    // and asks to resume the same session again, forever, silently.
                    // After a few connections that never came up, start a fresh
                    // session: the outbox resends what the old one had not confirmed.
                    // `tests/faults.rs` runs into this on every few server restarts.
                    Some(Report::Connected) => {
                        handed_over += 1;
                        negotiating = Some(Instant::now());
                        if handed_over >= STUCK_NEGOTIATIONS {
                            tracing::warn!("the stream does not come back up; starting a new session");
                            break End::Fresh(fresh.clone());
                        }
                    }
                    Some(Report::Retrying(reason, retry_in)) => {
                        self.emit(Event::Connection(ConnectionState::Retrying { reason, retry_in }));
                    }
                    Some(Report::Fatal(failure)) => {
                        self.emit(Event::Connection(ConnectionState::Offline(Some(failure))));
                        break End::Idle(None);
                    }
                    None => {}
                },
                _ = wake_check.tick() => {
                    tracing::trace!("tick: linked {linked}, {} stanzas and {} messages waiting, queue full {full}", self.outq.len(), sendq.len());
                    if wake.woke(Instant::now(), std::time::SystemTime::now()) && linked {
                        tracing::info!("the computer slept; checking the connection");
                        let id = pending.add(None, Pending::Probe, None, Instant::now());
                        self.outq.push_back(Box::new(Iq::from_get(id.clone(), tokio_xmpp::parsers::ping::Ping).into()));
                        probe = Some((id, Instant::now() + WAKE_PROBE_TIMEOUT));
                    }
                    let now = Instant::now();
                    for request in pending.expired(now) {
                        let (alive, stanzas) = self.on_no_answer(request, &mut pending);
                        if !alive {
                            break 'session End::Stop;
                        }
                        self.outq.extend(stanzas.into_iter().map(Box::new));
                    }
                    if bound.is_some() {
                        for stanza in self.retry_catch_up(&mut pending, now) {
                            self.outq.push_back(Box::new(stanza));
                        }
                        for stanza in self.due_rejoins(now) {
                            self.outq.push_back(Box::new(stanza));
                        }
                        for stanza in self.due_self_pings(now, &mut pending) {
                            self.outq.push_back(Box::new(stanza));
                        }
                    }
                    if negotiating.is_some_and(|since| since.elapsed() >= NEGOTIATION_TIMEOUT) {
                        tracing::warn!("the server does not answer the session's negotiation; starting a new session");
                        break End::Fresh(fresh.clone());
                    }
                    if let Some((id, deadline)) = &probe {
                        if !pending.contains(id) {
                            probe = None;
                        } else if Instant::now() >= *deadline {
                            tracing::info!("the connection did not survive the suspend; starting a new session");
                            break End::Fresh(fresh.clone());
                        }
                    }
                }
                command = self.commands.recv() => match command {
                    None => break End::Stop,
                    Some(command) => {
                        let session = InSession { bound: bound.is_some(), pending: &mut pending, sendq: &mut sendq };
                        match self.on_command(command, Some(session)) {
                            Flow::Connect(settings, interactive) => break End::Idle(Some((*settings, interactive))),
                            Flow::RetryNow => retry.notify_one(),
                            Flow::Disconnect => {
                                if bound.is_some() {
                                    // Best effort: the stream closes right after.
                                    let _ = stream.send(Box::new(Presence::unavailable().into())).now_or_never();
                                }
                                // Offline is said once the stream is closed (below): a
                                // quitting app waits for it before it exits.
                                signed_off = true;
                                break End::Idle(None);
                            }
                            Flow::Stay => {}
                        }
                    }
                },
            }
            self.settle().await;
            // Messages to rooms just joined, once each (they may be queued already).
            if !self.room_ready.is_empty() {
                let ready = std::mem::take(&mut self.room_ready);
                sendq.retain(|r| !ready.iter().any(|m| m.id == r.id && m.peer == r.peer));
                sendq.extend(ready);
            }
            // After what the crate retransmits on resumption: older messages first.
            full = self.pump(&stream, linked, &mut sendq);
            if bound.is_some() {
                self.confirm_sent(&mut pending);
            }
        };
        // A catch-up cut short. What waited for it keeps waiting for the next
        // session's: stored now, it would go before what the archive still
        // holds of the same moments (the position has not moved past those).
        self.catch_up = None;
        // Rooms' catch-ups too: each join of the next session goes on from
        // where the last complete page left the room's position.
        self.room_catch_ups.clear();
        self.room_catch_ups_due.clear();
        // Fetches of older history die with the session: say so.
        for (_, fetch) in self.older.drain() {
            let _ = self.events.send(Event::History {
                conversation: fetch.conversation,
                records: vec![],
                more: true,
            });
        }
        // Receipts not yet confirmed go with the next session (see `Unconfirmed`).
        for waiting in pending.drain() {
            if let Pending::Barrier(unconfirmed) = waiting {
                self.unconfirmed.receipts.extend(unconfirmed.receipts);
            }
        }
        self.unconfirmed.messages.clear();
        // Stop the connector first: while it is connecting, the stream cannot close.
        let _ = cancel_tx.send(true);
        // A stream we abandon is dropped, not closed: closing would let it
        // flush its queue on a connection it may have just got back, before
        // the fresh session resends older messages: out of order.
        if bound.is_some() && !matches!(end, End::Fresh(_)) {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.close()).await;
        }
        if signed_off {
            self.emit(Event::Connection(ConnectionState::Offline(None)));
        }
        end
    }

    /// Handles one inbound stanza; `false` when the app is gone.
    async fn on_stanza(&mut self, stanza: Stanza, pending: &mut Requests<Pending>) -> bool {
        match stanza {
            Stanza::Presence(presence) => {
                let alive = self.on_presence(presence);
                self.send_room_asks(pending);
                for room in std::mem::take(&mut self.room_catch_ups_due) {
                    for stanza in self.start_room_catch_up(room, pending) {
                        self.outq.push_back(Box::new(stanza));
                    }
                }
                alive
            }
            Stanza::Message(message) => {
                let (alive, replies) = self.on_message(message);
                for stanza in replies {
                    match stanza {
                        // Receipts: only once the message is on disk (see `settle`).
                        Stanza::Message(receipt) => self.after_flush.receipts.push(receipt),
                        other => self.outq.push_back(Box::new(other)),
                    }
                }
                alive
            }
            Stanza::Iq(iq) => {
                let (alive, replies) = self.on_iq(iq, pending);
                for stanza in replies {
                    self.outq.push_back(Box::new(stanza));
                }
                self.send_room_asks(pending);
                alive
            }
        }
    }
}

/// Builds the callback `StanzaStream` calls for every (re)connection.
///
/// A failure that needs the user, or any failure before the first successful
/// sign-in of an interactive login, is reported as fatal; the session then
/// drops the stream.
///
/// Works around tokio-xmpp 6: when the slot is dropped unanswered, its
/// background task panics ("Backend was unable to handle reconnect
/// request.", stanzastream/worker.rs). So a slot we give up on (fatal
/// failure, cancelled) is kept until the stream's task lets go of it, which it
/// does once the session drops the stream; bounded by [`SLOT_HOLD`] in case it
/// never does. `tests/worker.rs` checks that a wrong password and a fresh
/// session leave no such panic.
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
            let given_up = loop {
                let attempt = tokio::select! {
                    a = connector::connect(&settings) => a,
                    _ = cancel.wait_for(|c| *c) => break true,
                };
                match attempt {
                    Ok(connection) => {
                        let _ = reports.send(Report::Connected);
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
                        break true;
                    }
                    Err(failure) => {
                        tracing::info!(
                            "connection attempt failed: {failure}; retrying in {delay:?}"
                        );
                        let _ = reports.send(Report::Retrying(failure, delay));
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = retry.notified() => {}
                            _ = cancel.wait_for(|c| *c) => break true,
                            _ = slot.closed() => break false,
                        }
                        delay = (delay * 2).min(MAX_RETRY);
                    }
                }
            };
            if given_up {
                let _ = tokio::time::timeout(SLOT_HOLD, slot.closed()).await;
            }
        });
    })
}

#[cfg(test)]
mod tests;
