//! The `[suspension]` section: the suspension workload's times (defaults shown).
//!
//! ```toml
//! [suspension]
//! lease_ttl = "200ms"   # the lease a claim asks for
//! grace = "100ms"       # how long a rotated-out HMAC key stays valid
//! timeout = "300ms"     # suspension and pending-waitpoint timeouts, from now
//! clock = "1ms"         # resolution of the callers' clocks, which stamp operations
//! ```

use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

use crate::scenario::{Error, Section};

/// The suspension workload's times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuspensionTimes {
    pub lease_ttl: Duration,
    pub grace: Duration,
    pub timeout: Duration,
    pub clock: Duration,
}

impl Default for SuspensionTimes {
    fn default() -> Self {
        SuspensionTimes {
            lease_ttl: Duration::from_millis(200),
            grace: Duration::from_millis(100),
            timeout: Duration::from_millis(300),
            clock: Duration::from_millis(1),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    lease_ttl: Option<Spanned<String>>,
    grace: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    clock: Option<Spanned<String>>,
}

/// Read the `[suspension]` section: every time at least a millisecond.
pub(super) fn read(section: &Section) -> Result<SuspensionTimes, Error> {
    let r: Raw = section.read()?;
    let mut times = SuspensionTimes::default();
    for (name, value, slot) in [
        ("lease_ttl", &r.lease_ttl, &mut times.lease_ttl),
        ("grace", &r.grace, &mut times.grace),
        ("timeout", &r.timeout, &mut times.timeout),
        ("clock", &r.clock, &mut times.clock),
    ] {
        let Some(v) = value else { continue };
        let d = section.duration(name, v)?;
        if d < Duration::from_millis(1) {
            return Err(section.error(v.span(), name, "must be at least 1ms"));
        }
        *slot = d;
    }
    Ok(times)
}
