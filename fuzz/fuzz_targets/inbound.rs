//! Stanzas from the network through the worker's inbound path.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    tern::fuzzing::inbound(dir.path(), data);
});
