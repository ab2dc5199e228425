//! What Tern tells others it supports: one table for service discovery
//! (XEP-0030) and the entity capabilities in every presence (XEP-0115), and
//! the software version it answers with (XEP-0092).
//!
//! Other clients decide what to send by these (receipts, file links), and
//! servers send PEP notifications only to clients whose caps ask for them
//! (`…+notify`). A feature goes in the table when its handler lands, and
//! `every_feature_has_a_handler` in the worker's tests checks each one.

use std::sync::OnceLock;

use tokio_xmpp::parsers::caps::{self, Caps};
use tokio_xmpp::parsers::disco::{DiscoInfoResult, Identity};
use tokio_xmpp::parsers::hashes::Algo;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::version::VersionResult;

/// The URI naming Tern in caps (XEP-0115 §4: the application's home).
pub const NODE: &str = env!("CARGO_PKG_REPOSITORY");

/// Every feature Tern implements, by namespace.
pub const FEATURES: &[&str] = &[
    ns::DISCO_INFO,
    ns::CAPS,
    ns::PING,
    ns::VERSION,
    // Delivery receipts: asked for on what we send, sent for what we receive.
    ns::RECEIPTS,
    // Files shared as a link in the body and as out-of-band data.
    ns::OOB,
    // Group chats, and our room bookmarks' changes pushed to us (XEP-0402 §3.3).
    ns::MUC,
    "urn:xmpp:bookmarks:1+notify",
];

/// Our disco#info, for `node` (none, or our caps `node#ver`).
pub fn disco_info(node: Option<String>) -> DiscoInfoResult {
    DiscoInfoResult {
        node,
        identities: vec![Identity::new("client", "pc", "en", "Tern")],
        features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
        extensions: vec![],
    }
}

/// The caps `ver` of our disco#info (SHA-1, as XEP-0115 §5 requires), computed once.
pub fn ver() -> &'static [u8] {
    static VER: OnceLock<Vec<u8>> = OnceLock::new();
    VER.get_or_init(|| {
        let input = caps::compute_disco(&disco_info(None));
        caps::hash_caps(&input, Algo::Sha_1)
            .map(|h| h.hash)
            .unwrap_or_default()
    })
}

/// The `<c/>` element our presence carries.
pub fn presence_caps() -> Caps {
    Caps {
        ext: None,
        node: NODE.to_owned(),
        hash: Algo::Sha_1,
        ver: ver().to_vec(),
    }
}

/// Our caps node as others ask for it (`node#ver`, XEP-0115 §6.2), made once.
pub fn caps_node() -> &'static str {
    static NODE_VER: OnceLock<String> = OnceLock::new();
    NODE_VER.get_or_init(|| {
        use base64::Engine;
        format!(
            "{NODE}#{}",
            base64::engine::general_purpose::STANDARD.encode(ver())
        )
    })
}

/// Whether a disco#info `node` asks about us: none, or our caps node.
pub fn is_our_node(node: Option<&str>) -> bool {
    node.is_none_or(|node| node == caps_node())
}

/// Our answer to a software version query; the OS only when the user allows it.
pub fn version(share_os: bool) -> VersionResult {
    VersionResult {
        name: "Tern".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        os: share_os.then(|| os_name().to_owned()),
    }
}

/// The system's family, not its version or machine name.
fn os_name() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "windows" => "Windows",
        "macos" => "macOS",
        "freebsd" => "FreeBSD",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// XEP-0115 §5.2's worked example, through the same hashing we use.
    #[test]
    fn ver_matches_the_xep_s_worked_example() {
        let exodus = DiscoInfoResult {
            node: None,
            identities: vec![Identity::new("client", "pc", "", "Exodus 0.9.1")],
            features: [
                "http://jabber.org/protocol/caps",
                "http://jabber.org/protocol/disco#info",
                "http://jabber.org/protocol/disco#items",
                "http://jabber.org/protocol/muc",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            extensions: vec![],
        };
        let hash = caps::hash_caps(&caps::compute_disco(&exodus), Algo::Sha_1).unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(hash.hash),
            "QgayPKawpkPSDYmwT/WM94uAlu0="
        );
    }

    #[test]
    fn our_ver_is_the_hash_of_what_we_answer() {
        let hash = caps::hash_caps(&caps::compute_disco(&disco_info(None)), Algo::Sha_1).unwrap();
        assert_eq!(ver(), hash.hash.as_slice());
        assert_eq!(ver().len(), 20);
        let caps = presence_caps();
        let asked = format!(
            "{}#{}",
            caps.node,
            base64::engine::general_purpose::STANDARD.encode(&caps.ver)
        );
        assert_eq!(asked, caps_node(), "what a client builds from our presence");
        assert!(is_our_node(Some(&asked)));
        assert!(is_our_node(None));
        assert!(!is_our_node(Some("https://other.example#abc=")));
        let mut sorted = FEATURES.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), FEATURES.len(), "no feature twice");
    }

    #[test]
    fn the_os_is_shared_only_when_allowed() {
        assert_eq!(version(false).os, None);
        assert!(version(true).os.is_some());
        assert_eq!(version(true).name, "Tern");
    }
}
