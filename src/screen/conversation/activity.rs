//! Comings and goings in a room, shown between its messages as one short
//! line per quiet stretch ("Bob and Carol joined · Dave left") instead of a
//! line per presence: a busy channel's reconnects would bury what is said.
//! Kept in memory for the session only, as presence is not history.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::fl;

/// How many changes a room keeps (the newest).
pub const MAX_KEPT: usize = 200;
/// Names listed in one phrase before "and N others".
const MAX_NAMED: usize = 3;

/// Something that happened to the room's company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Joined(String),
    Left(String),
    Renamed {
        from: String,
        to: String,
    },
    /// Removed by a moderator (for now).
    Kicked(String),
    Banned(String),
    /// Out because the room is for members only now, or they no longer are one.
    NoLongerMember(String),
}

/// A change and when the window heard of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub time: DateTime<Utc>,
    pub change: Change,
}

/// A room's recent changes, oldest first, at most [`MAX_KEPT`].
#[derive(Debug, Clone, Default)]
pub struct Log {
    changes: VecDeque<Activity>,
}

impl Log {
    pub fn push(&mut self, time: DateTime<Utc>, change: Change) {
        if self.changes.len() == MAX_KEPT {
            self.changes.pop_front();
        }
        self.changes.push_back(Activity { time, change });
    }

    pub fn iter(&self) -> impl Iterator<Item = &Activity> {
        self.changes.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// One line for a stretch of changes, in the user's words; None when they
/// cancel out (someone who left and came back, or came and went).
pub fn summary<'a>(stretch: impl IntoIterator<Item = &'a Change>) -> Option<String> {
    // Per nickname, whether it was there before the stretch and after it,
    // in the order the names first appear.
    let mut presence: Vec<(&'a str, bool, bool)> = Vec::new();
    // Each phrase where what it says first happened, so the line reads in order.
    let mut phrases: Vec<(usize, String)> = Vec::new();
    let (mut first_joined, mut first_left) = (None, None);
    fn seen<'a>(
        presence: &mut Vec<(&'a str, bool, bool)>,
        nick: &'a str,
        before: bool,
        after: bool,
    ) {
        match presence.iter_mut().find(|(n, ..)| *n == nick) {
            Some(entry) => entry.2 = after,
            None => presence.push((nick, before, after)),
        }
    }
    for (at, change) in stretch.into_iter().enumerate() {
        let said = match change {
            Change::Joined(nick) => {
                seen(&mut presence, nick, false, true);
                first_joined.get_or_insert(at);
                continue;
            }
            Change::Left(nick) => {
                seen(&mut presence, nick, true, false);
                first_left.get_or_insert(at);
                continue;
            }
            Change::Renamed { from, to } => fl!(
                "room-activity-renamed",
                old = from.clone(),
                new = to.clone()
            ),
            Change::Kicked(nick) => fl!("room-activity-kicked", name = nick.clone()),
            Change::Banned(nick) => fl!("room-activity-banned", name = nick.clone()),
            Change::NoLongerMember(nick) => fl!("room-activity-no-member", name = nick.clone()),
        };
        phrases.push((at, said));
    }
    let joined: Vec<&str> = presence
        .iter()
        .filter(|(_, before, after)| !before && *after)
        .map(|(nick, ..)| *nick)
        .collect();
    let left: Vec<&str> = presence
        .iter()
        .filter(|(_, before, after)| *before && !after)
        .map(|(nick, ..)| *nick)
        .collect();
    if let (false, Some(at)) = (joined.is_empty(), first_joined) {
        phrases.push((at, fl!("room-activity-joined", names = names(&joined))));
    }
    if let (false, Some(at)) = (left.is_empty(), first_left) {
        phrases.push((at, fl!("room-activity-left", names = names(&left))));
    }
    phrases.sort_by_key(|(at, _)| *at);
    let phrases: Vec<String> = phrases.into_iter().map(|(_, said)| said).collect();
    (!phrases.is_empty()).then(|| phrases.join(" · "))
}

/// "Bob", "Bob and Carol", "Bob, Carol and Dave", "Bob, Carol, Dave and 4 others".
fn names(nicks: &[&str]) -> String {
    match nicks {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [first, second] => fl!(
            "room-names-two",
            first = first.to_string(),
            second = second.to_string()
        ),
        [first @ .., last] if nicks.len() <= MAX_NAMED => fl!(
            "room-names-many",
            first = first.join(&fl!("room-names-separator")),
            last = last.to_string()
        ),
        _ => fl!(
            "room-names-more",
            first = nicks[..MAX_NAMED].join(&fl!("room-names-separator")),
            count = nicks.len().saturating_sub(MAX_NAMED)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(nick: &str) -> Change {
        Change::Joined(nick.into())
    }

    fn left(nick: &str) -> Change {
        Change::Left(nick.into())
    }

    #[test]
    fn a_stretch_is_one_line() {
        assert_eq!(summary(&[joined("Bob")]).as_deref(), Some("Bob joined"));
        assert_eq!(
            summary(&[joined("Bob"), left("Dave"), joined("Carol")]).as_deref(),
            Some("Bob and Carol joined · Dave left")
        );
        assert_eq!(
            summary(&[joined("A"), joined("B"), joined("C")]).as_deref(),
            Some("A, B and C joined")
        );
        let crowd: Vec<Change> = (1..=7).map(|n| joined(&format!("P{n}"))).collect();
        assert_eq!(
            summary(&crowd).as_deref(),
            Some("P1, P2, P3 and 4 others joined")
        );
    }

    #[test]
    fn what_cancels_out_is_not_said() {
        // A reconnect, and a visit between two messages.
        assert_eq!(summary(&[left("Bob"), joined("Bob")]), None);
        assert_eq!(summary(&[joined("Eve"), left("Eve")]), None);
        assert_eq!(
            summary(&[left("Bob"), joined("Bob"), left("Bob")]).as_deref(),
            Some("Bob left")
        );
        // A new name, then gone under it: both, in that order.
        assert_eq!(
            summary(&[
                Change::Renamed {
                    from: "Carol".into(),
                    to: "Caroline".into()
                },
                left("Caroline"),
            ])
            .as_deref(),
            Some("Carol is now Caroline · Caroline left")
        );
        assert_eq!(summary(&[]), None);
    }

    #[test]
    fn removals_and_new_names_are_always_said() {
        assert_eq!(
            summary(&[
                Change::Kicked("Mallory".into()),
                Change::Renamed {
                    from: "Bob".into(),
                    to: "Robert".into()
                },
                joined("Carol"),
                Change::Banned("Trudy".into()),
            ])
            .as_deref(),
            Some(
                "Mallory was removed from the room · Bob is now Robert · Carol joined · \
                 Trudy was banned from the room"
            )
        );
    }

    #[test]
    fn the_log_keeps_the_newest() {
        let mut log = Log::default();
        for n in 0..MAX_KEPT + 5 {
            log.push(Utc::now(), joined(&n.to_string()));
        }
        assert_eq!(log.iter().count(), MAX_KEPT);
        assert_eq!(log.iter().next().map(|a| &a.change), Some(&joined("5")));
    }
}
