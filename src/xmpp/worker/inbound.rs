//! The worker's inbound path driven by raw bytes: what the fuzz targets under
//! `fuzz/` exercise, and what `tests/fuzz_corpus.rs` replays on stable Rust.
//!
//! An input is one or more stanzas separated by NUL bytes (never valid in
//! XML, so the split cannot hide a case). Each is parsed as tokio-xmpp parses
//! a stanza off the stream (xso, default namespace `jabber:client`) and goes
//! through the same handlers a live session uses, with a real store. Our
//! request ids are random, so an input names them by place: `@0@` … `@9@`
//! become the ids of the requests in flight, oldest first, which lets the
//! fuzzer answer (or forge answers to) the archive catch-up, the roster and
//! disco questions; `@q@` is the running archive catch-up's query id, which
//! its results must carry. A stanza that is exactly `@later@` lets every deadline
//! pass, as if the server had gone quiet for a while.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use tokio_xmpp::minidom::{self, Element};
use tokio_xmpp::parsers::disco::DiscoInfoQuery;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::roster::Roster;

use super::{Commands, Event, Pending, REPLY_TIMEOUT, Requests, Worker};
use crate::store::Store;

/// At most this many stanzas per input: a fuzz input is not a flood test.
const MAX_STANZAS: usize = 64;

/// A worker in a signed-in session, fed stanzas from bytes.
pub struct Inbound {
    worker: Worker,
    pending: Requests<Pending>,
    events: mpsc::UnboundedReceiver<Event>,
    runtime: tokio::runtime::Runtime,
    /// Where the worker's clock stands: moved on by `@later@`.
    now: Instant,
}

impl Inbound {
    /// A worker for `alice@example.org` (full JID `…/tern`) with its store in
    /// `dir`, in a fresh session that has asked for its features and roster
    /// and started its archive catch-up.
    pub fn new(dir: &Path) -> Result<Self, String> {
        Self::with_store(Store::open(dir).map_err(|e| e.to_string())?)
    }

    /// The same with `store`, which should be empty.
    pub fn with_store(store: Store) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let account = "alice@example.org"
            .parse()
            .map_err(|e: tokio_xmpp::jid::Error| e.to_string())?;
        let (events_tx, events) = mpsc::unbounded_channel();
        // Commands never come: the UI is not part of the inbound path.
        let (_, commands) = mpsc::unbounded_channel();
        let mut worker = Worker::new(account, store, events_tx, Commands::new(commands));
        let mut pending = Requests::new(worker.account.clone());
        let now = Instant::now();
        // As the `Ev::Reset` arm does for a new session.
        worker.session = worker.store.mark().ok();
        let id = pending.add(None, Pending::OwnFeatures, Some(REPLY_TIMEOUT), now);
        worker.outq.push_back(Box::new(
            Iq::from_get(id, DiscoInfoQuery { node: None }).into(),
        ));
        let id = pending.add(None, Pending::Roster, Some(REPLY_TIMEOUT), now);
        worker.outq.push_back(Box::new(
            Iq::from_get(
                id,
                Roster {
                    ver: None,
                    items: vec![],
                },
            )
            .into(),
        ));
        worker.defer_live = true;
        let _ = worker.start_catch_up(&mut pending, true);
        Ok(Self {
            worker,
            pending,
            events,
            runtime,
            now,
        })
    }

    /// Feeds one input; returns how many of its stanzas parsed.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let mut parsed = 0;
        for chunk in input.split(|&b| b == 0).take(MAX_STANZAS) {
            if chunk == b"@later@" {
                self.later();
                continue;
            }
            let bytes = self.with_ids(chunk);
            let Ok(stanza) = parse(&bytes) else {
                continue;
            };
            parsed += 1;
            let Self {
                worker,
                pending,
                runtime,
                ..
            } = self;
            runtime.block_on(async {
                worker.on_stanza(stanza, pending).await;
                worker.settle().await;
            });
            self.discard_output();
        }
        parsed
    }

    /// Every request's deadline passes; a catch-up that was cut short retries.
    fn later(&mut self) {
        self.now += REPLY_TIMEOUT + Duration::from_secs(600);
        for request in self.pending.expired(self.now) {
            let _ = self.worker.on_no_answer(request, &mut self.pending);
        }
        let _ = self.worker.retry_catch_up(&mut self.pending, self.now);
        self.discard_output();
    }

    /// What the worker would send and tell the UI is dropped: only what it
    /// stores and changes is under test, and memory stays flat over a run.
    fn discard_output(&mut self) {
        self.worker.outq.clear();
        self.worker.unconfirmed = Default::default();
        while self.events.try_recv().is_ok() {}
    }

    /// `chunk` with `@N@` replaced by the id of the N-th request in flight,
    /// and `@q@` by the catch-up's query id.
    fn with_ids(&self, chunk: &[u8]) -> Vec<u8> {
        let ids = self.pending.ids_in_order();
        let mut out = Vec::with_capacity(chunk.len());
        let mut rest = chunk;
        while let Some(at) = rest.iter().position(|&b| b == b'@') {
            out.extend_from_slice(&rest[..at]);
            let tail = &rest[at..];
            match tail {
                [b'@', n @ b'0'..=b'9', b'@', ..] => {
                    match ids.get(usize::from(n - b'0')) {
                        Some(id) => out.extend_from_slice(id.as_bytes()),
                        None => out.extend_from_slice(&tail[..3]),
                    }
                    rest = &tail[3..];
                }
                [b'@', b'q', b'@', ..] => {
                    match &self.worker.catch_up {
                        Some(catch_up) => out.extend_from_slice(catch_up.query_id.as_bytes()),
                        None => out.extend_from_slice(&tail[..3]),
                    }
                    rest = &tail[3..];
                }
                _ => {
                    out.push(b'@');
                    rest = &tail[1..];
                }
            }
        }
        out.extend_from_slice(rest);
        out
    }
}

/// One stanza from bytes in the stream's default namespace. The stream reader
/// runs the same xso conversion on the same rxml parser; here the namespace
/// comes from a wrapper element instead of the stream header.
fn parse(bytes: &[u8]) -> Result<Stanza, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let wrapped = format!("<stream xmlns='jabber:client'>{text}</stream>");
    let root: Element = wrapped.parse().map_err(|e: minidom::Error| e.to_string())?;
    let first = root.children().next().cloned().ok_or("no stanza")?;
    Stanza::try_from(first).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(inbound: &Inbound, peer: &str) -> Vec<String> {
        let page = inbound
            .worker
            .store
            .page(
                &crate::conversation::Id::chat_of("alice@example.org", peer).unwrap(),
                None,
                100,
            )
            .unwrap();
        page.records.into_iter().map(|r| r.body).collect()
    }

    /// The harness reaches the handlers: a fuzz run that parsed nothing or
    /// answered no request would find nothing and look clean.
    #[test]
    fn inputs_reach_the_store_and_answer_requests() {
        let dir = tempfile::tempdir().unwrap();
        let mut inbound = Inbound::new(dir.path()).unwrap();
        let asked = inbound.pending.ids_in_order();
        assert_eq!(asked.len(), 3);
        let page = "<message><result xmlns='urn:xmpp:mam:2' queryid='@q@' id='a-1'>\
            <forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2026-12-01T10:00:00Z'/>\
            <message xmlns='jabber:client' from='carol@example.net/phone' to='alice@example.org' type='chat' id='x1'>\
            <body>archived</body></message></forwarded></result></message>\0\
            <iq type='result' id='@2@'><fin xmlns='urn:xmpp:mam:2' complete='true'>\
            <set xmlns='http://jabber.org/protocol/rsm'><first index='0'>a-1</first><last>a-1</last><count>1</count></set>\
            </fin></iq>\0\
            <message from='carol@example.net/phone' type='chat' id='m1'><body>live</body></message>\0\
            not xml\0@later@";
        assert_eq!(inbound.feed(page.as_bytes()), 3);
        // The catch-up took the page and ended; the live message followed it.
        assert_eq!(bodies(&inbound, "carol@example.net"), ["archived", "live"]);
        // Features and roster went unanswered past their deadline.
        let still = inbound.pending.ids_in_order();
        assert!(asked.iter().all(|id| !still.contains(id)), "{still:?}");
    }
}
