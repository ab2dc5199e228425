//! A Tern worker driven by a test: its handle, its events and its own sled history.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::str::FromStr;
use std::time::{Duration, Instant};

use tern::store::Store;
use tern::xmpp::{self, BareJid, ConnectionState, Event, Handle, Password, Settings, Trust};
use tokio::sync::mpsc;

pub struct Client {
    pub jid: BareJid,
    pub handle: Handle,
    pub events: mpsc::UnboundedReceiver<Event>,
    pub store: Store,
    pub settings: Settings,
    _dir: tempfile::TempDir,
}

pub fn settings(server_addr: &str, ca: &std::path::Path, jid: &str, password: &str) -> Settings {
    let (host, port) = server_addr.rsplit_once(':').expect("host:port");
    Settings {
        jid: BareJid::from_str(jid).expect("jid"),
        password: Password::new(password),
        host: Some(host.to_string()),
        port: Some(port.parse().expect("port")),
        direct_tls: false,
        trust: Trust::from_pem_file(ca).expect("CA"),
    }
}

/// Signs `user`@localhost in to a test server (test passwords are `<user>pass`).
pub async fn sign_in(server: &super::prosody::Prosody, user: &str) -> Client {
    Client::online(settings(
        &server.address(),
        &server.ca(),
        &format!("{user}@localhost"),
        &format!("{user}pass"),
    ))
    .await
}

impl Client {
    /// Spawns a worker (not yet connected) with a fresh history.
    pub fn spawn(settings: Settings) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("history")).expect("store");
        let (handle, mut events) = xmpp::spawn(settings.jid.clone(), store.clone());
        match events.try_recv() {
            Ok(Event::Ready(_)) => {}
            other => panic!("first event must be Ready, got {other:?}"),
        }
        Self {
            jid: settings.jid.clone(),
            handle,
            events,
            store,
            settings,
            _dir: dir,
        }
    }

    /// Spawns and signs in interactively; panics unless online within 10 s.
    pub async fn online(settings: Settings) -> Self {
        let mut client = Self::spawn(settings);
        client.handle.connect(client.settings.clone(), true);
        client.wait_online(Duration::from_secs(10)).await;
        client
    }

    pub async fn wait_online(&mut self, timeout: Duration) -> xmpp::Jid {
        let state = self
            .next_connection_state(timeout, |s| !matches!(s, ConnectionState::Connecting))
            .await;
        match state {
            ConnectionState::Online { jid, .. } => jid,
            other => panic!("{}: expected online, got {other:?}", self.jid),
        }
    }

    /// The next connection state matching `pred`.
    pub async fn next_connection_state(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&ConnectionState) -> bool,
    ) -> ConnectionState {
        let event = self
            .next_event(timeout, |e| matches!(e, Event::Connection(s) if pred(s)))
            .await;
        match event {
            Some(Event::Connection(s)) => s,
            _ => panic!(
                "{}: no matching connection state within {timeout:?}",
                self.jid
            ),
        }
    }

    /// Waits for the first event matching `pred`, dropping the others.
    pub async fn next_event(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(e)) if pred(&e) => return Some(e),
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return None,
            }
        }
    }
}
