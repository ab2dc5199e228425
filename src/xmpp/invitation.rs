//! Direct invitations into rooms (XEP-0249, `jabber:x:conference`), which
//! xmpp-parsers 0.23 lacks; mediated ones (through the room, XEP-0045 §7.8.2)
//! are the crate's `muc::user::Invite`.

use tokio_xmpp::jid::BareJid;
use tokio_xmpp::parsers::message::MessagePayload;
use xso::{AsXml, FromXml};

pub const NS: &str = "jabber:x:conference";

/// `<x xmlns='jabber:x:conference' jid='room@…'/>` in a message to the invitee.
#[derive(FromXml, AsXml, Debug, Clone, PartialEq)]
#[xml(namespace = NS, name = "x")]
pub struct DirectInvite {
    #[xml(attribute)]
    pub jid: BareJid,
    #[xml(attribute(default))]
    pub reason: Option<String>,
    #[xml(attribute(default))]
    pub password: Option<String>,
    /// Continues a one-to-one chat in the room.
    #[xml(attribute(default))]
    pub thread: Option<String>,
}

impl MessagePayload for DirectInvite {}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_xmpp::minidom::Element;

    #[test]
    fn an_invitation_names_the_room_and_its_reason() {
        let xml = "<x xmlns='jabber:x:conference' jid='team@conference.example.org' \
                   reason='standup' password='s3cret'/>";
        let invite = DirectInvite::try_from(xml.parse::<Element>().unwrap()).unwrap();
        assert_eq!(invite.jid.as_str(), "team@conference.example.org");
        assert_eq!(invite.reason.as_deref(), Some("standup"));
        assert_eq!(invite.password.as_deref(), Some("s3cret"));
        let back = Element::from(invite.clone());
        assert_eq!(DirectInvite::try_from(back).unwrap(), invite);
        // Without the room's address it is not an invitation.
        let bare: Element = "<x xmlns='jabber:x:conference'/>".parse().unwrap();
        assert!(DirectInvite::try_from(bare).is_err());
    }
}
