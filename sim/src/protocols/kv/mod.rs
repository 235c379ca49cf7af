//! The KV compare-and-swap workload.
//!
//! Keys are `k0`, `k1`, ...; every written value is unique (`c<client>.<n>`), so a read
//! names the write it saw. A client remembers the last revision it saw of each key and
//! compares against it, as a compare-and-swap loop does; with nothing seen of a key yet it
//! reads the key's entry instead of guessing a revision.

pub mod backends;
pub mod check;

// What a KV backend implements, slipstream's traits, at the protocol's door.
pub use backends::{
    KvBackend, KvClient, KvPurge, KvReader, KvWatchBackend, KvWatchClient, KvWatcher, KvWriter,
};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use squall_models::kv::{KvError, KvModel, KvOp, KvRet, Rev};
use std::collections::BTreeMap;
use std::fmt;

use crate::check::{linearizable, Verdict};
use crate::history::{History, Operation};
use crate::protocol::Protocol;
use crate::scenario::Scenario;

/// The operation names of a KV mix.
pub const OPERATIONS: &[&str] = &[
    "get",
    "entry",
    "put",
    "create",
    "update",
    "delete",
    "delete_with_version",
    "purge",
    "keys",
    "scan",
    "keys_prefix",
    "scan_prefix",
    "update_blind",
    "delete_blind",
];

/// The KV compare-and-swap protocol.
pub struct Kv;

impl Protocol for Kv {
    const NAME: &'static str = "kv";
    type Op = KvOp;
    type Ret = KvRet;
    type Model = KvModel;
    /// The operation; a compare's `expected` is filled in at run time unless it is blind.
    type Intent = KvIntent;
    /// The last revision seen of each key.
    type Memory = BTreeMap<String, Rev>;
    /// None: no `[kv]` section.
    type Settings = ();

    fn draw(scenario: &Scenario, client: usize, n: usize, rng: &mut ChaCha8Rng) -> KvIntent {
        let w = &scenario.workload;
        let key = format!("k{}", rng.random_range(0..w.keys));
        let value = format!("c{client}.{n}");
        let name = crate::plan::pick(&w.mix, rng);
        // kv's keys have no dots: a token-aligned prefix (the key's own subtree, one past
        // every key) lists none of them.
        let prefixes = [format!("{key}."), "z.".into()];
        named(name, key, value, &prefixes, rng)
            .unwrap_or_else(|| unreachable!("scenario validation admits no kv operation {name:?}"))
    }

    fn op(memory: &Self::Memory, intent: &KvIntent) -> KvOp {
        let seen = |key: &String| memory.get(key).copied();
        if intent.blind {
            return intent.op.clone();
        }
        match &intent.op {
            KvOp::Update { key, value, .. } => match seen(key) {
                Some(expected) => KvOp::Update {
                    key: key.clone(),
                    value: value.clone(),
                    expected,
                },
                None => KvOp::Entry { key: key.clone() },
            },
            KvOp::DeleteWithVersion { key, .. } => match seen(key) {
                Some(expected) => KvOp::DeleteWithVersion {
                    key: key.clone(),
                    expected,
                },
                None => KvOp::Entry { key: key.clone() },
            },
            op => op.clone(),
        }
    }

    fn learn(memory: &mut Self::Memory, op: &KvOp, ret: &KvRet) {
        match (op.key(), ret) {
            (Some(key), KvRet::Written(rev))
            | (Some(key), KvRet::Entry(Some(squall_models::kv::Entry { rev, .. }))) => {
                memory.insert(key.to_string(), *rev);
            }
            (None, KvRet::Scan(entries)) => {
                for (key, e) in entries {
                    memory.insert(key.clone(), e.rev);
                }
            }
            _ => {}
        }
    }

    fn check(_: &Scenario, history: &History<KvOp, KvRet>) -> Verdict {
        check_ops(&history.operations())
    }

    fn answers() -> Vec<(&'static str, &'static str)> {
        ANSWERS.to_vec()
    }

    fn answered(op: &KvOp, ret: &KvRet) -> Vec<(&'static str, String)> {
        answered(op, ret).into_iter().collect()
    }

    fn operations() -> Vec<&'static str> {
        OPERATIONS.to_vec()
    }

    fn sent(ret: &KvRet) -> bool {
        *ret != KvRet::Err(KvError::NotConnected)
    }
}

/// Every answer of the KV model, by operation.
pub(crate) const ANSWERS: &[(&str, &str)] = &[
    ("get", "value"),
    ("get", "none"),
    ("entry", "value"),
    ("entry", "tombstone"),
    ("entry", "none"),
    ("put", "written"),
    ("create", "written"),
    ("create", "already_exists"),
    ("update", "written"),
    ("update", "revision_mismatch"),
    ("delete", "deleted"),
    ("delete_with_version", "deleted"),
    ("delete_with_version", "revision_mismatch"),
    ("purge", "purged"),
    ("keys", "some"),
    ("keys", "empty"),
    ("keys_prefix", "some"),
    ("keys_prefix", "empty"),
    ("scan", "some"),
    ("scan", "empty"),
    ("scan_prefix", "some"),
    ("scan_prefix", "empty"),
];

/// The answer `ret` to `op`, as [`ANSWERS`] names it; `None` for a request never sent.
pub(crate) fn answered(op: &KvOp, ret: &KvRet) -> Option<(&'static str, String)> {
    let name = match op {
        KvOp::Get { .. } => "get",
        KvOp::Entry { .. } => "entry",
        KvOp::Put { .. } => "put",
        KvOp::Create { .. } => "create",
        KvOp::Update { .. } => "update",
        KvOp::Delete { .. } => "delete",
        KvOp::DeleteWithVersion { .. } => "delete_with_version",
        KvOp::Purge { .. } => "purge",
        KvOp::Keys { prefix } if prefix.is_empty() => "keys",
        KvOp::Keys { .. } => "keys_prefix",
        KvOp::Scan { prefix } if prefix.is_empty() => "scan",
        KvOp::Scan { .. } => "scan_prefix",
    };
    let answer = match ret {
        KvRet::Value(Some(_)) => "value",
        KvRet::Entry(Some(e)) if e.value.is_empty() => "tombstone",
        KvRet::Entry(Some(_)) => "value",
        KvRet::Value(None) | KvRet::Entry(None) => "none",
        KvRet::Written(_) => "written",
        KvRet::Deleted(_) => "deleted",
        KvRet::Purged => "purged",
        KvRet::Keys(k) if k.is_empty() => "empty",
        KvRet::Scan(k) if k.is_empty() => "empty",
        KvRet::Keys(_) | KvRet::Scan(_) => "some",
        KvRet::Err(KvError::AlreadyExists) => "already_exists",
        KvRet::Err(KvError::RevisionMismatch) => "revision_mismatch",
        KvRet::Err(KvError::CursorExpired) => "cursor_expired",
        KvRet::Err(KvError::NotConnected) => return None,
        KvRet::Err(KvError::Failed(_)) => "failed",
    };
    Some((name, answer.to_string()))
}

/// A KV operation as a plan holds it. A compare (`update`, `delete_with_version`) expects
/// the revision its client last saw of the key, filled in at run time, unless it is
/// `blind`: then it sends the `expected` drawn with it, as a client that guesses does. In a
/// scenario file, the operation's table with `blind = true` for a blind one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KvIntent {
    #[serde(flatten)]
    pub op: KvOp,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blind: bool,
}

impl From<KvOp> for KvIntent {
    fn from(op: KvOp) -> Self {
        KvIntent { op, blind: false }
    }
}

impl fmt::Display for KvIntent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.op.fmt(f)?;
        if self.blind {
            f.write_str(" (blind)")?;
        }
        Ok(())
    }
}

/// A revision a blind compare expects: zero (the key has never been written), one of the
/// first few (stale, another key's, now and then the current one), or one far in the future.
fn guess(rng: &mut ChaCha8Rng) -> Rev {
    match rng.random_range(0..4) {
        0 => 0,
        1 => 1_000_000 + rng.random_range(0..1000),
        _ => rng.random_range(1..=40),
    }
}

/// The KV operation a mix name stands for, on `key`, writing `value` if it writes, listing
/// under one of `prefixes` if it takes a prefix; `None` for a name that is not a KV
/// operation. `update_blind` and `delete_blind` are compares that expect a guessed revision.
pub(crate) fn named(
    name: &str,
    key: String,
    value: String,
    prefixes: &[String],
    rng: &mut ChaCha8Rng,
) -> Option<KvIntent> {
    let mut prefix = || prefixes[rng.random_range(0..prefixes.len())].clone();
    let blind = |op: KvOp| KvIntent { op, blind: true };
    Some(match name {
        "keys_prefix" => KvOp::Keys { prefix: prefix() }.into(),
        "scan_prefix" => KvOp::Scan { prefix: prefix() }.into(),
        "update_blind" => blind(KvOp::Update {
            key,
            value,
            expected: guess(rng),
        }),
        "delete_blind" => blind(KvOp::DeleteWithVersion {
            key,
            expected: guess(rng),
        }),
        name => plain(name, key, value)?.into(),
    })
}

/// The KV operation a plain mix name stands for.
fn plain(name: &str, key: String, value: String) -> Option<KvOp> {
    Some(match name {
        "get" => KvOp::Get { key },
        "entry" => KvOp::Entry { key },
        "put" => KvOp::Put { key, value },
        "create" => KvOp::Create { key, value },
        "update" => KvOp::Update {
            key,
            value,
            expected: 0,
        },
        "delete" => KvOp::Delete { key },
        "delete_with_version" => KvOp::DeleteWithVersion { key, expected: 0 },
        "purge" => KvOp::Purge { key },
        "keys" => KvOp::Keys {
            prefix: String::new(),
        },
        "scan" => KvOp::Scan {
            prefix: String::new(),
        },
        _ => return None,
    })
}

/// Revision order first (near-linear, and it names the operations at fault), then
/// linearizability against the model.
pub(crate) fn check_ops(ops: &[Operation<KvOp, KvRet>]) -> Verdict {
    if let Err(v) = check::revisions(ops) {
        return Verdict::Violation(v);
    }
    linearizable(&KvModel, ops, &Default::default())
}
