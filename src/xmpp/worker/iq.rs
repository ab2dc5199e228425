//! IQ routing: answers to our requests (matched by id and sender in `requests`), and requests from others (ping, disco, version, roster pushes).

use super::*;
use crate::xmpp::room::RoomEvent;

/// A refusal without the room's own words, in the user's terms.
fn refusal_text(condition: &DefinedCondition) -> String {
    match condition {
        DefinedCondition::Forbidden | DefinedCondition::NotAllowed => {
            "you are not allowed to do that here".into()
        }
        DefinedCondition::ItemNotFound => "nobody by that name is in the room".into(),
        DefinedCondition::Conflict => "that name is taken".into(),
        other => format!("{other:?}"),
    }
}

/// What a refusal says: the room's or server's own words, else the
/// condition in the user's terms.
fn said(error: &StanzaError) -> String {
    error
        .texts
        .values()
        .next()
        .filter(|t| !t.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| refusal_text(&error.defined_condition))
}

/// A request for information about us: ping, service discovery (also on our
/// caps node), software version.
pub(super) fn on_iq_get(
    from: Option<Jid>,
    id: String,
    payload: tokio_xmpp::minidom::Element,
    share_os: bool,
) -> (bool, Vec<Stanza>) {
    if payload.is("ping", ns::PING) {
        let reply = Iq::Result {
            from: None,
            to: from,
            id,
            payload: None,
        };
        return (true, vec![reply.into()]);
    }
    if payload.is("query", ns::DISCO_INFO) {
        let node = DiscoInfoQuery::try_from(payload).ok().and_then(|q| q.node);
        if !features::is_our_node(node.as_deref()) {
            return (
                true,
                vec![error_reply(from, id, DefinedCondition::ItemNotFound)],
            );
        }
        let reply = Iq::from_result(id, Some(features::disco_info(node)));
        return (true, vec![with_to(reply, from).into()]);
    }
    if payload.is("query", ns::VERSION) {
        let reply = Iq::from_result(id, Some(features::version(share_os)));
        return (true, vec![with_to(reply, from).into()]);
    }
    (
        true,
        vec![error_reply(from, id, DefinedCondition::ServiceUnavailable)],
    )
}

pub(super) fn with_to(iq: Iq, to: Option<Jid>) -> Iq {
    match to {
        Some(to) => iq.with_to(to),
        None => iq,
    }
}

pub(super) fn error_reply(to: Option<Jid>, id: String, condition: DefinedCondition) -> Stanza {
    let error = StanzaError::new(ErrorType::Cancel, condition, "en", "");
    with_to(Iq::from_error(id, error), to).into()
}

impl Worker {
    /// Returns whether the app is still there, and the stanzas to send back.
    pub(super) fn on_iq(&mut self, iq: Iq, pending: &mut Requests<Pending>) -> (bool, Vec<Stanza>) {
        let (id, from, answer) = match iq {
            Iq::Result {
                id, payload, from, ..
            } => (id, from, Ok(payload)),
            Iq::Error {
                id, error, from, ..
            } => (id, from, Err(error)),
            Iq::Set {
                from, id, payload, ..
            } => return self.on_iq_set(from, id, payload),
            Iq::Get {
                from, id, payload, ..
            } => return on_iq_get(from, id, payload, self.share_os),
        };
        // RFC 6120 §8.1.2.1: an answer comes from whom we asked. Anyone who
        // sees our presence can send us replies with made-up ids; one from the
        // wrong sender leaves the question waiting for its real answer.
        let request = match pending.answer(&id, from.as_ref()) {
            Reply::Answer(request) => request,
            Reply::Forged => {
                tracing::warn!("ignoring an answer from {from:?} to a question not put to it");
                return (true, vec![]);
            }
            Reply::Unknown => {
                tracing::debug!("ignoring an answer from {from:?} to no question of ours");
                return (true, vec![]);
            }
        };
        match answer {
            Ok(payload) => self.on_answer(request, payload, pending),
            Err(error) => self.on_refusal(request, &error, pending),
        }
    }

    /// The answer to one of our questions.
    pub(super) fn on_answer(
        &mut self,
        request: Pending,
        payload: Option<tokio_xmpp::minidom::Element>,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        match (request, payload) {
            (Pending::Roster, Some(payload)) => {
                let alive = match Roster::try_from(payload) {
                    Ok(roster) => {
                        self.contacts = roster.items.iter().map(|i| i.jid.clone()).collect();
                        self.emit(Event::Roster(
                            roster.items.into_iter().map(contact).collect(),
                        ))
                    }
                    Err(e) => {
                        tracing::warn!("unreadable roster: {e}");
                        true
                    }
                };
                (alive, self.announce(pending))
            }
            (Pending::Roster, None) => (true, self.announce(pending)),
            (Pending::Barrier(sent), _) => {
                for (peer, id) in sent.messages {
                    self.update_state(&peer, &id, Delivery::Sent, None);
                }
                (true, vec![])
            }
            (Pending::Archive, payload) => {
                let fin = payload.and_then(|p| Fin::try_from(p).ok());
                (true, self.on_archive_page(fin, pending))
            }
            (Pending::Probe, _) => {
                tracing::info!("the connection survived the suspend");
                (true, vec![])
            }
            (Pending::Older(query_id), payload) => {
                let fin = payload.and_then(|p| Fin::try_from(p).ok());
                self.on_older_page(&query_id, fin, pending)
            }
            (Pending::DiscoItems, payload) => {
                let items = payload.and_then(|p| DiscoItemsResult::try_from(p).ok());
                self.on_disco_items(items, pending)
            }
            (Pending::DiscoInfo(asked), payload) => {
                let info = payload.and_then(|p| DiscoInfoResult::try_from(p).ok());
                (self.on_disco_info(asked, info), vec![])
            }
            (Pending::Slot(id), payload) => {
                let slot = payload.and_then(|p| SlotResult::try_from(p).ok());
                (self.on_slot(id, slot), vec![])
            }
            (Pending::OwnFeatures, payload) => {
                let info = payload.and_then(|p| DiscoInfoResult::try_from(p).ok());
                self.stanza_ids = info.is_some_and(|i| i.features.iter().any(|f| f == ns::SID));
                tracing::debug!("the server stamps stanza-ids: {}", self.stanza_ids);
                (true, vec![])
            }
            (Pending::RoomUnlock(room), _) => (self.on_room_unlocked(&room, Ok(())), vec![]),
            (Pending::Bookmarks, payload) => (true, self.on_bookmarks(payload)),
            (Pending::SelfPing(room), _) => (self.on_self_ping(&room, Ok(())), vec![]),
            // The change shows in the occupants' presences.
            (Pending::RoomAdmin(_), _) => (true, vec![]),
            (Pending::RoomArchive(query_id), payload) => {
                let fin = payload.and_then(|p| Fin::try_from(p).ok());
                self.on_room_archive_page(&query_id, fin, None, pending)
            }
            (Pending::RoomForm(room, purpose), payload) => {
                let form = super::room_config::answered_form(payload);
                self.on_room_form(room, purpose, form, pending)
            }
            (Pending::RoomConfigure { room, creating }, _) => {
                self.on_room_configured(room, creating, Ok(()), pending)
            }
            (Pending::RoomDiscard(room), _) => {
                tracing::debug!("{room}, made by mistake, is gone again");
                (true, self.on_room_discarded(&room))
            }
            (Pending::RoomDirectory(service), payload) => {
                let items = payload
                    .and_then(|p| DiscoItemsResult::try_from(p).ok())
                    .ok_or_else(|| "the service sent no list".to_string());
                self.on_room_directory(service, items, pending)
            }
            (Pending::RoomListing(room), payload) => {
                let info = payload.and_then(|p| DiscoInfoResult::try_from(p).ok());
                (self.on_room_listing(room, info), vec![])
            }
            (Pending::RoomInfo(room), payload) => {
                let info = payload.and_then(|p| DiscoInfoResult::try_from(p).ok());
                (self.on_room_info(room, info), vec![])
            }
            (
                Pending::Bookmark {
                    room,
                    conference,
                    full,
                },
                _,
            ) => (
                true,
                self.on_bookmark_published(room, conference, full, None, pending),
            ),
        }
    }

    /// An error answer to one of our questions.
    pub(super) fn on_refusal(
        &mut self,
        request: Pending,
        error: &StanzaError,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        match request {
            Pending::Roster => {
                tracing::warn!(
                    "the server refused the roster: {:?}",
                    error.defined_condition
                );
                (true, self.announce(pending))
            }
            Pending::Archive => (true, self.on_archive_error(error, pending)),
            // Any answer proves the link is alive.
            Pending::Probe => (true, vec![]),
            Pending::DiscoItems => (self.on_disco_items(None, pending).0, vec![]),
            Pending::DiscoInfo(asked) => (self.on_disco_info(asked, None), vec![]),
            Pending::Slot(id) => {
                let reason = error
                    .texts
                    .values()
                    .next()
                    .filter(|t| !t.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("{:?}", error.defined_condition));
                let alive = self.emit(Event::Slot {
                    id,
                    result: Err(SlotError::Refused(reason)),
                });
                (alive, vec![])
            }
            Pending::Older(query_id) => {
                tracing::warn!(
                    "the archive refused older history: {:?}",
                    error.defined_condition
                );
                self.on_older_page(&query_id, None, pending)
            }
            // Even an error answer comes after the server took the messages.
            Pending::Barrier(sent) => {
                for (peer, id) in sent.messages {
                    self.update_state(&peer, &id, Delivery::Sent, None);
                }
                (true, vec![])
            }
            Pending::OwnFeatures => {
                self.stanza_ids = false;
                (true, vec![])
            }
            Pending::RoomUnlock(room) => {
                let why = format!("{:?}", error.defined_condition);
                (self.on_room_unlocked(&room, Err(why)), vec![])
            }
            // No bookmarks yet (item-not-found), or no PEP: nothing to join.
            Pending::Bookmarks => {
                tracing::debug!("no bookmarks: {:?}", error.defined_condition);
                (true, vec![])
            }
            Pending::RoomArchive(query_id) => {
                self.on_room_archive_page(&query_id, None, Some(error), pending)
            }
            Pending::RoomAdmin(room) => (
                self.emit_room(&room, RoomEvent::Refused(said(error))),
                vec![],
            ),
            Pending::SelfPing(room) => {
                let condition = error.defined_condition.clone();
                (self.on_self_ping(&room, Err(Some(condition))), vec![])
            }
            Pending::RoomForm(room, purpose) => {
                self.on_room_form(room, purpose, Err(said(error)), pending)
            }
            Pending::RoomConfigure { room, creating } => {
                self.on_room_configured(room, creating, Err(said(error)), pending)
            }
            Pending::RoomDiscard(room) => {
                tracing::warn!(
                    "{room}, made by mistake, could not be destroyed: {:?}",
                    error.defined_condition
                );
                (true, self.on_room_discarded(&room))
            }
            Pending::RoomDirectory(service) => {
                self.on_room_directory(service, Err(said(error)), pending)
            }
            Pending::RoomListing(room) => (self.on_room_listing(room, None), vec![]),
            Pending::RoomInfo(room) => (self.on_room_info(room, None), vec![]),
            Pending::Bookmark {
                room,
                conference,
                full,
            } => (
                true,
                self.on_bookmark_published(room, conference, full, Some(error), pending),
            ),
        }
    }

    /// A question that got no answer in time: as if refused, so that nothing
    /// waits for it forever.
    pub(super) fn on_no_answer(
        &mut self,
        request: Pending,
        pending: &mut Requests<Pending>,
    ) -> (bool, Vec<Stanza>) {
        match request {
            Pending::Roster => {
                tracing::warn!("the server did not send the roster");
                (true, self.announce(pending))
            }
            Pending::Archive => {
                let stanzas = match self.catch_up.take() {
                    Some(catch_up) => {
                        self.catch_up_cut_short(catch_up, "no answer from the archive");
                        vec![]
                    }
                    None => vec![],
                };
                (true, stanzas)
            }
            Pending::Older(query_id) => {
                tracing::warn!("the archive did not answer for older history");
                self.on_older_page(&query_id, None, pending)
            }
            Pending::DiscoItems => (self.on_disco_items(None, pending).0, vec![]),
            Pending::DiscoInfo(asked) => (self.on_disco_info(asked, None), vec![]),
            Pending::Slot(id) => {
                let alive = self.emit(Event::Slot {
                    id,
                    result: Err(SlotError::Refused(
                        "the upload service did not answer".into(),
                    )),
                });
                (alive, vec![])
            }
            Pending::OwnFeatures => (true, vec![]),
            Pending::RoomUnlock(room) => (
                self.on_room_unlocked(&room, Err("no answer".into())),
                vec![],
            ),
            Pending::Bookmarks => {
                tracing::warn!("the server did not send the bookmarks");
                (true, vec![])
            }
            Pending::RoomArchive(query_id) => {
                self.on_room_archive_page(&query_id, None, None, pending)
            }
            Pending::SelfPing(room) => (self.on_self_ping(&room, Err(None)), vec![]),
            Pending::RoomAdmin(room) => (
                self.emit_room(&room, RoomEvent::Refused("no answer from the room".into())),
                vec![],
            ),
            Pending::RoomForm(room, purpose) => self.on_room_form(
                room,
                purpose,
                Err("no answer from the room".into()),
                pending,
            ),
            Pending::RoomConfigure { room, creating } => self.on_room_configured(
                room,
                creating,
                Err("no answer from the room".into()),
                pending,
            ),
            Pending::RoomDiscard(room) => {
                tracing::warn!("{room}, made by mistake, did not answer its destruction");
                (true, self.on_room_discarded(&room))
            }
            Pending::RoomDirectory(service) => {
                self.on_room_directory(service, Err("the service did not answer".into()), pending)
            }
            Pending::RoomListing(room) => (self.on_room_listing(room, None), vec![]),
            Pending::RoomInfo(room) => (self.on_room_info(room, None), vec![]),
            Pending::Bookmark {
                room, conference, ..
            } => {
                tracing::warn!("{room}'s bookmark: the server did not answer");
                self.forget_echo(&room, conference.autojoin);
                (true, vec![])
            }
            // Never given a deadline: the link's own liveness check covers them.
            Pending::Barrier(_) | Pending::Probe => (true, vec![]),
        }
    }

    /// A request set to us: only roster pushes are accepted.
    pub(super) fn on_iq_set(
        &mut self,
        from: Option<Jid>,
        id: String,
        payload: tokio_xmpp::minidom::Element,
    ) -> (bool, Vec<Stanza>) {
        if !payload.is("query", ns::ROSTER) {
            return (
                true,
                vec![error_reply(from, id, DefinedCondition::ServiceUnavailable)],
            );
        }
        // RFC 6121 §2.1.6: a roster push comes from our server, which sends it
        // without `from` or from our bare JID. Anyone else, our other devices
        // included (they change the roster through the server, which then
        // pushes to every session), is answered as if we did not understand.
        if from
            .as_ref()
            .is_some_and(|f| f.as_str() != self.account.as_str())
        {
            tracing::warn!("ignoring a roster push from {from:?}");
            return (
                true,
                vec![error_reply(from, id, DefinedCondition::ServiceUnavailable)],
            );
        }
        let mut alive = true;
        if let Ok(roster) = Roster::try_from(payload) {
            for item in roster.items {
                if item.subscription == RosterSubscription::Remove {
                    self.contacts.remove(&item.jid);
                } else {
                    self.contacts.insert(item.jid.clone());
                }
                alive &= self.emit(Event::RosterPush(contact(item)));
            }
        }
        let reply = Iq::Result {
            from: None,
            to: from,
            id,
            payload: None,
        };
        (alive, vec![reply.into()])
    }
}
