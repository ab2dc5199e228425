//! Message history on disk (sled): every message is written here before it is shown.
//!
//! Layout, version 3 (the number lives in the `meta` tree under `layout`).
//! A conversation's key is `account \0 kind \0 peer` (kind `chat`, `room` or
//! `private`; see `keys`):
//! - `3:messages`: `conversation \0 time_µs (u64 BE) seq (u64 BE)` → JSON [`Record`].
//!   Keys sort by conversation, then time, so a page is one range scan.
//! - `3:conversations`: `conversation` → JSON [`Conversation`] (last message, unread count).
//! - `3:ids`: `conversation \0 id` → message key: de-duplication and state updates;
//!   another message reusing the id goes under `conversation \0 id \0 n` (n = 1, 2, …).
//! - `3:archive`: `account \0 archive \0 archive id` → message key: de-duplication of
//!   MAM results, per archive (the account's own, or a room's).
//! - `3:outbox`: message key → nothing: outgoing messages not yet acknowledged by the server.
//! - `3:drafts`: `conversation` → UTF-8 text typed but not sent.
//! - `meta`: `layout` → u32 BE; `archive-cursor \0 account` → the newest archive id seen;
//!   `archive-since \0 account` → RFC 3339 time, when the archive was empty at a first
//!   sign-in.
//!
//! Layout 2 had the same trees without the `3:` and keys without the kind;
//! layout 1 had only `messages` and `conversations`, and records without a
//! delivery state. [`Store::open`] migrates both (see `migrate`).

mod keys;
mod migrate;
mod record;

pub use record::{Conversation, Delivery, Direction, Encryption, Record, Relation, Sender};

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Transactional, Tree};

use crate::conversation;
use keys::{
    account_prefix, archive_key, archive_of, conversation_key_of, conversation_prefix_of, id_key,
    message_key, message_seq, meta_cursor_key, meta_room_cursor_key, meta_room_cursor_prefix,
    meta_since_key, prefix_end,
};

/// The version of the on-disk layout this build reads and writes.
pub const LAYOUT_VERSION: u32 = 3;

/// How many messages a conversation page holds.
pub const PAGE_SIZE: usize = 50;

/// A handle to the history; cheap to clone and safe to use from any thread.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
    meta: Tree,
    messages: Tree,
    conversations: Tree,
    ids: Tree,
    archive: Tree,
    outbox: Tree,
    drafts: Tree,
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

/// Where a catch-up from the server's archive resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchivePosition {
    /// After this archive id: everything up to it is stored.
    After(String),
    /// From this time: the archive held nothing newer when we last looked.
    Since(DateTime<Utc>),
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
    pub conversation: conversation::Id,
    pub direction: Direction,
    pub sender: Sender,
    /// See [`Record::id`].
    pub id: String,
    pub stanza_id: Option<String>,
    pub origin_id: Option<String>,
    pub body: String,
    pub time: DateTime<Utc>,
    /// `Pending` puts the message in the outbox.
    pub state: Delivery,
    pub archive_id: Option<String>,
    pub other_device: bool,
    /// The body is a shared file's link (see [`Record::attachment`]).
    pub attachment: bool,
    /// Whether an incoming message counts as unread (not for history back-fill).
    pub unread: bool,
    /// Encrypted in a way Tern cannot read (see [`Record::encryption`]).
    pub encryption: Option<Encryption>,
    pub relation: Option<Relation>,
}

impl NewMessage {
    /// An incoming message from the conversation's peer, received now on this device.
    pub fn incoming(
        conversation: &conversation::Id,
        id: String,
        body: String,
        time: DateTime<Utc>,
    ) -> Self {
        Self {
            sender: Sender::jid(conversation.bare().as_str()),
            conversation: conversation.clone(),
            direction: Direction::In,
            id,
            stanza_id: None,
            origin_id: None,
            body,
            time,
            state: Delivery::Received,
            archive_id: None,
            other_device: false,
            attachment: false,
            unread: true,
            encryption: None,
            relation: None,
        }
    }

    /// An outgoing message typed on this device: pending until the server acknowledges it.
    pub fn outgoing(
        conversation: &conversation::Id,
        id: String,
        body: String,
        time: DateTime<Utc>,
    ) -> Self {
        Self {
            direction: Direction::Out,
            sender: Sender::jid(conversation.account().as_str()),
            state: Delivery::Pending,
            unread: false,
            ..Self::incoming(conversation, id, body, time)
        }
    }
}

/// Why a transaction stopped without writing.
enum Skip {
    /// The message is already stored (same id or archive id) under `key`.
    Duplicate {
        key: sled::IVec,
        adds_archive_id: bool,
    },
}

impl Store {
    /// Opens (or creates) the history in `dir`, migrating an older layout.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let db = open_db(dir)?;
        let store = Self {
            meta: db.open_tree("meta")?,
            messages: db.open_tree("3:messages")?,
            conversations: db.open_tree("3:conversations")?,
            ids: db.open_tree("3:ids")?,
            archive: db.open_tree("3:archive")?,
            outbox: db.open_tree("3:outbox")?,
            drafts: db.open_tree("3:drafts")?,
            db,
        };
        let has_old = store
            .db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == b"messages");
        match store.meta.get("layout")? {
            None if !has_old && store.messages.is_empty() => {
                migrate::set_layout(&store.db, LAYOUT_VERSION)?
            }
            // Written by a build before the version number existed: there was none.
            None => return Err(Error::Corrupt("history without a layout version".into())),
            Some(raw) => {
                let found = <[u8; 4]>::try_from(raw.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| Error::Corrupt("layout version".into()))?;
                match found {
                    1 => {
                        migrate::layout_1_to_2(&store.db)?;
                        migrate::layout_2_to_3(&store.db, &store)?;
                    }
                    2 => migrate::layout_2_to_3(&store.db, &store)?,
                    3 if has_old => migrate::drop_old_trees(&store.db)?,
                    3 => {}
                    found => return Err(Error::TooNew { found }),
                }
            }
        }
        Ok(store)
    }

    /// Empties the history, as if just created (the layout version stays).
    /// For the inbound fuzz target, which runs millions of inputs: opening a
    /// sled database for each cost two thirds of its time.
    pub fn clear(&self) -> Result<(), Error> {
        self.clear_trees()?;
        for key in self.meta.iter().keys() {
            let key = key?;
            if key.as_ref() != b"layout" {
                self.meta.remove(key)?;
            }
        }
        Ok(())
    }

    /// Deletes everything stored for one account (its messages, conversations,
    /// drafts, outbox and archive positions), for "remove account"; returns
    /// how many messages went. Other accounts' entries are untouched: every
    /// key of an account starts with `account \0`, and a JID has no NUL.
    pub fn delete_account(&self, account: &str) -> Result<u64, Error> {
        let prefix = account_prefix(account);
        let mut messages = 0;
        for key in self.messages.scan_prefix(&prefix).keys() {
            self.messages.remove(key?)?;
            messages += 1;
        }
        for tree in [
            &self.conversations,
            &self.ids,
            &self.archive,
            &self.outbox,
            &self.drafts,
        ] {
            for key in tree.scan_prefix(&prefix).keys() {
                tree.remove(key?)?;
            }
        }
        self.meta.remove(meta_cursor_key(account))?;
        self.meta.remove(meta_since_key(account))?;
        for key in self
            .meta
            .scan_prefix(meta_room_cursor_prefix(account))
            .keys()
        {
            self.meta.remove(key?)?;
        }
        self.db.flush()?;
        Ok(messages)
    }

    /// Empties every tree but `meta`.
    fn clear_trees(&self) -> Result<(), Error> {
        for tree in [
            &self.messages,
            &self.conversations,
            &self.ids,
            &self.archive,
            &self.outbox,
            &self.drafts,
        ] {
            tree.clear()?;
        }
        Ok(())
    }

    /// Stores a message and updates its conversation, atomically.
    ///
    /// Returns `None` when the message is already stored (same id in the same
    /// conversation, or same archive id): carbons, MAM, offline delivery and
    /// redelivery after a failed resume all produce such copies. A copy that
    /// brings the archive id the stored message lacked adds it.
    pub fn insert(&self, message: NewMessage) -> Result<Option<Record>, Error> {
        let seq = self.db.generate_id()?;
        let unread = message.unread;
        // Keys hold microseconds: keep the record's time to the same precision, so
        // the order of keys and the order of times are one and the same.
        let time_us = u64::try_from(message.time.timestamp_micros()).unwrap_or(0);
        let time = DateTime::from_timestamp_micros(message.time.timestamp_micros())
            .unwrap_or(message.time);
        let prefix = conversation_prefix_of(&message.conversation);
        let key = message_key(&prefix, time_us, seq);
        let conversation = message.conversation;
        let record = Record {
            account: conversation.account().to_string(),
            peer: conversation.peer().to_string(),
            kind: conversation.kind(),
            direction: message.direction,
            sender: message.sender,
            id: message.id,
            stanza_id: message.stanza_id,
            origin_id: message.origin_id,
            body: message.body,
            time,
            state: message.state,
            error: None,
            archive_id: message.archive_id,
            other_device: message.other_device,
            attachment: message.attachment,
            encryption: message.encryption,
            relation: message.relation,
        };
        let value = record.encode();
        let conv_key = conversation_key_of(&conversation);
        // Which stored message with the same id, if any, this one is a copy of;
        // and under which key of `ids` it goes if it is none of them.
        let (same, id_key) = self.same_message(&prefix, &record)?;
        let archive_key = record.archive_id.as_deref().map(|a| {
            archive_key(
                &record.account,
                archive_of(&record.account, record.kind, &record.peer),
                a,
            )
        });
        let trees = (
            &self.messages,
            &self.conversations,
            &self.ids,
            &self.archive,
            &self.outbox,
        );
        let result = trees.transaction(|(messages, convs, ids, archive, outbox)| {
            let existing = match &archive_key {
                Some(a) => archive.get(a)?,
                None => None,
            };
            let existing = match (existing, &same) {
                (Some(k), _) => Some(k),
                (None, Some(k)) => Some(sled::IVec::from(k.as_slice())),
                // The id's slot was taken since we looked: it is a copy.
                (None, None) => ids.get(&id_key)?,
            };
            if let Some(existing) = existing {
                // A transaction's writes vanish when it aborts: a later copy that
                // brings the archive id (MAM after a live message) is recorded below.
                let adds_archive_id = match &archive_key {
                    Some(a) => archive.get(a)?.is_none(),
                    None => false,
                };
                return Err(ConflictableTransactionError::Abort(Skip::Duplicate {
                    key: existing,
                    adds_archive_id,
                }));
            }
            messages.insert(key.as_slice(), value.as_slice())?;
            ids.insert(id_key.as_slice(), key.as_slice())?;
            if let Some(a) = &archive_key {
                archive.insert(a.as_slice(), key.as_slice())?;
            }
            if record.state == Delivery::Pending {
                outbox.insert(key.as_slice(), &[])?;
            }
            let mut conv = match convs.get(&conv_key)? {
                Some(raw) => Conversation::decode(&raw).unwrap_or_default(),
                None => Conversation::default(),
            };
            if conv.last_time.is_none_or(|t| t <= record.time) {
                conv.account = record.account.clone();
                conv.peer = record.peer.clone();
                conv.kind = record.kind;
                conv.last_time = Some(record.time);
                conv.last_body = preview(&record.body);
                conv.last_direction = Some(record.direction);
                conv.last_encrypted = record.encryption.is_some();
            }
            if record.direction == Direction::In && unread {
                conv.unread = conv.unread.saturating_add(1);
            }
            convs.insert(conv_key.as_slice(), conv.encode())?;
            Ok(())
        });
        match result {
            Ok(()) => Ok(Some(record)),
            Err(TransactionError::Abort(Skip::Duplicate {
                key,
                adds_archive_id,
            })) => {
                if let (true, Some(archive_id), Some(a)) =
                    (adds_archive_id, &record.archive_id, &archive_key)
                {
                    self.add_archive_id(&key, archive_id, a)?;
                }
                Ok(None)
            }
            Err(TransactionError::Storage(e)) => Err(Error::Sled(e)),
        }
    }

    /// The stored message with `record`'s id that `record` is a copy of, and
    /// the `ids` key a new message with that id goes under.
    ///
    /// An id alone does not prove identity: clients with restarting counters,
    /// constant or empty ids reuse them for different messages, and a contact
    /// can send one of our own ids back. A copy (carbon, archive, offline
    /// delivery, a resend) has the same id, direction and body; anything else
    /// with the same id is another message, kept under `id \0 n`. Differing
    /// archive ids do not make two copies different: a message its sender sent
    /// again after a lost connection is archived twice.
    ///
    /// Read outside the insert's transaction (sled's transactions cannot scan);
    /// the transaction re-checks that the key is still free.
    fn same_message(
        &self,
        prefix: &[u8],
        record: &Record,
    ) -> Result<(Option<Vec<u8>>, Vec<u8>), Error> {
        let exact = id_key(prefix, &record.id);
        let mut taken = 0usize;
        for item in self.ids.scan_prefix(&exact) {
            let (id_key, message_key) = item?;
            let rest = &id_key[exact.len()..];
            // Longer ids that start with this one are other ids.
            if !(rest.is_empty() || rest.first() == Some(&0)) {
                continue;
            }
            taken += 1;
            let Some(raw) = self.messages.get(&message_key)? else {
                continue;
            };
            let Ok(stored) = Record::decode(&raw) else {
                continue;
            };
            if stored.direction == record.direction && stored.body == record.body {
                return Ok((Some(message_key.to_vec()), exact));
            }
        }
        if taken == 0 {
            return Ok((None, exact));
        }
        let mut key = exact;
        key.push(0);
        key.extend_from_slice(taken.to_string().as_bytes());
        Ok((None, key))
    }

    /// Moves an incoming message stored at or after `mark` (this session) to
    /// `time` if it is stored before it. Returns that message as it now is and
    /// whether it moved; `None` for an unknown, outgoing or older message.
    ///
    /// The archive's order is the order the server received messages in. A
    /// message that reached us late (routed to a session of ours that died,
    /// then fetched from the archive) is stored when it comes; when the
    /// archive then lists a message we had stored live as coming after it,
    /// the live one moves after it.
    pub fn move_after(
        &self,
        conversation: &conversation::Id,
        id: &str,
        time: DateTime<Utc>,
        mark: u64,
    ) -> Result<Option<(Record, bool)>, Error> {
        let prefix = conversation_prefix_of(conversation);
        let id_key = id_key(&prefix, id);
        let time_us = u64::try_from(time.timestamp_micros()).unwrap_or(0);
        let time = DateTime::from_timestamp_micros(time.timestamp_micros()).unwrap_or(time);
        let result =
            (&self.messages, &self.ids, &self.archive).transaction(|(messages, ids, archive)| {
                let Some(old_key) = ids.get(&id_key)? else {
                    return Ok(None);
                };
                let Some(seq) = message_seq(&old_key) else {
                    return Ok(None);
                };
                let Some(raw) = messages.get(&old_key)? else {
                    return Ok(None);
                };
                let Ok(mut record) = Record::decode(&raw) else {
                    return Ok(None);
                };
                if seq < mark || record.direction != Direction::In {
                    return Ok(None);
                }
                if record.time >= time {
                    return Ok(Some((record, false)));
                }
                record.time = time;
                let key = message_key(&prefix, time_us, seq);
                messages.remove(&old_key)?;
                messages.insert(key.as_slice(), record.encode())?;
                ids.insert(id_key.as_slice(), key.as_slice())?;
                if let Some(archive_id) = &record.archive_id {
                    let archive_key = archive_key(
                        &record.account,
                        archive_of(&record.account, record.kind, &record.peer),
                        archive_id,
                    );
                    archive.insert(archive_key, key.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<()>>(Some((record, true)))
            });
        match result {
            Ok(moved) => Ok(moved),
            Err(TransactionError::Abort(())) => Ok(None),
            Err(TransactionError::Storage(e)) => Err(Error::Sled(e)),
        }
    }

    /// Gives a stored message the archive id a later copy of it brought.
    fn add_archive_id(
        &self,
        key: &[u8],
        archive_id: &str,
        archive_key: &[u8],
    ) -> Result<(), Error> {
        let result = (&self.messages, &self.archive).transaction(|(messages, archive)| {
            let Some(raw) = messages.get(key)? else {
                return Ok(());
            };
            let Ok(mut record) = Record::decode(&raw) else {
                return Ok(());
            };
            if record.archive_id.is_none() {
                record.archive_id = Some(archive_id.to_string());
                messages.insert(key, record.encode())?;
            }
            archive.insert(archive_key, key)?;
            Ok::<_, ConflictableTransactionError<()>>(())
        });
        match result {
            Ok(()) | Err(TransactionError::Abort(())) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(Error::Sled(e)),
        }
    }

    /// Moves a message to a new delivery state (if that is a step forward) and
    /// keeps the outbox in step. Returns the updated record, or `None` when the
    /// message is unknown or the change would go backwards.
    pub fn set_state(
        &self,
        conversation: &conversation::Id,
        id: &str,
        state: Delivery,
        error: Option<String>,
    ) -> Result<Option<Record>, Error> {
        let id_key = id_key(&conversation_prefix_of(conversation), id);
        let result =
            (&self.messages, &self.ids, &self.outbox).transaction(|(messages, ids, outbox)| {
                let Some(key) = ids.get(&id_key)? else {
                    return Ok(None);
                };
                let Some(raw) = messages.get(&key)? else {
                    return Ok(None);
                };
                let Ok(mut record) = Record::decode(&raw) else {
                    return Ok(None);
                };
                if !record.state.may_become(state) {
                    return Ok(None);
                }
                record.state = state;
                record.error = if state == Delivery::Failed {
                    error.clone()
                } else {
                    None
                };
                messages.insert(&key, record.encode())?;
                if state == Delivery::Pending {
                    outbox.insert(&key, &[])?;
                } else {
                    outbox.remove(&key)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(Some(record))
            });
        match result {
            Ok(r) => Ok(r),
            Err(TransactionError::Storage(e)) => Err(Error::Sled(e)),
            Err(TransactionError::Abort(())) => Ok(None),
        }
    }

    /// The account's outgoing messages still waiting for the server, oldest first
    /// within each conversation.
    pub fn outbox(&self, account: &str) -> Result<Vec<Record>, Error> {
        let prefix = account_prefix(account);
        let mut pending = Vec::new();
        for item in self.outbox.scan_prefix(&prefix) {
            let (key, _) = item?;
            match self.messages.get(&key)?.map(|raw| Record::decode(&raw)) {
                Some(Ok(record)) => pending.push(record),
                Some(Err(e)) => tracing::warn!("outbox: undecodable record: {e}"),
                None => {
                    self.outbox.remove(&key)?;
                }
            }
        }
        pending.sort_by_key(|r| r.time);
        Ok(pending)
    }

    /// Where the account's next catch-up from the archive (XEP-0313) starts,
    /// if a catch-up ever got anywhere.
    pub fn archive_position(&self, account: &str) -> Result<Option<ArchivePosition>, Error> {
        if let Some(id) = self
            .meta
            .get(meta_cursor_key(account))?
            .and_then(|v| String::from_utf8(v.to_vec()).ok())
        {
            return Ok(Some(ArchivePosition::After(id)));
        }
        Ok(self
            .meta
            .get(meta_since_key(account))?
            .and_then(|v| String::from_utf8(v.to_vec()).ok())
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| ArchivePosition::Since(t.with_timezone(&Utc))))
    }

    /// Forgets how far catch-up got (the server no longer knows that position).
    pub fn clear_archive_cursor(&self, account: &str) -> Result<(), Error> {
        self.meta.remove(meta_cursor_key(account))?;
        self.meta.remove(meta_since_key(account))?;
        Ok(())
    }

    /// Records how far catch-up got. Call only after the messages up to `id` are stored.
    pub fn set_archive_cursor(&self, account: &str, id: &str) -> Result<(), Error> {
        self.meta.insert(meta_cursor_key(account), id.as_bytes())?;
        self.meta.remove(meta_since_key(account))?;
        Ok(())
    }

    /// Records that the archive held nothing we lack from before `time`: a
    /// first sign-in found it empty, so the next catch-up takes everything
    /// since then. An archive id, once known, takes its place.
    pub fn set_archive_since(&self, account: &str, time: DateTime<Utc>) -> Result<(), Error> {
        let stamp = time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.meta
            .insert(meta_since_key(account), stamp.as_bytes())?;
        Ok(())
    }

    /// The room's archive id up to which everything the room's own archive
    /// holds is stored (see [`Store::set_room_cursor`]).
    pub fn room_cursor(&self, room: &conversation::Id) -> Result<Option<String>, Error> {
        let key = meta_room_cursor_key(room.account().as_str(), room.peer().as_str());
        Ok(self
            .meta
            .get(key)?
            .and_then(|v| String::from_utf8(v.to_vec()).ok()))
    }

    /// Records how far a room's messages are stored, in its archive's terms.
    /// Call only once everything up to `id` is stored.
    pub fn set_room_cursor(&self, room: &conversation::Id, id: &str) -> Result<(), Error> {
        let key = meta_room_cursor_key(room.account().as_str(), room.peer().as_str());
        self.meta.insert(key, id.as_bytes())?;
        Ok(())
    }

    /// Forgets a room's archive position (the room no longer knows it, or has
    /// no archive any more): the next join asks for the room's own history.
    pub fn clear_room_cursor(&self, room: &conversation::Id) -> Result<(), Error> {
        let key = meta_room_cursor_key(room.account().as_str(), room.peer().as_str());
        self.meta.remove(key)?;
        Ok(())
    }

    /// The newest page of a conversation (`before = None`) or the page before `before`.
    pub fn page(
        &self,
        conversation: &conversation::Id,
        before: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, Error> {
        let prefix = conversation_prefix_of(conversation);
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

    /// A mark of the present moment in the store's order of writes: pass it to
    /// `last_incoming_time` to ignore what is stored from now on.
    pub fn mark(&self) -> Result<u64, Error> {
        Ok(self.db.generate_id()?)
    }

    /// The time of the newest incoming message in a conversation, only among
    /// messages stored before `mark` if given: the worker uses it to keep a
    /// peer's messages in the order they came.
    ///
    /// Without a mark it looks back at most [`LOOKBACK`] messages (a long run
    /// of our own messages ends the search: it runs for every live message).
    /// With one it searches until it finds one: the answer does not change
    /// while the worker's session lasts, so the worker asks once per peer, and
    /// our own messages typed during an outage easily outnumber the look-back.
    pub fn last_incoming_time(
        &self,
        conversation: &conversation::Id,
        mark: Option<u64>,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let prefix = conversation_prefix_of(conversation);
        let end = prefix_end(&prefix);
        let mut looked = 0;
        for item in self.messages.range(prefix..end).rev() {
            let (key, value) = item?;
            let seq = message_seq(&key);
            // What was stored since the mark does not count towards the
            // look-back: a catch-up after a burst of live messages must still
            // find what came before them.
            if let (Some(mark), Some(seq)) = (mark, seq)
                && seq >= mark
            {
                continue;
            }
            looked += 1;
            if mark.is_none() && looked > LOOKBACK {
                break;
            }
            match Record::decode(&value) {
                Ok(r) if r.direction == Direction::In => return Ok(Some(r.time)),
                Ok(_) => {}
                Err(e) => tracing::warn!("skipping an undecodable history record: {e}"),
            }
        }
        Ok(None)
    }

    /// The account's conversations, most recent first.
    pub fn conversations(&self, account: &str) -> Result<Vec<Conversation>, Error> {
        let prefix = account_prefix(account);
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
    pub fn mark_read(&self, conversation: &conversation::Id) -> Result<(), Error> {
        let key = conversation_key_of(conversation);
        self.conversations.fetch_and_update(&key, |old| {
            let raw = old?;
            let mut conv = Conversation::decode(raw).ok()?;
            conv.unread = 0;
            Some(conv.encode())
        })?;
        Ok(())
    }

    /// The account's unsent drafts, by conversation. An undecodable one is skipped.
    pub fn drafts(&self, account: &str) -> Result<Vec<(conversation::Id, String)>, Error> {
        let mut drafts = Vec::new();
        for item in self.drafts.scan_prefix(account_prefix(account)) {
            let (key, value) = item?;
            let id = keys::parse_conversation_key(&key)
                .and_then(|(account, kind, peer)| conversation::Id::parse(account, kind, peer));
            match (id, String::from_utf8(value.to_vec())) {
                (Some(id), Ok(text)) => drafts.push((id, text)),
                _ => tracing::warn!("skipping an undecodable draft"),
            }
        }
        Ok(drafts)
    }

    /// Keeps `text` as the draft of a conversation; a blank text removes it.
    pub fn set_draft(&self, conversation: &conversation::Id, text: &str) -> Result<(), Error> {
        let key = conversation_key_of(conversation);
        if text.trim().is_empty() {
            self.drafts.remove(key)?;
        } else {
            self.drafts.insert(key, text.as_bytes())?;
        }
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

    /// Writes everything stored so far to disk; blocks until it is there.
    pub fn flush(&self) -> Result<(), Error> {
        self.db.flush()?;
        Ok(())
    }

    /// [`Store::flush`] on tokio's blocking pool, for async callers.
    ///
    /// Not sled's own `flush_async`: in sled 0.34 its future is reported to
    /// be never woken when several databases flush at once (spacejam/sled#1241,
    /// open in the 0.34 line), which is what several accounts' workers, or the
    /// two sides of the tests, do. The blocking flush has no such report;
    /// `tests::concurrent_flushes_of_several_stores_complete` runs that pattern
    /// (it did not hang here with `flush_async` either: the bug needs more cores).
    pub async fn flush_async(&self) -> Result<(), Error> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|e| Error::Sled(sled::Error::Io(std::io::Error::other(e.to_string()))))?
    }
}

/// How far back `last_incoming_time` looks for an incoming message.
pub const LOOKBACK: usize = 256;

/// How long `open` keeps trying a lock that this or another process still holds.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens sled, waiting a bounded time for the file lock.
///
/// Workaround for sled 0.34: dropping a `Db` returns while writes it queued on
/// sled's thread pool (iobuf.rs) still hold the file, and with it the lock, so
/// reopening the same history right after closing it (sign out and in again,
/// a restart in tests) can fail with "could not acquire lock". The lock is free
/// a few milliseconds later. A history held by a running Tern stays locked and
/// is reported as `InUse` after `LOCK_WAIT`.
/// `reopening_right_after_close_waits_for_sleds_lock` proves it.
fn open_db(dir: &Path) -> Result<sled::Db, Error> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(dir)
            .open()
            .map_err(classify_open_error)
        {
            Err(Error::InUse) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
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

    fn chat(account: &str, peer: &str) -> conversation::Id {
        conversation::Id::chat(account.parse().unwrap(), peer.parse().unwrap())
    }
    use chrono::TimeZone;

    fn message(peer: &str, n: i64, direction: Direction) -> NewMessage {
        let (id, body) = (format!("id-{n}"), format!("message {n}"));
        let time = Utc.timestamp_opt(1_700_000_000 + n, 0).unwrap();
        match direction {
            Direction::In => NewMessage::incoming(&chat("me@example.org", peer), id, body, time),
            Direction::Out => NewMessage::outgoing(&chat("me@example.org", peer), id, body, time),
        }
    }

    #[test]
    fn room_cursors_are_kept_per_room_and_go_with_their_account() {
        let tmp = tempfile::tempdir().unwrap();
        let room = |account: &str, room: &str| {
            conversation::Id::room(account.parse().unwrap(), room.parse().unwrap())
        };
        let lounge = room("me@example.org", "lounge@muc.example.org");
        let team = room("me@example.org", "team@muc.example.org");
        let theirs = room("other@example.org", "lounge@muc.example.org");
        {
            let store = Store::open(tmp.path()).unwrap();
            assert_eq!(store.room_cursor(&lounge).unwrap(), None);
            store.set_room_cursor(&lounge, "r-1").unwrap();
            store.set_room_cursor(&lounge, "r-2").unwrap();
            store.set_room_cursor(&team, "t-1").unwrap();
            store.set_room_cursor(&theirs, "o-1").unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.room_cursor(&lounge).unwrap().as_deref(), Some("r-2"));
        assert_eq!(store.room_cursor(&team).unwrap().as_deref(), Some("t-1"));
        store.clear_room_cursor(&team).unwrap();
        assert_eq!(store.room_cursor(&team).unwrap(), None);
        store.delete_account("me@example.org").unwrap();
        assert_eq!(store.room_cursor(&lounge).unwrap(), None);
        assert_eq!(
            store.room_cursor(&theirs).unwrap().as_deref(),
            Some("o-1"),
            "another account's room keeps its position"
        );
    }

    #[test]
    fn drafts_are_kept_per_conversation_and_survive_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = Store::open(tmp.path()).unwrap();
            assert!(store.drafts("me@example.org").unwrap().is_empty());
            store
                .set_draft(&chat("me@example.org", "bob@example.org"), "see you at\n7")
                .unwrap();
            store
                .set_draft(&chat("me@example.org", "carol@example.org"), "hi")
                .unwrap();
            store
                .set_draft(&chat("other@example.org", "bob@example.org"), "x")
                .unwrap();
            // Sent or cleared: a blank draft is removed.
            store
                .set_draft(&chat("me@example.org", "carol@example.org"), " \n")
                .unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(
            store.drafts("me@example.org").unwrap(),
            vec![(
                chat("me@example.org", "bob@example.org"),
                "see you at\n7".to_string()
            )]
        );
        assert_eq!(store.drafts("other@example.org").unwrap().len(), 1);
        // The layout did not change: drafts are an addition within version 2.
        assert_eq!(
            store.meta.get("layout").unwrap().unwrap().as_ref(),
            LAYOUT_VERSION.to_be_bytes()
        );
    }

    /// A copy of a committed fixture directory, since opening a store writes to it.
    fn fixture(name: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
            }
        }
        tmp
    }

    /// `tests/fixtures/store-v2` was written by the last layout-2 build: two
    /// accounts; bob's chat with every delivery state (one pending, in the
    /// outbox), archive ids, an attachment, an OMEMO fallback and a sent
    /// carbon; carol's with two different messages reusing the id "1" and a
    /// draft; an archive cursor for alice and a start time for the other.
    #[test]
    fn layout_2_history_opens_as_layout_3() {
        let dir = fixture("store-v2");
        let store = Store::open(dir.path()).unwrap();
        let (alice, bob, carol) = ("alice@example.org", "bob@example.org", "carol@example.net");
        let page = store.page(&chat(alice, bob), None, 50).unwrap();
        let summary: Vec<_> = page
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.direction, r.state, r.kind))
            .collect();
        use Delivery::*;
        use Direction::*;
        let k = conversation::Kind::Chat;
        assert_eq!(
            summary,
            vec![
                ("b-1", In, Received, k),
                ("o-1", Out, Delivered, k),
                ("o-2", Out, Failed, k),
                ("o-3", Out, Pending, k),
                ("b-2", In, Received, k),
                ("phone-1", Out, Sent, k),
            ]
        );
        let [b1, o1, o2, o3, b2, phone] = &page.records[..] else {
            panic!("six records");
        };
        assert_eq!(b1.body, "hi Alice, 世界");
        assert_eq!(b1.sender, Sender::jid(bob));
        assert_eq!(
            (b1.stanza_id.as_deref(), b1.origin_id.as_deref()),
            (None, None)
        );
        assert_eq!(o1.sender, Sender::jid(alice));
        assert_eq!(o1.stanza_id.as_deref(), Some("o-1"));
        assert_eq!(o1.origin_id.as_deref(), Some("o-1"));
        assert_eq!(o2.error.as_deref(), Some("service-unavailable"));
        assert!(o3.attachment);
        assert_eq!(b2.encryption, Some(Encryption::Omemo));
        assert!(phone.other_device);
        assert_eq!(phone.stanza_id, None, "another device's ids are not known");
        assert!(page.records.iter().all(|r| r.relation.is_none()));
        // The outbox and the id index came along: the pending one is still
        // to send, and copies are still recognised, by id and by archive id.
        let outbox: Vec<_> = store
            .outbox(alice)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(outbox, vec!["o-3"]);
        let copy =
            NewMessage::incoming(&chat(alice, bob), "b-1".into(), b1.body.clone(), Utc::now());
        assert!(store.insert(copy).unwrap().is_none());
        let mut by_archive =
            NewMessage::incoming(&chat(alice, bob), "x".into(), "x".into(), Utc::now());
        by_archive.archive_id = Some("arch-3".into());
        assert!(store.insert(by_archive).unwrap().is_none());
        assert_eq!(
            store
                .set_state(&chat(alice, bob), "o-3", Sent, None)
                .unwrap()
                .unwrap()
                .state,
            Sent
        );
        // Both messages reusing "1" are there; a copy of the second is known.
        let carols: Vec<_> = store
            .page(&chat(alice, carol), None, 50)
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.body)
            .collect();
        assert_eq!(carols, vec!["first", "second"]);
        let copy =
            NewMessage::incoming(&chat(alice, carol), "1".into(), "second".into(), Utc::now());
        assert!(store.insert(copy).unwrap().is_none());
        // Conversations, drafts and archive positions, for both accounts.
        let conversations = store.conversations(alice).unwrap();
        let ids: Vec<_> = conversations.iter().map(|c| c.id().unwrap()).collect();
        assert_eq!(ids, vec![chat(alice, carol), chat(alice, bob)]);
        assert_eq!(conversations[0].unread, 2);
        assert_eq!(conversations[1].unread, 1, "only the OMEMO one was news");
        assert_eq!(
            store.drafts(alice).unwrap(),
            vec![(chat(alice, carol), "see you at\n7".to_string())]
        );
        assert_eq!(
            store.archive_position(alice).unwrap(),
            Some(ArchivePosition::After("arch-3".into()))
        );
        let work = "work@corp.example";
        assert!(matches!(
            store.archive_position(work).unwrap(),
            Some(ArchivePosition::Since(_))
        ));
        let boss = store
            .page(&chat(work, "boss@corp.example"), None, 50)
            .unwrap();
        assert_eq!(boss.records[0].body, "meeting at 10");
        // The old trees are gone, and reopening does not migrate again.
        assert!(
            !store
                .db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() == b"messages")
        );
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .page(&chat(alice, bob), None, 50)
                .unwrap()
                .records
                .len(),
            6
        );
        assert_eq!(
            store.meta.get("layout").unwrap().unwrap().as_ref(),
            3u32.to_be_bytes()
        );
    }

    /// Removing an account deletes all it had, and nothing of another
    /// account, even one whose address starts with the same letters.
    #[test]
    fn deleting_an_account_leaves_the_others() {
        let dir = fixture("store-v2");
        let store = Store::open(dir.path()).unwrap();
        let alice = "alice@example.org";
        let lookalike = NewMessage::incoming(
            &chat("alice@example.org.evil", "bob@example.org"),
            "x".into(),
            "not alice's".into(),
            Utc::now(),
        );
        store.insert(lookalike).unwrap();
        assert_eq!(store.delete_account(alice).unwrap(), 8);
        assert!(store.conversations(alice).unwrap().is_empty());
        assert!(store.drafts(alice).unwrap().is_empty());
        assert!(store.outbox(alice).unwrap().is_empty());
        assert_eq!(store.archive_position(alice).unwrap(), None);
        assert!(
            store
                .page(&chat(alice, "bob@example.org"), None, 50)
                .unwrap()
                .records
                .is_empty()
        );
        // An archive id it had is new again (a later catch-up may bring it).
        let mut again = NewMessage::incoming(
            &chat(alice, "bob@example.org"),
            "n".into(),
            "n".into(),
            Utc::now(),
        );
        again.archive_id = Some("arch-1".into());
        assert!(store.insert(again).unwrap().is_some());
        let work = "work@corp.example";
        assert_eq!(
            store
                .page(&chat(work, "boss@corp.example"), None, 50)
                .unwrap()
                .records
                .len(),
            1
        );
        assert!(store.archive_position(work).unwrap().is_some());
        assert_eq!(
            store.conversations("alice@example.org.evil").unwrap().len(),
            1
        );
    }

    /// A migration interrupted after writing some of layout 3 (or after
    /// setting it, before dropping the old trees) is finished on the next open.
    #[test]
    fn an_interrupted_migration_is_finished_on_the_next_open() {
        let dir = fixture("store-v2");
        {
            // Half a layout-3 write: a stray record in the new tree.
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("3:messages")
                .unwrap()
                .insert(b"stray", b"{}")
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.all(None).count(), 9, "the stray record was cleared");
        assert!(store.all(None).all(|r| r.is_ok()));
        drop(store);
        std::thread::sleep(Duration::from_millis(50));
        {
            // Layout 3 set, old trees still there.
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("messages")
                .unwrap()
                .insert(b"old", b"{}")
                .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert!(
            !store
                .db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() == b"messages")
        );
        assert_eq!(store.all(None).count(), 9);
    }

    #[test]
    fn layout_1_history_is_migrated_on_open() {
        let dir = fixture("store-v1");
        let store = Store::open(dir.path()).unwrap();
        let page = store
            .page(&chat("alice@example.org", "bob@example.org"), None, 50)
            .unwrap();
        let states: Vec<_> = page
            .records
            .iter()
            .map(|r| (r.direction, r.state))
            .collect();
        assert_eq!(page.records.len(), 5);
        assert_eq!(page.records[0].body, "layout 1 message 0");
        assert_eq!(states[0], (Direction::In, Delivery::Received));
        assert_eq!(states[1], (Direction::Out, Delivery::Sent));
        // The id index was built: a redelivered copy is recognised.
        let copy = NewMessage::incoming(
            &chat("alice@example.org", "bob@example.org"),
            "v1-0".into(),
            "layout 1 message 0".into(),
            Utc::now(),
        );
        assert!(store.insert(copy).unwrap().is_none());
        assert!(store.outbox("alice@example.org").unwrap().is_empty());
        drop(store);
        // Reopening does not migrate again, and the layout is now the current one.
        let store = Store::open(dir.path()).unwrap();
        let raw = store.meta.get("layout").unwrap().unwrap();
        assert_eq!(
            u32::from_be_bytes(raw.as_ref().try_into().unwrap()),
            LAYOUT_VERSION
        );
    }

    #[test]
    fn copies_are_dropped_by_id_and_by_archive_id() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let first = store
            .insert(message("bob@example.org", 1, Direction::In))
            .unwrap();
        assert!(first.is_some());
        assert!(
            store
                .insert(message("bob@example.org", 1, Direction::In))
                .unwrap()
                .is_none()
        );
        // The same id from another peer is another message.
        assert!(
            store
                .insert(message("carol@example.org", 1, Direction::In))
                .unwrap()
                .is_some()
        );
        // An archive copy of the live message adds its archive id...
        let mut archived = message("bob@example.org", 1, Direction::In);
        archived.archive_id = Some("A1".into());
        assert!(store.insert(archived).unwrap().is_none());
        let page = store
            .page(&chat("me@example.org", "bob@example.org"), None, 50)
            .unwrap();
        assert_eq!(page.records[0].archive_id.as_deref(), Some("A1"));
        // ...and a copy that only shares the archive id is recognised too.
        let mut other_id = message("bob@example.org", 2, Direction::In);
        other_id.archive_id = Some("A1".into());
        assert!(store.insert(other_id).unwrap().is_none());
        assert_eq!(store.all(None).count(), 2);
        assert_eq!(store.conversations("me@example.org").unwrap()[1].unread, 1);
    }

    #[test]
    fn delivery_states_move_forward_and_drive_the_outbox() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        for n in 0..3 {
            store
                .insert(message("bob@example.org", n, Direction::Out))
                .unwrap();
        }
        let outbox: Vec<_> = store
            .outbox("me@example.org")
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(outbox, vec!["id-0", "id-1", "id-2"]);
        let set = |id: &str, state| {
            store
                .set_state(&chat("me@example.org", "bob@example.org"), id, state, None)
                .unwrap()
        };
        assert_eq!(set("id-0", Delivery::Sent).unwrap().state, Delivery::Sent);
        assert_eq!(
            set("id-1", Delivery::Delivered).unwrap().state,
            Delivery::Delivered
        );
        assert!(set("id-1", Delivery::Sent).is_none(), "never backwards");
        let failed = store
            .set_state(
                &chat("me@example.org", "bob@example.org"),
                "id-2",
                Delivery::Failed,
                Some("item-not-found".into()),
            )
            .unwrap()
            .unwrap();
        assert_eq!(failed.error.as_deref(), Some("item-not-found"));
        assert!(store.outbox("me@example.org").unwrap().is_empty());
        // Retry puts it back in the outbox, without the old error.
        let retried = set("id-2", Delivery::Pending).unwrap();
        assert_eq!(retried.error, None);
        assert_eq!(store.outbox("me@example.org").unwrap().len(), 1);
        assert!(set("unknown", Delivery::Sent).is_none());
        // States survive a restart.
        drop(store);
        let store = Store::open(tmp.path()).unwrap();
        let page = store
            .page(&chat("me@example.org", "bob@example.org"), None, 50)
            .unwrap();
        let states: Vec<_> = page.records.iter().map(|r| r.state).collect();
        assert_eq!(
            states,
            vec![Delivery::Sent, Delivery::Delivered, Delivery::Pending]
        );
        assert_eq!(store.outbox("me@example.org").unwrap().len(), 1);
    }

    /// Ids are reused (restarting counters, constant or empty ids, a contact
    /// sending our own id back): a different message with a known id is kept;
    /// a copy (same id, direction and body) is still dropped.
    #[test]
    fn different_messages_with_the_same_id_are_all_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let t0 = Utc::now();
        let incoming = |id: &str, body: &str, n: i64| {
            NewMessage::incoming(
                &chat("me@x", "bob@x"),
                id.into(),
                body.into(),
                t0 + chrono::Duration::seconds(n),
            )
        };
        assert!(store.insert(incoming("1", "first", 0)).unwrap().is_some());
        assert!(
            store.insert(incoming("1", "second", 1)).unwrap().is_some(),
            "a restarted counter"
        );
        assert!(store.insert(incoming("1", "third", 2)).unwrap().is_some());
        assert!(
            store
                .insert(incoming("12", "longer id", 3))
                .unwrap()
                .is_some()
        );
        // Copies of each, from the archive or a carbon, are still copies.
        for body in ["first", "second", "third"] {
            assert!(
                store.insert(incoming("1", body, 9)).unwrap().is_none(),
                "{body}"
            );
        }
        let mut archived = incoming("1", "second", 9);
        archived.archive_id = Some("arch-2".into());
        assert!(store.insert(archived).unwrap().is_none());
        let mut archived_again = incoming("1", "second", 9);
        archived_again.archive_id = Some("arch-2".into());
        assert!(store.insert(archived_again).unwrap().is_none());
        // The archive id went to the copy it belongs to.
        let page = store.page(&chat("me@x", "bob@x"), None, 50).unwrap();
        let bodies: Vec<_> = page.records.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(bodies, ["first", "second", "third", "longer id"]);
        let second = page.records.iter().find(|r| r.body == "second").unwrap();
        assert_eq!(second.archive_id.as_deref(), Some("arch-2"));

        // Bob sends one of our own ids back: his message is kept, and our
        // message's receipts still find ours.
        let ours = NewMessage::outgoing(&chat("me@x", "bob@x"), "u-1".into(), "mine".into(), t0);
        store.insert(ours).unwrap().unwrap();
        assert!(store.insert(incoming("u-1", "mine", 10)).unwrap().is_some());
        let delivered = store
            .set_state(&chat("me@x", "bob@x"), "u-1", Delivery::Delivered, None)
            .unwrap()
            .unwrap();
        assert_eq!(delivered.direction, Direction::Out);
        drop(store);
        // Still so after reopening.
        let store = Store::open(tmp.path()).unwrap();
        assert!(store.insert(incoming("1", "fourth", 11)).unwrap().is_some());
        assert!(store.insert(incoming("1", "third", 12)).unwrap().is_none());
        assert_eq!(
            store
                .page(&chat("me@x", "bob@x"), None, 50)
                .unwrap()
                .records
                .len(),
            7
        );
    }

    #[test]
    fn archive_position_round_trips_per_account() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.archive_position("a@x").unwrap(), None);
        // A first sign-in that found the archive empty.
        let t = DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        store.set_archive_since("a@x", t).unwrap();
        assert_eq!(
            store.archive_position("a@x").unwrap(),
            Some(ArchivePosition::Since(t))
        );
        // An archive id, once stored, takes the time's place.
        store.set_archive_cursor("a@x", "id-9").unwrap();
        assert_eq!(
            store.archive_position("a@x").unwrap(),
            Some(ArchivePosition::After("id-9".into()))
        );
        assert_eq!(store.archive_position("b@x").unwrap(), None);
        drop(store);
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(
            store.archive_position("a@x").unwrap(),
            Some(ArchivePosition::After("id-9".into()))
        );
        store.clear_archive_cursor("a@x").unwrap();
        assert_eq!(store.archive_position("a@x").unwrap(), None);
        store.set_archive_since("a@x", t).unwrap();
        store.clear_archive_cursor("a@x").unwrap();
        assert_eq!(store.archive_position("a@x").unwrap(), None);
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
                .page(
                    &chat("me@example.org", "bob@example.org"),
                    cursor.as_ref(),
                    50,
                )
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
            .mark_read(&chat("me@example.org", "bob@example.org"))
            .unwrap();
        assert_eq!(store.conversations("me@example.org").unwrap()[1].unread, 0);
        assert!(store.conversations("other@example.org").unwrap().is_empty());
    }

    /// Two workers (two accounts, or the two sides in the tests) flush their
    /// own stores at the same moment, over and over: every flush must finish.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_flushes_of_several_stores_complete() {
        let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let stores: Vec<_> = dirs
            .iter()
            .map(|d| Store::open(d.path()).unwrap())
            .collect();
        let tasks = stores.into_iter().enumerate().map(|(s, store)| {
            tokio::spawn(async move {
                for n in 0..200 {
                    store
                        .insert(message(&format!("peer{s}@example.org"), n, Direction::In))
                        .unwrap();
                    store.flush_async().await.unwrap();
                }
            })
        });
        let all = futures::future::join_all(tasks);
        let done = tokio::time::timeout(std::time::Duration::from_secs(60), all).await;
        assert!(done.is_ok(), "a flush never finished");
        for result in done.unwrap() {
            result.unwrap();
        }
    }

    #[test]
    fn a_live_message_moves_after_what_the_archive_lists_before_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let old = store
            .insert(message("bob@example.org", 1, Direction::In))
            .unwrap()
            .unwrap();
        let mark = store.mark().unwrap();
        let live = store
            .insert(message("bob@example.org", 2, Direction::In))
            .unwrap()
            .unwrap();
        let late = old.time + chrono::Duration::seconds(5);
        // Stored before this session's mark: never moved.
        assert!(
            store
                .move_after(
                    &chat("me@example.org", "bob@example.org"),
                    &old.id,
                    late,
                    mark
                )
                .unwrap()
                .is_none()
        );
        // Already after: not moved.
        let (_, moved) = store
            .move_after(
                &chat("me@example.org", "bob@example.org"),
                &live.id,
                old.time,
                mark,
            )
            .unwrap()
            .unwrap();
        assert!(!moved);
        let archived = NewMessage {
            archive_id: Some("a-3".into()),
            ..message("bob@example.org", 3, Direction::In)
        };
        let archived = store.insert(archived).unwrap().unwrap();
        let moved = store
            .move_after(
                &chat("me@example.org", "bob@example.org"),
                &live.id,
                archived.time + chrono::Duration::microseconds(1),
                mark,
            )
            .unwrap()
            .expect("found");
        assert!(moved.1);
        let moved = moved.0;
        let ids: Vec<String> = store
            .page(&chat("me@example.org", "bob@example.org"), None, 10)
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(
            ids,
            vec![old.id.clone(), archived.id.clone(), live.id.clone()]
        );
        // Still found by id afterwards (a copy is still a copy; states still change).
        assert!(
            store
                .insert(message("bob@example.org", 2, Direction::In))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            moved.time,
            archived.time + chrono::Duration::microseconds(1)
        );
        let out = store
            .insert(message("bob@example.org", 4, Direction::Out))
            .unwrap()
            .unwrap();
        assert!(
            store
                .move_after(
                    &chat("me@example.org", "bob@example.org"),
                    &out.id,
                    late,
                    mark
                )
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn history_survives_reopen_and_profile_lock_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let store = Store::open(tmp.path()).unwrap();
            store
                .insert(message("bob@example.org", 1, Direction::Out))
                .unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(tmp.path()).unwrap();
        let page = store
            .page(&chat("me@example.org", "bob@example.org"), None, 50)
            .unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0].direction, Direction::Out);
        assert!(page.older.is_none());
        assert!(matches!(Store::open(tmp.path()), Err(Error::InUse)));
    }

    #[test]
    fn reopening_right_after_close_waits_for_sleds_lock() {
        let tmp = tempfile::tempdir().unwrap();
        // Deterministic stand-in for sled's late release: the lock is held a
        // little longer than the open call starts, then let go.
        let held = Store::open(tmp.path()).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let store = Store::open(tmp.path()).unwrap();
        releaser.join().unwrap();
        drop(store);
        // And the real thing, many times over: close with writes queued, reopen.
        for n in 0..50 {
            let store = Store::open(tmp.path()).unwrap();
            store
                .insert(message("bob@example.org", n, Direction::In))
                .unwrap();
        }
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.all(None).count(), 50);
    }

    #[test]
    fn last_incoming_time_skips_our_messages_and_what_came_after_the_mark() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let bob = "bob@example.org";
        assert_eq!(
            store
                .last_incoming_time(&chat("me@example.org", bob), None)
                .unwrap(),
            None
        );
        store.insert(message(bob, 1, Direction::In)).unwrap();
        store.insert(message(bob, 3, Direction::In)).unwrap();
        let mark = store.mark().unwrap();
        // Stored after the mark, though older in time, and newer in time.
        store.insert(message(bob, 2, Direction::In)).unwrap();
        store.insert(message(bob, 4, Direction::In)).unwrap();
        store.insert(message(bob, 5, Direction::Out)).unwrap();
        store
            .insert(message("carol@example.org", 6, Direction::In))
            .unwrap();
        let time = |n: i64| Utc.timestamp_opt(1_700_000_000 + n, 0).unwrap();
        assert_eq!(
            store
                .last_incoming_time(&chat("me@example.org", bob), None)
                .unwrap(),
            Some(time(4))
        );
        assert_eq!(
            store
                .last_incoming_time(&chat("me@example.org", bob), Some(mark))
                .unwrap(),
            Some(time(3))
        );
        // A burst stored since the mark, longer than the look-back, does not
        // hide what came before it (a catch-up after many live messages)…
        for n in 0..(LOOKBACK as i64 + 10) {
            store.insert(message(bob, 100 + n, Direction::In)).unwrap();
        }
        assert_eq!(
            store
                .last_incoming_time(&chat("me@example.org", bob), Some(mark))
                .unwrap(),
            Some(time(3))
        );
        // …nor do more of our own messages than the look-back, stored before
        // the mark (typed during an outage) and newer than the last incoming.
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        store.insert(message(bob, 1, Direction::In)).unwrap();
        for n in 0..(LOOKBACK as i64 + 10) {
            store.insert(message(bob, 10 + n, Direction::Out)).unwrap();
        }
        let mark = store.mark().unwrap();
        assert_eq!(
            store
                .last_incoming_time(&chat("me@example.org", bob), Some(mark))
                .unwrap(),
            Some(time(1))
        );
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
            db.open_tree("messages").unwrap().insert("k", "v").unwrap();
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
            .page(&chat("me@example.org", "bob@example.org"), None, 50)
            .unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(store.all(Some("bob@example.orgx")).count(), 1);
        assert_eq!(store.all(None).count(), 2);
    }

    #[test]
    fn a_cleared_store_is_as_new() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let time = Utc::now();
        store
            .insert(NewMessage::incoming(
                &chat("me@example.org", "bob@example.org"),
                "m1".into(),
                "hello".into(),
                time,
            ))
            .unwrap();
        store.set_archive_cursor("me@example.org", "a-1").unwrap();
        store.clear().unwrap();
        assert!(store.conversations("me@example.org").unwrap().is_empty());
        assert_eq!(store.archive_position("me@example.org").unwrap(), None);
        drop(store);
        // Still a history of the current layout.
        let store = Store::open(dir.path()).unwrap();
        assert!(store.conversations("me@example.org").unwrap().is_empty());
    }

    #[test]
    fn previews_are_one_short_line() {
        assert_eq!(preview("a\nb"), "a b");
        let long = "x".repeat(500);
        assert_eq!(preview(&long).chars().count(), 121);
    }
}
