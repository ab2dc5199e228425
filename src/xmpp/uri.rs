//! `xmpp:` URIs (RFC 5122), as passed on the command line by desktop links.

use std::str::FromStr;

use percent_encoding::percent_decode_str;
use tokio_xmpp::jid::{BareJid, Jid};

/// A parsed `xmpp:` URI: whom to open a chat with, and an optional draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppUri {
    pub jid: BareJid,
    /// The `body` of a `?message;body=…` query, as a draft for the composer.
    pub body: Option<String>,
    /// A `?join` link: the address is a room to join (XEP-0147).
    pub join: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not an xmpp: URI")]
    Scheme,
    #[error("the URI's address is not valid UTF-8")]
    Encoding,
    #[error("the URI's address is not a valid JID: {0}")]
    Jid(String),
}

impl FromStr for XmppUri {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let input = input.trim();
        let rest = input
            .get(..5)
            .filter(|s| s.eq_ignore_ascii_case("xmpp:"))
            .map(|_| &input[5..])
            .ok_or(Error::Scheme)?;
        // Authority form "xmpp://account@host/target": the target is what we open.
        let rest = match rest.strip_prefix("//") {
            Some(auth) => auth.split_once('/').map(|(_, t)| t).unwrap_or(""),
            None => rest,
        };
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let path = path.split('#').next().unwrap_or("");
        let decoded = percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| Error::Encoding)?;
        let jid = Jid::new(&decoded).map_err(|e| Error::Jid(e.to_string()))?;
        let body = query.and_then(message_body);
        let join = query.is_some_and(|q| q.split([';', '#']).next() == Some("join"));
        Ok(Self {
            jid: jid.to_bare(),
            body,
            join,
        })
    }
}

/// The body of a `message;body=…` query (key-value pairs separated by `;`).
fn message_body(query: &str) -> Option<String> {
    let query = query.split('#').next().unwrap_or("");
    let mut parts = query.split(';');
    if parts.next() != Some("message") {
        return None;
    }
    parts
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "body")
        .and_then(|(_, v)| percent_decode_str(v).decode_utf8().ok())
        .map(|v| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// Whether a command-line argument looks like an `xmpp:` URI.
pub fn is_xmpp_uri(arg: &str) -> bool {
    arg.get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("xmpp:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<XmppUri, Error> {
        s.parse()
    }

    #[test]
    fn plain_and_authority_forms() {
        assert_eq!(
            parse("xmpp:bob@example.org").unwrap().jid.as_str(),
            "bob@example.org"
        );
        assert_eq!(
            parse("XMPP://me@example.net/bob@example.org")
                .unwrap()
                .jid
                .as_str(),
            "bob@example.org"
        );
        // A resource is dropped: chats are per contact.
        assert_eq!(
            parse("xmpp:bob@example.org/phone").unwrap().jid.as_str(),
            "bob@example.org"
        );
    }

    #[test]
    fn percent_encoding_and_message_body() {
        let uri = parse("xmpp:caf%C3%A9@example.org?message;subject=x;body=hi%20there").unwrap();
        assert_eq!(uri.jid.as_str(), "café@example.org");
        assert_eq!(uri.body.as_deref(), Some("hi there"));
        assert_eq!(parse("xmpp:bob@example.org?join").unwrap().body, None);
        assert!(parse("xmpp:team@conference.example.org?join").unwrap().join);
        assert!(
            parse("xmpp:team@conference.example.org?join;password=x")
                .unwrap()
                .join
        );
        assert!(
            !parse("xmpp:bob@example.org?message;body=join")
                .unwrap()
                .join
        );
        assert!(!parse("xmpp:bob@example.org").unwrap().join);
        assert_eq!(parse("xmpp:bob@example.org?message").unwrap().body, None);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(parse("https://example.org"), Err(Error::Scheme));
        assert!(matches!(parse("xmpp:"), Err(Error::Jid(_))));
        assert_eq!(parse("xmpp:%FF@example.org"), Err(Error::Encoding));
        assert!(matches!(parse("xmpp:a@b@c"), Err(Error::Jid(_))));
        assert!(matches!(parse("xmpp:@example.org"), Err(Error::Jid(_))));
        assert!(!is_xmpp_uri("xmp"));
        assert!(is_xmpp_uri("xmpp:x"));
    }
}
