//! The `muc#owner` payload (XEP-0045 §10), which xmpp-parsers 0.23 lacks:
//! a room's configuration form, asked for or submitted, and its destruction.

use tokio_xmpp::jid::BareJid;
use tokio_xmpp::parsers::data_forms::{DataForm, DataFormType};
use tokio_xmpp::parsers::iq::{IqGetPayload, IqResultPayload, IqSetPayload};
use xso::{AsXml, FromXml};

pub const NS: &str = "http://jabber.org/protocol/muc#owner";

/// `<query xmlns='…muc#owner'/>`: empty to ask for the configuration form;
/// with a form to submit one (an empty submitted form accepts the defaults:
/// an "instant room", §10.1.2); with `destroy` to destroy the room.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Default)]
#[xml(namespace = NS, name = "query")]
pub struct OwnerQuery {
    #[xml(child(default))]
    pub form: Option<DataForm>,
    #[xml(child(default))]
    pub destroy: Option<Destroy>,
}

impl IqGetPayload for OwnerQuery {}
impl IqSetPayload for OwnerQuery {}
impl IqResultPayload for OwnerQuery {}

impl OwnerQuery {
    /// Accepts the room's default configuration, unlocking a room just created.
    pub fn instant() -> Self {
        Self {
            form: Some(DataForm {
                type_: DataFormType::Submit,
                title: None,
                instructions: None,
                fields: Vec::new(),
            }),
            destroy: None,
        }
    }
}

/// `<destroy/>`: the room goes away, its occupants told why and where to go.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "destroy")]
pub struct Destroy {
    /// A room that replaces this one.
    #[xml(attribute(default))]
    pub jid: Option<BareJid>,
    #[xml(extract(default, fields(text(type_ = String))))]
    pub reason: Option<String>,
}

/// The `<destroy/>` an occupant is told of, inside the `muc#user` payload of
/// its own unavailable presence (§10.9).
///
/// xmpp-parsers 0.23's `MucUser` has no field for it and drops it unread,
/// which would make the room's last word a silent departure: it is read
/// here instead ([`take_user_destroy`]).
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = "http://jabber.org/protocol/muc#user", name = "destroy")]
pub struct UserDestroy {
    #[xml(attribute(default))]
    pub jid: Option<BareJid>,
    #[xml(extract(default, fields(text(type_ = String))))]
    pub reason: Option<String>,
}

/// Takes the `<destroy/>` out of a `muc#user` payload (see [`UserDestroy`]),
/// leaving the rest for `MucUser`.
pub fn take_user_destroy(payload: &mut tokio_xmpp::minidom::Element) -> Option<UserDestroy> {
    const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
    if !payload.is("x", MUC_USER) {
        return None;
    }
    let destroy = payload.remove_child("destroy", MUC_USER)?;
    UserDestroy::try_from(destroy).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_xmpp::minidom::Element;

    #[test]
    fn an_instant_room_submits_an_empty_form() {
        let element = Element::from(OwnerQuery::instant());
        let xml = String::from(&element);
        assert_eq!(
            xml,
            "<query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'/></query>"
        );
        assert_eq!(
            OwnerQuery::try_from(element).unwrap(),
            OwnerQuery::instant()
        );
    }

    #[test]
    fn destroy_parses_with_its_reason_and_replacement() {
        let xml = "<query xmlns='http://jabber.org/protocol/muc#owner'>\
             <destroy jid='new@conference.example.org'><reason>moved</reason></destroy></query>";
        let element: Element = xml.parse().unwrap();
        let query = OwnerQuery::try_from(element).unwrap();
        let destroy = query.destroy.unwrap();
        assert_eq!(destroy.reason.as_deref(), Some("moved"));
        assert_eq!(
            destroy.jid.map(|j| j.to_string()).as_deref(),
            Some("new@conference.example.org")
        );
        // Something else in the namespace's place is not this payload.
        let other: Element = "<query xmlns='http://jabber.org/protocol/muc#admin'/>"
            .parse()
            .unwrap();
        assert!(OwnerQuery::try_from(other).is_err());
    }

    #[test]
    fn a_destroyed_rooms_word_is_read_beside_the_occupants_payload() {
        use tokio_xmpp::parsers::muc::user::MucUser;
        let xml = "<x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' role='none'/>\
             <destroy jid='new@muc.example.org'><reason>moved</reason></destroy>\
             <status code='110'/></x>";
        let mut payload: Element = xml.parse().unwrap();
        let destroy = take_user_destroy(&mut payload).unwrap();
        assert_eq!(destroy.reason.as_deref(), Some("moved"));
        assert_eq!(
            destroy.jid.map(|j| j.to_string()).as_deref(),
            Some("new@muc.example.org")
        );
        let user = MucUser::try_from(payload).unwrap();
        assert_eq!(user.items.len(), 1);
        // Another payload is left alone.
        let mut other: Element = "<x xmlns='jabber:x:data' type='form'/>".parse().unwrap();
        assert!(take_user_destroy(&mut other).is_none());
    }
}
