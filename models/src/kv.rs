//! KV compare-and-swap, as slipstream's `kv.rs` defines it over NATS JetStream KV.
//!
//! Revisions are bucket-wide: every write (put, delete marker, empty-value tombstone, purge)
//! consumes the next one, across all keys.
//!
//! # The model
//!
//! [`KvModel`] judges one answer at a time against a [`Bucket`]: for each key, what its last write
//! left ([`Last`]: a put's value, a delete marker or a purge marker) and what is known of that
//! write's revision ([`Seen`]). A key never written is absent, with revision 0.
//!
//! - `get` shows a put's value; absent keys, markers and empty values (the tombstone
//!   `delete_with_version` writes, and a genuinely stored `""`) all read as `None`.
//!   `Value(Some(""))` is never right.
//! - `entry` shows a put with its revision, empty values included; markers read as `None`.
//! - `keys` / `scan` list the keys (entries) with a non-empty value under `prefix`, sorted.
//!   The model takes `prefix` as a plain string prefix. NATS filters by subject, so there a
//!   prefix behaves like this only when it ends at a token boundary (`"node."`); workloads
//!   must choose such prefixes.
//! - `create` fails with `AlreadyExists` iff the last write is a put (empty values
//!   included); it succeeds over absent keys and markers.
//! - `update` / `delete_with_version` succeed iff `expected` is the revision of the key's
//!   last write, markers included, else `RevisionMismatch`. On an absent key only
//!   `expected == 0` matches: NATS's `Nats-Expected-Last-Subject-Sequence: 0` means "no
//!   message", which is how `create` itself is built. `delete_with_version` writes an
//!   empty-value put.
//! - `delete` writes a delete marker and answers `Deleted(true)`; `Deleted(false)` is accepted
//!   only when the key had no value. `purge` writes a purge marker. Both write even on an
//!   absent key.
//! - `NotConnected` means the request was never sent: accepted for any operation, no
//!   effect. Any other error kind than the one an operation can fail with is rejected.
//!   `Failed` is an unknown outcome (the harness records it so; the model treats it so too).
//!
//! # Revisions, observed and hidden
//!
//! The model is split by key ([`Model::part`]), so it sees one key's writes and cannot check
//! bucket-wide uniqueness or the order of revisions across keys: that is
//! `squall::check::kv`'s job. Per key it requires what a per-key view can: every revision a
//! write returns is above every revision the key has had, i.e. above its last one.
//!
//! Some writes leave their revision unobserved: `delete`, `delete_with_version` and `purge`
//! return none, and a write whose answer was lost returns nothing. The key's last revision is
//! then *hidden*, [`Seen::AtLeast`]`(m)`: the model keeps the least value it can have, one
//! above the bound before the write. From there:
//!
//! - a write returning `r` needs `r > m` (it follows a write whose revision is `>= m`);
//! - an `entry` or `scan` showing the hidden put's value with revision `r` pins it, if
//!   `r >= m`;
//! - an `update` / `delete_with_version` naming `expected >= m` may match (the hidden revision
//!   is unknown), so both answers are accepted: success pins the revision to `expected`,
//!   `RevisionMismatch` leaves it hidden. `expected < m` must be a mismatch.
//!
//! The last rule is where soundness and strength pull apart. A client can only name a
//! revision it saw, and a hidden revision was never seen, so one could demand a mismatch.
//! But that holds only under an assumption on the workload (no guessed revisions), and a
//! correct backend answering a lucky guess would be rejected. The model stays sound instead
//! and leaves the strength to the revision check: a successful conditional write claims
//! that revision `expected` belongs to its key, and that check rejects a revision claimed by
//! two keys — which is exactly the bug (a backend accepting another key's revision) the
//! strict rule would catch.
//!
//! # Unknown outcomes
//!
//! With `ret = None` the model applies the write as if it took effect, whenever it can take
//! effect (a conditional write whose condition may hold is taken to have held). The other
//! branch, no effect, is the same as linearizing the operation after every other one, which
//! a checker may always do for an operation that never completed. The write's revision is
//! hidden, as above. `step` never rejects a `None` answer.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

use crate::{Answer, Model};

/// A bucket-wide revision (a JetStream stream sequence).
pub type Rev = u64;

/// A stored value with the revision that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub value: String,
    pub rev: Rev,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum KvOp {
    /// The value, hiding delete markers and empty-value tombstones.
    Get {
        key: String,
    },
    /// The value with its revision; shows empty-value tombstones, hides markers.
    Entry {
        key: String,
    },
    Put {
        key: String,
        value: String,
    },
    /// Put only if the key has no value: absent, or its last write is a delete or purge marker.
    Create {
        key: String,
        value: String,
    },
    /// Put only if the key's last write has revision `expected`.
    Update {
        key: String,
        value: String,
        expected: Rev,
    },
    /// Write a delete marker.
    Delete {
        key: String,
    },
    /// Write an empty-value tombstone if the key's last write has revision `expected`.
    DeleteWithVersion {
        key: String,
        expected: Rev,
    },
    /// Roll the key's history up into a single purge marker.
    Purge {
        key: String,
    },
    /// Keys under `prefix` that hold a value.
    Keys {
        prefix: String,
    },
    /// Entries under `prefix` that hold a value, in key order.
    Scan {
        prefix: String,
    },
}

/// Errors of slipstream's `KvError` that a model judges, plus the transport ones a client
/// reports.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvError {
    AlreadyExists,
    RevisionMismatch,
    /// The request was never sent: no effect.
    NotConnected,
    /// A watch's cursor needs a write that retention dropped.
    CursorExpired,
    /// Anything else the backend reported; its effect is unknown.
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "ret", content = "of")]
pub enum KvRet {
    Value(Option<String>),
    Entry(Option<Entry>),
    /// A put, create or update took revision `.0`.
    Written(Rev),
    /// A delete or delete_with_version; slipstream's NATS backend always says `true`.
    Deleted(bool),
    Purged,
    Keys(Vec<String>),
    Scan(Vec<(String, Entry)>),
    Err(KvError),
}

/// Short constructors, for tests and hand-written histories.
impl KvOp {
    pub fn get(key: &str) -> KvOp {
        KvOp::Get { key: key.into() }
    }
    pub fn entry(key: &str) -> KvOp {
        KvOp::Entry { key: key.into() }
    }
    pub fn put(key: &str, value: &str) -> KvOp {
        KvOp::Put {
            key: key.into(),
            value: value.into(),
        }
    }
    pub fn create(key: &str, value: &str) -> KvOp {
        KvOp::Create {
            key: key.into(),
            value: value.into(),
        }
    }
    pub fn update(key: &str, value: &str, expected: Rev) -> KvOp {
        KvOp::Update {
            key: key.into(),
            value: value.into(),
            expected,
        }
    }
    pub fn delete(key: &str) -> KvOp {
        KvOp::Delete { key: key.into() }
    }
    pub fn delete_with_version(key: &str, expected: Rev) -> KvOp {
        KvOp::DeleteWithVersion {
            key: key.into(),
            expected,
        }
    }
    pub fn purge(key: &str) -> KvOp {
        KvOp::Purge { key: key.into() }
    }
    pub fn keys(prefix: &str) -> KvOp {
        KvOp::Keys {
            prefix: prefix.into(),
        }
    }
    pub fn scan(prefix: &str) -> KvOp {
        KvOp::Scan {
            prefix: prefix.into(),
        }
    }
}

impl KvOp {
    /// The key a single-key operation touches.
    pub fn key(&self) -> Option<&str> {
        match self {
            KvOp::Get { key }
            | KvOp::Entry { key }
            | KvOp::Put { key, .. }
            | KvOp::Create { key, .. }
            | KvOp::Update { key, .. }
            | KvOp::Delete { key }
            | KvOp::DeleteWithVersion { key, .. }
            | KvOp::Purge { key } => Some(key),
            KvOp::Keys { .. } | KvOp::Scan { .. } => None,
        }
    }

    /// Whether the operation may change the bucket.
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            KvOp::Get { .. } | KvOp::Entry { .. } | KvOp::Keys { .. } | KvOp::Scan { .. }
        )
    }
}

impl Answer for KvRet {
    fn is_ok(&self) -> bool {
        !matches!(self, KvRet::Err(_))
    }
}

impl fmt::Display for KvOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvOp::Get { key } => write!(f, "get {key}"),
            KvOp::Entry { key } => write!(f, "entry {key}"),
            KvOp::Put { key, value } => write!(f, "put {key} {value:?}"),
            KvOp::Create { key, value } => write!(f, "create {key} {value:?}"),
            KvOp::Update {
                key,
                value,
                expected,
            } => write!(f, "update {key} {value:?} @{expected}"),
            KvOp::Delete { key } => write!(f, "delete {key}"),
            KvOp::DeleteWithVersion { key, expected } => write!(f, "delete {key} @{expected}"),
            KvOp::Purge { key } => write!(f, "purge {key}"),
            KvOp::Keys { prefix } => write!(f, "keys {prefix:?}"),
            KvOp::Scan { prefix } => write!(f, "scan {prefix:?}"),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{}", self.value, self.rev)
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::AlreadyExists => write!(f, "already-exists"),
            KvError::RevisionMismatch => write!(f, "revision-mismatch"),
            KvError::NotConnected => write!(f, "not-connected"),
            KvError::CursorExpired => write!(f, "cursor-expired"),
            KvError::Failed(why) => write!(f, "failed {why:?}"),
        }
    }
}

impl fmt::Display for KvRet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvRet::Value(None) | KvRet::Entry(None) => write!(f, "none"),
            KvRet::Value(Some(v)) => write!(f, "{v:?}"),
            KvRet::Entry(Some(e)) => write!(f, "{e}"),
            KvRet::Written(rev) => write!(f, "@{rev}"),
            KvRet::Deleted(b) => write!(f, "deleted {b}"),
            KvRet::Purged => write!(f, "purged"),
            KvRet::Keys(keys) => write!(f, "[{}]", keys.join(" ")),
            KvRet::Scan(entries) => {
                write!(f, "[")?;
                for (i, (k, e)) in entries.iter().enumerate() {
                    write!(f, "{}{k}={e}", if i > 0 { " " } else { "" })?;
                }
                write!(f, "]")
            }
            KvRet::Err(e) => write!(f, "{e}"),
        }
    }
}

/// The KV compare-and-swap model; see the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

/// What the model knows of a bucket: each written key's last write, in key order. A key not
/// in the map was never written.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bucket {
    keys: BTreeMap<String, KeyState>,
}

/// A key's last write and what is known of its revision.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyState {
    pub last: Last,
    pub rev: Seen,
}

/// What a key's last write left.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Last {
    /// A put, possibly of the empty value (a tombstone or a stored `""`).
    Put(String),
    /// A delete marker.
    Deleted,
    /// A purge marker.
    Purged,
}

/// What is known of the revision of a key's last write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Seen {
    /// Exactly this one (0 for a key never written).
    Is(Rev),
    /// Never observed; at least this one.
    AtLeast(Rev),
}

/// The condition a write puts on the key's last write.
enum Guard {
    Always,
    /// No put: absent or a marker (`create`).
    NoPut,
    /// The last write's revision is this one (`update`, `delete_with_version`).
    Rev(Rev),
}

/// A write's answer, as far as the model cares.
enum Outcome {
    /// Never seen: it may have taken effect.
    Unknown,
    /// Took effect; the revision it returned, if it returns one.
    Wrote(Option<Rev>),
    /// The guard failed with this error.
    Refused(KvError),
}

impl Seen {
    /// The least revision the last write can have; a later write's revision is above it.
    fn floor(self) -> Rev {
        match self {
            Seen::Is(r) | Seen::AtLeast(r) => r,
        }
    }

    /// This revision, if the last write can have it.
    fn pin(self, rev: Rev) -> Option<Seen> {
        match self {
            Seen::Is(r) => (r == rev).then_some(self),
            Seen::AtLeast(m) => (rev >= m).then_some(Seen::Is(rev)),
        }
    }

    /// The revision of a write on top of this one that returned `rev` (`None`: no revision
    /// seen), if that is a possible revision.
    fn next(self, rev: Option<Rev>) -> Option<Seen> {
        match rev {
            Some(r) => (r > self.floor()).then_some(Seen::Is(r)),
            None => Some(Seen::AtLeast(self.floor() + 1)),
        }
    }
}

const ABSENT: KeyState = KeyState {
    last: Last::Deleted,
    rev: Seen::Is(0),
};

impl KeyState {
    /// The value `get` shows.
    fn value(&self) -> Option<&str> {
        match &self.last {
            Last::Put(v) if !v.is_empty() => Some(v),
            _ => None,
        }
    }

    /// The entry `entry` shows, if `shown` is it; the state with its revision pinned.
    fn shows(&self, shown: Option<&Entry>) -> Option<KeyState> {
        match (&self.last, shown) {
            (Last::Put(v), Some(e)) if *v == e.value => Some(KeyState {
                last: self.last.clone(),
                rev: self.rev.pin(e.rev)?,
            }),
            (Last::Deleted | Last::Purged, None) => Some(self.clone()),
            _ => None,
        }
    }

    /// The revision after `guard` passed, or `None` if it cannot pass.
    fn pass(&self, guard: &Guard) -> Option<Seen> {
        match guard {
            Guard::Always => Some(self.rev),
            Guard::NoPut => (!matches!(self.last, Last::Put(_))).then_some(self.rev),
            Guard::Rev(expected) => self.rev.pin(*expected),
        }
    }

    /// Whether `guard` can fail with `error`.
    fn refuses(&self, guard: &Guard, error: &KvError) -> bool {
        match (guard, error) {
            (Guard::NoPut, KvError::AlreadyExists) => matches!(self.last, Last::Put(_)),
            (Guard::Rev(expected), KvError::RevisionMismatch) => self.rev != Seen::Is(*expected),
            _ => false,
        }
    }
}

impl Bucket {
    fn key(&self, key: &str) -> &KeyState {
        self.keys.get(key).unwrap_or(&ABSENT)
    }

    /// The keys with a value under `prefix`, in order.
    fn valued<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a KeyState)> {
        self.keys
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .filter(|(_, ks)| ks.value().is_some())
    }

    fn with(&self, key: &str, ks: KeyState) -> Bucket {
        let mut next = self.clone();
        // An absent key stays out of the map, so equal buckets compare equal.
        if ks == ABSENT {
            next.keys.remove(key);
            return next;
        }
        next.keys.insert(key.to_string(), ks);
        next
    }

    /// The bucket after a write of `last` to `key` under `guard` answered `outcome`, or
    /// `None` if that answer is not a right one.
    fn write(&self, key: &str, last: Last, guard: Guard, outcome: Outcome) -> Option<Bucket> {
        let ks = self.key(key);
        match outcome {
            // Taken to have held whenever it can; "no effect" is linearizing it last.
            Outcome::Unknown => Some(match ks.pass(&guard).and_then(|rev| rev.next(None)) {
                Some(rev) => self.with(key, KeyState { last, rev }),
                None => self.clone(),
            }),
            Outcome::Wrote(seen) => {
                let rev = ks.pass(&guard)?.next(seen)?;
                Some(self.with(key, KeyState { last, rev }))
            }
            Outcome::Refused(error) => ks.refuses(&guard, &error).then(|| self.clone()),
        }
    }

    /// The bucket after a read answered `ret` (`None`: never seen), or `None` if that answer
    /// is not a right one.
    fn read(&self, op: &KvOp, ret: Option<&KvRet>) -> Option<Bucket> {
        let Some(ret) = ret else {
            return Some(self.clone());
        };
        match (op, ret) {
            (KvOp::Get { key }, KvRet::Value(v)) => {
                (self.key(key).value() == v.as_deref()).then(|| self.clone())
            }
            (KvOp::Entry { key }, KvRet::Entry(e)) => {
                let ks = self.key(key).shows(e.as_ref())?;
                Some(self.with(key, ks))
            }
            (KvOp::Keys { prefix }, KvRet::Keys(keys)) => self
                .valued(prefix)
                .map(|(k, _)| k)
                .eq(keys.iter())
                .then(|| self.clone()),
            (KvOp::Scan { prefix }, KvRet::Scan(entries)) => {
                let valued: Vec<_> = self.valued(prefix).collect();
                if valued.len() != entries.len() {
                    return None;
                }
                let mut next = self.clone();
                for ((k, ks), (shown_key, e)) in valued.into_iter().zip(entries) {
                    if k != shown_key {
                        return None;
                    }
                    next.keys.insert(k.clone(), ks.shows(Some(e))?);
                }
                Some(next)
            }
            _ => None,
        }
    }
}

impl Model for KvModel {
    type State = Bucket;
    type Op = KvOp;
    type Ret = KvRet;

    fn init(&self) -> Bucket {
        Bucket::default()
    }

    fn step(&self, s: &Bucket, op: &KvOp, ret: Option<&KvRet>) -> Option<Bucket> {
        let ret = match ret {
            Some(KvRet::Err(KvError::NotConnected)) => return Some(s.clone()),
            Some(KvRet::Err(KvError::Failed(_))) => None,
            ret => ret,
        };
        let (key, last, guard) = match op {
            KvOp::Put { key, value } => (key, Last::Put(value.clone()), Guard::Always),
            KvOp::Create { key, value } => (key, Last::Put(value.clone()), Guard::NoPut),
            KvOp::Update {
                key,
                value,
                expected,
            } => (key, Last::Put(value.clone()), Guard::Rev(*expected)),
            KvOp::Delete { key } => (key, Last::Deleted, Guard::Always),
            KvOp::DeleteWithVersion { key, expected } => {
                (key, Last::Put(String::new()), Guard::Rev(*expected))
            }
            KvOp::Purge { key } => (key, Last::Purged, Guard::Always),
            KvOp::Get { .. } | KvOp::Entry { .. } | KvOp::Keys { .. } | KvOp::Scan { .. } => {
                return s.read(op, ret)
            }
        };
        let outcome = match (op, ret) {
            (_, None) => Outcome::Unknown,
            (_, Some(KvRet::Err(e))) => Outcome::Refused(e.clone()),
            (
                KvOp::Put { .. } | KvOp::Create { .. } | KvOp::Update { .. },
                Some(KvRet::Written(rev)),
            ) => Outcome::Wrote(Some(*rev)),
            (KvOp::Delete { .. } | KvOp::DeleteWithVersion { .. }, Some(KvRet::Deleted(said))) => {
                // slipstream's NATS backend always says true; false only fits "nothing to
                // delete", and the write happens all the same.
                if !said && s.key(key).value().is_some() {
                    return None;
                }
                Outcome::Wrote(None)
            }
            (KvOp::Purge { .. }, Some(KvRet::Purged)) => Outcome::Wrote(None),
            _ => return None,
        };
        s.write(key, last, guard, outcome)
    }

    fn part(&self, op: &KvOp) -> Option<String> {
        op.key().map(str::to_string)
    }
}

impl fmt::Debug for Bucket {
    /// `{a="x"@3 b=del@>=5 c=""@>=2}`: short, for counterexamples.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (i, (k, ks)) in self.keys.iter().enumerate() {
            write!(f, "{}{k}={ks:?}", if i > 0 { " " } else { "" })?;
        }
        write!(f, "}}")
    }
}

impl fmt::Debug for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.last {
            Last::Put(v) => write!(f, "{v:?}")?,
            Last::Deleted => write!(f, "del")?,
            Last::Purged => write!(f, "purge")?,
        }
        match self.rev {
            Seen::Is(r) => write!(f, "@{r}"),
            Seen::AtLeast(r) => write!(f, "@>={r}"),
        }
    }
}
