//! `kv-leader`: a small KV compare-and-swap store with watch streams, written to be held by
//! squall to its `kv` and `watch` models. It is not squall's reference design; it is what a
//! team might write as a test double or a first version.
//!
//! # Design
//!
//! - **One leader.** Server host `servers[0]` holds the whole bucket in memory
//!   ([`store`]) and answers everything; the other server hosts run nothing. No
//!   replication and no disk: a crash of the leader loses the bucket, and the backend says
//!   so ([`KvBackend::lacks`]).
//! - **JSON lines over TCP** ([`wire`]): one JSON value a line, each line in one write.
//! - **Revisions** are bucket-wide: every write (put, tombstone, delete or purge marker)
//!   takes the next one. A compare-and-swap compares against the key's last write of any
//!   kind; a key never written has revision 0.
//! - **Retries that never write twice.** A request carries the client's id and a sequence number. The
//!   client waits a while for the answer, then resends on a fresh connection (a partition
//!   stalls a turmoil TCP connection for good); the leader answers a retry with the first
//!   answer. A call that never got an answer is an unknown outcome
//!   (`KvError::Failed`); one whose request never left is `KvError::NotConnected`.
//! - **Watches** have a connection each: a start (the last write of every key in scope, or
//!   everything kept after a cursor), then every write as it happens, with beats when
//!   idle. A client whose stream breaks or goes quiet resumes from the last revision it
//!   saw, so its caller sees one unbroken stream, or `CursorExpired` once retention
//!   dropped a write the stream needs.
//! - **Retention** ([`Retention`]): the last `history` writes of each key, less those
//!   older than `max_age` by the leader's clock (`node.clock`); a purge keeps only its
//!   marker; a write that would pass `max_bytes` is refused.
//!
//! [`Leader::with_bug`] plants a bug, for showing that squall finds it.
//!
//! # Running it
//!
//! `cargo test -p kv-leader` runs squall's shipped `kv` and `watch` scenarios against it
//! (`tests/scenarios.rs`), skipping those that crash servers or inject message faults,
//! which it cannot take, and checks that squall catches the planted bug.

use squall::protocol::Capability;
use squall::protocols::kv::{KvBackend, KvClient, KvWatchBackend, KvWatchClient};
use squall::world::{Node, Software};
use squall_models::watch::Retention;
use std::time::Duration;

mod client;
mod server;
pub mod store;
pub mod wire;

pub use client::Client;

/// The backend: how to run its servers and make its clients.
#[derive(Clone, Copy, Debug, Default)]
pub struct Leader {
    retention: Retention,
    bug: Option<Bug>,
}

/// A bug to plant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// `keys` and `scan` list a key whose value is the empty-value tombstone that
    /// `delete_with_version` writes, as a key holding `""`. `get` hides it, as it should;
    /// the listings were written apart and forgot to. squall's linearizability check
    /// catches it on `scenarios/kv/no-faults.toml` from seed 1.
    ListsTombstones,
}

impl Leader {
    /// A bucket that keeps what `retention` says.
    pub fn new(retention: Retention) -> Leader {
        Leader {
            retention,
            bug: None,
        }
    }

    /// The same, with `bug` planted.
    pub fn with_bug(self, bug: Bug) -> Leader {
        Leader {
            bug: Some(bug),
            ..self
        }
    }
}

impl KvBackend for Leader {
    fn serve(&self, node: Node) -> Software {
        Box::pin(server::serve(node, self.retention, self.bug))
    }

    fn client(&self, node: Node) -> Box<dyn KvClient> {
        Box::new(Client::new(node))
    }

    fn lacks(&self) -> Vec<(Capability, &'static str)> {
        vec![
            (
                Capability::Durable,
                "the leader keeps the bucket in memory only: a crash loses it",
            ),
            (
                Capability::Frames,
                "it speaks JSON lines over plain TCP, not squall's message transport",
            ),
        ]
    }
}

impl KvWatchBackend for Leader {
    fn watch_client(&self, node: Node) -> Box<dyn KvWatchClient> {
        Box::new(Client::new(node))
    }
}

/// How long a host waits on its peer before it tries again or gives up on it: a quarter of
/// the time a caller waits for an answer, so a call has room for a few tries.
fn patience(node: &Node) -> Duration {
    node.timeout / 4
}
