//! The KV model against a tiny executable spec: a bucket as a log of writes, revision =
//! position + 1. The model must accept exactly the spec's answers and reject perturbed ones.

use proptest::prelude::*;
use squall_models::kv::{Bucket, Entry, KvError, KvModel, KvOp, KvRet, Rev};
use squall_models::Model;
use std::collections::BTreeMap;

const KEYS: [&str; 3] = ["a", "ab", "b"];
const VALUES: [&str; 3] = ["", "x", "y"];
const PREFIXES: [&str; 4] = ["", "a", "b", "c"];

#[derive(Clone, Debug)]
enum Write {
    Put(String),
    Delete,
    Purge,
}

/// The spec: every write appended; a key's state is its last write.
#[derive(Clone, Default)]
struct Spec {
    log: Vec<(String, Write)>,
}

impl Spec {
    fn last(&self, key: &str) -> Option<(Rev, &Write)> {
        let i = self.log.iter().rposition(|(k, _)| k == key)?;
        Some((i as Rev + 1, &self.log[i].1))
    }

    fn rev(&self, key: &str) -> Rev {
        self.last(key).map_or(0, |(r, _)| r)
    }

    fn entry(&self, key: &str) -> Option<Entry> {
        match self.last(key)? {
            (rev, Write::Put(value)) => Some(Entry {
                value: value.clone(),
                rev,
            }),
            _ => None,
        }
    }

    fn value(&self, key: &str) -> Option<String> {
        self.entry(key).map(|e| e.value).filter(|v| !v.is_empty())
    }

    fn scan(&self, prefix: &str) -> Vec<(String, Entry)> {
        let keys: std::collections::BTreeSet<_> = self.log.iter().map(|(k, _)| k).collect();
        keys.into_iter()
            .filter(|k| k.starts_with(prefix))
            .filter_map(|k| Some((k.clone(), self.entry(k).filter(|e| !e.value.is_empty())?)))
            .collect()
    }

    fn write(&mut self, key: &str, w: Write) -> Rev {
        self.log.push((key.to_string(), w));
        self.log.len() as Rev
    }

    /// The bucket's answer, applying any write.
    fn answer(&mut self, op: &KvOp) -> KvRet {
        match op {
            KvOp::Get { key } => KvRet::Value(self.value(key)),
            KvOp::Entry { key } => KvRet::Entry(self.entry(key)),
            KvOp::Put { key, value } => KvRet::Written(self.write(key, Write::Put(value.clone()))),
            KvOp::Create { key, value } => match self.last(key) {
                Some((_, Write::Put(_))) => KvRet::Err(KvError::AlreadyExists),
                _ => KvRet::Written(self.write(key, Write::Put(value.clone()))),
            },
            KvOp::Update {
                key,
                value,
                expected,
            } if self.rev(key) == *expected => {
                KvRet::Written(self.write(key, Write::Put(value.clone())))
            }
            KvOp::DeleteWithVersion { key, expected } if self.rev(key) == *expected => {
                self.write(key, Write::Put(String::new()));
                KvRet::Deleted(true)
            }
            KvOp::Update { .. } | KvOp::DeleteWithVersion { .. } => {
                KvRet::Err(KvError::RevisionMismatch)
            }
            KvOp::Delete { key } => {
                self.write(key, Write::Delete);
                KvRet::Deleted(true)
            }
            KvOp::Purge { key } => {
                self.write(key, Write::Purge);
                KvRet::Purged
            }
            KvOp::Keys { prefix } => {
                KvRet::Keys(self.scan(prefix).into_iter().map(|(k, _)| k).collect())
            }
            KvOp::Scan { prefix } => KvRet::Scan(self.scan(prefix)),
        }
    }
}

/// How a generated conditional write picks its expected revision.
#[derive(Clone, Debug)]
enum Pick {
    /// The key's current revision in the spec (hidden to the model or not).
    Current,
    /// Any revision from 0 to one past the newest.
    Any(usize),
}

/// A generated operation, resolved against the spec when it runs.
#[derive(Clone, Debug)]
enum Gen {
    Get(usize),
    Entry(usize),
    Put(usize, usize),
    Create(usize, usize),
    Update(usize, usize, Pick),
    Delete(usize),
    DeleteWithVersion(usize, Pick),
    Purge(usize),
    Keys(usize),
    Scan(usize),
}

impl Gen {
    fn op(&self, spec: &Spec) -> KvOp {
        let key = |k: &usize| KEYS[*k].to_string();
        let value = |v: &usize| VALUES[*v].to_string();
        let expected = |k: &usize, p: &Pick| match p {
            Pick::Current => spec.rev(KEYS[*k]),
            Pick::Any(n) => (*n % (spec.log.len() + 2)) as Rev,
        };
        match self {
            Gen::Get(k) => KvOp::Get { key: key(k) },
            Gen::Entry(k) => KvOp::Entry { key: key(k) },
            Gen::Put(k, v) => KvOp::Put {
                key: key(k),
                value: value(v),
            },
            Gen::Create(k, v) => KvOp::Create {
                key: key(k),
                value: value(v),
            },
            Gen::Update(k, v, p) => KvOp::Update {
                key: key(k),
                value: value(v),
                expected: expected(k, p),
            },
            Gen::Delete(k) => KvOp::Delete { key: key(k) },
            Gen::DeleteWithVersion(k, p) => KvOp::DeleteWithVersion {
                key: key(k),
                expected: expected(k, p),
            },
            Gen::Purge(k) => KvOp::Purge { key: key(k) },
            Gen::Keys(p) => KvOp::Keys {
                prefix: PREFIXES[*p].to_string(),
            },
            Gen::Scan(p) => KvOp::Scan {
                prefix: PREFIXES[*p].to_string(),
            },
        }
    }
}

fn gen() -> impl Strategy<Value = Gen> {
    let k = || 0..KEYS.len();
    let v = || 0..VALUES.len();
    let p = || prop_oneof![Just(Pick::Current), any::<usize>().prop_map(Pick::Any)];
    prop_oneof![
        2 => k().prop_map(Gen::Get),
        2 => k().prop_map(Gen::Entry),
        3 => (k(), v()).prop_map(|(k, v)| Gen::Put(k, v)),
        2 => (k(), v()).prop_map(|(k, v)| Gen::Create(k, v)),
        3 => (k(), v(), p()).prop_map(|(k, v, p)| Gen::Update(k, v, p)),
        1 => k().prop_map(Gen::Delete),
        2 => (k(), p()).prop_map(|(k, p)| Gen::DeleteWithVersion(k, p)),
        1 => k().prop_map(Gen::Purge),
        1 => (0..PREFIXES.len()).prop_map(Gen::Keys),
        1 => (0..PREFIXES.len()).prop_map(Gen::Scan),
    ]
}

/// The spec and the model driven side by side, tracking per key the highest revision the
/// client has seen (returned by a write or shown by a read): the model knows at least that.
#[derive(Default)]
struct Run {
    spec: Spec,
    state: Bucket,
    seen: BTreeMap<String, Rev>,
}

impl Run {
    fn step(&mut self, op: &KvOp, ret: Option<&KvRet>) -> Result<(), TestCaseError> {
        match KvModel.step(&self.state, op, ret) {
            Some(next) => {
                self.state = next;
                Ok(())
            }
            None => Err(TestCaseError::fail(format!(
                "rejected {op} -> {ret:?} in {:?}",
                self.state
            ))),
        }
    }

    fn rejects(&self, op: &KvOp, ret: KvRet) -> Result<(), TestCaseError> {
        prop_assert!(
            KvModel.step(&self.state, op, Some(&ret)).is_none(),
            "accepted wrong {op} -> {ret} in {:?}",
            self.state
        );
        Ok(())
    }

    fn seen(&self, key: &str) -> Rev {
        self.seen.get(key).copied().unwrap_or(0)
    }

    /// Answers the model must reject where `right` is the spec's answer (`self.spec` is
    /// still the bucket before `op`).
    fn wrong(&self, op: &KvOp, right: &KvRet) -> Vec<KvRet> {
        let key = op.key().unwrap_or_default();
        let seen = self.seen(key);
        // The client saw the key's last revision, so the model knows it: conditional
        // writes are decided.
        let known = self.spec.rev(key) == seen;
        let next = self.spec.log.len() as Rev + 1;
        let mut wrong = Vec::new();
        match right {
            KvRet::Value(v) => {
                wrong.push(KvRet::Value(match v {
                    Some(v) => Some(format!("{v}!")),
                    None => Some("z".into()),
                }));
                wrong.push(KvRet::Value(Some(String::new())));
            }
            KvRet::Entry(Some(e)) => {
                let value = format!("{}!", e.value);
                wrong.push(KvRet::Entry(Some(Entry { value, rev: e.rev })));
                // The model knows the revision exactly if the client saw it, and knows it is
                // above anything the client saw otherwise.
                let rev = if e.rev == seen { e.rev + 1 } else { seen };
                let value = e.value.clone();
                wrong.push(KvRet::Entry(Some(Entry { value, rev })));
                wrong.push(KvRet::Entry(None));
            }
            KvRet::Entry(None) => wrong.push(KvRet::Entry(Some(Entry {
                value: String::new(),
                rev: 1,
            }))),
            KvRet::Written(_) => {
                wrong.push(KvRet::Written(seen));
                match op {
                    KvOp::Create { .. } => wrong.push(KvRet::Err(KvError::AlreadyExists)),
                    KvOp::Update { .. } => {
                        wrong.push(KvRet::Err(KvError::AlreadyExists));
                        if known {
                            wrong.push(KvRet::Err(KvError::RevisionMismatch));
                        }
                    }
                    _ => wrong.push(KvRet::Err(KvError::RevisionMismatch)),
                }
            }
            KvRet::Err(KvError::AlreadyExists) => {
                wrong.push(KvRet::Written(next));
                wrong.push(KvRet::Err(KvError::RevisionMismatch));
            }
            KvRet::Err(_) => {
                wrong.push(KvRet::Err(KvError::AlreadyExists));
                if known {
                    wrong.push(match op {
                        KvOp::Update { .. } => KvRet::Written(next),
                        _ => KvRet::Deleted(true),
                    });
                }
            }
            KvRet::Deleted(_) => {
                if self.spec.value(key).is_some() {
                    wrong.push(KvRet::Deleted(false));
                }
                wrong.push(KvRet::Purged);
                if known && matches!(op, KvOp::DeleteWithVersion { .. }) {
                    wrong.push(KvRet::Err(KvError::RevisionMismatch));
                }
            }
            KvRet::Purged => wrong.push(KvRet::Deleted(true)),
            KvRet::Keys(keys) => {
                let mut more = keys.clone();
                more.push("zz".into());
                wrong.push(KvRet::Keys(more));
                if let Some((_, fewer)) = keys.split_last() {
                    wrong.push(KvRet::Keys(fewer.to_vec()));
                }
            }
            KvRet::Scan(entries) => {
                let mut more = entries.clone();
                let e = Entry {
                    value: "x".into(),
                    rev: 1,
                };
                more.push(("zz".into(), e));
                wrong.push(KvRet::Scan(more));
                if let Some((_, fewer)) = entries.split_last() {
                    wrong.push(KvRet::Scan(fewer.to_vec()));
                }
            }
        }
        wrong
    }

    /// Remember the revisions `ret` shows the client.
    fn saw(&mut self, op: &KvOp, ret: &KvRet) {
        let mut see = |k: &str, r: Rev| {
            let s = self.seen.entry(k.to_string()).or_default();
            *s = (*s).max(r);
        };
        match (op.key(), ret) {
            (Some(k), KvRet::Written(r)) => see(k, *r),
            (Some(k), KvRet::Entry(Some(e))) => see(k, e.rev),
            (_, KvRet::Scan(entries)) => entries.iter().for_each(|(k, e)| see(k, e.rev)),
            _ => {}
        }
    }

    /// Run `op` against the spec and require the model to accept its answer and reject
    /// perturbed ones.
    fn check(&mut self, op: &KvOp) -> Result<KvRet, TestCaseError> {
        let mut after = self.spec.clone();
        let right = after.answer(op);
        for w in self.wrong(op, &right) {
            self.rejects(op, w)?;
        }
        self.spec = after;
        self.step(op, Some(&right))?;
        self.saw(op, &right);
        Ok(right)
    }

    /// Every read agrees with the spec.
    fn reads_agree(&mut self) -> Result<(), TestCaseError> {
        for key in KEYS {
            self.check(&KvOp::Get { key: key.into() })?;
            self.check(&KvOp::Entry { key: key.into() })?;
        }
        for prefix in PREFIXES {
            self.check(&KvOp::Keys {
                prefix: prefix.into(),
            })?;
            self.check(&KvOp::Scan {
                prefix: prefix.into(),
            })?;
        }
        Ok(())
    }

    fn run(&mut self, ops: &[Gen]) -> Result<(), TestCaseError> {
        for g in ops {
            self.check(&g.op(&self.spec))?;
        }
        Ok(())
    }
}

fn key(k: &str) -> String {
    k.to_string()
}

proptest! {
    // Fixed seeds: the same cases every run (PROPTEST_RNG_SEED does not apply here).
    #![proptest_config(ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0),
        ..ProptestConfig::with_cases(512)
    })]

    /// The model accepts the spec's answers and rejects perturbed ones.
    #[test]
    fn accepts_exactly_the_spec(ops in prop::collection::vec(gen(), 0..40)) {
        Run::default().run(&ops)?;
    }

    /// get, entry, keys and scan agree with each other after any sequence.
    #[test]
    fn reads_agree(ops in prop::collection::vec(gen(), 0..30)) {
        let mut run = Run::default();
        for g in &ops {
            run.check(&g.op(&run.spec))?;
            run.reads_agree()?;
        }
    }

    /// After a plain delete, create succeeds; after delete_with_version it fails.
    #[test]
    fn create_after_deletes(ops in prop::collection::vec(gen(), 0..20), k in 0..KEYS.len()) {
        let mut run = Run::default();
        run.run(&ops)?;
        let k = key(KEYS[k]);
        let create = KvOp::Create { key: k.clone(), value: "x".into() };
        run.check(&KvOp::Delete { key: k.clone() })?;
        prop_assert!(matches!(run.check(&create)?, KvRet::Written(_)));
        let expected = run.spec.rev(&k);
        let ret = run.check(&KvOp::DeleteWithVersion { key: k.clone(), expected })?;
        prop_assert_eq!(ret, KvRet::Deleted(true));
        prop_assert_eq!(run.check(&create)?, KvRet::Err(KvError::AlreadyExists));
    }

    /// Updating on top of a delete or purge marker with the marker's revision works, though
    /// the client never saw that revision.
    #[test]
    fn update_on_marker(
        ops in prop::collection::vec(gen(), 0..20),
        k in 0..KEYS.len(),
        purge: bool,
    ) {
        let mut run = Run::default();
        run.run(&ops)?;
        let k = key(KEYS[k]);
        run.check(&if purge { KvOp::Purge { key: k.clone() } } else { KvOp::Delete { key: k.clone() } })?;
        let expected = run.spec.rev(&k);
        let ret = run.check(&KvOp::Update { key: k.clone(), value: "y".into(), expected })?;
        prop_assert_eq!(ret, KvRet::Written(expected + 1));
    }

    /// A write's revision must be above every revision the key has shown.
    #[test]
    fn revisions_increase(ops in prop::collection::vec(gen(), 0..30), k in 0..KEYS.len()) {
        let mut run = Run::default();
        run.run(&ops)?;
        let k = key(KEYS[k]);
        let put = KvOp::Put { key: k.clone(), value: "x".into() };
        for r in 0..=run.seen(&k) {
            run.rejects(&put, KvRet::Written(r))?;
        }
        run.check(&put)?;
    }

    /// NotConnected is accepted anywhere and changes nothing.
    #[test]
    fn not_connected_is_no_effect(ops in prop::collection::vec(gen(), 0..30), g in gen()) {
        let mut run = Run::default();
        run.run(&ops)?;
        let op = g.op(&run.spec);
        let ret = KvRet::Err(KvError::NotConnected);
        prop_assert_eq!(KvModel.step(&run.state, &op, Some(&ret)), Some(run.state.clone()));
    }

    /// Operations whose answer was lost are accepted, whether they took effect (stepped in
    /// place) or not (stepped last, where a checker may linearize them), and the answers the
    /// spec gives afterwards still are.
    #[test]
    fn unknown_outcomes(ops in prop::collection::vec((gen(), 0..3u8), 0..40)) {
        let mut run = Run::default();
        let mut last = Vec::new();
        for (g, fate) in &ops {
            let op = g.op(&run.spec);
            match fate {
                // Answered.
                0 => {
                    run.check(&op)?;
                }
                // Lost, but it took effect as the spec says (a refused write has none).
                1 => {
                    let before = run.spec.log.len();
                    run.spec.answer(&op);
                    if run.spec.log.len() > before || !op.is_write() {
                        run.step(&op, None)?;
                    } else {
                        last.push(op);
                    }
                }
                // Lost before it reached the bucket.
                _ => last.push(op),
            }
        }
        run.reads_agree()?;
        for op in &last {
            run.step(op, None)?;
        }
    }
}
