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
}
