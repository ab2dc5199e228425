//! A real Prosody on loopback for the tests: fresh data dir, free ports,
//! throwaway CA, accounts and rosters. Stopped and removed on drop.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = include_str!("../prosody/prosody.cfg.lua");
const GEN_CERTS: &str = include_str!("../prosody/gen-certs.sh");

pub struct Prosody {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    /// Whether messages to an offline account are kept and delivered at its
    /// next presence (mod_offline, on by default). Off, they are only in the
    /// archive: what a catch-up misses is lost, which tests of it need.
    offline_storage: bool,
}

/// A roster entry to seed before the server starts: (owner, contact, name, group).
pub struct RosterEntry<'a> {
    pub owner: &'a str,
    pub contact: &'a str,
    pub name: &'a str,
    pub group: &'a str,
}

/// alice and bob, each in the other's roster with a mutual subscription.
pub fn alice_and_bob() -> Vec<RosterEntry<'static>> {
    vec![
        RosterEntry {
            owner: "alice",
            contact: "bob@localhost",
            name: "Bob",
            group: "Friends",
        },
        RosterEntry {
            owner: "bob",
            contact: "alice@localhost",
            name: "Alice",
            group: "Friends",
        },
    ]
}

impl Prosody {
    /// Starts a server with `accounts` (user, password) on `localhost`.
    pub fn start(accounts: &[(&str, &str)]) -> Self {
        Self::start_with_roster(accounts, &[])
    }

    pub fn start_with_roster(accounts: &[(&str, &str)], roster: &[RosterEntry]) -> Self {
        Self::start_with(accounts, roster, true)
    }

    /// A server whose only store for an offline account's messages is the
    /// archive (mod_offline disabled, as on MAM-only setups).
    pub fn start_archive_only(accounts: &[(&str, &str)], roster: &[RosterEntry]) -> Self {
        Self::start_with(accounts, roster, false)
    }

    fn start_with(
        accounts: &[(&str, &str)],
        roster: &[RosterEntry],
        offline_storage: bool,
    ) -> Self {
        assert!(
            which("prosody"),
            "prosody is not installed: run the README's test command, which installs it"
        );
        let dir = tempfile::Builder::new()
            .prefix("tern-prosody-")
            .tempdir()
            .expect("temp dir");
        let certs = dir.path().join("prosody/certs");
        std::fs::create_dir_all(&certs).expect("certs dir");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        std::fs::write(dir.path().join("prosody/prosody.cfg.lua"), CONFIG).expect("config");
        std::fs::write(certs.join("gen-certs.sh"), GEN_CERTS).expect("script");
        let out = Command::new("sh")
            .arg(certs.join("gen-certs.sh"))
            .output()
            .expect("run gen-certs.sh");
        assert!(out.status.success(), "gen-certs.sh failed: {out:?}");

        let port = free_port_block();
        let mut server = Self {
            dir,
            child: None,
            port,
            offline_storage,
        };
        for (user, password) in accounts {
            // `user` alone is on localhost; `user@host` on another of its domains.
            let (user, host) = user.split_once('@').unwrap_or((user, "localhost"));
            let out = server
                .command("prosodyctl")
                .args(["register", user, host, password])
                .output()
                .expect("prosodyctl");
            assert!(out.status.success(), "register {user}: {out:?}");
        }
        server.seed_rosters(roster);
        server.run();
        server
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("prosody/prosody.cfg.lua")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.arg("--config")
            .arg(self.config_path())
            .env("XMPP_TEST_BASE", self.dir.path())
            .env("XMPP_TEST_PORT", self.port.to_string())
            .env(
                "XMPP_TEST_OFFLINE",
                if self.offline_storage { "on" } else { "off" },
            );
        cmd
    }

    fn seed_rosters(&self, roster: &[RosterEntry]) {
        let mut owners: Vec<&str> = roster.iter().map(|e| e.owner).collect();
        owners.sort();
        owners.dedup();
        for owner in owners {
            // `owner` alone is on localhost; `owner@host` on another domain,
            // whose data directory Prosody names with its dots encoded.
            let (user, host) = owner.split_once('@').unwrap_or((owner, "localhost"));
            let dir = self
                .dir
                .path()
                .join("data")
                .join(host.replace('.', "%2e"))
                .join("roster");
            std::fs::create_dir_all(&dir).expect("roster dir");
            let mut lua = String::from("return {\n\t[false] = { [\"version\"] = 1; };\n");
            for e in roster.iter().filter(|e| e.owner == owner) {
                lua.push_str(&format!(
                    "\t[\"{}\"] = {{ [\"subscription\"] = \"both\"; [\"name\"] = \"{}\"; [\"groups\"] = {{ [\"{}\"] = true; }}; }};\n",
                    e.contact, e.name, e.group
                ));
            }
            lua.push_str("};\n");
            std::fs::write(dir.join(format!("{user}.dat")), lua).expect("roster file");
        }
    }

    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("prosody.log"))
            .expect("log file");
        let child = self
            .command("prosody")
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prosody");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "prosody did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs one command in the running server's admin shell (a line of Lua
    /// when it starts with `>`); what it printed.
    pub fn shell(&self, command: &str) -> String {
        let output = self
            .command("prosodyctl")
            .arg("shell")
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .expect("prosodyctl shell");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts with the same data and ports.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The test CA's certificate, to trust in clients.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("prosody/certs/ca.crt")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prosody.log")).unwrap_or_default()
    }

    pub fn base(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.stop();
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

/// A port p such that p, p+1, p+58 and p+59 are all free on 127.0.0.1.
fn free_port_block() -> u16 {
    for _ in 0..200 {
        let Ok(listener) = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(addr) = listener.local_addr() else {
            continue;
        };
        let base = addr.port();
        drop(listener);
        if base > 65_000 {
            continue;
        }
        let others = [1u16, 58, 59]
            .map(|d| TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, base + d)).is_ok());
        if others.iter().all(|free| *free) {
            return base;
        }
    }
    panic!("no free block of ports on 127.0.0.1");
}
