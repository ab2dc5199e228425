//! What each fuzz target under `fuzz/` runs on one input, with the properties
//! that must hold for any input: the targets call these, and
//! `tests/fuzz_corpus.rs` replays the kept corpus and crashes through them on
//! stable Rust, so CI guards every case the fuzzer ever found.
//!
//! Not an API: nothing in the app calls this module.

use std::path::Path;

use crate::config::{Config, HistoryConfig};
use crate::file_name;
use crate::store::Store;
use crate::xmpp::Inbound;
use crate::xmpp::uri::XmppUri;

/// Stanzas from the network through the worker's inbound path, with a real
/// store in `dir` (see [`Inbound`] for the input format). Must not panic.
pub fn inbound(dir: &Path, data: &[u8]) {
    match Store::open(dir) {
        Ok(store) => inbound_in(&store, data),
        Err(e) => panic!("cannot open a store: {e}"),
    }
}

/// [`inbound`] with a store opened once and emptied before each input (the
/// fuzz target's way: opening one per input would be most of its time).
pub fn inbound_in(store: &Store, data: &[u8]) {
    if let Err(e) = store.clear() {
        panic!("cannot empty the store: {e}");
    }
    match Inbound::with_store(store.clone()) {
        Ok(mut inbound) => {
            inbound.feed(data);
        }
        Err(e) => panic!("cannot set up the worker: {e}"),
    }
}

/// A file name from a link or a peer must stay a plain name in its folder.
pub fn file_name(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    for name in [
        file_name::safe_file_name(&raw),
        file_name::file_name_from_url(&raw),
    ] {
        assert!(!name.is_empty(), "{raw:?}: empty name");
        assert!(name.len() <= 255, "{raw:?}: {} bytes", name.len());
        assert!(!name.contains(['/', '\\', '\0']), "{raw:?} → {name:?}");
        assert!(!name.starts_with('.'), "{raw:?} → {name:?}");
        assert!(name != "." && name != "..", "{raw:?} → {name:?}");
        assert!(
            !name.chars().any(|c| c.is_control() || is_format(c)),
            "{raw:?} → {name:?}"
        );
        // A name already safe stays as it is: saving twice gives one name.
        assert_eq!(file_name::safe_file_name(&name), name, "{raw:?}");
    }
}

/// An `xmpp:` URI from a desktop link: parsed or refused, never a panic; what
/// parses names a bare JID that reads back the same.
pub fn xmpp_uri(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(uri) = text.parse::<XmppUri>() {
        let again: crate::xmpp::BareJid = match uri.jid.as_str().parse() {
            Ok(jid) => jid,
            Err(e) => panic!("{text:?}: {} does not parse again: {e}", uri.jid),
        };
        assert_eq!(again, uri.jid, "{text:?}");
        assert!(uri.body.as_ref().is_none_or(|b| !b.is_empty()), "{text:?}");
    }
}

/// A configuration file as the user (or anything) left it: loaded or refused,
/// never a panic; what loads gives values within bounds and saves to a file
/// that loads back the same.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(text) else {
        return;
    };
    let window = config.history.catch_up();
    assert!(
        (1..=HistoryConfig::MAX_DAYS).contains(&window.days),
        "{text:?}"
    );
    assert!(
        window.max_messages <= HistoryConfig::MAX_MESSAGES,
        "{text:?}"
    );
    let _ = config.notifications.policy();
    let _ = config.files.download_dir();
    let saved = match toml::to_string_pretty(&config) {
        Ok(saved) => saved,
        // TOML cannot say every value (a NaN, say): saving reports an error.
        Err(_) => return,
    };
    match Config::parse(&saved) {
        Ok(again) => assert_eq!(again, config, "{text:?} saved as {saved:?}"),
        Err(e) => panic!("{text:?} saved as {saved:?}, which does not load: {e}"),
    }
}

fn is_format(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.general_category() == GeneralCategory::Format
}
