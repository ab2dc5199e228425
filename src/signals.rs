//! Requests from the system to quit (SIGTERM from a session logout or
//! `kill`, SIGINT from Ctrl+C in a terminal), so that Tern signs off before it
//! exits instead of dying with its connection open.

use futures::Stream;

/// One item for each request to quit.
pub fn quit_requests() -> impl Stream<Item = ()> {
    futures::stream::unfold(Signals::new(), |mut signals| async move {
        signals.next().await.map(|()| ((), signals))
    })
}

#[cfg(unix)]
struct Signals {
    terminate: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("cannot listen for {kind:?}: {e}");
                None
            }
        };
        Self {
            terminate: listen(SignalKind::terminate()),
            interrupt: listen(SignalKind::interrupt()),
        }
    }

    async fn next(&mut self) -> Option<()> {
        let terminate = async {
            match &mut self.terminate {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let interrupt = async {
            match &mut self.interrupt {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            got = terminate => got,
            got = interrupt => got,
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> Self {
        Self
    }

    /// Ctrl+C in the console Tern was started from (Windows).
    async fn next(&mut self) -> Option<()> {
        tokio::signal::ctrl_c().await.ok()
    }
}
