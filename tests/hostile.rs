//! Contacts who are not friendly, and servers that misbehave, against a real
//! Prosody: nothing they send may cost a message or change what it must not.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/client.rs"]
mod client;
#[path = "support/fake_server.rs"]
mod fake_server;
#[path = "support/prosody.rs"]
mod prosody;
#[path = "support/raw.rs"]
mod raw;

use std::sync::Arc;
use std::time::{Duration, Instant};

use client::{Client, settings, sign_in};
use prosody::Prosody;
use tern::store::Delivery;
use tern::xmpp::{BareJid, Event};

fn accounts() -> [(&'static str, &'static str); 3] {
    [
        ("alice", "alicepass"),
        ("bob", "bobpass"),
        ("carol", "carolpass"),
    ]
}

fn jid(s: &str) -> BareJid {
    s.parse().unwrap()
}

fn alice_settings(server: &Prosody) -> tern::xmpp::Settings {
    settings(
        &server.address(),
        &server.ca(),
        "alice@localhost",
        "alicepass",
    )
}

fn raw_client(server: &Prosody, user: &str) -> tern::xmpp::Settings {
    settings(
        &server.address(),
        &server.ca(),
        &format!("{user}@localhost"),
        &format!("{user}pass"),
    )
}

/// Sends `n` messages from `from` to `to` and waits until the server has them all.
async fn send_many(from: &mut Client, to: &BareJid, n: usize, prefix: &str) {
    for i in 0..n {
        from.handle
            .send_message(to.clone(), format!("{prefix} {i:04}"));
    }
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while sent < n {
        assert!(Instant::now() < deadline, "{sent} of {n} sent");
        if from
            .next_event(
                Duration::from_secs(30),
                |e| matches!(e, Event::Updated(r) if r.state == Delivery::Sent),
            )
            .await
            .is_some()
        {
            sent += 1;
        }
    }
}

/// The bodies stored from `peer`, oldest first.
fn stored(alice: &Client, peer: &str) -> Vec<String> {
    alice
        .store
        .page(
            &tern::conversation::Id::chat_of("alice@localhost", peer).unwrap(),
            None,
            100_000,
        )
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.body)
        .collect()
}

/// Waits until `count` messages from `peer` are stored (or the time is up).
async fn wait_stored(alice: &mut Client, peer: &str, count: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let n = stored(alice, peer).len();
        if n >= count || Instant::now() >= deadline {
            return n;
        }
        // Keep the event queue drained while waiting.
        alice
            .next_event(Duration::from_millis(200), |_| false)
            .await;
    }
}

/// The attack of issue "hostile input never costs a message": while Alice's
/// Tern catches up on 1,500 messages from Carol, Bob, an ordinary contact who
/// sees her full JID, sends it hundreds of IQ errors with the ids an earlier
/// build used (`mam-page-N`, `sent-N`, `slot-N`, `disco-*`), then one message.
/// All 1,500 must be in the history, after the session and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_iq_errors_do_not_cut_the_archive_catch_up_short() {
    // Without offline storage, only the catch-up brings what came meanwhile.
    let server = Prosody::start_archive_only(&accounts(), &prosody::alice_and_bob());
    // Alice has used Tern before: her history has a position in the archive.
    let mut alice = sign_in(&server, "alice").await;
    let bob = sign_in(&server, "bob").await;
    bob.handle
        .send_message(jid("alice@localhost"), "hello alice".into());
    assert_eq!(
        wait_stored(&mut alice, "bob@localhost", 1, Duration::from_secs(10)).await,
        1
    );
    tokio::time::sleep(Duration::from_millis(500)).await; // the position is written after a flush
    let dir = alice.quit().await;
    drop(bob);

    let mut carol = sign_in(&server, "carol").await;
    send_many(&mut carol, &jid("alice@localhost"), 1500, "carol").await;

    let mut bob = raw::Raw::connect(raw_client(&server, "bob")).await;
    let mut alice = Client::spawn_in(alice_settings(&server), dir);
    alice.handle.connect(alice_settings(&server), false);
    // Bob learns Alice's full JID from her presence and fires at once.
    let presence = bob
        .next_presence(Duration::from_secs(10), |p| {
            p.from
                .as_ref()
                .is_some_and(|f| f.to_bare().as_str() == "alice@localhost")
                && p.type_ == tokio_xmpp::parsers::presence::Type::None
        })
        .await
        .expect("alice's presence");
    let full = presence.from.unwrap();
    let error = |id: &str, condition: &str| {
        format!(
            "<iq type='error' id='{id}' to='{full}'><error type='cancel'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        )
    };
    let mut forged = 0;
    for n in 0..300 {
        bob.send_xml(&error(&format!("mam-page-{n}"), "item-not-found"))
            .await;
        bob.send_xml(&error(&format!("mam-{n}"), "item-not-found"))
            .await;
        forged += 2;
        if n < 60 {
            for prefix in [
                "sent",
                "slot",
                "disco-items",
                "disco-info",
                "wake",
                "contact",
            ] {
                bob.send_xml(&error(&format!("{prefix}-{n}"), "internal-server-error"))
                    .await;
                forged += 1;
            }
        }
    }
    bob.send_xml(&error("roster-1", "internal-server-error"))
        .await;
    bob.send_message_xml(&format!(
        "<message to='{full}' type='chat' id='after-the-flood'><body>did you get carol's?</body></message>"
    ))
    .await;
    println!("bob sent {forged} forged IQ errors and a message");

    let got = wait_stored(&mut alice, "carol@localhost", 1500, Duration::from_secs(60)).await;
    assert_eq!(got, 1500, "carol's messages stored in the session");
    assert_eq!(
        wait_stored(&mut alice, "bob@localhost", 2, Duration::from_secs(10)).await,
        2,
        "bob's live message is shown too"
    );
    let expected: Vec<String> = (0..1500).map(|i| format!("carol {i:04}")).collect();
    assert_eq!(
        stored(&alice, "carol@localhost"),
        expected,
        "once each, in order"
    );

    // After a restart: still all there, and the position still works: what
    // Carol sends meanwhile is caught up, and nothing comes twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dir = alice.quit().await;
    send_many(&mut carol, &jid("alice@localhost"), 5, "later").await;
    let mut alice = Client::spawn_in(alice_settings(&server), dir);
    alice.handle.connect(alice_settings(&server), false);
    alice.wait_online(Duration::from_secs(10)).await;
    assert_eq!(
        wait_stored(&mut alice, "carol@localhost", 1505, Duration::from_secs(30)).await,
        1505
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = stored(&alice, "carol@localhost");
    assert_eq!(all.len(), 1505, "nothing twice");
    assert_eq!(all[..1500], expected[..]);
    assert_eq!(all[1504], "later 0004");
}

/// A new account's first sign-in finds its archive empty. Whatever arrives
/// before the next sign-in is caught up then, beyond a first sign-in's
/// window of 1,000 messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_account_catches_up_on_everything_at_its_second_sign_in() {
    let server = Prosody::start_archive_only(&accounts(), &prosody::alice_and_bob());
    let alice = sign_in(&server, "alice").await;
    tokio::time::sleep(Duration::from_secs(1)).await; // the empty first catch-up ends
    let dir = alice.quit().await;
    let mut carol = sign_in(&server, "carol").await;
    send_many(&mut carol, &jid("alice@localhost"), 1200, "carol").await;
    let mut alice = Client::spawn_in(alice_settings(&server), dir);
    alice.handle.connect(alice_settings(&server), false);
    alice.wait_online(Duration::from_secs(10)).await;
    let got = wait_stored(&mut alice, "carol@localhost", 1200, Duration::from_secs(60)).await;
    assert_eq!(got, 1200);
    let expected: Vec<String> = (0..1200).map(|i| format!("carol {i:04}")).collect();
    assert_eq!(stored(&alice, "carol@localhost"), expected);
    // What arrived since the first sign-in is news, not history.
    let conversations = alice.store.conversations("alice@localhost").unwrap();
    let carol_conv = conversations
        .iter()
        .find(|c| c.peer == "carol@localhost")
        .unwrap();
    assert_eq!(carol_conv.unread, 1200);
}

/// RFC 6121 §2.1.6: roster pushes come only from our own bare JID (our
/// server). Not from a contact, and not from another of our own devices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_pushes_come_only_from_our_own_bare_jid() {
    let server = Prosody::start_with_roster(&accounts(), &prosody::alice_and_bob());
    let mut alice = sign_in(&server, "alice").await;
    let tern = alice.full.clone().unwrap();
    let mut other_device = raw::Raw::connect(alice_settings(&server)).await;
    let bob = raw::Raw::connect(raw_client(&server, "bob")).await;
    let push = |id: &str, contact: &str| {
        format!(
            "<iq type='set' id='{id}' to='{tern}'><query xmlns='jabber:iq:roster'><item jid='{contact}' name='Mallory' subscription='both'/></query></iq>"
        )
    };
    let mut bob = bob;
    bob.send_xml(&push("from-bob", "mallory@evil.example"))
        .await;
    other_device
        .send_xml(&push("from-my-phone", "mallory2@evil.example"))
        .await;
    // Each is refused, and no contact appears.
    let refused = bob
        .next_iq(
            Duration::from_secs(5),
            |iq| matches!(iq, tokio_xmpp::parsers::iq::Iq::Error { id, .. } if id == "from-bob"),
        )
        .await;
    assert!(refused.is_some(), "bob's push is answered with an error");
    let refused = other_device
        .next_iq(Duration::from_secs(5), |iq| {
            matches!(iq, tokio_xmpp::parsers::iq::Iq::Error { id, .. } if id == "from-my-phone")
        })
        .await;
    assert!(
        refused.is_some(),
        "another resource's push is answered with an error"
    );
    let pushed = alice
        .next_event(Duration::from_secs(2), |e| {
            matches!(e, Event::RosterPush(_))
        })
        .await;
    assert!(
        pushed.is_none(),
        "a forged push changed the roster: {pushed:?}"
    );
}

/// Ids are no proof of identity: a contact whose client restarts its counter
/// or sends empty ids still has every message kept; a copy is still one.
/// Receipts and error replies change a message only when they come from the
/// peer it was sent to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_ids_and_receipts_from_the_wrong_peer() {
    let server = Prosody::start_with_roster(&accounts(), &prosody::alice_and_bob());
    let mut alice = sign_in(&server, "alice").await;
    let tern = alice.full.clone().unwrap();
    let bob = raw::Raw::connect(raw_client(&server, "bob")).await;
    let mut carol = raw::Raw::connect(raw_client(&server, "carol")).await;
    for (id, body) in [
        ("7", "hello"),
        ("7", "how are you?"),
        // Two messages, not copies: an empty id names nothing.
        ("", "ok"),
        ("", "ok"),
        ("7", "hello"),
        ("end", "end"),
    ] {
        bob.send_message_xml(&format!(
            "<message to='{tern}' type='chat' id='{id}'><body>{body}</body></message>"
        ))
        .await;
    }
    assert_eq!(
        wait_stored(&mut alice, "bob@localhost", 5, Duration::from_secs(10)).await,
        5
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stored(&alice, "bob@localhost"),
        ["hello", "how are you?", "ok", "ok", "end"],
        "the repeated 'hello' is a copy; the rest are different messages"
    );

    // Alice writes to Carol; Bob claims it was delivered, then that it failed.
    alice
        .handle
        .send_message(jid("carol@localhost"), "for carol".into());
    let got = carol
        .next_message(Duration::from_secs(5), |m| {
            m.bodies.values().any(|b| b == "for carol")
        })
        .await
        .expect("carol got it");
    let id = got.id.unwrap().0;
    assert!(
        alice
            .wait_state(&id, Delivery::Sent, Duration::from_secs(5))
            .await
    );
    bob.send_message_xml(&format!(
        "<message to='{tern}' id='r1'><received xmlns='urn:xmpp:receipts' id='{id}'/></message>"
    ))
    .await;
    bob.send_message_xml(&format!(
        "<message to='{tern}' type='error' id='{id}'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    ))
    .await;
    let changed = alice
        .next_event(
            Duration::from_secs(2),
            |e| matches!(e, Event::Updated(r) if r.id == id),
        )
        .await;
    assert!(
        changed.is_none(),
        "bob changed alice's message to carol: {changed:?}"
    );
    // Carol's own receipt counts.
    carol
        .send_message_xml(&format!(
            "<message to='{tern}' id='r2'><received xmlns='urn:xmpp:receipts' id='{id}'/></message>"
        ))
        .await;
    assert!(
        alice
            .wait_state(&id, Delivery::Delivered, Duration::from_secs(5))
            .await
    );
}

/// Alice's settings for a fake server (direct TLS, its own CA).
fn alice_at(server: &fake_server::FakeServer) -> tern::xmpp::Settings {
    let mut s = settings(
        &format!("127.0.0.1:{}", server.port),
        &server.ca(),
        "alice@localhost",
        "alicepass",
    );
    s.direct_tls = true;
    s
}

/// A server that lets us in without proving it knows the password (wrong or
/// missing SCRAM server signature) is refused; so is one asking for an absurd
/// number of PBKDF2 iterations, at once rather than after minutes of hashing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_prove_itself_or_asks_too_much_is_refused() {
    use fake_server::{FakeServer, Script};
    for script in [
        Script::WrongSignature,
        Script::NoSignature,
        Script::Iterations(4_000_000_000),
    ] {
        let server = FakeServer::start(script).await;
        let s = alice_at(&server);
        let t0 = Instant::now();
        let result = tern::xmpp::connector::connect(&s).await;
        let took = t0.elapsed();
        println!("{script:?}: {:?} after {took:?}", result.as_ref().err());
        let failure = result.err().expect("signed in to a fake server");
        match script {
            Script::Iterations(_) => {
                assert!(
                    matches!(failure, tern::xmpp::Failure::Protocol(_)),
                    "{failure:?}"
                );
                assert!(took < Duration::from_secs(2), "{took:?}");
            }
            _ => assert_eq!(failure, tern::xmpp::Failure::ServerUnproven),
        }
    }
}

/// A server whose first element never ends (64 MiB of one stream feature)
/// is left once that element passes the stanza limit, with a protocol error,
/// instead of growing the client until the attempt times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_sends_an_endless_element_is_left() {
    use fake_server::{FakeServer, Script};
    let server = FakeServer::start(Script::EndlessFeatures(64 << 20)).await;
    let s = alice_at(&server);
    let t0 = Instant::now();
    let result = tern::xmpp::connector::connect(&s).await;
    let took = t0.elapsed();
    println!(
        "endless element: {:?} after {took:?}",
        result.as_ref().err()
    );
    match result
        .err()
        .expect("connected to a server whose features never end")
    {
        tern::xmpp::Failure::Protocol(text) => assert!(text.contains("more than"), "{text}"),
        other => panic!("{other:?}"),
    }
}

/// XEP-0363: the upload is the slot's PUT succeeding. A service answering it
/// with a redirect to a GET that succeeds has not stored the file: a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_redirected_to_a_get_is_a_failure() {
    let server = fake_server::FakeHttps::start().await;
    let http = tern::transfer::Http::new(&tern::xmpp::Trust::from_pem_file(&server.ca()).unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("photo.jpg");
    std::fs::write(&file, vec![7u8; 100_000]).unwrap();
    let slot = tern::xmpp::Slot {
        put: format!("https://localhost:{}/upload/photo.jpg", server.port),
        get: format!("https://localhost:{}/upload/photo.jpg", server.port),
        headers: vec![],
    };
    let result = http
        .upload(&slot, &file, "image/jpeg", std::sync::Arc::new(|_| {}))
        .await;
    println!("upload answered with a redirect: {result:?}");
    assert!(result.is_err(), "a redirected upload counted as done");
}

/// A file server that sends the start of a file and then nothing (while
/// keeping the connection open) fails the download once nothing has moved
/// for the read timeout; no partial file is left in the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_stalls_fails_and_leaves_nothing() {
    let server = fake_server::FakeHttps::start().await;
    let trust = tern::xmpp::Trust::from_pem_file(&server.ca()).unwrap();
    let http =
        tern::transfer::Http::with_timeouts(&trust, Duration::from_secs(5), Duration::from_secs(2))
            .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let url = format!("https://localhost:{}/stall/big.iso", server.port);
    let moved = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = moved.clone();
    let progress: tern::transfer::Progress =
        Arc::new(move |n| seen.store(n, std::sync::atomic::Ordering::SeqCst));
    // The server holds the connection for 40 s: a download still waiting
    // after 20 s has no read timeout.
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        http.download(&url, folder.path(), Some(10_000_000), progress),
    )
    .await;
    println!(
        "stalled download after {:.1} s, {} bytes moved: {result:?}",
        started.elapsed().as_secs_f64(),
        moved.load(std::sync::atomic::Ordering::SeqCst)
    );
    let result = result.expect("the stalled download is still waiting after 20 s");
    assert!(
        matches!(result, Err(tern::transfer::Error::Stalled)),
        "{result:?}"
    );
    let left: Vec<_> = std::fs::read_dir(folder.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
