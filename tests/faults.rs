//! Tern never loses a message: two accounts chat in both directions while the
//! network is cut and restored and the server restarts; afterwards each side
//! holds every message exactly once, in order, and every one is delivered.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "support/client.rs"]
mod client;
#[path = "support/prosody.rs"]
mod prosody;
#[path = "support/proxy.rs"]
mod proxy;

use std::time::{Duration, Instant};

use client::{Client, settings};
use prosody::Prosody;
use proxy::Proxy;
use tern::store::{Delivery, Direction, Record};
use tern::xmpp::{ConnectionState, Event};

/// Messages each side sends (the issue asks for at least 500).
const MESSAGES: usize = 500;
const CUTS: usize = 10;
const RESTARTS: usize = 3;
/// Sending is spread over the whole series of faults.
const SEND_INTERVAL_MS: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_exactly_once_in_order_and_delivered_despite_faults() {
    let mut server = Prosody::start_with_roster(
        &[("alice", "alicepass"), ("bob", "bobpass")],
        &prosody::alice_and_bob(),
    );
    let proxy = Proxy::start(server.port).await;
    let through_proxy = |user: &str| {
        let mut s = settings(
            &format!("127.0.0.1:{}", proxy.port),
            &server.ca(),
            &format!("{user}@localhost"),
            &format!("{user}pass"),
        );
        s.port = Some(proxy.port);
        s
    };
    let mut alice = Client::online(through_proxy("alice")).await;
    let mut bob = Client::online(through_proxy("bob")).await;
    let (alice_jid, bob_jid) = (alice.jid.clone(), bob.jid.clone());

    // Both send at a steady pace while faults happen; a fault every ~0.6 s.
    let t0 = Instant::now();
    let senders = {
        let (a, b) = (alice.handle.clone(), bob.handle.clone());
        tokio::spawn(async move {
            for i in 0..MESSAGES {
                a.send_message(bob_jid.clone(), format!("a{i:04}"));
                b.send_message(alice_jid.clone(), format!("b{i:04}"));
                tokio::time::sleep(Duration::from_millis(SEND_INTERVAL_MS)).await;
            }
        })
    };
    let (mut cuts, mut restarts, mut step) = (0, 0, 0);
    while cuts < CUTS || restarts < RESTARTS {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if step % 4 == 3 && restarts < RESTARTS {
            server.restart();
            restarts += 1;
        } else if cuts < CUTS {
            proxy.cut();
            tokio::time::sleep(Duration::from_millis(300)).await;
            proxy.restore();
            cuts += 1;
        }
        step += 1;
        // Each fault hits a live connection: wait until both are back (bounded).
        let (mut alice_online, mut bob_online) = (false, false);
        let back = Instant::now() + Duration::from_secs(30);
        while !(alice_online && bob_online) && Instant::now() < back {
            alice_online |= drain(&mut alice);
            bob_online |= drain(&mut bob);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            alice_online && bob_online,
            "no reconnection within 30 s after fault {step}"
        );
    }
    senders.await.unwrap();
    println!(
        "faults: {cuts} cuts, {restarts} server restarts in {:?}; {} TCP connections",
        t0.elapsed(),
        proxy.connections.load(std::sync::atomic::Ordering::SeqCst)
    );

    // Let both catch up; bounded in time.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        drain(&mut alice);
        drain(&mut bob);
        let a = state(&alice, "alice@localhost", "bob@localhost");
        let b = state(&bob, "bob@localhost", "alice@localhost");
        if (a.done && b.done) || Instant::now() > deadline {
            println!("alice: {}", a.summary);
            println!("bob:   {}", b.summary);
            println!(
                "out of order: alice {}, bob {}",
                a.out_of_order, b.out_of_order
            );
            assert!(a.done && b.done, "histories incomplete after the deadline");
            assert_eq!(
                (a.out_of_order, b.out_of_order),
                (0, 0),
                "received messages out of order"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "everything delivered {:?} after the first message",
        t0.elapsed()
    );
}

/// Empties a client's events; whether it (re)connected meanwhile.
fn drain(client: &mut Client) -> bool {
    let mut online = false;
    while let Ok(event) = client.events.try_recv() {
        if let Event::Connection(state) = event {
            if std::env::var_os("FAULTS_VERBOSE").is_some() {
                println!("{}: {state:?}", client.jid);
            }
            online = matches!(state, ConnectionState::Online { .. });
        }
    }
    online
}

struct Check {
    done: bool,
    summary: String,
    /// Received messages that follow a message sent after them.
    out_of_order: usize,
}

/// Whether `account`'s history with `peer` holds all messages both ways, once
/// each, in order, with every outgoing one delivered.
fn state(client: &Client, account: &str, peer: &str) -> Check {
    let page = client
        .store
        .page(
            &tern::conversation::Id::chat_of(account, peer).unwrap(),
            None,
            10 * MESSAGES,
        )
        .unwrap();
    let (out, inc): (Vec<&Record>, Vec<&Record>) = page
        .records
        .iter()
        .partition(|r| r.direction == Direction::Out);
    let seq = |rs: &[&Record]| {
        rs.iter()
            .map(|r| r.body[1..].parse::<usize>().unwrap())
            .collect::<Vec<_>>()
    };
    let (out_seq, in_seq) = (seq(&out), seq(&inc));
    let expected: Vec<usize> = (0..MESSAGES).collect();
    let delivered = out
        .iter()
        .filter(|r| r.state == Delivery::Delivered)
        .count();
    let in_order_once = |s: &[usize]| s == expected.as_slice();
    let mut dup_in = in_seq.clone();
    dup_in.sort();
    dup_in.dedup();
    let first_disorder = |s: &[usize]| {
        s.windows(2)
            .position(|w| w[1] <= w[0])
            .map(|i| (i, s[i], s[i + 1]))
    };
    if std::env::var_os("FAULTS_VERBOSE").is_some()
        && let Some((i, _, _)) = first_disorder(&in_seq)
    {
        for r in &inc[i.saturating_sub(2)..(i + 3).min(inc.len())] {
            println!(
                "  {account} got {} {} at {} (archive id {:?})",
                r.body,
                r.id,
                r.time.format("%H:%M:%S%.6f"),
                r.archive_id
            );
        }
        if let Some(late) = inc.get(i + 1) {
            let n: usize = late.body[1..].parse().unwrap();
            if let Some(prev) = inc
                .iter()
                .find(|r| r.body[1..].parse::<usize>().unwrap() == n.saturating_sub(1))
            {
                println!(
                    "  its predecessor {} at {}",
                    prev.body,
                    prev.time.format("%H:%M:%S%.6f")
                );
            }
        }
    }
    let summary = format!(
        "sent {} (delivered {delivered}, sent-only {}, pending {}, failed {}), received {} (distinct {}), sent in order: {}, received in order: {} (first disorder {:?})",
        out.len(),
        out.iter().filter(|r| r.state == Delivery::Sent).count(),
        out.iter().filter(|r| r.state == Delivery::Pending).count(),
        out.iter().filter(|r| r.state == Delivery::Failed).count(),
        inc.len(),
        dup_in.len(),
        in_order_once(&out_seq),
        in_order_once(&in_seq),
        first_disorder(&in_seq),
    );
    // Complete: exactly once, all delivered; our own messages in order. The
    // order of received messages is reported by the caller.
    let mut sorted_in = in_seq.clone();
    sorted_in.sort();
    Check {
        done: in_order_once(&out_seq) && sorted_in == expected && delivered == MESSAGES,
        summary,
        out_of_order: in_seq.windows(2).filter(|w| w[1] < w[0]).count(),
    }
}
