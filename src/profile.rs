//! Where Tern keeps its files: one profile directory for config, data and cache.
//!
//! `--profile DIR` or `TERN_PROFILE=DIR` puts everything under DIR (tests,
//! portable installs, several identities side by side); otherwise the
//! platform's own config, data and cache directories are used.

use std::path::{Path, PathBuf};

/// The environment variable that overrides every data directory at once.
pub const PROFILE_ENV: &str = "TERN_PROFILE";

/// The directories of one profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    config_dir: PathBuf,
    data_dir: PathBuf,
    cache_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no home directory could be determined; pass --profile DIR")]
    NoHome,
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Profile {
    /// A profile rooted at `dir`: `config/`, `data/` and `cache/` below it.
    pub fn at(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        Self {
            config_dir: dir.join("config"),
            data_dir: dir.join("data"),
            cache_dir: dir.join("cache"),
        }
    }

    /// The profile chosen by the command line, then the environment, then the platform.
    pub fn resolve(cli: Option<&Path>) -> Result<Self, Error> {
        if let Some(dir) = cli {
            return Ok(Self::at(dir));
        }
        if let Some(dir) = std::env::var_os(PROFILE_ENV).filter(|v| !v.is_empty()) {
            return Ok(Self::at(PathBuf::from(dir)));
        }
        let dirs = directories::ProjectDirs::from("im", "Tern", "tern").ok_or(Error::NoHome)?;
        Ok(Self {
            config_dir: dirs.config_dir().to_path_buf(),
            data_dir: dirs.data_dir().to_path_buf(),
            cache_dir: dirs.cache_dir().to_path_buf(),
        })
    }

    /// Creates the directories (owner-only where the platform has modes).
    pub fn create(&self) -> Result<(), Error> {
        for dir in [&self.config_dir, &self.data_dir, &self.cache_dir] {
            create_private_dir(dir).map_err(|source| Error::Create {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    /// Where an account's password is kept when the user chose a file over
    /// the credential store (or none answers): Tern's own file, which it
    /// removes at sign-out, unlike a `--password-file` the user manages.
    /// One per account, named after it (made safe for every file system).
    pub fn password_file(&self, account: &str) -> PathBuf {
        let name = sanitize_filename::sanitize(account);
        self.config_dir.join(format!("password-{name}"))
    }

    pub fn history_dir(&self) -> PathBuf {
        self.data_dir.join("history")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Whether this profile has ever been used (its history exists).
    pub fn exists(&self) -> bool {
        self.history_dir().exists() || self.config_file().exists()
    }
}

/// Creates `dir` (and its parents) readable by the user only.
#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_dir_holds_everything() {
        let p = Profile::resolve(Some(Path::new("/tmp/x"))).unwrap();
        assert!(p.config_file().starts_with("/tmp/x"));
        assert!(p.history_dir().starts_with("/tmp/x"));
        assert!(p.cache_dir().starts_with("/tmp/x"));
        assert_ne!(p.config_file().parent(), p.history_dir().parent());
    }

    #[test]
    fn create_makes_private_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let p = Profile::at(tmp.path().join("p"));
        assert!(!p.exists());
        p.create().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(tmp.path().join("p/data"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0);
        }
    }
}
