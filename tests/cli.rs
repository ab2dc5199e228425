//! The `tern` command line: export, profile selection and argument errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::process::Command;

use chrono::{TimeZone, Utc};
use tern::profile::Profile;
use tern::store::{Direction, NewMessage, Store};

fn tern() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tern"));
    cmd.env_remove("TERN_PROFILE").env("RUST_LOG", "off");
    cmd
}

fn seed(profile: &Profile) {
    profile.create().unwrap();
    let store = Store::open(&profile.history_dir()).unwrap();
    for (n, (peer, direction, body)) in [
        ("bob@example.org", Direction::In, "hi \"alice\"\nline two"),
        ("bob@example.org", Direction::Out, "hello bob"),
        ("carol@example.org", Direction::In, "你好"),
        ("work:boss@corp.example", Direction::In, "meeting at 10"),
    ]
    .into_iter()
    .enumerate()
    {
        let time = Utc.with_ymd_and_hms(2026, 11, 22, 10, n as u32, 0).unwrap();
        let (id, body) = (format!("id-{n}"), body.to_string());
        // A second account's chat is named `work:peer`.
        let (account, peer) = match peer.strip_prefix("work:") {
            Some(peer) => ("me@corp.example", peer),
            None => ("alice@example.org", peer),
        };
        let conversation = tern::conversation::Id::chat_of(account, peer).unwrap();
        let mut message = match direction {
            Direction::In => NewMessage::incoming(&conversation, id, body, time),
            Direction::Out => NewMessage::outgoing(&conversation, id, body, time),
        };
        if peer.starts_with("carol") {
            // As Carol's client sends it with OMEMO: the body is its fallback.
            message.encryption = Some(tern::store::Encryption::Omemo);
        }
        store.insert(message).unwrap();
    }
    store.flush().unwrap();
}

fn lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn export_prints_json_lines_with_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    seed(&Profile::at(dir.path()));
    let out = tern()
        .args(["export", "--profile"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let all = lines(&out.stdout);
    assert_eq!(all.len(), 4, "every account's messages");
    assert_eq!(all[3]["account"], "me@corp.example");
    assert_eq!(all[0]["kind"], "chat");
    let first = &all[0];
    assert_eq!(first["account"], "alice@example.org");
    assert_eq!(first["peer"], "bob@example.org");
    assert_eq!(first["direction"], "in");
    assert_eq!(first["body"], "hi \"alice\"\nline two");
    assert_eq!(first["id"], "id-0");
    let time = first["time"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
    assert_eq!(all[0]["state"], "received");
    assert_eq!(all[1]["direction"], "out");
    assert_eq!(all[1]["state"], "pending");
    assert_eq!(all[2]["body"], "你好");
    // Marked when Tern could not read it; the key is absent otherwise.
    assert_eq!(all[2]["encryption"], "omemo");
    assert!(all[0].get("encryption").is_none());

    // --peer filters; TERN_PROFILE selects the profile too.
    let out = tern()
        .args(["export", "--peer", "carol@example.org"])
        .env("TERN_PROFILE", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let carol = lines(&out.stdout);
    assert_eq!(carol.len(), 1);
    assert_eq!(carol[0]["peer"], "carol@example.org");

    // --account takes one account's conversations.
    let out = tern()
        .args(["export", "--account", "me@corp.example", "--profile"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let work = lines(&out.stdout);
    assert_eq!(work.len(), 1);
    assert_eq!(work[0]["body"], "meeting at 10");
}

#[test]
fn export_errors_are_clear_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let out = tern()
        .args(["export", "--profile"])
        .arg(dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no history"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A running Tern holds the profile's history: export says so.
    let profile = Profile::at(dir.path());
    seed(&profile);
    let _running = Store::open(&profile.history_dir()).unwrap();
    let out = tern()
        .args(["export", "--profile"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_arguments_are_refused_before_any_window() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();

    let out = tern()
        .arg("https://example.org")
        .arg("--profile")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an xmpp: URI"));

    let out = tern()
        .args(["--jid", "no-at-sign", "--password-file"])
        .arg(&pw)
        .arg("--profile")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an account address"));

    let out = tern()
        .args(["--jid", "alice@example.org", "--password-file"])
        .arg(dir.path().join("missing"))
        .arg("--profile")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());

    // --jid needs --password-file.
    let out = tern()
        .args(["--jid", "alice@example.org"])
        .output()
        .unwrap();
    assert!(!out.status.success());

    let out = tern().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("tern "));
}

#[test]
fn the_window_logs_to_a_daily_file_in_the_profile_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "very-secret-password\n").unwrap();
    // No display: the window cannot open, and says so; the log file is there anyway.
    let out = tern()
        .env("RUST_LOG", "tern=info")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .args(["--jid", "alice@example.org", "--password-file"])
        .arg(&pw)
        .args(["--server", "127.0.0.1:1", "--profile"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let logs = Profile::at(dir.path()).log_dir();
    let files: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("tern.") && name.ends_with(".log"),
        "{name}"
    );
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!text.is_empty(), "nothing was logged");
    assert!(!text.contains('\u{1b}'), "colour codes in the log file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("very-secret-password") && !stderr.contains("very-secret-password"));
}
