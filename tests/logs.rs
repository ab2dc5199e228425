//! What the log keeps of a sign-in at the most detailed level: the stream,
//! but nothing of the SASL exchange (its messages let anyone who reads them
//! guess the password offline). Its own test binary: it installs the global
//! logger, at trace level, as `RUST_LOG=trace tern` would.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/client.rs"]
mod client;
#[path = "support/prosody.rs"]
mod prosody;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use prosody::Prosody;

/// Whether `text` holds a SCRAM message, in the clear or base64-encoded.
fn holds_scram(text: &str) -> Option<String> {
    let scram = |s: &str| {
        s.contains("n=alice,r=")
            || (s.contains("r=") && s.contains(",s=") && s.contains(",i="))
            || (s.contains("c=") && s.contains(",p="))
            || s.starts_with("v=")
    };
    if scram(text) {
        return Some(text.lines().find(|l| scram(l)).unwrap_or_default().into());
    }
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
        .filter(|word| word.len() >= 12)
        .find_map(|word| {
            let decoded = BASE64.decode(word).ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            scram(&decoded).then(|| format!("{word} = {decoded}"))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_log_of_a_sign_in_holds_no_sasl_exchange() {
    let server = Prosody::start(&[("alice", "alicepass")]);
    let dir = tempfile::tempdir().unwrap();
    let guard = tern::logging::init_with_directives("trace", Some(dir.path()));
    let settings = client::settings(
        &server.address(),
        &server.ca(),
        "alice@localhost",
        "alicepass",
    );
    let connection = tern::xmpp::connector::connect(&settings).await;
    assert!(connection.is_ok(), "{:?}", connection.err());
    drop(connection);
    drop(guard);
    let mut log = String::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        log.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    // The stream itself is there (or this test would prove nothing)...
    assert!(
        log.contains("SEND"),
        "no stream traces: {} bytes",
        log.len()
    );
    assert!(
        log.contains("SCRAM-SHA-1"),
        "the offered mechanisms are not logged"
    );
    // ...but not the exchange, in any form.
    assert!(!log.contains("alicepass"));
    if let Some(found) = holds_scram(&log) {
        panic!("the log holds a SCRAM message: {found}");
    }
    println!("{} bytes of trace log, no SASL exchange in them", log.len());
}
