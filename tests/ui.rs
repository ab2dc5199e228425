//! The window's logic, headless (iced_test, tiny-skia), against a real Prosody:
//! sign in → open a chat → type → Enter → the message is shown and delivered.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/client.rs"]
mod client;
#[path = "support/prosody.rs"]
mod prosody;
#[path = "support/raw.rs"]
mod raw;
#[path = "support/ui.rs"]
mod ui;

use std::time::{Duration, Instant};

use client::sign_in as sign_in_worker;
use iced::keyboard::key::Named;
use iced_test::selector::id;
use prosody::{Prosody, RosterEntry};
use tern::app::Flags;
use tern::profile::Profile;
use tern::screen::{conversation, login};
use tern::xmpp::{Event, Trust};
use ui::{Harness, use_tiny_skia};

fn sign_in(h: &mut Harness, server: &Prosody, jid: &str, password: &str) {
    h.sign_in(server.port, jid, password);
}

/// A Tern on `profile`, trusting `server`'s certificates, with alice signed in.
async fn alice_signed_in(server: &Prosody, profile: Profile) -> Harness {
    Harness::signed_in(
        ui::flags(profile, &server.ca()),
        server.port,
        "alice@localhost",
        "alicepass",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_open_chat_type_enter_and_see_messages() {
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start_with_roster(
        &[("alice", "alicepass"), ("bob", "bobpass")],
        &prosody::alice_and_bob(),
    );
    let profile_dir = tempfile::tempdir().unwrap();
    let mut h = Harness::started(ui::flags(Profile::at(profile_dir.path()), &server.ca())).await;
    assert!(h.shows("Sign in with your XMPP (Jabber) account"));

    let t0 = Instant::now();
    sign_in(&mut h, &server, "alice@localhost", "alicepass");
    assert!(
        h.pump_until(Duration::from_secs(10), |app| app.is_signed_in())
            .await,
        "not signed in"
    );
    let mut shown = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows("Contacts (1)") {
            shown = true;
            break;
        }
    }
    assert!(shown, "roster never shown");
    println!("UI: sign-in to roster shown in {:?}", t0.elapsed());

    let mut bob = sign_in_worker(&server, "bob").await;

    // Open Bob from the contact list, type, press Enter.
    h.interact(|ui| {
        ui.click("Contacts (1)").unwrap();
    });
    h.interact(|ui| {
        ui.click("Bob").unwrap();
    });
    assert_eq!(h.app.open_peer().map(|j| j.as_str()), Some("bob@localhost"));
    assert_eq!(h.app.title(), "Tern");
    h.settle().await;
    assert!(h.shows("No messages with Bob yet. Say hello!"));
    h.interact(|ui| {
        ui.click(id(conversation::COMPOSER)).unwrap();
        ui.typewrite("hello from the UI");
        ui.tap_key(Named::Enter);
    });
    h.settle().await;
    assert!(h.shows("hello from the UI"), "sent message not shown");
    assert!(!h.shows("No messages with Bob yet. Say hello!"));

    // Bob really got it.
    let got = bob
        .next_event(Duration::from_secs(5), |e| matches!(e, Event::Messages(_)))
        .await;
    let Some(Event::Messages(records)) = got else {
        panic!("bob got nothing")
    };
    assert_eq!(records[0].body, "hello from the UI");

    // Bob's client confirmed it: the message shows ✓✓ (delivered).
    let mut delivered = false;
    for _ in 0..50 {
        h.settle().await;
        let open = h.app.open_conversation().unwrap();
        if open
            .records()
            .iter()
            .any(|r| r.body == "hello from the UI" && r.state == tern::store::Delivery::Delivered)
        {
            delivered = true;
            break;
        }
    }
    assert!(delivered, "never marked delivered");
    assert!(h.shows("✓✓"));

    // Bob answers; it appears in Alice's open chat without any user action.
    bob.handle.send_message(
        tern::xmpp::BareJid::new("alice@localhost").unwrap(),
        "hi Alice, got it".into(),
    );
    let mut seen = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows("hi Alice, got it") {
            seen = true;
            break;
        }
    }
    assert!(seen, "reply not shown");
    // Shift+Enter is a newline, not a send.
    h.interact(|ui| {
        ui.click(id(conversation::COMPOSER)).unwrap();
        ui.typewrite("line one");
        ui.simulate([shift_enter()]);
        ui.typewrite("line two");
    });
    h.settle().await;
    let open = h.app.open_conversation().unwrap();
    assert_eq!(open.records().len(), 2, "Shift+Enter must not send");
    assert_eq!(open.draft().trim_end(), "line one\nline two");
    // Enter sends both lines as one message.
    h.interact(|ui| {
        ui.click(id(conversation::COMPOSER)).unwrap();
        ui.tap_key(Named::Enter);
    });
    h.settle().await;
    let open = h.app.open_conversation().unwrap();
    assert_eq!(open.records().len(), 3);
    assert_eq!(open.records()[2].body, "line one\nline two");
    assert!(open.draft().trim().is_empty());
    let snap = h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light));
    h.save_snapshot(&snap, "ui-chat");

    // While the settings cover the chat, what Bob sends stays unread (the
    // title counts it); closing them shows it and marks it read.
    h.interact(|ui| {
        ui.click("Settings").unwrap();
    });
    assert!(h.app.settings_open());
    bob.handle.send_message(
        tern::xmpp::BareJid::new("alice@localhost").unwrap(),
        "are you there?".into(),
    );
    assert!(
        h.pump_until(Duration::from_secs(10), |app| app.title() == "(1) Tern")
            .await,
        "a message that arrived under the settings screen was marked read"
    );
    h.update(tern::app::Message::Escape);
    assert!(!h.app.settings_open());
    assert!(
        h.pump_until(Duration::from_secs(5), |app| app.title() == "Tern")
            .await,
        "closing the settings did not mark the shown message read"
    );
    assert!(h.shows("are you there?"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_shown_on_the_sign_in_screen() {
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start(&[("alice", "alicepass")]);
    let profile_dir = tempfile::tempdir().unwrap();
    let mut h = Harness::started(ui::flags(Profile::at(profile_dir.path()), &server.ca())).await;
    let t0 = Instant::now();
    sign_in(&mut h, &server, "alice@localhost", "nope");
    assert!(
        h.pump_until(Duration::from_secs(10), |app| matches!(
            app.login_status(),
            Some(login::Status::Error(_))
        ))
        .await
    );
    println!("UI: wrong password shown after {:?}", t0.elapsed());
    // Our words first, then the server's own, if it gave some.
    let Some(login::Status::Error(shown)) = h.app.login_status().cloned() else {
        panic!("no error shown");
    };
    println!("UI: {shown}");
    assert!(shown.starts_with("Wrong address or password."), "{shown}");
    assert!(h.shows(&shown));
    assert!(!h.app.is_signed_in());
}

fn shift_enter() -> iced::Event {
    use iced::keyboard::{self, Key, Location, Modifiers, key::NativeCode, key::Physical};
    iced::Event::Keyboard(keyboard::Event::KeyPressed {
        key: Key::Named(Named::Enter),
        modified_key: Key::Named(Named::Enter),
        physical_key: Physical::Unidentified(NativeCode::Unidentified),
        location: Location::Standard,
        modifiers: Modifiers::SHIFT,
        repeat: false,
        text: Some("\n".into()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xmpp_uri_opens_the_chat_and_scrolling_up_loads_older_pages() {
    use tern::store::{Delivery, NewMessage, Store};
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start_with_roster(
        &[("alice", "alicepass")],
        &[RosterEntry {
            owner: "alice",
            contact: "bob@localhost",
            name: "Bob",
            group: "Friends",
        }],
    );
    let profile_dir = tempfile::tempdir().unwrap();
    let profile = Profile::at(profile_dir.path());
    profile.create().unwrap();
    {
        // History from earlier runs: 120 messages, more than two pages.
        let store = Store::open(&profile.history_dir()).unwrap();
        let start = chrono::Utc::now() - chrono::Duration::hours(2);
        for n in 0..120i64 {
            let time = start + chrono::Duration::seconds(n * 30);
            let (id, body) = (format!("old-{n}"), format!("message {n}"));
            let message = if n % 2 == 0 {
                NewMessage::incoming(
                    &tern::conversation::Id::chat_of("alice@localhost", "bob@localhost").unwrap(),
                    id,
                    body,
                    time,
                )
            } else {
                NewMessage {
                    state: Delivery::Sent,
                    ..NewMessage::outgoing(
                        &tern::conversation::Id::chat_of("alice@localhost", "bob@localhost")
                            .unwrap(),
                        id,
                        body,
                        time,
                    )
                }
            };
            store.insert(message).unwrap();
        }
        store.flush().unwrap();
    }
    let mut h = Harness::started(Flags {
        open: Some(
            "xmpp:bob@localhost?message;body=draft%20text"
                .parse()
                .unwrap(),
        ),
        ..ui::flags(profile, &server.ca())
    })
    .await;
    sign_in(&mut h, &server, "alice@localhost", "alicepass");
    assert!(
        h.pump_until(Duration::from_secs(10), |app| app.open_peer().is_some())
            .await
    );
    assert_eq!(h.app.open_peer().unwrap().as_str(), "bob@localhost");
    h.settle().await;
    let open = h.app.open_conversation().unwrap();
    assert_eq!(open.draft(), "draft text");
    assert_eq!(
        open.records().len(),
        50,
        "only the newest page is loaded at first"
    );
    assert_eq!(open.records().last().unwrap().body, "message 119");
    assert!(h.shows("message 119"));

    // Scroll up to the top, again and again: older pages load.
    let mut loaded = vec![50];
    for _ in 0..10 {
        h.interact(|ui| {
            ui.point_at(iced::Point::new(650.0, 300.0));
            ui.simulate([iced::Event::Mouse(iced::mouse::Event::WheelScrolled {
                delta: iced::mouse::ScrollDelta::Lines { x: 0.0, y: 1000.0 },
            })]);
        });
        h.settle().await;
        let n = h.app.open_conversation().unwrap().records().len();
        if n == *loaded.last().unwrap() && n == 120 {
            break;
        }
        loaded.push(n);
    }
    println!("UI: records after each scroll to the top: {loaded:?}");
    let open = h.app.open_conversation().unwrap();
    assert_eq!(open.records().len(), 120);
    let bodies: Vec<_> = open.records().iter().map(|r| r.body.clone()).collect();
    let expected: Vec<_> = (0..120).map(|n| format!("message {n}")).collect();
    assert_eq!(bodies, expected, "pages joined out of order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrolling_up_past_local_history_fetches_older_pages_from_the_archive() {
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start_with_roster(
        &[("alice", "alicepass"), ("bob", "bobpass")],
        &prosody::alice_and_bob(),
    );
    // 130 messages in Alice's archive before Tern ever ran here, which her
    // phone received (so the server did not keep them as offline messages:
    // those would be news to Tern too).
    let mut phone = sign_in_worker(&server, "alice").await;
    let mut bob = sign_in_worker(&server, "bob").await;
    let alice_jid = tern::xmpp::BareJid::new("alice@localhost").unwrap();
    for n in 0..130 {
        bob.handle
            .send_message(alice_jid.clone(), format!("archived {n:03}"));
    }
    // The server has each once it is sent; the phone's receipt can come
    // before the server's acknowledgement, and then it goes straight to delivered.
    let mut sent = std::collections::HashSet::new();
    while sent.len() < 130 {
        let Some(Event::Updated(r)) = bob
            .next_event(Duration::from_secs(10), |e| {
                matches!(e, Event::Updated(r) if matches!(r.state, tern::store::Delivery::Sent | tern::store::Delivery::Delivered))
            })
            .await
        else {
            panic!("bob's messages not sent ({})", sent.len());
        };
        sent.insert(r.id);
    }
    let mut got = 0;
    while got < 130 {
        match phone
            .next_event(Duration::from_secs(10), |e| matches!(e, Event::Messages(_)))
            .await
        {
            Some(Event::Messages(r)) => got += r.len(),
            _ => panic!("the phone got {got} of 130"),
        }
    }
    let profile_dir = tempfile::tempdir().unwrap();
    let profile = Profile::at(profile_dir.path());
    profile.create().unwrap();
    // The smallest first-sign-in window: one page of the archive.
    std::fs::write(profile.config_file(), "[history]\ncatch_up_messages = 1\n").unwrap();
    let mut h = Harness::started(Flags {
        open: Some("xmpp:bob@localhost".parse().unwrap()),
        ..ui::flags(profile, &server.ca())
    })
    .await;
    // In the background, as on a first start while the user does something
    // else: new messages would count as unread, history must not.
    h.update(tern::app::Message::WindowFocus(false));
    sign_in(&mut h, &server, "alice@localhost", "alicepass");
    assert!(
        h.pump_until(Duration::from_secs(10), |app| app.open_peer().is_some())
            .await
    );
    // The first sign-in's window arrives: one page of the archive (of 100
    // entries, which hold the phone's receipts too).
    assert!(
        h.pump_until(Duration::from_secs(10), |app| app
            .open_conversation()
            .is_some_and(|c| !c.records().is_empty()))
            .await,
        "the first sign-in's history never came"
    );
    h.settle().await;
    // History is not news: the Chats tab counts nothing unread.
    assert!(
        h.shows("Chats"),
        "history from the archive counted as unread"
    );
    let mut loaded = vec![h.app.open_conversation().unwrap().records().len()];
    for _ in 0..20 {
        // A short history does not fill the view, so it cannot scroll: then
        // the user clicks "Load older messages" at its top.
        // (The message its press produces: the simulator sees the button as
        // clipped in the short, bottom-anchored list.)
        if h.shows("Load older messages") {
            h.update(tern::app::Message::Chat(
                tern::screen::chat::Message::Conversation(conversation::Message::LoadOlder),
            ));
        } else {
            h.interact(|ui| {
                ui.point_at(iced::Point::new(650.0, 300.0));
                ui.simulate([iced::Event::Mouse(iced::mouse::Event::WheelScrolled {
                    delta: iced::mouse::ScrollDelta::Lines { x: 0.0, y: 1000.0 },
                })]);
            });
        }
        h.settle().await;
        let n = h.app.open_conversation().unwrap().records().len();
        if n != *loaded.last().unwrap() {
            loaded.push(n);
        }
        if n == 130 && !h.shows("Load older messages") && !h.shows("Loading…") {
            break;
        }
    }
    println!("UI: records after scrolling up: {loaded:?}");
    let open = h.app.open_conversation().unwrap();
    let bodies: Vec<_> = open.records().iter().map(|r| r.body.clone()).collect();
    let expected: Vec<_> = (0..130).map(|n| format!("archived {n:03}")).collect();
    assert_eq!(bodies, expected, "archive pages joined out of order");
    assert!(
        !h.shows("Load older messages"),
        "the start of the archive was reached: nothing more to load"
    );
    let _ = bob.events.try_recv();
}

/// A PNG of `w`×`h` pixels, a gradient (so its preview has something to show).
fn sample_png(dir: &std::path::Path, name: &str, w: u32, h: u32) -> std::path::PathBuf {
    let path = dir.join(name);
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x * 255 / w) as u8, (y * 255 / h) as u8, 160, 255])
    });
    img.save(&path).unwrap();
    path
}

/// Runs the window (bounded) until the worker client gets a message; its record.
async fn until_bob_gets(
    h: &mut Harness,
    bob: &mut client::Client,
    secs: u64,
) -> Option<tern::conversation::Message> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        h.settle().await;
        while let Ok(event) = bob.events.try_recv() {
            if let Event::Messages(mut records) = event {
                return records.pop();
            }
        }
    }
    None
}

/// Uploads `path` as the worker client `from` and sends its link to Alice; the link.
async fn share_as(
    from: &mut client::Client,
    http: &tern::transfer::Http,
    path: &std::path::Path,
    content_type: &str,
) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let size = std::fs::metadata(path).unwrap().len();
    from.handle
        .request_slot(name.clone(), name, size, content_type.into());
    let slot = match from
        .next_event(Duration::from_secs(10), |e| matches!(e, Event::Slot { .. }))
        .await
    {
        Some(Event::Slot {
            result: Ok(slot), ..
        }) => slot,
        other => panic!("no slot: {other:?}"),
    };
    http.upload(&slot, path, content_type, std::sync::Arc::new(|_| {}))
        .await
        .unwrap();
    from.handle.share_file(
        tern::xmpp::BareJid::new("alice@localhost").unwrap(),
        slot.get.clone(),
    );
    slot.get
}

/// Runs the window (bounded) until it shows a preview of `url`; its size.
async fn preview_of(h: &mut Harness, url: &str, secs: u64) -> Option<(u32, u32)> {
    let shown = h
        .pump_until(Duration::from_secs(secs), |app| {
            app.sharing().is_some_and(|s| s.preview_size(url).is_some())
        })
        .await;
    shown
        .then(|| h.app.sharing().unwrap().preview_size(url))
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_and_pasted_files_upload_with_progress_and_received_ones_show_inline() {
    use tern::app::{Message, event_message};
    use tern::screen::{chat, sharing};
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start_with_roster(
        &[
            ("alice", "alicepass"),
            ("bob", "bobpass"),
            ("carol", "carolpass"),
        ],
        &prosody::alice_and_bob(),
    );
    let profile_dir = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let config = profile_dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!("[files]\ndownload_dir = {:?}\n", downloads.path()),
    )
    .unwrap();
    let mut h = Harness::started(ui::flags(Profile::at(profile_dir.path()), &server.ca())).await;
    sign_in(&mut h, &server, "alice@localhost", "alicepass");
    assert!(
        h.pump_until(Duration::from_secs(10), |app| {
            app.sharing()
                .is_some_and(|s| s.knows_service(&"alice@localhost".parse().unwrap()))
        })
        .await,
        "upload service never discovered"
    );
    let mut bob = sign_in_worker(&server, "bob").await;
    let bob_jid = tern::conversation::Id::chat_of("alice@localhost", "bob@localhost").unwrap();
    h.settle().await;
    h.interact(|ui| {
        ui.click("Contacts (1)").unwrap();
    });
    h.interact(|ui| {
        ui.click("Bob").unwrap();
    });
    h.settle().await;

    // Drag: the window's hover and drop events, as the window reports them.
    let photo = sample_png(files.path(), "photo.png", 1200, 800);
    let hovered = iced::Event::Window(iced::window::Event::FileHovered(photo.clone()));
    h.update(event_message(hovered).expect("hover is handled"));
    assert!(h.shows("Drop files to send them to Bob"), "no drop zone");
    let dropped = iced::Event::Window(iced::window::Event::FileDropped(photo.clone()));
    h.update(event_message(dropped).expect("drop is handled"));
    assert!(
        !h.shows("Drop files to send them to Bob"),
        "drop zone stays"
    );
    assert_eq!(h.app.sharing().unwrap().uploads_to(&bob_jid).len(), 1);
    let got = until_bob_gets(&mut h, &mut bob, 20)
        .await
        .expect("bob got the photo");
    assert!(got.attachment, "not marked as an attachment: {got:?}");
    assert!(got.body.starts_with("https://") && got.body.ends_with("/photo.png"));
    // Alice's side: the upload is gone, her message shows the preview made from her file.
    let url = got.body.clone();
    assert_eq!(
        preview_of(&mut h, &url, 10).await,
        Some((320, 213)),
        "no preview of the sent photo"
    );
    assert!(h.app.sharing().unwrap().uploads_to(&bob_jid).is_empty());

    // Paste: Ctrl+V asks for the clipboard; an image there is sent as a PNG.
    let ctrl_v = iced::Event::Keyboard(iced::keyboard::Event::KeyPressed {
        key: iced::keyboard::Key::Character("v".into()),
        modified_key: iced::keyboard::Key::Character("v".into()),
        physical_key: iced::keyboard::key::Physical::Code(iced::keyboard::key::Code::KeyV),
        location: iced::keyboard::Location::Standard,
        modifiers: iced::keyboard::Modifiers::CTRL,
        text: None,
        repeat: false,
    });
    assert!(matches!(
        event_message(ctrl_v),
        Some(Message::Chat(chat::Message::Paste))
    ));
    // (No display here: what the clipboard read returns is handed in directly.)
    let rgba: Vec<u8> = (0..64 * 48).flat_map(|i| [i as u8, 90, 200, 255]).collect();
    h.update(Message::Chat(chat::Message::Sharing(
        sharing::Message::Pasted(
            bob_jid.clone(),
            Ok(tern::sharing::Clipboard::Image {
                width: 64,
                height: 48,
                rgba: std::sync::Arc::new(rgba),
            }),
        ),
    )));
    let pasted = until_bob_gets(&mut h, &mut bob, 20).await;
    let pasted = pasted.expect("bob got the pasted image");
    assert!(
        pasted.body.ends_with(".png") && pasted.body.contains("Pasted%20image"),
        "{}",
        pasted.body
    );
    let http = tern::transfer::Http::new(&Trust::from_pem_file(&server.ca()).unwrap()).unwrap();
    let fetched = http
        .download(
            &pasted.body,
            files.path(),
            None,
            std::sync::Arc::new(|_| {}),
        )
        .await
        .unwrap();
    let decoded = image::open(&fetched).unwrap().to_rgba8();
    assert_eq!(decoded.dimensions(), (64, 48));

    // Over the server's limit (10 MiB): refused before anything is sent.
    let big = files.path().join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(11 * 1024 * 1024)
        .unwrap();
    h.update(event_message(iced::Event::Window(iced::window::Event::FileDropped(big))).unwrap());
    h.settle().await;
    let uploads = h.app.sharing().unwrap().uploads_to(&bob_jid);
    assert_eq!(uploads.len(), 1);
    assert!(
        uploads[0]
            .failed
            .as_deref()
            .unwrap_or_default()
            .contains("your server takes files up to"),
        "{uploads:?}"
    );
    assert!(h.shows("This file is 11.5 MB; your server takes files up to 10.5 MB."));
    // It would be refused again: no Retry offered.
    assert!(!uploads[0].retry);
    assert!(!h.shows("Retry"), "Retry offered on a file over the limit");
    h.interact(|ui| {
        ui.click("Dismiss").unwrap();
    });
    assert!(h.app.sharing().unwrap().uploads_to(&bob_jid).is_empty());

    // Cancelled while sending: nothing is announced to Bob.
    let large = files.path().join("large.bin");
    std::fs::write(&large, vec![7u8; 9 * 1024 * 1024]).unwrap();
    h.update(event_message(iced::Event::Window(iced::window::Event::FileDropped(large))).unwrap());
    let sending = h
        .pump_until(Duration::from_secs(10), |app| {
            app.sharing()
                .is_some_and(|s| s.uploads_to(&bob_jid).iter().any(|u| u.sent.is_some()))
        })
        .await;
    assert!(sending, "the upload never started");
    h.interact(|ui| {
        ui.click("Cancel").unwrap();
    });
    assert!(h.app.sharing().unwrap().uploads_to(&bob_jid).is_empty());
    assert!(
        until_bob_gets(&mut h, &mut bob, 3).await.is_none(),
        "a cancelled upload was announced"
    );

    // Receiving: Bob shares an image and a document; the image shows inline,
    // the document as a card whose Download saves it to the download folder.
    let view = sample_png(files.path(), "view.png", 400, 900);
    let notes = files.path().join("notes.pdf");
    std::fs::write(&notes, b"%PDF-1.4 not really").unwrap();
    let image_url = share_as(&mut bob, &http, &view, "application/octet-stream").await;
    let pdf_url = share_as(&mut bob, &http, &notes, "application/octet-stream").await;
    assert_eq!(
        preview_of(&mut h, &image_url, 15).await,
        Some((142, 320)),
        "Bob's image never previewed"
    );
    h.settle().await;
    assert!(h.shows("notes.pdf"));
    let snap = h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light));
    h.save_snapshot(&snap, "ui-files");
    // From someone not in the roster, an image link is not fetched by itself:
    // it shows "Show image" and loads only when clicked.
    let mut carol = sign_in_worker(&server, "carol").await;
    let carols = sample_png(files.path(), "stranger.png", 300, 300);
    let stranger_url = share_as(&mut carol, &http, &carols, "image/png").await;
    let carol_jid = tern::conversation::Id::chat_of("alice@localhost", "carol@localhost").unwrap();
    h.update(Message::Chat(chat::Message::Open(carol_jid)));
    let mut shown = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows("Show image") {
            shown = true;
            break;
        }
    }
    assert!(shown, "a stranger's image offers no click to load");
    assert_eq!(h.app.sharing().unwrap().preview_size(&stranger_url), None);
    h.interact(|ui| {
        ui.click("Show image").unwrap();
    });
    assert!(
        preview_of(&mut h, &stranger_url, 10).await.is_some(),
        "the clicked image never loaded"
    );
    drop(carol);
    h.update(Message::Chat(chat::Message::Open(bob_jid.clone())));
    h.settle().await;

    // The document's Download button (its message, as the button sends it).
    h.update(Message::Chat(chat::Message::Sharing(
        sharing::Message::Download(pdf_url.clone()),
    )));
    let saved = downloads.path().join("notes.pdf");
    let mut done = false;
    for _ in 0..50 {
        h.settle().await;
        if saved.exists() && h.shows("Show in folder") {
            done = true;
            break;
        }
    }
    assert!(done, "the document was not saved to the download folder");
    assert_eq!(std::fs::read(&saved).unwrap(), b"%PDF-1.4 not really");

    // A program from a contact is saved, but offered only in its folder.
    let program = files.path().join("setup.exe");
    std::fs::write(&program, b"MZ not really").unwrap();
    let exe_url = share_as(&mut bob, &http, &program, "application/octet-stream").await;
    let movie = files.path().join("movie.mkv");
    std::fs::write(&movie, vec![3u8; 1024 * 1024]).unwrap();
    let movie_url = share_as(&mut bob, &http, &movie, "application/octet-stream").await;
    h.update(Message::Chat(chat::Message::Sharing(
        sharing::Message::Download(exe_url.clone()),
    )));
    let mut done = false;
    for _ in 0..50 {
        h.settle().await;
        if downloads.path().join("setup.exe").exists()
            && h.shows(
                "A program: Tern does not run it. Open it from its folder only if you trust it.",
            )
        {
            done = true;
            break;
        }
    }
    assert!(done, "the program's card does not say it is not run");
    // Cancelled at once: the card offers Download again, and nothing is saved.
    h.update(Message::Chat(chat::Message::Sharing(
        sharing::Message::Download(movie_url.clone()),
    )));
    h.update(Message::Chat(chat::Message::Sharing(
        sharing::Message::CancelDownload(movie_url.clone()),
    )));
    for _ in 0..5 {
        h.settle().await;
    }
    let snap = h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light));
    h.save_snapshot(&snap, "ui-downloads");
    // Nothing else was written there (no partial files, no stray previews).
    let mut names: Vec<_> = std::fs::read_dir(downloads.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            std::ffi::OsString::from("notes.pdf"),
            std::ffi::OsString::from("setup.exe")
        ]
    );
}

/// A draft stays with its chat: when another chat opens (from a link), when
/// its chat opens again from the list, and across a restart. The list marks
/// it "Draft: …", a chat with nothing but a draft is listed, and sending
/// clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_stay_with_their_chat_across_switches_and_restarts() {
    use tern::app::Message;
    use tern::instance::Request;
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start_with_roster(
        &[("alice", "alicepass"), ("bob", "bobpass")],
        &prosody::alice_and_bob(),
    );
    let profile_dir = tempfile::tempdir().unwrap();
    let flags = || Flags {
        profile: Profile::at(profile_dir.path()),
        trust: Trust::from_pem_file(&server.ca()).unwrap(),
        open: None,
        launched: Instant::now(),
        instance: None,
        credentials: false,
    };
    let mut h = Harness::started(flags()).await;
    sign_in(&mut h, &server, "alice@localhost", "alicepass");
    assert!(
        h.pump_until(Duration::from_secs(10), |app| app.is_signed_in())
            .await,
        "not signed in"
    );
    h.settle().await;
    h.interact(|ui| {
        ui.click("Contacts (1)").unwrap();
    });
    h.interact(|ui| {
        ui.click("Bob").unwrap();
    });
    h.interact(|ui| {
        ui.click(id(conversation::COMPOSER)).unwrap();
        ui.typewrite("half a thought");
    });
    h.settle().await;

    // A link opens Carol's chat: Bob's draft stays, and the list says so.
    h.update(Message::Instance(Request {
        open: Some("xmpp:carol@localhost".into()),
    }));
    h.settle().await;
    assert_eq!(h.app.open_peer().unwrap().as_str(), "carol@localhost");
    assert_eq!(h.app.open_conversation().unwrap().draft(), "");
    assert!(h.shows("Draft: half a thought"), "Bob's draft not listed");
    h.interact(|ui| {
        ui.click(id(conversation::COMPOSER)).unwrap();
        ui.typewrite("note to Carol");
    });
    h.settle().await;

    // Back to Bob from the list: his draft is in the composer; Carol, with
    // nothing but a draft, is listed with it.
    h.interact(|ui| {
        ui.click("Bob").unwrap();
    });
    h.settle().await;
    assert_eq!(h.app.open_peer().unwrap().as_str(), "bob@localhost");
    assert_eq!(h.app.open_conversation().unwrap().draft(), "half a thought");
    assert!(
        h.shows("Draft: note to Carol"),
        "Carol's draft-only chat not listed"
    );
    assert!(
        !h.shows("Draft: half a thought"),
        "the open chat's draft is listed"
    );
    drop(h);
    // The first window's tasks let go of the history before the next opens it.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Restart: both drafts are back.
    let mut h = Harness::started(flags()).await;
    h.interact(|ui| {
        ui.click(id(login::PASSWORD_INPUT)).unwrap();
        ui.typewrite("alicepass");
        ui.click("Sign in").unwrap();
    });
    assert!(
        h.pump_until(Duration::from_secs(10), |app| app.is_signed_in())
            .await,
        "not signed in after the restart"
    );
    h.settle().await;
    assert!(h.shows("Draft: half a thought"));
    assert!(h.shows("Draft: note to Carol"));
    h.interact(|ui| {
        ui.click("Bob").unwrap();
    });
    h.settle().await;
    assert_eq!(h.app.open_conversation().unwrap().draft(), "half a thought");

    // Sending clears the draft, also for the next start.
    h.interact(|ui| {
        ui.click(id(conversation::COMPOSER)).unwrap();
        ui.tap_key(Named::Enter);
    });
    h.settle().await;
    assert!(h.shows("half a thought"));
    assert_eq!(h.app.open_conversation().unwrap().draft(), "");
    h.update(Message::Instance(Request {
        open: Some("xmpp:carol@localhost".into()),
    }));
    h.settle().await;
    assert!(!h.shows("Draft: half a thought"));
    assert_eq!(h.app.open_conversation().unwrap().draft(), "note to Carol");
    // A link with a text for a chat that has a draft adds to it, never
    // replaces it: what the user typed is not thrown away by a click.
    h.update(Message::Instance(Request {
        open: Some("xmpp:carol@localhost?message;body=see%20you".into()),
    }));
    h.settle().await;
    assert_eq!(
        h.app.open_conversation().unwrap().draft(),
        "note to Carol\nsee you"
    );
    // The same link again adds nothing more.
    h.update(Message::Instance(Request {
        open: Some("xmpp:carol@localhost?message;body=see%20you".into()),
    }));
    h.settle().await;
    assert_eq!(
        h.app.open_conversation().unwrap().draft(),
        "note to Carol\nsee you"
    );
    drop(h);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let store = tern::store::Store::open(&Profile::at(profile_dir.path()).history_dir()).unwrap();
    assert_eq!(
        store.drafts("alice@localhost").unwrap(),
        vec![(
            tern::conversation::Id::chat_of("alice@localhost", "carol@localhost").unwrap(),
            "note to Carol\nsee you".to_string()
        )]
    );
}

/// Quitting (the window's close button, Ctrl+Q, SIGTERM) signs off first:
/// a contact sees Tern go offline at once, not when the server gives up on a
/// dropped connection it holds for resumption.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quitting_signs_off_before_exiting() {
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start_with_roster(
        &[("alice", "alicepass"), ("bob", "bobpass")],
        &prosody::alice_and_bob(),
    );
    let mut bob = sign_in_worker(&server, "bob").await;
    let profile_dir = tempfile::tempdir().unwrap();
    let mut h = alice_signed_in(&server, Profile::at(profile_dir.path())).await;
    let online = bob
        .next_event(Duration::from_secs(10), |e| {
            matches!(e, Event::Presence { from, availability, .. }
                if from.to_bare().as_str() == "alice@localhost" && *availability != tern::xmpp::Availability::Offline)
        })
        .await;
    assert!(online.is_some(), "bob never saw alice online");
    // Ctrl+Q, through the app's own key mapping.
    let ctrl_q = iced::Event::Keyboard(iced::keyboard::Event::KeyPressed {
        key: iced::keyboard::Key::Character("q".into()),
        modified_key: iced::keyboard::Key::Character("q".into()),
        physical_key: iced::keyboard::key::Physical::Unidentified(
            iced::keyboard::key::NativeCode::Unidentified,
        ),
        location: iced::keyboard::Location::Standard,
        modifiers: iced::keyboard::Modifiers::COMMAND,
        text: None,
        repeat: false,
    });
    let t0 = Instant::now();
    h.update(tern::app::event_message(ctrl_q).expect("Ctrl+Q is mapped"));
    assert!(h.app.is_quitting());
    let offline = bob
        .next_event(Duration::from_secs(10), |e| {
            matches!(e, Event::Presence { from, availability: tern::xmpp::Availability::Offline, .. }
                if from.to_bare().as_str() == "alice@localhost")
        })
        .await;
    println!("UI: bob saw alice offline {:?} after Ctrl+Q", t0.elapsed());
    assert!(offline.is_some(), "bob never saw alice go offline");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

/// A message from Gajim, Dino or Conversations encrypted with OMEMO is shown
/// as what it is, in Tern's words, not as the fallback sentence the contact's
/// client put in its body; the list says so too. The fallback stays stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_messages_are_shown_as_such() {
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start_with_roster(
        &[("alice", "alicepass"), ("bob", "bobpass")],
        &prosody::alice_and_bob(),
    );
    let profile_dir = tempfile::tempdir().unwrap();
    let mut h = alice_signed_in(&server, Profile::at(profile_dir.path())).await;
    let bob = raw::Raw::connect(client::settings(
        &server.address(),
        &server.ca(),
        "bob@localhost",
        "bobpass",
    ))
    .await;
    let fallback =
        "I sent you an OMEMO encrypted message but your client doesn’t seem to support that.";
    bob.send_message_xml(&format!(
        "<message to='alice@localhost' type='chat' id='omemo-1'>\
         <encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>a2V5</key><iv>aXY=</iv></header><payload>cGF5bG9hZA==</payload></encrypted>\
         <body>{fallback}</body><encryption xmlns='urn:xmpp:eme:0' namespace='eu.siacs.conversations.axolotl'/></message>"
    ))
    .await;
    let mut listed = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows("Encrypted message") {
            listed = true;
            break;
        }
    }
    assert!(listed, "the chat list does not say it is encrypted");
    h.interact(|ui| {
        ui.click("Bob").unwrap();
    });
    h.settle().await;
    assert!(h.shows(
        "An encrypted message (OMEMO). Tern cannot read encrypted messages yet: read it on a device that can."
    ));
    assert!(!h.shows(fallback), "the fallback is shown as Bob's words");
    let stored = &h.app.open_conversation().unwrap().records()[0];
    assert_eq!(stored.body, fallback, "the fallback stays in the history");
}

/// When the connection worker stops on a bug and its supervisor starts a new
/// one, the chat says so and the account signs in again by itself; when it
/// crashed too often, the chat says it stays offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_worker_is_said_and_the_account_signs_in_again() {
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start_with_roster(
        &[("alice", "alicepass"), ("bob", "bobpass")],
        &prosody::alice_and_bob(),
    );
    let profile_dir = tempfile::tempdir().unwrap();
    let mut h = alice_signed_in(&server, Profile::at(profile_dir.path())).await;
    // What the supervisor tells the app (see `xmpp::supervisor`'s own tests
    // for the restart itself): the new worker waits to be told to connect.
    let alice: tern::xmpp::BareJid = "alice@localhost".parse().unwrap();
    h.update(tern::app::Message::Worker(
        alice.clone(),
        vec![Event::Crashed { restarting: true }],
    ));
    h.settle().await;
    assert!(h.shows(
        "Tern's connection stopped on a bug and was started again. Your messages are safe; if this keeps happening, please report it with the log."
    ));
    assert!(
        h.pump_until(Duration::from_secs(10), |app| app.is_signed_in())
            .await
    );
    h.update(tern::app::Message::Worker(
        alice,
        vec![Event::Crashed { restarting: false }],
    ));
    h.settle().await;
    assert!(h.shows(
        "Tern's connection keeps stopping on a bug, so it stays offline until Tern is restarted. Your messages are safe; please report this with the log."
    ));
}

/// A huge message (200,000 characters, as much as a server lets through) is
/// stored whole but shown shortened, with a way to copy all of it; the chat
/// list's preview of it is one short line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_message_is_shown_shortened() {
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start_with_roster(
        &[("alice", "alicepass"), ("bob", "bobpass")],
        &prosody::alice_and_bob(),
    );
    let profile_dir = tempfile::tempdir().unwrap();
    let mut h = alice_signed_in(&server, Profile::at(profile_dir.path())).await;
    let bob = raw::Raw::connect(client::settings(
        &server.address(),
        &server.ca(),
        "bob@localhost",
        "bobpass",
    ))
    .await;
    let huge: String = "all work and no play makes bob a dull boy "
        .chars()
        .cycle()
        .take(200_000)
        .collect();
    bob.send_message_xml(&format!(
        "<message to='alice@localhost' type='chat' id='huge-1'><body>{huge}</body></message>"
    ))
    .await;
    // The chat list shows its first 120 characters, no more.
    let mut listed = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows(&huge[..120]) {
            listed = true;
            break;
        }
    }
    assert!(
        listed,
        "the message is not in the chat list, or not as a short preview"
    );
    h.interact(|ui| {
        ui.click("Bob").unwrap();
    });
    h.settle().await;
    assert!(h.shows("Shortened: the whole message has 200000 characters."));
    assert!(h.shows("Copy the whole message"));
    let stored = &h.app.open_conversation().unwrap().records()[0];
    assert_eq!(stored.body, huge, "the history keeps all of it");
    let snap = h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light));
    h.save_snapshot(&snap, "ui-huge-message");
}

/// Thousands of chats (here 3,000 strangers who each wrote once): the list
/// builds only the rows in sight, and scrolling to its end still shows the
/// oldest chat where a click opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_chats_scroll_to_the_oldest() {
    use tern::store::{NewMessage, Store};
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start(&[("alice", "alicepass")]);
    let profile_dir = tempfile::tempdir().unwrap();
    let profile = Profile::at(profile_dir.path());
    profile.create().unwrap();
    let chats = 3_000;
    {
        let store = Store::open(&profile.history_dir()).unwrap();
        let start = chrono::Utc::now() - chrono::Duration::hours(10);
        for n in 0..chats {
            let time = start + chrono::Duration::seconds(n);
            let peer = format!("stranger{n}@spam.example");
            let message = NewMessage::incoming(
                &tern::conversation::Id::chat_of("alice@localhost", &peer).unwrap(),
                format!("spam-{n}"),
                format!("spam number {n}"),
                time,
            );
            store.insert(message).unwrap();
        }
        store.flush().unwrap();
    }
    let mut h = Harness::started(ui::flags(profile, &server.ca())).await;
    sign_in(&mut h, &server, "alice@localhost", "alicepass");
    assert!(
        h.pump_until(Duration::from_secs(10), |app| app.is_signed_in())
            .await
    );
    // Strangers are named by their JID's local part.
    let newest = format!("stranger{}", chats - 1);
    let mut listed = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows(&newest) {
            listed = true;
            break;
        }
    }
    assert!(listed, "the newest chat is not at the top");
    assert!(!h.shows("stranger0"), "a row out of sight was built");
    let t0 = Instant::now();
    let snap = h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light));
    println!("UI: view and draw with {chats} chats: {:?}", t0.elapsed());
    h.save_snapshot(&snap, "ui-many-chats");
    // To the end of the list. (Each view here is a new simulator whose
    // scrollable starts at the top, so only what the app builds for the
    // position it was told can be checked, not a click at that position:
    // that was checked by hand in the real window.)
    h.interact(|ui| {
        ui.point_at(iced::Point::new(150.0, 400.0));
        ui.simulate([iced::Event::Mouse(iced::mouse::Event::WheelScrolled {
            delta: iced::mouse::ScrollDelta::Lines {
                x: 0.0,
                y: -1_000_000.0,
            },
        })]);
    });
    assert!(
        h.shows("stranger0"),
        "the oldest chat is not built at the end of the list"
    );
    assert!(!h.shows(&newest), "the top of the list is still built");
}

/// The window paints before the configuration and the history are open:
/// a history another Tern still holds (sled's file lock, waited for up to
/// two seconds) or one being migrated holds up the first frames' content,
/// never the UI thread. Before, `App::new` itself waited for the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_paints_while_the_history_waits_for_its_lock() {
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let profile_dir = tempfile::tempdir().unwrap();
    let flags = || Flags {
        profile: Profile::at(profile_dir.path()),
        trust: Trust::system(),
        open: None,
        launched: Instant::now(),
        instance: None,
        credentials: false,
    };
    let held = tern::store::Store::open(&Profile::at(profile_dir.path()).history_dir()).unwrap();
    let mut h = Harness::new(flags());
    assert!(h.app.is_opening());
    assert!(h.shows("Opening your history…"));
    // The other holder lets go within the wait: this Tern opens the history.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.app.is_opening());
    drop(held);
    assert!(
        h.pump_until(Duration::from_secs(10), |app| !app.is_opening())
            .await
    );
    assert!(h.shows("Sign in with your XMPP (Jabber) account"));
    drop(h);
    // One that never lets go: the window says so instead of hanging.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _held = tern::store::Store::open(&Profile::at(profile_dir.path()).history_dir()).unwrap();
    let mut h = Harness::new(flags());
    assert!(h.shows("Opening your history…"));
    assert!(
        h.pump_until(Duration::from_secs(10), |app| !app.is_opening())
            .await
    );
    assert!(h.shows(
        "This profile is already open in another Tern window. Close it, or start Tern with another --profile."
    ));
}

/// Events carry their account: a worker's batch for an account that is not
/// the signed-in one (a worker outliving a sign-out) changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_another_account_are_not_shown() {
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = Prosody::start_with_roster(
        &[("alice", "alicepass"), ("bob", "bobpass")],
        &prosody::alice_and_bob(),
    );
    let profile_dir = tempfile::tempdir().unwrap();
    let mut h = alice_signed_in(&server, Profile::at(profile_dir.path())).await;
    h.settle().await;
    let stray = tern::conversation::Message {
        conversation: tern::conversation::Id::chat_of("mallory@localhost", "bob@localhost")
            .unwrap(),
        id: "x1".into(),
        direction: tern::conversation::Direction::In,
        body: "not for alice".into(),
        time: chrono::Utc::now(),
        state: tern::conversation::Delivery::Received,
        error: None,
        archive_id: None,
        other_device: false,
        sender: None,
        attachment: false,
        encryption: None,
    };
    h.update(tern::app::Message::Worker(
        "mallory@localhost".parse().unwrap(),
        vec![Event::Messages(vec![stray.clone()])],
    ));
    h.settle().await;
    assert!(!h.shows("not for alice"));
    // The same batch from alice's worker is shown: the test can fail.
    h.update(tern::app::Message::Worker(
        "alice@localhost".parse().unwrap(),
        vec![Event::Messages(vec![tern::conversation::Message {
            conversation: tern::conversation::Id::chat_of("alice@localhost", "bob@localhost")
                .unwrap(),
            ..stray
        }])],
    ));
    h.settle().await;
    assert!(h.shows("not for alice"));
}
