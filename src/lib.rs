//! Tern, a desktop XMPP messenger: the library behind the `tern` binary.
//!
//! `xmpp` (network), `transfer` (HTTP file sharing), `thumbnail` (image
//! previews), `sharing` (files to and from the window), `store` (disk) and
//! `roster` know nothing of the UI;
//! `app`, `screen` and `theme` are the iced UI and never touch tokio-xmpp.

pub mod app;
pub mod badge;
pub mod config;
pub mod conversation;
pub mod export;
pub mod file_name;
#[doc(hidden)]
pub mod fuzzing;
pub mod i18n;
pub mod instance;
pub mod link;
pub mod logging;
pub mod notification;
pub mod profile;
pub mod roster;
pub mod screen;
pub mod secret;
pub mod sharing;
pub mod signals;
pub mod store;
pub mod theme;
pub mod thumbnail;
pub mod transfer;
pub mod xmpp;
