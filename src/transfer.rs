//! HTTP transfers for file sharing (XEP-0363): uploads streamed from disk to
//! a slot, downloads streamed to a folder under a safe, unused file name.
//!
//! Neither ever holds a whole file in memory: a transfer's memory does not
//! grow with the file's size. A transfer is cancelled by dropping its future
//! (aborting its task); nothing half-written is left under a final name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::io::AsyncWriteExt;

use crate::file_name::{file_name_from_url, safe_file_name};
use crate::xmpp::{Slot, Trust};

/// Bytes read from disk per chunk of an upload.
const CHUNK: usize = 64 * 1024;

/// How long a file server may take to accept the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a transfer may go without a byte moving before it fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// File endings the system would run rather than show (Windows, macOS, Linux
/// desktops): "Open" on such a download shows its folder instead, so a file
/// from a contact is never a click away from running as a program.
const RUNS_CODE: &[&str] = &[
    // Windows
    "exe",
    "com",
    "scr",
    "pif",
    "bat",
    "cmd",
    "msi",
    "msix",
    "msixbundle",
    "appx",
    "appxbundle",
    "msp",
    "mst",
    "cpl",
    "hta",
    "js",
    "jse",
    "vb",
    "vbs",
    "vbe",
    "wsf",
    "wsh",
    "wsc",
    "ws",
    "ps1",
    "psm1",
    "psd1",
    "ps1xml",
    "psc1",
    "lnk",
    "url",
    "scf",
    "reg",
    "inf",
    "chm",
    "hlp",
    "jar",
    "application",
    "appref-ms",
    "gadget",
    "library-ms",
    "settingcontent-ms",
    "xll",
    "msc",
    "diagcab",
    "iso",
    "img",
    "vhd",
    "vhdx",
    // macOS
    "app",
    "command",
    "terminal",
    "tool",
    "pkg",
    "mpkg",
    "dmg",
    "scpt",
    "scptd",
    "applescript",
    "workflow",
    "action",
    "osax",
    "prefpane",
    "webloc",
    "inetloc",
    "fileloc",
    // Linux and Unix desktops
    "desktop",
    "sh",
    "bash",
    "zsh",
    "csh",
    "ksh",
    "run",
    "bin",
    "appimage",
    "flatpakref",
    "flatpakrepo",
    "deb",
    "rpm",
    "snap",
    "py",
    "pl",
    "rb",
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    #[error("the transfer failed: {0}")]
    Network(String),
    #[error("the server stopped sending for {} s", READ_TIMEOUT.as_secs())]
    Stalled,
    #[error("only https links are fetched: {0}")]
    Scheme(String),
    #[error("the file is larger than {} MB", limit.div_ceil(1_000_000))]
    TooLarge { limit: u64 },
    #[error("the slot's header {0} is not valid")]
    Header(String),
}

/// Reports how many bytes moved so far.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// An HTTP client that trusts what the XMPP connection trusts.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    /// For uploads: follows no redirect. reqwest turns a PUT answered with
    /// 303 into a GET of the new place, whose 200 would pass for an upload
    /// that never happened; a slot's PUT must succeed where it was sent.
    uploads: reqwest::Client,
}

impl Http {
    pub fn new(trust: &Trust) -> Result<Self, Error> {
        Self::with_timeouts(trust, CONNECT_TIMEOUT, READ_TIMEOUT)
    }

    /// With other timeouts than [`CONNECT_TIMEOUT`] and [`READ_TIMEOUT`].
    pub fn with_timeouts(trust: &Trust, connect: Duration, read: Duration) -> Result<Self, Error> {
        let builder = || {
            reqwest::Client::builder()
                .use_preconfigured_tls(trust.http_config())
                .https_only(true)
                // A server that accepts and then says nothing must not hold a
                // transfer (and its partial file) forever; a slow one that
                // keeps sending is fine, so no limit on the whole transfer.
                .connect_timeout(connect)
                .read_timeout(read)
                .user_agent(concat!("Tern/", env!("CARGO_PKG_VERSION")))
        };
        let client = builder()
            .build()
            .map_err(|e| Error::Network(e.to_string()))?;
        let uploads = builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Network(e.to_string()))?;
        Ok(Self { client, uploads })
    }

    /// PUTs the file at `path` to the slot, streamed from disk.
    pub async fn upload(
        &self,
        slot: &Slot,
        path: &Path,
        content_type: &str,
        progress: Progress,
    ) -> Result<(), Error> {
        let read_error = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(read_error)?;
        let size = file.metadata().await.map_err(read_error)?.len();
        let mut sent = 0u64;
        let body = tokio_util::io::ReaderStream::with_capacity(file, CHUNK).map(move |chunk| {
            if let Ok(bytes) = &chunk {
                sent += bytes.len() as u64;
                progress(sent);
            }
            chunk
        });
        let mut headers = HeaderMap::new();
        for (name, value) in &slot.headers {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::Header(name.clone()))?;
            let value =
                HeaderValue::from_str(value).map_err(|_| Error::Header(name.to_string()))?;
            headers.insert(name, value);
        }
        // Streamed bodies have no length of their own; the service wants it.
        headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
        if let Ok(value) = HeaderValue::from_str(content_type) {
            headers.insert(CONTENT_TYPE, value);
        }
        let response = self
            .uploads
            .put(&slot.put)
            .headers(headers)
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(|e| Error::Network(e.to_string()))?;
        if !response.status().is_success() {
            return Err(Error::Status(response.status()));
        }
        Ok(())
    }

    /// GETs `url` into `folder`, under a safe name taken from the URL that
    /// does not overwrite anything there; the path it was saved at.
    ///
    /// Written to a temporary file in `folder` first, named only when complete:
    /// a cancelled or failed download leaves no partial file behind.
    pub async fn download(
        &self,
        url: &str,
        folder: &Path,
        limit: Option<u64>,
        progress: Progress,
    ) -> Result<PathBuf, Error> {
        if !url.starts_with("https://") {
            return Err(Error::Scheme(url.chars().take(64).collect()));
        }
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| Error::Network(e.to_string()))?;
        if !response.status().is_success() {
            return Err(Error::Status(response.status()));
        }
        if let (Some(limit), Some(length)) = (limit, response.content_length())
            && length > limit
        {
            return Err(Error::TooLarge { limit });
        }
        let write_error = |source| Error::Write {
            path: folder.to_path_buf(),
            source,
        };
        let part = tempfile::Builder::new()
            .prefix(".tern-download-")
            .tempfile_in(folder)
            .map_err(write_error)?;
        let mut file = tokio::fs::File::from_std(part.reopen().map_err(write_error)?);
        let mut received = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                if e.is_timeout() {
                    Error::Stalled
                } else {
                    Error::Network(e.to_string())
                }
            })?;
            received += chunk.len() as u64;
            // The length header may lie or be missing: count what comes.
            if let Some(limit) = limit
                && received > limit
            {
                return Err(Error::TooLarge { limit });
            }
            file.write_all(&chunk).await.map_err(write_error)?;
            progress(received);
        }
        file.flush().await.map_err(write_error)?;
        file.sync_all().await.map_err(write_error)?;
        drop(file);
        let name = file_name_from_url(url);
        let saved = persist_unique(part, folder, &name)?;
        mark_from_internet(&saved, url);
        Ok(saved)
    }
}

impl Http {
    /// The size a link's file says it has (a HEAD request), if it says.
    pub async fn size(&self, url: &str) -> Result<Option<u64>, Error> {
        if !url.starts_with("https://") {
            return Err(Error::Scheme(url.chars().take(64).collect()));
        }
        let response = self
            .client
            .head(url)
            .send()
            .await
            .map_err(|e| Error::Network(e.to_string()))?;
        if !response.status().is_success() {
            return Err(Error::Status(response.status()));
        }
        // reqwest reports no body length for HEAD: read the header itself.
        Ok(response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }
}

/// Copies a file already on disk (a cached download) into `folder` as `name`,
/// with the same care as a download: complete before named, never replacing.
/// `url` is where the cached file came from.
pub fn save_copy(source: &Path, folder: &Path, name: &str, url: &str) -> Result<PathBuf, Error> {
    let write_error = |source| Error::Write {
        path: folder.to_path_buf(),
        source,
    };
    let mut from = std::fs::File::open(source).map_err(|e| Error::Read {
        path: source.to_path_buf(),
        source: e,
    })?;
    let mut part = tempfile::Builder::new()
        .prefix(".tern-download-")
        .tempfile_in(folder)
        .map_err(write_error)?;
    std::io::copy(&mut from, part.as_file_mut()).map_err(write_error)?;
    part.as_file().sync_all().map_err(write_error)?;
    let saved = persist_unique(part, folder, &safe_file_name(name))?;
    mark_from_internet(&saved, url);
    Ok(saved)
}

/// Whether the system would run the file at `path` as a program when opened.
pub fn runs_code(path: &Path) -> bool {
    // Windows drops trailing dots and spaces: "x.exe." runs as "x.exe".
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.trim_end_matches(['.', ' '])
        .rsplit_once('.')
        .filter(|(stem, _)| !stem.is_empty())
        .is_some_and(|(_, ending)| RUNS_CODE.contains(&ending.to_ascii_lowercase().as_str()))
}

/// Tells the system that the file at `path` came from the internet, as
/// browsers do, so that it asks before running it: the Windows Mark of the
/// Web and the macOS quarantine attribute. Failing to mark is logged only: the
/// file is there, and filesystems without streams or attributes cannot.
fn mark_from_internet(path: &Path, url: &str) {
    if let Err(e) = mark(path, url) {
        tracing::warn!("cannot mark {} as downloaded: {e}", path.display());
    }
}

#[cfg(windows)]
fn mark(path: &Path, url: &str) -> std::io::Result<()> {
    // An NTFS alternate data stream; zone 3 is the Internet zone.
    let mut stream = path.as_os_str().to_owned();
    stream.push(":Zone.Identifier");
    let host_url: String = url.chars().filter(|c| !c.is_control()).collect();
    std::fs::write(
        PathBuf::from(stream),
        format!("[ZoneTransfer]\r\nZoneId=3\r\nHostUrl={host_url}\r\n"),
    )
}

#[cfg(target_os = "macos")]
fn mark(path: &Path, _url: &str) -> std::io::Result<()> {
    // flags;seconds since 1970 in hex;agent;event id. 0083: the user chose
    // the download, and Gatekeeper checks the file before it first runs.
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let value = format!("0083;{seconds:08x};Tern;");
    xattr::set(path, "com.apple.quarantine", value.as_bytes())
}

#[cfg(not(any(windows, target_os = "macos")))]
fn mark(_path: &Path, _url: &str) -> std::io::Result<()> {
    // Linux desktops keep no mark of origin that they check before running.
    Ok(())
}

/// Names the finished temporary file `name` in `folder`, or `name (2)`,
/// `name (3)`… if taken: never replaces an existing file.
fn persist_unique(
    part: tempfile::NamedTempFile,
    folder: &Path,
    name: &str,
) -> Result<PathBuf, Error> {
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    };
    let mut part = part;
    for n in 1..1000 {
        let candidate = match (n, extension) {
            (1, _) => name.to_string(),
            (n, Some(ext)) => format!("{stem} ({n}).{ext}"),
            (n, None) => format!("{stem} ({n})"),
        };
        let path = folder.join(&candidate);
        match part.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => part = e.file,
            Err(e) => {
                return Err(Error::Write {
                    path,
                    source: e.error,
                });
            }
        }
    }
    Err(Error::Write {
        path: folder.join(name),
        source: std::io::Error::other("too many files of that name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_told_from_documents() {
        for name in [
            "setup.exe",
            "SETUP.EXE",
            "a.pdf.exe",
            "run.bat",
            "x.HTA",
            "x.js",
            "x.desktop",
            "Tern.app",
            "x.terminal",
            "x.command",
            "x.ps1",
            "x.lnk",
            "x.exe.",
            "x.exe ",
            "x.AppImage",
            "x.sh",
        ] {
            assert!(runs_code(Path::new(name)), "{name}");
        }
        for name in [
            "photo.jpg",
            "notes.txt",
            "exe",
            "x.pdf",
            "report.docx",
            "x.exe.txt",
            ".exe",
        ] {
            assert!(!runs_code(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn finished_downloads_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "mine").unwrap();
        std::fs::write(dir.path().join("a (2).txt"), "mine too").unwrap();
        let part = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        std::fs::write(part.path(), "new").unwrap();
        let saved = persist_unique(part, dir.path(), "a.txt").unwrap();
        assert_eq!(saved, dir.path().join("a (3).txt"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
            "mine"
        );
        assert_eq!(std::fs::read_to_string(saved).unwrap(), "new");
        let part = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        let saved = persist_unique(part, dir.path(), "noext").unwrap();
        assert_eq!(saved, dir.path().join("noext"));
    }

    #[test]
    fn copies_of_cached_files_are_saved_like_downloads() {
        let cache = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let source = cache.path().join("0123abcd.orig");
        std::fs::write(&source, "picture").unwrap();
        std::fs::write(downloads.path().join("cat.png"), "mine").unwrap();
        let saved = save_copy(&source, downloads.path(), "cat.png", "https://h/cat.png").unwrap();
        assert_eq!(saved, downloads.path().join("cat (2).png"));
        assert_eq!(std::fs::read_to_string(&saved).unwrap(), "picture");
        let hostile = save_copy(&source, downloads.path(), "../../.bashrc", "https://h/x").unwrap();
        assert_eq!(hostile.parent(), Some(downloads.path()));
        assert!(
            save_copy(
                &cache.path().join("gone"),
                downloads.path(),
                "x",
                "https://h/x"
            )
            .is_err()
        );
    }
}
