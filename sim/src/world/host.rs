//! What a backend is given of the host it runs on: its name, peers, disk, clock and RNG.

use rand_chacha::ChaCha8Rng;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::clock::{Clock, HostClocks};
use super::dice;
use super::disk::Disk;
use crate::time::stream;

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
    /// The host's clock: read it, not turmoil's or tokio's time, for the time of day.
    pub clock: Clock,
    seed: u64,
}

impl Node {
    pub(crate) fn new(
        name: &str,
        servers: &[String],
        seed: u64,
        timeout: Duration,
        clocks: &HostClocks,
    ) -> Node {
        Node {
            name: name.to_string(),
            servers: servers.to_vec(),
            disk: Disk::new(stream(seed, &format!("{name}/disk"))),
            timeout,
            clock: clocks.of(name),
            seed,
        }
    }

    /// Whether the BUGGIFY fault point `name` fires now: true now and then on seeds whose
    /// scenario switches `buggify` on, never otherwise (see `world::dice`).
    pub fn buggify(&self, name: &str) -> bool {
        dice::fires(name)
    }

    /// A fresh RNG stream of this host's own for `purpose`: the same seed, host and purpose
    /// give the same stream, whatever else the run holds.
    pub fn rng(&self, purpose: &str) -> ChaCha8Rng {
        stream(self.seed, &format!("{}/{purpose}", self.name))
    }
}
