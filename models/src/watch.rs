//! KV watch streams, as slipstream's `KvWatcher` defines them over NATS JetStream KV.
//!
//! A watch covers a [`Scope`] of keys: all of them, the keys under one prefix, or under any
//! of several. Prefixes end at a token boundary (`"a."`), as NATS subject filters need.
//!
//! - Without a cursor a watch is a state sync: first the current last write of every key in
//!   scope, delete and purge markers included, one per key, in revision order; then every
//!   later write in scope as it happens.
//! - From cursor `c` a watch delivers exactly the writes in scope with revision above `c`,
//!   in order, or ends with `CursorExpired` once retention has dropped one of them.
//!
//! Writes become [`Update`]s: a put of a value is `Put`, a put of the empty value (the
//! tombstone `delete_with_version` writes) and a delete marker are `Delete`, a purge marker
//! is `Purge`. Every update carries the revision of the write.
//!
//! A bucket keeps the last [`Retention::history`] writes of each key (a purge keeps only
//! its own marker); older writes are dropped, and a cursor that needs one has expired.
//!
//! A watch in a history ([`Watch`]) listens for a while and answers everything it got
//! ([`Watched`]). What it may deliver depends on writes all through that while, so no
//! single linearization point explains it: [`WatchModel`] judges only the KV operations of such
//! a history, and squall's watch checker judges the watches.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

use crate::kv::{Bucket, KvModel, KvOp, KvRet, Rev};
use crate::{Answer, Model};

/// One write as a watch delivers it, as slipstream's `KvUpdate`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Update {
    Put {
        key: String,
        value: String,
        rev: Rev,
    },
    /// A delete marker or an empty-value tombstone.
    Delete {
        key: String,
        rev: Rev,
    },
    Purge {
        key: String,
        rev: Rev,
    },
}

impl Update {
    pub fn key(&self) -> &str {
        match self {
            Update::Put { key, .. } | Update::Delete { key, .. } | Update::Purge { key, .. } => key,
        }
    }

    pub fn rev(&self) -> Rev {
        match self {
            Update::Put { rev, .. } | Update::Delete { rev, .. } | Update::Purge { rev, .. } => {
                *rev
            }
        }
    }
}

/// The keys a watch covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    All,
    Prefix(String),
    Prefixes(Vec<String>),
}

impl Scope {
    pub fn covers(&self, key: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Prefix(p) => key.starts_with(p.as_str()),
            Scope::Prefixes(ps) => ps.iter().any(|p| key.starts_with(p.as_str())),
        }
    }
}

/// What a bucket keeps of its past writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Retention {
    /// The writes kept per key, the last one included (NATS `history`, 1..=64).
    pub history: usize,
    /// Writes older than this are dropped, last ones and markers included (NATS `max_age`).
    pub max_age: Option<Duration>,
    /// The bucket's size cap in bytes (NATS `max_bytes`). A bucket that discards new
    /// writes, as NATS KV buckets do, refuses a write that would pass it: nothing is
    /// dropped.
    pub max_bytes: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            history: 1,
            max_age: None,
            max_bytes: None,
        }
    }
}

/// Listen to `scope` for `listen_ms` of simulated time, from cursor `from` or, without one,
/// from a state sync.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Watch {
    pub scope: Scope,
    pub from: Option<Rev>,
    pub listen_ms: u64,
}

/// How a watch ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// It listened for its whole time.
    Listened,
    /// Retention dropped a write the cursor needed; what came before it holds.
    CursorExpired,
    /// The backend gave up for another reason.
    Failed(String),
}

/// What a watch delivered, in order, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Watched {
    pub updates: Vec<Update>,
    pub end: End,
}

/// An operation of a history that mixes KV operations (writers) and watches (watchers).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchOp {
    Kv(KvOp),
    Watch(Watch),
}

/// The answer to a [`WatchOp`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchRet {
    Kv(KvRet),
    Watched(Watched),
}

impl Answer for WatchRet {
    fn is_ok(&self) -> bool {
        match self {
            WatchRet::Kv(ret) => ret.is_ok(),
            WatchRet::Watched(w) => w.end == End::Listened,
        }
    }
}

/// The KV model for the KV operations; a watch changes nothing and any answer passes here
/// (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct WatchModel;

impl Model for WatchModel {
    type State = Bucket;
    type Op = WatchOp;
    type Ret = WatchRet;

    fn init(&self) -> Bucket {
        KvModel.init()
    }

    fn step(&self, s: &Bucket, op: &WatchOp, ret: Option<&WatchRet>) -> Option<Bucket> {
        match (op, ret) {
            (WatchOp::Kv(op), None) => KvModel.step(s, op, None),
            (WatchOp::Kv(op), Some(WatchRet::Kv(ret))) => KvModel.step(s, op, Some(ret)),
            (WatchOp::Watch(_), None | Some(WatchRet::Watched(_))) => Some(s.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Update::Put { key, value, rev } => write!(f, "{key}={value:?}@{rev}"),
            Update::Delete { key, rev } => write!(f, "{key}=del@{rev}"),
            Update::Purge { key, rev } => write!(f, "{key}=purge@{rev}"),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => write!(f, "all"),
            Scope::Prefix(p) => write!(f, "prefix {p:?}"),
            Scope::Prefixes(ps) => write!(f, "prefixes {ps:?}"),
        }
    }
}

impl fmt::Display for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "watch {}", self.scope)?;
        if let Some(c) = self.from {
            write!(f, " from @{c}")?;
        }
        write!(f, " for {}ms", self.listen_ms)
    }
}

impl fmt::Display for Watched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, u) in self.updates.iter().enumerate() {
            write!(f, "{}{u}", if i > 0 { " " } else { "" })?;
        }
        match &self.end {
            End::Listened => write!(f, "]"),
            End::CursorExpired => write!(f, "] cursor-expired"),
            End::Failed(why) => write!(f, "] failed {why:?}"),
        }
    }
}

impl fmt::Display for WatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchOp::Kv(op) => op.fmt(f),
            WatchOp::Watch(w) => w.fmt(f),
        }
    }
}

impl fmt::Display for WatchRet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchRet::Kv(ret) => ret.fmt(f),
            WatchRet::Watched(w) => w.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cover_their_prefixes() {
        let two = Scope::Prefixes(vec!["a.".into(), "c.".into()]);
        assert!(Scope::All.covers("b.1"));
        assert!(Scope::Prefix("a.".into()).covers("a.1"));
        assert!(!Scope::Prefix("a.".into()).covers("b.1"));
        assert!(two.covers("c.0") && !two.covers("b.0"));
    }

    #[test]
    fn history_lines_are_short() {
        let w = Watch {
            scope: Scope::Prefix("a.".into()),
            from: Some(4),
            listen_ms: 800,
        };
        assert_eq!(w.to_string(), "watch prefix \"a.\" from @4 for 800ms");
        let got = Watched {
            updates: vec![
                Update::Put {
                    key: "a.0".into(),
                    value: "c1.2".into(),
                    rev: 5,
                },
                Update::Delete {
                    key: "a.1".into(),
                    rev: 6,
                },
            ],
            end: End::CursorExpired,
        };
        assert_eq!(got.to_string(), "[a.0=\"c1.2\"@5 a.1=del@6] cursor-expired");
        assert!(!WatchRet::Watched(got).is_ok());
    }

    #[test]
    fn the_model_judges_kv_operations_and_passes_watches() {
        let s = WatchModel.init();
        let put = WatchOp::Kv(KvOp::put("a.0", "x"));
        let s = WatchModel
            .step(&s, &put, Some(&WatchRet::Kv(KvRet::Written(1))))
            .unwrap();
        let wrong = WatchRet::Kv(KvRet::Value(Some("y".into())));
        assert!(WatchModel
            .step(&s, &WatchOp::Kv(KvOp::get("a.0")), Some(&wrong))
            .is_none());
        let watch = WatchOp::Watch(Watch {
            scope: Scope::All,
            from: None,
            listen_ms: 1,
        });
        let any = WatchRet::Watched(Watched {
            updates: vec![],
            end: End::Listened,
        });
        assert!(WatchModel.step(&s, &watch, Some(&any)).is_some());
    }
}
