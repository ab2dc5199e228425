//! The unread count on Tern's taskbar or dock icon.
//!
//! Linux and the BSDs: the Unity launcher API (the `Update` signal of
//! `com.canonical.Unity.LauncherEntry` on the session bus), which KDE Plasma's
//! task manager, Ubuntu Dock / Dash to Dock, Plank and Latte show as a number
//! on the app's icon. Windows (a taskbar overlay icon) and macOS (the dock
//! tile's badge label) need native calls this build does not make: there the
//! count is in the window title only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The desktop file the count belongs to (the docks match icons by it).
pub const DESKTOP_FILE: &str = "im.tern.Tern.desktop";

/// The badge of this process's launcher icon; cheap to clone.
#[derive(Clone)]
pub struct Badge {
    inner: Arc<Inner>,
}

struct Inner {
    /// The count to show: whichever update runs last shows the latest one.
    wanted: AtomicU32,
    /// The session bus given explicitly (tests); else the user's.
    #[cfg_attr(not(all(unix, not(target_os = "macos"))), allow(dead_code))]
    address: Option<String>,
    #[cfg(all(unix, not(target_os = "macos")))]
    bus: tokio::sync::OnceCell<Option<zbus::Connection>>,
}

impl Badge {
    /// The badge on the user's session bus.
    pub fn session() -> Self {
        Self::with(None)
    }

    /// The badge on the bus at `address` (a D-Bus address, for tests).
    pub fn at(address: &str) -> Self {
        Self::with(Some(address.to_string()))
    }

    fn with(address: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                wanted: AtomicU32::new(0),
                address,
                #[cfg(all(unix, not(target_os = "macos")))]
                bus: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// Shows `count` on the icon (0 hides it). The future does the talking;
    /// run it off the UI thread. Without a session bus it does nothing.
    pub fn show(&self, count: u32) -> impl Future<Output = ()> + Send + 'static {
        self.inner.wanted.store(count, Ordering::SeqCst);
        let inner = self.inner.clone();
        async move {
            #[cfg(all(unix, not(target_os = "macos")))]
            {
                let bus = inner
                    .bus
                    .get_or_init(|| connect(inner.address.clone()))
                    .await;
                let Some(bus) = bus else { return };
                let count = inner.wanted.load(Ordering::SeqCst);
                if let Err(e) = unity::update(bus, count).await {
                    tracing::debug!("cannot update the launcher badge: {e}");
                }
            }
            #[cfg(not(all(unix, not(target_os = "macos"))))]
            let _ = inner;
        }
    }
}

/// Connects once; a session without a bus (or one that does not answer in
/// time) has no badge, which is not worth more than a debug line.
#[cfg(all(unix, not(target_os = "macos")))]
async fn connect(address: Option<String>) -> Option<zbus::Connection> {
    let connect = async {
        match address {
            Some(address) => {
                zbus::connection::Builder::address(address.as_str())?
                    .build()
                    .await
            }
            None => zbus::Connection::session().await,
        }
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), connect).await {
        Ok(Ok(bus)) => Some(bus),
        Ok(Err(e)) => {
            tracing::debug!("no launcher badge: {e}");
            None
        }
        Err(_) => {
            tracing::debug!("no launcher badge: the session bus did not answer in 3 s");
            None
        }
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
pub mod unity {
    //! The Unity launcher API's one signal.

    use std::collections::HashMap;

    use zbus::zvariant::Value;

    pub const INTERFACE: &str = "com.canonical.Unity.LauncherEntry";
    /// Any object path will do; docks listen to the signal, not the object.
    pub const PATH: &str = "/im/tern/Tern/LauncherEntry";

    pub fn app_uri() -> String {
        format!("application://{}", super::DESKTOP_FILE)
    }

    pub async fn update(bus: &zbus::Connection, count: u32) -> zbus::Result<()> {
        let properties: HashMap<&str, Value<'_>> = HashMap::from([
            ("count", Value::I64(i64::from(count))),
            ("count-visible", Value::Bool(count > 0)),
        ]);
        bus.emit_signal(
            None::<&str>,
            PATH,
            INTERFACE,
            "Update",
            &(app_uri(), properties),
        )
        .await
    }
}

#[cfg(all(test, unix, not(target_os = "macos")))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use futures::StreamExt;
    use zbus::MessageStream;
    use zbus::zvariant::OwnedValue;

    use super::*;

    /// A private session bus (dbus-daemon from Debian's dbus-daemon package),
    /// stopped on drop.
    struct Bus {
        child: std::process::Child,
        address: String,
        _dir: tempfile::TempDir,
    }

    impl Drop for Bus {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn private_bus() -> Bus {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address=unix:dir={}", dir.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian: dbus-daemon; the README's test command installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        Bus {
            child,
            address,
            _dir: dir,
        }
    }

    async fn next_update(stream: &mut MessageStream) -> (String, i64, bool) {
        let message = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("no Update signal in 5 s")
            .unwrap()
            .unwrap();
        let (uri, properties): (String, HashMap<String, OwnedValue>) =
            message.body().deserialize().unwrap();
        let count = i64::try_from(&properties["count"]).unwrap();
        let visible = bool::try_from(&properties["count-visible"]).unwrap();
        (uri, count, visible)
    }

    #[tokio::test]
    async fn docks_get_the_count_and_its_removal() {
        let bus = private_bus();
        let dock = zbus::connection::Builder::address(bus.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap();
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(unity::INTERFACE)
            .unwrap()
            .member("Update")
            .unwrap()
            .build();
        let mut stream = MessageStream::for_match_rule(rule, &dock, None)
            .await
            .unwrap();

        let badge = Badge::at(&bus.address);
        badge.show(3).await;
        assert_eq!(
            next_update(&mut stream).await,
            ("application://im.tern.Tern.desktop".into(), 3, true)
        );
        // Two updates racing: the last value asked for is what shows last.
        let (a, b) = (badge.show(7), badge.show(0));
        b.await;
        a.await;
        assert_eq!(next_update(&mut stream).await.1, 0);
        let last = next_update(&mut stream).await;
        assert_eq!((last.1, last.2), (0, false));
    }

    #[tokio::test]
    async fn without_a_bus_it_gives_up_quietly() {
        let dir = tempfile::tempdir().unwrap();
        let badge = Badge::at(&format!("unix:path={}", dir.path().join("none").display()));
        let started = Instant::now();
        badge.show(2).await;
        badge.show(0).await;
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
