//! Forwarding weft's log records to the host (logcat, os_log, Python's `logging`).

use std::{
    fmt::Write as _,
    sync::{Arc, OnceLock, RwLock},
};

use tracing::{Event, Level, Metadata, Subscriber, field::Field, subscriber::Interest};
use tracing_subscriber::{Layer, layer::Context, prelude::*};

use crate::WeftError;

/// How severe a log record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something went wrong but weft carries on (a listener raised, a connection dropped).
    Warn,
    /// What happens (connections, refusals).
    Info,
    /// Details for debugging.
    Debug,
    /// Everything, including each message.
    Trace,
}

impl LogLevel {
    fn of(level: Level) -> Self {
        match level {
            Level::ERROR => Self::Error,
            Level::WARN => Self::Warn,
            Level::INFO => Self::Info,
            Level::DEBUG => Self::Debug,
            _ => Self::Trace,
        }
    }
}

/// Receives weft's log records; implemented in the host language.
#[uniffi::export(foreign)]
pub trait LogListener: Send + Sync {
    /// Called for each record at or above the chosen level, on the thread that logged it.
    /// `target` is the Rust module (`weft::net::client`); `message` has the record's fields
    /// after it (`address=…`). Keep it quick; an error it raises is ignored.
    fn on_log(&self, level: LogLevel, target: String, message: String) -> Result<(), WeftError>;
}

/// Where records go now, and from which level.
type Sink = (Arc<dyn LogListener>, LogLevel);

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// Sends weft's log records at `level` or more severe to `listener`, replacing any listener
/// set before. Raises `Internal` if the process already has another `tracing` subscriber
/// (an app that embeds weft from Rust and logs itself).
#[uniffi::export]
pub fn set_log_listener(listener: Arc<dyn LogListener>, level: LogLevel) -> Result<(), WeftError> {
    INSTALLED
        .get_or_init(|| {
            tracing_subscriber::registry()
                .with(Forward)
                .try_init()
                .map_err(|error| format!("weft's logs cannot be forwarded: {error}"))
        })
        .clone()
        .map_err(WeftError::Internal)?;
    *SINK
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((listener, level));
    Ok(())
}

/// Stops forwarding log records.
#[uniffi::export]
pub fn clear_log_listener() {
    *SINK
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
}

/// The layer that hands records to the current sink.
struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    // The level can change at any time: ask on every record rather than once per callsite.
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        let sink = SINK
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sink.as_ref()
            .is_some_and(|(_, level)| LogLevel::of(*metadata.level()) <= *level)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let listener = {
            let sink = SINK
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match sink.as_ref() {
                Some((listener, _)) => listener.clone(),
                None => return,
            }
        };
        let mut text = Text::default();
        event.record(&mut text);
        let metadata = event.metadata();
        let _ = listener.on_log(
            LogLevel::of(*metadata.level()),
            metadata.target().to_owned(),
            text.0,
        );
    }
}

/// A record's message, then its other fields as `name=value`.
#[derive(Default)]
struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let fields = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            self.0.push_str(&fields);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}
