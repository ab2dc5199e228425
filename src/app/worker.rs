//! The iced side of an account's XMPP worker: a subscription keyed by account.

use std::hash::{Hash, Hasher};

use iced::Subscription;
use iced::futures::{SinkExt, Stream};

use crate::store::Store;
use crate::xmpp::{self, BareJid, Event};

/// At most this many worker events reach `update` in one message.
const MAX_BATCH: usize = 512;

/// What the subscription needs to start a worker. Its identity is the account
/// alone, so new settings go to the running worker as a command instead of
/// restarting it.
#[derive(Clone, Debug)]
pub struct Seed {
    pub account: BareJid,
    pub store: Store,
}

impl Hash for Seed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.account.hash(state);
    }
}

/// The account's worker, as batches of events, each with its account.
pub fn subscription(seed: Seed) -> Subscription<(BareJid, Vec<Event>)> {
    Subscription::run_with(seed, run)
}

fn run(seed: &Seed) -> impl Stream<Item = (BareJid, Vec<Event>)> + use<> {
    let seed = seed.clone();
    iced::stream::channel(64, async move |mut output| {
        // The worker runs as its own task: a slow UI delays only this forwarding
        // loop, never the worker's keep-alives. Its handle arrives in `Ready`.
        let (_, mut events) = xmpp::spawn(seed.account.clone(), seed.store);
        while let Some(first) = events.recv().await {
            // Everything that queued up while the UI was busy goes in one update.
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match events.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            if output.send((seed.account.clone(), batch)).await.is_err() {
                break;
            }
        }
    })
}
