//! KV compare-and-swap, as slipstream's `kv.rs` defines it over NATS JetStream KV.
//!
//! Revisions are bucket-wide: every write (put, delete marker, empty-value tombstone, purge)
//! consumes the next one, across all keys.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::Answer;

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

/// Stand-in until the model branch merges.
#[derive(Default)]
pub struct Kv;
impl crate::Model for Kv {
    type State = ();
    type Op = KvOp;
    type Ret = KvRet;
    fn init(&self) {}
    fn step(&self, _: &(), _: &KvOp, _: Option<&KvRet>) -> Option<()> {
        Some(())
    }
}
