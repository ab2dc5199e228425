//! Several accounts in one Tern, on two domains of a real Prosody: both come
//! back from the profile at start, chat side by side, one failing does not
//! stop the other, one signs out and is added again from the main window.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/client.rs"]
mod client;
#[path = "support/keyring.rs"]
mod keyring;
#[path = "support/prosody.rs"]
mod prosody;
#[path = "support/ui.rs"]
mod ui;
#[path = "support/xvfb.rs"]
mod xvfb;

use std::time::{Duration, Instant};

use iced::keyboard::key::Named;
use iced_test::selector::id;
use prosody::{Prosody, RosterEntry};
use tern::app::{Flags, Message};
use tern::config::{AccountConfig, Config};
use tern::conversation::Id;
use tern::profile::Profile;
use tern::screen::{chat, conversation};
use tern::xmpp::{Availability, BareJid, ConnectionState, Event, Trust};
use ui::{Harness, use_tiny_skia};

const ALICE: &str = "alice@localhost";
const WANDA: &str = "wanda@work.localhost";

fn roster() -> Vec<RosterEntry<'static>> {
    let entry = |owner, contact, name| RosterEntry {
        owner,
        contact,
        name,
        group: "Friends",
    };
    vec![
        entry("alice", "bob@localhost", "Bob"),
        entry("bob", ALICE, "Alice"),
        entry(WANDA, "walt@work.localhost", "Walt"),
        entry("walt@work.localhost", WANDA, "Wanda"),
    ]
}

/// Prosody with both domains: alice and bob on one, wanda and walt on the other.
fn server() -> Prosody {
    Prosody::start_with_roster(
        &[
            ("alice", "alicepass"),
            ("bob", "bobpass"),
            ("wanda@work.localhost", "wandapass"),
            ("walt@work.localhost", "waltpass"),
        ],
        &roster(),
    )
}

/// A profile that signs both accounts in by itself (password files, as
/// `tern --jid … --password-file …` writes them).
fn profile_with_both(dir: &std::path::Path, server: &Prosody, wanda_password: &str) -> Profile {
    let profile = Profile::at(dir.join("profile"));
    profile.create().unwrap();
    let mut config = Config::default();
    for (jid, password) in [(ALICE, "alicepass"), (WANDA, wanda_password)] {
        let file = dir.join(format!("{jid}.password"));
        std::fs::write(&file, password).unwrap();
        config.upsert_account(AccountConfig {
            jid: jid.into(),
            host: Some("127.0.0.1".into()),
            port: Some(server.port),
            direct_tls: false,
            password_file: Some(file),
        });
    }
    config.save(&profile.config_file()).unwrap();
    profile
}

fn flags(profile: Profile, server: &Prosody) -> Flags {
    Flags {
        profile,
        trust: Trust::from_pem_file(&server.ca()).unwrap(),
        open: None,
        launched: Instant::now(),
        instance: None,
        credentials: false,
    }
}

fn jid(s: &str) -> BareJid {
    s.parse().unwrap()
}

fn online(app: &tern::app::App, account: &str) -> bool {
    matches!(
        app.connection_of(&jid(account)),
        Some(ConnectionState::Online { .. })
    )
}

async fn peer(server: &Prosody, jid: &str, password: &str) -> client::Client {
    client::Client::online(client::settings(
        &server.address(),
        &server.ca(),
        jid,
        password,
    ))
    .await
}

/// Types `body` into the open chat and presses Enter.
fn send(h: &mut Harness, body: &str) {
    h.interact(|ui| {
        ui.click(id(conversation::COMPOSER)).unwrap();
        ui.typewrite(body);
        ui.tap_key(Named::Enter);
    });
}

async fn received(peer: &mut client::Client, body: &str) -> bool {
    let body = body.to_string();
    peer.next_event(
        Duration::from_secs(10),
        move |e| matches!(e, Event::Messages(m) if m.iter().any(|m| m.body == body)),
    )
    .await
    .is_some()
}

/// Whether `peer` hears `account` announce `wanted`, with `wanted_status`.
async fn sees(
    peer: &mut client::Client,
    account: &str,
    wanted: Availability,
    wanted_status: Option<&str>,
) -> bool {
    let account = account.to_string();
    let wanted_status = wanted_status.map(str::to_string);
    peer.next_event(Duration::from_secs(10), move |e| {
        matches!(e, Event::Presence { from, availability, status }
            if from.to_bare().as_str() == account
                && *availability == wanted
                && *status == wanted_status)
    })
    .await
    .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_chat_side_by_side_and_fail_alone() {
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let mut bob = peer(&server, "bob@localhost", "bobpass").await;
    let mut walt = peer(&server, "walt@work.localhost", "waltpass").await;

    // Both accounts come back from the profile, each with its own roster.
    let mut h = Harness::started(flags(
        profile_with_both(dir.path(), &server, "wandapass"),
        &server,
    ))
    .await;
    assert!(
        h.pump_until(Duration::from_secs(15), |app| online(app, ALICE)
            && online(app, WANDA))
            .await,
        "both accounts online"
    );
    assert_eq!(h.app.accounts(), vec![jid(ALICE), jid(WANDA)]);
    h.settle().await;
    assert!(h.shows("Contacts (2)"), "one contact on each account");

    // Messages in on both at once: one list, each row with its account.
    bob.handle
        .send_message(jid(ALICE), "hello Alice, from Bob".into());
    walt.handle
        .send_message(jid(WANDA), "hello Wanda, from Walt".into());
    let mut listed = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows("hello Alice, from Bob") && h.shows("hello Wanda, from Walt") {
            listed = true;
            break;
        }
    }
    assert!(listed, "both messages in the one list");
    assert!(
        h.shows("alice") && h.shows("wanda"),
        "rows say their account"
    );
    assert!(
        h.app.title().starts_with("(2)"),
        "the title counts both accounts"
    );
    let snap = h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light));
    h.save_snapshot(&snap, "accounts-unified-list");

    // A link to someone only one account knows opens with that account; to
    // someone neither knows, the window asks which account to use.
    let link = |uri: &str| {
        Message::Instance(tern::instance::Request {
            open: Some(uri.into()),
        })
    };
    h.update(link("xmpp:walt@work.localhost"));
    h.settle().await;
    assert_eq!(
        h.app.open_id(),
        Some(&Id::chat_of(WANDA, "walt@work.localhost").unwrap())
    );
    h.update(link("xmpp:carol@elsewhere.example"));
    h.settle().await;
    assert!(h.shows("Open the chat with carol@elsewhere.example from which account?"));
    h.interact(|ui| {
        ui.click("With wanda@work.localhost").unwrap();
    });
    h.settle().await;
    assert_eq!(
        h.app.open_id(),
        Some(&Id::chat_of(WANDA, "carol@elsewhere.example").unwrap())
    );

    // Out on both: each reply goes from the conversation's own account.
    h.update(Message::Chat(chat::Message::Open(
        Id::chat_of(ALICE, "bob@localhost").unwrap(),
    )));
    h.settle().await;
    send(&mut h, "hi Bob, Alice here");
    h.update(Message::Chat(chat::Message::Open(
        Id::chat_of(WANDA, "walt@work.localhost").unwrap(),
    )));
    h.settle().await;
    assert!(
        h.shows("walt@work.localhost · Available · via wanda@work.localhost"),
        "the chat says its account"
    );
    send(&mut h, "hi Walt, Wanda here");
    assert!(received(&mut bob, "hi Bob, Alice here").await);
    assert!(received(&mut walt, "hi Walt, Wanda here").await);
    let wandas = bob
        .store
        .page(&Id::chat_of("bob@localhost", WANDA).unwrap(), None, 10);
    assert!(
        wandas.unwrap().records.is_empty(),
        "nothing went out from the wrong account"
    );

    // Presence: busy at work, away at home: each contact sees its own
    // account's, and the shared status message on both.
    h.update(Message::Chat(chat::Message::StatusDraft(
        "at the harbour".into(),
    )));
    h.update(Message::Chat(chat::Message::StatusSubmit));
    h.update(Message::Chat(chat::Message::Availability(
        chat::AvailabilityChoice(Availability::Away),
    )));
    h.update(Message::Chat(chat::Message::AccountAvailability(
        jid(WANDA),
        chat::AvailabilityChoice(Availability::DoNotDisturb),
    )));
    assert!(
        sees(&mut bob, ALICE, Availability::Away, Some("at the harbour")).await,
        "bob sees alice away"
    );
    assert!(
        sees(
            &mut walt,
            WANDA,
            Availability::DoNotDisturb,
            Some("at the harbour")
        )
        .await,
        "walt sees wanda busy"
    );
    h.settle().await;
    let snap = h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light));
    h.save_snapshot(&snap, "accounts-presence");

    // The list filter shows one account's chats.
    h.settle().await;
    assert!(h.shows("You: hi Bob, Alice here") && h.shows("You: hi Walt, Wanda here"));
    h.update(Message::Chat(chat::Message::Filter(Some(jid(WANDA)))));
    h.settle().await;
    assert!(!h.shows("You: hi Bob, Alice here"));
    assert!(h.shows("You: hi Walt, Wanda here"));
    h.update(Message::Chat(chat::Message::Filter(None)));
    drop(h);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Restarted with a wrong password for one: it says so in its own line,
    // and the other chats on.
    let mut h = Harness::started(flags(
        profile_with_both(dir.path(), &server, "wrong"),
        &server,
    ))
    .await;
    assert!(
        h.pump_until(Duration::from_secs(15), |app| online(app, ALICE)
            && matches!(
                app.connection_of(&jid(WANDA)),
                Some(ConnectionState::Offline(Some(_)))
            ))
        .await,
        "alice online and wanda refused"
    );
    h.settle().await;
    assert!(
        matches!(
            h.app.connection_of(&jid(WANDA)),
            Some(ConnectionState::Offline(Some(f))) if f.is_wrong_password()
        ),
        "wanda's own line says why"
    );
    assert!(
        !h.shows("Sign in with your XMPP (Jabber) account"),
        "no form over alice's chats"
    );
    bob.handle
        .send_message(jid(ALICE), "still there, Alice?".into());
    let mut shown = false;
    for _ in 0..50 {
        h.settle().await;
        if h.shows("still there, Alice?") {
            shown = true;
            break;
        }
    }
    assert!(shown, "alice chats on");

    // Away from now on (the choice for every account, so also for accounts
    // added later).
    h.update(Message::Chat(chat::Message::Availability(
        chat::AvailabilityChoice(Availability::Away),
    )));
    // Signing wanda out takes her chats out of the window; alice stays.
    h.update(Message::Chat(chat::Message::SignOut(jid(WANDA))));
    h.settle().await;
    assert_eq!(h.app.accounts(), vec![jid(ALICE)]);
    assert!(!h.shows("You: hi Walt, Wanda here"));
    assert!(online(&h.app, ALICE));

    // Added again from the main window, with the right password this time.
    h.update(Message::Chat(chat::Message::AddAccount));
    h.settle().await;
    assert!(h.shows("Add an account"));
    h.sign_in(server.port, WANDA, "wandapass");
    assert!(
        h.pump_until(Duration::from_secs(15), |app| online(app, WANDA))
            .await,
        "wanda added again"
    );
    assert!(
        sees(&mut walt, WANDA, Availability::Away, None).await,
        "added while away, she comes in away"
    );
    h.settle().await;
    assert_eq!(h.app.accounts(), vec![jid(ALICE), jid(WANDA)]);
    assert!(
        h.shows("You: hi Walt, Wanda here"),
        "her history is back in the list"
    );
    h.settle().await;
    let saved = Config::load(&Profile::at(dir.path().join("profile")).config_file()).unwrap();
    assert_eq!(
        saved
            .accounts
            .iter()
            .map(|a| a.jid.as_str())
            .collect::<Vec<_>>(),
        vec![ALICE, WANDA]
    );

    // Removed, with its history: asked first, then gone from the window, the
    // configuration and the disk; alice's history is untouched.
    h.update(Message::Chat(chat::Message::Remove(jid(WANDA))));
    h.settle().await;
    assert!(h.shows("Delete them"), "removing asks about the history");
    h.interact(|ui| {
        ui.click("Delete them").unwrap();
    });
    h.settle().await;
    assert_eq!(h.app.accounts(), vec![jid(ALICE)]);
    let saved = Config::load(&Profile::at(dir.path().join("profile")).config_file()).unwrap();
    assert_eq!(saved.accounts.len(), 1);
    assert_eq!(saved.accounts[0].jid, ALICE);
    drop(h);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let store =
        tern::store::Store::open(&Profile::at(dir.path().join("profile")).history_dir()).unwrap();
    let page = |account, peer| {
        store
            .page(&Id::chat_of(account, peer).unwrap(), None, 100)
            .unwrap()
            .records
            .len()
    };
    assert_eq!(
        page(WANDA, "walt@work.localhost"),
        0,
        "wanda's history deleted"
    );
    assert!(page(ALICE, "bob@localhost") >= 3, "alice's kept");
    assert!(store.conversations(WANDA).unwrap().is_empty());
}

/// The child's side of [`both_accounts_come_back_from_the_credential_store`]:
/// where the server and the profile are.
const CHILD_PORT: &str = "TERN_TEST_PORT";
const CHILD_CA: &str = "TERN_TEST_CA";
const CHILD_PROFILE: &str = "TERN_TEST_PROFILE";

/// Both accounts signed in through the form keep their passwords in the
/// system's credential store (a real GNOME Keyring on a private bus), never
/// in a file; Tern started again signs both in from it with no form; removing
/// one forgets its password and keeps the other's.
#[test]
fn both_accounts_come_back_from_the_credential_store() {
    let server = server();
    let bus = keyring::Bus::with_keyring();
    let profile = bus.dir().join("profile");
    let child = |scenario: &str| {
        keyring::run_child(
            "child_accounts_in_the_credential_store",
            scenario,
            |command| {
                bus.env(command);
                command
                    .env(CHILD_PORT, server.port.to_string())
                    .env(CHILD_CA, server.ca())
                    .env(CHILD_PROFILE, &profile);
            },
        );
    };
    child("sign-in");
    // Nothing of either password on disk: not in the configuration, not in
    // a password file, not in the history.
    let mut files = vec![profile.clone()];
    let mut seen = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for password in ["alicepass", "wandapass"] {
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "{} holds a password",
                path.display()
            );
        }
        seen += 1;
    }
    // The configuration and sled's files at least.
    assert!(seen >= 3, "the profile was written ({seen} files)");
    let config = Config::load(&Profile::at(&profile).config_file()).unwrap();
    assert_eq!(config.accounts.len(), 2);
    assert!(config.accounts.iter().all(|a| a.password_file.is_none()));
    child("restart");
    child("after-removal");
}

/// Run by [`both_accounts_come_back_from_the_credential_store`], in a child
/// process on the private bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by both_accounts_come_back_from_the_credential_store in a child process"]
async fn child_accounts_in_the_credential_store() {
    let Some(scenario) = keyring::scenario() else {
        return;
    };
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let env = |name| std::env::var(name).unwrap();
    let port: u16 = env(CHILD_PORT).parse().unwrap();
    let flags = Flags {
        profile: Profile::at(env(CHILD_PROFILE)),
        trust: Trust::from_pem_file(std::path::Path::new(&env(CHILD_CA))).unwrap(),
        open: None,
        launched: Instant::now(),
        instance: None,
        credentials: true,
    };
    let stored = |account: &'static str| async move {
        tokio::task::spawn_blocking(move || tern::secret::load(account))
            .await
            .unwrap()
            .unwrap()
    };
    let both_online = |app: &tern::app::App| online(app, ALICE) && online(app, WANDA);
    let mut h = Harness::started(flags).await;
    match scenario.as_str() {
        "sign-in" => {
            h.settle().await;
            h.sign_in(port, ALICE, "alicepass");
            assert!(
                h.pump_until(Duration::from_secs(20), |app| online(app, ALICE))
                    .await,
                "alice signed in"
            );
            h.update(Message::Chat(chat::Message::AddAccount));
            h.settle().await;
            h.sign_in(port, WANDA, "wandapass");
            assert!(
                h.pump_until(Duration::from_secs(20), both_online).await,
                "wanda added"
            );
            // Kept off the UI thread: wait for both writes to land.
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                h.settle().await;
                let alice = stored(ALICE).await;
                let wanda = stored(WANDA).await;
                if let (Some(alice), Some(wanda)) = (&alice, &wanda) {
                    assert_eq!(alice.expose(), "alicepass");
                    assert_eq!(wanda.expose(), "wandapass");
                    break;
                }
                assert!(Instant::now() < deadline, "the passwords were not kept");
            }
        }
        "restart" => {
            assert!(
                h.pump_until(Duration::from_secs(20), both_online).await,
                "both accounts came back from the credential store"
            );
            h.settle().await;
            assert_eq!(h.app.accounts(), vec![jid(ALICE), jid(WANDA)]);
            assert!(
                !h.shows("Sign in with your XMPP (Jabber) account"),
                "no form was needed"
            );
            // Removed (keeping its history): its password goes with it.
            h.update(Message::Chat(chat::Message::Remove(jid(WANDA))));
            h.settle().await;
            h.interact(|ui| {
                ui.click("Keep them").unwrap();
            });
            // Polled while Tern deletes it: GNOME Keyring may answer a search
            // with the item and then say the item no longer exists when it
            // is read. That in-between answer is a deletion under way, not
            // a failure; only a clean "no entry" ends the wait.
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let now = tokio::task::spawn_blocking(|| tern::secret::load(WANDA))
                    .await
                    .unwrap();
                if matches!(now, Ok(None)) {
                    break;
                }
                h.settle().await;
                assert!(
                    Instant::now() < deadline,
                    "wanda's password stayed ({:?})",
                    now.map(|p| p.is_some())
                );
            }
            assert_eq!(stored(ALICE).await.unwrap().expose(), "alicepass");
        }
        "after-removal" => {
            assert!(
                h.pump_until(Duration::from_secs(20), |app| online(app, ALICE))
                    .await,
                "alice came back"
            );
            h.settle().await;
            assert_eq!(h.app.accounts(), vec![jid(ALICE)]);
        }
        other => panic!("no scenario {other}"),
    }
    drop(h);
    // Let the workers sign off before the process ends.
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// The unified list as the release build draws it, under Xvfb, for
/// `resources/screenshots/` (needs `xvfb`, `xdotool` and imagemagick):
///
/// ```sh
/// cargo build --release
/// TERN_BIN=target/release/tern SCREENSHOT=resources/screenshots/accounts.png \
///     cargo test --test accounts -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a screenshot of the real binary: run it with --ignored"]
async fn unified_list_screenshot() {
    use std::process::{Command, Stdio};
    let out = std::env::var("SCREENSHOT").unwrap_or_else(|_| "accounts.png".into());
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    profile_with_both(dir.path(), &server, "wandapass");
    let bob = peer(&server, "bob@localhost", "bobpass").await;
    let walt = peer(&server, "walt@work.localhost", "waltpass").await;
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
    // Signed in on both (their peers see them), then news on both.
    tokio::time::sleep(Duration::from_secs(3)).await;
    bob.handle
        .send_message(jid(ALICE), "Are we still on for Saturday?".into());
    walt.handle
        .send_message(jid(WANDA), "The build is green, shipping at five.".into());
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Wanda busy at work: her own choice, from the list on her line.
    xvfb::click(&display.name, &window, 220, 115);
    tokio::time::sleep(Duration::from_millis(500)).await;
    xvfb::click(&display.name, &window, 190, 213); // "Busy", the menu's last line
    // The pointer away from the list, so that no row is drawn hovered.
    xvfb::point(&display.name, &window, 700, 600);
    tokio::time::sleep(Duration::from_millis(500)).await;
    xvfb::screenshot(&display.name, &window, &out);
    println!("screenshot written to {out}");
    xvfb::stop(&mut tern);
}
