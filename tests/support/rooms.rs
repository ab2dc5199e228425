//! Helpers for tests of group chats, on either server: a room's address on
//! the test servers' MUC service, and waits for what a worker reports of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::time::Duration;

use super::client::Client;
use tern::conversation::Id;
use tern::xmpp::room::{RoomEvent, RoomSettings};
use tern::xmpp::{BareJid, Event};

pub const WAIT: Duration = Duration::from_secs(15);

pub fn room(name: &str) -> BareJid {
    format!("{name}@conference.localhost").parse().unwrap()
}

/// Waits for `room`'s event that `wanted` picks.
pub async fn room_event(
    client: &mut Client,
    room: &BareJid,
    wanted: impl Fn(&RoomEvent) -> bool,
) -> Option<RoomEvent> {
    let room = room.clone();
    match client
        .next_event(
            WAIT,
            move |e| matches!(e, Event::Room { room: r, event } if *r == room && wanted(event)),
        )
        .await
    {
        Some(Event::Room { event, .. }) => Some(event),
        _ => None,
    }
}

/// Waits for a message in `room` with `body`; its sender's nickname.
pub async fn room_message(
    client: &mut Client,
    room: &BareJid,
    body: &str,
) -> Option<Option<String>> {
    let id = Id::room(client.jid.clone(), room.clone());
    let body = body.to_string();
    let wanted = id.clone();
    let found = client
        .next_event(WAIT, move |e| {
            matches!(e, Event::Messages(m) | Event::Backfill(m)
                if m.iter().any(|m| m.conversation == wanted && m.body == body))
        })
        .await?;
    match found {
        Event::Messages(messages) | Event::Backfill(messages) => messages
            .into_iter()
            .find(|m| m.conversation == id)
            .map(|m| m.sender),
        _ => None,
    }
}

/// Joins `room` as `nick`; what the room said of itself on the way in
/// (its occupants come before our own presence).
pub async fn join(client: &mut Client, room: &BareJid, nick: &str) -> Vec<RoomEvent> {
    client.handle.join_room(room.clone(), nick.into(), None);
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(event) = room_event(client, room, |_| true).await else {
            panic!("{} did not join {room} as {nick}: {seen:?}", client.jid);
        };
        match event {
            RoomEvent::Joined { nick: n } => {
                assert_eq!(n, nick);
                return seen;
            }
            RoomEvent::JoinFailed(e) => panic!("{} could not join {room}: {e}", client.jid),
            other => seen.push(other),
        }
        assert!(!left.is_zero(), "{} did not join {room}", client.jid);
    }
}

/// Creates `room` (a public channel) and joins it as `nick`, its owner.
pub async fn create(client: &mut Client, room: &BareJid, nick: &str) {
    let settings = RoomSettings::public_channel(room.node().unwrap().as_str());
    client
        .handle
        .create_room(room.clone(), nick.into(), settings);
    match room_event(client, room, |e| {
        matches!(e, RoomEvent::Joined { .. } | RoomEvent::JoinFailed(_))
    })
    .await
    {
        Some(RoomEvent::Joined { nick: n }) => assert_eq!(n, nick),
        other => panic!("{} could not create {room}: {other:?}", client.jid),
    }
}
