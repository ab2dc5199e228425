//! Stanzas from the network through the worker's inbound path.
#![no_main]

use std::sync::OnceLock;

/// One store for the whole run, emptied before each input.
static STORE: OnceLock<(tempfile::TempDir, tern::store::Store)> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (_, store) = STORE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = tern::store::Store::open(dir.path()).expect("a store");
        (dir, store)
    });
    tern::fuzzing::inbound_in(store, data);
});
