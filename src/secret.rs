//! Account passwords in the system's credential store, and the explicit file opt-in.
//!
//! Passwords live in the operating system's credential store through the
//! `keyring` crate (v4, its `v1` mode): the Secret Service (GNOME Keyring,
//! KWallet, KeePassXC, ...) over the D-Bus session bus on Linux and the BSDs,
//! the Credential Manager on Windows, the Keychain on macOS. Each account is one
//! entry: service [`SERVICE`], user name the account's bare JID.
//!
//! Where no credential store answers (a bare session without a session bus, a
//! container, a bus without a Secret Service), every call returns
//! [`Error::Unavailable`] quickly: the caller says so and asks for the password
//! at login. Writing the password to a file ([`save_to_file`]) is only ever an
//! explicit opt-in of the user.
//!
//! All functions block: call them from `tokio::task::spawn_blocking` (or another
//! thread), never from the UI thread. Each is bounded in time (see
//! [`CONNECT_TIMEOUT`] and [`ACCESS_TIMEOUT`]).
//!
//! Passwords are never logged, and no [`Error`] ever contains one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::xmpp::Password;

/// The service name of Tern's entries in the credential store.
pub const SERVICE: &str = "im.tern.Tern";

/// How long [`init`] waits for the credential store to answer.
///
/// Connecting normally takes milliseconds, and failing (no session bus, no
/// Secret Service on it) is as quick. The bound is for a bus that accepts the
/// connection but whose daemon never answers, or that starts a Secret Service
/// by D-Bus activation which then stalls: the bus itself only gives up after
/// its activation timeout (25 s by default), far too long for a login.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long [`load`], [`save`] and [`forget`] wait for the credential store.
///
/// An unlocked store answers in milliseconds, but a locked keyring makes the
/// Secret Service show an unlock prompt, and the `keyring` crate then waits
/// (without any timeout of its own) until the user answers it. This leaves the
/// user time to type the keyring's password; after it Tern stops waiting
/// ([`Error::Unavailable`]) and asks for the account's password instead.
pub const ACCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a password could not be read, stored or removed.
///
/// The messages name the store, the account or the file, never the password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No credential store answers (no session bus, no Secret Service, or no
    /// answer in time): say so in the UI and ask for the password at login.
    #[error("no credential store is available: {0}")]
    Unavailable(String),
    /// The credential store answered with an error (locked and the unlock
    /// prompt dismissed, access refused, ...).
    #[error("the credential store failed: {0}")]
    Store(String),
    /// The password file could not be written.
    #[error("cannot write the password file {}: {}", .0.display(), .1)]
    Io(PathBuf, io::Error),
}

/// Where the one-time choice of the credential store stands.
enum Probe {
    Idle,
    /// `overdue` once a caller has waited `CONNECT_TIMEOUT` in vain: later
    /// callers do not wait again (only the first login pays for a stalled
    /// store), they see the outcome once the probe ends.
    Running {
        overdue: bool,
    },
    Done(Result<(), String>),
}

static PROBE: Mutex<Probe> = Mutex::new(Probe::Idle);
static PROBE_DONE: Condvar = Condvar::new();

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Chooses the platform's credential store, once per process.
///
/// Idempotent and cheap after the first call; [`load`], [`save`] and
/// [`forget`] call it themselves. `Err(Unavailable)` when no store answers
/// within [`CONNECT_TIMEOUT`] (only the first call waits that long for a
/// store that does not answer; later ones fail at once while it still does
/// not).
///
/// The outcome is final for the process (the `keyring` crate keeps it): a
/// credential store that starts later is only used after Tern restarts. The
/// one exception is a store that answers after the timeout: the probe goes on
/// in the background, and a later call sees its result.
pub fn init() -> Result<(), Error> {
    let mut probe = lock(&PROBE);
    if matches!(*probe, Probe::Idle) {
        // The probe runs on its own thread so that this call is bounded even
        // when connecting hangs (see `CONNECT_TIMEOUT`). A plain thread, not a
        // tokio one, also keeps zbus on its own executor: the connection
        // outlives whatever runtime the caller happens to be in.
        let spawned = std::thread::Builder::new()
            .name("tern-keyring-init".into())
            .spawn(|| {
                let outcome = keyring::Entry::store_status()
                    .as_ref()
                    .map(|_| ())
                    .map_err(describe);
                *lock(&PROBE) = Probe::Done(outcome);
                PROBE_DONE.notify_all();
            });
        if let Err(err) = spawned {
            return Err(Error::Store(format!("cannot start a thread: {err}")));
        }
        *probe = Probe::Running { overdue: false };
    }
    let (mut probe, _) = PROBE_DONE
        .wait_timeout_while(probe, CONNECT_TIMEOUT, |probe| {
            matches!(probe, Probe::Running { overdue: false })
        })
        .unwrap_or_else(PoisonError::into_inner);
    match &*probe {
        Probe::Done(Ok(())) => Ok(()),
        Probe::Done(Err(reason)) => Err(Error::Unavailable(reason.clone())),
        Probe::Idle | Probe::Running { .. } => {
            if let Probe::Running { overdue } = &mut *probe {
                *overdue = true;
            }
            Err(Error::Unavailable(format!(
                "the credential store did not answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )))
        }
    }
}

/// The stored password of `account` (a bare JID); `None` if nothing is stored.
pub fn load(account: &str) -> Result<Option<Password>, Error> {
    let found = with_entry(account, |entry| match entry.get_password() {
        Ok(secret) => Ok(Some(secret)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(err) => Err(err),
    })?;
    tracing::debug!(
        account,
        found = found.is_some(),
        "password looked up in the credential store"
    );
    Ok(found.filter(|secret| !secret.is_empty()).map(Password::new))
}

/// Stores `password` for `account` (a bare JID), replacing any stored one.
pub fn save(account: &str, password: &Password) -> Result<(), Error> {
    if password.is_empty() {
        return Err(Error::Store("an empty password is not stored".into()));
    }
    let secret = password.clone();
    with_entry(account, move |entry| entry.set_password(secret.expose()))?;
    tracing::debug!(account, "password stored in the credential store");
    Ok(())
}

/// Removes the stored password of `account`; `Ok` if none was stored.
pub fn forget(account: &str) -> Result<(), Error> {
    with_entry(account, |entry| match entry.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(err) => Err(err),
    })?;
    tracing::debug!(account, "password removed from the credential store");
    Ok(())
}

/// Runs `op` on the entry of `account`, on a thread of its own, waiting at
/// most [`ACCESS_TIMEOUT`] for it (see there why it could block).
///
/// A timed-out call leaves its thread behind, blocked in the store; it ends
/// when the store answers, and its result is dropped.
fn with_entry<T: Send + 'static>(
    account: &str,
    op: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
) -> Result<T, Error> {
    init()?;
    let account = account.to_owned();
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("tern-keyring".into())
        .spawn(move || {
            let outcome = keyring::Entry::new(SERVICE, &account).and_then(|entry| op(&entry));
            // The receiver is gone after a timeout: nobody wants the result.
            let _ = sender.send(outcome);
        })
        .map_err(|err| Error::Store(format!("cannot start a thread: {err}")))?;
    match receiver.recv_timeout(ACCESS_TIMEOUT) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(keyring::Error::NoDefaultStore)) => Err(Error::Unavailable(
            "no credential store could be opened".into(),
        )),
        Ok(Err(err)) => Err(Error::Store(describe(&err))),
        Err(RecvTimeoutError::Timeout) => Err(Error::Unavailable(format!(
            "the credential store did not answer within {} s (an unlock prompt left open?)",
            ACCESS_TIMEOUT.as_secs()
        ))),
        Err(RecvTimeoutError::Disconnected) => Err(Error::Store(
            "the credential store access failed unexpectedly".into(),
        )),
    }
}

/// A description of a `keyring` error that never contains a secret (some
/// variants carry the stored bytes).
fn describe(err: &keyring::Error) -> String {
    use keyring::Error as K;
    match err {
        K::PlatformFailure(cause) => cause.to_string(),
        K::NoStorageAccess(cause) => format!("access refused ({cause})"),
        K::NoEntry => "no password is stored".into(),
        K::BadEncoding(_) => "the stored password is not valid UTF-8".into(),
        K::BadDataFormat(..) => "the stored password is malformed".into(),
        K::BadStoreFormat(reason) => format!("the store is malformed: {reason}"),
        K::Ambiguous(entries) => format!("{} entries match this account", entries.len()),
        K::NoDefaultStore => "no credential store could be opened".into(),
        // TooLong, Invalid, NotSupportedByStore and any later variant: their
        // messages name parameters and limits, not values.
        other => other.to_string(),
    }
}

/// Reads a password file: the first line, without its line ending.
pub fn read_password(path: &Path) -> io::Result<Password> {
    let text = std::fs::read_to_string(path)?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the password file is empty",
        ));
    }
    Ok(Password::new(line))
}

/// The explicit opt-in: writes `password` to the file `path`, for
/// [`read_password`] (the password and a newline).
///
/// The file is created readable and writable by its owner only (mode 0600 on
/// unix, set when it is created, so it is never readable by others even
/// briefly; elsewhere a plain file, guarded by its folder's permissions), in
/// the same folder under a temporary name and then renamed over `path`: a
/// reader sees either the old file or the complete new one. A symbolic link at
/// `path` is replaced, not followed.
///
/// The caller must have warned the user: anyone who can read the file (a
/// backup, another account with administrator rights) can read the password.
pub fn save_to_file(path: &Path, password: &Password) -> Result<(), Error> {
    let fail = |err: io::Error| Error::Io(path.to_path_buf(), err);
    let invalid = |what: &str| fail(io::Error::new(io::ErrorKind::InvalidInput, what));
    if password.is_empty() {
        return Err(invalid("the password is empty"));
    }
    if password.expose().contains(['\n', '\r']) {
        return Err(invalid(
            "a password file cannot hold a password with a line break",
        ));
    }
    let Some(name) = path.file_name() else {
        return Err(invalid("the path does not name a file"));
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if path.is_dir() {
        return Err(fail(io::Error::new(
            io::ErrorKind::IsADirectory,
            "the path is a folder",
        )));
    }

    let (temp, mut file) = create_private(dir, name).map_err(fail)?;
    let written = (|| {
        file.write_all(password.expose().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(fail(err));
    }
    // Make the rename itself durable; the file is in place either way.
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    tracing::warn!(
        path = %path.display(),
        "password written to a file at the user's request: anyone who can read the file can read it"
    );
    Ok(())
}

/// Creates a new, empty file next to the target, readable by its owner only.
fn create_private(dir: &Path, name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut attempt = 0;
    loop {
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp = dir.join(temp_name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&temp) {
            Ok(file) => {
                // The umask can only have taken bits away; make it exactly 0600.
                #[cfg(unix)]
                if let Err(err) =
                    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
                {
                    let _ = std::fs::remove_file(&temp);
                    return Err(err);
                }
                return Ok((temp, file));
            }
            // A leftover of a crashed run with the same process id.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn file_is_private_complete_and_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");

        let first = Password::new("correct horse battery staple");
        save_to_file(&path, &first).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"correct horse battery staple\n"
        );
        assert_eq!(read_password(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        }

        // A world-readable file there is replaced by a new, private one.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        // Held open across the replacement (unix only: Windows may refuse to
        // rename over an open file).
        #[cfg(unix)]
        let reader = File::open(&path).unwrap();
        let second = Password::new(" ünïcode with spaces ");
        save_to_file(&path, &second).unwrap();
        assert_eq!(read_password(&path).unwrap(), second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
            // Renamed over, not rewritten in place: a reader of the old file
            // still sees the old, complete content.
            let old = reader.metadata().unwrap();
            assert_ne!(old.ino(), std::fs::metadata(&path).unwrap().ino());
            let mut text = String::new();
            io::Read::read_to_string(&mut &reader, &mut text).unwrap();
            assert_eq!(text, "correct horse battery staple\n");
        }

        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["password"], "no temporary file is left behind");
    }

    #[test]
    fn file_refuses_a_folder_and_unreadable_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        let secret = Password::new("hunter2-secret");

        let err = save_to_file(&folder, &secret).unwrap_err();
        assert!(
            matches!(&err, Error::Io(path, _) if *path == folder),
            "{err:?}"
        );
        assert!(folder.is_dir());
        assert!(!err.to_string().contains("hunter2"));

        let missing = dir.path().join("no such folder").join("password");
        let err = save_to_file(&missing, &secret).unwrap_err();
        assert!(
            matches!(&err, Error::Io(path, _) if *path == missing),
            "{err:?}"
        );

        let path = dir.path().join("password");
        for bad in ["", "two\nlines", "carriage\rreturn"] {
            let err = save_to_file(&path, &Password::new(bad)).unwrap_err();
            assert!(matches!(err, Error::Io(..)), "{err:?}");
            assert!(!err.to_string().contains("lines") && !err.to_string().contains("return"));
        }

        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["folder"], "nothing is left behind");
    }
}
