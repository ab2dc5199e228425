//! Tern, a desktop XMPP messenger: the library behind the `tern` binary.
//!
//! `xmpp` (network) and `store` (disk) know nothing of the UI; `app` and
//! `screen` are the iced UI and never touch tokio-xmpp.

pub mod config;
pub mod export;
pub mod profile;
pub mod store;
pub mod xmpp;
