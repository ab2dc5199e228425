//! The `tern` command: the messenger window, account set-up and history export.
// Release builds on Windows open no console window beside Tern's.
#![cfg_attr(all(windows, not(debug_assertions)), windows_subsystem = "windows")]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tern::app::{App, Flags};
use tern::config::{AccountConfig, Config};
use tern::instance::{self, Claim, Incoming};
use tern::profile::Profile;
use tern::store::{self, Store};
use tern::xmpp::uri::XmppUri;
use tern::xmpp::{BareJid, Trust};

#[derive(Parser, Debug)]
#[command(name = "tern", version, about = "A desktop XMPP messenger")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    /// Keep all config, history and cache under DIR (also: TERN_PROFILE)
    #[arg(long, global = true, value_name = "DIR")]
    profile: Option<PathBuf>,

    /// Set up this account in the profile (with --password-file)
    #[arg(long, value_name = "JID", requires = "password_file")]
    jid: Option<String>,

    /// A file whose first line is the account's password
    #[arg(long, value_name = "FILE", requires = "jid")]
    password_file: Option<PathBuf>,

    /// Connect to HOST:PORT instead of looking the server up in DNS
    #[arg(long, value_name = "HOST:PORT", requires = "jid")]
    server: Option<String>,

    /// Use direct TLS (XEP-0368) instead of STARTTLS
    #[arg(long, requires = "jid")]
    direct_tls: bool,

    /// Log protocol detail
    #[arg(long, short, global = true)]
    verbose: bool,

    /// An xmpp: URI to open, e.g. xmpp:bob@example.org
    #[arg(value_name = "URI")]
    uri: Option<String>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the stored history as JSON lines
    Export {
        /// Only the conversation with this JID
        #[arg(long, value_name = "JID")]
        peer: Option<String>,
        /// Only this account's conversations (every account's by default)
        #[arg(long, value_name = "JID")]
        account: Option<String>,
    },
}

fn main() -> ExitCode {
    let launched = std::time::Instant::now();
    let cli = Cli::parse();
    let profile = match Profile::resolve(cli.profile.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            tern::logging::init(cli.verbose, None);
            return fail(&e.to_string());
        }
    };
    // The window logs to a file in the profile too; `export` only to stderr.
    let log_dir = cli.command.is_none().then(|| profile.log_dir());
    let _log_guard = tern::logging::init(cli.verbose, log_dir.as_deref());
    install_panic_hook();
    match cli.command {
        Some(Command::Export { peer, account }) => {
            export(&profile, account.as_deref(), peer.as_deref())
        }
        None => run(cli, profile, launched),
    }
}

fn run(cli: Cli, profile: Profile, launched: std::time::Instant) -> ExitCode {
    tern::i18n::init_from_system();
    if let Err(e) = profile.create() {
        return fail(&e.to_string());
    }
    if let (Some(jid), Some(password_file)) = (&cli.jid, &cli.password_file)
        && let Err(e) = set_up_account(
            &profile,
            jid,
            password_file,
            cli.server.as_deref(),
            cli.direct_tls,
        )
    {
        return fail(&e);
    }
    let open = match cli.uri.as_deref().map(str::parse::<XmppUri>) {
        None => None,
        Some(Ok(uri)) => Some(uri),
        Some(Err(e)) => return fail(&format!("{}: {e}", cli.uri.unwrap_or_default())),
    };
    // One Tern per profile: a later start (a clicked xmpp: link) hands its
    // request to the running one. This runtime owns the socket and lives
    // until the window closes.
    let instance_runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tern-instance")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&e.to_string()),
    };
    let config_file = profile.config_file();
    let profile_dir = config_file.parent().unwrap_or(std::path::Path::new("."));
    let request = instance::Request {
        open: cli.uri.clone(),
    };
    let instance = match instance_runtime.block_on(instance::claim(profile_dir, &request)) {
        Ok(Claim::Primary(listener)) => Some(Incoming::new(listener)),
        Ok(Claim::HandedOver) => {
            eprintln!("tern: handed over to the Tern already running with this profile");
            return ExitCode::SUCCESS;
        }
        Err(e @ (instance::Error::NoAnswer | instance::Error::Refused(_))) => {
            return fail(&e.to_string());
        }
        Err(e) => {
            tracing::warn!("{e}; starting without single-instance hand-over");
            None
        }
    };
    let flags = Flags {
        profile,
        trust: Trust::system(),
        open,
        launched,
        instance,
        credentials: true,
    };
    // The history and the configuration open while iced makes the window.
    let opening = tern::app::Opening::start(&flags.profile);
    let result = iced::application(
        move || App::opening(flags.clone(), Some(opening.clone())),
        App::update,
        App::view,
    )
    .title(App::title)
    .subscription(App::subscription)
    .theme(App::theme)
    .window(iced::window::Settings {
        size: iced::Size::new(1000.0, 680.0),
        min_size: Some(iced::Size::new(640.0, 420.0)),
        icon: window_icon(),
        // The desktop file's StartupWMClass and the Wayland app id.
        #[cfg(target_os = "linux")]
        platform_specific: iced::window::settings::PlatformSpecific {
            application_id: "im.tern.Tern".into(),
            ..Default::default()
        },
        // Closing signs off first (see `App::quit`): contacts see Tern
        // go offline at once, and the server does not hold the session.
        exit_on_close_request: false,
        ..iced::window::Settings::default()
    })
    .run();
    drop(instance_runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

/// `--jid --password-file [--server]`: writes the account into the profile's config.
fn set_up_account(
    profile: &Profile,
    jid: &str,
    password_file: &std::path::Path,
    server: Option<&str>,
    direct_tls: bool,
) -> Result<(), String> {
    let jid: BareJid = jid
        .parse()
        .ok()
        .filter(|j: &BareJid| j.node().is_some())
        .ok_or_else(|| format!("{jid} is not an account address (user@domain)"))?;
    tern::secret::read_password(password_file)
        .map_err(|e| format!("{}: {e}", password_file.display()))?;
    let password_file = std::fs::canonicalize(password_file).map_err(|e| e.to_string())?;
    let (host, port) = match server {
        None => (None, None),
        Some(s) => {
            let (host, port) = s
                .rsplit_once(':')
                .ok_or_else(|| format!("--server {s}: expected HOST:PORT"))?;
            let port: u16 = port
                .parse()
                .map_err(|_| format!("--server {s}: bad port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            (Some(host.to_string()), Some(port))
        }
    };
    let path = profile.config_file();
    let mut config = Config::load(&path).map_err(|e| e.to_string())?;
    config.upsert_account(AccountConfig {
        jid: jid.to_string(),
        host,
        port,
        direct_tls,
        password_file: Some(password_file),
    });
    config.save(&path).map_err(|e| e.to_string())
}

fn export(profile: &Profile, account: Option<&str>, peer: Option<&str>) -> ExitCode {
    if !profile.history_dir().exists() {
        return fail(&format!(
            "no history at {}: is this the right profile?",
            profile.history_dir().display()
        ));
    }
    let store = match Store::open(&profile.history_dir()) {
        Ok(s) => s,
        Err(store::Error::InUse) => {
            return fail(
                "the profile is in use by a running Tern; close it or export another profile",
            );
        }
        Err(e) => return fail(&e.to_string()),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match tern::export::write(&store, account, peer, &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        // A closed pipe (`tern export | head`) is not an error worth a message.
        Err(tern::export::Error::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("tern: {message}");
    ExitCode::FAILURE
}

/// Panics go to the log. tokio-xmpp 6 panics inside its own background task
/// when a reconnection slot is dropped; `xmpp::worker::reconnector` avoids
/// that, and should it still happen it is logged quietly.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        if message == "Backend was unable to handle reconnect request."
            && location.contains("tokio-xmpp")
        {
            tracing::debug!("tokio-xmpp stream task ended after a stopped connection attempt");
            return;
        }
        tracing::error!("internal error at {location}: {message}");
        eprintln!("tern: internal error at {location}: {message}");
    }));
}

/// The window's icon (title bar and task bar on X11 and Windows; Wayland and
/// macOS take it from the desktop file and the app bundle).
fn window_icon() -> Option<iced::window::Icon> {
    let png = include_bytes!("../resources/icon/hicolor/64x64/apps/im.tern.Tern.png");
    let rgba = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .ok()?
        .into_rgba8();
    let (width, height) = rgba.dimensions();
    iced::window::icon::from_rgba(rgba.into_raw(), width, height).ok()
}
