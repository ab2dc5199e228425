//! The profile's `config.toml`: accounts and their connection settings.
//!
//! Loading tolerates unknown and missing keys so that a config written by a
//! newer or older Tern still opens. Passwords are never written here: an
//! account may only point at a password file the user manages.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    #[serde(rename = "account", skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountConfig>,
    pub history: HistoryConfig,
    pub files: FilesConfig,
    pub notifications: NotificationsConfig,
    pub appearance: AppearanceConfig,
    pub privacy: PrivacyConfig,
    /// What the user chose for single rooms.
    #[serde(rename = "room", skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<RoomConfig>,
}

/// One room's own settings, by account and room address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomConfig {
    pub account: String,
    pub room: String,
    /// Which messages notify: `all`, `mentions` or `never`; anything else
    /// (a newer Tern's choice) is the room's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    /// Images from the room's occupants load by themselves, as a contact's
    /// do (the user trusts the room).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub images: bool,
}

fn level_name(level: crate::notification::RoomLevel) -> &'static str {
    use crate::notification::RoomLevel;
    match level {
        RoomLevel::All => "all",
        RoomLevel::Mentions => "mentions",
        RoomLevel::Never => "never",
    }
}

/// What Tern tells others about this computer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrivacyConfig {
    /// Whether a contact asking for the software version (XEP-0092) is told
    /// the system's name (Linux, Windows, macOS; never its version).
    pub share_os: bool,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self { share_os: true }
    }
}

/// How Tern looks and which language it speaks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppearanceConfig {
    pub theme: ThemeChoice,
    /// A language tag Tern ships (`en`, `zh-CN`); unset follows the system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Light, dark, or whatever the system uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeChoice {
    Light,
    Dark,
    /// Also what a value written by a newer Tern falls back to.
    #[default]
    #[serde(other)]
    System,
}

/// Desktop notifications for incoming messages while the window is not in front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationsConfig {
    pub enabled: bool,
    /// Whether a notification shows the message (else only who wrote).
    pub show_content: bool,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        let policy = crate::notification::Policy::default();
        Self {
            enabled: policy.enabled,
            show_content: policy.show_content,
        }
    }
}

impl NotificationsConfig {
    pub fn policy(&self) -> crate::notification::Policy {
        crate::notification::Policy {
            enabled: self.enabled,
            show_content: self.show_content,
        }
    }
}

/// Files people send: where downloads go and which images load by themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesConfig {
    /// Where downloads are saved; the system's download folder when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_dir: Option<PathBuf>,
    /// Whether images from contacts load by themselves (https links only,
    /// never from people outside the roster).
    pub auto_download_images: bool,
    /// The largest image loaded by itself, in bytes.
    pub auto_download_max_bytes: u64,
    /// The largest file a download the user starts may bring, in bytes.
    pub max_download_bytes: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            download_dir: None,
            auto_download_images: true,
            auto_download_max_bytes: 10_000_000,
            max_download_bytes: 4_000_000_000,
        }
    }
}

impl FilesConfig {
    /// The folder downloads go to.
    pub fn download_dir(&self) -> PathBuf {
        self.download_dir
            .clone()
            .unwrap_or_else(|| SYSTEM_DOWNLOADS.clone())
    }
}

/// The system's download folder, looked up once: finding it reads
/// `user-dirs.dirs` on Linux, and the settings screen shows it on every frame.
static SYSTEM_DOWNLOADS: std::sync::LazyLock<PathBuf> = std::sync::LazyLock::new(|| {
    directories::UserDirs::new()
        .and_then(|d| d.download_dir().map(Path::to_path_buf))
        .or_else(|| directories::BaseDirs::new().map(|d| downloads_in_home(d.home_dir())))
        .unwrap_or_else(std::env::temp_dir)
});

/// Where downloads go when the desktop names no download folder (no
/// `user-dirs.dirs`, as in a bare session): `~/Downloads` if there is one, as
/// browsers do, else the home folder itself.
fn downloads_in_home(home: &Path) -> PathBuf {
    let downloads = home.join("Downloads");
    if downloads.is_dir() {
        downloads
    } else {
        home.to_path_buf()
    }
}

/// How much history a first sign-in on this computer fetches from the
/// server's archive; older pages come when the user scrolls up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryConfig {
    pub catch_up_days: u32,
    pub catch_up_messages: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        let window = crate::xmpp::CatchUp::default();
        Self {
            catch_up_days: window.days,
            catch_up_messages: window.max_messages,
        }
    }
}

impl HistoryConfig {
    /// The window, within bounds whatever the file says: a first sign-in
    /// holds the whole window in memory until it is stored.
    pub fn catch_up(&self) -> crate::xmpp::CatchUp {
        crate::xmpp::CatchUp {
            days: self.catch_up_days.clamp(1, Self::MAX_DAYS),
            max_messages: self.catch_up_messages.min(Self::MAX_MESSAGES),
        }
    }

    pub const MAX_DAYS: u32 = 36_500;
    pub const MAX_MESSAGES: usize = 10_000;
}

/// One XMPP account as the user configured it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountConfig {
    /// The bare JID, as typed by the user.
    pub jid: String,
    /// Server host name or address; empty means DNS SRV lookup of the JID's domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// XEP-0368: TLS from the first byte instead of STARTTLS.
    pub direct_tls: bool,
    /// A file holding the password, maintained by the user (`--password-file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode the configuration: {0}")]
    Encode(#[from] toml::ser::Error),
}

impl Config {
    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::parse(&text).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Writes atomically: a crash mid-write leaves the old file intact.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = toml::to_string_pretty(self)?;
        let tmp = path.with_extension("toml.tmp");
        let write = |p: &Path| -> std::io::Result<()> {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(p, &text)?;
            std::fs::rename(p, path)
        };
        write(&tmp).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The account Tern signs in with (the first one configured).
    pub fn account(&self) -> Option<&AccountConfig> {
        self.accounts.first()
    }

    /// Replaces the account with the same JID where it is, or adds it last.
    pub fn upsert_account(&mut self, account: AccountConfig) {
        match self.accounts.iter_mut().find(|a| a.jid == account.jid) {
            Some(known) => *known = account,
            None => self.accounts.push(account),
        }
    }

    /// Forgets an account (its history is the store's to delete).
    pub fn remove_account(&mut self, jid: &str) {
        self.accounts.retain(|a| a.jid != jid);
        self.rooms.retain(|r| r.account != jid);
    }

    /// The notification level chosen for each room, where one was.
    pub fn room_levels(&self) -> Vec<(String, String, crate::notification::RoomLevel)> {
        use crate::notification::RoomLevel;
        self.rooms
            .iter()
            .filter_map(|r| {
                let level = match r.notify.as_deref()? {
                    "all" => RoomLevel::All,
                    "mentions" => RoomLevel::Mentions,
                    "never" => RoomLevel::Never,
                    _ => return None,
                };
                Some((r.account.clone(), r.room.clone(), level))
            })
            .collect()
    }

    /// Keeps the level chosen for a room.
    pub fn set_room_level(
        &mut self,
        account: &str,
        room: &str,
        level: crate::notification::RoomLevel,
    ) {
        self.room_entry(account, room).notify = Some(level_name(level).to_string());
    }

    /// The rooms whose images load by themselves.
    pub fn trusted_rooms(&self) -> Vec<(String, String)> {
        self.rooms
            .iter()
            .filter(|r| r.images)
            .map(|r| (r.account.clone(), r.room.clone()))
            .collect()
    }

    /// Keeps whether a room's images load by themselves.
    pub fn set_room_trusted(&mut self, account: &str, room: &str, trusted: bool) {
        self.room_entry(account, room).images = trusted;
    }

    fn room_entry(&mut self, account: &str, room: &str) -> &mut RoomConfig {
        let at = match self
            .rooms
            .iter()
            .position(|r| r.account == account && r.room == room)
        {
            Some(at) => at,
            None => {
                self.rooms.push(RoomConfig {
                    account: account.to_string(),
                    room: room.to_string(),
                    ..RoomConfig::default()
                });
                self.rooms.len() - 1
            }
        };
        &mut self.rooms[at]
    }
}

#[cfg(test)]
mod tests {
    /// Values out of range in a hand-edited file are clamped, not a panic
    /// (4 billion days once overflowed the worker's date arithmetic).
    #[test]
    fn out_of_range_history_values_are_clamped() {
        let config: super::Config = toml::from_str(
            "[history]\ncatch_up_days = 4294967295\ncatch_up_messages = 18446744073709551615\n",
        )
        .unwrap();
        let window = config.history.catch_up();
        assert_eq!(window.days, super::HistoryConfig::MAX_DAYS);
        assert_eq!(window.max_messages, super::HistoryConfig::MAX_MESSAGES);
        let config: super::Config = toml::from_str("[history]\ncatch_up_days = 0\n").unwrap();
        assert_eq!(config.history.catch_up().days, 1);
        // Negative or non-numeric values are a parse error: the file is set
        // aside (see App::new), never a panic.
        assert!(toml::from_str::<super::Config>("[history]\ncatch_up_days = -5\n").is_err());
    }

    use super::*;

    #[test]
    fn without_a_named_download_folder_downloads_go_to_home_downloads() {
        let home = tempfile::tempdir().unwrap();
        assert_eq!(downloads_in_home(home.path()), home.path());
        std::fs::create_dir(home.path().join("Downloads")).unwrap();
        assert_eq!(
            downloads_in_home(home.path()),
            home.path().join("Downloads")
        );
    }

    #[test]
    fn tolerates_unknown_and_missing_keys() {
        let text = include_str!("../tests/fixtures/config-v1.toml");
        let config = Config::parse(text).unwrap();
        assert_eq!(config.accounts.len(), 2);
        let a = &config.accounts[0];
        assert_eq!(a.jid, "alice@example.org");
        assert_eq!(a.host.as_deref(), Some("xmpp.example.org"));
        assert_eq!(a.port, Some(5223));
        assert!(a.direct_tls);
        let b = &config.accounts[1];
        assert_eq!(b.jid, "bob@example.net");
        assert_eq!(b.host, None);
        assert!(!b.direct_tls);
    }

    #[test]
    fn history_window_defaults_and_partial_settings() {
        let v1 = Config::parse(include_str!("../tests/fixtures/config-v1.toml")).unwrap();
        assert_eq!(v1.history.catch_up(), crate::xmpp::CatchUp::default());
        let v2 = Config::parse(include_str!("../tests/fixtures/config-v2.toml")).unwrap();
        assert_eq!(v2.history.catch_up_messages, 200);
        assert_eq!(
            v2.history.catch_up_days,
            crate::xmpp::CatchUp::default().days
        );
        assert_eq!(v2.accounts[0].jid, "alice@example.org");
    }

    #[test]
    fn files_section_defaults_and_partial_settings() {
        let v2 = Config::parse(include_str!("../tests/fixtures/config-v2.toml")).unwrap();
        assert_eq!(v2.files, FilesConfig::default());
        assert!(v2.files.auto_download_images);
        let v3 = Config::parse(include_str!("../tests/fixtures/config-v3.toml")).unwrap();
        assert_eq!(
            v3.files.download_dir.as_deref(),
            Some(Path::new("/home/alice/Incoming"))
        );
        assert_eq!(v3.files.download_dir(), Path::new("/home/alice/Incoming"));
        assert!(!v3.files.auto_download_images);
        assert_eq!(
            v3.files.auto_download_max_bytes,
            FilesConfig::default().auto_download_max_bytes
        );
        assert_eq!(v3.history.catch_up_days, 7);
        assert_eq!(v3.notifications, NotificationsConfig::default());
        let hidden = Config::parse("[notifications]\nshow_content = false\n").unwrap();
        assert!(hidden.notifications.enabled && !hidden.notifications.policy().show_content);
        assert_eq!(v3.accounts[0].jid, "alice@example.org");
    }

    #[test]
    fn appearance_defaults_unknown_values_and_round_trip() {
        let v3 = Config::parse(include_str!("../tests/fixtures/config-v3.toml")).unwrap();
        assert_eq!(v3.appearance, AppearanceConfig::default());
        let v4 = Config::parse(include_str!("../tests/fixtures/config-v4.toml")).unwrap();
        assert_eq!(v4.appearance.theme, ThemeChoice::Dark);
        assert_eq!(v4.appearance.language.as_deref(), Some("zh-CN"));
        assert!(!v4.notifications.show_content);
        assert!(v4.notifications.enabled, "missing key keeps its default");
        assert_eq!(v4.files.auto_download_max_bytes, 5_000_000);
        assert_eq!(v4.history.catch_up_days, 90);
        assert_eq!(v4.accounts[0].jid, "alice@example.org");
        // A theme this version does not know (from a newer Tern) follows the system.
        let newer = Config::parse("[appearance]\ntheme = \"solarized\"\n").unwrap();
        assert_eq!(newer.appearance.theme, ThemeChoice::System);

        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        v4.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), v4);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("theme = \"dark\""), "{text}");
    }

    #[test]
    fn room_levels_round_trip_and_unknown_ones_are_the_default() {
        use crate::notification::RoomLevel;
        let v5 = Config::parse(include_str!("../tests/fixtures/config-v5.toml")).unwrap();
        assert_eq!(
            v5.room_levels(),
            vec![
                (
                    "alice@example.org".to_string(),
                    "team@conference.example.org".to_string(),
                    RoomLevel::All
                ),
                (
                    "alice@example.org".to_string(),
                    "lobby@conference.example.org".to_string(),
                    RoomLevel::Never
                ),
            ]
        );
        let mut config = v5.clone();
        config.set_room_level(
            "alice@example.org",
            "team@conference.example.org",
            RoomLevel::Mentions,
        );
        config.set_room_level(
            "bob@example.org",
            "den@conference.example.org",
            RoomLevel::Never,
        );
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        config.save(&path).unwrap();
        let saved = Config::load(&path).unwrap();
        assert_eq!(saved, config);
        // Three of the four rooms have a level this version knows.
        assert_eq!(saved.room_levels().len(), 3);
        assert_eq!(saved.room_levels()[0].2, RoomLevel::Mentions);
        config.remove_account("bob@example.org");
        assert!(
            config
                .rooms
                .iter()
                .all(|r| r.account == "alice@example.org")
        );
    }

    #[test]
    fn trusted_rooms_round_trip_beside_their_levels() {
        use crate::notification::RoomLevel;
        let v6 = Config::parse(include_str!("../tests/fixtures/config-v6.toml")).unwrap();
        let family = (
            "alice@example.org".to_string(),
            "family@conference.example.org".to_string(),
        );
        assert_eq!(v6.trusted_rooms(), vec![family.clone()]);
        assert_eq!(v6.room_levels().len(), 2);
        // An older file has no trusted room.
        let v5 = Config::parse(include_str!("../tests/fixtures/config-v5.toml")).unwrap();
        assert!(v5.trusted_rooms().is_empty());
        let mut config = v6.clone();
        config.set_room_trusted(&family.0, &family.1, false);
        config.set_room_trusted("alice@example.org", "lobby@conference.example.org", true);
        config.set_room_trusted("alice@example.org", "new@conference.example.org", true);
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        config.save(&path).unwrap();
        let saved = Config::load(&path).unwrap();
        assert_eq!(saved, config);
        assert_eq!(
            saved.trusted_rooms(),
            vec![
                (
                    "alice@example.org".to_string(),
                    "lobby@conference.example.org".to_string()
                ),
                (
                    "alice@example.org".to_string(),
                    "new@conference.example.org".to_string()
                ),
            ]
        );
        // Trust leaves the level as it was, and a false one is not written.
        assert_eq!(saved.room_levels()[1].2, RoomLevel::Mentions);
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(!written.contains("images = false"), "{written}");
    }

    #[test]
    fn empty_and_missing_files_are_empty_configs() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::load(&tmp.path().join("none.toml")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn malformed_file_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, "[[account]]\nport = \"not a number\"\n").unwrap();
        assert!(matches!(Config::load(&path), Err(Error::Parse { .. })));
    }

    #[test]
    fn round_trip_never_writes_a_password() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sub/config.toml");
        let mut config = Config::default();
        config.upsert_account(AccountConfig {
            jid: "alice@example.org".into(),
            host: Some("127.0.0.1".into()),
            port: Some(15222),
            direct_tls: false,
            password_file: Some("/secret/pw".into()),
        });
        config.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("password ="));
        assert_eq!(Config::load(&path).unwrap(), config);
    }
}
