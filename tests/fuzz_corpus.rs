//! Replays every fuzz input kept under `fuzz/` (the corpus the fuzzer grew,
//! and each input that once crashed a target) through the same checks the
//! fuzz targets run, so an ordinary `cargo test` on stable guards them all.

#![allow(clippy::unwrap_used)] // a test: failing loudly is the point

use std::path::{Path, PathBuf};

/// The inputs of `target`: its corpus and its regressions.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .filter_map(|kind| std::fs::read_dir(fuzz.join(kind).join(target)).ok())
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    inputs.sort();
    inputs
}

fn replay(target: &str, check: impl Fn(&Path, &[u8])) {
    let inputs = inputs(target);
    // The hand-written seeds alone are more than this: an empty list means the
    // corpus went missing, not that there is nothing to check.
    assert!(inputs.len() >= 3, "{target}: only {} inputs", inputs.len());
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(dir.path(), &data)));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
    }
    println!("{target}: {} inputs replayed", inputs.len());
}

#[test]
fn inbound_corpus() {
    replay("inbound", tern::fuzzing::inbound);
}

#[test]
fn file_name_corpus() {
    replay("file_name", |_, data| tern::fuzzing::file_name(data));
}

#[test]
fn xmpp_uri_corpus() {
    replay("xmpp_uri", |_, data| tern::fuzzing::xmpp_uri(data));
}

#[test]
fn config_corpus() {
    replay("config", |_, data| tern::fuzzing::config(data));
}
