//! `tern export`: the stored history as JSON lines on standard output.

use std::io::Write;

use serde::Serialize;

use crate::conversation::Kind;
use crate::store::{self, Delivery, Direction, Record};

/// One line of the export.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    pub account: &'a str,
    pub peer: &'a str,
    /// chat, room or private (a private message in a room).
    pub kind: Kind,
    pub direction: Direction,
    pub body: &'a str,
    /// RFC 3339, UTC.
    pub time: String,
    pub id: &'a str,
    /// pending, sent, delivered, failed (outgoing) or received (incoming).
    pub state: Delivery,
    /// For a message Tern could not read: how it was encrypted (`body` is
    /// then the sender's fallback text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<store::Encryption>,
}

impl<'a> From<&'a Record> for Line<'a> {
    fn from(r: &'a Record) -> Self {
        Line {
            account: &r.account,
            peer: &r.peer,
            kind: r.kind,
            direction: r.direction,
            body: &r.body,
            time: r.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            id: &r.id,
            state: r.state,
            encryption: r.encryption,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
}

/// Writes every stored message (of one account's and of `peer`'s
/// conversations, when given) as one JSON object per line.
pub fn write(
    store: &store::Store,
    account: Option<&str>,
    peer: Option<&str>,
    out: &mut impl Write,
) -> Result<u64, Error> {
    let mut count = 0;
    for record in store.all(peer) {
        let record = record?;
        if account.is_some_and(|a| a != record.account) {
            continue;
        }
        serde_json::to_writer(&mut *out, &Line::from(&record)).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        count += 1;
    }
    out.flush()?;
    Ok(count)
}
