//! A virtual X display (Xvfb) for launching the real binary, and stopping
//! what a test started.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Stops a child politely (SIGTERM), then for good after 8 s.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A virtual X display for the launches, stopped on drop.
pub struct Xvfb {
    child: Child,
    pub name: String,
}

impl Xvfb {
    pub fn start() -> Self {
        // A display number nobody else here uses.
        let number = (90..200)
            .find(|n| !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists())
            .expect("a free X display");
        let child = Command::new("Xvfb")
            .arg(format!(":{number}"))
            .args(["-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian: xvfb)");
        let socket = format!("/tmp/.X11-unix/X{number}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::path::Path::new(&socket).exists() {
            assert!(Instant::now() < deadline, "Xvfb did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            name: format!(":{number}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// The first visible window of process `pid` on `display`, within 20 s.
pub fn window_of(display: &str, pid: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = Command::new("xdotool")
            .args(["search", "--onlyvisible", "--pid", &pid.to_string()])
            .env("DISPLAY", display)
            .output()
            .expect("xdotool (Debian: xdotool)");
        if let Some(id) = String::from_utf8_lossy(&found.stdout).lines().next() {
            return id.to_string();
        }
        assert!(Instant::now() < deadline, "no window");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Clicks at `x`, `y` in `window` (then leaves the pointer there).
pub fn click(display: &str, window: &str, x: u32, y: u32) {
    let status = Command::new("xdotool")
        .args(["mousemove", "--window", window])
        .args([x.to_string(), y.to_string()])
        .args(["click", "1"])
        .env("DISPLAY", display)
        .status()
        .expect("xdotool");
    assert!(status.success(), "xdotool failed");
}

/// Moves the pointer to `x`, `y` in `window` (off the widgets before a shot).
pub fn point(display: &str, window: &str, x: u32, y: u32) {
    let _ = Command::new("xdotool")
        .args(["mousemove", "--window", window])
        .args([x.to_string(), y.to_string()])
        .env("DISPLAY", display)
        .status();
}

/// Writes `window` as a PNG to `out` (imagemagick's `import`).
pub fn screenshot(display: &str, window: &str, out: &str) {
    let shot = Command::new("import")
        .args(["-window", window, out])
        .env("DISPLAY", display)
        .status()
        .expect("import (Debian: imagemagick)");
    assert!(shot.success(), "import failed");
}

/// Types `text` into `window`'s focused field. Real key events (XTEST), with
/// the X focus given to the window first: with no window manager on the
/// display, nothing else gives it, and synthetic events are not taken.
pub fn type_text(display: &str, window: &str, text: &str) {
    let _ = Command::new("xdotool")
        .args(["windowfocus", "--sync", window])
        .env("DISPLAY", display)
        .status();
    let status = Command::new("xdotool")
        .args(["type", "--delay", "20", text])
        .env("DISPLAY", display)
        .status()
        .expect("xdotool");
    assert!(status.success(), "xdotool failed");
}
