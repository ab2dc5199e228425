//! Our IQ requests awaiting an answer: unguessable ids, answers matched on
//! (id, the entity asked), and a deadline for those that must not wait forever.
//!
//! RFC 6120 §8.1.2.1: an IQ reply is the answer to a request only when it
//! carries the request's id *and* comes from the entity the request went to.
//! Anyone who knows our full JID (every contact who sees our presence) can send
//! us `<iq type='error'/>` with an id they guess; matching on the id alone let
//! such a contact end our archive catch-up and lose messages. Ids are random
//! (not counters) so they cannot be guessed, and a reply from the wrong sender
//! leaves the request waiting for the real answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_xmpp::jid::{BareJid, Jid};

/// The requests in flight, each with what it was for (`K`).
pub(super) struct Requests<K> {
    account: BareJid,
    waiting: HashMap<String, InFlight<K>>,
    /// How many requests were ever added: each one's place in line.
    added: u64,
}

struct InFlight<K> {
    order: u64,
    /// Where the request went; `None`: to our own account, answered by our server.
    to: Option<Jid>,
    deadline: Option<Instant>,
    kind: K,
}

/// What an incoming IQ reply turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reply<K> {
    /// The answer to the request that was for `K`.
    Answer(K),
    /// An id we are not waiting for (late, repeated, or made up).
    Unknown,
    /// An id we are waiting for, from someone we did not ask: ignored, and the
    /// request keeps waiting for its real answer.
    Forged,
}

impl<K> Requests<K> {
    pub(super) fn new(account: BareJid) -> Self {
        Self {
            account,
            waiting: HashMap::new(),
            added: 0,
        }
    }

    /// Registers a request to `to` (`None`: our own account) and returns the id
    /// to send it with. With a `timeout`, [`Requests::expired`] hands it back
    /// once that has passed without an answer.
    pub(super) fn add(
        &mut self,
        to: Option<Jid>,
        kind: K,
        timeout: Option<Duration>,
        now: Instant,
    ) -> String {
        let id = new_id();
        self.added += 1;
        self.waiting.insert(
            id.clone(),
            InFlight {
                order: self.added,
                to,
                deadline: timeout.map(|t| now + t),
                kind,
            },
        );
        id
    }

    /// Takes the request a reply with `id` from `from` answers, if it does.
    pub(super) fn answer(&mut self, id: &str, from: Option<&Jid>) -> Reply<K> {
        let Some(request) = self.waiting.get(id) else {
            return Reply::Unknown;
        };
        if !answers(&self.account, request.to.as_ref(), from) {
            return Reply::Forged;
        }
        match self.waiting.remove(id) {
            Some(request) => Reply::Answer(request.kind),
            None => Reply::Unknown,
        }
    }

    pub(super) fn contains(&self, id: &str) -> bool {
        self.waiting.contains_key(id)
    }

    /// Removes and returns the requests whose deadline has passed.
    pub(super) fn expired(&mut self, now: Instant) -> Vec<K> {
        let late: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, r)| r.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        late.into_iter()
            .filter_map(|id| self.waiting.remove(&id))
            .map(|r| r.kind)
            .collect()
    }

    /// Removes every request (the session they were sent in is gone).
    pub(super) fn drain(&mut self) -> impl Iterator<Item = K> + '_ {
        self.waiting.drain().map(|(_, r)| r.kind)
    }

    /// The ids in flight, oldest first: random ids named by their place, so
    /// that a replayed fuzz input answers the same requests each time.
    pub(super) fn ids_in_order(&self) -> Vec<String> {
        let mut ids: Vec<(&u64, &String)> =
            self.waiting.iter().map(|(id, r)| (&r.order, id)).collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id.clone()).collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.waiting.len()
    }
}

/// An id no one can guess (128 random bits), for IQs and archive queries.
pub(super) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether a reply from `from` can answer a request sent to `to`.
///
/// A request without `to` goes to our own account and is answered by our
/// server, which puts our bare JID, its own domain or nothing in `from`
/// (RFC 6120 §8.1.2.1, §10.3.3). A request to someone else is answered by that
/// someone: exactly the JID asked, and our server may answer for our own bare
/// JID or its domain without naming them.
fn answers(account: &BareJid, to: Option<&Jid>, from: Option<&Jid>) -> bool {
    let own =
        |jid: &Jid| jid.as_str() == account.as_str() || jid.as_str() == account.domain().as_str();
    match (to, from) {
        (None, None) => true,
        (None, Some(from)) => own(from),
        (Some(to), Some(from)) => to == from,
        (Some(to), None) => own(to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn requests() -> Requests<&'static str> {
        Requests::new("alice@example.org".parse().unwrap())
    }

    #[test]
    fn ids_are_unguessable_and_distinct() {
        let mut r = requests();
        let now = Instant::now();
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| r.add(None, "x", None, now)).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 32), "128 random bits each");
        assert!(
            !ids.iter()
                .any(|id| id.starts_with("mam") || id.parse::<u64>().is_ok())
        );
    }

    #[test]
    fn a_request_to_our_account_is_answered_only_by_our_server() {
        let mut r = requests();
        let now = Instant::now();
        for from in [None, Some("alice@example.org"), Some("example.org")] {
            let id = r.add(None, "archive", None, now);
            assert_eq!(
                r.answer(&id, from.map(jid).as_ref()),
                Reply::Answer("archive"),
                "{from:?}"
            );
        }
        let id = r.add(None, "archive", None, now);
        for forger in [
            "bob@example.org/phone",
            "bob@example.org",
            "alice@example.org/other-device",
            "evil.example",
            "example.org/x",
        ] {
            assert_eq!(r.answer(&id, Some(&jid(forger))), Reply::Forged, "{forger}");
        }
        // The forgeries left the request waiting for its real answer.
        assert_eq!(r.answer(&id, None), Reply::Answer("archive"));
        assert_eq!(r.answer(&id, None), Reply::Unknown, "answered once only");
    }

    #[test]
    fn a_request_to_a_service_is_answered_by_that_service() {
        let mut r = requests();
        let service = jid("upload.example.org");
        let id = r.add(Some(service.clone()), "slot", None, Instant::now());
        assert_eq!(r.answer(&id, None), Reply::Forged);
        assert_eq!(r.answer(&id, Some(&jid("example.org"))), Reply::Forged);
        assert_eq!(r.answer(&id, Some(&jid("bob@example.org"))), Reply::Forged);
        assert_eq!(r.answer(&id, Some(&service)), Reply::Answer("slot"));
    }

    #[test]
    fn a_request_to_our_domain_may_be_answered_without_a_from() {
        let mut r = requests();
        let id = r.add(Some(jid("example.org")), "items", None, Instant::now());
        assert_eq!(r.answer(&id, Some(&jid("bob@example.org"))), Reply::Forged);
        assert_eq!(r.answer(&id, None), Reply::Answer("items"));
    }

    #[test]
    fn unknown_ids_change_nothing() {
        let mut r = requests();
        let id = r.add(None, "roster", None, Instant::now());
        assert_eq!(r.answer("mam-page-1", None), Reply::Unknown);
        assert_eq!(r.len(), 1);
        assert!(r.contains(&id));
    }

    #[test]
    fn requests_with_a_deadline_expire_once() {
        let mut r = requests();
        let now = Instant::now();
        r.add(None, "page", Some(Duration::from_secs(30)), now);
        r.add(None, "barrier", None, now);
        assert!(r.expired(now + Duration::from_secs(29)).is_empty());
        assert_eq!(r.expired(now + Duration::from_secs(30)), vec!["page"]);
        assert!(r.expired(now + Duration::from_secs(3600)).is_empty());
        assert_eq!(r.drain().collect::<Vec<_>>(), vec!["barrier"]);
    }
}
