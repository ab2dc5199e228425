//! Roster and presence: our own presence, contacts' presence, subscription requests and contact-list commands (RFC 6121).

use super::*;

/// Subscription requests told to the UI per session, at most.
pub(super) const MAX_ASKERS: usize = 100;

/// A status message is cut to this many characters.
pub(super) const MAX_STATUS_CHARS: usize = 1024;

/// The stanzas for a contact-list command (RFC 6121 §2.3, §3.1, §3.4).
pub(super) fn contact_stanzas(command: Command) -> Vec<Stanza> {
    let roster_set = |item: RosterItem| -> Stanza {
        Iq::from_set(
            requests::new_id(),
            Roster {
                ver: None,
                items: vec![item],
            },
        )
        .into()
    };
    let presence = |type_: PresenceType, to: &BareJid| -> Stanza {
        let mut p = Presence::new(type_);
        p.to = Some(Jid::from(to.clone()));
        p.into()
    };
    match command {
        Command::AddContact { jid, name } => vec![
            roster_set(RosterItem {
                jid: jid.clone(),
                name,
                subscription: RosterSubscription::None,
                ask: Default::default(),
                groups: vec![],
                approved: None,
            }),
            presence(PresenceType::Subscribe, &jid),
            // Pre-approve their request for ours, so both see each other at once.
            presence(PresenceType::Subscribed, &jid),
        ],
        Command::AnswerSubscription { from, accept: true } => vec![
            presence(PresenceType::Subscribed, &from),
            // And ask for theirs, as people expect a mutual contact.
            presence(PresenceType::Subscribe, &from),
        ],
        Command::AnswerSubscription {
            from,
            accept: false,
        } => {
            vec![presence(PresenceType::Unsubscribed, &from)]
        }
        _ => vec![],
    }
}

pub(super) fn contact(item: RosterItem) -> Contact {
    Contact {
        jid: item.jid,
        name: item.name.filter(|n| !n.trim().is_empty()),
        groups: item.groups.into_iter().map(|g| g.0).collect(),
        subscription: match item.subscription {
            RosterSubscription::None => Subscription::None,
            RosterSubscription::To => Subscription::To,
            RosterSubscription::From => Subscription::From,
            RosterSubscription::Both => Subscription::Both,
            RosterSubscription::Remove => Subscription::Removed,
        },
    }
}

impl Worker {
    pub(super) fn own_presence(&self) -> Presence {
        let show = match self.presence.availability {
            Availability::Chat => Some(Show::Chat),
            Availability::Away => Some(Show::Away),
            Availability::ExtendedAway => Some(Show::Xa),
            Availability::DoNotDisturb => Some(Show::Dnd),
            Availability::Available | Availability::Offline => None,
        };
        let mut presence = if self.presence.availability == Availability::Offline {
            Presence::unavailable()
        } else {
            Presence::available()
        };
        presence.show = show;
        // XEP-0115: who we are and what we do, so that others need not ask.
        presence.payloads.push(features::presence_caps().into());
        if !self.presence.status.is_empty() {
            presence.set_status(Lang::new(), self.presence.status.clone());
        }
        presence
    }

    pub(super) fn on_presence(&mut self, presence: Presence) -> bool {
        let Some(from) = presence.from.clone() else {
            return true;
        };
        if self.rooms.contains_key(&from.to_bare()) {
            return self.on_room_presence(presence);
        }
        let availability = match presence.type_ {
            PresenceType::None => match presence.show {
                None => Availability::Available,
                Some(Show::Chat) => Availability::Chat,
                Some(Show::Away) => Availability::Away,
                Some(Show::Xa) => Availability::ExtendedAway,
                Some(Show::Dnd) => Availability::DoNotDisturb,
            },
            PresenceType::Unavailable => Availability::Offline,
            PresenceType::Subscribe => {
                let from = from.to_bare();
                if from == self.account {
                    return true;
                }
                // Anyone can ask, as often as they like: each asker reaches
                // the UI once a session, and at most MAX_ASKERS of them.
                if self.askers.contains(&from) {
                    return true;
                }
                if self.askers.len() >= MAX_ASKERS {
                    tracing::warn!(
                        "ignoring a subscription request from {from}: {MAX_ASKERS} are waiting already"
                    );
                    return true;
                }
                self.askers.insert(from.clone());
                return self.emit(Event::SubscriptionRequest(from));
            }
            other => {
                tracing::debug!("presence of type {other:?} from {from} not handled yet");
                return true;
            }
        };
        // Presence matters for contacts and our own other devices; what a
        // stranger sends (or a flood of made-up resources) is not kept.
        let bare = from.to_bare();
        if bare != self.account && !self.contacts.contains(&bare) {
            tracing::debug!("ignoring presence from {from}, not a contact");
            return true;
        }
        let status = presence
            .statuses
            .values()
            .next()
            .map(|s| s.chars().take(MAX_STATUS_CHARS).collect());
        self.emit(Event::Presence {
            from,
            availability,
            status,
        })
    }
}
