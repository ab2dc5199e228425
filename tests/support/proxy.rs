//! A TCP proxy on loopback that a test can cut (closing every connection and
//! refusing new ones), stall (a black hole: connections stay open but nothing
//! gets through, as when a NAT forgets us or Wi-Fi changes) and restore, to
//! fake a flaky network.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    open: Arc<AtomicBool>,
    /// While true, nothing is forwarded on any connection, old or new.
    stalled: watch::Sender<bool>,
    /// Bumped on every cut; connections from an older generation close.
    generation: watch::Sender<u64>,
    pub connections: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Forwards 127.0.0.1:<new port> to `upstream` (127.0.0.1:<port>).
    pub async fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream: SocketAddr = ([127, 0, 0, 1], upstream_port).into();
        let open = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let (stalled, _) = watch::channel(false);
        let connections = Arc::new(AtomicU64::new(0));
        let accept = {
            let (open, generation, connections, stalled) = (
                open.clone(),
                generation.clone(),
                connections.clone(),
                stalled.clone(),
            );
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        drop(client); // refused: the network is down
                        continue;
                    }
                    connections.fetch_add(1, Ordering::SeqCst);
                    let mut cut = generation.subscribe();
                    let mut stall = stalled.subscribe();
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let (mut client, mut server) = (client, server);
                        let stalled = tokio::select! {
                            // Either side closed or reset: both sockets drop here.
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                            _ = cut.changed() => false,
                            _ = stall.wait_for(|s| *s) => true,
                        };
                        // A black hole for good: a stalled path never recovers,
                        // and holds both sockets open until the next cut.
                        if stalled {
                            let _ = cut.changed().await;
                        }
                    });
                }
            })
        };
        Self {
            port,
            open,
            stalled,
            generation,
            connections,
            accept,
        }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Keeps every connection open but forwards nothing more on them; new
    /// connections are accepted and go silent too, until `restore`.
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.stalled.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
