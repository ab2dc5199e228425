//! Keeps an account's worker running: a worker that panics (a bug, or input
//! that found one) is started again with the same commands and events, and
//! the UI is told, instead of the account going silent until Tern restarts.
//!
//! Everything the worker had accepted is on disk (outbox, history, archive
//! position), so a new worker carries on from there. The commands queued
//! behind the one that crashed survive too: the receiver is handed back when
//! the crashed worker is dropped, which happens while unwinding.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::Instrument;

use super::{BareJid, Command, Event, Handle};

/// More crashes than this within [`CRASH_WINDOW`] and the worker stays
/// stopped: a bug that fires on every start would otherwise spin.
const MAX_CRASHES: usize = 5;
const CRASH_WINDOW: Duration = Duration::from_secs(600);

/// A worker's command receiver that returns to its supervisor when the
/// worker is dropped, including while a panic unwinds it.
pub(super) struct Commands {
    rx: Option<mpsc::UnboundedReceiver<Command>>,
    home: Arc<Mutex<Option<mpsc::UnboundedReceiver<Command>>>>,
}

impl Commands {
    /// `rx`, and the slot it returns to.
    pub(super) fn new(rx: mpsc::UnboundedReceiver<Command>) -> Self {
        Self {
            rx: Some(rx),
            home: Arc::new(Mutex::new(None)),
        }
    }

    /// The next command; `None` once every [`Handle`] is gone.
    pub(super) async fn recv(&mut self) -> Option<Command> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => None,
        }
    }

    /// What a crashed worker left: the same receiver, in a new `Commands`.
    fn recover(&self) -> Option<Self> {
        let rx = self
            .home
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        Some(Self {
            rx: Some(rx),
            home: self.home.clone(),
        })
    }

    fn home(&self) -> Self {
        Self {
            rx: None,
            home: self.home.clone(),
        }
    }
}

impl Drop for Commands {
    fn drop(&mut self) {
        if let Some(rx) = self.rx.take() {
            *self.home.lock().unwrap_or_else(PoisonError::into_inner) = Some(rx);
        }
    }
}

/// Starts `run` for `account` and starts it again after a panic. Must be
/// called inside a tokio runtime; the first event is [`Event::Ready`].
pub(super) fn spawn<F, R>(account: BareJid, run: R) -> (Handle, mpsc::UnboundedReceiver<Event>)
where
    R: Fn(mpsc::UnboundedSender<Event>, Commands) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let handle = Handle::new(cmd_tx, account.clone());
    let _ = ev_tx.send(Event::Ready(handle.clone()));
    tokio::spawn(supervise(account, ev_tx, Commands::new(cmd_rx), run));
    (handle, ev_rx)
}

async fn supervise<F, R>(
    account: BareJid,
    events: mpsc::UnboundedSender<Event>,
    first: Commands,
    run: R,
) where
    R: Fn(mpsc::UnboundedSender<Event>, Commands) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut crashes: VecDeque<Instant> = VecDeque::new();
    let mut commands = first;
    loop {
        let home = commands.home();
        // Every log line of this worker names its account.
        let span = tracing::info_span!("worker", account = %account);
        let task = tokio::spawn(run(events.clone(), commands).instrument(span));
        let failure = match task.await {
            Ok(()) => return,
            Err(e) if e.is_panic() => panic_text(e.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        };
        let now = Instant::now();
        crashes.push_back(now);
        while crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
        {
            crashes.pop_front();
        }
        let restarting = crashes.len() <= MAX_CRASHES;
        tracing::error!(
            account = %account,
            "the connection worker stopped on a bug ({failure}); {}",
            if restarting { "starting it again" } else { "too many times: it stays stopped" }
        );
        if events.send(Event::Crashed { restarting }).is_err() || !restarting {
            return;
        }
        commands = match home.recover() {
            Some(commands) => commands,
            None => return,
        };
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_string(),
            Err(_) => "a panic".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn next(events: &mut mpsc::UnboundedReceiver<Event>) -> Option<Event> {
        tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
    }

    /// A stand-in for the worker: answers `RetryNow` with a `Roster` event,
    /// and panics on `Disconnect`.
    async fn fragile(events: mpsc::UnboundedSender<Event>, mut commands: Commands) {
        while let Some(command) = commands.recv().await {
            match command {
                Command::Disconnect => panic!("a bug"),
                _ => {
                    let _ = events.send(Event::Roster(vec![]));
                }
            }
        }
    }

    #[tokio::test]
    async fn a_panicking_worker_is_restarted_with_the_commands_behind_it() {
        let (handle, mut events) = spawn("alice@example.org".parse().unwrap(), fragile);
        assert!(matches!(next(&mut events).await, Some(Event::Ready(_))));
        // Queued together: the one after the crash must reach the new worker.
        assert!(handle.send(Command::RetryNow));
        assert!(handle.send(Command::Disconnect));
        assert!(handle.send(Command::RetryNow));
        assert!(matches!(next(&mut events).await, Some(Event::Roster(_))));
        assert!(matches!(
            next(&mut events).await,
            Some(Event::Crashed { restarting: true })
        ));
        assert!(matches!(next(&mut events).await, Some(Event::Roster(_))));
        // The same handle keeps working.
        assert!(handle.send(Command::RetryNow));
        assert!(matches!(next(&mut events).await, Some(Event::Roster(_))));
    }

    #[tokio::test]
    async fn a_worker_that_keeps_crashing_stays_stopped() {
        let (handle, mut events) = spawn("alice@example.org".parse().unwrap(), fragile);
        assert!(matches!(next(&mut events).await, Some(Event::Ready(_))));
        for _ in 0..MAX_CRASHES {
            assert!(handle.send(Command::Disconnect));
            assert!(matches!(
                next(&mut events).await,
                Some(Event::Crashed { restarting: true })
            ));
        }
        assert!(handle.send(Command::Disconnect));
        assert!(matches!(
            next(&mut events).await,
            Some(Event::Crashed { restarting: false })
        ));
        // The supervisor is gone, and with it the last event sender.
        assert!(next(&mut events).await.is_none());
        assert!(!handle.send(Command::RetryNow));
    }

    #[tokio::test]
    async fn a_worker_that_ends_is_not_restarted() {
        let (handle, mut events) = spawn("alice@example.org".parse().unwrap(), fragile);
        assert!(matches!(next(&mut events).await, Some(Event::Ready(_))));
        drop(handle);
        assert!(next(&mut events).await.is_none());
    }
}
