//! The `muc#admin` payload (XEP-0045 §8–9), which xmpp-parsers 0.23 lacks:
//! what moderators and admins ask of a room (kick, voice, ban, membership).

use tokio_xmpp::jid::BareJid;
use tokio_xmpp::parsers::iq::{IqResultPayload, IqSetPayload};
use xso::{AsXml, FromXml};

use super::room::{Affiliation, Role};

pub const NS: &str = "http://jabber.org/protocol/muc#admin";

/// `<query xmlns='…muc#admin'>` with the items to change.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq, Default)]
#[xml(namespace = NS, name = "query")]
pub struct AdminQuery {
    #[xml(child(n = ..))]
    pub items: Vec<AdminItem>,
}

impl IqSetPayload for AdminQuery {}
impl IqResultPayload for AdminQuery {}

/// One change: a role by nickname, or an affiliation by address. The
/// values stay text here: "none" must be written out (it takes a role or an
/// affiliation away), which the crate's own attribute types leave unsaid.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "item")]
pub struct AdminItem {
    #[xml(attribute(default))]
    pub nick: Option<String>,
    #[xml(attribute(default))]
    pub jid: Option<BareJid>,
    #[xml(attribute(default))]
    pub role: Option<String>,
    #[xml(attribute(default))]
    pub affiliation: Option<String>,
    #[xml(extract(default, fields(text(type_ = String))))]
    pub reason: Option<String>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Moderator => "moderator",
        Role::Participant => "participant",
        Role::Visitor => "visitor",
        Role::None => "none",
    }
}

fn affiliation_name(affiliation: Affiliation) -> &'static str {
    match affiliation {
        Affiliation::Owner => "owner",
        Affiliation::Admin => "admin",
        Affiliation::Member => "member",
        Affiliation::Outcast => "outcast",
        Affiliation::None => "none",
    }
}

impl AdminQuery {
    /// Gives the occupant `nick` a role (`None` kicks them, §8.2; `Visitor`
    /// takes their voice, §8.4).
    pub fn role(nick: &str, role: Role, reason: Option<String>) -> Self {
        Self {
            items: vec![AdminItem {
                nick: Some(nick.to_string()),
                jid: None,
                role: Some(role_name(role).to_string()),
                affiliation: None,
                reason,
            }],
        }
    }

    /// Gives the account `jid` an affiliation with the room (`Outcast` bans
    /// them, §9.1).
    pub fn affiliation(jid: BareJid, affiliation: Affiliation, reason: Option<String>) -> Self {
        Self {
            items: vec![AdminItem {
                nick: None,
                jid: Some(jid),
                role: None,
                affiliation: Some(affiliation_name(affiliation).to_string()),
                reason,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_xmpp::minidom::Element;

    #[test]
    fn a_kick_names_the_nickname_and_writes_role_none() {
        let kick = AdminQuery::role("Bob", Role::None, Some("spam".into()));
        let xml = String::from(&Element::from(kick.clone()));
        assert_eq!(
            xml,
            "<query xmlns='http://jabber.org/protocol/muc#admin'>\
             <item nick='Bob' role='none'><reason>spam</reason></item></query>"
        );
        let back = AdminQuery::try_from(xml.parse::<Element>().unwrap()).unwrap();
        assert_eq!(back, kick);
    }

    #[test]
    fn a_ban_names_the_address_and_writes_outcast() {
        let ban = AdminQuery::affiliation(
            "mallory@example.org".parse().unwrap(),
            Affiliation::Outcast,
            None,
        );
        assert_eq!(
            String::from(&Element::from(ban)),
            "<query xmlns='http://jabber.org/protocol/muc#admin'>\
             <item affiliation='outcast' jid='mallory@example.org'/></query>"
        );
        let none =
            AdminQuery::affiliation("bob@example.org".parse().unwrap(), Affiliation::None, None);
        assert!(String::from(&Element::from(none)).contains("affiliation='none'"));
        // The owner namespace's query is not this one.
        let other: Element = "<query xmlns='http://jabber.org/protocol/muc#owner'/>"
            .parse()
            .unwrap();
        assert!(AdminQuery::try_from(other).is_err());
    }
}
