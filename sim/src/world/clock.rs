//! Each host's own clock: simulated time plus an offset that clock faults move.
//!
//! turmoil gives every host the same time; real hosts disagree. A backend that reads the
//! time of day (for TTLs, leases, expiry) reads [`Clock::now`], so skew and jumps reach it.
//! Timers (`tokio::time::sleep`) stay on simulated time, as a monotonic clock would.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// The offsets of every host's clock, shared by the world and the hosts.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostClocks(Rc<RefCell<BTreeMap<String, i128>>>);

impl HostClocks {
    /// Move `host`'s clock by `by` nanoseconds (negative: back).
    pub(crate) fn jump(&self, host: &str, by: i128) {
        *self.0.borrow_mut().entry(host.to_string()).or_default() += by;
    }

    pub(crate) fn of(&self, host: &str) -> Clock {
        Clock {
            host: host.to_string(),
            clocks: self.clone(),
        }
    }
}

/// One host's clock.
#[derive(Clone, Debug)]
pub struct Clock {
    host: String,
    clocks: HostClocks,
}

impl Clock {
    /// The host's time of day, as time since the run started; never before the start.
    pub fn now(&self) -> Duration {
        let offset = self.clocks.0.borrow().get(&self.host).copied().unwrap_or(0);
        let sim = turmoil::sim_elapsed().unwrap_or_default().as_nanos() as i128;
        Duration::from_nanos((sim + offset).max(0) as u64)
    }
}
