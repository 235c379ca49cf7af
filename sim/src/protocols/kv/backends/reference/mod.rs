//! `kv/reference`: a replicated KV compare-and-swap service that runs inside the simulation,
//! and its mutants.
//!
//! # Design
//!
//! Primary–backup with a fixed primary, `servers[0]`, so a partition never makes a second
//! one. The primary orders writes into a log, gives each the next bucket-wide revision,
//! appends it to its disk and syncs, sends it to the backups, and answers once a majority
//! (itself included) holds it durably. Reads are answered by the primary from the bucket its
//! log builds. A restarted server rebuilds everything from its synced log.
//!
//! Each backup has a replicator on the primary: it probes where the backup's log ends, sends
//! what is missing, and sends an empty append whenever idle, as a heartbeat; when an
//! acknowledgement does not come in time it reconnects (turmoil TCP loses bytes for good
//! across a partition) and probes again. A backup takes an append only at its own end or
//! over records it already holds.
//!
//! Requests carry the client's name and a sequence number. The client resends a request that
//! has no answer after a quarter of `node.timeout`, on a fresh connection, with the same
//! number, until the caller stops waiting; each log record names the request that wrote it,
//! so every replica rebuilds from its log a dedup table that answers a retry with the first
//! answer instead of applying it again. A call whose request never left answers
//! `KvError::NotConnected`.
//!
//! Frames are a `u32` length and a JSON `wire::Msg`; the log on disk is one JSON record a
//! line.
//!
//! Watches stream the primary's log; `server` and `client` say how, and how a watch
//! survives a lost connection.
//!
//! # Mutants
//!
//! The same code with one planted bug, chosen by [`Bug`]; [`Reference::backend`] registers
//! each under its command-line name.

use std::time::Duration;

use squall_models::watch::Retention;

use super::{KvBackend, KvClient, KvWatchBackend, KvWatchClient};
use crate::backend::Backend;
use crate::protocols::kv::Kv;
use crate::protocols::watch::Watches;
use crate::world::{Node, Software};
use std::rc::Rc;

mod bucket;
mod client;
mod server;
mod wire;

#[cfg(test)]
mod tests;

/// A planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bug {
    /// Clients send reads to any server, and backups answer from whatever they have applied.
    StaleRead,
    /// The primary answers a write at once and syncs its disk once a second.
    LostWrite,
    /// A restarted server sets its revision counter from the keys that hold a value,
    /// forgetting revisions taken by markers and tombstones.
    RevisionReset,
    /// `create` takes an empty-value tombstone for an absent key.
    CreateOverTombstone,
    /// The primary has no dedup table: a retried write is applied again.
    DoubleApply,
    /// A compare that expects revision 0 writes without checking, as if 0 meant "no check"
    /// (nats-server #5644: 0 means "the key has no message").
    ZeroSkipsCheck,
    /// A compare holds when the expected revision is at least the key's last, `>=` for `==`.
    AtLeastRevision,
    /// A watch that reconnects loses the first update it gets on the new connection.
    DropOnReconnect,
    /// A watch resumes at its cursor instead of after it: the cursor's write comes twice.
    ResumeAtCursor,
    /// A resume whose cursor needs dropped records streams what is left instead of
    /// answering `CursorExpired`.
    SkipCompacted,
    /// A state sync leaves out keys whose last write is a delete or purge marker.
    RelistNoMarkers,
    /// Watches ignore `max_age`: a state sync shows aged-out writes, a resume needs none.
    IgnoreMaxAge,
    /// A watch trusts its stream: it delivers what comes, unchecked for a lost, repeated or
    /// late message.
    TrustStream,
    /// A resume from a cursor past the last revision streams every write from the last
    /// revision on, as if the cursor were there (etcd #20221).
    FutureCursor,
    /// A watch of an empty prefix list watches every key, as an unfiltered consumer does
    /// (slipstream returns at once instead).
    EmptyWatchesAll,
}

impl Bug {
    pub const ALL: [Bug; 15] = [
        Bug::StaleRead,
        Bug::LostWrite,
        Bug::RevisionReset,
        Bug::CreateOverTombstone,
        Bug::DoubleApply,
        Bug::ZeroSkipsCheck,
        Bug::AtLeastRevision,
        Bug::DropOnReconnect,
        Bug::ResumeAtCursor,
        Bug::SkipCompacted,
        Bug::RelistNoMarkers,
        Bug::IgnoreMaxAge,
        Bug::TrustStream,
        Bug::FutureCursor,
        Bug::EmptyWatchesAll,
    ];

    /// The backend's name on the command line, and its bug in one line.
    fn named(self) -> (&'static str, &'static str) {
        match self {
            Bug::StaleRead => (
                "kv/mutant-stale-read",
                "reads served by any server, backups may lag",
            ),
            Bug::LostWrite => (
                "kv/mutant-lost-write",
                "writes acknowledged before they are durable or replicated",
            ),
            Bug::RevisionReset => (
                "kv/mutant-revision-reset",
                "revision counter restarts from a wrong value after a restart",
            ),
            Bug::CreateOverTombstone => (
                "kv/mutant-create-over-tombstone",
                "create treats an empty-value tombstone as absent",
            ),
            Bug::DoubleApply => (
                "kv/mutant-double-apply",
                "no dedup: a retried timed-out write is applied twice",
            ),
            Bug::ZeroSkipsCheck => (
                "kv/mutant-zero-skips-check",
                "a compare expecting revision 0 writes without checking",
            ),
            Bug::AtLeastRevision => (
                "kv/mutant-at-least-revision",
                "a compare holds for any expected revision at or past the key's last",
            ),
            Bug::DropOnReconnect => (
                "kv/mutant-watch-drop-on-reconnect",
                "a watch loses the first update after it reconnects",
            ),
            Bug::ResumeAtCursor => (
                "kv/mutant-watch-resume-at-cursor",
                "a watch resumes at its cursor instead of after it: a duplicate",
            ),
            Bug::SkipCompacted => (
                "kv/mutant-watch-skip-compacted",
                "a resume past dropped history skips it instead of answering CursorExpired",
            ),
            Bug::RelistNoMarkers => (
                "kv/mutant-watch-relist-no-markers",
                "a state sync leaves out keys whose last write is a delete or purge marker",
            ),
            Bug::IgnoreMaxAge => (
                "kv/mutant-watch-ignore-max-age",
                "watches ignore max_age: a state sync shows writes that aged out",
            ),
            Bug::TrustStream => (
                "kv/mutant-watch-trust-stream",
                "a watch delivers what its stream brings, unchecked for lost, repeated or late messages",
            ),
            Bug::FutureCursor => (
                "kv/mutant-watch-future-cursor",
                "a resume from past the last revision delivers writes at or before its cursor",
            ),
            Bug::EmptyWatchesAll => (
                "kv/mutant-watch-empty-all",
                "a watch of an empty prefix list delivers every key",
            ),
        }
    }

    /// The backend's name on the command line.
    pub fn backend(self) -> &'static str {
        self.named().0
    }

    /// Whether the bug is in watches only, so that the mutant serves only `watch`.
    fn in_watches(self) -> bool {
        self >= Bug::DropOnReconnect
    }
}

/// The reference backend, or with `bug` one of its mutants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reference {
    pub bug: Option<Bug>,
    /// What the bucket keeps for watches to resume from.
    pub retention: Retention,
}

impl From<Bug> for Reference {
    fn from(bug: Bug) -> Reference {
        Reference {
            bug: Some(bug),
            ..Reference::default()
        }
    }
}

impl Reference {
    /// It as a registered backend: it serves `kv`, and `watch` with the scenario's bucket
    /// retention; a watch mutant serves `watch` only.
    pub fn backend(self) -> Backend {
        let backend = Backend::reference(
            "kv/reference",
            "primary-backup, synchronous majority replication, durable log, request dedup",
            self.bug.map(Bug::named),
        );
        let backend = match self.bug.is_some_and(Bug::in_watches) {
            true => backend,
            false => backend.serves::<Kv>(move |_| Rc::new(self)),
        };
        backend.serves::<Watches>(move |s| {
            Rc::new(Reference {
                retention: s.bucket,
                ..self
            })
        })
    }
}

impl KvBackend for Reference {
    fn serve(&self, node: Node) -> Software {
        Box::pin(server::serve(node, self.bug, self.retention))
    }

    fn client(&self, node: Node) -> Box<dyn KvClient> {
        Box::new(client::Client::new(node, self.bug))
    }
}

impl KvWatchBackend for Reference {
    fn watch_client(&self, node: Node) -> Box<dyn KvWatchClient> {
        Box::new(client::Client::new(node, self.bug))
    }
}

/// How long a host waits for a peer's answer before it tries again.
fn retry(node: &Node) -> Duration {
    node.timeout / 4
}
