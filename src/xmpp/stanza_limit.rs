//! A bound on the size of one stanza from the server, so that an endless one cannot eat memory.
//!
//! tokio-xmpp 6 (through rxml and xso) builds each top-level element in memory
//! until its end tag arrives and has no size limit of its own: a server (or
//! anything between us and it) that opens `<message>` and never closes it grows
//! the client without bound. Until the crate has a limit, this reader sits under
//! its buffer and follows the element nesting of the bytes going by, just well
//! enough to know where each top-level element starts and ends (tags, quoted
//! attribute values, `<?…?>`; XMPP allows no comments, CDATA or DTDs). When
//! one element passes [`MAX_STANZA_BYTES`], reading fails with an error, which
//! ends the connection like any other broken stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest top-level element (stanza or nonza) accepted from the server.
///
/// Servers cap what they relay far lower (Prosody: 256 KiB from clients,
/// 512 KiB between servers; ejabberd: 256 KiB), so only the server's own
/// answers (a roster, a room list) come near; 4 MiB leaves those room.
pub const MAX_STANZA_BYTES: usize = 4 << 20;

/// The error a reader fails with when an element passes the limit.
#[derive(Debug, thiserror::Error)]
#[error("the server sent an element of more than {limit} bytes")]
pub struct TooLarge {
    pub limit: usize,
}

/// Reads from `S`, failing once a single top-level element passes the limit.
#[derive(Debug)]
pub struct StanzaLimit<S> {
    inner: S,
    scan: Scanner,
}

impl<S> StanzaLimit<S> {
    pub fn new(inner: S) -> Self {
        Self::with_limit(inner, MAX_STANZA_BYTES)
    }

    pub fn with_limit(inner: S, limit: usize) -> Self {
        Self {
            inner,
            scan: Scanner::new(limit),
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StanzaLimit<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                match this.scan.feed(new) {
                    Ok(()) => Poll::Ready(Ok(())),
                    Err(too_large) => {
                        // A failed read hands back nothing (tokio's readers check).
                        buf.set_filled(before);
                        tracing::warn!("{too_large}: disconnecting");
                        Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, too_large)))
                    }
                }
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StanzaLimit<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Where the scanner is within the markup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Character data (`>` is allowed in it).
    Text,
    /// Just after `<`.
    Open,
    /// In an element's name; `closing` for `</…`.
    Name { closing: bool },
    /// In a tag after its name; `slash` when the last byte was `/` (so `>` ends an empty element).
    Tag { closing: bool, slash: bool },
    /// In an attribute value quoted with `quote` (where `>` and `/` mean nothing).
    Quoted { quote: u8 },
    /// In `<?…>` or `<!…>`.
    Special,
}

/// The longest name prefix kept: enough to tell `stream:stream` apart.
const NAME_KEPT: usize = 32;

#[derive(Debug)]
struct Scanner {
    limit: usize,
    state: State,
    /// Elements open, the stream header counting as one.
    depth: u32,
    /// Bytes of the top-level element now arriving.
    current: usize,
    name: [u8; NAME_KEPT],
    name_len: usize,
}

impl Scanner {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            state: State::Text,
            depth: 0,
            current: 0,
            name: [0; NAME_KEPT],
            name_len: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), TooLarge> {
        for &b in bytes {
            self.step(b);
            if self.depth <= 1 && self.state == State::Text {
                // Between top-level elements (whitespace keepalives included).
                self.current = 0;
            } else {
                self.current += 1;
                if self.current > self.limit {
                    return Err(TooLarge { limit: self.limit });
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, b: u8) {
        self.state = match self.state {
            State::Text if b == b'<' => State::Open,
            State::Text => State::Text,
            State::Open => match b {
                b'/' => {
                    self.name_len = 0;
                    State::Name { closing: true }
                }
                b'?' | b'!' => State::Special,
                _ => {
                    self.name_len = 0;
                    self.push_name(b);
                    State::Name { closing: false }
                }
            },
            State::Name { closing } if is_name_end(b) => self.tag(b, closing, false),
            State::Name { closing } => {
                self.push_name(b);
                State::Name { closing }
            }
            State::Tag { closing, slash } => self.tag(b, closing, slash),
            State::Quoted { quote } if b == quote => State::Tag {
                closing: false,
                slash: false,
            },
            State::Quoted { quote } => State::Quoted { quote },
            State::Special if b == b'>' => State::Text,
            State::Special => State::Special,
        }
    }

    /// A byte inside a tag, after its name.
    fn tag(&mut self, b: u8, closing: bool, slash: bool) -> State {
        match b {
            b'>' => {
                if closing {
                    self.depth = self.depth.saturating_sub(1);
                } else if slash {
                    // An empty element: nothing stays open.
                } else if self.depth <= 1 && self.is_stream_header() {
                    // A stream (re)start after TLS or SASL: the old header is never closed.
                    self.depth = 1;
                } else {
                    self.depth = self.depth.saturating_add(1);
                }
                State::Text
            }
            b'"' | b'\'' => State::Quoted { quote: b },
            b'/' => State::Tag {
                closing,
                slash: true,
            },
            _ => State::Tag {
                closing,
                slash: false,
            },
        }
    }

    fn push_name(&mut self, b: u8) {
        if self.name_len < NAME_KEPT {
            self.name[self.name_len] = b;
        }
        self.name_len = self.name_len.saturating_add(1);
    }

    /// `stream` in any prefix: at the top level no stanza has that name.
    fn is_stream_header(&self) -> bool {
        let name = &self.name[..self.name_len.min(NAME_KEPT)];
        self.name_len <= NAME_KEPT && (name == b"stream" || name.ends_with(b":stream"))
    }
}

fn is_name_end(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='x' from='example.org' version='1.0'>";

    fn feed(limit: usize, parts: &[&str]) -> Result<(), TooLarge> {
        let mut scan = Scanner::new(limit);
        for part in parts {
            scan.feed(part.as_bytes())?;
        }
        Ok(())
    }

    #[test]
    fn many_small_stanzas_pass_whatever_their_total() {
        let stanza = "<message from='a@b/c' to='d@e' id='1'><body>hi &gt; there</body></message>";
        let mut parts = vec![HEADER];
        parts.extend(std::iter::repeat_n(stanza, 10_000));
        parts.push(" ");
        assert!(feed(200, &parts).is_ok());
    }

    #[test]
    fn one_stanza_over_the_limit_fails() {
        let body = "x".repeat(300);
        let stanza = format!("<message><body>{body}</body></message>");
        assert!(feed(200, &[HEADER, &stanza]).is_err());
        // The same just under the limit passes.
        let body = "x".repeat(150);
        let stanza = format!("<message><body>{body}</body></message>");
        assert!(feed(200, &[HEADER, &stanza, &stanza]).is_ok());
    }

    #[test]
    fn an_endless_stanza_fails_even_in_small_reads() {
        let mut scan = Scanner::new(10_000);
        scan.feed(HEADER.as_bytes()).unwrap();
        scan.feed(b"<message><body>").unwrap();
        let failed = (0..100_000).any(|_| scan.feed(b"abc").is_err());
        assert!(failed);
    }

    #[test]
    fn an_endless_tag_or_header_fails() {
        let attrs = " a='1'".repeat(100);
        assert!(feed(200, &[HEADER, "<message", &attrs]).is_err());
        assert!(feed(200, &["<stream:stream", &attrs]).is_err());
    }

    #[test]
    fn quoted_angle_brackets_and_slashes_do_not_end_a_stanza() {
        // Were `>` or `/>` inside the quotes taken as markup, the stanza would
        // end early and the long body after it would pass.
        let body = "y".repeat(300);
        let stanza = format!("<message id='a/>b' to=\"c>d\"><body>{body}</body></message>");
        assert!(feed(200, &[HEADER, &stanza]).is_err());
    }

    #[test]
    fn empty_elements_and_nested_ones_close_properly() {
        let stanza = "<iq type='result' id='r'><query xmlns='jabber:iq:roster'>\
            <item jid='a@b'/><item jid='c@d'><group>G</group></item></query></iq>";
        let mut scan = Scanner::new(400);
        scan.feed(HEADER.as_bytes()).unwrap();
        for _ in 0..1000 {
            scan.feed(stanza.as_bytes()).unwrap();
            assert_eq!(
                scan.depth, 1,
                "back at the stream's level after each stanza"
            );
        }
    }

    #[test]
    fn stream_restarts_do_not_nest() {
        let stanza = format!("<message><body>{}</body></message>", "z".repeat(100));
        let mut scan = Scanner::new(200);
        // As after STARTTLS and SASL: three headers, none closed.
        for _ in 0..3 {
            scan.feed(HEADER.as_bytes()).unwrap();
            scan.feed(b"<stream:features><mechanisms/></stream:features>")
                .unwrap();
        }
        for _ in 0..100 {
            scan.feed(stanza.as_bytes()).unwrap();
        }
        assert_eq!(scan.depth, 1);
        scan.feed(b"</stream:stream>").unwrap();
        assert_eq!(scan.depth, 0);
    }

    #[test]
    fn an_element_named_stream_inside_a_stanza_is_an_ordinary_one() {
        let mut scan = Scanner::new(10_000);
        scan.feed(HEADER.as_bytes()).unwrap();
        scan.feed(b"<iq><stream xmlns='x'><a/></stream></iq>")
            .unwrap();
        assert_eq!(scan.depth, 1);
    }

    #[tokio::test]
    async fn the_reader_fails_once_the_limit_is_passed() {
        let mut data = HEADER.as_bytes().to_vec();
        data.extend_from_slice(b"<message><body>");
        data.extend(std::iter::repeat_n(b'q', 100_000));
        let mut reader = StanzaLimit::with_limit(&data[..], 10_000);
        let mut out = Vec::new();
        let error = reader.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error.get_ref().is_some_and(|e| e.is::<TooLarge>()),
            "{error}"
        );
        assert!(out.len() < 20_000, "read {} bytes", out.len());
    }
}
