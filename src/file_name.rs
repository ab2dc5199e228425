//! Names for files that come from others (a link, a peer's upload): safe to
//! create in any folder, on any platform, and not misleading to read.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// A file name for what `url` points at: its last path segment, decoded and
/// made safe (no separators, `..`, control or reserved characters).
pub fn file_name_from_url(url: &str) -> String {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    safe_file_name(&decoded)
}

/// `raw` as a file name that cannot leave its folder or surprise the user.
pub fn safe_file_name(raw: &str) -> String {
    // Separators of every platform, whatever this one is. Format characters
    // go: a right-to-left override shows "invoice\u{202E}fdp.exe" as
    // "invoiceexe.pdf", and zero-width ones make two names look the same.
    let flat: String = raw
        .chars()
        .filter(|c| c.general_category() != GeneralCategory::Format)
        // Control characters too: sanitize-filename leaves DEL (U+007F) in.
        .map(|c| {
            if matches!(c, '/' | '\\') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let options = sanitize_filename::Options {
        windows: true,
        truncate: true,
        replacement: "_",
    };
    // No hidden files, and nothing that is only dots. Nor a trailing dot or
    // space, which Windows drops (so the file is not what was shown):
    // sanitize-filename replaces those, but its cut at 255 bytes can leave one.
    // Trimming can in turn uncover what it refuses (`..lpt1` is the printer
    // port `lpt1`), so the two run until neither changes anything.
    let mut name = flat;
    for _ in 0..8 {
        let sanitized = sanitize_filename::sanitize_with_options(&name, options.clone());
        let trimmed = sanitized
            .trim_matches(|c: char| c == '.' || c.is_whitespace())
            .to_string();
        if trimmed == name {
            break;
        }
        name = trimmed;
    }
    // What is left of `..` or `CON` says nothing: name it plainly.
    if !name.chars().any(char::is_alphanumeric) {
        "download".to_string()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_in_their_folder() {
        for (raw, expected) in [
            ("../../.bashrc", "_.._.bashrc"),
            ("..", "download"),
            ("", "download"),
            ("a/b\\c.txt", "a_b_c.txt"),
            ("photo.jpg", "photo.jpg"),
            ("CON", "download"),
            ("bell\u{7}.png", "bell_.png"),
            ("del\u{7f}.txt", "del_.txt"),
            ("  .hidden", "hidden"),
            ("..lpt1", "download"),
            ("..con.", "con_"),
            (" . .x. ", "x_"),
            ("c1\u{85}.txt", "c1_.txt"),
            ("图片 1.png", "图片 1.png"),
            ("invoice\u{202E}fdp.exe", "invoicefdp.exe"),
            ("a\u{2066}b\u{2069}\u{200F}.txt", "ab.txt"),
            ("pay\u{200B}pal\u{FEFF}\u{2060}.html", "paypal.html"),
            ("\u{202E}\u{200D}", "download"),
        ] {
            let name = safe_file_name(raw);
            assert_eq!(name, expected, "{raw:?}");
            assert!(!name.contains(['/', '\\']) && !name.starts_with('.'));
            assert!(
                !name
                    .chars()
                    .any(|c| c.general_category() == GeneralCategory::Format)
            );
        }
        assert!(safe_file_name(&"x".repeat(1000)).len() <= 255);
    }

    /// Found by the fuzzer: cut at 255 bytes, a long name ended in a dot,
    /// which Windows drops (and which a second pass turned into `_`).
    #[test]
    fn a_long_name_cut_short_does_not_end_in_a_dot() {
        for raw in [
            format!("{}.{}", "x".repeat(254), "xg"),
            format!("{} .png", "y".repeat(253)),
        ] {
            let name = safe_file_name(&raw);
            assert!(!name.ends_with(['.', ' ']), "{name:?}");
            assert!(name.len() <= 255);
            assert_eq!(safe_file_name(&name), name, "not stable: {raw:?}");
        }
    }

    #[test]
    fn names_come_from_the_url_path() {
        assert_eq!(
            file_name_from_url("https://h/share/abc/My%20Photo.jpg?x=1#y"),
            "My Photo.jpg"
        );
        assert_eq!(
            file_name_from_url("https://h/share/%2e%2e%2F%2e%2e%2Fetc%2Fpasswd"),
            "_.._etc_passwd"
        );
        assert_eq!(file_name_from_url("https://h/"), "download");
    }
}
