//! Simulated time and randomness, as every layer sees them: the tick, the epoch every run
//! starts at, and the seeded RNG stream of each component of a run.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// The RNG stream of one component of a run. Streams are derived by hashing, so adding a
/// component never reshuffles another's choices.
pub fn stream(seed: u64, component: &str) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(component.as_bytes());
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

/// The instant every simulation starts at, in seconds after the Unix epoch, so nothing of
/// the real date leaks in.
pub const EPOCH_SECS: u64 = 1_700_000_000;
/// How far simulated time moves each step.
pub const TICK: Duration = Duration::from_millis(1);
