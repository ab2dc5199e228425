//! The worker against a real ejabberd (Debian 12's 23.01), beside the Prosody
//! tests: sign-in over STARTTLS and direct TLS on TLS 1.3 (where ejabberd
//! offers `-PLUS` without saying which binding, and knows only one TLS 1.3
//! lacks), chat, receipts, carbons, archive catch-up with offline delivery
//! beside it, and a contact seeing Tern go offline when it quits.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/client.rs"]
mod client;
#[path = "support/ejabberd.rs"]
mod ejabberd;
// `client` signs in to Prosody too.
#[path = "support/prosody.rs"]
mod prosody;

use std::time::{Duration, Instant};

use client::{Client, settings};
use ejabberd::Ejabberd;
use tern::store::{Delivery, Direction};
use tern::xmpp::{Availability, BareJid, Event};

fn server() -> Ejabberd {
    Ejabberd::start(
        &[
            ("alice", "alicepass"),
            ("bob", "bobpass"),
            ("carol", "carolpass"),
        ],
        &[("alice", "bob"), ("bob", "alice")],
    )
}

fn user(server: &Ejabberd, name: &str, direct_tls: bool) -> tern::xmpp::Settings {
    let address = if direct_tls {
        server.direct_tls_address()
    } else {
        server.address()
    };
    let mut s = settings(
        &address,
        &server.ca(),
        &format!("{name}@localhost"),
        &format!("{name}pass"),
    );
    s.direct_tls = direct_tls;
    s
}

fn jid(s: &str) -> BareJid {
    s.parse().unwrap()
}

fn bodies(client: &Client, peer: &str) -> Vec<String> {
    client
        .store
        .page(
            &tern::conversation::Id::chat_of("alice@localhost", peer).unwrap(),
            None,
            10_000,
        )
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_over_starttls_and_direct_tls_and_chats() {
    let server = server();
    let t0 = Instant::now();
    let mut alice = Client::online(user(&server, "alice", false)).await;
    println!(
        "ejabberd: alice signed in (STARTTLS) after {:?}",
        t0.elapsed()
    );
    let t0 = Instant::now();
    let mut bob = Client::online(user(&server, "bob", true)).await;
    println!(
        "ejabberd: bob signed in (direct TLS) after {:?}",
        t0.elapsed()
    );
    // Plain SCRAM: ejabberd 23.01 offers -PLUS over TLS 1.3 but can only
    // bind with tls-unique, which TLS 1.3 lacks. Its log says what was used.
    for who in ["alice", "bob"] {
        let line = format!("Accepted c2s SCRAM-SHA-256 authentication for {who}@localhost");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !server.log().contains(&line) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = server.log();
        assert!(log.contains(&line), "{who}: {log}");
        assert!(!log.contains("Invalid channel binding"), "{log}");
    }

    alice
        .handle
        .send_message(jid("bob@localhost"), "hi bob".into());
    let got = bob
        .next_event(
            Duration::from_secs(5),
            |e| matches!(e, Event::Messages(r) if r.iter().any(|r| r.body == "hi bob")),
        )
        .await;
    assert!(got.is_some(), "bob got alice's message");
    let id = alice
        .store
        .page(
            &tern::conversation::Id::chat_of("alice@localhost", "bob@localhost").unwrap(),
            None,
            10,
        )
        .unwrap()
        .records[0]
        .id
        .clone();
    assert!(
        alice
            .wait_state(&id, Delivery::Delivered, Duration::from_secs(5))
            .await,
        "a receipt from bob"
    );
    bob.handle
        .send_message(jid("alice@localhost"), "hi alice".into());
    let got = alice
        .next_event(
            Duration::from_secs(5),
            |e| matches!(e, Event::Messages(r) if r.iter().any(|r| r.body == "hi alice")),
        )
        .await;
    assert!(got.is_some(), "alice got bob's message");
}

/// Carbons, and what came while Tern was closed: ejabberd delivers it from
/// offline storage and lists it in the archive; each message is stored once,
/// in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carbons_and_catch_up_with_offline_delivery_beside_it() {
    let server = server();
    let mut alice = Client::online(user(&server, "alice", false)).await;
    let phone = Client::online(user(&server, "alice", true)).await;
    let mut bob = Client::online(user(&server, "bob", false)).await;
    // Alice's phone writes: Tern gets the carbon.
    phone
        .handle
        .send_message(jid("bob@localhost"), "from my phone".into());
    let carbon = alice
        .next_event(
            Duration::from_secs(5),
            |e| matches!(e, Event::Messages(r) if r.iter().any(|r| r.body == "from my phone")),
        )
        .await;
    let Some(Event::Messages(records)) = carbon else {
        panic!("no carbon")
    };
    assert_eq!(records[0].direction, Direction::Out);
    assert!(records[0].other_device);
    bob.next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
        .await;
    drop(phone);

    let dir = alice.quit().await;
    for n in 0..300 {
        bob.handle
            .send_message(jid("alice@localhost"), format!("while closed {n:03}"));
    }
    let mut sent = 0;
    while sent < 300 {
        match bob
            .next_event(
                Duration::from_secs(30),
                |e| matches!(e, Event::Updated(r) if r.state == Delivery::Sent),
            )
            .await
        {
            Some(_) => sent += 1,
            None => panic!("bob sent {sent} of 300"),
        }
    }
    let mut alice = Client::spawn_in(user(&server, "alice", false), dir);
    alice.handle.connect(user(&server, "alice", false), false);
    alice.wait_online(Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while bodies(&alice, "bob@localhost").len() < 301 && Instant::now() < deadline {
        alice
            .next_event(Duration::from_millis(200), |_| false)
            .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // anything late would be a copy
    let mut expected = vec!["from my phone".to_string()];
    expected.extend((0..300).map(|n| format!("while closed {n:03}")));
    assert_eq!(
        bodies(&alice, "bob@localhost"),
        expected,
        "once each, in order"
    );
}

/// When Tern quits, its contacts see it go offline at once: the stream is
/// closed, not left for the server to hold for resumption.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_sees_tern_go_offline_when_it_quits() {
    let server = server();
    let alice = Client::online(user(&server, "alice", false)).await;
    let tern = alice.full.clone().unwrap();
    let mut bob = Client::online(user(&server, "bob", false)).await;
    bob.next_event(Duration::from_secs(5), |e| {
        matches!(e, Event::Presence { from, availability, .. } if *from == tern && *availability != Availability::Offline)
    })
    .await
    .expect("bob sees alice online");
    let t0 = Instant::now();
    let _dir = alice.quit().await;
    let offline = bob
        .next_event(Duration::from_secs(20), |e| {
            matches!(e, Event::Presence { from, availability: Availability::Offline, .. } if *from == tern)
        })
        .await;
    println!(
        "ejabberd: bob saw alice offline {:?} after quitting",
        t0.elapsed()
    );
    assert!(offline.is_some(), "bob never saw alice go offline");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}
