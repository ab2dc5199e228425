//! Our server's room service, and the rooms a service lists (XEP-0045
//! §6.1–6.4): their addresses and names first, then each one's details.

use super::*;
use crate::xmpp::room::{Directory, Listing};
use crate::xmpp::room_config::listing;

/// How many rooms of a service's list are shown: public services list
/// thousands, and a hostile one could list without end.
pub(super) const MAX_LISTED: usize = 2000;

/// Of those, how many are asked for their details (description, how many are
/// in it) at once; the rest show by address and name.
pub(super) const MAX_DETAILED: usize = 200;

/// How much of a listed name is kept.
const MAX_NAME: usize = 256;

impl Worker {
    /// One of our server's items answered what it is: the first that is a
    /// text conference service is where rooms are made and listed.
    pub(super) fn on_room_service(&mut self, jid: &Jid, info: Option<&DiscoInfoResult>) -> bool {
        if self.room_service.is_none()
            && let Some(info) = info
            && info
                .identities
                .iter()
                .any(|i| i.category == "conference" && i.type_ == "text")
            && info.features.contains(ns::MUC)
            && jid.node().is_none()
            && jid.resource().is_none()
        {
            tracing::info!("rooms at {jid}");
            let service = jid.to_bare();
            self.room_service = Some(service.clone());
            return self.emit(Event::Directory(Directory::Service(Some(service))));
        }
        if self.discovering == 0 && self.room_service.is_none() {
            tracing::info!("the server offers no rooms");
            return self.emit(Event::Directory(Directory::Service(None)));
        }
        true
    }

    /// Asks a service for the rooms it lists.
    pub(super) fn browse_rooms(
        &mut self,
        service: BareJid,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        let to = Jid::from(service.clone());
        let id = pending.add(
            Some(to.clone()),
            Pending::RoomDirectory(service),
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        let query = DiscoItemsQuery {
            node: None,
            rsm: None,
        };
        vec![Iq::from_get(id, query).with_to(to).into()]
    }

    /// The rooms a service lists (or why not): shown at once by address and
    /// name, each then asked for its details.
    pub(super) fn on_room_directory(
        &mut self,
        service: BareJid,
        items: Result<DiscoItemsResult, String>,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        let items = match items {
            Ok(items) => items.items,
            Err(why) => {
                let rooms = Err(why);
                return (
                    self.emit(Event::Directory(Directory::Rooms { service, rooms })),
                    vec![],
                );
            }
        };
        // Only rooms of this service: a list is no way to make us ask
        // anyone else anything.
        let rooms: Vec<Listing> = items
            .into_iter()
            .filter(|item| item.node.is_none())
            .filter_map(|item| {
                if item.jid.resource().is_some() {
                    return None;
                }
                let room = item.jid.to_bare();
                (room.node().is_some() && room.domain() == service.domain()).then(|| Listing {
                    room,
                    name: item
                        .name
                        .map(|n| n.chars().take(MAX_NAME).collect::<String>())
                        .filter(|n| !n.trim().is_empty()),
                    description: None,
                    occupants: None,
                    password: false,
                    members_only: false,
                })
            })
            .take(MAX_LISTED)
            .collect();
        tracing::info!("{service} lists {} rooms", rooms.len());
        let mut out = Vec::new();
        for listed in rooms.iter().take(MAX_DETAILED) {
            let to = Jid::from(listed.room.clone());
            let id = pending.add(
                Some(to.clone()),
                Pending::RoomListing(listed.room.clone()),
                Some(REPLY_TIMEOUT),
                Instant::now(),
            );
            out.push(
                Iq::from_get(id, DiscoInfoQuery { node: None })
                    .with_to(to)
                    .into(),
            );
        }
        let rooms = Ok(rooms);
        (
            self.emit(Event::Directory(Directory::Rooms { service, rooms })),
            out,
        )
    }

    /// What a room we joined says of itself.
    pub(super) fn on_room_info(&mut self, room: BareJid, info: Option<DiscoInfoResult>) -> bool {
        match info {
            Some(info) if self.rooms.contains_key(&room) => {
                let listing = listing(room.clone(), &info);
                self.emit_room(&room, crate::xmpp::room::RoomEvent::Info(listing))
            }
            _ => true,
        }
    }

    /// One listed room's details; a room that did not answer keeps what
    /// the list said of it.
    pub(super) fn on_room_listing(&mut self, room: BareJid, info: Option<DiscoInfoResult>) -> bool {
        match info {
            Some(info) => self.emit(Event::Directory(Directory::Listing(listing(room, &info)))),
            None => true,
        }
    }
}
