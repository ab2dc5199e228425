//! The worker's handlers, driven without a server.

use std::time::SystemTime;

use super::archive::{ARCHIVE_PAGE, CATCH_UP_BACKOFF, CATCH_UP_RETRIES};
use super::contacts::{MAX_ASKERS, MAX_STATUS_CHARS};
use super::incoming::{content, is_attachment};
use super::iq::on_iq_get;
use super::*;

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
            ns::MUC => {
                let join = worker.join_room(
                    "team@conference.example.org".parse().unwrap(),
                    "Alice".into(),
                    None,
                    true,
                );
                assert!(matches!(&join[..], [Stanza::Presence(p)]
                    if p.payloads.iter().any(|e| e.is("x", ns::MUC))));
            }
            "urn:xmpp:bookmarks:1+notify" => {
                use tokio_xmpp::parsers::bookmarks2::Conference;
                use tokio_xmpp::parsers::pubsub::event::{Item, Payload};
                use tokio_xmpp::parsers::pubsub::{Event as PubSubEvent, ItemId, NodeName};
                let event = |room: &str| PubSubEvent {
                    payload: Payload::Items {
                        node: NodeName(ns::BOOKMARKS2.into()),
                        published: vec![Item {
                            id: Some(ItemId(room.into())),
                            publisher: None,
                            payload: Some(
                                Conference {
                                    autojoin: true,
                                    ..Conference::new()
                                }
                                .into(),
                            ),
                        }],
                        retracted: vec![],
                    },
                };
                // Another client of ours bookmarked a room: we join it.
                let own = jid(ALICE);
                let joins = worker.on_pep_event(Some(&own), event("club@conference.example.org"));
                assert!(matches!(&joins[..], [Stanza::Presence(p)]
                    if p.to.as_ref().map(|j| j.as_str()) == Some("club@conference.example.org/alice")));
                // Anyone else's "bookmarks" are not ours.
                let mallory = jid("mallory@example.org");
                let joins =
                    worker.on_pep_event(Some(&mallory), event("trap@conference.example.org"));
                assert!(joins.is_empty());
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

/// One command path: offline, a message goes to the outbox and nowhere else,
/// questions for the server are answered "offline" at once, contact changes
/// are dropped; in a bound session the same commands queue what they send.
#[test]
fn commands_take_one_path_offline_and_in_a_session() {
    use super::commands::{Flow, InSession};
    let (mut worker, mut events, _dir) = test_worker();
    let bob: BareJid = "bob@example.org".parse().unwrap();
    let send = || Command::SendMessage {
        to: crate::conversation::Id::chat_of(ALICE, "bob@example.org").unwrap(),
        body: "hi".into(),
    };
    assert!(matches!(worker.on_command(send(), None), Flow::Stay));
    assert_eq!(worker.store.outbox(ALICE).unwrap().len(), 1);
    // A conversation of another account is not this worker's to send.
    let elsewhere = Command::SendMessage {
        to: crate::conversation::Id::chat_of("eve@example.org", "bob@example.org").unwrap(),
        body: "hi".into(),
    };
    worker.on_command(elsewhere, None);
    assert_eq!(worker.store.outbox(ALICE).unwrap().len(), 1);
    assert!(worker.store.outbox("eve@example.org").unwrap().is_empty());
    assert!(worker.outq.is_empty());
    let slot = || Command::RequestSlot {
        id: "s1".into(),
        name: "a.png".into(),
        size: 10,
        content_type: "image/png".into(),
    };
    worker.on_command(slot(), None);
    worker.on_command(
        Command::FetchOlder {
            conversation: crate::conversation::Id::chat(worker.account.clone(), bob.clone()),
            before: None,
        },
        None,
    );
    worker.on_command(
        Command::AddContact {
            jid: bob.clone(),
            name: None,
        },
        None,
    );
    let said: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert!(
        matches!(said[0], Event::Messages(_)),
        "the message is shown"
    );
    assert!(matches!(
        &said[1],
        Event::Slot { id, result: Err(SlotError::Offline) } if id == "s1"
    ));
    assert!(matches!(&said[2], Event::History { records, more: true, .. } if records.is_empty()));
    assert_eq!(said.len(), 3);
    assert!(worker.outq.is_empty(), "nothing to send offline");
    assert!(matches!(
        worker.on_command(Command::Disconnect, None),
        Flow::Disconnect
    ));

    // In a bound session: the message waits for the stream, the contact
    // change and the slot request go out.
    let mut pending = Requests::new(worker.account.clone());
    let mut sendq = std::collections::VecDeque::new();
    fn bound<'a>(
        pending: &'a mut Requests<Pending>,
        sendq: &'a mut std::collections::VecDeque<Record>,
    ) -> InSession<'a> {
        InSession {
            bound: true,
            pending,
            sendq,
        }
    }
    worker.on_command(send(), Some(bound(&mut pending, &mut sendq)));
    assert_eq!(sendq.len(), 1);
    worker.upload = Some(crate::xmpp::UploadService {
        jid: jid("upload.example.org"),
        max_size: None,
    });
    worker.on_command(slot(), Some(bound(&mut pending, &mut sendq)));
    worker.on_command(
        Command::AddContact {
            jid: bob,
            name: None,
        },
        Some(bound(&mut pending, &mut sendq)),
    );
    assert_eq!(
        worker.outq.len(),
        4,
        "the slot request; the roster set, the subscription and its pre-approval"
    );
    assert_eq!(worker.store.outbox(ALICE).unwrap().len(), 2);
}

mod rooms {
    use super::*;
    use crate::conversation::Id as ConversationId;
    use crate::xmpp::room::{JoinError, LeftReason, RoomEvent};
    use tokio_xmpp::parsers::muc::Muc;
    use tokio_xmpp::parsers::muc::user::{
        Affiliation as MucAffiliation, Item, MucUser, Role as MucRole, Status,
    };

    const ROOM: &str = "lounge@conference.example.org";

    fn room() -> BareJid {
        ROOM.parse().unwrap()
    }

    fn room_events(events: &mut mpsc::UnboundedReceiver<Event>) -> Vec<RoomEvent> {
        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let Event::Room { event, .. } = event {
                seen.push(event);
            }
        }
        seen
    }

    /// A presence of `nick` in the room, with these statuses.
    fn occupant(nick: &str, statuses: Vec<Status>, type_: PresenceType) -> Presence {
        let mut presence = Presence::new(type_);
        presence.from = Some(jid(&format!("{ROOM}/{nick}")));
        presence.payloads.push(
            MucUser::new()
                .with_statuses(statuses)
                .with_items(vec![Item::new(
                    MucAffiliation::Member,
                    MucRole::Participant,
                )])
                .into(),
        );
        presence
    }

    fn groupchat(nick: &str, body: &str, origin: Option<&str>, room_id: &str) -> Message {
        let mut m = Message::groupchat(Some(jid(ALICE))).with_body(Lang::new(), body.to_string());
        m.from = Some(jid(&format!("{ROOM}/{nick}")));
        m.id = Some(Id(format!("stanza-{room_id}")));
        if let Some(origin) = origin {
            m.payloads.push(OriginId { id: origin.into() }.into());
        }
        m.payloads.push(
            StanzaId {
                id: room_id.into(),
                by: jid(ROOM),
            }
            .into(),
        );
        m
    }

    fn joined() -> (Worker, mpsc::UnboundedReceiver<Event>, tempfile::TempDir) {
        let (mut worker, mut events, dir) = test_worker();
        let join = worker.join_room(room(), "Alice".into(), None, true);
        assert!(matches!(&join[..], [Stanza::Presence(p)]
            if p.to.as_ref().map(|j| j.as_str()) == Some("lounge@conference.example.org/Alice")));
        worker.on_presence(occupant("Bob", vec![], PresenceType::None));
        worker.on_presence(occupant(
            "Alice",
            vec![Status::SelfPresence],
            PresenceType::None,
        ));
        let seen = room_events(&mut events);
        assert!(matches!(seen.last(), Some(RoomEvent::Joined { nick }) if nick == "Alice"));
        (worker, events, dir)
    }

    #[test]
    fn refusals_are_told_apart_and_only_while_joining() {
        let (mut worker, mut events, _dir) = test_worker();
        for (condition, wanted) in [
            (DefinedCondition::Conflict, JoinError::NicknameInUse),
            (DefinedCondition::NotAuthorized, JoinError::Password),
            (
                DefinedCondition::RegistrationRequired,
                JoinError::MembersOnly,
            ),
            (DefinedCondition::Forbidden, JoinError::Banned),
            (DefinedCondition::ItemNotFound, JoinError::NotFound),
        ] {
            worker.join_room(room(), "Alice".into(), None, true);
            let mut error = Presence::new(PresenceType::Error);
            error.from = Some(jid(&format!("{ROOM}/Alice")));
            error
                .payloads
                .push(StanzaError::new(ErrorType::Cancel, condition, "en", "no").into());
            worker.on_presence(error);
            assert_eq!(room_events(&mut events), [RoomEvent::JoinFailed(wanted)]);
            assert!(worker.rooms.is_empty());
        }
        // In the room, an error presence (a bounce) does not throw us out.
        let (mut worker, mut events, _dir) = joined();
        let mut error = Presence::new(PresenceType::Error);
        error.from = Some(jid(&format!("{ROOM}/Alice")));
        worker.on_presence(error);
        assert!(room_events(&mut events).is_empty());
        assert!(worker.rooms.contains_key(&room()));
        // A nickname that is no resource is refused before anything is sent.
        assert!(worker.join_room(room(), "  ".into(), None, true).is_empty());
    }

    /// A destroyed room says so to us (with or without the 110 that marks
    /// our own presence), and its bookmark loses autojoin; someone else
    /// leaving it is only their departure.
    #[test]
    fn a_destroyed_room_is_left_as_destroyed() {
        for marked in [true, false] {
            let (mut worker, mut events, _dir) = joined();
            worker.outq.clear();
            worker.room_asks.clear();
            let destroyed = |nick: &str, marked: bool| {
                let status = if marked { "<status code='110'/>" } else { "" };
                let xml = format!(
                    "<presence xmlns='jabber:client' from='{ROOM}/{nick}' type='unavailable'>\
                     <x xmlns='http://jabber.org/protocol/muc#user'>\
                     <item affiliation='none' role='none'/>\
                     <destroy jid='new@conference.example.org'><reason>moved</reason></destroy>\
                     {status}</x></presence>"
                );
                Presence::try_from(xml.parse::<tokio_xmpp::minidom::Element>().unwrap()).unwrap()
            };
            worker.on_presence(destroyed("Bob", false));
            assert_eq!(
                room_events(&mut events),
                [RoomEvent::OccupantLeft {
                    nick: "Bob".into(),
                    new_nick: None,
                    why: LeftReason::Unexplained,
                }]
            );
            worker.on_presence(destroyed("Alice", marked));
            assert_eq!(
                room_events(&mut events),
                [RoomEvent::Left(LeftReason::Destroyed {
                    reason: Some("moved".into()),
                    alternate: Some("new@conference.example.org".parse().unwrap()),
                })],
                "marked: {marked}"
            );
            assert!(worker.rooms.is_empty());
            let mut pending = Requests::new(worker.account.clone());
            worker.send_room_asks(&mut pending);
            assert!(
                matches!(&worker.outq.iter().map(|s| &**s).collect::<Vec<_>>()[..],
                    [Stanza::Iq(iq)] if published(iq).is_some_and(|(c, _)| !c.autojoin)),
                "the bookmark, without autojoin"
            );
        }
    }

    /// The conference and publish options of a bookmark publish.
    fn published(iq: &Iq) -> Option<(tokio_xmpp::parsers::bookmarks2::Conference, Vec<String>)> {
        use tokio_xmpp::parsers::pubsub::PubSub;
        let Iq::Set { payload, .. } = iq else {
            return None;
        };
        let PubSub::Publish {
            publish,
            publish_options,
        } = PubSub::try_from(payload.clone()).ok()?
        else {
            return None;
        };
        let conference = publish.items.first()?.payload.clone()?.try_into().ok()?;
        let fields = publish_options?
            .form?
            .fields
            .into_iter()
            .map(|f| f.var.unwrap_or_default())
            .collect();
        Some((conference, fields))
    }

    /// ejabberd 23.01 refuses `pubsub#max_items` in publish options: the
    /// bookmark goes again with only the essential options, and so do the
    /// next ones once that worked; a server that refuses that too is asked
    /// with all of them next time.
    #[test]
    fn a_bookmark_refused_with_all_options_goes_again_with_the_essential_ones() {
        let (mut worker, _events, _dir) = test_worker();
        let mut pending = Requests::new(worker.account.clone());
        let room = room();
        let refused = |id: String| -> Iq {
            let mut error = StanzaError::new(
                ErrorType::Wait,
                DefinedCondition::ResourceConstraint,
                "en",
                "Unknown field 'pubsub#max_items' of type \
                 'http://jabber.org/protocol/pubsub#publish-options'",
            );
            error.by = None;
            Iq::from_error(id, error).with_from(jid(ALICE))
        };
        let first =
            worker.publish_conference(room.clone(), worker.conference(&room, true), &mut pending);
        let Stanza::Iq(first) = first else { panic!() };
        assert!(
            published(&first)
                .unwrap()
                .1
                .contains(&"pubsub#max_items".to_string())
        );
        let (_, again) = worker.on_iq(refused(first.id().to_string()), &mut pending);
        let [Stanza::Iq(again)] = &again[..] else {
            panic!("not published again: {again:?}")
        };
        let (conference, fields) = published(again).unwrap();
        assert!(conference.autojoin);
        assert!(
            !fields.contains(&"pubsub#max_items".to_string()),
            "{fields:?}"
        );
        assert!(fields.contains(&"pubsub#access_model".to_string()));
        // The failed one is no echo to wait for: one publish, one echo.
        assert_eq!(worker.bookmark_echoes[&room].len(), 1);
        // Taken: the next bookmark goes without it at once.
        worker.on_iq(
            Iq::empty_result(jid(ALICE), again.id().to_string()),
            &mut pending,
        );
        let next =
            worker.publish_conference(room.clone(), worker.conference(&room, false), &mut pending);
        let Stanza::Iq(next) = next else { panic!() };
        assert!(
            !published(&next)
                .unwrap()
                .1
                .contains(&"pubsub#max_items".to_string())
        );

        // Elsewhere, refused both ways: given up, and still asked next time.
        let (mut worker, _events, _dir) = test_worker();
        let mut pending = Requests::new(worker.account.clone());
        let first =
            worker.publish_conference(room.clone(), worker.conference(&room, true), &mut pending);
        let Stanza::Iq(first) = first else { panic!() };
        let (_, again) = worker.on_iq(refused(first.id().to_string()), &mut pending);
        let [Stanza::Iq(again)] = &again[..] else {
            panic!()
        };
        let (_, more) = worker.on_iq(refused(again.id().to_string()), &mut pending);
        assert!(more.is_empty(), "{more:?}");
        assert!(!worker.bookmark_echoes.contains_key(&room));
        let next =
            worker.publish_conference(room.clone(), worker.conference(&room, true), &mut pending);
        let Stanza::Iq(next) = next else { panic!() };
        assert!(
            published(&next)
                .unwrap()
                .1
                .contains(&"pubsub#max_items".to_string())
        );
    }

    /// Private messages written or read on another of our devices come as
    /// carbons (from servers that copy them): each in the private
    /// conversation with the occupant, never in a chat with the room.
    #[test]
    fn private_messages_from_our_other_devices_stay_private() {
        let (mut worker, _events, _dir) = joined();
        let carbon = |kind: &str, inner: &str| -> Message {
            let xml = format!(
                "<message xmlns='jabber:client' from='{ALICE}' to='{ALICE}/tern' type='chat'>\
                 <{kind} xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
                 {inner}</forwarded></{kind}></message>"
            );
            Message::try_from(xml.parse::<tokio_xmpp::minidom::Element>().unwrap()).unwrap()
        };
        // Sent from the phone to Bob, through the room.
        worker.on_message(carbon(
            "sent",
            &format!(
                "<message xmlns='jabber:client' from='{ALICE}/phone' to='{ROOM}/Bob' \
                 type='chat' id='p1'><body>from the phone</body>\
                 <x xmlns='http://jabber.org/protocol/muc#user'/></message>"
            ),
        ));
        // Bob's answer, which the phone got: his nickname on it.
        worker.on_message(carbon(
            "received",
            &format!(
                "<message xmlns='jabber:client' from='{ROOM}/Bob' to='{ALICE}/phone' \
                 type='chat' id='b1'><body>to the phone</body>\
                 <x xmlns='http://jabber.org/protocol/muc#user'/></message>"
            ),
        ));
        // Marked as a room's private message, from a room we are not in.
        worker.on_message(carbon(
            "received",
            &format!(
                "<message xmlns='jabber:client' from='other@conference.example.org/Carol' \
                 to='{ALICE}/phone' type='chat' id='c1'><body>hello</body>\
                 <x xmlns='http://jabber.org/protocol/muc#user'/></message>"
            ),
        ));
        let account: BareJid = ALICE.parse().unwrap();
        let with_bob =
            ConversationId::private(account.clone(), format!("{ROOM}/Bob").parse().unwrap());
        let page = worker.store.page(&with_bob, None, 10).unwrap();
        let shown: Vec<(&str, bool, Option<&str>)> = page
            .records
            .iter()
            .map(|r| {
                (
                    r.body.as_str(),
                    r.direction == crate::conversation::Direction::Out,
                    r.sender.nick.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("from the phone", true, None),
                ("to the phone", false, Some("Bob")),
            ]
        );
        let with_carol = ConversationId::private(
            account.clone(),
            "other@conference.example.org/Carol".parse().unwrap(),
        );
        assert_eq!(
            worker
                .store
                .page(&with_carol, None, 10)
                .unwrap()
                .records
                .len(),
            1
        );
        for bare in [ROOM, "other@conference.example.org"] {
            let chat = ConversationId::chat(account.clone(), bare.parse().unwrap());
            assert!(
                worker
                    .store
                    .page(&chat, None, 10)
                    .unwrap()
                    .records
                    .is_empty()
            );
        }
        // A contact's carbon with an invitation in it is no private message.
        worker.on_message(carbon(
            "received",
            &format!(
                "<message xmlns='jabber:client' from='bob@example.org/laptop' \
                 to='{ALICE}/phone' type='chat' id='i1'><body>come in</body>\
                 <x xmlns='http://jabber.org/protocol/muc#user'><invite from='bob@example.org'/></x></message>"
            ),
        ));
        let bob = ConversationId::chat(account, "bob@example.org".parse().unwrap());
        assert_eq!(worker.store.page(&bob, None, 10).unwrap().records.len(), 1);
    }

    #[test]
    fn our_reflection_marks_delivered_and_others_are_stored_once() {
        let (mut worker, mut events, _dir) = joined();
        let conversation = ConversationId::room(ALICE.parse().unwrap(), room());
        let ours = worker
            .accept_message(&conversation, "hello".into(), false)
            .unwrap();
        let _ = room_events(&mut events);
        // The room reflects ours: delivered, not a second copy.
        worker.on_message(groupchat("Alice", "hello", Some(&ours.id), "r1"));
        // Bob's, twice (a repeat after a rejoin): one record, his nick on it.
        worker.on_message(groupchat("Bob", "hi", Some("bob-1"), "r2"));
        worker.on_message(groupchat("Bob", "hi", Some("bob-1"), "r2"));
        let page = worker.store.page(&conversation, None, 10).unwrap();
        let shown: Vec<(&str, Delivery, Option<&str>)> = page
            .records
            .iter()
            .map(|r| (r.body.as_str(), r.state, r.sender.nick.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("hello", Delivery::Delivered, None),
                ("hi", Delivery::Received, Some("Bob")),
            ]
        );
        assert_eq!(page.records[1].archive_id.as_deref(), Some("r2"));
    }

    /// One message of the room's archive, as the room sends it for `query`.
    fn room_archived(query: &ArchiveQuery, from: &str, n: usize) -> Message {
        let stamp = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").unwrap()
            + chrono::Duration::seconds(i64::try_from(n).unwrap());
        let mut inner = groupchat("Bob", &format!("bob {n:04}"), None, &format!("r-{n:04}"));
        inner.payloads.clear();
        let result = ArchiveResult {
            id: format!("r-{n:04}"),
            queryid: query.queryid.clone(),
            forwarded: Forwarded {
                delay: Some(Delay {
                    from: None,
                    stamp: tokio_xmpp::parsers::date::DateTime(stamp),
                    data: None,
                }),
                message: inner,
            },
        };
        let mut m = Message::new(Some(jid("alice@example.org/tern")));
        m.from = Some(jid(from));
        m.payloads.push(result.into());
        m
    }

    fn room_fin(complete: bool, last: usize) -> Option<tokio_xmpp::minidom::Element> {
        Some(
            Fin {
                complete,
                set: SetResult {
                    first: None,
                    last: Some(format!("r-{last:04}")),
                    count: None,
                },
            }
            .into(),
        )
    }

    /// With a position in the room's archive, a join asks the room for no
    /// history and catches up from the archive once in: only the room's
    /// results count, each page moves the position, and live messages move
    /// it only once the catch-up is done.
    #[test]
    fn a_join_with_a_position_catches_up_from_the_rooms_archive() {
        let (mut worker, mut events, _dir) = test_worker();
        let mut pending = Requests::new(worker.account.clone());
        let conversation = ConversationId::room(ALICE.parse().unwrap(), room());
        worker
            .store
            .set_room_cursor(&conversation, "r-0000")
            .unwrap();
        let join = worker.join_room(room(), "Alice".into(), None, true);
        let history = match &join[..] {
            [Stanza::Presence(p)] => p
                .payloads
                .iter()
                .find_map(|p| Muc::try_from(p.clone()).ok())
                .and_then(|m| m.history),
            other => panic!("not a join: {other:?}"),
        };
        assert_eq!(history.and_then(|h| h.maxstanzas), Some(0));
        worker.on_presence(occupant(
            "Alice",
            vec![Status::SelfPresence],
            PresenceType::None,
        ));
        let due = std::mem::take(&mut worker.room_catch_ups_due);
        assert_eq!(due, [room()]);
        let asked = worker.start_room_catch_up(room(), &mut pending);
        let (iq, query) = query_in(&asked);
        assert!(
            matches!(&asked[..], [Stanza::Iq(Iq::Set { to: Some(to), .. })] if to.as_str() == ROOM)
        );
        assert_eq!(query.set.as_ref().unwrap().after.as_deref(), Some("r-0000"));
        // A live message during the catch-up (the archive lists it too) is
        // stored but moves nothing.
        worker.on_message(groupchat("Bob", "bob 0003", None, "r-0003"));
        // Results for our query from anyone but the room are forgeries.
        worker.on_message(room_archived(&query, "mallory@example.org/x", 1));
        worker.on_message(room_archived(&query, ALICE, 1));
        for n in 1..=2 {
            worker.on_message(room_archived(&query, ROOM, n));
        }
        // Its answer from anyone but the room, too.
        let (_, next) = worker.on_iq(
            answer(&iq, Some("mallory@example.org/x"), room_fin(false, 2)),
            &mut pending,
        );
        assert!(next.is_empty());
        let cursor = |worker: &Worker| worker.store.room_cursor(&conversation).unwrap();
        assert_eq!(cursor(&worker).as_deref(), Some("r-0000"));
        let (_, next) = worker.on_iq(answer(&iq, Some(ROOM), room_fin(false, 2)), &mut pending);
        assert_eq!(cursor(&worker).as_deref(), Some("r-0002"));
        let (iq, query) = query_in(&next);
        assert_eq!(query.set.as_ref().unwrap().after.as_deref(), Some("r-0002"));
        worker.on_message(room_archived(&query, ROOM, 3));
        worker.on_iq(answer(&iq, Some(ROOM), room_fin(true, 3)), &mut pending);
        assert!(worker.room_catch_ups.is_empty());
        assert_eq!(cursor(&worker).as_deref(), Some("r-0003"));
        let bodies: Vec<String> = worker
            .store
            .page(&conversation, None, 10)
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.body)
            .collect();
        assert_eq!(bodies, ["bob 0001", "bob 0002", "bob 0003"]);
        let shown: usize = std::iter::from_fn(|| events.try_recv().ok())
            .map(|e| match e {
                Event::Messages(m) => m.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(shown, 3, "each one shown once");
        // Caught up: live messages move the position now.
        worker.on_message(groupchat("Bob", "live after", None, "r-0005"));
        assert_eq!(cursor(&worker).as_deref(), Some("r-0005"));
    }

    /// A silent room is asked whether we are in it (XEP-0410): once per
    /// silence, to our own nickname there; only the room's answer counts, and
    /// only an error that says "not in" makes us join again.
    #[test]
    fn a_silent_room_is_self_pinged_and_rejoined_only_when_it_forgot_us() {
        let (mut worker, mut events, _dir) = joined();
        let mut pending = Requests::new(worker.account.clone());
        let now = Instant::now();
        assert!(
            worker.due_self_pings(now, &mut pending).is_empty(),
            "not silent yet"
        );
        let later = now + worker.room_silence + Duration::from_secs(1);
        let ping = worker.due_self_pings(later, &mut pending);
        let id = match &ping[..] {
            [
                Stanza::Iq(Iq::Get {
                    id, to: Some(to), ..
                }),
            ] => {
                assert_eq!(to.as_str(), "lounge@conference.example.org/Alice");
                id.clone()
            }
            other => panic!("not a self-ping: {other:?}"),
        };
        assert!(
            worker.due_self_pings(later, &mut pending).is_empty(),
            "one at a time"
        );
        let error = |from: &str, condition| Iq::Error {
            from: Some(jid(from)),
            to: None,
            id: id.clone(),
            error: StanzaError::new(ErrorType::Cancel, condition, "en", ""),
            payload: None,
        };
        // Someone else saying we are out changes nothing.
        worker.on_iq(
            error(
                "lounge@conference.example.org/Bob",
                DefinedCondition::NotAcceptable,
            ),
            &mut pending,
        );
        assert!(worker.outq.is_empty());
        assert!(worker.rooms[&room()].joined);
        // "Passed on to your client, which did not understand": still in.
        worker.on_iq(
            error(
                "lounge@conference.example.org/Alice",
                DefinedCondition::ServiceUnavailable,
            ),
            &mut pending,
        );
        assert!(worker.outq.is_empty() && worker.rooms[&room()].joined);
        // Asked again after the next silence; "not an occupant": join again.
        let later = Instant::now() + worker.room_silence + Duration::from_secs(1);
        let ping = worker.due_self_pings(later, &mut pending);
        let [Stanza::Iq(Iq::Get { id, .. })] = &ping[..] else {
            panic!("no second self-ping: {ping:?}");
        };
        let _ = room_events(&mut events);
        worker.on_iq(
            Iq::Error {
                from: Some(jid("lounge@conference.example.org/Alice")),
                to: None,
                id: id.clone(),
                error: StanzaError::new(
                    ErrorType::Cancel,
                    DefinedCondition::NotAcceptable,
                    "en",
                    "",
                ),
                payload: None,
            },
            &mut pending,
        );
        assert_eq!(room_events(&mut events), [RoomEvent::Rejoining]);
        assert!(
            matches!(worker.outq.front().map(|s| &**s), Some(Stanza::Presence(p))
            if p.to.as_ref().map(|j| j.as_str()) == Some("lounge@conference.example.org/Alice")
                && p.payloads.iter().any(|p| p.is("x", "http://jabber.org/protocol/muc")))
        );
        assert!(!worker.rooms[&room()].joined);
    }

    /// An invitation through the room names the inviter, who must be a
    /// contact; the room is who sends it.
    #[test]
    fn a_mediated_invitation_from_a_contact_is_shown() {
        use tokio_xmpp::parsers::muc::user::Invite;
        let (mut worker, mut events, _dir) = test_worker();
        let invite = |by: &str| {
            let mut user = MucUser::new();
            user.invite = Some(Invite {
                from: Some(jid(by)),
                to: None,
                reason: Some("standup".into()),
            });
            let mut m = Message::new(Some(jid(ALICE)));
            m.from = Some(jid(ROOM));
            m.payloads.push(user.into());
            m
        };
        worker.on_message(invite("mallory@example.org/x"));
        assert!(
            room_events(&mut events).is_empty(),
            "a stranger's is dropped"
        );
        worker.contacts.insert("bob@example.org".parse().unwrap());
        worker.on_message(invite("bob@example.org/phone"));
        assert_eq!(
            room_events(&mut events),
            [RoomEvent::Invited {
                by: "bob@example.org".parse().unwrap(),
                reason: Some("standup".into()),
                password: None,
                mediated: true,
            }]
        );
    }

    /// Joined again by itself after a new session, a room not there yet
    /// (locked while its new maker sets it up) is tried again, a few times;
    /// a join the user asked for says "not found" at once.
    #[test]
    fn a_room_not_there_yet_is_tried_again_after_a_new_session() {
        use super::super::rooms::REJOIN_DELAYS;
        let not_found = || {
            let mut error = Presence::new(PresenceType::Error);
            error.from = Some(jid(&format!("{ROOM}/Alice")));
            error.payloads.push(
                StanzaError::new(
                    ErrorType::Cancel,
                    DefinedCondition::ItemNotFound,
                    "en",
                    "no",
                )
                .into(),
            );
            error
        };
        let (mut worker, mut events, _dir) = joined();
        assert_eq!(worker.rejoin_rooms().len(), 1);
        let start = Instant::now();
        for tries in 0..REJOIN_DELAYS.len() {
            worker.on_presence(not_found());
            assert!(room_events(&mut events).is_empty(), "not a failure yet");
            assert!(worker.due_rejoins(start).is_empty(), "not at once");
            let later =
                start + REJOIN_DELAYS[..=tries].iter().sum::<Duration>() + Duration::from_secs(1);
            assert_eq!(worker.due_rejoins(later).len(), 1, "try {tries}");
        }
        worker.on_presence(not_found());
        assert_eq!(
            room_events(&mut events),
            [RoomEvent::JoinFailed(JoinError::NotFound)]
        );
        assert!(worker.rooms.is_empty());
        // Asked for by the user: said at once.
        worker.join_room(room(), "Alice".into(), None, true);
        worker.on_presence(not_found());
        assert_eq!(
            room_events(&mut events),
            [RoomEvent::JoinFailed(JoinError::NotFound)]
        );
    }

    /// A room that claims ever more occupants makes the window hold a
    /// bounded number of them; those who leave make room for others.
    #[test]
    fn occupants_are_bounded() {
        use super::super::rooms::MAX_OCCUPANTS;
        let (mut worker, mut events, _dir) = joined();
        for n in 0..MAX_OCCUPANTS + 50 {
            worker.on_presence(occupant(&format!("bot{n}"), vec![], PresenceType::None));
        }
        let shown = room_events(&mut events)
            .into_iter()
            .filter(|e| matches!(e, RoomEvent::Occupant(_)))
            .count();
        // Bob and Alice were in already.
        assert_eq!(shown, MAX_OCCUPANTS - 2);
        worker.on_presence(occupant("bot0", vec![], PresenceType::Unavailable));
        worker.on_presence(occupant("latecomer", vec![], PresenceType::None));
        assert!(
            room_events(&mut events)
                .iter()
                .any(|e| matches!(e, RoomEvent::Occupant(o) if o.nick == "latecomer"))
        );
    }

    #[test]
    fn rooms_not_joined_say_nothing_and_messages_wait_for_the_join() {
        let (mut worker, mut events, _dir) = test_worker();
        let conversation = ConversationId::room(ALICE.parse().unwrap(), room());
        // A groupchat message from a room we are not in is not stored.
        worker.on_message(groupchat("Mallory", "buy now", None, "x1"));
        assert!(
            worker
                .store
                .page(&conversation, None, 10)
                .unwrap()
                .records
                .is_empty()
        );
        // Written before the join: it waits in the outbox, then goes.
        let early = worker
            .accept_message(&conversation, "early".into(), false)
            .unwrap();
        assert!(worker.waits_for_join(&early));
        worker.join_room(room(), "Alice".into(), None, true);
        worker.on_presence(occupant(
            "Alice",
            vec![Status::SelfPresence],
            PresenceType::None,
        ));
        assert!(!worker.waits_for_join(&early));
        assert_eq!(
            worker
                .room_ready
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            [early.id.as_str()]
        );
        let _ = room_events(&mut events);
        // Someone else thrown out is said to be, not just gone.
        worker.on_presence(occupant("Bob", vec![], PresenceType::None));
        worker.on_presence(occupant(
            "Bob",
            vec![Status::Banned],
            PresenceType::Unavailable,
        ));
        assert_eq!(
            room_events(&mut events).last(),
            Some(&RoomEvent::OccupantLeft {
                nick: "Bob".into(),
                new_nick: None,
                why: LeftReason::Banned(None),
            })
        );
        // Kicked: out for good, and said why; a shutdown: joined again later.
        worker.on_presence(occupant(
            "Alice",
            vec![Status::SelfPresence, Status::Kicked],
            PresenceType::Unavailable,
        ));
        assert_eq!(
            room_events(&mut events),
            [RoomEvent::Left(LeftReason::Kicked(None))]
        );
        assert!(worker.rooms.is_empty());
        worker.join_room(room(), "Alice".into(), None, true);
        worker.on_presence(occupant(
            "Alice",
            vec![Status::SelfPresence],
            PresenceType::None,
        ));
        worker.on_presence(occupant(
            "Alice",
            vec![Status::SelfPresence, Status::ServiceShutdown],
            PresenceType::Unavailable,
        ));
        assert!(worker.rooms.contains_key(&room()));
        assert_eq!(worker.rejoin_rooms().len(), 1);
    }
}
