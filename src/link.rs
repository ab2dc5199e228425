//! Finding links in message bodies, and deciding which ones Tern may follow.

use linkify::{LinkFinder, LinkKind};

use crate::xmpp::uri::XmppUri;

/// Where a link in a message leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An `http(s):` URL, opened in the user's browser.
    Web(String),
    /// An `xmpp:` URI, opened as a chat in Tern.
    Chat(XmppUri),
}

/// A piece of a message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    Link(&'a str, Target),
}

/// Splits `body` into text and links. Only `http:`, `https:` and `xmpp:` become
/// links; any other scheme stays plain text (no `file:`, `javascript:`…).
pub fn segments(body: &str) -> Vec<Segment<'_>> {
    let mut finder = LinkFinder::new();
    finder.kinds(&[LinkKind::Url]).url_must_have_scheme(true);
    let mut out = Vec::new();
    // Offsets into `body` of the text not yet emitted.
    let mut text_start = 0;
    for span in finder.spans(body) {
        // linkify only knows "scheme://" URLs; xmpp: URIs (RFC 5122) have no "//".
        let found = match span.kind() {
            Some(_) => target(span.as_str()).map(|t| vec![(span.start(), span.end(), t)]),
            None => Some(xmpp_uris(span.as_str(), span.start())),
        };
        for (start, end, target) in found.unwrap_or_default() {
            if start > text_start {
                out.push(Segment::Text(&body[text_start..start]));
            }
            out.push(Segment::Link(&body[start..end], target));
            text_start = end;
        }
    }
    if text_start < body.len() {
        out.push(Segment::Text(&body[text_start..]));
    }
    out
}

/// `xmpp:` URIs among the words of `text` (which starts at `offset` in the body).
fn xmpp_uris(text: &str, offset: usize) -> Vec<(usize, usize, Target)> {
    let mut found = Vec::new();
    let mut pos = 0;
    for word in text.split_inclusive(char::is_whitespace) {
        let start = pos;
        pos += word.len();
        let word = word
            .trim_end()
            .trim_end_matches(['.', ',', ';', '!', '?', ')', '"', '\'']);
        if !crate::xmpp::uri::is_xmpp_uri(word) {
            continue;
        }
        if let Ok(uri) = word.parse() {
            found.push((
                offset + start,
                offset + start + word.len(),
                Target::Chat(uri),
            ));
        }
    }
    found
}

fn target(url: &str) -> Option<Target> {
    let scheme = url.split_once(':')?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "http" | "https" => Some(Target::Web(url.to_string())),
        "xmpp" => url.parse().ok().map(Target::Chat),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_and_xmpp_links_are_found_others_are_text() {
        let body = "see https://example.org/a?b=c, or xmpp:bob@example.org and file:///etc/passwd javascript:alert(1)";
        let segs = segments(body);
        let links: Vec<_> = segs
            .iter()
            .filter_map(|s| match s {
                Segment::Link(text, _) => Some(*text),
                Segment::Text(_) => None,
            })
            .collect();
        assert_eq!(
            links,
            vec!["https://example.org/a?b=c", "xmpp:bob@example.org"]
        );
        let rebuilt: String = segs
            .iter()
            .map(|s| match s {
                Segment::Text(t) | Segment::Link(t, _) => *t,
            })
            .collect();
        assert_eq!(rebuilt, body);
        assert!(
            matches!(&segs[1], Segment::Link(_, Target::Web(u)) if u == "https://example.org/a?b=c")
        );
    }

    #[test]
    fn plain_text_is_one_segment() {
        assert_eq!(segments("你好 world"), vec![Segment::Text("你好 world")]);
        assert!(segments("").is_empty());
    }
}
