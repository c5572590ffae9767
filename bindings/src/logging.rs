//! The core's `tracing` events, delivered into the app's own logging through
//! [`LogSink`], and on Android and iOS also to Logcat (`android_logger`) and
//! os_log (`oslog`).

use std::fmt::Write as _;
use std::sync::{Arc, Once, RwLock};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn of(level: &tracing::Level) -> LogLevel {
        match *level {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::DEBUG => LogLevel::Debug,
            tracing::Level::TRACE => LogLevel::Trace,
        }
    }
}

/// The app's logger. Called on the core's threads; it should hand the line
/// over and return.
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    fn log(&self, level: LogLevel, target: String, message: String);
}

static SINK: RwLock<Option<(Arc<dyn LogSink>, LogLevel)>> = RwLock::new(None);
static INSTALL: Once = Once::new();

/// Sends the core's logs at `max_level` and above to `sink` (replacing any
/// earlier sink); `None` stops them.
#[uniffi::export]
pub fn set_log_sink(sink: Option<Arc<dyn LogSink>>, max_level: LogLevel) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink.map(|s| (s, max_level));
    install();
}

/// Routes the core's events through [`SinkLayer`] (once per process).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        platform_log::init();
        // An app (or a test) may have installed its own subscriber: keep it.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(SinkLayer));
    });
}

struct SinkLayer;

impl<S: tracing::Subscriber> Layer<S> for SinkLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let level = LogLevel::of(event.metadata().level());
        let guard = SINK.read().unwrap_or_else(|e| e.into_inner());
        let to_sink = guard.as_ref().filter(|(_, max)| level <= *max);
        if to_sink.is_none() && !platform_log::ENABLED {
            return;
        }
        let mut line = Line::default();
        event.record(&mut line);
        let target = event.metadata().target();
        platform_log::emit(level, target, &line.0);
        if let Some((sink, _)) = to_sink {
            sink.log(level, target.to_string(), line.0);
        }
    }
}

/// `message` first, then `key=value` for the other fields.
#[derive(Default)]
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push(' ');
                self.0.push_str(&rest);
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value}", field.name());
        }
    }
}

#[cfg(any(target_os = "android", target_os = "ios"))]
mod platform_log {
    use super::LogLevel;
    pub const ENABLED: bool = true;

    pub fn init() {
        #[cfg(target_os = "android")]
        android_logger::init_once(
            android_logger::Config::default().with_max_level(log::LevelFilter::Info).with_tag("watt"),
        );
        #[cfg(target_os = "ios")]
        let _ = oslog::OsLogger::new("org.watt.core").level_filter(log::LevelFilter::Info).init();
    }

    pub fn emit(level: LogLevel, target: &str, message: &str) {
        let level = match level {
            LogLevel::Error => log::Level::Error,
            LogLevel::Warn => log::Level::Warn,
            LogLevel::Info => log::Level::Info,
            LogLevel::Debug => log::Level::Debug,
            LogLevel::Trace => log::Level::Trace,
        };
        log::log!(target: target, level, "{message}");
    }
}

#[cfg(not(any(target_os = "android", target_os = "ios")))]
mod platform_log {
    use super::LogLevel;
    pub const ENABLED: bool = false;
    pub fn init() {}
    pub fn emit(_: LogLevel, _: &str, _: &str) {}
}
