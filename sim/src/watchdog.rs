//! Backends that misbehave must not take the harness down with them: a run that panics is
//! caught with what its panic said, and a run that does not finish within its wall-clock
//! budget is given up on.
//!
//! A simulation steps on one thread, and a host that busy-loops never yields back to
//! turmoil: nothing on that thread can stop it, and simulated time stops with it. So each
//! run gets a thread of its own, and the caller waits for it at most the budget. Past that
//! the run is an `error` and its thread is abandoned, still running, until the process
//! exits: Rust cannot stop a thread from outside. Nothing joins an abandoned thread, so the
//! process still exits when its work is done; until then each abandoned thread holds on to
//! its memory and, if it spins, a core.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Once;
use std::time::Duration;

/// `work()` on a thread of its own, or why there is no result within `budget` of wall-clock
/// time.
pub fn within<T: Send + 'static>(
    budget: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = sync_channel(1);
    std::thread::Builder::new()
        .name("squall-run".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| format!("cannot start a thread for the run: {e}"))?;
    rx.recv_timeout(budget).map_err(|e| match e {
        RecvTimeoutError::Timeout => format!(
            "no verdict within the wall-clock budget of {} (a host busy-loops or blocks its \
             thread, or the run needs a larger --budget); its thread is abandoned",
            humantime::format_duration(budget)
        ),
        RecvTimeoutError::Disconnected => "the run's thread ended without a verdict".into(),
    })
}

thread_local! {
    /// Whether this thread is catching panics with [`catch`].
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// The first panic seen while catching: its message and where.
    static FIRST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// `work()`, or `panicked: MESSAGE at FILE:LINE` for the first panic inside it. A panic in a
/// host's task reaches here as turmoil's "a spawned task panicked"; the hook keeps what the
/// task's own panic said.
pub fn catch<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let others = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.get() {
                return others(info);
            }
            let place = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let first = format!("{}{place}", message(info.payload()));
            FIRST.with_borrow_mut(|f| {
                f.get_or_insert(first);
            });
        }));
    });
    let outer = CATCHING.replace(true);
    FIRST.take();
    let result = catch_unwind(AssertUnwindSafe(work));
    CATCHING.set(outer);
    let first = FIRST.take();
    result.map_err(|panic| format!("panicked: {}", first.unwrap_or_else(|| message(&*panic))))
}

fn message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}
