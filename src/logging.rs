//! Where Tern's log goes: stderr, and for the window a daily file in the profile.
//!
//! At the default level neither passwords nor message bodies are logged;
//! `--verbose` adds protocol detail.

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{self, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// Days of log files kept in the profile.
pub const LOG_DAYS: usize = 7;

/// Installs the global logger: stderr (coloured only on a terminal) and, when
/// `log_dir` is given, a daily file there (the last [`LOG_DAYS`] kept). The
/// guard flushes the file when dropped.
pub fn init(verbose: bool, log_dir: Option<&Path>) -> Option<WorkerGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let file = log_dir.and_then(|dir| {
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("tern")
            .filename_suffix("log")
            .max_log_files(LOG_DAYS)
            .build(dir)
            .map_err(|e| eprintln!("tern: no log file in {}: {e}", dir.display()))
            .ok()
    });
    let (file_layer, guard) = match file {
        Some(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (Some(file_layer(writer)), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter(verbose))
        .with(
            fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr),
        )
        .with(file_layer)
        .init();
    guard
}

fn filter(verbose: bool) -> EnvFilter {
    // i18n_embed logs an error for the POSIX "C" locale, which is a normal setting.
    let default = if verbose {
        "tern=debug,tokio_xmpp=debug,warn,i18n_embed::requester=off"
    } else {
        "tern=info,warn,i18n_embed::requester=off"
    };
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// The log file's layer: plain text, whatever the terminal layer does.
fn file_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fmt::layer()
        .with_ansi(false)
        .fmt_fields(FileFields::default())
        .with_writer(writer)
}

/// Formats span fields for the log file exactly as [`DefaultFields`] does, but
/// as a type of its own. Works around tracing-subscriber 0.3 caching a span's
/// formatted fields per field-formatter *type* (tokio-rs/tracing#1817): with
/// `DefaultFields` in both layers, the file reused the colour codes the
/// terminal layer had put around every span field (`account=…`). Tested below.
#[derive(Default)]
struct FileFields(DefaultFields);

impl<'writer> FormatFields<'writer> for FileFields {
    fn format_fields<R: RecordFields>(
        &self,
        writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// Logs one event inside a span with a field, as the worker does.
    fn log_in_a_span() {
        let span = tracing::info_span!("worker", account = %"alice@example.org");
        span.in_scope(|| tracing::info!("signed in"));
    }

    #[test]
    fn the_file_has_no_colour_codes_while_the_terminal_is_coloured() {
        let terminal = Buffer::default();
        let file = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(fmt::layer().with_ansi(true).with_writer(terminal.clone()))
            .with(file_layer(file.clone()));
        tracing::subscriber::with_default(subscriber, log_in_a_span);
        assert!(terminal.text().contains('\u{1b}'), "{:?}", terminal.text());
        let text = file.text();
        assert!(
            text.contains("worker{account=alice@example.org}: tern::logging::tests: signed in"),
            "{text:?}"
        );
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }

    /// The dependency's behaviour the workaround exists for: a second plain
    /// layer with the default field formatter gets the first one's colours. If
    /// this starts failing, tracing-subscriber fixed it and `FileFields` can go.
    #[test]
    fn without_the_workaround_the_file_would_get_colour_codes() {
        let file = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(fmt::layer().with_ansi(true).with_writer(Buffer::default()))
            .with(fmt::layer().with_ansi(false).with_writer(file.clone()));
        tracing::subscriber::with_default(subscriber, log_in_a_span);
        assert!(file.text().contains('\u{1b}'), "{:?}", file.text());
    }
}
