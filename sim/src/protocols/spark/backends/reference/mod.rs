//! `spark/reference`: edge nodes that keep spark stores, and their mutants.
//!
//! # Design
//!
//! Every server host is an edge node. A client sends an invocation (a flare's calls) to a
//! node over turmoil TCP; the node runs one invocation at a time, so each is atomic. It
//! runs the calls on a copy of its store, reading its host's clock (`node.clock`) for every
//! call, then writes the whole store to its disk, syncs, and only then makes the copy
//! current and answers: a crash before the sync leaves no trace of the invocation, a crash
//! after it leaves all of it. A restarted node reads its store back from the disk.
//!
//! Deadlines are instants of the storing node's clock; an entry is live while the clock is
//! before its deadline. `pull` asks the origin node over the network for the keys' entries
//! with the time they have left, and stores them with deadlines on its own clock; an origin
//! that does not answer in time makes the pull answer `Internal` (-6).
//!
//! Answers travel as the host ABI returns them: `get` a payload of the remaining TTL as 4
//! little-endian bytes then the value (empty for none), `list` a JSON array, `set` and
//! `pull` their codes. The client reads them as the SDK does.
//!
//! # Mutants
//!
//! The same code with one planted bug, chosen by [`Bug`].

use squall_models::spark::Params;
use std::time::Duration;

use crate::protocols::spark::backends::{SparkBackend, SparkClient};
use crate::world::{Node, Software};

mod client;
mod edge;
mod store;
mod wire;

/// A planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bug {
    /// Deadlines in whole seconds of the clock, expired only once `now > deadline`: an
    /// entry lives up to a second too long, and reads 0 (no expiry) in its last second.
    ExpiryOffByOne,
    /// `get` reports the TTL the entry was set with.
    TtlOriginal,
    /// The write counter is the node's, not the invocation's.
    WriteLimitNotReset,
    /// The pull limit is checked with `>`: one pull too many runs.
    SecondPull,
    /// Writes are answered before the store is synced; the disk syncs once a second.
    LostWrite,
    /// A pull stores what it copies without its deadline: migrated entries never expire.
    PullForever,
    /// A pull stores each copied entry under the next key it named (an off-by-one zip).
    PullKeyShift,
}

impl Bug {
    /// Whether the node syncs its store on a timer rather than before it answers.
    fn flushes(self) -> bool {
        self == Bug::LostWrite
    }

    /// How many pulls an invocation may make, of the `pulls` the limit allows.
    fn pull_limit(self, pulls: u32) -> u32 {
        match self {
            Bug::SecondPull => pulls + 1,
            _ => pulls,
        }
    }

    /// The key a pulled entry of `key` lands under, if the bug moves it: the next key the
    /// pull named (an off-by-one zip).
    fn pull_key(self, keys: &[String], key: &str) -> Option<String> {
        let i = keys.iter().position(|k| k == key)?;
        (self == Bug::PullKeyShift).then(|| keys[(i + 1) % keys.len()].clone())
    }

    /// The expiry-off-by-one mutant's deadline: whole seconds.
    fn deadline(self, now: Duration, ttl: u32) -> Option<Duration> {
        (self == Bug::ExpiryOffByOne).then(|| Duration::from_secs(now.as_secs() + ttl as u64))
    }

    /// The expiry-off-by-one mutant's liveness: whole seconds compared with `<=`.
    fn live(self, now: Duration, deadline: Duration) -> Option<bool> {
        (self == Bug::ExpiryOffByOne).then_some(now.as_secs() <= deadline.as_secs())
    }

    /// The remaining TTL `get` reports under the bug: the original TTL, or whole seconds.
    fn left(self, ttl: u32, now: Duration, deadline: Duration) -> Option<u32> {
        match self {
            Bug::TtlOriginal => Some(ttl),
            Bug::ExpiryOffByOne => Some((deadline.as_secs() - now.as_secs()) as u32),
            _ => None,
        }
    }

    pub const ALL: [Bug; 7] = [
        Bug::ExpiryOffByOne,
        Bug::TtlOriginal,
        Bug::WriteLimitNotReset,
        Bug::SecondPull,
        Bug::LostWrite,
        Bug::PullForever,
        Bug::PullKeyShift,
    ];

    /// The backend's name on the command line, and its bug in one line.
    fn named(self) -> (&'static str, &'static str) {
        match self {
            Bug::ExpiryOffByOne => (
                "spark/mutant-expiry-off-by-one",
                "deadlines kept in whole seconds and compared with >: entries live up to a second past their TTL",
            ),
            Bug::TtlOriginal => (
                "spark/mutant-ttl-original",
                "get reports the TTL the entry was set with, not the remaining one",
            ),
            Bug::WriteLimitNotReset => (
                "spark/mutant-write-limit-not-reset",
                "the per-invocation write counter is not reset between invocations",
            ),
            Bug::SecondPull => (
                "spark/mutant-second-pull",
                "the pull limit is checked with > instead of >=: a second pull in one invocation runs",
            ),
            Bug::LostWrite => (
                "spark/mutant-lost-write",
                "writes acknowledged before the store is synced; the disk syncs once a second",
            ),
            Bug::PullForever => (
                "spark/mutant-pull-forever",
                "a pull drops the deadlines of what it copies: migrated entries never expire",
            ),
            Bug::PullKeyShift => (
                "spark/mutant-pull-key-shift",
                "a pull stores each copied entry under the next key it named",
            ),
        }
    }

    /// The backend's name on the command line.
    pub fn backend(self) -> &'static str {
        self.named().0
    }

    /// The bug, in one line.
    pub fn about(self) -> &'static str {
        self.named().1
    }
}

/// The reference backend, or with `bug` one of its mutants, with the host's parameters.
#[derive(Clone, Debug)]
pub struct Reference {
    pub bug: Option<Bug>,
    pub params: Params,
}

impl SparkBackend for Reference {
    fn serve(&self, node: Node) -> Software {
        Box::pin(edge::serve(node, self.params.clone(), self.bug))
    }

    fn client(&self, node: Node) -> Box<dyn SparkClient> {
        Box::new(client::Client::new(node))
    }
}
