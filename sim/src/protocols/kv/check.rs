//! A near-linear pre-check of KV histories by revision order.
//!
//! A KV bucket numbers every write with a bucket-wide, strictly increasing revision (a
//! JetStream stream sequence). The revisions a history reveals — returned by `put`,
//! `create` and `update`, shown by `entry` and `scan`, named as `expected` by a conditional
//! write that succeeded — already order the writes, so three rules catch many bugs without
//! searching for a linearization, and name the operations involved:
//!
//! 1. **One revision, one write.** Two writes never return the same revision; a revision
//!    belongs to one key and holds one value, whoever reveals it.
//! 2. **A source.** A revision no write returned was written by one whose revision stayed
//!    hidden: a `delete_with_version` tombstone, a lost answer, or (for an `expected` only)
//!    a delete or purge marker, on the same key, invoked before the operation revealing it
//!    completed. A revision with no such candidate came from nowhere.
//! 3. **Real time.** A revision revealed by an operation that completed before a write was
//!    invoked existed before that write, so the write's revision is greater. This covers a
//!    read that shows a write invoked only after the read returned.
//!
//! Only revisions actually revealed are used, so writes whose revisions are never returned
//! (deletes, purges, lost answers) constrain nothing they should not: the check is sound for
//! any correct backend. It assumes nothing about revisions being dense or starting at 1.
//! What it cannot see — values read against the right write, compare-and-swap decisions —
//! is the linearizability checker's, with [`squall_models::kv::KvModel`].

use squall_models::kv::{KvOp, KvRet, Rev};
use std::collections::BTreeMap;

use crate::check::Violation;
use crate::history::Operation;

type Op = Operation<KvOp, KvRet>;

/// A revision an operation reveals.
struct Sighting<'a> {
    rev: Rev,
    key: &'a str,
    /// What the revision holds, if revealed (an `expected` reveals only the key).
    value: Option<&'a str>,
    by: &'a Op,
    /// Returned by the write that took it.
    wrote: bool,
}

/// The first rule `ops` break, in the order of the module docs.
pub fn revisions(ops: &[Op]) -> Result<(), Violation> {
    let sightings: Vec<Sighting> = ops.iter().flat_map(sightings).collect();
    // By revision, each revision's sightings in history order (a stable sort): one
    // allocation, where a map of lists took one a revision.
    let mut by_rev: Vec<&Sighting> = sightings.iter().collect();
    by_rev.sort_by_key(|s| s.rev);
    let by_rev = || by_rev.chunk_by(|a, b| a.rev == b.rev);
    for seen in by_rev() {
        one_write(seen[0].rev, seen)?;
    }
    let hidden = hidden_writes(ops);
    for seen in by_rev() {
        if !seen.iter().any(|s| s.wrote) {
            seen.iter().try_for_each(|s| source(s, &hidden))?;
        }
    }
    real_time(ops, &sightings)
}

/// The revisions `o` reveals.
fn sightings(o: &Op) -> Vec<Sighting<'_>> {
    let seen = |rev, key, value, wrote| Sighting {
        rev,
        key,
        value,
        by: o,
        wrote,
    };
    let key = o.op.key().unwrap_or_default();
    let mut out = Vec::new();
    match (&o.op, &o.ret) {
        (_, Some(KvRet::Written(rev))) => out.push(seen(*rev, key, written(&o.op), true)),
        (_, Some(KvRet::Entry(Some(e)))) => out.push(seen(e.rev, key, Some(&e.value), false)),
        (_, Some(KvRet::Scan(entries))) => {
            for (k, e) in entries {
                out.push(seen(e.rev, k, Some(&e.value), false));
            }
        }
        _ => {}
    }
    // A conditional write that succeeded found revision `expected` on its key (0 is "no
    // write yet", not a revision).
    if let (
        KvOp::Update { expected, .. } | KvOp::DeleteWithVersion { expected, .. },
        Some(KvRet::Written(_) | KvRet::Deleted(_)),
    ) = (&o.op, &o.ret)
    {
        if *expected > 0 {
            out.push(seen(*expected, key, None, false));
        }
    }
    out
}

/// The value a write leaves; `None` for a delete or purge marker, and for reads.
fn written(op: &KvOp) -> Option<&str> {
    match op {
        KvOp::Put { value, .. } | KvOp::Create { value, .. } | KvOp::Update { value, .. } => {
            Some(value)
        }
        KvOp::DeleteWithVersion { .. } => Some(""),
        _ => None,
    }
}

fn name(o: &Op) -> String {
    format!("#{} ({})", o.id, o.op)
}

/// Rule 1 for the sightings of `rev`.
fn one_write(rev: Rev, seen: &[&Sighting]) -> Result<(), Violation> {
    let mut writes = seen.iter().filter(|s| s.wrote);
    if let (Some(a), Some(b)) = (writes.next(), writes.next()) {
        return Err(Violation {
            ops: vec![a.by.id, b.by.id],
            what: format!(
                "revision {rev} taken twice: by {} and by {}",
                name(a.by),
                name(b.by)
            ),
            ..Default::default()
        });
    }
    // Compare with one sighting that knows the value, if any, so values compare too.
    let anchor = seen
        .iter()
        .find(|s| s.wrote)
        .or_else(|| seen.iter().find(|s| s.value.is_some()))
        .unwrap_or(&seen[0]);
    for s in seen {
        let clash = if s.key != anchor.key {
            format!("key {} and key {}", anchor.key, s.key)
        } else {
            match (anchor.value, s.value) {
                (Some(a), Some(b)) if a != b => format!("value {a:?} and value {b:?}"),
                _ => continue,
            }
        };
        return Err(Violation {
            ops: vec![anchor.by.id, s.by.id],
            what: format!(
                "revision {rev} holds {clash}: {} and {} disagree",
                name(anchor.by),
                name(s.by)
            ),
            ..Default::default()
        });
    }
    Ok(())
}

/// Writes whose revision may be hidden, by key: the earliest invocation of each value they
/// may leave (`None`: a marker), and of any write at all.
struct Hidden<'a> {
    by_value: BTreeMap<(&'a str, &'a str), usize>,
    any: BTreeMap<&'a str, usize>,
}

fn hidden_writes(ops: &[Op]) -> Hidden<'_> {
    let mut hidden = Hidden {
        by_value: BTreeMap::new(),
        any: BTreeMap::new(),
    };
    for o in ops {
        let Some(key) = o.op.key().filter(|_| o.op.is_write()) else {
            continue;
        };
        if !matches!(o.ret, None | Some(KvRet::Deleted(_) | KvRet::Purged)) {
            continue;
        }
        let earliest = |call: &mut usize| *call = (*call).min(o.call);
        hidden.any.entry(key).and_modify(earliest).or_insert(o.call);
        if let Some(value) = written(&o.op) {
            let at = hidden.by_value.entry((key, value));
            at.and_modify(earliest).or_insert(o.call);
        }
    }
    hidden
}

/// Rule 2 for a sighting of a revision no write returned.
fn source(s: &Sighting, hidden: &Hidden) -> Result<(), Violation> {
    let earliest = match s.value {
        Some(value) => hidden.by_value.get(&(s.key, value)),
        None => hidden.any.get(s.key),
    };
    // A sighting comes from an answered operation, so it has completed.
    let done = s.by.done.unwrap_or(usize::MAX);
    if earliest.is_some_and(|call| *call < done) {
        return Ok(());
    }
    Err(Violation {
        ops: vec![s.by.id],
        what: format!(
            "{} reveals revision {} on key {}, which no write invoked before it could have taken",
            name(s.by),
            s.rev,
            s.key
        ),
        ..Default::default()
    })
}

/// Rule 3: sweep the history's events in order, keeping the greatest revision revealed by a
/// completed operation; each write invoked must take a greater one.
fn real_time(ops: &[Op], sightings: &[Sighting]) -> Result<(), Violation> {
    // (event index, revision, operation, whether it is a write's invocation)
    let mut events: Vec<(usize, Rev, &Op, bool)> = Vec::new();
    for s in sightings {
        if let Some(done) = s.by.done {
            events.push((done, s.rev, s.by, false));
        }
    }
    for o in ops {
        if let Some(KvRet::Written(rev)) = o.ret {
            events.push((o.call, rev, o, true));
        }
    }
    // The key orders every event apart, so an unstable sort gives the one order.
    events.sort_unstable_by_key(|&(at, rev, o, invoke)| (at, rev, o.id, invoke));
    let mut newest: Option<(Rev, &Op)> = None;
    for (_, rev, o, invoke) in events {
        if !invoke {
            if newest.is_none_or(|(seen, _)| rev > seen) {
                newest = Some((rev, o));
            }
        } else if let Some((seen, by)) = newest.filter(|&(seen, _)| rev <= seen) {
            return Err(Violation {
                ops: vec![by.id, o.id],
                what: format!(
                    "{} took revision {rev}, though {} revealed revision {seen} before it was \
                     invoked",
                    name(o),
                    name(by)
                ),
                ..Default::default()
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, History};
    use squall_models::kv::{Entry, KvError};

    /// A history written event by event; ids are given by the test.
    #[derive(Default)]
    struct Script(History<KvOp, KvRet>);

    impl Script {
        fn call(mut self, id: u64, op: KvOp) -> Self {
            let at = self.0.events.len() as u64;
            let client = id as u32;
            self.0.events.push(Event::Invoke { at, client, id, op });
            self
        }
        fn ret(mut self, id: u64, ret: KvRet) -> Self {
            let at = self.0.events.len() as u64;
            let client = id as u32;
            self.0.events.push(Event::Return {
                at,
                client,
                id,
                ret,
            });
            self
        }
        fn lost(mut self, id: u64) -> Self {
            let at = self.0.events.len() as u64;
            let (client, why) = (id as u32, "timeout".into());
            self.0.events.push(Event::Unknown {
                at,
                client,
                id,
                why,
            });
            self
        }
        /// `call` then `ret`: an operation alone in time.
        fn op(self, id: u64, op: KvOp, ret: KvRet) -> Self {
            self.call(id, op).ret(id, ret)
        }
        fn check(&self) -> Result<(), Violation> {
            revisions(&self.0.operations())
        }
        /// The ids of the violation found, failing if none is.
        fn ids(&self) -> Vec<u64> {
            match self.check() {
                Err(v) => {
                    assert!(v.ops.iter().all(|id| v.what.contains(&format!("#{id}"))));
                    v.ops
                }
                Ok(()) => panic!("no violation found"),
            }
        }
    }

    fn shows(value: &str, rev: Rev) -> KvRet {
        KvRet::Entry(Some(Entry {
            value: value.into(),
            rev,
        }))
    }

    #[test]
    fn sequential_writes_across_keys_pass() {
        let s = Script::default()
            .op(1, KvOp::put("a", "x"), KvRet::Written(1))
            .op(2, KvOp::put("b", "y"), KvRet::Written(2))
            .op(3, KvOp::update("a", "z", 1), KvRet::Written(3))
            .op(4, KvOp::entry("a"), shows("z", 3))
            .op(5, KvOp::Scan { prefix: "".into() }, {
                let e = |v: &str, rev| Entry {
                    value: v.into(),
                    rev,
                };
                KvRet::Scan(vec![("a".into(), e("z", 3)), ("b".into(), e("y", 2))])
            });
        assert_eq!(s.check(), Ok(()));
    }

    #[test]
    fn concurrent_writes_may_take_revisions_in_either_order() {
        let s = Script::default()
            .call(1, KvOp::put("a", "x"))
            .call(2, KvOp::put("b", "y"))
            .ret(2, KvRet::Written(1))
            .ret(1, KvRet::Written(2));
        assert_eq!(s.check(), Ok(()));
    }

    #[test]
    fn hidden_revisions_may_be_revealed() {
        // delete takes 2, the tombstone 3, the lost put 4: none returned.
        let s = Script::default()
            .op(1, KvOp::put("a", "x"), KvRet::Written(1))
            .op(2, KvOp::delete("a"), KvRet::Deleted(true))
            .op(3, KvOp::update("a", "y", 2), KvRet::Written(3))
            .op(4, KvOp::delete_with_version("a", 3), KvRet::Deleted(true))
            .op(5, KvOp::entry("a"), shows("", 4))
            .call(6, KvOp::put("b", "w"))
            .lost(6)
            .op(7, KvOp::entry("b"), shows("w", 5))
            .op(8, KvOp::put("b", "v"), KvRet::Written(6));
        assert_eq!(s.check(), Ok(()));
    }

    #[test]
    fn a_revision_taken_twice_fails() {
        let s = Script::default()
            .call(1, KvOp::put("a", "x"))
            .call(2, KvOp::put("b", "y"))
            .ret(1, KvRet::Written(1))
            .ret(2, KvRet::Written(1));
        assert_eq!(s.ids(), [1, 2]);
    }

    #[test]
    fn a_revision_shown_on_another_key_fails() {
        let s = Script::default()
            .op(1, KvOp::put("a", "x"), KvRet::Written(1))
            .op(2, KvOp::entry("b"), shows("x", 1));
        assert_eq!(s.ids(), [1, 2]);
    }

    #[test]
    fn a_revision_shown_with_another_value_fails() {
        let s = Script::default()
            .op(1, KvOp::put("a", "x"), KvRet::Written(1))
            .op(2, KvOp::entry("a"), shows("y", 1));
        assert_eq!(s.ids(), [1, 2]);
    }

    #[test]
    fn an_update_naming_another_keys_revision_fails() {
        // The backend let b's update match a's revision.
        let s = Script::default()
            .op(1, KvOp::put("a", "x"), KvRet::Written(1))
            .op(2, KvOp::delete("b"), KvRet::Deleted(true))
            .op(3, KvOp::update("b", "y", 1), KvRet::Written(3));
        assert_eq!(s.ids(), [1, 3]);
    }

    #[test]
    fn a_mismatched_update_claims_nothing() {
        let s = Script::default()
            .op(1, KvOp::put("a", "x"), KvRet::Written(1))
            .op(
                2,
                KvOp::update("b", "y", 1),
                KvRet::Err(KvError::RevisionMismatch),
            );
        assert_eq!(s.check(), Ok(()));
    }

    #[test]
    fn a_revision_from_nowhere_fails() {
        let s = Script::default()
            .op(1, KvOp::put("a", "x"), KvRet::Written(1))
            .op(2, KvOp::entry("a"), shows("y", 7));
        assert_eq!(s.ids(), [2]);
        // A marker never shows, so it is no source for a read ...
        let s = Script::default()
            .op(1, KvOp::delete("a"), KvRet::Deleted(true))
            .op(2, KvOp::entry("a"), shows("", 1));
        assert_eq!(s.ids(), [2]);
        // ... but it is for an `expected`.
        let s = Script::default()
            .op(1, KvOp::delete("a"), KvRet::Deleted(true))
            .op(2, KvOp::update("a", "x", 1), KvRet::Written(2));
        assert_eq!(s.check(), Ok(()));
    }

    #[test]
    fn a_source_invoked_after_the_read_fails() {
        let s = Script::default()
            .op(1, KvOp::entry("a"), shows("x", 1))
            .call(2, KvOp::put("a", "x"))
            .lost(2);
        assert_eq!(s.ids(), [1]);
    }

    #[test]
    fn a_write_after_a_completed_write_takes_a_greater_revision() {
        let s = Script::default()
            .op(1, KvOp::put("a", "x"), KvRet::Written(5))
            .op(2, KvOp::put("b", "y"), KvRet::Written(3));
        assert_eq!(s.ids(), [1, 2]);
    }

    #[test]
    fn a_write_after_a_read_takes_a_greater_revision() {
        let s = Script::default()
            .call(1, KvOp::put("a", "x"))
            .op(2, KvOp::entry("a"), shows("x", 4))
            .ret(1, KvRet::Written(4))
            .op(3, KvOp::put("b", "y"), KvRet::Written(2));
        assert_eq!(s.ids(), [2, 3]);
    }

    #[test]
    fn a_read_of_a_future_write_fails() {
        // The read returned before the write that took its revision was invoked.
        let s = Script::default().op(1, KvOp::entry("a"), shows("x", 1)).op(
            2,
            KvOp::put("a", "x"),
            KvRet::Written(1),
        );
        assert_eq!(s.ids(), [1, 2]);
    }
}
