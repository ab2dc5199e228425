//! The iced application: one state, its messages, `update`, `view` and subscriptions.

pub mod worker;

use iced::theme::Mode;
use iced::widget::{column, container, text};
use iced::{Element, Fill, Subscription, Task, Theme, event, window};

use crate::config::{AccountConfig, Config, ThemeChoice};
use crate::fl;
use crate::profile::Profile;
use crate::screen::{chat, login, room, settings, sharing};
use crate::store::Store;
use crate::theme;
use crate::xmpp::uri::XmppUri;
use crate::xmpp::{self, BareJid, ConnectionState, Handle, OwnPresence, Password, Settings, Trust};

/// What `main` hands the application.
#[derive(Clone, Debug)]
pub struct Flags {
    pub profile: Profile,
    pub trust: Trust,
    /// A chat to open once signed in (`tern xmpp:…`).
    pub open: Option<XmppUri>,
    /// When the process started, to report start-up times.
    pub launched: std::time::Instant,
    /// Requests from later starts of Tern with this profile (see `instance`).
    pub instance: Option<crate::instance::Incoming>,
    /// Whether passwords are kept in the system's credential store (tests
    /// turn it off so as not to touch the developer's keyring).
    pub credentials: bool,
}

pub struct App {
    profile: Profile,
    trust: Trust,
    config: Config,
    store: Option<Store>,
    mode: Mode,
    screen: Screen,
    /// Every account signed in or signing in, in the configuration's order.
    sessions: Vec<Session>,
    /// The sign-in form for another account, shown over the chat while open.
    adding: Option<login::State>,
    /// Credential-store lookups of saved accounts' passwords still under way.
    lookups: usize,
    /// Accounts whose roster came in this run (a link given at start waits for them).
    rosters: std::collections::HashSet<BareJid>,
    pending_open: Option<XmppUri>,
    launched: std::time::Instant,
    /// Whether the window has focus (kept here: the chat screen may come later).
    focused: bool,
    /// What accounts signed in from now on announce (the choice for every account).
    presence: OwnPresence,
    /// Whether the first roster of this run was shown, and the first
    /// sign-in done (for the start-up log lines).
    roster_shown: bool,
    online_logged: bool,
    instance: Option<crate::instance::Incoming>,
    notifications: crate::notification::Policy,
    credentials: bool,
    /// The settings screen, shown over the current screen while open.
    settings: Option<settings::State>,
    /// The configuration is being written; a change meanwhile writes again after.
    config_saving: bool,
    config_dirty: bool,
    /// The unread count on the taskbar/dock icon, and what it shows now.
    badge: crate::badge::Badge,
    badge_count: u32,
    /// Quitting: waiting for the worker to say goodbye to the server.
    quitting: bool,
}

/// How long quitting waits for the worker to close the stream. The server
/// then tells contacts at once that Tern is offline, instead of holding the
/// session for resumption; past this, Tern exits anyway.
const QUIT_WAIT: std::time::Duration = std::time::Duration::from_secs(4);

/// What opening the profile found.
#[derive(Debug, Clone)]
pub struct Opened {
    config: Config,
    /// The history, or why Tern cannot run with this profile (in use, damaged).
    store: Result<Store, String>,
    /// The passwords of the accounts that keep theirs in a file, by account
    /// (`None`: the file could not be read); read here, off the UI thread.
    password_files: Vec<(String, Option<Password>)>,
}

/// The profile opening on a thread of its own from the start of the process,
/// before iced has made the window: the history (sled's lock, a migration)
/// and the configuration take their time beside the window's, not after it.
#[derive(Clone, Debug)]
pub struct Opening(std::sync::Arc<std::sync::Mutex<Option<std::sync::mpsc::Receiver<Opened>>>>);

/// How long the window's making waits for a profile that is opening: about
/// what opening a history takes when nothing holds it up, so that the
/// accounts sign in while the window is made. Longer (sled's lock, a
/// migration), the window shows "Opening your history…" and fills in.
const BOOT_WAIT: std::time::Duration = std::time::Duration::from_millis(150);

impl Opening {
    pub fn start(profile: &Profile) -> Self {
        let profile = profile.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let started = std::thread::Builder::new()
            .name("tern-open".into())
            .spawn(move || {
                let _ = tx.send(open_profile(&profile));
            });
        if let Err(e) = started {
            tracing::warn!("cannot open the profile on its own thread: {e}");
        }
        Self(std::sync::Arc::new(std::sync::Mutex::new(Some(rx))))
    }

    /// What the thread found, if it finds it within `wait`; otherwise
    /// nothing, and [`Opening::take`] waits for it later.
    fn ready_within(&self, wait: std::time::Duration) -> Option<Opened> {
        let guard = self.0.lock().ok()?;
        guard.as_ref()?.recv_timeout(wait).ok()
    }

    /// What the thread found (waiting for it); `None` when it could not run
    /// or was taken already, and the profile is opened again.
    fn take(self) -> Option<Opened> {
        let rx = self.0.lock().ok()?.take()?;
        rx.recv().ok()
    }
}

/// Reads the configuration and opens the history (blocking: run off the UI thread).
fn open_profile(profile: &Profile) -> Opened {
    let config_file = profile.config_file();
    let config = match Config::load(&config_file) {
        Ok(config) => config,
        Err(e) => {
            // Set aside, not overwritten by the next save: the user's
            // settings and accounts are still in it, to mend by hand.
            let aside = config_file.with_extension("toml.broken");
            match std::fs::rename(&config_file, &aside) {
                Ok(()) => tracing::error!(
                    "{e}; starting with default settings (the file is kept as {})",
                    aside.display()
                ),
                Err(_) => tracing::error!("{e}; starting with default settings"),
            }
            Config::default()
        }
    };
    let store = Store::open(&profile.history_dir()).map_err(|e| match e {
        crate::store::Error::InUse => fl!("fatal-profile-in-use"),
        other => fl!("fatal-history", error = other.to_string()),
    });
    let password_files = config
        .accounts
        .iter()
        .filter_map(|account| {
            let path = account.password_file.as_deref()?;
            let password = crate::secret::read_password(path)
                .inspect_err(|e| {
                    tracing::warn!("cannot read the password file {}: {e}", path.display());
                })
                .ok();
            Some((account.jid.clone(), password))
        })
        .collect();
    Opened {
        config,
        store,
        password_files,
    }
}

/// What the credential store said about an account's password.
#[derive(Debug, Clone)]
pub enum Stored {
    Found(Password),
    Nothing,
    /// No credential store answers: the user types the password each time.
    Unavailable,
    Failed(String),
}

enum Screen {
    /// The first frames, while the configuration and the history open.
    Opening,
    Login(login::State),
    Chat(Box<chat::State>),
    /// Tern cannot run with this profile (in use, damaged).
    Fatal(String),
}

/// An account signed in (or signing in) and its worker.
struct Session {
    account: BareJid,
    settings: Settings,
    /// Signing in from the form: until it is online, failures go to the
    /// form, and nothing of it is shown in the chat.
    interactive: bool,
    /// Where the password goes once it signed in (the user's choice on the form).
    keep: login::Keep,
    /// What it announces; given to its worker whenever one starts.
    presence: OwnPresence,
    handle: Option<Handle>,
}

#[derive(Debug, Clone)]
pub enum Message {
    /// The configuration and the history, opened off the UI thread.
    Opened(Box<Opened>),
    Login(login::Message),
    Chat(chat::Message),
    /// Events from one account's worker, in the order it sent them.
    Worker(BareJid, Vec<xmpp::Event>),
    ThemeMode(Mode),
    WindowFocus(bool),
    ConfigSaved(Result<(), String>),
    /// A later start of Tern asked this one to come forward (and open a chat).
    Instance(crate::instance::Request),
    /// A notification was clicked (the chat to open), or closed.
    NotificationClicked(Option<String>),
    /// A saved account's password, from the credential store.
    StoredPassword(BareJid, Stored),
    /// A password was put in (or removed from) the credential store.
    CredentialsSaved(Result<(), String>),
    /// Whether a credential store answers (asked before the first sign-in).
    KeyringProbed(bool),
    /// An account's password was written to its password file (or not).
    PasswordFileSaved(BareJid, Result<std::path::PathBuf, String>),
    Settings(settings::Message),
    /// Ctrl+, (as in GNOME and macOS apps): opens the settings screen.
    OpenSettings,
    /// Escape: closes the settings screen.
    Escape,
    /// The window's close button, Ctrl+Q, SIGTERM or SIGINT: sign off, then exit.
    Quit,
    /// Quitting waited long enough.
    QuitNow,
}

impl App {
    /// The window paints at once; the configuration and the history open
    /// off the UI thread (the history can wait for sled's lock, or migrate),
    /// and the screen fills in when they are there (see [`Message::Opened`]).
    pub fn new(flags: Flags) -> (Self, Task<Message>) {
        Self::opening(flags, None)
    }

    /// [`App::new`] with the profile already opening (see [`Opening`]): the
    /// history and the configuration open while the window is being made.
    pub fn opening(flags: Flags, opening: Option<Opening>) -> (Self, Task<Message>) {
        let app = Self {
            profile: flags.profile,
            trust: flags.trust,
            config: Config::default(),
            store: None,
            mode: Mode::Light,
            screen: Screen::Opening,
            sessions: Vec::new(),
            adding: None,
            lookups: 0,
            rosters: Default::default(),
            pending_open: flags.open,
            launched: flags.launched,
            focused: true,
            presence: OwnPresence::default(),
            roster_shown: false,
            online_logged: false,
            instance: flags.instance,
            notifications: Config::default().notifications.policy(),
            credentials: flags.credentials,
            settings: None,
            config_saving: false,
            config_dirty: false,
            badge: crate::badge::Badge::session(),
            badge_count: 0,
            quitting: false,
        };
        let theme = iced::system::theme().map(Message::ThemeMode);
        // Opened already (the usual case): the accounts start signing in now.
        if let Some(opened) = opening.as_ref().and_then(|o| o.ready_within(BOOT_WAIT)) {
            let mut app = app;
            let start = app.opened(opened);
            return (app, Task::batch([theme, start]));
        }
        let profile = app.profile.clone();
        let open = Task::perform(
            async move {
                tokio::task::spawn_blocking(move || match opening.and_then(|o| o.take()) {
                    Some(opened) => opened,
                    None => open_profile(&profile),
                })
                .await
                .unwrap_or_else(|e| Opened {
                    config: Config::default(),
                    store: Err(format!("{e}")),
                    password_files: Vec::new(),
                })
            },
            |opened| Message::Opened(Box::new(opened)),
        );
        (app, Task::batch([theme, open]))
    }

    /// The configuration and the history are open: start from them.
    fn opened(&mut self, opened: Opened) -> Task<Message> {
        self.config = opened.config;
        self.notifications = self.config.notifications.policy();
        if let Some(language) = self.config.appearance.language.clone() {
            apply_language(Some(&language));
        }
        match opened.store {
            Ok(store) => self.store = Some(store),
            Err(error) => {
                self.screen = Screen::Fatal(error);
                return Task::none();
            }
        }
        tracing::info!(
            "history open {} ms after launch",
            self.launched.elapsed().as_millis()
        );
        self.start_from_config(opened.password_files)
    }

    /// Signs in with every saved account whose password is at hand (a file,
    /// or the credential store, asked off the UI thread), else shows the form.
    fn start_from_config(
        &mut self,
        mut password_files: Vec<(String, Option<Password>)>,
    ) -> Task<Message> {
        if self.config.accounts.is_empty() {
            let show = self.show_login(login::State::default());
            return Task::batch([show, self.probe_keyring()]);
        }
        let mut lookups = Vec::new();
        for account in self.config.accounts.clone() {
            let Ok(jid) = account.jid.parse::<BareJid>() else {
                tracing::warn!(
                    "the configuration names an invalid account: {:?}",
                    account.jid
                );
                continue;
            };
            let password = password_files
                .iter()
                .position(|(file_of, _)| *file_of == account.jid)
                .and_then(|at| password_files.swap_remove(at).1);
            match password {
                Some(password) => {
                    let settings = self.account_settings(&account, jid, password);
                    self.begin_session(settings, false);
                }
                // Signed out (or a file that is gone): the form asks for it.
                None if account.password_file.is_some() || !self.credentials => {}
                None => lookups.push(jid),
            }
        }
        self.lookups = lookups.len();
        let lookups = lookups.into_iter().map(|jid| {
            let key = jid.to_string();
            Task::perform(
                async move {
                    tokio::task::spawn_blocking(move || {
                        match crate::secret::init().and_then(|()| crate::secret::load(&key)) {
                            Ok(Some(password)) => Stored::Found(password),
                            Ok(None) => Stored::Nothing,
                            Err(crate::secret::Error::Unavailable(why)) => {
                                tracing::info!("no credential store: {why}");
                                Stored::Unavailable
                            }
                            Err(e) => Stored::Failed(e.to_string()),
                        }
                    })
                    .await
                    .unwrap_or_else(|e| Stored::Failed(e.to_string()))
                },
                move |stored| Message::StoredPassword(jid.clone(), stored),
            )
        });
        let lookups = Task::batch(lookups);
        if !self.sessions.is_empty() {
            return Task::batch([self.show_chat(), lookups]);
        }
        if self.lookups > 0 {
            // The form says "signing in" while the credential store answers.
            let mut waiting = self.saved_form();
            waiting.set_status(login::Status::Connecting);
            self.screen = Screen::Login(waiting);
            return lookups;
        }
        let form = self.saved_form();
        self.show_login(form)
    }

    /// How to connect the saved account with this password.
    fn account_settings(
        &self,
        account: &AccountConfig,
        jid: BareJid,
        password: Password,
    ) -> Settings {
        Settings {
            jid,
            password,
            host: account.host.clone(),
            port: account.port,
            direct_tls: account.direct_tls,
            trust: self.trust.clone(),
            catch_up: self.config.history.catch_up(),
            liveness: Default::default(),
            share_os: self.config.privacy.share_os,
        }
    }

    /// A saved account's password came from the credential store (or not).
    fn stored_password(&mut self, jid: BareJid, stored: Stored) -> Task<Message> {
        self.lookups = self.lookups.saturating_sub(1);
        let password = match stored {
            Stored::Found(password) => Some(password),
            Stored::Nothing => None,
            Stored::Unavailable => {
                if let Screen::Login(form) = &mut self.screen {
                    form.set_no_keyring();
                }
                None
            }
            Stored::Failed(e) => {
                tracing::warn!("cannot read the saved password of {jid}: {e}");
                match &mut self.screen {
                    Screen::Chat(chat) => {
                        chat.set_notice(fl!("login-keyring-error", error = e));
                    }
                    Screen::Login(form) => {
                        form.set_status(login::Status::Error(fl!(
                            "login-keyring-error",
                            error = e
                        )));
                    }
                    _ => {}
                }
                None
            }
        };
        let account = self
            .config
            .accounts
            .iter()
            .find(|a| a.jid == jid.as_str())
            .cloned();
        if let (Some(password), Some(account)) = (password, account) {
            let settings = self.account_settings(&account, jid.clone(), password);
            self.begin_session(settings, false);
            return match &mut self.screen {
                Screen::Chat(chat) => {
                    let rank = rank(&self.config, &jid);
                    chat.add_account(jid, rank).map(Message::Chat)
                }
                _ => self.show_chat(),
            };
        }
        // Nothing found for any account: the form, for the first one.
        if self.lookups == 0 && self.sessions.is_empty() {
            if let Screen::Login(form) = &mut self.screen
                && matches!(form.status(), login::Status::Connecting)
            {
                form.set_status(login::Status::Idle);
            }
            return match &self.screen {
                Screen::Login(form) => iced::widget::operation::focus(form.first_empty_field()),
                _ => {
                    let form = self.saved_form();
                    self.show_login(form)
                }
            };
        }
        Task::none()
    }

    /// Keeps (or drops) the account's password in the credential store, off the UI thread.
    fn remember_password(&self, jid: &BareJid, password: Option<Password>) -> Task<Message> {
        if !self.credentials {
            return Task::none();
        }
        let key = jid.to_string();
        Task::perform(
            async move {
                tokio::task::spawn_blocking(move || {
                    let kept = crate::secret::init().and_then(|()| match &password {
                        Some(password) => crate::secret::save(&key, password),
                        None => crate::secret::forget(&key),
                    });
                    match kept {
                        // The sign-in form said so already.
                        Err(crate::secret::Error::Unavailable(why)) => {
                            tracing::info!("the password is not kept: {why}");
                            Ok(())
                        }
                        other => other,
                    }
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            },
            Message::CredentialsSaved,
        )
    }

    /// Asks whether a credential store answers, so that the sign-in form can
    /// offer the password file at once when none does.
    fn probe_keyring(&self) -> Task<Message> {
        if !self.credentials {
            return Task::none();
        }
        Task::perform(
            async {
                tokio::task::spawn_blocking(|| match crate::secret::init() {
                    Err(crate::secret::Error::Unavailable(why)) => {
                        tracing::info!("no credential store: {why}");
                        false
                    }
                    _ => true,
                })
                .await
                .unwrap_or(true)
            },
            Message::KeyringProbed,
        )
    }

    /// Forgets the account's password wherever Tern kept it: the credential
    /// store, and the profile's password file (never a file the user manages).
    fn forget_password(&mut self, account: &BareJid) -> Task<Message> {
        let own_file = self.profile.password_file(account.as_str());
        let mut save = Task::none();
        if let Some(saved) = self
            .config
            .accounts
            .iter_mut()
            .find(|a| a.jid == account.as_str())
            && saved.password_file.as_deref() == Some(own_file.as_path())
        {
            saved.password_file = None;
            let remove = Task::future(tokio::task::spawn_blocking(move || {
                if let Err(e) = std::fs::remove_file(&own_file)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!("cannot remove {}: {e}", own_file.display());
                }
            }))
            .discard();
            save = Task::batch([remove, self.save_config()]);
        }
        Task::batch([save, self.remember_password(account, None)])
    }

    /// Keeps a password that signed in where the user chose on the form: the
    /// credential store, the profile's file, or nowhere (dropping any copy
    /// an earlier sign-in kept).
    fn keep_password(
        &mut self,
        account: &BareJid,
        keep: login::Keep,
        password: &Password,
    ) -> Task<Message> {
        match keep {
            login::Keep::CredentialStore => {
                return self.remember_password(account, Some(password.clone()));
            }
            // Also drops what an earlier sign-in kept.
            login::Keep::Nowhere => return self.forget_password(account),
            login::Keep::File => {}
        }
        let path = self.profile.password_file(account.as_str());
        let (jid, password) = (account.clone(), password.clone());
        Task::perform(
            async move {
                tokio::task::spawn_blocking(move || {
                    crate::secret::save_to_file(&path, &password)
                        .map(|()| path)
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
            },
            move |saved| Message::PasswordFileSaved(jid.clone(), saved),
        )
    }

    /// Writes the configuration off the UI thread, one write at a time (the
    /// last change always lands last).
    fn save_config(&mut self) -> Task<Message> {
        if self.config_saving {
            self.config_dirty = true;
            return Task::none();
        }
        self.config_saving = true;
        let (config, path) = (self.config.clone(), self.profile.config_file());
        Task::perform(
            async move {
                tokio::task::spawn_blocking(move || config.save(&path).map_err(|e| e.to_string()))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r)
            },
            Message::ConfigSaved,
        )
    }

    /// The settings screen changed something: apply it now, and save it.
    fn apply_preferences(&mut self, preferences: settings::Preferences) -> Task<Message> {
        if preferences.appearance.language != self.config.appearance.language {
            apply_language(preferences.appearance.language.as_deref());
        }
        preferences.apply_to(&mut self.config);
        self.notifications = self.config.notifications.policy();
        for session in &mut self.sessions {
            // Used by the next catch-up (the next sign-in); a running one goes on.
            session.settings.catch_up = self.config.history.catch_up();
        }
        let files = match &mut self.screen {
            Screen::Chat(chat) => chat.set_files(self.config.files.clone()).map(Message::Chat),
            _ => Task::none(),
        };
        Task::batch([files, self.save_config()])
    }

    fn open_settings(&mut self) -> Task<Message> {
        // Until the configuration is read, settings would show (and save) defaults.
        if matches!(self.screen, Screen::Opening) {
            return Task::none();
        }
        let languages = crate::i18n::available()
            .iter()
            .map(ToString::to_string)
            .collect();
        self.settings = Some(settings::State::new(
            settings::Preferences::of(&self.config),
            languages,
        ));
        self.sync_chat_visibility()
    }

    fn close_settings(&mut self) -> Task<Message> {
        if self.settings.take().is_none() {
            return Task::none();
        }
        self.sync_chat_visibility()
    }

    /// Whether the open chat is in front of the user: the window has focus
    /// and no settings cover the chat.
    fn chat_visible(&self) -> bool {
        self.focused && self.settings.is_none()
    }

    /// Tells the chat screen whether it is seen: what arrives while it is
    /// not stays unread and may notify.
    fn sync_chat_visibility(&mut self) -> Task<Message> {
        let visible = self.chat_visible();
        match &mut self.screen {
            Screen::Chat(chat) => chat.set_window_focused(visible).map(Message::Chat),
            _ => Task::none(),
        }
    }

    fn show_login(&mut self, form: login::State) -> Task<Message> {
        let focus = form.first_empty_field();
        self.screen = Screen::Login(form);
        iced::widget::operation::focus(focus)
    }

    /// The chat window, with every account that is signed in (or, started
    /// from the configuration, signing in).
    fn show_chat(&mut self) -> Task<Message> {
        let Some(store) = &self.store else {
            return Task::none();
        };
        let mut state = chat::State::new(store.clone(), self.sharing_context());
        state.set_default_presence(self.presence.clone());
        state.set_room_levels(self.config.room_levels().into_iter().filter_map(
            |(account, room, level)| {
                let id = crate::conversation::Id::room(account.parse().ok()?, room.parse().ok()?);
                Some((id, level))
            },
        ));
        state.set_trusted_rooms(self.config.trusted_rooms().into_iter().filter_map(
            |(account, room)| {
                Some(crate::conversation::Id::room(
                    account.parse().ok()?,
                    room.parse().ok()?,
                ))
            },
        ));
        let mut tasks = Vec::new();
        for session in self.sessions.iter().filter(|s| !s.interactive) {
            let rank = rank(&self.config, &session.account);
            tasks.push(state.add_account(session.account.clone(), rank));
        }
        let _ = state.set_window_focused(self.chat_visible());
        self.screen = Screen::Chat(Box::new(state));
        let open = self.open_pending_link();
        Task::batch([Task::batch(tasks).map(Message::Chat), open])
    }

    /// Opens the chat a link given at start names. With several accounts it
    /// waits until each has its roster (which says whose contact it is) or
    /// is not coming online soon; with one there is nothing to wait for.
    fn open_pending_link(&mut self) -> Task<Message> {
        let Screen::Chat(chat) = &mut self.screen else {
            return Task::none();
        };
        let several = chat.accounts().count() > 1;
        let waiting = several
            && chat.accounts().any(|a| {
                !self.rosters.contains(a)
                    && matches!(
                        chat.connection(a),
                        Some(ConnectionState::Connecting | ConnectionState::Online { .. })
                    )
            });
        if waiting {
            return Task::none();
        }
        match self.pending_open.take() {
            Some(uri) if uri.join => chat.open_join(&uri.jid).map(Message::Chat),
            Some(uri) => chat.open_link(uri.jid, uri.body).map(Message::Chat),
            None => Task::none(),
        }
    }

    /// What file sharing works with: an HTTP client trusting what the XMPP
    /// connection trusts, and the profile's folders.
    fn sharing_context(&self) -> sharing::Context {
        let http = match crate::transfer::Http::new(&self.trust) {
            Ok(http) => Some(http),
            Err(e) => {
                tracing::error!("file sharing is unavailable: {e}");
                None
            }
        };
        let cache = self.profile.cache_dir();
        sharing::Context {
            http,
            cache: crate::thumbnail::Cache::new(cache.join("images")),
            pasted_dir: cache.join("pasted"),
            files: self.config.files.clone(),
        }
    }

    /// Starts (or redirects) the worker for `settings.jid`.
    fn begin_session(&mut self, settings: Settings, interactive: bool) {
        if let Some(session) = self.session_mut(&settings.jid) {
            session.settings = settings.clone();
            session.interactive = interactive;
            if let Some(handle) = &session.handle {
                handle.connect(settings, interactive);
            }
            return;
        }
        // Its worker starts with its subscription, and asks to connect when ready.
        self.sessions.push(Session {
            account: settings.jid.clone(),
            settings,
            interactive,
            keep: login::Keep::CredentialStore,
            presence: self.presence.clone(),
            handle: None,
        });
    }

    fn session_mut(&mut self, account: &BareJid) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|s| &s.account == account)
    }

    fn session(&self, account: &BareJid) -> Option<&Session> {
        self.sessions.iter().find(|s| &s.account == account)
    }

    /// Stops an account's worker (politely) and forgets its session.
    fn end_session(&mut self, account: &BareJid) {
        if let Some(at) = self.sessions.iter().position(|s| &s.account == account) {
            let session = self.sessions.remove(at);
            if let Some(handle) = &session.handle {
                handle.disconnect();
            }
        }
    }

    /// The form the user is typing in: adding an account, or signing in.
    fn form_mut(&mut self) -> Option<&mut login::State> {
        match (&mut self.adding, &mut self.screen) {
            (Some(form), _) => Some(form),
            (None, Screen::Login(form)) => Some(form),
            _ => None,
        }
    }

    pub fn title(&self) -> String {
        match &self.screen {
            Screen::Chat(chat) if chat.unread() > 0 => {
                format!("({}) {}", chat.unread(), fl!("app-name"))
            }
            _ => fl!("app-name"),
        }
    }

    pub fn theme(&self) -> Theme {
        theme::for_mode(match self.config.appearance.theme {
            ThemeChoice::System => self.mode,
            ThemeChoice::Light => Mode::Light,
            ThemeChoice::Dark => Mode::Dark,
        })
    }

    pub fn update(&mut self, message: Message) -> Task<Message> {
        let task = self.handle(message);
        // The same count as the title, on the taskbar/dock icon.
        let unread = match &self.screen {
            Screen::Chat(chat) => chat.unread(),
            _ => 0,
        };
        if unread == self.badge_count {
            return task;
        }
        self.badge_count = unread;
        Task::batch([task, Task::future(self.badge.show(unread)).discard()])
    }

    fn handle(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::Opened(opened) => self.opened(*opened),
            Message::ThemeMode(mode) => {
                self.mode = mode;
                Task::none()
            }
            Message::WindowFocus(focused) => {
                self.focused = focused;
                self.sync_chat_visibility()
            }
            Message::Instance(request) => self.later_start(request),
            Message::NotificationClicked(None) => Task::none(),
            Message::NotificationClicked(Some(chat)) => {
                let Some((account, peer)) = chat.split_once(' ') else {
                    return Task::none();
                };
                let Some(id) = crate::conversation::Id::chat_of(account, peer) else {
                    return Task::none();
                };
                // The chat asked for is shown, not settings over it.
                let close = self.close_settings();
                let open = match &mut self.screen {
                    Screen::Chat(chat) => chat.open_chat(id, None).map(Message::Chat),
                    _ => Task::none(),
                };
                Task::batch([close, come_forward(), open])
            }
            Message::StoredPassword(jid, stored) => self.stored_password(jid, stored),
            Message::CredentialsSaved(Ok(())) => Task::none(),
            Message::CredentialsSaved(Err(e)) => {
                tracing::warn!("the password is not kept: {e}");
                // Signed in: say it now rather than surprise at the next start.
                if let Screen::Chat(chat) = &mut self.screen {
                    chat.set_notice(fl!("keyring-save-error", error = e));
                }
                Task::none()
            }
            Message::ConfigSaved(result) => {
                self.config_saving = false;
                if let Err(e) = &result {
                    tracing::error!("cannot save the configuration: {e}");
                }
                if let Some(settings) = &mut self.settings {
                    settings.set_error(result.err());
                }
                if std::mem::take(&mut self.config_dirty) {
                    return self.save_config();
                }
                Task::none()
            }
            Message::KeyringProbed(available) => {
                if let (false, Some(form)) = (available, self.form_mut()) {
                    form.set_no_keyring();
                }
                Task::none()
            }
            Message::PasswordFileSaved(jid, Ok(path)) => {
                if let Some(account) = self
                    .config
                    .accounts
                    .iter_mut()
                    .find(|a| a.jid == jid.as_str())
                {
                    account.password_file = Some(path);
                }
                self.save_config()
            }
            Message::PasswordFileSaved(_, Err(e)) => {
                tracing::warn!("the password is not kept in a file: {e}");
                if let Screen::Chat(chat) = &mut self.screen {
                    chat.set_notice(fl!("login-file-error", error = e));
                }
                Task::none()
            }
            Message::Settings(message) => {
                let Some(settings) = &mut self.settings else {
                    return Task::none();
                };
                let (task, event) = settings.update(message);
                let task = task.map(Message::Settings);
                match event {
                    Some(settings::Event::Changed(preferences)) => {
                        Task::batch([task, self.apply_preferences(preferences)])
                    }
                    Some(settings::Event::Close) => Task::batch([task, self.close_settings()]),
                    None => task,
                }
            }
            Message::OpenSettings if self.settings.is_none() => self.open_settings(),
            Message::OpenSettings => Task::none(),
            Message::Escape if self.settings.is_none() && self.adding.is_some() => {
                self.cancel_adding()
            }
            Message::Escape => self.close_settings(),
            Message::Login(message) => {
                let Some(form) = self.form_mut() else {
                    return Task::none();
                };
                let (task, event) = form.update(message);
                let task = task.map(Message::Login);
                match event {
                    Some(login::Event::Submit(login)) => Task::batch([task, self.submit(login)]),
                    Some(login::Event::OpenSettings) => Task::batch([task, self.open_settings()]),
                    Some(login::Event::Cancel) => Task::batch([task, self.cancel_adding()]),
                    None => task,
                }
            }
            Message::Chat(message) => {
                let Screen::Chat(chat) = &mut self.screen else {
                    return Task::none();
                };
                let (task, event) = chat.update(message);
                let task = task.map(Message::Chat);
                let Some(event) = event else { return task };
                match event {
                    chat::Event::Worker(account, command) => {
                        match self.session(&account).and_then(|s| s.handle.as_ref()) {
                            Some(handle) => {
                                handle.send(command);
                            }
                            None => tracing::warn!("no worker for {account}: a command is dropped"),
                        }
                        task
                    }
                    chat::Event::Presence { changed, default } => {
                        self.presence = default;
                        for (account, presence) in changed {
                            if let Some(session) = self.session_mut(&account) {
                                if let Some(handle) = &session.handle {
                                    handle.set_presence(presence.clone());
                                }
                                session.presence = presence;
                            }
                        }
                        task
                    }
                    chat::Event::OpenSettings => Task::batch([task, self.open_settings()]),
                    chat::Event::RoomPreference { room, preference } => {
                        let (account, address) = (room.account().as_str(), room.bare());
                        match preference {
                            room::Preference::Level(level) => {
                                self.config.set_room_level(account, address.as_str(), level)
                            }
                            room::Preference::Images(trusted) => {
                                self.config
                                    .set_room_trusted(account, address.as_str(), trusted)
                            }
                        }
                        Task::batch([task, self.save_config()])
                    }
                    chat::Event::AddAccount => {
                        self.adding = Some(login::State::adding());
                        let focus = iced::widget::operation::focus(login::JID_INPUT);
                        Task::batch([task, focus, self.probe_keyring()])
                    }
                    chat::Event::SignOut(account) => Task::batch([task, self.sign_out(&account)]),
                    chat::Event::Remove {
                        account,
                        delete_history,
                    } => Task::batch([task, self.remove_account(&account, delete_history)]),
                }
            }
            Message::Quit => self.quit(),
            Message::QuitNow => iced::exit(),
            Message::Worker(account, events) => {
                // A worker that outlived its account (signed out) says nothing more.
                if self.session(&account).is_none() {
                    tracing::debug!("{} events from {account}, not signed in", events.len());
                    return Task::none();
                }
                if self.quitting {
                    // Offline means the stream is closed: nothing more to wait for.
                    let closed = events
                        .iter()
                        .any(|e| matches!(e, xmpp::Event::Connection(ConnectionState::Offline(_))));
                    if closed {
                        self.sessions.retain(|s| s.account != account);
                    }
                    return if self.sessions.is_empty() {
                        iced::exit()
                    } else {
                        Task::none()
                    };
                }
                let mut tasks = vec![self.notify(&account, &events)];
                for event in events {
                    tasks.push(self.on_worker_event(&account, event));
                }
                Task::batch(tasks)
            }
        }
    }

    /// Signs off every account (unavailable presence, the stream closed,
    /// bounded by `QUIT_WAIT`), then exits. A second request exits at once.
    fn quit(&mut self) -> Task<Message> {
        // Only workers with a connection to close are waited for.
        self.sessions.retain(|s| s.handle.is_some());
        if self.quitting || self.sessions.is_empty() {
            return iced::exit();
        }
        tracing::info!("quitting: signing off");
        self.quitting = true;
        for handle in self.sessions.iter().filter_map(|s| s.handle.as_ref()) {
            handle.disconnect();
        }
        Task::perform(tokio::time::sleep(QUIT_WAIT), |()| Message::QuitNow)
    }

    /// Signs an account out: offline, its password forgotten (the next start
    /// asks for it), gone from the window; the last one brings back the form.
    fn sign_out(&mut self, account: &BareJid) -> Task<Message> {
        self.end_session(account);
        let forget = self.forget_password(account);
        if let Screen::Chat(chat) = &mut self.screen {
            chat.remove_account(account);
        }
        if !self.sessions.iter().any(|s| !s.interactive) {
            self.adding = None;
            self.sessions.clear();
            let form = login::State::prefilled(account.as_str(), None, None, false);
            let form = match self
                .config
                .accounts
                .iter()
                .find(|a| a.jid == account.as_str())
            {
                Some(a) => login::State::prefilled(&a.jid, a.host.as_deref(), a.port, a.direct_tls),
                None => form,
            };
            return Task::batch([forget, self.show_login(form)]);
        }
        forget
    }

    /// Removes an account from Tern: signed out, its password forgotten,
    /// gone from the configuration, and its history deleted from this
    /// computer when the user said so (off the UI thread).
    fn remove_account(&mut self, account: &BareJid, delete_history: bool) -> Task<Message> {
        let signed_out = self.sign_out(account);
        self.config.remove_account(account.as_str());
        let save = self.save_config();
        let delete = match (&self.store, delete_history) {
            (Some(store), true) => {
                let (store, jid) = (store.clone(), account.to_string());
                Task::future(tokio::task::spawn_blocking(move || {
                    match store.delete_account(&jid) {
                        Ok(n) => tracing::info!("removed {jid} and its {n} messages"),
                        Err(e) => tracing::error!("cannot delete the history of {jid}: {e}"),
                    }
                }))
                .discard()
            }
            _ => Task::none(),
        };
        // The last one gone: the form starts blank, not with the removed address.
        if self.sessions.is_empty() && self.config.accounts.is_empty() {
            return Task::batch([
                signed_out,
                save,
                delete,
                self.show_login(login::State::default()),
            ]);
        }
        Task::batch([signed_out, save, delete])
    }

    /// Leaves the form for adding an account; an account it was signing in
    /// with (and that never came online) stops.
    fn cancel_adding(&mut self) -> Task<Message> {
        self.adding = None;
        let abandoned: Vec<BareJid> = self
            .sessions
            .iter()
            .filter(|s| s.interactive)
            .map(|s| s.account.clone())
            .collect();
        for account in abandoned {
            self.end_session(&account);
        }
        Task::none()
    }

    /// Whether Tern is signing off to exit (for tests).
    pub fn is_quitting(&self) -> bool {
        self.quitting
    }

    /// Desktop notifications for the news in a batch of worker events,
    /// decided before the chat marks anything read.
    fn notify(&self, account: &BareJid, events: &[xmpp::Event]) -> Task<Message> {
        let Screen::Chat(chat) = &self.screen else {
            return Task::none();
        };
        let records: Vec<crate::conversation::Message> = events
            .iter()
            .filter_map(|e| match e {
                xmpp::Event::Messages(records) => Some(records.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect();
        if records.is_empty() {
            return Task::none();
        }
        let names = |peer: &str| {
            peer.parse::<BareJid>()
                .ok()
                .and_then(|jid| chat.contact_name(account, &jid))
        };
        let open_peer = chat
            .open_id()
            .filter(|id| id.account() == account)
            .map(|id| id.peer().to_string());
        let nicks = |room: &crate::conversation::Id| chat.room_nick(room).map(str::to_string);
        let context = crate::notification::Context {
            window_focused: self.chat_visible(),
            open_peer: open_peer.as_deref(),
            contact_name: &names,
            room_nick: &nicks,
            room_level: &|room| chat.room_level(room),
        };
        let several = chat.accounts().count() > 1;
        let notices = crate::notification::decide(&records, true, &context, self.notifications);
        Task::batch(notices.into_iter().map(|mut notice| {
            // Which account it is for, when there is more than one; the
            // click names the chat with its account.
            if several {
                notice.title = fl!(
                    "notification-for-account",
                    title = notice.title.clone(),
                    account = account.to_string()
                );
            }
            notice.peer = format!("{account} {}", notice.peer);
            Task::perform(
                crate::notification::show(notice),
                Message::NotificationClicked,
            )
        }))
    }

    /// A later start of Tern: come forward, and open the chat it asked for.
    fn later_start(&mut self, request: crate::instance::Request) -> Task<Message> {
        let Some(uri) = request.open else {
            return come_forward();
        };
        let uri = match uri.parse::<XmppUri>() {
            Ok(uri) => uri,
            Err(e) => {
                tracing::warn!("a later start asked to open {uri}: {e}");
                return come_forward();
            }
        };
        let close = self.close_settings();
        let open = match &mut self.screen {
            Screen::Chat(chat) if uri.join => chat.open_join(&uri.jid).map(Message::Chat),
            Screen::Chat(chat) => chat.open_link(uri.jid, uri.body).map(Message::Chat),
            _ => {
                // Opened after sign-in, as a link given on the command line is.
                self.pending_open = Some(uri);
                Task::none()
            }
        };
        Task::batch([close, come_forward(), open])
    }

    fn submit(&mut self, login: login::Login) -> Task<Message> {
        let account = AccountConfig {
            jid: login.jid.to_string(),
            host: login.host.clone(),
            port: login.port,
            direct_tls: login.direct_tls,
            password_file: None,
        };
        let settings = self.account_settings(&account, login.jid, login.password);
        self.config.upsert_account(account);
        let save = self.save_config();
        let jid = settings.jid.clone();
        self.begin_session(settings, true);
        if let Some(session) = self.session_mut(&jid) {
            session.keep = login.keep;
        }
        save
    }

    fn saved_form(&self) -> login::State {
        match self.config.account() {
            Some(a) => login::State::prefilled(&a.jid, a.host.as_deref(), a.port, a.direct_tls),
            None => login::State::default(),
        }
    }

    fn on_worker_event(&mut self, account: &BareJid, event: xmpp::Event) -> Task<Message> {
        use xmpp::Event;
        // An account signing in from the form is not in the chat until it is online.
        let shown = self.session(account).is_some_and(|s| !s.interactive);
        let chat = match &mut self.screen {
            Screen::Chat(chat) if shown => Some(chat),
            _ => None,
        };
        match event {
            Event::Ready(handle) => {
                if let Some(session) = self.session_mut(account) {
                    // Before connecting, so that the first presence is the chosen one
                    // (an account added, or a worker restarted, while away).
                    if session.presence != OwnPresence::default() {
                        handle.set_presence(session.presence.clone());
                    }
                    handle.connect(session.settings.clone(), session.interactive);
                    session.handle = Some(handle);
                }
                Task::none()
            }
            Event::Directory(found) => {
                if let Some(chat) = chat {
                    chat.directory_event(account, found);
                }
                Task::none()
            }
            Event::Room { room, event } => {
                tracing::debug!("{account} in {room}: {event:?}");
                match chat {
                    Some(chat) => chat.room_event(account, &room, event).map(Message::Chat),
                    None => Task::none(),
                }
            }
            Event::Connection(state) => self.on_connection(account, state),
            Event::Crashed { restarting } => {
                let notice = if restarting {
                    fl!("worker-restarted")
                } else {
                    fl!("worker-stopped")
                };
                match chat {
                    Some(chat) => {
                        chat.set_notice(notice);
                        if !restarting {
                            chat.set_connection(account, ConnectionState::Offline(None));
                        }
                    }
                    None => {
                        if let Some(form) = self.form_mut() {
                            form.set_status(login::Status::Error(notice));
                        }
                    }
                }
                // The new worker waits, as the first did, to be told to connect.
                if restarting
                    && let Some(session) = self.session(account)
                    && let Some(handle) = &session.handle
                {
                    handle.connect(session.settings.clone(), session.interactive);
                }
                Task::none()
            }
            Event::Roster(contacts) => {
                if let Some(chat) = chat {
                    if !self.roster_shown {
                        self.roster_shown = true;
                        tracing::info!(
                            "roster of {} contacts shown {:.0} ms after launch",
                            contacts.len(),
                            self.launched.elapsed().as_secs_f64() * 1e3
                        );
                    }
                    chat.set_roster(account, contacts);
                }
                self.rosters.insert(account.clone());
                self.open_pending_link()
            }
            Event::RosterPush(contact) => {
                if let Some(chat) = chat {
                    chat.roster_push(account, contact);
                }
                Task::none()
            }
            Event::Presence {
                from,
                availability,
                status,
            } => {
                if let Some(chat) = chat {
                    chat.presence(account, &from, availability, status);
                }
                Task::none()
            }
            Event::Updated(record) => {
                if let Some(chat) = chat {
                    chat.updated(*record);
                }
                Task::none()
            }
            Event::History {
                conversation,
                records,
                more,
            } => match chat {
                Some(chat) => chat
                    .history(&conversation, records, more)
                    .map(Message::Chat),
                None => Task::none(),
            },
            Event::UploadService(service) => {
                // Kept for an account still signing in too: it is shown soon.
                if let Screen::Chat(chat) = &mut self.screen {
                    chat.upload_service(account, service);
                }
                Task::none()
            }
            Event::Slot { id, result } => match &mut self.screen {
                Screen::Chat(chat) => chat.slot(&id, result).map(Message::Chat),
                _ => Task::none(),
            },
            Event::SubscriptionRequest(from) => {
                if let Some(chat) = chat {
                    chat.subscription_request(account, from);
                }
                Task::none()
            }
            Event::Messages(records) => match chat {
                Some(chat) => chat.messages(records, true).map(Message::Chat),
                None => Task::none(),
            },
            Event::Backfill(records) => match chat {
                Some(chat) => chat.messages(records, false).map(Message::Chat),
                None => Task::none(),
            },
        }
    }

    fn on_connection(&mut self, account: &BareJid, state: ConnectionState) -> Task<Message> {
        if matches!(state, ConnectionState::Online { .. }) && !self.online_logged {
            self.online_logged = true;
            tracing::info!(
                "signed in {:.0} ms after launch",
                self.launched.elapsed().as_secs_f64() * 1e3
            );
        }
        let Some(session) = self.session_mut(account) else {
            return Task::none();
        };
        if session.interactive {
            // Signing in from the form: it says how it goes.
            return match state {
                ConnectionState::Online { .. } => {
                    // Once signed in, later failures are retried, not final.
                    session.interactive = false;
                    let (keep, password) = (session.keep, session.settings.password.clone());
                    let remember = self.keep_password(account, keep, &password);
                    let shown = match &mut self.screen {
                        Screen::Chat(chat) => {
                            self.adding = None;
                            let rank = rank(&self.config, account);
                            chat.add_account(account.clone(), rank).map(Message::Chat)
                        }
                        _ => self.show_chat(),
                    };
                    if let Screen::Chat(chat) = &mut self.screen {
                        chat.set_connection(account, state);
                    }
                    Task::batch([shown, remember])
                }
                ConnectionState::Offline(Some(failure)) => {
                    if let Some(form) = self.form_mut() {
                        form.set_status(login::Status::Error(chat::failure_text(&failure)));
                    }
                    Task::none()
                }
                ConnectionState::Offline(None) => {
                    if let Some(form) = self.form_mut() {
                        form.set_status(login::Status::Idle);
                    }
                    Task::none()
                }
                ConnectionState::Retrying { .. } | ConnectionState::Connecting => Task::none(),
            };
        }
        let Screen::Chat(chat) = &mut self.screen else {
            return Task::none();
        };
        if let ConnectionState::Offline(Some(failure)) = &state
            && failure.needs_user()
            && self.sessions.len() == 1
        {
            // The only account, with a changed password or certificate: back
            // to the form, with the reason. A stored password stays until the
            // user signs in with another: a refusal may be the server's fault
            // (a binding it got wrong, an account disabled for a while), and
            // the user may not have the password at hand to type it again.
            // With other accounts chatting on, the account's line says it.
            let mut form = self.saved_form();
            form.set_status(login::Status::Error(chat::failure_text(failure)));
            self.sessions.clear();
            return self.show_login(form);
        }
        chat.set_connection(account, state);
        self.open_pending_link()
    }

    pub fn view(&self) -> Element<'_, Message> {
        if let Some(settings) = &self.settings {
            return settings.view().map(Message::Settings);
        }
        if let Some(form) = &self.adding {
            return form.view().map(Message::Login);
        }
        match &self.screen {
            Screen::Login(form) => form.view().map(Message::Login),
            Screen::Chat(chat) => chat.view().map(Message::Chat),
            Screen::Opening => container(
                column![
                    text(fl!("app-name")).size(24),
                    text(fl!("app-opening")).size(14).style(theme::muted_text),
                ]
                .spacing(12)
                .align_x(iced::Alignment::Center),
            )
            .center(Fill)
            .into(),
            Screen::Fatal(error) => container(
                column![text(fl!("app-name")).size(24), text(error.clone()).size(14)]
                    .spacing(12)
                    .max_width(480),
            )
            .center(Fill)
            .into(),
        }
    }

    pub fn subscription(&self) -> Subscription<Message> {
        let mut subs = vec![
            iced::system::theme_changes().map(Message::ThemeMode),
            event::listen_with(|event, _status, _window| event_message(event)),
            // The window stays open on a close request (see main.rs) until signed off.
            window::close_requests().map(|_| Message::Quit),
            Subscription::run(crate::signals::quit_requests).map(|()| Message::Quit),
        ];
        if let Some(incoming) = &self.instance {
            subs.push(
                Subscription::run_with(incoming.clone(), crate::instance::Incoming::stream)
                    .map(Message::Instance),
            );
        }
        if let Some(store) = &self.store {
            for session in &self.sessions {
                subs.push(
                    worker::subscription(worker::Seed {
                        account: session.account.clone(),
                        store: store.clone(),
                    })
                    .map(|(account, events)| Message::Worker(account, events)),
                );
            }
        }
        Subscription::batch(subs)
    }

    /// Whether the configuration and the history are still opening (the
    /// first frames), for tests and automation.
    pub fn is_opening(&self) -> bool {
        matches!(self.screen, Screen::Opening)
    }

    /// Which of a room's messages notify, for tests and automation.
    pub fn room_level(
        &self,
        room: &crate::conversation::Id,
    ) -> Option<crate::notification::RoomLevel> {
        match &self.screen {
            Screen::Chat(chat) => Some(chat.room_level(room)),
            _ => None,
        }
    }

    /// The open chat's peer, for tests and automation.
    pub fn open_id(&self) -> Option<&crate::conversation::Id> {
        self.open_conversation().map(|c| c.id())
    }

    /// The open chat's peer, for tests and automation.
    pub fn open_peer(&self) -> Option<&BareJid> {
        self.open_conversation().map(|c| c.peer())
    }

    /// The open conversation, for tests and automation.
    pub fn open_conversation(&self) -> Option<&crate::screen::conversation::State> {
        match &self.screen {
            Screen::Chat(chat) => chat.conversation(),
            _ => None,
        }
    }

    /// File sharing of the chat screen, for tests and automation.
    pub fn sharing(&self) -> Option<&sharing::State> {
        match &self.screen {
            Screen::Chat(chat) => Some(chat.sharing()),
            _ => None,
        }
    }

    /// The saved configuration as it stands, for tests and automation.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The first account's connection as the chat screen shows it, when
    /// signed in.
    pub fn connection(&self) -> Option<&ConnectionState> {
        let Screen::Chat(chat) = &self.screen else {
            return None;
        };
        chat.connection(chat.accounts().next()?)
    }

    /// An account's connection as the chat screen shows it.
    pub fn connection_of(&self, account: &BareJid) -> Option<&ConnectionState> {
        match &self.screen {
            Screen::Chat(chat) => chat.connection(account),
            _ => None,
        }
    }

    /// The accounts the chat screen shows, in order.
    pub fn accounts(&self) -> Vec<BareJid> {
        match &self.screen {
            Screen::Chat(chat) => chat.accounts().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The problem the chat screen shows above its lists, if any.
    pub fn notice(&self) -> Option<&str> {
        match &self.screen {
            Screen::Chat(chat) => chat.notice(),
            _ => None,
        }
    }

    /// Whether the settings screen is shown.
    pub fn settings_open(&self) -> bool {
        self.settings.is_some()
    }

    /// Whether the configuration is written as it stands (no write pending).
    pub fn config_saved(&self) -> bool {
        !self.config_saving && !self.config_dirty
    }

    /// Whether the chat screen (rather than the sign-in form) is shown.
    pub fn is_signed_in(&self) -> bool {
        matches!(self.screen, Screen::Chat(_))
    }

    /// Whether the sign-in form says that no credential store answers.
    pub fn login_says_no_keyring(&self) -> bool {
        matches!(&self.screen, Screen::Login(form) if form.no_keyring())
    }

    /// The sign-in form's status line, when the form is shown.
    pub fn login_status(&self) -> Option<&login::Status> {
        match &self.screen {
            Screen::Login(form) => Some(form.status()),
            _ => None,
        }
    }
}

/// Brings the window forward: unminimized, focused, or at least flagged
/// (Wayland compositors usually refuse focus without an activation token).
/// Where `account` comes in the configuration (one not saved yet comes last).
fn rank(config: &Config, account: &BareJid) -> usize {
    config
        .accounts
        .iter()
        .position(|a| a.jid == account.as_str())
        .unwrap_or(config.accounts.len())
}

fn come_forward() -> Task<Message> {
    window::latest().and_then(|id| {
        Task::batch([
            window::minimize(id, false),
            window::gain_focus(id),
            window::request_user_attention(id, Some(window::UserAttention::Informational)),
        ])
    })
}

/// The window events the app acts on, as its messages.
pub fn event_message(event: iced::Event) -> Option<Message> {
    match event {
        iced::Event::Window(window::Event::Focused) => Some(Message::WindowFocus(true)),
        iced::Event::Window(window::Event::Unfocused) => Some(Message::WindowFocus(false)),
        iced::Event::Window(window::Event::FileHovered(_)) => {
            Some(Message::Chat(chat::Message::FilesHovered(true)))
        }
        iced::Event::Window(window::Event::FilesHoveredLeft) => {
            Some(Message::Chat(chat::Message::FilesHovered(false)))
        }
        iced::Event::Window(window::Event::FileDropped(path)) => {
            Some(Message::Chat(chat::Message::FileDropped(path)))
        }
        iced::Event::Keyboard(iced::keyboard::Event::KeyPressed {
            key: iced::keyboard::Key::Named(iced::keyboard::key::Named::Escape),
            ..
        }) => Some(Message::Escape),
        iced::Event::Keyboard(iced::keyboard::Event::KeyPressed {
            key: iced::keyboard::Key::Character(c),
            modifiers,
            ..
        }) if modifiers.command() && c.as_str() == "," => Some(Message::OpenSettings),
        iced::Event::Keyboard(iced::keyboard::Event::KeyPressed {
            key: iced::keyboard::Key::Character(c),
            modifiers,
            ..
        }) if modifiers.command() && c.as_str().eq_ignore_ascii_case("q") => Some(Message::Quit),
        // Whether or not the composer took it: it pastes only text.
        iced::Event::Keyboard(iced::keyboard::Event::KeyPressed {
            key: iced::keyboard::Key::Character(c),
            modifiers,
            ..
        }) if modifiers.command() && c.as_str().eq_ignore_ascii_case("v") => {
            Some(Message::Chat(chat::Message::Paste))
        }
        _ => None,
    }
}

/// Speaks `language` (a tag Tern ships), or the system's language for `None`
/// or a tag this version does not ship.
fn apply_language(language: Option<&str>) {
    let wanted = language.and_then(|tag| {
        let id = tag
            .parse::<i18n_embed::unic_langid::LanguageIdentifier>()
            .ok();
        let shipped = id.filter(|id| crate::i18n::available().contains(id));
        if shipped.is_none() {
            tracing::warn!(
                "no translation for the configured language {tag:?}; following the system"
            );
        }
        shipped
    });
    match wanted {
        Some(id) => crate::i18n::select(&[id]),
        None => crate::i18n::init_from_system(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The profile opened on its own thread gives what opening it in place
    /// gives: the history, or why it cannot be had (held by another Tern).
    #[test]
    fn a_profile_opened_ahead_is_the_same_profile() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::at(dir.path());
        profile.create().unwrap();
        let opened = Opening::start(&profile).take().unwrap();
        let store = opened.store.unwrap();
        assert!(store.conversations("alice@example.org").unwrap().is_empty());
        // Taken once: a second take opens nothing behind the caller's back.
        let opening = Opening::start(&Profile::at(dir.path().join("other")));
        assert!(opening.clone().take().is_some());
        assert!(opening.take().is_none());
        // Held by another Tern: not ready within the boot's short wait (the
        // window shows "Opening…"), and the same refusal comes later.
        let opening = Opening::start(&profile);
        assert!(
            opening
                .ready_within(std::time::Duration::from_millis(100))
                .is_none()
        );
        // Held: the same refusal the window shows, after sled's lock wait.
        let held = opening.take().unwrap();
        assert!(held.store.is_err());
        drop(store);
    }

    /// Password files are read with the profile, off the UI thread: one
    /// that is there gives its password, one that is gone gives none.
    #[test]
    fn password_files_are_read_with_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::at(dir.path().join("profile"));
        profile.create().unwrap();
        let kept = dir.path().join("kept");
        std::fs::write(&kept, "s3cret\n").unwrap();
        let mut config = Config::default();
        for (jid, file) in [
            ("a@example.org", Some(kept)),
            ("b@example.org", Some(dir.path().join("gone"))),
            ("c@example.org", None),
        ] {
            config.upsert_account(crate::config::AccountConfig {
                jid: jid.into(),
                host: None,
                port: None,
                direct_tls: false,
                password_file: file,
            });
        }
        config.save(&profile.config_file()).unwrap();
        let opened = open_profile(&profile);
        let files: Vec<(&str, Option<&str>)> = opened
            .password_files
            .iter()
            .map(|(jid, p)| (jid.as_str(), p.as_ref().map(Password::expose)))
            .collect();
        assert_eq!(
            files,
            [("a@example.org", Some("s3cret")), ("b@example.org", None)]
        );
    }
}
