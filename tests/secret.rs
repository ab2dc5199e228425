//! The credential store against real ones: none at all, a bus without a
//! Secret Service, one that never answers, and GNOME Keyring. Each case runs
//! in a child process of this test binary (see `support/keyring.rs`).
#![cfg(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/keyring.rs"]
mod keyring;

use std::time::{Duration, Instant};

use keyring::{Bus, run_child, scenario};
use tern::secret::{Error, forget, init, load, save};
use tern::xmpp::Password;

const ACCOUNT: &str = "romeo@montague.example";
const OTHER: &str = "juliet@capulet.example";

/// Runs `f`, asserting it returns within `limit`.
fn timed<T>(what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let value = f();
    let took = start.elapsed();
    eprintln!("{what}: {took:?}");
    assert!(took < limit, "{what} took {took:?}");
    value
}

/// Child: no credential store answers, so everything is `Unavailable`, quickly.
#[test]
#[ignore = "run by the tests below in a child process"]
fn child_unavailable() {
    let Some(scenario) = scenario().filter(|s| s != "secret-service") else {
        return;
    };
    let mut limit = Duration::from_secs(5);
    let err = timed(&format!("{scenario}: init"), limit, init).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    eprintln!("{scenario}: {err}");
    if scenario == "stalled" {
        assert!(err.to_string().contains("did not answer"), "{err}");
    }
    // Idempotent, and the other calls say the same; a stalled store is only
    // waited for once.
    if scenario == "stalled" {
        limit = Duration::from_secs(1);
    }
    let err = timed("init again", limit, init).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    let err = timed("load", limit, || load(ACCOUNT)).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    let secret = Password::new("hunter2-secret");
    let err = timed("save", limit, || save(ACCOUNT, &secret)).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("hunter2"));
    let err = timed("forget", limit, || forget(ACCOUNT)).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
}

/// Child: a working Secret Service: store, read, replace and remove.
#[test]
#[ignore = "run by the tests below in a child process"]
fn child_round_trip() {
    if scenario().as_deref() != Some("secret-service") {
        return;
    }
    let limit = Duration::from_secs(10);
    timed("init", limit, init).unwrap();
    timed("init again", limit, init).unwrap();
    assert_eq!(
        timed("load nothing", limit, || load(ACCOUNT)).unwrap(),
        None
    );
    timed("forget nothing", limit, || forget(ACCOUNT)).unwrap();

    let first = Password::new("wherefore art thou");
    timed("save", limit, || save(ACCOUNT, &first)).unwrap();
    assert_eq!(timed("load", limit, || load(ACCOUNT)).unwrap(), Some(first));
    assert_eq!(load(OTHER).unwrap(), None, "accounts are separate");

    let second = Password::new("a rose by any other name ✿");
    timed("save again", limit, || save(ACCOUNT, &second)).unwrap();
    assert_eq!(load(ACCOUNT).unwrap(), Some(second.clone()));
    let other = Password::new("parting is such sweet sorrow");
    save(OTHER, &other).unwrap();

    timed("forget", limit, || forget(ACCOUNT)).unwrap();
    assert_eq!(load(ACCOUNT).unwrap(), None);
    forget(ACCOUNT).unwrap();
    assert_eq!(load(OTHER).unwrap(), Some(other));
    forget(OTHER).unwrap();
}

/// Without a session bus (the usual CI container, a bare session), Tern
/// hears `Unavailable` within 5 s rather than hanging.
#[test]
fn no_session_bus_is_unavailable_quickly() {
    let dir = tempfile::tempdir().unwrap();
    // No address: zbus falls back to $XDG_RUNTIME_DIR/bus, absent here.
    run_child("child_unavailable", "no-address", |command| {
        command
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("XDG_RUNTIME_DIR", dir.path());
    });
    // An address whose socket is gone (a stale session).
    let gone = format!("unix:path={}", dir.path().join("gone").display());
    run_child("child_unavailable", "stale-address", |command| {
        command.env("DBUS_SESSION_BUS_ADDRESS", &gone);
    });
}

/// A Secret Service that never answers (here: D-Bus activation of a program
/// that never takes the name; the bus would wait 15 s) costs Tern
/// `CONNECT_TIMEOUT`, then it is `Unavailable`.
#[test]
fn stalled_secret_service_times_out() {
    // Ends by itself when the bus has given up on it.
    let bus = Bus::start(Some("/bin/sleep 16"));
    run_child("child_unavailable", "stalled", |command| bus.env(command));
}

/// Against a real Secret Service: GNOME Keyring on a private session bus,
/// both started here and stopped at the end. Needs the packages the support
/// module names; fails (never skips) without them.
#[test]
fn real_secret_service_round_trip() {
    // A bus without a Secret Service: unavailable, quickly.
    let bus = Bus::start(None);
    run_child(
        "child_unavailable",
        "bus-without-secret-service",
        |command| bus.env(command),
    );
    drop(bus);

    let bus = Bus::with_keyring();
    run_child("child_round_trip", "secret-service", |command| {
        bus.env(command)
    });
}
