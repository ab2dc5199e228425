//! One Tern per profile: a second start hands its request to the running one.
//!
//! The first `tern` for a profile binds a local socket whose name comes from a
//! hash of the canonical profile directory (so profiles never collide) and
//! becomes the [`Claim::Primary`]. A later start for the same profile (for
//! instance from a clicked `xmpp:` link) connects, sends its [`Request`] and
//! exits once the running one acknowledged it ([`Claim::HandedOver`]).
//!
//! Where the socket lives:
//! - Linux and Android: the abstract namespace (nothing on disk, the name
//!   vanishes with its owner, so a crash leaves nothing stale behind). It is
//!   visible to every local user, so both sides check that the peer runs as
//!   the same user (`SO_PEERCRED`).
//! - Windows: a named pipe `\\.\pipe\im.tern.Tern.<hash>`; it also vanishes
//!   with its owner.
//! - Other Unix (macOS, BSD): a socket file `tern.sock` inside the profile
//!   directory (owner-only), or in the per-user temporary directory when that
//!   path is too long for a socket address. A file left by a crashed primary
//!   is recognised (connecting is refused) and replaced.
//!
//! The protocol is one line of JSON each way, at most [`MAX_LINE`] bytes:
//! the later start sends `{"open":"xmpp:…"}`, the running one answers `ok`
//! once the request is queued for the window, or `error <why>`.
//!
//! Races and choices:
//! - Two starts at once: both find nobody, both try to bind; the loser gets
//!   "address in use" and connects to the winner instead (bounded retries).
//! - Connected but no answer within [`ANSWER_TIMEOUT`]: a listener exists, so
//!   this start can neither bind the name nor should it open a second window
//!   on the same profile (its history store is locked anyway): [`claim`]
//!   returns [`Error::NoAnswer`] instead of becoming the primary.
//! - The connection closes before an answer (the running one is quitting):
//!   look again, which normally finds the name free and binds it.
//! - Socket files only: a stale file is removed after a second refused
//!   connection, right before binding. Two starts that both found the same
//!   stale file may still race between that check and their bind (a window of
//!   a few system calls); the loser's primary then runs unreachable, and its
//!   window reports the profile in use because the store is locked.
//! - Requests are read and acknowledged by a task of their own, on the tokio
//!   runtime that called [`claim`]: a window that is still starting (or busy)
//!   does not delay acknowledgements; requests queue until [`Listener::next`]
//!   takes them. Each client gets [`CLIENT_TIMEOUT`] and at most
//!   [`MAX_CLIENTS`] are served at once, so silent or hostile clients cannot
//!   hold up the others for long.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use interprocess::local_socket::tokio::prelude::*;
use interprocess::local_socket::{GenericFilePath, GenericNamespaced, ListenerOptions, Name};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{AbortHandle, JoinSet};

use crate::xmpp::uri::XmppUri;

/// The longest request line (without its newline) the running instance reads.
pub const MAX_LINE: usize = 64 * 1024;
/// How long a later start waits for the running one's acknowledgement.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the running instance gives one client to send its request.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many clients the running instance serves at once; more wait their turn.
pub const MAX_CLIENTS: usize = 16;

/// Requests waiting for the window.
const QUEUE: usize = 64;
/// The acknowledgement line.
const ACK: &str = "ok";
/// The longest answer line a later start reads.
const MAX_ANSWER: u64 = 1024;
/// Rounds of "connect, else bind" before giving up.
const ATTEMPTS: usize = 4;
/// The socket file's name in the profile directory (file-path platforms).
#[cfg_attr(
    any(target_os = "linux", target_os = "android", windows),
    allow(dead_code)
)]
const SOCKET_FILE: &str = "tern.sock";
/// Pause after a failed `accept` (out of descriptors): no busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a later start asks of the running instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// An xmpp: URI to open, as given on the command line; `None` only brings
    /// the window to the front.
    #[serde(default)]
    pub open: Option<String>,
}

/// The outcome of [`claim`].
#[derive(Debug)]
#[must_use]
pub enum Claim {
    /// We are the running instance: requests from later starts arrive here.
    Primary(Listener),
    /// Another instance runs and has our request.
    HandedOver,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("a Tern is already running for this profile but did not answer")]
    NoAnswer,
    #[error("the running Tern refused the request: {0}")]
    Refused(String),
    #[error("the instance socket {0} is held by another user's program")]
    Foreign(String),
    #[error("{} is in the way of the instance socket and is not a socket", .0.display())]
    NotASocket(PathBuf),
    #[error("instance socket {name}: {source}")]
    Io { name: String, source: io::Error },
    #[error("could neither reach nor become the running Tern for this profile")]
    Contended,
}

/// Reaches the running instance for the profile in `profile_dir` and hands it
/// `request` ([`Claim::HandedOver`]), or becomes that instance
/// ([`Claim::Primary`]). Waits at most about [`ANSWER_TIMEOUT`] per round.
///
/// Call it once the profile directory exists: the name hashes its canonical
/// path, and a path that does not exist yet cannot be canonicalised.
///
/// Must run inside a tokio runtime, which must outlive the returned
/// [`Listener`]: its socket and its reading task live there.
pub async fn claim(profile_dir: &Path, request: &Request) -> Result<Claim, Error> {
    claim_at(
        &Endpoint::for_profile(profile_dir),
        request,
        Limits::default(),
    )
    .await
}

/// Requests from later starts, in arrival order.
pub struct Listener {
    requests: mpsc::Receiver<Request>,
    task: AbortHandle,
    endpoint: String,
}

impl Listener {
    fn start(socket: LocalSocketListener, endpoint: &Endpoint, limits: Limits) -> Self {
        let (sender, requests) = mpsc::channel(QUEUE);
        let task = tokio::spawn(accept_loop(socket, sender, limits)).abort_handle();
        Self {
            requests,
            task,
            endpoint: endpoint.to_string(),
        }
    }

    /// The next request from a later start. Bad or hostile input (garbage,
    /// lines over [`MAX_LINE`], slow or silent clients, other users) is logged
    /// and skipped and never shows up here. `None` once the socket is gone
    /// (its runtime shut down).
    pub async fn next(&mut self) -> Option<Request> {
        self.requests.recv().await
    }
}

impl Drop for Listener {
    /// Releases the name (once the runtime runs the cancelled task), so the
    /// next start becomes the primary.
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// A [`Listener`] to hand a UI subscription: cheap to clone, hashed by
/// identity (for `iced::Subscription::run_with`). The stream takes the
/// listener and gives it back when dropped, so a re-created subscription goes
/// on where the last one stopped.
#[derive(Clone)]
pub struct Incoming(Arc<Mutex<Option<Listener>>>);

impl Incoming {
    pub fn new(listener: Listener) -> Self {
        Self(Arc::new(Mutex::new(Some(listener))))
    }

    /// Requests as a stream; empty if another stream holds the listener.
    pub fn stream(&self) -> impl futures::Stream<Item = Request> + Send + use<> {
        let listener = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        let held = Held {
            slot: self.0.clone(),
            listener,
        };
        futures::stream::unfold(held, |mut held| async move {
            let request = held.listener.as_mut()?.next().await?;
            Some((request, held))
        })
    }
}

impl From<Listener> for Incoming {
    fn from(listener: Listener) -> Self {
        Self::new(listener)
    }
}

impl Hash for Incoming {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0), state);
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Incoming")
    }
}

/// The listener while a stream uses it; back into the slot when dropped.
struct Held {
    slot: Arc<Mutex<Option<Listener>>>,
    listener: Option<Listener>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(listener);
        }
    }
}

/// Time bounds, shorter in tests.
#[derive(Debug, Clone, Copy)]
struct Limits {
    answer: Duration,
    client: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            answer: ANSWER_TIMEOUT,
            client: CLIENT_TIMEOUT,
        }
    }
}

/// Where the running instance of one profile listens.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// Linux abstract namespace, Windows named pipe: gone with their owner.
    Namespaced(String),
    /// A socket file, which may outlive a crashed owner.
    #[cfg_attr(
        any(target_os = "linux", target_os = "android", windows),
        allow(dead_code)
    )]
    File(PathBuf),
}

impl Endpoint {
    fn for_profile(profile_dir: &Path) -> Self {
        let dir = std::fs::canonicalize(profile_dir)
            .or_else(|_| std::path::absolute(profile_dir))
            .unwrap_or_else(|_| profile_dir.to_path_buf());
        let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
        let mut name = String::from("im.tern.Tern.");
        for byte in digest.iter().take(16) {
            use std::fmt::Write;
            let _ = write!(name, "{byte:02x}");
        }
        Self::platform(&dir, name)
    }

    #[cfg(any(target_os = "linux", target_os = "android", windows))]
    fn platform(_dir: &Path, name: String) -> Self {
        Self::Namespaced(name)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android", windows)))]
    fn platform(dir: &Path, name: String) -> Self {
        // sun_path holds 104 bytes on macOS and the BSDs, 108 on Linux.
        const MAX_SOCKET_PATH: usize = 100;
        let path = dir.join(SOCKET_FILE);
        if path.as_os_str().len() <= MAX_SOCKET_PATH {
            Self::File(path)
        } else {
            Self::File(std::env::temp_dir().join(format!("{name}.sock")))
        }
    }

    fn name(&self) -> io::Result<Name<'_>> {
        match self {
            Self::Namespaced(name) => name.as_str().to_ns_name::<GenericNamespaced>(),
            Self::File(path) => path.as_path().to_fs_name::<GenericFilePath>(),
        }
    }

    fn error(&self, source: io::Error) -> Error {
        Error::Io {
            name: self.to_string(),
            source,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Namespaced(name) => write!(f, "@{name}"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

async fn claim_at(endpoint: &Endpoint, request: &Request, limits: Limits) -> Result<Claim, Error> {
    let mut line = serde_json::to_vec(request).map_err(|e| endpoint.error(e.into()))?;
    line.push(b'\n');
    for _ in 0..ATTEMPTS {
        match hand_over(endpoint, &line, limits).await? {
            HandOver::Taken => {
                tracing::debug!("handed the request to the running Tern at {endpoint}");
                return Ok(Claim::HandedOver);
            }
            HandOver::Gone => continue,
            HandOver::NoListener => {}
        }
        match bind(endpoint) {
            Ok(socket) => {
                tracing::debug!("listening for later starts at {endpoint}");
                return Ok(Claim::Primary(Listener::start(socket, endpoint, limits)));
            }
            // Another start won a race, or (socket files) a crashed one left its file.
            Err(e) if name_taken(&e) => remove_if_stale(endpoint).await?,
            Err(e) => return Err(endpoint.error(e)),
        }
    }
    Err(Error::Contended)
}

/// What became of one attempt to reach the running instance.
enum HandOver {
    Taken,
    /// Nobody listens: we may bind.
    NoListener,
    /// Connected, but the connection closed before an answer.
    Gone,
}

async fn hand_over(endpoint: &Endpoint, line: &[u8], limits: Limits) -> Result<HandOver, Error> {
    let attempt = async {
        let stream = match connect(endpoint).await {
            Ok(stream) => stream,
            Err(e) if no_listener(&e) => return Ok(HandOver::NoListener),
            Err(e) => return Err(endpoint.error(e)),
        };
        if let Err(who) = same_user(&stream) {
            return Err(Error::Foreign(format!("{endpoint} ({who})")));
        }
        match exchange(stream, line).await {
            Ok(Some(answer)) if answer == ACK => Ok(HandOver::Taken),
            Ok(Some(answer)) => Err(Error::Refused(
                answer.strip_prefix("error ").unwrap_or(&answer).to_string(),
            )),
            Ok(None) => Ok(HandOver::Gone),
            Err(e) => {
                tracing::debug!("the running Tern at {endpoint} went away: {e}");
                Ok(HandOver::Gone)
            }
        }
    };
    tokio::time::timeout(limits.answer, attempt)
        .await
        .unwrap_or(Err(Error::NoAnswer))
}

/// Sends the request line and reads the answer line (`None`: closed first).
async fn exchange(stream: LocalSocketStream, line: &[u8]) -> io::Result<Option<String>> {
    let mut stream = BufReader::new(stream);
    stream.get_mut().write_all(line).await?;
    stream.get_mut().flush().await?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_ANSWER)
        .read_until(b'\n', &mut answer)
        .await?;
    if answer.pop() != Some(b'\n') {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&answer).trim().to_string()))
}

async fn connect(endpoint: &Endpoint) -> io::Result<LocalSocketStream> {
    LocalSocketStream::connect(endpoint.name()?).await
}

fn bind(endpoint: &Endpoint) -> io::Result<LocalSocketListener> {
    ListenerOptions::new()
        .name(endpoint.name()?)
        .reclaim_name(true)
        .try_overwrite(false)
        .create_tokio()
}

/// Nobody listens under the name (a socket file may still be there).
fn no_listener(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// Binding failed because the name exists. Windows reports a named pipe that
/// already has a first instance as "access denied".
fn name_taken(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AddrInUse
        || (cfg!(windows) && e.kind() == io::ErrorKind::PermissionDenied)
}

/// Removes a socket file nobody listens on any more; leaves a live one (the
/// next round hands over to it) and refuses to touch anything but a socket.
async fn remove_if_stale(endpoint: &Endpoint) -> Result<(), Error> {
    let Endpoint::File(path) = endpoint else {
        return Ok(());
    };
    match connect(endpoint).await {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => remove_socket_file(path),
        // Alive (a winner of a race), already gone, or an error the next round reports.
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn remove_socket_file(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt;
    let io_error = |source| Error::Io {
        name: path.display().to_string(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            tracing::info!("removing the stale instance socket {}", path.display());
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(e)),
                _ => Ok(()),
            }
        }
        Ok(_) => Err(Error::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(e)),
    }
}

#[cfg(not(unix))]
fn remove_socket_file(_path: &Path) -> Result<(), Error> {
    Ok(())
}

/// Whether the peer runs as our user. Only the Linux abstract namespace is
/// open to other users; elsewhere the pipe's or directory's permissions do
/// this job. `Err` names the foreign user.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn same_user(stream: &LocalSocketStream) -> Result<(), String> {
    let Some(me) = own_euid() else {
        return Ok(());
    };
    match stream.peer_creds().map(|creds| creds.euid()) {
        Ok(Some(peer)) if peer != me => Err(format!("uid {peer}")),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("no peer credentials: {e}")),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn same_user(_stream: &LocalSocketStream) -> Result<(), String> {
    Ok(())
}

/// Our effective user id, from `/proc/self/status` (std has no `geteuid`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn own_euid() -> Option<u32> {
    static EUID: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *EUID.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let euid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok();
        if euid.is_none() {
            tracing::warn!("cannot read our user id: instance peers go unchecked");
        }
        euid
    })
}

/// Accepts clients and serves each in a task of its own, at most
/// [`MAX_CLIENTS`] at a time. Ends (closing the socket and every client) when
/// the [`Listener`] aborts it.
async fn accept_loop(socket: LocalSocketListener, sender: mpsc::Sender<Request>, limits: Limits) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut clients = JoinSet::new();
    loop {
        while clients.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match socket.accept().await {
            Ok(stream) => {
                let sender = sender.clone();
                clients.spawn(async move {
                    serve(stream, &sender, limits).await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!("instance socket: cannot accept a connection: {e}");
                drop(slot);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Why a client's request was not taken.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("empty")]
    Empty,
    #[error("request over {MAX_LINE} bytes")]
    TooLong,
    #[error("request without its end of line")]
    Unterminated,
    #[error("not a request: {0}")]
    NotJson(serde_json::Error),
    #[error("not an xmpp: URI")]
    BadUri,
    #[error("too slow")]
    Timeout,
    #[error("shutting down")]
    Closing,
    #[error("{0}")]
    Io(io::Error),
    #[error("another user ({0})")]
    Foreign(String),
}

/// Reads one request, queues it and answers; never panics, never takes longer
/// than about twice `limits.client`.
async fn serve(stream: LocalSocketStream, sender: &mpsc::Sender<Request>, limits: Limits) {
    let verdict = match same_user(&stream) {
        Err(who) => Err(Refusal::Foreign(who)),
        Ok(()) => {
            let mut reader = BufReader::new(stream);
            let verdict = tokio::time::timeout(limits.client, receive(&mut reader, sender))
                .await
                .unwrap_or(Err(Refusal::Timeout));
            let answer = match &verdict {
                Ok(()) => format!("{ACK}\n"),
                Err(refusal) => format!("error {refusal}\n"),
            };
            let stream = reader.get_mut();
            // The client may be gone or not reading: the answer is best effort.
            let _ = tokio::time::timeout(limits.client, async {
                stream.write_all(answer.as_bytes()).await?;
                stream.flush().await
            })
            .await;
            verdict
        }
    };
    match verdict {
        Ok(()) => tracing::debug!("took a request from a later start"),
        // A connection check (see `remove_if_stale`) sends nothing.
        Err(Refusal::Empty) => tracing::debug!("instance socket: a client sent nothing"),
        Err(refusal) => tracing::warn!("instance socket: skipped a client: {refusal}"),
    }
}

async fn receive<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    sender: &mpsc::Sender<Request>,
) -> Result<(), Refusal> {
    let line = read_line(reader).await?;
    let request: Request = serde_json::from_slice(&line).map_err(Refusal::NotJson)?;
    if let Some(open) = &request.open
        && open.parse::<XmppUri>().is_err()
    {
        return Err(Refusal::BadUri);
    }
    sender.send(request).await.map_err(|_| Refusal::Closing)
}

/// One line of at most [`MAX_LINE`] bytes, without its newline.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Vec<u8>, Refusal> {
    let mut line = Vec::new();
    reader
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .await
        .map_err(Refusal::Io)?;
    match line.last() {
        Some(b'\n') => {
            line.pop();
            Ok(line)
        }
        _ if line.len() > MAX_LINE => Err(Refusal::TooLong),
        None => Err(Refusal::Empty),
        Some(_) => Err(Refusal::Unterminated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Instant;

    /// Every test finishes within this, or fails.
    const BOUND: Duration = Duration::from_secs(20);

    fn open(uri: &str) -> Request {
        Request {
            open: Some(uri.to_string()),
        }
    }

    fn short() -> Limits {
        Limits {
            answer: Duration::from_secs(3),
            client: Duration::from_millis(300),
        }
    }

    async fn primary_at(endpoint: &Endpoint, limits: Limits) -> Listener {
        match claim_at(endpoint, &Request::default(), limits).await {
            Ok(Claim::Primary(listener)) => listener,
            other => panic!("expected Primary, got {other:?}"),
        }
    }

    async fn primary(dir: &Path) -> Listener {
        primary_at(&Endpoint::for_profile(dir), Limits::default()).await
    }

    async fn next(listener: &mut Listener) -> Request {
        tokio::time::timeout(Duration::from_secs(5), listener.next())
            .await
            .expect("a request in time")
            .expect("the listener is open")
    }

    /// Nothing more arrives within a short while.
    async fn assert_quiet(listener: &mut Listener) {
        let more = tokio::time::timeout(Duration::from_millis(200), listener.next()).await;
        assert!(more.is_err(), "unexpected request: {more:?}");
    }

    /// Waits until a dropped primary's socket file is removed.
    #[cfg(unix)]
    async fn gone(path: &Path) {
        let started = Instant::now();
        while path.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{path:?} stayed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[cfg(unix)]
    fn file_endpoint(dir: &Path) -> Endpoint {
        Endpoint::File(dir.join(SOCKET_FILE))
    }

    /// Test 1 on both kinds of endpoint: the second start's request arrives.
    async fn hand_over_at(endpoint: Endpoint) {
        let mut listener = primary_at(&endpoint, Limits::default()).await;
        let request = open("xmpp:bob@example.org");
        let claim = claim_at(&endpoint, &request, Limits::default()).await;
        assert!(matches!(claim, Ok(Claim::HandedOver)), "{claim:?}");
        assert_eq!(next(&mut listener).await, request);
        // A bare start just asks for the window.
        let claim = claim_at(&endpoint, &Request::default(), Limits::default()).await;
        assert!(matches!(claim, Ok(Claim::HandedOver)), "{claim:?}");
        assert_eq!(next(&mut listener).await, Request { open: None });
        assert_quiet(&mut listener).await;
    }

    #[tokio::test]
    async fn second_start_hands_over() {
        tokio::time::timeout(BOUND, async {
            let dir = tempfile::tempdir().unwrap();
            hand_over_at(Endpoint::for_profile(dir.path())).await;
            // The public entry point, too.
            let mut listener = primary(dir.path()).await;
            let request = open("xmpp:bob@example.org");
            let claim = claim(dir.path(), &request).await;
            assert!(matches!(claim, Ok(Claim::HandedOver)), "{claim:?}");
            assert_eq!(next(&mut listener).await, request);
        })
        .await
        .unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn second_start_hands_over_through_a_socket_file() {
        tokio::time::timeout(BOUND, async {
            let dir = tempfile::tempdir().unwrap();
            hand_over_at(file_endpoint(dir.path())).await;
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn profiles_do_not_collide() {
        tokio::time::timeout(BOUND, async {
            let a = tempfile::tempdir().unwrap();
            let b = tempfile::tempdir().unwrap();
            let mut first = primary(a.path()).await;
            let mut second = primary(b.path()).await;
            let request = open("xmpp:carol@example.org");
            let claim = claim(b.path(), &request).await;
            assert!(matches!(claim, Ok(Claim::HandedOver)), "{claim:?}");
            assert_eq!(next(&mut second).await, request);
            assert_quiet(&mut first).await;
        })
        .await
        .unwrap();
    }

    #[test]
    fn names_follow_the_canonical_profile_dir() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let same = Endpoint::for_profile(&a.path().join("."));
        assert_eq!(Endpoint::for_profile(a.path()), same);
        assert_ne!(
            Endpoint::for_profile(a.path()),
            Endpoint::for_profile(b.path())
        );
        if let Endpoint::Namespaced(name) = same {
            // Abstract socket names hold 107 bytes.
            assert!(name.len() < 100, "{name}");
            assert!(name.starts_with("im.tern.Tern."));
        }
    }

    #[tokio::test]
    async fn bad_clients_are_skipped() {
        tokio::time::timeout(BOUND, async {
            let dir = tempfile::tempdir().unwrap();
            let endpoint = Endpoint::for_profile(dir.path());
            let mut listener = primary_at(&endpoint, short()).await;

            // Connects and sends nothing, holding its connection open.
            let silent = connect(&endpoint).await.unwrap();
            // Half a line, then nothing.
            let mut partial = connect(&endpoint).await.unwrap();
            partial.write_all(b"{\"open\":").await.unwrap();

            let answer = |bytes: &'static [u8]| {
                let endpoint = endpoint.clone();
                async move {
                    let mut stream = BufReader::new(connect(&endpoint).await.unwrap());
                    // An oversized write may fail once the server gave up reading.
                    let _ = stream.get_mut().write_all(bytes).await;
                    let mut line = String::new();
                    let _ = stream.read_line(&mut line).await;
                    line
                }
            };
            let garbage = answer(b"\x00\xff\xfe not json at all\n").await;
            assert!(garbage.starts_with("error"), "{garbage:?}");
            let not_xmpp = answer(b"{\"open\":\"https://example.org\"}\n").await;
            assert!(not_xmpp.starts_with("error"), "{not_xmpp:?}");
            let huge: &'static [u8] = vec![b'a'; 3 * MAX_LINE].leak();
            let started = Instant::now();
            let oversized = answer(huge).await;
            assert!(
                oversized.is_empty() || oversized.starts_with("error"),
                "{oversized:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(2));

            // The silent clients hold up nobody: a good request goes through at once.
            let started = Instant::now();
            let request = open("xmpp:bob@example.org");
            let claim = claim(dir.path(), &request).await;
            assert!(matches!(claim, Ok(Claim::HandedOver)), "{claim:?}");
            assert!(
                started.elapsed() < short().client,
                "{:?}",
                started.elapsed()
            );
            assert_eq!(next(&mut listener).await, request);
            assert_quiet(&mut listener).await;

            // ...and are cut off after their time.
            for stream in [silent, partial] {
                let mut rest = Vec::new();
                let mut reader = BufReader::new(stream);
                let read =
                    tokio::time::timeout(short().client * 4, reader.read_to_end(&mut rest)).await;
                assert!(read.is_ok(), "a silent client was not dropped");
                let rest = String::from_utf8_lossy(&rest);
                assert!(rest.is_empty() || rest.starts_with("error"), "{rest:?}");
            }
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_new_start_after_the_primary_is_gone_becomes_primary() {
        tokio::time::timeout(BOUND, async {
            let dir = tempfile::tempdir().unwrap();
            drop(primary(dir.path()).await);
            let mut again = primary(dir.path()).await;
            let claim = claim(dir.path(), &open("xmpp:bob@example.org")).await;
            assert!(matches!(claim, Ok(Claim::HandedOver)), "{claim:?}");
            assert_eq!(next(&mut again).await, open("xmpp:bob@example.org"));
        })
        .await
        .unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_stale_socket_file_is_replaced() {
        tokio::time::timeout(BOUND, async {
            let dir = tempfile::tempdir().unwrap();
            let endpoint = file_endpoint(dir.path());
            let Endpoint::File(path) = &endpoint else {
                unreachable!()
            };

            // A cleanly dropped primary removes its file.
            let first = primary_at(&endpoint, Limits::default()).await;
            assert!(path.exists());
            drop(first);
            gone(path).await;

            // A crashed one leaves it: bound, never removed.
            drop(std::os::unix::net::UnixListener::bind(path).unwrap());
            assert!(path.exists());
            let mut listener = primary_at(&endpoint, Limits::default()).await;
            let claim = claim_at(&endpoint, &open("xmpp:bob@example.org"), Limits::default()).await;
            assert!(matches!(claim, Ok(Claim::HandedOver)), "{claim:?}");
            assert_eq!(next(&mut listener).await, open("xmpp:bob@example.org"));
            drop(listener);
            gone(path).await;

            // Anything else in the way is left alone.
            std::fs::write(path, b"mine").unwrap();
            let claim = claim_at(&endpoint, &Request::default(), Limits::default()).await;
            assert!(matches!(claim, Err(Error::NotASocket(_))), "{claim:?}");
            assert_eq!(std::fs::read(path).unwrap(), b"mine");
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_later_starts_all_arrive() {
        tokio::time::timeout(BOUND, async {
            let dir = tempfile::tempdir().unwrap();
            let mut listener = primary(dir.path()).await;
            let sent: BTreeSet<String> = (0..20)
                .map(|i| format!("xmpp:user{i}@example.org"))
                .collect();
            let mut starts = JoinSet::new();
            for uri in sent.clone() {
                let dir = dir.path().to_path_buf();
                starts.spawn(async move { claim(&dir, &open(&uri)).await });
            }
            while let Some(claim) = starts.join_next().await {
                let claim = claim.unwrap();
                assert!(matches!(claim, Ok(Claim::HandedOver)), "{claim:?}");
            }
            let mut arrived = BTreeSet::new();
            for _ in 0..sent.len() {
                arrived.extend(next(&mut listener).await.open);
            }
            assert_eq!(arrived, sent);
            assert_quiet(&mut listener).await;
        })
        .await
        .unwrap();
    }

    /// Simultaneous first starts, on both kinds of endpoint: exactly one
    /// becomes the primary and gets every other start's request.
    async fn race_at(endpoint: Endpoint) {
        let mut starts = JoinSet::new();
        for i in 0..8 {
            let endpoint = endpoint.clone();
            starts.spawn(async move {
                let request = open(&format!("xmpp:user{i}@example.org"));
                let claim = claim_at(&endpoint, &request, Limits::default()).await;
                (request, claim)
            });
        }
        let mut primaries = Vec::new();
        let mut handed = BTreeSet::new();
        while let Some(start) = starts.join_next().await {
            match start.unwrap() {
                (_, Ok(Claim::Primary(listener))) => primaries.push(listener),
                (request, Ok(Claim::HandedOver)) => {
                    handed.extend(request.open);
                }
                (_, Err(e)) => panic!("{e}"),
            }
        }
        assert_eq!(primaries.len(), 1, "{primaries:?}");
        let mut arrived = BTreeSet::new();
        for _ in 0..handed.len() {
            arrived.extend(next(&mut primaries[0]).await.open);
        }
        assert_eq!(arrived, handed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_first_starts_end_with_one_primary() {
        tokio::time::timeout(BOUND, async {
            let dir = tempfile::tempdir().unwrap();
            race_at(Endpoint::for_profile(dir.path())).await;
            #[cfg(unix)]
            race_at(file_endpoint(dir.path())).await;
        })
        .await
        .unwrap();
    }

    /// The loser of a race recognises the taken name (and leaves a live
    /// socket file alone).
    #[tokio::test]
    async fn a_taken_name_is_recognised() {
        tokio::time::timeout(BOUND, async {
            let dir = tempfile::tempdir().unwrap();
            let mut endpoints = vec![Endpoint::for_profile(dir.path())];
            #[cfg(unix)]
            endpoints.push(file_endpoint(dir.path()));
            for endpoint in endpoints {
                let mut listener = primary_at(&endpoint, Limits::default()).await;
                let e = bind(&endpoint).unwrap_err();
                assert!(name_taken(&e), "{e:?}");
                remove_if_stale(&endpoint).await.unwrap();
                if let Endpoint::File(path) = &endpoint {
                    assert!(path.exists());
                }
                let claim = claim_at(&endpoint, &Request::default(), Limits::default()).await;
                assert!(matches!(claim, Ok(Claim::HandedOver)), "{claim:?}");
                assert_eq!(next(&mut listener).await, Request::default());
            }
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn the_ui_stream_gives_the_listener_back() {
        use futures::StreamExt;
        tokio::time::timeout(BOUND, async {
            let dir = tempfile::tempdir().unwrap();
            let incoming = Incoming::new(primary(dir.path()).await);
            drop(incoming.stream());
            let mut stream = Box::pin(incoming.stream());
            let request = open("xmpp:bob@example.org");
            let claim = claim(dir.path(), &request).await;
            assert!(matches!(claim, Ok(Claim::HandedOver)), "{claim:?}");
            assert_eq!(stream.next().await, Some(request));
        })
        .await
        .unwrap();
    }

    /// A primary in a process of its own (see `killed_primary_process`).
    #[test]
    #[ignore = "run by killed_primary_process as a child process"]
    fn child_primary() {
        let Some(dir) = std::env::var_os("TERN_INSTANCE_CHILD_DIR") else {
            return;
        };
        let dir = PathBuf::from(dir);
        let endpoint = match std::env::var("TERN_INSTANCE_CHILD_FILE") {
            #[cfg(unix)]
            Ok(_) => file_endpoint(&dir),
            _ => Endpoint::for_profile(&dir),
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let mut listener = primary_at(&endpoint, Limits::default()).await;
            println!("CHILD primary");
            while let Some(request) = listener.next().await {
                println!("CHILD {}", request.open.unwrap_or_default());
            }
        });
    }

    /// A child process kept alive until the test ends, however it ends.
    struct Child {
        process: std::process::Child,
        lines: std::sync::mpsc::Receiver<String>,
    }

    impl Child {
        fn primary(dir: &Path, file: bool) -> Self {
            use std::io::BufRead;
            let mut command = std::process::Command::new(std::env::current_exe().unwrap());
            command
                .args(["--exact", "instance::tests::child_primary"])
                .args(["--ignored", "--nocapture", "--test-threads", "1"])
                .env("TERN_INSTANCE_CHILD_DIR", dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null());
            if file {
                command.env("TERN_INSTANCE_CHILD_FILE", "1");
            }
            let mut process = command.spawn().unwrap();
            let stdout = process.stdout.take().unwrap();
            let (sender, lines) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                {
                    // libtest prints "test … ... " before the first line.
                    if let Some((_, line)) = line.split_once("CHILD ") {
                        let _ = sender.send(line.to_string());
                    }
                }
            });
            let child = Self { process, lines };
            assert_eq!(child.line(), "primary");
            child
        }

        fn line(&self) -> String {
            self.lines
                .recv_timeout(Duration::from_secs(10))
                .expect("the child answers")
        }
    }

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }

    /// Across processes: a later start reaches a primary in another process;
    /// once that one is killed (no clean-up: a socket file stays behind), the
    /// next start becomes the primary.
    #[test]
    fn killed_primary_process() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut kinds = vec![false];
        if cfg!(unix) {
            kinds.push(true);
        }
        for file in kinds {
            let dir = tempfile::tempdir().unwrap();
            let endpoint = if file {
                Endpoint::File(dir.path().join(SOCKET_FILE))
            } else {
                Endpoint::for_profile(dir.path())
            };
            let mut child = Child::primary(dir.path(), file);
            let request = open("xmpp:bob@example.org");
            let claim = runtime.block_on(claim_at(&endpoint, &request, Limits::default()));
            assert!(matches!(claim, Ok(Claim::HandedOver)), "{claim:?}");
            assert_eq!(child.line(), "xmpp:bob@example.org");

            child.process.kill().unwrap();
            child.process.wait().unwrap();
            if let Endpoint::File(path) = &endpoint {
                assert!(path.exists(), "a killed primary leaves its socket file");
            }
            runtime.block_on(async {
                let claim = claim_at(&endpoint, &Request::default(), Limits::default()).await;
                assert!(matches!(claim, Ok(Claim::Primary(_))), "{claim:?}");
            });
        }
    }
}
