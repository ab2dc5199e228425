//! What the owner asks of a room's configuration (XEP-0045 §10): a room set
//! up as it is created, its settings read and changed, a room destroyed,
//! and a room made by mistake (a join of an address that did not exist)
//! taken away again.

use tokio_xmpp::parsers::data_forms::DataForm;

use super::*;
use crate::xmpp::muc_owner::{Destroy, OwnerQuery};
use crate::xmpp::room::{RoomEvent, RoomSettings};
use crate::xmpp::room_config::{fill_form, settings_from_form};

/// Why a room's configuration form is asked for.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum FormPurpose {
    /// To show the owner.
    Show,
    /// To change these settings in it.
    Apply(RoomSettings),
    /// To set up a room we just created (it is locked until then).
    Create(RoomSettings),
}

/// A question about a room that a handler without the session's requests
/// leaves for the loop to send (see `send_room_asks`).
#[derive(Debug, Clone)]
pub(super) enum RoomAsk {
    /// Accept the default configuration of a room we created (an instant
    /// room, §10.1.2).
    Unlock(BareJid),
    /// Ask for the room's configuration form.
    Form(BareJid, FormPurpose),
    /// Destroy a room the user did not mean to create.
    Discard(BareJid),
    /// Ask a room just joined what it is (disco#info).
    Info(BareJid),
    /// Publish the room's bookmark (to our own account's PEP).
    Bookmark(BareJid, Conference),
}

impl Worker {
    /// The question `ask` as a stanza, its answer awaited from the room.
    pub(super) fn room_ask(&mut self, ask: RoomAsk, pending: &mut Requests<Pending>) -> Stanza {
        enum Query {
            Set(OwnerQuery),
            Form,
            Info,
        }
        let (room, query, request) = match ask {
            RoomAsk::Unlock(room) => (
                room.clone(),
                Query::Set(OwnerQuery::instant()),
                Pending::RoomUnlock(room),
            ),
            RoomAsk::Form(room, purpose) => {
                (room.clone(), Query::Form, Pending::RoomForm(room, purpose))
            }
            RoomAsk::Discard(room) => {
                self.room_discards.insert(room.clone());
                let destroy = OwnerQuery {
                    form: None,
                    destroy: Some(Destroy {
                        jid: None,
                        reason: None,
                    }),
                };
                (
                    room.clone(),
                    Query::Set(destroy),
                    Pending::RoomDiscard(room),
                )
            }
            RoomAsk::Info(room) => (room.clone(), Query::Info, Pending::RoomInfo(room)),
            RoomAsk::Bookmark(room, conference) => {
                return self.publish_conference(room, conference, pending);
            }
        };
        let to = Jid::from(room);
        let id = pending.add(
            Some(to.clone()),
            request,
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        match query {
            Query::Set(query) => Iq::from_set(id, query).with_to(to).into(),
            Query::Form => Iq::from_get(id, OwnerQuery::default()).with_to(to).into(),
            Query::Info => Iq::from_get(id, DiscoInfoQuery { node: None })
                .with_to(to)
                .into(),
        }
    }

    /// The room made by mistake is gone (or would not go): a join asked
    /// meanwhile goes now.
    pub(super) fn on_room_discarded(&mut self, room: &BareJid) -> Vec<Stanza> {
        self.room_discards.remove(room);
        match self.rooms.get(room) {
            Some(state) if !state.joined && !state.joining => self
                .join_presence(room)
                .map(Stanza::from)
                .into_iter()
                .collect(),
            _ => vec![],
        }
    }

    /// What handlers left to ask of rooms, sent now.
    pub(super) fn send_room_asks(&mut self, pending: &mut Requests<Pending>) {
        for ask in std::mem::take(&mut self.room_asks) {
            let stanza = self.room_ask(ask, pending);
            self.outq.push_back(Box::new(stanza));
        }
    }

    /// The room's configuration form, or why it would not give it.
    pub(super) fn on_room_form(
        &mut self,
        room: BareJid,
        purpose: FormPurpose,
        form: Result<DataForm, String>,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        let form = match form {
            Ok(form) => form,
            Err(why) => {
                tracing::info!("{room} gave no configuration form: {why}");
                if matches!(purpose, FormPurpose::Create(_)) {
                    // Set up as the service likes rather than left locked.
                    let unlock = self.room_ask(RoomAsk::Unlock(room.clone()), pending);
                    return (self.emit_room(&room, RoomEvent::Refused(why)), vec![unlock]);
                }
                return (self.emit_room(&room, RoomEvent::Refused(why)), vec![]);
            }
        };
        let (settings, creating) = match purpose {
            FormPurpose::Show => {
                let settings = settings_from_form(&form);
                return (self.emit_room(&room, RoomEvent::Settings(settings)), vec![]);
            }
            FormPurpose::Apply(settings) => (settings, false),
            FormPurpose::Create(settings) => (settings, true),
        };
        let (submit, missing) = fill_form(form, &settings);
        if !missing.is_empty() {
            tracing::info!("{room}'s configuration has no {}", missing.join(", "));
        }
        let to = Jid::from(room.clone());
        let id = pending.add(
            Some(to.clone()),
            Pending::RoomConfigure { room, creating },
            Some(REPLY_TIMEOUT),
            Instant::now(),
        );
        let query = OwnerQuery {
            form: Some(submit),
            destroy: None,
        };
        (true, vec![Iq::from_set(id, query).with_to(to).into()])
    }

    /// The room took (or refused) the configuration we sent.
    pub(super) fn on_room_configured(
        &mut self,
        room: BareJid,
        creating: bool,
        outcome: Result<(), String>,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        match (outcome, creating) {
            (Ok(()), true) => (self.on_room_unlocked(&room, Ok(())), vec![]),
            (Ok(()), false) => (self.emit_room(&room, RoomEvent::Configured), vec![]),
            (Err(why), true) => {
                tracing::info!("{room} refused its first configuration: {why}");
                let unlock = self.room_ask(RoomAsk::Unlock(room.clone()), pending);
                (self.emit_room(&room, RoomEvent::Refused(why)), vec![unlock])
            }
            (Err(why), false) => (self.emit_room(&room, RoomEvent::Refused(why)), vec![]),
        }
    }

    /// The owner's requests of a room they are in (settings, destruction).
    pub(super) fn owner_request(
        &mut self,
        room: &BareJid,
        request: crate::xmpp::room::RoomRequest,
        pending: &mut Requests<Pending>,
    ) -> Vec<Stanza> {
        use crate::xmpp::room::RoomRequest;
        let ask = match request {
            RoomRequest::Settings => RoomAsk::Form(room.clone(), FormPurpose::Show),
            RoomRequest::Configure(settings) => {
                RoomAsk::Form(room.clone(), FormPurpose::Apply(settings))
            }
            RoomRequest::Destroy { reason } => {
                // The room's answer is our own presence, destroyed (§10.9).
                let to = Jid::from(room.clone());
                let id = pending.add(
                    Some(to.clone()),
                    Pending::RoomAdmin(room.clone()),
                    Some(REPLY_TIMEOUT),
                    Instant::now(),
                );
                let query = OwnerQuery {
                    form: None,
                    destroy: Some(Destroy { jid: None, reason }),
                };
                return vec![Iq::from_set(id, query).with_to(to).into()];
            }
            _ => return vec![],
        };
        vec![self.room_ask(ask, pending)]
    }
}

/// What the room answered when asked for its form.
pub(super) fn answered_form(
    payload: Option<tokio_xmpp::minidom::Element>,
) -> Result<DataForm, String> {
    payload
        .and_then(|p| OwnerQuery::try_from(p).ok())
        .and_then(|q| q.form)
        .ok_or_else(|| "the room sent no configuration form".to_string())
}
