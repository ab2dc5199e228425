//! The worker against a real ejabberd (Debian 12's 23.01), beside the Prosody
//! tests: sign-in over STARTTLS and direct TLS on TLS 1.3 (where ejabberd
//! offers `-PLUS` without saying which binding, and knows only one TLS 1.3
//! lacks), chat, receipts, carbons, archive catch-up with offline delivery
//! beside it, a contact seeing Tern go offline when it quits, and rooms on
//! ejabberd's MUC service (`conference.localhost`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/client.rs"]
mod client;
#[path = "support/ejabberd.rs"]
mod ejabberd;
// `client` signs in to Prosody too.
#[path = "support/prosody.rs"]
mod prosody;
#[path = "support/rooms.rs"]
mod rooms;

use std::time::{Duration, Instant};

use client::{Client, settings};
use ejabberd::Ejabberd;
use rooms::{WAIT, join, room, room_event, room_message};
use tern::conversation::Id;
use tern::store::{Delivery, Direction};
use tern::xmpp::room::{JoinError, LeftReason, Role, RoomEvent, RoomRequest, RoomSettings};
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

/// Who `client` is in `room` as: signs in to ejabberd.
async fn on(server: &Ejabberd, name: &str) -> Client {
    Client::online(user(server, name, false)).await
}

/// A room on ejabberd as on Prosody: a join of a free address makes
/// nothing; a created channel has its maker as moderator; messages go both
/// ways under their writers' nicknames, ours marked delivered by the room's
/// reflection and stored once; private messages through the room are a
/// conversation of their own; a nickname taken is refused as such; someone
/// leaving is seen to leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_on_ejabberd_are_joined_and_lived_in() {
    let server = server();
    let mut alice = on(&server, "alice").await;
    let mut bob = on(&server, "bob").await;
    let lounge = room("lounge");

    // Nobody made it: refused, and still not there for the next try.
    for _ in 0..2 {
        bob.handle.join_room(lounge.clone(), "Bob".into(), None);
        assert_eq!(
            room_event(&mut bob, &lounge, |e| matches!(
                e,
                RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_)
            ))
            .await,
            Some(RoomEvent::JoinFailed(JoinError::NotFound)),
            "ejabberd: a join made a room"
        );
    }

    alice.handle.create_room(
        lounge.clone(),
        "Alice".into(),
        RoomSettings::public_channel("Lounge"),
    );
    alice
        .handle
        .send_to_room(lounge.clone(), "first, before the join".into());
    assert!(
        matches!(
            room_event(&mut alice, &lounge, |e| matches!(
                e,
                RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_)
            ))
            .await,
            Some(RoomEvent::Joined { .. })
        ),
        "alice created the room"
    );
    let seen = join(&mut bob, &lounge, "Bob").await;
    assert!(
        seen.iter().any(|e| matches!(e, RoomEvent::Occupant(o)
            if o.nick == "Alice" && o.role == Role::Moderator && !o.is_self)),
        "bob sees alice as the room's moderator: {seen:?}"
    );

    alice
        .handle
        .send_to_room(lounge.clone(), "hello, room".into());
    assert_eq!(
        room_message(&mut bob, &lounge, "hello, room").await,
        Some(Some("Alice".into()))
    );
    bob.handle
        .send_to_room(lounge.clone(), "hello, Alice".into());
    assert_eq!(
        room_message(&mut alice, &lounge, "hello, Alice").await,
        Some(Some("Bob".into()))
    );
    let conversation = Id::room(alice.jid.clone(), lounge.clone());
    let deadline = Instant::now() + WAIT;
    let page = loop {
        let page = alice.store.page(&conversation, None, 50).unwrap();
        if page.records.len() >= 3
            && page
                .records
                .iter()
                .filter(|r| r.direction == Direction::Out)
                .all(|r| r.state == Delivery::Delivered)
        {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "ejabberd: alice's messages were not reflected: {:?}",
            page.records
                .iter()
                .map(|r| (&r.body, r.state))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let bodies: Vec<&str> = page.records.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(
        bodies,
        ["first, before the join", "hello, room", "hello, Alice"],
        "each message once, in order"
    );

    // Privately, through the room.
    let to_alice = Id::private_with(bob.jid.clone(), &lounge, "Alice").unwrap();
    bob.handle.send(tern::xmpp::Command::SendMessage {
        to: to_alice,
        body: "just between us".into(),
    });
    let from_bob = Id::private_with(alice.jid.clone(), &lounge, "Bob").unwrap();
    let wanted = from_bob.clone();
    let private = alice
        .next_event(
            WAIT,
            move |e| matches!(e, Event::Messages(m) if m.iter().any(|m| m.conversation == wanted)),
        )
        .await;
    assert!(
        matches!(&private, Some(Event::Messages(m))
            if m.iter().any(|m| m.body == "just between us" && m.sender.as_deref() == Some("Bob"))),
        "alice has bob's private message in its own conversation: {private:?}"
    );
    assert!(
        !alice
            .store
            .page(&conversation, None, 50)
            .unwrap()
            .records
            .iter()
            .any(|r| r.body == "just between us"),
        "nothing private in the room's history"
    );

    // A nickname already in the room.
    let mut carol = on(&server, "carol").await;
    carol.handle.join_room(lounge.clone(), "Alice".into(), None);
    assert_eq!(
        room_event(&mut carol, &lounge, |e| matches!(
            e,
            RoomEvent::JoinFailed(_)
        ))
        .await,
        Some(RoomEvent::JoinFailed(JoinError::NicknameInUse))
    );
    join(&mut carol, &lounge, "Carol").await;

    bob.handle.leave_room(lounge.clone());
    assert_eq!(
        room_event(&mut bob, &lounge, |e| matches!(e, RoomEvent::Left(_))).await,
        Some(RoomEvent::Left(LeftReason::Requested))
    );
    assert!(
        room_event(
            &mut alice,
            &lounge,
            |e| matches!(e, RoomEvent::OccupantLeft { nick, .. } if nick == "Bob")
        )
        .await
        .is_some(),
        "alice sees bob leave"
    );
}

/// A private group on ejabberd: made as asked (members only), closed to
/// strangers until its owner makes them members; its bookmark takes it to
/// the account's other Tern; what was said while Tern was closed comes
/// from the room's archive, once; its destruction reaches everyone in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_groups_on_ejabberd_are_set_up_bookmarked_caught_up_and_destroyed() {
    let server = server();
    let mut alice = on(&server, "alice").await;
    let mut bob = on(&server, "bob").await;
    let family = room("family");
    bob.handle.create_room(
        family.clone(),
        "Bob".into(),
        RoomSettings::private_group("Family"),
    );
    assert!(
        matches!(
            room_event(&mut bob, &family, |e| matches!(
                e,
                RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_)
            ))
            .await,
            Some(RoomEvent::Joined { .. })
        ),
        "bob created the group"
    );
    bob.handle
        .room_request(family.clone(), RoomRequest::Settings);
    let settings = room_event(&mut bob, &family, |e| {
        matches!(e, RoomEvent::Settings(_) | RoomEvent::Refused(_))
    })
    .await;
    let Some(RoomEvent::Settings(settings)) = settings else {
        panic!("ejabberd: no settings: {settings:?}");
    };
    assert_eq!(settings.members_only, Some(true), "{settings:?}");
    assert_eq!(settings.public, Some(false), "{settings:?}");
    assert_eq!(settings.name.as_deref(), Some("Family"), "{settings:?}");

    alice.handle.join_room(family.clone(), "Alice".into(), None);
    assert_eq!(
        room_event(&mut alice, &family, |e| matches!(
            e,
            RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_)
        ))
        .await,
        Some(RoomEvent::JoinFailed(JoinError::MembersOnly))
    );
    bob.handle.room_request(
        family.clone(),
        RoomRequest::Affiliation {
            jid: "alice@localhost".parse().unwrap(),
            affiliation: tern::xmpp::room::Affiliation::Member,
            reason: None,
        },
    );
    let mut admitted = false;
    for _ in 0..20 {
        alice.handle.join_room(family.clone(), "Alice".into(), None);
        if matches!(
            room_event(&mut alice, &family, |e| matches!(
                e,
                RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_)
            ))
            .await,
            Some(RoomEvent::Joined { .. })
        ) {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(admitted, "ejabberd: a member is let in");

    // The account's other Tern joins it from the bookmark.
    let mut laptop = on(&server, "alice").await;
    let joined = room_event(&mut laptop, &family, |e| {
        matches!(e, RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_))
    })
    .await;
    assert!(
        matches!(joined, Some(RoomEvent::Joined { .. })),
        "ejabberd: the bookmark took the room to alice's other Tern: {joined:?}\n{}",
        server.log()
    );
    drop(laptop);

    // Closed while Bob talks: back, it has everything once, in order.
    bob.handle.send_to_room(family.clone(), "before".into());
    assert!(room_message(&mut alice, &family, "before").await.is_some());
    let settings_again = alice.settings.clone();
    let dir = alice.quit().await;
    const MISSED: usize = 50;
    for n in 0..MISSED {
        bob.handle
            .send_to_room(family.clone(), format!("missed {n:02}"));
    }
    let last = format!("missed {:02}", MISSED - 1);
    assert!(room_message(&mut bob, &family, &last).await.is_some());
    let mut alice = Client::spawn_in(settings_again, dir);
    alice.handle.connect(alice.settings.clone(), false);
    alice.wait_online(WAIT).await;
    let conversation = Id::room(alice.jid.clone(), family.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    let bodies = loop {
        while alice.events.try_recv().is_ok() {}
        let bodies: Vec<String> = alice
            .store
            .page(&conversation, None, 1000)
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.body)
            .collect();
        if bodies.contains(&last) || Instant::now() > deadline {
            break bodies;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let missed: Vec<&String> = bodies.iter().filter(|b| b.starts_with("missed")).collect();
    assert_eq!(
        missed.len(),
        MISSED,
        "ejabberd: each missed message once: {bodies:?}"
    );
    assert!(
        missed.windows(2).all(|w| w[0] < w[1]),
        "in order: {missed:?}"
    );
    assert_eq!(bodies.iter().filter(|b| *b == "before").count(), 1);

    // Bob destroys it: Alice is told.
    bob.handle.room_request(
        family.clone(),
        RoomRequest::Destroy {
            reason: Some("moving on".into()),
        },
    );
    let left = room_event(&mut alice, &family, |e| matches!(e, RoomEvent::Left(_))).await;
    assert!(
        matches!(
            &left,
            Some(RoomEvent::Left(LeftReason::Destroyed { reason: Some(r), .. })) if r == "moving on"
        ),
        "ejabberd: alice told of the destruction: {left:?}"
    );
}
