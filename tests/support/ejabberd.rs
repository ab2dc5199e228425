//! A real ejabberd on loopback for the tests, beside Prosody: a throwaway
//! node (own config, spool, logs, node name), free ports, the same throwaway
//! CA, accounts and rosters. Stopped and removed on drop.
//!
//! `ejabberdctl` run as root switches to the `ejabberd` user, so everything
//! the node uses is handed to that user (`../shared` notes: ejabberd.md).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const CONFIG: &str = include_str!("../ejabberd/ejabberd.yml");

/// Nodes of this test process still running, and whether Erlang's port
/// mapper (`epmd`, which the first node starts and which outlives it) was
/// already there before: if not, the last node to stop stops it too.
static NODES: std::sync::Mutex<(usize, bool)> = std::sync::Mutex::new((0, false));

fn epmd_running() -> bool {
    Command::new("epmd")
        .arg("-names")
        .output()
        .is_ok_and(|o| o.status.success())
}
const GEN_CERTS: &str = include_str!("../prosody/gen-certs.sh");

pub struct Ejabberd {
    dir: tempfile::TempDir,
    node: String,
    running: bool,
    /// STARTTLS; direct TLS is `port + 1`, HTTPS (uploads) `port + 2`.
    pub port: u16,
}

impl Ejabberd {
    /// Starts a node with `accounts` (user, password) on `localhost`, and
    /// mutual roster entries for each (owner, contact) pair in `roster`.
    pub fn start(accounts: &[(&str, &str)], roster: &[(&str, &str)]) -> Self {
        assert!(
            std::path::Path::new("/usr/sbin/ejabberdctl").exists(),
            "ejabberd is not installed: run the README's test command, which installs it"
        );
        let dir = tempfile::Builder::new()
            .prefix("tern-ejabberd-")
            .tempdir()
            .expect("temp dir");
        let base = dir.path();
        std::fs::write(base.join("gen-certs.sh"), GEN_CERTS).expect("script");
        let out = Command::new("sh")
            .arg(base.join("gen-certs.sh"))
            .output()
            .expect("run gen-certs.sh");
        assert!(out.status.success(), "gen-certs.sh failed: {out:?}");
        let pem = [
            std::fs::read_to_string(base.join("localhost.crt")).unwrap(),
            std::fs::read_to_string(base.join("localhost.key")).unwrap(),
        ]
        .concat();
        std::fs::write(base.join("localhost.pem"), pem).unwrap();
        for sub in ["spool", "logs", "upload"] {
            std::fs::create_dir_all(base.join(sub)).unwrap();
        }
        let port = free_port_block();
        let config = CONFIG
            .replace("@BASE@", base.to_str().unwrap())
            .replace("@C2S_TLS@", &(port + 1).to_string())
            .replace("@HTTPS@", &(port + 2).to_string())
            .replace("@C2S@", &port.to_string());
        std::fs::write(base.join("ejabberd.yml"), config).unwrap();
        std::fs::write(
            base.join("ejabberdctl.cfg"),
            format!(
                "EJABBERD_CONFIG_PATH={0}/ejabberd.yml\nEJABBERD_PID_PATH={0}/ejabberd.pid\nERL_OPTIONS=\"-env ERL_CRASH_DUMP_BYTES 0\"\n",
                base.display()
            ),
        )
        .unwrap();
        if std::path::Path::new("/etc/ejabberd/inetrc").exists() {
            std::fs::copy("/etc/ejabberd/inetrc", base.join("inetrc")).unwrap();
        }
        // The node runs as the ejabberd user: it must reach and own all of it.
        let out = Command::new("chown")
            .args(["-R", "ejabberd"])
            .arg(base)
            .output()
            .unwrap();
        assert!(out.status.success(), "chown: {out:?}");
        let out = Command::new("chmod").arg("711").arg(base).output().unwrap();
        assert!(out.status.success(), "chmod: {out:?}");

        let node = format!("tern{}_{}@localhost", std::process::id(), port);
        let mut server = Self {
            dir,
            node,
            running: false,
            port,
        };
        server.run();
        for (user, password) in accounts {
            server.ctl(&["register", user, "localhost", password]);
        }
        for (owner, contact) in roster {
            let name = capitalised(contact);
            server.ctl(&[
                "add_rosteritem",
                owner,
                "localhost",
                contact,
                "localhost",
                &name,
                "Friends",
                "both",
            ]);
        }
        server
    }

    fn command(&self) -> Command {
        let base = self.dir.path();
        let mut cmd = Command::new("/usr/sbin/ejabberdctl");
        cmd.arg("--config-dir")
            .arg(base)
            .arg("--ctl-config")
            .arg(base.join("ejabberdctl.cfg"))
            .arg("--spool")
            .arg(base.join("spool"))
            .arg("--logs")
            .arg(base.join("logs"))
            .arg("--node")
            .arg(&self.node);
        cmd
    }

    /// Runs an `ejabberdctl` command; panics when it fails.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("ejabberdctl");
        assert!(
            out.status.success(),
            "ejabberdctl {args:?}: {out:?}\n{}",
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn run(&mut self) {
        let out = self
            .command()
            .arg("start")
            .output()
            .expect("ejabberdctl start");
        assert!(out.status.success(), "ejabberdctl start: {out:?}");
        self.running = true;
        // Up when the client port answers; a bad config shows in the log at once.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            let log = self.log();
            assert!(
                !log.contains("[critical]") && Instant::now() < deadline,
                "ejabberd did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.command().arg("started").output();
    }

    /// Stops the node and waits until it is gone (bounded).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        self.stop_node();
        let mut nodes = NODES.lock().unwrap_or_else(|e| e.into_inner());
        nodes.0 = nodes.0.saturating_sub(1);
        if nodes.0 == 0 && !nodes.1 {
            // Refused by epmd while any node (another test's) is alive.
            let _ = Command::new("epmd").arg("-kill").output();
        }
    }

    fn stop_node(&mut self) {
        let _ = self.command().arg("stop").output();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err()
                && self
                    .command()
                    .arg("ping")
                    .output()
                    .is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).contains("pong"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Still there: make sure it does not outlive the test.
        let pid = std::fs::read_to_string(self.dir.path().join("ejabberd.pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<u32>() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }

    /// Restarts the node with the same data and ports (`ejabberdctl restart`
    /// sends the clients `<system-shutdown/>`).
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn direct_tls_address(&self) -> String {
        format!("127.0.0.1:{}", self.port + 1)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/ejabberd.log")).unwrap_or_default()
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn capitalised(user: &str) -> String {
    let mut chars = user.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A port p such that p, p+1 and p+2 are all free on 127.0.0.1.
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
        let others = [1u16, 2]
            .map(|d| TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, base + d)).is_ok());
        if others.iter().all(|free| *free) {
            return base;
        }
    }
    panic!("no free block of ports on 127.0.0.1");
}
