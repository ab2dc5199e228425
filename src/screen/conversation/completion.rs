//! Nickname completion in a room's composer (Tab, as in Gajim and IRC
//! clients): the word before the cursor becomes the first occupant whose
//! nickname starts with it, and Tab again goes on to the next.

/// A completion under way: what the user typed, and what Tab put in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    candidates: Vec<String>,
    index: usize,
    /// The text Tab inserted last (the nickname and what follows it).
    inserted: String,
}

/// What to do to the composer's text: delete this many characters before
/// the cursor, then insert this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replace {
    pub delete: usize,
    pub insert: String,
}

/// The nickname as it goes in: addressed (`Nick: `) at the start of the
/// message, named (`Nick `) within it.
fn inserted(nick: &str, at_start: bool) -> String {
    if at_start {
        format!("{nick}: ")
    } else {
        format!("{nick} ")
    }
}

/// Tab pressed with `before` the text before the cursor (which must be at
/// the end of the text); `nicks`: who else is in the room.
pub fn complete(
    before: &str,
    nicks: &[String],
    running: Option<Completion>,
) -> Option<(Replace, Completion)> {
    // Tab again, right after a completion: the next candidate.
    if let Some(mut running) = running
        && before.ends_with(&running.inserted)
        && running.candidates.len() > 1
    {
        let start = &before[..before.len() - running.inserted.len()];
        running.index = (running.index + 1) % running.candidates.len();
        let next = inserted(&running.candidates[running.index], start.is_empty());
        let replace = Replace {
            delete: running.inserted.chars().count(),
            insert: next.clone(),
        };
        running.inserted = next;
        return Some((replace, running));
    }
    let word_start = before
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let prefix = &before[word_start..];
    if prefix.is_empty() {
        return None;
    }
    let wanted = prefix.to_lowercase();
    let mut candidates: Vec<String> = nicks
        .iter()
        .filter(|n| n.to_lowercase().starts_with(&wanted))
        .cloned()
        .collect();
    candidates.sort_by_key(|n| n.to_lowercase());
    let first = candidates.first()?;
    let insert = inserted(first, word_start == 0);
    Some((
        Replace {
            delete: prefix.chars().count(),
            insert: insert.clone(),
        },
        Completion {
            candidates,
            index: 0,
            inserted: insert,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nicks() -> Vec<String> {
        ["bob", "Bobby", "carol", "Élodie"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn a_prefix_becomes_a_nickname_addressed_at_the_start() {
        let (replace, _) = complete("bo", &nicks(), None).unwrap();
        assert_eq!(
            replace,
            Replace {
                delete: 2,
                insert: "bob: ".into()
            }
        );
        let (replace, _) = complete("thanks é", &nicks(), None).unwrap();
        assert_eq!(
            replace,
            Replace {
                delete: 1,
                insert: "Élodie ".into()
            }
        );
        assert!(complete("thanks ", &nicks(), None).is_none());
        assert!(complete("zed", &nicks(), None).is_none());
    }

    #[test]
    fn tab_again_goes_round_the_candidates() {
        let (first, running) = complete("BO", &nicks(), None).unwrap();
        assert_eq!(first.insert, "bob: ");
        let text = "bob: ";
        let (second, running) = complete(text, &nicks(), Some(running)).unwrap();
        assert_eq!(
            second,
            Replace {
                delete: 5,
                insert: "Bobby: ".into()
            }
        );
        let (third, _) = complete("Bobby: ", &nicks(), Some(running)).unwrap();
        assert_eq!(third.insert, "bob: ");
    }
}
