//! The XMPP worker against a real Prosody: sign-in, roster, presence, chat,
//! failures that must reach the user, reconnection, and a stall stress test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/client.rs"]
mod client;
#[path = "support/prosody.rs"]
mod prosody;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/raw.rs"]
mod raw;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use client::{Client, settings, sign_in};
use prosody::Prosody;
use tern::store::{Delivery, Direction};
use tern::xmpp::{Availability, ConnectionState, Event, Failure, OwnPresence, Subscription};

fn accounts() -> [(&'static str, &'static str); 2] {
    [("alice", "alicepass"), ("bob", "bobpass")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_roster_presence_and_chat() {
    let server = Prosody::start_with_roster(&accounts(), &prosody::alice_and_bob());
    let t0 = Instant::now();
    let mut alice = sign_in(&server, "alice").await;
    let login = t0.elapsed();
    let roster = alice
        .next_event(Duration::from_secs(5), |e| matches!(e, Event::Roster(_)))
        .await;
    let Some(Event::Roster(roster)) = roster else {
        panic!("no roster")
    };
    println!("alice signed in and got her roster in {login:?}");
    assert_eq!(roster.len(), 1);
    assert_eq!(roster[0].jid.as_str(), "bob@localhost");
    assert_eq!(roster[0].name.as_deref(), Some("Bob"));
    assert_eq!(roster[0].groups, vec!["Friends".to_string()]);
    assert_eq!(roster[0].subscription, Subscription::Both);

    let mut bob = sign_in(&server, "bob").await;
    bob.handle.set_presence(OwnPresence {
        availability: Availability::Away,
        status: "out for lunch".into(),
    });
    // Alice sees Bob's presence with show and status.
    let seen = alice
        .next_event(Duration::from_secs(5), |e| {
            matches!(e, Event::Presence { from, availability: Availability::Away, status }
                if from.to_bare().as_str() == "bob@localhost" && status.as_deref() == Some("out for lunch"))
        })
        .await;
    assert!(seen.is_some(), "alice never saw bob away");

    alice
        .handle
        .send_message(bob.jid.clone(), "hello bob 👋\nsecond line".into());
    let got = bob
        .next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
        .await;
    let Some(Event::Messages(records)) = got else {
        panic!("bob got nothing")
    };
    assert_eq!(records[0].body, "hello bob 👋\nsecond line");
    assert_eq!(
        records[0].conversation.peer().to_string(),
        "alice@localhost"
    );
    assert_eq!(records[0].direction, Direction::In);

    // Both histories hold the message, stored before it was shown.
    let page = bob
        .store
        .page(
            &tern::conversation::Id::chat_of("bob@localhost", "alice@localhost").unwrap(),
            None,
            50,
        )
        .unwrap();
    assert_eq!(page.records.len(), 1);
    let page = alice
        .store
        .page(
            &tern::conversation::Id::chat_of("alice@localhost", "bob@localhost").unwrap(),
            None,
            50,
        )
        .unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].direction, Direction::Out);
    let convs = bob.store.conversations("bob@localhost").unwrap();
    assert_eq!(convs[0].unread, 1);

    // Going offline is seen by the contact.
    bob.handle.disconnect();
    let gone = alice
        .next_event(Duration::from_secs(5), |e| {
            matches!(
                e,
                Event::Presence {
                    availability: Availability::Offline,
                    ..
                }
            )
        })
        .await;
    assert!(gone.is_some(), "alice never saw bob leave");
}

/// Counts panics of tokio-xmpp's background task that Tern's workaround
/// (see `reconnector` in src/xmpp/worker.rs) must prevent. Process-wide: any
/// test of this binary that sets one off is caught.
fn watch_for_backend_panics() -> &'static std::sync::atomic::AtomicUsize {
    static SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .to_string()
                .contains("Backend was unable to handle reconnect")
            {
                SEEN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            previous(info);
        }));
    });
    &SEEN
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_reported_fast_and_not_retried() {
    let backend_panics = watch_for_backend_panics();
    let server = Prosody::start(&[("alice", "alicepass")]);
    let mut alice = Client::spawn(settings(
        &server.address(),
        &server.ca(),
        "alice@localhost",
        "WRONG",
    ));
    let t0 = Instant::now();
    alice.handle.connect(alice.settings.clone(), true);
    let state = alice
        .next_connection_state(Duration::from_secs(10), |s| {
            matches!(s, ConnectionState::Offline(_))
        })
        .await;
    println!("wrong password reported after {:?}", t0.elapsed());
    assert!(
        matches!(&state, ConnectionState::Offline(Some(f)) if f.is_wrong_password()),
        "{state:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Nothing is retried: no further connection events.
    let more = alice
        .next_event(Duration::from_secs(3), |e| {
            matches!(e, Event::Connection(_))
        })
        .await;
    assert!(more.is_none(), "unexpected retry: {more:?}");
    // Even an automatic sign-in stops on a wrong password.
    alice.handle.connect(alice.settings.clone(), false);
    let state = alice
        .next_connection_state(Duration::from_secs(10), |s| {
            matches!(s, ConnectionState::Offline(_))
        })
        .await;
    assert!(
        matches!(&state, ConnectionState::Offline(Some(f)) if f.is_wrong_password()),
        "{state:?}"
    );
    // And the right password then works on the same worker.
    let mut good = alice.settings.clone();
    good.password = tern::xmpp::Password::new("alicepass");
    alice.handle.connect(good, true);
    alice.wait_online(Duration::from_secs(10)).await;
    // The streams given up on above ended without tokio-xmpp's task panicking.
    alice.handle.disconnect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        backend_panics.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "tokio-xmpp's task panicked on a dropped reconnection slot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_unknown_and_untrusted_servers_are_reported() {
    let server = Prosody::start(&[("alice", "alicepass")]);

    // Nothing listens on this port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut s = settings(
        &server.address(),
        &server.ca(),
        "alice@localhost",
        "alicepass",
    );
    s.port = Some(closed);
    let mut c = Client::spawn(s.clone());
    let t0 = Instant::now();
    c.handle.connect(s, true);
    let state = c
        .next_connection_state(Duration::from_secs(20), |s| {
            matches!(s, ConnectionState::Offline(_))
        })
        .await;
    println!("unreachable: {state:?} after {:?}", t0.elapsed());
    assert!(matches!(
        state,
        ConnectionState::Offline(Some(Failure::Unreachable(_)))
    ));

    // A host name that does not exist (.invalid never resolves, RFC 2606).
    let mut s = settings(
        &server.address(),
        &server.ca(),
        "alice@localhost",
        "alicepass",
    );
    s.host = Some("tern-test.invalid".into());
    let mut c = Client::spawn(s.clone());
    let t0 = Instant::now();
    c.handle.connect(s, true);
    let state = c
        .next_connection_state(Duration::from_secs(20), |s| {
            matches!(s, ConnectionState::Offline(_))
        })
        .await;
    println!("unknown host: {state:?} after {:?}", t0.elapsed());
    assert!(
        matches!(
            state,
            ConnectionState::Offline(Some(Failure::UnknownHost(_) | Failure::Timeout))
        ),
        "{state:?}"
    );

    // A certificate from a CA the client does not trust.
    let other = Prosody::start(&[]);
    let mut s = settings(
        &server.address(),
        &other.ca(),
        "alice@localhost",
        "alicepass",
    );
    s.trust = tern::xmpp::Trust::from_pem_file(&other.ca()).unwrap();
    let mut c = Client::spawn(s.clone());
    let t0 = Instant::now();
    c.handle.connect(s.clone(), false);
    let state = c
        .next_connection_state(Duration::from_secs(20), |s| {
            matches!(s, ConnectionState::Offline(_))
        })
        .await;
    println!("untrusted certificate: {state:?} after {:?}", t0.elapsed());
    assert!(
        matches!(
            state,
            ConnectionState::Offline(Some(Failure::Certificate(_)))
        ),
        "{state:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_server_restart_and_announces_presence_again() {
    let mut server = Prosody::start_with_roster(&accounts(), &prosody::alice_and_bob());
    let mut alice = sign_in(&server, "alice").await;
    let mut bob = sign_in(&server, "bob").await;
    server.restart();
    // Alice notices, retries visibly, and comes back with a new session.
    let state = alice
        .next_connection_state(Duration::from_secs(90), |s| {
            matches!(s, ConnectionState::Online { resumed: false, .. })
        })
        .await;
    assert!(matches!(state, ConnectionState::Online { .. }));
    bob.next_connection_state(Duration::from_secs(90), |s| {
        matches!(s, ConnectionState::Online { .. })
    })
    .await;
    // Bob sees Alice available again: she re-sent presence on the new session.
    let seen = bob
        .next_event(Duration::from_secs(10), |e| {
            matches!(e, Event::Presence { from, availability: Availability::Available, .. }
                if from.to_bare().as_str() == "alice@localhost")
        })
        .await;
    assert!(seen.is_some(), "bob never saw alice come back");
    alice
        .handle
        .send_message(bob.jid.clone(), "after restart".into());
    let got = bob
        .next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
        .await;
    assert!(got.is_some());
}

/// tokio-xmpp 6's `Client` stalls when sends and receives collide; the worker
/// is built to avoid that. Both sides send while receiving and changing
/// presence; any silence of 10 s with messages outstanding fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_overlapping_sends_and_receives_never_stall() {
    const N: usize = 600;
    const ROUNDS: usize = 3;
    let server = Prosody::start_with_roster(&accounts(), &prosody::alice_and_bob());
    let mut alice = sign_in(&server, "alice").await;
    let mut bob = sign_in(&server, "bob").await;
    for round in 0..ROUNDS {
        let t0 = Instant::now();
        for i in 0..N {
            alice
                .handle
                .send_message(bob.jid.clone(), format!("a{round}-{i}"));
            bob.handle
                .send_message(alice.jid.clone(), format!("b{round}-{i}"));
            if i % 50 == 0 {
                let p = OwnPresence {
                    availability: Availability::Chat,
                    status: format!("{i}"),
                };
                alice.handle.set_presence(p.clone());
                bob.handle.set_presence(p);
            }
        }
        let (from_bob, from_alice) = (format!("b{round}-"), format!("a{round}-"));
        let (a, b) = tokio::join!(
            receive(&mut alice, N, &from_bob),
            receive(&mut bob, N, &from_alice)
        );
        println!(
            "stress round {round}: alice got {a}/{N}, bob got {b}/{N} in {:?}",
            t0.elapsed()
        );
        assert_eq!((a, b), (N, N), "stalled in round {round}");
    }
    let total = alice
        .store
        .page(
            &tern::conversation::Id::chat_of("alice@localhost", "bob@localhost").unwrap(),
            None,
            10_000,
        )
        .unwrap();
    assert_eq!(total.records.len(), 2 * N * ROUNDS);
}

/// Counts distinct incoming bodies starting with `prefix` until `n`, or a 10 s silence.
async fn receive(client: &mut Client, n: usize, prefix: &str) -> usize {
    let mut got = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < n && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), client.events.recv()).await {
            Ok(Some(Event::Messages(records))) => {
                for r in records {
                    if r.direction == Direction::In && r.body.starts_with(prefix) {
                        got.insert(r.body);
                    }
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    got.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_contact_and_accepting_makes_a_mutual_subscription() {
    let server = Prosody::start(&[("alice", "alicepass"), ("carol", "carolpass")]);
    let mut alice = sign_in(&server, "alice").await;
    let mut carol = sign_in(&server, "carol").await;
    alice
        .handle
        .add_contact(carol.jid.clone(), Some("Carol".into()));
    let push = alice
        .next_event(
            Duration::from_secs(5),
            |e| matches!(e, Event::RosterPush(c) if c.jid == carol.jid),
        )
        .await;
    let Some(Event::RosterPush(contact)) = push else {
        panic!("no roster push")
    };
    assert_eq!(contact.name.as_deref(), Some("Carol"));

    let request = carol
        .next_event(Duration::from_secs(5), |e| {
            matches!(e, Event::SubscriptionRequest(_))
        })
        .await;
    let Some(Event::SubscriptionRequest(from)) = request else {
        panic!("carol got no request")
    };
    assert_eq!(from, alice.jid);
    carol.handle.answer_subscription(from, true);

    // Alice's roster ends up mutual, and each sees the other online.
    let mutual = alice
        .next_event(Duration::from_secs(5), |e| {
            matches!(e, Event::RosterPush(c) if c.jid == carol.jid && c.subscription == Subscription::Both)
        })
        .await;
    assert!(mutual.is_some(), "alice's roster never became mutual");
    let seen = alice
        .next_event(Duration::from_secs(5), |e| {
            matches!(e, Event::Presence { from, availability: Availability::Available, .. }
                if from.to_bare().as_str() == "carol@localhost")
        })
        .await;
    assert!(seen.is_some(), "alice never saw carol's presence");
}

/// Pending → sent (the server has it) → delivered (the peer's receipt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_messages_become_sent_then_delivered() {
    let server = Prosody::start_with_roster(
        &[
            ("alice", "alicepass"),
            ("bob", "bobpass"),
            ("carol", "carolpass"),
        ],
        &prosody::alice_and_bob(),
    );
    let mut alice = sign_in(&server, "alice").await;
    // Carol is offline: no receipt can come, but the server takes the message at
    // once (tokio-xmpp alone would confirm it only after a 60 s read timeout).
    let t0 = Instant::now();
    alice
        .handle
        .send_message("carol@localhost".parse().unwrap(), "for later".into());
    let Some(Event::Messages(shown)) = alice
        .next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
        .await
    else {
        panic!("not shown")
    };
    assert_eq!(shown[0].state, Delivery::Pending);
    assert!(
        alice
            .wait_state(&shown[0].id, Delivery::Sent, Duration::from_secs(3))
            .await,
        "not sent"
    );
    println!("sent mark after {:?}", t0.elapsed());
    assert!(alice.store.outbox("alice@localhost").unwrap().is_empty());

    let mut bob = sign_in(&server, "bob").await;
    alice
        .handle
        .send_message(bob.jid.clone(), "track me".into());
    let Some(Event::Messages(shown)) = alice
        .next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
        .await
    else {
        panic!("not shown")
    };
    let id = shown[0].id.clone();
    assert!(
        alice
            .wait_state(&id, Delivery::Delivered, Duration::from_secs(10))
            .await,
        "no receipt"
    );
    let got = bob
        .store
        .page(
            &tern::conversation::Id::chat_of("bob@localhost", "alice@localhost").unwrap(),
            None,
            10,
        )
        .unwrap();
    assert_eq!(got.records.len(), 1);
    assert_eq!(got.records[0].id, id);
    let _ = bob.events.try_recv();
}

/// A link that goes silent without closing (a NAT that forgot us, a Wi-Fi
/// change) is noticed by the liveness probe; what was typed meanwhile waits
/// in the outbox and is delivered once when the link is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_dead_link_is_noticed_and_nothing_is_lost() {
    let server = Prosody::start_with_roster(&accounts(), &prosody::alice_and_bob());
    let proxy = proxy::Proxy::start(server.port).await;
    let mut alice_settings = settings(
        &format!("127.0.0.1:{}", proxy.port),
        &server.ca(),
        "alice@localhost",
        "alicepass",
    );
    // Shorter than the default 30 s + 15 s so that the test stays quick.
    alice_settings.liveness = tern::xmpp::Liveness {
        probe_after: Duration::from_secs(2),
        answer_within: Duration::from_secs(2),
        ..Default::default()
    };
    let mut alice = Client::online(alice_settings).await;
    let mut bob = sign_in(&server, "bob").await;

    proxy.stall();
    let t0 = Instant::now();
    alice
        .handle
        .send_message(bob.jid.clone(), "typed into a dead link".into());
    let Some(Event::Messages(shown)) = alice
        .next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
        .await
    else {
        panic!("not shown")
    };
    let id = shown[0].id.clone();
    alice
        .next_connection_state(Duration::from_secs(15), |s| {
            !matches!(s, ConnectionState::Online { .. })
        })
        .await;
    let noticed = t0.elapsed();
    println!("a silent link was noticed after {noticed:?} (probe 2 s + answer 2 s)");
    assert!(
        noticed >= Duration::from_secs(2),
        "noticed before the probe could run: {noticed:?}"
    );
    assert_eq!(
        alice.store.outbox("alice@localhost").unwrap().len(),
        1,
        "the message must wait in the outbox"
    );

    proxy.restore();
    // (Attempts made during the stall may still report their failure first.)
    alice
        .next_connection_state(Duration::from_secs(20), |s| {
            matches!(s, ConnectionState::Online { .. })
        })
        .await;
    assert!(
        alice
            .wait_state(&id, Delivery::Delivered, Duration::from_secs(15))
            .await,
        "not delivered after the link came back"
    );
    let got = bob
        .store
        .page(
            &tern::conversation::Id::chat_of("bob@localhost", "alice@localhost").unwrap(),
            None,
            10,
        )
        .unwrap();
    let copies = got.records.iter().filter(|r| r.id == id).count();
    assert_eq!(copies, 1, "bob must hold the message exactly once");
    let _ = bob.events.try_recv();
}

/// Typed while the server is down, Tern closed, server back, Tern restarted: delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_survives_restarts_and_is_delivered_once() {
    let mut server = Prosody::start_with_roster(&accounts(), &prosody::alice_and_bob());
    let alice_settings = settings(
        &server.address(),
        &server.ca(),
        "alice@localhost",
        "alicepass",
    );
    let mut alice = sign_in(&server, "alice").await;
    server.stop();
    for n in 0..5 {
        alice
            .handle
            .send_message("bob@localhost".parse().unwrap(), format!("while down {n}"));
    }
    for _ in 0..5 {
        alice
            .next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
            .await;
    }
    assert_eq!(alice.store.outbox("alice@localhost").unwrap().len(), 5);
    // Tern is closed; the server comes back; Tern starts again with the same history.
    let dir = alice.quit().await;
    server.restart();
    let mut bob = sign_in(&server, "bob").await;
    let mut alice = Client::spawn_in(alice_settings.clone(), dir);
    alice.handle.connect(alice_settings, false);
    alice.wait_online(Duration::from_secs(10)).await;
    let mut delivered = 0;
    for _ in 0..20 {
        if alice
            .next_event(
                Duration::from_secs(5),
                |e| matches!(e, Event::Updated(r) if r.state == Delivery::Delivered),
            )
            .await
            .is_some()
        {
            delivered += 1;
        }
        if delivered == 5 {
            break;
        }
    }
    assert_eq!(delivered, 5);
    // Bob may have received copies (offline storage and the resend): he stores each once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let page = bob
        .store
        .page(
            &tern::conversation::Id::chat_of("bob@localhost", "alice@localhost").unwrap(),
            None,
            50,
        )
        .unwrap();
    let bodies: Vec<_> = page.records.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(
        bodies,
        (0..5)
            .map(|n| format!("while down {n}"))
            .collect::<Vec<_>>()
    );
    assert!(alice.store.outbox("alice@localhost").unwrap().is_empty());
    let _ = bob.events.try_recv();
}

/// A second device of Alice's: what it sends and receives shows up in Tern via carbons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carbons_bring_the_other_device_s_messages() {
    let server = Prosody::start_with_roster(&accounts(), &prosody::alice_and_bob());
    let mut alice = sign_in(&server, "alice").await;
    let mut phone = sign_in(&server, "alice").await;
    let bob = sign_in(&server, "bob").await;
    // Give carbons enabling a moment on both of Alice's sessions.
    tokio::time::sleep(Duration::from_millis(300)).await;
    phone
        .handle
        .send_message(bob.jid.clone(), "sent from the phone".into());
    bob.handle
        .send_message(alice.jid.clone(), "to alice, both devices".into());
    let mut seen = Vec::new();
    for _ in 0..2 {
        if let Some(Event::Messages(records)) = alice
            .next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
            .await
        {
            seen.extend(records);
        }
    }
    seen.sort_by_key(|r| r.body.clone());
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].body, "sent from the phone");
    assert_eq!(seen[0].direction, Direction::Out);
    assert!(seen[0].other_device);
    assert_eq!(seen[0].conversation.peer().to_string(), "bob@localhost");
    assert_eq!(seen[1].body, "to alice, both devices");
    assert_eq!(seen[1].direction, Direction::In);
    let _ = phone.events.try_recv();
}

/// Messages Alice's phone sent and received while Tern was closed come back
/// from the server's archive (XEP-0313) when Tern starts, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_catch_up_brings_what_happened_while_tern_was_closed() {
    let server = Prosody::start_with_roster(&accounts(), &prosody::alice_and_bob());
    let alice_settings = settings(
        &server.address(),
        &server.ca(),
        "alice@localhost",
        "alicepass",
    );
    let mut alice = sign_in(&server, "alice").await;
    let mut phone = sign_in(&server, "alice").await;
    let bob = sign_in(&server, "bob").await;
    bob.handle
        .send_message(alice.jid.clone(), "before closing".into());
    alice
        .next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
        .await;
    // Tern is closed; the phone carries on.
    let dir = alice.quit().await;
    for n in 0..3 {
        bob.handle
            .send_message(phone.jid.clone(), format!("while closed {n}"));
    }
    for _ in 0..3 {
        phone
            .next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
            .await;
    }
    phone
        .handle
        .send_message(bob.jid.clone(), "phone reply".into());
    phone
        .next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut alice = Client::spawn_in(alice_settings.clone(), dir);
    alice.handle.connect(alice_settings, false);
    alice.wait_online(Duration::from_secs(10)).await;
    let mut got = Vec::new();
    while let Some(Event::Messages(records)) = alice
        .next_event(Duration::from_secs(3), |e| matches!(e, Event::Messages(_)))
        .await
    {
        got.extend(records);
    }
    let bodies: Vec<_> = got.iter().map(|r| r.body.as_str()).collect();
    println!("caught up: {bodies:?}");
    let page = alice
        .store
        .page(
            &tern::conversation::Id::chat_of("alice@localhost", "bob@localhost").unwrap(),
            None,
            50,
        )
        .unwrap();
    let stored: Vec<_> = page.records.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(
        stored,
        vec![
            "before closing",
            "while closed 0",
            "while closed 1",
            "while closed 2",
            "phone reply"
        ]
    );
    let reply = &page.records[4];
    assert_eq!(reply.direction, Direction::Out);
    assert!(reply.other_device);
    assert!(
        page.records
            .iter()
            .all(|r| r.archive_id.is_some() || r.body == "before closing")
    );
}

/// A first sign-in fetches a bounded recent window of the archive, as history (not unread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sign_in_fetches_a_bounded_recent_window() {
    let server = Prosody::start_with_roster(&accounts(), &prosody::alice_and_bob());
    let mut phone = sign_in(&server, "alice").await;
    let bob = sign_in(&server, "bob").await;
    for n in 0..250 {
        bob.handle
            .send_message(phone.jid.clone(), format!("old {n:03}"));
    }
    let mut n = 0;
    while n < 250 {
        match phone
            .next_event(Duration::from_secs(10), |e| matches!(e, Event::Messages(_)))
            .await
        {
            Some(Event::Messages(r)) => n += r.len(),
            _ => panic!("phone got {n} of 250"),
        }
    }
    let mut s = settings(
        &server.address(),
        &server.ca(),
        "alice@localhost",
        "alicepass",
    );
    s.catch_up = tern::xmpp::CatchUp {
        days: 30,
        max_messages: 150,
    };
    let mut alice = Client::spawn(s.clone());
    alice.handle.connect(s, true);
    alice.wait_online(Duration::from_secs(10)).await;
    let mut fetched = 0;
    while let Some(Event::Backfill(records)) = alice
        .next_event(Duration::from_secs(3), |e| matches!(e, Event::Backfill(_)))
        .await
    {
        fetched += records.len();
    }
    let page = alice
        .store
        .page(
            &tern::conversation::Id::chat_of("alice@localhost", "bob@localhost").unwrap(),
            None,
            1000,
        )
        .unwrap();
    println!(
        "first sign-in fetched {fetched}, stored {}",
        page.records.len()
    );
    if std::env::var_os("FAULTS_VERBOSE").is_some() {
        for r in &page.records {
            println!(
                "{} {} {:?}",
                r.time.format("%H:%M:%S%.6f"),
                r.body,
                r.archive_id
            );
        }
    }
    // Whole pages of 100 up to the limit: the newest 200 of 250, in order.
    assert!(
        page.records.len() >= 150 && page.records.len() < 250,
        "{}",
        page.records.len()
    );
    assert_eq!(page.records.last().unwrap().body, "old 249");
    let mut sorted = page.records.clone();
    sorted.sort_by_key(|r| r.time);
    assert_eq!(sorted, page.records);
    assert_eq!(
        alice.store.conversations("alice@localhost").unwrap()[0].unread,
        0
    );

    // Scrolling up past the oldest local message fetches older pages. From a
    // time only (as for a message sent from here, which has no archive id):
    // the pages up to that second hold copies, skipped, then the 50 missing.
    let oldest = &page.records[0];
    let older = fetch_older(&mut alice, Some((oldest.time, None))).await;
    println!(
        "older history from a time: {} new, more: {}",
        older.0.len(),
        older.1
    );
    assert!(older.0.iter().all(|r| r.archive_id.is_some()));
    // A page may hold copies and older messages both (how many depends on how
    // the sends fell into whole seconds): it then says there is more, and the
    // window asks again from the oldest it has, as scrolling up does.
    let (mut got, mut more) = (older.0.len(), older.1);
    for _ in 0..10 {
        if !more {
            break;
        }
        let oldest = alice
            .store
            .page(
                &tern::conversation::Id::chat_of("alice@localhost", "bob@localhost").unwrap(),
                None,
                1000,
            )
            .unwrap()
            .records[0]
            .clone();
        let next = fetch_older(&mut alice, Some((oldest.time, oldest.archive_id))).await;
        println!("then {} new, more: {}", next.0.len(), next.1);
        got += next.0.len();
        more = next.1;
    }
    assert_eq!(got, 250 - page.records.len());
    let all = alice
        .store
        .page(
            &tern::conversation::Id::chat_of("alice@localhost", "bob@localhost").unwrap(),
            None,
            1000,
        )
        .unwrap()
        .records;
    assert_eq!(
        alice.store.conversations("alice@localhost").unwrap()[0].unread,
        0,
        "history is not news"
    );
    let bodies: Vec<String> = all.iter().map(|r| r.body.clone()).collect();
    let expected: Vec<String> = (0..250).map(|n| format!("old {n:03}")).collect();
    assert_eq!(bodies, expected, "all 250 once, in order");
    // From the oldest's archive id: nothing older, and the archive says so.
    let (none, more) =
        fetch_older(&mut alice, Some((all[0].time, all[0].archive_id.clone()))).await;
    assert!(none.is_empty() && !more, "{} more: {more}", none.len());

    // Offline, a fetch is answered at once with nothing (the UI may ask again later).
    alice.handle.disconnect();
    let (none, more) = fetch_older(&mut alice, None).await;
    assert!(none.is_empty() && more);
}

/// Asks the worker for the history before `before` and waits for its answer.
async fn fetch_older(
    client: &mut Client,
    before: Option<(chrono::DateTime<chrono::Utc>, Option<String>)>,
) -> (Vec<tern::conversation::Message>, bool) {
    let before = before.map(|(time, archive_id)| tern::xmpp::Oldest { time, archive_id });
    let chat = tern::conversation::Id::chat(client.jid.clone(), bob_jid());
    client.handle.fetch_older(chat.clone(), before);
    match client
        .next_event(Duration::from_secs(10), |e| {
            matches!(e, Event::History { .. })
        })
        .await
    {
        Some(Event::History {
            conversation,
            records,
            more,
        }) => {
            assert_eq!(conversation, chat);
            (records, more)
        }
        _ => panic!("no answer to a fetch of older history"),
    }
}

/// Hostile and odd input from a contact: forged carbons, archive results that
/// are not ours, error replies, messages without ids or with repeated ids, a
/// huge body, a date in the future. Nothing is forged into the history, nothing
/// real is lost, and the worker keeps going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_ignored_or_handled() {
    let server = Prosody::start_with_roster(
        &[
            ("alice", "alicepass"),
            ("bob", "bobpass"),
            ("carol", "carolpass"),
        ],
        &prosody::alice_and_bob(),
    );
    let mut alice = sign_in(&server, "alice").await;
    let mut bob = raw::Raw::connect(settings(
        &server.address(),
        &server.ca(),
        "bob@localhost",
        "bobpass",
    ))
    .await;
    alice
        .next_event(Duration::from_secs(5), |e| matches!(e, Event::Presence { from, .. } if from.to_bare().as_str() == "bob@localhost"))
        .await
        .expect("bob online");

    let to = "to='alice@localhost'";
    let forward = |from: &str, to: &str, body: &str| {
        format!(
            "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat' from='{from}' to='{to}'><body>{body}</body></message></forwarded>"
        )
    };
    // Forged carbons: "Carol wrote to you", "you wrote to Carol".
    bob.send_message_xml(&format!(
        "<message {to} type='chat' id='c1'><received xmlns='urn:xmpp:carbons:2'>{}</received></message>",
        forward("carol@localhost/x", "alice@localhost/y", "forged from carol")
    ))
    .await;
    bob.send_message_xml(&format!(
        "<message {to} type='chat' id='c2'><sent xmlns='urn:xmpp:carbons:2'>{}</sent></message>",
        forward("alice@localhost/y", "carol@localhost", "forged to carol")
    ))
    .await;
    // An archive result that does not come from Alice's archive, for a query she may be running.
    for query in ["mam-1", "mam-2", "other"] {
        bob.send_message_xml(&format!(
            "<message {to}><result xmlns='urn:xmpp:mam:2' queryid='{query}' id='evil-{query}'>{}</result></message>",
            forward("carol@localhost/x", "alice@localhost", "forged archive")
        ))
        .await;
    }
    // Two messages without ids, and a repeated id.
    bob.send_message_xml(&format!(
        "<message {to} type='chat'><body>no id</body></message>"
    ))
    .await;
    bob.send_message_xml(&format!(
        "<message {to} type='chat'><body>no id</body></message>"
    ))
    .await;
    bob.send_message_xml(&format!(
        "<message {to} type='chat' id='dup'><body>first</body></message>"
    ))
    .await;
    bob.send_message_xml(&format!(
        "<message {to} type='chat' id='dup'><body>first</body></message>"
    ))
    .await;
    // A date far in the future, and a big body.
    bob.send_message_xml(&format!(
        "<message {to} type='chat' id='future'><body>from the future</body><delay xmlns='urn:xmpp:delay' stamp='2099-01-01T00:00:00Z'/></message>"
    ))
    .await;
    let big = "x".repeat(150_000);
    bob.send_message_xml(&format!(
        "<message {to} type='chat' id='big'><body>{big}</body></message>"
    ))
    .await;
    bob.send_message_xml(&format!(
        "<message {to} type='chat' id='end'><body>end</body></message>"
    ))
    .await;

    let mut bodies = Vec::new();
    while !bodies.contains(&"end".to_string()) {
        match alice
            .next_event(Duration::from_secs(10), |e| matches!(e, Event::Messages(_)))
            .await
        {
            Some(Event::Messages(records)) => bodies.extend(records.into_iter().map(|r| {
                if r.body.len() > 100 {
                    format!("<{} bytes>", r.body.len())
                } else {
                    r.body
                }
            })),
            _ => panic!("alice stopped receiving; got {bodies:?}"),
        }
    }
    assert_eq!(
        bodies,
        vec![
            "no id",
            "no id",
            "first",
            "from the future",
            "<150000 bytes>",
            "end"
        ]
    );
    assert!(
        alice
            .store
            .conversations("alice@localhost")
            .unwrap()
            .iter()
            .all(|c| c.peer == "bob@localhost")
    );
    let page = alice
        .store
        .page(
            &tern::conversation::Id::chat_of("alice@localhost", "bob@localhost").unwrap(),
            None,
            50,
        )
        .unwrap();
    let future = page
        .records
        .iter()
        .find(|r| r.body == "from the future")
        .unwrap();
    assert!(
        future.time <= chrono::Utc::now(),
        "a date in the future is clamped"
    );
    let order: Vec<_> = page.records.iter().map(|r| r.id.as_str()).collect();
    let future_at = order.iter().position(|id| *id == "future").unwrap();
    assert_eq!(
        &order[future_at..],
        ["future", "big", "end"],
        "the clamped message stays in order"
    );

    // A real message of Alice's, answered with an error: marked failed, with the reason.
    alice.handle.send_message(bob_jid(), "will bounce".into());
    let sent = bob
        .next_message(Duration::from_secs(5), |m| {
            m.bodies.values().any(|b| b == "will bounce")
        })
        .await
        .expect("bob got it");
    let id = sent.id.expect("Tern sets ids").0;
    // Error replies go to the sender's full JID (a server drops those sent to a bare JID).
    let full = sent.from.expect("routed with a from");
    // An error reply for a message that never existed changes nothing.
    bob.send_message_xml(&format!(
        "<message to='{full}' type='error' id='nonexistent'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    ))
    .await;
    bob.send_message_xml(&format!(
        "<message to='{full}' type='error' id='{id}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>not today</text></error></message>"
    ))
    .await;
    let failed = alice
        .next_event(
            Duration::from_secs(5),
            |e| matches!(e, Event::Updated(r) if r.id == id && r.state == Delivery::Failed),
        )
        .await;
    let Some(Event::Updated(failed)) = failed else {
        panic!("not marked failed")
    };
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("not today"),
        "{:?}",
        failed.error
    );
    // Retry puts it back on the wire.
    alice.handle.retry(bob_jid(), id.clone());
    let again = bob
        .next_message(Duration::from_secs(5), |m| {
            m.bodies.values().any(|b| b == "will bounce")
        })
        .await;
    assert!(again.is_some(), "retry did not resend");
}

fn bob_jid() -> tern::xmpp::BareJid {
    "bob@localhost".parse().unwrap()
}

/// What Tern says it supports: caps in its presence (XEP-0115), disco#info on
/// the caps node, software version (XEP-0092), asked by a contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_learn_what_tern_supports() {
    use tokio_xmpp::parsers::{caps::Caps, disco::DiscoInfoResult, version::VersionResult};
    let server = Prosody::start_with_roster(&accounts(), &prosody::alice_and_bob());
    let mut bob = raw::Raw::connect(settings(
        &server.address(),
        &server.ca(),
        "bob@localhost",
        "bobpass",
    ))
    .await;
    let alice = sign_in(&server, "alice").await;
    let tern = alice.full.clone().unwrap();
    let presence = bob
        .next_presence(Duration::from_secs(5), |p| p.from.as_ref() == Some(&tern))
        .await
        .expect("alice's presence");
    let caps = presence
        .payloads
        .iter()
        .find_map(|p| Caps::try_from(p.clone()).ok())
        .expect("caps in the presence");
    use base64::Engine;
    let node = format!(
        "{}#{}",
        caps.node,
        base64::engine::general_purpose::STANDARD.encode(&caps.ver)
    );
    let tern = tern.to_string();
    let info = bob
        .ask(
            &tern,
            "d1",
            &format!("<query xmlns='http://jabber.org/protocol/disco#info' node='{node}'/>"),
        )
        .await
        .expect("no disco#info answer");
    let info = DiscoInfoResult::try_from(info).unwrap();
    for feature in [
        "urn:xmpp:receipts",
        "jabber:x:oob",
        "urn:xmpp:ping",
        "jabber:iq:version",
    ] {
        assert!(info.features.contains(feature), "{feature}: {info:?}");
    }
    let version = bob
        .ask(&tern, "v1", "<query xmlns='jabber:iq:version'/>")
        .await
        .expect("no version answer");
    let version = VersionResult::try_from(version).unwrap();
    assert_eq!(version.name, "Tern");
    assert_eq!(version.version, env!("CARGO_PKG_VERSION"));
}

/// Quitting while offline (no network, a server that is down) must not wait
/// for a goodbye that cannot come: the worker answers a sign-off at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_off_while_offline_is_answered_at_once() {
    // Only for its certificate authority: the worker never connects.
    let server = Prosody::start(&accounts());
    let mut client = Client::spawn(settings(
        "127.0.0.1:9",
        &server.ca(),
        "alice@localhost",
        "alicepass",
    ));
    let t0 = Instant::now();
    client.handle.disconnect();
    let offline = client
        .next_event(Duration::from_secs(2), |e| {
            matches!(e, Event::Connection(ConnectionState::Offline(None)))
        })
        .await;
    assert!(offline.is_some(), "no answer to a sign-off while offline");
    println!("offline sign-off answered after {:?}", t0.elapsed());
}
