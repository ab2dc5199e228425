//! See `tern::fuzzing::xmpp_uri`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::xmpp_uri(data));
