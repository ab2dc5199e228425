//! The contact list as the UI shows it: roster items plus live presence.

use std::collections::{BTreeMap, HashMap};

use crate::xmpp::{Availability, BareJid, Contact, Jid, Subscription};

/// The roster of one account and the presence of each contact's resources.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    contacts: BTreeMap<BareJid, Contact>,
    /// Per bare JID: resource → (availability, status).
    presence: HashMap<BareJid, HashMap<String, (Availability, Option<String>)>>,
}

impl Roster {
    /// Replaces the whole roster (after sign-in); presence is kept.
    pub fn replace(&mut self, contacts: Vec<Contact>) {
        self.contacts = contacts
            .into_iter()
            .filter(|c| c.subscription != Subscription::Removed)
            .map(|c| (c.jid.clone(), c))
            .collect();
    }

    /// Applies a roster push.
    pub fn push(&mut self, contact: Contact) {
        if contact.subscription == Subscription::Removed {
            self.contacts.remove(&contact.jid);
        } else {
            self.contacts.insert(contact.jid.clone(), contact);
        }
    }

    /// Records a resource's presence.
    pub fn presence(&mut self, from: &Jid, availability: Availability, status: Option<String>) {
        let bare = from.to_bare();
        let resource = from.resource().map(|r| r.to_string()).unwrap_or_default();
        let resources = self.presence.entry(bare.clone()).or_default();
        if availability == Availability::Offline {
            resources.remove(&resource);
            if resources.is_empty() {
                // Keep the last status message of a contact that went offline.
                resources.insert(String::new(), (Availability::Offline, status));
            }
        } else {
            resources.remove("");
            resources.insert(resource, (availability, status));
        }
    }

    /// Forgets all presence (the connection was lost: nothing is known any more).
    pub fn clear_presence(&mut self) {
        self.presence.clear();
    }

    /// The most available state among a contact's resources, and its status text.
    pub fn availability(&self, jid: &BareJid) -> (Availability, Option<&str>) {
        self.presence
            .get(jid)
            .and_then(|resources| resources.values().min_by_key(|(a, _)| *a))
            .map(|(a, s)| (*a, s.as_deref()))
            .unwrap_or((Availability::Offline, None))
    }

    pub fn get(&self, jid: &BareJid) -> Option<&Contact> {
        self.contacts.get(jid)
    }

    /// The name to show for a JID: the roster name, else the JID's local part, else the JID.
    pub fn display_name(&self, jid: &BareJid) -> String {
        self.contacts
            .get(jid)
            .and_then(|c| c.name.clone())
            .or_else(|| jid.node().map(|n| n.to_string()))
            .unwrap_or_else(|| jid.to_string())
    }

    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }

    /// Contacts by group (sorted, ungrouped last as `None`), each sorted by
    /// availability then name.
    pub fn groups(&self) -> Vec<(Option<String>, Vec<&Contact>)> {
        let mut groups: BTreeMap<Option<String>, Vec<&Contact>> = BTreeMap::new();
        for contact in self.contacts.values() {
            if contact.groups.is_empty() {
                groups.entry(None).or_default().push(contact);
            }
            for group in &contact.groups {
                groups.entry(Some(group.clone())).or_default().push(contact);
            }
        }
        let mut list: Vec<_> = groups
            .into_iter()
            .map(|(group, mut contacts)| {
                contacts.sort_by_cached_key(|c| {
                    (
                        self.availability(&c.jid).0 == Availability::Offline,
                        self.display_name(&c.jid).to_lowercase(),
                    )
                });
                (group, contacts)
            })
            .collect();
        // BTreeMap puts None first; people expect "Other contacts" at the end.
        let ungrouped_first = list.first().is_some_and(|(g, _)| g.is_none());
        list.rotate_left(usize::from(ungrouped_first));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn contact(jid: &str, name: Option<&str>, groups: &[&str]) -> Contact {
        Contact {
            jid: BareJid::from_str(jid).unwrap(),
            name: name.map(String::from),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            subscription: Subscription::Both,
        }
    }

    fn jid(s: &str) -> Jid {
        Jid::from_str(s).unwrap()
    }

    #[test]
    fn best_resource_wins_and_offline_keeps_status() {
        let mut r = Roster::default();
        let bob = BareJid::from_str("bob@x").unwrap();
        r.presence(
            &jid("bob@x/phone"),
            Availability::Away,
            Some("phone".into()),
        );
        r.presence(&jid("bob@x/pc"), Availability::Available, None);
        assert_eq!(r.availability(&bob).0, Availability::Available);
        r.presence(&jid("bob@x/pc"), Availability::Offline, None);
        assert_eq!(r.availability(&bob), (Availability::Away, Some("phone")));
        r.presence(
            &jid("bob@x/phone"),
            Availability::Offline,
            Some("bye".into()),
        );
        assert_eq!(r.availability(&bob), (Availability::Offline, Some("bye")));
        r.presence(&jid("bob@x/pc"), Availability::DoNotDisturb, None);
        assert_eq!(r.availability(&bob).0, Availability::DoNotDisturb);
    }

    #[test]
    fn groups_sorted_with_ungrouped_last_and_online_first() {
        let mut r = Roster::default();
        r.replace(vec![
            contact("zed@x", None, &[]),
            contact("amy@x", Some("Amy"), &["Work", "Friends"]),
            contact("bob@x", Some("Bob"), &["Work"]),
        ]);
        r.presence(&jid("bob@x/pc"), Availability::Available, None);
        let groups = r.groups();
        let names: Vec<_> = groups.iter().map(|(g, _)| g.clone()).collect();
        assert_eq!(
            names,
            vec![Some("Friends".into()), Some("Work".into()), None]
        );
        let work: Vec<_> = groups[1].1.iter().map(|c| c.jid.to_string()).collect();
        assert_eq!(work, vec!["bob@x", "amy@x"]);
        assert_eq!(r.display_name(&BareJid::from_str("zed@x").unwrap()), "zed");
    }

    #[test]
    fn pushes_add_change_and_remove() {
        let mut r = Roster::default();
        r.push(contact("bob@x", Some("Bob"), &[]));
        r.push(contact("bob@x", Some("Robert"), &[]));
        assert_eq!(
            r.display_name(&BareJid::from_str("bob@x").unwrap()),
            "Robert"
        );
        let mut gone = contact("bob@x", None, &[]);
        gone.subscription = Subscription::Removed;
        r.push(gone);
        assert!(r.is_empty());
    }
}
