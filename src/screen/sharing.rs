//! File sharing in the chat window: files dropped, pasted or picked become
//! uploads with progress, a cancel button and retry; received attachments
//! become inline previews or file cards with a download button.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use iced::task::Handle;
use iced::widget::{Space, button, column, container, image, progress_bar, row, text};
use iced::{Alignment, Element, Fill, Task};

use super::conversation::Entry;
use crate::config::FilesConfig;
use crate::conversation::{self as talk, Direction};
use crate::fl;
use crate::sharing::{self as files, Clipboard, Outgoing, Progress};
use crate::theme;
use crate::thumbnail::{self, Thumbnail};
use crate::transfer::{self, Http};
use crate::xmpp::{BareJid, Command, Slot, SlotError, UploadService};

/// A click on a preview that did not load by itself fetches up to this much.
const CLICKED_PREVIEW_LIMIT: u64 = 64 * 1024 * 1024;

/// What file sharing needs from the app.
#[derive(Clone)]
pub struct Context {
    /// `None` when no secure HTTP client could be made (the reason is logged).
    pub http: Option<Http>,
    pub cache: thumbnail::Cache,
    /// Where pasted images are saved before they are sent.
    pub pasted_dir: PathBuf,
    pub files: FilesConfig,
}

pub struct State {
    context: Context,
    /// Each account's upload service: absent until discovered, `None` if its server has none.
    services: HashMap<BareJid, Option<UploadService>>,
    uploads: Vec<Upload>,
    previews: HashMap<String, Preview>,
    downloads: HashMap<String, Download>,
    /// Sizes of received files, by link (asked with HEAD).
    sizes: HashMap<String, Option<u64>>,
    /// Files we sent, by link: their previews come from the disk.
    sent: HashMap<String, PathBuf>,
    /// Whether files are being dragged over the window.
    hovering: bool,
    next_id: u64,
}

struct Upload {
    id: String,
    /// The conversation the file goes to (and so the account it goes out from).
    to: talk::Id,
    path: PathBuf,
    file: Option<Outgoing>,
    phase: Phase,
    /// The link the file will have, once the server gave a slot.
    url: Option<String>,
    /// When its transfer began (for the log's throughput line).
    started: Option<std::time::Instant>,
    /// Aborts the transfer when dropped (cancel, or the chat closing).
    transfer: Option<Handle>,
}

/// An upload as tests and automation see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    pub id: String,
    pub name: String,
    /// Bytes sent so far, while sending.
    pub sent: Option<u64>,
    /// Why it failed, if it did.
    pub failed: Option<String>,
    /// Whether trying again could succeed (not for a file over the limit).
    pub retry: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Checking,
    AskingSlot,
    Sending {
        sent: u64,
    },
    /// Failed; Retry may help (the link, the server's mood).
    Failed(String),
    /// Refused for good (over the server's limit): no Retry offered.
    Refused(String),
}

enum Preview {
    Loading,
    Ready(image::Handle, u32, u32),
    Failed(String),
}

enum Download {
    Running {
        moved: u64,
        _transfer: Option<Handle>,
    },
    Done(PathBuf),
    Failed(String),
}

#[derive(Debug, Clone)]
pub enum Message {
    /// Send these files to a conversation (dropped, picked or pasted).
    Share(talk::Id, Vec<PathBuf>),
    /// Open the file picker for a conversation.
    Pick(talk::Id),
    /// Read the clipboard for a conversation (Ctrl+V).
    Paste(talk::Id),
    Pasted(talk::Id, Result<Clipboard, String>),
    PasteFailed(talk::Id, String),
    /// Files are (or no longer are) dragged over the window.
    Hover(bool),
    Inspected(String, Result<Outgoing, String>),
    Uploading(String, Progress<()>),
    Cancel(String),
    Retry(String),
    Dismiss(String),
    /// Load a preview the policy did not load by itself.
    LoadPreview(String),
    /// A preview, with the size of the file it shows.
    PreviewReady(String, Result<(Thumbnail, u64), String>),
    /// Show a previewed image in the system's viewer.
    View(String),
    Sized(String, Option<u64>),
    Download(String),
    Downloading(String, Progress<PathBuf>),
    CancelDownload(String),
    /// Open a downloaded file, or (`true`) the folder holding it.
    Open(PathBuf, bool),
    Opened,
}

pub enum Event {
    /// Something for this account's worker to do.
    Worker(BareJid, Command),
}

impl State {
    pub fn new(context: Context) -> Self {
        Self {
            context,
            services: HashMap::new(),
            uploads: Vec::new(),
            previews: HashMap::new(),
            downloads: HashMap::new(),
            sizes: HashMap::new(),
            sent: HashMap::new(),
            hovering: false,
            next_id: 0,
        }
    }

    /// What an account's worker found out about its server's upload service.
    pub fn set_service(&mut self, account: &BareJid, service: Option<UploadService>) {
        self.services.insert(account.clone(), service);
    }

    pub fn set_files(&mut self, files: FilesConfig) {
        self.context.files = files;
    }

    pub fn is_hovering(&self) -> bool {
        self.hovering
    }

    /// Whether an account's upload service is known (found or not).
    pub fn knows_service(&self, account: &BareJid) -> bool {
        self.services.contains_key(account)
    }

    /// Uploads shown for a conversation (running or failed), for tests and
    /// automation: id, file name, bytes sent while sending, reason when failed.
    pub fn uploads_to(&self, to: &talk::Id) -> Vec<UploadInfo> {
        self.uploads
            .iter()
            .filter(|u| &u.to == to)
            .map(|u| {
                let sent = match &u.phase {
                    Phase::Sending { sent } => Some(*sent),
                    _ => None,
                };
                let failed = match &u.phase {
                    Phase::Failed(reason) | Phase::Refused(reason) => Some(reason.clone()),
                    _ => None,
                };
                UploadInfo {
                    id: u.id.clone(),
                    name: file_name(&u.path),
                    sent,
                    failed,
                    retry: matches!(u.phase, Phase::Failed(_)),
                }
            })
            .collect()
    }

    /// Whether the preview of `url` is shown, for tests and automation.
    pub fn preview_size(&self, url: &str) -> Option<(u32, u32)> {
        match self.previews.get(url) {
            Some(Preview::Ready(_, w, h)) => Some((*w, *h)),
            _ => None,
        }
    }

    /// The worker's answer to a slot request: upload, or say why not.
    pub fn slot(&mut self, id: &str, result: Result<Slot, SlotError>) -> Task<Message> {
        let http = self.context.http.clone();
        let Some(upload) = self.uploads.iter_mut().find(|u| u.id == id) else {
            return Task::none(); // cancelled meanwhile: nothing is sent
        };
        if upload.phase != Phase::AskingSlot {
            return Task::none();
        }
        let slot = match result {
            Ok(slot) => slot,
            Err(e @ SlotError::TooLarge { .. }) => {
                upload.phase = Phase::Refused(slot_error_text(&e));
                return Task::none();
            }
            Err(e) => {
                upload.phase = Phase::Failed(slot_error_text(&e));
                return Task::none();
            }
        };
        let (Some(file), Some(http)) = (upload.file.clone(), http) else {
            upload.phase = Phase::Failed(fl!("upload-no-tls"));
            return Task::none();
        };
        upload.phase = Phase::Sending { sent: 0 };
        upload.url = Some(slot.get.clone());
        upload.started = Some(std::time::Instant::now());
        let id = id.to_string();
        let (task, handle) = Task::run(files::upload(http, slot, file), move |p| {
            Message::Uploading(id.clone(), p)
        })
        .abortable();
        upload.transfer = Some(handle.abort_on_drop());
        task
    }

    /// Starts previews (and size checks) for the attachments among `records`
    /// that the policy fetches by itself: https links, images from contacts
    /// under the size limit, unless turned off.
    pub fn request_previews<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Entry>,
        trusted: impl Fn(&BareJid) -> bool,
    ) -> Task<Message> {
        let mut tasks = Vec::new();
        for record in records {
            let Some(url) = files::attachment_url(&record.body, record.attachment) else {
                continue;
            };
            if !is_https(url) {
                continue;
            }
            let ours = record.direction == Direction::Out;
            let local = self.sent.get(url).cloned();
            let allowed = self.context.files.auto_download_images
                && (ours || trusted(&record.conversation.bare()));
            if files::is_image_url(url) {
                if self.previews.contains_key(url) || !(allowed || local.is_some()) {
                    continue;
                }
                let limit = self.context.files.auto_download_max_bytes;
                tasks.push(self.load_preview(url.to_string(), limit, local));
            } else if allowed && !self.sizes.contains_key(url) {
                self.sizes.insert(url.to_string(), None);
                if let Some(http) = self.context.http.clone() {
                    let url = url.to_string();
                    tasks.push(Task::perform(
                        async move {
                            let size = http.size(&url).await.ok().flatten();
                            (url, size)
                        },
                        |(url, size)| Message::Sized(url, size),
                    ));
                }
            }
        }
        Task::batch(tasks)
    }

    fn load_preview(&mut self, url: String, limit: u64, local: Option<PathBuf>) -> Task<Message> {
        self.previews.insert(url.clone(), Preview::Loading);
        let (http, cache) = (self.context.http.clone(), self.context.cache.clone());
        Task::perform(
            async move {
                let result = files::preview(http, cache, url.clone(), limit, local).await;
                (url, result)
            },
            |(url, result)| Message::PreviewReady(url, result),
        )
    }

    fn share(&mut self, to: talk::Id, paths: Vec<PathBuf>) -> Task<Message> {
        let mut tasks = Vec::new();
        for path in paths {
            self.next_id += 1;
            let id = format!("upload-{}-{}", std::process::id(), self.next_id);
            self.uploads.push(Upload {
                id: id.clone(),
                to: to.clone(),
                path: path.clone(),
                file: None,
                phase: Phase::Checking,
                url: None,
                started: None,
                transfer: None,
            });
            tasks.push(inspect(id, path));
        }
        Task::batch(tasks)
    }

    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Share(peer, paths) => {
                self.hovering = false;
                return (self.share(peer, paths), None);
            }
            Message::Pick(peer) => {
                let pick = rfd::AsyncFileDialog::new()
                    .set_title(fl!("attach-title"))
                    .pick_files();
                return (
                    Task::perform(pick, move |files| {
                        let paths = files
                            .unwrap_or_default()
                            .into_iter()
                            .map(|f| f.path().to_path_buf())
                            .collect();
                        Message::Share(peer.clone(), paths)
                    }),
                    None,
                );
            }
            Message::Paste(peer) => {
                let read = Task::perform(
                    async {
                        tokio::task::spawn_blocking(files::read_clipboard)
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.map_err(|e| e.to_string()))
                    },
                    move |result| Message::Pasted(peer.clone(), result),
                );
                return (read, None);
            }
            Message::Pasted(peer, Ok(Clipboard::Files(paths))) => {
                return (self.share(peer, paths), None);
            }
            Message::Pasted(
                peer,
                Ok(Clipboard::Image {
                    width,
                    height,
                    rgba,
                }),
            ) => {
                let dir = self.context.pasted_dir.clone();
                let save = Task::perform(
                    async move {
                        tokio::task::spawn_blocking(move || {
                            files::save_png(width, height, &rgba, &dir)
                        })
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()))
                    },
                    move |saved| match saved {
                        Ok(path) => Message::Share(peer.clone(), vec![path]),
                        Err(e) => Message::PasteFailed(peer.clone(), e),
                    },
                );
                return (save, None);
            }
            // Text: the composer pastes it itself.
            Message::Pasted(_, Ok(Clipboard::Other)) => {}
            Message::Pasted(_, Err(e)) => tracing::debug!("clipboard: {e}"),
            Message::PasteFailed(peer, e) => {
                // Shown where uploads are: it is one that could not start.
                self.next_id += 1;
                self.uploads.push(Upload {
                    id: format!("paste-{}", self.next_id),
                    to: peer,
                    path: PathBuf::from(fl!("paste-name")),
                    file: None,
                    phase: Phase::Failed(fl!("paste-failed", reason = e)),
                    url: None,
                    started: None,
                    transfer: None,
                });
            }
            Message::Hover(hovering) => self.hovering = hovering,
            Message::Inspected(id, result) => return (Task::none(), self.inspected(&id, result)),
            Message::Uploading(id, progress) => {
                return (Task::none(), self.uploading(&id, progress));
            }
            Message::Cancel(id) | Message::Dismiss(id) => {
                // Dropping the upload aborts its transfer; nothing was announced.
                self.uploads.retain(|u| u.id != id);
            }
            Message::Retry(id) => {
                let Some(upload) = self.uploads.iter_mut().find(|u| u.id == id) else {
                    return (Task::none(), None);
                };
                // A slot is good for one upload: start again from the file.
                upload.phase = Phase::Checking;
                upload.url = None;
                upload.transfer = None;
                return (inspect(id, upload.path.clone()), None);
            }
            Message::LoadPreview(url) => {
                self.context.cache.forget_failure(&url);
                let local = self.sent.get(&url).cloned();
                return (self.load_preview(url, CLICKED_PREVIEW_LIMIT, local), None);
            }
            Message::PreviewReady(url, Ok((thumb, size))) => {
                if size > 0 {
                    self.sizes.insert(url.clone(), Some(size));
                }
                let (w, h) = (thumb.width, thumb.height);
                let handle = image::Handle::from_rgba(w, h, thumb.rgba);
                self.previews.insert(url, Preview::Ready(handle, w, h));
            }
            Message::PreviewReady(url, Err(e)) => {
                tracing::info!("no preview for an attachment: {e}");
                self.previews.insert(url, Preview::Failed(e));
            }
            Message::View(url) => return (self.view_image(url), None),
            Message::Sized(url, size) => {
                self.sizes.insert(url, size);
            }
            Message::Download(url) => return (self.download(url), None),
            Message::Downloading(url, Progress::Moved(moved)) => {
                if let Some(Download::Running { moved: m, .. }) = self.downloads.get_mut(&url) {
                    *m = moved;
                }
            }
            Message::Downloading(url, Progress::Done(result)) => {
                let state = match result {
                    Ok(path) => Download::Done(path),
                    Err(e) => Download::Failed(e),
                };
                self.downloads.insert(url, state);
            }
            Message::CancelDownload(url) => {
                // Dropping the running transfer aborts it; its partial file goes with it.
                if matches!(
                    self.downloads.get(&url),
                    Some(Download::Running {
                        _transfer: Some(_),
                        ..
                    })
                ) {
                    self.downloads.remove(&url);
                }
            }
            Message::Open(path, folder) => {
                // A program from a contact is shown in its folder, never run.
                let target = if folder || transfer::runs_code(&path) {
                    path.parent().map(Path::to_path_buf).unwrap_or(path)
                } else {
                    path
                };
                return (
                    Task::perform(
                        async move {
                            if let Err(e) = open::that_detached(&target) {
                                tracing::warn!("cannot open {}: {e}", target.display());
                            }
                        },
                        |()| Message::Opened,
                    ),
                    None,
                );
            }
            Message::Opened => {}
        }
        (Task::none(), None)
    }

    fn inspected(&mut self, id: &str, result: Result<Outgoing, String>) -> Option<Event> {
        let upload = self.uploads.iter_mut().find(|u| u.id == id)?;
        let service = self.services.get(upload.to.account()).cloned();
        let file = match result {
            Ok(file) => file,
            Err(e) => {
                upload.phase = Phase::Failed(e);
                return None;
            }
        };
        // A file over the server's limit is refused before anything is sent.
        match service {
            Some(None) => {
                upload.phase = Phase::Failed(fl!("upload-no-service"));
                return None;
            }
            Some(Some(UploadService {
                max_size: Some(max),
                ..
            })) if file.size > max => {
                upload.phase = Phase::Refused(fl!(
                    "upload-too-large",
                    size = files::human_size(file.size),
                    max = files::human_size(max)
                ));
                return None;
            }
            _ => {}
        }
        upload.phase = Phase::AskingSlot;
        upload.file = Some(file.clone());
        Some(Event::Worker(
            upload.to.account().clone(),
            Command::RequestSlot {
                id: id.to_string(),
                name: file.name,
                size: file.size,
                content_type: file.content_type,
            },
        ))
    }

    fn uploading(&mut self, id: &str, progress: Progress<()>) -> Option<Event> {
        let at = self.uploads.iter().position(|u| u.id == id)?;
        match progress {
            Progress::Moved(sent) => {
                self.uploads[at].phase = Phase::Sending { sent };
                None
            }
            Progress::Done(Ok(())) => {
                let upload = self.uploads.remove(at);
                if let (Some(started), Some(file)) = (upload.started, &upload.file) {
                    let took = started.elapsed().as_secs_f64();
                    tracing::info!(
                        "uploaded {} bytes in {took:.3} s ({:.1} MiB/s)",
                        file.size,
                        file.size as f64 / 1_048_576.0 / took.max(1e-6)
                    );
                }
                let url = upload.url?;
                if let Some(file) = &upload.file {
                    self.sizes.insert(url.clone(), Some(file.size));
                }
                self.sent.insert(url.clone(), upload.path);
                Some(Event::Worker(
                    upload.to.account().clone(),
                    Command::ShareFile {
                        to: upload.to.clone(),
                        url,
                    },
                ))
            }
            Progress::Done(Err(e)) => {
                let upload = &mut self.uploads[at];
                upload.phase = Phase::Failed(fl!("upload-failed", reason = e));
                upload.transfer = None;
                None
            }
        }
    }

    /// Saves a received file to the download folder: copied from the cache
    /// when its preview brought it already, else downloaded.
    fn download(&mut self, url: String) -> Task<Message> {
        if matches!(self.downloads.get(&url), Some(Download::Running { .. })) {
            return Task::none();
        }
        let folder = self.context.files.download_dir();
        let limit = self.context.files.max_download_bytes;
        let cached = self.context.cache.original(&url);
        let name = crate::file_name::file_name_from_url(&url);
        if cached.is_file() {
            let from = url.clone();
            self.downloads.insert(
                url.clone(),
                Download::Running {
                    moved: 0,
                    _transfer: None,
                },
            );
            return Task::perform(
                async move {
                    let saved = tokio::task::spawn_blocking(move || {
                        std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
                        transfer::save_copy(&cached, &folder, &name, &from)
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
                    (url, saved)
                },
                |(url, saved)| Message::Downloading(url, Progress::Done(saved)),
            );
        }
        let Some(http) = self.context.http.clone() else {
            self.downloads
                .insert(url, Download::Failed(fl!("upload-no-tls")));
            return Task::none();
        };
        let key = url.clone();
        let (task, handle) = Task::run(
            files::download(http, url.clone(), folder, Some(limit)),
            move |p| Message::Downloading(key.clone(), p),
        )
        .abortable();
        self.downloads.insert(
            url,
            Download::Running {
                moved: 0,
                _transfer: Some(handle.abort_on_drop()),
            },
        );
        task
    }

    /// Opens a previewed image in the system's viewer: its cached original,
    /// under a name whose ending tells the system what it is.
    fn view_image(&self, url: String) -> Task<Message> {
        let original = self.context.cache.original(&url);
        let ending = url
            .split(['?', '#'])
            .next()
            .and_then(|p| p.rsplit_once('.'))
            .map(|(_, e)| e.to_ascii_lowercase())
            .filter(|e| files::is_image_url(&format!("x.{e}")))
            .unwrap_or_else(|| "png".into());
        let local = self.sent.get(&url).cloned();
        Task::perform(
            async move {
                let shown = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
                    if let Some(local) = local.filter(|p| p.is_file()) {
                        return Ok(local);
                    }
                    let shown = original.with_extension(&ending);
                    if !shown.is_file() {
                        std::fs::copy(&original, &shown)?;
                    }
                    Ok(shown)
                })
                .await;
                match shown {
                    Ok(Ok(path)) => {
                        if let Err(e) = open::that_detached(&path) {
                            tracing::warn!("cannot open an image: {e}");
                        }
                    }
                    Ok(Err(e)) => tracing::warn!("cannot show an image: {e}"),
                    Err(e) => tracing::warn!("cannot show an image: {e}"),
                }
            },
            |()| Message::Opened,
        )
    }

    /// A received attachment as a preview or a file card; `None` when the
    /// message is not an https attachment (it shows as text with its link).
    pub fn attachment<'a>(&'a self, record: &'a Entry) -> Option<Element<'a, Message>> {
        let url = files::attachment_url(&record.body, record.attachment)?;
        if !is_https(url) {
            return None;
        }
        let name = crate::file_name::file_name_from_url(url);
        let url_owned = url.to_string();
        let image_view: Option<Element<'a, Message>> = match self.previews.get(url) {
            Some(Preview::Ready(handle, w, h)) => Some(
                button(image(handle.clone()).width(*w as f32).height(*h as f32))
                    .padding(0)
                    .style(theme::image_button)
                    .on_press(Message::View(url_owned.clone()))
                    .into(),
            ),
            Some(Preview::Loading) => Some(muted(fl!("preview-loading"))),
            Some(Preview::Failed(reason)) => {
                Some(muted(fl!("preview-failed", reason = reason.clone())))
            }
            None if files::is_image_url(url) => Some(
                button(text(fl!("preview-load")).size(13))
                    .padding(0)
                    .style(theme::link_button)
                    .on_press(Message::LoadPreview(url_owned.clone()))
                    .into(),
            ),
            None => None,
        };
        let size = match self.sizes.get(url) {
            Some(Some(size)) => Some(files::human_size(*size)),
            _ => None,
        };
        let mut title = row![text(name).size(14)]
            .spacing(8)
            .align_y(Alignment::Center);
        if let Some(size) = size {
            title = title.push(text(size).size(12).style(muted_style));
        }
        let actions = self.download_view(url);
        let mut card = column![].spacing(6);
        if let Some(image_view) = image_view {
            card = card.push(image_view);
        }
        card = card.push(title).push(actions);
        Some(
            container(card)
                .padding(10)
                .max_width(360)
                .style(theme::attachment)
                .into(),
        )
    }

    fn download_view<'a>(&'a self, url: &'a str) -> Element<'a, Message> {
        match self.downloads.get(url) {
            None => row![
                button(text(fl!("file-download")).size(13))
                    .padding([4, 10])
                    .style(theme::primary_button)
                    .on_press(Message::Download(url.to_string()))
            ]
            .into(),
            Some(Download::Running { moved, _transfer }) => {
                let total = self.sizes.get(url).copied().flatten();
                // As wide as the longest it gets, so that Cancel stays put as the figures change.
                let progress = text(download_label(*moved, total)).size(12).width(210);
                let cancel = _transfer.as_ref().map(|_| {
                    button(text(fl!("upload-cancel")).size(12))
                        .padding(0)
                        .style(theme::link_button)
                        .on_press(Message::CancelDownload(url.to_string()))
                });
                row![progress]
                    .push(cancel)
                    .spacing(8)
                    .align_y(Alignment::Center)
                    .into()
            }
            Some(Download::Done(path)) if transfer::runs_code(path) => row![
                button(text(fl!("file-show-folder")).size(13))
                    .padding([4, 10])
                    .style(theme::primary_button)
                    .on_press(Message::Open(path.clone(), true)),
                text(fl!("file-program-not-opened"))
                    .size(12)
                    .style(theme::muted_text),
            ]
            .spacing(8)
            .align_y(Alignment::Center)
            .into(),
            Some(Download::Done(path)) => row![
                button(text(fl!("file-open")).size(13))
                    .padding([4, 10])
                    .style(theme::primary_button)
                    .on_press(Message::Open(path.clone(), false)),
                button(text(fl!("file-show-folder")).size(13))
                    .padding([4, 10])
                    .style(theme::link_button)
                    .on_press(Message::Open(path.clone(), true)),
            ]
            .spacing(8)
            .align_y(Alignment::Center)
            .into(),
            Some(Download::Failed(reason)) => row![
                text(fl!("file-download-failed", reason = reason.clone()))
                    .size(12)
                    .style(danger_style),
                button(text(fl!("upload-retry")).size(12))
                    .padding(0)
                    .style(theme::link_button)
                    .on_press(Message::Download(url.to_string())),
            ]
            .spacing(8)
            .align_y(Alignment::Center)
            .into(),
        }
    }

    /// Uploads to `peer` in progress or failed, shown above the composer.
    pub fn uploads_view(&self, to: &talk::Id) -> Option<Element<'_, Message>> {
        let mut list = column![].spacing(6);
        let mut any = false;
        for upload in self.uploads.iter().filter(|u| &u.to == to) {
            any = true;
            list = list.push(upload_view(upload));
        }
        any.then(|| container(list).padding([6, 16]).width(Fill).into())
    }
}

fn upload_view(upload: &Upload) -> Element<'_, Message> {
    let name = file_name(&upload.path);
    let size = upload
        .file
        .as_ref()
        .map(|f| files::human_size(f.size))
        .unwrap_or_default();
    let head = row![
        text(name).size(14),
        text(size).size(12).style(muted_style),
        Space::new().width(Fill),
    ]
    .spacing(8)
    .align_y(Alignment::Center);
    let id = upload.id.clone();
    let body: Element<'_, Message> = match &upload.phase {
        Phase::Checking | Phase::AskingSlot | Phase::Sending { .. } => {
            let (sent, total) = match (&upload.phase, &upload.file) {
                (Phase::Sending { sent }, Some(file)) => (*sent as f32, file.size.max(1) as f32),
                _ => (0.0, 1.0),
            };
            let label = match &upload.phase {
                Phase::Sending { .. } => fl!(
                    "upload-progress",
                    percent = format!("{:.0}", 100.0 * sent / total)
                ),
                _ => fl!("upload-waiting"),
            };
            row![
                progress_bar(0.0..=total, sent).girth(6),
                text(label).size(12).style(muted_style),
                button(text(fl!("upload-cancel")).size(12))
                    .padding([2, 8])
                    .style(theme::link_button)
                    .on_press(Message::Cancel(id)),
            ]
            .spacing(10)
            .align_y(Alignment::Center)
            .into()
        }
        Phase::Failed(reason) | Phase::Refused(reason) => {
            let mut actions = row![
                text(reason.clone())
                    .size(12)
                    .style(danger_style)
                    .width(Fill)
            ]
            .spacing(10)
            .align_y(Alignment::Center);
            // A file over the limit stays over it: Retry could never succeed.
            if let Phase::Failed(_) = &upload.phase {
                actions = actions.push(
                    button(text(fl!("upload-retry")).size(12))
                        .padding([2, 8])
                        .style(theme::link_button)
                        .on_press(Message::Retry(id.clone())),
                );
            }
            actions
                .push(
                    button(text(fl!("upload-dismiss")).size(12))
                        .padding([2, 8])
                        .style(theme::link_button)
                        .on_press(Message::Dismiss(id)),
                )
                .into()
        }
    };
    container(column![head, body].spacing(4))
        .padding(8)
        .width(Fill)
        .style(theme::attachment)
        .into()
}

/// The overlay shown while files are dragged over the window.
pub fn drop_zone<'a, M: 'a>(peer_name: &str) -> Element<'a, M> {
    container(
        container(text(fl!("drop-files", name = peer_name.to_string())).size(18))
            .padding(32)
            .style(theme::drop_zone),
    )
    .center(Fill)
    .style(theme::backdrop)
    .into()
}

fn inspect(id: String, path: PathBuf) -> Task<Message> {
    Task::perform(
        async move {
            let result = tokio::task::spawn_blocking(move || files::inspect(&path))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            (id, result)
        },
        |(id, result)| Message::Inspected(id, result),
    )
}

/// A running download: how far along with the size the server told, else how much so far.
fn download_label(moved: u64, total: Option<u64>) -> String {
    match total {
        Some(total) if total > 0 => fl!(
            "file-downloading-of",
            size = files::human_size(moved),
            percent = (moved.saturating_mul(100) / total).min(100)
        ),
        _ => fl!("file-downloading", size = files::human_size(moved)),
    }
}

fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn slot_error_text(e: &SlotError) -> String {
    match e {
        SlotError::Offline => fl!("upload-offline"),
        SlotError::NoService => fl!("upload-no-service"),
        SlotError::TooLarge { max } => fl!("upload-too-large-plain", max = files::human_size(*max)),
        SlotError::Refused(reason) => fl!("upload-refused", reason = reason.clone()),
    }
}

fn muted<'a>(label: String) -> Element<'a, Message> {
    text(label).size(12).style(muted_style).into()
}

fn muted_style(theme: &iced::Theme) -> text::Style {
    text::Style {
        color: Some(theme::muted(theme)),
    }
}

fn danger_style(theme: &iced::Theme) -> text::Style {
    text::Style {
        color: Some(theme::danger_text(theme)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_says_how_far_along_it_is() {
        crate::i18n::select(&["en".parse().unwrap()]);
        let size = files::human_size(26_214_400);
        assert_eq!(
            download_label(26_214_400, Some(52_428_800)),
            format!("Downloading… {size} (50 %)")
        );
        // More than the server said (it lied, or the file grew): never past 100.
        assert!(download_label(80_000_000, Some(52_428_800)).ends_with("(100 %)"));
        assert_eq!(
            download_label(26_214_400, None),
            format!("Downloading… {size}")
        );
        assert_eq!(
            download_label(10, Some(0)),
            format!("Downloading… {}", files::human_size(10))
        );
    }
}
