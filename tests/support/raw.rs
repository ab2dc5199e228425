//! A bare XMPP client for tests that must send what Tern never would:
//! forged carbons, stray archive results, error replies, duplicate ids.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::str::FromStr;
use std::time::Duration;

use futures::StreamExt;
use tern::xmpp::Settings;
use tokio_xmpp::Stanza;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::message::Message;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::stanzastream::{Event, StanzaStream, StreamEvent};

pub struct Raw {
    stream: StanzaStream,
}

impl Raw {
    /// Signs in with Tern's own connector and announces presence.
    pub async fn connect(settings: Settings) -> Self {
        let mut stream = StanzaStream::new(
            Box::new(move |_, slot| {
                let settings = settings.clone();
                tokio::spawn(async move {
                    let connection = tern::xmpp::connector::connect(&settings)
                        .await
                        .expect("raw sign-in");
                    let _ = slot.send(connection);
                });
            }),
            64,
        );
        loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
                Ok(Some(Event::Stream(StreamEvent::Reset { .. }))) => break,
                Ok(Some(_)) => {}
                other => panic!("raw client not online: {other:?}"),
            }
        }
        stream.send(Box::new(Presence::available().into())).await;
        Self { stream }
    }

    /// Hands the session to a task that reads (and so acknowledges) whatever
    /// comes, for a client that only has to stay present: one that reads
    /// nothing stops acknowledging, and the server ends it once its
    /// stream-management queue is full. Aborting the task ends the session.
    pub fn keep_reading(mut self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { while self.stream.next().await.is_some() {} })
    }

    /// Sends a `<message/>` written as XML (namespace jabber:client is added).
    pub async fn send_message_xml(&self, xml: &str) {
        assert!(xml.starts_with("<message"), "not a message: {xml}");
        self.send_xml(xml).await;
    }

    /// Sends any stanza written as XML (`<message>`, `<presence>` or `<iq>`;
    /// namespace jabber:client is added).
    pub async fn send_xml(&self, xml: &str) {
        let name_end = xml.find([' ', '>']).expect("a tag");
        let xml = format!(
            "{} xmlns='jabber:client'{}",
            &xml[..name_end],
            &xml[name_end..]
        );
        let element = Element::from_str(&xml).expect("test XML");
        let stanza = match element.name() {
            "message" => Stanza::Message(Message::try_from(element).expect("a message")),
            "presence" => Stanza::Presence(Presence::try_from(element).expect("a presence")),
            "iq" => Stanza::Iq(Iq::try_from(element).expect("an iq")),
            other => panic!("not a stanza: {other}"),
        };
        self.stream.send(Box::new(stanza)).await;
    }

    /// Sends `<iq type='get' id='{id}' to='{to}'>{query}</iq>` and returns the
    /// payload of its result (None on an error or no answer within 5 s).
    pub async fn ask(&mut self, to: &str, id: &str, query: &str) -> Option<Element> {
        self.send_xml(&format!("<iq type='get' id='{id}' to='{to}'>{query}</iq>"))
            .await;
        match self
            .next_iq(Duration::from_secs(5), |iq| match iq {
                Iq::Result { id: got, .. } | Iq::Error { id: got, .. } => got == id,
                _ => false,
            })
            .await
        {
            Some(Iq::Result { payload, .. }) => payload,
            _ => None,
        }
    }

    /// The next stanza that matches `pred`, within `timeout`.
    async fn next_stanza(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Stanza) -> bool,
    ) -> Option<Stanza> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Event::Stanza(s))) if pred(&s) => return Some(s),
                Ok(Some(_)) => {}
                _ => return None,
            }
        }
    }

    /// The next presence that matches `pred`.
    pub async fn next_presence(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Presence) -> bool,
    ) -> Option<Presence> {
        match self
            .next_stanza(timeout, |s| matches!(s, Stanza::Presence(p) if pred(p)))
            .await
        {
            Some(Stanza::Presence(p)) => Some(p),
            _ => None,
        }
    }

    /// The next IQ that matches `pred`.
    pub async fn next_iq(&mut self, timeout: Duration, pred: impl Fn(&Iq) -> bool) -> Option<Iq> {
        match self
            .next_stanza(timeout, |s| matches!(s, Stanza::Iq(iq) if pred(iq)))
            .await
        {
            Some(Stanza::Iq(iq)) => Some(iq),
            _ => None,
        }
    }

    /// The next message with a body or an id that matches `pred`.
    pub async fn next_message(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Message) -> bool,
    ) -> Option<Message> {
        match self
            .next_stanza(timeout, |s| matches!(s, Stanza::Message(m) if pred(m)))
            .await
        {
            Some(Stanza::Message(m)) => Some(m),
            _ => None,
        }
    }
}
