//! File sharing between the window and the network: what a dropped, pasted or
//! picked file is, pasted images saved as PNG, and uploads and downloads as
//! streams of progress that the UI can follow and cancel (by dropping them).

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};

use crate::thumbnail::{self, Thumbnail};
use crate::transfer::{self, Http};
use crate::xmpp::Slot;

/// A file about to be shared: what the upload service is told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub path: PathBuf,
    /// The name the peer sees (the slot's file name).
    pub name: String,
    pub size: u64,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0} is not a file")]
    NotAFile(String),
    #[error("cannot read {0}: {1}")]
    Read(String, String),
    #[error("cannot save the pasted image: {0}")]
    SavePaste(String),
    #[error("cannot read the clipboard: {0}")]
    Clipboard(String),
}

/// Looks at a file the user wants to send. Blocking (a stat).
pub fn inspect(path: &Path) -> Result<Outgoing, Error> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| Error::Read(shown.clone(), e.to_string()))?;
    if !meta.is_file() {
        return Err(Error::NotAFile(shown));
    }
    let raw = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = crate::file_name::safe_file_name(&raw);
    let content_type = mime_guess::from_path(&name)
        .first_or_octet_stream()
        .essence_str()
        .to_string();
    Ok(Outgoing {
        path: path.to_path_buf(),
        name,
        size: meta.len(),
        content_type,
    })
}

/// What the clipboard held when the user pasted.
#[derive(Debug, Clone)]
pub enum Clipboard {
    /// Files copied in a file manager.
    Files(Vec<PathBuf>),
    /// Image data (a screenshot), RGBA.
    Image {
        width: u32,
        height: u32,
        rgba: Arc<Vec<u8>>,
    },
    /// Text or nothing: the composer pastes text itself.
    Other,
}

/// Reads files or an image from the system clipboard. Blocking.
pub fn read_clipboard() -> Result<Clipboard, Error> {
    let mut clipboard = arboard::Clipboard::new().map_err(|e| Error::Clipboard(e.to_string()))?;
    if let Ok(files) = clipboard.get().file_list() {
        let files: Vec<PathBuf> = files.into_iter().filter(|p| p.is_file()).collect();
        if !files.is_empty() {
            return Ok(Clipboard::Files(files));
        }
    }
    match clipboard.get_image() {
        Ok(image) => {
            let (width, height) = (
                u32::try_from(image.width).map_err(|e| Error::Clipboard(e.to_string()))?,
                u32::try_from(image.height).map_err(|e| Error::Clipboard(e.to_string()))?,
            );
            Ok(Clipboard::Image {
                width,
                height,
                rgba: Arc::new(image.bytes.into_owned()),
            })
        }
        Err(_) => Ok(Clipboard::Other),
    }
}

/// Saves pasted image data as a PNG in `dir` under a new name; its path. Blocking.
pub fn save_png(width: u32, height: u32, rgba: &[u8], dir: &Path) -> Result<PathBuf, Error> {
    let err = |e: &dyn std::fmt::Display| Error::SavePaste(e.to_string());
    let image = image::RgbaImage::from_raw(width, height, rgba.to_vec())
        .ok_or_else(|| err(&"the image data does not match its size"))?;
    std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
    let stem = chrono::Local::now()
        .format("Pasted image %Y-%m-%d %H-%M-%S")
        .to_string();
    let mut path = dir.join(format!("{stem}.png"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{stem} ({n}).png"));
        n += 1;
    }
    image
        .save_with_format(&path, image::ImageFormat::Png)
        .map_err(|e| err(&e))?;
    Ok(path)
}

/// How far a transfer got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress<T> {
    /// Bytes moved so far.
    Moved(u64),
    /// It ended: what it produced, or why it failed.
    Done(Result<T, String>),
}

/// Reports at most this often while a transfer runs, so a fast transfer does
/// not flood the UI (bytes; a report per 256 KiB).
const REPORT_EVERY: u64 = 256 * 1024;

/// Uploads `file` to `slot`; the stream ends after `Done`. Dropping it cancels the upload.
pub fn upload(http: Http, slot: Slot, file: Outgoing) -> impl Stream<Item = Progress<()>> {
    transfer_stream(move |progress| async move {
        http.upload(&slot, &file.path, &file.content_type, progress)
            .await
    })
}

/// Downloads `url` into `folder` (see [`Http::download`]); the stream ends
/// after `Done` with the saved file's path. Dropping it cancels the download.
pub fn download(
    http: Http,
    url: String,
    folder: PathBuf,
    limit: Option<u64>,
) -> impl Stream<Item = Progress<PathBuf>> {
    transfer_stream(move |progress| async move {
        tokio::fs::create_dir_all(&folder)
            .await
            .map_err(|source| transfer::Error::Write {
                path: folder.clone(),
                source,
            })?;
        http.download(&url, &folder, limit, progress).await
    })
}

/// Runs a transfer, turning its progress callback into stream items.
///
/// The work runs inside the stream, so dropping the stream cancels it.
fn transfer_stream<T, F, Fut>(run: F) -> impl Stream<Item = Progress<T>>
where
    F: FnOnce(transfer::Progress) -> Fut,
    Fut: Future<Output = Result<T, transfer::Error>>,
{
    use futures::future::Either;
    let (tx, rx) = mpsc::unbounded::<u64>();
    let last = AtomicU64::new(0);
    let report: transfer::Progress = Arc::new(move |moved| {
        let before = last.load(Ordering::Relaxed);
        if moved < before || moved - before >= REPORT_EVERY {
            last.store(moved, Ordering::Relaxed);
            let _ = tx.unbounded_send(moved);
        }
    });
    enum Step<W, T> {
        Running(Pin<Box<W>>, mpsc::UnboundedReceiver<u64>),
        /// The work ended: reports still queued go first, then the result.
        Draining(mpsc::UnboundedReceiver<u64>, Result<T, String>),
        Ended,
    }
    let start = Step::Running(Box::pin(run(report)), rx);
    futures::stream::unfold(start, |step| async move {
        match step {
            Step::Running(mut work, mut rx) => {
                let next = match futures::future::select(rx.next(), work.as_mut()).await {
                    Either::Left((moved, _)) => Either::Left(moved),
                    Either::Right((result, _)) => Either::Right(result),
                };
                match next {
                    Either::Left(Some(moved)) => {
                        Some((Progress::Moved(moved), Step::Running(work, rx)))
                    }
                    Either::Left(None) => {
                        let result = work.await.map_err(|e| e.to_string());
                        Some((Progress::Done(result), Step::Ended))
                    }
                    Either::Right(result) => {
                        let result = result.map_err(|e| e.to_string());
                        match rx.try_recv() {
                            Ok(moved) => Some((Progress::Moved(moved), Step::Draining(rx, result))),
                            _ => Some((Progress::Done(result), Step::Ended)),
                        }
                    }
                }
            }
            Step::Draining(mut rx, result) => match rx.try_recv() {
                Ok(moved) => Some((Progress::Moved(moved), Step::Draining(rx, result))),
                _ => Some((Progress::Done(result), Step::Ended)),
            },
            Step::Ended => None,
        }
    })
}

/// A preview of the image at `url`, made once: from the disk cache when it
/// was made before; else from `local` (a file we sent ourselves) or
/// downloaded into the cache (at most `limit` bytes), then decoded under the
/// thumbnail limits. An image that cannot be shown is remembered as such and
/// not fetched again.
pub async fn preview(
    http: Option<Http>,
    cache: thumbnail::Cache,
    url: String,
    limit: u64,
    local: Option<PathBuf>,
) -> Result<(Thumbnail, u64), String> {
    let (c, u) = (cache.clone(), url.clone());
    let cached = tokio::task::spawn_blocking(move || (c.load(&u), c.failure(&u)))
        .await
        .map_err(|e| e.to_string())?;
    let size = |path: PathBuf| async move {
        tokio::fs::metadata(path)
            .await
            .map(|m| m.len())
            .unwrap_or(0)
    };
    match cached {
        (Some(thumb), _) => {
            let local = local.filter(|p| p.is_file());
            let source = local.unwrap_or_else(|| cache.original(&url));
            return Ok((thumb, size(source).await));
        }
        (None, Some(failure)) => return Err(failure),
        (None, None) => {}
    }
    let source = match local.filter(|p| p.is_file()) {
        Some(path) => path,
        None => {
            let original = cache.original(&url);
            if !original.is_file() {
                let http = http.ok_or("no secure connection for downloads")?;
                let dir = cache.ensure_dir().map_err(|e| e.to_string())?.to_path_buf();
                let part = http
                    .download(&url, &dir, Some(limit), Arc::new(|_| {}))
                    .await
                    .map_err(|e| e.to_string())?;
                cache
                    .adopt_original(&url, &part)
                    .map_err(|e| e.to_string())?;
            }
            original
        }
    };
    let bytes = size(source.clone()).await;
    match thumbnail::make_async(source, thumbnail::Limits::default()).await {
        Ok(thumb) => {
            if let Err(e) = cache.store(&url, &thumb) {
                tracing::warn!("cannot cache a preview: {e}");
            }
            Ok((thumb, bytes))
        }
        Err(e) => {
            cache.remember_failure(&url, &e);
            Err(e.to_string())
        }
    }
}

/// A file size as people read it: 980 B, 12.3 KB, 4.5 MB.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// URL path endings of images shown inline.
const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "gif", "webp", "bmp"];

/// Whether a link names an image by its ending (what Conversations and Dino go by).
pub fn is_image_url(url: &str) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    path.rsplit_once('.').is_some_and(|(_, ext)| {
        IMAGE_EXTENSIONS
            .iter()
            .any(|known| ext.eq_ignore_ascii_case(known))
    })
}

/// The link a message shares, if it is an attachment: a body that is one
/// http(s) URL, sent with out-of-band data, or bare but naming an image.
pub fn attachment_url(body: &str, oob: bool) -> Option<&str> {
    let url = body.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let web = lower.starts_with("https://") || lower.starts_with("http://");
    (web && !url.contains(char::is_whitespace) && (oob || is_image_url(url))).then_some(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn inspects_a_file_and_guesses_its_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holiday photo.JPG");
        std::fs::write(&path, b"12345").unwrap();
        let file = inspect(&path).unwrap();
        assert_eq!(file.name, "holiday photo.JPG");
        assert_eq!(file.size, 5);
        assert_eq!(file.content_type, "image/jpeg");
        let odd = dir.path().join("notes.unknownext");
        std::fs::write(&odd, b"x").unwrap();
        assert_eq!(
            inspect(&odd).unwrap().content_type,
            "application/octet-stream"
        );
        assert!(matches!(inspect(dir.path()), Err(Error::NotAFile(_))));
        assert!(matches!(
            inspect(&dir.path().join("missing")),
            Err(Error::Read(..))
        ));
    }

    #[test]
    fn pasted_images_are_saved_as_png_under_new_names() {
        let dir = tempfile::tempdir().unwrap();
        let rgba: Vec<u8> = [255, 0, 0, 255].repeat(4 * 3);
        let first = save_png(4, 3, &rgba, dir.path()).unwrap();
        let second = save_png(4, 3, &rgba, dir.path()).unwrap();
        assert_ne!(first, second);
        let decoded = image::open(&first).unwrap().to_rgba8();
        assert_eq!(decoded.dimensions(), (4, 3));
        assert_eq!(decoded.get_pixel(1, 1).0, [255, 0, 0, 255]);
        assert!(matches!(
            save_png(4, 4, &rgba, dir.path()),
            Err(Error::SavePaste(_))
        ));
    }

    #[test]
    fn knows_attachments_and_images_by_their_links() {
        assert!(is_image_url("https://h/a/b.PNG"));
        assert!(is_image_url("https://h/a/b.jpeg?x=1#y"));
        assert!(!is_image_url("https://h/a/b.pdf"));
        assert!(!is_image_url("https://h/png"));
        assert_eq!(
            attachment_url("https://h/x.pdf", true),
            Some("https://h/x.pdf")
        );
        assert_eq!(attachment_url("https://h/x.pdf", false), None);
        assert_eq!(
            attachment_url(" https://h/x.jpg ", false),
            Some("https://h/x.jpg")
        );
        assert_eq!(attachment_url("look https://h/x.jpg", true), None);
        assert_eq!(attachment_url("ftp://h/x.jpg", true), None);
        assert_eq!(attachment_url("javascript:alert(1)//.png", true), None);
        assert_eq!(
            attachment_url("HTTP://h/x.gif", false),
            Some("HTTP://h/x.gif")
        );
    }

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1500), "1.5 KB");
        assert_eq!(human_size(9 * 1024 * 1024), "9.4 MB");
        assert_eq!(human_size(u64::MAX), "18446744.1 TB");
    }

    #[tokio::test]
    async fn a_transfer_stream_reports_then_ends_with_its_result() {
        let items: Vec<Progress<u32>> = transfer_stream(|progress| async move {
            progress(REPORT_EVERY);
            progress(REPORT_EVERY + 1); // too soon after the last report
            progress(3 * REPORT_EVERY);
            Ok(7)
        })
        .collect()
        .await;
        assert_eq!(
            items,
            vec![
                Progress::Moved(REPORT_EVERY),
                Progress::Moved(3 * REPORT_EVERY),
                Progress::Done(Ok(7))
            ]
        );
        let failed: Vec<Progress<u32>> =
            transfer_stream(|_| async move { Err(transfer::Error::Scheme("ftp://x".into())) })
                .collect()
                .await;
        assert!(matches!(failed.as_slice(), [Progress::Done(Err(_))]));
    }
}
