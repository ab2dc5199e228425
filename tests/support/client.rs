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
    /// The full JID bound by the last `online` (None before).
    pub full: Option<xmpp::Jid>,
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
        catch_up: Default::default(),
        liveness: Default::default(),
        share_os: true,
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
    /// Stops the worker (as quitting Tern does) and hands back its history directory.
    pub async fn quit(self) -> tempfile::TempDir {
        let Client {
            handle,
            events,
            store,
            _dir,
            ..
        } = self;
        drop(handle);
        drop(events);
        // The worker notices both ends are gone and releases the store.
        drop(store);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // sled releases its lock when the last handle (the worker's) is dropped.
            match Store::open(&_dir.path().join("history")) {
                Ok(_) => return _dir,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("the worker kept the history open: {e}"),
            }
        }
    }

    /// Waits until a message of ours with `id` reaches `state`.
    pub async fn wait_state(
        &mut self,
        id: &str,
        state: tern::store::Delivery,
        timeout: Duration,
    ) -> bool {
        self.next_event(
            timeout,
            |e| matches!(e, Event::Updated(r) if r.id == id && r.state == state),
        )
        .await
        .is_some()
    }

    /// Spawns a worker (not yet connected) with a fresh history.
    pub fn spawn(settings: Settings) -> Self {
        Self::spawn_in(settings, tempfile::tempdir().expect("temp dir"))
    }

    /// Spawns a worker whose history lives in `dir` (which may hold an earlier run's).
    pub fn spawn_in(settings: Settings, dir: tempfile::TempDir) -> Self {
        // RUST_LOG=tern=debug shows what the workers do (captured per test).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
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
            full: None,
            _dir: dir,
        }
    }

    /// Spawns and signs in interactively; panics unless online within 10 s.
    pub async fn online(settings: Settings) -> Self {
        let mut client = Self::spawn(settings);
        client.handle.connect(client.settings.clone(), true);
        client.full = Some(client.wait_online(Duration::from_secs(10)).await);
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
