//! How the store's keys are built from accounts, conversations and ids (layout 3).
//!
//! JIDs cannot contain NUL (RFC 7622), so `\0` separates key parts unambiguously.

use crate::conversation::{self, Kind};

/// The name of a conversation kind inside keys.
fn kind_name(kind: Kind) -> &'static [u8] {
    match kind {
        Kind::Chat => b"chat",
        Kind::Room => b"room",
        Kind::Private => b"private",
    }
}

fn kind_named(name: &[u8]) -> Option<Kind> {
    [Kind::Chat, Kind::Room, Kind::Private]
        .into_iter()
        .find(|k| kind_name(*k) == name)
}

/// The start of every key of one account's entries (`account \0`).
pub fn account_prefix(account: &str) -> Vec<u8> {
    let mut prefix = account.as_bytes().to_vec();
    prefix.push(0);
    prefix
}

/// `account \0 kind \0 peer`: a conversation's entry in `conversations` and `drafts`.
pub fn conversation_key(account: &str, kind: Kind, peer: &str) -> Vec<u8> {
    let mut key = account_prefix(account);
    key.extend_from_slice(kind_name(kind));
    key.push(0);
    key.extend_from_slice(peer.as_bytes());
    key
}

pub fn conversation_key_of(id: &conversation::Id) -> Vec<u8> {
    conversation_key(id.account().as_str(), id.kind(), &id.peer().to_string())
}

/// The conversation a `conversation_key` names: account, kind and peer.
pub fn parse_conversation_key(key: &[u8]) -> Option<(&str, Kind, &str)> {
    let mut parts = key.splitn(3, |b| *b == 0);
    let account = std::str::from_utf8(parts.next()?).ok()?;
    let kind = kind_named(parts.next()?)?;
    let peer = std::str::from_utf8(parts.next()?).ok()?;
    Some((account, kind, peer))
}

/// The start of every message key of a conversation (`conversation_key \0`).
pub fn conversation_prefix_of(id: &conversation::Id) -> Vec<u8> {
    let mut key = conversation_key_of(id);
    key.push(0);
    key
}

/// A message's key: its conversation, then time and a sequence number, so
/// that keys sort by conversation, then time.
pub fn message_key(prefix: &[u8], time_us: u64, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 16);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&time_us.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The sequence number at the end of a message key.
pub fn message_seq(key: &[u8]) -> Option<u64> {
    key.len()
        .checked_sub(8)
        .and_then(|at| <[u8; 8]>::try_from(&key[at..]).ok())
        .map(u64::from_be_bytes)
}

/// `conversation_prefix id`: the `ids` entry of a message id.
pub fn id_key(prefix: &[u8], id: &str) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// `account \0 archive \0 archive id`: an archive id in `archive`, where
/// `archive` is whose archive gave it (the account's own, or a room's).
pub fn archive_key(account: &str, archive: &str, archive_id: &str) -> Vec<u8> {
    let mut key = account_prefix(account);
    key.extend_from_slice(archive.as_bytes());
    key.push(0);
    key.extend_from_slice(archive_id.as_bytes());
    key
}

/// Whose archive holds a conversation's messages: the room's for a room, the
/// account's own for everything else (private messages in a room too: the
/// server archives them for the account).
pub fn archive_of<'a>(account: &'a str, kind: Kind, peer: &'a str) -> &'a str {
    match kind {
        Kind::Room => peer,
        Kind::Chat | Kind::Private => account,
    }
}

/// Added within layout 2: a build without it sees no position and fetches a
/// first sign-in's window again, losing nothing.
pub fn meta_since_key(account: &str) -> Vec<u8> {
    let mut key = b"archive-since\0".to_vec();
    key.extend_from_slice(account.as_bytes());
    key
}

/// Added within layout 3: where the catch-up from one room's own archive
/// resumes. A build without it sees none and joins with the room's bounded
/// history instead, losing nothing it had.
pub fn meta_room_cursor_key(account: &str, room: &str) -> Vec<u8> {
    let mut key = meta_room_cursor_prefix(account);
    key.extend_from_slice(room.as_bytes());
    key
}

pub fn meta_room_cursor_prefix(account: &str) -> Vec<u8> {
    let mut key = b"room-archive-cursor\0".to_vec();
    key.extend_from_slice(account.as_bytes());
    key.push(0);
    key
}

pub fn meta_cursor_key(account: &str) -> Vec<u8> {
    let mut key = b"archive-cursor\0".to_vec();
    key.extend_from_slice(account.as_bytes());
    key
}

/// The smallest key greater than every key starting with `prefix` (which ends in `\0`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last = 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_keys_parse_back_and_kinds_do_not_mix() {
        let chat = conversation_key("a@x", Kind::Chat, "b@x");
        assert_eq!(
            parse_conversation_key(&chat),
            Some(("a@x", Kind::Chat, "b@x"))
        );
        let pm = conversation_key("a@x", Kind::Private, "den@rooms.x/Bob ?");
        assert_eq!(
            parse_conversation_key(&pm),
            Some(("a@x", Kind::Private, "den@rooms.x/Bob ?"))
        );
        assert!(!conversation_key("a@x", Kind::Room, "b@x").starts_with(&chat));
        assert_eq!(parse_conversation_key(b"a@x\0mystery\0b@x"), None);
        let key = message_key(&conversation_key("a@x", Kind::Chat, "b@x"), 7, 42);
        assert_eq!(message_seq(&key), Some(42));
    }
}
