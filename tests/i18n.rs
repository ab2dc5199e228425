//! Every locale has every message of the English file, with the same arguments.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Message id → the `$variables` it uses.
fn messages(path: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some((id, value)) = line.split_once(" = ").filter(|(id, _)| {
            !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        }) {
            current = Some(id.to_string());
            out.entry(id.to_string()).or_default();
            collect_vars(value, out.get_mut(id).unwrap());
        } else if line.starts_with(' ') {
            if let Some(id) = &current {
                collect_vars(line, out.get_mut(id).unwrap());
            }
        } else {
            current = None;
        }
    }
    out
}

fn collect_vars(s: &str, vars: &mut BTreeSet<String>) {
    for part in s.split('$').skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        vars.insert(name);
    }
}

#[test]
fn every_locale_is_complete() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("i18n");
    let english = messages(&root.join("en/tern.ftl"));
    assert!(english.len() > 40, "the English file looks truncated");
    let mut locales = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let lang = dir.file_name().unwrap().to_string_lossy().to_string();
        let file = dir.join("tern.ftl");
        assert!(file.exists(), "{lang} has no tern.ftl");
        let other = messages(&file);
        locales += 1;
        for (id, vars) in &english {
            let theirs = other
                .get(id)
                .unwrap_or_else(|| panic!("{lang} lacks `{id}`"));
            assert_eq!(
                theirs, vars,
                "{lang}: `{id}` uses other arguments than English"
            );
        }
        for id in other.keys() {
            assert!(
                english.contains_key(id),
                "{lang} has `{id}`, which English lacks"
            );
        }
    }
    assert!(locales >= 2, "en and zh-CN at least");
}

#[test]
fn chinese_is_selected_and_falls_back_to_english() {
    tern::i18n::select(&["zh-CN".parse().unwrap()]);
    assert_eq!(tern::fl!("login-submit"), "登录");
    assert_eq!(tern::fl!("tab-contacts", count = 3), "联系人（3）");
    tern::i18n::select(&["fr-FR".parse().unwrap()]);
    assert_eq!(tern::fl!("login-submit"), "Sign in");
    let available = tern::i18n::available();
    let zh: i18n_embed::unic_langid::LanguageIdentifier = "zh-CN".parse().unwrap();
    assert!(available.contains(&zh));
}
