//! What a line typed in a room's composer asks for: a message, or one of the
//! commands Gajim and IRC users type (`/kick`, `/ban`, `/topic`, `/nick`,
//! `/invite`, `/voice`, `/mute`, `/member`, `/admin`, `/owner`, `/revoke`).

use std::collections::BTreeMap;

use crate::fl;
use crate::xmpp::BareJid;
use crate::xmpp::room::{Affiliation, Occupant, Role, RoomRequest};

/// What to do with a line typed in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// Send it as a message (`/me …` included, and `//…` as `/…`).
    Send(String),
    Request(RoomRequest),
    /// A command that cannot be carried out as typed, and why.
    Wrong(String),
}

/// The occupant whose nickname starts `args` (the longest, as nicknames may
/// hold spaces), and what follows it.
fn occupant<'a>(
    args: &'a str,
    occupants: &'a BTreeMap<String, Occupant>,
) -> Option<(&'a Occupant, Option<String>)> {
    occupants
        .values()
        .filter(|o| {
            args.strip_prefix(o.nick.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
        })
        .max_by_key(|o| o.nick.len())
        .map(|o| {
            let rest = args[o.nick.len()..].trim();
            (o, (!rest.is_empty()).then(|| rest.to_string()))
        })
}

/// A lasting standing for an occupant by nickname (when the room shows
/// their address) or for an address, with the reason after it.
fn affiliation(
    args: &str,
    occupants: &BTreeMap<String, Occupant>,
    affiliation: Affiliation,
) -> Typed {
    let (jid, reason) = match occupant(args, occupants) {
        Some((o, reason)) => match &o.jid {
            Some(jid) => (jid.clone(), reason),
            None => {
                return Typed::Wrong(fl!("room-command-no-address", nick = o.nick.clone()));
            }
        },
        None => {
            let (first, rest) = args.split_once(' ').unwrap_or((args, ""));
            match first.parse::<BareJid>() {
                Ok(jid) if jid.node().is_some() => {
                    (jid, Some(rest.trim().to_string()).filter(|r| !r.is_empty()))
                }
                _ => {
                    return Typed::Wrong(fl!("room-command-nobody", nick = args.to_string()));
                }
            }
        }
    };
    Typed::Request(RoomRequest::Affiliation {
        jid,
        affiliation,
        reason,
    })
}

/// Reads a line typed in a room whose occupants are `occupants`.
pub fn typed(line: &str, occupants: &BTreeMap<String, Occupant>) -> Typed {
    let Some(command) = line.strip_prefix('/') else {
        return Typed::Send(line.to_string());
    };
    if command.starts_with('/') {
        return Typed::Send(command.to_string());
    }
    let (name, args) = command
        .split_once(char::is_whitespace)
        .map_or((command, ""), |(n, a)| (n, a.trim()));
    let role = |role: Role| match occupant(args, occupants)
        .ok_or_else(|| Typed::Wrong(fl!("room-command-nobody", nick = args.to_string())))
    {
        Ok((o, reason)) => Typed::Request(RoomRequest::Role {
            nick: o.nick.clone(),
            role,
            reason,
        }),
        Err(wrong) => wrong,
    };
    match name {
        "me" => Typed::Send(line.to_string()),
        "kick" => role(Role::None),
        "voice" => role(Role::Participant),
        "mute" => role(Role::Visitor),
        "ban" => affiliation(args, occupants, Affiliation::Outcast),
        "member" => affiliation(args, occupants, Affiliation::Member),
        "admin" => affiliation(args, occupants, Affiliation::Admin),
        "owner" => affiliation(args, occupants, Affiliation::Owner),
        // Back to no standing: a ban lifted, a membership or admin taken away.
        "unban" | "revoke" => affiliation(args, occupants, Affiliation::None),
        "topic" | "subject" => Typed::Request(RoomRequest::Subject(args.to_string())),
        "nick" if !args.is_empty() => Typed::Request(RoomRequest::Nick(args.to_string())),
        "invite" => {
            let (first, rest) = args.split_once(' ').unwrap_or((args, ""));
            match first.parse::<BareJid>() {
                Ok(jid) if jid.node().is_some() => Typed::Request(RoomRequest::Invite {
                    jid,
                    reason: Some(rest.trim().to_string()).filter(|r| !r.is_empty()),
                }),
                _ => Typed::Wrong(fl!("room-command-address", address = first.to_string())),
            }
        }
        _ => Typed::Wrong(fl!("room-command-unknown", command = name.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::Availability;

    fn people() -> BTreeMap<String, Occupant> {
        [
            ("Bob", Some("bob@example.org")),
            ("Bob Smith", None),
            ("carol", None),
        ]
        .into_iter()
        .map(|(nick, jid)| {
            (
                nick.to_string(),
                Occupant {
                    nick: nick.to_string(),
                    jid: jid.map(|j| j.parse().unwrap()),
                    role: Role::Participant,
                    affiliation: Affiliation::None,
                    availability: Availability::Available,
                    occupant_id: None,
                    is_self: false,
                },
            )
        })
        .collect()
    }

    #[test]
    fn lines_are_messages_unless_they_are_commands() {
        let people = people();
        assert_eq!(typed("hello", &people), Typed::Send("hello".into()));
        assert_eq!(typed("/me waves", &people), Typed::Send("/me waves".into()));
        assert_eq!(typed("//kick", &people), Typed::Send("/kick".into()));
        assert!(matches!(typed("/frobnicate x", &people), Typed::Wrong(_)));
    }

    #[test]
    fn commands_find_their_occupant_by_the_longest_nickname() {
        let people = people();
        assert_eq!(
            typed("/kick Bob Smith flooding", &people),
            Typed::Request(RoomRequest::Role {
                nick: "Bob Smith".into(),
                role: Role::None,
                reason: Some("flooding".into())
            })
        );
        assert_eq!(
            typed("/mute Bob", &people),
            Typed::Request(RoomRequest::Role {
                nick: "Bob".into(),
                role: Role::Visitor,
                reason: None
            })
        );
        assert!(matches!(typed("/kick Dave", &people), Typed::Wrong(_)));
        // A ban needs an address: the occupant's, when the room shows it.
        assert_eq!(
            typed("/ban Bob spam", &people),
            Typed::Request(RoomRequest::Affiliation {
                jid: "bob@example.org".parse().unwrap(),
                affiliation: Affiliation::Outcast,
                reason: Some("spam".into())
            })
        );
        assert!(matches!(typed("/ban carol", &people), Typed::Wrong(_)));
        assert_eq!(
            typed("/ban mallory@example.org", &people),
            Typed::Request(RoomRequest::Affiliation {
                jid: "mallory@example.org".parse().unwrap(),
                affiliation: Affiliation::Outcast,
                reason: None
            })
        );
    }

    #[test]
    fn standings_are_granted_and_revoked_by_nickname_or_address() {
        let people = people();
        for (line, affiliation) in [
            ("/member Bob", Affiliation::Member),
            ("/admin Bob", Affiliation::Admin),
            ("/owner Bob", Affiliation::Owner),
            ("/revoke Bob", Affiliation::None),
            ("/unban Bob", Affiliation::None),
        ] {
            assert_eq!(
                typed(line, &people),
                Typed::Request(RoomRequest::Affiliation {
                    jid: "bob@example.org".parse().unwrap(),
                    affiliation,
                    reason: None
                }),
                "{line}"
            );
        }
        assert_eq!(
            typed("/member dave@example.org welcome aboard", &people),
            Typed::Request(RoomRequest::Affiliation {
                jid: "dave@example.org".parse().unwrap(),
                affiliation: Affiliation::Member,
                reason: Some("welcome aboard".into())
            })
        );
        assert!(matches!(typed("/admin carol", &people), Typed::Wrong(_)));
    }

    #[test]
    fn topic_nick_and_invite() {
        let people = people();
        assert_eq!(
            typed("/topic Release on Friday", &people),
            Typed::Request(RoomRequest::Subject("Release on Friday".into()))
        );
        assert_eq!(
            typed("/nick Alice W", &people),
            Typed::Request(RoomRequest::Nick("Alice W".into()))
        );
        assert!(matches!(typed("/nick", &people), Typed::Wrong(_)));
        assert_eq!(
            typed("/invite dave@example.org come along", &people),
            Typed::Request(RoomRequest::Invite {
                jid: "dave@example.org".parse().unwrap(),
                reason: Some("come along".into())
            })
        );
        assert!(matches!(typed("/invite dave", &people), Typed::Wrong(_)));
    }
}
