//! A private credential store for tests: a session bus of its own, with GNOME
//! Keyring on it (or nothing, or a Secret Service that never answers), and
//! the test binary's own child processes that use it.
//!
//! The `keyring` crate chooses its store once per process, from the
//! environment, so whatever touches a credential store runs in a child
//! process given this bus's address: the test process itself never touches
//! the developer's own keyring.
#![allow(dead_code)] // each test binary uses part of it

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Set in the children's environment: which scenario to run.
pub const SCENARIO: &str = "TERN_TEST_SCENARIO";

const INSTALL: &str = "this test needs a D-Bus daemon and GNOME Keyring: \
     apt-get install --no-install-recommends dbus-daemon dbus-bin gnome-keyring";

/// The scenario this process runs as a child, if it is one.
pub fn scenario() -> Option<String> {
    std::env::var(SCENARIO).ok()
}

/// Runs this binary's ignored test `name` in a child process with `scenario`
/// and the environment `setup` gives it; fails unless it passed.
pub fn run_child(name: &str, scenario: &str, setup: impl FnOnce(&mut Command)) {
    let logs = tempfile::tempdir().unwrap();
    let out_path = logs.path().join("out");
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([name, "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads=1"])
        .env(SCENARIO, scenario)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(logs.path().join("err")).unwrap());
    setup(&mut command);
    let mut child = command.spawn().unwrap();
    // Generous: starting a process (and signing in) on a loaded machine; the
    // timings that matter are asserted in the child.
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child test {name} ({scenario}) did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = std::fs::read_to_string(&out_path).unwrap();
    let err = std::fs::read_to_string(logs.path().join("err")).unwrap();
    eprint!("{err}");
    assert!(
        status.success() && out.contains("1 passed"),
        "child test {name} ({scenario}) failed: {status}\n{out}\n{err}"
    );
}

/// Child processes killed when the test ends, even when it fails.
struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in self.0.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(command: &mut Command) -> Child {
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {program} ({err}): {INSTALL}"))
}

/// A private session bus, and what runs on it; all stopped when dropped
/// (the daemons first, then their folder).
pub struct Bus {
    daemons: Daemons,
    /// The bus's address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
    /// A private `XDG_RUNTIME_DIR` (GNOME Keyring's, once started).
    pub runtime: PathBuf,
    dir: tempfile::TempDir,
}

impl Bus {
    /// A bus with no D-Bus activation unless `secrets_exec` is given: then
    /// asking for the Secret Service runs that command, which the bus waits
    /// for (up to 15 s) to take the name.
    pub fn start(secrets_exec: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bus.conf");
        let sockets = dir.path().join("bus");
        let services = dir.path().join("services");
        let runtime = dir.path().join("runtime");
        std::fs::create_dir(&sockets).unwrap();
        std::fs::create_dir(&services).unwrap();
        std::fs::create_dir(&runtime).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        if let Some(exec) = secrets_exec {
            std::fs::write(
                services.join("org.freedesktop.secrets.service"),
                format!("[D-BUS Service]\nName=org.freedesktop.secrets\nExec={exec}\n"),
            )
            .unwrap();
        }
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{}</servicedir>
  <limit name="service_start_timeout">15000</limit>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                sockets.display(),
                services.display()
            ),
        )
        .unwrap();
        let mut daemons = Daemons(Vec::new());
        let mut bus = spawn(
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}", config.display()))
                .args(["--nofork", "--print-address=1"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let stdout = bus.stdout.take().unwrap();
        daemons.0.push(bus);
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let address = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("dbus-daemon did not print its address");
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        Self {
            daemons,
            address,
            runtime,
            dir,
        }
    }

    /// A bus with GNOME Keyring on it, in a fresh home: `--unlock` reads the
    /// login keyring's password on stdin, creates that keyring (the default
    /// collection) and unlocks it, so nothing ever prompts.
    pub fn with_keyring() -> Self {
        let mut bus = Self::start(None);
        let home = bus.dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let mut keyring = spawn(
            Command::new("gnome-keyring-daemon")
                .args(["--foreground", "--components=secrets", "--unlock"])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", &home)
                .env("XDG_DATA_HOME", home.join("data"))
                .env("XDG_CONFIG_HOME", home.join("config"))
                .env("XDG_CACHE_HOME", home.join("cache"))
                .env("XDG_RUNTIME_DIR", &bus.runtime)
                .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let mut stdin = keyring.stdin.take().unwrap();
        bus.daemons.0.push(keyring);
        stdin.write_all(b"tern-test-keyring").unwrap();
        drop(stdin);
        bus.wait_for_name("org.freedesktop.secrets");
        bus
    }

    /// Points a child at this bus.
    pub fn env(&self, command: &mut Command) {
        command
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_RUNTIME_DIR", &self.runtime);
    }

    /// A folder that goes away with the bus.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until `name` has an owner on the bus.
    fn wait_for_name(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = Command::new("dbus-send")
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                ])
                .arg(format!("string:{name}"))
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|err| panic!("cannot run dbus-send ({err}): {INSTALL}"));
            if String::from_utf8_lossy(&output.stdout).contains("boolean true") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not appear on the bus"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
