//! The simulated world: one seed builds a turmoil simulation with server and client hosts,
//! each with its own RNG stream, and drives it while applying the fault schedule.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

mod disk;

pub use disk::Disk;

/// The software a host runs: a future that turmoil polls until it ends or the host crashes.
pub type Software = Pin<Box<dyn Future<Output = turmoil::Result>>>;

/// The port every server host listens on.
pub const PORT: u16 = 7000;

/// What a backend knows of the host it runs on.
#[derive(Clone, Debug)]
pub struct Node {
    /// The host's name, e.g. `server-2` or `client-1`.
    pub name: String,
    /// Every server host, in order; `servers[0]` is `server-1`.
    pub servers: Vec<String>,
    /// The host's disk; it survives crashes (less its unsynced writes).
    pub disk: Disk,
    /// How long a client waits for an answer before it gives up on an operation.
    pub timeout: Duration,
    seed: u64,
}

impl Node {
    pub(crate) fn new(name: &str, servers: &[String], seed: u64, timeout: Duration) -> Node {
        Node {
            name: name.to_string(),
            servers: servers.to_vec(),
            disk: Disk::default(),
            timeout,
            seed,
        }
    }

    /// A fresh RNG stream of this host's own for `purpose`: the same seed, host and purpose
    /// give the same stream, whatever else the run holds.
    pub fn rng(&self, purpose: &str) -> ChaCha8Rng {
        stream(self.seed, &format!("{}/{purpose}", self.name))
    }
}

/// The RNG stream of one component of a run. Streams are derived by hashing, so adding a
/// component never reshuffles another's choices.
pub fn stream(seed: u64, component: &str) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(component.as_bytes());
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}
