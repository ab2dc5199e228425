//! Drives the real `App` headless: its tasks and subscriptions (the XMPP
//! worker included) run on the test's tokio runtime, and the view is
//! exercised with `iced_test`'s simulator, as a window would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::collections::HashMap;
use std::hash::Hasher as _;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use iced::Task;
use iced::advanced::subscription::{Hasher, into_recipes};
use iced_test::Simulator;
use tern::app::{App, Flags, Message};
use tern::profile::Profile;
use tern::xmpp::Trust;
use tokio::sync::mpsc;

/// Checks that the headless renderer is selected: deterministic, no GPU, no
/// display. It must be set before any renderer exists, for the whole binary.
pub fn use_tiny_skia() {
    assert_eq!(
        std::env::var("ICED_TEST_BACKEND").as_deref(),
        Ok("tiny-skia"),
        "run the UI tests with ICED_TEST_BACKEND=tiny-skia (the README's test command does)"
    );
}

/// How the tests start Tern: on `profile`, trusting the certificates in
/// the PEM file `ca`, opening nothing, keeping no password.
pub fn flags(profile: Profile, ca: &Path) -> Flags {
    Flags {
        profile,
        trust: Trust::from_pem_file(ca).unwrap(),
        open: None,
        launched: Instant::now(),
        instance: None,
        credentials: false,
    }
}

pub struct Harness {
    pub app: App,
    tx: mpsc::UnboundedSender<Message>,
    rx: mpsc::UnboundedReceiver<Message>,
    subscriptions: HashMap<u64, tokio::task::JoinHandle<()>>,
}

impl Harness {
    pub fn new(flags: Flags) -> Self {
        let (app, task) = App::new(flags);
        let (tx, rx) = mpsc::unbounded_channel();
        let mut h = Self {
            app,
            tx,
            rx,
            subscriptions: HashMap::new(),
        };
        h.run_task(task);
        h.sync_subscriptions();
        h
    }

    /// A started Tern (see [`flags`]) signed in as `jid` with `password` to
    /// the server on 127.0.0.1 at `port`.
    pub async fn signed_in(flags: Flags, port: u16, jid: &str, password: &str) -> Self {
        let mut h = Self::started(flags).await;
        h.sign_in(port, jid, password);
        assert!(
            h.pump_until(Duration::from_secs(15), |app| app.is_signed_in())
                .await,
            "{jid} did not sign in"
        );
        h.settle().await;
        h
    }

    /// A Tern whose configuration and history have opened (they open off
    /// the UI thread, so the first frames show neither).
    pub async fn started(flags: Flags) -> Self {
        let mut h = Self::new(flags);
        assert!(
            h.pump_until(Duration::from_secs(10), |app| !app.is_opening())
                .await,
            "the profile did not open"
        );
        h
    }

    fn run_task(&self, task: Task<Message>) {
        let Some(mut stream) = iced_test::runtime::task::into_stream(task) else {
            return;
        };
        let tx = self.tx.clone();
        tokio::spawn(async move {
            while let Some(action) = stream.next().await {
                // Widget operations (focus, scrolling) need a live UI; outputs are messages.
                if let iced_test::runtime::Action::Output(message) = action {
                    let _ = tx.send(message);
                }
            }
        });
    }

    /// Starts new subscriptions and stops vanished ones, by identity, like iced's runtime.
    fn sync_subscriptions(&mut self) {
        let mut alive = HashMap::new();
        for recipe in into_recipes(self.app.subscription()) {
            let mut hasher = Hasher::default();
            recipe.hash(&mut hasher);
            let id = hasher.finish();
            let handle = match self.subscriptions.remove(&id) {
                Some(running) => running,
                None => {
                    let mut stream = recipe.stream(futures::stream::pending().boxed());
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        while let Some(message) = stream.next().await {
                            if tx.send(message).is_err() {
                                break;
                            }
                        }
                    })
                }
            };
            alive.insert(id, handle);
        }
        for (_, stopped) in self.subscriptions.drain() {
            stopped.abort();
        }
        self.subscriptions = alive;
    }

    pub fn update(&mut self, message: Message) {
        let task = self.app.update(message);
        self.run_task(task);
        self.sync_subscriptions();
    }

    /// Processes messages until `pred` holds; false after `timeout`.
    pub async fn pump_until(&mut self, timeout: Duration, pred: impl Fn(&App) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.app) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(message)) => self.update(message),
                _ => return pred(&self.app),
            }
        }
    }

    /// Processes whatever is queued for a short while.
    pub async fn settle(&mut self) {
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(200), self.rx.recv()).await
        {
            self.update(message);
        }
    }

    /// Interacts with the current view, then applies the messages it produced.
    pub fn interact(&mut self, f: impl FnOnce(&mut Simulator<'_, Message>)) {
        let messages: Vec<Message> = {
            let mut ui = iced_test::simulator(self.app.view());
            f(&mut ui);
            ui.into_messages().collect()
        };
        for m in messages {
            self.update(m);
        }
    }

    /// Fills in the sign-in form (server on loopback at `port`) and presses "Sign in".
    pub fn sign_in(&mut self, port: u16, jid: &str, password: &str) {
        use iced_test::selector::id;
        use tern::screen::login;
        let port = port.to_string();
        self.interact(|ui| {
            ui.click(id(login::JID_INPUT)).unwrap();
            ui.typewrite(jid);
            ui.click(id(login::PASSWORD_INPUT)).unwrap();
            ui.typewrite(password);
            ui.click("Show advanced settings").unwrap();
        });
        self.interact(|ui| {
            ui.click(id(login::HOST_INPUT)).unwrap();
            ui.typewrite("127.0.0.1");
            ui.click(id(login::PORT_INPUT)).unwrap();
            ui.typewrite(&port);
            ui.click("Sign in").unwrap();
        });
    }

    /// Settles the window until it shows `text`; false after 60 rounds
    /// that brought nothing more (each at least 200 ms).
    pub async fn until_shows(&mut self, text: &str) -> bool {
        for _ in 0..60 {
            self.settle().await;
            if self.shows(text) {
                return true;
            }
        }
        false
    }

    /// Whether the current view shows `text`.
    pub fn shows(&self, text: &str) -> bool {
        let mut ui = iced_test::simulator(self.app.view());
        ui.find(text).is_ok()
    }

    /// Writes `snap` as `target/tmp/<name>-<backend>.png`, replacing an
    /// earlier run's (iced_test only compares with a file that exists).
    pub fn save_snapshot(&self, snap: &iced_test::simulator::Snapshot, name: &str) {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let backend = std::env::var("ICED_TEST_BACKEND").unwrap_or_default();
        let written = dir.join(format!("{name}-{backend}.png"));
        let _ = std::fs::remove_file(&written);
        snap.matches_image(dir.join(format!("{name}.png"))).unwrap();
        assert!(written.exists(), "no snapshot at {}", written.display());
        println!("UI snapshot written to {}", written.display());
    }

    pub fn snapshot(&self, theme: &iced::Theme) -> iced_test::simulator::Snapshot {
        let mut ui = iced_test::simulator(self.app.view());
        ui.snapshot(theme).expect("snapshot")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for (_, s) in self.subscriptions.drain() {
            s.abort();
        }
    }
}
