//! The settings screen, headless (iced_test, tiny-skia): each change applies
//! at once (theme, language, notifications, files, history), is written to the
//! profile's config.toml, and is there at the next start; a config written by
//! another version still opens. And the password file: offered, with a
//! warning, only when no credential store answers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/keyring.rs"]
mod keyring;
#[path = "support/prosody.rs"]
mod prosody;
#[path = "support/ui.rs"]
mod ui;

use std::path::Path;
use std::time::{Duration, Instant};

use iced::keyboard::key::{Code, Named};
use iced::keyboard::{Key, Modifiers};
use tern::app::{Flags, Message};
use tern::config::{Config, ThemeChoice};
use tern::profile::Profile;
use tern::screen::settings::{self, Bytes, Count, Days, LanguageOption, ThemeOption};
use tern::xmpp::Trust;
use ui::{Harness, use_tiny_skia};

fn flags(profile: &Path, trust: Trust, credentials: bool) -> Flags {
    Flags {
        profile: Profile::at(profile),
        trust,
        open: None,
        launched: Instant::now(),
        instance: None,
        credentials,
    }
}

fn change(h: &mut Harness, message: settings::Message) {
    h.update(Message::Settings(message));
}

/// A key press as the window reports it, through the app's own event mapping.
fn press(h: &mut Harness, key: Key, code: Code, modifiers: Modifiers) {
    let event = iced::Event::Keyboard(iced::keyboard::Event::KeyPressed {
        key: key.clone(),
        modified_key: key,
        physical_key: iced::keyboard::key::Physical::Code(code),
        location: iced::keyboard::Location::Standard,
        modifiers,
        text: None,
        repeat: false,
    });
    h.update(tern::app::event_message(event).expect("the app ignores this key"));
}

async fn until_saved(h: &mut Harness) {
    assert!(
        h.pump_until(Duration::from_secs(5), |app| app.config_saved())
            .await,
        "the configuration was not written"
    );
}

// One test for all of it: the language is process-wide, so nothing else in
// this binary may run beside it (the password-file test runs in a child).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_apply_at_once_are_saved_and_reloaded() {
    use_tiny_skia();
    tern::i18n::select(&["en".parse().unwrap()]);
    let profile = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let config_file = Profile::at(profile.path()).config_file();

    let mut h = Harness::started(flags(profile.path(), Trust::system(), false)).await;
    assert!(h.shows("Sign in with your XMPP (Jabber) account"));
    h.interact(|ui| {
        ui.click("Settings").unwrap();
    });
    assert!(h.app.settings_open());
    assert!(h.shows("Appearance") && h.shows("Download folder"));

    // Theme: applied to the window's theme at once.
    change(
        &mut h,
        settings::Message::Theme(ThemeOption(ThemeChoice::Dark)),
    );
    assert!(h.app.theme().extended_palette().is_dark);
    change(
        &mut h,
        settings::Message::Theme(ThemeOption(ThemeChoice::Light)),
    );
    assert!(!h.app.theme().extended_palette().is_dark);
    change(
        &mut h,
        settings::Message::Theme(ThemeOption(ThemeChoice::Dark)),
    );

    // Language: the screen speaks Chinese without a restart.
    change(
        &mut h,
        settings::Message::Language(LanguageOption(Some("zh-CN".into()))),
    );
    assert!(h.shows("外观"), "the settings screen is not in Chinese");
    assert!(h.shows("下载文件夹"));
    assert_eq!(h.app.title(), "Tern");

    // The rest: notifications, files, history.
    change(&mut h, settings::Message::NotificationContent(false));
    change(
        &mut h,
        settings::Message::DownloadDirChosen(Some(downloads.path().to_path_buf())),
    );
    assert!(h.shows(&downloads.path().display().to_string()));
    change(&mut h, settings::Message::AutoImages(false));
    change(&mut h, settings::Message::ImageLimit(Bytes(25_000_000)));
    change(&mut h, settings::Message::CatchUpDays(Days(7)));
    change(&mut h, settings::Message::CatchUpMessages(Count(500)));
    // (A pick list's text is drawn, not a widget the simulator can find:
    // its labels are checked as the list formats them.)
    assert_eq!(Bytes(25_000_000).to_string(), "25 MB");
    assert_eq!(Days(7).to_string(), "最近 7 天");
    assert_eq!(Count(500).to_string(), "500 条消息");
    until_saved(&mut h).await;

    // What is on disk is what the screen shows.
    let saved = Config::load(&config_file).unwrap();
    assert_eq!(saved.appearance.theme, ThemeChoice::Dark);
    assert_eq!(saved.appearance.language.as_deref(), Some("zh-CN"));
    assert!(saved.notifications.enabled && !saved.notifications.show_content);
    assert_eq!(saved.files.download_dir.as_deref(), Some(downloads.path()));
    assert!(!saved.files.auto_download_images);
    assert_eq!(saved.files.auto_download_max_bytes, 25_000_000);
    assert_eq!(saved.history.catch_up_days, 7);
    assert_eq!(saved.history.catch_up_messages, 500);
    assert_eq!(&saved, h.app.config());

    // Escape closes the screen; the sign-in form is in Chinese too.
    press(
        &mut h,
        Key::Named(Named::Escape),
        Code::Escape,
        Modifiers::default(),
    );
    assert!(!h.app.settings_open());
    assert!(h.shows("登录"), "the sign-in form is not in Chinese");
    drop(h);

    // The next start: everything as it was left, from the first frame.
    tern::i18n::select(&["en".parse().unwrap()]);
    let mut h = Harness::started(flags(profile.path(), Trust::system(), false)).await;
    assert!(h.app.theme().extended_palette().is_dark);
    assert!(h.shows("登录"), "the saved language is not used at start");
    // Ctrl+, opens it, as in other desktop apps.
    press(
        &mut h,
        Key::Character(",".into()),
        Code::Comma,
        Modifiers::CTRL,
    );
    assert!(h.app.settings_open());
    assert!(h.shows("外观"));
    assert_eq!(h.app.config().history.catch_up_days, 7);
    // Back to the system's language (English here: the test sets no locale
    // beyond what CI has, and English is the fallback).
    change(&mut h, settings::Message::Language(LanguageOption(None)));
    until_saved(&mut h).await;
    let saved = Config::load(&config_file).unwrap();
    assert_eq!(saved.appearance.language, None);
    drop(h);

    // A config from another version (unknown sections and keys, missing ones)
    // opens with its known settings and keeps its account.
    let other = tempfile::tempdir().unwrap();
    let other_file = Profile::at(other.path()).config_file();
    std::fs::create_dir_all(other_file.parent().unwrap()).unwrap();
    std::fs::write(&other_file, include_str!("fixtures/config-v4.toml")).unwrap();
    tern::i18n::select(&["en".parse().unwrap()]);
    let h = Harness::started(flags(other.path(), Trust::system(), false)).await;
    assert!(h.app.theme().extended_palette().is_dark);
    assert!(
        h.shows("alice@example.org"),
        "the saved account is not prefilled"
    );
    assert!(h.shows("登录"));
    drop(h);
    tern::i18n::select(&["en".parse().unwrap()]);

    // A config that does not parse (a typo made by hand) is set aside, not
    // overwritten by the next change.
    let typo = "[[account]]\njid = \"alice@example.org\"\nport = \"five\"\n";
    std::fs::write(&other_file, typo).unwrap();
    let mut h = Harness::started(flags(other.path(), Trust::system(), false)).await;
    assert!(h.shows("Sign in with your XMPP (Jabber) account"));
    h.interact(|ui| {
        ui.click("Settings").unwrap();
    });
    change(
        &mut h,
        settings::Message::Theme(ThemeOption(ThemeChoice::Dark)),
    );
    until_saved(&mut h).await;
    assert_eq!(
        std::fs::read_to_string(other_file.with_extension("toml.broken")).unwrap(),
        typo
    );
    assert_eq!(
        Config::load(&other_file).unwrap().appearance.theme,
        ThemeChoice::Dark
    );

    // A change that cannot be written (a folder where the temporary file
    // goes) is still applied, and the screen says it was not saved.
    std::fs::create_dir_all(other_file.with_extension("toml.tmp")).unwrap();
    change(
        &mut h,
        settings::Message::Theme(ThemeOption(ThemeChoice::Light)),
    );
    until_saved(&mut h).await;
    assert!(!h.app.theme().extended_palette().is_dark);
    let shown = {
        let mut ui = iced_test::simulator(h.app.view());
        ui.find(|c: iced_test::selector::Candidate<'_>| match c {
            iced_test::selector::Candidate::Text { content, .. }
                if content.starts_with("The settings could not be saved: cannot write") =>
            {
                Some(())
            }
            _ => None,
        })
        .is_ok()
    };
    assert!(shown, "the failed save is not shown");
    assert_eq!(
        Config::load(&other_file).unwrap().appearance.theme,
        ThemeChoice::Dark,
        "the file on disk changed though the save failed"
    );
}

/// Run by `password_file_is_a_warned_opt_in_without_a_credential_store` in a
/// child process that has no session bus (so no credential store answers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the test below"]
async fn password_file_child() {
    let Ok(port) = std::env::var("TERN_TEST_PORT") else {
        return;
    };
    let port: u16 = port.parse().unwrap();
    let ca = std::env::var("TERN_TEST_CA").unwrap();
    let profile = std::env::var("TERN_TEST_PROFILE").unwrap();
    let profile = Path::new(&profile);
    tern::i18n::select(&["en".parse().unwrap()]);
    let trust = || Trust::from_pem_file(Path::new(&ca)).unwrap();
    let own_file = Profile::at(profile).password_file("alice@localhost");

    // The form says no credential store answers and offers the file.
    let mut h = Harness::started(flags(profile, trust(), true)).await;
    assert!(
        h.pump_until(Duration::from_secs(10), |app| app.login_says_no_keyring())
            .await,
        "the form does not say that no credential store answers"
    );
    assert!(h.shows("Keep the password in a file on this computer"));
    assert!(h.shows("No credential store is available (such as GNOME Keyring or KWallet), so Tern cannot keep your password: enter it to sign in."));
    assert!(
        !h.shows("it is not encrypted"),
        "warned before anything was ticked"
    );
    h.interact(|ui| {
        ui.click("Keep the password in a file on this computer")
            .unwrap();
    });
    assert!(
        h.shows("The file is readable by your user account only, but it is not encrypted: anyone who gets a copy of it (a backup, an administrator) can read your password."),
        "no warning shown"
    );
    h.sign_in(port, "alice@localhost", "alicepass");
    assert!(
        h.pump_until(Duration::from_secs(15), |app| app.is_signed_in()
            && app
                .config()
                .account()
                .is_some_and(|a| a.password_file.is_some())
            && app.config_saved())
            .await,
        "not signed in, or the password file not recorded"
    );
    assert_eq!(std::fs::read_to_string(&own_file).unwrap(), "alicepass\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&own_file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the password file is readable by others"
        );
    }
    let saved = Config::load(&Profile::at(profile).config_file()).unwrap();
    assert_eq!(
        saved.account().unwrap().password_file.as_deref(),
        Some(own_file.as_path())
    );
    drop(h);

    // The next start signs in with it, without the form.
    let mut h = Harness::started(flags(profile, trust(), true)).await;
    assert!(
        h.app.is_signed_in(),
        "the form was shown though the password is kept"
    );
    assert!(
        h.pump_until(Duration::from_secs(15), |app| app.is_signed_in()
            && h_online(app))
            .await
    );
    // Signing out removes the file and its mention.
    h.interact(|ui| {
        ui.click("Sign out").unwrap();
    });
    assert!(
        h.pump_until(Duration::from_secs(5), |app| !app.is_signed_in()
            && app.config_saved())
            .await
    );
    assert!(
        !own_file.exists(),
        "the password file outlived the sign-out"
    );
    let saved = Config::load(&Profile::at(profile).config_file()).unwrap();
    assert_eq!(saved.account().unwrap().password_file, None);
    assert_eq!(saved.account().unwrap().jid, "alice@localhost");
    drop(h);

    // The file cannot be written (a folder is in its place): signed in all
    // the same, the chat screen says the password is not kept, and the
    // config does not point at a file that is not there.
    let second = profile.join("second");
    let blocked = Profile::at(&second).password_file("alice@localhost");
    std::fs::create_dir_all(&blocked).unwrap();
    let mut h = Harness::started(flags(&second, trust(), true)).await;
    assert!(
        h.pump_until(Duration::from_secs(10), |app| app.login_says_no_keyring())
            .await
    );
    h.interact(|ui| {
        ui.click("Keep the password in a file on this computer")
            .unwrap();
    });
    h.sign_in(port, "alice@localhost", "alicepass");
    assert!(
        h.pump_until(Duration::from_secs(15), |app| app.notice().is_some())
            .await,
        "no word that the password is not kept"
    );
    let notice = h.app.notice().unwrap().to_string();
    assert!(
        notice.starts_with("The password could not be kept in a file:"),
        "{notice}"
    );
    assert!(h.shows(&notice));
    assert!(h.app.config().account().unwrap().password_file.is_none());
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("password-not-kept.png");
    let _ = std::fs::remove_file(&out);
    h.snapshot(&tern::theme::for_mode(iced::theme::Mode::Light))
        .matches_image(&out)
        .unwrap();
    h.interact(|ui| {
        ui.click("Dismiss").unwrap();
    });
    assert!(h.app.notice().is_none());
}

fn h_online(app: &tern::app::App) -> bool {
    app.connection()
        .is_some_and(|c| matches!(c, tern::xmpp::ConnectionState::Online { .. }))
}

#[test]
fn password_file_is_a_warned_opt_in_without_a_credential_store() {
    use_tiny_skia();
    let server = prosody::Prosody::start(&[("alice", "alicepass")]);
    let profile = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    keyring::run_child("password_file_child", "no-session-bus", |command| {
        // No session bus: zbus falls back to $XDG_RUNTIME_DIR/bus, absent here.
        command
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("TERN_TEST_PORT", server.port.to_string())
            .env("TERN_TEST_CA", server.ca())
            .env("TERN_TEST_PROFILE", profile.path());
    });
    // The child did sign in (and out) with this profile.
    let saved = Config::load(&Profile::at(profile.path()).config_file()).unwrap();
    assert_eq!(
        saved.account().map(|a| a.jid.as_str()),
        Some("alice@localhost")
    );
}
