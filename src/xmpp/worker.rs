//! The per-account worker: one task owning an unsplit `StanzaStream`.
//!
//! tokio-xmpp 6's `Client` (and `StanzaStream::split`) can lose a wake-up when
//! a send and a receive collide on their internal mutex, after which nothing
//! more arrives. An unsplit `StanzaStream` is plain channels both ways, so this
//! worker owns one and `select!`s over its events, our commands and the
//! connector's reports; `tests/worker.rs` stress-tests exactly that.

pub mod inbound;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, Jid};
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
use crate::store::{ArchivePosition, Delivery, Encryption, NewMessage, Record, Store};

/// Stanzas buffered each way inside `StanzaStream`.
const QUEUE_DEPTH: usize = 256;
/// Our messages handed to the stream per turn of the worker's loop.
const SEND_BATCH: usize = 16;
/// How long the worker waits before offering stanzas again to a full queue.
const FULL_QUEUE_PAUSE: Duration = Duration::from_millis(10);
/// How long a reconnection slot we gave up on is kept for tokio-xmpp's task
/// to let go of it (see `reconnector`).
const SLOT_HOLD: Duration = Duration::from_secs(60);

/// Backoff between reconnection attempts after a connection was lost.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// How long a polite close may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How far after the newest stored message from the same peer a message is
/// put when its own stamp would put it before (see `in_order`).
const LIVE_STEP: chrono::Duration = chrono::Duration::milliseconds(1);
const ARCHIVED_STEP: chrono::Duration = chrono::Duration::microseconds(1);
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
}

/// A catch-up to try again (see `catch_up_cut_short`).
struct CatchUpRetry {
    at: Instant,
    /// Attempts cut short so far in this session.
    attempts: u32,
}

/// Catch-ups cut short in one session before the worker waits for the next.
const CATCH_UP_RETRIES: u32 = 8;
/// The first wait before a catch-up cut short is tried again; it doubles.
const CATCH_UP_BACKOFF: Duration = Duration::from_secs(5);
const CATCH_UP_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Archive pages one catch-up asks for before it stops (and, when that is
/// not the end, tries again later from where it got): a bound on a server
/// that pages on and on.
const CATCH_UP_PAGES: usize = 500;

/// Items of our server asked about when looking for its upload service.
const DISCO_ITEMS_MAX: usize = 32;

/// Older history with one peer being fetched from the archive.
struct OlderFetch {
    peer: BareJid,
    /// The page's messages, oldest first, stored when the page is complete.
    messages: Vec<NewMessage>,
    /// Pages fetched that held only copies of what we have.
    empty_pages: u32,
    /// The oldest message shown: everything fetched goes before it.
    before: Option<chrono::DateTime<Utc>>,
}

/// Pages of copies a fetch of older history skips before it gives up.
const OLDER_EMPTY_PAGES: u32 = 5;

/// What may only happen once the messages received so far are on disk: a
/// receipt tells the sender the message is safe with us, and the archive
/// position tells the next catch-up it need not fetch them again.
#[derive(Default)]
struct AfterFlush {
    receipts: Vec<Message>,
    cursor: Option<String>,
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
}

/// Subscription requests told to the UI per session, at most.
const MAX_ASKERS: usize = 100;

/// A status message is cut to this many characters.
const MAX_STATUS_CHARS: usize = 1024;

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

/// Stanzas written but not yet known to have reached our server.
#[derive(Default)]
struct Unconfirmed {
    /// Our messages (peer, id): the outbox resends them if the session is lost.
    messages: Vec<(BareJid, String)>,
    /// Receipts we owe: sent again after a lost session, or the sender never
    /// learns its message arrived.
    receipts: Vec<Message>,
}

impl Unconfirmed {
    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.receipts.is_empty()
    }
}

/// Messages asked of the server's archive per query page.
const ARCHIVE_PAGE: usize = 100;

/// A catch-up from the server's archive (XEP-0313) in progress.
struct CatchUp {
    /// The `queryid` results must carry; anything else is ignored.
    query_id: String,
    direction: Paging,
    /// Forward only: the time the last result was stored under.
    last_time: Option<chrono::DateTime<Utc>>,
    /// Messages stored (forward) or collected (backward) by this catch-up so far.
    stored: usize,
    /// Backward only: the pages collected so far, newest first. They are stored
    /// oldest first at the end, so that messages the archive stamped with the
    /// same second keep their order.
    pages: Vec<Vec<NewMessage>>,
    /// Backward only: the newest archive id, where the next catch-up resumes.
    newest: Option<String>,
    /// Forward only: messages the archive listed so far. It lists a message
    /// twice when its sender sent it again (an unacknowledged message after a
    /// reconnection); the first listing is where it belongs.
    listed: HashSet<String>,
    /// Results of the page now arriving; a server sending more than
    /// [`ARCHIVE_PAGE`] is not believed (they would all be held in memory).
    page_results: usize,
    /// Whether live messages wait for this catch-up (see `start_catch_up`).
    holds_live: bool,
    /// Forward only: the archive id the page being fetched starts after.
    after: Option<String>,
    /// The time the query starts from: the window of a first sign-in, or
    /// when the archive was last found empty.
    start: Option<chrono::DateTime<Utc>>,
    /// Pages asked for so far (see `CATCH_UP_PAGES`).
    pages_asked: usize,
}

enum Paging {
    /// Everything after the last archive id we stored (normal sign-in).
    Forward,
    /// A first sign-in: newest pages first, back to a bounded window.
    Backward { limit: usize },
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
                // Already offline; said again so that a quitting app need not wait.
                Command::Disconnect => {
                    self.emit(Event::Connection(ConnectionState::Offline(None)));
                }
                Command::AddContact { .. } | Command::AnswerSubscription { .. } => {
                    tracing::info!("contact change ignored while offline");
                }
                Command::SetPresence(p) => self.presence = p,
                // Stored in the outbox: sent on the next sign-in.
                Command::SendMessage { to, body } => {
                    self.accept_message(to, body, false);
                }
                Command::ShareFile { to, url } => {
                    self.accept_message(to, url, true);
                }
                Command::Retry { peer, id } => {
                    self.retry(&peer, &id);
                }
                Command::RequestSlot { id, .. } => {
                    self.emit(Event::Slot {
                        id,
                        result: Err(SlotError::Offline),
                    });
                }
                // The archive is on the server: nothing to fetch offline.
                Command::FetchOlder { peer, .. } => {
                    self.emit(Event::History {
                        peer,
                        records: vec![],
                        more: true,
                    });
                }
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
                    Some(Command::Connect { settings, interactive }) => break End::Idle(Some((*settings, interactive))),
                    Some(Command::RetryNow) => retry.notify_one(),
                    Some(Command::Disconnect) => {
                        if bound.is_some() {
                            // Best effort: the stream closes right after.
                            let _ = stream.send(Box::new(Presence::unavailable().into())).now_or_never();
                        }
                        // Offline is said once the stream is closed (below): a
                        // quitting app waits for it before it exits.
                        signed_off = true;
                        break End::Idle(None);
                    }
                    Some(Command::SetPresence(presence)) => {
                        self.presence = presence;
                        if bound.is_some() {
                            self.outq.push_back(Box::new(self.own_presence().into()));
                        }
                    }
                    Some(command @ (Command::SendMessage { .. } | Command::ShareFile { .. })) => {
                        let accepted = match command {
                            Command::SendMessage { to, body } => self.accept_message(to, body, false),
                            Command::ShareFile { to, url } => self.accept_message(to, url, true),
                            _ => None,
                        };
                        // Behind what waits already; offline, the outbox has it for the next session.
                        if let Some(record) = accepted && bound.is_some() {
                            sendq.push_back(record);
                        }
                    }
                    Some(Command::Retry { peer, id }) => {
                        if let Some(record) = self.retry(&peer, &id) && bound.is_some() {
                            sendq.push_back(record);
                        }
                    }
                    Some(Command::RequestSlot { id, name, size, content_type }) => {
                        if bound.is_some() {
                            for stanza in self.request_slot(id, name, size, content_type, &mut pending) {
                                self.outq.push_back(Box::new(stanza));
                            }
                        } else {
                            self.emit(Event::Slot { id, result: Err(SlotError::Offline) });
                        }
                    }
                    Some(Command::FetchOlder { peer, before }) => {
                        if bound.is_some() {
                            for stanza in self.fetch_older(peer, before, &mut pending) {
                                self.outq.push_back(Box::new(stanza));
                            }
                        } else {
                            self.emit(Event::History { peer, records: vec![], more: true });
                        }
                    }
                    Some(command @ (Command::AddContact { .. } | Command::AnswerSubscription { .. })) => {
                        for stanza in contact_stanzas(command) {
                            self.outq.push_back(Box::new(stanza));
                        }
                    }
                },
            }
            self.settle().await;
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
        // Fetches of older history die with the session: say so.
        for (_, fetch) in self.older.drain() {
            let _ = self.events.send(Event::History {
                peer: fetch.peer,
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

    /// Stores an outgoing message as pending (in the outbox) and shows it.
    /// Nothing is sent that could not be stored: it would be lost on restart.
    fn accept_message(&mut self, to: BareJid, body: String, attachment: bool) -> Option<Record> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut message = NewMessage::outgoing(&self.chat(&to), id.clone(), body, Utc::now());
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
    fn retry(&mut self, peer: &BareJid, id: &str) -> Option<Record> {
        self.update_state(peer, id, Delivery::Pending, None)
    }

    /// Stores a state change and tells the UI; the updated record if there was one.
    fn update_state(
        &mut self,
        peer: &BareJid,
        id: &str,
        state: Delivery,
        error: Option<String>,
    ) -> Option<Record> {
        match self.store.set_state(&self.chat(peer), id, state, error) {
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
    fn send_tracked(&mut self, stream: &StanzaStream, record: &Record) -> bool {
        let Ok(to) = BareJid::new(&record.peer) else {
            tracing::warn!("outbox: invalid address {:?}", record.peer);
            return true;
        };
        let mut message =
            Message::chat(Some(Jid::from(to.clone()))).with_body(Lang::new(), record.body.clone());
        message.id = Some(Id(record.id.clone()));
        message.payloads.push(
            OriginId {
                id: record.id.clone(),
            }
            .into(),
        );
        message.payloads.push(ReceiptRequest.into());
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
        self.unconfirmed.messages.push((to, record.id.clone()));
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
    fn pump(
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
    fn confirm_sent(&mut self, pending: &mut Requests<Pending>) {
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
        // XEP-0115: who we are and what we do, so that others need not ask.
        presence.payloads.push(features::presence_caps().into());
        if !self.presence.status.is_empty() {
            presence.set_status(Lang::new(), self.presence.status.clone());
        }
        presence
    }

    /// Handles one inbound stanza; `false` when the app is gone.
    async fn on_stanza(&mut self, stanza: Stanza, pending: &mut Requests<Pending>) -> bool {
        match stanza {
            Stanza::Presence(presence) => self.on_presence(presence),
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
                alive
            }
        }
    }

    /// Handles a message stanza; returns whether the app is still there, and replies to send.
    fn on_message(&mut self, mut message: Message) -> (bool, Vec<Stanza>) {
        if let Ok(Some(result)) = message.extract_payload::<ArchiveResult>() {
            return self.on_archive_result(message.from.as_ref(), result);
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
            MessageType::Groupchat | MessageType::Headline => return (true, vec![]),
        }
        if peer == self.account {
            return (true, vec![]);
        }
        if let Ok(Some(receipt)) = message.extract_payload::<Receipt>() {
            self.update_state(&peer, &receipt.id, Delivery::Delivered, None);
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
    fn waits_for_catch_up(&self) -> bool {
        self.defer_live
            || matches!(&self.catch_up, Some(c) if c.holds_live && matches!(c.direction, Paging::Forward))
    }

    /// Stores a live message after the newest from its sender and shows it;
    /// whether the app is there, and whether the message is safe (stored now
    /// or before: only then may a receipt go).
    fn store_live(&mut self, mut new: NewMessage, advance: bool) -> (bool, bool) {
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
    fn store_deferred(&mut self) {
        self.defer_live = false;
        for (new, receipt) in std::mem::take(&mut self.deferred) {
            // The catch-up's position is past them: the cursor stays.
            let (_, stored) = self.store_live(new, false);
            if let (true, Some(Stanza::Message(receipt))) = (stored, receipt) {
                self.after_flush.receipts.push(receipt);
            }
        }
    }

    /// A carbon copy from our own server: a message another of our devices sent or got.
    fn on_carbon(&mut self, mut inner: Message, sent_by_us: bool) -> bool {
        if !matches!(inner.type_, MessageType::Chat | MessageType::Normal) {
            return true;
        }
        let peer = match (sent_by_us, &inner.to, &inner.from) {
            (true, Some(to), _) => to.to_bare(),
            (false, _, Some(from)) => from.to_bare(),
            _ => return true,
        };
        if !sent_by_us && let Ok(Some(receipt)) = inner.extract_payload::<Receipt>() {
            self.update_state(&peer, &receipt.id, Delivery::Delivered, None);
        }
        let Some((body, encryption)) = content(&inner) else {
            return true;
        };
        let archive_id = self.archive_id(&mut inner);
        let time = message_time(&mut inner);
        let mut new = stored_form(&self.chat(&peer), &mut inner, body, time, sent_by_us);
        new.encryption = encryption;
        new.archive_id = archive_id;
        if !sent_by_us {
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

    /// After the roster: initial presence, then catch-up from the archive.
    ///
    /// The order matters. Once the server has our presence it delivers new
    /// messages live; what it archived before (including messages sent while
    /// we had signed in but were not yet available, which Prosody does not
    /// always deliver later) comes from the catch-up query that follows.
    fn announce(&mut self, pending: &mut Requests<Pending>) -> Vec<Stanza> {
        let mut stanzas = vec![self.own_presence().into()];
        stanzas.extend(self.start_catch_up(pending, true));
        // XEP-0363 §2: the upload service is one of our server's items.
        let domain = Jid::from(self.account.domain().to_owned());
        let id = pending.add(
            Some(domain.clone()),
            Pending::DiscoItems,
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        let query = Iq::from_get(
            id,
            DiscoItemsQuery {
                node: None,
                rsm: None,
            },
        )
        .with_to(domain);
        stanzas.push(query.into());
        stanzas
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
    fn in_order(
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
    fn advance_cursor(&mut self, archive_id: Option<&str>) {
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
    async fn settle(&mut self) {
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

    /// Starts catching up from the archive: after our last archive id, or, on a
    /// first sign-in, the newest messages back to the configured window.
    /// `holds_live`: live messages wait until it ends (the first catch-up of a
    /// session; a retry after one was cut short lets them through).
    fn start_catch_up(&mut self, pending: &mut Requests<Pending>, holds_live: bool) -> Vec<Stanza> {
        let position = match self.store.archive_position(self.account.as_str()) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot read the archive position: {e}");
                self.store_deferred();
                return vec![];
            }
        };
        // A window reaching past chrono's range (a hand-edited config) starts at its edge.
        let window_start = Utc::now()
            .checked_sub_signed(chrono::Duration::days(i64::from(self.window.days)))
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        let (paging, after, start) = match position {
            Some(ArchivePosition::After(id)) => (Paging::Forward, Some(id), None),
            Some(ArchivePosition::Since(time)) => (Paging::Forward, None, Some(time)),
            None => (
                Paging::Backward {
                    limit: self.window.max_messages,
                },
                None,
                Some(window_start),
            ),
        };
        let catch_up = CatchUp {
            query_id: requests::new_id(),
            direction: paging,
            last_time: None,
            stored: 0,
            pages: vec![Vec::new()],
            newest: None,
            listed: HashSet::new(),
            page_results: 0,
            holds_live,
            after: after.clone(),
            start,
            pages_asked: 1,
        };
        let query = match &catch_up.direction {
            Paging::Forward => self.archive_query(&catch_up.query_id, after, None, start),
            Paging::Backward { .. } => {
                self.archive_query(&catch_up.query_id, None, Some(String::new()), start)
            }
        };
        tracing::debug!("archive catch-up starts ({})", catch_up.query_id);
        self.catch_up = Some(catch_up);
        self.archive_iq(query, pending)
    }

    fn archive_query(
        &self,
        query_id: &str,
        after: Option<String>,
        before: Option<String>,
        start: Option<chrono::DateTime<Utc>>,
    ) -> ArchiveQuery {
        let form = start.map(|start| {
            DataForm::new(
                DataFormType::Submit,
                ns::MAM,
                vec![Field::text_single(
                    "start",
                    &start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )],
            )
        });
        ArchiveQuery {
            queryid: Some(QueryId(query_id.to_string())),
            node: None,
            form,
            set: Some(SetQuery {
                max: Some(ARCHIVE_PAGE),
                after,
                before,
                index: None,
            }),
            flip_page: false,
        }
    }

    fn archive_iq(&mut self, query: ArchiveQuery, pending: &mut Requests<Pending>) -> Vec<Stanza> {
        let id = pending.add(None, Pending::Archive, Some(REPLY_TIMEOUT), Instant::now());
        vec![Iq::from_set(id, query).into()]
    }

    /// One message from the archive (XEP-0313 §4.2).
    fn on_archive_result(
        &mut self,
        from: Option<&Jid>,
        result: ArchiveResult,
    ) -> (bool, Vec<Stanza>) {
        // Results come from our own archive, for the query we are running.
        if from.is_some_and(|f| f.as_str() != self.account.as_str()) {
            tracing::warn!("ignoring archive results from {from:?}");
            return (true, vec![]);
        }
        if let Some(query) = &result.queryid
            && self.older.contains_key(&query.0)
        {
            self.on_older_result(result);
            return (true, vec![]);
        }
        let Some(catch_up) = &mut self.catch_up else {
            tracing::warn!("ignoring archive results with no query running");
            return (true, vec![]);
        };
        if result.queryid.as_ref().map(|q| q.0.as_str()) != Some(catch_up.query_id.as_str()) {
            tracing::warn!(
                "ignoring archive results for another query ({:?})",
                result.queryid
            );
            return (true, vec![]);
        }
        catch_up.page_results += 1;
        if catch_up.page_results > ARCHIVE_PAGE {
            if catch_up.page_results == ARCHIVE_PAGE + 1 {
                tracing::warn!("the archive sent more than the {ARCHIVE_PAGE} results asked for");
            }
            return (true, vec![]);
        }
        let backfill = matches!(catch_up.direction, Paging::Backward { .. });
        let mut inner = result.forwarded.message;
        let Some((peer, sent_by_us)) = self.archived_with(&inner) else {
            return (true, vec![]);
        };
        // Prosody archives receipts too: one that reached us while we were
        // away (or went to a resource of ours that no longer existed) is here.
        if !sent_by_us && let Ok(Some(receipt)) = inner.extract_payload::<Receipt>() {
            self.update_state(&peer, &receipt.id, Delivery::Delivered, None);
        }
        let Some((body, encryption)) = content(&inner) else {
            return (true, vec![]);
        };
        let mut time = match &result.forwarded.delay {
            Some(delay) => stamp_time(&delay.stamp),
            None => message_time(&mut inner),
        };
        if !sent_by_us {
            let stamped = time;
            time = self.in_order(&peer, time, true);
            tracing::trace!(
                "archive stamp {stamped} placed at {time} (session mark {:?})",
                self.session
            );
        }
        // Forward, the archive's order is the true one, across directions too
        // (a reply from our phone in the same second as what it answered).
        if let Some(catch_up) = &mut self.catch_up
            && matches!(catch_up.direction, Paging::Forward)
        {
            if let Some(last) = catch_up.last_time {
                time = time.max(last);
            }
            catch_up.last_time = Some(time);
        }
        let receipt = receipt_for(&mut inner);
        let mut new = stored_form(&self.chat(&peer), &mut inner, body, time, sent_by_us);
        tracing::trace!("archived message {} from {peer} at {time}", new.id);
        new.encryption = encryption;
        new.archive_id = Some(result.id);
        // Back-fill of a first sign-in is history, not news.
        new.unread &= !backfill;
        if backfill {
            if let Some(catch_up) = &mut self.catch_up {
                catch_up.stored += 1;
                if let Some(page) = catch_up.pages.last_mut() {
                    page.push(new);
                }
            }
            return (true, vec![]);
        }
        // A moved copy goes just after: same-time records keep storing order,
        // and it was stored before what the archive listed ahead of it.
        let (copy_id, copy_time) = (new.id.clone(), new.time + ARCHIVED_STEP);
        let listed_before = match &mut self.catch_up {
            Some(catch_up) => !catch_up.listed.insert(copy_id.clone()),
            None => false,
        };
        let alive = match self.store.insert(new) {
            Ok(Some(record)) => {
                if let Some(catch_up) = &mut self.catch_up {
                    catch_up.stored += 1;
                }
                self.emit(Event::Messages(reported([record])))
            }
            // A copy of what came live this session: the archive's order says
            // where it goes, after what the archive listed before it.
            Ok(None) if listed_before => true,
            Ok(None) if !sent_by_us => match self.session.map(|mark| {
                self.store
                    .move_after(&self.chat(&peer), &copy_id, copy_time, mark)
            }) {
                Some(Ok(Some((record, moved)))) => {
                    // What the archive lists next goes after this copy, wherever it is.
                    if let Some(catch_up) = &mut self.catch_up {
                        catch_up.last_time = catch_up.last_time.max(Some(record.time));
                    }
                    if moved {
                        tracing::trace!(
                            "moved {copy_id} from {peer} to {copy_time} (archive order)"
                        );
                        self.emit_updated(record)
                    } else {
                        true
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!("cannot reorder a message: {e}");
                    true
                }
                _ => true,
            },
            Ok(None) => true,
            Err(e) => {
                tracing::error!("could not store an archived message: {e}");
                return (true, vec![]);
            }
        };
        // A message we missed live has now arrived: say so, as we would have then.
        let replies = match receipt {
            Some(receipt) if !sent_by_us && self.contacts.contains(&peer) => vec![receipt],
            _ => vec![],
        };
        (alive, replies)
    }

    /// Our server's items: ask each what it is, looking for file sharing.
    fn on_disco_items(
        &mut self,
        items: Option<DiscoItemsResult>,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        let items = items.map(|r| r.items).unwrap_or_default();
        let mut stanzas = Vec::new();
        for item in items
            .into_iter()
            .filter(|i| i.node.is_none())
            .take(DISCO_ITEMS_MAX)
        {
            let id = pending.add(
                Some(item.jid.clone()),
                Pending::DiscoInfo(item.jid.clone()),
                Some(REPLY_TIMEOUT),
                Instant::now(),
            );
            let query = Iq::from_get(id, DiscoInfoQuery { node: None }).with_to(item.jid);
            stanzas.push(query.into());
        }
        self.discovering = stanzas.len();
        if stanzas.is_empty() {
            return (self.emit(Event::UploadService(None)), vec![]);
        }
        (true, stanzas)
    }

    /// One item's identity: the first that does XEP-0363 is our upload service.
    fn on_disco_info(&mut self, jid: Jid, info: Option<DiscoInfoResult>) -> bool {
        self.discovering = self.discovering.saturating_sub(1);
        if self.upload.is_some() {
            return true;
        }
        if let Some(info) = info.filter(|i| i.features.contains(ns::HTTP_UPLOAD)) {
            // §2: the limit, if any, is in a form of the XEP's namespace.
            let max_size = info
                .extensions
                .iter()
                .filter(|form| form.form_type() == Some(ns::HTTP_UPLOAD))
                .flat_map(|form| form.fields.iter())
                .find(|field| field.var.as_deref() == Some("max-file-size"))
                .and_then(|field| field.values.first())
                .and_then(|value| value.trim().parse::<u64>().ok());
            match max_size {
                Some(max) => tracing::info!("file sharing at {jid}, up to {max} bytes"),
                None => tracing::info!("file sharing at {jid}, no size limit given"),
            }
            let service = UploadService { jid, max_size };
            self.upload = Some(service.clone());
            return self.emit(Event::UploadService(Some(service)));
        }
        if self.discovering == 0 {
            tracing::info!("the server offers no file sharing");
            return self.emit(Event::UploadService(None));
        }
        true
    }

    /// Asks the upload service for a slot; refuses at once what it could not take.
    fn request_slot(
        &mut self,
        id: String,
        name: String,
        size: u64,
        content_type: String,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let Some(service) = self.upload.clone() else {
            self.emit(Event::Slot {
                id,
                result: Err(SlotError::NoService),
            });
            return vec![];
        };
        if let Some(max) = service.max_size
            && size > max
        {
            self.emit(Event::Slot {
                id,
                result: Err(SlotError::TooLarge { max }),
            });
            return vec![];
        }
        let iq_id = pending.add(
            Some(service.jid.clone()),
            Pending::Slot(id),
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        let request = SlotRequest {
            filename: crate::file_name::safe_file_name(&name),
            size,
            content_type: Some(content_type),
        };
        vec![Iq::from_get(iq_id, request).with_to(service.jid).into()]
    }

    /// The service's slot: only HTTPS places are used (XEP-0363 §11).
    fn on_slot(&mut self, id: String, slot: Option<SlotResult>) -> bool {
        let result = match slot {
            Some(slot)
                if slot.put.url.starts_with("https://") && slot.get.url.starts_with("https://") =>
            {
                Ok(super::Slot {
                    put: slot.put.url,
                    get: slot.get.url,
                    headers: slot
                        .put
                        .headers
                        .into_iter()
                        .map(|h| (h.name.as_str().to_owned(), h.value))
                        .collect(),
                })
            }
            Some(_) => Err(SlotError::Refused("the slot is not https".into())),
            None => Err(SlotError::Refused("an unreadable slot".into())),
        };
        self.emit(Event::Slot { id, result })
    }

    /// Who an archived message was exchanged with, and whether we sent it;
    /// `None` for what is not a one-to-one chat with someone else.
    fn archived_with(&self, inner: &Message) -> Option<(BareJid, bool)> {
        if !matches!(inner.type_, MessageType::Chat | MessageType::Normal) {
            return None;
        }
        let sent_by_us = inner
            .from
            .as_ref()
            .is_some_and(|f| f.to_bare() == self.account);
        let peer = match (sent_by_us, &inner.to, &inner.from) {
            (true, Some(to), _) => to.to_bare(),
            (false, _, Some(from)) => from.to_bare(),
            _ => return None,
        };
        (peer != self.account).then_some((peer, sent_by_us))
    }

    /// Asks the archive for the page of history with `peer` before `before`.
    ///
    /// From an archive id, RSM pages back from exactly there; from a time only
    /// (a message we sent from here has no id in our archive) the page ends at
    /// that second, and copies of what we hold are dropped on storing.
    fn fetch_older(
        &mut self,
        peer: BareJid,
        before: Option<Oldest>,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        if self.older.values().any(|f| f.peer == peer) {
            return vec![]; // one at a time; the running one answers
        }
        let query_id = requests::new_id();
        let shown_from = before.as_ref().map(|b| b.time);
        let (before_id, end) = match before {
            Some(Oldest {
                archive_id: Some(id),
                ..
            }) => (id, None),
            // The end is inclusive but whole seconds: round up, never miss
            // what shares the oldest message's second (copies are dropped).
            Some(Oldest { time, .. }) => (String::new(), Some(time + chrono::Duration::seconds(1))),
            None => (String::new(), None),
        };
        tracing::debug!("fetching older history with {peer} ({query_id})");
        let query = older_query(&query_id, &peer, before_id, end);
        self.older.insert(
            query_id.clone(),
            OlderFetch {
                peer,
                messages: Vec::new(),
                empty_pages: 0,
                before: shown_from,
            },
        );
        self.older_iq(query_id, query, pending)
    }

    fn older_iq(
        &mut self,
        query_id: String,
        query: ArchiveQuery,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let id = pending.add(
            None,
            Pending::Older(query_id),
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        vec![Iq::from_set(id, query).into()]
    }

    /// One message of older history: kept with its fetch until the page ends.
    fn on_older_result(&mut self, result: ArchiveResult) {
        let Some(fetch) = result.queryid.as_ref().and_then(|q| self.older.get(&q.0)) else {
            return;
        };
        let expected = fetch.peer.clone();
        let mut inner = result.forwarded.message;
        let Some((peer, sent_by_us)) = self.archived_with(&inner) else {
            return;
        };
        // We asked for one peer; the archive must not slip in another.
        if peer != expected {
            tracing::warn!("ignoring older history with {peer} in a fetch for {expected}");
            return;
        }
        let Some((body, encryption)) = content(&inner) else {
            return;
        };
        // History: its stamps are the order; nothing here is news.
        let time = match &result.forwarded.delay {
            Some(delay) => stamp_time(&delay.stamp),
            None => message_time(&mut inner),
        };
        let mut new = stored_form(&self.chat(&peer), &mut inner, body, time, sent_by_us);
        new.encryption = encryption;
        new.archive_id = Some(result.id);
        new.unread = false;
        if let Some(fetch) = result.queryid.and_then(|q| self.older.get_mut(&q.0)) {
            // We asked for a page; a server sending more is not believed.
            if fetch.messages.len() < ARCHIVE_PAGE {
                fetch.messages.push(new);
            }
        }
    }

    /// A page of older history ended (or failed): store it and tell the UI.
    ///
    /// A page of nothing but copies (paging from a second that many messages
    /// share) is skipped: the next page back is asked for at once.
    fn on_older_page(
        &mut self,
        query_id: &str,
        fin: Option<Fin>,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        let Some(mut fetch) = self.older.remove(query_id) else {
            return (true, vec![]);
        };
        let mut records = Vec::new();
        let messages = std::mem::take(&mut fetch.messages);
        let count = messages.len();
        for (i, mut message) in messages.into_iter().enumerate() {
            // Archive stamps have whole seconds: older messages that share a
            // second with the oldest shown would be stored after it. They all
            // go before it, in the archive's order.
            if let Some(before) = fetch.before {
                let gap = i64::try_from(count - i).unwrap_or(0);
                message.time = message
                    .time
                    .min(before - chrono::Duration::microseconds(gap));
            }
            match self.store.insert(message) {
                Ok(Some(record)) => records.push(record),
                Ok(None) => {}
                Err(e) => tracing::error!("could not store older history: {e}"),
            }
        }
        let more = fin.as_ref().is_none_or(|f| !f.complete);
        if records.is_empty()
            && more
            && fetch.empty_pages < OLDER_EMPTY_PAGES
            && let Some(first) = fin.and_then(|f| f.set.first)
        {
            fetch.empty_pages += 1;
            let query = older_query(query_id, &fetch.peer, first.item, None);
            self.older.insert(query_id.to_owned(), fetch);
            return (true, self.older_iq(query_id.to_owned(), query, pending));
        }
        tracing::debug!(
            "older history with {}: {} new, more: {more}",
            fetch.peer,
            records.len()
        );
        let alive = self.emit(Event::History {
            peer: fetch.peer,
            records: reported(records),
            more,
        });
        (alive, vec![])
    }

    /// The end of an archive page: remember how far we got, ask for the next one.
    fn on_archive_page(
        &mut self,
        fin: Option<Fin>,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let Some(mut catch_up) = self.catch_up.take() else {
            return vec![];
        };
        let Some(fin) = fin else {
            self.catch_up_cut_short(catch_up, "an archive page without <fin/>");
            return vec![];
        };
        // What it sent beyond the page was dropped: the page's end is not where we are.
        if catch_up.page_results > ARCHIVE_PAGE {
            self.catch_up_cut_short(catch_up, "an archive page larger than asked for");
            return vec![];
        }
        catch_up.page_results = 0;
        // The page's messages arrived (and were stored) before its <fin/>.
        let next = match catch_up.direction {
            Paging::Forward => {
                if let Some(last) = &fin.set.last {
                    self.after_flush.cursor = Some(last.clone());
                }
                match (fin.complete, fin.set.last) {
                    (true, _) => None,
                    // A page that ends where it began would be asked for again forever.
                    (false, Some(last)) if catch_up.after.as_ref() != Some(&last) => {
                        if catch_up.pages_asked >= CATCH_UP_PAGES {
                            self.catch_up_cut_short(catch_up, "too many archive pages at once");
                            return vec![];
                        }
                        catch_up.after = Some(last.clone());
                        catch_up.pages_asked += 1;
                        Some(self.archive_query(&catch_up.query_id, Some(last), None, None))
                    }
                    (false, _) => {
                        self.catch_up_cut_short(catch_up, "the archive's pages do not advance");
                        return vec![];
                    }
                }
            }
            Paging::Backward { limit } => {
                // The first page back is the newest: catch-up resumes after it next time.
                if catch_up.newest.is_none() {
                    catch_up.newest = fin.set.last.clone();
                }
                catch_up.pages.push(Vec::new());
                match (fin.complete, fin.set.first) {
                    (false, Some(first))
                        if catch_up.stored < limit && catch_up.pages_asked < CATCH_UP_PAGES =>
                    {
                        catch_up.pages_asked += 1;
                        Some(self.archive_query(
                            &catch_up.query_id,
                            None,
                            Some(first.item),
                            catch_up.start,
                        ))
                    }
                    _ => None,
                }
            }
        };
        match next {
            Some(query) => {
                self.catch_up = Some(catch_up);
                self.archive_iq(query, pending)
            }
            None => {
                tracing::info!("archive catch-up done ({} messages)", catch_up.stored);
                self.synced = true;
                self.catch_up_retry = None;
                self.store_backfill(catch_up);
                self.store_deferred();
                vec![]
            }
        }
    }

    /// A catch-up that ended before the archive's end (an error, a page
    /// without `<fin/>`, no answer, pages that do not advance). The position
    /// stays after the last page stored, live messages are let through (shown,
    /// but not moving the position), and the catch-up is tried again later.
    fn catch_up_cut_short(&mut self, catch_up: CatchUp, why: &str) {
        let attempts = self.catch_up_retry.as_ref().map_or(0, |r| r.attempts) + 1;
        if attempts > CATCH_UP_RETRIES {
            tracing::warn!("archive catch-up cut short ({why}); given up until the next session");
            self.catch_up_retry = None;
        } else {
            let wait = CATCH_UP_BACKOFF
                .saturating_mul(1 << (attempts - 1).min(6))
                .min(CATCH_UP_BACKOFF_MAX);
            tracing::warn!(
                "archive catch-up cut short ({why}); trying again in {} s",
                wait.as_secs()
            );
            self.catch_up_retry = Some(CatchUpRetry {
                at: Instant::now() + wait,
                attempts,
            });
        }
        self.store_backfill(catch_up);
        self.store_deferred();
    }

    /// Starts the catch-up again if one was cut short and its time has come.
    fn retry_catch_up(&mut self, pending: &mut Requests<Pending>, now: Instant) -> Vec<Stanza> {
        match &self.catch_up_retry {
            Some(retry) if retry.at <= now && self.catch_up.is_none() => {
                tracing::info!("archive catch-up: attempt {}", retry.attempts + 1);
                // The attempt count stays until a catch-up completes.
                if let Some(retry) = &mut self.catch_up_retry {
                    retry.at = now + CATCH_UP_BACKOFF_MAX;
                }
                self.start_catch_up(pending, false)
            }
            _ => vec![],
        }
    }

    /// Stores a first sign-in's history, oldest page first; once it is on
    /// disk, the next catch-up resumes after the newest of it. An archive that
    /// had nothing in the window: the next catch-up takes all since then.
    fn store_backfill(&mut self, catch_up: CatchUp) {
        if let Paging::Backward { .. } = catch_up.direction {
            match (catch_up.newest, catch_up.start) {
                (Some(newest), _) => self.after_flush.cursor = Some(newest),
                // Only a complete answer proves the window empty.
                (None, Some(start)) if self.synced => {
                    if let Err(e) = self.store.set_archive_since(self.account.as_str(), start) {
                        tracing::warn!("cannot store the archive position: {e}");
                    }
                }
                _ => {}
            }
        }
        let mut shown = Vec::new();
        for message in catch_up.pages.into_iter().rev().flatten() {
            match self.store.insert(message) {
                Ok(Some(record)) => shown.push(record),
                Ok(None) => {}
                Err(e) => tracing::error!("could not store an archived message: {e}"),
            }
        }
        if !shown.is_empty() {
            self.emit(Event::Backfill(reported(shown)));
        }
    }

    /// The archive refused a query: an unknown position means our cursor
    /// expired (start again from the window); anything else, try again later.
    fn on_archive_error(
        &mut self,
        error: &StanzaError,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let Some(catch_up) = self.catch_up.take() else {
            return vec![];
        };
        let forward = matches!(catch_up.direction, Paging::Forward);
        if forward
            && catch_up.after.is_some()
            && catch_up.pages_asked == 1
            && error.defined_condition == DefinedCondition::ItemNotFound
        {
            tracing::warn!("the archive no longer knows our position");
            self.store_backfill(catch_up);
            self.store_deferred();
            return self.restart_from_window(pending);
        }
        let why = format!("the archive refused a page: {:?}", error.defined_condition);
        self.catch_up_cut_short(catch_up, &why);
        vec![]
    }

    /// Forgets the archive position and fetches the first-sign-in window instead.
    fn restart_from_window(&mut self, pending: &mut Requests<Pending>) -> Vec<Stanza> {
        self.after_flush.cursor = None;
        if let Err(e) = self.store.clear_archive_cursor(self.account.as_str()) {
            tracing::warn!("cannot reset the archive position: {e}");
            return vec![];
        }
        self.start_catch_up(pending, false)
    }

    /// An error reply to one of our messages: mark it failed, with the reason.
    fn on_error_reply(&mut self, peer: &BareJid, message: &Message) -> bool {
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
        self.update_state(peer, &id.0, Delivery::Failed, Some(reason));
        true
    }

    /// The archive id our own server stamped on a message (XEP-0359); ids
    /// claimed by anyone else are ignored, as the XEP requires.
    fn archive_id(&self, message: &mut Message) -> Option<String> {
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
                // Anyone can ask, as often as they like: each asker reaches
                // the UI once a session, and at most MAX_ASKERS of them.
                if self.askers.contains(&from) {
                    return true;
                }
                if self.askers.len() >= MAX_ASKERS {
                    tracing::warn!(
                        "ignoring a subscription request from {from}: {MAX_ASKERS} are waiting already"
                    );
                    return true;
                }
                self.askers.insert(from.clone());
                return self.emit(Event::SubscriptionRequest(from));
            }
            other => {
                tracing::debug!("presence of type {other:?} from {from} not handled yet");
                return true;
            }
        };
        // Presence matters for contacts and our own other devices; what a
        // stranger sends (or a flood of made-up resources) is not kept.
        let bare = from.to_bare();
        if bare != self.account && !self.contacts.contains(&bare) {
            tracing::debug!("ignoring presence from {from}, not a contact");
            return true;
        }
        let status = presence
            .statuses
            .values()
            .next()
            .map(|s| s.chars().take(MAX_STATUS_CHARS).collect());
        self.emit(Event::Presence {
            from,
            availability,
            status,
        })
    }

    /// Returns whether the app is still there, and the stanzas to send back.
    fn on_iq(&mut self, iq: Iq, pending: &mut Requests<Pending>) -> (bool, Vec<Stanza>) {
        let (id, from, answer) = match iq {
            Iq::Result {
                id, payload, from, ..
            } => (id, from, Ok(payload)),
            Iq::Error {
                id, error, from, ..
            } => (id, from, Err(error)),
            Iq::Set {
                from, id, payload, ..
            } => return self.on_iq_set(from, id, payload),
            Iq::Get {
                from, id, payload, ..
            } => return on_iq_get(from, id, payload, self.share_os),
        };
        // RFC 6120 §8.1.2.1: an answer comes from whom we asked. Anyone who
        // sees our presence can send us replies with made-up ids; one from the
        // wrong sender leaves the question waiting for its real answer.
        let request = match pending.answer(&id, from.as_ref()) {
            Reply::Answer(request) => request,
            Reply::Forged => {
                tracing::warn!("ignoring an answer from {from:?} to a question not put to it");
                return (true, vec![]);
            }
            Reply::Unknown => {
                tracing::debug!("ignoring an answer from {from:?} to no question of ours");
                return (true, vec![]);
            }
        };
        match answer {
            Ok(payload) => self.on_answer(request, payload, pending),
            Err(error) => self.on_refusal(request, &error, pending),
        }
    }

    /// The answer to one of our questions.
    fn on_answer(
        &mut self,
        request: Pending,
        payload: Option<tokio_xmpp::minidom::Element>,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        match (request, payload) {
            (Pending::Roster, Some(payload)) => {
                let alive = match Roster::try_from(payload) {
                    Ok(roster) => {
                        self.contacts = roster.items.iter().map(|i| i.jid.clone()).collect();
                        self.emit(Event::Roster(
                            roster.items.into_iter().map(contact).collect(),
                        ))
                    }
                    Err(e) => {
                        tracing::warn!("unreadable roster: {e}");
                        true
                    }
                };
                (alive, self.announce(pending))
            }
            (Pending::Roster, None) => (true, self.announce(pending)),
            (Pending::Barrier(sent), _) => {
                for (peer, id) in sent.messages {
                    self.update_state(&peer, &id, Delivery::Sent, None);
                }
                (true, vec![])
            }
            (Pending::Archive, payload) => {
                let fin = payload.and_then(|p| Fin::try_from(p).ok());
                (true, self.on_archive_page(fin, pending))
            }
            (Pending::Probe, _) => {
                tracing::info!("the connection survived the suspend");
                (true, vec![])
            }
            (Pending::Older(query_id), payload) => {
                let fin = payload.and_then(|p| Fin::try_from(p).ok());
                self.on_older_page(&query_id, fin, pending)
            }
            (Pending::DiscoItems, payload) => {
                let items = payload.and_then(|p| DiscoItemsResult::try_from(p).ok());
                self.on_disco_items(items, pending)
            }
            (Pending::DiscoInfo(asked), payload) => {
                let info = payload.and_then(|p| DiscoInfoResult::try_from(p).ok());
                (self.on_disco_info(asked, info), vec![])
            }
            (Pending::Slot(id), payload) => {
                let slot = payload.and_then(|p| SlotResult::try_from(p).ok());
                (self.on_slot(id, slot), vec![])
            }
            (Pending::OwnFeatures, payload) => {
                let info = payload.and_then(|p| DiscoInfoResult::try_from(p).ok());
                self.stanza_ids = info.is_some_and(|i| i.features.iter().any(|f| f == ns::SID));
                tracing::debug!("the server stamps stanza-ids: {}", self.stanza_ids);
                (true, vec![])
            }
        }
    }

    /// An error answer to one of our questions.
    fn on_refusal(
        &mut self,
        request: Pending,
        error: &StanzaError,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        match request {
            Pending::Roster => {
                tracing::warn!(
                    "the server refused the roster: {:?}",
                    error.defined_condition
                );
                (true, self.announce(pending))
            }
            Pending::Archive => (true, self.on_archive_error(error, pending)),
            // Any answer proves the link is alive.
            Pending::Probe => (true, vec![]),
            Pending::DiscoItems => (self.on_disco_items(None, pending).0, vec![]),
            Pending::DiscoInfo(asked) => (self.on_disco_info(asked, None), vec![]),
            Pending::Slot(id) => {
                let reason = error
                    .texts
                    .values()
                    .next()
                    .filter(|t| !t.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("{:?}", error.defined_condition));
                let alive = self.emit(Event::Slot {
                    id,
                    result: Err(SlotError::Refused(reason)),
                });
                (alive, vec![])
            }
            Pending::Older(query_id) => {
                tracing::warn!(
                    "the archive refused older history: {:?}",
                    error.defined_condition
                );
                self.on_older_page(&query_id, None, pending)
            }
            // Even an error answer comes after the server took the messages.
            Pending::Barrier(sent) => {
                for (peer, id) in sent.messages {
                    self.update_state(&peer, &id, Delivery::Sent, None);
                }
                (true, vec![])
            }
            Pending::OwnFeatures => {
                self.stanza_ids = false;
                (true, vec![])
            }
        }
    }

    /// A question that got no answer in time: as if refused, so that nothing
    /// waits for it forever.
    fn on_no_answer(
        &mut self,
        request: Pending,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        match request {
            Pending::Roster => {
                tracing::warn!("the server did not send the roster");
                (true, self.announce(pending))
            }
            Pending::Archive => {
                let stanzas = match self.catch_up.take() {
                    Some(catch_up) => {
                        self.catch_up_cut_short(catch_up, "no answer from the archive");
                        vec![]
                    }
                    None => vec![],
                };
                (true, stanzas)
            }
            Pending::Older(query_id) => {
                tracing::warn!("the archive did not answer for older history");
                self.on_older_page(&query_id, None, pending)
            }
            Pending::DiscoItems => (self.on_disco_items(None, pending).0, vec![]),
            Pending::DiscoInfo(asked) => (self.on_disco_info(asked, None), vec![]),
            Pending::Slot(id) => {
                let alive = self.emit(Event::Slot {
                    id,
                    result: Err(SlotError::Refused(
                        "the upload service did not answer".into(),
                    )),
                });
                (alive, vec![])
            }
            Pending::OwnFeatures => (true, vec![]),
            // Never given a deadline: the link's own liveness check covers them.
            Pending::Barrier(_) | Pending::Probe => (true, vec![]),
        }
    }

    /// A request set to us: only roster pushes are accepted.
    fn on_iq_set(
        &mut self,
        from: Option<Jid>,
        id: String,
        payload: tokio_xmpp::minidom::Element,
    ) -> (bool, Vec<Stanza>) {
        if !payload.is("query", ns::ROSTER) {
            return (
                true,
                vec![error_reply(from, id, DefinedCondition::ServiceUnavailable)],
            );
        }
        // RFC 6121 §2.1.6: a roster push comes from our server, which sends it
        // without `from` or from our bare JID. Anyone else, our other devices
        // included (they change the roster through the server, which then
        // pushes to every session), is answered as if we did not understand.
        if from
            .as_ref()
            .is_some_and(|f| f.as_str() != self.account.as_str())
        {
            tracing::warn!("ignoring a roster push from {from:?}");
            return (
                true,
                vec![error_reply(from, id, DefinedCondition::ServiceUnavailable)],
            );
        }
        let mut alive = true;
        if let Ok(roster) = Roster::try_from(payload) {
            for item in roster.items {
                if item.subscription == RosterSubscription::Remove {
                    self.contacts.remove(&item.jid);
                } else {
                    self.contacts.insert(item.jid.clone());
                }
                alive &= self.emit(Event::RosterPush(contact(item)));
            }
        }
        let reply = Iq::Result {
            from: None,
            to: from,
            id,
            payload: None,
        };
        (alive, vec![reply.into()])
    }
}

/// A request for information about us: ping, service discovery (also on our
/// caps node), software version.
fn on_iq_get(
    from: Option<Jid>,
    id: String,
    payload: tokio_xmpp::minidom::Element,
    share_os: bool,
) -> (bool, Vec<Stanza>) {
    if payload.is("ping", ns::PING) {
        let reply = Iq::Result {
            from: None,
            to: from,
            id,
            payload: None,
        };
        return (true, vec![reply.into()]);
    }
    if payload.is("query", ns::DISCO_INFO) {
        let node = DiscoInfoQuery::try_from(payload).ok().and_then(|q| q.node);
        if !features::is_our_node(node.as_deref()) {
            return (
                true,
                vec![error_reply(from, id, DefinedCondition::ItemNotFound)],
            );
        }
        let reply = Iq::from_result(id, Some(features::disco_info(node)));
        return (true, vec![with_to(reply, from).into()]);
    }
    if payload.is("query", ns::VERSION) {
        let reply = Iq::from_result(id, Some(features::version(share_os)));
        return (true, vec![with_to(reply, from).into()]);
    }
    (
        true,
        vec![error_reply(from, id, DefinedCondition::ServiceUnavailable)],
    )
}

/// The stanzas for a contact-list command (RFC 6121 §2.3, §3.1, §3.4).
fn contact_stanzas(command: Command) -> Vec<Stanza> {
    let roster_set = |item: RosterItem| -> Stanza {
        Iq::from_set(
            requests::new_id(),
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

/// A query for the page of history with `peer` before the archive id `before`
/// (empty: the newest), up to the second `end` when given (XEP-0313 §4.1.1).
fn older_query(
    query_id: &str,
    peer: &BareJid,
    before: String,
    end: Option<chrono::DateTime<Utc>>,
) -> ArchiveQuery {
    let mut fields = vec![Field::new("with", FieldType::JidSingle).with_value(peer.as_str())];
    if let Some(end) = end {
        fields.push(Field::text_single(
            "end",
            &end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ));
    }
    ArchiveQuery {
        queryid: Some(QueryId(query_id.to_owned())),
        node: None,
        form: Some(DataForm::new(DataFormType::Submit, ns::MAM, fields)),
        set: Some(SetQuery {
            max: Some(ARCHIVE_PAGE),
            after: None,
            before: Some(before),
            index: None,
        }),
        flip_page: false,
    }
}

/// A copy of a stanza to offer the stream (`Stanza` is not `Clone`; its kinds are).
fn copy(stanza: &Stanza) -> Stanza {
    match stanza {
        Stanza::Message(m) => Stanza::Message(m.clone()),
        Stanza::Presence(p) => Stanza::Presence(p.clone()),
        Stanza::Iq(i) => Stanza::Iq(i.clone()),
    }
}

/// The receipt (XEP-0184) a message asks for, addressed to its sender.
fn receipt_for(message: &mut Message) -> Option<Stanza> {
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
fn message_time(message: &mut Message) -> chrono::DateTime<Utc> {
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
fn stamp_time(stamp: &tokio_xmpp::parsers::date::DateTime) -> chrono::DateTime<Utc> {
    stamp.0.with_timezone(&Utc).min(Utc::now())
}

/// A message's text, and the end-to-end encryption it came in if Tern cannot
/// read it (the text is then the sender's fallback for such clients, or empty);
/// `None` for what says nothing (chat states, receipts, OMEMO key transport).
fn content(message: &Message) -> Option<(String, Option<Encryption>)> {
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
fn is_attachment(message: &mut Message, body: &str) -> bool {
    matches!(message.extract_payload::<Oob>(), Ok(Some(oob)) if oob.url == body.trim())
}

/// What the UI is told of stored records: the messages they hold (a damaged
/// record, which cannot name its conversation, is left out and logged).
fn reported(records: impl IntoIterator<Item = Record>) -> Vec<crate::conversation::Message> {
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

/// The one conversion of a received message (live, a carbon, from the
/// archive) to what the store keeps; `sent_by_us` for what another of our
/// devices sent. Its archive id and encryption are the caller's to set: only
/// the caller knows whom to believe for the first, and has read the second.
fn stored_form(
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
fn message_ids(message: &mut Message) -> (String, Option<String>, Option<String>) {
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
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn a_suspend_is_told_from_normal_ticks_and_clock_changes() {
        let (mono, wall) = (Instant::now(), SystemTime::now());
        let mut wake = Wake::new(mono, wall);
        // Both clocks ran 5 s: awake all along.
        let (mono, wall) = (mono + WAKE_CHECK, wall + WAKE_CHECK);
        assert!(!wake.woke(mono, wall));
        // 5 s of running, 2 h on the wall: the lid was closed.
        let (mono, wall) = (mono + WAKE_CHECK, wall + Duration::from_secs(7200));
        assert!(wake.woke(mono, wall));
        // The next tick compares with the wake-up, not the old reading.
        let (mono, wall) = (mono + WAKE_CHECK, wall + WAKE_CHECK);
        assert!(!wake.woke(mono, wall));
        // A late tick (busy runtime) is not a suspend.
        let (mono, wall) = (mono + Duration::from_secs(8), wall + Duration::from_secs(8));
        assert!(!wake.woke(mono, wall));
        // The clock set back an hour: not a suspend, and no panic.
        let (mono, wall) = (mono + WAKE_CHECK, wall - Duration::from_secs(3600));
        assert!(!wake.woke(mono, wall));
    }

    use tokio_xmpp::parsers::forwarding::Forwarded;
    use tokio_xmpp::parsers::rsm::{First, SetResult};

    const ALICE: &str = "alice@example.org";

    fn test_worker() -> (Worker, mpsc::UnboundedReceiver<Event>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (events, receiver) = mpsc::unbounded_channel();
        let (_, commands) = mpsc::unbounded_channel();
        let mut worker = Worker::new(
            ALICE.parse().unwrap(),
            store,
            events,
            Commands::new(commands),
        );
        // As a new session does (see the `Ev::Reset` arm).
        worker.session = worker.store.mark().ok();
        worker.stanza_ids = true;
        (worker, receiver, dir)
    }

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    /// The archive query among `stanzas`: its IQ id and the query.
    fn query_in(stanzas: &[Stanza]) -> (String, ArchiveQuery) {
        stanzas
            .iter()
            .find_map(|s| match s {
                Stanza::Iq(Iq::Set { id, payload, .. }) if payload.is("query", ns::MAM) => {
                    Some((id.clone(), ArchiveQuery::try_from(payload.clone()).unwrap()))
                }
                _ => None,
            })
            .expect("an archive query")
    }

    fn chat(from: &str, id: &str, body: &str) -> Message {
        let mut m = Message::chat(Some(jid(ALICE))).with_body(Lang::new(), body.into());
        m.from = Some(jid(from));
        m.id = Some(Id(id.into()));
        m
    }

    /// A live message as our server routes it, with its stanza-id.
    fn live(from: &str, id: &str, body: &str, archive_id: &str) -> Message {
        let mut m = chat(from, id, body);
        m.payloads.push(
            StanzaId {
                id: archive_id.into(),
                by: jid(ALICE),
            }
            .into(),
        );
        m
    }

    /// One archived message from carol, as the archive sends it for `query`.
    fn archived(query: &ArchiveQuery, n: usize) -> Message {
        let stamp = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap()
            + chrono::Duration::seconds(i64::try_from(n).unwrap());
        let result = ArchiveResult {
            id: format!("a-{n:04}"),
            queryid: query.queryid.clone(),
            forwarded: Forwarded {
                delay: Some(Delay {
                    from: None,
                    stamp: tokio_xmpp::parsers::date::DateTime(stamp),
                    data: None,
                }),
                message: chat(
                    "carol@example.org/phone",
                    &format!("c{n}"),
                    &format!("carol {n:04}"),
                ),
            },
        };
        let mut m = Message::new(Some(jid("alice@example.org/tern")));
        m.payloads.push(result.into());
        m
    }

    fn fin(complete: bool, first: usize, last: usize) -> Option<tokio_xmpp::minidom::Element> {
        Some(
            Fin {
                complete,
                set: SetResult {
                    first: Some(First {
                        index: None,
                        item: format!("a-{first:04}"),
                    }),
                    last: Some(format!("a-{last:04}")),
                    count: None,
                },
            }
            .into(),
        )
    }

    fn answer(id: &str, from: Option<&str>, payload: Option<tokio_xmpp::minidom::Element>) -> Iq {
        Iq::Result {
            from: from.map(jid),
            to: None,
            id: id.into(),
            payload,
        }
    }

    fn refusal(id: &str, from: Option<&str>) -> Iq {
        Iq::Error {
            from: from.map(jid),
            to: None,
            id: id.into(),
            error: StanzaError::new(
                ErrorType::Wait,
                DefinedCondition::InternalServerError,
                "en",
                "",
            ),
            payload: None,
        }
    }

    /// The `start` of an archive query's form.
    fn form_start(query: &ArchiveQuery) -> Option<String> {
        let form = query.form.as_ref()?;
        let field = form
            .fields
            .iter()
            .find(|f| f.var.as_deref() == Some("start"))?;
        field.values.first().cloned()
    }

    fn position(worker: &Worker) -> Option<ArchivePosition> {
        worker.store.archive_position(ALICE).unwrap()
    }

    fn carol_bodies(worker: &Worker) -> Vec<String> {
        let page = worker
            .store
            .page(
                &crate::conversation::Id::chat_of(ALICE, "carol@example.org").unwrap(),
                None,
                10_000,
            )
            .unwrap();
        page.records.into_iter().map(|r| r.body).collect()
    }

    /// Starts a catch-up from `a-0000` and stores its first page (1..=100).
    async fn first_page(worker: &mut Worker, pending: &mut Requests<Pending>) -> String {
        worker.store.set_archive_cursor(ALICE, "a-0000").unwrap();
        worker.defer_live = true;
        let (iq, query) = query_in(&worker.start_catch_up(pending, true));
        assert_eq!(query.set.as_ref().unwrap().after.as_deref(), Some("a-0000"));
        for n in 1..=100 {
            worker.on_message(archived(&query, n));
        }
        let (_, next) = worker.on_iq(answer(&iq, None, fin(false, 1, 100)), pending);
        worker.settle().await;
        assert_eq!(
            position(worker),
            Some(ArchivePosition::After("a-0100".into()))
        );
        let (iq, query) = query_in(&next);
        assert_eq!(query.set.as_ref().unwrap().after.as_deref(), Some("a-0100"));
        iq
    }

    /// An honest server error in mid catch-up: what was fetched stays, the
    /// position stays after it, live messages show but do not move it, and the
    /// catch-up resumes from there later with a new query.
    #[tokio::test]
    async fn a_catch_up_refused_midway_keeps_its_position_and_resumes() {
        let (mut worker, _events, _dir) = test_worker();
        let mut pending = Requests::new(worker.account.clone());
        let page_2 = first_page(&mut worker, &mut pending).await;
        // A live message during the catch-up waits for it.
        worker.on_message(live("bob@example.org/x", "b1", "live during", "s-1"));
        assert!(
            worker
                .store
                .page(
                    &crate::conversation::Id::chat_of(ALICE, "bob@example.org").unwrap(),
                    None,
                    10
                )
                .unwrap()
                .records
                .is_empty()
        );
        // A contact's forgery of the archive's refusal changes nothing.
        worker.on_iq(refusal(&page_2, Some("bob@example.org/x")), &mut pending);
        assert!(worker.catch_up.is_some());
        // The server's own refusal ends it.
        worker.on_iq(refusal(&page_2, None), &mut pending);
        assert!(worker.catch_up.is_none());
        assert!(worker.catch_up_retry.is_some());
        // Live messages are let through, and shown...
        worker.on_message(live("bob@example.org/x", "b2", "live after", "s-2"));
        worker.settle().await;
        let bob = worker
            .store
            .page(
                &crate::conversation::Id::chat_of(ALICE, "bob@example.org").unwrap(),
                None,
                10,
            )
            .unwrap()
            .records;
        assert_eq!(bob.len(), 2);
        // ...but the position stays where the stored pages end.
        assert_eq!(
            position(&worker),
            Some(ArchivePosition::After("a-0100".into()))
        );
        // Not retried before its time; then from the position, with a new query id.
        assert!(
            worker
                .retry_catch_up(&mut pending, Instant::now())
                .is_empty()
        );
        let retry = worker.retry_catch_up(&mut pending, Instant::now() + CATCH_UP_BACKOFF);
        let (iq, query) = query_in(&retry);
        assert_eq!(query.set.as_ref().unwrap().after.as_deref(), Some("a-0100"));
        // Live messages no longer wait for it.
        worker.on_message(live("bob@example.org/x", "b3", "live during retry", "s-3"));
        assert_eq!(
            worker
                .store
                .page(
                    &crate::conversation::Id::chat_of(ALICE, "bob@example.org").unwrap(),
                    None,
                    10
                )
                .unwrap()
                .records
                .len(),
            3
        );
        for n in 101..=150 {
            worker.on_message(archived(&query, n));
        }
        worker.on_iq(answer(&iq, None, fin(true, 101, 150)), &mut pending);
        worker.settle().await;
        assert!(worker.catch_up_retry.is_none());
        assert_eq!(
            position(&worker),
            Some(ArchivePosition::After("a-0150".into()))
        );
        let expected: Vec<String> = (1..=150).map(|n| format!("carol {n:04}")).collect();
        assert_eq!(carol_bodies(&worker), expected);
        // Caught up: live messages move the position again.
        worker.on_message(live("bob@example.org/x", "b4", "live when synced", "s-4"));
        worker.settle().await;
        assert_eq!(
            position(&worker),
            Some(ArchivePosition::After("s-4".into()))
        );
    }

    /// Every other way a catch-up ends early keeps the position and retries.
    #[tokio::test]
    async fn a_catch_up_ending_early_in_any_way_keeps_its_position() {
        for case in ["no fin", "same last", "no answer"] {
            let (mut worker, _events, _dir) = test_worker();
            let mut pending = Requests::new(worker.account.clone());
            let page_2 = first_page(&mut worker, &mut pending).await;
            match case {
                "no fin" => {
                    worker.on_iq(answer(&page_2, None, None), &mut pending);
                }
                "same last" => {
                    // An incomplete page that ends where it began: asking again
                    // would loop forever.
                    worker.on_iq(answer(&page_2, None, fin(false, 100, 100)), &mut pending);
                }
                _ => {
                    assert!(pending.expired(Instant::now()).is_empty());
                    for request in pending.expired(Instant::now() + REPLY_TIMEOUT) {
                        worker.on_no_answer(request, &mut pending);
                    }
                }
            }
            worker.on_message(live("bob@example.org/x", "b1", "live", "s-1"));
            worker.settle().await;
            assert!(worker.catch_up.is_none(), "{case}");
            assert!(worker.catch_up_retry.is_some(), "{case}");
            assert_eq!(
                position(&worker),
                Some(ArchivePosition::After("a-0100".into())),
                "{case}"
            );
            assert_eq!(carol_bodies(&worker).len(), 100, "{case}");
        }
    }

    /// A server streaming far more results into one page than were asked
    /// for: no more than a page of them is held or stored, and the page is
    /// not believed (the position stays, the catch-up is tried again later).
    #[tokio::test]
    async fn an_archive_page_larger_than_asked_for_is_not_believed() {
        for forward in [true, false] {
            let (mut worker, _events, _dir) = test_worker();
            let mut pending = Requests::new(worker.account.clone());
            if forward {
                worker.store.set_archive_cursor(ALICE, "a-0000").unwrap();
            }
            worker.defer_live = true;
            let (iq, query) = query_in(&worker.start_catch_up(&mut pending, true));
            for n in 1..=5_000 {
                worker.on_message(archived(&query, n));
            }
            let held: usize = worker
                .catch_up
                .as_ref()
                .unwrap()
                .pages
                .iter()
                .map(Vec::len)
                .sum();
            assert!(held <= ARCHIVE_PAGE, "{held} results held in memory");
            worker.on_iq(answer(&iq, None, fin(false, 1, 5_000)), &mut pending);
            worker.settle().await;
            assert!(worker.catch_up.is_none(), "forward: {forward}");
            assert!(worker.catch_up_retry.is_some(), "forward: {forward}");
            assert_eq!(
                carol_bodies(&worker).len(),
                ARCHIVE_PAGE,
                "forward: {forward}"
            );
            if forward {
                assert_eq!(
                    position(&worker),
                    Some(ArchivePosition::After("a-0000".into()))
                );
            }
        }
    }

    /// Retries are bounded per session, and back off.
    #[tokio::test]
    async fn catch_up_retries_back_off_and_stop() {
        let (mut worker, _events, _dir) = test_worker();
        let mut pending = Requests::new(worker.account.clone());
        let mut iq = first_page(&mut worker, &mut pending).await;
        let mut waits = Vec::new();
        for _ in 0..CATCH_UP_RETRIES {
            worker.on_iq(refusal(&iq, None), &mut pending);
            let at = worker.catch_up_retry.as_ref().expect("a retry").at;
            let wait = at.saturating_duration_since(Instant::now()).as_secs_f64();
            waits.push(wait.round() as u64);
            iq = query_in(&worker.retry_catch_up(&mut pending, at)).0;
        }
        worker.on_iq(refusal(&iq, None), &mut pending);
        assert!(
            worker.catch_up_retry.is_none(),
            "given up until the next session"
        );
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(
            position(&worker),
            Some(ArchivePosition::After("a-0100".into()))
        );
    }

    /// XEP-0359 §4: a stanza-id is believed only when the server announced
    /// that it stamps them, and only when it names our own account.
    #[test]
    fn stanza_ids_are_believed_only_from_our_server_when_announced() {
        let (mut worker, _events, _dir) = test_worker();
        worker.synced = true;
        let mut by_other = chat("bob@example.org/x", "b0", "claims another's id");
        by_other.payloads.push(
            StanzaId {
                id: "s-evil".into(),
                by: jid("bob@example.org"),
            }
            .into(),
        );
        worker.on_message(by_other);
        worker.stanza_ids = false;
        worker.on_message(live("bob@example.org/x", "b1", "not announced", "s-1"));
        worker.stanza_ids = true;
        worker.on_message(live("bob@example.org/x", "b2", "announced", "s-2"));
        let records = worker
            .store
            .page(
                &crate::conversation::Id::chat_of(ALICE, "bob@example.org").unwrap(),
                None,
                10,
            )
            .unwrap()
            .records;
        let ids: Vec<_> = records.iter().map(|r| r.archive_id.as_deref()).collect();
        assert_eq!(ids, vec![None, None, Some("s-2")]);
    }

    /// An empty archive at a first sign-in is remembered as a time, so the
    /// next sign-in takes everything since (not a first sign-in's window).
    #[tokio::test]
    async fn an_empty_first_archive_is_remembered_as_a_start_time() {
        let (mut worker, _events, _dir) = test_worker();
        let mut pending = Requests::new(worker.account.clone());
        let (iq, query) = query_in(&worker.start_catch_up(&mut pending, true));
        let start = form_start(&query);
        let empty = Fin {
            complete: true,
            set: SetResult {
                first: None,
                last: None,
                count: Some(0),
            },
        };
        worker.on_iq(answer(&iq, None, Some(empty.into())), &mut pending);
        worker.settle().await;
        let Some(ArchivePosition::Since(since)) = position(&worker) else {
            panic!("{:?}", position(&worker));
        };
        assert_eq!(
            Some(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            start
        );
        // The next catch-up goes forward from that time.
        let (_, next) = query_in(&worker.start_catch_up(&mut pending, true));
        assert!(next.set.as_ref().unwrap().after.is_none());
        assert!(
            next.set.as_ref().unwrap().before.is_none(),
            "forward, not backward"
        );
        let next_start = form_start(&next);
        assert_eq!(next_start, start);
    }

    /// Every feature we announce has a handler behind it.
    #[test]
    fn every_feature_has_a_handler() {
        let (mut worker, _events, _dir) = test_worker();
        let get = |payload: tokio_xmpp::minidom::Element| {
            let (_, replies) = on_iq_get(Some(jid("bob@example.org/x")), "q".into(), payload, true);
            match replies.into_iter().next() {
                Some(Stanza::Iq(Iq::Result { payload, .. })) => payload,
                other => panic!("not answered: {other:?}"),
            }
        };
        for feature in features::FEATURES {
            match *feature {
                ns::DISCO_INFO => {
                    let info = get(DiscoInfoQuery { node: None }.into()).unwrap();
                    let info = DiscoInfoResult::try_from(info).unwrap();
                    assert_eq!(info.features.len(), features::FEATURES.len());
                }
                ns::CAPS => {
                    let presence = worker.own_presence();
                    let caps = presence
                        .payloads
                        .iter()
                        .find_map(|p| tokio_xmpp::parsers::caps::Caps::try_from(p.clone()).ok())
                        .expect("caps in our presence");
                    // What a client asks for after reading our presence.
                    use base64::Engine;
                    let node = format!(
                        "{}#{}",
                        caps.node,
                        base64::engine::general_purpose::STANDARD.encode(&caps.ver)
                    );
                    assert_eq!(node, features::caps_node());
                    let info = get(DiscoInfoQuery {
                        node: Some(node.clone()),
                    }
                    .into())
                    .unwrap();
                    assert_eq!(DiscoInfoResult::try_from(info).unwrap().node, Some(node));
                    let (_, replies) = on_iq_get(
                        None,
                        "q".into(),
                        DiscoInfoQuery {
                            node: Some("other#node".into()),
                        }
                        .into(),
                        true,
                    );
                    assert!(matches!(
                        replies.first(),
                        Some(Stanza::Iq(Iq::Error { .. }))
                    ));
                }
                ns::PING => {
                    get(tokio_xmpp::parsers::ping::Ping.into());
                }
                ns::VERSION => {
                    let version = get(tokio_xmpp::parsers::version::VersionQuery.into()).unwrap();
                    let version =
                        tokio_xmpp::parsers::version::VersionResult::try_from(version).unwrap();
                    assert_eq!(version.name, "Tern");
                }
                ns::RECEIPTS => {
                    worker.contacts.insert("bob@example.org".parse().unwrap());
                    let mut asks = chat("bob@example.org/x", "r1", "receipt please");
                    asks.payloads.push(ReceiptRequest.into());
                    let (_, replies) = worker.on_message(asks);
                    let receipt = match replies.first() {
                        Some(Stanza::Message(m)) => m.clone(),
                        other => panic!("no receipt: {other:?}"),
                    };
                    assert!(
                        receipt
                            .payloads
                            .iter()
                            .any(|p| p.is("received", ns::RECEIPTS))
                    );
                }
                ns::OOB => {
                    let url = "https://files.example.org/a.png";
                    let mut shared = chat("bob@example.org/x", "f1", url);
                    shared.payloads.push(
                        Oob {
                            url: url.into(),
                            desc: None,
                        }
                        .into(),
                    );
                    assert!(is_attachment(&mut shared, url));
                }
                other => panic!("{other} is announced but no test shows its handler"),
            }
        }
    }

    /// What Gajim, Dino, Conversations and Monal send encrypted, as Tern
    /// must take it: marked, with the fallback kept, and key transport ignored.
    #[test]
    fn encrypted_messages_are_marked_and_key_transport_ignored() {
        let parse = |xml: &str| -> Message {
            let xml = xml.replacen("<message", "<message xmlns='jabber:client'", 1);
            Message::try_from(xml.parse::<tokio_xmpp::minidom::Element>().unwrap()).unwrap()
        };
        let conversations = parse(
            "<message type='chat' from='bob@example.org/c' to='alice@example.org' id='m1'>\
             <encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>a2V5</key><iv>aXY=</iv></header><payload>cGF5bG9hZA==</payload></encrypted>\
             <body>I sent you an OMEMO encrypted message but your client doesn’t seem to support that.</body>\
             <encryption xmlns='urn:xmpp:eme:0' namespace='eu.siacs.conversations.axolotl'/></message>",
        );
        let (body, kind) = content(&conversations).unwrap();
        assert_eq!(kind, Some(Encryption::Omemo));
        assert!(body.starts_with("I sent you an OMEMO"));
        let omemo2 = parse(
            "<message type='chat' from='bob@example.org/d' to='alice@example.org' id='m2'>\
             <encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='alice@example.org'><key rid='2'>a2V5</key></keys></header><payload>cGF5bG9hZA==</payload></encrypted></message>",
        );
        assert_eq!(
            content(&omemo2),
            Some((String::new(), Some(Encryption::Omemo2)))
        );
        let key_transport = parse(
            "<message type='chat' from='bob@example.org/d' to='alice@example.org' id='m3'>\
             <encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>a2V5</key><iv>aXY=</iv></header></encrypted></message>",
        );
        assert_eq!(content(&key_transport), None);
        let openpgp = parse(
            "<message type='chat' from='bob@example.org/g' to='alice@example.org' id='m4'>\
             <openpgp xmlns='urn:xmpp:openpgp:0'>QmFzZTY0</openpgp><body>[This message is *encrypted* with OpenPGP (See :XEP:`27`]</body></message>",
        );
        assert_eq!(content(&openpgp).unwrap().1, Some(Encryption::Openpgp));
        let legacy = parse(
            "<message type='chat' from='bob@example.org/g' to='alice@example.org' id='m5'>\
             <body>This message is encrypted.</body><x xmlns='jabber:x:encrypted'>LS0t</x></message>",
        );
        assert_eq!(content(&legacy).unwrap().1, Some(Encryption::LegacyPgp));
        let plain = parse(
            "<message type='chat' from='bob@example.org/g' to='alice@example.org' id='m6'><body>hi</body></message>",
        );
        assert_eq!(content(&plain), Some(("hi".into(), None)));

        // Through the inbound path: stored marked, fallback kept.
        let (mut worker, _events, _dir) = test_worker();
        worker.synced = true;
        worker.on_message(conversations);
        let records = worker
            .store
            .page(
                &crate::conversation::Id::chat_of(ALICE, "bob@example.org").unwrap(),
                None,
                10,
            )
            .unwrap()
            .records;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].encryption, Some(Encryption::Omemo));
        assert!(records[0].body.starts_with("I sent you an OMEMO"));
        let conversation = &worker.store.conversations(ALICE).unwrap()[0];
        assert!(conversation.last_encrypted);
    }

    /// A window reaching past the calendar (a hand-edited config: 4 billion
    /// days) starts a first catch-up, not a panic.
    #[test]
    fn presence_floods_stay_bounded() {
        let (mut worker, mut events, _dir) = test_worker();
        worker.contacts.insert("bob@example.org".parse().unwrap());
        let mut told = 0;
        let count = |events: &mut mpsc::UnboundedReceiver<Event>| {
            let mut n = 0;
            while events.try_recv().is_ok() {
                n += 1;
            }
            n
        };
        // 10,000 strangers ask to subscribe, each twice: 100 reach the UI.
        for n in 0..20_000 {
            let mut ask = Presence::new(PresenceType::Subscribe);
            ask.from = Some(jid(&format!("stranger{}@spam.example", n % 10_000)));
            worker.on_presence(ask);
        }
        told += count(&mut events);
        assert_eq!(told, MAX_ASKERS);
        // Strangers' presences, from many resources: none kept or told.
        for n in 0..10_000 {
            let mut p = Presence::new(PresenceType::None);
            p.from = Some(jid(&format!("stranger@spam.example/r{n}")));
            worker.on_presence(p);
        }
        assert_eq!(count(&mut events), 0);
        // A contact's status of a million characters is cut.
        let mut p = Presence::new(PresenceType::None);
        p.from = Some(jid("bob@example.org/phone"));
        p.set_status("", "x".repeat(1_000_000));
        worker.on_presence(p);
        match events.try_recv() {
            Ok(Event::Presence { status, .. }) => {
                assert_eq!(status.map(|s| s.chars().count()), Some(MAX_STATUS_CHARS))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_absurd_window_does_not_panic() {
        let (mut worker, _events, _dir) = test_worker();
        let mut pending = Requests::new(worker.account.clone());
        worker.window.days = u32::MAX;
        let (_, query) = query_in(&worker.start_catch_up(&mut pending, true));
        assert!(query.form.is_some());
    }
}
