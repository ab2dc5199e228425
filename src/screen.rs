//! The screens of the main window.

pub mod chat;
pub mod conversation;
pub mod login;
pub mod room;
pub mod settings;
pub mod sharing;
