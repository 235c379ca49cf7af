//! Per-protocol operation generators: how a client draws its next operation from the
//! scenario's mix, and what it remembers from the answers.

use rand::Rng;
use std::collections::BTreeMap;

pub mod kv;
pub mod spark;
pub mod stream;
pub mod suspension;
pub mod watch;

/// A name from `mix`, drawn with the weights given (in name order, so the draw is stable).
pub(crate) fn pick<'a, R: Rng>(mix: &'a BTreeMap<String, u32>, rng: &mut R) -> &'a str {
    let total: u32 = mix.values().sum();
    let mut n = rng.random_range(0..total);
    for (name, &w) in mix {
        if n < w {
            return name;
        }
        n -= w;
    }
    unreachable!("a validated mix has a positive total weight")
}
