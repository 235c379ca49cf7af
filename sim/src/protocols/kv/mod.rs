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
use squall_models::kv::{KvModel, KvOp, KvRet, Rev};
use std::collections::BTreeMap;

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
];

/// The KV compare-and-swap protocol.
pub struct Kv;

impl Protocol for Kv {
    const NAME: &'static str = "kv";
    type Op = KvOp;
    type Ret = KvRet;
    type Model = KvModel;
    /// The operation itself; a compare's `expected` is filled in at run time.
    type Intent = KvOp;
    /// The last revision seen of each key.
    type Memory = BTreeMap<String, Rev>;
    /// None: no `[kv]` section.
    type Settings = ();

    fn draw(scenario: &Scenario, client: usize, n: usize, rng: &mut ChaCha8Rng) -> KvOp {
        let w = &scenario.workload;
        let key = format!("k{}", rng.random_range(0..w.keys));
        let value = format!("c{client}.{n}");
        let name = crate::plan::pick(&w.mix, rng);
        named(name, key, value)
            .unwrap_or_else(|| unreachable!("scenario validation admits no kv operation {name:?}"))
    }

    fn op(memory: &Self::Memory, intent: &KvOp) -> KvOp {
        let seen = |key: &String| memory.get(key).copied();
        match intent {
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

    fn operations() -> Vec<&'static str> {
        OPERATIONS.to_vec()
    }
}

/// The KV operation a mix name stands for, on `key`, writing `value` if it writes; `None`
/// for a name that is not a KV operation.
pub(crate) fn named(name: &str, key: String, value: String) -> Option<KvOp> {
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
