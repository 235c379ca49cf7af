//! BUGGIFY, as FoundationDB has it: fault points in a backend's own code. A backend asks
//! [`crate::world::Node::buggify`] at a point where something rare but legal could happen
//! (a reply held back, a connection dropped) and does it when told. Points fire only while
//! a `buggify` fault has switched them on; then each named point is live for the whole
//! run or not at all (a coin toss per seed and name), and a live point fires on one call in
//! ten. Every draw comes from the run's seed, so a run stays a function of it; outside a
//! simulation (live mode) nothing fires.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::BTreeMap;

use super::stream;

thread_local! {
    /// The simulation running on this thread (one a thread, as sweeps run them).
    static RUN: RefCell<Option<Run>> = const { RefCell::new(None) };
}

struct Run {
    seed: u64,
    on: bool,
    /// Whether each point asked so far is live this run.
    live: BTreeMap<String, bool>,
    fires: ChaCha8Rng,
}

/// A run's fault points; off again when dropped.
pub(crate) struct Points;

impl Points {
    pub(crate) fn start(seed: u64) -> Points {
        RUN.set(Some(Run {
            seed,
            on: false,
            live: BTreeMap::new(),
            fires: stream(seed, "buggify"),
        }));
        Points
    }

    /// Switch the points on or off.
    pub(crate) fn switch(&self, on: bool) {
        RUN.with_borrow_mut(|run| run.as_mut().map(|r| r.on = on));
    }
}

impl Drop for Points {
    fn drop(&mut self) {
        RUN.set(None);
    }
}

/// Whether fault point `name` fires now.
pub(crate) fn fires(name: &str) -> bool {
    RUN.with_borrow_mut(|run| {
        let Some(run) = run.as_mut().filter(|r| r.on) else {
            return false;
        };
        let seed = run.seed;
        let live = *(run.live.entry(name.to_string()))
            .or_insert_with(|| stream(seed, &format!("buggify/{name}")).random_bool(0.5));
        live && run.fires.random_bool(0.1)
    })
}
