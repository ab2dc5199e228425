//! Where Tern's log goes: stderr, and for the window a daily file in the profile.
//!
//! At the default level neither passwords nor message bodies are logged;
//! `--verbose` adds protocol detail. At no level is the SASL exchange logged:
//! its messages (a SCRAM proof, or the server's signature, with the salt and
//! iteration count) are enough to guess the password offline.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};

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
    init_with(filter(verbose), log_dir)
}

/// [`init`] with `directives` (as in `RUST_LOG`) instead of the default levels.
pub fn init_with_directives(directives: &str, log_dir: Option<&Path>) -> Option<WorkerGuard> {
    init_with(EnvFilter::new(directives), log_dir)
}

fn init_with(filter: EnvFilter, log_dir: Option<&Path>) -> Option<WorkerGuard> {
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
        .with(filter)
        .with(QuietDuringSasl)
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

/// SASL exchanges under way (several accounts may sign in at once).
static SASL_EXCHANGES: AtomicUsize = AtomicUsize::new(0);

/// While one of these lives, tokio-xmpp logs nothing: it traces every
/// element sent and received (and every token parsed), SASL ones included,
/// and has no way to leave them out.
#[must_use = "the stream is quiet only while this lives"]
pub struct QuietStream(());

/// Silences tokio-xmpp's stream traces until the returned guard is dropped:
/// held around a SASL exchange.
pub fn quiet_stream() -> QuietStream {
    SASL_EXCHANGES.fetch_add(1, Ordering::SeqCst);
    QuietStream(())
}

impl Drop for QuietStream {
    fn drop(&mut self) {
        SASL_EXCHANGES.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Drops tokio-xmpp's events while a [`QuietStream`] lives.
struct QuietDuringSasl;

fn from_the_stream(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("tokio_xmpp")
}

impl<S: Subscriber> Layer<S> for QuietDuringSasl {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        // Decided event by event for the stream's; others always pass.
        if from_the_stream(metadata) {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }

    fn enabled(
        &self,
        metadata: &Metadata<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        !(from_the_stream(metadata) && SASL_EXCHANGES.load(Ordering::SeqCst) > 0)
    }
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

    #[test]
    fn the_stream_is_quiet_while_a_sasl_exchange_runs() {
        let file = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::new("trace"))
            .with(QuietDuringSasl)
            .with(file_layer(file.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "tokio_xmpp::xmlstream::capture", "SEND <stream:stream>");
            {
                let _quiet = quiet_stream();
                tracing::trace!(target: "tokio_xmpp::xmlstream::capture", "SEND <auth>secret</auth>");
                tracing::info!("signing in");
            }
            tracing::trace!(target: "tokio_xmpp::xmlstream::capture", "SEND <iq/>");
        });
        let text = file.text();
        assert!(text.contains("SEND <stream:stream>"), "{text}");
        assert!(text.contains("signing in"), "{text}");
        assert!(text.contains("SEND <iq/>"), "{text}");
        assert!(!text.contains("secret"), "{text}");
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
