//! HTTP transfers for file sharing (XEP-0363): uploads streamed from disk to
//! a slot, downloads streamed to a folder under a safe, unused file name.
//!
//! Neither ever holds a whole file in memory: a transfer's memory does not
//! grow with the file's size. A transfer is cancelled by dropping its future
//! (aborting its task); nothing half-written is left under a final name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::io::AsyncWriteExt;

use crate::xmpp::Trust;

/// Bytes read from disk per chunk of an upload.
const CHUNK: usize = 64 * 1024;

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
    #[error("only https links are fetched: {0}")]
    Scheme(String),
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the slot's header {0} is not valid")]
    Header(String),
}

/// Where and how to upload one file: what the upload service's slot says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub put: String,
    pub get: String,
    /// Headers the PUT must carry (XEP-0363 §5: Authorization, Cookie, Expires).
    pub headers: Vec<(String, String)>,
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
        let builder = || {
            reqwest::Client::builder()
                .use_preconfigured_tls(trust.http_config())
                .https_only(true)
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
            let chunk = chunk.map_err(|e| Error::Network(e.to_string()))?;
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
        persist_unique(part, folder, &name)
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
pub fn save_copy(source: &Path, folder: &Path, name: &str) -> Result<PathBuf, Error> {
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
    persist_unique(part, folder, &safe_file_name(name))
}

/// A file name for what `url` points at: its last path segment, decoded and
/// made safe (no separators, `..`, control or reserved characters).
pub fn file_name_from_url(url: &str) -> String {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    safe_file_name(&decoded)
}

/// `raw` as a file name that cannot leave its folder or surprise the user.
pub fn safe_file_name(raw: &str) -> String {
    // Separators of every platform, whatever this one is.
    let flat: String = raw
        .chars()
        .map(|c| if matches!(c, '/' | '\\') { '_' } else { c })
        .collect();
    let options = sanitize_filename::Options {
        windows: true,
        truncate: true,
        replacement: "_",
    };
    let name = sanitize_filename::sanitize_with_options(flat, options);
    // No hidden files, and nothing that is only dots.
    let name = name.trim_start_matches('.').trim();
    // What is left of `..` or `CON` says nothing: name it plainly.
    if !name.chars().any(char::is_alphanumeric) {
        "download".to_string()
    } else {
        name.to_string()
    }
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
    fn hostile_names_stay_in_their_folder() {
        for (raw, expected) in [
            ("../../.bashrc", "_.._.bashrc"),
            ("..", "download"),
            ("", "download"),
            ("a/b\\c.txt", "a_b_c.txt"),
            ("photo.jpg", "photo.jpg"),
            ("CON", "download"),
            ("bell\u{7}.png", "bell_.png"),
            ("图片 1.png", "图片 1.png"),
        ] {
            let name = safe_file_name(raw);
            assert_eq!(name, expected, "{raw:?}");
            assert!(!name.contains(['/', '\\']) && !name.starts_with('.'));
        }
        assert!(safe_file_name(&"x".repeat(1000)).len() <= 255);
    }

    #[test]
    fn names_come_from_the_url_path() {
        assert_eq!(
            file_name_from_url("https://h/share/abc/My%20Photo.jpg?x=1#y"),
            "My Photo.jpg"
        );
        assert_eq!(
            file_name_from_url("https://h/share/%2e%2e%2F%2e%2e%2Fetc%2Fpasswd"),
            "_.._etc_passwd"
        );
        assert_eq!(file_name_from_url("https://h/"), "download");
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
        let saved = save_copy(&source, downloads.path(), "cat.png").unwrap();
        assert_eq!(saved, downloads.path().join("cat (2).png"));
        assert_eq!(std::fs::read_to_string(&saved).unwrap(), "picture");
        let hostile = save_copy(&source, downloads.path(), "../../.bashrc").unwrap();
        assert_eq!(hostile.parent(), Some(downloads.path()));
        assert!(save_copy(&cache.path().join("gone"), downloads.path(), "x").is_err());
    }
}
