//! Forwarding weft's log records to the host (logcat, os_log, Python's `logging`).

use std::{
    fmt::Write as _,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU8, Ordering},
        mpsc::{Receiver, SyncSender, TrySendError, sync_channel},
    },
};

use tracing::{Event, Level, Metadata, Subscriber, field::Field, subscriber::Interest};
use tracing_subscriber::{Layer, layer::Context, prelude::*};

use crate::{WeftError, runtime::lock};

/// How severe a log record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something went wrong but weft carries on (a listener raised, a connection dropped).
    Warn,
    /// What happens (connections, refusals, reconnects).
    Info,
    /// Details for debugging (connections ending, documents let go).
    Debug,
    /// The most detailed records weft has.
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

    /// Its rank for [`LEVEL`]: 1 (errors only) to 5 (everything); 0 is off.
    fn rank(self) -> u8 {
        self as u8 + 1
    }
}

/// Receives weft's log records; implemented in the host language.
#[uniffi::export(foreign)]
pub trait LogListener: Send + Sync {
    /// Called for each record at or above the chosen level, in order, on a logging thread
    /// of weft's (never on the host's main thread, nor on a thread doing weft's work).
    /// `target` is the Rust module (`weft::net::client`); `message` has the record's fields
    /// after it (`url=…`). An error it raises is ignored.
    fn on_log(&self, level: LogLevel, target: String, message: String) -> Result<(), WeftError>;
}

/// Records waiting for the logging thread at most; beyond, new ones are dropped rather than
/// slow weft down behind a slow listener.
const BACKLOG: usize = 1024;

/// The most detailed level forwarded (a [`LogLevel::rank`]); 0 when no listener is set.
static LEVEL: AtomicU8 = AtomicU8::new(0);
static LISTENER: Mutex<Option<Arc<dyn LogListener>>> = Mutex::new(None);
static FORWARDING: OnceLock<Result<SyncSender<Record>, String>> = OnceLock::new();
/// Held by the logging thread while it checks a record against [`LEVEL`] and hands it to the
/// listener, and by [`set_log_listener`] and [`clear_log_listener`] while they change them: a
/// record queued before a change is judged by the new settings, never delivered after the
/// change returns under the old ones.
static DELIVERY: Mutex<()> = Mutex::new(());
/// The logging thread's name, which tells a listener's own call to change the settings.
const LOGGING_THREAD: &str = "weft-log";

struct Record {
    level: LogLevel,
    target: String,
    message: String,
}

/// Sends weft's log records at `level` or more severe to `listener`, replacing any listener
/// set before. Once it returns, no record less severe than `level` reaches a listener, not
/// even one logged before the call. Raises `Internal` if the process already has another
/// `tracing` subscriber (an app that embeds weft from Rust and logs itself).
#[uniffi::export]
pub fn set_log_listener(listener: Arc<dyn LogListener>, level: LogLevel) -> Result<(), WeftError> {
    FORWARDING
        .get_or_init(start_forwarding)
        .as_ref()
        .map_err(|error| WeftError::Internal(error.clone()))?;
    let _settled = wait_for_delivery();
    let previous = lock(&LISTENER).replace(listener);
    LEVEL.store(level.rank(), Ordering::Release);
    drop(previous); // outside the listener's lock: freeing a foreign object calls into the host
    Ok(())
}

/// Stops forwarding log records; once it returns, no listener is called again.
#[uniffi::export]
pub fn clear_log_listener() {
    let _settled = wait_for_delivery();
    LEVEL.store(0, Ordering::Release);
    let previous = lock(&LISTENER).take();
    drop(previous);
}

/// Waits for the record being delivered, if any, and keeps the next one back until the guard
/// is dropped. A listener that changes the settings from `on_log` runs on the logging thread,
/// which holds the lock already.
fn wait_for_delivery() -> Option<MutexGuard<'static, ()>> {
    let on_logging_thread = std::thread::current().name() == Some(LOGGING_THREAD);
    (!on_logging_thread).then(|| lock(&DELIVERY))
}

/// Installs the forwarding layer and starts the thread that calls the listener.
fn start_forwarding() -> Result<SyncSender<Record>, String> {
    let (records, receiver) = sync_channel(BACKLOG);
    tracing_subscriber::registry()
        .with(Forward)
        .try_init()
        .map_err(|error| format!("weft's logs cannot be forwarded: {error}"))?;
    std::thread::Builder::new()
        .name(LOGGING_THREAD.to_owned())
        .spawn(move || deliver(&receiver))
        .map_err(|error| format!("the logging thread could not start: {error}"))?;
    Ok(records)
}

/// The logging thread: one record at a time, to whichever listener is set then. A listener
/// that logs through weft only queues more records here, so it cannot recurse.
fn deliver(records: &Receiver<Record>) {
    for record in records {
        let _delivering = lock(&DELIVERY);
        if record.level.rank() > LEVEL.load(Ordering::Acquire) {
            continue; // queued before the level was lowered
        }
        let listener = lock(&LISTENER).clone();
        if let Some(listener) = listener {
            let _ = listener.on_log(record.level, record.target, record.message);
        }
    }
}

/// The layer that queues records for the logging thread.
struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    // The level can change at any time: ask on every record rather than once per callsite
    // (an atomic load).
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        LogLevel::of(*metadata.level()).rank() <= LEVEL.load(Ordering::Acquire)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let Some(Ok(records)) = FORWARDING.get() else {
            return;
        };
        let mut text = Text::default();
        event.record(&mut text);
        let metadata = event.metadata();
        let record = Record {
            level: LogLevel::of(*metadata.level()),
            target: metadata.target().to_owned(),
            message: text.0,
        };
        match records.try_send(record) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => LEVEL.store(0, Ordering::Release),
        }
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
