//! Translations (Fluent): `i18n/<lang>/tern.ftl`, embedded in the binary.
//!
//! Every user-visible string goes through [`fl!`](crate::fl); an unknown
//! message id is a compile error, and `tests/i18n.rs` fails when a locale
//! misses a key the English file has.

use std::sync::LazyLock;

use i18n_embed::fluent::{FluentLanguageLoader, fluent_language_loader};
use i18n_embed::unic_langid::LanguageIdentifier;
use i18n_embed::{DesktopLanguageRequester, LanguageLoader};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "i18n/"]
pub struct Localizations;

pub static LANGUAGE_LOADER: LazyLock<FluentLanguageLoader> = LazyLock::new(|| {
    let loader: FluentLanguageLoader = fluent_language_loader!();
    if let Err(e) = loader.load_fallback_language(&Localizations) {
        // Only possible with a broken build; strings then show their ids.
        tracing::error!("cannot load the English translation: {e}");
    }
    loader.set_use_isolating(false);
    loader
});

/// Looks up a translated message: `fl!("id")` or `fl!("id", name = value)`.
#[macro_export]
macro_rules! fl {
    ($message_id:literal) => {{
        i18n_embed_fl::fl!($crate::i18n::LANGUAGE_LOADER, $message_id)
    }};
    ($message_id:literal, $($args:expr),*) => {{
        i18n_embed_fl::fl!($crate::i18n::LANGUAGE_LOADER, $message_id, $($args), *)
    }};
}

/// Selects the system's languages (falling back to English).
pub fn init_from_system() {
    let requested = DesktopLanguageRequester::requested_languages();
    select(&requested);
}

/// Selects the best available translation for `requested`.
pub fn select(requested: &[LanguageIdentifier]) {
    if let Err(e) = i18n_embed::select(&*LANGUAGE_LOADER, &Localizations, requested) {
        tracing::warn!("cannot select a translation: {e}");
    }
    // Fluent would wrap every argument in Unicode isolation marks, which iced draws as boxes.
    LANGUAGE_LOADER.set_use_isolating(false);
}

/// The languages Tern ships.
pub fn available() -> Vec<LanguageIdentifier> {
    LANGUAGE_LOADER
        .available_languages(&Localizations)
        .unwrap_or_default()
}
