//! Message history on disk (sled): every message is written here before it is shown.
//!
//! Layout, version 1 (the number lives in the `meta` tree under `layout`):
//! - `messages`: `account \0 peer \0 time_µs (u64 BE) seq (u64 BE)` → JSON [`Record`].
//!   Keys sort by conversation, then time, so a page is one range scan.
//! - `conversations`: `account \0 peer` → JSON [`Conversation`] (last message, unread count).
//!
//! JIDs cannot contain NUL (RFC 7622), so `\0` separates key parts unambiguously.

mod record;

pub use record::{Conversation, Direction, Record};

use std::path::Path;

use chrono::{DateTime, Utc};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};

/// The version of the on-disk layout this build reads and writes.
pub const LAYOUT_VERSION: u32 = 1;

/// How many messages a conversation page holds.
pub const PAGE_SIZE: usize = 50;

/// A handle to the history; cheap to clone and safe to use from any thread.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    messages: Tree,
    conversations: Tree,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the profile is in use by another Tern")]
    InUse,
    #[error(
        "the history was written by a newer Tern (layout {found}, this one reads {LAYOUT_VERSION})"
    )]
    TooNew { found: u32 },
    #[error("the history is damaged: {0}")]
    Corrupt(String),
    #[error("history storage error: {0}")]
    Sled(#[from] sled::Error),
}

/// Where a page ends: pass it back to get the messages before it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(Vec<u8>);

/// Messages of one conversation, oldest first, and the cursor for older ones.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<Record>,
    /// `None` when this page reaches the start of the history.
    pub older: Option<Cursor>,
}

/// A message about to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub account: String,
    pub peer: String,
    pub direction: Direction,
    pub id: String,
    pub body: String,
    pub time: DateTime<Utc>,
}

impl Store {
    /// Opens (or creates) the history in `dir`.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let db = sled::Config::new()
            .path(dir)
            .open()
            .map_err(classify_open_error)?;
        let meta = db.open_tree("meta")?;
        match meta.get("layout")? {
            None => {
                meta.insert("layout", &LAYOUT_VERSION.to_be_bytes())?;
            }
            Some(raw) => {
                let found = <[u8; 4]>::try_from(raw.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| Error::Corrupt("layout version".into()))?;
                if found > LAYOUT_VERSION {
                    return Err(Error::TooNew { found });
                }
                // Older layouts migrate here, one version at a time, when there are any.
            }
        }
        Ok(Self {
            messages: db.open_tree("messages")?,
            conversations: db.open_tree("conversations")?,
            db,
        })
    }

    /// Stores a message and updates its conversation, atomically.
    pub fn insert(&self, message: NewMessage) -> Result<Record, Error> {
        let seq = self.db.generate_id()?;
        let time_us = u64::try_from(message.time.timestamp_micros()).unwrap_or(0);
        let mut key = conversation_prefix(&message.account, &message.peer);
        key.extend_from_slice(&time_us.to_be_bytes());
        key.extend_from_slice(&seq.to_be_bytes());
        let record = Record {
            account: message.account,
            peer: message.peer,
            direction: message.direction,
            id: message.id,
            body: message.body,
            time: message.time,
        };
        let value = record.encode();
        let conv_key = conversation_key(&record.account, &record.peer);
        let result = (&self.messages, &self.conversations).transaction(|(messages, convs)| {
            messages.insert(key.as_slice(), value.as_slice())?;
            let mut conv = match convs.get(&conv_key)? {
                Some(raw) => Conversation::decode(&raw).unwrap_or_default(),
                None => Conversation::default(),
            };
            if conv.last_time.is_none_or(|t| t <= record.time) {
                conv.peer = record.peer.clone();
                conv.last_time = Some(record.time);
                conv.last_body = preview(&record.body);
                conv.last_direction = Some(record.direction);
            }
            if record.direction == Direction::In {
                conv.unread = conv.unread.saturating_add(1);
            }
            convs.insert(conv_key.as_slice(), conv.encode())?;
            Ok::<_, ConflictableTransactionError<()>>(())
        });
        match result {
            Ok(()) => Ok(record),
            Err(TransactionError::Storage(e)) => Err(Error::Sled(e)),
            Err(TransactionError::Abort(())) => Err(Error::Corrupt("transaction aborted".into())),
        }
    }

    /// The newest page of a conversation (`before = None`) or the page before `before`.
    pub fn page(
        &self,
        account: &str,
        peer: &str,
        before: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, Error> {
        let prefix = conversation_prefix(account, peer);
        let end = match before {
            Some(Cursor(key)) if key.starts_with(&prefix) => key.clone(),
            Some(_) => return Ok(Page::default()),
            None => prefix_end(&prefix),
        };
        let mut records = Vec::with_capacity(limit.min(PAGE_SIZE * 4));
        let mut last_key = None;
        let mut more = false;
        for item in self.messages.range(prefix.clone()..end).rev() {
            let (key, value) = item?;
            if records.len() == limit {
                more = true;
                break;
            }
            match Record::decode(&value) {
                Ok(r) => records.push(r),
                Err(e) => tracing::warn!("skipping an undecodable history record: {e}"),
            }
            last_key = Some(key.to_vec());
        }
        records.reverse();
        Ok(Page {
            records,
            older: if more { last_key.map(Cursor) } else { None },
        })
    }

    /// The account's conversations, most recent first.
    pub fn conversations(&self, account: &str) -> Result<Vec<Conversation>, Error> {
        let mut prefix = account.as_bytes().to_vec();
        prefix.push(0);
        let mut list = Vec::new();
        for item in self.conversations.scan_prefix(&prefix) {
            let (_, value) = item?;
            match Conversation::decode(&value) {
                Ok(c) => list.push(c),
                Err(e) => tracing::warn!("skipping an undecodable conversation: {e}"),
            }
        }
        list.sort_by_key(|c| std::cmp::Reverse(c.last_time));
        Ok(list)
    }

    /// Clears the unread count of a conversation.
    pub fn mark_read(&self, account: &str, peer: &str) -> Result<(), Error> {
        let key = conversation_key(account, peer);
        self.conversations.fetch_and_update(&key, |old| {
            let raw = old?;
            let mut conv = Conversation::decode(raw).ok()?;
            conv.unread = 0;
            Some(conv.encode())
        })?;
        Ok(())
    }

    /// Every stored message in key order (conversation, then time), optionally
    /// restricted to one peer. Used by `tern export`.
    pub fn all<'a>(
        &'a self,
        peer: Option<&'a str>,
    ) -> impl Iterator<Item = Result<Record, Error>> + 'a {
        self.messages.iter().filter_map(move |item| {
            let record = item
                .map_err(Error::from)
                .and_then(|(_, v)| Record::decode(&v).map_err(|e| Error::Corrupt(e.to_string())));
            match record {
                Ok(r) if peer.is_some_and(|p| p != r.peer) => None,
                other => Some(other),
            }
        })
    }

    /// Waits until everything written so far is on disk.
    pub async fn flush(&self) -> Result<(), Error> {
        self.db.flush_async().await?;
        Ok(())
    }
}

fn classify_open_error(e: sled::Error) -> Error {
    // sled 0.34 reports a held file lock only as an `Other` I/O error with this text
    // (config.rs, `try_lock`); the test below pins the behaviour.
    match &e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => Error::InUse,
        _ => Error::Sled(e),
    }
}

fn conversation_key(account: &str, peer: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(account.len() + peer.len() + 1);
    key.extend_from_slice(account.as_bytes());
    key.push(0);
    key.extend_from_slice(peer.as_bytes());
    key
}

fn conversation_prefix(account: &str, peer: &str) -> Vec<u8> {
    let mut key = conversation_key(account, peer);
    key.push(0);
    key
}

/// The smallest key greater than every key starting with `prefix` (which ends in `\0`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last = 1;
    }
    end
}

/// A one-line preview of a message for the conversation list.
fn preview(body: &str) -> String {
    const MAX: usize = 120;
    let line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX + 1)
        .collect();
    let line = line.trim();
    if line.chars().count() > MAX {
        let mut short: String = line.chars().take(MAX).collect();
        short.push('…');
        short
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn message(peer: &str, n: i64, direction: Direction) -> NewMessage {
        NewMessage {
            account: "me@example.org".into(),
            peer: peer.into(),
            direction,
            id: format!("id-{n}"),
            body: format!("message {n}"),
            time: Utc.timestamp_opt(1_700_000_000 + n, 0).unwrap(),
        }
    }

    #[test]
    fn pages_walk_back_through_history_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        for n in 0..120 {
            store
                .insert(message("bob@example.org", n, Direction::In))
                .unwrap();
            store
                .insert(message("carol@example.org", n, Direction::Out))
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = store
                .page("me@example.org", "bob@example.org", cursor.as_ref(), 50)
                .unwrap();
            pages += 1;
            assert!(page.records.iter().all(|r| r.peer == "bob@example.org"));
            let mut bodies: Vec<_> = page.records.iter().map(|r| r.body.clone()).collect();
            bodies.extend(seen);
            seen = bodies;
            match page.older {
                Some(c) => cursor = Some(c),
                None => break,
            }
            assert!(pages < 10);
        }
        assert_eq!(pages, 3);
        let expected: Vec<_> = (0..120).map(|n| format!("message {n}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn conversations_count_unread_and_sort_by_recency() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        store
            .insert(message("bob@example.org", 1, Direction::In))
            .unwrap();
        store
            .insert(message("bob@example.org", 2, Direction::In))
            .unwrap();
        store
            .insert(message("carol@example.org", 3, Direction::Out))
            .unwrap();
        let convs = store.conversations("me@example.org").unwrap();
        assert_eq!(convs[0].peer, "carol@example.org");
        assert_eq!(convs[0].unread, 0);
        assert_eq!(convs[1].peer, "bob@example.org");
        assert_eq!(convs[1].unread, 2);
        assert_eq!(convs[1].last_body, "message 2");
        store
            .mark_read("me@example.org", "bob@example.org")
            .unwrap();
        assert_eq!(store.conversations("me@example.org").unwrap()[1].unread, 0);
        assert!(store.conversations("other@example.org").unwrap().is_empty());
    }

    #[test]
    fn history_survives_reopen_and_profile_lock_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = Store::open(tmp.path()).unwrap();
            store
                .insert(message("bob@example.org", 1, Direction::Out))
                .unwrap();
            futures::executor::block_on(store.flush()).unwrap();
        }
        let store = Store::open(tmp.path()).unwrap();
        let page = store
            .page("me@example.org", "bob@example.org", None, 50)
            .unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0].direction, Direction::Out);
        assert!(page.older.is_none());
        assert!(matches!(Store::open(tmp.path()), Err(Error::InUse)));
    }

    #[test]
    fn newer_layout_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let db = sled::open(tmp.path()).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert("layout", &99u32.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        assert!(matches!(
            Store::open(tmp.path()),
            Err(Error::TooNew { found: 99 })
        ));
    }

    #[test]
    fn peer_prefix_does_not_leak_into_longer_jids() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        store
            .insert(message("bob@example.org", 1, Direction::In))
            .unwrap();
        store
            .insert(message("bob@example.orgx", 2, Direction::In))
            .unwrap();
        let page = store
            .page("me@example.org", "bob@example.org", None, 50)
            .unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(store.all(Some("bob@example.orgx")).count(), 1);
        assert_eq!(store.all(None).count(), 2);
    }

    #[test]
    fn previews_are_one_short_line() {
        assert_eq!(preview("a\nb"), "a b");
        let long = "x".repeat(500);
        assert_eq!(preview(&long).chars().count(), 121);
    }
}
