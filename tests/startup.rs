//! Start-up figures of a real build, as a user sees them: the binary launched
//! under Xvfb against a local Prosody, with a profile that signs in by itself
//! and a history of 3,000 conversations. A measurement, not a test: run with
//!
//! ```sh
//! cargo build --release
//! TERN_BIN=target/release/tern cargo test --test startup -- --ignored --nocapture
//! ```
//!
//! (needs `Xvfb` and `xdotool`; without `TERN_BIN` it measures the binary
//! built with the test, `STARTUP_RUNS` sets the number of launches, 5 by default).
//! Printed per launch and as medians: launch → window mapped (xdotool, polled
//! every 5 ms), and from Tern's own log, launch → history open, → signed in,
//! → roster shown.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement fails loudly

#[path = "support/prosody.rs"]
mod prosody;
#[path = "support/xvfb.rs"]
mod xvfb;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use prosody::Prosody;
use tern::profile::Profile;
use tern::store::{NewMessage, Store};
use xvfb::{Xvfb, stop};

const CHATS: i64 = 3_000;

struct Launch {
    window_ms: Option<f64>,
    history_ms: Option<f64>,
    signed_in_ms: Option<f64>,
    roster_ms: Option<f64>,
}

#[test]
#[ignore = "a measurement: run it with --ignored --nocapture"]
fn startup_figures() {
    let bin = std::env::var("TERN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_tern").into());
    let runs: usize = std::env::var("STARTUP_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let server = Prosody::start_with_roster(
        &[("alice", "alicepass"), ("bob", "bobpass")],
        &prosody::alice_and_bob(),
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("profile");
    let profile = Profile::at(&root);
    seed_history(&profile);
    let password = dir.path().join("password");
    std::fs::write(&password, "alicepass").unwrap();
    let display = Xvfb::start();
    let mut launches = Vec::new();
    for run in 0..runs {
        let launch = launch(&bin, &display.name, &root, &password, &server);
        println!(
            "launch {}: window {} · history open {} · signed in {} · roster shown {}",
            run + 1,
            ms(launch.window_ms),
            ms(launch.history_ms),
            ms(launch.signed_in_ms),
            ms(launch.roster_ms),
        );
        launches.push(launch);
    }
    println!("{bin}, {runs} launches, {CHATS} conversations in the history; medians:");
    println!(
        "  launch → window mapped  {}",
        median(launches.iter().map(|l| l.window_ms))
    );
    println!(
        "  launch → history open   {}",
        median(launches.iter().map(|l| l.history_ms))
    );
    println!(
        "  launch → signed in      {}",
        median(launches.iter().map(|l| l.signed_in_ms))
    );
    println!(
        "  launch → roster shown   {}",
        median(launches.iter().map(|l| l.roster_ms))
    );
}

fn seed_history(profile: &Profile) {
    let store = Store::open(&profile.history_dir()).unwrap();
    let start = chrono::Utc::now() - chrono::Duration::hours(10);
    for n in 0..CHATS {
        let peer = format!("stranger{n}@spam.example");
        let conversation = tern::conversation::Id::chat_of("alice@localhost", &peer).unwrap();
        let message = NewMessage::incoming(
            &conversation,
            format!("spam-{n}"),
            format!("spam number {n}"),
            start + chrono::Duration::seconds(n),
        );
        store.insert(message).unwrap();
    }
    store.flush().unwrap();
}

fn launch(
    bin: &str,
    display: &str,
    profile: &std::path::Path,
    password: &std::path::Path,
    server: &Prosody,
) -> Launch {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .arg("--profile")
        .arg(profile)
        .arg("--jid")
        .arg("alice@localhost")
        .arg("--password-file")
        .arg(password)
        .arg("--server")
        .arg(server.address())
        .env("DISPLAY", display)
        .env("SSL_CERT_FILE", server.ca())
        .env("RUST_LOG", "tern=info,warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tern");
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let pid = child.id().to_string();
    let mut launch = Launch {
        window_ms: None,
        history_ms: None,
        signed_in_ms: None,
        roster_ms: None,
    };
    let deadline = started + Duration::from_secs(20);
    while Instant::now() < deadline && (launch.window_ms.is_none() || launch.roster_ms.is_none()) {
        if launch.window_ms.is_none() {
            let found = Command::new("xdotool")
                .args(["search", "--onlyvisible", "--pid", &pid])
                .env("DISPLAY", display)
                .output()
                .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
            if found {
                launch.window_ms = Some(started.elapsed().as_secs_f64() * 1e3);
            }
        }
        while let Ok(line) = lines.try_recv() {
            let after = |what: &str| {
                line.contains(what)
                    .then(|| line.split(what).next()?.rsplit(' ').next()?.parse().ok())
                    .flatten()
            };
            if let Some(ms) = after(" ms after launch") {
                if line.contains("history open") {
                    launch.history_ms = Some(ms);
                } else if line.contains("signed in") {
                    launch.signed_in_ms = Some(ms);
                } else if line.contains("roster of") {
                    launch.roster_ms = Some(ms);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop(&mut child);
    // sled lets go of its lock a moment after the process ends.
    std::thread::sleep(Duration::from_millis(300));
    launch
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{v:.0} ms"))
}

fn median(values: impl Iterator<Item = Option<f64>>) -> String {
    let mut values: Vec<f64> = values.flatten().collect();
    if values.is_empty() {
        return "— (not logged by this build)".into();
    }
    values.sort_by(f64::total_cmp);
    let (low, high) = (values[0], values[values.len() - 1]);
    format!(
        "{:.0} ms (range {low:.0}–{high:.0}, {} values)",
        values[values.len() / 2],
        values.len()
    )
}
