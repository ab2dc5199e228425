//! Group chats against Prosody's MUC component (`conference.localhost` in
//! the test server's configuration): Tern workers join one room, talk both
//! ways with their own messages recognised by the room's reflection, see
//! each other come and go, are refused a nickname already taken, and join
//! again by themselves after the server restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/client.rs"]
mod client;
#[path = "support/prosody.rs"]
mod prosody;
#[path = "support/raw.rs"]
mod raw;
#[path = "support/rooms.rs"]
mod rooms;
#[path = "support/ui.rs"]
mod ui;
#[path = "support/xvfb.rs"]
mod xvfb;

use std::time::Duration;

use client::{Client, sign_in};
use prosody::Prosody;
use rooms::{WAIT, create, join, room, room_event, room_message};
use tern::conversation::{Id, Kind};
use tern::store::Delivery;
use tern::xmpp::room::{
    Directory, JoinError, LeftReason, Role, RoomEvent, RoomRequest, RoomSettings,
};
use tern::xmpp::{BareJid, ConnectionState, Event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tern_workers_live_in_one_room() {
    let mut server = Prosody::start(&[
        ("alice", "alicepass"),
        ("bob", "bobpass"),
        ("carol", "carolpass"),
    ]);
    let mut alice = sign_in(&server, "alice").await;
    let mut bob = sign_in(&server, "bob").await;
    let lounge = room("lounge");

    // Alice writes before the room has her: it goes once she is in.
    alice.handle.create_room(
        lounge.clone(),
        "Alice".into(),
        RoomSettings::public_channel("Lounge"),
    );
    alice
        .handle
        .send_to_room(lounge.clone(), "first, before the join".into());
    assert!(
        room_event(&mut alice, &lounge, |e| matches!(
            e,
            RoomEvent::Joined { .. }
        ))
        .await
        .is_some()
    );
    // She created the room: its owner, a moderator.
    let seen = join(&mut bob, &lounge, "Bob").await;
    assert!(
        seen.iter().any(|e| matches!(e, RoomEvent::Occupant(o)
            if o.nick == "Alice" && o.role == Role::Moderator && !o.is_self)),
        "bob sees alice as the room's moderator: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, RoomEvent::Occupant(o) if o.nick == "Bob" && o.is_self)),
        "and himself: {seen:?}"
    );
    assert!(
        room_event(
            &mut alice,
            &lounge,
            |e| matches!(e, RoomEvent::Occupant(o) if o.nick == "Bob")
        )
        .await
        .is_some(),
        "alice sees bob come in"
    );

    // Both ways, each sender named; Alice's own copies are the room's
    // reflection of hers, which marks them delivered instead of storing
    // them twice.
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
    let deadline = tokio::time::Instant::now() + WAIT;
    let page = loop {
        let page = alice.store.page(&conversation, None, 50).unwrap();
        if page
            .records
            .iter()
            .filter(|r| r.direction == tern::store::Direction::Out)
            .all(|r| r.state == Delivery::Delivered)
        {
            break page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice's messages were not reflected: {:?}",
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
    assert!(page.records.iter().all(|r| r.kind == Kind::Room));
    let bobs = &page.records[2];
    assert_eq!(bobs.sender.nick.as_deref(), Some("Bob"));

    // Privately, through the room: a conversation of its own on each side.
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
    alice.handle.send(tern::xmpp::Command::SendMessage {
        to: from_bob,
        body: "agreed".into(),
    });
    let back = Id::private_with(bob.jid.clone(), &lounge, "Alice").unwrap();
    let private = bob
        .next_event(WAIT, move |e| {
            matches!(e, Event::Messages(m) if m.iter().any(|m| m.conversation == back && m.body == "agreed"))
        })
        .await;
    assert!(private.is_some(), "bob has alice's answer, privately");
    let lounge_id = Id::room(alice.jid.clone(), lounge.clone());
    assert!(
        !alice
            .store
            .page(&lounge_id, None, 50)
            .unwrap()
            .records
            .iter()
            .any(|r| r.body == "agreed" || r.body == "just between us"),
        "nothing private in the room's history"
    );

    // A nickname already in the room is refused as such.
    let mut carol = sign_in(&server, "carol").await;
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

    // Bob leaves: Alice sees him go.
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

    // The server restarts: Alice and Carol are back in the room by
    // themselves and talk on.
    server.restart();
    for client in [&mut alice, &mut carol] {
        client
            .next_connection_state(Duration::from_secs(30), |s| {
                matches!(s, ConnectionState::Online { .. })
            })
            .await;
        let again = room_event(client, &lounge, |e| {
            matches!(e, RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_))
        })
        .await;
        assert!(
            matches!(again, Some(RoomEvent::Joined { .. })),
            "{} joined again after the restart: {again:?}",
            client.jid
        );
    }
    alice
        .handle
        .send_to_room(lounge.clone(), "still here after the restart".into());
    assert_eq!(
        room_message(&mut carol, &lounge, "still here after the restart").await,
        Some(Some("Alice".into()))
    );
}

/// The window: "Join a room" with a nickname already taken says so in the
/// form; with another nickname the room opens, with its occupants beside
/// the messages, each message under its writer's nickname.
/// A room is made only when asked: a join of a free address is refused as
/// "no such room" and leaves nothing behind; "create" makes a private group
/// set up as asked (members only, addresses visible), refused to
/// strangers, and never takes over a room that exists; the service lists
/// public channels with their details; the owner reads and changes the
/// settings, and destroys the room, which everyone in it is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_created_set_up_listed_and_destroyed() {
    let server = Prosody::start(&[("alice", "alicepass"), ("bob", "bobpass")]);
    let mut alice = sign_in(&server, "alice").await;
    let mut bob = sign_in(&server, "bob").await;
    // Found with the server's other services as the session started.
    let service: BareJid = "conference.localhost".parse().unwrap();
    let found = alice
        .next_event(WAIT, |e| {
            matches!(e, Event::Directory(Directory::Service(_)))
        })
        .await;
    assert!(
        matches!(&found, Some(Event::Directory(Directory::Service(Some(s)))) if *s == service),
        "{found:?}"
    );

    // A typo is no new room.
    let typo = room("famliy");
    bob.handle.join_room(typo.clone(), "Bob".into(), None);
    assert_eq!(
        room_event(&mut bob, &typo, |e| matches!(e, RoomEvent::JoinFailed(_))).await,
        Some(RoomEvent::JoinFailed(JoinError::NotFound))
    );
    // ...and it did not stay behind, locked, for the next one to find.
    bob.handle.join_room(typo.clone(), "Bob".into(), None);
    assert_eq!(
        room_event(&mut bob, &typo, |e| matches!(
            e,
            RoomEvent::JoinFailed(_) | RoomEvent::Joined { .. }
        ))
        .await,
        Some(RoomEvent::JoinFailed(JoinError::NotFound))
    );

    // A private group: for members only, who see each other's addresses.
    let family = room("family");
    alice.handle.create_room(
        family.clone(),
        "Alice".into(),
        RoomSettings::private_group("Family"),
    );
    assert_eq!(
        room_event(&mut alice, &family, |e| matches!(
            e,
            RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_) | RoomEvent::Refused(_)
        ))
        .await,
        Some(RoomEvent::Joined {
            nick: "Alice".into()
        })
    );
    alice
        .handle
        .room_request(family.clone(), RoomRequest::Settings);
    let Some(RoomEvent::Settings(settings)) =
        room_event(&mut alice, &family, |e| matches!(e, RoomEvent::Settings(_))).await
    else {
        panic!("no settings from the room");
    };
    assert_eq!(settings.name.as_deref(), Some("Family"));
    assert_eq!(settings.members_only, Some(true));
    assert_eq!(settings.public, Some(false));
    assert_eq!(settings.persistent, Some(true));
    assert_eq!(settings.addresses_visible, Some(true));
    assert_eq!(settings.password.as_deref(), Some(""));
    // Bob is no member.
    bob.handle.join_room(family.clone(), "Bob".into(), None);
    assert_eq!(
        room_event(&mut bob, &family, |e| matches!(e, RoomEvent::JoinFailed(_))).await,
        Some(RoomEvent::JoinFailed(JoinError::MembersOnly))
    );
    // Nor can he make it his by "creating" it.
    bob.handle.create_room(
        family.clone(),
        "Bob".into(),
        RoomSettings::public_channel("Mine now"),
    );
    assert!(matches!(
        room_event(&mut bob, &family, |e| matches!(e, RoomEvent::JoinFailed(_))).await,
        Some(RoomEvent::JoinFailed(
            JoinError::MembersOnly | JoinError::Exists
        ))
    ));

    // Made a member, he is let in.
    alice.handle.room_request(
        family.clone(),
        RoomRequest::Affiliation {
            jid: bob.jid.clone(),
            affiliation: tern::xmpp::room::Affiliation::Member,
            reason: None,
        },
    );
    let mut let_in = false;
    for _ in 0..20 {
        bob.handle.join_room(family.clone(), "Bob".into(), None);
        match room_event(&mut bob, &family, |e| {
            matches!(e, RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_))
        })
        .await
        {
            Some(RoomEvent::Joined { .. }) => {
                let_in = true;
                break;
            }
            // The grant may not have landed yet.
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(let_in, "a member joins the private group");
    bob.handle.leave_room(family.clone());

    // A public channel, and one more: the service lists both (not the
    // private group), with what they are about and who is in them.
    let lobby = room("lobby");
    create(&mut alice, &lobby, "Alice").await;
    create(&mut bob, &room("quiet"), "Bob").await;
    join(&mut bob, &lobby, "Bob").await;
    // Someone else's room that exists: "create" does not take it over.
    alice.handle.create_room(
        room("quiet"),
        "Alice".into(),
        RoomSettings::public_channel("Quiet"),
    );
    assert_eq!(
        room_event(&mut alice, &room("quiet"), |e| matches!(
            e,
            RoomEvent::JoinFailed(_) | RoomEvent::Joined { .. }
        ))
        .await,
        Some(RoomEvent::JoinFailed(JoinError::Exists))
    );
    alice.handle.room_request(
        lobby.clone(),
        RoomRequest::Configure(RoomSettings {
            description: Some("Say hello".into()),
            ..RoomSettings::default()
        }),
    );
    assert_eq!(
        room_event(&mut alice, &lobby, |e| matches!(
            e,
            RoomEvent::Configured | RoomEvent::Refused(_)
        ))
        .await,
        Some(RoomEvent::Configured)
    );
    alice.handle.browse_rooms(service.clone());
    let Some(Event::Directory(Directory::Rooms { rooms, .. })) = alice
        .next_event(WAIT, |e| {
            matches!(e, Event::Directory(Directory::Rooms { .. }))
        })
        .await
    else {
        panic!("no directory");
    };
    let mut listed: Vec<String> = rooms.unwrap().iter().map(|l| l.room.to_string()).collect();
    listed.sort();
    assert_eq!(
        listed,
        ["lobby@conference.localhost", "quiet@conference.localhost"]
    );
    let Some(Event::Directory(Directory::Listing(lobby_listing))) = alice
        .next_event(WAIT, |e| {
            matches!(e, Event::Directory(Directory::Listing(l)) if l.room.as_str() == "lobby@conference.localhost")
        })
        .await
    else {
        panic!("no details of the lobby");
    };
    assert_eq!(lobby_listing.name.as_deref(), Some("lobby"));
    assert_eq!(lobby_listing.description.as_deref(), Some("Say hello"));
    assert_eq!(lobby_listing.occupants, Some(2));

    // Only the owner may destroy it; Bob is told, with the reason.
    bob.handle.room_request(
        lobby.clone(),
        RoomRequest::Destroy {
            reason: Some("mine".into()),
        },
    );
    assert!(matches!(
        room_event(&mut bob, &lobby, |e| matches!(e, RoomEvent::Refused(_))).await,
        Some(RoomEvent::Refused(_))
    ));
    alice.handle.room_request(
        lobby.clone(),
        RoomRequest::Destroy {
            reason: Some("moving to the forum".into()),
        },
    );
    for client in [&mut alice, &mut bob] {
        assert_eq!(
            room_event(client, &lobby, |e| matches!(e, RoomEvent::Left(_))).await,
            Some(RoomEvent::Left(LeftReason::Destroyed {
                reason: Some("moving to the forum".into()),
                alternate: None,
            })),
            "{} was told",
            client.jid
        );
    }
    // Gone for good: nobody joins it again by mistake (Prosody says it
    // was destroyed, and why).
    bob.handle.join_room(lobby.clone(), "Bob".into(), None);
    assert_eq!(
        room_event(&mut bob, &lobby, |e| matches!(
            e,
            RoomEvent::JoinFailed(_) | RoomEvent::Joined { .. }
        ))
        .await,
        Some(RoomEvent::JoinFailed(JoinError::Gone(Some(
            "moving to the forum".into()
        ))))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_joins_a_room_and_shows_who_says_what() {
    use iced_test::selector::id;
    use tern::profile::Profile;
    use tern::screen::{conversation, room as room_screen};
    ui::use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start(&[
        ("alice", "alicepass"),
        ("bob", "bobpass"),
        ("carol", "carolpass"),
    ]);
    let mut bob = sign_in(&server, "bob").await;
    let team = room("team");
    create(&mut bob, &team, "alice").await;

    let profile = tempfile::tempdir().unwrap();
    let mut h = ui::Harness::signed_in(
        ui::flags(Profile::at(profile.path()), &server.ca()),
        server.port,
        "alice@localhost",
        "alicepass",
    )
    .await;
    h.interact(|ui| {
        ui.click("+ Join a room").unwrap();
    });
    h.interact(|ui| {
        ui.click(id(room_screen::ADDRESS_INPUT)).unwrap();
        ui.typewrite("team@conference.localhost");
        ui.click("Join").unwrap();
    });
    // Bob goes by "alice" there: the form says the nickname is taken.
    let mut refused = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows("That nickname is taken in this room: choose another.") {
            refused = true;
            break;
        }
    }
    assert!(refused, "the form says the nickname is taken");
    h.interact(|ui| {
        ui.click("alice").unwrap();
        ui.typewrite(" in Wonderland");
        ui.click("Join").unwrap();
    });
    let mut joined = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows("2 people") {
            joined = true;
            break;
        }
    }
    assert!(joined, "the room opened with both in it");
    assert_eq!(
        h.app.open_id(),
        Some(&Id::room("alice@localhost".parse().unwrap(), team.clone()))
    );
    assert!(h.shows("MODERATORS") || h.shows("PARTICIPANTS"));
    // The room's own archive may hold more: asked, it has nothing older.
    assert!(h.shows("Load older messages"));
    h.interact(|ui| {
        ui.click("Load older messages").unwrap();
    });
    let mut exhausted = false;
    for _ in 0..50 {
        h.settle().await;
        if !h.shows("Load older messages") {
            exhausted = true;
            break;
        }
    }
    assert!(
        exhausted,
        "the room's archive has nothing older, and says so"
    );

    bob.handle
        .send_to_room(team.clone(), "welcome, Alice".into());
    let mut shown = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows("welcome, Alice") {
            shown = true;
            break;
        }
    }
    assert!(shown, "bob's message in the room");
    // Tab completes bob's nickname there (never her own), addressed.
    h.interact(|ui| {
        ui.click(id(conversation::COMPOSER)).unwrap();
        ui.typewrite("al");
        ui.tap_key(iced::keyboard::key::Named::Tab);
        ui.typewrite("thank you");
        ui.tap_key(iced::keyboard::key::Named::Enter);
    });
    assert_eq!(
        room_message(&mut bob, &team, "alice: thank you").await,
        Some(Some("alice in Wonderland".into()))
    );
    // A command the room does not know is said so, and nothing is sent.
    h.interact(|ui| {
        ui.click(id(conversation::COMPOSER)).unwrap();
        ui.typewrite("/frobnicate now");
        ui.tap_key(iced::keyboard::key::Named::Enter);
    });
    h.settle().await;
    assert!(
        h.shows("Unknown command /frobnicate. To send it as a message, begin with //."),
        "the header says the command is unknown"
    );
    bob.handle
        .send_to_room(team.clone(), "alice in Wonderland: the agenda is up".into());
    let mut mentioned = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows("alice in Wonderland: the agenda is up") {
            mentioned = true;
            break;
        }
    }
    assert!(mentioned, "the mention arrived");
    // Carol comes, takes another name and goes: a quiet line for each
    // stretch between messages, not a line per presence.
    let carol = raw::Raw::connect(client::settings(
        &server.address(),
        &server.ca(),
        "carol@localhost",
        "carolpass",
    ))
    .await;
    carol
        .send_xml(
            "<presence to='team@conference.localhost/Carol'>\
             <x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>",
        )
        .await;
    assert!(h.until_shows("Carol joined").await, "carol's arrival");
    assert!(
        !h.shows("alice joined"),
        "who was there before us is no news"
    );
    assert!(h.shows("Carol"), "and she is in the occupant list");
    bob.handle.send_to_room(team.clone(), "hi Carol".into());
    assert!(h.until_shows("hi Carol").await);
    carol
        .send_xml("<presence to='team@conference.localhost/Caroline'/>")
        .await;
    carol
        .send_xml("<presence to='team@conference.localhost/Caroline' type='unavailable'/>")
        .await;
    assert!(
        h.until_shows("Carol is now Caroline · Caroline left").await,
        "her new name and her departure, on one line"
    );
    assert!(
        h.shows("Carol joined"),
        "the earlier stretch keeps its line"
    );
    assert!(!h.shows("Caroline"), "no longer in the occupant list");
    let snap = h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light));
    h.save_snapshot(&snap, "room");
}

/// Uploads `path` to `from`'s server (HTTP upload) and returns its link.
async fn upload(from: &mut Client, http: &tern::transfer::Http, path: &std::path::Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let size = std::fs::metadata(path).unwrap().len();
    from.handle
        .request_slot(name.clone(), name, size, "image/png".into());
    let slot = match from
        .next_event(WAIT, |e| matches!(e, Event::Slot { .. }))
        .await
    {
        Some(Event::Slot {
            result: Ok(slot), ..
        }) => slot,
        other => panic!("no slot: {other:?}"),
    };
    http.upload(&slot, path, "image/png", std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    slot.get
}

/// Files in a room, in the window: an occupant's picture waits for a click
/// (occupants are strangers) until the user ticks "Load images" for the
/// room, which loads it at once and is kept in the configuration; a file
/// dropped on the room goes to everyone in it as a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_go_both_ways_in_a_room_and_its_images_load_once_it_is_trusted() {
    use iced_test::selector::id;
    use tern::app::event_message;
    use tern::profile::Profile;
    use tern::screen::room as room_screen;
    ui::use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start(&[("alice", "alicepass"), ("bob", "bobpass")]);
    let mut bob = sign_in(&server, "bob").await;
    let photos = room("photos");
    create(&mut bob, &photos, "Bob").await;
    let profile = tempfile::tempdir().unwrap();
    let mut h = ui::Harness::signed_in(
        ui::flags(Profile::at(profile.path()), &server.ca()),
        server.port,
        "alice@localhost",
        "alicepass",
    )
    .await;
    h.interact(|ui| {
        ui.click("+ Join a room").unwrap();
    });
    h.interact(|ui| {
        ui.click(id(room_screen::ADDRESS_INPUT)).unwrap();
        ui.typewrite("photos@conference.localhost");
        ui.click("Join").unwrap();
    });
    assert!(h.until_shows("2 people").await, "alice is in the room");

    let files = tempfile::tempdir().unwrap();
    let picture = files.path().join("sunset.png");
    image::RgbaImage::from_pixel(320, 200, image::Rgba([240, 120, 40, 255]))
        .save(&picture)
        .unwrap();
    let http = tern::transfer::Http::new(&tern::xmpp::Trust::from_pem_file(&server.ca()).unwrap())
        .unwrap();
    let url = upload(&mut bob, &http, &picture).await;
    bob.handle.send(tern::xmpp::Command::ShareFile {
        to: Id::room(bob.jid.clone(), photos.clone()),
        url: url.clone(),
    });
    assert!(
        h.until_shows("Show image").await,
        "an occupant's picture waits for a click"
    );
    assert_eq!(h.app.sharing().unwrap().preview_size(&url), None);
    h.interact(|ui| {
        ui.click("Load images").unwrap();
    });
    assert!(
        h.pump_until(WAIT, |app| app
            .sharing()
            .is_some_and(|s| s.preview_size(&url).is_some()))
            .await,
        "trusted, the room's picture loads at once"
    );
    let config = Profile::at(profile.path()).config_file();
    let mut kept = false;
    for _ in 0..25 {
        h.settle().await;
        if std::fs::read_to_string(&config).is_ok_and(|c| c.contains("images = true")) {
            kept = true;
            break;
        }
    }
    assert!(kept, "the room's trust is kept in the configuration");
    assert!(
        h.app
            .config()
            .trusted_rooms()
            .contains(&("alice@localhost".into(), photos.to_string()))
    );

    // A file dropped on the open room is shared with it.
    let notes = files.path().join("agenda.txt");
    std::fs::write(&notes, "1. photos").unwrap();
    h.update(event_message(iced::Event::Window(iced::window::Event::FileDropped(notes))).unwrap());
    let room_id = Id::room(bob.jid.clone(), photos.clone());
    let deadline = std::time::Instant::now() + WAIT;
    let mut received = None;
    while received.is_none() && std::time::Instant::now() < deadline {
        h.settle().await;
        while let Ok(event) = bob.events.try_recv() {
            if let Event::Messages(records) = event {
                received = received.or(records
                    .into_iter()
                    .find(|m| m.conversation == room_id && m.body.ends_with("agenda.txt")));
            }
        }
    }
    let received = received.expect("bob got the dropped file in the room");
    assert!(
        received.attachment,
        "as a file, not a bare link: {received:?}"
    );
    assert_eq!(received.sender.as_deref(), Some("alice"));
    drop(h);
    drop(bob);
}

/// In the window: a join of a room that does not exist offers to create it;
/// the dialog makes a private group, which opens with the owner's
/// "Settings"; a setting changed there reaches the room; "Destroy room"
/// asks once more, then the room is gone and the header says so; "Browse"
/// lists the service's public rooms, searched, and joins one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_creates_sets_up_destroys_and_browses_rooms() {
    use iced_test::selector::id;
    use tern::app::Message;
    use tern::notification::RoomLevel;
    use tern::profile::Profile;
    use tern::screen::room as room_screen;
    ui::use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start(&[("alice", "alicepass"), ("bob", "bobpass")]);
    let mut bob = sign_in(&server, "bob").await;
    let lounge = room("lounge");
    create(&mut bob, &lounge, "Bob").await;

    let profile = tempfile::tempdir().unwrap();
    let mut h = ui::Harness::signed_in(
        ui::flags(Profile::at(profile.path()), &server.ca()),
        server.port,
        "alice@localhost",
        "alicepass",
    )
    .await;
    h.interact(|ui| {
        ui.click("+ Join a room").unwrap();
    });
    h.interact(|ui| {
        ui.click(id(room_screen::ADDRESS_INPUT)).unwrap();
        ui.typewrite("book-club@conference.localhost");
        ui.click("Join").unwrap();
    });
    assert!(
        h.until_shows("There is no such room on that service.")
            .await,
        "the form says there is no such room"
    );
    h.interact(|ui| {
        ui.click("Create this room").unwrap();
    });
    h.settle().await;
    assert!(h.shows("Create a room"));
    assert!(h.shows("book-club"), "the address asked for is kept");
    assert!(h.shows("conference.localhost"));
    h.interact(|ui| {
        ui.click(id(room_screen::CREATE_NAME_INPUT)).unwrap();
        ui.typewrite("Book Club");
    });
    h.settle().await;
    let snap = h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light));
    h.save_snapshot(&snap, "room-create");
    h.interact(|ui| {
        ui.click("Create").unwrap();
    });
    let book = room("book-club");
    let book_id = Id::room("alice@localhost".parse().unwrap(), book.clone());
    assert!(
        h.pump_until(WAIT, |app| app.open_id() == Some(&book_id))
            .await,
        "the new room opened"
    );
    assert!(h.until_shows("Room settings").await, "the owner's settings");
    // A private group notifies of every message unless told otherwise.
    assert!(
        h.pump_until(WAIT, |app| app.room_level(&book_id) == Some(RoomLevel::All))
            .await,
        "a private group's default"
    );
    // A private group: Bob is no member.
    bob.handle.join_room(book.clone(), "Bob".into(), None);
    assert_eq!(
        room_event(&mut bob, &book, |e| matches!(e, RoomEvent::JoinFailed(_))).await,
        Some(RoomEvent::JoinFailed(JoinError::MembersOnly))
    );

    // Opened to anyone from its settings.
    h.interact(|ui| {
        ui.click("Room settings").unwrap();
    });
    assert!(
        h.until_shows("Only members may enter").await,
        "the room's settings came"
    );
    h.interact(|ui| {
        ui.click("Only members may enter").unwrap();
    });
    h.interact(|ui| {
        ui.click("Save").unwrap();
    });
    assert!(h.until_shows("Saved.").await, "the room took it");
    join(&mut bob, &book, "Bob").await;

    // Destroyed, after asking once more; Bob is told.
    h.interact(|ui| {
        ui.click("Destroy room").unwrap();
    });
    h.settle().await;
    assert!(
        h.shows("Everyone is removed and the room is gone for good. Press again to destroy it.")
    );
    h.interact(|ui| {
        ui.click("Destroy room").unwrap();
    });
    assert!(
        matches!(
            room_event(&mut bob, &book, |e| matches!(e, RoomEvent::Left(_))).await,
            Some(RoomEvent::Left(LeftReason::Destroyed { .. }))
        ),
        "bob is told the room was destroyed"
    );
    assert!(
        h.until_shows("The room was destroyed by its owner.").await,
        "the header says what happened"
    );

    // The service's public rooms: Bob's lounge, found by searching.
    h.interact(|ui| {
        ui.click("Public rooms").unwrap();
    });
    assert!(
        h.until_shows("lounge@conference.localhost").await,
        "the lounge is listed"
    );
    h.interact(|ui| {
        ui.click(id(room_screen::DIRECTORY_SEARCH_INPUT)).unwrap();
        ui.typewrite("zzz");
    });
    h.settle().await;
    assert!(!h.shows("lounge@conference.localhost"), "searched away");
    h.interact(|ui| {
        ui.click(id(room_screen::DIRECTORY_SEARCH_INPUT)).unwrap();
        for _ in 0..3 {
            ui.tap_key(iced::keyboard::key::Named::Backspace);
        }
        ui.typewrite("LOUN");
    });
    assert!(h.until_shows("1 person").await, "with who is in it");
    let snap = h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light));
    h.save_snapshot(&snap, "room-directory");
    h.interact(|ui| {
        ui.click("Join").unwrap();
    });
    h.settle().await;
    assert!(
        h.shows("lounge@conference.localhost"),
        "the join form, filled in"
    );
    h.interact(|ui| {
        ui.click("Join").unwrap();
    });
    let lounge_id = Id::room("alice@localhost".parse().unwrap(), lounge.clone());
    assert!(
        h.pump_until(WAIT, |app| app.open_id() == Some(&lounge_id))
            .await,
        "the lounge opened"
    );
    assert!(h.until_shows("2 people").await, "alice is in");
    // A public channel notifies of mentions only, unless told otherwise;
    // what the user chooses is kept in the configuration.
    assert!(
        h.pump_until(WAIT, |app| app.room_level(&lounge_id)
            == Some(RoomLevel::Mentions))
            .await,
        "a channel's default"
    );
    h.update(Message::Chat(tern::screen::chat::Message::Room(
        room_screen::Message::Level(
            lounge_id.clone(),
            room_screen::LevelChoice(RoomLevel::Never),
        ),
    )));
    assert!(
        h.pump_until(WAIT, |app| app.config().room_levels()
            == vec![(
                "alice@localhost".to_string(),
                "lounge@conference.localhost".to_string(),
                RoomLevel::Never
            )])
        .await,
        "the choice is kept: {:?}",
        h.app.config().rooms
    );
    assert_eq!(h.app.room_level(&lounge_id), Some(RoomLevel::Never));

    // Away in another conversation while Bob speaks: back in the lounge,
    // "New messages" is where his start.
    h.interact(|ui| {
        ui.click("book-club").unwrap();
    });
    h.settle().await;
    bob.handle
        .send_to_room(lounge.clone(), "anyone here?".into());
    bob.handle
        .send_to_room(lounge.clone(), "alice, the agenda".into());
    assert!(
        h.pump_until(WAIT, |app| app.title().starts_with("(2)"))
            .await,
        "two unread in the lounge"
    );
    assert!(!h.shows("New messages"));
    h.interact(|ui| {
        ui.click("lounge").unwrap();
    });
    assert!(h.until_shows("New messages").await, "the marker");
    assert!(h.shows("anyone here?"));
    let snap = h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light));
    h.save_snapshot(&snap, "room-channel");
}

/// Rooms follow the account (XEP-0402): joined on one client, bookmarked,
/// and joined by the account's other client as it signs in; left on one,
/// the other leaves too; and a client started later joins nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_take_rooms_to_the_accounts_other_clients() {
    let server = Prosody::start(&[("alice", "alicepass")]);
    let mut laptop = sign_in(&server, "alice").await;
    let book = room("bookclub");
    create(&mut laptop, &book, "Alice").await;

    // The desk computer signs in: the room comes with the account.
    let mut desk = sign_in(&server, "alice").await;
    let joined = room_event(&mut desk, &book, |e| {
        matches!(e, RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_))
    })
    .await;
    assert!(
        matches!(&joined, Some(RoomEvent::Joined { .. })),
        "the second client joined from the bookmark: {joined:?}"
    );

    // Left on the laptop: the desk leaves too (the bookmark's autojoin is off).
    laptop.handle.leave_room(book.clone());
    assert_eq!(
        room_event(&mut desk, &book, |e| matches!(e, RoomEvent::Left(_))).await,
        Some(RoomEvent::Left(LeftReason::Requested)),
        "the other client left with it"
    );

    // Joined again on the desk, then left there while offline: the
    // bookmark loses its autojoin as soon as the desk is back, before it
    // reads the bookmarks (which would put it back in the room).
    desk.handle.join_room(book.clone(), "Alice".into(), None);
    assert!(
        room_event(&mut desk, &book, |e| matches!(e, RoomEvent::Joined { .. }))
            .await
            .is_some()
    );
    desk.handle.disconnect();
    desk.next_connection_state(WAIT, |s| matches!(s, ConnectionState::Offline(_)))
        .await;
    desk.handle.leave_room(book.clone());
    assert_eq!(
        room_event(&mut desk, &book, |e| matches!(e, RoomEvent::Left(_))).await,
        Some(RoomEvent::Left(LeftReason::Requested))
    );
    desk.handle.connect(desk.settings.clone(), false);
    desk.wait_online(WAIT).await;
    let wanted = book.clone();
    let again = desk
        .next_event(
            Duration::from_secs(3),
            move |e| matches!(e, Event::Room { room, event: RoomEvent::Joined { .. } } if *room == wanted),
        )
        .await;
    assert!(
        again.is_none(),
        "a room left offline is not joined again: {again:?}"
    );

    // A third start joins nothing: no room waits for it.
    let mut later = sign_in(&server, "alice").await;
    let wanted = book.clone();
    let anything = later
        .next_event(
            Duration::from_secs(3),
            move |e| matches!(e, Event::Room { room, .. } if *room == wanted),
        )
        .await;
    assert!(
        anything.is_none(),
        "a room left is not joined again: {anything:?}"
    );
}

/// A room as the release build draws it, under Xvfb, for
/// `resources/screenshots/` (needs `xvfb`, `xdotool` and imagemagick): the
/// room comes from the account's bookmark, its people talk, one mentions us.
///
/// ```sh
/// cargo build --release
/// TERN_BIN=target/release/tern SCREENSHOT=resources/screenshots/room.png \
///     SCREENSHOT_DIRECTORY=resources/screenshots/room-directory.png \
///     SCREENSHOT_CREATE=resources/screenshots/room-create.png \
///     SCREENSHOT_JOIN=resources/screenshots/room-join.png \
///     cargo test --test rooms room_screenshot -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a screenshot of the release build; see its comment"]
async fn room_screenshot() {
    use std::process::{Command, Stdio};
    use tern::config::{AccountConfig, Config};
    use tern::profile::Profile;
    let out = std::env::var("SCREENSHOT").unwrap_or_else(|_| "room.png".into());
    let server = Prosody::start(&[
        ("alice", "alicepass"),
        ("bob", "bobpass"),
        ("carol", "carolpass"),
        ("dave", "davepass"),
    ]);
    // Alice's phone joined the room: her bookmark brings it to the desktop.
    let team = room("release-team");
    let mut phone = sign_in(&server, "alice").await;
    create(&mut phone, &team, "Alice").await;
    let mut bob = sign_in(&server, "bob").await;
    join(&mut bob, &team, "Bob").await;
    let mut carol = sign_in(&server, "carol").await;
    join(&mut carol, &team, "Carol").await;
    let mut dave = sign_in(&server, "dave").await;
    join(&mut dave, &team, "Dave").await;
    // More public rooms, for the directory.
    create(&mut bob, &room("design"), "Bob").await;
    create(&mut carol, &room("support"), "Carol").await;
    join(&mut dave, &room("support"), "Dave").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(phone.quit().await);

    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::at(dir.path().join("profile"));
    profile.create().unwrap();
    let password = dir.path().join("alice.password");
    std::fs::write(&password, "alicepass").unwrap();
    let mut config = Config::default();
    config.upsert_account(AccountConfig {
        jid: "alice@localhost".into(),
        host: Some("127.0.0.1".into()),
        port: Some(server.port),
        direct_tls: false,
        password_file: Some(password),
    });
    config.save(&profile.config_file()).unwrap();
    let display = xvfb::Xvfb::start();
    let bin = std::env::var("TERN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_tern").into());
    let mut tern = Command::new(bin)
        .arg("--profile")
        .arg(dir.path().join("profile"))
        .env("DISPLAY", &display.name)
        .env("SSL_CERT_FILE", server.ca())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let window = xvfb::window_of(&display.name, tern.id());
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (who, body) in [
        (&bob.handle, "The release candidate is tagged."),
        (
            &carol.handle,
            "Changelog is in the wiki, please have a look.",
        ),
        (&bob.handle, "Alice, can you sign the .deb tonight?"),
        (
            &dave.handle,
            "I will run the Windows build under Wine meanwhile.",
        ),
    ] {
        who.send_to_room(team.clone(), body.into());
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let row = std::env::var("ROOM_ROW").unwrap_or_else(|_| "150,190".into());
    let (x, y) = row.split_once(',').unwrap();
    xvfb::click(
        &display.name,
        &window,
        x.parse().unwrap(),
        y.parse().unwrap(),
    );
    xvfb::point(&display.name, &window, 700, 40);
    tokio::time::sleep(Duration::from_secs(1)).await;
    xvfb::screenshot(&display.name, &window, &out);
    println!("screenshot written to {out}");
    // The service's public rooms, searched; then the create dialog.
    if let Ok(directory_out) = std::env::var("SCREENSHOT_DIRECTORY") {
        xvfb::click(&display.name, &window, 151, 158); // "Public rooms"
        tokio::time::sleep(Duration::from_secs(2)).await;
        xvfb::point(&display.name, &window, 700, 600);
        tokio::time::sleep(Duration::from_millis(500)).await;
        xvfb::screenshot(&display.name, &window, &directory_out);
        println!("screenshot written to {directory_out}");
    }
    if let Ok(create_out) = std::env::var("SCREENSHOT_CREATE") {
        xvfb::click(&display.name, &window, 235, 158); // "New room"
        tokio::time::sleep(Duration::from_millis(500)).await;
        xvfb::type_text(&display.name, &window, "Book Club");
        xvfb::point(&display.name, &window, 700, 600);
        tokio::time::sleep(Duration::from_millis(500)).await;
        xvfb::screenshot(&display.name, &window, &create_out);
        println!("screenshot written to {create_out}");
    }
    // The join form, filled in, over the same window.
    if let Ok(join_out) = std::env::var("SCREENSHOT_JOIN") {
        xvfb::click(&display.name, &window, 62, 158); // "+ Join a room"
        tokio::time::sleep(Duration::from_millis(500)).await;
        xvfb::type_text(&display.name, &window, "design@conference.localhost");
        xvfb::point(&display.name, &window, 700, 40);
        tokio::time::sleep(Duration::from_millis(500)).await;
        xvfb::screenshot(&display.name, &window, &join_out);
        println!("screenshot written to {join_out}");
    }
    xvfb::stop(&mut tern);
}

/// Closed while the room talked on: on its next start Tern joins again (from
/// the bookmark) and fetches what it missed from the room's own archive,
/// 1,000 messages, each once and in order, with what comes live meanwhile.
/// A second computer of the account, new to the room, gets the room's join
/// history and pages back through the room's archive on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rooms_archive_brings_what_was_said_while_tern_was_closed() {
    const MISSED: usize = 1_000;
    let server = Prosody::start(&[("alice", "alicepass"), ("bob", "bobpass")]);
    let mut alice = sign_in(&server, "alice").await;
    let hall = room("hall");
    create(&mut alice, &hall, "Alice").await;
    let mut bob = raw::Raw::connect(client::settings(
        &server.address(),
        &server.ca(),
        "bob@localhost",
        "bobpass",
    ))
    .await;
    bob.send_xml(
        "<presence to='hall@conference.localhost/Bob'>\
         <x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>",
    )
    .await;
    assert!(
        room_event(
            &mut alice,
            &hall,
            |e| matches!(e, RoomEvent::Occupant(o) if o.nick == "Bob")
        )
        .await
        .is_some(),
        "bob is in the hall"
    );
    let say = |n: usize| {
        format!(
            "<message type='groupchat' to='hall@conference.localhost' id='b{n}'>\
             <body>said {n:04}</body></message>"
        )
    };
    bob.send_message_xml(&say(0)).await;
    assert_eq!(
        room_message(&mut alice, &hall, "said 0000").await,
        Some(Some("Bob".into()))
    );
    alice
        .handle
        .send_to_room(hall.clone(), "alice, before closing".into());
    assert!(
        alice
            .next_event(
                WAIT,
                |e| matches!(e, Event::Updated(r) if r.state == Delivery::Delivered)
            )
            .await
            .is_some(),
        "the room reflected hers"
    );
    let dir = alice.quit().await;

    // Tern is closed; the room talks on.
    for n in 1..=MISSED {
        bob.send_message_xml(&say(n)).await;
        // The room reflects each one; reading them keeps bob's stream moving.
        if n % 100 == 0 {
            let wanted = format!("said {n:04}");
            assert!(
                bob.next_message(WAIT, |m| m.bodies.values().any(|b| *b == wanted))
                    .await
                    .is_some(),
                "the room took bob's message {n}"
            );
        }
    }

    // Tern starts again on the same history.
    let started = std::time::Instant::now();
    let mut alice = Client::spawn_in(
        client::settings(
            &server.address(),
            &server.ca(),
            "alice@localhost",
            "alicepass",
        ),
        dir,
    );
    alice.handle.connect(alice.settings.clone(), false);
    alice.wait_online(Duration::from_secs(10)).await;
    let conversation = Id::room(alice.jid.clone(), hall.clone());
    let expected: Vec<String> = (0..=MISSED).map(|n| format!("said {n:04}")).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let bodies = loop {
        let page = alice.store.page(&conversation, None, 5_000).unwrap();
        let bodies: Vec<String> = page.records.iter().map(|r| r.body.clone()).collect();
        if bodies.iter().filter(|b| b.starts_with("said ")).count() > MISSED {
            break bodies;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice caught up with {} of {MISSED} messages",
            bodies.len()
        );
        // Events are read so that the worker never waits on us.
        let _ = alice
            .next_event(Duration::from_millis(200), |_| false)
            .await;
    };
    eprintln!(
        "caught up with {MISSED} room messages in {} ms",
        started.elapsed().as_millis()
    );
    let said: Vec<&String> = bodies.iter().filter(|b| b.starts_with("said ")).collect();
    assert_eq!(
        said,
        expected.iter().collect::<Vec<_>>(),
        "every message once, in order"
    );
    assert_eq!(
        bodies
            .iter()
            .filter(|b| *b == "alice, before closing")
            .count(),
        1,
        "her own message is not fetched back as another"
    );
    let unread = alice
        .store
        .conversations(alice.jid.as_str())
        .unwrap()
        .into_iter()
        .find(|c| c.id().as_ref() == Some(&conversation))
        .map(|c| c.unread);
    assert_eq!(unread, Some(1 + MISSED as u32), "what she missed is unread");

    // Live again, and the position moves with it: said once more, stored once.
    bob.send_message_xml(&say(MISSED + 1)).await;
    let last = format!("said {:04}", MISSED + 1);
    assert_eq!(
        room_message(&mut alice, &hall, &last).await,
        Some(Some("Bob".into()))
    );

    // Her desk, new to the room: the room's join history, then older pages.
    let mut desk = sign_in(&server, "alice").await;
    let joined = room_event(&mut desk, &hall, |e| {
        matches!(e, RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_))
    })
    .await;
    assert!(
        matches!(joined, Some(RoomEvent::Joined { .. })),
        "{joined:?}"
    );
    assert!(room_message(&mut desk, &hall, &last).await.is_some());
    let desk_room = Id::room(desk.jid.clone(), hall.clone());
    let mut pages = 0;
    let mut more = true;
    while more && pages < 3 {
        let page = desk.store.page(&desk_room, None, 5_000).unwrap();
        let oldest = page.records.first().expect("the join history");
        let before = tern::xmpp::Oldest {
            time: oldest.time,
            archive_id: oldest.archive_id.clone(),
        };
        assert!(
            before.archive_id.is_some(),
            "the room's history has its ids"
        );
        desk.handle.fetch_older(desk_room.clone(), Some(before));
        let wanted = desk_room.clone();
        match desk
            .next_event(WAIT, move |e| matches!(e, Event::History { conversation, .. } if *conversation == wanted))
            .await
        {
            Some(Event::History { records, more: m, .. }) => {
                assert!(!records.is_empty(), "an older page of the room");
                more = m;
            }
            other => panic!("no older page: {other:?}"),
        }
        pages += 1;
    }
    let page = desk.store.page(&desk_room, None, 5_000).unwrap();
    let said: Vec<&String> = page
        .records
        .iter()
        .map(|r| &r.body)
        .filter(|b| b.starts_with("said "))
        .collect();
    let tail: Vec<String> = expected.iter().cloned().chain([last.clone()]).collect();
    let tail = &tail[tail.len() - said.len()..];
    assert!(
        said.len() > 200,
        "three pages back: {} messages",
        said.len()
    );
    assert_eq!(
        said,
        tail.iter().collect::<Vec<_>>(),
        "older pages in order, none twice"
    );
}

/// The room's service forgets Tern without a word (as after its restart
/// behind a server that stayed up): the room is silent, Tern asks whether it
/// is still in (XEP-0410), hears that it is not, and joins again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_that_forgot_us_is_found_out_and_joined_again() {
    let server = Prosody::start(&[("alice", "alicepass")]);
    let mut settings = client::settings(
        &server.address(),
        &server.ca(),
        "alice@localhost",
        "alicepass",
    );
    settings.liveness.room_silence = Duration::from_secs(3);
    let mut alice = Client::online(settings).await;
    let attic = room("attic");
    create(&mut alice, &attic, "Alice").await;
    // Still in: a silent room is asked, answers, and nothing happens.
    let nothing = room_event(&mut alice, &attic, |e| matches!(e, RoomEvent::Rejoining)).await;
    assert!(nothing.is_none(), "{nothing:?}");
    // The room drops her, telling no one.
    let said = server.shell(
        "> local room = prosody.hosts['conference.localhost'].modules.muc.get_room_from_jid('attic@conference.localhost'); \
         local occupant = room:get_occupant_by_nick('attic@conference.localhost/Alice'); \
         occupant.role = nil; room:save_occupant(occupant); \
         return room:get_occupant_by_nick('attic@conference.localhost/Alice') == nil",
    );
    assert!(said.contains("true"), "the room forgot alice: {said}");
    assert!(
        room_event(&mut alice, &attic, |e| matches!(e, RoomEvent::Rejoining))
            .await
            .is_some(),
        "alice found out"
    );
    assert!(
        room_event(&mut alice, &attic, |e| matches!(
            e,
            RoomEvent::Joined { .. }
        ))
        .await
        .is_some(),
        "and is in again"
    );
    let said = server.shell(
        "> return prosody.hosts['conference.localhost'].modules.muc.get_room_from_jid('attic@conference.localhost'):get_occupant_by_nick('attic@conference.localhost/Alice') ~= nil",
    );
    assert!(said.contains("true"), "the room has her again: {said}");
}

/// What the room's owner asks of it: a new subject, a new nickname, a kick
/// and a ban, each seen by the others as what it is; a participant asking
/// the same is refused, and told so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_set_the_subject_kick_and_ban_and_the_target_is_told() {
    use tern::xmpp::Command;
    use tern::xmpp::room::{Affiliation, RoomRequest};
    let server = Prosody::start(&[("alice", "alicepass"), ("bob", "bobpass")]);
    let mut alice = sign_in(&server, "alice").await;
    let mut bob = sign_in(&server, "bob").await;
    let court = room("court");
    create(&mut alice, &court, "Alice").await;
    join(&mut bob, &court, "Bob").await;
    let ask = |client: &Client, request: RoomRequest| {
        client.handle.send(Command::RoomRequest {
            room: court.clone(),
            request,
        });
    };

    ask(&alice, RoomRequest::Subject("Order in the court".into()));
    assert_eq!(
        room_event(
            &mut bob,
            &court,
            |e| matches!(e, RoomEvent::Subject { subject, .. } if !subject.is_empty())
        )
        .await,
        Some(RoomEvent::Subject {
            subject: "Order in the court".into(),
            by: Some("Alice".into())
        })
    );
    ask(&alice, RoomRequest::Nick("Judge".into()));
    assert_eq!(
        room_event(&mut alice, &court, |e| matches!(
            e,
            RoomEvent::Joined { .. }
        ))
        .await,
        Some(RoomEvent::Joined {
            nick: "Judge".into()
        })
    );
    assert!(
        room_event(&mut bob, &court, |e| matches!(e,
            RoomEvent::OccupantLeft { nick, new_nick: Some(new), .. } if nick == "Alice" && new == "Judge"))
        .await
        .is_some(),
        "bob sees the new name as a change of name"
    );
    // Bob is no moderator: refused, and told so.
    ask(
        &bob,
        RoomRequest::Role {
            nick: "Judge".into(),
            role: Role::None,
            reason: None,
        },
    );
    assert!(matches!(
        room_event(&mut bob, &court, |e| matches!(e, RoomEvent::Refused(_))).await,
        Some(RoomEvent::Refused(_))
    ));
    ask(
        &alice,
        RoomRequest::Role {
            nick: "Bob".into(),
            role: Role::None,
            reason: Some("contempt".into()),
        },
    );
    assert_eq!(
        room_event(&mut bob, &court, |e| matches!(e, RoomEvent::Left(_))).await,
        Some(RoomEvent::Left(LeftReason::Kicked(Some("contempt".into()))))
    );
    join(&mut bob, &court, "Bob").await;
    ask(
        &alice,
        RoomRequest::Affiliation {
            jid: "bob@localhost".parse().unwrap(),
            affiliation: Affiliation::Outcast,
            reason: Some("again".into()),
        },
    );
    assert_eq!(
        room_event(&mut bob, &court, |e| matches!(e, RoomEvent::Left(_))).await,
        Some(RoomEvent::Left(LeftReason::Banned(Some("again".into()))))
    );
    bob.handle.join_room(court.clone(), "Bob".into(), None);
    assert_eq!(
        room_event(&mut bob, &court, |e| matches!(e, RoomEvent::JoinFailed(_))).await,
        Some(RoomEvent::JoinFailed(JoinError::Banned))
    );
}

/// `/invite` sends a direct invitation (XEP-0249); a contact's reaches the
/// invitee with who and why, a stranger's is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_invite_each_other_and_strangers_are_not_heard() {
    use tern::xmpp::Command;
    use tern::xmpp::room::RoomRequest;
    let server = Prosody::start_with_roster(
        &[
            ("alice", "alicepass"),
            ("bob", "bobpass"),
            ("carol", "carolpass"),
        ],
        &prosody::alice_and_bob(),
    );
    let mut alice = sign_in(&server, "alice").await;
    let mut bob = sign_in(&server, "bob").await;
    let mut carol = sign_in(&server, "carol").await;
    let den = room("den");
    create(&mut carol, &den, "Carol").await;
    carol.handle.send(Command::RoomRequest {
        room: den.clone(),
        request: RoomRequest::Invite {
            jid: "bob@localhost".parse().unwrap(),
            reason: Some("free crypto".into()),
        },
    });
    let study = room("study");
    create(&mut alice, &study, "Alice").await;
    alice.handle.send(Command::RoomRequest {
        room: study.clone(),
        request: RoomRequest::Invite {
            jid: "bob@localhost".parse().unwrap(),
            reason: Some("exam tomorrow".into()),
        },
    });
    let invited = bob
        .next_event(WAIT, |e| {
            matches!(
                e,
                Event::Room {
                    event: RoomEvent::Invited { .. },
                    ..
                }
            )
        })
        .await;
    assert!(
        matches!(&invited, Some(Event::Room { room, event: RoomEvent::Invited { by, reason, mediated: false, .. } })
            if *room == study && by.as_str() == "alice@localhost" && reason.as_deref() == Some("exam tomorrow")),
        "alice's invitation, and only hers (carol's went first): {invited:?}"
    );
    join(&mut bob, &study, "Bob").await;
}

/// Benchmark, not run by default: a room of 300 occupants (one account's
/// 300 sessions, each under its own nickname), which a Tern worker then
/// joins. Prints how long the join took (command to `Joined`, with every
/// occupant reported) and how much the process grew meanwhile:
/// `cargo test --release --test rooms bench_room_of_300 -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it by name"]
async fn bench_room_of_300() {
    const CROWD: usize = 300;
    let server = Prosody::start(&[
        ("alice", "alicepass"),
        ("bob", "bobpass"),
        ("crowd", "crowdpass"),
    ]);
    let forum = room("forum");
    // Bob makes the room (a room is locked until its maker sets it up).
    let mut maker = sign_in(&server, "bob").await;
    create(&mut maker, &forum, "Maker").await;
    let settings = client::settings(
        &server.address(),
        &server.ca(),
        "crowd@localhost",
        "crowdpass",
    );
    let mut crowd = Vec::with_capacity(CROWD);
    for batch in 0..CROWD / 20 {
        let joined = futures::future::join_all((0..20).map(|i| {
            let settings = settings.clone();
            async move {
                let n = batch * 20 + i;
                let raw = raw::Raw::connect(settings).await;
                raw.send_xml(&format!(
                    "<presence to='forum@conference.localhost/person {n:03}'>\
                     <x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
                ))
                .await;
                raw
            }
        }))
        .await;
        // Each join is told to everyone already in: read it all.
        crowd.extend(joined.into_iter().map(raw::Raw::keep_reading));
    }
    // Let the room take them all in (each join is told to everyone in).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut alice = sign_in(&server, "alice").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib();
    let started = std::time::Instant::now();
    alice.handle.join_room(forum.clone(), "Alice".into(), None);
    let mut occupants = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match room_event(&mut alice, &forum, |_| true).await {
            Some(RoomEvent::Occupant(_)) => occupants += 1,
            Some(RoomEvent::Joined { .. }) => break,
            Some(RoomEvent::JoinFailed(e)) => panic!("{e}"),
            _ => {}
        }
        assert!(tokio::time::Instant::now() < deadline, "no join");
    }
    let took = started.elapsed();
    let after = rss_kib();
    println!(
        "joined a room of {occupants} occupants in {} ms; the process grew by {} KiB (RSS {before} → {after} KiB)",
        took.as_millis(),
        after.saturating_sub(before)
    );
    assert!(occupants > CROWD, "everyone was reported: {occupants}");
    for session in crowd {
        session.abort();
    }
}

/// This process's resident memory, from /proc (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
