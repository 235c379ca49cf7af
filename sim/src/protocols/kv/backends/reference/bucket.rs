//! The bucket a replica builds from its log: each key's last write and the bucket-wide
//! revision. Pure: the log decides everything, so every replica that holds the same log
//! holds the same bucket.

use serde::{Deserialize, Serialize};
use squall_models::kv::{Entry, KvError, KvOp, KvRet, Rev};
use squall_models::watch::{Scope, Update};
use std::collections::BTreeMap;

use super::Bug;

/// What a write leaves as a key's last message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Write {
    /// A value; an empty one is a tombstone (what `delete_with_version` writes).
    Put(String),
    /// A delete marker.
    Delete,
    /// A purge marker.
    Purge,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Last {
    rev: Rev,
    write: Write,
    /// When it was written, by the primary's clock (nanoseconds).
    at: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Bucket {
    keys: BTreeMap<String, Last>,
    /// The revision of the latest write: the next write takes the one after.
    rev: Rev,
}

impl Bucket {
    /// Answer a read.
    pub fn read(&self, op: &KvOp) -> KvRet {
        match op {
            KvOp::Get { key } => KvRet::Value(self.value(key).map(|e| e.value)),
            KvOp::Entry { key } => KvRet::Entry(self.entry(key)),
            KvOp::Keys { prefix } => KvRet::Keys(self.scan(prefix).map(|(k, _)| k).collect()),
            KvOp::Scan { prefix } => KvRet::Scan(self.scan(prefix).collect()),
            _ => unreachable!("{op} is a write"),
        }
    }

    /// The write `op` makes, or why it is refused.
    pub fn decide(&self, op: &KvOp, bug: Option<Bug>) -> Result<(String, Write), KvError> {
        let last = |key: &str| self.keys.get(key);
        let write = match op {
            KvOp::Put { value, .. } => Write::Put(value.clone()),
            KvOp::Create { key, value } => match last(key).map(|l| &l.write) {
                Some(Write::Put(v)) if !(v.is_empty() && bug == Some(Bug::CreateOverTombstone)) => {
                    return Err(KvError::AlreadyExists)
                }
                _ => Write::Put(value.clone()),
            },
            KvOp::Update {
                key,
                value,
                expected,
            } => {
                check(last(key), *expected, bug)?;
                Write::Put(value.clone())
            }
            KvOp::Delete { .. } => Write::Delete,
            KvOp::DeleteWithVersion { key, expected } => {
                check(last(key), *expected, bug)?;
                Write::Put(String::new())
            }
            KvOp::Purge { .. } => Write::Purge,
            _ => unreachable!("{op} is a read"),
        };
        Ok((op.key().unwrap_or_default().to_string(), write))
    }

    /// The revision the next write takes.
    pub fn next_rev(&self) -> Rev {
        self.rev + 1
    }

    /// The revision of the latest write.
    pub fn rev(&self) -> Rev {
        self.rev
    }

    /// The last write of every key in `scope`, markers included, in revision order, less
    /// those written at or before `aged` (retention aged them out): a watch's state sync.
    pub fn sync(&self, scope: &Scope, aged: Option<u64>) -> Vec<Update> {
        let mut updates: Vec<Update> = (self.keys.iter())
            .filter(|(key, last)| scope.covers(key) && aged.is_none_or(|a| last.at > a))
            .map(|(key, last)| update(key, &last.write, last.rev))
            .collect();
        updates.sort_by_key(Update::rev);
        updates
    }

    /// Record a write at revision `rev`, made at `at`.
    pub fn apply(&mut self, key: &str, write: &Write, rev: Rev, at: u64) {
        let last = Last {
            rev,
            write: write.clone(),
            at,
        };
        self.keys.insert(key.to_string(), last);
        self.rev = rev;
    }

    /// The revision counter as a restart that rebuilds it from the live keys alone would
    /// set it: markers and tombstones are forgotten. Only the revision-reset mutant does so.
    pub fn forget_dead_revisions(&mut self) {
        self.rev = self.scan("").map(|(_, e)| e.rev).max().unwrap_or(0);
    }

    fn entry(&self, key: &str) -> Option<Entry> {
        match self.keys.get(key)? {
            Last {
                rev,
                write: Write::Put(value),
                ..
            } => Some(Entry {
                value: value.clone(),
                rev: *rev,
            }),
            _ => None,
        }
    }

    fn value(&self, key: &str) -> Option<Entry> {
        self.entry(key).filter(|e| !e.value.is_empty())
    }

    fn scan<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (String, Entry)> + 'a {
        self.keys
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .filter_map(|(k, _)| Some((k.clone(), self.value(k)?)))
    }
}

/// A compare-and-swap holds only on the key's last revision, markers included. A key with
/// no message has revision 0, as NATS reads `Nats-Expected-Last-Subject-Sequence: 0` ("the
/// subject has no message yet"; `kv.create` is `update(k, v, 0)`).
fn check(last: Option<&Last>, expected: Rev, bug: Option<Bug>) -> Result<(), KvError> {
    match (last, bug) {
        (_, Some(Bug::ZeroSkipsCheck)) if expected == 0 => Ok(()),
        (Some(l), Some(Bug::AtLeastRevision)) if expected >= l.rev => Ok(()),
        (Some(l), _) if l.rev == expected => Ok(()),
        (None, _) if expected == 0 => Ok(()),
        _ => Err(KvError::RevisionMismatch),
    }
}

/// What a write that took revision `rev` answers.
pub fn answer(op: &KvOp, rev: Rev) -> KvRet {
    match op {
        KvOp::Delete { .. } | KvOp::DeleteWithVersion { .. } => KvRet::Deleted(true),
        KvOp::Purge { .. } => KvRet::Purged,
        _ => KvRet::Written(rev),
    }
}

/// A write as a watch delivers it: an empty-value put is a delete.
pub fn update(key: &str, write: &Write, rev: Rev) -> Update {
    let key = key.to_string();
    match write {
        Write::Put(value) if !value.is_empty() => Update::Put {
            key,
            value: value.clone(),
            rev,
        },
        Write::Put(_) | Write::Delete => Update::Delete { key, rev },
        Write::Purge => Update::Purge { key, rev },
    }
}
