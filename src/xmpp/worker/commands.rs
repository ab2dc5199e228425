//! The one path of the UI's commands, offline and in a session alike: what
//! each changes here, what it queues to send, and what the loop must do.

use std::collections::VecDeque;

use super::*;

/// What a command asks of the loop that received it.
pub(super) enum Flow {
    /// Nothing more: carry on.
    Stay,
    /// Sign in with these settings (dropping any current connection).
    Connect(Box<Settings>, bool),
    /// Skip the wait before the next attempt.
    RetryNow,
    /// Go offline politely.
    Disconnect,
}

/// The session a command arrives in; `None` for an idle worker.
pub(super) struct InSession<'a> {
    /// Whether the stream is bound: only then do messages, presence and
    /// questions to the server go out (before, the outbox and the next
    /// session's own steps take care of them).
    pub(super) bound: bool,
    pub(super) pending: &'a mut Requests<Pending>,
    /// Our messages waiting for the stream, oldest first.
    pub(super) sendq: &'a mut VecDeque<Record>,
}

impl Worker {
    pub(super) fn on_command(&mut self, command: Command, session: Option<InSession<'_>>) -> Flow {
        let bound = session.as_ref().is_some_and(|s| s.bound);
        match command {
            Command::Connect {
                settings,
                interactive,
            } => return Flow::Connect(settings, interactive),
            Command::RetryNow => return Flow::RetryNow,
            Command::Disconnect => return Flow::Disconnect,
            Command::SetPresence(presence) => {
                self.presence = presence;
                if bound {
                    self.outq.push_back(Box::new(self.own_presence().into()));
                    for stanza in self.room_presences() {
                        self.outq.push_back(Box::new(stanza));
                    }
                }
            }
            Command::JoinRoom {
                room,
                nick,
                password,
            } => {
                self.left_offline.remove(&room);
                let stanzas = self.join_room(room.clone(), nick, password, bound);
                // Bookmarked once the room has us (see `on_room_presence`).
                if let Some(state) = self.rooms.get_mut(&room) {
                    state.bookmark = true;
                }
                for stanza in stanzas {
                    self.outq.push_back(Box::new(stanza));
                }
            }
            Command::CreateRoom {
                room,
                nick,
                settings,
            } => {
                self.left_offline.remove(&room);
                let stanzas = self.join_room(room.clone(), nick, None, bound);
                if let Some(state) = self.rooms.get_mut(&room) {
                    state.bookmark = true;
                    state.create = Some(settings);
                }
                for stanza in stanzas {
                    self.outq.push_back(Box::new(stanza));
                }
            }
            Command::BrowseRooms { service } => match session {
                Some(session) if session.bound => {
                    for stanza in self.browse_rooms(service, session.pending) {
                        self.outq.push_back(Box::new(stanza));
                    }
                }
                _ => {
                    let rooms = Err("not connected".to_string());
                    self.emit(Event::Directory(crate::xmpp::room::Directory::Rooms {
                        service,
                        rooms,
                    }));
                }
            },
            Command::RoomRequest { room, request } => match session {
                Some(session) if session.bound => {
                    for stanza in self.room_request(&room, request, session.pending) {
                        self.outq.push_back(Box::new(stanza));
                    }
                }
                _ => {
                    self.emit_room(
                        &room,
                        crate::xmpp::room::RoomEvent::Refused("not connected".into()),
                    );
                }
            },
            Command::DeclineInvitation { room, inviter } => {
                if session.is_some() {
                    self.outq.push_back(Box::new(decline(&room, inviter)));
                }
            }
            Command::LeaveRoom { room } => {
                // Our other clients leave it too, and none joins it again.
                let unbookmark = self.conference(&room, false);
                match session {
                    Some(InSession {
                        bound: true,
                        pending,
                        ..
                    }) => {
                        let stanza = self.publish_conference(room.clone(), unbookmark, pending);
                        self.outq.push_back(Box::new(stanza));
                    }
                    _ => {
                        self.left_offline.insert(room.clone(), unbookmark);
                    }
                }
                for stanza in self.leave_room(&room, bound) {
                    self.outq.push_back(Box::new(stanza));
                }
            }
            // Stored in the outbox first; offline, the next session sends it.
            Command::SendMessage { .. } | Command::ShareFile { .. } | Command::Retry { .. } => {
                let accepted = match command {
                    Command::SendMessage { to, body } => self.accept_message(&to, body, false),
                    Command::ShareFile { to, url } => self.accept_message(&to, url, true),
                    Command::Retry { conversation, id } => self.retry(&conversation, &id),
                    _ => None,
                };
                // Behind what waits already.
                if let (Some(record), Some(session)) = (accepted, session)
                    && session.bound
                {
                    session.sendq.push_back(record);
                }
            }
            Command::RequestSlot {
                id,
                name,
                size,
                content_type,
            } => match session {
                Some(session) if session.bound => {
                    for stanza in self.request_slot(id, name, size, content_type, session.pending) {
                        self.outq.push_back(Box::new(stanza));
                    }
                }
                _ => {
                    self.emit(Event::Slot {
                        id,
                        result: Err(SlotError::Offline),
                    });
                }
            },
            // The archive is on the server: nothing to fetch offline.
            Command::FetchOlder {
                conversation,
                before,
            } => match session {
                Some(session) if session.bound => {
                    for stanza in self.fetch_older(conversation, before, session.pending) {
                        self.outq.push_back(Box::new(stanza));
                    }
                }
                _ => {
                    self.emit(Event::History {
                        conversation,
                        records: vec![],
                        more: true,
                    });
                }
            },
            Command::AddContact { .. } | Command::AnswerSubscription { .. } => {
                if session.is_some() {
                    for stanza in contact_stanzas(command) {
                        self.outq.push_back(Box::new(stanza));
                    }
                } else {
                    tracing::info!("contact change ignored while offline");
                }
            }
        }
        Flow::Stay
    }
}

/// A refusal of a mediated invitation, through the room (XEP-0045 §7.8.2).
fn decline(room: &BareJid, inviter: BareJid) -> Stanza {
    use tokio_xmpp::parsers::muc::user::{Decline, MucUser};
    let mut user = MucUser::new();
    user.decline = Some(Decline {
        from: None,
        to: Some(Jid::from(inviter)),
        reason: None,
    });
    Message::new(Some(Jid::from(room.clone())))
        .with_payload(user)
        .into()
}
