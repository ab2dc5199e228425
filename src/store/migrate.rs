//! Migrations of older layouts to the current one, a version at a time.
//!
//! Each step is safe to interrupt: a crash midway repeats it on the next
//! open. Layout 3 changed every key, so it is written into trees of its own
//! and the old ones are dropped only once the layout number says 3.

use sled::Db;

use super::keys;
use super::record::{Conversation, Delivery, Direction, Record, Sender};
use super::{Error, Store};
use crate::conversation::Kind;

/// The trees of layouts 1 and 2 (layout 1 had only the first two).
const OLD_TREES: [&str; 6] = [
    "messages",
    "conversations",
    "ids",
    "archive",
    "outbox",
    "drafts",
];

/// Layout 1 → 2: give every record a delivery state and index its id.
pub fn layout_1_to_2(db: &Db) -> Result<(), Error> {
    let messages = db.open_tree("messages")?;
    let ids = db.open_tree("ids")?;
    let mut migrated = 0u64;
    for item in messages.iter() {
        let (key, value) = item?;
        let Ok(mut record) = Record::decode(&value) else {
            tracing::warn!("layout 1 → 2: skipping an undecodable record");
            continue;
        };
        // Layout 1 knew nothing about delivery: what it sent, it handed to the server.
        record.state = match record.direction {
            Direction::In => Delivery::Received,
            Direction::Out => Delivery::Sent,
        };
        messages.insert(&key, record.encode())?;
        // Layout 2's id key: the message key's conversation prefix, then the id.
        if let Some(prefix_len) = key.len().checked_sub(16) {
            let mut id_key = key[..prefix_len].to_vec();
            id_key.extend_from_slice(record.id.as_bytes());
            ids.insert(id_key, &key)?;
        }
        migrated += 1;
    }
    set_layout(db, 2)?;
    tracing::info!("history migrated from layout 1 to 2 ({migrated} messages)");
    Ok(())
}

/// Layout 2 → 3: the conversation kind joins every key, archive ids are
/// keyed by whose archive gave them, and records gain their sender and ids.
pub fn layout_2_to_3(db: &Db, store: &Store) -> Result<(), Error> {
    // What an interrupted run left behind is written again from the start.
    store.clear_trees()?;
    let old = |name| db.open_tree(name);
    let mut migrated = 0u64;
    for item in old("messages")?.iter() {
        let (key, value) = item?;
        let (Some(new_key), Ok(record)) = (rekey(&key), Record::decode(&value)) else {
            tracing::warn!("layout 2 → 3: skipping an undecodable record");
            continue;
        };
        store.messages.insert(new_key, upgrade(record).encode())?;
        migrated += 1;
    }
    for item in old("ids")?.iter() {
        let (key, value) = item?;
        if let (Some(key), Some(value)) = (rekey(&key), rekey(&value)) {
            store.ids.insert(key, value)?;
        }
    }
    for item in old("archive")?.iter() {
        let (key, value) = item?;
        // Layout 2 knew only the account's own archive: `account \0 archive id`.
        let mut parts = key.splitn(2, |b| *b == 0);
        let (Some(account), Some(archive_id), Some(value)) =
            (parts.next(), parts.next(), rekey(&value))
        else {
            continue;
        };
        let (Ok(account), Ok(archive_id)) = (
            std::str::from_utf8(account),
            std::str::from_utf8(archive_id),
        ) else {
            continue;
        };
        store
            .archive
            .insert(keys::archive_key(account, account, archive_id), value)?;
    }
    for item in old("outbox")?.iter() {
        let (key, _) = item?;
        if let Some(key) = rekey(&key) {
            store.outbox.insert(key, &[])?;
        }
    }
    for item in old("conversations")?.iter() {
        let (key, value) = item?;
        let (Some(new_key), Ok(mut conv)) = (rekey(&key), Conversation::decode(&value)) else {
            continue;
        };
        if let Some((account, _, _)) = keys::parse_conversation_key(&new_key) {
            conv.account = account.to_string();
        }
        conv.kind = Kind::Chat;
        store.conversations.insert(new_key, conv.encode())?;
    }
    for item in old("drafts")?.iter() {
        let (key, value) = item?;
        if let Some(key) = rekey(&key) {
            store.drafts.insert(key, value)?;
        }
    }
    set_layout(db, 3)?;
    drop_old_trees(db)?;
    tracing::info!("history migrated from layout 2 to 3 ({migrated} messages)");
    Ok(())
}

/// Drops the trees of layouts 1 and 2 (left behind when a migration was
/// interrupted after it set the new layout).
pub fn drop_old_trees(db: &Db) -> Result<(), Error> {
    for name in OLD_TREES {
        if db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == name.as_bytes())
        {
            db.drop_tree(name)?;
        }
    }
    Ok(())
}

pub fn set_layout(db: &Db, version: u32) -> Result<(), Error> {
    db.open_tree("meta")?
        .insert("layout", &version.to_be_bytes())?;
    db.flush()?;
    Ok(())
}

/// A layout-2 key (`account \0 peer`, optionally followed by `\0 rest`) as
/// the key of the same chat in layout 3 (`account \0 chat \0 peer …`).
fn rekey(old: &[u8]) -> Option<Vec<u8>> {
    let first = old.iter().position(|b| *b == 0)?;
    let (account, rest) = (&old[..first], &old[first + 1..]);
    let peer_end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    let (account, peer) = (
        std::str::from_utf8(account).ok()?,
        std::str::from_utf8(&rest[..peer_end]).ok()?,
    );
    let mut key = keys::conversation_key(account, Kind::Chat, peer);
    key.extend_from_slice(&rest[peer_end..]);
    Some(key)
}

/// A layout-2 record as layout 3 keeps it. Layout 2 kept one id per message
/// (the origin-id, else the stanza id): for what this Tern sent, both were
/// that id; for anything else, which one it was is not known, so neither
/// is claimed.
fn upgrade(mut record: Record) -> Record {
    record.kind = Kind::Chat;
    record.sender = Sender::jid(match record.direction {
        Direction::In => &record.peer,
        Direction::Out => &record.account,
    });
    if record.direction == Direction::Out && !record.other_device {
        record.stanza_id = Some(record.id.clone());
        record.origin_id = Some(record.id.clone());
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_2_keys_become_chat_keys_with_their_tails() {
        let mut old = b"a@x\0b@x\0".to_vec();
        old.extend_from_slice(&[0, 0, 0, 7, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        let new = rekey(&old).unwrap();
        assert!(new.starts_with(b"a@x\0chat\0b@x\0"));
        assert_eq!(keys::message_seq(&new), Some(9));
        assert_eq!(rekey(b"a@x\0b@x").unwrap(), b"a@x\0chat\0b@x");
        assert_eq!(
            rekey(b"a@x\0b@x\0id-1\x001").unwrap(),
            b"a@x\0chat\0b@x\0id-1\x001"
        );
        assert_eq!(rekey(b"no separator"), None);
    }
}
