//! What a host's clock read while an operation ran: node-local time windows for models that
//! take time as an argument (TTLs, leases).
//!
//! A backend reads its host's [`Clock`](crate::world::Clock): simulated time plus an offset
//! that clock faults move. The checker knows the faults (the scenario's schedule) and the
//! instants an operation was called and answered, so it can bound what the serving host's
//! clock read at any instant of the operation: the least and the most of `s + offset(s)`
//! over the operation's span, and the most it had read by the operation's end (more than
//! the span's most after the clock was set back). This holds under jumps either way and
//! needs nothing from the backend, which may be the one lying about time.
//!
//! Hosts see simulated time in steps of [`TICK`]: a fault takes effect at the step it falls
//! in, and an event's recorded instant may differ by a step from the instant a server
//! handled it. The span is widened by [`SLACK`] on each side and so is the window, which
//! keeps it sound at a cost of milliseconds against TTLs of seconds.

use squall_models::spark::{Instant, Window};
use std::collections::BTreeMap;

use crate::faults::{Fault, Schedule};
use crate::history::Nanos;
use crate::time::TICK;

/// How far spans and windows are widened: a step of recording, a step of fault timing and
/// one to spare.
pub const SLACK: Instant = 3 * TICK.as_nanos() as Instant;

/// Every host's clock jumps, in order.
#[derive(Clone, Debug, Default)]
pub struct Clocks {
    /// Host → (simulated instant, jump in nanoseconds).
    jumps: BTreeMap<String, Vec<(Instant, Instant)>>,
}

impl Clocks {
    pub fn new(faults: &Schedule) -> Clocks {
        let mut jumps: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (at, fault) in faults.iter() {
            if let Fault::Clock { host, by } = fault {
                let at = at.as_nanos() as Instant;
                jumps
                    .entry(host.clone())
                    .or_default()
                    .push((at, *by as Instant));
            }
        }
        Clocks { jumps }
    }

    /// The window of `host`'s clock over simulated instants `[from, to]`.
    pub fn window(&self, host: &str, from: Nanos, to: Nanos) -> Window {
        let jumps = self.jumps.get(host).map_or(&[][..], Vec::as_slice);
        let (from, to) = (from as Instant - SLACK, to as Instant + SLACK);
        // Between jumps the clock only rises: the least is at the start or just after a
        // jump, the most at the end or just before one.
        let offset = |s: Instant| {
            jumps
                .iter()
                .filter(|(at, _)| *at <= s)
                .map(|(_, by)| by)
                .sum::<Instant>()
        };
        let local = |s: Instant| s + offset(s);
        let before = |at: Instant| at + offset(at - 1);
        let inside = jumps
            .iter()
            .map(|(at, _)| *at)
            .filter(|at| (from + 1..=to).contains(at));
        let least = inside.clone().map(local).fold(local(from), Instant::min);
        let most = inside.map(before).fold(local(to), Instant::max);
        let earlier = jumps.iter().map(|(at, _)| *at).filter(|at| *at <= to);
        let peak = earlier.map(before).fold(most, Instant::max);
        // A host's clock never reads before the start of the run.
        Window {
            from: (least - SLACK).max(0),
            to: (most + SLACK).max(0),
            peak: (peak + SLACK).max(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: Instant = 1_000_000_000;

    fn clocks(jumps: &[(u64, i128)]) -> Clocks {
        let mut s = Schedule::default();
        for &(at, by) in jumps {
            let host = "server-1".to_string();
            s.push(
                Duration::from_secs(at),
                Fault::Clock {
                    host,
                    by: by * S as i128,
                },
            );
        }
        Clocks::new(&s)
    }

    #[test]
    fn no_jumps_widen_by_slack_only() {
        let w = clocks(&[]).window("server-1", 5 * S as u64, 6 * S as u64);
        assert_eq!(
            (w.from, w.to, w.peak),
            (5 * S - 2 * SLACK, 6 * S + 2 * SLACK, 6 * S + 2 * SLACK)
        );
    }

    #[test]
    fn a_backward_jump_inside_the_span_lowers_the_least_and_keeps_the_peak() {
        let w = clocks(&[(5, -3)]).window("server-1", 4 * S as u64, 6 * S as u64);
        assert_eq!(w.from, 2 * S - SLACK);
        assert_eq!(w.to, 5 * S + SLACK);
        // A span after the jump still knows the clock read 5s once.
        let later = clocks(&[(5, -3)]).window("server-1", 7 * S as u64, 7 * S as u64);
        assert_eq!(later.to, 4 * S + 2 * SLACK);
        assert_eq!(later.peak, 5 * S + SLACK);
    }

    #[test]
    fn a_forward_jump_inside_the_span_raises_the_most() {
        let w = clocks(&[(5, 10)]).window("server-1", 4 * S as u64, 6 * S as u64);
        assert_eq!((w.from, w.to), (4 * S - 2 * SLACK, 16 * S + 2 * SLACK));
    }

    #[test]
    fn other_hosts_are_unmoved_and_the_clock_never_reads_below_zero() {
        let c = clocks(&[(0, -10)]);
        assert_eq!(c.window("server-2", 0, 0).from, 0);
        assert_eq!(c.window("server-1", S as u64, S as u64).to, 0);
    }
}
